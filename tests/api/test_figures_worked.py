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


def _outcome(e: Typist, day: float, value: str, attribution: str, confidence: str, cur: str) -> str:
    outcome_id = str(uuid.uuid4())
    e(
        day,
        "report-tangible-outcome",
        kind="salary_increase",
        annualized_value=value,
        currency=cur,
        attribution=attribution,
        confidence=confidence,
        source="client",
        outcome_id=outcome_id,
    )
    return outcome_id


def test_programme_roi_counts_every_closed_engagement_and_keeps_active_apart(
    client: FlaskClient, services: Services, admin: dict[str, str]
) -> None:
    def invoice(e: Typist, day: float, amount: str, cur: str = "EUR") -> None:
        e(day, "issue-invoice", amount=amount, currency=cur)

    # E1, EUR, completed: fees 1000; client time 100 (the client's); platform 200 (the
    # firm's); outcome 6000 · 0.5 · 0.5 = 1500, verified.
    e1 = Typist(client, admin)
    invoice(e1, 5, "1000.00")
    e1(6, "record-cost", category="client_time", amount="100.00", currency="EUR")
    e1(6, "record-cost", category="platform", amount="200.00", currency="EUR")
    e1(50, "close-engagement", close_reason="completed")
    verified = _outcome(e1, 60, "6000.00", "0.5", "0.5", "EUR")  # months after closing
    e1(61, "verify-outcome", outcome_id=verified, evidence="Payslip")
    # E2, EUR, dropout, no improvement data: fees 400.
    e2 = Typist(client, admin)
    invoice(e2, 5, "400.00")
    e2(30, "close-engagement", close_reason="client_withdrew")
    # E3, EUR, active after 3 of 10 sessions: invoiced 450; 3000 · 1 · 0.5 = 1500 verified.
    e3 = Typist(client, admin)
    invoice(e3, 5, "450.00")
    early = _outcome(e3, 40, "3000.00", "1", "0.5", "EUR")
    e3(41, "verify-outcome", outcome_id=early, evidence="Offer letter")
    # E4, GBP, completed: fees 800; 4000 · 0.5 · 0.6 = 1200 verified; 9000 awaiting.
    e4 = Typist(client, admin, currency="GBP", fee_per_session="100.00")
    invoice(e4, 5, "800.00", "GBP")
    e4(50, "close-engagement", close_reason="completed")
    counted = _outcome(e4, 55, "4000.00", "0.5", "0.6", "GBP")
    e4(56, "verify-outcome", outcome_id=counted, evidence="Contract")
    _outcome(e4, 57, "9000.00", "1", "1", "GBP")  # never verified: counts for nothing

    d1 = _dashboard(client, services, admin, e1.id)["roi"]
    # Sponsor's: cost = 1000 + 100 = 1100; (1500 − 1100) / 1100 = 36.36 %.
    # Firm's: margin = 1000 − 200 = 800; 800 / 1000 = 80.00 %.
    assert (d1["currency"], d1["cost"], d1["roi_pct"]) == ("EUR", "1100.00", "36.36")
    assert (d1["margin"], d1["margin_pct"]) == ("800.00", "80.00")
    d2 = _dashboard(client, services, admin, e2.id)["roi"]
    assert (d2["benefit"], d2["cost"], d2["roi_pct"]) == ("0.00", "400.00", "-100.00")
    d3 = _dashboard(client, services, admin, e3.id)["roi"]
    # Active: planned cost 10 · 150 = 1500 → (1500 − 1500) / 1500 = 0.00 %;
    # to date 450 → (1500 − 450) / 450 = 233.33 % (shown beside, never the headline).
    assert (d3["basis"], d3["planned_cost"], d3["roi_pct"]) == ("planned_cost", "1500.00", "0.00")
    assert (d3["cost_to_date"], d3["roi_pct_to_date"]) == ("450.00", "233.33")

    overview = client.get("/firm/overview", headers=admin).get_json()["data"]
    roi = overview["roi"]
    # Closed: E1 36.36, E2 −100.00, E4 (1200 − 800) / 800 = 50.00; the active E3 apart.
    assert (roi["closed_engagements"], roi["engagements_measured"]) == (3, 3)
    assert (roi["no_data"], roi["dropouts"]) == (1, 1)
    # Sorted −100, 36.36, 50: median 36.36; inclusive quartiles −100 + ½·136.36 = −31.82
    # and 36.36 + ½·13.64 = 43.18.
    assert roi["roi_pct"] == {"median": 36.36, "q1": -31.82, "q3": 43.18, "iqr": 75.0, "n": 3}
    # Two currencies: nothing summed across them.
    assert (roi["currency"], roi["pooled_roi_pct"], roi["benefit"]) == (None, None, None)
    eur, gbp = roi["by_currency"]["EUR"], roi["by_currency"]["GBP"]
    # EUR closed: benefit 1500 + 0, cost 1100 + 400 = 1500 → pooled 0.00 % (E2 counted
    # at zero benefit; leaving it out would show 36.36 %). Fees 1400 − delivery 200 =
    # margin 1200, 85.71 %.
    assert eur["closed"] == {
        "n": 2,
        "benefit": "1500.00",
        "cost": "1500.00",
        "pooled_roi_pct": "0.00",
        "fees": "1400.00",
        "delivery_costs": "200.00",
        "margin": "1200.00",
        "margin_pct": "85.71",
    }
    assert eur["active"] == {
        "n": 1,
        "with_outcomes": 1,
        "benefit": "1500.00",
        "planned_cost": "1500.00",
        "cost_to_date": "450.00",
        "pooled_roi_pct_at_planned_cost": "0.00",
        "pooled_roi_pct_to_date": "233.33",
    }
    assert (gbp["closed"]["n"], gbp["closed"]["pooled_roi_pct"]) == (1, "50.00")
    assert (gbp["closed"]["margin"], gbp["closed"]["margin_pct"]) == ("800.00", "100.00")
    assert roi["active"]["engagements"] == 1
    assert (overview["currency"], overview["invoiced"]) == (None, None)
