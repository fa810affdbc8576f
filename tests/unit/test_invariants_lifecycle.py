"""Lifecycle invariants: opened once, active <-> paused, closed only reopens explicitly."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.application import Engagements
from domain.commands import (
    CloseEngagement,
    PauseEngagement,
    ReassignCoach,
    ReopenEngagement,
    ResumeEngagement,
    SignAgreement,
    StateVision,
)
from domain.context import CommandContext
from domain.errors import (
    EngagementAlreadyExists,
    EngagementNotFound,
    InvalidTransition,
    InvalidValue,
    NoSponsor,
    OccurredTooEarly,
    StaleVersion,
)
from tests.conftest import FIRM, days_ago, opening
from tests.unit.helpers import assert_refused, open_engagement, run, written


def test_an_engagement_is_opened_once_as_the_first_event_of_its_stream(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = uuid4()

    result = app.open_engagement(ctx.at(days_ago(10)), opening(engagement_id=engagement_id))

    assert result.engagement_id == engagement_id
    assert written(app, engagement_id) == (1, 1)
    assert app.history(FIRM, engagement_id)[0].event_type == "EngagementOpened"


def test_opening_the_same_engagement_id_twice_is_refused_and_writes_nothing(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = uuid4()
    app.open_engagement(ctx.at(days_ago(10)), opening(engagement_id=engagement_id))
    run(app, ctx, PauseEngagement(engagement_id=engagement_id, reason="holiday"))
    before = written(app, engagement_id)

    with pytest.raises(EngagementAlreadyExists, match=str(engagement_id)):
        app.open_engagement(ctx, opening(engagement_id=engagement_id, client_name="Other"))

    assert written(app, engagement_id) == before
    assert app.get(FIRM, engagement_id).client_name == "Grace Hopper"


def test_a_refused_opening_leaves_no_engagement_behind(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = uuid4()

    with pytest.raises(InvalidValue, match="planned_sessions"):
        app.open_engagement(ctx, opening(engagement_id=engagement_id, planned_sessions=0))

    with pytest.raises(EngagementNotFound):
        app.get(FIRM, engagement_id)


def test_a_command_on_an_engagement_never_opened_is_not_found(
    app: Engagements, ctx: CommandContext
) -> None:
    missing = uuid4()

    with pytest.raises(EngagementNotFound, match=str(missing)):
        app.execute(ctx, PauseEngagement(engagement_id=missing, reason="holiday"))

    with pytest.raises(EngagementNotFound):
        app.history(FIRM, missing)


def test_an_active_engagement_pauses_and_a_paused_one_resumes(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)

    run(app, ctx.at(days_ago(5)), PauseEngagement(engagement_id=engagement_id, reason="leave"))
    assert app.get(FIRM, engagement_id).status == "paused"
    run(app, ctx, ResumeEngagement(engagement_id=engagement_id))

    assert app.get(FIRM, engagement_id).status == "active"
    assert written(app, engagement_id) == (3, 3)


def test_a_paused_engagement_cannot_be_paused_again(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx, PauseEngagement(engagement_id=engagement_id, reason="leave"))

    assert_refused(
        app,
        ctx,
        PauseEngagement(engagement_id=engagement_id, reason="again"),
        InvalidTransition,
        "only an active engagement can be paused",
    )


def test_an_active_engagement_cannot_resume(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)

    assert_refused(
        app,
        ctx,
        ResumeEngagement(engagement_id=engagement_id),
        InvalidTransition,
        "only a paused engagement can resume; it is active",
    )


def test_a_paused_engagement_can_be_closed(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx.at(days_ago(5)), PauseEngagement(engagement_id=engagement_id, reason="leave"))

    run(app, ctx, CloseEngagement(engagement_id=engagement_id, close_reason="client_withdrew"))

    engagement = app.get(FIRM, engagement_id)
    assert (engagement.status, engagement.close_reason) == ("closed", "client_withdrew")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (PauseEngagement, "only an active engagement can be paused; it is closed"),
        (ResumeEngagement, "only a paused engagement can resume; it is closed"),
        (CloseEngagement, "already closed"),
        (SignAgreement, "cannot sign an agreement on a closed engagement"),
    ],
)
def test_a_closed_engagement_leaves_the_closed_state_only_by_reopening(
    app: Engagements, ctx: CommandContext, command: type, message: str
) -> None:
    engagement_id = open_engagement(app, ctx)
    run(
        app,
        ctx.at(days_ago(5)),
        CloseEngagement(engagement_id=engagement_id, close_reason="completed"),
    )
    arguments = {
        PauseEngagement: {"reason": "leave"},
        ResumeEngagement: {},
        CloseEngagement: {"close_reason": "coach_ended"},
        SignAgreement: {"sponsor_may_see": ["attendance"]},
    }[command]

    assert_refused(
        app, ctx, command(engagement_id=engagement_id, **arguments), InvalidTransition, message
    )
    assert app.get(FIRM, engagement_id).status == "closed"


def test_a_closed_engagement_reopens_explicitly(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    run(
        app,
        ctx.at(days_ago(5)),
        CloseEngagement(engagement_id=engagement_id, close_reason="completed"),
    )

    run(app, ctx, ReopenEngagement(engagement_id=engagement_id, reason="new role, new goals"))

    engagement = app.get(FIRM, engagement_id)
    assert (engagement.status, engagement.close_reason) == ("active", None)


def test_only_a_closed_engagement_can_reopen(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)

    assert_refused(
        app,
        ctx,
        ReopenEngagement(engagement_id=engagement_id, reason="why not"),
        InvalidTransition,
        "only a closed engagement can reopen; it is active",
    )


def test_a_close_needs_a_recognised_reason(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)

    assert_refused(
        app,
        ctx,
        CloseEngagement(engagement_id=engagement_id, close_reason="bored"),
        InvalidValue,
        "close_reason: 'bored' is not one of",
    )


def test_a_status_change_cannot_predate_the_previous_one(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx.at(days_ago(5)), PauseEngagement(engagement_id=engagement_id, reason="leave"))

    assert_refused(
        app,
        ctx.at(days_ago(6)),
        ResumeEngagement(engagement_id=engagement_id),
        OccurredTooEarly,
        "before the engagement was paused",
    )


def test_an_agreement_is_signed_with_the_sponsor(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)

    run(app, ctx, SignAgreement(engagement_id=engagement_id, sponsor_may_see=["roi", "goals"]))

    assert app.get(FIRM, engagement_id).sponsor_may_see == ["goals", "roi"]


def test_an_agreement_needs_a_sponsor(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx, sponsor_id=None)

    assert_refused(
        app,
        ctx,
        SignAgreement(engagement_id=engagement_id, sponsor_may_see=["attendance"]),
        NoSponsor,
        "an agreement needs a sponsor",
    )


def test_an_agreement_never_lets_the_sponsor_see_session_notes(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)

    assert_refused(
        app,
        ctx,
        SignAgreement(engagement_id=engagement_id, sponsor_may_see=["attendance", "notes"]),
        InvalidValue,
        "sponsor_may_see: 'notes' is not one of",
    )


def test_a_coach_is_reassigned_only_to_someone_else(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx, ReassignCoach(engagement_id=engagement_id, to_coach_id="coach-bo", reason="load"))
    assert app.get(FIRM, engagement_id).coach_history == ["coach-ada", "coach-bo"]

    assert_refused(
        app,
        ctx,
        ReassignCoach(engagement_id=engagement_id, to_coach_id="coach-bo", reason="again"),
        InvalidValue,
        "coach-bo is already the coach",
    )


def test_another_firms_engagement_is_not_found_and_takes_no_commands(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    other_firm = CommandContext(actor_id="coach-eve", actor_role="coach", firm_id="firm-south")
    before = written(app, engagement_id)

    with pytest.raises(EngagementNotFound, match=str(engagement_id)):
        app.execute(other_firm, PauseEngagement(engagement_id=engagement_id, reason="mine now"))
    with pytest.raises(EngagementNotFound):
        app.get("firm-south", engagement_id)
    with pytest.raises(EngagementNotFound):
        app.history("firm-south", engagement_id)

    assert written(app, engagement_id) == before


def test_a_command_at_the_expected_version_is_saved(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)

    result = app.execute(
        ctx, StateVision(engagement_id=engagement_id, horizon_years=5, vision="lead"), 1
    )

    assert result.version == 2
    assert written(app, engagement_id) == (2, 2)


def test_a_command_at_a_stale_expected_version_is_refused(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx, StateVision(engagement_id=engagement_id, horizon_years=5, vision="lead"))

    assert_refused(
        app,
        ctx,
        StateVision(engagement_id=engagement_id, horizon_years=10, vision="found a firm"),
        StaleVersion,
        "expected engagement version 1, but it is at version 2",
        expected_version=1,
    )


def test_a_batch_with_one_broken_rule_writes_none_of_its_commands(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    before = written(app, engagement_id)

    with pytest.raises(InvalidTransition, match="only a paused engagement can resume"):
        app.execute_batch(
            ctx,
            engagement_id,
            [
                StateVision(engagement_id=engagement_id, horizon_years=5, vision="lead"),
                ResumeEngagement(engagement_id=engagement_id),
            ],
        )

    assert written(app, engagement_id) == before
