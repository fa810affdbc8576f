"""The production topology run for real: what docker-compose starts, as processes, on
PostgreSQL and Apache Kafka.

``coachlog migrate`` runs to completion; then the API under gunicorn with three
workers, the relay, two projectors and the anchoring loop start together, as
docker-compose starts them (the projectors before the topic exists: the relay creates
it with the configured partitions, the broker never does). Commands arrive over HTTP —
most of them entered late, occurred days before they are recorded, and a batch sent
by several clients at once — and the dashboards are read back fresh (lag 0) with
figures computed by hand. Then an outside consumer, Debian's ``kcat`` (librdkafka, a
third-party Kafka client), reads the topic and checks the CloudEvents headers, the
keys, the partitions and the per-key order, and that no personal text travels in the
clear; the anchoring loop has anchored the head and the history verifies.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.workers.conftest import (
    Api,
    Proc,
    Reply,
    Stack,
    Store,
    assignments,
    free_port,
    http_request,
    make_stack,
    scrape,
    wait_until,
)
from workers.codec import partition_for

FIRM = "firm-topology"
PARTITIONS = 6  # what docker-compose configures
API_WORKERS = 3
BATCH = 12  # engagements opened by several clients at once
NOW = datetime.now(UTC)
#: In every client's name and session note: personal text, which must never travel in
#: the clear.
MARKER = "Quillfeather"
NOTES = f"talked about the next application ({MARKER})"


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


@pytest.fixture
def topology(
    postgres_url: str, pg_schema: str, kafka_bootstrap: str, tmp_path: Path
) -> Iterator[Stack]:
    """A schema and a topic name of this test's own; the topic is not created."""
    built = make_stack(postgres_url, pg_schema, kafka_bootstrap, tmp_path, create=False)
    built.partitions = PARTITIONS
    try:
        yield built
    finally:
        built.kill_all()


class Client:
    """Bearer-token HTTP calls to the API process."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token

    def get(self, path: str) -> Reply:
        return http_request(self.port, "GET", path, token=self.token, timeout=10)

    def post(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        reply = http_request(self.port, "POST", path, body, self.token)
        assert reply.status == status, (path, reply.status, reply.body)
        answer: dict[str, Any] = reply.body
        return answer


def accounts(stack: Stack) -> tuple[str, str]:
    """The firm, a firm admin and a coach, with a token each (what ``coachlog firms /
    users / tokens create`` do, run here: each CLI process would cost seconds)."""
    store = Store(stack.settings)
    try:
        service = store.services.accounts
        service.create_firm(FIRM, "Topology Coaching")
        service.create_user(FIRM, "admin-1", "firm_admin", "")
        service.create_user(FIRM, "coach-ada", "coach", "")
        return service.issue_token(FIRM, "admin-1"), service.issue_token(FIRM, "coach-ada")
    finally:
        store.close()


def gunicorn_workers(proc: Proc) -> list[int]:
    """The pids of the gunicorn master's worker processes."""
    assert proc.process is not None
    master = proc.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def opening(coach: str, client: str, name: str, fee: str, occurred: str) -> dict[str, Any]:
    return {
        "client_id": client,
        "client_name": name,
        "coach_id": coach,
        "segment": "stalled_mid_career",
        "delivery": "remote",
        "planned_sessions": 10,
        "cadence_days": 14,
        "fee_per_session": fee,
        "currency": "EUR",
        "occurred_at": occurred,
    }


def held_session(
    api: Client, engagement: str, scheduled_for: str, scheduled_at: str, held_at: str
) -> None:
    """Schedule a session and hold it, both entered now with their real (past) times."""
    base = f"/engagements/{engagement}"
    scheduled = api.post(
        f"{base}/schedule-session",
        {"scheduled_for": scheduled_for, "duration_minutes": 60, "occurred_at": scheduled_at},
    )
    api.post(
        f"{base}/hold-session",
        {
            "session_id": scheduled["result"],
            "duration_minutes": 55,
            "pillars": ["goals"],
            "notes": NOTES,
            "occurred_at": held_at,
        },
    )


def waited(stack: Stack, condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """``wait_until``, with every process's log in the message when it times out."""
    try:
        return wait_until(condition, timeout, what)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{stack.logs()}") from None


def kcat(*args: str) -> str:
    """Run Debian's kcat; return what it printed."""
    exe = shutil.which("kcat")
    if exe is None:
        pytest.fail("kcat is not installed; the test command installs it")
    done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def kcat_records(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of the topic, read by kcat from the beginning to the end."""
    printed = kcat("-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J", "-q")
    return [json.loads(line) for line in printed.splitlines() if line.strip()]


def kcat_partitions(bootstrap: str, topic: str) -> int:
    """How many partitions the broker says the topic has (kcat's metadata listing)."""
    listed = json.loads(kcat("-L", "-b", bootstrap, "-t", topic, "-J"))
    (described,) = [t for t in listed["topics"] if t["topic"] == topic]
    return len(described["partitions"])


def test_the_production_topology(topology: Stack) -> None:
    stack = topology
    stack.cli("migrate")  # docker-compose's one-shot service, before the others start
    admin_token, coach_token = accounts(stack)

    port = free_port()
    serve = stack.spawn(
        "api", "serve", "--port", str(port), "--workers", str(API_WORKERS), "--no-projections"
    )
    projectors = [stack.projector("projector-1"), stack.projector("projector-2")]
    relay = stack.relay()
    anchor = stack.spawn("anchor", "audit", "anchor", "--every", "2")

    def ready() -> bool:
        assert serve.alive(), serve.text()[-3000:]
        return http_request(port, "GET", "/readyz", timeout=2).status == 200

    waited(stack, ready, 60, "the API to be ready")
    assert len(gunicorn_workers(serve)) == API_WORKERS
    api = Client(port, admin_token)

    # Engagement A (coach-ada): opened 30 days ago, two sessions held, invoiced, paid —
    # every command entered now, with the day it happened.
    a = api.post(
        "/engagements", opening("coach-ada", "c-a", f"Ada {MARKER}", "150.00", ago(30)), 201
    )
    a_id = a["engagement_id"]
    held_session(api, a_id, ago(21), ago(28), ago(21))
    held_session(api, a_id, ago(7), ago(14), ago(7))
    invoice = api.post(
        f"/engagements/{a_id}/issue-invoice",
        {"amount": "300.00", "currency": "EUR", "occurred_at": ago(6)},
    )
    api.post(
        f"/engagements/{a_id}/receive-payment",
        {
            "invoice_id": invoice["result"],
            "amount": "300.00",
            "currency": "EUR",
            "occurred_at": ago(2),
        },
    )
    # B (coach-ada): one session held three days ago, invoiced, not paid.
    b = api.post(
        "/engagements", opening("coach-ada", "c-b", f"Bea {MARKER}", "150.00", ago(10)), 201
    )
    b_id = b["engagement_id"]
    held_session(api, b_id, ago(3), ago(9), ago(3))
    api.post(
        f"/engagements/{b_id}/issue-invoice",
        {"amount": "150.00", "currency": "EUR", "occurred_at": ago(2)},
    )
    # C (coach-bo): one session planned in two days.
    c = api.post("/engagements", opening("coach-bo", "c-c", f"Cy {MARKER}", "200.00", ago(5)), 201)
    c_id = c["engagement_id"]
    api.post(
        f"/engagements/{c_id}/schedule-session",
        {"scheduled_for": (NOW + timedelta(days=2)).isoformat(), "duration_minutes": 60},
    )

    # A batch from several clients at once, spread over the gunicorn workers: each opens
    # an engagement for coach-cy and holds one session.
    def one(number: int) -> str:
        opened = api.post(
            "/engagements",
            opening("coach-cy", f"c-batch-{number}", f"Batch {MARKER} {number}", "100.00", ago(4)),
            201,
        )
        held_session(api, opened["engagement_id"], ago(1), ago(3), ago(1))
        return str(opened["engagement_id"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        batch = list(pool.map(one, range(BATCH)))
    assert len(set(batch)) == BATCH

    store = Store(stack.settings)
    try:
        head = store.head()
    finally:
        store.close()
    # A: opened, 2 x (scheduled, held), invoiced, paid = 7 events; B: opened, scheduled,
    # held, invoiced = 4; C: opened, scheduled = 2; each of the batch: 3.
    assert head == 7 + 4 + 2 + 3 * BATCH

    # Read back fresh: every read model at the head, from the relay and both projectors.
    def fresh(path: str) -> dict[str, Any] | None:
        reply = api.get(path)
        if reply.status != 200:
            return None
        freshness = reply.body["freshness"]
        if freshness["position"] != head or freshness["lag"] != 0:
            return None
        assert reply.headers["x-coachlog-lag"] == "0"
        answer: dict[str, Any] = reply.body
        return answer

    overview = waited(stack, lambda: fresh("/firm/overview"), 120, "a fresh firm overview")
    assert overview["freshness"]["published"] == head
    assert overview["freshness"]["relay_lag"] == 0
    firm = overview["data"]
    assert firm["engagements"] == 3 + BATCH
    assert firm["active"] == 3 + BATCH
    assert firm["sessions_held"] == 3 + BATCH
    assert firm["currency"] == "EUR"
    assert firm["invoiced"] == "450.00"
    assert firm["paid"] == "300.00"
    assert firm["outstanding"] == "150.00"

    a_board = fresh(f"/engagements/{a_id}/dashboard")
    assert a_board is not None
    assert a_board["data"]["version"] == 7
    assert a_board["data"]["sessions"]["held"] == 2
    assert a_board["data"]["sessions"]["scheduled"] == 0
    assert a_board["data"]["money"]["invoiced"] == "300.00"
    assert a_board["data"]["money"]["paid"] == "300.00"
    c_board = fresh(f"/engagements/{c_id}/dashboard")
    assert c_board is not None
    assert c_board["data"]["sessions"]["held"] == 0
    assert c_board["data"]["sessions"]["scheduled"] == 1

    # The personal text is there for those allowed to read it (the kcat check below
    # finds none of it on the topic).
    state = api.get(f"/engagements/{a_id}/history")
    assert state.status == 200
    assert NOTES in state.raw.decode()

    # The coach sees her own portfolio: A and B, three sessions held.
    portfolio = http_request(port, "GET", "/coaches/coach-ada/portfolio", token=coach_token)
    assert portfolio.status == 200, portfolio.body
    assert portfolio.body["freshness"]["lag"] == 0
    mine = portfolio.body["data"]
    assert mine["engagements"] == 2
    assert mine["sessions_held"] == 3

    # Lag figures on /metrics: zero everywhere, one partition series per partition.
    samples = scrape(Api(serve, port, admin_token))
    assert samples[("coachlog_log_head_position", ())] == head
    assert samples[("coachlog_relay_position", (("relay", "relay"),))] == head
    assert samples[("coachlog_projection_position", (("read_model", "progress"),))] == head
    assert samples[("coachlog_relay_lag_events", (("relay", "relay"),))] == 0
    assert samples[("coachlog_projection_lag_events", (("read_model", "progress"),))] == 0
    lags = [
        value
        for (name, labels), value in samples.items()
        if name == "coachlog_projector_partition_lag_events" and ("topic", stack.topic) in labels
    ]
    assert lags == [0] * PARTITIONS

    # The relay created the topic, with the configured partitions (nobody else did: the
    # test made none, and the broker creates none on a subscription).
    assert f"created topic {stack.topic} with {PARTITIONS} partitions" in relay.text()
    assert kcat_partitions(stack.bootstrap, stack.topic) == PARTITIONS
    # Both projectors are at work, each on partitions of its own (the read model may
    # have converged before the group assigned them: partitions nobody owns are swept
    # from the store).
    assert all(p.alive() for p in projectors)

    def both_own_partitions() -> bool:
        return all(assignments(p) and assignments(p)[-1] for p in projectors)

    wait_until(both_own_partitions, 30, "both projectors to own partitions")
    owned = [set(assignments(p)[-1]) for p in projectors]
    assert all(owned)
    assert not owned[0] & owned[1]
    assert owned[0] | owned[1] == set(range(PARTITIONS))
    records = kcat_records(stack.bootstrap, stack.topic)

    # The outside consumer: CloudEvents headers, keys, partitions, per-key order.
    positions = []
    by_partition: dict[int, list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        by_partition.setdefault(record["partition"], []).append(record)
    versions: dict[str, list[int]] = {}
    engagements = {a_id, b_id, c_id, *batch}
    for partition, found in by_partition.items():
        previous = 0
        for record in found:
            headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
            key = record["key"]
            position = int(headers["coachlog_position"])
            assert key in engagements
            assert partition == partition_for(key, PARTITIONS)
            assert headers["ce_specversion"] == "1.0"
            assert headers["ce_source"] == f"urn:coachlog:firm:{FIRM}"
            assert headers["ce_subject"] == key
            assert headers["ce_type"].startswith("coachlog.")
            assert headers["content-type"] == "application/json"
            assert datetime.fromisoformat(headers["ce_time"]).tzinfo is not None
            ce_key, _, version = headers["ce_id"].rpartition("/")
            assert ce_key == key
            # the chain: each record names the previous position of its partition
            assert int(headers["coachlog_previous_position"]) == previous
            assert position > previous
            previous = position
            versions.setdefault(key, []).append(int(version))
            positions.append(position)
            payload = json.loads(record["payload"])
            assert payload["originator_id"] == key
            assert payload["originator_version"] == int(version)
            # personal text travels only sealed
            assert MARKER not in record["payload"], headers["ce_type"]
            assert MARKER not in json.dumps(record["headers"])
    assert sorted(positions) == list(range(1, head + 1))  # each event once, none missing
    for key, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), key  # in order, per key
    assert len(versions[a_id]) == 7
    assert sum(len(v) for v in versions.values()) == head

    # The anchoring loop anchored the head; the history verifies against it.
    def anchored() -> dict[str, Any] | None:
        reply = api.get("/audit/anchors/latest")
        return reply.body if reply.status == 200 and reply.body["position"] == head else None

    latest = waited(stack, anchored, 30, "an anchor at the head")
    assert anchor.alive()
    verified = api.get(f"/audit/verify?expect_digest={latest['digest']}")
    assert verified.status == 200, verified.body
    assert verified.body["ok"] is True
    assert verified.body["engagements"] == 3 + BATCH
