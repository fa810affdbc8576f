"""Figures against numbers worked by hand, on engagements built through the HTTP API.

Each fixture is typed in as coaches do: some notes late (an older rating after a newer
one, a session logged weeks after it was held), a pause, several raters. Every expected
number is written out with its derivation; none is computed by the code under test.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from api import Services
from projections.runner import ProjectionRunner

BASE = (datetime.now(UTC) - timedelta(days=90)).replace(hour=9, minute=0, second=0, microsecond=0)
G1, G2, G3, G4, G5 = (str(uuid.UUID(int=n)) for n in range(1, 6))
SESSIONS = {day: str(uuid.UUID(int=100 + day)) for day in (7, 14, 21, 38, 45, 60)}


def _at(day: float) -> str:
    return (BASE + timedelta(days=day)).isoformat()


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


class Typist:
    """Sends commands for one engagement, each with the day (after opening) it occurred."""

    def __init__(self, client: FlaskClient, auth: dict[str, str], **opening: Any) -> None:
        self.client, self.auth = client, auth
        body = {
            "client_id": "client-1",
            "client_name": "Grace Hopper",
            "coach_id": "coach-1",
            "sponsor_id": "sponsor-1",
            "segment": "returner",
            "delivery": "remote",
            "planned_sessions": 10,
            "cadence_days": 7,
            "fee_per_session": "150.00",
            "currency": "EUR",
            "occurred_at": _at(0),
            **opening,
        }
        response = client.post("/engagements", json=body, headers=auth)
        assert response.status_code == 201, response.get_json()
        self.id: str = response.get_json()["engagement_id"]

    def __call__(self, day: float, command: str, **body: Any) -> None:
        response = self.client.post(
            f"/engagements/{self.id}/{command}",
            json={**body, "occurred_at": _at(day)},
            headers=self.auth,
        )
        assert response.status_code == 200, (command, day, response.get_json())

    def rate(self, day: float, goal: str, score: int, rater: str) -> None:
        self(day, "rate-goal-progress", goal_id=goal, score=score, rater=rater)

    def hold(self, day: int) -> None:
        self(day, "hold-session", session_id=SESSIONS[day], duration_minutes=50, pillars=["goals"])


@pytest.fixture
def admin(token_for: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for('firm_admin')}"}


def _dashboard(client: FlaskClient, services: Services, auth: dict[str, str], eid: str) -> Any:
    ProjectionRunner(services.engagements, services.progress).catch_up()
    response = client.get(f"/engagements/{eid}/dashboard", headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def test_gas_per_rater_and_cadence_net_of_a_pause(
    client: FlaskClient, services: Services, admin: dict[str, str]
) -> None:
    e = Typist(client, admin)
    for goal, title, weight in (
        (G1, "Land a PM role", 2),
        (G2, "Salary talk", 1),
        (G3, "Portfolio", 3),
        (G4, "Network", 1),
        (G5, "Certificate", 2),
    ):
        e(1, "set-goal", goal=_goal(title, weight), goal_id=goal)
    for day, session in SESSIONS.items():
        e(1, "schedule-session", session_id=session, scheduled_for=_at(day), duration_minutes=60)
    e.hold(7)
    e.rate(8, G3, 2, "coach")
    e(9, "abandon-goal", goal_id=G3, reason="Not needed")
    e.rate(12, G5, -2, "coach")
    e.rate(15, G2, -1, "coach")
    e.rate(18, G4, 1, "client")
    e.rate(20, G1, 1, "coach")
    e.hold(21)
    e.rate(21.5, G1, 2, "sponsor")
    e.rate(22, G1, -1, "client")
    e(22.5, "pause-engagement", reason="Client moving house")
    e(36.5, "resume-engagement")
    e.rate(10, G1, 0, "coach")  # logged late: older than the +1 of day 20, which stands
    e.hold(38)
    e(40, "achieve-goal", goal_id=G5)  # last rated -2: scores its expected level, 0
    e.hold(45)
    e.hold(60)
    e.hold(14)  # logged six weeks late
    d = _dashboard(client, services, admin, e.id)

    # GAS, T = 50 + 10·Σwx / √(0.7·Σw² + 0.3·(Σw)²), per rater; abandoned G3 left out.
    # Coach: G1 (w2, +1: day 20 beats day 10), G2 (w1, -1), G5 (w2, achieved: max(-2,0)=0);
    #   Σwx = 2-1+0 = 1, Σw² = 9, Σw = 5, √(6.3+7.5) = 3.7148 → 50 + 2.692 = 52.69;
    #   G4 unrated by the coach.
    # Client: G1 (w2, -1), G4 (w1, +1); Σwx = -1, Σw² = 5, Σw = 3, √(3.5+2.7) = 2.4900
    #   → 50 - 4.016 = 45.98; G2 and G5 unrated.
    # Sponsor: G1 (w2, +2); Σwx = 4, √(2.8+1.2) = 2 → 70.00; G2, G4, G5 unrated.
    gas = d["gas"]
    assert gas["by_rater"] == {
        "coach": {"t_score": 52.69, "rated": 3, "unrated": 1, "abandoned": 1},
        "client": {"t_score": 45.98, "rated": 2, "unrated": 2, "abandoned": 1},
        "sponsor": {"t_score": 70.0, "rated": 1, "unrated": 3, "abandoned": 1},
    }
    assert (gas["rater"], gas["t_score"], gas["rated"], gas["unrated"]) == ("coach", 52.69, 3, 1)
    assert d["gas_t_score"] == 52.69
    by_goal = {g["goal_id"]: g for g in d["goals"]}
    assert by_goal[G1]["scores"] == {"client": -1, "coach": 1, "sponsor": 2}
    assert by_goal[G1]["latest_score"] == 1  # the headline (coach's) perspective

    # Headline over time, in occurred order (the late day-10 rating lands at day 10):
    # d8  coach G3 (w3,+2): 60/√(6.3+2.7)=6/3 → 70.00
    # d9  G3 abandoned: no coach or client rating counts → no point
    # d10 coach G1 (w2,0) → 50.00
    # d12 + G5 (w2,-2): Σwx=-4, √(5.6+4.8)=3.2249 → 37.60
    # d15 + G2 (w1,-1): Σwx=-5, √13.8 → 36.54; d18 (client rates) unchanged
    # d20 G1 → +1: Σwx=-3 → 41.92; d21.5, d22 (sponsor, client) unchanged
    # d40 G5 achieved → 0: Σwx=1 → 52.69
    assert [(p["at"], p["t_score"]) for p in d["gas_over_time"]] == [
        (_at(8), 70.0),
        (_at(10), 50.0),
        (_at(12), 37.6),
        (_at(15), 36.54),
        (_at(18), 36.54),
        (_at(20), 41.92),
        (_at(21.5), 41.92),
        (_at(22), 41.92),
        (_at(40), 52.69),
    ]

    # Cadence (7 days): sessions on days 7, 14, 21, 38, 45, 60 → gaps 7, 7, 17, 7, 15.
    # Paused from day 22 to day 36 (14 calendar days inside the 21→38 gap): net 3.
    # Net gaps 7, 7, 3, 7, 15 → 4 of 5 within the cadence = 0.8 (not 3/5 = 0.6).
    assert d["cadence_adherence"] == 0.8
    assert d["cadence_adherence_n"] == 5
