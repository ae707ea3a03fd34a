"""The binary window encoding: round trip, per-message header dispatch, precise rejects."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from pipeline.binary import (
    BINARY_CONTENT_TYPE,
    HEADER_SIZE,
    binary_message,
    decode_binary_batch,
    encode_window_binary,
)
from pipeline.codec import decode_batch, encode_window_json
from pipeline.decode import decode_records
from pipeline.processor import InRecord

RNG = np.random.default_rng(0)


def _window() -> np.ndarray:
    return RNG.normal(size=140)


def test_round_trip_matches_json_decoding() -> None:
    w = _window()
    values = [encode_window_binary("dev-1", 7, 1700000000.25, w), b""]
    out = decode_binary_batch(values)
    assert out.index == [0]
    assert out.device_id == ["dev-1"] and out.seq == [7] and out.ts == [1700000000.25]
    assert out.windows.dtype == np.float32 and out.windows.shape == (1, 140)
    np.testing.assert_array_equal(out.windows[0], w.astype(np.float32))
    assert out.rejected == [(1, "empty", "value: the message has no value")]


def test_frame_layout_is_as_documented() -> None:
    frame = encode_window_binary("ab", 3, 2.5, np.zeros(140))
    assert len(frame) == HEADER_SIZE + 560 + 2
    assert struct.unpack_from("<2sBBHHQd", frame) == (b"EW", 1, 0, 140, 2, 3, 2.5)
    assert frame[-2:] == b"ab"


def test_mixed_lengths_keep_input_order() -> None:
    values = [encode_window_binary(d, i, 1.0, _window()) for i, d in enumerate(["a", "bbb", "cc"])]
    out = decode_binary_batch(values)
    assert out.index == [0, 1, 2]
    assert out.device_id == ["a", "bbb", "cc"]
    assert out.seq == [0, 1, 2]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: f[:10], "wrong_shape"),
        (lambda f: b"XX" + f[2:], "invalid_value"),
        (lambda f: f[:2] + b"\x02" + f[3:], "invalid_value"),
        (lambda f: f + b"x", "wrong_shape"),
        (
            lambda f: f[:HEADER_SIZE] + struct.pack("<f", float("nan")) + f[HEADER_SIZE + 4 :],
            "non_finite",
        ),
        (lambda f: f[:16] + struct.pack("<d", float("inf")) + f[24:], "non_finite"),
        (lambda f: f[:-1] + b"\xff", "not_utf8"),
        (lambda f: f[:-1] + b"\x00", "invalid_value"),
    ],
)
def test_bad_frames_are_rejected_with_a_reason(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    good = encode_window_binary("dev-9", 1, 1.0, _window())
    out = decode_binary_batch([good, mutate(good), good])
    assert out.index == [0, 2]
    assert [(p, r) for p, r, _ in out.rejected] == [(1, reason)]


def test_wrong_sample_count() -> None:
    out = decode_binary_batch([encode_window_binary("d", 1, 1.0, np.zeros(139))])
    assert out.rejected[0][1] == "wrong_length"


def test_too_large() -> None:
    out = decode_binary_batch([encode_window_binary("d", 1, 1.0, np.zeros(140))], max_bytes=100)
    assert out.rejected[0][1] == "too_large"


def test_transport_rejects_are_the_same_for_both_encodings() -> None:
    frame = encode_window_binary("d", 1, 1.0, np.zeros(140))
    values = [b"", None, frame + b"x" * 100, frame]
    binary = decode_binary_batch(values, max_bytes=len(frame))
    json = decode_batch(values, max_bytes=len(frame))
    assert binary.rejected[:3] == json.rejected[:3]
    assert [r[1] for r in binary.rejected] == ["empty", "empty", "too_large"]


def test_frames_of_several_lengths_come_back_in_input_order() -> None:
    ids = ["a", "bbb", "cc", "dddd", "e"]
    out = decode_binary_batch(
        [encode_window_binary(d, i, float(i), np.full(140, i)) for i, d in enumerate(ids)]
    )
    assert out.index == [0, 1, 2, 3, 4] and out.device_id == ids and out.seq == [0, 1, 2, 3, 4]
    assert out.ts == [0.0, 1.0, 2.0, 3.0, 4.0]
    np.testing.assert_array_equal(out.windows[:, 0], [0, 1, 2, 3, 4])


def test_header_selects_codec_per_message_on_a_shared_topic() -> None:
    w = _window()
    value, headers = binary_message("dev-b", 2, 5.0, w)
    assert headers == [("content-type", BINARY_CONTENT_TYPE)]
    records = [
        InRecord("t", 0, 0, b"dev-j", encode_window_json("dev-j", 1, 4.0, w)),
        InRecord("t", 0, 1, b"dev-b", value, headers),
        InRecord("t", 0, 2, b"x", b"junk", [("content-type", b"application/x-nope")]),
    ]
    out = decode_records(records, 64 * 1024)
    assert sorted(out.index) == [0, 1]
    by_pos = dict(zip(out.index, out.device_id, strict=True))
    assert by_pos == {0: "dev-j", 1: "dev-b"}
    assert [(p, r) for p, r, _ in out.rejected] == [(2, "unknown_encoding")]


def test_one_devices_windows_in_two_encodings_keep_their_input_order() -> None:
    # The alert policy ignores a window at or before the last one it saw: a batch handed over
    # grouped by encoding (all binary, then all JSON) would drop the earlier ones.
    records = []
    for seq in range(6):
        w = np.full(140, float(seq))
        if seq % 2:
            value, headers = binary_message("dev", seq, float(seq), w)
            records.append(InRecord("t", 0, seq, b"dev", value, headers))
        else:
            records.append(
                InRecord("t", 0, seq, b"dev", encode_window_json("dev", seq, float(seq), w))
            )
    out = decode_records(records, 64 * 1024)
    assert out.index == [0, 1, 2, 3, 4, 5] and out.seq == [0, 1, 2, 3, 4, 5]
    np.testing.assert_array_equal(out.windows[:, 0], [0, 1, 2, 3, 4, 5])
