"""Wire formats of ``ecg.samples`` messages: chunks of a device's continuous ECG signal.

A device sends its signal in consecutive chunks (typically 0.25-2 s each), numbered by a
per-device ``seq``; the beat-extraction stage (``ecgwatch ingest``) decodes them with
:func:`decode_chunk`, one message at a time. Two encodings, selected per message by the
``content-type`` header as for windows (:mod:`pipeline.decode`): JSON (no header, or
``application/json``; ``pipeline/schemas/samples.schema.json``) and a binary frame
(:data:`SAMPLES_CONTENT_TYPE`; ``docs/binary-encoding.md``). Reject reasons are the window
codec's (:data:`pipeline.codec.REJECT_REASONS`); the reasons the stage gives for chunks that
decode but do not follow on (:data:`STAGE_REASONS`) are defined here too. Formats and
reasons: ``docs/messages.md``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from detector.beats import MAX_FS, MIN_FS
from pipeline.binary import FrameLayout
from pipeline.codec import (
    REJECT_REASONS,
    envelope_fields,
    json_number,
    parse_json,
    screen_values,
)
from pipeline.decode import JSON_CONTENT_TYPE, _content_type
from pipeline.errors import InvalidMessageError

__all__ = [
    "DEFAULT_MAX_CHUNK_BYTES",
    "FS_CHANGED",
    "INGEST_REJECT_REASONS",
    "MAX_CHUNK_SAMPLES",
    "SAMPLES_CONTENT_TYPE",
    "SAMPLES_FRAME",
    "SAMPLES_GAP",
    "SAMPLES_MAGIC",
    "SAMPLES_OUT_OF_ORDER",
    "SAMPLES_REJECT_REASONS",
    "SEQ_RESET",
    "STAGE_REASONS",
    "SampleChunk",
    "decode_chunk",
    "encode_chunk_binary",
    "encode_chunk_json",
    "samples_message",
]

#: Value of the ``content-type`` header that selects the binary chunk frame.
SAMPLES_CONTENT_TYPE = b"application/x-ecg-samples"

#: Most samples in one chunk (60 s at 1000 Hz); more are rejected as ``wrong_length``.
MAX_CHUNK_SAMPLES = 60_000

#: Chunks larger than this are rejected as ``too_large`` unread (60,000 JSON samples are
#: about 0.6-1 MB; the binary frame of as many, 240 KB).
DEFAULT_MAX_CHUNK_BYTES = 1024 * 1024

#: Every reason :func:`decode_chunk` can reject a chunk with: the window codec's codes (the
#: detector's ``flat_window`` and ``scoring_error`` are not among them: no scoring here).
SAMPLES_REJECT_REASONS: tuple[str, ...] = REJECT_REASONS

#: ``seq`` jumped forward (chunks are missing): the chunk is used and starts a new segment.
SAMPLES_GAP = "samples_gap"
#: ``seq`` is at or before the newest one already received for the device, and the chunk does
#: not start after that one ended (a re-sent or late chunk): the chunk is not used.
SAMPLES_OUT_OF_ORDER = "samples_out_of_order"
#: ``seq`` went back (e.g. to 0) but the chunk starts after the newest one ended: the device's
#: counter was reset (a reboot); the chunk is used and starts a new segment.
SEQ_RESET = "seq_reset"
#: ``fs`` differs from the device's segment: the chunk is used and starts a new segment at it.
FS_CHANGED = "fs_changed"
#: Reasons the beat-extraction stage gives for chunks that decoded but do not follow on.
STAGE_REASONS = (SAMPLES_GAP, SAMPLES_OUT_OF_ORDER, SEQ_RESET, FS_CHANGED)
#: Every reason a chunk is dead-lettered with (``ecg_ingest_rejected_total``'s ``reason``).
INGEST_REJECT_REASONS: tuple[str, ...] = (*SAMPLES_REJECT_REASONS, *STAGE_REASONS)

SAMPLES_MAGIC = b"ES"
#: The binary chunk frame: header ``"<2sBBIHQdd"`` (34 bytes: magic, version, flags,
#: n_samples uint32, id_len uint16, seq uint64, ts float64, fs float64), then
#: ``float32[n_samples]`` and the UTF-8 device id.
SAMPLES_FRAME = FrameLayout(SAMPLES_MAGIC, struct.Struct("<2sBBIHQdd"), 1, MAX_CHUNK_SAMPLES)

_REQUIRED = ("device_id", "seq", "ts", "fs", "samples")


@dataclass(frozen=True)
class SampleChunk:
    """One decoded, checked chunk of a device's signal.

    Attributes
    ----------
    device_id : str
        1-256 characters.
    seq : int
        Per-device chunk counter, ``>= 0``; chunk ``seq + 1`` follows chunk ``seq``.
    ts : float
        Epoch seconds of the chunk's first sample (finite).
    fs : float
        Sampling rate in Hz, ``MIN_FS <= fs <= MAX_FS`` (:mod:`detector.beats`).
    samples : ndarray, shape (n,), float64
        ``1 <= n <=`` :data:`MAX_CHUNK_SAMPLES` finite values in any linear unit (mV, ADC counts).
    """

    device_id: str
    seq: int
    ts: float
    fs: float
    samples: np.ndarray


def decode_chunk(
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]] | None = None,
    max_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> SampleChunk:
    """Decode and check one ``ecg.samples`` message.

    Parameters
    ----------
    value : bytes or None
        The raw Kafka message value.
    headers : sequence of (str, bytes), optional
        The message's headers; ``content-type`` selects the encoding (none: JSON).
    max_bytes : int
        Larger values are rejected as ``too_large`` without being parsed.

    Returns
    -------
    SampleChunk

    Raises
    ------
    InvalidMessageError
        With a reason from :data:`SAMPLES_REJECT_REASONS` and a detail naming the field, the
        value received and the fix.
    """
    ctype = _content_type(headers)
    decode = _DECODERS.get(ctype)
    if decode is None:
        raise InvalidMessageError(
            "unknown_encoding",
            f"header content-type: {ctype.decode(errors='replace')!r} is not one of "
            f"{sorted(c.decode() for c in _DECODERS)}",
        )
    rejected: list[tuple[int, str, str]] = []
    if not screen_values([value], max_bytes, rejected):
        _, reason, detail = rejected[0]
        raise InvalidMessageError(reason, detail)
    return decode(value)  # type: ignore[arg-type]  # screened: not None


def _decode_json(value: bytes) -> SampleChunk:
    doc = parse_json(value)
    device_id, seq, ts, samples = envelope_fields(doc, _REQUIRED)
    fs = _checked_fs(json_number("fs", doc["fs"], "the sampling rate in Hz"))
    return SampleChunk(device_id, seq, ts, fs, _json_samples(samples))


def _decode_binary(value: bytes) -> SampleChunk:
    frame = SAMPLES_FRAME.parse(value)
    (fs,) = frame.extra
    return SampleChunk(
        frame.device_id, frame.seq, frame.ts, _checked_fs(fs), frame.samples.astype(np.float64)
    )


_DECODERS = {JSON_CONTENT_TYPE: _decode_json, SAMPLES_CONTENT_TYPE: _decode_binary}


def _checked_fs(fs: float) -> float:
    """A finite ``fs`` within the range the beat detector works in."""
    if not math.isfinite(fs):
        raise InvalidMessageError("non_finite", f"fs: {fs!r} is not finite")
    if not MIN_FS <= fs <= MAX_FS:
        raise InvalidMessageError(
            "invalid_value",
            f"fs: {fs!r} Hz is outside {MIN_FS:g}..{MAX_FS:g} Hz (detector.beats MIN_FS.."
            "MAX_FS); send the signal's sampling rate in Hz",
        )
    return fs


def _json_samples(samples: Any) -> np.ndarray:
    """The ``samples`` list of a JSON chunk as float64, or the precise error."""
    if not isinstance(samples, list):
        raise InvalidMessageError(
            "wrong_shape", f"samples: expected a list of numbers, got {type(samples).__name__}"
        )
    n = len(samples)
    if n == 0:
        raise InvalidMessageError(
            "empty", "samples: the list is empty; send at least one sample per chunk"
        )
    if n > MAX_CHUNK_SAMPLES:
        raise InvalidMessageError(
            "wrong_length",
            f"samples: got {n} values, at most {MAX_CHUNK_SAMPLES} (MAX_CHUNK_SAMPLES) fit in "
            "one chunk; send shorter chunks",
        )
    # The common case at once: a flat list of ints and floats (NumPy would take booleans and
    # numeric strings too when asked for float64, so it infers the type and it is checked).
    if not any(type(v) is bool for v in samples):
        try:
            arr = np.array(samples)
        except (ValueError, OverflowError):  # ragged nesting
            arr = None
        if arr is not None and arr.ndim == 1 and arr.dtype.kind in "fi":
            out = arr.astype(np.float64)
            if np.isfinite(out).all():
                return out
    out = np.empty(n, dtype=np.float64)
    for i, v in enumerate(samples):  # the exact check, naming the first bad element
        if isinstance(v, (list, dict)):
            raise InvalidMessageError(
                "wrong_shape",
                f"samples[{i}]: nested {type(v).__name__}; samples must be a flat list of numbers",
            )
        out[i] = json_number(f"samples[{i}]", v, "a sample", "not_numeric")
    return out  # e.g. integers beyond int64, which NumPy keeps as objects


def encode_chunk_json(
    device_id: str, seq: int, ts: float, fs: float, samples: Sequence[float] | np.ndarray
) -> bytes:
    """Encode one chunk in the documented JSON format (what producers send).

    Parameters
    ----------
    device_id : str
        Also the message key.
    seq : int
        Per-device chunk counter, from 0.
    ts : float
        Epoch seconds of the first sample.
    fs : float
        Sampling rate, Hz.
    samples : sequence of float
        The chunk's samples (encoded as given; :func:`decode_chunk` checks them).
    """
    return orjson.dumps(
        {
            "device_id": device_id,
            "seq": int(seq),
            "ts": float(ts),
            "fs": float(fs),
            "samples": np.asarray(samples, dtype=np.float64).ravel(),
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def encode_chunk_binary(
    device_id: str, seq: int, ts: float, fs: float, samples: Sequence[float] | np.ndarray
) -> bytes:
    """Encode one chunk as a binary frame (samples rounded to float32); the parameters are
    :func:`encode_chunk_json`'s. Send it with ``content-type:`` :data:`SAMPLES_CONTENT_TYPE`."""
    return SAMPLES_FRAME.pack(device_id, seq, ts, samples, fs)


def samples_message(
    device_id: str,
    seq: int,
    ts: float,
    fs: float,
    samples: Sequence[float] | np.ndarray,
    *,
    binary: bool = False,
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """``(value, headers)`` of one chunk message: JSON without a header, or the binary frame
    with its ``content-type`` header."""
    if binary:
        return encode_chunk_binary(device_id, seq, ts, fs, samples), [
            ("content-type", SAMPLES_CONTENT_TYPE)
        ]
    return encode_chunk_json(device_id, seq, ts, fs, samples), []
