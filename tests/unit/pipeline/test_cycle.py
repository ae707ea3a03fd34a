"""The one batch cycle with a fake sink and a fake commit: commit order, acks before commits,
drain on revocation, dead letters when compute breaks, the first-batch notice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.cycle import BatchCycle
from pipeline.processor import InRecord, OutRecord
from pipeline.server import HealthState
from tests.unit.pipeline.test_pipeline_processor import _processor, _records, _window


class FakeSink:
    """Records every send; each send's ack is a future the test resolves (or fails)."""

    def __init__(self, auto_ack: bool = False) -> None:
        self.sent: list[list[OutRecord]] = []
        self.acks: list[asyncio.Future[None]] = []
        self.auto_ack = auto_ack
        self.forgot = 0

    async def send_all(self, records: Sequence[OutRecord]) -> Sequence[Awaitable[Any]]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.auto_ack:
            fut.set_result(None)
        self.sent.append(list(records))
        self.acks.append(fut)
        return [fut]

    def forget_metadata(self) -> None:
        self.forgot += 1


class FakeCommits:
    def __init__(self) -> None:
        self.done: list[dict[Any, int]] = []

    async def __call__(self, offsets: Mapping[Any, int]) -> None:
        self.done.append(dict(offsets))


def _batch(n: int, first_seq: int) -> list[InRecord]:
    return _records([_window("dev-1", first_seq + i, 0.1) for i in range(n)])


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def no_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Delivery retries without their back-off (each sleep only yields to the loop)."""
    real_sleep = asyncio.sleep

    async def yield_once(_s: float) -> None:
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", yield_once)


def _cycle(sink: FakeSink, commits: FakeCommits, **kw: Any) -> BatchCycle:
    proc, _ = _processor()
    return BatchCycle(proc, sink, HealthState(), commit=commits, **kw)


def test_commits_wait_for_acks_and_stay_in_batch_order() -> None:
    async def scenario() -> None:
        sink, commits = FakeSink(), FakeCommits()
        cycle = _cycle(sink, commits, max_in_flight=3)
        for i in range(3):
            await cycle.submit(_batch(2, 10 * i), {"p0": 10 * i + 2}, {})
        await _settle()
        assert len(sink.sent) == 3 and commits.done == []  # nothing acked: nothing committed
        sink.acks[1].set_result(None)  # the second batch is acked first ...
        drained = asyncio.ensure_future(cycle.drain())
        await _settle()
        assert commits.done == []  # ... but the first is not: no commit may jump it
        sink.acks[0].set_result(None)
        sink.acks[2].set_result(None)
        await drained
        assert commits.done == [{"p0": 2}, {"p0": 12}, {"p0": 22}]
        assert cycle.in_flight == 0

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_max_in_flight_bounds_the_batches_awaiting_acks() -> None:
    async def scenario() -> None:
        sink, commits = FakeSink(auto_ack=True), FakeCommits()
        cycle = _cycle(sink, commits, max_in_flight=1)
        for i in range(4):
            await cycle.submit(_batch(1, i), {"p0": i + 1}, {})
            assert cycle.in_flight <= 1
        assert commits.done == [{"p0": 1}, {"p0": 2}, {"p0": 3}]  # the 4th still in flight
        await cycle.drain()
        assert commits.done[-1] == {"p0": 4}

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_zero_in_flight_returns_only_once_the_batch_is_delivered() -> None:
    async def scenario() -> None:
        sink, commits = FakeSink(auto_ack=True), FakeCommits()
        cycle = _cycle(sink, commits, max_in_flight=0)
        await cycle.submit(_batch(3, 0), {"p0": 3}, {})
        assert commits.done == [{"p0": 3}] and cycle.in_flight == 0

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_a_failed_delivery_is_retried_and_only_then_committed(no_back_off: None) -> None:

    async def scenario() -> None:
        sink, commits = FakeSink(), FakeCommits()
        cycle = _cycle(sink, commits, max_in_flight=1)
        await cycle.submit(_batch(2, 0), {"p0": 2}, {})
        await _settle()
        sink.acks[0].set_exception(RuntimeError("broker away"))
        await _settle()
        assert commits.done == [] and len(sink.sent) == 2 and sink.forgot == 1
        assert sink.sent[1] == sink.sent[0]  # the whole batch again, same records
        sink.acks[1].set_result(None)
        await cycle.drain()
        assert commits.done == [{"p0": 2}]

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_a_retried_alert_delivery_keeps_the_alerts_in_batch_order(no_back_off: None) -> None:
    """Scores may overtake each other on a retry; alerts may not: a later batch's alerts wait
    until every earlier batch's alerts are acknowledged (an ``update`` never lands in the
    alerts topic before its ``start``)."""
    from pipeline.policy import AlertPolicy

    async def scenario() -> None:
        sink, commits = FakeSink(), FakeCommits()
        proc, _ = _processor(policy=AlertPolicy(cooldown_s=0, mode="per_window"))
        cycle = BatchCycle(proc, sink, HealthState(), commit=commits, max_in_flight=4)

        def alert_sends() -> list[list[int]]:
            return [
                [orjson.loads(r.value)["seq"] for r in sent]
                for sent in sink.sent
                if sent and sent[0].topic == "a"
            ]

        def ack(seqs: list[int], how: Any = None) -> None:
            i = next(
                i
                for i, sent in enumerate(sink.sent)
                if sent
                and sent[0].topic == "a"
                and [orjson.loads(r.value)["seq"] for r in sent] == seqs
                and not sink.acks[i].done()
            )
            if how is None:
                sink.acks[i].set_result(None)
            else:
                sink.acks[i].set_exception(how)

        # Two batches, each one anomalous window of dev-1 (an alert each).
        await cycle.submit(_records([_window("dev-1", 0, 0.9)]), {"p0": 1}, {})
        await cycle.submit(_records([_window("dev-1", 1, 0.9)]), {"p0": 2}, {})
        await _settle()
        assert alert_sends() == [[0]]  # the second batch's alert waits for the first's
        ack([0], RuntimeError("broker away"))  # the first batch's alerts fail ...
        await _settle()
        assert alert_sends() == [[0], [0]]  # ... are sent again, still ahead of [1]
        ack([0])
        await _settle()
        assert alert_sends() == [[0], [0], [1]]
        for fut in sink.acks:
            if not fut.done():
                fut.set_result(None)
        await cycle.drain()
        assert commits.done[-1] == {"p0": 2}

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_a_compute_bug_dead_letters_the_whole_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        sink, commits = FakeSink(auto_ack=True), FakeCommits()
        cycle = _cycle(sink, commits)

        def broken(_batch: Any) -> Any:
            raise RuntimeError("a bug")

        monkeypatch.setattr(cycle.processor, "compute", broken)
        await cycle.submit(_batch(3, 0), {"p0": 3}, {})
        await cycle.drain()
        (records,) = sink.sent
        assert [r.topic for r in records] == ["d", "d", "d"]
        assert {orjson.loads(r.value)["reason"] for r in records} == {"scoring_error"}
        assert commits.done == [{"p0": 3}]  # dead-lettered, so nothing is lost by committing

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_large_batches_compute_off_the_event_loop() -> None:
    async def scenario() -> None:
        sink, commits = FakeSink(auto_ack=True), FakeCommits()
        cycle = _cycle(sink, commits, inline_batch=1)
        loop_thread: list[str] = []
        compute = cycle.processor.compute

        def spy(batch: Any) -> Any:
            import threading

            loop_thread.append(threading.current_thread().name)
            return compute(batch)

        cycle.processor.compute = spy  # type: ignore[method-assign]
        await cycle.submit(_batch(1, 0), {"p0": 1}, {})
        await cycle.submit(_batch(2, 1), {"p0": 3}, {})
        await cycle.shutdown()
        assert loop_thread[0] == "MainThread" and loop_thread[1].startswith("score")
        assert commits.done == [{"p0": 1}, {"p0": 3}]

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_the_first_batch_is_announced_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        sink, commits = FakeSink(auto_ack=True), FakeCommits()
        started = tmp_path / "started"
        cycle = _cycle(sink, commits, started_file=str(started))
        await cycle.submit(_batch(1, 0), {"p0": 1}, {})
        first = started.read_text()
        await cycle.submit(_batch(1, 1), {"p0": 2}, {})
        assert started.read_text() == first and float(first) > 0

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_shutdown_fail_stops_when_acks_never_come(monkeypatch: pytest.MonkeyPatch) -> None:
    stopped: list[str] = []
    monkeypatch.setattr("pipeline.cycle.fail_stop", stopped.append)

    async def scenario() -> None:
        sink, commits = FakeSink(), FakeCommits()
        cycle = _cycle(sink, commits)
        await cycle.submit(_batch(1, 0), {"p0": 1}, {})
        await cycle.shutdown(timeout_s=0.05)
        assert commits.done == []  # never committed without acks

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert stopped and "in-flight" in stopped[0]


def test_commits_are_coalesced_to_the_commit_interval() -> None:
    now = [0.0]

    async def scenario() -> None:
        sink, commits = FakeSink(auto_ack=True), FakeCommits()
        proc, _ = _processor()
        cycle = BatchCycle(
            proc,
            sink,
            HealthState(),
            commit=commits,
            max_in_flight=0,
            commit_interval_s=1.0,
            clock=lambda: now[0],
        )
        await cycle.submit(_batch(1, 0), {"p0": 1}, {})
        now[0] = 0.5
        await cycle.submit(_batch(1, 1), {"p0": 2, "p1": 7}, {})
        assert commits.done == [] and cycle.has_work  # acked, but the interval has not passed
        now[0] = 1.2
        await cycle.submit(_batch(1, 2), {"p0": 3}, {})
        assert commits.done == [{"p0": 3, "p1": 7}]  # one commit: the latest offset of each
        now[0] = 1.3
        await cycle.submit(_batch(1, 3), {"p1": 9}, {})
        await cycle.drain()  # drain always commits what is acknowledged
        assert commits.done == [{"p0": 3, "p1": 7}, {"p1": 9}] and not cycle.has_work

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_health_knows_since_when_the_oldest_output_awaits_its_acks(no_back_off: None) -> None:
    now = [100.0]

    async def scenario() -> None:
        sink, commits = FakeSink(), FakeCommits()
        proc, _ = _processor()
        health = HealthState(
            model_loaded=True, assigned_partitions=1, delivery_stall_s=30.0, clock=lambda: now[0]
        )
        cycle = BatchCycle(proc, sink, health, commit=commits, max_in_flight=3)
        assert health.undelivered_since is None and health.delivery_stalled_s() == 0.0
        await cycle.submit(_batch(1, 0), {"p0": 1}, {})
        await _settle()
        assert health.undelivered_since == 100.0
        now[0] = 110.0
        await cycle.submit(_batch(1, 1), {"p0": 2}, {})  # a later batch: the oldest still counts
        await _settle()
        assert health.undelivered_since == 100.0
        sink.acks[0].set_exception(RuntimeError("broker away"))  # the oldest fails, is re-sent
        await _settle()
        assert (
            len(sink.sent) == 3
            and proc.metrics.registry.get_sample_value("ecg_delivery_retries_total") == 1
            and sink.forgot == 1
        )
        now[0] = 131.0
        assert health.undelivered_since == 100.0  # a retry does not restart the clock
        assert health.ready() == (False, "outputs undelivered for 31 s (broker unreachable?)")
        sink.acks[2].set_result(None)  # the re-sent oldest is acknowledged ...
        await _settle()
        assert health.undelivered_since == 110.0  # ... the second batch is now the oldest
        assert health.ready() == (True, "ok")  # 21 s: under the limit
        sink.acks[1].set_result(None)
        await cycle.drain()
        assert health.undelivered_since is None and health.delivery_stalled_s() == 0.0
        assert commits.done == [{"p0": 1}, {"p0": 2}]

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_a_delivery_that_never_fails_but_hangs_counts_as_stalled() -> None:
    now = [0.0]

    async def scenario() -> None:
        sink, commits = FakeSink(), FakeCommits()  # acks that never come: no error either
        proc, _ = _processor()
        health = HealthState(model_loaded=True, assigned_partitions=1, clock=lambda: now[0])
        cycle = BatchCycle(proc, sink, health, commit=commits, max_in_flight=1)
        await cycle.submit(_batch(1, 0), {"p0": 1}, {})
        await _settle()
        now[0] = 45.0
        assert health.delivery_stalled_s() == 45.0 and not health.ready()[0]
        assert proc.metrics.registry.get_sample_value("ecg_delivery_retries_total") == 0
        sink.acks[0].set_result(None)
        await cycle.drain()
        assert health.ready() == (True, "ok") and commits.done == [{"p0": 1}]

    asyncio.run(asyncio.wait_for(scenario(), 10))
