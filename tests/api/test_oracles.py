"""Nothing tells one firm about another: another firm's engagement is refused before
anything of it is read (so it answers like one that does not exist, in content and in
work done), and the log-wide figures of /metrics need a token no firm holds."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask.testing import FlaskClient

from api import Services, create_app
from tests.api.conftest import OTHER_FIRM, assert_problem, open_engagement

METRICS_TOKEN = "scraper-secret-0123456789"


def _without_id(body: dict[str, object], engagement_id: str) -> dict[str, object]:
    return {k: str(v).replace(engagement_id, "ID") for k, v in body.items()}


def test_another_firms_engagement_is_refused_before_anything_of_it_is_read(
    client: FlaskClient, services: Services, token_for: Callable[..., str]
) -> None:
    mine = {"Authorization": f"Bearer {token_for('firm_admin')}"}
    theirs = {"Authorization": f"Bearer {token_for('firm_admin', OTHER_FIRM)}"}
    other = open_engagement(client, theirs)
    missing = str(uuid.uuid4())
    app = services.engagements
    key_id = app.keys.key_of(uuid.UUID(other))
    assert key_id is not None
    for path in ("", "?version=1", "/history"):
        app.keys.forget([key_id])  # what this process holds of the other firm's client
        answers = []
        for engagement_id in (other, missing):
            reply = client.get(f"/engagements/{engagement_id}{path}", headers=mine)
            body = assert_problem(reply, 404, "engagement_not_found")
            answers.append(_without_id(body, engagement_id))
        assert answers[0] == answers[1]
        # Its events were not opened: the other client's key was not even fetched.
        assert key_id not in app.keys._ciphers, path
    reply = client.post(
        f"/engagements/{other}/check-wellbeing",
        json={"confidence": 5, "stress": 4, "motivation": 6, "imposter_feelings": 3},
        headers=mine,
    )
    assert_problem(reply, 404, "engagement_not_found")
    assert key_id not in app.keys._ciphers
    # The owner still reads it.
    assert client.get(f"/engagements/{other}/history", headers=theirs).status_code == 200


def test_metrics_answer_only_the_metrics_token(
    services: Services, token_for: Callable[..., str]
) -> None:
    closed = create_app(services).test_client()
    assert_problem(closed.get("/metrics"), 404)
    scraped = create_app(services, {"COACHLOG_METRICS_TOKEN": METRICS_TOKEN}).test_client()
    assert_problem(scraped.get("/metrics"), 401, "invalid_token")
    admin = {"Authorization": f"Bearer {token_for('firm_admin')}"}
    assert_problem(scraped.get("/metrics", headers=admin), 401, "invalid_token")
    reply = scraped.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert reply.status_code == 200
    assert b"coachlog_log_head_position" in reply.data
