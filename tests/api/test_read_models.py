"""Read-model endpoints, and the proof that what they serve is a fold of the log.

A few hundred engagements are recorded through the HTTP API (random prefixes of the
seeder's realistic timelines, each command sent as JSON with its occurred time); the
projection then catches up and every document — and what the endpoints compute from
them — equals a from-scratch fold of the event store. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from flask.testing import FlaskClient

from api import Services
from coachlog.seed import firm_timelines
from domain.commands import Command
from projections.progress import Doc, fold
from projections.queries import group_stats
from projections.runner import ProjectionRunner
from tests.api.conftest import FIRM, OTHER_FIRM

TODAY = datetime.now(UTC)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _slug(command: Command) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", type(command).__name__).lower()


def _record_through_api(client: FlaskClient, auth: dict[str, str], engagements: int) -> int:
    """Send random prefixes of realistic timelines as HTTP commands; return requests."""
    rng = random.Random(99)
    sent = 0
    for opening, steps in firm_timelines(17, engagements, TODAY, FIRM):
        ctx, command = opening
        body = {**_plain(command.arguments()), "occurred_at": ctx.occurred_at.isoformat()}  # type: ignore[union-attr]
        del body["engagement_id"]  # the server makes the id
        response = client.post("/engagements", json=body, headers=auth)
        assert response.status_code == 201, response.get_json()
        engagement_id = response.get_json()["engagement_id"]
        sent += 1
        for step_ctx, step in steps[: rng.randint(3, 30)]:
            body = {**_plain(step.arguments()), "occurred_at": step_ctx.occurred_at.isoformat()}  # type: ignore[union-attr]
            response = client.post(
                f"/engagements/{engagement_id}/{_slug(step)}", json=body, headers=auth
            )
            assert response.status_code == 200, (type(step).__name__, response.get_json())
            sent += 1
    return sent


def _one_pass(services: Services) -> dict[str, Doc]:
    runner = ProjectionRunner(services.engagements, services.progress)
    docs: dict[str, Doc] = {}
    for item in runner.read_batch(0, 10**9):
        key = str(item.event.originator_id)
        folded = fold(docs.get(key), item.event)
        if folded is not None:
            docs[key] = folded
    return {k: json.loads(json.dumps(v)) for k, v in docs.items()}


def test_read_models_equal_a_from_scratch_fold_after_hundreds_of_api_engagements(
    client: FlaskClient, services: Services, token_for: Callable[..., str]
) -> None:
    # The seeded timelines have six coaches: a firm admin records them all.
    auth = {"Authorization": f"Bearer {token_for('firm_admin')}"}
    sent = _record_through_api(client, auth, engagements=200)
    assert sent > 1500
    ProjectionRunner(services.engagements, services.progress).catch_up()
    live = services.progress.live_generation()
    stored = services.progress.all_docs(live)
    expected = _one_pass(services)
    assert len(stored) == 200
    assert stored == expected

    # What the endpoints serve is computed from exactly those documents.
    by_segment = client.get("/firm/roi?group_by=segment", headers=auth).get_json()["data"]
    segments: dict[str, list[Doc]] = {}
    for doc in expected.values():
        segments.setdefault(doc["segment"], []).append(doc)
    recomputed = [
        {"segment": k, **group_stats(v, TODAY)["roi"]} for k, v in sorted(segments.items())
    ]
    assert by_segment["items"] == json.loads(client.application.json.dumps(recomputed))
    overview = client.get("/firm/overview", headers=auth).get_json()["data"]
    assert overview["engagements"] == 200
    assert overview["sessions_held"] == sum(
        1 for d in expected.values() for s in d["sessions"].values() if s["status"] == "held"
    )


def _project(services: Services) -> None:
    ProjectionRunner(services.engagements, services.progress).catch_up()


def _open(client: FlaskClient, auth: dict[str, str], **overrides: Any) -> str:
    body = {
        "client_id": "client-9",
        "client_name": "Ida Test",
        "coach_id": "coach-1",
        "sponsor_id": "sponsor-9",
        "segment": "returner",
        "delivery": "remote",
        "planned_sessions": 6,
        "cadence_days": 14,
        "fee_per_session": "200.00",
        "currency": "EUR",
        "occurred_at": "2026-09-01T09:00:00+00:00",
    }
    body.update(overrides)
    response = client.post("/engagements", json=body, headers=auth)
    assert response.status_code == 201
    engagement_id: str = response.get_json()["engagement_id"]
    return engagement_id


def test_every_read_model_endpoint_answers_with_freshness(
    client: FlaskClient, auth: dict[str, str], services: Services, token_for: Callable[..., str]
) -> None:
    engagement_id = _open(client, auth)
    client.post(
        f"/engagements/{engagement_id}/sign-agreement",
        json={"sponsor_may_see": ["attendance"]},
        headers=auth,
    )
    _project(services)
    auth = {"Authorization": f"Bearer {token_for('firm_admin')}"}  # may read every one
    head = services.engagements.recorder.max_notification_id()
    for path in (
        "/engagements",
        f"/engagements/{engagement_id}/dashboard",
        f"/engagements/{engagement_id}/sponsor-report",
        "/coaches/coach-1/portfolio",
        "/firm/overview",
        "/firm/roi?group_by=engagement",
        "/firm/roi?group_by=coach",
        "/firm/roi?group_by=segment",
    ):
        response = client.get(path, headers=auth)
        assert response.status_code == 200, (path, response.get_json())
        body = response.get_json()
        assert body["freshness"] == {
            "position": head,
            "head": head,
            "lag": 0,
            "recorded_at": body["freshness"]["recorded_at"],
            "published": None,  # no relay in the embedded mode
            "relay_lag": None,
        }
        assert response.headers["X-Coachlog-Position"] == str(head)
        assert response.headers["X-Coachlog-Lag"] == "0"
        assert datetime.fromisoformat(response.headers["X-Coachlog-Recorded-At"]) <= datetime.now(
            UTC
        )


def test_freshness_shows_the_lag_until_the_projection_catches_up(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    engagement_id = _open(client, auth)
    _project(services)
    client.post(
        f"/engagements/{engagement_id}/check-wellbeing",
        json={"confidence": 5, "stress": 5, "motivation": 5, "imposter_feelings": 5},
        headers=auth,
    )
    stale = client.get(f"/engagements/{engagement_id}/dashboard", headers=auth).get_json()
    assert stale["freshness"]["lag"] == 1
    assert stale["data"]["version"] == 1
    _project(services)
    fresh = client.get(f"/engagements/{engagement_id}/dashboard", headers=auth).get_json()
    assert fresh["freshness"]["lag"] == 0
    assert fresh["data"]["version"] == 2


def test_lists_filter_sort_and_paginate(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    ids = [
        _open(
            client,
            auth,
            client_id=f"client-{n}",
            segment=segment,
            occurred_at=f"2026-0{n + 1}-01T09:00:00+00:00",
        )
        for n, segment in enumerate(["returner", "returner", "entrepreneur", "early_career"])
    ]
    client.post(
        f"/engagements/{ids[1]}/close-engagement", json={"close_reason": "completed"}, headers=auth
    )
    _project(services)

    def page(query: str) -> dict[str, Any]:
        response = client.get(f"/engagements?{query}", headers=auth)
        assert response.status_code == 200, response.get_json()
        data: dict[str, Any] = response.get_json()["data"]
        return data

    assert [i["engagement_id"] for i in page("sort=opened_at&order=asc")["items"]] == ids
    assert page("segment=returner")["total"] == 2
    assert [i["engagement_id"] for i in page("status=closed")["items"]] == [ids[1]]
    assert page("client_id=client-2")["items"][0]["segment"] == "entrepreneur"
    second = page("sort=opened_at&order=asc&limit=2&offset=2")
    assert (second["total"], [i["engagement_id"] for i in second["items"]]) == (4, ids[2:])
    # Opened months ago with no session: every active one is off track by now.
    assert {i["engagement_id"] for i in page("off_track=true")["items"]} == {ids[0], ids[2], ids[3]}
    bad = client.get("/engagements?sort=nonsense", headers=auth)
    assert bad.status_code == 422
    assert "sort" in bad.get_json()["errors"]


def test_read_models_never_cross_firms(
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    token_for: Callable[..., str],
) -> None:
    engagement_id = _open(client, auth)
    _project(services)
    other = {"Authorization": f"Bearer {token_for('coach', OTHER_FIRM)}"}
    assert client.get(f"/engagements/{engagement_id}/dashboard", headers=other).status_code == 404
    assert client.get("/engagements", headers=other).get_json()["data"]["total"] == 0
    assert client.get("/coaches/coach-1/portfolio", headers=other).status_code == 404
    other_admin = {"Authorization": f"Bearer {token_for('firm_admin', OTHER_FIRM)}"}
    assert client.get("/engagements", headers=other_admin).get_json()["data"]["total"] == 0
    overview = client.get("/firm/overview", headers=other_admin).get_json()
    assert overview["data"]["engagements"] == 0
