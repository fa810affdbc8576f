"""Shared helpers of the integration tests.

The centrepiece is :func:`scenarios`, a hypothesis strategy for a *valid* history of one
engagement: it keeps a small model of what the engagement allows (status, open sessions,
open goals and their milestones, open commitments and due dates, invoices and what is
still outstanding, outcomes, consents...) and only emits commands that model accepts,
each stamped with a monotonic occurred time in the past, never before the opening.

Commands are built against a placeholder engagement id; :meth:`Step.bound` and
:meth:`Scenario.opening_for` bind them to the real id chosen when the test runs (the store
is shared by every example of a test, so each example opens a fresh engagement).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from domain import commands as c
from domain.application import Engagements
from domain.commands import Command, OpenEngagement
from domain.context import CommandContext
from domain.event import EngagementEvent
from domain.goals import SmartGoal
from domain.values import (
    CloseReason,
    ConsentScope,
    CostCategory,
    ExclusionReason,
    FeedbackDirection,
    GapKind,
    Instrument,
    IntangibleKind,
    OutcomeSource,
    Pillar,
    Rater,
    ReferralKind,
    SkillArea,
    SponsorView,
    TangibleKind,
)
from tests.conftest import days_ago, opening

#: Stands in for the engagement id until a test binds the scenario to a real one.
PLACEHOLDER_ID = UUID(int=0)

COACHES = ("coach-ada", "coach-bo", "coach-cy")

#: How often an action is picked relative to others (default 3): state-ending actions are
#: rarer, and the ones that need state built up first more frequent, so long histories
#: reach milestones hit, commitments missed, sessions held, and so on.
WEIGHTS = {
    "close": 1,
    "pause": 1,
    "achieve": 1,
    "abandon": 1,
    "reopen": 6,
    "resume": 4,
    "define_milestone": 5,
    "hit_milestone": 6,
    "miss": 6,
    "hold": 5,
    "no_show": 4,
    "reschedule": 4,
    "rate": 4,
    "pay": 5,
}

Draw = Callable[[st.SearchStrategy[Any]], Any]


def cents(amount: int) -> Decimal:
    """Return ``amount`` cents as a two-place Decimal (``1234`` -> ``12.34``)."""
    return Decimal(amount).scaleb(-2)


def ident(number: int) -> str:
    """Return a deterministic UUID string, unique within one scenario."""
    return str(UUID(int=number))


#: Free text a coach might type: any printable Unicode, always non-empty once stripped.
free_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=24
).map(lambda s: f"t {s}")


@dataclass(frozen=True)
class Step:
    """One command of a scenario and when it happened in the world."""

    occurred_at: datetime
    command: Command

    def bound(self, engagement_id: UUID) -> Command:
        """Return the command aimed at ``engagement_id``."""
        return replace(self.command, engagement_id=engagement_id)


@dataclass(frozen=True)
class Scenario:
    """A valid history of one engagement: the opening and the commands after it."""

    opening: OpenEngagement
    opened_at: datetime
    steps: tuple[Step, ...]
    save_every: int

    def opening_for(self, engagement_id: UUID) -> OpenEngagement:
        """Return the opening command with the engagement id chosen by the test."""
        return replace(self.opening, engagement_id=engagement_id)

    @property
    def event_count(self) -> int:
        """Every command records exactly one event, the opening included."""
        return 1 + len(self.steps)


@dataclass
class _Invoice:
    amount: int
    paid: int = 0
    voided: bool = False


@dataclass
class _Outcome:
    verified: bool = False
    excluded: bool = False


@dataclass
class EngagementModel:
    """Just enough of an engagement's state to tell which commands it accepts."""

    now: datetime
    coach_id: str
    has_sponsor: bool
    status: str = "active"
    erased: bool = False
    counter: int = 0
    open_sessions: list[str] = field(default_factory=list)
    session_times: dict[str, datetime] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    goals: list[str] = field(default_factory=list)
    open_goals: list[str] = field(default_factory=list)
    goal_targets: dict[str, date] = field(default_factory=dict)
    milestone_dues: dict[str, date] = field(default_factory=dict)
    unhit_milestones: dict[str, list[str]] = field(default_factory=dict)
    skills: list[SkillArea] = field(default_factory=list)
    commitments: dict[str, date] = field(default_factory=dict)
    outcomes: dict[str, _Outcome] = field(default_factory=dict)
    invoices: dict[str, _Invoice] = field(default_factory=dict)
    consents: list[ConsentScope] = field(default_factory=list)

    # -- small utilities ----------------------------------------------------------------

    def new_id(self) -> str:
        self.counter += 1
        return ident(self.counter)

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def not_closed(self) -> bool:
        return self.status != "closed"

    @property
    def active(self) -> bool:
        return self.status == "active"

    def _goal(self, draw: Draw, goal_id: str) -> SmartGoal:
        """A goal whose target lies after today, and not before any of its milestones
        is due."""
        target = self.today + timedelta(days=draw(st.integers(1, 400)))
        target = max(target, self.milestone_dues.get(goal_id, target))
        self.goal_targets[goal_id] = target
        return SmartGoal.of(
            title=draw(free_text),
            measure="offers received",
            baseline="0",
            target="2",
            target_date=target,
            weight=draw(st.integers(1, 4)),
            levels={str(n): f"level {n}" for n in range(-2, 3)},
        )

    def _optional_goal(self, draw: Draw) -> str | None:
        return draw(st.none() | st.sampled_from(self.goals)) if self.goals else None

    def _open_invoices(self) -> list[str]:
        return [k for k, v in self.invoices.items() if not v.voided]

    def _payable_invoices(self) -> list[str]:
        return [k for k, v in self.invoices.items() if not v.voided and v.paid < v.amount]

    def _goals_with_milestones(self) -> list[str]:
        return [g for g in self.open_goals if self.unhit_milestones.get(g)]

    # -- the catalogue: (precondition, builder) per command -------------------------------

    def actions(self) -> dict[str, tuple[Callable[[], bool], Callable[[Draw], Command]]]:
        work = self.not_closed
        return {
            # lifecycle
            "sign": (lambda: work and self.has_sponsor, self._sign),
            "pause": (lambda: self.active, self._pause),
            "resume": (lambda: self.status == "paused", self._resume),
            "reassign": (lambda: work, self._reassign),
            "close": (lambda: work, self._close),
            "reopen": (lambda: self.status == "closed", self._reopen),
            # sessions
            "schedule": (lambda: self.active, self._schedule),
            "reschedule": (lambda: self.active and bool(self.open_sessions), self._reschedule),
            "cancel": (lambda: bool(self.open_sessions), self._cancel),
            "hold": (lambda: self.active and bool(self._endable()), self._hold),
            "no_show": (lambda: self.active and bool(self._endable()), self._no_show),
            # pillar 1
            "assess": (lambda: work, self._assess),
            "rank_values": (lambda: work, self._rank_values),
            "strength": (lambda: work, self._strength),
            "assumption": (lambda: work, self._assumption),
            "reframe": (lambda: work and bool(self.assumptions), self._reframe),
            # pillar 2
            "vision": (lambda: work, self._vision),
            "set_goal": (lambda: work, self._set_goal),
            "gap": (lambda: work, self._gap),
            "define_milestone": (lambda: work and bool(self.open_goals), self._define_milestone),
            "hit_milestone": (lambda: work and bool(self._goals_with_milestones()), self._hit),
            "obstacle": (lambda: work and bool(self.open_goals), self._obstacle),
            "rate": (lambda: work and bool(self.open_goals), self._rate),
            "revise": (lambda: work and bool(self.open_goals), self._revise),
            "achieve": (lambda: work and bool(self.open_goals), self._achieve),
            "abandon": (lambda: work and bool(self.open_goals), self._abandon),
            # pillar 3
            "skill_focus": (lambda: work and len(self.skills) < len(SkillArea), self._focus),
            "practice": (lambda: work and bool(self.skills), self._practice),
            "reassess": (lambda: work and bool(self.skills), self._reassess),
            # pillar 4
            "commit": (lambda: work, self._commit),
            "keep": (lambda: work and bool(self.commitments), self._keep),
            "miss": (lambda: work and bool(self._overdue()), self._miss),
            "renegotiate": (lambda: work and bool(self.commitments), self._renegotiate),
            "feedback": (lambda: work, self._feedback),
            "correct": (lambda: work, self._correct),
            "win": (lambda: work, self._win),
            # pillar 5
            "wellbeing": (lambda: work, self._wellbeing),
            "referral": (lambda: work, self._referral),
            # outcomes (allowed after closing)
            "report_outcome": (lambda: True, self._report_outcome),
            "verify": (lambda: bool(self._verifiable()), self._verify),
            "exclude": (lambda: bool(self._excludable()), self._exclude),
            "intangible": (lambda: True, self._intangible),
            "survey": (lambda: True, self._survey),
            # cost (allowed after closing)
            "invoice": (lambda: True, self._invoice),
            "pay": (lambda: bool(self._payable_invoices()), self._pay),
            "void": (lambda: bool(self._voidable()), self._void),
            "cost": (lambda: True, self._cost),
            # privacy
            "grant": (lambda: len(self.consents) < len(ConsentScope), self._grant),
            "withdraw": (lambda: bool(self.consents), self._withdraw),
        }

    def valid_actions(self) -> list[str]:
        """Names of the commands valid now, repeated by weight (to sample from)."""
        if self.erased:
            return []
        return [
            name
            for name, (allowed, _) in self.actions().items()
            if allowed()
            for _ in range(WEIGHTS.get(name, 3))
        ]

    def build(self, name: str, draw: Draw) -> Command:
        return self.actions()[name][1](draw)

    # -- lifecycle ----------------------------------------------------------------------

    def _sign(self, draw: Draw) -> Command:
        views = draw(st.lists(st.sampled_from(list(SponsorView)), unique=True))
        return c.SignAgreement(engagement_id=PLACEHOLDER_ID, sponsor_may_see=views)

    def _pause(self, draw: Draw) -> Command:
        self.status = "paused"
        return c.PauseEngagement(engagement_id=PLACEHOLDER_ID, reason=draw(free_text))

    def _resume(self, draw: Draw) -> Command:
        self.status = "active"
        return c.ResumeEngagement(engagement_id=PLACEHOLDER_ID)

    def _reassign(self, draw: Draw) -> Command:
        to = draw(st.sampled_from([x for x in COACHES if x != self.coach_id]))
        self.coach_id = to
        return c.ReassignCoach(engagement_id=PLACEHOLDER_ID, to_coach_id=to, reason="workload")

    def _close(self, draw: Draw) -> Command:
        self.status = "closed"
        why = draw(st.sampled_from(list(CloseReason)))
        return c.CloseEngagement(engagement_id=PLACEHOLDER_ID, close_reason=why)

    def _reopen(self, draw: Draw) -> Command:
        self.status = "active"
        return c.ReopenEngagement(engagement_id=PLACEHOLDER_ID, reason=draw(free_text))

    # -- sessions -----------------------------------------------------------------------

    def _when(self, draw: Draw, session_id: str) -> datetime:
        """A session time from a week ago (logged late) to three weeks ahead."""
        moment = self.now + timedelta(hours=draw(st.integers(-24 * 7, 24 * 21)))
        self.session_times[session_id] = moment
        return moment

    def _endable(self) -> list[str]:
        """The open sessions that may be held now: at most 2 hours before their time."""
        soon = self.now + timedelta(hours=2)
        return [s for s in self.open_sessions if self.session_times[s] <= soon]

    def _schedule(self, draw: Draw) -> Command:
        session_id = self.new_id()
        self.open_sessions.append(session_id)
        return c.ScheduleSession(
            engagement_id=PLACEHOLDER_ID,
            scheduled_for=self._when(draw, session_id),
            duration_minutes=draw(st.integers(5, 480)),
            session_id=session_id,
        )

    def _reschedule(self, draw: Draw) -> Command:
        session_id = draw(st.sampled_from(self.open_sessions))
        return c.RescheduleSession(
            engagement_id=PLACEHOLDER_ID,
            session_id=session_id,
            scheduled_for=self._when(draw, session_id),
        )

    def _end_session(self, draw: Draw, sessions: list[str] | None = None) -> str:
        session_id: str = draw(
            st.sampled_from(self.open_sessions if sessions is None else sessions)
        )
        self.open_sessions.remove(session_id)
        return session_id

    def _cancel(self, draw: Draw) -> Command:
        return c.CancelSession(
            engagement_id=PLACEHOLDER_ID,
            session_id=self._end_session(draw),
            late=draw(st.booleans()),
            counts_against_allocation=draw(st.booleans()),
            reason=draw(st.just("") | free_text),
        )

    def _hold(self, draw: Draw) -> Command:
        return c.HoldSession(
            engagement_id=PLACEHOLDER_ID,
            session_id=self._end_session(draw, self._endable()),
            duration_minutes=draw(st.integers(1, 480)),
            pillars=draw(st.lists(st.sampled_from(list(Pillar)), unique=True)),
            notes=draw(st.just("") | free_text),
        )

    def _no_show(self, draw: Draw) -> Command:
        return c.RecordNoShow(
            engagement_id=PLACEHOLDER_ID, session_id=self._end_session(draw, self._endable())
        )

    # -- pillar 1 -----------------------------------------------------------------------

    def _assess(self, draw: Draw) -> Command:
        return c.CompleteAssessment(
            engagement_id=PLACEHOLDER_ID,
            instrument=draw(st.sampled_from(list(Instrument))),
            instrument_version="2024",
            result={"top": draw(free_text), "scores": [1, 2, 3], "nested": {"a": True}},
            assessment_id=self.new_id(),
        )

    def _rank_values(self, draw: Draw) -> Command:
        vocabulary = ["growth", "autonomy", "security", "impact", "family", "craft"]
        values = draw(st.lists(st.sampled_from(vocabulary), min_size=1, unique=True))
        return c.RankValues(engagement_id=PLACEHOLDER_ID, values=values)

    def _strength(self, draw: Draw) -> Command:
        return c.IdentifyStrength(
            engagement_id=PLACEHOLDER_ID, strength=draw(free_text), evidence="peer review"
        )

    def _assumption(self, draw: Draw) -> Command:
        assumption_id = self.new_id()
        self.assumptions.append(assumption_id)
        return c.IdentifyLimitingAssumption(
            engagement_id=PLACEHOLDER_ID, assumption=draw(free_text), assumption_id=assumption_id
        )

    def _reframe(self, draw: Draw) -> Command:
        return c.ReframeLimitingAssumption(
            engagement_id=PLACEHOLDER_ID,
            assumption_id=draw(st.sampled_from(self.assumptions)),
            reframe=draw(free_text),
        )

    # -- pillar 2 -----------------------------------------------------------------------

    def _vision(self, draw: Draw) -> Command:
        return c.StateVision(
            engagement_id=PLACEHOLDER_ID,
            horizon_years=draw(st.sampled_from([5, 10, 20])),
            vision=draw(free_text),
        )

    def _set_goal(self, draw: Draw) -> Command:
        goal_id = self.new_id()
        self.goals.append(goal_id)
        self.open_goals.append(goal_id)
        return c.SetGoal(
            engagement_id=PLACEHOLDER_ID, goal=self._goal(draw, goal_id), goal_id=goal_id
        )

    def _gap(self, draw: Draw) -> Command:
        return c.IdentifyGap(
            engagement_id=PLACEHOLDER_ID,
            kind=draw(st.sampled_from(list(GapKind))),
            description=draw(free_text),
            goal_id=self._optional_goal(draw),
            gap_id=self.new_id(),
        )

    def _define_milestone(self, draw: Draw) -> Command:
        goal_id = draw(st.sampled_from(self.open_goals))
        milestone_id = self.new_id()
        self.unhit_milestones.setdefault(goal_id, []).append(milestone_id)
        due = draw(st.none() | st.integers(0, 200).map(lambda d: self.today + timedelta(days=d)))
        if due is not None:  # due by the goal's target date, which may lie in the past
            due = min(due, self.goal_targets[goal_id])
            self.milestone_dues[goal_id] = max(due, self.milestone_dues.get(goal_id, due))
        return c.DefineMilestone(
            engagement_id=PLACEHOLDER_ID,
            goal_id=goal_id,
            title=draw(free_text),
            due_date=due,
            milestone_id=milestone_id,
        )

    def _hit(self, draw: Draw) -> Command:
        goal_id = draw(st.sampled_from(self._goals_with_milestones()))
        milestone_id = draw(st.sampled_from(self.unhit_milestones[goal_id]))
        self.unhit_milestones[goal_id].remove(milestone_id)
        return c.HitMilestone(
            engagement_id=PLACEHOLDER_ID, goal_id=goal_id, milestone_id=milestone_id
        )

    def _obstacle(self, draw: Draw) -> Command:
        return c.AnticipateObstacle(
            engagement_id=PLACEHOLDER_ID,
            goal_id=draw(st.sampled_from(self.open_goals)),
            obstacle=draw(free_text),
            if_then_plan="if it happens, then call a mentor",
        )

    def _rate(self, draw: Draw) -> Command:
        return c.RateGoalProgress(
            engagement_id=PLACEHOLDER_ID,
            goal_id=draw(st.sampled_from(self.open_goals)),
            score=draw(st.integers(-2, 2)),
            rater=draw(st.sampled_from(list(Rater))),
        )

    def _revise(self, draw: Draw) -> Command:
        goal_id = draw(st.sampled_from(self.open_goals))
        return c.ReviseGoal(
            engagement_id=PLACEHOLDER_ID,
            goal_id=goal_id,
            goal=self._goal(draw, goal_id),
            reason=draw(free_text),
        )

    def _close_goal(self, draw: Draw) -> str:
        goal_id: str = draw(st.sampled_from(self.open_goals))
        self.open_goals.remove(goal_id)
        return goal_id

    def _achieve(self, draw: Draw) -> Command:
        return c.AchieveGoal(engagement_id=PLACEHOLDER_ID, goal_id=self._close_goal(draw))

    def _abandon(self, draw: Draw) -> Command:
        return c.AbandonGoal(
            engagement_id=PLACEHOLDER_ID, goal_id=self._close_goal(draw), reason=draw(free_text)
        )

    # -- pillar 3 -----------------------------------------------------------------------

    def _focus(self, draw: Draw) -> Command:
        area = draw(st.sampled_from([a for a in SkillArea if a not in self.skills]))
        self.skills.append(area)
        return c.StartSkillFocus(
            engagement_id=PLACEHOLDER_ID, area=area, baseline=draw(st.integers(0, 10))
        )

    def _practice(self, draw: Draw) -> Command:
        return c.CompletePractice(
            engagement_id=PLACEHOLDER_ID,
            area=draw(st.sampled_from(self.skills)),
            minutes=draw(st.integers(1, 24 * 60)),
            description=draw(st.just("") | free_text),
        )

    def _reassess(self, draw: Draw) -> Command:
        return c.ReassessSkill(
            engagement_id=PLACEHOLDER_ID,
            area=draw(st.sampled_from(self.skills)),
            after=draw(st.integers(0, 10)),
        )

    # -- pillar 4 -----------------------------------------------------------------------

    def _overdue(self) -> list[str]:
        return [k for k, due in self.commitments.items() if self.today > due]

    def _commit(self, draw: Draw) -> Command:
        commitment_id = self.new_id()
        due = self.today + timedelta(days=draw(st.integers(0, 30)))
        self.commitments[commitment_id] = due
        return c.MakeCommitment(
            engagement_id=PLACEHOLDER_ID,
            title=draw(free_text),
            due_date=due,
            goal_id=self._optional_goal(draw),
            commitment_id=commitment_id,
        )

    def _keep(self, draw: Draw) -> Command:
        commitment_id = draw(st.sampled_from(sorted(self.commitments)))
        del self.commitments[commitment_id]
        return c.KeepCommitment(engagement_id=PLACEHOLDER_ID, commitment_id=commitment_id)

    def _miss(self, draw: Draw) -> Command:
        commitment_id = draw(st.sampled_from(self._overdue()))
        del self.commitments[commitment_id]
        return c.MissCommitment(engagement_id=PLACEHOLDER_ID, commitment_id=commitment_id)

    def _renegotiate(self, draw: Draw) -> Command:
        commitment_id = draw(st.sampled_from(sorted(self.commitments)))
        due = self.today + timedelta(days=draw(st.integers(1, 30)))
        self.commitments[commitment_id] = due
        return c.RenegotiateCommitment(
            engagement_id=PLACEHOLDER_ID,
            commitment_id=commitment_id,
            new_due_date=due,
            reason=draw(free_text),
        )

    def _feedback(self, draw: Draw) -> Command:
        return c.GiveFeedback(
            engagement_id=PLACEHOLDER_ID,
            direction=draw(st.sampled_from(list(FeedbackDirection))),
            feedback=draw(free_text),
        )

    def _correct(self, draw: Draw) -> Command:
        return c.CorrectCourse(
            engagement_id=PLACEHOLDER_ID,
            correction=draw(free_text),
            goal_id=self._optional_goal(draw),
        )

    def _win(self, draw: Draw) -> Command:
        return c.CelebrateWin(
            engagement_id=PLACEHOLDER_ID, win=draw(free_text), goal_id=self._optional_goal(draw)
        )

    # -- pillar 5 -----------------------------------------------------------------------

    def _wellbeing(self, draw: Draw) -> Command:
        score = st.integers(0, 10)
        return c.CheckWellbeing(
            engagement_id=PLACEHOLDER_ID,
            confidence=draw(score),
            stress=draw(score),
            motivation=draw(score),
            imposter_feelings=draw(score),
        )

    def _referral(self, draw: Draw) -> Command:
        return c.MakeReferral(
            engagement_id=PLACEHOLDER_ID,
            referral_kind=draw(st.sampled_from(list(ReferralKind))),
            reason=draw(free_text),
        )

    # -- outcomes -----------------------------------------------------------------------

    def _verifiable(self) -> list[str]:
        return [k for k, v in self.outcomes.items() if not v.verified and not v.excluded]

    def _excludable(self) -> list[str]:
        return [k for k, v in self.outcomes.items() if not v.excluded]

    def _report_outcome(self, draw: Draw) -> Command:
        outcome_id = self.new_id()
        self.outcomes[outcome_id] = _Outcome()
        fraction = st.integers(0, 100).map(cents)
        return c.ReportTangibleOutcome(
            engagement_id=PLACEHOLDER_ID,
            kind=draw(st.sampled_from(list(TangibleKind))),
            annualized_value=cents(draw(st.integers(0, 50_000_000))),
            currency="EUR",
            attribution=draw(fraction),
            confidence=draw(fraction),
            source=draw(st.sampled_from(list(OutcomeSource))),
            description=draw(st.just("") | free_text),
            outcome_id=outcome_id,
        )

    def _verify(self, draw: Draw) -> Command:
        outcome_id = draw(st.sampled_from(self._verifiable()))
        self.outcomes[outcome_id].verified = True
        return c.VerifyOutcome(
            engagement_id=PLACEHOLDER_ID, outcome_id=outcome_id, evidence="payslip"
        )

    def _exclude(self, draw: Draw) -> Command:
        outcome_id = draw(st.sampled_from(self._excludable()))
        self.outcomes[outcome_id].excluded = True
        return c.ExcludeOutcome(
            engagement_id=PLACEHOLDER_ID,
            outcome_id=outcome_id,
            exclusion=draw(st.sampled_from(list(ExclusionReason))),
        )

    def _intangible(self, draw: Draw) -> Command:
        return c.ReportIntangibleOutcome(
            engagement_id=PLACEHOLDER_ID,
            kind=draw(st.sampled_from(list(IntangibleKind))),
            before=draw(st.integers(0, 10)),
            after=draw(st.integers(0, 10)),
        )

    def _survey(self, draw: Draw) -> Command:
        return c.SurveyReaction(
            engagement_id=PLACEHOLDER_ID,
            satisfaction=draw(st.integers(1, 5)),
            nps=draw(st.integers(0, 10)),
            comment=draw(st.just("") | free_text),
        )

    # -- cost ---------------------------------------------------------------------------

    def _voidable(self) -> list[str]:
        return [k for k, v in self.invoices.items() if not v.voided and v.paid == 0]

    def _invoice(self, draw: Draw) -> Command:
        invoice_id = self.new_id()
        amount = draw(st.integers(1, 500_000))
        self.invoices[invoice_id] = _Invoice(amount)
        return c.IssueInvoice(
            engagement_id=PLACEHOLDER_ID,
            amount=cents(amount),
            currency="EUR",
            invoice_id=invoice_id,
        )

    def _pay(self, draw: Draw) -> Command:
        invoice_id = draw(st.sampled_from(self._payable_invoices()))
        invoice = self.invoices[invoice_id]
        amount = draw(st.integers(1, invoice.amount - invoice.paid))
        invoice.paid += amount
        return c.ReceivePayment(
            engagement_id=PLACEHOLDER_ID,
            invoice_id=invoice_id,
            amount=cents(amount),
            currency="EUR",
        )

    def _void(self, draw: Draw) -> Command:
        invoice_id = draw(st.sampled_from(self._voidable()))
        self.invoices[invoice_id].voided = True
        return c.VoidInvoice(engagement_id=PLACEHOLDER_ID, invoice_id=invoice_id, reason="typo")

    def _cost(self, draw: Draw) -> Command:
        return c.RecordCost(
            engagement_id=PLACEHOLDER_ID,
            category=draw(st.sampled_from(list(CostCategory))),
            amount=cents(draw(st.integers(0, 100_000))),
            currency="EUR",
            cost_id=self.new_id(),
        )

    # -- privacy ------------------------------------------------------------------------

    def _grant(self, draw: Draw) -> Command:
        scope = draw(st.sampled_from([s for s in ConsentScope if s not in self.consents]))
        self.consents.append(scope)
        return c.GrantConsent(engagement_id=PLACEHOLDER_ID, scope=scope)

    def _withdraw(self, draw: Draw) -> Command:
        scope = draw(st.sampled_from(self.consents))
        self.consents.remove(scope)
        return c.WithdrawConsent(engagement_id=PLACEHOLDER_ID, scope=scope)


@st.composite
def scenarios(draw: Draw, lengths: st.SearchStrategy[int]) -> Scenario:
    """A valid history of one engagement with ``draw(lengths)`` commands at most.

    Occurred times start 300 days ago and only move forward (by 0 to 36 hours a step),
    so every command is in the past and none claims to precede what it depends on.
    A scenario may end with the client's erasure, after which nothing else is valid.
    """
    sponsor = draw(st.sampled_from(["sponsor-acme", None]))
    start = days_ago(300) + timedelta(minutes=draw(st.integers(0, 24 * 60)))
    model = EngagementModel(now=start, coach_id="coach-ada", has_sponsor=sponsor is not None)
    steps: list[Step] = []
    for _ in range(draw(lengths)):
        valid = model.valid_actions()
        if not valid:
            break
        model.now += timedelta(minutes=draw(st.integers(0, 36 * 60)))
        command = model.build(draw(st.sampled_from(valid)), draw)
        steps.append(Step(model.now, command))
    if draw(st.sampled_from([False, False, False, False, True])):
        model.now += timedelta(hours=1)
        steps.append(Step(model.now, c.EraseSubject(engagement_id=PLACEHOLDER_ID)))
    return Scenario(
        opening=opening(sponsor_id=sponsor, coach_id="coach-ada", currency="EUR"),
        opened_at=start,
        steps=tuple(steps),
        save_every=draw(st.integers(1, 40)),
    )


def snapshot_versions(app: Engagements, engagement_id: UUID) -> list[int]:
    """The versions at which the application holds a snapshot of the engagement."""
    assert app.snapshots is not None, "snapshotting is on for engagements"
    return [s.originator_version for s in app.snapshots.get(engagement_id)]


def stored_events(app: Engagements, engagement_id: UUID) -> list[EngagementEvent]:
    """Every event of the engagement as read back from the store, oldest first."""
    events = list(app.events.get(engagement_id))
    assert all(isinstance(e, EngagementEvent) for e in events)
    return [e for e in events if isinstance(e, EngagementEvent)]


def open_engagement(app: Engagements, ctx: CommandContext, when: datetime) -> UUID:
    """Open an engagement (with the default opening) that occurred at ``when``."""
    return app.open_engagement(ctx.at(when), opening()).engagement_id


def fill_with_work(
    app: Engagements, ctx: CommandContext, engagement_id: UUID, count: int, start: datetime
) -> int:
    """Append ``count`` varied events, one save each, occurring an hour apart from ``start``.

    Cycles through commands that leave every kind of state record behind (sessions,
    goals with milestones and dates, commitments, invoices with payments, outcomes,
    wellbeing checks), so a snapshot taken among them has all of it to hold.
    Returns the engagement's version afterwards.
    """
    version = app.get(ctx.firm_id, engagement_id).version
    for number in range(count):
        when = start + timedelta(hours=number)
        command = _work_item(number, engagement_id, when)
        version = app.execute(ctx.at(when), command).version
    return version


def _work_item(number: int, engagement_id: UUID, when: datetime) -> Command:
    """The ``number``-th command of :func:`fill_with_work` (each valid where it falls)."""
    eid = engagement_id
    block, slot = divmod(number, 12)
    session = ident(1000 + block)
    goal = ident(2000 + block)
    invoice = ident(3000 + block)
    items: list[Command] = [
        c.ScheduleSession(
            engagement_id=eid,
            scheduled_for=when + timedelta(minutes=30),
            duration_minutes=60,
            session_id=session,
        ),
        c.HoldSession(
            engagement_id=eid, session_id=session, duration_minutes=55, pillars=[Pillar.GOALS]
        ),
        c.SetGoal(
            engagement_id=eid,
            goal=SmartGoal.of(
                title=f"goal {block}",
                measure="interviews",
                baseline="0",
                target="3",
                target_date=when.date() + timedelta(days=90),
                weight=1 + block % 4,
                levels={str(n): f"level {n}" for n in range(-2, 3)},
            ),
            goal_id=goal,
        ),
        c.DefineMilestone(
            engagement_id=eid,
            goal_id=goal,
            title="first interview",
            due_date=when.date() + timedelta(days=30),
            milestone_id=ident(4000 + block),
        ),
        c.HitMilestone(engagement_id=eid, goal_id=goal, milestone_id=ident(4000 + block)),
        c.RateGoalProgress(engagement_id=eid, goal_id=goal, score=block % 5 - 2, rater=Rater.COACH),
        c.MakeCommitment(
            engagement_id=eid,
            title="send 3 applications",
            due_date=when.date() + timedelta(days=7),
            goal_id=goal,
            commitment_id=ident(5000 + block),
        ),
        c.KeepCommitment(engagement_id=eid, commitment_id=ident(5000 + block)),
        c.IssueInvoice(
            engagement_id=eid, amount=Decimal("150.00"), currency="EUR", invoice_id=invoice
        ),
        c.ReceivePayment(
            engagement_id=eid, invoice_id=invoice, amount=Decimal("99.99"), currency="EUR"
        ),
        c.ReportTangibleOutcome(
            engagement_id=eid,
            kind=TangibleKind.SALARY_INCREASE,
            annualized_value=Decimal("12000.50"),
            currency="EUR",
            attribution=Decimal("0.4"),
            confidence=Decimal("0.75"),
            source=OutcomeSource.CLIENT,
            outcome_id=ident(6000 + block),
        ),
        c.CheckWellbeing(
            engagement_id=eid, confidence=7, stress=block % 11, motivation=8, imposter_feelings=3
        ),
    ]
    return items[slot]
