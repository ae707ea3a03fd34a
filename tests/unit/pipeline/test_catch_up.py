"""``CatchUp``: a partition under steady traffic (some lag, consumed quickly) is judged; one
with a backlog worth more than ``BEHIND_S`` of consumption, or that makes no progress, is not."""

from __future__ import annotations

from pipeline.lag import BEHIND_S, CatchUp


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_steady_traffic_backlog_and_stall() -> None:
    clock = Clock()
    c = CatchUp(clock)
    assert c.behind("p0", 0, 0) is False  # no lag: caught up, whatever came before
    assert c.behind("p1", 0, 50) is True  # lag, and no rate known yet
    clock.now += 1.0
    assert c.behind("p1", 1000, 300) is False  # 1,000/s consumed: 0.3 s behind
    clock.now += 1.0
    rate = 1000
    assert c.behind("p1", 2000, int(rate * (BEHIND_S + 1))) is True  # a 3 s backlog
    clock.now += 1.0
    assert c.behind("p1", 2000, 10) is True  # no progress at all: stuck
    c.forget({"p0"})
    clock.now += 1.0
    assert c.behind("p1", 5000, 10) is True  # forgotten: no rate again
