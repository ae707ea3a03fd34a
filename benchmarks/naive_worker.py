"""The tutorial way, as a baseline: a Faust agent that decodes JSON and calls ``model.predict``
once per message. Run as ``python -m benchmarks.naive_worker BOOTSTRAP TOPIC REGISTRY COUNT OUT``;
it scores ``COUNT`` messages, writes ``{"windows": n, "seconds": s}`` to ``OUT`` and exits.
"""

from __future__ import annotations

import json
import os
import sys
import time

__all__ = ["main"]


def main(argv: list[str]) -> None:
    """Start the Faust app and exit after ``COUNT`` messages."""
    import faust
    import numpy as np

    from detector import ModelRegistry

    bootstrap, topic, registry, count, out = argv[:5]
    count_n = int(count)
    artifact = ModelRegistry(registry).load("latest")
    model, norm = artifact.detector.model, artifact.detector.normaliser
    app = faust.App(
        f"bench-naive-{os.getpid()}",
        broker=f"kafka://{bootstrap}",
        value_serializer="raw",
        web_enabled=False,
        store="memory://",
        datadir=f"/tmp/bench-naive-{os.getpid()}",
        consumer_auto_offset_reset="earliest",
    )
    windows = app.topic(topic, value_serializer="raw")
    state = {"n": 0, "t0": 0.0}

    @app.agent(windows)
    async def score(stream):  # type: ignore[no-untyped-def]
        async for value in stream:
            if state["n"] == 0:
                state["t0"] = time.perf_counter()
            doc = json.loads(value)
            z = norm.transform(np.asarray([doc["samples"]], dtype=np.float32))
            rec = model.predict(z, verbose=0)
            _ = float(np.mean(np.abs(rec - z)))
            state["n"] += 1
            if state["n"] >= count_n:
                seconds = time.perf_counter() - state["t0"]
                with open(out, "w") as fh:
                    json.dump({"windows": state["n"], "seconds": seconds}, fh)
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main(sys.argv[1:])
