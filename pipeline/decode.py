"""Per-message encoding dispatch: the ``content-type`` header selects the window codec.

Messages without the header are JSON (the documented default), so any producer that can write
a JSON string (kcat, kafka-python, …) works. Encodings can share one topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pipeline.codec import DecodedBatch, decode_batch

__all__ = ["CONTENT_TYPE_HEADER", "JSON_CONTENT_TYPE", "decode_records"]

CONTENT_TYPE_HEADER = "content-type"
JSON_CONTENT_TYPE = b"application/json"


class _Record(Protocol):
    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]] | None: ...


def _content_type(headers: Sequence[tuple[str, bytes]] | None) -> bytes:
    """The media type of the ``content-type`` header, lower case, parameters dropped
    (``application/json; charset=utf-8`` is JSON)."""
    if headers:
        for name, value in headers:
            if name.lower() == CONTENT_TYPE_HEADER:
                return bytes(value or b"").split(b";", 1)[0].strip().lower()
    return JSON_CONTENT_TYPE


def _decoders() -> dict[bytes, Any]:
    from pipeline.binary import BINARY_CONTENT_TYPE, decode_binary_batch

    return {JSON_CONTENT_TYPE: decode_batch, BINARY_CONTENT_TYPE: decode_binary_batch}


_DECODERS = _decoders()


def decode_records(records: Sequence[_Record], max_bytes: int) -> DecodedBatch:
    """Decode a micro-batch whose messages may use different encodings.

    Returns one :class:`DecodedBatch` whose positions refer to ``records``.
    """
    groups: dict[bytes, list[int]] = {}
    for i, rec in enumerate(records):
        groups.setdefault(_content_type(rec.headers), []).append(i)
    if len(groups) == 1:
        ctype, idx = next(iter(groups.items()))
        if ctype in _DECODERS:
            return _DECODERS[ctype]([r.value for r in records], max_bytes)  # type: ignore[no-any-return]
    unknown = DecodedBatch()
    parts: list[tuple[Sequence[int] | None, DecodedBatch]] = [(None, unknown)]
    for ctype, idx in groups.items():
        if ctype not in _DECODERS:
            for i in idx:
                unknown.rejected.append(
                    (
                        i,
                        "unknown_encoding",
                        f"header content-type: {ctype.decode(errors='replace')!r} is not one of "
                        f"{sorted(c.decode() for c in _DECODERS)}",
                    )
                )
            continue
        parts.append((idx, _DECODERS[ctype]([records[i].value for i in idx], max_bytes)))
    # In input order: one device's windows in two encodings must reach the alert policy in
    # the order they were sent.
    return DecodedBatch.combine(parts)
