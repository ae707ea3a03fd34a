"""The beat-extraction stage's ``/metrics``: exactly the families of the deploy contract, every
``reason`` series there from the start (at 0) so that rate() sees a first rejection."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from detector.beats import DEFAULT_RECIPE
from pipeline.ingest import IngestCollector
from pipeline.ingest_state import IngestProcessor
from pipeline.samples import INGEST_REJECT_REASONS
from pipeline.topics import DEFAULT_TOPICS
from tests.unit.deploy.metric_contract import INGEST_CONTRACT
from tests.unit.deploy.metric_contract import INGEST_REJECT_REASONS as CONTRACT_REASONS


def _scrape(processor: IngestProcessor) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    registry = CollectorRegistry()
    registry.register(IngestCollector(processor))
    text = generate_latest(registry).decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = tuple(sorted(sample.labels.items()))
            out.setdefault(sample.name, {})[labels] = sample.value
    return out


def _processor() -> IngestProcessor:
    return IngestProcessor(DEFAULT_RECIPE, DEFAULT_TOPICS, 1 << 20, 60.0)


def test_the_stage_exports_exactly_the_contract_families() -> None:
    assert set(_scrape(_processor())) == set(INGEST_CONTRACT)


def test_every_reject_reason_is_a_series_at_zero_before_any_rejection() -> None:
    assert set(INGEST_REJECT_REASONS) == CONTRACT_REASONS
    rejected = _scrape(_processor())["ecg_ingest_rejected_total"]
    assert rejected == {(("reason", r),): 0.0 for r in INGEST_REJECT_REASONS}


def test_a_rejection_counts_under_its_reason() -> None:
    processor = _processor()
    processor.counts.reject("samples_gap")
    processor.counts.reject("samples_gap")
    processor.counts.reject("invalid_json")
    rejected = _scrape(processor)["ecg_ingest_rejected_total"]
    assert rejected[(("reason", "samples_gap"),)] == 2
    assert rejected[(("reason", "invalid_json"),)] == 1
    assert rejected[(("reason", "fs_changed"),)] == 0
