"""Session invariants: only on an active engagement, held only if scheduled, ended once."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from domain.application import Engagements
from domain.commands import (
    CancelSession,
    CloseEngagement,
    Command,
    HoldSession,
    PauseEngagement,
    RecordNoShow,
    RescheduleSession,
    ResumeEngagement,
    ScheduleSession,
)
from domain.context import CommandContext
from domain.errors import (
    EngagementClosed,
    EngagementPaused,
    InvalidValue,
    OccurredTooEarly,
    SessionAlreadyEnded,
    SessionNotFound,
)
from tests.conftest import FIRM, NOW, days_ago
from tests.unit.helpers import assert_refused, open_engagement, run


def schedule(app: Engagements, ctx: CommandContext, engagement_id: UUID) -> str:
    """Schedule a one-hour session a day after the scheduling and return its id."""
    command = ScheduleSession(
        engagement_id=engagement_id,
        scheduled_for=(ctx.occurred_at or NOW) + timedelta(days=1),
        duration_minutes=60,
    )
    session_id: str = run(app, ctx, command)
    return session_id


def test_a_session_is_scheduled_then_held(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    session_id = schedule(app, ctx.at(days_ago(10)), engagement_id)

    run(
        app,
        ctx.at(days_ago(9)),
        HoldSession(
            engagement_id=engagement_id,
            session_id=session_id,
            duration_minutes=55,
            pillars=["goals"],
        ),
    )

    session = app.get(FIRM, engagement_id).sessions[session_id]
    assert (session.status, session.held_minutes, session.pillars) == ("held", 55, ["goals"])


def test_a_session_cannot_be_scheduled_on_a_closed_engagement(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx, CloseEngagement(engagement_id=engagement_id, close_reason="completed"))

    assert_refused(
        app,
        ctx,
        ScheduleSession(engagement_id=engagement_id, scheduled_for=NOW, duration_minutes=60),
        EngagementClosed,
        "cannot schedule a session: the engagement was closed",
    )


def test_a_session_cannot_be_scheduled_while_the_engagement_is_paused(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    run(app, ctx, PauseEngagement(engagement_id=engagement_id, reason="parental leave"))

    assert_refused(
        app,
        ctx,
        ScheduleSession(engagement_id=engagement_id, scheduled_for=NOW, duration_minutes=60),
        EngagementPaused,
        "cannot schedule a session: the engagement was paused",
    )


def test_a_session_cannot_be_held_while_the_engagement_is_paused(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    session_id = schedule(app, ctx.at(days_ago(10)), engagement_id)
    run(app, ctx.at(days_ago(9)), PauseEngagement(engagement_id=engagement_id, reason="leave"))

    assert_refused(
        app,
        ctx,
        HoldSession(
            engagement_id=engagement_id, session_id=session_id, duration_minutes=60, pillars=[]
        ),
        EngagementPaused,
        "cannot hold a session: the engagement was paused",
    )


def test_a_session_cannot_be_held_on_a_closed_engagement(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    session_id = schedule(app, ctx.at(days_ago(10)), engagement_id)
    run(
        app,
        ctx.at(days_ago(9)),
        CloseEngagement(engagement_id=engagement_id, close_reason="completed"),
    )

    assert_refused(
        app,
        ctx,
        HoldSession(
            engagement_id=engagement_id, session_id=session_id, duration_minutes=60, pillars=[]
        ),
        EngagementClosed,
        "cannot hold a session: the engagement was closed",
    )


def test_a_scheduled_session_can_still_be_cancelled_after_closing(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    session_id = schedule(app, ctx.at(days_ago(10)), engagement_id)
    run(
        app,
        ctx.at(days_ago(9)),
        CloseEngagement(engagement_id=engagement_id, close_reason="completed"),
    )

    run(app, ctx, CancelSession(engagement_id=engagement_id, session_id=session_id))

    assert app.get(FIRM, engagement_id).sessions[session_id].status == "cancelled"


def test_only_a_scheduled_session_can_be_held(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    schedule(app, ctx, engagement_id)
    never_scheduled = str(uuid4())

    assert_refused(
        app,
        ctx,
        HoldSession(
            engagement_id=engagement_id, session_id=never_scheduled, duration_minutes=60, pillars=[]
        ),
        SessionNotFound,
        f"no session {never_scheduled}",
    )


def end_with(command: str, engagement_id: UUID, session_id: str) -> Command:
    """Return the command that ends a session in the way named."""
    if command == "held":
        return HoldSession(
            engagement_id=engagement_id, session_id=session_id, duration_minutes=60, pillars=[]
        )
    if command == "no_show":
        return RecordNoShow(engagement_id=engagement_id, session_id=session_id)
    return CancelSession(engagement_id=engagement_id, session_id=session_id, late=True)


ENDINGS = ["held", "no_show", "cancelled"]


@pytest.mark.parametrize("first", ENDINGS)
@pytest.mark.parametrize("second", [*ENDINGS, "rescheduled"])
def test_a_session_ends_exactly_once(
    app: Engagements, ctx: CommandContext, first: str, second: str
) -> None:
    engagement_id = open_engagement(app, ctx)
    session_id = schedule(app, ctx.at(days_ago(10)), engagement_id)
    run(app, ctx.at(days_ago(9)), end_with(first, engagement_id, session_id))
    assert app.get(FIRM, engagement_id).sessions[session_id].status == first
    again: Command = (
        RescheduleSession(engagement_id=engagement_id, session_id=session_id, scheduled_for=NOW)
        if second == "rescheduled"
        else end_with(second, engagement_id, session_id)
    )

    assert_refused(
        app, ctx, again, SessionAlreadyEnded, f"session {session_id} already ended \\({first}\\)"
    )


def test_a_scheduled_session_can_be_rescheduled(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    session_id = schedule(app, ctx.at(days_ago(10)), engagement_id)

    run(
        app,
        ctx,
        RescheduleSession(
            engagement_id=engagement_id, session_id=session_id, scheduled_for=days_ago(-3)
        ),
    )

    session = app.get(FIRM, engagement_id).sessions[session_id]
    assert (session.scheduled_for, session.reschedules) == (days_ago(-3), 1)


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_session_cannot_end_before_it_was_scheduled(
    app: Engagements, ctx: CommandContext, ending: str
) -> None:
    engagement_id = open_engagement(app, ctx)
    session_id = schedule(app, ctx.at(days_ago(10)), engagement_id)

    assert_refused(
        app,
        ctx.at(days_ago(11)),
        end_with(ending, engagement_id, session_id),
        OccurredTooEarly,
        "before the session was scheduled",
    )


def test_a_session_cannot_be_scheduled_before_the_engagement_opened(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx, days=30)

    assert_refused(
        app,
        ctx.at(days_ago(31)),
        ScheduleSession(engagement_id=engagement_id, scheduled_for=NOW, duration_minutes=60),
        OccurredTooEarly,
        "before the engagement was opened",
    )


@pytest.mark.parametrize(
    ("minutes", "accepted"), [(4, False), (5, True), (480, True), (481, False)]
)
def test_a_scheduled_session_lasts_five_minutes_to_eight_hours(
    app: Engagements, ctx: CommandContext, minutes: int, accepted: bool
) -> None:
    engagement_id = open_engagement(app, ctx)
    command = ScheduleSession(
        engagement_id=engagement_id, scheduled_for=NOW, duration_minutes=minutes
    )

    if accepted:
        session_id = run(app, ctx, command)
        assert app.get(FIRM, engagement_id).sessions[session_id].duration_minutes == minutes
    else:
        assert_refused(
            app, ctx, command, InvalidValue, "duration_minutes: must be between 5 and 480"
        )


def test_a_session_time_needs_a_timezone(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)

    assert_refused(
        app,
        ctx,
        ScheduleSession(
            engagement_id=engagement_id,
            scheduled_for=NOW.replace(tzinfo=None),
            duration_minutes=60,
        ),
        InvalidValue,
        "scheduled_for: must be a date-time with a timezone offset",
    )


def test_a_held_session_lists_each_pillar_once_and_only_known_ones(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    session_id = schedule(app, ctx.at(days_ago(2)), engagement_id)

    assert_refused(
        app,
        ctx,
        HoldSession(
            engagement_id=engagement_id,
            session_id=session_id,
            duration_minutes=60,
            pillars=["goals", "goals"],
        ),
        InvalidValue,
        "pillars: lists a pillar more than once",
    )
    assert_refused(
        app,
        ctx,
        HoldSession(
            engagement_id=engagement_id,
            session_id=session_id,
            duration_minutes=60,
            pillars=["astrology"],
        ),
        InvalidValue,
        "pillars: 'astrology' is not one of",
    )


def test_a_session_held_before_a_pause_may_be_logged_after_it(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    session_id = run(
        app,
        ctx.at(days_ago(20)),
        ScheduleSession(
            engagement_id=engagement_id, scheduled_for=days_ago(10), duration_minutes=60
        ),
    )
    run(app, ctx.at(days_ago(5)), PauseEngagement(engagement_id=engagement_id, reason="Leave"))

    run(
        app,
        ctx.at(days_ago(10)),
        HoldSession(
            engagement_id=engagement_id, session_id=session_id, duration_minutes=60, pillars=[]
        ),
    )

    assert app.get(FIRM, engagement_id).sessions[session_id].status == "held"


def test_nothing_is_backdated_into_a_paused_period(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    session_id = run(
        app,
        ctx.at(days_ago(20)),
        ScheduleSession(
            engagement_id=engagement_id, scheduled_for=days_ago(8), duration_minutes=60
        ),
    )
    run(app, ctx.at(days_ago(10)), PauseEngagement(engagement_id=engagement_id, reason="Leave"))
    run(app, ctx.at(days_ago(2)), ResumeEngagement(engagement_id=engagement_id))

    held_while_paused = HoldSession(
        engagement_id=engagement_id, session_id=session_id, duration_minutes=60, pillars=[]
    )
    assert_refused(
        app,
        ctx.at(days_ago(8)),
        held_while_paused,
        EngagementPaused,
        "cannot hold a session: the engagement was paused",
    )
    run(app, ctx.at(days_ago(1)), held_while_paused)  # held after the resume: fine
