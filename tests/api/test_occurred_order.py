"""Whatever order the same history is entered in, the read model says the same.

Coaches log notes late. One engagement's history is fixed by when each thing occurred;
hypothesis draws the order its independent entries are typed in (ratings by three
raters, wellbeing check-ins, surveys, sessions held, skill reassessments, goal revisions,
renegotiated due dates, a milestone, invoices, costs, outcomes), sends them through the
HTTP API each with its occurred time, lets the projection fold them, and checks that the
progress document, the engagement dashboard, the study dataset's row and the
as-of-occurred view are those of the history entered in time order. On SQLite and
PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from api import Services
from projections.runner import ProjectionRunner
from tests.api.conftest import FIRM
from workers.replay import study_rows

#: When the engagement opened: far enough back that everything below lies in the past.
BASE = (datetime.now(UTC) - timedelta(days=100)).replace(microsecond=0)
GOAL_1, GOAL_2 = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
MILESTONE = str(uuid.UUID(int=3))
COMMITMENT = str(uuid.UUID(int=4))
SESSIONS = [str(uuid.UUID(int=10 + n)) for n in range(5)]

Entry = tuple[str, str, dict[str, Any]]  # (occurred time, command, body)


def _at(days: float) -> str:
    return (BASE + timedelta(days=days)).isoformat()


def _goal(title: str, weight: int) -> dict[str, Any]:
    return {
        "title": title,
        "measure": "Offers",
        "baseline": "None",
        "target": "One offer",
        "target_date": (BASE + timedelta(days=200)).date().isoformat(),
        "weight": weight,
        "levels": {str(n): f"level {n}" for n in range(-2, 3)},
    }


#: Entered first, in this order: what the entries below depend on.
SETUP: list[Entry] = [
    (_at(1), "set-goal", {"goal": _goal("Land a PM role", 2), "goal_id": GOAL_1}),
    (_at(1), "set-goal", {"goal": _goal("Build a network", 1), "goal_id": GOAL_2}),
    (
        _at(1),
        "define-milestone",
        {"goal_id": GOAL_1, "milestone_id": MILESTONE, "title": "Five calls"},
    ),
    (_at(1), "start-skill-focus", {"area": "networking", "baseline": 3}),
    (
        _at(1),
        "make-commitment",
        {
            "title": "Apply to three roles",
            "due_date": (BASE + timedelta(days=60)).date().isoformat(),
            "commitment_id": COMMITMENT,
        },
    ),
    *(
        (
            _at(1),
            "schedule-session",
            {"session_id": s, "scheduled_for": _at(7 * (n + 1)), "duration_minutes": 60},
        )
        for n, s in enumerate(SESSIONS)
    ),
]


def _rate(goal: str, score: int, rater: str) -> dict[str, Any]:
    return {"goal_id": goal, "score": score, "rater": rater}


def _wellbeing(confidence: int, stress: int) -> dict[str, Any]:
    return {"confidence": confidence, "stress": stress, "motivation": 5, "imposter_feelings": 4}


def _renegotiate(days: int) -> dict[str, Any]:
    due = (BASE + timedelta(days=days)).date().isoformat()
    return {"commitment_id": COMMITMENT, "new_due_date": due, "reason": "Referral pending"}


#: Independent of each other: any entry order is one the domain accepts. Every occurred
#: time differs, so the world's order is total.
ENTRIES: list[Entry] = [
    *(
        (
            _at(7 * (n + 1) + 0.01 * (n + 1)),
            "hold-session",
            {"session_id": s, "duration_minutes": 55, "pillars": ["goals"]},
        )
        for n, s in enumerate(SESSIONS)
    ),
    (_at(8), "rate-goal-progress", _rate(GOAL_1, -1, "coach")),
    (_at(20), "rate-goal-progress", _rate(GOAL_1, 0, "client")),
    (_at(25), "rate-goal-progress", _rate(GOAL_1, 2, "sponsor")),
    (_at(30), "rate-goal-progress", _rate(GOAL_1, 1, "coach")),
    (_at(10), "rate-goal-progress", _rate(GOAL_2, -2, "client")),
    (_at(40), "rate-goal-progress", _rate(GOAL_2, 1, "client")),
    (_at(5), "check-wellbeing", _wellbeing(3, 8)),
    (_at(22), "check-wellbeing", _wellbeing(5, 6)),
    (_at(45), "check-wellbeing", _wellbeing(7, 4)),
    (_at(41), "survey-reaction", {"satisfaction": 2, "nps": 3}),
    (_at(50), "survey-reaction", {"satisfaction": 5, "nps": 10}),
    (_at(21), "reassess-skill", {"area": "networking", "after": 5}),
    (_at(42), "reassess-skill", {"area": "networking", "after": 7}),
    (
        _at(15),
        "revise-goal",
        {"goal_id": GOAL_1, "goal": _goal("Land a PM role", 3), "reason": "Clearer"},
    ),
    (
        _at(33),
        "revise-goal",
        {"goal_id": GOAL_1, "goal": _goal("Land a senior PM role", 4), "reason": "Offers"},
    ),
    (_at(12), "renegotiate-commitment", _renegotiate(70)),
    (_at(28), "renegotiate-commitment", _renegotiate(80)),
    (_at(26), "hit-milestone", {"goal_id": GOAL_1, "milestone_id": MILESTONE}),
    (
        _at(9),
        "issue-invoice",
        {"amount": "300.00", "currency": "EUR", "invoice_id": str(uuid.UUID(int=20))},
    ),
    (
        _at(36),
        "issue-invoice",
        {"amount": "450.00", "currency": "EUR", "invoice_id": str(uuid.UUID(int=21))},
    ),
    (
        _at(11),
        "record-cost",
        {
            "category": "client_time",
            "amount": "80.00",
            "currency": "EUR",
            "cost_id": str(uuid.UUID(int=30)),
        },
    ),
    (
        _at(44),
        "report-tangible-outcome",
        {
            "kind": "salary_increase",
            "annualized_value": "9000.00",
            "currency": "EUR",
            "attribution": "0.5",
            "confidence": "0.8",
            "source": "client",
            "outcome_id": str(uuid.UUID(int=40)),
        },
    ),
]


def _enter(client: FlaskClient, auth: dict[str, str], order: list[int]) -> str:
    body = {
        "client_id": "client-1",
        "client_name": "Grace Hopper",
        "coach_id": "coach-1",
        "sponsor_id": "sponsor-1",
        "segment": "returner",
        "delivery": "remote",
        "planned_sessions": 8,
        "cadence_days": 7,
        "fee_per_session": "150.00",
        "currency": "EUR",
        "occurred_at": BASE.isoformat(),
    }
    response = client.post("/engagements", json=body, headers=auth)
    assert response.status_code == 201, response.get_json()
    engagement_id: str = response.get_json()["engagement_id"]
    for at, command, payload in [*SETUP, *(ENTRIES[i] for i in order)]:
        response = client.post(
            f"/engagements/{engagement_id}/{command}",
            json={**payload, "occurred_at": at},
            headers=auth,
        )
        assert response.status_code == 200, (command, response.get_json())
    return engagement_id


def _without_ids(value: Any, engagement_id: str) -> Any:
    """``value`` with the engagement's own id taken out."""
    text = json.dumps(value, sort_keys=True, default=str).replace(engagement_id, "<id>")
    return json.loads(text)


def _views(
    client: FlaskClient, services: Services, auth: dict[str, str], engagement_id: str
) -> dict[str, Any]:
    ProjectionRunner(services.engagements, services.progress).catch_up()
    doc, _ = services.dashboards.document(FIRM, engagement_id)
    dashboard = client.get(f"/engagements/{engagement_id}/dashboard", headers=auth)
    assert dashboard.status_code == 200
    occurred = client.get(
        f"/engagements/{engagement_id}?occurred_at={_at(60)}".replace("+", "%2B"), headers=auth
    )
    assert occurred.status_code == 200, occurred.get_json()
    now = datetime.now(UTC)
    (row,) = study_rows({engagement_id: doc}, now)
    views = {
        "document": doc,
        "dashboard": dashboard.get_json()["data"],
        "study_row": row,
        "as_occurred": occurred.get_json(),
    }
    for name in ("dashboard", "as_occurred"):
        for volatile in ("version", "etag", "days_since_last_session"):
            views[name].pop(volatile, None)
    for stamp in ("created_on", "modified_on"):  # when the store wrote it, not the world
        views["as_occurred"].pop(stamp, None)
    return _without_ids(views, engagement_id)


#: The world's order, latest first: every entry logged as late as it can be.
NEWEST_FIRST = sorted(range(len(ENTRIES)), key=lambda i: ENTRIES[i][0], reverse=True)


@settings(
    max_examples=6,
    deadline=None,
    # A failure prints its order; shrinking a list of 27 through HTTP takes minutes.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(order=st.permutations(range(len(ENTRIES))))
@example(order=NEWEST_FIRST)
def test_any_entry_order_of_one_history_gives_the_same_documents(
    client: FlaskClient, services: Services, token_for: Callable[..., str], order: list[int]
) -> None:
    auth = {"Authorization": f"Bearer {token_for('firm_admin')}"}
    in_time = sorted(range(len(ENTRIES)), key=lambda i: ENTRIES[i][0])
    reference = _views(client, services, auth, _enter(client, auth, in_time))
    shuffled = _views(client, services, auth, _enter(client, auth, order))
    assert shuffled == reference

    # And the figures are those of the world's order, not the typing order.
    doc = reference["document"]
    assert doc["goals"][GOAL_1]["scores"] == {"client": 0, "coach": 1, "sponsor": 2}
    gas = reference["dashboard"]["gas"]
    assert gas["rater"] == "coach"  # the coach rated a goal: the coach's T is headline
    assert gas["by_rater"]["coach"]["rated"] == 1  # goal 1 only
    assert doc["goals"][GOAL_1]["weight"] == 4  # the revision of day 33
    assert doc["goals"][GOAL_2]["scores"] == {"client": 1}  # latest: day 40, not day 10
    assert [w["confidence"] for w in doc["wellbeing"]] == [3, 5, 7]
    assert reference["dashboard"]["wellbeing"]["change"]["confidence"] == 7 - 3
    assert reference["study_row"]["confidence_after"] == 7
    assert reference["study_row"]["nps"] == 10
    assert doc["skills"]["networking"]["current"] == 7
    due = (BASE + timedelta(days=80)).date().isoformat()
    assert doc["commitments"][COMMITMENT]["due_date"] == due
