"""Apache Kafka for the tests: a real broker process (KRaft, broker and controller in one).

The broker's jars come from Maven Central: ``scripts/kafka/pom.xml`` names
``org.apache.kafka:kafka_2.13`` and Maven copies it and its runtime dependencies into
``.cache/kafka/<version>/libs`` once (Maven's own repository lives beside them, so a
second run fetches nothing). :class:`KafkaBroker` formats a storage directory with
Kafka's storage tool and runs ``kafka.Kafka`` with Java 17 or newer on ports of its own;
tests kill it with SIGKILL, restart it on its data, or restart it on an empty, freshly
formatted directory (a broker that lost its disk).

``python -m tests.broker start|stop|fetch`` is what ``scripts/ensure-kafka.sh`` runs: it
starts a detached broker for a whole test run (or for everyone on the machine) and
stops it again.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POM = ROOT / "scripts" / "kafka" / "pom.xml"
CACHE = Path(os.environ.get("COACHLOG_KAFKA_CACHE", str(ROOT / ".cache" / "kafka")))

#: Broker settings docker-compose.yml runs too (there as ``KAFKA_<NAME>`` variables):
#: topics exist only when the relay creates them, with the configured partition count.
SHARED_SETTINGS = {
    "process.roles": "broker,controller",
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
}

#: Only in the tests: a 2-core machine shared with the test processes, and brokers that
#: start often. A consumer group forms at once instead of waiting 3 s for more members,
#: the offsets topic (created at the first group join) has 4 partitions, not 50, and a
#: broker killed with -9 is back 3 s after its controller, not 9 s (the controller
#: waits for the dead incarnation's session to expire before it takes the new one).
TEST_SETTINGS = {
    "group.initial.rebalance.delay.ms": "0",
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "3000",
    "offsets.topic.num.partitions": "4",
    "num.network.threads": "2",
    "num.io.threads": "2",
    "num.recovery.threads.per.data.dir": "1",
    "log.cleaner.threads": "1",
}

#: The JVM of a test broker: a small heap (Kafka's scripts default to 1 GiB fixed), the
#: serial collector (no parallel GC threads competing with the tests for 2 cores) and
#: the client compiler only (starts about a second faster; the test load is light).
HEAP_OPTS = os.environ.get("COACHLOG_KAFKA_HEAP_OPTS", "-Xms128m -Xmx512m")
JVM_OPTS = [
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]

LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
# every partition's creation and every configuration dump are noise here
logger.state.name = state.change.logger
logger.state.level = WARN
logger.partition.name = kafka.cluster.Partition
logger.partition.level = WARN
logger.log.name = org.apache.kafka.storage.internals.log
logger.log.level = WARN
logger.unifiedlog.name = kafka.log
logger.unifiedlog.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
"""


class BrokerError(RuntimeError):
    """The broker could not be fetched, formatted or started (the message says why)."""


# -- fetching ---------------------------------------------------------------------------


def kafka_version(pom: Path = POM) -> str:
    """The Apache Kafka version the pom names."""
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    found = ElementTree.parse(pom).getroot().find("m:properties/m:kafka.version", namespace)
    if found is None or not found.text:
        raise BrokerError(f"{pom} names no kafka.version")
    return found.text.strip()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def libraries(cache: Path = CACHE, pom: Path = POM) -> Path:
    """The broker's jars, fetched with Maven on first use; fetched again only when the
    pom changes. Safe to call from several processes at once."""
    version = kafka_version(pom)
    home = cache / version
    libs, stamp = home / "libs", home / "fetched"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest:
        return libs
    with _locked(cache / ".lock"):
        if stamp.is_file() and stamp.read_text() == digest:
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError("Maven (mvn) is missing: install Debian's maven package")
        print(f"fetching Apache Kafka {version} with Maven into {home}", file=sys.stderr)
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=cache))
        done = subprocess.run(
            [
                mvn,
                "--batch-mode",
                "--quiet",
                "--file",
                str(pom),
                f"-Dmaven.repo.local={cache / 'm2'}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            raise BrokerError(f"Maven could not fetch Apache Kafka {version}:\n{done.stdout}")
        shutil.rmtree(libs, ignore_errors=True)
        home.mkdir(parents=True, exist_ok=True)
        staging.rename(libs)
        stamp.write_text(digest)
    return libs


def java() -> str:
    """A Java 17 or newer: ``$JAVA_HOME/bin/java`` or ``java`` on the PATH."""
    home = os.environ.get("JAVA_HOME")
    candidate = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if candidate is None or not Path(candidate).exists():
        raise BrokerError("Java is missing: install Debian's openjdk-17-jre-headless")
    printed = subprocess.run(
        [candidate, "-version"], capture_output=True, text=True, check=False
    ).stderr
    match = re.search(r'version "(\d+)', printed)
    if match is None or int(match.group(1)) < 17:
        raise BrokerError(f"Apache Kafka needs Java 17 or newer; {candidate} is: {printed}")
    return candidate


# -- the broker -------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _until(condition: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BrokerError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def new_cluster_id() -> str:
    """A KRaft cluster id (a base64url UUID, as ``kafka-storage.sh random-uuid`` prints)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class KafkaBroker:
    """One Apache Kafka node (broker and controller) of a test's own.

    ``directory`` holds its configuration, its log (``broker.log``) and its data
    (``data/``). Ports default to free ones; they stay the same across restarts.
    """

    directory: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    cluster_id: str = field(default_factory=new_cluster_id)
    settings: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "broker.log"

    @property
    def config(self) -> Path:
        return self.directory / "server.properties"

    @property
    def version(self) -> str:
        return kafka_version()

    def properties(self) -> dict[str, str]:
        """The broker's whole configuration."""
        return {
            **SHARED_SETTINGS,
            **TEST_SETTINGS,
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},"
            f"CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data),
            **self.settings,
        }

    def _command(self, main: str, *args: str) -> list[str]:
        return [
            java(),
            *HEAP_OPTS.split(),
            *JVM_OPTS,
            f"-Dlog4j2.configurationFile={self.directory / 'log4j2.properties'}",
            "-cp",
            f"{libraries()}/*",
            main,
            *args,
        ]

    def _write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        (self.directory / "log4j2.properties").write_text(LOG4J2)

    def format(self) -> None:
        """Format an empty storage directory (``kafka-storage.sh format``)."""
        self._write_config()
        shutil.rmtree(self.data, ignore_errors=True)
        done = subprocess.run(
            self._command(
                "kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c", str(self.config)
            ),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            raise BrokerError(f"formatting {self.data} failed:\n{done.stdout}\n{done.stderr}")

    def start(self, timeout: float = 90.0, *, detach: bool = False) -> None:
        """Start the broker (formatting its directory first if it is empty) and wait
        until it accepts requests: its broker registered and unfenced."""
        if self.alive():
            raise BrokerError(f"the broker on {self.bootstrap} is already running")
        if answers(self.host, self.port) or answers(self.host, self.controller_port):
            raise BrokerError(f"something else listens on {self.port} or {self.controller_port}")
        if not (self.data / "meta.properties").exists():
            self.format()
        self._write_config()
        self.starts += 1
        with self.log.open("ab") as sink:
            sink.write(f"\n=== start {self.starts}\n".encode())
            sink.flush()
            self.process = subprocess.Popen(
                self._command("kafka.Kafka", str(self.config)),
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.directory,
            )
        (self.directory / "broker.pid").write_text(f"{self.process.pid}\n")
        try:
            self.wait_ready(timeout)
        except BrokerError:
            self.kill9()
            raise
        if detach:
            self.process = None  # the broker outlives this Python process

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        def listening() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerError(f"the broker exited:\n{self.tail()}")
            return answers(self.host, self.port, timeout=0.5)

        _until(listening, timeout, f"Apache Kafka to listen on {self.bootstrap}")
        _until(
            lambda: listening() and self._serving(),
            max(1.0, deadline - time.monotonic()),
            f"Apache Kafka on {self.bootstrap} to serve requests:\n{self.tail()}",
        )

    def _serving(self) -> bool:
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
        except (KafkaError, OSError):
            return False
        try:
            brokers = admin.describe_cluster()["brokers"]
            return bool(brokers) and not any(b.get("is_fenced") for b in brokers)
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL the broker (no controlled shutdown, nothing flushed) and wait until
        its ports are closed."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self._wait_closed()

    def stop(self, timeout: float = 60.0) -> None:
        """A controlled shutdown (SIGTERM); SIGKILL if it takes longer than ``timeout``."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._wait_closed()

    def _wait_closed(self) -> None:
        _until(
            lambda: (
                not answers(self.host, self.port, 0.2)
                and not answers(self.host, self.controller_port, 0.2)
            ),
            30,
            f"the ports of {self.bootstrap} to close",
        )

    def restart(self, timeout: float = 90.0) -> None:
        """kill -9, then start again on the same data directory."""
        self.kill9()
        self.start(timeout)

    def restart_with_data_loss(self, timeout: float = 90.0) -> None:
        """kill -9, throw the data directory away, format a new one and start: the same
        address and cluster id, but no topics, no records, no groups, no offsets."""
        self.kill9()
        shutil.rmtree(self.data, ignore_errors=True)
        self.start(timeout)

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    # -- topics -------------------------------------------------------------------------

    def admin(self) -> Any:
        from kafka.admin import KafkaAdminClient

        return KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=15_000)

    def create_topic(self, topic: str, partitions: int) -> None:
        from kafka.admin import NewTopic

        admin = self.admin()
        try:
            admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        finally:
            admin.close()

    def create_partitions(self, topic: str, total: int) -> None:
        """Grow ``topic`` to ``total`` partitions (Kafka never shrinks a topic: to go
        down, :meth:`delete_topic` and create it again)."""
        from kafka.admin import NewPartitions

        admin = self.admin()
        try:
            admin.create_partitions({topic: NewPartitions(total_count=total)})
        finally:
            admin.close()
        _until(lambda: self.partition_count(topic) == total, 30, f"{topic} to have {total}")

    def delete_topic(self, topic: str) -> None:
        admin = self.admin()
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()
        _until(lambda: topic not in self.topics(), 30, f"{topic} to be deleted")

    def topics(self) -> set[str]:
        admin = self.admin()
        try:
            return set(admin.list_topics())
        finally:
            admin.close()

    def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has (0 if it does not exist)."""
        admin = self.admin()
        try:
            found = admin.describe_topics([topic])
        finally:
            admin.close()
        for described in found:
            if described.get("name") == topic and not described.get("error_code"):
                return len(described.get("partitions") or [])
        return 0


def is_apache_kafka(bootstrap: str) -> bool:
    """Whether an Apache Kafka 4 (or newer) broker answers at ``bootstrap``: it speaks
    CreatePartitions and DescribeQuorum (KRaft), which other Kafka-protocol brokers
    such as tansu do not."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    except (KafkaError, OSError):
        return False
    try:
        # admin.api_versions() raises on keys newer than the client knows (4.4 has some)
        versions = admin._manager.broker_version_data
        keys = {int(key) for key in versions.api_versions}
        version = versions.broker_version
        return {37, 55} <= keys and tuple(version) >= (4, 0)
    finally:
        admin.close()


# -- command line: scripts/ensure-kafka.sh ----------------------------------------------


def _running_pid(directory: Path) -> int | None:
    """The pid in ``directory/broker.pid`` if that process is this directory's broker."""
    try:
        pid = int((directory / "broker.pid").read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    expected = str(directory / "server.properties").encode()
    return pid if b"kafka.Kafka" in command and expected in command else None


def _stop_detached(directory: Path) -> bool:
    pid = _running_pid(directory)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _running_pid(directory) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if _running_pid(directory) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(directory, ignore_errors=True)
    return pid is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.broker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="fetch the broker's jars; print where they are")
    commands.add_parser("version", help="print the Apache Kafka version the tests run")
    for name in ("start", "stop"):
        command = commands.add_parser(name)
        command.add_argument("--directory", type=Path, required=True)
        if name == "start":
            command.add_argument("--host", default="127.0.0.1")
            command.add_argument("--port", type=int, default=9092)
            command.add_argument("--controller-port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(libraries())
        elif args.command == "version":
            print(kafka_version())
        elif args.command == "start":
            directory = args.directory.resolve()
            if _running_pid(directory) is not None:
                print(f"a broker of {directory} is already running", file=sys.stderr)
                return 1
            shutil.rmtree(directory, ignore_errors=True)
            broker = KafkaBroker(
                directory,
                port=args.port,
                controller_port=args.controller_port or free_port(),
                host=args.host,
            )
            began = time.monotonic()
            broker.start(detach=True)
            print(
                f"Apache Kafka {broker.version} on {broker.bootstrap}"
                f" (ready in {time.monotonic() - began:.1f}s; log: {broker.log})"
            )
        elif args.command == "stop" and _stop_detached(args.directory.resolve()):
            print(f"stopped the broker of {args.directory}")
    except BrokerError as error:
        print(f"broker: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
