"""PostgreSQL stops under load: the API answers 503 (problem+json) and is not ready;
when it is back everything resumes, nothing is half-written, and the read model is
the fold of the store."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.workers.conftest import (
    Api,
    PgCluster,
    Reply,
    Stack,
    Store,
    make_stack,
    opening_body,
    serve,
    wait_converged,
    wait_until,
)


@pytest.fixture
def cluster_stack(pg_cluster: PgCluster, kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    schema = f"w_{uuid.uuid4().hex[:12]}"
    built = make_stack(pg_cluster.url, schema, kafka_bootstrap, tmp_path)
    try:
        yield built
    finally:
        built.kill_all()


@dataclass
class Sent:
    """One command the load sent, and what came back (None: no answer at all)."""

    path: str
    reply: Reply | None
    at: float


class Load:
    """Opens engagements and schedules and holds sessions over HTTP, until stopped."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.sent: list[Sent] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="http-load")

    def post(self, path: str, body: dict[str, object]) -> Reply | None:
        try:
            reply: Reply | None = self.api.request("POST", path, body, timeout=20)
        except OSError:
            reply = None
        self.sent.append(Sent(path, reply, time.monotonic()))
        return reply

    def run(self) -> None:
        while not self.stopping.is_set():
            opened = self.post("/engagements", opening_body())
            if opened is None or opened.status != 201:
                time.sleep(0.2)
                continue
            base = f"/engagements/{opened.body['engagement_id']}"
            for _ in range(3):
                when = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
                scheduled = self.post(
                    f"{base}/schedule-session", {"scheduled_for": when, "duration_minutes": 60}
                )
                if scheduled is None or scheduled.status != 200:
                    break
                self.post(
                    f"{base}/hold-session",
                    {
                        "session_id": scheduled.body["result"],
                        "duration_minutes": 50,
                        "pillars": ["skills"],
                        "notes": "fine",
                    },
                )

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=60)


def assert_problem_503(reply: Reply) -> None:
    assert reply.status == 503, (reply.status, reply.raw[:300])
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.body["status"] == 503
    assert b"Traceback" not in reply.raw
    assert b"psycopg" not in reply.raw


def test_postgres_restart(cluster_stack: Stack, pg_cluster: PgCluster) -> None:
    stack = cluster_stack
    api = serve(stack, "--workers", "2")
    stack.relay()
    stack.projector()
    store = Store(stack.settings)
    try:
        with Load(api) as load:
            # Relay and projector are past their start and folding the load.
            wait_until(
                lambda: (
                    store.relay_position() > 0
                    and len(store.partitions(stack.topic)) == stack.partitions
                ),
                60,
                "relay and projector at work",
            )
            time.sleep(1)
            pg_cluster.stop("fast")
            down_at = time.monotonic()
            wait_until(
                lambda: api.request("GET", "/readyz", timeout=10).status == 503,
                20,
                "/readyz to answer 503",
            )
            ready = api.request("GET", "/readyz", timeout=10)
            assert ready.headers["content-type"].startswith("application/problem+json")
            command = api.request("POST", "/engagements", opening_body(), timeout=20)
            assert_problem_503(command)
            time.sleep(2)
            pg_cluster.start()
            up_at = time.monotonic()
            wait_until(
                lambda: api.request("GET", "/readyz", timeout=10).status == 200,
                60,
                "/readyz to answer 200 again",
            )
            # Commands work again.
            wait_until(
                lambda: api.request("POST", "/engagements", opening_body()).status == 201,
                30,
                "commands to succeed again",
            )
            time.sleep(3)
        assert not load.thread.is_alive()

        replies = [s for s in load.sent if s.reply is not None]
        assert {s.reply.status for s in replies if s.reply} <= {200, 201, 503}, [
            (s.path, s.reply.status, s.reply.raw[:200]) for s in replies if s.reply
        ]
        during = [s for s in replies if s.reply and s.reply.status == 503]
        for sent in during:
            assert sent.reply is not None
            assert_problem_503(sent.reply)
        assert during, "the load never met the outage"
        ok_before = [s for s in replies if s.at < down_at and s.reply and s.reply.status < 300]
        ok_after = [s for s in replies if s.at > up_at and s.reply and s.reply.status < 300]
        assert ok_before
        assert ok_after

        wait_converged(store, stack, timeout=120)

        # No half-written command: every stream is contiguous, and every version a 2xx
        # answer reported is in the store.
        versions: dict[str, list[int]] = {}
        for item in store.log():
            versions.setdefault(str(item.event.originator_id), []).append(
                item.event.originator_version
            )
        for engagement_id, found in versions.items():
            assert sorted(found) == list(range(1, len(found) + 1)), engagement_id
        for sent in replies:
            assert sent.reply is not None
            if sent.reply.status < 300:
                body = sent.reply.body
                assert body["version"] in versions[body["engagement_id"]], sent.path
    finally:
        store.close()
