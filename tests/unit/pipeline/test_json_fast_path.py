"""The simdjson fast path of ``decode_batch`` gives exactly what the precise path gives.

Same positions, reasons, details, device ids, seqs and ts (values and Python types), and the
float32 windows bit for bit: over the bad-message catalogue mixed with valid windows, over edge
cases where simdjson and orjson differ, and over seeded random mutations of valid messages.

Not covered, by design: a window of integers only, one beyond 2**53. Both modes send it to the
precise path, whose float32 rounding of such an integer already depends on the rest of its
batch (NumPy makes the batch int64 or float64, e.g. 2**53 + 2**29 + 1 rounds up from int64 and
down through float64); the fuzz's integer rows use large values that round alike either way.
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import numpy as np
import orjson
import pytest

from pipeline import codec
from pipeline.codec import DecodedBatch, decode_batch, encode_window_json
from tests.bad_messages import BAD_MESSAGES, FLAT_MESSAGES, window_doc

N = 140


def _both(values: list[bytes | None], max_bytes: int = 64 * 1024) -> DecodedBatch:
    """Decode ``values`` on both paths, assert they agree, return the fast path's result."""
    fast = decode_batch(values, max_bytes)
    precise = decode_batch(values, max_bytes, precise=True)
    assert fast.index == precise.index
    assert fast.rejected == precise.rejected
    assert fast.device_id == precise.device_id
    assert [type(d) for d in fast.device_id] == [str] * len(fast.index)
    assert fast.seq == precise.seq
    assert [type(s) for s in fast.seq] == [type(s) for s in precise.seq]
    assert [type(t) for t in fast.ts] == [float] * len(fast.index) == [type(t) for t in precise.ts]
    assert (
        np.array(fast.ts).view(np.uint64).tolist() == np.array(precise.ts).view(np.uint64).tolist()
    )
    assert fast.windows.dtype == precise.windows.dtype == np.float32
    assert fast.windows.shape == precise.windows.shape == (len(fast.index), N)
    assert fast.windows.flags.c_contiguous
    assert fast.windows.view(np.uint32).tobytes() == precise.windows.view(np.uint32).tobytes()
    return fast


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _valid(i: int) -> bytes:
    x = np.sin(np.arange(N) / 7.0 + i) * (i + 1)
    return encode_window_json(f"dev-{i}", i, 1_700_000_000.25 + i, x)


def _samples_text(items: list[str]) -> bytes:
    return b'{"device_id":"dev-t","seq":1,"ts":1.5,"samples":[' + ",".join(items).encode() + b"]}"


_FLOATS = [repr(round(i * 0.01, 4)) for i in range(N)]

#: Inputs where simdjson and the precise path could part ways: each must decode the same.
EDGE_CASES: dict[str, bytes] = {
    "utf8_bom": b"\xef\xbb\xbf" + _dumps(window_doc()),
    "leading_space": b" " + _dumps(window_doc()),
    "trailing_newline": _dumps(window_doc()) + b"\n",
    "duplicate_seq": _dumps(window_doc()).replace(b'"seq": 1', b'"seq": 1, "seq": 2'),
    "duplicate_samples": _dumps(window_doc()).replace(b'"device_id"', b'"samples": [1], "x"'),
    "extra_key": _dumps(window_doc(extra=1)),
    "three_keys_and_dupe": _dumps(window_doc()).replace(b'"seq": 1', b'"ts": 2'),
    "nested_last": _samples_text([*_FLOATS[:-1], "[0.5]"]),
    "nested_empty_first": _samples_text(["[]", *_FLOATS[:-1]]),
    "nested_pair": _samples_text([*_FLOATS[:-2], "[0.5, 0.25]"]),
    "bracket_in_device_id": _dumps(window_doc(device_id="dev[1]")),
    "non_ascii_device_id": _dumps(window_doc(device_id="dév-ü")),
    "non_ascii_raw_utf8": orjson.dumps(window_doc(device_id="dév-ü")),
    "escaped_device_id": _dumps(window_doc()).replace(b'"dev-bad"', b'"dev\\u0041\\n"'),
    "nul_in_device_id": _dumps(window_doc(device_id="a\x00b")),
    "device_id_256": _dumps(window_doc(device_id="d" * 256)),
    "device_id_257": _dumps(window_doc(device_id="d" * 257)),
    "seq_u64_max": _dumps(window_doc(seq=2**64 - 1)),
    "seq_i64_max": _dumps(window_doc(seq=2**63 - 1)),
    "seq_beyond_u64": _dumps(window_doc(seq=2**64)),
    "seq_zero": _dumps(window_doc(seq=0)),
    "seq_minus_zero": _samples_text(_FLOATS).replace(b'"seq":1', b'"seq":-0'),
    "seq_exponent": _samples_text(_FLOATS).replace(b'"seq":1', b'"seq":1e2'),
    "ts_int": _dumps(window_doc(ts=1_700_000_000)),
    "ts_u64": _dumps(window_doc(ts=2**64 - 1)),
    "ts_beyond_u64": _dumps(window_doc(ts=2**64)),
    "ts_negative": _dumps(window_doc(ts=-1.5)),
    "ts_1e308": _dumps(window_doc(ts=1e308)),
    "ts_1e400": _samples_text(_FLOATS).replace(b'"ts":1.5', b'"ts":1e400'),
    "ts_null": _dumps(window_doc(ts=None)),
    "ts_true": _dumps(window_doc(ts=True)),
    "samples_int": _dumps(window_doc(samples=list(range(-70, 70)))),
    "samples_minus_zero_int": _samples_text(["-0"] * (N - 1) + ["1"]),
    "samples_minus_zero_float": _samples_text(["-0.0"] * (N - 1) + ["1.5"]),
    "samples_mixed_int_float": _samples_text(["1", "2.5"] * (N // 2)),
    "samples_2p53": _dumps(window_doc(samples=[2**53, *range(N - 1)])),
    "samples_2p53_plus_1": _dumps(window_doc(samples=[2**53 + 1, *range(N - 1)])),
    "samples_2p53_plus_1_float": _dumps(window_doc(samples=[2**53 + 1, *[0.5] * (N - 1)])),
    "samples_i64_max": _dumps(window_doc(samples=[2**63 - 1, *range(N - 1)])),
    "samples_u64_max": _dumps(window_doc(samples=[2**64 - 1, *range(N - 1)])),
    "samples_beyond_u64": _dumps(window_doc(samples=[2**64, *range(N - 1)])),
    "samples_f32_max": _samples_text(["3.4028234663852886e38", *_FLOATS[1:]]),
    "samples_f32_rounds_to_max": _samples_text(["3.4028235e38", *_FLOATS[1:]]),
    "samples_f32_rounds_to_inf": _samples_text(["3.4028236e38", *_FLOATS[1:]]),
    "samples_1e300": _samples_text(["1e300", *_FLOATS[1:]]),
    "samples_1e400": _samples_text(["1e400", *_FLOATS[1:]]),
    "samples_1e-400": _samples_text(["1e-400", *_FLOATS[1:]]),
    "samples_subnormal": _samples_text(["5e-324", "1e-45", *_FLOATS[2:]]),
    "samples_long_digits": _samples_text(["0.1000000000000000055511151231257827", *_FLOATS[1:]]),
    "samples_exponents": _samples_text(["1E2", "1e+2", "-1.5E-3", *_FLOATS[3:]]),
    "samples_leading_zero": _samples_text(["01", *_FLOATS[1:]]),
    "samples_trailing_comma": _samples_text([*_FLOATS, ""]),
    "samples_nan_literal": _samples_text(["NaN", *_FLOATS[1:]]),
    "samples_false": _samples_text([*_FLOATS[:-1], "false"]),
    "samples_object": _samples_text([*_FLOATS[:-1], "{}"]),
    "flat_ints": _dumps(window_doc(samples=[7] * N)),
    "lone_surrogate_in_key": _dumps(window_doc()).replace(b'"ts"', b'"\\udc00", "ts"'),
    "invalid_utf8_in_string": _dumps(window_doc()).replace(b"dev-bad", b"dev-\xc3("),
    "top_level_array_one_bracket": b'["device_id", "seq", "ts", "samples"]',
    "top_level_string": b'"{"',
}


def test_catalogue_mixed_with_valid_windows() -> None:
    catalogue = (*BAD_MESSAGES, *FLAT_MESSAGES)
    bad = [m.value for m in catalogue]
    valid = [_valid(i) for i in range(len(bad))]
    mixed = [v for pair in zip(valid, bad, strict=True) for v in pair]
    out = _both(mixed)
    # decode_batch reads values only: the header's reason and the detector's are not its own
    decodes = [
        i for i, m in enumerate(catalogue) if m.reason in ("unknown_encoding", "flat_window")
    ]
    assert out.index == sorted([*range(0, len(mixed), 2), *(2 * i + 1 for i in decodes)])
    assert [(p, r) for p, r, _ in out.rejected] == [
        (2 * i + 1, m.reason) for i, m in enumerate(catalogue) if i not in decodes
    ]
    _both(mixed[::-1])
    _both(bad)


@pytest.mark.parametrize(
    "value", [m.value for m in BAD_MESSAGES], ids=[m.name for m in BAD_MESSAGES]
)
def test_each_bad_message_alone(value: bytes | None) -> None:
    _both([value])


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_case(name: str) -> None:
    _both([EDGE_CASES[name]])
    _both([_valid(0), EDGE_CASES[name], _valid(1)])


def test_edge_cases_in_one_batch() -> None:
    values = [v for i, v in enumerate(EDGE_CASES.values()) for v in (v, _valid(i))]
    out = _both(values)
    assert out.index  # valid rows survive next to every edge case
    _both(list(EDGE_CASES.values()))


def test_max_bytes_applies_to_both() -> None:
    values = [_valid(0), _valid(1) + b" " * 100, None, b""]
    _both(values, max_bytes=len(values[0]) + 10)


def test_valid_windows_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    values = [_valid(i) for i in range(50)] + [_dumps(window_doc(f"d{i}", i)) for i in range(50)]

    def precise(*_: object) -> None:
        raise AssertionError("a valid window took the precise path")

    monkeypatch.setattr(codec, "_decode_precise", precise)
    out = decode_batch(values)
    assert out.index == list(range(100)) and out.rejected == []


def test_threads_have_their_own_parser() -> None:
    values = [_valid(i) for i in range(200)] + [m.value for m in BAD_MESSAGES]
    expected = decode_batch(values, precise=True)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                out = decode_batch(values)
                assert out.index == expected.index and out.rejected == expected.rejected
                assert np.array_equal(out.windows, expected.windows)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


# --- randomized equivalence -------------------------------------------------------------

_SPECIAL_VALUES: list[Any] = [
    True, False, None, "0.5", "", [], [1.0], {}, {"a": 1}, 0, -0.0, 1, -1, 1.5,
    2**31, 2**53, 2**53 + 1, -(2**53) - 1, 2**63, 2**64 - 1, 2**64, 10**30,
    1e39, -1e39, 1e300, 3.4028235e38, 3.4028236e38, 1e-320, float("nan"), float("inf"),
    float("-inf"), "dev", "x" * 300, "é", "\ud800",
]  # fmt: skip
_NUMBER_TEXTS = [
    "-0",
    "0e0",
    "1E-7",
    "123456789012345678",
    "9007199254740993",
    "1.7976931348623157e308",
]
_BYTES = b'{}[]:,"\\ -+.eE0123456789aflnrstuNIy\x00\x80\xff\t\n'


def _random_number_text(rng: random.Random) -> str:
    """A JSON number with many digits and an exponent: checks both parsers round alike."""
    if rng.random() < 0.2:
        return rng.choice(_NUMBER_TEXTS)
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25)))
    frac = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 25)))
    text = ("-" if rng.random() < 0.5 else "") + (digits.lstrip("0") or "0")
    if frac:
        text += "." + frac
    if rng.random() < 0.5:
        text += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randint(0, 45))
    return text


def _mutate_doc(rng: random.Random, doc: dict[str, Any]) -> bytes:
    kind = rng.randrange(8)
    key = rng.choice(["device_id", "seq", "ts", "samples"])
    if kind == 0:
        doc[key] = rng.choice(_SPECIAL_VALUES)
    elif kind == 1:
        del doc[key]
    elif kind == 2:
        doc[rng.choice(["extra", "Seq", key + " "])] = rng.choice(_SPECIAL_VALUES)
    elif kind == 3:
        n = rng.choice([0, 1, 139, 141, 280])
        doc["samples"] = (doc["samples"] * 3)[:n]
    elif kind == 4:
        doc["samples"][rng.randrange(N)] = rng.choice(_SPECIAL_VALUES)
    elif kind == 5:
        doc["samples"] = [int(x * 1000) for x in doc["samples"]]
        if rng.random() < 0.5:
            doc["samples"][rng.randrange(N)] = rng.choice([2**53 + 1, 2**60, -(2**62)])
    elif kind == 6:  # number texts that stress the float parsers
        items = [_random_number_text(rng) for _ in range(N)]
        text = json.dumps({k: v for k, v in doc.items() if k != "samples"})
        return (text[:-1] + ', "samples": [' + ", ".join(items) + "]}").encode()
    else:
        doc["device_id"] = rng.choice(
            ["a", "dev-" + str(rng.random()), "d" * rng.randint(250, 260)]
        )
    encoder = rng.choice([_dumps, lambda d: json.dumps(d, indent=1).encode()])
    return encoder(doc)


def _mutate_bytes(rng: random.Random, value: bytes) -> bytes:
    b = bytearray(value)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(b))
        op = rng.randrange(4)
        if op == 0:
            b[i] = rng.choice(_BYTES)
        elif op == 1:
            del b[i]
        elif op == 2:
            b.insert(i, rng.choice(_BYTES))
        else:
            del b[i:]
            if not b:
                b = bytearray(b"{")
    return bytes(b)


def _random_message(rng: random.Random, i: int) -> bytes | None:
    r = rng.random()
    if r < 0.3:
        return _valid(i)
    doc = window_doc(
        f"dev-{i}", i, samples=[round(rng.gauss(0, 2), rng.randint(1, 17)) for _ in range(N)]
    )
    if r < 0.65:
        return _mutate_doc(rng, doc)
    if r < 0.98:
        return _mutate_bytes(rng, rng.choice([_valid(i), _dumps(doc)]))
    return rng.choice([None, b""])


@pytest.mark.parametrize("seed", range(6))
def test_random_mutations_decode_alike(seed: int) -> None:
    rng = random.Random(seed)
    values = [_random_message(rng, i) for i in range(600)]
    start = 0
    while start < len(values):  # batches of varied sizes, mixed content
        size = rng.choice([1, 2, 7, 50, 200])
        _both(values[start : start + size])
        start += size
    out = _both(values)
    assert out.index and out.rejected  # the mix has both kinds
