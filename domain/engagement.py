"""The Engagement aggregate: one coach, one client, one immutable stream of events.

Each pillar's events and command methods live in their own module (``sessions``,
``goals``, ...); this class mixes them over one state and nests every event class on
itself, so ``Engagement.SessionHeld`` is the type projections and the relay depend on.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.domain import Snapshot as BaseSnapshot
from eventsourcing.utils import register_topic

from domain import context as command_context
from domain.accountability import (
    AccountabilityCommands,
    CommitmentKept,
    CommitmentMade,
    CommitmentMissed,
    CommitmentRenegotiated,
    CourseCorrected,
    FeedbackGiven,
    WinCelebrated,
)
from domain.assessment import (
    AssessmentCommands,
    AssessmentCompleted,
    LimitingAssumptionIdentified,
    LimitingAssumptionReframed,
    StrengthIdentified,
    ValuesRanked,
)
from domain.billing import (
    BillingCommands,
    CostRecorded,
    InvoiceIssued,
    InvoiceVoided,
    PaymentReceived,
)
from domain.checks import conform
from domain.event import EngagementEvent
from domain.goals import (
    GapIdentified,
    GoalAbandoned,
    GoalAchieved,
    GoalCommands,
    GoalProgressRated,
    GoalRevised,
    GoalSet,
    MilestoneDefined,
    MilestoneHit,
    ObstacleAnticipated,
    VisionStated,
)
from domain.lifecycle import (
    AgreementSigned,
    CoachReassigned,
    EngagementClosed,
    EngagementOpened,
    EngagementPaused,
    EngagementReopened,
    EngagementResumed,
    LifecycleCommands,
)
from domain.outcomes import (
    IntangibleOutcomeReported,
    OutcomeCommands,
    OutcomeExcluded,
    OutcomeVerified,
    ReactionSurveyed,
    TangibleOutcomeReported,
)
from domain.privacy import ConsentGranted, ConsentWithdrawn, PrivacyCommands, SubjectErased
from domain.sessions import (
    SessionCancelled,
    SessionCommands,
    SessionHeld,
    SessionNoShow,
    SessionRescheduled,
    SessionScheduled,
)
from domain.skills import PracticeCompleted, SkillCommands, SkillFocusStarted, SkillReassessed
from domain.state import plain
from domain.support import ReferralMade, SupportCommands, WellbeingChecked


class Engagement(
    Aggregate,
    LifecycleCommands,
    SessionCommands,
    AssessmentCommands,
    GoalCommands,
    SkillCommands,
    AccountabilityCommands,
    SupportCommands,
    OutcomeCommands,
    BillingCommands,
    PrivacyCommands,
):
    """A coaching engagement between a coach and a client, possibly paid by a sponsor."""

    TOPIC = "coachlog.Engagement"

    class Snapshot(BaseSnapshot):
        TOPIC = "coachlog.Engagement.Snapshot"

    Event = EngagementEvent
    Created = EngagementOpened
    # Lifecycle
    EngagementOpened = EngagementOpened
    AgreementSigned = AgreementSigned
    EngagementPaused = EngagementPaused
    EngagementResumed = EngagementResumed
    CoachReassigned = CoachReassigned
    EngagementClosed = EngagementClosed
    EngagementReopened = EngagementReopened
    # Sessions
    SessionScheduled = SessionScheduled
    SessionRescheduled = SessionRescheduled
    SessionCancelled = SessionCancelled
    SessionHeld = SessionHeld
    SessionNoShow = SessionNoShow
    # Pillar 1: assessment
    AssessmentCompleted = AssessmentCompleted
    ValuesRanked = ValuesRanked
    StrengthIdentified = StrengthIdentified
    LimitingAssumptionIdentified = LimitingAssumptionIdentified
    LimitingAssumptionReframed = LimitingAssumptionReframed
    # Pillar 2: goals
    VisionStated = VisionStated
    GoalSet = GoalSet
    GapIdentified = GapIdentified
    MilestoneDefined = MilestoneDefined
    MilestoneHit = MilestoneHit
    ObstacleAnticipated = ObstacleAnticipated
    GoalProgressRated = GoalProgressRated
    GoalRevised = GoalRevised
    GoalAchieved = GoalAchieved
    GoalAbandoned = GoalAbandoned
    # Pillar 3: skills
    SkillFocusStarted = SkillFocusStarted
    PracticeCompleted = PracticeCompleted
    SkillReassessed = SkillReassessed
    # Pillar 4: accountability
    CommitmentMade = CommitmentMade
    CommitmentKept = CommitmentKept
    CommitmentMissed = CommitmentMissed
    CommitmentRenegotiated = CommitmentRenegotiated
    FeedbackGiven = FeedbackGiven
    CourseCorrected = CourseCorrected
    WinCelebrated = WinCelebrated
    # Pillar 5: support
    WellbeingChecked = WellbeingChecked
    ReferralMade = ReferralMade
    # Outcomes
    TangibleOutcomeReported = TangibleOutcomeReported
    OutcomeVerified = OutcomeVerified
    OutcomeExcluded = OutcomeExcluded
    IntangibleOutcomeReported = IntangibleOutcomeReported
    ReactionSurveyed = ReactionSurveyed
    # Cost
    InvoiceIssued = InvoiceIssued
    PaymentReceived = PaymentReceived
    InvoiceVoided = InvoiceVoided
    CostRecorded = CostRecorded
    # Privacy
    ConsentGranted = ConsentGranted
    ConsentWithdrawn = ConsentWithdrawn
    SubjectErased = SubjectErased

    def __init__(self) -> None:
        self._init_state()

    @classmethod
    def open(
        cls,
        *,
        client_id: str,
        client_name: str,
        coach_id: str,
        segment: str,
        delivery: str,
        planned_sessions: int,
        cadence_days: int,
        fee_per_session: Decimal,
        currency: str,
        sponsor_id: str | None = None,
        engagement_id: UUID | None = None,
    ) -> Engagement:
        """Open a new engagement for the firm of the command context in force."""
        ctx = command_context.current()
        payload = conform(
            EngagementOpened,
            {
                # The fee first: its check names a bad currency as fee_per_session's.
                "fee_per_session": fee_per_session,
                "currency": currency,
                "client_id": client_id,
                "client_name": client_name,
                "coach_id": coach_id,
                "sponsor_id": sponsor_id,
                "segment": segment,
                "delivery": delivery,
                "planned_sessions": planned_sessions,
                "cadence_days": cadence_days,
            },
        )
        return cls._create(
            EngagementOpened,
            id=engagement_id or uuid4(),
            actor_id=ctx.actor_id,
            actor_role=ctx.actor_role,
            firm_id=ctx.firm_id,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
            occurred_at=ctx.resolved_occurred_at(command_context.utcnow()),
            **payload,
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the current state as plain values (records become dicts)."""
        state = {k.lstrip("_"): v for k, v in vars(self).items() if k != "_pending_events"}
        return {"id": self.id, "version": self.version, **plain(state)}


# eventsourcing registers the explicit topics of the aggregate and its events as the
# class is made, but a snapshot class's only when a process first takes a snapshot
# (``get_topic``): a fresh process reading a snapshotted engagement could not resolve
# it. Register it here, at import, like every other stored class.
register_topic(Engagement.Snapshot.TOPIC, Engagement.Snapshot)


#: Every event class of the catalogue, in catalogue order.
EVENT_CLASSES: tuple[type[EngagementEvent], ...] = tuple(
    value
    for name, value in vars(Engagement).items()
    if isinstance(value, type)
    and issubclass(value, EngagementEvent)
    and name not in ("Event", "Created")
)
