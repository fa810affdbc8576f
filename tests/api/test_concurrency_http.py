"""Optimistic concurrency (If-Match, 409/412) and idempotency keys over HTTP."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api import Services, create_app
from api.idempotency import (
    CLAIM_TIMEOUT_SECONDS,
    TABLE,
    IdempotencyStore,
    StoredResponse,
    legacy_fingerprint,
)
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
#: How versions before keyed hashes derived ids from a key (an attacker can too).
_OLD_NAMESPACE = uuid.UUID("6f1c1f0e-5d8a-4b8e-9a43-2f1f3b6c0d11")


def _derived(key: str, user: str = COACH, firm: str = FIRM) -> uuid.UUID:
    return uuid.uuid5(_OLD_NAMESPACE, f"{firm}\x00{user}:{key}")


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
    assert engagement_id != str(_derived("open-grace-1"))
    assert uuid.UUID(engagement_id).version == 4
    for _ in range(2):
        again = client.post("/engagements", json=opening_body(), headers=headers)
        assert again.status_code == 201
        assert again.get_data() == first.get_data()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["ETag"] == '"1"'
        assert again.headers["Location"] == first.headers["Location"]
    assert len(history(client, auth, engagement_id)) == 1
    correlation_id = history(client, auth, engagement_id)[0]["metadata"]["correlation_id"]
    assert correlation_id not in (engagement_id, str(_derived("open-grace-1")))


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
    correlation_id = events[1]["metadata"]["correlation_id"]
    assert correlation_id != str(_derived(keyed["Idempotency-Key"]))
    assert uuid.UUID(correlation_id).version == 4


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
    # Well-formed, but refused by the engagement itself: coach-1 already coaches it.
    body = {"to_coach_id": "coach-1", "reason": "a second opinion"}
    keyed = {"Idempotency-Key": "reassign-1"}
    first = post_command(client, auth, engagement_id, "reassign-coach", body, **keyed)
    problem = assert_problem(first, 422, "invalid_value")
    assert "to_coach_id" in problem["errors"]
    again = post_command(client, auth, engagement_id, "reassign-coach", body, **keyed)
    assert assert_problem(again, 422, "invalid_value") == problem
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(history(client, auth, engagement_id)) == 1


class ProcessDied(BaseException):
    """What the request handler sees when its process is killed: nothing more runs."""


class DiesBeforeAnswering(IdempotencyStore):
    """The real key store, in a process that dies after the command wrote its events and
    before the answer is recorded."""

    def complete(self, firm_id: str, user_id: str, key: str, response: StoredResponse) -> None:
        raise ProcessDied


def _dying_client(services: Services) -> FlaskClient:
    store = services.idempotency
    dying = DiesBeforeAnswering(store.db, store._secret)
    return create_app(dataclasses.replace(services, idempotency=dying)).test_client()


def _claims_look_abandoned(services: Services) -> None:
    """Let the claims age past the timeout after which a retry may take them over."""
    with services.db.transaction() as cur:
        cur.execute(
            f"UPDATE {TABLE} SET claimed_at = claimed_at - %s", (CLAIM_TIMEOUT_SECONDS + 5,)
        )


def test_a_request_that_died_after_writing_is_recognised_on_retry(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    engagement_id = open_engagement(client, auth)
    key = "pause-before-crash"
    path = f"/engagements/{engagement_id}/pause-engagement"
    body = {"reason": "Client on holiday"}
    with pytest.raises(ProcessDied):
        _post_raw(_dying_client(services), path, body, {**auth, "Idempotency-Key": key})
    events = history(client, auth, engagement_id)
    assert [e["event_type"] for e in events] == ["EngagementOpened", "EngagementPaused"]
    # Until the claim times out, a retry is told to wait rather than run twice.
    waiting, _ = _post_raw(client, path, body, {**auth, "Idempotency-Key": key})
    assert_problem(waiting, 409, "idempotency_key_in_flight")
    _claims_look_abandoned(services)

    retry, _ = _post_raw(client, path, body, {**auth, "Idempotency-Key": key})
    assert retry.status_code == 200, retry.get_json()
    assert retry.get_json() == {"engagement_id": engagement_id, "version": 2, "result": None}
    assert retry.headers["ETag"] == '"2"'
    assert len(history(client, auth, engagement_id)) == 2
    # The recovered answer is now the key's answer.
    replay, _ = _post_raw(client, path, body, {**auth, "Idempotency-Key": key})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == retry.get_json()
    assert len(history(client, auth, engagement_id)) == 2


def test_an_open_that_died_after_writing_is_recognised_on_retry(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    key = "open-before-crash"
    body = opening_body(client_id="client-crash")
    with pytest.raises(ProcessDied):
        _post_raw(_dying_client(services), "/engagements", body, {**auth, "Idempotency-Key": key})
    _claims_look_abandoned(services)

    retry, _ = _post_raw(client, "/engagements", body, {**auth, "Idempotency-Key": key})
    assert retry.status_code == 201, retry.get_json()
    engagement_id = retry.get_json()["engagement_id"]
    assert retry.headers["Location"] == f"/engagements/{engagement_id}"
    assert len(history(client, auth, engagement_id)) == 1
    # Exactly one engagement of that client exists: the one the first attempt wrote.
    opened = services.engagements.keys.store.engagements_of(FIRM, "client-crash")
    assert [str(e) for e in opened] == [engagement_id]


def test_an_abandoned_claim_that_wrote_nothing_runs_once_on_retry(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    engagement_id = open_engagement(client, auth)
    key = "died-before-writing"
    path = f"/engagements/{engagement_id}/check-wellbeing"
    raw = json.dumps(WELLBEING).encode()
    store = services.idempotency
    claim = store.claim(
        FIRM,
        COACH,
        key,
        store.fingerprint("POST", path, raw),
        legacy_fingerprint("POST", path, raw),
        uuid.UUID(engagement_id),
    )
    assert claim.state == "new"  # ... and the process died before running the command
    _claims_look_abandoned(services)
    retry, _ = _post_raw(client, path, WELLBEING, {**auth, "Idempotency-Key": key})
    assert retry.status_code == 200
    assert retry.get_json()["version"] == 2
    again, _ = _post_raw(client, path, WELLBEING, {**auth, "Idempotency-Key": key})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(history(client, auth, engagement_id)) == 2
    written = history(client, auth, engagement_id)[1]["metadata"]["correlation_id"]
    assert written == str(claim.correlation_id)


def test_a_key_still_in_flight_is_409(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    engagement_id = open_engagement(client, auth)
    key = "in-flight"
    path = f"/engagements/{engagement_id}/check-wellbeing"
    raw = json.dumps(WELLBEING).encode()
    store = services.idempotency
    store.claim(
        FIRM,
        COACH,
        key,
        store.fingerprint("POST", path, raw),
        legacy_fingerprint("POST", path, raw),
        uuid.UUID(engagement_id),
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
