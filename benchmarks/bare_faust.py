"""The Faust engine's ceiling, as a baseline: a bare Faust agent on ``take_events`` with the
worker's batch size and timeout that does nothing with its events.

Whatever the Faust engine does per batch comes on top of this agent's cost: Faust's own
per-event path (the conductor's dispatch, one ``Event`` and one stream step per message).
Run as ``python -m benchmarks.bare_faust BOOTSTRAP TOPIC COUNT OUT``; after ``COUNT`` events it
writes ``{"events": n, "first_at": t0, "last_at": t1}`` (epoch seconds of its first and last
batch) to ``OUT`` and exits; Faust's data folder goes beside ``OUT``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str]) -> None:
    """Start the Faust app and exit after ``COUNT`` events."""
    import faust

    from pipeline.settings import WorkerSettings

    bootstrap, topic, count, out = argv[:4]
    count_n = int(count)
    defaults = WorkerSettings()  # the Faust engine's batch size and timeout
    app = faust.App(
        f"bench-bare-faust-{os.getpid()}",
        broker=f"kafka://{bootstrap}",
        key_serializer="raw",
        value_serializer="raw",
        topic_disable_leader=True,
        web_enabled=False,
        store="memory://",
        datadir=str(Path(out).parent / f"bare-faust-{os.getpid()}"),
        consumer_auto_offset_reset="earliest",
    )
    windows = app.topic(topic)
    state = {"n": 0, "first_at": 0.0}

    @app.agent(windows)
    async def count_events(stream):  # type: ignore[no-untyped-def]
        async for events in stream.take_events(
            defaults.batch_size, within=defaults.batch_timeout_s
        ):
            if state["n"] == 0:
                state["first_at"] = time.time()
            state["n"] += len(events)
            if state["n"] >= count_n:
                result = {"events": state["n"], "first_at": state["first_at"]}
                result["last_at"] = time.time()
                with open(out, "w") as fh:
                    json.dump(result, fh)
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main(sys.argv[1:])
