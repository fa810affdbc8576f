"""Goal invariants: target after the day set, milestones on open goals hit once, GAS ranges."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from domain.application import Engagements
from domain.commands import (
    AbandonGoal,
    AchieveGoal,
    CloseEngagement,
    DefineMilestone,
    HitMilestone,
    PauseEngagement,
    RateGoalProgress,
    ReviseGoal,
    SetGoal,
    StateVision,
)
from domain.context import CommandContext
from domain.errors import (
    EngagementClosed,
    GoalNotFound,
    GoalNotOpen,
    InvalidValue,
    MilestoneAlreadyHit,
    MilestoneNotFound,
    OccurredTooEarly,
    TargetDateNotAfterSetDate,
)
from domain.goals import SmartGoal
from tests.conftest import FIRM, days_ago
from tests.unit.helpers import LEVELS, a_goal, assert_refused, in_days, open_engagement, run


def set_goal(app: Engagements, ctx: CommandContext, engagement_id: UUID) -> str:
    """Set the default goal and return its id."""
    goal_id: str = run(app, ctx, SetGoal(engagement_id=engagement_id, goal=a_goal()))
    return goal_id


def with_milestone(app: Engagements, ctx: CommandContext) -> tuple[UUID, str, str]:
    """Open an engagement with a goal set 10 days ago and a milestone defined 9 days ago."""
    engagement_id = open_engagement(app, ctx)
    goal_id = set_goal(app, ctx.at(days_ago(10)), engagement_id)
    milestone_id: str = run(
        app,
        ctx.at(days_ago(9)),
        DefineMilestone(engagement_id=engagement_id, goal_id=goal_id, title="first interview"),
    )
    return engagement_id, goal_id, milestone_id


def test_a_goal_is_set_with_a_target_date_the_day_after_it_is_set(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    set_on = days_ago(10)
    target = set_on.date() + timedelta(days=1)

    goal_id = run(app, ctx.at(set_on), SetGoal(engagement_id=engagement_id, goal=a_goal(target)))

    goal = app.get(FIRM, engagement_id).goals[goal_id]
    assert (goal.status, goal.target_date, goal.set_at) == ("open", target, set_on)


@pytest.mark.parametrize("days_after_setting", [0, -1])
def test_a_goal_target_date_must_be_after_the_day_it_is_set(
    app: Engagements, ctx: CommandContext, days_after_setting: int
) -> None:
    engagement_id = open_engagement(app, ctx)
    set_on = days_ago(10)
    target = in_days(-10 + days_after_setting)
    assert target <= set_on.date()

    assert_refused(
        app,
        ctx.at(set_on),
        SetGoal(engagement_id=engagement_id, goal=a_goal(target)),
        TargetDateNotAfterSetDate,
        f"target date {target.isoformat()} must be after the day the goal is set",
    )


def test_a_revised_goal_keeps_a_target_date_in_the_future(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    goal_id = set_goal(app, ctx.at(days_ago(10)), engagement_id)
    run(
        app,
        ctx,
        ReviseGoal(
            engagement_id=engagement_id, goal_id=goal_id, goal=a_goal(in_days(30)), reason="sooner"
        ),
    )
    assert app.get(FIRM, engagement_id).goals[goal_id].target_date == in_days(30)

    assert_refused(
        app,
        ctx,
        ReviseGoal(
            engagement_id=engagement_id, goal_id=goal_id, goal=a_goal(in_days(0)), reason="now"
        ),
        TargetDateNotAfterSetDate,
        "must be after the day",
    )


def test_no_goal_is_set_on_a_closed_engagement(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx, CloseEngagement(engagement_id=engagement_id, close_reason="completed"))

    assert_refused(
        app,
        ctx,
        SetGoal(engagement_id=engagement_id, goal=a_goal()),
        EngagementClosed,
        "cannot set a goal: the engagement was closed",
    )


def test_a_paused_engagement_still_takes_goals(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx.at(days_ago(1)), PauseEngagement(engagement_id=engagement_id, reason="leave"))

    goal_id = set_goal(app, ctx, engagement_id)

    assert goal_id in app.get(FIRM, engagement_id).goals


def test_a_milestone_is_defined_on_an_open_goal_and_hit_once(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id, goal_id, milestone_id = with_milestone(app, ctx)

    run(
        app,
        ctx,
        HitMilestone(engagement_id=engagement_id, goal_id=goal_id, milestone_id=milestone_id),
    )

    assert app.get(FIRM, engagement_id).goals[goal_id].milestones[milestone_id].hit_at is not None
    assert_refused(
        app,
        ctx,
        HitMilestone(engagement_id=engagement_id, goal_id=goal_id, milestone_id=milestone_id),
        MilestoneAlreadyHit,
        f"milestone {milestone_id} was already hit",
    )


def test_a_milestone_must_belong_to_its_goal(app: Engagements, ctx: CommandContext) -> None:
    engagement_id, goal_id, _ = with_milestone(app, ctx)
    other_goal = set_goal(app, ctx, engagement_id)
    elsewhere: str = run(
        app, ctx, DefineMilestone(engagement_id=engagement_id, goal_id=other_goal, title="CV")
    )

    assert_refused(
        app,
        ctx,
        HitMilestone(engagement_id=engagement_id, goal_id=goal_id, milestone_id=elsewhere),
        MilestoneNotFound,
        f"goal {goal_id} has no milestone {elsewhere}",
    )


def test_a_milestone_needs_a_goal_that_exists(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    missing = str(uuid4())

    assert_refused(
        app,
        ctx,
        DefineMilestone(engagement_id=engagement_id, goal_id=missing, title="CV"),
        GoalNotFound,
        f"no goal {missing}",
    )


@pytest.mark.parametrize("closing", ["achieved", "abandoned"])
def test_a_milestone_belongs_to_an_open_goal(
    app: Engagements, ctx: CommandContext, closing: str
) -> None:
    engagement_id, goal_id, milestone_id = with_milestone(app, ctx)
    run(
        app,
        ctx.at(days_ago(1)),
        AchieveGoal(engagement_id=engagement_id, goal_id=goal_id)
        if closing == "achieved"
        else AbandonGoal(engagement_id=engagement_id, goal_id=goal_id, reason="changed course"),
    )

    assert_refused(
        app,
        ctx,
        HitMilestone(engagement_id=engagement_id, goal_id=goal_id, milestone_id=milestone_id),
        GoalNotOpen,
        f"cannot hit a milestone: goal {goal_id} is {closing}",
    )
    assert_refused(
        app,
        ctx,
        DefineMilestone(engagement_id=engagement_id, goal_id=goal_id, title="late idea"),
        GoalNotOpen,
        f"cannot define a milestone: goal {goal_id} is {closing}",
    )


def test_a_closed_goal_cannot_be_achieved_again(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    goal_id = set_goal(app, ctx.at(days_ago(2)), engagement_id)
    run(app, ctx, AchieveGoal(engagement_id=engagement_id, goal_id=goal_id))

    assert_refused(
        app,
        ctx,
        AchieveGoal(engagement_id=engagement_id, goal_id=goal_id),
        GoalNotOpen,
        "cannot achieve it",
    )


def test_a_milestone_cannot_be_hit_before_it_was_defined(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id, goal_id, milestone_id = with_milestone(app, ctx)

    assert_refused(
        app,
        ctx.at(days_ago(9.5)),
        HitMilestone(engagement_id=engagement_id, goal_id=goal_id, milestone_id=milestone_id),
        OccurredTooEarly,
        "before the milestone was defined",
    )


def test_a_goal_cannot_be_rated_before_it_was_set(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    goal_id = set_goal(app, ctx.at(days_ago(10)), engagement_id)

    assert_refused(
        app,
        ctx.at(days_ago(11)),
        RateGoalProgress(engagement_id=engagement_id, goal_id=goal_id, score=0, rater="coach"),
        OccurredTooEarly,
        "before the goal was set",
    )


@pytest.mark.parametrize(("score", "accepted"), [(-3, False), (-2, True), (2, True), (3, False)])
def test_goal_progress_is_rated_on_the_attainment_scale_minus_two_to_two(
    app: Engagements, ctx: CommandContext, score: int, accepted: bool
) -> None:
    engagement_id = open_engagement(app, ctx)
    goal_id = set_goal(app, ctx, engagement_id)
    command = RateGoalProgress(
        engagement_id=engagement_id, goal_id=goal_id, score=score, rater="client"
    )

    if accepted:
        run(app, ctx, command)
        assert app.get(FIRM, engagement_id).goals[goal_id].latest_score == score
    else:
        assert_refused(app, ctx, command, InvalidValue, "score: must be between -2 and 2")


def test_a_goal_progress_score_is_a_whole_number(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    goal_id = set_goal(app, ctx, engagement_id)

    assert_refused(
        app,
        ctx,
        RateGoalProgress(engagement_id=engagement_id, goal_id=goal_id, score=True, rater="coach"),
        InvalidValue,
        "score: must be a whole number",
    )


@pytest.mark.parametrize("weight", [1, 4])
def test_a_goal_weight_of_one_to_four_is_accepted(
    app: Engagements, ctx: CommandContext, weight: int
) -> None:
    engagement_id = open_engagement(app, ctx)

    goal_id = run(app, ctx, SetGoal(engagement_id=engagement_id, goal=a_goal(weight=weight)))

    assert app.get(FIRM, engagement_id).goals[goal_id].weight == weight


@pytest.mark.parametrize("weight", [0, 5])
def test_a_goal_weight_outside_one_to_four_is_refused(weight: int) -> None:
    with pytest.raises(InvalidValue, match="weight: must be between 1 and 4"):
        a_goal(weight=weight)


@pytest.mark.parametrize(
    "broken",
    [
        {"weight": 5},
        {"weight": 0},
        {"levels": {"0": "three interviews"}},
        {"title": "   "},
    ],
)
def test_a_goal_built_without_validation_is_still_refused_by_the_engagement(
    app: Engagements, ctx: CommandContext, broken: dict[str, object]
) -> None:
    engagement_id = open_engagement(app, ctx)
    goal_id = set_goal(app, ctx, engagement_id)
    unchecked = replace(a_goal(), **broken)  # the dataclass constructor skips SmartGoal.of
    field = next(iter(broken))

    assert_refused(
        app, ctx, SetGoal(engagement_id=engagement_id, goal=unchecked), InvalidValue, f"{field}: "
    )
    assert_refused(
        app,
        ctx,
        ReviseGoal(engagement_id=engagement_id, goal_id=goal_id, goal=unchecked, reason="r"),
        InvalidValue,
        f"{field}: ",
    )


def test_a_goal_describes_every_attainment_level_from_minus_two_to_two() -> None:
    with pytest.raises(InvalidValue, match="levels: must describe exactly the levels"):
        SmartGoal.of(
            title="t",
            measure="m",
            baseline="b",
            target="x",
            target_date=in_days(30),
            weight=2,
            levels={k: v for k, v in LEVELS.items() if k != "2"},
        )


@pytest.mark.parametrize(("horizon", "accepted"), [(5, True), (10, True), (20, True), (7, False)])
def test_a_vision_looks_five_ten_or_twenty_years_ahead(
    app: Engagements, ctx: CommandContext, horizon: int, accepted: bool
) -> None:
    engagement_id = open_engagement(app, ctx)
    command = StateVision(engagement_id=engagement_id, horizon_years=horizon, vision="lead a team")

    if accepted:
        run(app, ctx, command)
        assert app.get(FIRM, engagement_id).visions == [horizon]
    else:
        assert_refused(app, ctx, command, InvalidValue, "horizon_years: must be one of")
