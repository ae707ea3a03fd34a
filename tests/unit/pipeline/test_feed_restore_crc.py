"""The read-back on an assignment (``pipeline.feed_restore``, kafka-python) checks record CRCs
with the C ``crc32c`` extension: kafka-python's pure-Python fallback made reading back the
newest 40,000 windows take ~10x longer (docs/performance.md, "Two processes")."""

from __future__ import annotations

import zlib

from kafka.record import util


def test_kafka_python_checks_crcs_with_the_c_extension() -> None:
    assert util.crc32c_c is not None, "pip install crc32c (a dependency of ecgwatch)"
    data = b"123456789"
    # The CRC-32C check value of "123456789" (RFC 3720, B.4), not zlib's CRC-32.
    assert util.crc32c_c(data) == util.calc_crc32c(memoryview(data))
    assert util.calc_crc32c(memoryview(data)) == 0xE3069283 != zlib.crc32(data)
