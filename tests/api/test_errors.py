"""Every error as RFC 9457 problem+json, and the liveness and readiness probes."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient

from api import MAX_BODY_BYTES, Services, create_app
from api.accounts import Accounts
from api.idempotency import IdempotencyStore
from domain import errors
from projections.database import PostgresDatabase
from projections.store import ProgressStore
from tests.api.conftest import (
    assert_problem,
    history,
    open_engagement,
    opening_body,
    post_command,
)

WELLBEING = {"confidence": 6, "stress": 4, "motivation": 8, "imposter_feelings": 5}


@pytest.fixture
def engagement_id(client: FlaskClient, auth: dict[str, str]) -> str:
    return open_engagement(client, auth)


def test_malformed_json_is_400(
    client: FlaskClient, auth: dict[str, str], engagement_id: str
) -> None:
    for path in ("/engagements", f"/engagements/{engagement_id}/check-wellbeing"):
        for raw in (b'{"confidence": 6,', b"{'single': 'quotes'}", b'{"win": "\xff"}', b"nul"):
            response = client.post(path, data=raw, content_type="application/json", headers=auth)
            assert_problem(response, 400, "malformed_json")
    assert len(history(client, auth, engagement_id)) == 1


def test_validation_is_422_with_a_message_per_field(
    client: FlaskClient, auth: dict[str, str], engagement_id: str
) -> None:
    body = {"stress": 11, "motivation": "high", "imposter_feelings": 2.5}
    response = post_command(client, auth, engagement_id, "check-wellbeing", body)
    problem = assert_problem(response, 422, "validation_failed")
    errors_ = problem["errors"]
    assert set(errors_) == {"confidence", "stress", "motivation", "imposter_feelings"}
    for messages in errors_.values():
        assert isinstance(messages, list)
        assert messages
        assert all(isinstance(m, str) and m for m in messages)
    assert "Missing data" in errors_["confidence"][0]
    assert "less than or equal to 10" in errors_["stress"][0]

    opening = client.post(
        "/engagements",
        json=opening_body(segment="astronaut", currency="euro", fee_per_session="-1"),
        headers=auth,
    )
    assert set(assert_problem(opening, 422)["errors"]) == {"segment", "currency", "fee_per_session"}
    nested = post_command(
        client,
        auth,
        engagement_id,
        "set-goal",
        {"goal": {"title": "x", "weight": 9, "levels": {"7": "y"}}},
    )
    assert "goal" in assert_problem(nested, 422)["errors"]
    not_an_object = post_command(client, auth, engagement_id, "check-wellbeing", [1, 2])  # type: ignore[arg-type]
    assert_problem(not_an_object, 422)
    # The schema knows what the domain knows: the currency is judged by the domain's rule,
    # and so is blank text...
    unknown_currency = client.post("/engagements", json=opening_body(currency="XXQ"), headers=auth)
    currency_problem = assert_problem(unknown_currency, 422, "validation_failed")
    assert currency_problem["errors"] == {"currency": ["'XXQ' is not an ISO 4217 currency"]}
    blank_name = client.post("/engagements", json=opening_body(client_name="   "), headers=auth)
    blank_problem = assert_problem(blank_name, 422, "validation_failed")
    assert blank_problem["errors"] == {"client_name": ["must not be empty"]}
    # ...and a value only the engagement itself can judge is a 422 too, naming its field.
    same_coach = post_command(
        client, auth, engagement_id, "reassign-coach", {"to_coach_id": "coach-1", "reason": "x"}
    )
    assert "to_coach_id" in assert_problem(same_coach, 422, "invalid_value")["errors"]
    assert len(history(client, auth, engagement_id)) == 1


def test_unknown_fields_are_refused(
    client: FlaskClient, auth: dict[str, str], engagement_id: str
) -> None:
    response = post_command(
        client, auth, engagement_id, "check-wellbeing", {**WELLBEING, "mood": "sunny"}
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"] == {"mood": ["Unknown field."]}
    opening = client.post("/engagements", json=opening_body(vip=True), headers=auth)
    assert assert_problem(opening, 422)["errors"] == {"vip": ["Unknown field."]}
    nested_goal = {
        "title": "t",
        "measure": "m",
        "baseline": "b",
        "target": "t",
        "target_date": "2099-01-01",
        "weight": 2,
        "levels": {str(n): "d" for n in range(-2, 3)},
        "secret": 1,
    }
    nested = post_command(client, auth, engagement_id, "set-goal", {"goal": nested_goal})
    assert assert_problem(nested, 422)["errors"] == {"goal": {"secret": ["Unknown field."]}}
    assert len(history(client, auth, engagement_id)) == 1


def test_not_found_is_404(client: FlaskClient, auth: dict[str, str]) -> None:
    unknown = uuid.uuid4()
    assert_problem(
        post_command(client, auth, str(unknown), "check-wellbeing", WELLBEING),
        404,
        "engagement_not_found",
    )
    assert_problem(client.get("/no-such-thing", headers=auth), 404, "not_found")
    assert_problem(post_command(client, auth, str(unknown), "do-a-dance", {}), 404, "not_found")
    assert_problem(client.get(f"/engagements/{unknown}/pause-engagement", headers=auth), 405)


def test_a_broken_rule_is_409_with_a_stable_code(
    client: FlaskClient, auth: dict[str, str], engagement_id: str
) -> None:
    resume = post_command(client, auth, engagement_id, "resume-engagement", {})
    problem = assert_problem(resume, 409, errors.InvalidTransition.code)
    assert problem["code"] == "invalid_status_transition"
    assert problem["type"] == "urn:coachlog:problem:invalid_status_transition"
    assert "paused" in problem["detail"]
    missing_goal = post_command(
        client, auth, engagement_id, "achieve-goal", {"goal_id": str(uuid.uuid4())}
    )
    assert_problem(missing_goal, 409, errors.GoalNotFound.code)
    wrong_currency = post_command(
        client, auth, engagement_id, "issue-invoice", {"amount": "100.00", "currency": "USD"}
    )
    assert_problem(wrong_currency, 409, errors.CurrencyMismatch.code)
    assert len(history(client, auth, engagement_id)) == 1


def test_out_of_range_input_is_422_not_a_server_error(
    client: FlaskClient, auth: dict[str, str], engagement_id: str
) -> None:
    # Found by fuzzing: each of these used to be a 500 (or a PostgreSQL error).
    huge = client.get(f"/engagements/{engagement_id}?version={10**30}", headers=auth)
    assert "version" in assert_problem(huge, 422, "validation_failed")["errors"]
    for moment in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        query = client.get(
            f"/engagements/{engagement_id}", query_string={"recorded_at": moment}, headers=auth
        )
        assert "recorded_at" in assert_problem(query, 422)["errors"]
        scheduled = post_command(
            client,
            auth,
            engagement_id,
            "schedule-session",
            {"scheduled_for": moment, "duration_minutes": 60},
        )
        assert "scheduled_for" in assert_problem(scheduled, 422)["errors"]
        occurred = post_command(
            client, auth, engagement_id, "celebrate-win", {"win": "x", "occurred_at": moment}
        )
        assert "occurred_at" in assert_problem(occurred, 422)["errors"]
    nul_body = post_command(
        client,
        auth,
        engagement_id,
        "complete-assessment",
        {"instrument": "disc", "instrument_version": "1", "result": {"a\x00": "b"}},
    )
    assert assert_problem(nul_body, 422)["errors"] == {
        "result": ["Must not contain NUL characters."]
    }
    nul_open = client.post("/engagements", json=opening_body(client_id="c\x001"), headers=auth)
    assert "client_id" in assert_problem(nul_open, 422)["errors"]
    nul_query = client.get("/engagements", query_string={"coach_id": "a\x00b"}, headers=auth)
    assert "coach_id" in assert_problem(nul_query, 422)["errors"]
    assert_problem(client.get("/coaches/a%00b/portfolio", headers=auth), 404, "not_found")
    nul_key = post_command(
        client, auth, engagement_id, "celebrate-win", {"win": "x"}, Idempotency_Key="a\x00b"
    )
    assert_problem(nul_key, 422, "invalid_idempotency_key")
    assert len(history(client, auth, engagement_id)) == 1


def test_a_body_over_the_limit_is_413(
    client: FlaskClient, auth: dict[str, str], engagement_id: str
) -> None:
    padding = "x" * (MAX_BODY_BYTES + 1)
    for path in ("/engagements", f"/engagements/{engagement_id}/celebrate-win"):
        response = client.post(path, json={"win": padding}, headers=auth)
        assert_problem(response, 413)
    # Just under the limit is read (and then judged on its merits).
    under = {"win": "y" * (MAX_BODY_BYTES - 100)}
    assert len(json.dumps(under)) < MAX_BODY_BYTES
    response = post_command(client, auth, engagement_id, "celebrate-win", under)
    assert response.status_code != 413
    assert len(history(client, auth, engagement_id)) <= 2


def test_a_body_that_is_not_json_is_415(
    client: FlaskClient, auth: dict[str, str], engagement_id: str
) -> None:
    path = f"/engagements/{engagement_id}/check-wellbeing"
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = client.post(
            path, data=json.dumps(WELLBEING), content_type=content_type, headers=auth
        )
        assert_problem(response, 415, "unsupported_media_type")
    assert_problem(client.post(path, headers=auth), 415, "unsupported_media_type")
    assert_problem(
        client.post("/engagements", data="client_id=1", content_type="text/plain", headers=auth),
        415,
    )
    assert len(history(client, auth, engagement_id)) == 1


def test_a_missing_bad_or_revoked_token_is_401_with_a_challenge(
    client: FlaskClient, services: Services, token_for: Callable[..., str]
) -> None:
    token = token_for("coach")
    engagement_id = open_engagement(client, {"Authorization": f"Bearer {token}"})
    path = f"/engagements/{engagement_id}"
    cases = {
        "missing_token": [{}, {"Authorization": ""}, {"Authorization": f"Basic {token}"}],
        "invalid_token": [
            {"Authorization": "Bearer cl_not-a-real-token"},
            {"Authorization": "Bearer nonsense"},
            {"Authorization": f"Bearer {token}x"},
        ],
    }
    for code, header_sets in cases.items():
        for headers in header_sets:
            for response in (
                client.get(path, headers=headers),
                client.post(f"{path}/check-wellbeing", json=WELLBEING, headers=headers),
            ):
                assert_problem(response, 401, code)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")

    assert services.accounts.revoke_token(token) == 1
    revoked = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert_problem(revoked, 401, "invalid_token")
    assert revoked.headers["WWW-Authenticate"] == 'Bearer realm="coachlog"'
    # Revoking by the 10-character prefix works too.
    other = token_for("firm_admin")
    assert client.get(path, headers={"Authorization": f"Bearer {other}"}).status_code == 200
    assert services.accounts.revoke_token(other[:10]) == 1
    assert_problem(client.get(path, headers={"Authorization": f"Bearer {other}"}), 401)


@pytest.mark.parametrize("role", ["client", "sponsor", "analyst", "auditor"])
def test_a_read_only_role_may_not_post(
    client: FlaskClient, auth: dict[str, str], token_for: Callable[..., str], role: str
) -> None:
    engagement_id = open_engagement(client, auth)
    headers = {"Authorization": f"Bearer {token_for(role)}"}
    command = post_command(client, headers, engagement_id, "check-wellbeing", WELLBEING)
    assert_problem(command, 403, "forbidden")
    assert_problem(client.post("/engagements", json=opening_body(), headers=headers), 403)
    assert len(history(client, auth, engagement_id)) == 1
    # client-1 is this engagement's client; sponsor-1 is not its sponsor (sponsor-acme is).
    readers = {"client": 200, "sponsor": 403, "analyst": 403, "auditor": 200}
    state = client.get(f"/engagements/{engagement_id}", headers=headers)
    assert state.status_code == readers[role]


def test_probes_need_no_token(client: FlaskClient) -> None:
    live = client.get("/healthz")
    assert live.status_code == 200
    assert live.get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {
        "status": "ready",
        "read_models": {"progress": {"status": "ok", "quarantined": 0}},
    }


@pytest.fixture
def unreachable(services: Services) -> Iterator[Services]:
    """The services, but their SQL database is a PostgreSQL server on a closed port."""
    dead = PostgresDatabase("postgresql://postgres@127.0.0.1:1/coachlog", timeout=1.0)
    try:
        yield dataclasses.replace(
            services,
            db=dead,
            accounts=Accounts(dead),
            idempotency=IdempotencyStore(dead, bytes(32)),
            progress=ProgressStore(dead),
        )
    finally:
        dead.close()


def test_readyz_is_503_when_the_database_is_unreachable(unreachable: Services) -> None:
    client = create_app(unreachable).test_client()
    assert client.get("/healthz").status_code == 200
    started = time.monotonic()
    problem = assert_problem(client.get("/readyz"), 503, "not_ready")
    assert time.monotonic() - started < 10
    assert "password" not in json.dumps(problem)
    # Any request that needs the database says so with 503, never a 500.
    down = client.get(
        f"/engagements/{uuid.uuid4()}", headers={"Authorization": "Bearer cl_whatever-token"}
    )
    assert_problem(down, 503, "database_unavailable")
    assert down.headers["Retry-After"] == "5"


def test_readyz_is_503_once_the_store_is_closed(services: Services, client: FlaskClient) -> None:
    assert client.get("/readyz").status_code == 200
    services.close()
    response = client.get("/readyz")
    assert_problem(response, 503, "not_ready")
    assert response.headers["Retry-After"] == "5"
