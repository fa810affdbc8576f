"""Dashboard figures against hand-worked fixtures, the arithmetic written out.

Each scenario is recorded through the real domain (in memory) and folded by the real
progress fold; the expected numbers are worked by hand in the comments.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain import commands as c
from domain.application import Engagements
from domain.context import CommandContext
from domain.goals import SmartGoal
from projections import metrics
from projections.progress import Doc, fold
from projections.queries import engagement_dashboard, group_stats, sponsor_report

FIRM = "firm-x"
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)  # a Monday; everything happens after it


@pytest.fixture
def app() -> Iterator[Engagements]:
    application = Engagements(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield application
    application.close()


class Script:
    """Records commands on one engagement at given days after T0."""

    def __init__(self, app: Engagements, **opening: Any) -> None:
        self.app = app
        fields: dict[str, Any] = {
            "client_id": "client-1",
            "client_name": "Ann Example",
            "coach_id": "coach-1",
            "sponsor_id": "sponsor-1",
            "segment": "returner",
            "delivery": "remote",
            "planned_sessions": 8,
            "cadence_days": 14,
            "fee_per_session": Decimal("150"),
            "currency": "EUR",
        }
        fields.update(opening)
        self.id = app.open_engagement(self.ctx(0), c.OpenEngagement(**fields)).engagement_id

    @staticmethod
    def ctx(day: float) -> CommandContext:
        return CommandContext("coach-1", "coach", FIRM, occurred_at=T0 + timedelta(days=day))

    def do(self, day: float, command: type[c.Command], **fields: Any) -> Any:
        return self.app.execute(self.ctx(day), command(engagement_id=self.id, **fields)).result

    def doc(self) -> Doc:
        doc: Doc | None = None
        for event in self.app.events.get(self.id):
            doc = fold(doc, event)  # type: ignore[arg-type]
        assert doc is not None
        return doc

    def session(self, day: float) -> None:
        sid = self.do(
            day - 3, c.ScheduleSession, scheduled_for=T0 + timedelta(days=day), duration_minutes=60
        )
        self.do(day, c.HoldSession, session_id=sid, duration_minutes=60, pillars=["goals"])


def _goal(title: str, weight: int) -> SmartGoal:
    levels = {str(n): f"level {n}" for n in range(-2, 3)}
    return SmartGoal.of(title, "measure", "base", "target", date(2026, 12, 31), weight, levels)


def test_gas_t_score_of_three_rated_goals_ignores_unrated_and_abandoned(app: Engagements) -> None:
    s = Script(app)
    g1 = s.do(1, c.SetGoal, goal=_goal("One", 1))
    g2 = s.do(1, c.SetGoal, goal=_goal("Two", 2))
    g3 = s.do(1, c.SetGoal, goal=_goal("Three", 3))
    s.do(1, c.SetGoal, goal=_goal("Unrated", 4))
    g5 = s.do(1, c.SetGoal, goal=_goal("Abandoned", 4))
    s.do(20, c.RateGoalProgress, goal_id=g1, score=-1, rater="coach")
    s.do(30, c.RateGoalProgress, goal_id=g1, score=1, rater="coach")  # latest counts: +1
    s.do(30, c.RateGoalProgress, goal_id=g2, score=0, rater="coach")
    s.do(30, c.RateGoalProgress, goal_id=g3, score=-1, rater="client")
    s.do(30, c.RateGoalProgress, goal_id=g5, score=2, rater="coach")
    s.do(31, c.AbandonGoal, goal_id=g5, reason="Priorities changed")
    # Perspectives are never mixed. The coach's (headline: the coach rated goals):
    # Σwx = 1·1 + 2·0 = 1 ; Σw² = 1 + 4 = 5 ; Σw = 3
    # denominator = √(0.7·5 + 0.3·3²) = √(3.5 + 2.7) = √6.2 = 2.489980
    # T = 50 + 10·1/2.489980 = 50 + 4.016097 = 54.02 (to two places)
    goals = s.doc()["goals"].values()
    assert metrics.gas_t_score(goals) == 54.02
    # The client's: goal three alone, 3·(−1) / √(0.7·9 + 0.3·9) = −1 → T = 40.00
    client = metrics.gas(goals)["by_rater"]["client"]
    assert client == {"t_score": 40.0, "rated": 1, "unrated": 3, "abandoned": 1}


def test_all_goals_on_target_give_a_t_score_of_fifty(app: Engagements) -> None:
    s = Script(app)
    for weight in (1, 3):
        goal = s.do(1, c.SetGoal, goal=_goal(f"w{weight}", weight))
        s.do(10, c.RateGoalProgress, goal_id=goal, score=0, rater="coach")
    assert metrics.gas_t_score(s.doc()["goals"].values()) == 50.0


def test_cadence_adherence_counts_gaps_within_the_planned_cadence(app: Engagements) -> None:
    s = Script(app, cadence_days=14)
    for day in (10, 24, 42, 54):  # gaps: 14 (on cadence), 18 (late), 12 (early)
        s.session(day)
    # 2 of 3 gaps are ≤ 14 days
    assert metrics.cadence_adherence(s.doc()["held_at"], 14) == pytest.approx(2 / 3)


def test_cadence_adherence_needs_two_sessions(app: Engagements) -> None:
    s = Script(app)
    s.session(10)
    assert metrics.cadence_adherence(s.doc()["held_at"], 14) is None


def test_follow_through_is_kept_over_kept_plus_missed(app: Engagements) -> None:
    s = Script(app)
    made = [
        s.do(2, c.MakeCommitment, title=f"task {n}", due_date=date(2026, 1, 20)) for n in range(6)
    ]
    for commitment in made[:3]:
        s.do(10, c.KeepCommitment, commitment_id=commitment)
    s.do(20, c.MissCommitment, commitment_id=made[3])  # day 20 = 25 Jan, after the due date
    doc = s.doc()
    # kept 3, missed 1, open 2 → 3 / (3 + 1) = 0.75; the two open ones are overdue on 1 Feb
    assert metrics.follow_through(doc["commitments"].values()) == 0.75
    assert metrics.overdue_commitments(doc["commitments"].values(), date(2026, 2, 1)) == 2
    assert metrics.overdue_commitments(doc["commitments"].values(), date(2026, 1, 20)) == 0


def test_phillips_roi_counts_only_verified_non_excluded_outcomes_against_full_cost(
    app: Engagements,
) -> None:
    s = Script(app)
    first = s.do(1, c.IssueInvoice, amount=Decimal("1500"), currency="EUR")
    s.do(1, c.IssueInvoice, amount=Decimal("1500"), currency="EUR")
    voided = s.do(1, c.IssueInvoice, amount=Decimal("600"), currency="EUR")
    s.do(2, c.VoidInvoice, invoice_id=voided, reason="Issued twice")
    s.do(3, c.ReceivePayment, invoice_id=first, amount=Decimal("1500"), currency="EUR")
    s.do(1, c.RecordCost, category="assessment_licence", amount=Decimal("45"), currency="EUR")
    s.do(1, c.RecordCost, category="client_time", amount=Decimal("455"), currency="EUR")

    def outcome(value: str, attribution: str, confidence: str) -> str:
        result: str = s.do(
            90,
            c.ReportTangibleOutcome,
            kind="salary_increase",
            annualized_value=Decimal(value),
            currency="EUR",
            attribution=Decimal(attribution),
            confidence=Decimal(confidence),
            source="client",
        )
        return result

    a = outcome("20000", "0.5", "0.8")
    b = outcome("10000", "0.4", "0.5")
    outcome("50000", "0.9", "0.9")  # never verified: not counted
    d = outcome("100000", "0.5", "0.5")
    s.do(91, c.VerifyOutcome, outcome_id=a, evidence="Offer letter")
    s.do(91, c.VerifyOutcome, outcome_id=b, evidence="Payslip")
    s.do(91, c.VerifyOutcome, outcome_id=d, evidence="Contract")
    s.do(92, c.ExcludeOutcome, outcome_id=d, exclusion="extreme")
    s.do(92, c.ReportIntangibleOutcome, kind="confidence", before=3, after=8)
    roi = metrics.roi(s.doc())
    # benefit = 20000·0.5·0.8 + 10000·0.4·0.5 = 8000 + 2000 = 10000
    # The sponsor's cost: fees (invoices net of voids, 1500 + 1500 = 3000) + the
    # client-side cost (client time, 455); the licence (45) is the firm's own cost of
    # delivery, not the client's. Active: at planned cost, max(8 · 150, 3000) + 455 = 3455.
    # ROI % = (10000 − 3455) / 3455 · 100 = 189.435…  ;  BCR = 10000 / 3455 = 2.894356…
    assert roi["benefit"] == Decimal("10000.00")
    assert roi["cost"] == roi["planned_cost"] == roi["cost_to_date"] == Decimal("3455.00")
    assert roi["roi_pct"] == roi["roi_pct_to_date"] == Decimal("189.44")
    assert roi["bcr"] == Decimal("2.8944")
    # The firm's: margin = fees 3000 − delivery costs 45 = 2955 ; 2955 / 3000 = 98.50 %
    assert (roi["delivery_costs"], roi["margin"], roi["margin_pct"]) == (
        Decimal("45.00"),
        Decimal("2955.00"),
        Decimal("98.50"),
    )
    assert roi["outcomes_counted"] == 2
    assert roi["intangibles"] == [{"kind": "confidence", "before": 3, "after": 8}]
    money = metrics.money(s.doc())
    assert (money["invoiced"], money["paid"], money["outstanding"]) == (
        Decimal("3000.00"),
        Decimal("1500.00"),
        Decimal("1500.00"),
    )


def test_roi_is_not_a_loss_before_any_outcome_counts(app: Engagements) -> None:
    s = Script(app)
    s.do(1, c.IssueInvoice, amount=Decimal("900"), currency="EUR")
    roi = metrics.roi(s.doc())
    # Active: at planned cost, max(8 · 150, 900) = 1200; to date 900; no result yet.
    assert (roi["cost"], roi["cost_to_date"]) == (Decimal("1200.00"), Decimal("900.00"))
    assert (roi["roi_pct"], roi["bcr"], roi["roi_pct_to_date"]) == (None, None, None)


def test_time_to_first_milestone_and_days_since_last_session(app: Engagements) -> None:
    s = Script(app)
    goal = s.do(1, c.SetGoal, goal=_goal("Role", 2))
    m1 = s.do(1, c.DefineMilestone, goal_id=goal, title="CV")
    m2 = s.do(1, c.DefineMilestone, goal_id=goal, title="Interviews")
    s.do(12.5, c.HitMilestone, goal_id=goal, milestone_id=m2)
    s.do(20, c.HitMilestone, goal_id=goal, milestone_id=m1)
    s.session(30)
    doc = s.doc()
    assert metrics.time_to_first_milestone_days(doc) == 12.5  # opened day 0, first hit day 12.5
    assert metrics.days_since_last_session(doc, (T0 + timedelta(days=40)).date()) == 10


def test_an_active_engagement_is_off_track_two_cadences_after_its_last_session(
    app: Engagements,
) -> None:
    s = Script(app, cadence_days=7)
    s.session(10)
    doc = s.doc()
    assert not metrics.is_off_track(doc, T0 + timedelta(days=24))  # 14 days after: on the limit
    assert metrics.is_off_track(doc, T0 + timedelta(days=24, hours=1))
    s.do(25, c.PauseEngagement, reason="Leave")
    assert not metrics.is_off_track(s.doc(), T0 + timedelta(days=60))  # paused: not off track


def test_nps_and_quartiles() -> None:
    # promoters 2 (10, 9), passives 1 (8), detractors 2 (6, 3): (2 − 2) / 5 = 0
    assert metrics.nps([10, 9, 8, 6, 3]) == 0.0
    # promoters 2 of 3, no detractors: 66.7
    assert metrics.nps([10, 10, 7]) == 66.7
    q = metrics.quartiles([10.0, 20.0, 30.0, 40.0, 50.0])
    # inclusive quartiles of 10..50: q1 = 20, median = 30, q3 = 40, IQR = 20
    assert q == {"median": 30.0, "q1": 20.0, "q3": 40.0, "iqr": 20.0, "n": 5}


def test_group_stats_rates(app: Engagements) -> None:
    first = Script(app)
    for day in (5, 19):
        first.session(day)
    late = first.do(
        20, c.ScheduleSession, scheduled_for=T0 + timedelta(days=33), duration_minutes=60
    )
    first.do(32.9, c.CancelSession, session_id=late, late=True)
    no_show = first.do(
        34, c.ScheduleSession, scheduled_for=T0 + timedelta(days=40), duration_minutes=60
    )
    first.do(40, c.RecordNoShow, session_id=no_show)
    first.do(41, c.CloseEngagement, close_reason="completed")
    first.do(42, c.SurveyReaction, satisfaction=5, nps=10)
    second = Script(app, client_id="client-2")
    second.do(10, c.CloseEngagement, close_reason="client_withdrew")
    second.do(11, c.SurveyReaction, satisfaction=2, nps=4)
    stats = group_stats([first.doc(), second.doc()], T0 + timedelta(days=50))
    # held 2, no-show 1, cancelled (late) 1: no-show rate 1/3, late-cancel rate 1/4
    assert stats["no_show_rate"] == pytest.approx(0.3333, abs=1e-4)
    assert stats["late_cancel_rate"] == 0.25
    # closed 2, completed 1; lengths 41 and 10 days → median 25.5; NPS (1 − 1) / 2 = 0
    assert (stats["closed"], stats["completion_rate"]) == (2, 0.5)
    assert stats["median_length_days"] == 25.5
    assert stats["nps"] == 0.0


def test_the_sponsor_sees_only_what_agreement_and_consent_allow(app: Engagements) -> None:
    s = Script(app)
    s.do(1, c.SignAgreement, sponsor_may_see=["attendance", "goals", "roi"])
    s.do(1, c.SetGoal, goal=_goal("Lead a team", 2))
    s.session(5)
    report = sponsor_report(s.doc(), T0 + timedelta(days=6))
    assert report["attendance"]["held"] == 1
    assert "goals" not in report  # agreed, but the client has not consented
    assert report["withheld"]["goals"] == "the client has not consented (share_goals_with_sponsor)"
    assert report["withheld"]["outcomes"] == "not in the signed agreement"
    assert "roi" not in report
    s.do(6, c.GrantConsent, scope="share_goals_with_sponsor")
    s.do(6, c.GrantConsent, scope="share_outcomes")
    report = sponsor_report(s.doc(), T0 + timedelta(days=7))
    assert [g["title"] for g in report["goals"]] == ["Lead a team"]
    assert "roi" in report
    assert "notes" not in str(report)
    s.do(8, c.WithdrawConsent, scope="share_goals_with_sponsor")
    assert "goals" not in sponsor_report(s.doc(), T0 + timedelta(days=9))


def test_the_dashboard_reports_overdue_commitments_and_wellbeing_trend(app: Engagements) -> None:
    s = Script(app)
    s.do(1, c.CheckWellbeing, confidence=3, stress=8, motivation=5, imposter_feelings=7)
    s.do(20, c.CheckWellbeing, confidence=6, stress=5, motivation=7, imposter_feelings=4)
    s.do(2, c.MakeCommitment, title="Call Sam", due_date=date(2026, 1, 10))
    dash = engagement_dashboard(s.doc(), T0 + timedelta(days=21))
    assert [o["title"] for o in dash["commitments"]["overdue"]] == ["Call Sam"]
    assert dash["wellbeing"]["change"] == {
        "confidence": 3,
        "stress": -3,
        "motivation": 2,
        "imposter_feelings": -3,
    }


def test_money_is_summed_per_currency_never_across_currencies(app: Engagements) -> None:
    euros = Script(app)
    euros.do(1, c.IssueInvoice, amount=Decimal("1000"), currency="EUR")
    pounds = Script(app, client_id="client-2", currency="GBP")
    pounds.do(1, c.IssueInvoice, amount=Decimal("700"), currency="GBP")
    mixed = group_stats([euros.doc(), pounds.doc()], T0 + timedelta(days=5))
    assert (mixed["currency"], mixed["invoiced"], mixed["roi"]["pooled_roi_pct"]) == (
        None,
        None,
        None,
    )
    assert mixed["money_by_currency"]["EUR"]["invoiced"] == Decimal("1000.00")
    assert mixed["money_by_currency"]["GBP"]["outstanding"] == Decimal("700.00")
    alone = group_stats([euros.doc()], T0 + timedelta(days=5))
    assert (alone["currency"], alone["invoiced"]) == ("EUR", Decimal("1000.00"))
