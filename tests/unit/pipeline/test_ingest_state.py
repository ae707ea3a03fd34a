"""The beat-extraction stage's logic (pipeline.ingest_state), in-process: chunks of stitched
ECG5000 signals in, windows and dead letters out, commit offsets and restarts."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest

from detector.beats import DEFAULT_RECIPE
from pipeline.codec import decode_window
from pipeline.ingest_state import IngestProcessor
from pipeline.processor import InRecord, OutRecord
from pipeline.samples import (
    FS_CHANGED,
    SAMPLES_GAP,
    SAMPLES_OUT_OF_ORDER,
    SEQ_RESET,
    encode_chunk_json,
)
from pipeline.settings import DEFAULT_TOPICS
from training.continuous import stitch

T0 = 1_800_000_000.0
TOPIC = DEFAULT_TOPICS.samples


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def signals(ecg_arrays: tuple) -> dict[str, object]:
    x, y = ecg_arrays
    rng = np.random.default_rng(11)
    rows = rng.permutation(len(x))[:240]
    return {
        f"dev-{i}": stitch(x[part], np.where(y[part] == 1, 1, 3), seed=20 + i)
        for i, part in enumerate(np.array_split(rows, 3))
    }


def chunk_records(signals, chunk_s: float = 0.25, partitions: int = 2, seed: int = 0):
    """Every device's signal as chunks, interleaved as a broker would hand them out."""
    rng = np.random.default_rng(seed)
    per_dev = {}
    for d, s in signals.items():
        n = round(chunk_s * s.fs)
        cuts = range(0, s.signal.size, n)
        per_dev[d] = [(d, k, T0 + a / s.fs, s.fs, s.signal[a : a + n]) for k, a in enumerate(cuts)]
    order = [d for d in per_dev for _ in per_dev[d]]
    rng.shuffle(order)
    offsets = dict.fromkeys(range(partitions), 0)
    out, pos = [], dict.fromkeys(per_dev, 0)
    for d in order:
        dev, seq, ts, fs, samples = per_dev[d][pos[d]]
        pos[d] += 1
        p = int(dev.split("-")[1]) % partitions
        value = encode_chunk_json(dev, seq, ts, fs, samples)
        out.append(InRecord(TOPIC, p, offsets[p], dev.encode(), value, None))
        offsets[p] += 1
    return out


def processor(clock=None) -> IngestProcessor:
    return IngestProcessor(DEFAULT_RECIPE, DEFAULT_TOPICS, 1 << 20, 60.0, clock or Clock())


def windows(out: list[OutRecord]) -> dict[tuple[str, int], tuple[float, np.ndarray]]:
    got = {}
    for r in out:
        if r.topic == DEFAULT_TOPICS.windows:
            dev, seq, ts, w = decode_window(r.value)
            assert r.key == dev.encode()
            assert (dev, seq) not in got, "a beat was produced twice"
            got[(dev, seq)] = (ts, w)
    return got


def dead(out: list[OutRecord]) -> list[dict]:
    return [orjson.loads(r.value) for r in out if r.topic == DEFAULT_TOPICS.samples_dlq]


def run(proc: IngestProcessor, records, batch: int = 7) -> list[OutRecord]:
    out: list[OutRecord] = []
    for i in range(0, len(records), batch):
        out += proc.process(records[i : i + batch])
    return out


def test_every_beat_once_with_its_end_time_and_a_counter(signals) -> None:
    out = run(processor(), chunk_records(signals))
    assert not dead(out)
    got = windows(out)
    for d, s in signals.items():
        seqs = sorted(q for dev, q in got if dev == d)
        assert seqs == list(range(len(seqs)))  # the beat counter, from 0, no holes
        ends = np.array([got[(d, q)][0] for q in seqs])
        assert np.all(np.diff(ends) > 0)
        # Each window's ts is the end of a true beat (the next beat's start): most to 2
        # samples; where the R wave is not where ECG5000 put it, the cut moves with it.
        true_ends = T0 + s.ends / s.fs
        near = np.abs(ends[:, None] - true_ends[None, :]).min(axis=1)
        assert np.median(near) <= 3 / s.fs
        assert np.mean(near < 0.1) >= 0.99
        real = true_ends[s.counted]  # every real beat (not the lead-in/out pads) has its window
        assert np.mean(np.abs(real[:, None] - ends[None, :]).min(axis=1) < 0.1) >= 0.99


def test_chunk_length_and_interleaving_do_not_change_the_windows(signals) -> None:
    a = windows(run(processor(), chunk_records(signals, 0.25, seed=1)))
    b = windows(run(processor(), chunk_records(signals, 1.3, partitions=3, seed=2), batch=1))
    assert a.keys() == b.keys()
    for k, (ts, w) in a.items():
        assert b[k][0] == pytest.approx(ts, abs=1e-6)
        np.testing.assert_allclose(b[k][1], w, rtol=1e-6, atol=1e-6)


def _restart(signals, restore: bool):
    """A stage stopped half-way; a new one consumes from the committed offsets."""
    records = chunk_records(signals)
    whole = windows(run(processor(), records))
    first = processor()
    cut = len(records) // 2
    consumed = {}
    for r in records[:cut]:
        consumed[r.partition] = r.offset + 1
    before = run(first, records[:cut])
    commit = first.committable(consumed)
    assert all(commit[p] <= consumed[p] for p in consumed)
    assert any(commit[p] < consumed[p] for p in consumed)  # buffers hold chunks back
    produced = windows(before)
    second = processor()
    if restore:  # the newest window of each device, as read back from ecg.windows
        newest: dict[str, tuple[int, float]] = {}
        for (dev, seq), (ts, _) in produced.items():
            if seq >= newest.get(dev, (-1, 0.0))[0]:
                newest[dev] = (seq, ts)
        second.restore(newest)
    after = run(second, [r for r in records if r.offset >= commit[r.partition]])
    return whole, produced, after, second


def _ends(got, device: str) -> np.ndarray:
    return np.array(sorted(ts for (d, _), (ts, _) in got.items() if d == device))


def _missing(whole, got, device: str, within_s: float = 0.1) -> int:
    """Beats of the uninterrupted run with no window ending near them in ``got``."""
    a, b = _ends(whole, device), _ends(got, device)
    return int((np.abs(a[:, None] - b[None, :]).min(axis=1) > within_s).sum())


def test_restart_from_the_committable_offsets_loses_and_repeats_no_beat(signals) -> None:
    whole, produced, out, second = _restart(signals, restore=True)
    after = windows(out)
    assert second.counts.beats_skipped > 0  # beats found again were recognised
    assert not produced.keys() & after.keys()
    both = {**produced, **after}
    for d in signals:
        seqs = sorted(q for dev, q in both if dev == d)
        assert seqs == list(range(len(seqs)))  # the counter goes on where it stopped
        assert _missing(whole, both, d) == 0  # nothing lost
        ends = _ends(both, d)
        assert np.all(np.diff(ends) > DEFAULT_RECIPE.min_rr_s / 2)  # nothing twice


def test_without_the_restore_a_restart_repeats_beats_but_loses_none(signals) -> None:
    whole, produced, out, second = _restart(signals, restore=False)
    assert second.counts.beats_skipped == 0
    again = [decode_window(r.value) for r in out if r.topic == DEFAULT_TOPICS.windows]
    both = dict(produced)
    for dev, seq, ts, w in again:
        both[(dev, 10_000 + seq)] = (ts, w)
    for d in signals:
        assert _missing(whole, both, d) == 0


def _device_records(s, dev: str = "dev-x", chunk_s: float = 0.5):
    n = round(chunk_s * s.fs)
    return [
        InRecord(
            TOPIC,
            0,
            k,
            dev.encode(),
            encode_chunk_json(dev, k, T0 + a / s.fs, s.fs, s.signal[a : a + n]),
        )
        for k, a in enumerate(range(0, s.signal.size, n))
    ]


def test_a_gap_is_dead_lettered_and_a_new_segment_goes_on(signals) -> None:
    s = signals["dev-0"]
    records = _device_records(s)
    gap_at = len(records) // 2
    proc = processor()
    out = run(proc, records[:gap_at] + records[gap_at + 3 :])
    letters = dead(out)
    assert [d["reason"] for d in letters] == [SAMPLES_GAP]
    assert letters[0]["offset"] == records[gap_at + 3].offset
    assert f"{gap_at}..{gap_at + 2}" in letters[0]["detail"]
    seqs = sorted(q for _, q in windows(out))
    assert seqs == list(range(len(seqs)))  # the counter goes on across segments
    assert proc.counts.segments == 2
    # Beats after the gap are still found (all but the few around it).
    assert len(seqs) >= len(s.starts) - 1 - 3 * 0.5 / 0.6 - 3


def test_a_repeated_or_older_chunk_is_dead_lettered_and_not_used(signals) -> None:
    records = _device_records(signals["dev-1"])
    clean = windows(run(processor(), records))
    mixed = [*records[:10], records[4], records[9], *records[10:]]
    out = run(processor(), mixed)
    assert [d["reason"] for d in dead(out)] == [SAMPLES_OUT_OF_ORDER] * 2
    assert "is not newer than 9" in dead(out)[0]["detail"]
    assert windows(out).keys() == clean.keys()


def test_a_changed_fs_starts_a_new_segment_and_is_reported(signals) -> None:
    s = signals["dev-2"]
    records = _device_records(s)
    proc = processor()
    half = len(records) // 2
    out = run(proc, records[:half])
    resampled = np.interp(np.arange(0, s.signal.size, 0.5), np.arange(s.signal.size), s.signal)
    value = encode_chunk_json("dev-x", half, T0 + 1000, 2 * s.fs, resampled[:1000])
    out += proc.process([InRecord(TOPIC, 0, half, b"dev-x", value)])
    letters = dead(out)
    assert [d["reason"] for d in letters] == [FS_CHANGED]
    assert "500 Hz" in letters[0]["detail"] and "250 Hz" in letters[0]["detail"]
    assert proc.counts.segments == 2


def test_garbage_is_dead_lettered_with_the_codec_reason_and_the_stage_goes_on(signals) -> None:
    records = _device_records(signals["dev-0"])
    bad = [
        InRecord(TOPIC, 0, 10_000, b"k", b"{not json"),
        InRecord(TOPIC, 0, 10_001, b"k", None),
        InRecord(TOPIC, 0, 10_002, b"k", orjson.dumps({"device_id": "k", "seq": 0})),
    ]
    out = run(processor(), records[:5] + bad + records[5:])
    letters = dead(out)
    assert [d["offset"] for d in letters] == [10_000, 10_001, 10_002]
    assert all(d["reason"] and d["detail"] for d in letters)
    assert windows(out).keys() == windows(run(processor(), records)).keys()


def test_an_idle_device_stops_holding_back_commits_and_keeps_its_counter(signals) -> None:
    clock = Clock()
    proc = processor(clock)
    records = _device_records(signals["dev-1"])
    half = len(records) // 2
    first = windows(run(proc, records[:half]))
    consumed = {0: records[half - 1].offset + 1}
    assert proc.committable(consumed)[0] < consumed[0]
    clock.now += 61.0
    assert proc.drop_idle() == 1
    assert proc.committable(consumed) == consumed
    later = windows(run(proc, records[half:]))
    assert min(q for _, q in later) == max(q for _, q in first) + 1


def test_a_lead_off_after_beats_does_not_grow_the_buffer(signals) -> None:
    s = signals["dev-0"]
    records = _device_records(s, "dev-x")[:40]  # 20 s of beats, then 5 minutes of a flat line
    proc = processor()
    assert windows(run(proc, records))
    for k in range(40, 640):
        value = encode_chunk_json("dev-x", k, T0 + k * 0.5, s.fs, np.zeros(125))
        out = proc.process([InRecord(TOPIC, 0, k, b"dev-x", value)])
        assert not out or k < 50  # the beat before the lead went off

    segment = proc.devices["dev-x"].segment
    assert segment is not None
    held_s = len(segment.chunks) * 0.5
    assert held_s <= DEFAULT_RECIPE.span_s + DEFAULT_RECIPE.max_rr_s + 1
    assert segment.extractor.received - segment.extractor.first_needed <= 2 * held_s * s.fs
    assert proc.committable({0: 640})[0] >= 640 - 2 * held_s


def test_a_reset_counter_with_later_samples_starts_a_new_segment(signals) -> None:
    s = signals["dev-0"]
    records = _device_records(s)
    half = len(records) // 2
    proc = processor()
    out = run(proc, records[:half])
    # The device rebooted: its chunks count from 0 again, but their samples come later.
    rebooted = [
        InRecord(
            TOPIC, 0, 1000 + k, r.key, r.value.replace(b'"seq":%d,' % (half + k), b'"seq":%d,' % k)
        )
        for k, r in enumerate(records[half:])
    ]
    out += run(proc, rebooted)
    letters = dead(out)
    assert [d["reason"] for d in letters] == [SEQ_RESET]
    assert "counter was reset" in letters[0]["detail"]
    seqs = sorted(q for _, q in windows(out))
    assert seqs == list(range(len(seqs)))  # the beat counter goes on
    assert len(seqs) >= len(windows(run(processor(), records))) - 3


def test_state_updates_carry_each_moved_counter_once_and_restore_takes_the_highest(
    signals,
) -> None:
    proc = processor()
    got = windows(run(proc, chunk_records(signals)))
    updates = proc.state_updates()
    assert {r.topic for r in updates} == {DEFAULT_TOPICS.ingest_state}
    state = {r.key.decode(): orjson.loads(r.value) for r in updates}
    for dev in signals:
        newest = max(q for d, q in got if d == dev)
        assert state[dev]["seq"] == newest and state[dev]["ts"] == got[(dev, newest)][0]
    assert proc.state_updates() == []  # nothing moved since
    # A device long silent: only the state topic still knows it; the windows read knows less.
    fresh = processor()
    fresh.restore({"dev-0": (3, T0 + 4.0)})
    fresh.restore({"dev-0": (state["dev-0"]["seq"], state["dev-0"]["ts"])})
    fresh.restore({"dev-0": (5, T0 + 6.0)})  # an older read does not win
    again = windows(run(fresh, [r for r in chunk_records(signals) if r.key == b"dev-0"]))
    assert again == {}  # every beat was already produced: none again, no seq reused
    assert fresh.counts.beats_skipped == sum(1 for d, _ in got if d == "dev-0")


def test_a_device_whose_chunks_are_not_keyed_by_its_id_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not refused (on one partition the stage copes) but said: with more partitions such a
    device's chunks spread over stage instances."""
    proc = processor()
    samples = np.zeros(50)
    recs = [
        InRecord(TOPIC, 0, i, key, encode_chunk_json(dev, i, T0 + i * 0.2, 250.0, samples))
        for i, (dev, key) in enumerate(
            [("bed-1", None), ("bed-1", None), ("bed-2", b"bed-9"), ("bed-3", b"bed-3")]
        )
    ]
    with caplog.at_level("WARNING", logger="pipeline.ingest_state"):
        proc.process(recs)
    warned = [r.getMessage() for r in caplog.records if "must be the device id" in r.message]
    assert len(warned) == 2  # bed-1 once (not per chunk), bed-2; bed-3 is keyed right
    assert "'bed-1' has key None" in warned[0] and "'bed-2' has key b'bed-9'" in warned[1]


def test_a_device_on_a_lead_of_the_other_polarity_is_turned_over_counted_and_logged(
    signals, caplog: pytest.LogCaptureFixture
) -> None:
    """A reversed lead (or swapped electrodes) gets the same windows as the model's polarity
    once the segment's polarity is decided; the stage counts it and says which device."""
    upright = {"dev-1": dataclasses.replace(signals["dev-1"], signal=-signals["dev-1"].signal)}
    proc = processor()
    with caplog.at_level("WARNING", logger="pipeline.ingest_state"):
        flipped = windows(run(proc, chunk_records(upright)))
    assert proc.counts.segments_inverted == 1
    said = [r.getMessage() for r in caplog.records if "point the other way" in r.message]
    assert len(said) == 1 and "'dev-1'" in said[0]
    plain_proc = processor()
    plain = windows(run(plain_proc, chunk_records({"dev-1": signals["dev-1"]})))
    assert plain_proc.counts.segments_inverted == 0
    decided = T0 + 8.0 + 2.0  # the last decision, and the beat that spans it
    late = {ts: w for ts, w in plain.values() if ts > decided}
    got = {ts: w for ts, w in flipped.values() if ts > decided}
    assert len(got) == len(late) > 20
    for ts, w in late.items():
        np.testing.assert_allclose(got[ts], w, atol=1e-5)


def _upright_records(s, seconds: float, first_seq: int = 0, dev: str = "dev-up"):
    """The first ``seconds`` of ``s`` on a lead of the other polarity, as 0.5 s chunks."""
    n = round(0.5 * s.fs)
    cut = -s.signal[: round(seconds * s.fs)]
    return [
        InRecord(
            TOPIC,
            0,
            first_seq + k,
            dev.encode(),
            encode_chunk_json(dev, first_seq + k, T0 + a / s.fs, s.fs, cut[a : a + n]),
        )
        for k, a in enumerate(range(0, cut.size, n))
    ]


def test_beats_held_back_for_the_polarity_are_produced_when_the_segment_ends_early(
    signals,
) -> None:
    s = signals["dev-1"]
    # Right way up, the same 6 s give this many beats (none is held back).
    expected = len(windows(run(processor(), _device_records(s, "dev-up")[:12])))
    # Upright, a gap ends the segment at 6 s, before the 8 s decision: its held beats are
    # decided on those 6 s and produced, not lost with the segment.
    proc = processor()
    records = _upright_records(s, 6.0)
    value = encode_chunk_json(
        "dev-up", len(records) + 5, T0 + 20.0, s.fs, -s.signal[: round(0.5 * s.fs)]
    )
    out = run(proc, [*records, InRecord(TOPIC, 0, len(records), b"dev-up", value)])
    assert [d["reason"] for d in dead(out)] == [SAMPLES_GAP]
    assert len(windows(out)) == expected > 4
    assert proc.counts.segments_inverted == 1  # turned over when it ended
    # A device that falls silent instead has them produced when its signal is dropped.
    clock = Clock()
    proc = processor(clock)
    before = windows(run(proc, _upright_records(s, 6.0)))
    assert len(before) < expected
    clock.now += 61.0
    assert proc.drop_idle() == 1
    pending = windows(proc.take_pending())
    assert len(before) + len(pending) == expected
    assert min(q for _, q in pending) == max(q for _, q in before) + 1
    assert proc.take_pending() == []
