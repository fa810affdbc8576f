"""One command per use case: a frozen dataclass naming the engagement method it runs.

A command is the contract of a use case (the API derives its request schemas from
these, the CLI and seeder build them); the application service loads the engagement,
runs the command's method with the command's fields, and saves. A command's fields are
declared by the event it records (``EVENT``): what the event's field may hold, the
command's field may hold.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from domain import (
    accountability,
    assessment,
    billing,
    goals,
    lifecycle,
    outcomes,
    privacy,
    sessions,
    skills,
    support,
)
from domain.event import EngagementEvent
from domain.goals import SmartGoal
from domain.values import (
    CloseReason,
    ConsentScope,
    CostCategory,
    Delivery,
    ExclusionReason,
    FeedbackDirection,
    GapKind,
    Instrument,
    IntangibleKind,
    OutcomeSource,
    Pillar,
    Rater,
    ReferralKind,
    Segment,
    SkillArea,
    SponsorView,
    TangibleKind,
)


@dataclass(frozen=True, kw_only=True)
class Command:
    """A use case on an existing engagement."""

    METHOD: ClassVar[str] = ""
    #: The event the method records: each field of the command that the event has too
    #: is declared there (domain/fields.py), and checked and documented as declared.
    EVENT: ClassVar[type[EngagementEvent]]
    engagement_id: UUID

    def arguments(self) -> dict[str, Any]:
        """Return the keyword arguments for the engagement method."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "engagement_id"}

    def run(self, engagement: Any) -> Any:
        """Run this command's method on ``engagement`` and return what it returns."""
        return getattr(engagement, self.METHOD)(**self.arguments())


@dataclass(frozen=True, kw_only=True)
class OpenEngagement:
    """Open an engagement (the only command that creates a stream)."""

    EVENT: ClassVar[type[EngagementEvent]] = lifecycle.EngagementOpened
    client_id: str
    client_name: str
    coach_id: str
    segment: Segment
    delivery: Delivery
    planned_sessions: int
    cadence_days: int
    fee_per_session: Decimal
    currency: str
    sponsor_id: str | None = None
    engagement_id: UUID | None = None

    def arguments(self) -> dict[str, Any]:
        """Return the keyword arguments for ``Engagement.open``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# -- lifecycle ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SignAgreement(Command):
    METHOD = "sign_agreement"
    EVENT = lifecycle.AgreementSigned
    sponsor_may_see: list[SponsorView]


@dataclass(frozen=True, kw_only=True)
class PauseEngagement(Command):
    METHOD = "pause"
    EVENT = lifecycle.EngagementPaused
    reason: str


@dataclass(frozen=True, kw_only=True)
class ResumeEngagement(Command):
    METHOD = "resume"
    EVENT = lifecycle.EngagementResumed


@dataclass(frozen=True, kw_only=True)
class ReassignCoach(Command):
    METHOD = "reassign_coach"
    EVENT = lifecycle.CoachReassigned
    to_coach_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class CloseEngagement(Command):
    METHOD = "close"
    EVENT = lifecycle.EngagementClosed
    close_reason: CloseReason
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ReopenEngagement(Command):
    METHOD = "reopen"
    EVENT = lifecycle.EngagementReopened
    reason: str


# -- sessions ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ScheduleSession(Command):
    METHOD = "schedule_session"
    EVENT = sessions.SessionScheduled
    scheduled_for: datetime
    duration_minutes: int
    session_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class RescheduleSession(Command):
    METHOD = "reschedule_session"
    EVENT = sessions.SessionRescheduled
    session_id: str
    scheduled_for: datetime


@dataclass(frozen=True, kw_only=True)
class CancelSession(Command):
    METHOD = "cancel_session"
    EVENT = sessions.SessionCancelled
    session_id: str
    late: bool = False
    counts_against_allocation: bool = False
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class HoldSession(Command):
    METHOD = "hold_session"
    EVENT = sessions.SessionHeld
    session_id: str
    duration_minutes: int
    pillars: list[Pillar]
    notes: str = ""


@dataclass(frozen=True, kw_only=True)
class RecordNoShow(Command):
    METHOD = "record_no_show"
    EVENT = sessions.SessionNoShow
    session_id: str


# -- pillar 1: assessment ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CompleteAssessment(Command):
    METHOD = "complete_assessment"
    EVENT = assessment.AssessmentCompleted
    instrument: Instrument
    instrument_version: str
    result: dict[str, Any]
    assessment_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class RankValues(Command):
    METHOD = "rank_values"
    EVENT = assessment.ValuesRanked
    values: list[str]


@dataclass(frozen=True, kw_only=True)
class IdentifyStrength(Command):
    METHOD = "identify_strength"
    EVENT = assessment.StrengthIdentified
    strength: str
    evidence: str = ""


@dataclass(frozen=True, kw_only=True)
class IdentifyLimitingAssumption(Command):
    METHOD = "identify_limiting_assumption"
    EVENT = assessment.LimitingAssumptionIdentified
    assumption: str
    assumption_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReframeLimitingAssumption(Command):
    METHOD = "reframe_limiting_assumption"
    EVENT = assessment.LimitingAssumptionReframed
    assumption_id: str
    reframe: str


# -- pillar 2: goals ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StateVision(Command):
    METHOD = "state_vision"
    EVENT = goals.VisionStated
    horizon_years: int
    vision: str


@dataclass(frozen=True, kw_only=True)
class SetGoal(Command):
    METHOD = "set_goal"
    EVENT = goals.GoalSet
    goal: SmartGoal
    goal_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class IdentifyGap(Command):
    METHOD = "identify_gap"
    EVENT = goals.GapIdentified
    kind: GapKind
    description: str
    goal_id: str | None = None
    gap_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class DefineMilestone(Command):
    METHOD = "define_milestone"
    EVENT = goals.MilestoneDefined
    goal_id: str
    title: str
    due_date: date | None = None
    milestone_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class HitMilestone(Command):
    METHOD = "hit_milestone"
    EVENT = goals.MilestoneHit
    goal_id: str
    milestone_id: str


@dataclass(frozen=True, kw_only=True)
class AnticipateObstacle(Command):
    METHOD = "anticipate_obstacle"
    EVENT = goals.ObstacleAnticipated
    goal_id: str
    obstacle: str
    if_then_plan: str


@dataclass(frozen=True, kw_only=True)
class RateGoalProgress(Command):
    METHOD = "rate_goal_progress"
    EVENT = goals.GoalProgressRated
    goal_id: str
    score: int
    rater: Rater


@dataclass(frozen=True, kw_only=True)
class ReviseGoal(Command):
    METHOD = "revise_goal"
    EVENT = goals.GoalRevised
    goal_id: str
    goal: SmartGoal
    reason: str


@dataclass(frozen=True, kw_only=True)
class AchieveGoal(Command):
    METHOD = "achieve_goal"
    EVENT = goals.GoalAchieved
    goal_id: str


@dataclass(frozen=True, kw_only=True)
class AbandonGoal(Command):
    METHOD = "abandon_goal"
    EVENT = goals.GoalAbandoned
    goal_id: str
    reason: str


# -- pillar 3: skills --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StartSkillFocus(Command):
    METHOD = "start_skill_focus"
    EVENT = skills.SkillFocusStarted
    area: SkillArea
    baseline: int


@dataclass(frozen=True, kw_only=True)
class CompletePractice(Command):
    METHOD = "complete_practice"
    EVENT = skills.PracticeCompleted
    area: SkillArea
    minutes: int
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class ReassessSkill(Command):
    METHOD = "reassess_skill"
    EVENT = skills.SkillReassessed
    area: SkillArea
    after: int


# -- pillar 4: accountability ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MakeCommitment(Command):
    METHOD = "make_commitment"
    EVENT = accountability.CommitmentMade
    title: str
    due_date: date
    goal_id: str | None = None
    commitment_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class KeepCommitment(Command):
    METHOD = "keep_commitment"
    EVENT = accountability.CommitmentKept
    commitment_id: str


@dataclass(frozen=True, kw_only=True)
class MissCommitment(Command):
    METHOD = "miss_commitment"
    EVENT = accountability.CommitmentMissed
    commitment_id: str


@dataclass(frozen=True, kw_only=True)
class RenegotiateCommitment(Command):
    METHOD = "renegotiate_commitment"
    EVENT = accountability.CommitmentRenegotiated
    commitment_id: str
    new_due_date: date
    reason: str


@dataclass(frozen=True, kw_only=True)
class GiveFeedback(Command):
    METHOD = "give_feedback"
    EVENT = accountability.FeedbackGiven
    direction: FeedbackDirection
    feedback: str


@dataclass(frozen=True, kw_only=True)
class CorrectCourse(Command):
    METHOD = "correct_course"
    EVENT = accountability.CourseCorrected
    correction: str
    goal_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class CelebrateWin(Command):
    METHOD = "celebrate_win"
    EVENT = accountability.WinCelebrated
    win: str
    goal_id: str | None = None


# -- pillar 5: support -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CheckWellbeing(Command):
    METHOD = "check_wellbeing"
    EVENT = support.WellbeingChecked
    confidence: int
    stress: int
    motivation: int
    imposter_feelings: int


@dataclass(frozen=True, kw_only=True)
class MakeReferral(Command):
    METHOD = "make_referral"
    EVENT = support.ReferralMade
    referral_kind: ReferralKind
    reason: str


# -- outcomes ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReportTangibleOutcome(Command):
    METHOD = "report_tangible_outcome"
    EVENT = outcomes.TangibleOutcomeReported
    kind: TangibleKind
    annualized_value: Decimal
    currency: str
    attribution: Decimal
    confidence: Decimal
    source: OutcomeSource
    description: str = ""
    outcome_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class VerifyOutcome(Command):
    METHOD = "verify_outcome"
    EVENT = outcomes.OutcomeVerified
    outcome_id: str
    evidence: str


@dataclass(frozen=True, kw_only=True)
class ExcludeOutcome(Command):
    METHOD = "exclude_outcome"
    EVENT = outcomes.OutcomeExcluded
    outcome_id: str
    exclusion: ExclusionReason
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ReportIntangibleOutcome(Command):
    METHOD = "report_intangible_outcome"
    EVENT = outcomes.IntangibleOutcomeReported
    kind: IntangibleKind
    before: int
    after: int


@dataclass(frozen=True, kw_only=True)
class SurveyReaction(Command):
    METHOD = "survey_reaction"
    EVENT = outcomes.ReactionSurveyed
    satisfaction: int
    nps: int
    comment: str = ""


# -- cost --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IssueInvoice(Command):
    METHOD = "issue_invoice"
    EVENT = billing.InvoiceIssued
    amount: Decimal
    currency: str
    description: str = ""
    invoice_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReceivePayment(Command):
    METHOD = "receive_payment"
    EVENT = billing.PaymentReceived
    invoice_id: str
    amount: Decimal
    currency: str


@dataclass(frozen=True, kw_only=True)
class VoidInvoice(Command):
    METHOD = "void_invoice"
    EVENT = billing.InvoiceVoided
    invoice_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class RecordCost(Command):
    METHOD = "record_cost"
    EVENT = billing.CostRecorded
    category: CostCategory
    amount: Decimal
    currency: str
    description: str = ""
    cost_id: str | None = None


# -- privacy -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GrantConsent(Command):
    METHOD = "grant_consent"
    EVENT = privacy.ConsentGranted
    scope: ConsentScope


@dataclass(frozen=True, kw_only=True)
class WithdrawConsent(Command):
    METHOD = "withdraw_consent"
    EVENT = privacy.ConsentWithdrawn
    scope: ConsentScope


@dataclass(frozen=True, kw_only=True)
class EraseSubject(Command):
    METHOD = "erase_subject"
    EVENT = privacy.SubjectErased


#: Every command on an existing engagement.
ENGAGEMENT_COMMANDS: tuple[type[Command], ...] = tuple(
    value
    for value in list(globals().values())
    if isinstance(value, type) and issubclass(value, Command) and value is not Command
)
