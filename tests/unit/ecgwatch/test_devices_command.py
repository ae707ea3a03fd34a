"""``ecgwatch devices``: fake workers' ``GET /devices`` served by real local HTTP servers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ecgwatch.broker import free_ports
from ecgwatch.cli import main
from ecgwatch.commands.devices import device_url, format_episode

NOW = time.time()


def _device(device_id: str, partition: int, status: str, **extra: Any) -> dict[str, Any]:
    d = {
        "device_id": device_id,
        "partition": partition,
        "status": status,
        "last_seen_at": NOW - 1.0,
        "silent_s": 1.0,
        "last_seq": 10,
        "last_ts": NOW - 2.0,
        "last_score": 0.00321,
        "last_anomaly": False,
        "episodes": [],
    }
    d.update(extra)
    return d


def _view(*devices: dict[str, Any], pid: int = 4242) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "pid": pid,
        "generated_at": NOW,
        "stale_after_s": 10.0,
        "active": sum(1 for d in devices if d["status"] == "active"),
        "stale": sum(1 for d in devices if d["status"] == "stale"),
        "devices": list(devices),
    }


PHYSIOLOGICAL: dict[str, Any] = {
    "episode_id": "9f1c0d7e",
    "kind": "physiological",
    "condition": "anomalous_beats",
    "phase": "update",
    "priority": "high",
    "since": NOW - 30.0,
    "anomalous_windows": 7,
    "peak_score": 0.051,
}
TECHNICAL: dict[str, Any] = {
    "episode_id": "stale-1",
    "kind": "technical",
    "condition": "feed_stale",
    "phase": "start",
    "priority": "medium",
    "since": NOW - 42.0,
}

#: Worker A: one active device with an open physiological episode, one stale device.
VIEW_A = _view(
    _device("dev-03", 2, "active", last_seq=812, last_score=0.0456, episodes=[PHYSIOLOGICAL]),
    _device(
        "dev-01",
        0,
        "stale",
        silent_s=42.25,
        last_seq=17,
        last_score=None,
        episodes=[TECHNICAL],
    ),
)
#: Worker B: one active device without episodes.
VIEW_B = _view(_device("dev-02", 5, "active", last_seq=99), pid=777)


Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start a local HTTP server answering every GET with ``body``; returns its base URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(body: Any, status: int = 200, content_type: str = "application/json") -> str:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not self.path.endswith("/devices"):
                    self.send_error(404)
                    return
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(httpd)
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        return f"http://127.0.0.1:{httpd.server_port}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _row(out: str, device_id: str) -> list[str]:
    """The whitespace-separated cells of ``device_id``'s table line (exactly one)."""
    (line,) = [ln for ln in out.splitlines() if ln.split()[:1] == [device_id]]
    return line.split()


def test_device_url() -> None:
    assert device_url("worker-0:9102") == "http://worker-0:9102/devices"
    assert device_url("http://10.0.0.5:9103") == "http://10.0.0.5:9103/devices"
    assert device_url("http://10.0.0.5:9103/") == "http://10.0.0.5:9103/devices"
    assert device_url("https://w.example:443/devices") == "https://w.example:443/devices"


def test_format_episode() -> None:
    since = time.strftime("%H:%M:%S", time.localtime(PHYSIOLOGICAL["since"]))
    assert format_episode(PHYSIOLOGICAL, now=NOW) == f"physiological:high:update since {since}"
    assert format_episode({"kind": "technical", "priority": "medium", "phase": "start"}) == (
        "technical:medium:start"
    )


def test_table_of_one_worker(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    url = serve(VIEW_A)
    worker = url.removeprefix("http://")
    assert main(["devices", url]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    header = out.splitlines()[0]
    for column in ("DEVICE", "WORKER", "PARTITION", "STATUS", "SILENT", "LAST SEQ", "EPISODES"):
        assert column in header
    # Sorted by device id, whatever the worker's order.
    assert out.index("dev-01") < out.index("dev-03")
    since_a = time.strftime("%H:%M:%S", time.localtime(PHYSIOLOGICAL["since"]))
    since_t = time.strftime("%H:%M:%S", time.localtime(TECHNICAL["since"]))
    assert _row(out, "dev-03") == [
        "dev-03",
        worker,
        "2",
        "active",
        "1.0",
        "812",
        "0.0456",
        "physiological:high:update",
        "since",
        since_a,
    ]
    assert _row(out, "dev-01") == [
        "dev-01",
        worker,
        "0",
        "stale",
        "42.2",
        "17",
        "-",  # no score: the last window got none
        "technical:medium:start",
        "since",
        since_t,
    ]
    assert out.rstrip().splitlines()[-1] == "2 devices (1 active, 1 stale) from 1 workers"


def test_two_workers_are_merged(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = serve(VIEW_A), serve(VIEW_B)
    # host:port without a scheme, and a base URL ending in /devices, both work.
    assert main(["devices", a.removeprefix("http://"), b + "/devices"]) == 0
    out = capsys.readouterr().out
    devices = [ln.split()[0] for ln in out.splitlines() if ln.startswith("dev-")]
    assert devices == ["dev-01", "dev-02", "dev-03"]
    assert _row(out, "dev-02")[1] == b.removeprefix("http://")
    assert _row(out, "dev-02")[-1] == "-"  # no open episode
    assert _row(out, "dev-03")[1] == a.removeprefix("http://")
    assert out.rstrip().splitlines()[-1] == "3 devices (2 active, 1 stale) from 2 workers"


def test_json_is_the_merged_document(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = serve(VIEW_A), serve(VIEW_B)
    assert main(["devices", "--json", a, b]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == 1
    assert (doc["active"], doc["stale"]) == (2, 1)
    assert [d["device_id"] for d in doc["devices"]] == ["dev-01", "dev-02", "dev-03"]
    by_id = {d["device_id"]: d for d in doc["devices"]}
    assert by_id["dev-02"]["worker"] == b.removeprefix("http://")
    # Each device entry is the worker's own, plus the worker it came from.
    assert {k: v for k, v in by_id["dev-03"].items() if k != "worker"} == VIEW_A["devices"][0]
    assert [(w["worker"], w["pid"], w["devices"]) for w in doc["workers"]] == [
        (a.removeprefix("http://"), 4242, 2),
        (b.removeprefix("http://"), 777, 1),
    ]
    assert doc["errors"] == []


def test_stale_only(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = serve(VIEW_A), serve(VIEW_B)
    assert main(["devices", "--stale-only", a, b]) == 0
    out = capsys.readouterr().out
    assert [ln.split()[0] for ln in out.splitlines() if ln.startswith("dev-")] == ["dev-01"]
    assert out.rstrip().splitlines()[-1] == "1 devices (0 active, 1 stale) from 2 workers"
    assert main(["devices", "--stale-only", "--json", a, b]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["device_id"] for d in doc["devices"]] == ["dev-01"]


def test_unreachable_worker_is_named_and_the_others_printed(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    a = serve(VIEW_A)
    dead = f"127.0.0.1:{free_ports(1)[0]}"  # nothing listens there
    assert main(["devices", "--timeout", "2", dead, a]) == 1
    out, err = capsys.readouterr()
    (line,) = err.strip().splitlines()
    assert f"http://{dead}/devices" in line and "cannot connect" in line
    assert _row(out, "dev-01") and _row(out, "dev-03")
    assert out.rstrip().splitlines()[-1] == "2 devices (1 active, 1 stale) from 1 workers"


def test_no_worker_answering_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"127.0.0.1:{free_ports(1)[0]}"
    assert main(["devices", "--timeout", "2", dead]) == 1
    out, err = capsys.readouterr()
    assert dead in err
    assert out.rstrip().splitlines()[-1] == "0 devices (0 active, 0 stale) from 0 workers"


def test_silent_worker_times_out(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    good = serve(VIEW_B)
    with socket.socket() as silent:  # listens (the connection is made) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        assert main(["devices", "--timeout", "0.3", f"127.0.0.1:{port}", good]) == 1
    out, err = capsys.readouterr()
    assert f"http://127.0.0.1:{port}/devices" in err and "no answer within 0.3 s" in err
    assert _row(out, "dev-02")


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        # A worker without GET /devices answers its Prometheus text for any other path.
        (b"# HELP ecg_windows_total Windows\n", "text/plain", "not JSON"),
        ({**VIEW_B, "schema_version": 2}, "application/json", "schema_version 2"),
        ([1, 2, 3], "application/json", "not a device view"),
        ({"schema_version": 1, "devices": [{"partition": 1}]}, "application/json", "device_id"),
    ],
)
def test_wrong_answer_is_named_and_the_others_printed(
    serve: Serve,
    capsys: pytest.CaptureFixture[str],
    body: Any,
    content_type: str,
    reason: str,
) -> None:
    good, bad = serve(VIEW_B), serve(body, content_type=content_type)
    assert main(["devices", good, bad]) == 1
    out, err = capsys.readouterr()
    (line,) = err.strip().splitlines()
    assert f"{bad}/devices" in line and reason in line
    assert _row(out, "dev-02")
    assert out.rstrip().splitlines()[-1] == "1 devices (1 active, 0 stale) from 1 workers"


def test_worker_error_answer_is_named(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    bad = serve({"error": "RuntimeError('boom')"}, status=500)
    assert main(["devices", "--json", bad]) == 1
    out, err = capsys.readouterr()
    assert f"{bad}/devices" in err and "HTTP 500" in err and "boom" in err
    doc = json.loads(out)
    assert doc["devices"] == [] and doc["errors"][0]["url"] == f"{bad}/devices"
