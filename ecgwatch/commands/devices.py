"""``ecgwatch devices``: the devices the running workers own, from their ``GET /devices``.

Each worker process serves its device view on its metrics port (:mod:`pipeline.devices`,
``docs/operations.md``, "Device view"); this command asks every worker given, merges their
devices and prints one table row per device (or the merged JSON). A worker that does not
answer, or answers something that is not a device view, gets one error line on stderr; the
others are still printed, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

# The view's own module: light (no Kafka client, no model); one definition of the version.
from pipeline.devices import DEVICE_VIEW_VERSION

__all__ = [
    "DEVICE_VIEW_VERSION",
    "WorkerAnswer",
    "device_url",
    "fetch_view",
    "format_episode",
    "merge_views",
    "register",
    "render_table",
    "run",
    "worker_label",
]


#: Table columns, in order.
COLUMNS = (
    "DEVICE",
    "WORKER",
    "PARTITION",
    "STATUS",
    "SILENT (s)",
    "LAST SEQ",
    "LAST SCORE",
    "EPISODES",
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``devices`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``ecgwatch`` subparsers.
    """
    p = sub.add_parser(
        "devices",
        help="list the devices the running workers own (their GET /devices)",
        description=(
            "Ask each worker's metrics port for GET /devices and print the merged device list, "
            "sorted by device id. Exit code 1 when a worker does not answer a device view."
        ),
    )
    p.add_argument(
        "urls",
        nargs="+",
        metavar="URL",
        help="a worker's metrics address: http://HOST:9102 or HOST:PORT (/devices is appended)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="seconds to wait for each worker (default 5)",
    )
    p.add_argument("--json", action="store_true", help="print the merged JSON instead of a table")
    p.add_argument("--stale-only", action="store_true", help="only devices whose feed is stale")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch devices``.

    Parameters
    ----------
    args : argparse.Namespace
        ``urls``, ``timeout``, ``json``, ``stale_only``.

    Returns
    -------
    int
        0 when every worker answered a device view, else 1 (also when none answered).
    """
    if not args.timeout > 0:
        print("ecgwatch devices: error: --timeout must be positive", file=sys.stderr)
        return 2
    urls = [device_url(u) for u in args.urls]
    with ThreadPoolExecutor(max_workers=min(16, len(urls))) as pool:
        answers = list(pool.map(lambda u: fetch_view(u, args.timeout), urls))
    for a in answers:
        if a.error is not None:
            print(f"ecgwatch devices: error: {a.url}: {a.error}", file=sys.stderr)
    merged = merge_views(answers, stale_only=args.stale_only)
    if args.json:
        sys.stdout.write(json.dumps(merged, indent=2) + "\n")
    else:
        render_table(merged["devices"], sys.stdout)
        print(
            f"{len(merged['devices'])} devices ({merged['active']} active, "
            f"{merged['stale']} stale) from {len(merged['workers'])} workers"
        )
    sys.stdout.flush()
    ok = bool(answers) and all(a.error is None for a in answers)
    return 0 if ok else 1


# ---------------------------------------------------------------------- fetching


@dataclass(frozen=True)
class WorkerAnswer:
    """What one worker answered: its device view, or why there is none.

    Attributes
    ----------
    url : str
        The ``/devices`` URL asked.
    view : dict or None
        The worker's device view (validated), or ``None`` on error.
    error : str or None
        Why there is no view (one line), or ``None``.
    """

    url: str
    view: dict[str, Any] | None = None
    error: str | None = None

    @property
    def worker(self) -> str:
        """``host:port`` of the worker."""
        return worker_label(self.url)


def device_url(target: str) -> str:
    """The ``/devices`` URL of a worker address.

    Parameters
    ----------
    target : str
        ``http(s)://HOST:PORT[/path]`` or ``HOST:PORT``.

    Returns
    -------
    str
        ``http://`` added when there is no scheme; ``/devices`` appended unless the path
        already ends with it.

    Examples
    --------
    >>> device_url("worker-0:9102")
    'http://worker-0:9102/devices'
    >>> device_url("http://10.0.0.5:9103/devices")
    'http://10.0.0.5:9103/devices'
    """
    url = target.strip()
    if "://" not in url:
        url = "http://" + url
    url = url.rstrip("/")
    if not url.endswith("/devices"):
        url += "/devices"
    return url


def worker_label(url: str) -> str:
    """``host:port`` of a URL (its network location without credentials).

    Parameters
    ----------
    url : str
        A worker URL.
    """
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return netloc or url


def fetch_view(url: str, timeout: float = 5.0) -> WorkerAnswer:
    """Ask one worker for its device view.

    Parameters
    ----------
    url : str
        The ``/devices`` URL (see :func:`device_url`).
    timeout : float
        Seconds to wait for the connection and for each read.

    Returns
    -------
    WorkerAnswer
        The view, or the reason there is none (never raises for a network or format problem).
    """
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        detail = _error_detail(exc)
        return WorkerAnswer(url, error=f"HTTP {exc.code} {exc.reason}{detail}")
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return WorkerAnswer(url, error=f"no answer within {timeout:g} s")
        return WorkerAnswer(url, error=f"cannot connect: {_reason_text(reason)}")
    except TimeoutError:
        return WorkerAnswer(url, error=f"no answer within {timeout:g} s")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return WorkerAnswer(url, error=f"cannot read the answer: {_reason_text(exc)}")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return WorkerAnswer(
            url,
            error="the answer is not JSON (not an ecgwatch worker, or one without GET /devices?)",
        )
    problem = _view_problem(doc)
    if problem is not None:
        return WorkerAnswer(url, error=problem)
    return WorkerAnswer(url, view=doc)


def _reason_text(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """``: <error>`` of a worker's JSON error answer (a view that failed: 500), else ``""``."""
    try:
        doc = json.loads(exc.read())
    except Exception:
        return ""
    if isinstance(doc, dict) and doc.get("error"):
        return f": {doc['error']}"
    return ""


def _view_problem(doc: Any) -> str | None:
    """Why ``doc`` is not a device view this command reads, or ``None``."""
    if not isinstance(doc, dict):
        return f"the answer is a JSON {type(doc).__name__}, not a device view object"
    version = doc.get("schema_version")
    if version != DEVICE_VIEW_VERSION or isinstance(version, bool):
        return (
            f"schema_version {version!r} of the device view is not the one this command "
            f"reads ({DEVICE_VIEW_VERSION}); upgrade ecgwatch or the worker"
        )
    devices = doc.get("devices")
    if not isinstance(devices, list):
        return "the device view has no devices list"
    for i, d in enumerate(devices):
        if not isinstance(d, dict) or not isinstance(d.get("device_id"), str):
            return f"device entry {i} of the device view has no device_id"
        if not isinstance(d.get("episodes", []), list):
            return f"device {d['device_id']!r}: episodes is not a list"
    return None


# ---------------------------------------------------------------------- merging


def merge_views(answers: list[WorkerAnswer], stale_only: bool = False) -> dict[str, Any]:
    """One document of every worker's devices.

    Parameters
    ----------
    answers : list of WorkerAnswer
        One per worker asked, in the order given.
    stale_only : bool
        Keep only devices whose ``status`` is ``stale``.

    Returns
    -------
    dict
        ``schema_version``, ``generated_at`` (epoch seconds), ``workers`` (those that
        answered: ``url``, ``worker``, ``pid``, ``generated_at``, ``stale_after_s``, their own
        ``active`` / ``stale`` counts and ``devices`` count), ``errors`` (``url``, ``worker``,
        ``error``), ``active`` / ``stale`` (of the devices listed) and ``devices``: each
        worker's device entries with ``worker`` (``host:port``) added, sorted by device id,
        then worker. A device two workers list (for a moment during a rebalance) is listed
        twice.
    """
    workers: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    for a in answers:
        if a.view is None:
            errors.append({"url": a.url, "worker": a.worker, "error": a.error})
            continue
        own = a.view["devices"]
        workers.append(
            {
                "url": a.url,
                "worker": a.worker,
                "pid": a.view.get("pid"),
                "generated_at": a.view.get("generated_at"),
                "stale_after_s": a.view.get("stale_after_s"),
                "active": a.view.get("active"),
                "stale": a.view.get("stale"),
                "devices": len(own),
            }
        )
        for d in own:
            if stale_only and d.get("status") != "stale":
                continue
            devices.append({**d, "worker": a.worker})
    devices.sort(key=lambda d: (d["device_id"], d["worker"]))
    return {
        "schema_version": DEVICE_VIEW_VERSION,
        "generated_at": time.time(),
        "workers": workers,
        "errors": errors,
        "active": sum(1 for d in devices if d.get("status") == "active"),
        "stale": sum(1 for d in devices if d.get("status") == "stale"),
        "devices": devices,
    }


# ---------------------------------------------------------------------- printing


def format_episode(episode: dict[str, Any], now: float | None = None) -> str:
    """``kind:priority:phase since HH:MM:SS`` of one open episode.

    Parameters
    ----------
    episode : dict
        An entry of a device's ``episodes``.
    now : float, optional
        Wall clock, epoch seconds (default: now): a ``since`` on another day also shows its
        date.

    Examples
    --------
    >>> format_episode({"kind": "technical", "priority": "medium", "phase": "start"})
    'technical:medium:start'
    """
    text = ":".join(str(episode.get(k, "?")) for k in ("kind", "priority", "phase"))
    since = episode.get("since")
    if isinstance(since, int | float) and not isinstance(since, bool):
        return f"{text} since {_clock_time(float(since), now)}"
    return text


def _clock_time(epoch: float, now: float | None) -> str:
    now = time.time() if now is None else now
    same_day = time.localtime(epoch)[:3] == time.localtime(now)[:3]
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _row(d: dict[str, Any], now: float) -> list[str]:
    def num(value: Any, fmt: str) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return format(value, fmt)
        return "-" if value is None else str(value)

    episodes = [format_episode(e, now) for e in d.get("episodes", []) if isinstance(e, dict)]
    return [
        str(d["device_id"]),
        str(d.get("worker", "?")),
        num(d.get("partition"), "d"),
        str(d.get("status", "?")),
        num(d.get("silent_s"), ".1f"),
        num(d.get("last_seq"), "d"),
        num(d.get("last_score"), ".4f"),
        ", ".join(episodes) or "-",
    ]


def render_table(devices: list[dict[str, Any]], out: TextIO) -> None:
    """Print ``devices`` (merged entries, see :func:`merge_views`) as a table.

    Parameters
    ----------
    devices : list of dict
        Device entries with ``worker``.
    out : TextIO
        Where to print. Off a terminal (a pipe, a file) rows are never wrapped.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    now = time.time()
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, highlight=False)
    right = {"PARTITION", "SILENT (s)", "LAST SEQ", "LAST SCORE"}
    for name in COLUMNS:
        # On a narrow terminal only the episodes wrap.
        table.add_column(
            name, justify="right" if name in right else "left", no_wrap=name != "EPISODES"
        )
    for d in devices:
        table.add_row(*_row(d, now))
    console = Console(file=out, highlight=False)
    if not console.is_terminal:
        console = Console(file=out, highlight=False, width=10_000, color_system=None)
    console.print(table)
