"""Privacy and value invariants: consent, erasure, ids, occurred times, ranges and codes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain.application import Engagements
from domain.commands import (
    CheckWellbeing,
    Command,
    CompleteAssessment,
    DefineMilestone,
    EraseSubject,
    GrantConsent,
    IdentifyGap,
    IdentifyLimitingAssumption,
    IssueInvoice,
    MakeCommitment,
    PauseEngagement,
    RecordCost,
    ReportTangibleOutcome,
    ScheduleSession,
    SetGoal,
    StartSkillFocus,
    StateVision,
    WithdrawConsent,
)
from domain.context import CLOCK_SKEW, CommandContext, utcnow
from domain.errors import (
    ClientErased,
    ConsentAlreadyGranted,
    ConsentNotGranted,
    DuplicateId,
    EngagementNotFound,
    InvalidValue,
    OccurredInFuture,
    OccurredTooEarly,
)
from tests.conftest import FIRM, NOW, days_ago, opening
from tests.unit.helpers import a_goal, assert_refused, in_days, open_engagement, run, written

# -- consent -----------------------------------------------------------------------------


def test_a_consent_is_granted_then_withdrawn(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)

    run(app, ctx, GrantConsent(engagement_id=engagement_id, scope="research"))
    assert app.get(FIRM, engagement_id).consents == ["research"]
    run(app, ctx, WithdrawConsent(engagement_id=engagement_id, scope="research"))

    assert app.get(FIRM, engagement_id).consents == []


def test_a_consent_in_force_cannot_be_granted_twice(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx, GrantConsent(engagement_id=engagement_id, scope="share_outcomes"))

    assert_refused(
        app,
        ctx,
        GrantConsent(engagement_id=engagement_id, scope="share_outcomes"),
        ConsentAlreadyGranted,
        "consent to share_outcomes is already in force",
    )


def test_a_consent_not_in_force_cannot_be_withdrawn(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx, GrantConsent(engagement_id=engagement_id, scope="research"))

    assert_refused(
        app,
        ctx,
        WithdrawConsent(engagement_id=engagement_id, scope="share_goals_with_sponsor"),
        ConsentNotGranted,
        "consent to share_goals_with_sponsor is not in force",
    )


def test_a_consent_names_a_known_scope(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)

    assert_refused(
        app,
        ctx,
        GrantConsent(engagement_id=engagement_id, scope="marketing"),
        InvalidValue,
        "scope: 'marketing' is not one of",
    )


# -- erasure -----------------------------------------------------------------------------


def test_erasing_the_client_forgets_their_name_and_consents(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx, GrantConsent(engagement_id=engagement_id, scope="research"))

    run(app, ctx, EraseSubject(engagement_id=engagement_id))

    engagement = app.get(FIRM, engagement_id)
    assert (engagement.erased, engagement.client_name, engagement.consents) == (True, "", [])


AFTER_ERASURE: dict[str, Callable[[UUID], Command]] = {
    "erase again": lambda e: EraseSubject(engagement_id=e),
    "session": lambda e: ScheduleSession(engagement_id=e, scheduled_for=NOW, duration_minutes=60),
    "goal": lambda e: SetGoal(engagement_id=e, goal=a_goal()),
    "commitment": lambda e: MakeCommitment(engagement_id=e, title="apply", due_date=in_days(3)),
    "consent": lambda e: GrantConsent(engagement_id=e, scope="research"),
    "wellbeing": lambda e: CheckWellbeing(
        engagement_id=e, confidence=5, stress=5, motivation=5, imposter_feelings=5
    ),
    "pause": lambda e: PauseEngagement(engagement_id=e, reason="leave"),
    "invoice": lambda e: IssueInvoice(engagement_id=e, amount=Decimal("10"), currency="EUR"),
    "outcome": lambda e: ReportTangibleOutcome(
        engagement_id=e,
        kind="promotion",
        annualized_value=Decimal("5000"),
        currency="EUR",
        attribution=Decimal("0.5"),
        confidence=Decimal("0.5"),
        source="client",
    ),
}


@pytest.mark.parametrize("what", AFTER_ERASURE)
def test_an_erased_client_takes_nothing_new(
    app: Engagements, ctx: CommandContext, what: str
) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx, EraseSubject(engagement_id=engagement_id))

    assert_refused(app, ctx, AFTER_ERASURE[what](engagement_id), ClientErased, "erased")


# -- caller-supplied ids -----------------------------------------------------------------


def goal_with_id(app: Engagements, ctx: CommandContext, engagement_id: UUID) -> str:
    """Set a goal and return its id (milestone ids are unique within their goal)."""
    goal_id: str = run(app, ctx, SetGoal(engagement_id=engagement_id, goal=a_goal()))
    return goal_id


IDENTIFIED: dict[str, Callable[[UUID, str, str], Command]] = {
    "session": lambda e, _, i: ScheduleSession(
        engagement_id=e, scheduled_for=NOW, duration_minutes=60, session_id=i
    ),
    "goal": lambda e, _, i: SetGoal(engagement_id=e, goal=a_goal(), goal_id=i),
    "milestone": lambda e, g, i: DefineMilestone(
        engagement_id=e, goal_id=g, title="CV", milestone_id=i
    ),
    "gap": lambda e, _, i: IdentifyGap(
        engagement_id=e, kind="network", description="no product contacts", gap_id=i
    ),
    "commitment": lambda e, _, i: MakeCommitment(
        engagement_id=e, title="apply", due_date=in_days(3), commitment_id=i
    ),
    "assessment": lambda e, _, i: CompleteAssessment(
        engagement_id=e,
        instrument="disc",
        instrument_version="2",
        result={"D": 70},
        assessment_id=i,
    ),
    "assumption": lambda e, _, i: IdentifyLimitingAssumption(
        engagement_id=e, assumption="too old to switch", assumption_id=i
    ),
    "outcome": lambda e, _, i: ReportTangibleOutcome(
        engagement_id=e,
        kind="new_role",
        annualized_value=Decimal("8000"),
        currency="EUR",
        attribution=Decimal("0.4"),
        confidence=Decimal("0.9"),
        source="client",
        outcome_id=i,
    ),
    "invoice": lambda e, _, i: IssueInvoice(
        engagement_id=e, amount=Decimal("150"), currency="EUR", invoice_id=i
    ),
    "cost": lambda e, _, i: RecordCost(
        engagement_id=e, category="platform", amount=Decimal("20"), currency="EUR", cost_id=i
    ),
}


@pytest.mark.parametrize("kind", IDENTIFIED)
def test_a_caller_supplied_id_is_kept_and_cannot_be_used_twice(
    app: Engagements, ctx: CommandContext, kind: str
) -> None:
    engagement_id = open_engagement(app, ctx)
    goal_id = goal_with_id(app, ctx, engagement_id)
    ident = uuid4()

    result = run(app, ctx, IDENTIFIED[kind](engagement_id, goal_id, str(ident)))
    assert result == str(ident)

    assert_refused(
        app,
        ctx,
        IDENTIFIED[kind](engagement_id, goal_id, str(ident).upper()),
        DuplicateId,
        f"{kind} {ident} already exists in this engagement",
    )


@pytest.mark.parametrize("kind", ["session", "goal", "invoice"])
def test_a_caller_supplied_id_must_be_a_uuid(
    app: Engagements, ctx: CommandContext, kind: str
) -> None:
    engagement_id = open_engagement(app, ctx)
    goal_id = goal_with_id(app, ctx, engagement_id)

    assert_refused(
        app,
        ctx,
        IDENTIFIED[kind](engagement_id, goal_id, "my-id"),
        InvalidValue,
        f"{kind}_id: 'my-id' is not a UUID",
    )


# -- occurred times ----------------------------------------------------------------------


def test_a_command_may_claim_a_time_within_the_clock_skew(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    soon = utcnow() + CLOCK_SKEW - timedelta(seconds=30)

    run(app, ctx.at(soon), StateVision(engagement_id=engagement_id, horizon_years=5, vision="lead"))

    assert app.history(FIRM, engagement_id)[-1].occurred_at == soon


def test_a_command_cannot_claim_to_happen_beyond_the_clock_skew(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    later = utcnow() + CLOCK_SKEW + timedelta(minutes=1)

    assert_refused(
        app,
        ctx.at(later),
        StateVision(engagement_id=engagement_id, horizon_years=5, vision="lead"),
        OccurredInFuture,
        "is in the future",
    )


def test_an_engagement_cannot_be_opened_in_the_future(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = uuid4()
    later = utcnow() + timedelta(hours=1)

    with pytest.raises(OccurredInFuture, match="is in the future"):
        app.open_engagement(ctx.at(later), opening(engagement_id=engagement_id))

    with pytest.raises(EngagementNotFound):
        app.get(FIRM, engagement_id)


def test_an_event_can_be_logged_late_but_not_before_the_engagement_opened(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx, days=30)
    run(
        app,
        ctx.at(days_ago(29)),
        StartSkillFocus(engagement_id=engagement_id, area="networking", baseline=3),
    )
    assert app.history(FIRM, engagement_id)[-1].occurred_at == days_ago(29)

    assert_refused(
        app,
        ctx.at(days_ago(31)),
        StartSkillFocus(engagement_id=engagement_id, area="interviewing", baseline=3),
        OccurredTooEarly,
        "before the engagement was opened",
    )


def test_an_occurred_time_carries_a_timezone(ctx: CommandContext) -> None:
    with pytest.raises(InvalidValue, match="occurred_at: must carry a timezone offset"):
        ctx.at(NOW.replace(tzinfo=None))


# -- ranges and codes --------------------------------------------------------------------


@pytest.mark.parametrize("dimension", ["confidence", "stress", "motivation", "imposter_feelings"])
@pytest.mark.parametrize(("level", "accepted"), [(-1, False), (0, True), (10, True), (11, False)])
def test_wellbeing_is_checked_on_a_scale_of_zero_to_ten(
    app: Engagements, ctx: CommandContext, dimension: str, level: int, accepted: bool
) -> None:
    engagement_id = open_engagement(app, ctx)
    levels = {"confidence": 5, "stress": 5, "motivation": 5, "imposter_feelings": 5}
    levels[dimension] = level
    command = CheckWellbeing(engagement_id=engagement_id, **levels)

    if accepted:
        run(app, ctx, command)
        assert app.get(FIRM, engagement_id).wellbeing == [levels]
    else:
        assert_refused(app, ctx, command, InvalidValue, f"{dimension}: must be between 0 and 10")


@pytest.mark.parametrize("currency", ["EUR", "USD", "JPY", "CHF"])
def test_an_engagement_is_opened_in_an_iso_4217_currency(
    app: Engagements, ctx: CommandContext, currency: str
) -> None:
    engagement_id = open_engagement(app, ctx, currency=currency)

    assert app.get(FIRM, engagement_id).currency == currency


@pytest.mark.parametrize(
    ("currency", "match"),
    [
        ("eur", "is not an ISO 4217 code like 'EUR'"),
        ("EURO", "is not an ISO 4217 code like 'EUR'"),
        ("ZZQ", "is not an ISO 4217 currency"),
    ],
)
def test_an_engagement_in_an_unknown_currency_is_refused(
    app: Engagements, ctx: CommandContext, currency: str, match: str
) -> None:
    engagement_id = uuid4()

    with pytest.raises(InvalidValue, match=f"fee_per_session.currency: '{currency}' {match}"):
        app.open_engagement(ctx, opening(engagement_id=engagement_id, currency=currency))

    with pytest.raises(EngagementNotFound):
        app.get(FIRM, engagement_id)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"fee_per_session": 150.0}, "fee_per_session: must be a Decimal"),
        ({"fee_per_session": Decimal("-1")}, "fee_per_session: must not be negative"),
        ({"planned_sessions": 501}, "planned_sessions: must be between 1 and 500"),
        ({"cadence_days": 0}, "cadence_days: must be between 1 and 365"),
        ({"segment": "retiree"}, "segment: 'retiree' is not one of"),
        ({"delivery": "carrier pigeon"}, "delivery: 'carrier pigeon' is not one of"),
        ({"client_name": "  "}, "client_name: must not be empty"),
    ],
)
def test_an_engagement_with_an_invalid_term_is_not_opened(
    app: Engagements, ctx: CommandContext, overrides: dict[str, object], match: str
) -> None:
    engagement_id = uuid4()

    with pytest.raises(InvalidValue, match=match):
        app.open_engagement(ctx, opening(engagement_id=engagement_id, **overrides))

    with pytest.raises(EngagementNotFound):
        app.get(FIRM, engagement_id)


def test_an_engagement_with_a_free_session_fee_is_opened(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx, fee_per_session=Decimal("0"), sponsor_id=None)

    assert written(app, engagement_id) == (1, 1)
    assert app.get(FIRM, engagement_id).fee_per_session == Decimal("0")
