"""Reading the past: as of a recorded time, as of an occurred time, at a version; history.

Notes are often logged late: an event recorded now may say it happened two weeks ago.
The recorded-time view answers "what did the store know then", the occurred-time view
"what had happened in the world by then"; the two differ exactly for late entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from uuid import UUID, uuid4

import pytest

from domain.application import Engagements, HistoryEntry, fold_subset
from domain.commands import (
    CheckWellbeing,
    GiveFeedback,
    IdentifyStrength,
    PauseEngagement,
    ResumeEngagement,
    ScheduleSession,
)
from domain.commands import HoldSession as HoldSessionCommand
from domain.context import CommandContext
from domain.engagement import Engagement
from domain.errors import EngagementNotFound
from domain.event import EngagementEvent
from domain.values import FeedbackDirection, Pillar
from tests.conftest import FIRM, days_ago, opening
from tests.integration.helpers import (
    fill_with_work,
    open_engagement,
    snapshot_versions,
    stored_events,
)

SESSION = str(UUID(int=7))


@pytest.fixture
def second_app(store_env: dict[str, str]) -> Iterator[Engagements]:
    application = Engagements(env=store_env)
    try:
        yield application
    finally:
        application.close()


def wellbeing(engagement_id: UUID, stress: int = 4) -> CheckWellbeing:
    return CheckWellbeing(
        engagement_id=engagement_id, confidence=6, stress=stress, motivation=7, imposter_feelings=2
    )


def late_logged_session(app: Engagements, ctx: CommandContext) -> UUID:
    """Opened 30 days ago; a session held 14 days ago is logged after a check 3 days ago.

    v1 opened (-30d), v2 session scheduled (-21d, for -14d), v3 wellbeing checked (-3d),
    v4 session held (occurred -14d, recorded last).
    """
    engagement_id = open_engagement(app, ctx, days_ago(30))
    app.execute(
        ctx.at(days_ago(21)),
        ScheduleSession(
            engagement_id=engagement_id,
            scheduled_for=days_ago(14),
            duration_minutes=60,
            session_id=SESSION,
        ),
    )
    app.execute(ctx.at(days_ago(3)), wellbeing(engagement_id))
    app.execute(
        ctx.at(days_ago(14)),
        HoldSessionCommand(
            engagement_id=engagement_id,
            session_id=SESSION,
            duration_minutes=50,
            pillars=[Pillar.GOALS, Pillar.SUPPORT],
            notes="logged two weeks late",
        ),
    )
    return engagement_id


def test_a_late_logged_session_counts_from_when_it_occurred(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = late_logged_session(app, ctx)

    just_after = app.get_as_occurred_by(FIRM, engagement_id, days_ago(14) + timedelta(seconds=1))
    assert just_after.sessions[SESSION].status == "held"
    assert just_after.sessions[SESSION].pillars == ["goals", "support"]
    assert just_after.wellbeing == []
    assert just_after.version == 4

    just_before = app.get_as_occurred_by(FIRM, engagement_id, days_ago(14) - timedelta(seconds=1))
    assert just_before.sessions[SESSION].status == "scheduled"
    assert just_before.version == 2

    exactly_then = app.get_as_occurred_by(FIRM, engagement_id, days_ago(14))
    assert exactly_then.sessions[SESSION].status == "held"

    everything = app.get_as_occurred_by(FIRM, engagement_id, days_ago(0))
    assert everything == app.get(FIRM, engagement_id)
    with pytest.raises(EngagementNotFound):
        app.get_as_occurred_by(FIRM, engagement_id, days_ago(30) - timedelta(seconds=1))


def test_recorded_time_view_does_not_know_a_late_entry_before_it_was_logged(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = late_logged_session(app, ctx)
    history = app.history(FIRM, engagement_id)
    wellbeing_recorded = history[2].recorded_at

    then = app.get_as_recorded_at(FIRM, engagement_id, wellbeing_recorded)

    assert then.version == 3
    assert then.sessions[SESSION].status == "scheduled"
    assert len(then.wellbeing) == 1
    # By occurred time, the same moment already includes the late-logged session.
    by_occurred = app.get_as_occurred_by(FIRM, engagement_id, days_ago(0))
    assert by_occurred.sessions[SESSION].status == "held"
    assert history[3].occurred_at < history[2].occurred_at
    assert history[3].recorded_at > history[2].recorded_at


def test_as_of_each_recorded_time_gives_the_version_recorded_by_then(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx, days_ago(10))
    for stress in range(5):
        app.execute(ctx.at(days_ago(9 - stress)), wellbeing(engagement_id, stress))
    history = app.history(FIRM, engagement_id)
    assert len(history) == 6

    for entry in history:
        at_entry = app.get_as_recorded_at(FIRM, engagement_id, entry.recorded_at)
        assert at_entry.version == entry.version
        assert at_entry == app.get(FIRM, engagement_id, version=entry.version)
        assert [w["stress"] for w in at_entry.wellbeing] == list(range(entry.version - 1))
    for earlier, later in pairwise(history):
        between = earlier.recorded_at + (later.recorded_at - earlier.recorded_at) / 2
        if earlier.recorded_at < between < later.recorded_at:
            assert app.get_as_recorded_at(FIRM, engagement_id, between).version == earlier.version
    with pytest.raises(EngagementNotFound):
        app.get_as_recorded_at(FIRM, engagement_id, history[0].recorded_at - timedelta(seconds=1))
    far_future = datetime.now(UTC) + timedelta(days=365)
    assert app.get_as_recorded_at(FIRM, engagement_id, far_future) == app.get(FIRM, engagement_id)


def test_get_at_each_version_returns_the_state_as_it_was_then(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx, days_ago(20))
    states: list[Engagement] = [app.get(FIRM, engagement_id)]
    commands = [
        wellbeing(engagement_id, 2),
        PauseEngagement(engagement_id=engagement_id, reason="parental leave"),
        IdentifyStrength(engagement_id=engagement_id, strength="curiosity"),
        ResumeEngagement(engagement_id=engagement_id),
        wellbeing(engagement_id, 8),
    ]
    for number, command in enumerate(commands):
        app.execute(ctx.at(days_ago(19 - number)), command)
        states.append(app.get(FIRM, engagement_id))

    for version, expected in enumerate(states, start=1):
        past = app.get(FIRM, engagement_id, version=version)
        assert past.version == version
        assert past == expected
    assert app.get(FIRM, engagement_id, version=3).status == "paused"
    assert app.get(FIRM, engagement_id, version=5).status == "active"
    for missing in (0, -1, len(states) + 1):
        with pytest.raises(EngagementNotFound):
            app.get(FIRM, engagement_id, version=missing)


def test_past_versions_around_a_snapshot_match_the_fold_of_their_events(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx, days_ago(40))
    head = fill_with_work(app, ctx, engagement_id, 60, days_ago(39))
    assert head == 61
    assert snapshot_versions(app, engagement_id) == [50]
    events = stored_events(app, engagement_id)

    for version in (1, 49, 50, 51, 60, 61):
        past = app.get(FIRM, engagement_id, version=version)
        assert past.version == version
        assert past == fold_subset(events[:version])
    at_49 = app.get_as_occurred_by(FIRM, engagement_id, events[48].occurred_at)
    assert at_49 == fold_subset(events[:49])


def test_reads_are_scoped_to_the_firm(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx, days_ago(5))
    app.execute(ctx.at(days_ago(4)), wellbeing(engagement_id))
    other_firm = CommandContext(actor_id="coach-zed", actor_role="coach", firm_id="firm-south")

    for read in (
        lambda: app.get("firm-south", engagement_id),
        lambda: app.get("firm-south", engagement_id, version=1),
        lambda: app.get_as_recorded_at("firm-south", engagement_id, datetime.now(UTC)),
        lambda: app.get_as_occurred_by("firm-south", engagement_id, datetime.now(UTC)),
        lambda: app.history("firm-south", engagement_id),
        lambda: app.execute(other_firm, wellbeing(engagement_id)),
        lambda: app.get(FIRM, uuid4()),
    ):
        with pytest.raises(EngagementNotFound):
            read()
    assert app.get(FIRM, engagement_id).version == 2


def test_history_carries_who_what_when_and_why_on_every_entry(
    app: Engagements, second_app: Engagements
) -> None:
    before = datetime.now(UTC)
    engagement_id = uuid4()
    coach = CommandContext(
        actor_id="coach-ada", actor_role="coach", firm_id=FIRM, correlation_id=uuid4()
    )
    manager = CommandContext(
        actor_id="manager-max",
        actor_role="firm_admin",
        firm_id=FIRM,
        correlation_id=uuid4(),
        causation_id=uuid4(),
    )
    client = CommandContext(
        actor_id="client-1",
        actor_role="client",
        firm_id=FIRM,
        correlation_id=uuid4(),
        causation_id=uuid4(),
    )
    # An occurred time given with another offset is the same instant, stored in UTC.
    cest = timezone(timedelta(hours=2))
    steps: list[tuple[CommandContext, datetime | None]] = []

    app.open_engagement(coach.at(days_ago(12)), opening(engagement_id=engagement_id))
    steps.append((coach, days_ago(12)))
    app.execute(
        manager.at(days_ago(6)), PauseEngagement(engagement_id=engagement_id, reason="travel")
    )
    steps.append((manager, days_ago(6)))
    client_time = days_ago(5).astimezone(cest)
    app.execute(client.at(client_time), wellbeing(engagement_id))
    steps.append((client, client_time))
    batch = [
        GiveFeedback(
            engagement_id=engagement_id,
            direction=FeedbackDirection.CLIENT_TO_COACH,
            feedback="helpful",
        ),
        IdentifyStrength(engagement_id=engagement_id, strength="persistence"),
    ]
    app.execute_batch(client.at(days_ago(4)), engagement_id, batch)
    steps.extend([(client, days_ago(4)), (client, days_ago(4))])
    app.execute(coach.at(None), wellbeing(engagement_id, 1))
    steps.append((coach, None))
    after = datetime.now(UTC)

    history = app.history(FIRM, engagement_id)

    assert [h.version for h in history] == [1, 2, 3, 4, 5, 6]
    assert [h.event_type for h in history] == [
        "EngagementOpened",
        "EngagementPaused",
        "WellbeingChecked",
        "FeedbackGiven",
        "StrengthIdentified",
        "WellbeingChecked",
    ]
    metadata_keys = set(EngagementEvent.METADATA)
    for entry, (context, occurred) in zip(history, steps, strict=True):
        assert entry.topic == f"coachlog.{entry.event_type}"
        assert set(entry.metadata) == metadata_keys
        assert entry.metadata["actor_id"] == context.actor_id
        assert entry.metadata["actor_role"] == context.actor_role
        assert entry.metadata["firm_id"] == FIRM
        assert entry.metadata["correlation_id"] == context.correlation_id
        assert entry.metadata["causation_id"] == context.causation_id
        assert entry.metadata["occurred_at"] == entry.occurred_at
        assert entry.occurred_at.utcoffset() == timedelta(0)
        if occurred is None:
            assert before <= entry.occurred_at <= after
        else:
            assert entry.occurred_at == occurred
        assert entry.recorded_at.utcoffset() == timedelta(0)
        assert before <= entry.recorded_at <= after
        assert entry.occurred_at <= entry.recorded_at
        assert not metadata_keys & set(entry.payload)
        assert not {"originator_id", "originator_version", "timestamp"} & set(entry.payload)
    recorded = [h.recorded_at for h in history]
    assert recorded == sorted(recorded)
    assert history[1].payload == {"reason": "travel"}
    assert history[3].payload == {"direction": "client_to_coach", "feedback": "helpful"}
    assert history[0].payload["client_id"] == "client-1"

    reread: list[HistoryEntry] = second_app.history(FIRM, engagement_id)
    assert reread == history
