"""Fixtures of the Kafka worker tests: real processes, Apache Kafka, real PostgreSQL.

Every test gets a topic, a consumer group and a PostgreSQL schema of its own, and
starts ``coachlog`` processes (serve, relay, project) as subprocesses; every process
is killed in teardown. The expected read model is always a from-scratch fold of the
event store.
"""

from __future__ import annotations

import ast
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from coachlog.bootstrap import bootstrap_services
from coachlog.seed import seed_firm
from coachlog.settings import Settings
from domain.application import Engagements
from projections.database import SqliteDatabase
from projections.progress import Doc, fold
from projections.runner import ProjectionRunner
from projections.store import Positioned, ProgressStore
from tests.broker import answers, free_port
from workers.relay import ensure_topic
from workers.settings import KafkaSettings

#: The console script installed beside the interpreter running the tests.
COACHLOG = str(Path(sys.executable).parent / "coachlog")
PARTITIONS = 4
SESSION_TIMEOUT_MS = 6000


def _pg_bin() -> Path:
    """The newest PostgreSQL server installed (Debian's layout; the test command
    installs one when there is none)."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    found.sort(key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0)
    return found[-1] if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
#: initdb and pg_ctl refuse to run as root.
AS_POSTGRES = ["runuser", "-u", "postgres", "--"]
INITDB_OPTIONS = ["-U", "postgres", "--auth=trust", "-E", "UTF8"]


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.25
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
        except Exception as error:  # the condition may fail while things recover
            last_error = error
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} ({last_error!r})")
        time.sleep(interval)


# -- PostgreSQL -------------------------------------------------------------------------


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A fresh, empty schema in the run's throwaway database."""
    schema = f"w_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with suppress(psycopg.Error), psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@dataclass
class PgCluster:
    """A throwaway PostgreSQL cluster of our own, which a test may stop and start."""

    datadir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*AS_POSTGRES, str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), *args],
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def start(self) -> None:
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.datadir / 'run'} -c fsync=off"
            " -c max_connections=200"
        )
        self._ctl("-l", str(self.datadir / "server.log"), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return answers("127.0.0.1", self.port)


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    """initdb into a temporary directory owned by postgres; started; removed at the end."""
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        missing = "PostgreSQL server binaries (initdb, pg_ctl) or runuser are missing"
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: the test command installs them")
        pytest.skip(missing)
    root = Path(tempfile.mkdtemp(prefix="coachlog-pgcluster-"))
    datadir = root / "data"
    datadir.mkdir()
    for path in (root, datadir):
        shutil.chown(path, "postgres", "postgres")
    subprocess.run(
        [*AS_POSTGRES, str(PG_BIN / "initdb"), "-D", str(datadir), *INITDB_OPTIONS],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (datadir / "run").mkdir()  # the socket directory (initdb wants an empty datadir)
    shutil.chown(datadir / "run", "postgres", "postgres")
    cluster = PgCluster(datadir, free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        with suppress(Exception):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


# -- processes --------------------------------------------------------------------------


@dataclass
class Proc:
    """A coachlog process (restartable), its output appended to one log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> Proc:
        self.starts += 1
        with self.log.open("ab") as sink:
            sink.write(f"\n=== start {self.starts}: {' '.join(self.args)}\n".encode())
            sink.flush()
            self.process = subprocess.Popen(
                [COACHLOG, *self.args],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL the whole process group (gunicorn workers included)."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def terminate(self, timeout: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.process.returncode

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        """The structured log lines the process wrote."""
        lines = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                with suppress(ValueError):
                    lines.append(json.loads(line))
        return lines


@dataclass
class Stack:
    """One test's world: database schema, Kafka topic and group, and its processes."""

    database_url: str
    schema: str
    bootstrap: str
    topic: str
    group: str
    directory: Path
    partitions: int = PARTITIONS
    procs: list[Proc] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COACHLOG_")}
        env["COACHLOG_MASTER_KEY"] = os.environ["COACHLOG_MASTER_KEY"]
        env.update(
            {
                "COACHLOG_DATABASE_URL": self.database_url,
                "COACHLOG_DATABASE_SCHEMA": self.schema,
                "COACHLOG_KAFKA_BOOTSTRAP": self.bootstrap,
                "COACHLOG_KAFKA_TOPIC": self.topic,
                "COACHLOG_KAFKA_PARTITIONS": str(self.partitions),
                "COACHLOG_KAFKA_GROUP": self.group,
                "COACHLOG_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
                "COACHLOG_METRICS_TOKEN": METRICS_TOKEN,
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    @property
    def settings(self) -> Settings:
        return Settings(database_url=self.database_url, database_schema=self.schema)

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings.from_env(self.env)

    def cli(self, *args: str) -> str:
        """Run a coachlog command to completion and return what it printed."""
        done = subprocess.run(
            [COACHLOG, *args], env=self.env, capture_output=True, text=True, timeout=90
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def spawn(self, name: str, *args: str) -> Proc:
        """Start ``coachlog ARGS`` as a process that teardown will kill."""
        proc = Proc(name, list(args), self.env, self.directory / f"{name}.log")
        self.procs.append(proc)
        return proc.start()

    def relay(self, name: str = "relay") -> Proc:
        return self.spawn(name, "relay")

    def projector(self, name: str = "projector") -> Proc:
        return self.spawn(name, "project", "--source", "kafka")

    def kill_all(self) -> None:
        for proc in self.procs:
            proc.kill9()

    def logs(self) -> str:
        """The tail of every process log, for assertion messages."""
        return "\n".join(f"--- {p.name}\n{p.text()[-3000:]}" for p in self.procs)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    ensure_topic(KafkaSettings(bootstrap=bootstrap, topic=topic, partitions=partitions))


def make_stack(
    database_url: str, schema: str, bootstrap: str, directory: Path, *, create: bool = True
) -> Stack:
    token = uuid.uuid4().hex[:10]
    stack = Stack(
        database_url=database_url,
        schema=schema,
        bootstrap=bootstrap,
        topic=f"coachlog-test-{token}",
        group=f"coachlog-test-group-{token}",
        directory=directory,
    )
    if create:
        create_topic(bootstrap, stack.topic, stack.partitions)
    return stack


@pytest.fixture
def stack(
    postgres_url: str, pg_schema: str, kafka_bootstrap: str, tmp_path: Path
) -> Iterator[Stack]:
    """Schema, topic and group of this test on the shared broker; processes killed after."""
    built = make_stack(postgres_url, pg_schema, kafka_bootstrap, tmp_path)
    try:
        yield built
    finally:
        built.kill_all()


# -- the store and the read model -------------------------------------------------------


class Store:
    """Direct access to a stack's event store and read models, from the test process."""

    def __init__(self, settings: Settings) -> None:
        self.services = bootstrap_services(settings)
        self.app: Engagements = self.services.engagements
        self.progress: ProgressStore = self.services.progress
        self.db = self.services.db

    def close(self) -> None:
        self.services.close()

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def log(self) -> list[Positioned]:
        """Every engagement event of the store with its position, in log order."""
        runner = ProjectionRunner(self.app, ProgressStore(SqliteDatabase(":memory:")))
        return runner.read_batch(0, 10**9)

    def relay_position(self, name: str = "relay") -> int:
        with self.db.transaction() as cur:
            cur.execute("SELECT position FROM relay_tracking WHERE name = %s", (name,))
            row = cur.fetchone()
        return 0 if row is None else int(row[0])

    def partitions(self, topic: str) -> dict[int, tuple[int, int]]:
        """partition -> (next offset, watermark) of the live generation."""
        return self.progress.partition_offsets(self.progress.live_generation(), topic)

    def docs(self) -> dict[str, Doc]:
        return self.progress.all_docs(self.progress.live_generation())


@pytest.fixture
def store(stack: Stack) -> Iterator[Store]:
    opened = Store(stack.settings)
    try:
        yield opened
    finally:
        opened.close()


def one_pass(log: list[Positioned]) -> dict[str, Doc]:
    """The read model by definition: fold every event once, in log order."""
    docs: dict[str, Doc] = {}
    for item in log:
        key = str(item.event.originator_id)
        folded = fold(docs.get(key), item.event)
        if folded is not None:
            docs[key] = folded
    return docs


def expected_docs(store: Store) -> dict[str, Doc]:
    """The from-scratch fold of the store, as the read model holds it (JSON round trip)."""
    return {k: json.loads(json.dumps(v)) for k, v in one_pass(store.log()).items()}


def converged(store: Store, topic: str, partitions: int = PARTITIONS) -> bool:
    """Relay at the head, every partition's watermark at the head."""
    head = store.head()
    rows = store.partitions(topic)
    return (
        head > 0
        and store.relay_position() == head
        and len(rows) == partitions
        and all(watermark == head for _, watermark in rows.values())
    )


def wait_converged(store: Store, stack: Stack, timeout: float = 90.0) -> None:
    """Wait until relay and projectors reached the head, then compare with the fold."""
    try:
        wait_until(lambda: converged(store, stack.topic, stack.partitions), timeout, "convergence")
    except AssertionError as error:
        raise AssertionError(
            f"{error}\nhead={store.head()} relay={store.relay_position()}"
            f" partitions={store.partitions(stack.topic)}\n{stack.logs()}"
        ) from None
    assert_read_model_is_the_fold(store)


def assert_read_model_is_the_fold(store: Store) -> None:
    """Every read-model doc equals the from-scratch fold: nothing missing, nothing twice."""
    expected = expected_docs(store)
    actual = store.docs()
    assert set(actual) == set(expected), "engagements missing or extra in the read model"
    different = [k for k in expected if actual[k] != expected[k]]
    assert not different, f"{len(different)} docs differ from the fold, e.g. {different[:3]}"
    tracked = store.progress.tracking(store.progress.live_generation()).position
    assert tracked == store.head()


# -- HTTP -------------------------------------------------------------------------------


@dataclass
class Reply:
    """An HTTP answer: status, headers (lower-case names), parsed JSON body, raw bytes."""

    status: int
    headers: dict[str, str]
    body: Any
    raw: bytes


def http_request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 30.0,
) -> Reply:
    """One request on a fresh connection (safe from many threads)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        answer = {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
    parsed = json.loads(raw) if raw and "json" in answer.get("content-type", "") else None
    return Reply(response.status, answer, parsed, raw)


@dataclass
class Api:
    """A `coachlog serve` process and a coach's bearer token of its firm."""

    proc: Proc
    port: int
    token: str

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Reply:
        return http_request(self.port, method, path, body, self.token, timeout)


FIRM = "firm-kafka"
COACH = "coach-kafka"


def serve(stack: Stack, *extra: str, timeout: float = 60.0) -> Api:
    """Create a firm, a coach and a token with the CLI, serve, and wait for /readyz."""
    stack.cli("firms", "create", FIRM, "--name", "Kafka Coaching")
    stack.cli("users", "create", COACH, "--firm", FIRM, "--role", "coach")
    token = stack.cli("tokens", "create", COACH, "--firm", FIRM).strip().splitlines()[-1]
    assert token.startswith("cl_")
    port = free_port()
    proc = stack.spawn("serve", "serve", "--port", str(port), "--no-projections", *extra)
    api = Api(proc, port, token)

    def ready() -> bool:
        assert proc.alive(), proc.text()[-3000:]
        return http_request(port, "GET", "/readyz", timeout=2).status == 200

    wait_until(ready, timeout, "the API to be ready")
    return api


def opening_body(**overrides: Any) -> dict[str, Any]:
    """A valid POST /engagements body for the coach of ``serve``."""
    body: dict[str, Any] = {
        "client_id": f"client-{uuid.uuid4().hex[:8]}",
        "client_name": "Grace Hopper",
        "coach_id": COACH,
        "sponsor_id": "sponsor-acme",
        "segment": "stalled_mid_career",
        "delivery": "remote",
        "planned_sessions": 10,
        "cadence_days": 14,
        "fee_per_session": "150.00",
        "currency": "EUR",
    }
    body.update(overrides)
    return body


def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics as {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    reply = http_request(api.port, "GET", "/metrics", None, METRICS_TOKEN, 10)
    assert reply.status == 200, reply.raw[:500]
    samples = {}
    for family in text_string_to_metric_families(reply.raw.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


#: What the stack's API servers expect from the scraper of /metrics.
METRICS_TOKEN = "metrics-scraper-secret-of-the-tests"

SEED_TODAY = datetime(2026, 10, 20, 18, tzinfo=UTC)


def seed_chunk(store: Store, number: int, engagements: int) -> int:
    """Write a chunk of realistic engagements (a firm of its own); return its events."""
    report = seed_firm(
        store.app,
        seed=1000 + number,
        engagements=engagements,
        today=SEED_TODAY,
        firm_id=f"firm-load-{number}",
    )
    assert report.skipped == 0
    return report.events


def assignments(proc: Proc) -> list[list[int]]:
    """Every partition assignment a projector logged, in order."""
    found = []
    for line in proc.json_lines():
        message = str(line.get("message", ""))
        if message.startswith("partitions assigned: "):
            found.append(ast.literal_eval(message.removeprefix("partitions assigned: ")))
    return found


def topic_records(
    bootstrap: str, topic: str, required: Iterable[int], timeout: float = 45.0
) -> dict[int, list[tuple[int, int]]]:
    """partition -> [(offset, log position)] of every record on the topic (duplicates
    included), read from the beginning to the end offsets the broker reports once
    every ``required`` position was seen."""
    wanted = set(required)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        partitions = wait_until(
            lambda: consumer.partitions_for_topic(topic), 15, f"metadata of {topic}"
        )
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning()
        found: dict[int, list[tuple[int, int]]] = {p: [] for p in partitions}
        seen: set[int] = set()
        deadline = time.monotonic() + timeout
        ends: dict[TopicPartition, int] | None = None
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    position = int(dict(record.headers)["coachlog_position"])
                    found[tp.partition].append((record.offset, position))
                    seen.add(position)
            if ends is None and wanted <= seen:
                ends = consumer.end_offsets(assigned)
            if ends is not None and all(consumer.position(tp) >= ends[tp] for tp in assigned):
                break
        assert wanted <= seen, f"{len(wanted - seen)} positions never found on {topic}"
        assert ends is not None
        assert all(consumer.position(tp) >= ends[tp] for tp in assigned), (
            "topic not read to its end"
        )
        return found
    finally:
        consumer.close()


def topic_positions(bootstrap: str, topic: str, required: Iterable[int]) -> list[int]:
    """The log position of every record on the topic, duplicates included."""
    records = topic_records(bootstrap, topic, required)
    return [position for found in records.values() for _, position in found]
