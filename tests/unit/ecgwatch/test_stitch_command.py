"""``ecgwatch stitch``: ECG5000's split as annotated WFDB records (one small record)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ecgwatch.commands import stitch


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ecgwatch")
    stitch.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["stitch", *argv])
    return args.func(args)


def test_stitch_writes_one_annotated_record(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import wfdb

    code = _run(
        "--out",
        str(tmp_path),
        "--split",
        "train",
        "--records",
        "1",
        "--limit",
        "8",
        "--data",
        str(shared_data),
        "--seed",
        "3",
        "--fs",
        "360",
    )
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [
        "train000.atr",
        "train000.dat",
        "train000.hea",
    ]
    assert not (tmp_path / "test").exists()
    rec = wfdb.rdrecord(str(tmp_path / "train" / "train000"))
    ann = wfdb.rdann(str(tmp_path / "train" / "train000"), "atr")
    assert rec.fs == 360 and rec.units == ["mV"]
    assert len(ann.sample) == 8 + 6  # the beats and 3 lead-in/lead-out pads
    assert set(ann.symbol) <= {"N", "r", "V", "S", "Q"}
    assert "train: 1 record(s)" in capsys.readouterr().out


def test_stitch_rejects_more_records_than_beats(tmp_path: Path, shared_data: Path) -> None:
    from training import DataError

    with pytest.raises(DataError, match="records: 5 > the 3 beats"):
        _run("--out", str(tmp_path), "--records", "5", "--limit", "3", "--data", str(shared_data))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--limit", "-3"], "limit: got -3; use >= 1"),
        (["--limit", "0"], "limit: got 0; use >= 1"),
        (["--seed", "-1"], "seed: got -1; use an integer >= 0"),
        (["--fs", "5"], "fs: got 5.0 Hz; stitched signals are written at 50..2000 Hz"),
        (["--fs", "nan"], "fs: got nan Hz"),
    ],
)
def test_stitch_names_a_bad_option_and_writes_nothing(
    tmp_path: Path, shared_data: Path, args: list[str], fragment: str
) -> None:
    from training import DataError

    with pytest.raises(DataError) as info:
        _run("--out", str(tmp_path / "out"), "--data", str(shared_data), "--limit", "20", *args)
    assert fragment in str(info.value)
    assert not list(tmp_path.rglob("*.hea"))


def test_stitch_refuses_a_file_as_out_and_a_folder_that_holds_records(
    tmp_path: Path, shared_data: Path
) -> None:
    """Re-stitching into a used folder would leave old records beside the new ones, and a
    later ``train --data OUT/train`` would read them all."""
    from training import DataError

    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(DataError, match="afile: exists and is not a folder"):
        _run("--out", str(afile), "--data", str(shared_data), "--limit", "20")
    out = str(tmp_path / "recs")
    _run("--out", out, "--data", str(shared_data), "--limit", "30", "--records", "3")
    with pytest.raises(DataError, match=r"train: already holds WFDB records \(train000.hea, "):
        _run("--out", out, "--data", str(shared_data), "--limit", "30", "--records", "2")
    assert len(list((tmp_path / "recs" / "train").glob("*.hea"))) == 3  # untouched
