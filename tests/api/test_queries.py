"""GET /engagements/{id} now and in the past, and GET /engagements/{id}/history."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from tests.api.conftest import (
    FIRM,
    OTHER_FIRM,
    assert_problem,
    history,
    open_engagement,
    post_command,
)

WELLBEING = {"confidence": 6, "stress": 4, "motivation": 8, "imposter_feelings": 5}


def _at(moment: datetime | str) -> str:
    text = moment if isinstance(moment, str) else moment.isoformat()
    return quote(text, safe="")


def test_state_now_carries_the_version_as_etag(client: FlaskClient, auth: dict[str, str]) -> None:
    engagement_id = open_engagement(client, auth, client_name="Ada Lovelace")
    assert (
        post_command(client, auth, engagement_id, "pause-engagement", {"reason": "x"}).status_code
        == 200
    )
    response = client.get(f"/engagements/{engagement_id}", headers=auth)
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    state = response.get_json()
    assert state["id"] == engagement_id
    assert state["version"] == 2
    assert state["status"] == "paused"
    assert state["client_name"] == "Ada Lovelace"
    assert state["firm_id"] == FIRM
    assert state["fee_per_session"] == "150.00"
    assert state["created_on"] <= state["modified_on"]


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("firm_admin", 200),
        ("coach", 200),  # coach-1 coaches it
        ("client", 200),  # client-1 is its client
        ("sponsor", 403),  # sponsors read only the sponsor report
        ("analyst", 403),  # analysts read only aggregates
        ("auditor", 200),
    ],
)
def test_who_may_read_state_and_history(
    client: FlaskClient,
    auth: dict[str, str],
    token_for: Callable[..., str],
    role: str,
    status: int,
) -> None:
    engagement_id = open_engagement(client, auth)
    headers = {"Authorization": f"Bearer {token_for(role)}"}
    for suffix in ("", "/history", "?version=1"):
        response = client.get(f"/engagements/{engagement_id}{suffix}", headers=headers)
        assert response.status_code == status, (suffix, response.get_json())


def test_state_at_a_version(client: FlaskClient, auth: dict[str, str]) -> None:
    engagement_id = open_engagement(client, auth)
    post_command(client, auth, engagement_id, "pause-engagement", {"reason": "holiday"})
    post_command(client, auth, engagement_id, "resume-engagement", {})
    post_command(client, auth, engagement_id, "check-wellbeing", WELLBEING)

    expected = {1: ("active", 0), 2: ("paused", 0), 3: ("active", 0), 4: ("active", 1)}
    for version, (status, checks) in expected.items():
        response = client.get(f"/engagements/{engagement_id}?version={version}", headers=auth)
        assert response.status_code == 200, response.get_json()
        assert response.headers["ETag"] == f'"{version}"'
        state = response.get_json()
        assert state["version"] == version
        assert state["status"] == status
        assert len(state["wellbeing"]) == checks

    beyond = client.get(f"/engagements/{engagement_id}?version=5", headers=auth)
    assert_problem(beyond, 404, "engagement_not_found")
    assert_problem(client.get(f"/engagements/{engagement_id}?version=0", headers=auth), 422)
    assert_problem(client.get(f"/engagements/{engagement_id}?version=two", headers=auth), 422)


def test_state_as_recorded_at_a_time(client: FlaskClient, auth: dict[str, str]) -> None:
    engagement_id = open_engagement(client, auth)
    post_command(client, auth, engagement_id, "pause-engagement", {"reason": "holiday"})
    post_command(client, auth, engagement_id, "resume-engagement", {})
    events = history(client, auth, engagement_id)

    for event in events:
        response = client.get(
            f"/engagements/{engagement_id}?recorded_at={_at(event['recorded_at'])}", headers=auth
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["version"] == event["version"]
        assert response.headers["ETag"] == f'"{event["version"]}"'
    paused = client.get(
        f"/engagements/{engagement_id}?recorded_at={_at(events[1]['recorded_at'])}", headers=auth
    )
    assert paused.get_json()["status"] == "paused"

    before = datetime.fromisoformat(events[0]["recorded_at"]) - timedelta(seconds=1)
    response = client.get(f"/engagements/{engagement_id}?recorded_at={_at(before)}", headers=auth)
    assert_problem(response, 404, "engagement_not_found")
    naive = client.get(
        f"/engagements/{engagement_id}?recorded_at=2026-01-01T00:00:00", headers=auth
    )
    assert_problem(naive, 422, "validation_failed")


def test_state_as_of_occurred_time_includes_a_late_logged_event(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    engagement_id = open_engagement(
        client, auth, occurred_at=(now - timedelta(days=30)).isoformat()
    )
    # Logged in order: a win that happened today, then a check-in that happened 10 days ago.
    win = post_command(client, auth, engagement_id, "celebrate-win", {"win": "An offer"})
    assert win.status_code == 200
    late = post_command(
        client,
        auth,
        engagement_id,
        "check-wellbeing",
        {**WELLBEING, "occurred_at": (now - timedelta(days=10)).isoformat()},
    )
    assert late.status_code == 200, late.get_json()
    events = history(client, auth, engagement_id)

    def as_of(moment: datetime) -> dict[str, object]:
        response = client.get(
            f"/engagements/{engagement_id}?occurred_at={_at(moment)}", headers=auth
        )
        assert response.status_code == 200, response.get_json()
        assert response.headers["ETag"] == f'"{response.get_json()["version"]}"'
        state: dict[str, object] = response.get_json()
        return state

    five_days_ago = as_of(now - timedelta(days=5))
    assert five_days_ago["version"] == 3  # the version of the last event included
    assert five_days_ago["wellbeing"] == [
        {"confidence": 6, "stress": 4, "motivation": 8, "imposter_feelings": 5}
    ]
    assert five_days_ago["wins"] == 0
    twenty_days_ago = as_of(now - timedelta(days=20))
    assert twenty_days_ago["version"] == 1
    assert twenty_days_ago["wellbeing"] == []

    # As recorded when the win was logged, the late check-in was not yet known.
    recorded = client.get(
        f"/engagements/{engagement_id}?recorded_at={_at(events[1]['recorded_at'])}", headers=auth
    ).get_json()
    assert recorded["wins"] == 1
    assert recorded["wellbeing"] == []

    not_begun = client.get(
        f"/engagements/{engagement_id}?occurred_at={_at(now - timedelta(days=31))}", headers=auth
    )
    assert_problem(not_begun, 404, "engagement_not_found")


def test_two_time_selectors_are_refused(client: FlaskClient, auth: dict[str, str]) -> None:
    engagement_id = open_engagement(client, auth)
    now = _at(datetime.now(UTC))
    response = client.get(
        f"/engagements/{engagement_id}?version=1&recorded_at={now}&occurred_at={now}", headers=auth
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert set(problem["errors"]) == {"version", "recorded_at", "occurred_at"}
    response = client.get(f"/engagements/{engagement_id}?version=1&occurred_at={now}", headers=auth)
    assert set(assert_problem(response, 422)["errors"]) == {"version", "occurred_at"}


def test_history_lists_every_event_with_its_metadata(
    client: FlaskClient, auth: dict[str, str], token_for: Callable[..., str]
) -> None:
    engagement_id = open_engagement(client, auth)
    admin = {"Authorization": f"Bearer {token_for('firm_admin')}"}
    correlation = str(uuid.uuid4())
    cause = str(uuid.uuid4())
    post_command(
        client,
        admin,
        engagement_id,
        "pause-engagement",
        {"reason": "holiday", "causation_id": cause},
        X_Correlation_Id=correlation,
    )
    response = client.get(f"/engagements/{engagement_id}/history", headers=auth)
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    body = response.get_json()
    assert body["engagement_id"] == engagement_id
    assert body["version"] == 2
    opened, paused = body["events"]
    for entry in body["events"]:
        assert set(entry) == {
            "version",
            "event_type",
            "topic",
            "occurred_at",
            "recorded_at",
            "metadata",
            "payload",
        }
        assert set(entry["metadata"]) == {
            "actor_id",
            "actor_role",
            "firm_id",
            "correlation_id",
            "causation_id",
            "occurred_at",
        }
        assert datetime.fromisoformat(entry["occurred_at"]).tzinfo is not None
        assert datetime.fromisoformat(entry["recorded_at"]).tzinfo is not None
    assert (opened["version"], paused["version"]) == (1, 2)
    assert opened["event_type"] == "EngagementOpened"
    assert opened["topic"] == "coachlog.EngagementOpened"
    assert opened["metadata"]["actor_id"] == "coach-1"
    assert paused["event_type"] == "EngagementPaused"
    assert paused["topic"] == "coachlog.EngagementPaused"
    assert paused["payload"] == {"reason": "holiday"}
    assert paused["metadata"]["actor_id"] == "firm-admin-1"
    assert paused["metadata"]["actor_role"] == "firm_admin"
    assert paused["metadata"]["firm_id"] == FIRM
    # The correlation id is the server's (a header naming one is not believed); the
    # causation id is the client's to give.
    assert paused["metadata"]["correlation_id"] != correlation
    assert uuid.UUID(paused["metadata"]["correlation_id"]).version == 4
    assert paused["metadata"]["causation_id"] == cause
    assert paused["recorded_at"] >= opened["recorded_at"]


def test_unknown_engagement_is_404(client: FlaskClient, auth: dict[str, str]) -> None:
    unknown = uuid.uuid4()
    assert_problem(client.get(f"/engagements/{unknown}", headers=auth), 404, "engagement_not_found")
    assert_problem(
        client.get(f"/engagements/{unknown}/history", headers=auth), 404, "engagement_not_found"
    )
    # Not a UUID: no such resource at all.
    assert_problem(client.get("/engagements/not-a-uuid", headers=auth), 404)


def test_another_firms_engagement_is_404_with_no_hint(
    client: FlaskClient, auth: dict[str, str], token_for: Callable[..., str]
) -> None:
    theirs = open_engagement(client, {"Authorization": f"Bearer {token_for('coach', OTHER_FIRM)}"})
    unknown = str(uuid.uuid4())
    for role in ("coach", "firm_admin", "auditor"):
        headers = {"Authorization": f"Bearer {token_for(role)}"}
        for suffix in ("", "/history", "?version=1"):
            foreign = client.get(f"/engagements/{theirs}{suffix}", headers=headers)
            missing = client.get(f"/engagements/{unknown}{suffix}", headers=headers)
            foreign_body = assert_problem(foreign, 404, "engagement_not_found")
            missing_body = assert_problem(missing, 404, "engagement_not_found")
            # Identical but for the id: nothing tells "exists elsewhere" from "never existed".
            assert foreign.get_data(as_text=True).replace(theirs, unknown) == missing.get_data(
                as_text=True
            ), (foreign_body, missing_body)
            assert set(foreign.headers.keys()) == set(missing.headers.keys())
    refused = post_command(client, auth, theirs, "pause-engagement", {"reason": "x"})
    assert_problem(refused, 404, "engagement_not_found")
    owner = {"Authorization": f"Bearer {token_for('coach', OTHER_FIRM)}"}
    assert len(history(client, owner, theirs)) == 1


def test_an_unknown_query_parameter_is_refused_not_ignored(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    engagement_id = open_engagement(client, auth)
    typo = client.get(f"/engagements/{engagement_id}?as_of=2026-01-01T00:00:00Z", headers=auth)
    assert_problem(typo, 422, "validation_failed")
    assert "as_of" in typo.get_json()["errors"]
    listed = client.get("/engagements?colour=blue", headers=auth)
    assert_problem(listed, 422, "validation_failed")
