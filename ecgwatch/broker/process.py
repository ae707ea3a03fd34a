"""Starting, stopping and inspecting the broker JVM of one data directory."""

from __future__ import annotations

import base64
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ecgwatch.broker.config import render_log4j2_config, render_server_properties
from ecgwatch.broker.maven import fetch, kafka_dir
from ecgwatch.broker.paths import default_data_dir
from ecgwatch.errors import EcgwatchError

__all__ = [
    "DEFAULT_HEAP",
    "DEFAULT_PORT",
    "BrokerStatus",
    "free_ports",
    "start",
    "status",
    "stop",
]

DEFAULT_PORT = 9092
#: Small on purpose: the machine has 2 cores and memory shared with TensorFlow workers.
DEFAULT_HEAP = "512m"
_MAIN_CLASS = "kafka.Kafka"
# In Kafka 4.x `kafka-storage.sh` still runs the Scala object in kafka_2.13 (not kafka-tools).
_STORAGE_TOOL = "kafka.tools.StorageTool"


@dataclass(frozen=True)
class BrokerStatus:
    """What :func:`status` knows about the broker of one data directory.

    Attributes
    ----------
    running : bool
        Whether the JVM recorded in the pid file is alive.
    pid : int or None
        Its process id, when running.
    port : int or None
        The PLAINTEXT port from ``server.properties`` (None before the first start).
    data_dir : Path
        The broker's data directory.
    log_file : Path
        Where the JVM writes its log.
    """

    running: bool
    pid: int | None
    port: int | None
    data_dir: Path
    log_file: Path

    @property
    def bootstrap(self) -> str | None:
        """``localhost:PORT`` when the port is known, else None."""
        return None if self.port is None else f"localhost:{self.port}"

    def describe(self) -> str:
        """One human-readable line."""
        if self.running:
            return (
                f"running (pid {self.pid}) on {self.bootstrap}; data {self.data_dir}; "
                f"log {self.log_file}"
            )
        return f"not running; data {self.data_dir}"


def _paths(data_dir: Path) -> tuple[Path, Path, Path]:
    return data_dir / "server.properties", data_dir / "broker.pid", data_dir / "broker.log"


def _read_port(props: Path) -> int | None:
    if not props.is_file():
        return None
    for line in props.read_text().splitlines():
        if line.startswith("advertised.listeners="):
            # The PLAINTEXT listener comes first (a SASL one may follow).
            first = line.split("=", 1)[1].split(",")[0]
            return int(first.rsplit(":", 1)[1])
    return None


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live Kafka JVM; reaps it if it is our exited (zombie) child."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
        # Reap our own exited child now: a zombie left to the parent's exit goes to pid 1.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    # The pid could have been reused by an unrelated process after a reboot or crash.
    return _MAIN_CLASS.encode() in cmdline


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def status(data_dir: Path | None = None) -> BrokerStatus:
    """The state of the broker that uses ``data_dir`` (default :func:`default_data_dir`)."""
    data_dir = (data_dir or default_data_dir()).resolve()
    props, pid_file, log_file = _paths(data_dir)
    pid = _read_pid(pid_file)
    running = pid is not None and _alive(pid)
    return BrokerStatus(running, pid if running else None, _read_port(props), data_dir, log_file)


def _ephemeral_low(default: int = 32768) -> int:
    """The lowest port the kernel hands out to outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def free_ports(n: int = 1) -> list[int]:
    """``n`` distinct TCP ports that were free on 127.0.0.1 a moment ago (for tests, demos).

    They lie below the kernel's ephemeral range: a port from that range can be taken, while a
    broker on it is stopped for a restart, as the source port of any outgoing connection (a
    client reconnecting to that very port can even connect to itself), and the restarted
    broker then fails to bind it. Outside the range only a listener can hold it.
    """
    low = _ephemeral_low()
    if low < 10_000 + 100 * n:  # an unusual range: fall back to the kernel's choice
        return _kernel_ports(n)
    # Not seeded on purpose: parallel test runs on one machine must not pick the same ports.
    rng = random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        for _ in range(200 * n):
            if len(socks) == n:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", rng.randrange(10_000, low)))
            except OSError:
                sock.close()
                continue
            socks.append(sock)
        if len(socks) < n:
            return _kernel_ports(n)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _kernel_ports(n: int) -> list[int]:
    socks: list[socket.socket] = []
    try:
        for _ in range(n):  # hold all sockets open at once so the ports are distinct
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _log_tail(log_file: Path, n: int = 3) -> str:
    try:
        lines = log_file.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    interesting = [ln for ln in lines if " ERROR " in ln or "Exception" in ln] or lines
    return " | ".join(interesting[-n:])


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise EcgwatchError(
            "java is not on PATH: install Java 17+ (apt-get install openjdk-17-jre)"
        )
    return java


def _classpath(kdir: Path) -> str:
    return str(kdir / "lib" / "*")


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 without padding.

    Like Kafka's own ``Uuid.randomUuid``, never one starting with ``-``: the storage tool's
    argument parser would read it as an option and fail (1 start in 64 did, before this).
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _format_storage(java: str, kdir: Path, props: Path, data_dir: Path, log_file: Path) -> None:
    """Format ``log.dirs`` once; a formatted dir keeps its cluster id across restarts."""
    if (data_dir / "data" / "meta.properties").is_file():
        return
    cluster_id = new_cluster_id()
    cmd = [java, "-Xmx256m", "-cp", _classpath(kdir), _STORAGE_TOOL, "format"]
    cmd += ["-t", cluster_id, "-c", str(props), "--ignore-formatted"]
    with log_file.open("a") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    if rc != 0:
        raise EcgwatchError(f"formatting the Kafka storage failed (exit {rc}): see {log_file}")


def _exit_status(returncode: int | None) -> str:
    """How the JVM ended, in words (a signal says something outside killed it)."""
    if returncode is None:
        return "exit status unknown"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log_file: Path, timeout_s: float) -> None:
    from kafka import KafkaAdminClient  # heavy-ish import, only when starting

    pid = proc.pid
    deadline = time.monotonic() + timeout_s
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        # Our own child: poll() is the truth (and reaps it). Not _alive(): until the forked
        # child has exec'd java, its command line is not Kafka's, and a broker that was still
        # starting was reported as exited (then left running by the clean-up).
        if proc.poll() is not None:
            raise EcgwatchError(
                f"the Kafka broker exited during start-up ({_exit_status(proc.poll())}): "
                f"see {log_file} ({_log_tail(log_file)})"
            )
        if _port_in_use(port):
            try:
                admin = KafkaAdminClient(
                    bootstrap_servers=f"localhost:{port}",
                    client_id="ecgwatch-broker-probe",
                    request_timeout_ms=5000,
                    bootstrap_timeout_ms=5000,
                )
                try:
                    admin.list_topics()  # a real metadata round trip, not just an open port
                    return
                finally:
                    admin.close()
            except Exception as exc:  # any client error means: not ready yet
                last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    raise EcgwatchError(
        f"the Kafka broker (pid {pid}) did not answer on localhost:{port} within {timeout_s:.0f} s"
        f" ({last_error}): see {log_file}; stop it with `ecgwatch broker stop`"
    )


def start(
    port: int = DEFAULT_PORT,
    data_dir: Path | None = None,
    controller_port: int | None = None,
    *,
    heap: str = DEFAULT_HEAP,
    timeout_s: float = 90.0,
    kdir: Path | None = None,
    sasl_port: int | None = None,
    sasl_users: Mapping[str, str] | None = None,
    ssl_keystore_pem: Path | None = None,
) -> BrokerStatus:
    """Start the local broker in the background and wait until it answers a metadata request.

    Fetches the jars first if needed. Idempotent: if the broker of ``data_dir`` is already
    running on ``port`` this returns its status.

    Parameters
    ----------
    port : int
        Client port (PLAINTEXT on localhost).
    data_dir : Path, optional
        Where config, log, pid file and data go; default :func:`default_data_dir`.
    controller_port : int, optional
        KRaft controller port; default ``port + 1``.
    heap : str
        JVM ``-Xmx`` value.
    timeout_s : float
        How long to wait for the broker to answer.
    kdir : Path, optional
        The jars' folder; default :func:`kafka_dir`.
    sasl_port, sasl_users, ssl_keystore_pem : optional
        An extra ``SASL_PLAINTEXT`` (or, with a PEM keystore, ``SASL_SSL``) listener with
        mechanism ``PLAIN`` and its accounts, for testing clients that authenticate (see
        :func:`ecgwatch.broker.config.render_server_properties`).

    Returns
    -------
    BrokerStatus
        The running broker.

    Raises
    ------
    EcgwatchError
        If a port is taken by another process, the data dir's broker runs on another port, the
        JVM exits, or it does not answer in time (the message names the log file).
    """
    data_dir = (data_dir or default_data_dir()).resolve()
    controller_port = port + 1 if controller_port is None else controller_port
    current = status(data_dir)
    if current.running and current.port == port:
        return current
    _check_can_start(
        current,
        port,
        [(port, "broker"), (controller_port, "controller")]
        + ([(sasl_port, "SASL")] if sasl_port is not None else []),
    )
    kdir = kdir or kafka_dir()
    fetch(kdir)
    java = _java()
    data_dir.mkdir(parents=True, exist_ok=True)
    props, pid_file, log_file = _paths(data_dir)
    props.write_text(
        render_server_properties(
            port,
            controller_port,
            data_dir,
            sasl_port=sasl_port,
            sasl_users=sasl_users,
            ssl_keystore_pem=ssl_keystore_pem,
        )
    )
    log4j = data_dir / "log4j2.xml"
    log4j.write_text(render_log4j2_config())
    _format_storage(java, kdir, props, data_dir, log_file)
    proc = _launch(_broker_command(java, kdir, heap, log4j, data_dir, props), data_dir, log_file)
    pid_file.write_text(f"{proc.pid}\n")
    try:
        _wait_ready(proc, port, log_file, timeout_s)
    except EcgwatchError:
        stop(data_dir)  # leave nothing half-started behind
        raise
    return status(data_dir)


def _check_can_start(current: BrokerStatus, port: int, ports: list[tuple[int, str]]) -> None:
    """Refuse a start that would clash: this data dir's broker elsewhere, or a taken port."""
    if current.running:
        raise EcgwatchError(
            f"the broker of {current.data_dir} already runs on port {current.port}, not {port}: "
            "stop it first (`ecgwatch broker stop`) or use another --data-dir"
        )
    for p, what in ports:
        if _port_in_use(p):
            raise EcgwatchError(
                f"{what} port {p} is already in use by another process: choose another --port"
            )


def _broker_command(
    java: str, kdir: Path, heap: str, log4j: Path, data_dir: Path, props: Path
) -> list[str]:
    return [
        java,
        f"-Xmx{heap}",
        "-Xms128m",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={data_dir}",
        "-cp",
        _classpath(kdir),
        _MAIN_CLASS,
        str(props),
    ]


def _launch(cmd: list[str], data_dir: Path, log_file: Path) -> subprocess.Popen[bytes]:
    """Start the JVM in the background, its output appended to ``log_file``."""
    with log_file.open("a") as log:
        # Own session: Ctrl-C in the terminal that started it does not kill the broker.
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=data_dir,
        )
    return proc


def stop(data_dir: Path | None = None, *, timeout_s: float = 30.0) -> bool:
    """Stop the broker of ``data_dir``: SIGTERM (controlled shutdown), then SIGKILL after
    ``timeout_s``.

    Returns
    -------
    bool
        True if a running broker was stopped, False if none was running (not an error).
    """
    data_dir = (data_dir or default_data_dir()).resolve()
    _, pid_file, _ = _paths(data_dir)
    pid = _read_pid(pid_file)
    if pid is None or not _alive(pid):
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        print(
            f"ecgwatch: broker pid {pid} ignored SIGTERM for {timeout_s:.0f} s; killing it",
            file=sys.stderr,
        )
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return True
