"""The audit endpoints locate tampering done behind coachlog's back (direct SQL)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from flask.testing import FlaskClient

from api import Services
from tests.api.conftest import OTHER_FIRM, assert_problem, open_engagement, opening_body
from tests.integration.test_audit import delete_events, raw_state, write_state


def test_verify_locates_a_changed_byte_and_a_truncated_stream(
    client: FlaskClient, services: Services, token_for: Callable[..., str]
) -> None:
    admin = {"Authorization": f"Bearer {token_for('firm_admin')}"}
    auditor = {"Authorization": f"Bearer {token_for('auditor')}"}
    app = services.engagements
    first = open_engagement(client, admin, **{**opening_body(), "coach_id": "coach-1"})
    second = open_engagement(client, admin)
    for engagement_id in (first, second):
        for day in range(3):
            response = client.post(
                f"/engagements/{engagement_id}/check-wellbeing",
                json={
                    "confidence": 5 + day,
                    "stress": 4,
                    "motivation": 6,
                    "imposter_feelings": 3,
                },
                headers=admin,
            )
            assert response.status_code == 200, response.get_json()

    assert client.get("/audit/anchors/latest", headers=auditor).status_code == 404
    anchor = app.auditor.anchor()
    assert anchor is not None
    latest = client.get("/audit/anchors/latest", headers=auditor).get_json()
    assert (latest["seq"], latest["digest"]) == (1, anchor.digest)

    clean = client.get(f"/audit/verify?expect_digest={anchor.digest}", headers=auditor)
    assert clean.status_code == 200
    assert clean.get_json()["ok"] is True
    assert clean.get_json()["events"] == 8

    state = bytearray(raw_state(app, UUID(first), 3))
    state[-10] ^= 0x04
    write_state(app, UUID(first), 3, bytes(state))
    delete_events(app, UUID(second), ">", 2)

    one = client.get(f"/audit/engagements/{first}", headers=auditor).get_json()
    assert one["ok"] is False
    assert [(b["version"], b["problem"]) for b in one["breaks"]] == [(3, "content_changed")]
    every = client.get("/audit/verify", headers=admin).get_json()
    assert [(b["engagement_id"], b["version"], b["problem"]) for b in every["breaks"]] == sorted(
        [(first, 3, "content_changed"), (second, 3, "truncated")]
    )
    refused = client.get("/audit/verify?since=1", headers=auditor)
    assert "since" in assert_problem(refused, 422, "validation_failed")["errors"]


def test_another_firms_engagement_is_not_found_for_the_auditor(
    client: FlaskClient, token_for: Callable[..., str]
) -> None:
    admin = {"Authorization": f"Bearer {token_for('firm_admin')}"}
    theirs = open_engagement(client, admin)
    other_auditor = {"Authorization": f"Bearer {token_for('auditor', OTHER_FIRM)}"}
    response = client.get(f"/audit/engagements/{theirs}", headers=other_auditor)
    assert_problem(response, 404)
