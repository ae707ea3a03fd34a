"""The consume loop shared by the batch engine and the ingest stage, with a fake consumer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline import lifecycle
from pipeline.lifecycle import consume_batches


class FakeConsumer:
    """Hands out the given fetch results in order, then sets ``stop``."""

    def __init__(self, fetches: list[dict[str, list[int]]], stop: asyncio.Event) -> None:
        self.fetches = list(fetches)
        self.stop = stop
        self.calls: list[tuple[int, int]] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[str, list[int]]:
        self.calls.append((timeout_ms, max_records))
        if len(self.fetches) == 1:
            self.stop.set()
        return self.fetches.pop(0)


def _run(fetches: list[dict[str, list[int]]], **kw: Any) -> tuple[list[str], FakeConsumer]:
    events: list[str] = []

    async def main() -> FakeConsumer:
        stop, lock = asyncio.Event(), asyncio.Lock()
        consumer = FakeConsumer(fetches, stop)

        async def ready() -> None:
            events.append("ready")

        async def handle(fetched: dict[str, list[int]]) -> None:
            assert lock.locked()  # rebalances and timers must wait for the batch
            events.append(f"handle {sorted(fetched.items())}")
            if fetched.get("boom"):
                raise RuntimeError("broken batch")

        async def idle() -> None:
            assert lock.locked()
            events.append("idle")

        await consume_batches(
            consumer,
            stop,
            batch_size=7,
            timeout_s=0.05,
            lock=lock,
            ready=ready,
            handle=handle,
            what="the test loop",
            idle=idle,
            **kw,
        )
        return consumer

    return events, asyncio.run(main())


def test_each_fetch_is_handled_in_order_after_ready_and_empty_fetches_go_idle() -> None:
    events, consumer = _run([{"a": [1, 2]}, {}, {"a": [3], "b": [4]}])
    assert events == [
        "ready",
        "handle [('a', [1, 2])]",
        "idle",
        "ready",
        "handle [('a', [3]), ('b', [4])]",
    ]
    # The batch size and the timeout in milliseconds reach every fetch; the loop ends on stop.
    assert consumer.calls == [(50, 7)] * 3


def test_a_batch_that_fails_stops_the_process_naming_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopped: list[str] = []
    monkeypatch.setattr(lifecycle, "fail_stop", stopped.append)
    events, _ = _run([{"boom": [1]}, {"a": [2]}])
    assert len(stopped) == 1
    assert "the test loop" in stopped[0] and "broken batch" in stopped[0]
    # (The real fail_stop never returns; the fake lets the loop show it would go on.)
    assert events[-1] == "handle [('a', [2])]"
