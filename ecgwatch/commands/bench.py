"""``ecgwatch bench``: throughput/latency/scorer/memory benchmark against baselines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``bench`` subcommand."""
    p = sub.add_parser("bench", help="benchmark the worker against baselines (docs/performance.md)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="20,000 windows, one round, 10 s latency run (< 5 minutes)",
    )
    p.add_argument("--json", default=None, metavar="FILE", help="write the report as JSON here")
    p.add_argument(
        "--bootstrap",
        default=None,
        metavar="HOST:PORT",
        help="use this broker (default: start a throwaway local one)",
    )
    p.add_argument(
        "--registry",
        default=None,
        help="model registry to benchmark (default: train the seed model)",
    )
    p.add_argument(
        "--recommended-registry",
        default=None,
        metavar="DIR",
        help="registry whose latest model is the `recommended` preset: adds the worker and "
        "the hand-written loop on that model (default: both rows skipped)",
    )
    p.add_argument("--data", default=None, help="ECG5000 source (as for `ecgwatch train`)")
    p.add_argument("--windows", type=int, default=None, help="pre-filled windows (200,000)")
    p.add_argument("--repeats", type=int, default=None, help="rounds; medians are reported (3)")
    p.add_argument("--latency-rate", type=float, default=2000.0, help="windows/s (2,000)")
    p.add_argument("--latency-seconds", type=float, default=None, help="seconds (30)")
    p.add_argument("--no-faust", action="store_true", help="skip the Faust-engine worker row")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch bench``."""
    import logging

    from benchmarks.harness import BenchOptions, run_bench
    from benchmarks.report import format_report

    # Leader elections right after the benchmark creates its topics cause retried produce
    # warnings; they are harmless (the fill waits for every ack).
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    # The bench's own kafka-python reads wait for the GIL while workers load both cores.
    from pipeline.logs import KAFKA_SELECTOR_LOGGER, SlowTaskFilter

    logging.getLogger(KAFKA_SELECTOR_LOGGER).addFilter(SlowTaskFilter())
    quick = args.quick
    opts = BenchOptions(
        windows=args.windows or (20_000 if quick else 200_000),
        repeats=args.repeats or (1 if quick else 3),
        naive_windows=100 if quick else 300,
        latency_rate=args.latency_rate,
        latency_s=args.latency_seconds or (10.0 if quick else 30.0),
        bootstrap=args.bootstrap,
        registry=args.registry,
        data=args.data,
        faust_engine=not args.no_faust,
        recommended_registry=args.recommended_registry,
    )
    report = run_bench(opts)
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"\n[bench] JSON report: {args.json}")
    return 0
