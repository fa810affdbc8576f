"""Erasure over HTTP: all of a client's engagements or none, finished by a retry, and
seen by every worker of a live server before it is answered.

The races run against `coachlog serve --workers 2` on PostgreSQL (two processes, each
with its own cache of data keys); the half-way state is the one a process stopping
between the steps of an erasure leaves behind.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from psycopg import sql

from api import Services
from domain.context import CommandContext, acting
from tests.api.conftest import FIRM, assert_problem, history, open_engagement, opening_body
from tests.api.live import LIVE_COACH, LiveServer, Reply

WELLBEING = {"confidence": 6, "stress": 4, "motivation": 8, "imposter_feelings": 5}
ATTEMPTS = 6
WRITERS = 6


def _marker() -> str:
    return f"Marker {uuid.uuid4().hex[:12]}"


def _open_two(server: LiveServer, client_id: str, name: str) -> tuple[str, str]:
    ids = []
    for _ in range(2):
        body = opening_body(coach_id=LIVE_COACH, client_id=client_id, client_name=name)
        reply = server.request("POST", "/engagements", body)
        assert reply.status == 201, reply.body
        ids.append(reply.body["engagement_id"])
    return ids[0], ids[1]


def _keys_live(server: LiveServer, client_id: str) -> int:
    env = server.env
    with psycopg.connect(env["COACHLOG_DATABASE_URL"]) as conn:
        conn.execute(
            sql.SQL("SET search_path TO {}").format(sql.Identifier(env["COACHLOG_DATABASE_SCHEMA"]))
        )
        row = conn.execute(
            "SELECT count(*) FROM coachlog_data_keys WHERE client_id = %s"
            " AND wrapped_key IS NOT NULL",
            (client_id,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _raw_history(server: LiveServer, engagement_id: str) -> str:
    reply = server.request("GET", f"/engagements/{engagement_id}/history")
    assert reply.status == 200, reply.body
    return json.dumps(reply.body)


def _write_while_erasing(server: LiveServer, first: str, second: str) -> tuple[Reply, list[Reply]]:
    """Erase the client through ``first`` while writers hammer ``second``."""
    start = threading.Barrier(WRITERS + 1)
    writes: list[Reply] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer() -> None:
        try:
            start.wait()
            for _ in range(4):
                path = f"/engagements/{second}/check-wellbeing"
                reply = server.request("POST", path, WELLBEING)
                with lock:
                    writes.append(reply)
        except BaseException as error:  # reported below
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    start.wait()
    erased = server.request(
        "POST", f"/engagements/{first}/erase-subject", {}, headers=server.admin_auth
    )
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return erased, writes


def test_an_erasure_racing_writes_to_the_clients_other_engagement_erases_both(
    live_postgres: LiveServer,
) -> None:
    server = live_postgres
    for attempt in range(ATTEMPTS):
        client_id = f"client-race-{uuid.uuid4().hex[:8]}"
        name = _marker()
        first, second = _open_two(server, client_id, name)
        erased, writes = _write_while_erasing(server, first, second)
        assert erased.status == 200, (attempt, erased.body, server.log_text())
        for reply in writes:
            assert reply.status in (200, 409), (reply.status, reply.body)
            if reply.status == 409:
                assert reply.body["code"] in ("subject_erased", "concurrency_conflict"), reply.body
        for engagement_id in (first, second):
            events = server.request("GET", f"/engagements/{engagement_id}/history").body["events"]
            assert [e["event_type"] for e in events].count("SubjectErased") == 1, events
            assert events[-1]["event_type"] == "SubjectErased"
            assert name not in _raw_history(server, engagement_id)
        assert _keys_live(server, client_id) == 0
        again = server.request(
            "POST", f"/engagements/{first}/erase-subject", {}, headers=server.admin_auth
        )
        assert again.status == 409
        assert again.body["code"] == "subject_erased"


def test_an_erasure_is_seen_by_every_worker_before_it_is_answered(
    live_postgres: LiveServer,
) -> None:
    server = live_postgres
    client_id = f"client-seen-{uuid.uuid4().hex[:8]}"
    name = _marker()
    first, second = _open_two(server, client_id, name)
    readers = 8

    def read_all(rounds: int) -> list[str]:
        bodies: list[str] = []
        failures: list[BaseException] = []
        lock = threading.Lock()
        barrier = threading.Barrier(readers)

        def reader() -> None:
            try:
                barrier.wait()
                for _ in range(rounds):
                    for engagement_id in (first, second):
                        text = _raw_history(server, engagement_id)
                        with lock:
                            bodies.append(text)
            except BaseException as error:  # reported below
                with lock:
                    failures.append(error)

        threads = [threading.Thread(target=reader) for _ in range(readers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not failures, failures
        return bodies

    # Every worker reads (and caches) the client's key: many concurrent readers.
    before = read_all(5)
    assert all(name in body for body in before)
    erased = server.request(
        "POST", f"/engagements/{first}/erase-subject", {}, headers=server.admin_auth
    )
    assert erased.status == 200, erased.body
    after = read_all(3)
    leaked = [body for body in after if name in body]
    assert not leaked, f"{len(leaked)} of {len(after)} answers after the erasure show the name"


def test_an_erasure_stopped_half_way_is_finished_by_the_same_request(
    client: FlaskClient, services: Services, token_for: Any
) -> None:
    coach = {"Authorization": f"Bearer {token_for('coach')}"}
    admin = {"Authorization": f"Bearer {token_for('firm_admin')}"}
    name = _marker()
    first = open_engagement(client, coach, client_id="client-half", client_name=name)
    second = open_engagement(client, coach, client_id="client-half", client_name=name)
    # What a process stopping after the first step leaves: the erasure recorded on one
    # engagement only, the other untouched, the key alive.
    app = services.engagements
    engagement = app.get(FIRM, uuid.UUID(first))
    ctx = CommandContext(actor_id="firm-admin-1", actor_role="firm_admin", firm_id=FIRM)
    with acting(ctx):
        engagement.erase_subject()
    app.group_commit.save(engagement.collect_events())
    assert app.keys.store.current_key(FIRM, "client-half") is not None
    assert name in json.dumps(history(client, coach, second))

    finished = client.post(f"/engagements/{first}/erase-subject", json={}, headers=admin)
    assert finished.status_code == 200, finished.get_json()
    assert finished.get_json()["version"] == 2
    assert app.keys.store.current_key(FIRM, "client-half") is None
    for engagement_id in (first, second):
        events = history(client, coach, engagement_id)
        assert [e["event_type"] for e in events] == ["EngagementOpened", "SubjectErased"]
        assert name not in json.dumps(events)
    assert_problem(
        client.post(f"/engagements/{first}/erase-subject", json={}, headers=admin),
        409,
        "subject_erased",
    )
    assert_problem(
        client.post(f"/engagements/{second}/erase-subject", json={}, headers=admin),
        409,
        "subject_erased",
    )


@pytest.mark.parametrize("keyed", [False, True])
def test_an_erasure_names_every_engagement_of_the_client_in_one_transaction(
    client: FlaskClient, services: Services, token_for: Any, keyed: bool
) -> None:
    coach = {"Authorization": f"Bearer {token_for('coach')}"}
    admin = {"Authorization": f"Bearer {token_for('firm_admin')}"}
    client_id = f"client-all-{int(keyed)}"
    ids = [open_engagement(client, coach, client_id=client_id) for _ in range(3)]
    headers = {**admin, "Idempotency-Key": f"erase-{client_id}"} if keyed else admin
    transactions = services.engagements.group_commit.transactions
    reply = client.post(f"/engagements/{ids[1]}/erase-subject", json={}, headers=headers)
    assert reply.status_code == 200, reply.get_json()
    assert services.engagements.group_commit.transactions == transactions + 1
    for engagement_id in ids:
        events = history(client, coach, engagement_id)
        assert events[-1]["event_type"] == "SubjectErased"
        assert (
            events[-1]["metadata"]["correlation_id"]
            == (history(client, coach, ids[1])[-1]["metadata"]["correlation_id"])
        )


def test_an_erasure_leaves_no_personal_text_outside_the_sealed_events(
    client: FlaskClient, services: Services, token_for: Any
) -> None:
    coach = {"Authorization": f"Bearer {token_for('coach')}"}
    admin = {"Authorization": f"Bearer {token_for('firm_admin')}"}
    name = _marker()
    services.accounts.create_user(FIRM, "client-named", "client", name=name)
    engagement_id = open_engagement(client, coach, client_id="client-named", client_name=name)
    # The one free-text-looking field kept in clear takes a label, never a sentence.
    refused = client.post(
        f"/engagements/{engagement_id}/complete-assessment",
        json={"instrument": "disc", "instrument_version": f"{name}'s own", "result": {"a": 1}},
        headers=coach,
    )
    assert_problem(refused, 422)
    # A key naming the client is stored only as a keyed hash.
    keyed = {**admin, "Idempotency-Key": f"erase {name}"}
    reply = client.post(f"/engagements/{engagement_id}/erase-subject", json={}, headers=keyed)
    assert reply.status_code == 200, reply.get_json()
    row = services.db.read_row(
        "SELECT name FROM coachlog_users WHERE firm_id = %s AND user_id = %s",
        (FIRM, "client-named"),
    )
    assert row is not None
    assert row[0] == ""
    with services.db.read() as cur:
        for table in ("coachlog_users", "coachlog_idempotency_keys"):
            cur.execute(f"SELECT * FROM {table}")
            assert name not in repr(cur.fetchall()), table
    assert name not in json.dumps(history(client, coach, engagement_id))
