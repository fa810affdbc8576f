"""Accountability invariants: a commitment resolves once, and is missed only once due."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from domain.application import Engagements
from domain.commands import (
    CelebrateWin,
    CloseEngagement,
    Command,
    KeepCommitment,
    MakeCommitment,
    MissCommitment,
    PauseEngagement,
    RenegotiateCommitment,
)
from domain.context import CommandContext
from domain.errors import (
    CommitmentAlreadyResolved,
    CommitmentNotFound,
    CommitmentNotYetDue,
    EngagementClosed,
    GoalNotFound,
    OccurredTooEarly,
)
from tests.conftest import FIRM, days_ago
from tests.unit.helpers import assert_refused, in_days, open_engagement, run


def commit(app: Engagements, ctx: CommandContext, engagement_id: UUID, due_in: int) -> str:
    """Make a commitment due ``due_in`` days after the run started; return its id."""
    command = MakeCommitment(
        engagement_id=engagement_id, title="send three applications", due_date=in_days(due_in)
    )
    commitment_id: str = run(app, ctx, command)
    return commitment_id


def test_a_commitment_is_kept_once(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    commitment_id = commit(app, ctx.at(days_ago(5)), engagement_id, due_in=3)

    run(app, ctx, KeepCommitment(engagement_id=engagement_id, commitment_id=commitment_id))

    assert app.get(FIRM, engagement_id).commitments[commitment_id].status == "kept"
    assert_refused(
        app,
        ctx,
        KeepCommitment(engagement_id=engagement_id, commitment_id=commitment_id),
        CommitmentAlreadyResolved,
        f"commitment {commitment_id} was already resolved \\(kept\\)",
    )


def test_a_missed_commitment_can_be_missed_after_its_due_date_and_only_once(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    commitment_id = commit(app, ctx.at(days_ago(20)), engagement_id, due_in=-10)

    run(app, ctx, MissCommitment(engagement_id=engagement_id, commitment_id=commitment_id))

    assert app.get(FIRM, engagement_id).commitments[commitment_id].status == "missed"
    assert_refused(
        app,
        ctx,
        MissCommitment(engagement_id=engagement_id, commitment_id=commitment_id),
        CommitmentAlreadyResolved,
        "already resolved \\(missed\\)",
    )


@pytest.mark.parametrize(
    "second", [KeepCommitment, MissCommitment, RenegotiateCommitment], ids=lambda c: c.__name__
)
@pytest.mark.parametrize("first", [KeepCommitment, MissCommitment], ids=lambda c: c.__name__)
def test_a_resolved_commitment_cannot_be_resolved_or_renegotiated_again(
    app: Engagements, ctx: CommandContext, first: type[Command], second: type[Command]
) -> None:
    engagement_id = open_engagement(app, ctx)
    commitment_id = commit(app, ctx.at(days_ago(20)), engagement_id, due_in=-10)
    run(app, ctx, first(engagement_id=engagement_id, commitment_id=commitment_id))
    extra = (
        {"new_due_date": in_days(7), "reason": "more time"}
        if second is RenegotiateCommitment
        else {}
    )

    assert_refused(
        app,
        ctx,
        second(engagement_id=engagement_id, commitment_id=commitment_id, **extra),
        CommitmentAlreadyResolved,
        "was already resolved",
    )


@pytest.mark.parametrize("due_in", [0, 1, 30])
def test_a_missed_commitment_needs_its_due_date_to_have_passed(
    app: Engagements, ctx: CommandContext, due_in: int
) -> None:
    engagement_id = open_engagement(app, ctx)
    commitment_id = commit(app, ctx.at(days_ago(5)), engagement_id, due_in=due_in)

    assert_refused(
        app,
        ctx.at(days_ago(0)),
        MissCommitment(engagement_id=engagement_id, commitment_id=commitment_id),
        CommitmentNotYetDue,
        f"is due {in_days(due_in).isoformat()}: it can be missed only after that day",
    )
    assert app.get(FIRM, engagement_id).commitments[commitment_id].status == "open"


def test_a_commitment_is_missed_the_day_after_it_was_due(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    commitment_id = commit(app, ctx.at(days_ago(5)), engagement_id, due_in=-1)

    run(
        app,
        ctx.at(days_ago(0)),
        MissCommitment(engagement_id=engagement_id, commitment_id=commitment_id),
    )

    assert app.get(FIRM, engagement_id).commitments[commitment_id].status == "missed"


def test_a_renegotiated_commitment_takes_its_new_due_date(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    commitment_id = commit(app, ctx.at(days_ago(20)), engagement_id, due_in=-10)
    run(
        app,
        ctx,
        RenegotiateCommitment(
            engagement_id=engagement_id,
            commitment_id=commitment_id,
            new_due_date=in_days(7),
            reason="interview week",
        ),
    )

    assert app.get(FIRM, engagement_id).commitments[commitment_id].due_date == in_days(7)
    assert_refused(
        app,
        ctx,
        MissCommitment(engagement_id=engagement_id, commitment_id=commitment_id),
        CommitmentNotYetDue,
        f"is due {in_days(7).isoformat()}",
    )


def test_a_commitment_cannot_resolve_before_it_was_made(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    commitment_id = commit(app, ctx.at(days_ago(5)), engagement_id, due_in=3)

    assert_refused(
        app,
        ctx.at(days_ago(6)),
        KeepCommitment(engagement_id=engagement_id, commitment_id=commitment_id),
        OccurredTooEarly,
        "before the commitment was made",
    )


def test_an_unknown_commitment_cannot_be_resolved(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    commit(app, ctx, engagement_id, due_in=3)
    missing = str(uuid4())

    assert_refused(
        app,
        ctx,
        KeepCommitment(engagement_id=engagement_id, commitment_id=missing),
        CommitmentNotFound,
        f"no commitment {missing}",
    )


def test_no_commitment_is_made_on_a_closed_engagement(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx, CloseEngagement(engagement_id=engagement_id, close_reason="completed"))

    assert_refused(
        app,
        ctx,
        MakeCommitment(engagement_id=engagement_id, title="apply", due_date=in_days(3)),
        EngagementClosed,
        "cannot make a commitment: the engagement was closed",
    )


def test_an_open_commitment_cannot_be_resolved_once_the_engagement_closed(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    commitment_id = commit(app, ctx.at(days_ago(5)), engagement_id, due_in=3)
    run(app, ctx, CloseEngagement(engagement_id=engagement_id, close_reason="completed"))

    assert_refused(
        app,
        ctx,
        KeepCommitment(engagement_id=engagement_id, commitment_id=commitment_id),
        EngagementClosed,
        "cannot resolve a commitment: the engagement was closed",
    )


def test_a_paused_engagement_still_takes_commitments(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx.at(days_ago(1)), PauseEngagement(engagement_id=engagement_id, reason="leave"))

    commitment_id = commit(app, ctx, engagement_id, due_in=3)

    assert app.get(FIRM, engagement_id).commitments[commitment_id].status == "open"


def test_a_commitment_ties_only_to_a_goal_that_exists(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    missing = str(uuid4())

    assert_refused(
        app,
        ctx,
        MakeCommitment(
            engagement_id=engagement_id, title="apply", due_date=in_days(3), goal_id=missing
        ),
        GoalNotFound,
        f"no goal {missing} to tie this to",
    )
    assert_refused(
        app,
        ctx,
        CelebrateWin(engagement_id=engagement_id, win="first callback", goal_id=missing),
        GoalNotFound,
        f"no goal {missing}",
    )
