"""The event catalogue is complete: every event class is produced by some command."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from domain.application import Engagements
from domain.commands import (
    ENGAGEMENT_COMMANDS,
    AbandonGoal,
    AchieveGoal,
    AnticipateObstacle,
    CancelSession,
    CelebrateWin,
    CheckWellbeing,
    CloseEngagement,
    Command,
    CompleteAssessment,
    CompletePractice,
    CorrectCourse,
    DefineMilestone,
    EraseSubject,
    ExcludeOutcome,
    GiveFeedback,
    GrantConsent,
    HitMilestone,
    HoldSession,
    IdentifyGap,
    IdentifyLimitingAssumption,
    IdentifyStrength,
    IssueInvoice,
    KeepCommitment,
    MakeCommitment,
    MakeReferral,
    MissCommitment,
    PauseEngagement,
    RankValues,
    RateGoalProgress,
    ReassessSkill,
    ReassignCoach,
    ReceivePayment,
    RecordCost,
    RecordNoShow,
    ReframeLimitingAssumption,
    RenegotiateCommitment,
    ReopenEngagement,
    ReportIntangibleOutcome,
    ReportTangibleOutcome,
    RescheduleSession,
    ResumeEngagement,
    ReviseGoal,
    ScheduleSession,
    SetGoal,
    SignAgreement,
    StartSkillFocus,
    StateVision,
    SurveyReaction,
    VerifyOutcome,
    VoidInvoice,
    WithdrawConsent,
)
from domain.context import CommandContext
from domain.engagement import EVENT_CLASSES
from tests.conftest import FIRM, days_ago
from tests.unit.helpers import a_goal, in_days, open_engagement


class Driver:
    """Runs commands on one engagement and remembers which commands it ran."""

    def __init__(self, app: Engagements, ctx: CommandContext, engagement_id: UUID) -> None:
        self.app = app
        self.ctx = ctx
        self.engagement_id = engagement_id
        self.ran: set[type[Command]] = set()
        self.commands: list[Command] = []

    def __call__(self, command_type: type[Command], days: float = 0, **fields: object) -> str:
        """Run ``command_type`` as of ``days`` ago (now when 0); return its result."""
        ctx = self.ctx.at(days_ago(days)) if days else self.ctx
        command = command_type(engagement_id=self.engagement_id, **fields)
        self.ran.add(command_type)
        self.commands.append(command)
        result: str = self.app.execute(ctx, command).result
        return result


def drive_a_whole_engagement(app: Engagements, ctx: CommandContext) -> Driver:
    """Take one engagement from opening to erasure through every use case."""
    do = Driver(app, ctx, open_engagement(app, ctx, days=90))
    do(SignAgreement, 89, sponsor_may_see=["attendance", "goals", "roi"])
    do(GrantConsent, 89, scope="share_goals_with_sponsor")
    do(GrantConsent, 89, scope="research")
    # Sessions
    first = do(ScheduleSession, 88, scheduled_for=days_ago(80), duration_minutes=60)
    do(RescheduleSession, 87, session_id=first, scheduled_for=days_ago(79))
    do(HoldSession, 79, session_id=first, duration_minutes=55, pillars=["assessment", "goals"])
    second = do(ScheduleSession, 79, scheduled_for=days_ago(65), duration_minutes=60)
    do(RecordNoShow, 65, session_id=second)
    third = do(ScheduleSession, 64, scheduled_for=days_ago(50), duration_minutes=60)
    do(CancelSession, 51, session_id=third, late=True, counts_against_allocation=True)
    # Pillar 1: assessment
    do(CompleteAssessment, 79, instrument="riasec", instrument_version="1", result={"A": 41})
    do(RankValues, 79, values=["autonomy", "craft", "family"])
    do(IdentifyStrength, 79, strength="explaining hard ideas", evidence="taught night classes")
    assumption = do(IdentifyLimitingAssumption, 79, assumption="too late to change field")
    do(ReframeLimitingAssumption, 78, assumption_id=assumption, reframe="experience transfers")
    # Pillar 2: goals
    do(StateVision, 79, horizon_years=10, vision="leading a product group")
    goal = do(SetGoal, 79, goal=a_goal(in_days(60)))
    do(IdentifyGap, 79, kind="network", description="no product contacts", goal_id=goal)
    milestone = do(DefineMilestone, 79, goal_id=goal, title="first informational interview")
    do(AnticipateObstacle, 79, goal_id=goal, obstacle="no time", if_then_plan="if busy, 20 min")
    do(HitMilestone, 70, goal_id=goal, milestone_id=milestone)
    do(RateGoalProgress, 70, goal_id=goal, score=0, rater="coach")
    do(ReviseGoal, 60, goal_id=goal, goal=a_goal(in_days(45)), reason="faster than planned")
    do(AchieveGoal, 20, goal_id=goal)
    side_goal = do(SetGoal, 79, goal=a_goal(in_days(30), weight=1))
    do(AbandonGoal, 40, goal_id=side_goal, reason="no longer relevant")
    # Pillar 3: skills
    do(StartSkillFocus, 78, area="interviewing", baseline=3)
    do(CompletePractice, 77, area="interviewing", minutes=45, description="mock interview")
    do(ReassessSkill, 60, area="interviewing", after=6)
    # Pillar 4: accountability
    kept = do(MakeCommitment, 79, title="update CV", due_date=in_days(-75), goal_id=goal)
    do(KeepCommitment, 76, commitment_id=kept)
    missed = do(MakeCommitment, 79, title="ten applications", due_date=in_days(-70))
    do(RenegotiateCommitment, 75, commitment_id=missed, new_due_date=in_days(-68), reason="ill")
    do(MissCommitment, 65, commitment_id=missed)
    do(GiveFeedback, 65, direction="coach_to_client", feedback="strong stories, vague asks")
    do(CorrectCourse, 65, correction="target smaller firms", goal_id=goal)
    do(CelebrateWin, 60, win="first callback", goal_id=goal)
    # Pillar 5: support
    do(CheckWellbeing, 65, confidence=4, stress=7, motivation=6, imposter_feelings=8)
    do(MakeReferral, 64, referral_kind="counsellor", reason="sleep trouble")
    # Lifecycle
    do(PauseEngagement, 50, reason="family matters")
    do(ResumeEngagement, 45)
    do(ReassignCoach, 44, to_coach_id="coach-bo", reason="coach-ada on leave")
    do(CloseEngagement, 15, close_reason="completed")
    do(ReopenEngagement, 14, reason="follow-up on the new role")
    # Outcomes, arriving late
    salary = do(
        ReportTangibleOutcome,
        10,
        kind="salary_increase",
        annualized_value=Decimal("9000.00"),
        currency="EUR",
        attribution=Decimal("0.6"),
        confidence=Decimal("0.7"),
        source="hr_records",
    )
    do(VerifyOutcome, 9, outcome_id=salary, evidence="offer letter")
    windfall = do(
        ReportTangibleOutcome,
        10,
        kind="revenue",
        annualized_value=Decimal("1000000"),
        currency="EUR",
        attribution=Decimal("1"),
        confidence=Decimal("0.1"),
        source="client",
    )
    do(ExcludeOutcome, 9, outcome_id=windfall, exclusion="extreme", reason="one-off deal")
    do(ReportIntangibleOutcome, 9, kind="clarity", before=2, after=8)
    do(SurveyReaction, 9, satisfaction=5, nps=9, comment="worth it")
    # Cost
    invoice = do(IssueInvoice, 8, amount=Decimal("1500.00"), currency="EUR")
    do(ReceivePayment, 7, invoice_id=invoice, amount=Decimal("1500.00"), currency="EUR")
    wrong = do(IssueInvoice, 8, amount=Decimal("150.00"), currency="EUR")
    do(VoidInvoice, 7, invoice_id=wrong, reason="duplicate")
    do(RecordCost, 7, category="assessment_licence", amount=Decimal("49.00"), currency="EUR")
    # Privacy, last: afterwards the engagement takes nothing new
    do(WithdrawConsent, 5, scope="research")
    do(EraseSubject)
    return do


def test_every_event_class_is_produced_by_some_command(
    app: Engagements, ctx: CommandContext
) -> None:
    driven = drive_a_whole_engagement(app, ctx)

    history = app.history(FIRM, driven.engagement_id)

    assert {entry.event_type for entry in history} == {cls.__name__ for cls in EVENT_CLASSES}
    assert app.get(FIRM, driven.engagement_id).version == len(history)


def test_the_whole_engagement_uses_every_command(app: Engagements, ctx: CommandContext) -> None:
    driven = drive_a_whole_engagement(app, ctx)

    assert driven.ran == set(ENGAGEMENT_COMMANDS)


def test_the_catalogue_lists_each_event_class_once_under_its_own_name() -> None:
    names = [cls.__name__ for cls in EVENT_CLASSES]

    assert len(names) == len(set(names)) == len({cls.TOPIC for cls in EVENT_CLASSES})
    assert "EngagementOpened" in names
