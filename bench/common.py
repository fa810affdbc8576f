"""Shared pieces of the benchmark: scratch databases, timers, percentiles, child RSS, output.

Every section measures the product against a baseline taken in the same run and on
the same machine, and records one or more ``Check`` rows (figure, baseline, ratio,
target, PASS/MISS). ``bench/run.py`` collects them and writes docs/PERFORMANCE.md.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api import Services  # noqa: E402
from coachlog.bootstrap import bootstrap_services  # noqa: E402
from coachlog.seed import firm_timelines  # noqa: E402
from coachlog.settings import Settings  # noqa: E402
from domain.commands import OpenEngagement  # noqa: E402
from domain.context import CommandContext  # noqa: E402
from domain.values import Delivery, Segment  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
EXE = str(Path(sys.executable).parent / "coachlog")
PSEUDONYM_KEY = "bench-key-0123456789abcdef"
BIG_FIRM = "firm-bench"


# -- results ---------------------------------------------------------------------------


@dataclass
class Check:
    """One measured figure against its same-run baseline and its target."""

    section: str
    name: str
    figure: str
    baseline: str
    ratio: float | None
    target: str
    passed: bool | None  # None: no target (reported only)
    note: str = ""

    @property
    def verdict(self) -> str:
        return "—" if self.passed is None else ("PASS" if self.passed else "MISS")


@dataclass
class Report:
    """Everything a run measured: checks, free-form tables and notes per section."""

    quick: bool
    checks: list[Check] = field(default_factory=list)
    tables: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def check(self, check: Check) -> None:
        self.checks.append(check)
        ratio = "" if check.ratio is None else f"ratio {check.ratio:.3f}"
        say(
            f"  [{check.verdict}] {check.name}: {check.figure} vs {check.baseline}"
            f" {ratio} (target {check.target})"
        )

    def table(self, section: str, header: list[str], rows: list[list[str]]) -> None:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        self.tables.setdefault(section, []).extend([*lines, ""])
        for line in lines:
            say("  " + line)

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)
        say(f"  note: {text}")


def say(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


# -- statistics and timing -----------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Load:
    """What a closed-loop load run did: operations, wall time, per-operation latencies."""

    ops: int
    seconds: float
    latencies: list[float]
    errors: int = 0

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    def describe(self, unit: str = "events/s") -> str:
        return (
            f"{self.rate:,.0f} {unit}, p50 {self.p(50) * 1000:.2f} ms,"
            f" p99 {self.p(99) * 1000:.2f} ms ({self.ops:,} ops)"
        )


def closed_loop(
    clients: int,
    per_client: int,
    seconds: float,
    make_worker: Callable[[int], Callable[[int], object]],
) -> Load:
    """Run ``clients`` threads, each calling its worker ``per_client`` times at most and
    stopping at the deadline; every call is timed. ``make_worker(i)`` runs before the
    clock starts (connections, engagements)."""
    workers = [make_worker(i) for i in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def loop(i: int) -> None:
        work, mine = workers[i], latencies[i]
        start.wait()
        for n in range(per_client):
            if time.perf_counter() > deadline[0]:
                break
            t0 = time.perf_counter()
            try:
                work(n)
            except Exception as error:
                errors[i] += 1
                if errors[i] == 1:
                    say(f"  client {i} error: {type(error).__name__}: {error}")
                if errors[i] > 20:
                    break
                continue
            mine.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join(seconds + 120)
    elapsed = time.perf_counter() - t0
    flat = [x for lst in latencies for x in lst]
    return Load(len(flat), elapsed, flat, sum(errors))


def merge(loads: list[Load]) -> Load:
    """Several rounds of one measurement as one."""
    return Load(
        sum(x.ops for x in loads),
        sum(x.seconds for x in loads),
        [v for x in loads for v in x.latencies],
        sum(x.errors for x in loads),
    )


def interleaved(rounds: int, runs: dict[str, Callable[[], Load]]) -> dict[str, Load]:
    """Run each measurement ``rounds`` times, alternating them, and merge the rounds: the
    product and its baseline then see the same drift of the machine (fsync latency on a
    virtual disk varies several-fold from minute to minute)."""
    got: dict[str, list[Load]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            got[name].append(fn())
    return {name: merge(loads) for name, loads in got.items()}


# -- databases ----------------------------------------------------------------------------


@contextmanager
def scratch_database(admin_url: str, tag: str) -> Iterator[str]:
    """Create a scratch database, yield its URL, drop it afterwards (even on failure)."""
    name = f"coachlog_bench_{tag}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def services(url: str) -> Services:
    """The real application wiring (event store, read-model store, dashboards, accounts)."""
    return bootstrap_services(Settings(database_url=url))


def child_env(url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "COACHLOG_DATABASE_URL": url,
        "COACHLOG_PSEUDONYM_KEY": PSEUDONYM_KEY,
        **extra,
    }


def open_engagements(
    svc: Services, firm_id: str, count: int, actor: str = "admin-bench"
) -> list[uuid.UUID]:
    """Open ``count`` fresh engagements (version 1) through the application service."""
    ctx = CommandContext(actor_id=actor, actor_role="firm_admin", firm_id=firm_id)
    ids = []
    for i in range(count):
        result = svc.engagements.open_engagement(
            ctx,
            OpenEngagement(
                client_id=f"client-{i}",
                client_name="Bench Client",
                coach_id="coach-bench",
                segment=Segment.RETURNER,
                delivery=Delivery("remote"),
                planned_sessions=10,
                cadence_days=14,
                fee_per_session=Decimal("150"),
                currency="EUR",
            ),
        )
        ids.append(result.engagement_id)
    return ids


def admin_token(svc: Services, firm_id: str, user: str = "admin-bench") -> str:
    if not svc.accounts.firm_exists(firm_id):
        svc.accounts.create_firm(firm_id, "Bench firm")
        svc.accounts.create_user(firm_id, user, "firm_admin", "Bench admin")
    return svc.accounts.issue_token(firm_id, user)


class GrowingLog:
    """One firm's log grown engagement by engagement (seeded timelines, each saved at
    once through ``import_engagement``), shared by the sections that need a big log."""

    def __init__(self, url: str, seed: int = 9) -> None:
        self.url = url
        self.svc = services(url)
        self.timelines = firm_timelines(seed, 1_000_000, datetime.now(UTC), BIG_FIRM)
        self.engagements = 0
        self.seed_seconds = 0.0

    @property
    def events(self) -> int:
        return self.svc.engagements.recorder.max_notification_id() or 0

    def _grow(self, done: Callable[[], bool], label: str) -> None:
        if done():
            return
        t0 = time.perf_counter()
        before = self.events
        while not done():
            opening, steps = next(self.timelines)
            self.svc.engagements.import_engagement(opening, steps)
            self.engagements += 1
        took = time.perf_counter() - t0
        self.seed_seconds += took
        say(
            f"  grew the log to {self.events:,} events / {self.engagements:,} engagements"
            f" ({label}; {(self.events - before) / took:,.0f} events/s seeding)"
        )

    def grow_to_events(self, events: int) -> None:
        self._grow(lambda: self.events >= events, f"≥ {events:,} events")

    def grow_to_engagements(self, engagements: int) -> None:
        self._grow(lambda: self.engagements >= engagements, f"{engagements:,} engagements")

    def close(self) -> None:
        self.svc.close()


def raw_keyset_read(url: str, page: int = 1000) -> tuple[int, float]:
    """Read the whole event log in keyset pages with plain psycopg: (rows, seconds)."""
    rows, after = 0, 0
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        while True:
            got = conn.execute(
                "SELECT notification_id, originator_id, originator_version, topic, state"
                " FROM engagements_events WHERE notification_id > %s"
                " ORDER BY notification_id LIMIT %s",
                (after, page),
                prepare=True,
            ).fetchall()
            if not got:
                break
            rows += len(got)
            after = got[-1][0]
    return rows, time.perf_counter() - t0


# -- child processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child:
    """A child process we started; stopped by its own pid, its peak RSS read by wait4."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path | None = None) -> None:
        self.log = log
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.started = time.perf_counter()
        self.seconds = 0.0
        self.peak_rss_mib = 0.0
        self.returncode: int | None = None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, wait (SIGKILL after ``timeout``), record time and peak RSS."""
        if self.returncode is None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.wait(timeout)

    def wait(self, timeout: float) -> None:
        if self.returncode is not None:
            return
        deadline = time.perf_counter() + timeout
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                self.proc.kill()
                pid, status, usage = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.05)
        self.seconds = time.perf_counter() - self.started
        # ru_maxrss of this child (and of its waited-for children, e.g. gunicorn workers).
        self.peak_rss_mib = usage.ru_maxrss / 1024
        self.returncode = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.returncode


# -- HTTP ----------------------------------------------------------------------------------


class Http:
    """A keep-alive HTTP/1.1 client for one thread."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        data = None if body is None else json.dumps(body).encode()
        hdrs = {**self.headers, **(headers or {})}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
            resp = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise
        raw = resp.read()
        ctype = resp.getheader("Content-Type", "")
        payload = json.loads(raw) if raw and "json" in ctype else raw
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload

    def close(self) -> None:
        self.conn.close()


def wait_http(port: int, path: str = "/readyz", timeout: float = 60) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            client = Http(port)
            status, _, _ = client.request("GET", path)
            client.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    msg = f"nothing answered 200 on 127.0.0.1:{port}{path} within {timeout:.0f}s"
    raise TimeoutError(msg)


# -- machine ---------------------------------------------------------------------------------


def machine(admin_url: str) -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    with psycopg.connect(admin_url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("fsync", "synchronous_commit", "shared_buffers", "max_connections")
        }
    return {
        "host": platform.node(),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "ram": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg,
        "postgresql settings": ", ".join(f"{k}={v}" for k, v in settings.items()),
        "kafka": kafka_broker("127.0.0.1:9092"),
    }


def kafka_broker(bootstrap: str) -> str:
    """What answers at ``bootstrap``, for the report."""
    from tests.broker import answers, is_apache_kafka, kafka_version

    host, _, port = bootstrap.rpartition(":")
    if not answers(host, int(port)):
        return f"none at {bootstrap}"
    if is_apache_kafka(bootstrap):
        return f"Apache Kafka (scripts/kafka/pom.xml: {kafka_version()}) at {bootstrap}"
    return f"a Kafka-protocol broker that is not Apache Kafka 4, at {bootstrap}"
