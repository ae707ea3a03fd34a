"""Compact binary encoding of ``ecg.windows`` messages (``content-type: application/x-ecg-window``).

A frame is a fixed 24-byte little-endian header, the samples as float32, then the device id::

    offset  size  field
         0     2  magic      b"EW"
         2     1  version    1
         3     1  flags      0 (reserved; frames with other values are rejected)
         4     2  n_samples  uint16, must be 140
         6     2  id_len     uint16, bytes of the UTF-8 device id (1-256)
         8     8  seq        uint64, < 2**63
        16     8  ts         float64, epoch seconds (finite)
        24  4*n   samples    float32[n_samples] (finite)
    24+4n  id_len device_id  UTF-8, no NUL bytes

A 140-sample window with an 8-byte id is 592 bytes (JSON: ~1.8 KB). The encoding is selected per
message by the ``content-type`` header (:mod:`pipeline.decode`), so JSON and binary producers can
share a topic. Reject reasons reuse the JSON codes (see ``docs/binary-encoding.md``).

Decoding is vectorised: frames of equal length are joined and viewed as one NumPy structured
array, all checks run per column, and only the rows that fail take a per-frame path that names
the exact problem (:meth:`FrameLayout.parse`, which the sample-chunk frame of
:mod:`pipeline.samples` shares).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detector.validation import WINDOW_LENGTH
from pipeline.codec import DEFAULT_MAX_MESSAGE_BYTES, DecodedBatch, screen_values, utf8_text
from pipeline.errors import InvalidMessageError

__all__ = [
    "BINARY_CONTENT_TYPE",
    "HEADER_SIZE",
    "MAGIC",
    "VERSION",
    "WINDOW_FRAME",
    "Frame",
    "FrameLayout",
    "binary_message",
    "decode_binary_batch",
    "encode_window_binary",
]

#: Value of the ``content-type`` header that selects this codec.
BINARY_CONTENT_TYPE = b"application/x-ecg-window"
MAGIC = b"EW"
VERSION = 1
_MAX_ID = 256
_MAX_SEQ = 2**63 - 1


@dataclass(frozen=True)
class Frame:
    """The checked fields of one binary frame (:meth:`FrameLayout.parse`).

    Attributes
    ----------
    device_id : str
    seq : int
    ts : float
    extra : tuple of float
        The layout's header fields after ``ts`` (the chunk frame's ``fs``), unchecked.
    samples : ndarray, shape (n,), float32, finite (a read-only view of the frame)
    """

    device_id: str
    seq: int
    ts: float
    extra: tuple[float, ...]
    samples: np.ndarray


@dataclass(frozen=True)
class FrameLayout:
    """A binary frame family: magic, header layout and how many samples a frame may hold.

    Every frame is ``header``, ``float32[n_samples]`` samples, then the UTF-8 device id; the
    header starts ``magic, version, flags, n_samples, id_len, seq, ts`` (any integer widths)
    and may add fields (``extra``). The window frame and the sample-chunk frame
    (:mod:`pipeline.samples`) share these checks and their reject reasons.
    """

    magic: bytes
    header: struct.Struct
    min_samples: int
    max_samples: int

    def pack(
        self,
        device_id: str,
        seq: int,
        ts: float,
        samples: Sequence[float] | np.ndarray,
        *extra: float,
    ) -> bytes:
        """One frame (any sample count is encoded; :meth:`parse` checks it)."""
        ident = device_id.encode("utf-8")
        arr = np.ascontiguousarray(samples, dtype="<f4").ravel()
        head = self.header.pack(
            self.magic, VERSION, 0, arr.size, len(ident), int(seq), float(ts), *map(float, extra)
        )
        return head + arr.tobytes() + ident

    def parse(self, value: bytes) -> Frame:
        """Check one frame and return its fields.

        Raises
        ------
        InvalidMessageError
            ``wrong_shape`` (size), ``invalid_value`` (magic, version, flags, id length, seq,
            NUL in the id), ``wrong_length`` (sample count), ``non_finite`` (ts, a sample),
            ``not_utf8`` (the id).
        """
        size = self.header.size
        if len(value) < size:
            raise InvalidMessageError(
                "wrong_shape", f"value: {len(value)} bytes is shorter than the {size}-byte header"
            )
        magic, version, flags, n, id_len, seq, ts, *extra = self.header.unpack_from(value)
        if magic != self.magic:
            raise InvalidMessageError("invalid_value", f"magic: {magic!r} is not {self.magic!r}")
        if version != VERSION or flags != 0:
            raise InvalidMessageError(
                "invalid_value", f"version/flags: {version}/{flags}; this worker reads {VERSION}/0"
            )
        if not self.min_samples <= n <= self.max_samples:
            want = (
                f"{self.min_samples}"
                if self.min_samples == self.max_samples
                else f"{self.min_samples}-{self.max_samples}"
            )
            raise InvalidMessageError("wrong_length", f"samples: got {n} samples, expected {want}")
        if not 1 <= id_len <= _MAX_ID:
            raise InvalidMessageError(
                "invalid_value", f"device_id: {id_len} bytes; must be 1-{_MAX_ID} bytes"
            )
        if len(value) != size + 4 * n + id_len:
            raise InvalidMessageError(
                "wrong_shape",
                f"value: {len(value)} bytes, but the header announces "
                f"{size + 4 * n + id_len} ({n} samples, {id_len}-byte id)",
            )
        if seq > _MAX_SEQ:
            raise InvalidMessageError("invalid_value", f"seq: {seq} must be < 2**63")
        if not np.isfinite(ts):
            raise InvalidMessageError("non_finite", f"ts: {ts!r} is not finite")
        samples = np.frombuffer(value, dtype="<f4", count=n, offset=size)
        bad = np.flatnonzero(~np.isfinite(samples))
        if len(bad):
            raise InvalidMessageError(
                "non_finite", f"samples[{bad[0]}]: {float(samples[bad[0]])!r} is not finite"
            )
        ident = value[size + 4 * n :]
        if b"\x00" in ident:
            raise InvalidMessageError("invalid_value", "device_id: contains a NUL byte")
        return Frame(utf8_text(ident, "device_id"), seq, ts, tuple(extra), samples)


#: The window frame: the header's ``struct`` format is ``"<2sBBHHQd"``.
WINDOW_FRAME = FrameLayout(MAGIC, struct.Struct("<2sBBHHQd"), WINDOW_LENGTH, WINDOW_LENGTH)
HEADER_SIZE = WINDOW_FRAME.header.size  # 24
_FRAME = HEADER_SIZE + 4 * WINDOW_LENGTH


def encode_window_binary(device_id: str, seq: int, ts: float, samples: Sequence[float]) -> bytes:
    """Encode one window as a binary frame (what producers send with the binary header).

    Parameters
    ----------
    device_id : str
        1-256 bytes of UTF-8.
    seq : int
        Per-device sequence number, ``0 <= seq < 2**63``.
    ts : float
        Epoch seconds when the window ended.
    samples : sequence of float
        The window (any length is encoded; the worker accepts 140).
    """
    return WINDOW_FRAME.pack(device_id, seq, ts, samples)


def binary_message(
    device_id: str, seq: int, ts: float, samples: Sequence[float]
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """``(value, headers)`` of one binary window message (the replay tool's ``encode`` hook)."""
    return encode_window_binary(device_id, seq, ts, samples), [
        ("content-type", BINARY_CONTENT_TYPE)
    ]


def _dtype(id_len: int) -> np.dtype:
    return np.dtype(
        [
            ("magic", "S2"),
            ("version", "u1"),
            ("flags", "u1"),
            ("n", "<u2"),
            ("id_len", "<u2"),
            ("seq", "<u8"),
            ("ts", "<f8"),
            ("samples", "<f4", (WINDOW_LENGTH,)),
            ("id", f"V{id_len}"),
        ]
    )


def _check_one(value: bytes) -> InvalidMessageError:
    """The precise problem of one frame that failed the vectorised checks."""
    try:
        WINDOW_FRAME.parse(value)
    except InvalidMessageError as exc:
        return exc
    return InvalidMessageError("invalid_value", "value: frame rejected")  # not reached


def _decode_group(
    values: list[bytes], pos: list[int], out: DecodedBatch, rows: list[np.ndarray]
) -> None:
    """Decode frames that all have the same length (one structured view)."""
    size = len(values[0])
    id_len = size - _FRAME
    if not 1 <= id_len <= _MAX_ID:
        for p, v in zip(pos, values, strict=True):
            exc = _check_one(v)
            out.rejected.append((p, exc.reason, exc.detail))
        return
    arr = np.frombuffer(b"".join(values), dtype=_dtype(id_len))
    samples = arr["samples"]
    ok = (
        (arr["magic"] == MAGIC)
        & (arr["version"] == VERSION)
        & (arr["flags"] == 0)
        & (arr["n"] == WINDOW_LENGTH)
        & (arr["id_len"] == id_len)
        & (arr["seq"] <= _MAX_SEQ)
        & np.isfinite(arr["ts"])
        & np.isfinite(samples).all(axis=1)
    )
    ids = arr["id"].tobytes()
    device_ids: list[str | None] = []
    for i in range(len(arr)):
        raw = ids[i * id_len : (i + 1) * id_len]
        try:
            device_ids.append(raw.decode("utf-8") if b"\x00" not in raw else None)
        except UnicodeDecodeError:
            device_ids.append(None)
    good = ok & np.fromiter((d is not None for d in device_ids), dtype=bool, count=len(arr))
    keep = np.flatnonzero(good)
    for i in np.flatnonzero(~good).tolist():
        exc = _check_one(values[i])
        out.rejected.append((pos[i], exc.reason, exc.detail))
    if len(keep) == 0:
        return
    out.index += [pos[i] for i in keep]
    out.device_id += [device_ids[i] for i in keep]  # type: ignore[misc]
    out.seq += arr["seq"][keep].astype(np.int64).tolist()
    out.ts += arr["ts"][keep].tolist()
    rows.append(samples[keep])


def decode_binary_batch(
    values: Sequence[bytes | None], max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> DecodedBatch:
    """Decode a micro-batch of binary window frames (the contract of
    :func:`pipeline.codec.decode_batch`, for this encoding).

    Parameters
    ----------
    values : sequence of bytes or None
        Raw Kafka message values, one frame each.
    max_bytes : int
        Size limit of a frame (:func:`pipeline.codec.screen_values`).

    Returns
    -------
    DecodedBatch
        Positions refer to ``values``; windows are float32, shape (n_valid, 140).
    """
    out = DecodedBatch()
    groups: dict[int, tuple[list[int], list[bytes]]] = {}
    for pos in screen_values(values, max_bytes, out.rejected):
        value: bytes = values[pos]  # type: ignore[assignment]  # screened: not None
        g = groups.setdefault(len(value), ([], []))
        g[0].append(pos)
        g[1].append(value)
    rows: list[np.ndarray] = []
    for pos_list, vals in groups.values():
        _decode_group(vals, pos_list, out, rows)
    if rows:
        windows = np.concatenate(rows) if len(rows) > 1 else rows[0]
        out.windows = np.ascontiguousarray(windows, dtype=np.float32)
        if len(groups) > 1:  # restore input order across length groups
            order = np.argsort(np.asarray(out.index), kind="stable")
            out.take(order.tolist())
            out.windows = out.windows[order]
    out.rejected.sort()
    return out
