"""Wire formats of ``ecg.windows`` messages and of the records the worker writes.

Decoding is done a micro-batch at a time. The fast path parses each message with simdjson
and copies its samples straight into the batch's float64 buffer (no Python float objects),
accepting only what it can check cheaply and is certain of; every other message takes the
precise path: parse each message, then validate all sample arrays with one NumPy conversion,
falling back to a per-message check (which names the exact problem) only for the rows that
fail. Both paths give the same :class:`DecodedBatch` (reasons, details, float32 windows bit for
bit; ``tests/unit/pipeline/test_json_fast_path.py``). See
``pipeline/schemas/window.schema.json`` for the JSON message format.
"""

from __future__ import annotations

import base64
import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import simdjson

from detector import InvalidWindowError
from detector.validation import FLAT_WINDOW, REASONS, WINDOW_LENGTH, validate_window
from pipeline.errors import InvalidMessageError

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "REJECT_REASONS",
    "SCORING_ERROR",
    "SCORING_REASONS",
    "DecodedBatch",
    "decode_batch",
    "decode_window",
    "dlq_record",
    "encode_json",
    "encode_window_json",
    "envelope_fields",
    "json_number",
    "parse_json",
    "screen_values",
    "utf8_text",
]

#: Messages larger than this are rejected as ``too_large`` (a 140-sample JSON window is ~2 KB).
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024

#: Every reason code decoding can reject a message with: the transport's and message's own,
#: then the window checks' (``detector.validation.REASONS``, defined once there).
REJECT_REASONS = (
    "too_large",
    "not_utf8",
    "invalid_json",
    "wrong_type",
    "missing_field",
    "invalid_value",
    "unknown_encoding",
    *REASONS,
)

#: Reason codes given after decoding: the detector refused the window (``flat_window``) or
#: failed on it (``scoring_error``).
SCORING_ERROR = "scoring_error"
SCORING_REASONS = (FLAT_WINDOW, SCORING_ERROR)

_REQUIRED = ("device_id", "seq", "ts", "samples")


@dataclass
class DecodedBatch:
    """Result of decoding a micro-batch of raw message values.

    Attributes
    ----------
    index : list of int
        Position (in the input) of each valid window.
    windows : ndarray, shape (n_valid, 140), float32
    device_id, seq, ts : lists aligned with ``index``.
    rejected : list of (position, reason, detail)
    """

    index: list[int] = field(default_factory=list)
    windows: np.ndarray = field(
        default_factory=lambda: np.empty((0, WINDOW_LENGTH), dtype=np.float32)
    )
    device_id: list[str] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)

    def take(self, rows: Sequence[int]) -> None:
        """Keep the fields of ``rows`` only, in that order (``windows`` is left as it is).

        Parameters
        ----------
        rows : sequence of int
            Indices into ``index`` (not input positions).
        """
        self.index = [self.index[i] for i in rows]
        self.device_id = [self.device_id[i] for i in rows]
        self.seq = [self.seq[i] for i in rows]
        self.ts = [self.ts[i] for i in rows]

    @classmethod
    def combine(cls, parts: Sequence[tuple[Sequence[int] | None, DecodedBatch]]) -> DecodedBatch:
        """One batch of several decoded parts, valid windows and rejections in input order.

        Parameters
        ----------
        parts : sequence of (positions, DecodedBatch)
            Each part's positions refer to its own input, whose items stand at ``positions``
            of the whole input (``None``: they already refer to the whole input).

        Returns
        -------
        DecodedBatch
            Windows of one device keep their input order, whichever part decoded them.
        """
        out = cls()
        rows = []
        for positions, part in parts:
            at = (lambda j: j) if positions is None else positions.__getitem__
            out.index += [at(j) for j in part.index]
            out.device_id += part.device_id
            out.seq += part.seq
            out.ts += part.ts
            out.rejected += [(at(j), r, d) for j, r, d in part.rejected]
            if part.index:
                rows.append(part.windows)
        out.rejected.sort()
        if len(rows) == 1:  # each part is in input order already: nothing to interleave
            out.windows = rows[0]
        elif rows:
            windows = np.concatenate(rows)
            order = np.argsort(np.asarray(out.index), kind="stable").tolist()
            out.take(order)
            out.windows = np.ascontiguousarray(windows[order])
        return out


def utf8_text(raw: bytes, where: str, fix: str = "") -> str:
    """``raw`` decoded as UTF-8, or ``not_utf8`` naming ``where`` and the first bad byte.

    Parameters
    ----------
    raw : bytes
    where : str
        The field (``value``, ``device_id``), named in the error.
    fix : str
        Appended to the detail (``"; send UTF-8 JSON"``).
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessageError(
            "not_utf8", f"{where}: byte {exc.start} is not valid UTF-8{fix}"
        ) from None


def parse_json(value: bytes) -> Any:
    """Parse a message value as JSON, or raise :class:`InvalidMessageError` (``not_utf8``,
    ``invalid_json``); NaN/Infinity literals parse, so that the checks reject them as
    ``non_finite``."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as fast_exc:
        text = utf8_text(value, "value", "; send UTF-8 JSON")
        # orjson rejects the NaN/Infinity literals that Python's json.dumps emits; parse
        # those with the stdlib so the window is rejected as `non_finite`, which is what it is.
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise InvalidMessageError("invalid_json", f"value: {fast_exc}") from None


def envelope_fields(doc: Any, required: tuple[str, ...] = _REQUIRED) -> tuple[str, int, float, Any]:
    """The checked ``device_id``, ``seq`` and ``ts`` of a parsed message, and its unchecked
    ``samples``; ``required`` lists every field the message must have (the chunk codec,
    :mod:`pipeline.samples`, adds ``fs``, which it checks itself)."""
    if not isinstance(doc, dict):
        raise InvalidMessageError(
            "wrong_type", f"value: expected a JSON object, got {type(doc).__name__}"
        )
    missing = [k for k in required if k not in doc]
    if missing:
        raise InvalidMessageError(
            "missing_field", f"{missing[0]}: required field is missing (need {required})"
        )
    device_id, seq, ts = doc["device_id"], doc["seq"], doc["ts"]
    if not isinstance(device_id, str):
        raise InvalidMessageError(
            "wrong_type", f"device_id: expected a string, got {type(device_id).__name__}"
        )
    if not device_id or len(device_id) > 256:
        raise InvalidMessageError(
            "invalid_value", f"device_id: {device_id[:40]!r} must be 1-256 characters"
        )
    try:  # a lone surrogate (JSON "\ud800") decodes but cannot be written back as UTF-8
        device_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidMessageError(
            "invalid_value",
            f"device_id: {device_id[:40]!r} has a lone UTF-16 surrogate at {exc.start}; "
            "send valid Unicode",
        ) from None
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise InvalidMessageError(
            "wrong_type", f"seq: expected an integer, got {type(seq).__name__} {seq!r}"
        )
    if seq < 0:
        raise InvalidMessageError("invalid_value", f"seq: {seq} is negative; seq must be >= 0")
    return device_id, seq, json_number("ts", ts, "epoch seconds"), doc["samples"]


def json_number(name: str, value: Any, meaning: str, type_reason: str = "wrong_type") -> float:
    """A JSON number as a finite float (booleans refused), or the precise error.

    Parameters
    ----------
    name : str
        The field, named in the error.
    value : Any
        As parsed.
    meaning : str
        What the number is (``"epoch seconds"``), for the detail of a wrong type.
    type_reason : str
        The reason code of a wrong type (a sample's is ``not_numeric``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidMessageError(
            type_reason,
            f"{name}: expected {meaning} (a number), got {type(value).__name__} {repr(value)[:40]}",
        )
    try:
        out = float(value)
    except OverflowError:  # an integer literal beyond float64 (e.g. 10**400)
        raise InvalidMessageError(
            "non_finite", f"{name}: the integer is too large for a float"
        ) from None
    if not math.isfinite(out):
        raise InvalidMessageError("non_finite", f"{name}: {value!r} is not finite")
    return out


def decode_window(
    value: bytes | None, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> tuple[str, int, float, np.ndarray]:
    """Decode and validate one JSON window message.

    Returns
    -------
    (device_id, seq, ts, samples) with samples a float32 vector of 140 values.

    Raises
    ------
    InvalidMessageError
        With a reason from :data:`REJECT_REASONS`.
    """
    batch = decode_batch([value], max_bytes)
    if batch.rejected:
        _, reason, detail = batch.rejected[0]
        raise InvalidMessageError(reason, detail)
    return batch.device_id[0], batch.seq[0], batch.ts[0], batch.windows[0]


def screen_values(
    values: Sequence[bytes | None], max_bytes: int, rejected: list[tuple[int, str, str]]
) -> list[int]:
    """Positions of the values worth parsing; the others go to ``rejected``.

    The transport's checks, the same for every encoding: a message needs a value, and one
    above ``max_bytes`` is rejected unread (``too_large``) rather than parsed.

    Parameters
    ----------
    values : sequence of bytes or None
        Raw Kafka message values.
    max_bytes : int
        The size limit.
    rejected : list of (position, reason, detail)
        Where the refused values are appended (in position order).

    Returns
    -------
    list of int
        Positions of the non-empty values within the limit, in order.
    """
    ok: list[int] = []
    for pos, value in enumerate(values):
        if not value:
            rejected.append((pos, "empty", "value: the message has no value"))
        elif len(value) > max_bytes:
            rejected.append(
                (pos, "too_large", f"value: {len(value)} bytes exceeds the limit of {max_bytes}")
            )
        else:
            ok.append(pos)
    return ok


def decode_batch(
    values: Sequence[bytes | None],
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    *,
    precise: bool = False,
) -> DecodedBatch:
    """Decode a micro-batch of JSON window messages.

    Parameters
    ----------
    values : sequence of bytes or None
        Raw Kafka message values.
    max_bytes : int
        Larger values are rejected as ``too_large`` without being parsed.
    precise : bool, default False
        Skip the simdjson fast path: every message takes the precise path. The result is
        the same either way (only the cost differs); for tests and ``benchmarks.decode_cost``.

    Returns
    -------
    DecodedBatch
    """
    rejected: list[tuple[int, str, str]] = []
    positions = screen_values(values, max_bytes, rejected)
    if precise:
        out = DecodedBatch()
        _decode_precise(values, positions, out)
    else:
        out = _decode_fast(values, positions)
    out.rejected += rejected
    out.rejected.sort()
    return out


def _decode_precise(
    values: Sequence[bytes | None], positions: list[int], out: DecodedBatch
) -> None:
    """The precise path for the messages at ``positions``: every field checked in Python,
    the samples through :func:`_validate_samples`; results and rejects go to ``out``."""
    samples, raw = _parse(values, positions, out)
    if samples:
        _keep_valid(out, _validate_samples(samples, raw))


#: One simdjson parser per thread: a parser's documents are only valid until its next parse.
_PARSERS = threading.local()

#: Largest magnitude the fast path takes: every integer up to it is exact in float64 (so the
#: float64 -> float32 rounding equals NumPy's int64 -> float32 one), and it is far inside the
#: float32 range (so no value can be refused as beyond it). Larger values take the precise path.
_FAST_MAX_ABS = float(2**53)


def _parser() -> simdjson.Parser:
    parser: simdjson.Parser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = simdjson.Parser()
    return parser


def _fast_fields(parser: simdjson.Parser, value: bytes) -> tuple[str, int, float, Any] | None:
    """The fields of one message if it is certainly a valid window's, else None.

    Checks only the common case, cheaply: an object (first byte ``{``: simdjson skips a
    UTF-8 BOM that the precise path refuses) with exactly the four fields, ``device_id`` a
    1-256 character ASCII string, ``seq`` an int >= 0, ``ts`` an int or a finite float, and
    ``samples`` a flat array (the only ``[`` in the message) of 140 numbers, copied out as
    float64 bytes. Anything else (a parse error, NaN/Infinity literals, booleans, other
    types, lengths or keys, duplicate keys, nesting) returns None: the precise path decides.
    The simdjson proxies die when this returns, before the parser's next parse.
    """
    if value[0] != 0x7B or value.find(b"[", value.find(b"[") + 1) != -1:  # "{", one "["
        return None
    try:
        doc = parser.parse(value)
    except (ValueError, RuntimeError):  # invalid JSON, UTF-8 (a ValueError), a big integer
        return None
    if type(doc) is not simdjson.Object or len(doc) != len(_REQUIRED):
        return None
    try:  # 4 fields, but a duplicate key leaves one of these missing
        device_id, seq, ts, samples = (
            doc["device_id"],
            doc["seq"],
            doc["ts"],
            doc["samples"],
        )
    except KeyError:
        return None
    if (
        type(device_id) is not str
        or not 0 < len(device_id) <= 256
        or not device_id.isascii()
        or type(seq) is not int
        or seq < 0
        or type(samples) is not simdjson.Array
        or len(samples) != WINDOW_LENGTH
    ):
        return None
    if type(ts) is int:
        ts = float(ts)
    elif type(ts) is not float or not math.isfinite(ts):
        return None
    try:
        buf = samples.as_buffer(of_type="d")
    except TypeError:  # a string, null, boolean or object among the samples
        return None
    return device_id, seq, ts, buf


def _decode_fast(values: Sequence[bytes | None], positions: list[int]) -> DecodedBatch:
    """The fast path for the messages at ``positions``; those it is not certain of take the
    precise path, and the two parts are merged in position order."""
    parser = _parser()
    slow: list[int] = []
    bufs: list[Any] = []
    out = DecodedBatch()
    for pos in positions:
        got = _fast_fields(parser, values[pos])  # type: ignore[arg-type]  # screened
        if got is None:
            slow.append(pos)
            continue
        out.index.append(pos)
        out.device_id.append(got[0])
        out.seq.append(got[1])
        out.ts.append(got[2])
        bufs.append(got[3])
    if bufs:
        f64 = np.frombuffer(b"".join(bufs), dtype=np.float64).reshape(len(bufs), WINDOW_LENGTH)
        if max(f64.max(), -f64.min()) > _FAST_MAX_ABS:  # rare: find the rows
            ok = np.asarray((np.abs(f64) <= _FAST_MAX_ABS).all(axis=1))
            slow = sorted(slow + [out.index[i] for i in np.flatnonzero(~ok)])
            out.take(np.flatnonzero(ok).tolist())
            f64 = f64[ok]
        out.windows = f64.astype(np.float32)
    if not slow:
        return out
    precise = DecodedBatch()
    _decode_precise(values, slow, precise)
    return DecodedBatch.combine([(None, out), (None, precise)])


def _parse(
    values: Sequence[bytes | None], positions: list[int], out: DecodedBatch
) -> tuple[list[Any], list[bytes]]:
    """Parse the messages at ``positions``: their fields go to ``out`` (rejects too); returns
    the still unchecked sample lists and the raw bytes they came from."""
    samples: list[Any] = []
    raw: list[bytes] = []
    for pos in positions:
        value: bytes = values[pos]  # type: ignore[assignment]  # screened: not None
        try:
            device_id, seq, ts, window = envelope_fields(parse_json(value))
        except InvalidMessageError as exc:
            out.rejected.append((pos, exc.reason, exc.detail))
            continue
        out.index.append(pos)
        out.device_id.append(device_id)
        out.seq.append(seq)
        out.ts.append(ts)
        samples.append(window)
        raw.append(value)
    return samples, raw


def _keep_valid(out: DecodedBatch, checked: list[np.ndarray | InvalidMessageError]) -> None:
    """Keep the parsed messages whose samples passed (``checked`` is aligned with
    ``out.index``); dead-letter the others."""
    keep = []
    rows = []
    for i, row in enumerate(checked):
        if isinstance(row, InvalidMessageError):
            out.rejected.append((out.index[i], row.reason, row.detail))
        else:
            keep.append(i)
            rows.append(row)
    out.take(keep)
    if rows:
        out.windows = np.ascontiguousarray(np.stack(rows), dtype=np.float32)


def _validate_samples(
    samples: list[Any], raw: list[bytes]
) -> list[np.ndarray | InvalidMessageError]:
    """Vectorised check of all sample lists; precise per-row errors only where needed."""
    arr: np.ndarray | None = None
    # JSON booleans would silently become 1.0/0.0 in a float array: rows whose bytes
    # contain a boolean literal take the exact per-element path. Pre-filter with two
    # single-byte searches (memchr): no key of the format and no number contains "u" or
    # "f", while "true" and "false" do; the substring scans then run for few rows only.
    suspicious = [(b"u" in r or b"f" in r) and (b"true" in r or b"false" in r) for r in raw]
    if not any(suspicious):
        try:
            arr = np.array(samples)
        except (ValueError, TypeError, OverflowError):
            arr = None
    if (
        arr is not None
        and arr.ndim == 2
        and arr.shape[1] == WINDOW_LENGTH
        and arr.dtype.kind in "fi"
    ):
        with np.errstate(over="ignore"):  # values beyond float32 become inf: rejected below
            f32 = arr.astype(np.float32)
        ok = np.asarray(np.isfinite(f32).all(axis=1))
        if ok.all():
            return list(f32)
        return [f32[i] if ok[i] else _one(samples[i]) for i in range(len(f32))]
    return [_one(s) for s in samples]


def _one(samples: Any) -> np.ndarray | InvalidMessageError:
    try:
        return validate_window(samples)
    except InvalidWindowError as exc:
        return InvalidMessageError(exc.reason, str(exc))


def encode_json(record: dict[str, Any]) -> bytes:
    """Serialise an output record (scores, alerts, dead letters) as compact JSON."""
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_window_json(
    device_id: str, seq: int, ts: float, samples: Sequence[float] | np.ndarray
) -> bytes:
    """Encode one window in the documented JSON format (what producers send)."""
    return orjson.dumps(
        {
            "device_id": device_id,
            "seq": int(seq),
            "ts": float(ts),
            "samples": np.asarray(samples, dtype=np.float64),
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


#: Dead-letter copies of values above this are truncated (the original stays in the
#: source topic; its sha256 and size are recorded) so the DLQ record fits the broker limit.
DLQ_VALUE_CAP = 256 * 1024


def dlq_record(
    *,
    reason: str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    rejected_at: float,
) -> dict[str, Any]:
    """The dead-letter record for one rejected message (format: ``docs/messages.md``)."""
    import hashlib

    raw = value or b""
    truncated = len(raw) > DLQ_VALUE_CAP
    return {
        "reason": reason,
        "detail": detail,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key_b64": base64.b64encode(key).decode() if key is not None else None,
        "value_b64": base64.b64encode(raw[:DLQ_VALUE_CAP]).decode() if value is not None else None,
        "value_size": len(raw),
        "value_sha256": hashlib.sha256(raw).hexdigest(),
        "value_truncated": truncated,
        "rejected_at": rejected_at,
    }
