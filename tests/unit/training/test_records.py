"""WFDB records as a training source (training.records): write, read, label, errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detector.beats import POLARITY_CHECK_S
from training import DataError, load_config, load_dataset
from training.continuous import PAD_LABEL, Stitched, stitch
from training.job import split_with_test
from training.records import (
    ABNORMAL_CLASS,
    BEAT_SYMBOLS,
    label_of,
    load_records,
    match_beats,
    record_paths,
    stitch_records,
    write_records,
)


@pytest.fixture(scope="module")
def classes(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """All ECG5000 beats and their classes 1–5."""
    ds = load_dataset(shared_data)
    assert ds.classes is not None
    return ds.x, ds.classes


@pytest.fixture(scope="module")
def stitched(classes: tuple[np.ndarray, np.ndarray]) -> Stitched:
    """250 beats of every class, stitched at 250 Hz."""
    x, c = classes
    rng = np.random.default_rng(7)
    rows = np.concatenate(
        [
            rng.permutation(np.flatnonzero(c == k))[:n]
            for k, n in ((1, 150), (2, 70), (3, 12), (4, 12), (5, 6))
        ]
    )
    rows = rng.permutation(rows)
    return stitch(x[rows], c[rows], seed=11)


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory: pytest.TempPathFactory, stitched: Stitched) -> Path:
    out = tmp_path_factory.mktemp("records")
    write_records([stitched], out, ["beats250"])
    return out


def _sine_record(
    folder: Path, name: str, fs: float = 250.0, seconds: float = 20.0, **kw: Any
) -> Path:
    t = np.arange(int(seconds * fs)) / fs
    signal = kw.pop("signal", np.sin(2 * np.pi * 1.2 * t))
    peaks = kw.pop("peaks", np.arange(0, t.size, int(0.8 * fs)))
    symbols = kw.pop("symbols", ["N"] * len(peaks))
    return write_records([(signal, fs, peaks, symbols)], folder, [name])[0]


def test_write_read_round_trip(record_dir: Path, stitched: Stitched) -> None:
    import wfdb

    rec = wfdb.rdrecord(str(record_dir / "beats250"))
    assert rec.fs == 250.0 and rec.units == ["mV"] and rec.n_sig == 1
    error = np.abs(rec.p_signal[:, 0] - stitched.signal)
    amplitude = np.ptp(stitched.signal)
    assert error.max() < 1e-4 * amplitude  # 1 µV steps on beats of several units
    ann = wfdb.rdann(str(record_dir / "beats250"), "atr")
    np.testing.assert_array_equal(ann.sample, stitched.peaks)
    expected = [
        "N" if c in (1, PAD_LABEL) else {2: "r", 3: "V", 4: "S", 5: "Q"}[c] for c in stitched.labels
    ]
    assert ann.symbol == expected


def test_labels_come_back_from_the_annotations(record_dir: Path, stitched: Stitched) -> None:
    got = load_records(record_dir)
    (stats,) = got.stats
    assert stats.annotated == len(stitched.peaks) and stats.name == "beats250"
    assert stats.sensitivity >= 0.98 and stats.positive_predictivity >= 0.98
    assert stats.missed == stats.annotated - stats.matched >= 1  # the last beat has no end
    assert got.windows.shape == (stats.matched, 140) and got.windows.dtype == np.float32
    # Each labelled beat against the stitched truth of the beat nearest its R peak.
    nearest = np.abs(got.peaks[:, None] - stitched.peaks[None, :]).argmin(axis=1)
    truth = np.where(stitched.labels[nearest] == PAD_LABEL, 1, stitched.labels[nearest])
    assert (got.labels == truth).mean() >= 0.99
    counted = stitched.counted[nearest]
    found = np.unique(nearest[counted]).size / stitched.counted.sum()
    assert found >= 0.99
    assert set(np.unique(got.labels)) == {1, 2, 3, 4, 5}
    assert (got.record == 0).all() and got.normal.tolist() == (got.labels == 1).tolist()
    ds = got.to_dataset()
    assert ds.kind == "wfdb" and ds.x.shape == got.windows.shape
    assert ds.records[0]["sensitivity"] == round(stats.sensitivity, 6)


def test_a_record_whose_r_waves_point_up_trains_on_the_same_beats(
    tmp_path: Path, record_dir: Path, stitched: Stitched
) -> None:
    """Most recorded leads have upright R waves, ECG5000's points down: the record is turned
    over before it is cut, says so in its stats, and gives the same labelled beats."""
    write_records([dataclasses.replace(stitched, signal=-stitched.signal)], tmp_path, ["upright"])
    got, plain = load_records(tmp_path), load_records(record_dir)
    assert got.stats[0].inverted and not plain.stats[0].inverted
    assert got.stats[0].to_dict()["inverted"] is True and got.totals().inverted
    assert got.stats[0].sensitivity >= 0.98
    # After the polarity decision (8 s) the beats are the same, windows up to the units.
    decided = POLARITY_CHECK_S * stitched.fs
    late, plain_late = got.peaks >= decided, plain.peaks >= decided
    np.testing.assert_array_equal(got.peaks[late], plain.peaks[plain_late])
    np.testing.assert_array_equal(got.labels[late], plain.labels[plain_late])
    np.testing.assert_allclose(got.windows[late], plain.windows[plain_late], atol=2e-3)


def test_load_dataset_and_paths_take_records(record_dir: Path) -> None:
    by_folder = load_dataset(record_dir)
    by_header = load_dataset(record_dir / "beats250.hea")
    assert by_folder.kind == "wfdb" and by_folder.sha256 == by_header.sha256
    np.testing.assert_array_equal(by_folder.x, by_header.x)
    assert record_paths([record_dir / "beats250"]) == [record_dir / "beats250"]
    # A record name without extension, or its signal file, as WFDB tools take them.
    for name in ("beats250", "beats250.dat", "beats250.atr"):
        assert load_dataset(record_dir / name).sha256 == by_folder.sha256


def test_symbol_mapping() -> None:
    assert label_of("N") == 1
    assert [label_of(s) for s in "rVSQ"] == [2, 3, 4, 5]
    for other in "LRBAaJFejnE/f?!":
        assert label_of(other) == ABNORMAL_CLASS
    for not_beat in '+~|x"':
        with pytest.raises(DataError, match="not a beat"):
            label_of(not_beat)


def test_beat_symbols_are_wfdbs_qrs_codes() -> None:
    from wfdb.io.annotation import ann_label_table, is_qrs

    qrs = {row.symbol for row in ann_label_table.itertuples() if is_qrs[row.label_store]}
    assert qrs == BEAT_SYMBOLS


def test_non_beat_annotations_are_ignored_and_unknown_beats_are_abnormal(
    tmp_path: Path, record_dir: Path, stitched: Stitched
) -> None:
    # The stitched record again, with rhythm/noise annotations between beats and its PVCs
    # re-coded as MIT-BIH fusion beats (F, not one of ECG5000's symbols).
    peaks = list(stitched.peaks)
    symbols = ["N" if c in (1, PAD_LABEL) else "F" for c in stitched.labels]
    extra = [int(stitched.peaks[5] + 60), int(stitched.peaks[20] + 60)]
    # Out of order on purpose: write_records sorts the annotations by sample.
    all_peaks = np.array(peaks + extra)
    all_symbols = [*symbols, "+", "~"]
    write_records([(stitched.signal, stitched.fs, all_peaks, all_symbols)], tmp_path, ["mixed"])
    got = load_records(tmp_path)
    assert got.stats[0].annotated == len(peaks)
    assert set(np.unique(got.labels)) == {1, ABNORMAL_CLASS}
    plain = load_records(record_dir)
    np.testing.assert_array_equal(got.labels == 1, plain.labels == 1)


def test_match_beats_is_one_to_one_nearest_first() -> None:
    pi, ai = match_beats(np.array([10, 12, 50, 200]), np.array([11, 48, 120]), tolerance=5)
    assert pi.tolist() == [0, 2] and ai.tolist() == [0, 1]
    empty = match_beats(np.array([], dtype=np.int64), np.array([3]), 5)
    assert [e.size for e in empty] == [0, 0]


def test_missing_header_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.hea: missing WFDB header"):
        load_records(tmp_path / "nope")
    with pytest.raises(DataError, match="no WFDB header"):
        load_records(tmp_path)


def test_no_annotation_file(tmp_path: Path) -> None:
    header = _sine_record(tmp_path, "plain")
    (tmp_path / "plain.atr").unlink()
    with pytest.raises(DataError, match=r"plain\.atr: no annotation file") as info:
        load_records(header)
    assert "wfdb.wrann" in str(info.value)


def test_unreadable_record(tmp_path: Path) -> None:
    header = _sine_record(tmp_path, "cut")
    (tmp_path / "cut.dat").unlink()
    with pytest.raises(DataError, match=r"cut\.hea: unreadable WFDB record"):
        load_records(header)
    header.write_text("this is not a header\n")
    with pytest.raises(DataError, match=r"cut\.hea: unreadable WFDB header"):
        load_records(header)


def test_sampling_rate_outside_the_extractors_range(tmp_path: Path) -> None:
    header = _sine_record(tmp_path, "slow", fs=10.0, seconds=60)
    with pytest.raises(DataError, match=r"slow\.hea: sampling rate 10.* not one .* 20\.\.10000"):
        load_records(header)


def test_no_beats_found_and_no_beat_annotations(tmp_path: Path) -> None:
    flat = _sine_record(tmp_path, "flat", signal=np.zeros(5000))
    with pytest.raises(DataError, match=r"flat\.hea: no beats found in channel 0"):
        load_records(flat)
    rhythm = _sine_record(tmp_path / "r", "rhythm", peaks=np.array([0, 100]), symbols=["+", "~"])
    with pytest.raises(DataError, match=r"rhythm\.atr: no beat annotations"):
        load_records(rhythm)


def test_channel_out_of_range(record_dir: Path) -> None:
    with pytest.raises(DataError, match="channel 1 does not exist"):
        load_records(record_dir, channel=1)


def test_stitch_records_uses_the_jobs_split(tmp_path: Path, shared_data: Path) -> None:
    written = stitch_records(tmp_path, split="test", records=2, data=shared_data, limit=40)
    assert [h.name for h in written["test"]] == ["test000.hea", "test001.hea"]
    assert not (tmp_path / "train").exists()
    got = load_records(tmp_path / "test")
    assert [s.annotated for s in got.stats] == [26, 26]  # 20 beats + 3 pads each side
    with pytest.raises(DataError, match="split"):
        stitch_records(tmp_path, split="val", data=shared_data)


def test_split_with_test_holds_out_training_normals_only(record_dir: Path) -> None:
    data = load_dataset(record_dir)
    config = load_config("recommended")
    split = split_with_test(data, data, config)
    normal = int(data.normal.sum())
    assert len(split.x_holdout) == round(0.2 * normal)
    assert len(split.x_fit) + len(split.x_holdout) == normal
    assert len(split.x_test) == len(data.x)
    assert split_with_test(data, data, load_config("seed")).x_holdout.shape[0] == 0


def test_report_tabulates_the_records(tmp_path: Path, record_dir: Path) -> None:
    from training.report import write_report

    stats = list(load_dataset(record_dir).records)
    from training import detection_metrics

    scores, normal = np.array([0.1, 0.9, 0.2, 0.8]), np.array([1, 0, 1, 0])
    metrics = detection_metrics(scores, normal, 0.5)
    folder = write_report(
        tmp_path / "report",
        metrics=metrics,
        history={"loss": [0.2, 0.1]},
        test_scores=scores,
        test_normal=normal,
        examples={},
        summary={"data": str(record_dir), "data_kind": "wfdb", "test_data": "elsewhere"},
        records={"training": stats, "test": stats},
    )
    text = (folder / "report.md").read_text()
    assert "(WFDB records)" in text and "Tested on every beat of `elsewhere`." in text
    assert "| training | beats250 | 250 |" in text and "| test | beats250 |" in text
    assert text.count("| no |") == 2  # neither record was turned over
    import json

    assert json.loads((folder / "records.json").read_text())["test"] == stats


def test_a_configs_beat_recipe_cuts_the_records_and_is_what_the_model_records(
    tmp_path: Path, stitched: Stitched
) -> None:
    """``beat_recipe`` in the training config: the records are cut with it, detector.json
    records it (ecgwatch ingest cuts live feeds with it), evaluate re-cuts with it."""
    from detector.artifact import Artifact
    from detector.beats import BeatRecipe
    from training.job import evaluate_artifact, train

    t = np.arange(stitched.signal.size) / stitched.fs
    hum = dataclasses.replace(stitched, signal=stitched.signal + 0.3 * np.sin(2 * np.pi * 50.0 * t))
    write_records([hum], tmp_path / "recs", ["hum"])
    base = load_config("continuous")
    config = base.replace(
        beat_recipe={"powerline_hz": [50]},
        training=dataclasses.replace(base.training, epochs=1),
    )
    result = train(config, data=tmp_path / "recs", registry=tmp_path / "reg")
    assert result.artifact.metadata["beat_recipe"]["powerline_hz"] == [50]
    assert result.path is not None
    stored = Artifact.load(result.path)
    assert stored.beat_recipe == BeatRecipe(powerline_hz=(50,))
    # The stored windows were cut with the notch: as many beats found as on the clean record.
    notched = load_records(tmp_path / "recs", BeatRecipe(powerline_hz=(50,)))
    assert result.artifact.metadata["training_data"]["n_beats"] == notched.windows.shape[0]
    again = evaluate_artifact(result.path)
    key = "anomaly_positive"
    assert again.metrics[key]["accuracy"] == pytest.approx(result.metrics[key]["accuracy"])
    assert again.metrics["n"] == result.metrics["n"]
