"""Old events and snapshots stay readable.

``SessionHeld`` is at class version 2: version 1 had no ``pillars``; ``upcast_v1_v2``
adds an empty list when an old event is read. Stored events are never rewritten: the
upcast happens on every read, through every read path. Snapshots (every 50 events) are
stored under a stable topic and reload to the same state as folding every event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from domain.application import Engagements, fold_subset
from domain.commands import HoldSession, ScheduleSession
from domain.context import CommandContext
from domain.engagement import Engagement
from domain.storage import split_state
from domain.values import Pillar
from tests.conftest import FIRM, days_ago
from tests.integration.helpers import (
    fill_with_work,
    open_engagement,
    snapshot_versions,
    stored_events,
)

OLD_SESSION = str(UUID(int=11))
NEW_SESSION = str(UUID(int=12))


@pytest.fixture
def second_app(store_env: dict[str, str]) -> Iterator[Engagements]:
    application = Engagements(env=store_env)
    try:
        yield application
    finally:
        application.close()


def schedule(engagement_id: UUID, session_id: str, when: datetime) -> ScheduleSession:
    return ScheduleSession(
        engagement_id=engagement_id, scheduled_for=when, duration_minutes=60, session_id=session_id
    )


def write_v1_session_held(
    app: Engagements, ctx: CommandContext, engagement_id: UUID, version: int, when: datetime
) -> None:
    """Store a SessionHeld as coachlog wrote it before pillars existed (class version 1)."""
    state: dict[str, Any] = {
        "timestamp": datetime.now(UTC),
        "actor_id": ctx.actor_id,
        "actor_role": ctx.actor_role,
        "firm_id": FIRM,
        "correlation_id": uuid4(),
        "causation_id": None,
        "occurred_at": when,
        "session_id": OLD_SESSION,
        "duration_minutes": 45,
        "notes": "written before pillars were recorded",
    }
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=engagement_id,
                originator_version=version,
                topic="coachlog.SessionHeld",
                state=app.mapper.transcoder.encode(state),
            )
        ]
    )


def raw_state(app: Engagements, engagement_id: UUID, version: int) -> dict[str, Any]:
    """The stored JSON of one event, as bytes in the table say it."""
    (stored,) = app.recorder.select_events(engagement_id, gt=version - 1, lte=version)
    decoded: dict[str, Any] = json.loads(split_state(stored.state)[1])
    return decoded


def engagement_with_v1_session(app: Engagements, ctx: CommandContext) -> UUID:
    """v1 opened, v2 session scheduled (real), v3 session held (stored at class version 1)."""
    engagement_id = open_engagement(app, ctx, days_ago(20))
    app.execute(ctx.at(days_ago(19)), schedule(engagement_id, OLD_SESSION, days_ago(18)))
    write_v1_session_held(app, ctx, engagement_id, 3, days_ago(18))
    return engagement_id


def test_a_version_1_session_held_reads_as_held_with_no_pillars(
    app: Engagements, second_app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = engagement_with_v1_session(app, ctx)
    stored = raw_state(app, engagement_id, 3)
    assert "pillars" not in stored
    assert "class_version" not in stored

    for reader in (app, second_app):
        engagement = reader.get(FIRM, engagement_id)
        assert engagement.version == 3
        session = engagement.sessions[OLD_SESSION]
        assert session.status == "held"
        assert session.pillars == []
        assert session.held_minutes == 45
        assert session.ended_at == days_ago(18)
        assert session.counts_against_allocation is True

    (held,) = [e for e in app.events.get(engagement_id) if isinstance(e, Engagement.SessionHeld)]
    assert held.pillars == []
    assert held.notes == "written before pillars were recorded"
    entry = app.history(FIRM, engagement_id)[2]
    assert (entry.event_type, entry.payload["pillars"]) == ("SessionHeld", [])
    by_occurred = app.get_as_occurred_by(FIRM, engagement_id, days_ago(17))
    assert by_occurred.sessions[OLD_SESSION].pillars == []
    assert app.get(FIRM, engagement_id, version=3).sessions[OLD_SESSION].status == "held"


def test_new_events_after_an_upcast_one_are_written_at_version_2_and_the_old_stays_as_is(
    app: Engagements, second_app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = engagement_with_v1_session(app, ctx)
    before = raw_state(app, engagement_id, 3)

    app.execute(ctx.at(days_ago(10)), schedule(engagement_id, NEW_SESSION, days_ago(9)))
    result = app.execute(
        ctx.at(days_ago(9)),
        HoldSession(
            engagement_id=engagement_id,
            session_id=NEW_SESSION,
            duration_minutes=60,
            pillars=[Pillar.SKILLS],
        ),
    )

    assert result.version == 5
    new = raw_state(app, engagement_id, 5)
    assert new["class_version"] == 2
    assert new["pillars"] == ["skills"]
    assert raw_state(app, engagement_id, 3) == before
    engagement = second_app.get(FIRM, engagement_id)
    assert engagement.sessions[OLD_SESSION].pillars == []
    assert engagement.sessions[NEW_SESSION].pillars == ["skills"]
    assert engagement == app.get(FIRM, engagement_id)


def test_an_engagement_past_the_snapshot_interval_reloads_from_its_snapshot_equal(
    app: Engagements, second_app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = engagement_with_v1_session(app, ctx)
    head = fill_with_work(app, ctx, engagement_id, 70, days_ago(17))
    assert head == 73

    assert snapshot_versions(app, engagement_id) == [50]
    assert app.snapshots is not None
    (snapshot,) = app.snapshots.get(engagement_id)
    (stored_snapshot,) = app.snapshots.recorder.select_events(engagement_id)
    assert stored_snapshot.topic == "coachlog.Engagement.Snapshot"
    events = stored_events(app, engagement_id)
    assert len(events) == head

    assert isinstance(snapshot, Engagement.Snapshot)
    from_snapshot = snapshot.mutate(None)
    assert isinstance(from_snapshot, Engagement)
    assert from_snapshot == fold_subset(events[:50])
    assert from_snapshot.sessions[OLD_SESSION].pillars == []

    reloaded = second_app.get(FIRM, engagement_id)
    assert reloaded.version == head
    assert reloaded == fold_subset(events)
    assert reloaded == app.get(FIRM, engagement_id)
    assert reloaded.sessions[OLD_SESSION].pillars == []
    assert len(reloaded.goals) == 6
    assert any(g.milestones for g in reloaded.goals.values())
    assert len(reloaded.invoices) == len(reloaded.commitments) == 6
    assert len(reloaded.outcomes) == 5


def test_a_snapshot_is_taken_at_each_multiple_of_50(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx, days_ago(20))
    fill_with_work(app, ctx, engagement_id, 100, days_ago(19) - timedelta(hours=1))

    assert snapshot_versions(app, engagement_id) == [50, 100]
    assert app.get(FIRM, engagement_id).version == 101
