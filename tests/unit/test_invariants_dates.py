"""Dates an engagement accepts: within its life, within the planning horizon, a milestone
due by its goal's target, a session held no earlier than its time allows."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.application import Engagements
from domain.commands import (
    DefineMilestone,
    HoldSession,
    MakeCommitment,
    RecordNoShow,
    RenegotiateCommitment,
    RescheduleSession,
    ReviseGoal,
    ScheduleSession,
    SetGoal,
)
from domain.context import CommandContext
from domain.errors import DateOutOfRange
from domain.state import PLANNING_HORIZON
from tests.conftest import FIRM, days_ago
from tests.unit.helpers import a_goal, assert_refused, in_days, open_engagement, run, today


def test_a_session_may_be_scheduled_up_to_30_days_before_the_opening(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx, days=10)
    opened_at = days_ago(10)

    run(
        app,
        ctx,
        ScheduleSession(
            engagement_id=engagement_id,
            scheduled_for=opened_at - timedelta(days=30),
            duration_minutes=60,
        ),
    )
    assert_refused(
        app,
        ctx,
        ScheduleSession(
            engagement_id=engagement_id,
            scheduled_for=opened_at - timedelta(days=30, seconds=1),
            duration_minutes=60,
        ),
        DateOutOfRange,
        "scheduled_for: .* is more than 30 days before the engagement was opened",
    )


def test_a_session_scheduled_years_before_the_opening_is_refused(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    with pytest.raises(DateOutOfRange) as refused:
        run(
            app,
            ctx,
            ScheduleSession(
                engagement_id=engagement_id,
                scheduled_for=days_ago(3 * 365),
                duration_minutes=60,
            ),
        )
    assert refused.value.field == "scheduled_for"
    assert refused.value.code == "date_out_of_range"


def test_a_session_beyond_the_planning_horizon_is_refused_also_when_rescheduled(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    now = ctx.at(days_ago(0))
    session_id = run(
        app,
        now,
        ScheduleSession(
            engagement_id=engagement_id, scheduled_for=days_ago(-1800), duration_minutes=60
        ),
    )
    assert_refused(
        app,
        now,
        RescheduleSession(
            engagement_id=engagement_id,
            session_id=session_id,
            scheduled_for=days_ago(0) + PLANNING_HORIZON + timedelta(minutes=1),
        ),
        DateOutOfRange,
        "scheduled_for: .* is beyond the planning horizon of 1827 days",
    )
    assert_refused(
        app,
        now,
        RescheduleSession(
            engagement_id=engagement_id, session_id=session_id, scheduled_for=days_ago(400)
        ),
        DateOutOfRange,
        "scheduled_for: .* before the engagement was opened",
    )


@pytest.mark.parametrize("ending", ["held", "no_show"])
def test_a_session_ends_no_earlier_than_two_hours_before_its_time(
    app: Engagements, ctx: CommandContext, ending: str
) -> None:
    engagement_id = open_engagement(app, ctx)
    session_at = days_ago(5)
    session_id = run(
        app,
        ctx.at(days_ago(20)),
        ScheduleSession(engagement_id=engagement_id, scheduled_for=session_at, duration_minutes=60),
    )

    def end(engagement_id: object = engagement_id) -> HoldSession | RecordNoShow:
        if ending == "held":
            return HoldSession(
                engagement_id=engagement_id,  # type: ignore[arg-type]
                session_id=session_id,
                duration_minutes=60,
                pillars=[],
            )
        return RecordNoShow(engagement_id=engagement_id, session_id=session_id)  # type: ignore[arg-type]

    assert_refused(
        app,
        ctx.at(session_at - timedelta(hours=2, seconds=1)),
        end(),
        DateOutOfRange,
        "occurred_at: a session cannot be .* more than 2 hours before its scheduled time",
    )
    run(app, ctx.at(session_at - timedelta(hours=2)), end())
    assert app.get(FIRM, engagement_id).sessions[session_id].status == ending


def test_a_commitment_cannot_fall_due_before_the_engagement_opened(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx, days=10)
    opened_on = days_ago(10).date()

    assert_refused(
        app,
        ctx,
        MakeCommitment(
            engagement_id=engagement_id, title="call Ana", due_date=opened_on - timedelta(days=1)
        ),
        DateOutOfRange,
        "due_date: .* is before the engagement was opened",
    )
    commitment_id = run(
        app, ctx, MakeCommitment(engagement_id=engagement_id, title="call Ana", due_date=opened_on)
    )
    assert_refused(
        app,
        ctx,
        RenegotiateCommitment(
            engagement_id=engagement_id,
            commitment_id=commitment_id,
            new_due_date=date(9999, 12, 31),
            reason="no rush",
        ),
        DateOutOfRange,
        "new_due_date: 9999-12-31 is beyond the planning horizon",
    )


def test_a_goal_target_lies_within_the_planning_horizon(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    horizon = today() + PLANNING_HORIZON

    with pytest.raises(DateOutOfRange) as refused:
        run(app, ctx, SetGoal(engagement_id=engagement_id, goal=a_goal(date(9999, 12, 31))))
    assert refused.value.field == "goal.target_date"
    goal_id = run(app, ctx, SetGoal(engagement_id=engagement_id, goal=a_goal(horizon)))
    assert_refused(
        app,
        ctx,
        ReviseGoal(
            engagement_id=engagement_id,
            goal_id=goal_id,
            goal=a_goal(horizon + timedelta(days=1)),
            reason="longer",
        ),
        DateOutOfRange,
        "goal.target_date: .* is beyond the planning horizon",
    )


def test_a_milestone_is_due_by_its_goal_target_and_a_revision_keeps_it_so(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    goal_id = run(app, ctx, SetGoal(engagement_id=engagement_id, goal=a_goal(in_days(90))))

    assert_refused(
        app,
        ctx,
        DefineMilestone(
            engagement_id=engagement_id, goal_id=goal_id, title="CV", due_date=in_days(91)
        ),
        DateOutOfRange,
        "due_date: .* is after the goal's target date",
    )
    assert_refused(
        app,
        ctx,
        DefineMilestone(
            engagement_id=engagement_id, goal_id=goal_id, title="CV", due_date=days_ago(31).date()
        ),
        DateOutOfRange,
        "due_date: .* is before the engagement was opened",
    )
    milestone_id = run(
        app,
        ctx,
        DefineMilestone(
            engagement_id=engagement_id, goal_id=goal_id, title="CV", due_date=in_days(60)
        ),
    )
    assert_refused(
        app,
        ctx,
        ReviseGoal(
            engagement_id=engagement_id, goal_id=goal_id, goal=a_goal(in_days(59)), reason="sooner"
        ),
        DateOutOfRange,
        f"goal.target_date: .* is before milestone {milestone_id} is due",
    )
    run(
        app,
        ctx,
        ReviseGoal(
            engagement_id=engagement_id, goal_id=goal_id, goal=a_goal(in_days(60)), reason="sooner"
        ),
    )
