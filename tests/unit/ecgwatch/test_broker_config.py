"""ecgwatch.broker without a JVM: generated files, jar stamp, error messages."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from ecgwatch import broker
from ecgwatch.broker import maven, paths
from ecgwatch.errors import EcgwatchError


def _props(text: str) -> dict[str, str]:
    pairs = (ln.split("=", 1) for ln in text.splitlines() if ln and not ln.startswith("#"))
    return dict(pairs)


def test_server_properties_single_kraft_node(tmp_path: Path) -> None:
    props = _props(broker.render_server_properties(19092, 19093, tmp_path))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == f"{props['node.id']}@localhost:19093"
    assert props["listeners"] == "PLAINTEXT://localhost:19092,CONTROLLER://localhost:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://localhost:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path.resolve() / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "min.insync.replicas",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "false"


@pytest.mark.parametrize(
    ("port", "controller_port", "match"),
    [(9092, 9092, "must differ"), (0, 9093, "out of range"), (9092, 70000, "out of range")],
)
def test_server_properties_rejects_bad_ports(
    tmp_path: Path, port: int, controller_port: int, match: str
) -> None:
    with pytest.raises(EcgwatchError, match=match):
        broker.render_server_properties(port, controller_port, tmp_path)


def test_log4j2_config_logs_to_stdout() -> None:
    text = broker.render_log4j2_config()
    assert 'target="SYSTEM_OUT"' in text and "<Root level=" in text


def _fake_lib(kdir: Path, jars: list[str]) -> None:
    (kdir / "lib").mkdir(parents=True)
    for jar in jars:
        (kdir / "lib" / jar).write_bytes(b"")
    digest = maven._pom_digest(maven.POM)
    (kdir / "lib" / ".ecgwatch-fetched").write_text("\n".join([digest, *jars]) + "\n")


def test_is_fetched_needs_stamp_matching_pom_and_every_jar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not broker.is_fetched(tmp_path)
    _fake_lib(tmp_path, ["kafka_2.13-4.1.1.jar", "kafka-clients-4.1.1.jar"])
    assert broker.is_fetched(tmp_path)
    assert broker.fetch(tmp_path) == tmp_path / "lib"  # complete: Maven is not run
    (tmp_path / "lib" / "kafka-clients-4.1.1.jar").unlink()
    assert not broker.is_fetched(tmp_path)  # a jar went missing
    (tmp_path / "lib" / "kafka-clients-4.1.1.jar").write_bytes(b"")
    newer = tmp_path / "newer-pom.xml"
    newer.write_text("<project><!-- new version --></project>")
    monkeypatch.setattr(maven, "POM", newer)
    assert not broker.is_fetched(tmp_path)  # the packaged pom changed


def test_fetch_copies_the_packaged_pom_then_needs_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kdir = tmp_path / "cache" / "kafka"
    monkeypatch.setattr(maven.shutil, "which", lambda _name: None)
    with pytest.raises(EcgwatchError, match=r"mvn.*apt-get install maven"):
        broker.fetch(kdir)
    assert (kdir / "pom.xml").read_bytes() == maven.POM.read_bytes()


def test_the_pom_ships_in_the_package() -> None:
    assert maven.POM.parent == Path(maven.__file__).resolve().parent
    assert "<artifactId>kafka_2.13</artifactId>" in maven.POM.read_text()


def test_fetch_into_an_unwritable_place_names_the_override(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EcgwatchError, match=r"ECGWATCH_KAFKA_DIR"):
        broker.fetch(blocker / "kafka")


def test_kafka_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECGWATCH_KAFKA_DIR", str(tmp_path))
    assert broker.kafka_dir() == tmp_path.resolve()
    monkeypatch.delenv("ECGWATCH_KAFKA_DIR")
    assert broker.kafka_dir().parts[-2:] == ("deploy", "kafka")  # this checkout


def test_data_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECGWATCH_BROKER_DATA_DIR", str(tmp_path))
    assert broker.default_data_dir() == tmp_path.resolve()
    monkeypatch.delenv("ECGWATCH_BROKER_DATA_DIR")
    assert broker.default_data_dir().parts[-2:] == (".ecgwatch", "kafka")  # this checkout


def test_installed_paths_are_per_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ECGWATCH_KAFKA_DIR", raising=False)
    monkeypatch.delenv("ECGWATCH_BROKER_DATA_DIR", raising=False)
    monkeypatch.setattr(paths, "checkout_root", lambda package_root=None: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert broker.kafka_dir() == tmp_path / "cache" / "ecgwatch" / "kafka"
    assert broker.default_data_dir() == tmp_path / "data" / "ecgwatch" / "kafka"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: ignore it
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert broker.kafka_dir() == tmp_path / "home" / ".cache" / "ecgwatch" / "kafka"
    assert broker.default_data_dir() == tmp_path / "home" / ".local/share/ecgwatch/kafka"


def test_checkout_root_needs_pyproject_and_deploy(tmp_path: Path) -> None:
    assert paths.checkout_root(tmp_path) is None  # e.g. site-packages
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "deploy" / "kafka").mkdir(parents=True)
    assert paths.checkout_root(tmp_path) == tmp_path


def test_status_and_stop_of_an_unused_dir(tmp_path: Path) -> None:
    st = broker.status(tmp_path)
    assert not st.running and st.pid is None and st.port is None
    assert "not running" in st.describe()
    assert broker.stop(tmp_path) is False


def test_stale_pid_file_is_not_running(tmp_path: Path) -> None:
    # pid 1 exists but is not a Kafka JVM: a recycled pid must not count as our broker.
    (tmp_path / "broker.pid").write_text("1\n")
    assert not broker.status(tmp_path).running
    assert broker.stop(tmp_path) is False
    assert not (tmp_path / "broker.pid").exists()


def test_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(EcgwatchError, match=rf"port {port} is already in use.*--port"):
            broker.start(port, tmp_path, broker.free_ports(1)[0])


def test_free_ports_are_distinct() -> None:
    ports = broker.free_ports(3)
    assert len(set(ports)) == 3


@pytest.mark.skipif(shutil.which("java") is None, reason="needs java")
def test_start_failures_point_at_the_log(tmp_path: Path) -> None:
    kdir = tmp_path / "kafka"
    _fake_lib(kdir, ["kafka_2.13-0.0.0.jar"])  # empty jar: no Kafka classes
    data = tmp_path / "data"
    port, controller_port = broker.free_ports(2)
    with pytest.raises(EcgwatchError, match=r"formatting the Kafka storage failed.*broker\.log"):
        broker.start(port, data, controller_port, kdir=kdir, timeout_s=10)
    # Already formatted: the JVM itself starts and dies (no kafka.Kafka class).
    (data / "data").mkdir(parents=True)
    (data / "data" / "meta.properties").write_text("")
    with pytest.raises(
        EcgwatchError, match=r"exited during start-up \(exit status 1\): see .*broker\.log"
    ):
        broker.start(port, data, controller_port, kdir=kdir, timeout_s=10)
    assert not broker.status(data).running
    assert not (data / "broker.pid").exists()


def test_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    from ecgwatch.broker import process

    # 0xF8.. encodes to "-" first in URL-safe base64; the second draw is fine.
    draws = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(int=1)])
    monkeypatch.setattr(process.uuid, "uuid4", lambda: next(draws))
    cid = process.new_cluster_id()
    assert not cid.startswith("-") and len(cid) == 22


def test_server_properties_with_a_sasl_listener(tmp_path: Path) -> None:
    text = broker.render_server_properties(
        19092, 19093, tmp_path, sasl_port=19094, sasl_users={"ecg": "pw"}
    )
    props = _props(text)
    assert props["listeners"].endswith(",SASL_PLAINTEXT://localhost:19094")
    assert props["advertised.listeners"] == (
        "PLAINTEXT://localhost:19092,SASL_PLAINTEXT://localhost:19094"
    )
    assert "SASL_PLAINTEXT:SASL_PLAINTEXT" in props["listener.security.protocol.map"]
    assert props["sasl.enabled.mechanisms"] == "PLAIN"
    assert 'user_ecg="pw"' in props["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    # The status/port reader still finds the plaintext port first.
    (tmp_path / "server.properties").write_text(text)
    assert broker.status(tmp_path).port == 19092


def test_sasl_listener_needs_users_and_its_own_port(tmp_path: Path) -> None:
    with pytest.raises(EcgwatchError, match="sasl_users"):
        broker.render_server_properties(19092, 19093, tmp_path, sasl_port=19094)
    with pytest.raises(EcgwatchError, match="must differ"):
        broker.render_server_properties(
            19092, 19093, tmp_path, sasl_port=19093, sasl_users={"a": "b"}
        )


def test_server_properties_with_a_sasl_ssl_listener(tmp_path: Path) -> None:
    pem = tmp_path / "keystore.pem"
    props = _props(
        broker.render_server_properties(
            19092, 19093, tmp_path, sasl_port=19094, sasl_users={"u": "p"}, ssl_keystore_pem=pem
        )
    )
    assert props["advertised.listeners"].endswith(",SASL_SSL://localhost:19094")
    assert "SASL_SSL:SASL_SSL" in props["listener.security.protocol.map"]
    assert "listener.name.sasl_ssl.plain.sasl.jaas.config" in props
    assert (props["ssl.keystore.type"], props["ssl.keystore.location"]) == ("PEM", str(pem))
    with pytest.raises(EcgwatchError, match="without sasl_port"):
        broker.render_server_properties(19092, 19093, tmp_path, ssl_keystore_pem=pem)
