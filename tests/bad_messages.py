"""A catalogue of malformed ``ecg.windows`` messages and the reason each must be rejected with.

Shared by the codec unit tests and the bad-input test against the real broker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pipeline.codec import DEFAULT_MAX_MESSAGE_BYTES

__all__ = ["BAD_MESSAGES", "FLAT_MESSAGES", "BadMessage", "window_doc"]

N = 140


def window_doc(device_id: str = "dev-bad", seq: int = 1, n: int = N, **over: object) -> dict:
    """A valid window document (overridable), samples 0.0, 0.01, …"""
    doc: dict = {
        "device_id": device_id,
        "seq": seq,
        "ts": 1_700_000_000.5,
        "samples": [round(i * 0.01, 4) for i in range(n)],
    }
    doc.update(over)
    return doc


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()  # stdlib: writes NaN/Infinity literals as Python does


def _with(**over: object) -> bytes:
    return _json(window_doc(**over))


def _without(key: str) -> bytes:
    doc = window_doc()
    del doc[key]
    return _json(doc)


def _sample(i: int, value: object) -> bytes:
    samples: list = list(window_doc()["samples"])
    samples[i] = value
    return _json(window_doc(samples=samples))


@dataclass(frozen=True)
class BadMessage:
    """One malformed message: its value, optional headers, and the expected reject reason."""

    name: str
    value: bytes | None
    reason: str
    headers: tuple[tuple[str, bytes], ...] = ()


BAD_MESSAGES: tuple[BadMessage, ...] = (
    BadMessage("invalid_json", b'{"device_id": "dev-bad", "seq": 1, ', "invalid_json"),
    BadMessage("trailing_garbage", _json(window_doc()) + b" }{", "invalid_json"),
    BadMessage("deeply_nested", b"[" * 5000 + b"]" * 5000, "invalid_json"),
    BadMessage("len_139", _with(n=139), "wrong_length"),
    BadMessage("len_141", _with(n=141), "wrong_length"),
    BadMessage("nan_sample", _sample(3, float("nan")), "non_finite"),
    BadMessage("infinity_sample", _sample(4, float("inf")), "non_finite"),
    BadMessage("minus_infinity_sample", _sample(5, float("-inf")), "non_finite"),
    BadMessage("beyond_float32", _sample(6, 1e39), "non_finite"),
    BadMessage("nan_ts", _with(ts=float("nan")), "non_finite"),
    BadMessage("string_sample", _sample(7, "0.5"), "not_numeric"),
    BadMessage("null_sample", _sample(8, None), "not_numeric"),
    BadMessage("bool_sample", _sample(9, True), "not_numeric"),
    BadMessage("nested_samples", _with(samples=[[0.1] * N]), "wrong_shape"),
    BadMessage("samples_string", _with(samples="0.1,0.2"), "wrong_shape"),
    BadMessage("samples_object", _with(samples={"0": 0.1}), "wrong_shape"),
    BadMessage("samples_empty", _with(samples=[]), "empty"),
    BadMessage("missing_device_id", _without("device_id"), "missing_field"),
    BadMessage("missing_samples", _without("samples"), "missing_field"),
    BadMessage("missing_seq", _without("seq"), "missing_field"),
    BadMessage("device_id_int", _with(device_id=17), "wrong_type"),
    BadMessage("seq_string", _with(seq="3"), "wrong_type"),
    BadMessage("seq_float", _with(seq=1.5), "wrong_type"),
    BadMessage("seq_bool", _with(seq=True), "wrong_type"),
    BadMessage("ts_string", _with(ts="yesterday"), "wrong_type"),
    # An integer literal too large for a float: must be a reject, not an exception.
    BadMessage("ts_huge_int", _with(ts=10**400), "non_finite"),
    # A lone UTF-16 surrogate (valid JSON escape) cannot be written back out as UTF-8.
    BadMessage("device_id_surrogate", _with(device_id="dev-\ud800"), "invalid_value"),
    BadMessage("negative_seq", _with(seq=-1), "invalid_value"),
    BadMessage("empty_device_id", _with(device_id=""), "invalid_value"),
    BadMessage("json_array", _json([window_doc()]), "wrong_type"),
    BadMessage("json_scalar", b"42", "wrong_type"),
    BadMessage("empty_value", b"", "empty"),
    BadMessage("null_value", None, "empty"),
    BadMessage("not_utf8", b'{"device_id": "\xff\xfe", "seq": 1}', "not_utf8"),
    BadMessage(
        "too_large",
        _with(pad="x" * (300 * 1024)),
        "too_large",
    ),
    BadMessage(
        "unknown_content_type",
        _json(window_doc()),
        "unknown_encoding",
        (("content-type", b"application/x-protobuf"),),
    ),
)

assert len(BAD_MESSAGES[-2].value or b"") > 4 * DEFAULT_MAX_MESSAGE_BYTES

#: Windows that decode but that the detector refuses: flat lines in any units.
FLAT_MESSAGES: tuple[BadMessage, ...] = (
    BadMessage("flat_zero", _with(samples=[0.0] * N), "flat_window"),
    BadMessage("flat_offset", _with(samples=[2048] * N), "flat_window"),
)
