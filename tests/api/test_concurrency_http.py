"""Optimistic concurrency (If-Match, 409/412) and idempotency keys over HTTP."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api import Services
from api.idempotency import (
    CLAIM_TIMEOUT_SECONDS,
    KEY_TTL_SECONDS,
    correlation_for,
    fingerprint,
    scoped_key,
)
from domain.commands import OpenEngagement, PauseEngagement
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

WELLBEING = {"confidence": 6, "stress": 4, "motivation": 8, "imposter_feelings": 5}
#: The user of the ``auth`` fixture: keys are stored per user.
COACH = "coach-1"


def _correlation(key: str, user: str = COACH) -> uuid.UUID:
    """The correlation id of ``user``'s requests with Idempotency-Key ``key``."""
    return correlation_for(FIRM, scoped_key(user, key))


def _post_raw(
    client: FlaskClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[TestResponse, bytes]:
    """POST exactly these bytes (so a test can compute the request's fingerprint)."""
    raw = json.dumps(body).encode()
    response = client.post(path, data=raw, content_type="application/json", headers=headers)
    return response, raw


def _version(client: FlaskClient, headers: dict[str, str], engagement_id: str) -> int:
    response = client.get(f"/engagements/{engagement_id}", headers=headers)
    version: int = response.get_json()["version"]
    return version


# -- If-Match and collisions ----------------------------------------------------------------


def test_stale_if_match_is_412_with_the_current_version(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    engagement_id = open_engagement(client, auth)
    first = post_command(client, auth, engagement_id, "check-wellbeing", WELLBEING, If_Match='"1"')
    assert first.status_code == 200
    assert first.headers["ETag"] == '"2"'
    stale = post_command(client, auth, engagement_id, "check-wellbeing", WELLBEING, If_Match='"1"')
    problem = assert_problem(stale, 412, "stale_version")
    assert problem["current_version"] == 2
    assert stale.headers["ETag"] == '"2"'
    assert len(history(client, auth, engagement_id)) == 2
    # The current version, weak or strong, or "*" is accepted.
    for header in ('W/"2"', '"3"', "*"):
        response = post_command(
            client, auth, engagement_id, "check-wellbeing", WELLBEING, If_Match=header
        )
        assert response.status_code == 200, (header, response.get_json())
    assert len(history(client, auth, engagement_id)) == 5


def test_malformed_if_match_is_400(client: FlaskClient, auth: dict[str, str]) -> None:
    engagement_id = open_engagement(client, auth)
    response = post_command(client, auth, engagement_id, "check-wellbeing", WELLBEING, If_Match="1")
    assert_problem(response, 400, "malformed_if_match")
    assert len(history(client, auth, engagement_id)) == 1


def _race(
    flask_app: Flask, headers: dict[str, str], engagement_id: str, writers: int
) -> list[TestResponse]:
    """Send ``writers`` commands at once, each from its own client and thread."""
    barrier = threading.Barrier(writers)
    responses: list[TestResponse] = []
    lock = threading.Lock()

    def write() -> None:
        client = flask_app.test_client()
        barrier.wait()
        response = post_command(client, headers, engagement_id, "check-wellbeing", WELLBEING)
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(responses) == writers
    return responses


def test_colliding_writers_get_409_with_the_current_version_and_no_update_is_lost(
    flask_app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    engagement_id = open_engagement(client, auth)
    successes = 0
    conflicts: list[dict[str, Any]] = []
    versions: list[int] = []
    for _ in range(20):  # until at least one collision was seen
        for response in _race(flask_app, auth, engagement_id, writers=8):
            if response.status_code == 200:
                successes += 1
                versions.append(response.get_json()["version"])
                assert response.headers["ETag"] == f'"{versions[-1]}"'
            else:
                conflicts.append(assert_problem(response, 409, "concurrency_conflict"))
        if conflicts:
            break
    assert conflicts, "no two writers ever collided"
    for conflict in conflicts:
        assert isinstance(conflict["current_version"], int)
        assert 2 <= conflict["current_version"] <= 1 + successes
    # One success per version, and every success is in the history: nothing lost.
    assert sorted(versions) == list(range(2, 2 + successes))
    events = history(client, auth, engagement_id)
    assert len(events) == 1 + successes == _version(client, auth, engagement_id)
    assert sum(e["event_type"] == "WellbeingChecked" for e in events) == successes


# -- idempotency keys -----------------------------------------------------------------------


def test_a_retried_open_returns_the_first_answer_and_writes_nothing(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    headers = {**auth, "Idempotency-Key": "open-grace-1"}
    first = client.post("/engagements", json=opening_body(), headers=headers)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    engagement_id = first.get_json()["engagement_id"]
    assert engagement_id == str(_correlation("open-grace-1"))
    for _ in range(2):
        again = client.post("/engagements", json=opening_body(), headers=headers)
        assert again.status_code == 201
        assert again.get_data() == first.get_data()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["ETag"] == '"1"'
        assert again.headers["Location"] == first.headers["Location"]
    assert len(history(client, auth, engagement_id)) == 1
    assert history(client, auth, engagement_id)[0]["metadata"]["correlation_id"] == engagement_id


def test_a_retried_command_returns_the_first_answer_and_writes_nothing(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    engagement_id = open_engagement(client, auth)
    keyed = {"Idempotency-Key": "wellbeing-2026-11-01"}
    first = post_command(client, auth, engagement_id, "check-wellbeing", WELLBEING, **keyed)
    assert first.status_code == 200
    # Someone else writes in between: the retry still answers what the first request did.
    assert (
        post_command(client, auth, engagement_id, "celebrate-win", {"win": "x"}).status_code == 200
    )
    again = post_command(client, auth, engagement_id, "check-wellbeing", WELLBEING, **keyed)
    assert again.status_code == 200
    assert (
        again.get_json()
        == first.get_json()
        == {
            "engagement_id": engagement_id,
            "version": 2,
            "result": None,
        }
    )
    assert again.headers["ETag"] == '"2"'
    assert again.headers["Idempotent-Replayed"] == "true"
    events = history(client, auth, engagement_id)
    assert [e["event_type"] for e in events] == [
        "EngagementOpened",
        "WellbeingChecked",
        "WinCelebrated",
    ]
    assert events[1]["metadata"]["correlation_id"] == str(_correlation(keyed["Idempotency-Key"]))


def test_the_same_key_with_another_request_is_422(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    engagement_id = open_engagement(client, auth)
    keyed = {"Idempotency-Key": "k-1"}
    assert (
        post_command(client, auth, engagement_id, "check-wellbeing", WELLBEING, **keyed).status_code
        == 200
    )
    other_body = post_command(
        client, auth, engagement_id, "check-wellbeing", {**WELLBEING, "stress": 9}, **keyed
    )
    assert_problem(other_body, 422, "idempotency_key_reused")
    other_path = post_command(client, auth, engagement_id, "celebrate-win", {"win": "x"}, **keyed)
    assert_problem(other_path, 422, "idempotency_key_reused")
    assert len(history(client, auth, engagement_id)) == 2
    too_long = post_command(
        client, auth, engagement_id, "celebrate-win", {"win": "x"}, Idempotency_Key="k" * 201
    )
    assert_problem(too_long, 422, "invalid_idempotency_key")
    assert len(history(client, auth, engagement_id)) == 2


def test_keys_are_per_firm(client: FlaskClient, token_for: Callable[..., str]) -> None:
    north = {"Authorization": f"Bearer {token_for('coach', FIRM)}", "Idempotency-Key": "same"}
    south = {"Authorization": f"Bearer {token_for('coach', OTHER_FIRM)}", "Idempotency-Key": "same"}
    first = client.post("/engagements", json=opening_body(), headers=north)
    second = client.post("/engagements", json=opening_body(), headers=south)
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    north_id = first.get_json()["engagement_id"]
    south_id = second.get_json()["engagement_id"]
    assert north_id != south_id
    assert history(client, north, north_id)[0]["metadata"]["firm_id"] == FIRM
    assert history(client, south, south_id)[0]["metadata"]["firm_id"] == OTHER_FIRM
    # Another request under a key the other firm used is not a reuse either.
    north_cmd = {**north, "Idempotency-Key": "cmd"}
    south_cmd = {**south, "Idempotency-Key": "cmd"}
    assert (
        post_command(client, north_cmd, north_id, "check-wellbeing", WELLBEING).status_code == 200
    )
    command = post_command(client, south_cmd, south_id, "celebrate-win", {"win": "x"})
    assert command.status_code == 200
    assert "Idempotent-Replayed" not in command.headers
    assert len(history(client, south, south_id)) == 2
    replay = client.post("/engagements", json=opening_body(), headers=north)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["engagement_id"] == north_id


def test_a_refused_commands_answer_is_replayed_too(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    engagement_id = open_engagement(client, auth)
    body = {
        "scheduled_for": "2026-12-03T09:00:00+00:00",
        "duration_minutes": 60,
        "session_id": "s-1",
    }
    keyed = {"Idempotency-Key": "schedule-1"}
    first = post_command(client, auth, engagement_id, "schedule-session", body, **keyed)
    problem = assert_problem(first, 422, "invalid_value")
    assert "session_id" in problem["errors"]
    again = post_command(client, auth, engagement_id, "schedule-session", body, **keyed)
    assert assert_problem(again, 422, "invalid_value") == problem
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(history(client, auth, engagement_id)) == 1


def _abandon_claim(services: Services, firm: str, key: str, path: str, raw: bytes) -> None:
    """Leave the claim a request makes before running, as if it died right after."""
    claimed = time.time() - CLAIM_TIMEOUT_SECONDS - 5
    with services.db.transaction() as cur:
        cur.execute(
            "INSERT INTO coachlog_idempotency (firm_id, idem_key, fingerprint, claimed_at,"
            " expires_at) VALUES (%s, %s, %s, %s, %s)",
            (
                firm,
                scoped_key(COACH, key),
                fingerprint("POST", path, raw),
                claimed,
                claimed + KEY_TTL_SECONDS,
            ),
        )


def test_a_request_that_died_after_writing_is_recognised_on_retry(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    engagement_id = open_engagement(client, auth)
    key = "pause-before-crash"
    path = f"/engagements/{engagement_id}/pause-engagement"
    body = {"reason": "Client on holiday"}
    raw = json.dumps(body).encode()
    # The first attempt wrote its events with the key's correlation id, then died.
    ctx = CommandContext(
        actor_id="coach-1",
        actor_role="coach",
        firm_id=FIRM,
        correlation_id=_correlation(key),
    )
    services.engagements.execute(
        ctx, PauseEngagement(engagement_id=uuid.UUID(engagement_id), reason="Client on holiday")
    )
    _abandon_claim(services, FIRM, key, path, raw)

    retry, sent = _post_raw(client, path, body, {**auth, "Idempotency-Key": key})
    assert sent == raw
    assert retry.status_code == 200, retry.get_json()
    assert retry.get_json() == {"engagement_id": engagement_id, "version": 2, "result": None}
    assert retry.headers["ETag"] == '"2"'
    events = history(client, auth, engagement_id)
    assert [e["event_type"] for e in events] == ["EngagementOpened", "EngagementPaused"]
    # The recovered answer is now the key's answer.
    replay, _ = _post_raw(client, path, body, {**auth, "Idempotency-Key": key})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == retry.get_json()
    assert len(history(client, auth, engagement_id)) == 2


def test_an_open_that_died_after_writing_is_recognised_on_retry(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    key = "open-before-crash"
    body = opening_body()
    raw = json.dumps(body).encode()
    engagement_id = _correlation(key)
    ctx = CommandContext(
        actor_id="coach-1", actor_role="coach", firm_id=FIRM, correlation_id=engagement_id
    )
    fields = {**body, "fee_per_session": Decimal(body["fee_per_session"])}
    services.engagements.open_engagement(ctx, OpenEngagement(**fields, engagement_id=engagement_id))
    _abandon_claim(services, FIRM, key, "/engagements", raw)

    retry, _ = _post_raw(client, "/engagements", body, {**auth, "Idempotency-Key": key})
    assert retry.status_code == 201, retry.get_json()
    assert retry.get_json()["engagement_id"] == str(engagement_id)
    assert retry.headers["Location"] == f"/engagements/{engagement_id}"
    assert len(history(client, auth, str(engagement_id))) == 1


def test_an_abandoned_claim_that_wrote_nothing_runs_once_on_retry(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    engagement_id = open_engagement(client, auth)
    key = "died-before-writing"
    path = f"/engagements/{engagement_id}/check-wellbeing"
    _abandon_claim(services, FIRM, key, path, json.dumps(WELLBEING).encode())
    retry, _ = _post_raw(client, path, WELLBEING, {**auth, "Idempotency-Key": key})
    assert retry.status_code == 200
    assert retry.get_json()["version"] == 2
    again, _ = _post_raw(client, path, WELLBEING, {**auth, "Idempotency-Key": key})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(history(client, auth, engagement_id)) == 2


def test_a_key_still_in_flight_is_409(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    engagement_id = open_engagement(client, auth)
    key = "in-flight"
    path = f"/engagements/{engagement_id}/check-wellbeing"
    now = time.time()
    with services.db.transaction() as cur:
        cur.execute(
            "INSERT INTO coachlog_idempotency (firm_id, idem_key, fingerprint, claimed_at,"
            " expires_at) VALUES (%s, %s, %s, %s, %s)",
            (
                FIRM,
                scoped_key(COACH, key),
                fingerprint("POST", path, json.dumps(WELLBEING).encode()),
                now,
                now + 60,
            ),
        )
    response, _ = _post_raw(client, path, WELLBEING, {**auth, "Idempotency-Key": key})
    assert_problem(response, 409, "idempotency_key_in_flight")
    assert response.headers["Retry-After"] == "1"
    assert len(history(client, auth, engagement_id)) == 1
    # Concurrency checks apply to keyed requests too.
    stale = post_command(
        client,
        auth,
        engagement_id,
        "check-wellbeing",
        WELLBEING,
        If_Match='"7"',
        Idempotency_Key="stale-keyed",
    )
    assert assert_problem(stale, 412, "stale_version")["current_version"] == 1
    assert _version(client, auth, engagement_id) == 1
