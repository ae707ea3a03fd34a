"""The broker and topics commands' argument handling and one-line errors (no broker)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecgwatch.cli import main
from pipeline.errors import PipelineError
from pipeline.topics import default_topics, ingest_topics


@pytest.fixture(autouse=True)
def _restore_kafka_log_level() -> Iterator[None]:
    # The commands quieten kafka-python's logger for the process; keep that out of other tests.
    logger = logging.getLogger("kafka")
    level = logger.level
    yield
    logger.setLevel(level)


def test_broker_status_of_unused_dir_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["broker", "status", "--data-dir", str(tmp_path)]) == 1
    assert "not running" in capsys.readouterr().out


def test_broker_stop_when_stopped_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker", "stop", "--data-dir", str(tmp_path)]) == 0
    assert "was not running" in capsys.readouterr().out


def test_topics_bad_partitions_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "create", "--partitions", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--partitions" in err


def test_default_topics() -> None:
    specs = default_topics(5)
    assert [(s.name, s.partitions, s.replication_factor) for s in specs] == [
        ("ecg.windows", 5, 1),
        ("ecg.scores", 5, 1),
        ("ecg.alerts", 1, 1),
        ("ecg.windows.dlq", 1, 1),
    ]
    with pytest.raises(PipelineError):
        default_topics(0)


def test_ingest_topics_keep_the_state_compacted() -> None:
    specs = ingest_topics(5)
    assert [(s.name, s.partitions) for s in specs] == [
        ("ecg.samples", 5),
        ("ecg.samples.dlq", 1),
        ("ecg.ingest.state", 1),
    ]
    assert specs[2].configs["cleanup.policy"] == "compact"
    assert not specs[0].configs and not specs[1].configs


def test_topics_unreachable_bootstrap_names_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    from ecgwatch.broker import free_ports

    port = free_ports(1)[0]  # nothing listens there
    rc = main(["topics", "create", "--bootstrap", f"localhost:{port}", "--timeout", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert f"localhost:{port}" in err and "ecgwatch broker start" in err and "\n" not in err


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    import socket

    from ecgwatch.broker import free_ports
    from ecgwatch.broker.process import _ephemeral_low

    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert all(1024 < p < _ephemeral_low() for p in ports)
    for p in ports:  # free a moment ago: bindable now
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", p))
