"""Engagement ids and correlation ids are never the client's to choose or predict.

A hostile coach used to pre-create the engagement an admin's keyed open would name (its
id was a uuid5 of the Idempotency-Key), a coach of another firm could squat that id (the
admin then got a 409 that also told the id existed elsewhere), and X-Correlation-Id was
believed. Now every id is random, made by the server; keys are per firm and user and
stored only as keyed hashes.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from api import Services
from api.idempotency import CLAIM_TIMEOUT_SECONDS, TABLE, IdempotencyStore
from domain.commands import CelebrateWin
from domain.context import CommandContext
from tests.api.conftest import (
    FIRM,
    OTHER_FIRM,
    assert_problem,
    history,
    open_engagement,
    opening_body,
    post_command,
)

#: How earlier versions derived an engagement id from a key (anyone could).
_OLD_NAMESPACE = uuid.UUID("6f1c1f0e-5d8a-4b8e-9a43-2f1f3b6c0d11")


def _derived(firm: str, user: str, key: str) -> uuid.UUID:
    return uuid.uuid5(_OLD_NAMESPACE, f"{firm}\x00{user}:{key}")


def _bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def test_a_coach_cannot_take_the_engagement_an_admin_opens_with_a_guessable_key(
    client: FlaskClient, token_for: Callable[..., str]
) -> None:
    coach = _bearer(token_for("coach"), **{"Idempotency-Key": "open-grace-1"})
    admin = _bearer(token_for("firm_admin"), **{"Idempotency-Key": "open-grace-1"})
    # The body may not name the id the admin's request will get (nor any id).
    squat = client.post(
        "/engagements",
        json=opening_body(engagement_id=str(_derived(FIRM, "firm-admin-1", "open-grace-1"))),
        headers=coach,
    )
    assert "engagement_id" in assert_problem(squat, 422, "validation_failed")["errors"]
    mine = client.post("/engagements", json=opening_body(client_name="Eve"), headers=coach)
    assert mine.status_code == 201
    theirs = client.post("/engagements", json=opening_body(), headers=admin)
    assert theirs.status_code == 201, theirs.get_json()
    assert "Idempotent-Replayed" not in theirs.headers
    admin_id = theirs.get_json()["engagement_id"]
    assert admin_id != mine.get_json()["engagement_id"]
    opened = history(client, admin, admin_id)
    assert [e["event_type"] for e in opened] == ["EngagementOpened"]
    assert opened[0]["metadata"]["actor_id"] == "firm-admin-1"
    assert opened[0]["payload"]["client_name"] == "Grace Hopper"


def test_another_firm_can_neither_squat_an_id_nor_learn_that_it_exists(
    client: FlaskClient, token_for: Callable[..., str]
) -> None:
    key = {"Idempotency-Key": "open-1"}
    north = _bearer(token_for("firm_admin", FIRM), **key)
    south = _bearer(token_for("firm_admin", OTHER_FIRM), **key)
    ids = []
    for headers in (south, north, south, north):  # replays included
        response = client.post("/engagements", json=opening_body(), headers=headers)
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["engagement_id"])
    assert ids[0] == ids[2] != ids[1] == ids[3]
    for engagement_id in ids[:2]:
        assert uuid.UUID(engagement_id).version == 4
        assert uuid.UUID(engagement_id) not in {
            _derived(firm, "firm-admin-1", "open-1") for firm in (FIRM, OTHER_FIRM)
        }


def test_ids_are_random_even_for_the_same_key_sent_by_many_users(
    client: FlaskClient, services: Services
) -> None:
    seen = set()
    for number in range(6):
        user = f"coach-{number + 10}"
        services.accounts.create_user(FIRM, user, "coach")
        headers = _bearer(services.accounts.issue_token(FIRM, user), **{"Idempotency-Key": "k"})
        response = client.post("/engagements", json=opening_body(coach_id=user), headers=headers)
        assert response.status_code == 201
        seen.add(response.get_json()["engagement_id"])
    assert len(seen) == 6


def test_correlation_headers_are_not_believed(client: FlaskClient, auth: dict[str, str]) -> None:
    chosen = str(uuid.uuid4())
    opened = client.post(
        "/engagements", json=opening_body(), headers={**auth, "X-Correlation-Id": chosen}
    )
    engagement_id = opened.get_json()["engagement_id"]
    post_command(
        client, auth, engagement_id, "celebrate-win", {"win": "Offer"}, X_Correlation_Id=chosen
    )
    events = history(client, auth, engagement_id)
    correlations = {e["metadata"]["correlation_id"] for e in events}
    assert chosen not in correlations
    assert len(correlations) == 2


def test_keys_and_requests_are_stored_only_as_keyed_hashes(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    key = "open-grace-hopper-2026"
    body = opening_body(client_name="Grace Hopper")
    raw = json.dumps(body).encode()
    response = client.post(
        "/engagements",
        data=raw,
        content_type="application/json",
        headers={**auth, "Idempotency-Key": key},
    )
    assert response.status_code == 201
    with services.db.read() as cur:
        cur.execute(f"SELECT * FROM {TABLE}")
        rows = [" ".join(str(v) for v in row) for row in cur.fetchall()]
    assert len(rows) == 1
    dumped = rows[0].lower()
    assert "grace" not in dumped
    assert "hopper" not in dumped
    plain = [
        hashlib.sha256(f"coach-1:{key}".encode()).hexdigest(),
        hashlib.sha256(key.encode()).hexdigest(),
        hashlib.sha256(b"POST\x00/engagements\x00" + raw).hexdigest(),
    ]
    assert not any(digest in dumped for digest in plain)
    # A store with another secret (another master key) cannot even recognise the key.
    other = IdempotencyStore(services.db, b"another secret of 32 bytes......")
    assert other.key_hash("coach-1", key) not in dumped
    assert services.idempotency.key_hash("coach-1", key) in dumped


def _legacy_table(services: Services, rows: list[tuple[Any, ...]]) -> None:
    with services.db.transaction() as cur:
        cur.execute(
            """CREATE TABLE coachlog_idempotency (
                firm_id TEXT NOT NULL, idem_key TEXT NOT NULL, fingerprint TEXT NOT NULL,
                claimed_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
                status INTEGER, headers TEXT, body TEXT, PRIMARY KEY (firm_id, idem_key))"""
        )
        for row in rows:
            cur.execute(
                "INSERT INTO coachlog_idempotency (firm_id, idem_key, fingerprint, claimed_at,"
                " expires_at, status, headers, body) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                row,
            )


def test_keys_kept_in_clear_by_earlier_versions_are_migrated_and_still_recognised(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    engagement_id = open_engagement(client, auth)
    path = f"/engagements/{engagement_id}/celebrate-win"
    body = {"win": "Signed the offer"}
    raw = json.dumps(body).encode()
    old_print = hashlib.sha256(b"POST\x00" + path.encode() + b"\x00" + raw).hexdigest()
    abandoned = time.time() - CLAIM_TIMEOUT_SECONDS - 5
    # An earlier version claimed "win-1" and wrote its event, then died before answering.
    derived = _derived(FIRM, "coach-1", "win-1")
    ctx = CommandContext(
        actor_id="coach-1", actor_role="coach", firm_id=FIRM, correlation_id=derived
    )
    services.engagements.execute(
        ctx, CelebrateWin(engagement_id=uuid.UUID(engagement_id), win=body["win"])
    )
    _legacy_table(
        services,
        [
            (FIRM, "coach-1:win-1", old_print, abandoned, abandoned + 86400, None, None, None),
            (FIRM, "coach-1:grace-key", "0" * 64, abandoned, abandoned + 86400, 201, "{}", "{}"),
        ],
    )
    services.idempotency.create_tables()
    assert not services.db.table_exists("coachlog_idempotency")
    with services.db.read() as cur:
        cur.execute(f"SELECT * FROM {TABLE}")
        dumped = " ".join(str(v) for row in cur.fetchall() for v in row)
    assert "grace-key" not in dumped
    assert "win-1" not in dumped
    retry = client.post(
        path,
        data=raw,
        content_type="application/json",
        headers={**auth, "Idempotency-Key": "win-1"},
    )
    assert retry.status_code == 200, retry.get_json()
    assert retry.get_json()["version"] == 2
    assert len(history(client, auth, engagement_id)) == 2
