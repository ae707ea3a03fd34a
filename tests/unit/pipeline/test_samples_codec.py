"""The ``ecg.samples`` chunk codec: both encodings, every reject reason, the JSON Schema."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

import pipeline
from detector.beats import MAX_FS, MIN_FS
from pipeline.errors import InvalidMessageError
from pipeline.samples import (
    DEFAULT_MAX_CHUNK_BYTES,
    MAX_CHUNK_SAMPLES,
    SAMPLES_CONTENT_TYPE,
    SAMPLES_FRAME,
    SAMPLES_REJECT_REASONS,
    STAGE_REASONS,
    SampleChunk,
    decode_chunk,
    encode_chunk_binary,
    encode_chunk_json,
    samples_message,
)

SCHEMA_FILE = Path(pipeline.__file__).parent / "schemas" / "samples.schema.json"
SCHEMA = json.loads(SCHEMA_FILE.read_text())
BINARY = [("content-type", SAMPLES_CONTENT_TYPE)]
HEADER = SAMPLES_FRAME.header.size
RNG = np.random.default_rng(0)


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "device_id": "bed-12",
        "seq": 7,
        "ts": 1795736000.25,
        "fs": 250.0,
        "samples": [0.1, -0.2, 1.5, 3],
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not _DROP}


_DROP = object()


def _raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _reject(value: bytes | None, headers: Any = None, **kw: Any) -> InvalidMessageError:
    with pytest.raises(InvalidMessageError) as info:
        decode_chunk(value, headers, **kw)
    return info.value


def _binary_frame() -> bytes:
    return encode_chunk_binary("dev-9", 3, 100.0, 250.0, np.arange(10.0))


def _patch(frame: bytes, offset: int, fmt: str, value: Any) -> bytes:
    return frame[:offset] + struct.pack(fmt, value) + frame[offset + struct.calcsize(fmt) :]


# Every reason the codec gives, each with a message that reaches it and words its detail names.
REJECTS: list[tuple[str, bytes | None, Any, tuple[str, ...]]] = [
    ("empty", None, None, ("no value",)),
    ("empty", b"", BINARY, ("no value",)),
    ("empty", _raw(_doc(samples=[])), None, ("samples", "empty")),
    ("not_utf8", b'{"device_id": "\xff"}', None, ("byte", "UTF-8")),
    ("invalid_json", b'{"device_id": ', None, ("value",)),
    ("wrong_type", b"[1, 2]", None, ("JSON object", "list")),
    ("wrong_type", _raw(_doc(device_id=12)), None, ("device_id", "string")),
    ("wrong_type", _raw(_doc(seq=True)), None, ("seq", "integer", "bool")),
    ("wrong_type", _raw(_doc(seq=1.5)), None, ("seq", "integer")),
    ("wrong_type", _raw(_doc(ts="now")), None, ("ts", "epoch seconds")),
    ("wrong_type", _raw(_doc(fs="250")), None, ("fs", "sampling rate")),
    ("wrong_type", _raw(_doc(fs=True)), None, ("fs", "bool")),
    ("missing_field", _raw(_doc(fs=_DROP)), None, ("fs", "required")),
    ("missing_field", _raw(_doc(samples=_DROP)), None, ("samples", "required")),
    ("invalid_value", _raw(_doc(seq=-1)), None, ("seq", "-1", ">= 0")),
    ("invalid_value", _raw(_doc(device_id="")), None, ("device_id", "1-256")),
    ("invalid_value", _raw(_doc(device_id="x" * 257)), None, ("device_id", "1-256")),
    ("invalid_value", _raw(_doc(fs=MIN_FS - 1)), None, ("fs", f"{MIN_FS:g}", f"{MAX_FS:g}")),
    ("invalid_value", _raw(_doc(fs=MAX_FS + 1)), None, ("fs", "MIN_FS", "MAX_FS", "Hz")),
    ("invalid_value", b"XX" + _binary_frame()[2:], BINARY, ("magic", "ES")),
    ("invalid_value", _binary_frame()[:2] + b"\x02" + _binary_frame()[3:], BINARY, ("version",)),
    ("invalid_value", _binary_frame()[:-1] + b"\x00", BINARY, ("device_id", "NUL")),
    ("invalid_value", _patch(_binary_frame(), 10, "<Q", 2**63), BINARY, ("seq", "2**63")),
    ("invalid_value", _patch(_binary_frame(), 26, "<d", 5.0), BINARY, ("fs", "5.0")),
    ("non_finite", b'{"device_id": "d", "seq": 0, "ts": 0, "fs": 250, "samples": [1, NaN]}',
     None, ("samples[1]", "nan")),
    ("non_finite", b'{"device_id": "d", "seq": 0, "ts": Infinity, "fs": 250, "samples": [1]}',
     None, ("ts", "inf")),
    ("non_finite", b'{"device_id": "d", "seq": 0, "ts": 0, "fs": -Infinity, "samples": [1]}',
     None, ("fs", "inf")),
    ("non_finite", _raw(_doc(samples=[1, 10**400])), None, ("samples[1]", "too large")),
    ("non_finite", _raw(_doc(ts=10**400)), None, ("ts", "too large")),
    ("non_finite", _patch(_binary_frame(), HEADER + 8, "<f", float("inf")), BINARY,
     ("samples[2]", "inf")),
    ("non_finite", _patch(_binary_frame(), 18, "<d", float("nan")), BINARY, ("ts", "nan")),
    ("non_finite", _patch(_binary_frame(), 26, "<d", float("nan")), BINARY, ("fs", "nan")),
    ("unknown_encoding", _raw(_doc()), [("content-type", b"text/csv")],
     ("text/csv", "application/json", SAMPLES_CONTENT_TYPE.decode())),
    ("wrong_shape", _raw(_doc(samples="1,2,3")), None, ("samples", "list", "str")),
    ("wrong_shape", _raw(_doc(samples={"a": 1})), None, ("samples", "list", "dict")),
    ("wrong_shape", _raw(_doc(samples=[1, [2, 3]])), None, ("samples[1]", "nested", "flat")),
    ("wrong_shape", _binary_frame()[:20], BINARY, ("shorter", f"{HEADER}-byte header")),
    ("wrong_shape", _binary_frame() + b"x", BINARY, ("header announces",)),
    ("not_numeric", _raw(_doc(samples=[1, "2"])), None, ("samples[1]", "str", "'2'")),
    ("not_numeric", _raw(_doc(samples=[1, None])), None, ("samples[1]", "NoneType")),
    ("not_numeric", _raw(_doc(samples=[1.0, 2.0, True])), None, ("samples[2]", "bool")),
    ("wrong_length", _raw(_doc(samples=[0] * (MAX_CHUNK_SAMPLES + 1))), None,
     (f"{MAX_CHUNK_SAMPLES + 1}", f"{MAX_CHUNK_SAMPLES}", "shorter chunks")),
    ("wrong_length", encode_chunk_binary("d", 0, 0.0, 250.0, []), BINARY, ("got 0 samples",)),
    ("wrong_length", encode_chunk_binary("d", 0, 0.0, 250.0, np.zeros(MAX_CHUNK_SAMPLES + 1)),
     BINARY, (f"1-{MAX_CHUNK_SAMPLES}",)),
    ("not_utf8", _binary_frame()[:-1] + b"\xff", BINARY, ("device_id", "UTF-8")),
]  # fmt: skip


@pytest.mark.parametrize(("reason", "value", "headers", "words"), REJECTS)
def test_each_reject_has_its_reason_and_a_clear_detail(
    reason: str, value: bytes | None, headers: Any, words: tuple[str, ...]
) -> None:
    exc = _reject(value, headers)
    assert exc.reason == reason, exc.detail
    for word in words:
        assert word in exc.detail, (word, exc.detail)


def test_too_large_is_refused_unread() -> None:
    value = _raw(_doc(samples=[0.5] * 1000))
    assert _reject(value, max_bytes=len(value) - 1).reason == "too_large"
    assert decode_chunk(value, max_bytes=len(value)).samples.size == 1000
    frame = encode_chunk_binary("d", 0, 0.0, 250.0, np.zeros(10))
    exc = _reject(frame, BINARY, max_bytes=10)
    assert exc.reason == "too_large" and f"{len(frame)} bytes" in exc.detail


def test_every_reason_is_reachable_and_listed() -> None:
    reached = {r[0] for r in REJECTS} | {"too_large"}
    assert reached == set(SAMPLES_REJECT_REASONS)
    assert not set(STAGE_REASONS) & set(SAMPLES_REJECT_REASONS)
    # Every reason a dead letter of ecg.samples.dlq can carry is in the docs' table.
    doc = (Path(__file__).parents[3] / "docs" / "messages.md").read_text()
    table = doc.split("## `ecg.samples.dlq`", 1)[1]
    for reason in (*SAMPLES_REJECT_REASONS, *STAGE_REASONS):
        assert f"| `{reason}` |" in table, reason


def test_json_round_trip_is_exact_and_extra_fields_are_ignored() -> None:
    samples = RNG.normal(size=63) * 1e3
    chunk = decode_chunk(encode_chunk_json("bed-12", 4, 1795736000.5, 360.0, samples))
    assert chunk.device_id == "bed-12" and chunk.seq == 4
    assert chunk.ts == 1795736000.5 and chunk.fs == 360.0
    assert chunk.samples.dtype == np.float64 and chunk.samples.shape == (63,)
    np.testing.assert_array_equal(chunk.samples, samples)
    extra = decode_chunk(_raw(_doc(lead="II", units="mV")))
    np.testing.assert_array_equal(extra.samples, [0.1, -0.2, 1.5, 3.0])


def test_json_and_binary_give_the_same_chunk() -> None:
    samples = RNG.normal(size=250).astype(np.float32)  # binary rounds to float32
    for device in ("dev-0001", "bett-ü-7"):
        via_json = decode_chunk(*samples_message(device, 9, 1.25, 250.0, samples))
        via_binary = decode_chunk(*samples_message(device, 9, 1.25, 250.0, samples, binary=True))
        assert via_json.samples.dtype == via_binary.samples.dtype == np.float64
        a, b = via_json, via_binary
        assert (a.device_id, a.seq, a.ts, a.fs) == (b.device_id, b.seq, b.ts, b.fs)
        np.testing.assert_array_equal(a.samples, b.samples)
    rounded = decode_chunk(*samples_message("d", 0, 0.0, 250.0, [0.1], binary=True)).samples
    assert rounded[0] == float(np.float32(0.1)) != 0.1


def test_messages_and_content_type_dispatch() -> None:
    value, headers = samples_message("d", 0, 0.0, 250.0, [1.0])
    assert headers == [] and value.startswith(b"{")
    value, headers = samples_message("d", 0, 0.0, 250.0, [1.0], binary=True)
    assert headers == [("content-type", SAMPLES_CONTENT_TYPE)] and value[:2] == b"ES"
    # Header names are case-insensitive, parameters dropped; application/json is JSON.
    assert decode_chunk(_raw(_doc()), [("Content-Type", b"application/json; charset=utf-8")])
    assert decode_chunk(value, [("CONTENT-TYPE", b"Application/X-ECG-Samples")]).seq == 0
    # A binary frame sent without the header is read as JSON, and refused as such.
    assert _reject(value).reason in {"not_utf8", "invalid_json"}


def test_binary_frame_layout_is_as_documented() -> None:
    frame = encode_chunk_binary("ab", 3, 2.5, 500.0, [1.0, 2.0])
    assert HEADER == 34
    assert len(frame) == HEADER + 8 + 2
    assert struct.unpack_from("<2sBBIHQdd", frame) == (b"ES", 1, 0, 2, 2, 3, 2.5, 500.0)
    assert struct.unpack_from("<2f", frame, HEADER) == (1.0, 2.0)
    assert frame[-2:] == b"ab"


def test_limits_are_inclusive() -> None:
    for fs in (MIN_FS, MAX_FS):
        for binary in (False, True):
            chunk = decode_chunk(*samples_message("d", 0, 0.0, fs, [1.0], binary=binary))
            assert chunk.fs == fs
    big = np.zeros(MAX_CHUNK_SAMPLES)
    for binary in (False, True):
        value, headers = samples_message("d", 2**62, 0.0, 1000.0, big, binary=binary)
        assert len(value) <= DEFAULT_MAX_CHUNK_BYTES
        assert decode_chunk(value, headers).samples.size == MAX_CHUNK_SAMPLES
    # Integers beyond int64 are numbers too (float64), as in the window codec.
    assert decode_chunk(_raw(_doc(samples=[2**70, 1]))).samples[0] == float(2**70)


def test_chunk_is_a_frozen_value() -> None:
    chunk = decode_chunk(_raw(_doc()))
    assert isinstance(chunk, SampleChunk)
    with pytest.raises(AttributeError):
        chunk.seq = 8  # type: ignore[misc]


# --- the JSON Schema ----------------------------------------------------------------------


def test_schema_limits_are_the_codec_constants() -> None:
    props = SCHEMA["properties"]
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["required"] == ["device_id", "seq", "ts", "fs", "samples"]
    assert props["samples"]["minItems"] == 1
    assert props["samples"]["maxItems"] == MAX_CHUNK_SAMPLES
    assert props["fs"]["minimum"] == MIN_FS and props["fs"]["maximum"] == MAX_FS
    assert SAMPLES_FRAME.min_samples == 1 and SAMPLES_FRAME.max_samples == MAX_CHUNK_SAMPLES
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(
    "doc",
    [
        _doc(),
        _doc(samples=[512] * MAX_CHUNK_SAMPLES, fs=MAX_FS),
        _doc(samples=[-1.5], fs=MIN_FS, seq=0, ts=0),
        _doc(device_id="x" * 256, units="adc"),
    ],
)
def test_valid_examples_pass_the_schema_and_decode(doc: dict[str, Any]) -> None:
    jsonschema.validate(doc, SCHEMA)
    chunk = decode_chunk(_raw(doc))
    assert (chunk.device_id, chunk.seq, chunk.fs) == (doc["device_id"], doc["seq"], doc["fs"])
    np.testing.assert_array_equal(chunk.samples, doc["samples"])


@pytest.mark.parametrize(
    "doc",
    [
        _doc(samples=[]),
        _doc(samples=[0] * (MAX_CHUNK_SAMPLES + 1)),
        _doc(fs=MIN_FS - 0.5),
        _doc(fs=MAX_FS + 0.5),
        _doc(seq=-1),
        _doc(fs=_DROP),
        _doc(samples=[1, "2"]),
        _doc(device_id=""),
    ],
)
def test_what_the_schema_refuses_the_codec_refuses(doc: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
    _reject(_raw(doc))
