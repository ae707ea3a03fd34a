"""Window decoding (every reject reason) and the dead-letter record format."""

from __future__ import annotations

import base64
import hashlib
import json

import numpy as np
import orjson
import pytest

from pipeline.codec import (
    DLQ_VALUE_CAP,
    REJECT_REASONS,
    decode_batch,
    decode_window,
    dlq_record,
    encode_json,
    encode_window_json,
)
from pipeline.decode import decode_records
from pipeline.errors import InvalidMessageError
from pipeline.processor import InRecord
from tests.bad_messages import BAD_MESSAGES, BadMessage, window_doc


def _records(msgs: list[BadMessage]) -> list[InRecord]:
    return [InRecord("t", 0, i, None, m.value, list(m.headers) or None) for i, m in enumerate(msgs)]


def test_catalogue_covers_every_reason() -> None:
    assert {m.reason for m in BAD_MESSAGES} == set(REJECT_REASONS)


@pytest.mark.parametrize("bad", BAD_MESSAGES, ids=lambda b: b.name)
def test_each_bad_message_alone(bad: BadMessage) -> None:
    out = decode_records(_records([bad]), 64 * 1024)
    assert out.index == [] and len(out.windows) == 0
    [(pos, reason, detail)] = out.rejected
    assert (pos, reason) == (0, bad.reason), detail
    assert detail


def test_bad_messages_interleaved_with_valid_ones() -> None:
    """One batch: the vectorised path must keep every valid row and reject exactly the rest."""
    valid = [
        BadMessage(f"ok{i}", json.dumps(window_doc(f"dev-{i}", i)).encode(), "")
        for i in range(len(BAD_MESSAGES))
    ]
    msgs = [m for pair in zip(valid, BAD_MESSAGES, strict=True) for m in pair]
    out = decode_records(_records(msgs), 64 * 1024)
    assert out.index == list(range(0, len(msgs), 2))
    assert out.device_id == [f"dev-{i}" for i in range(len(valid))]
    assert out.seq == list(range(len(valid)))
    assert out.windows.shape == (len(valid), 140) and out.windows.dtype == np.float32
    assert [(p, r) for p, r, _ in out.rejected] == [
        (2 * i + 1, b.reason) for i, b in enumerate(BAD_MESSAGES)
    ]


def test_valid_window_values() -> None:
    doc = window_doc("dev-true-false", 3)  # boolean-looking text takes the exact path
    device, seq, ts, samples = decode_window(json.dumps(doc).encode())
    assert (device, seq, ts) == ("dev-true-false", 3, doc["ts"])
    np.testing.assert_array_equal(samples, np.asarray(doc["samples"], dtype=np.float32))


def test_integer_samples_and_ts_are_accepted() -> None:
    doc = window_doc(ts=1_700_000_000, samples=list(range(140)))
    _, _, ts, samples = decode_window(json.dumps(doc).encode())
    assert ts == 1_700_000_000.0 and samples[-1] == 139.0


def test_decode_window_raises_with_reason() -> None:
    with pytest.raises(InvalidMessageError) as exc:
        decode_window(json.dumps(window_doc(n=139)).encode())
    assert exc.value.reason == "wrong_length" and "139" in exc.value.detail


def test_max_bytes_is_configurable() -> None:
    value = json.dumps(window_doc()).encode()
    assert decode_batch([value], max_bytes=len(value)).rejected == []
    [(_, reason, _)] = decode_batch([value], max_bytes=len(value) - 1).rejected
    assert reason == "too_large"


@pytest.mark.parametrize(
    "header",
    [
        ("content-type", b"application/json"),
        ("Content-Type", b" Application/JSON "),
        ("content-type", b"application/json; charset=utf-8"),
    ],
)
def test_json_content_types(header: tuple[str, bytes]) -> None:
    rec = InRecord("t", 0, 0, None, json.dumps(window_doc()).encode(), [header])
    out = decode_records([rec], 64 * 1024)
    assert out.index == [0] and out.rejected == []


def test_encode_window_json_round_trips() -> None:
    x = np.linspace(-1, 1, 140)
    value = encode_window_json("dev-1", 5, 12.5, x)
    device, seq, ts, samples = decode_window(value)
    assert (device, seq, ts) == ("dev-1", 5, 12.5)
    np.testing.assert_allclose(samples, x.astype(np.float32))


def _dlq(value: bytes | None, key: bytes | None = b"k") -> dict:
    return dlq_record(
        reason="invalid_json",
        detail="value: broken",
        topic="ecg.windows",
        partition=3,
        offset=42,
        key=key,
        value=value,
        rejected_at=123.5,
    )


def test_dlq_record_format() -> None:
    rec = _dlq(b"\xff{not json")
    assert rec == {
        "reason": "invalid_json",
        "detail": "value: broken",
        "topic": "ecg.windows",
        "partition": 3,
        "offset": 42,
        "key_b64": base64.b64encode(b"k").decode(),
        "value_b64": base64.b64encode(b"\xff{not json").decode(),
        "value_size": len(b"\xff{not json"),
        "value_sha256": hashlib.sha256(b"\xff{not json").hexdigest(),
        "value_truncated": False,
        "rejected_at": 123.5,
    }
    assert orjson.loads(encode_json(rec)) == rec


def test_dlq_record_of_missing_key_and_value() -> None:
    rec = _dlq(None, key=None)
    assert rec["key_b64"] is None and rec["value_b64"] is None
    assert rec["value_size"] == 0 and rec["value_truncated"] is False


def test_dlq_record_truncates_huge_values() -> None:
    value = bytes(range(256)) * (DLQ_VALUE_CAP // 256 * 3 + 1)
    rec = _dlq(value)
    assert rec["value_truncated"] is True
    assert rec["value_size"] == len(value)
    assert rec["value_sha256"] == hashlib.sha256(value).hexdigest()  # of the whole original
    assert base64.b64decode(rec["value_b64"]) == value[:DLQ_VALUE_CAP]
    assert len(encode_json(rec)) < 1024 * 1024  # fits the broker's default message limit


def test_dlq_record_at_the_cap_is_whole() -> None:
    value = b"x" * DLQ_VALUE_CAP
    rec = _dlq(value)
    assert rec["value_truncated"] is False and base64.b64decode(rec["value_b64"]) == value
