"""Events the store can hold but no rule would have let in: written straight into an
engagement's stream, as the next version, bypassing the domain's checks (what a bug of
an older release, a manual repair or a restored backup can leave behind)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from domain.application import Engagements
from domain.engagement import Engagement
from domain.event import EngagementEvent


def last_event(app: Engagements, engagement_id: UUID) -> EngagementEvent:
    (last,) = list(app.events.get(engagement_id, desc=True, limit=1))
    assert isinstance(last, EngagementEvent)
    return last


def inject_unscheduled_session(app: Engagements, engagement_id: UUID) -> int:
    """Store a ``SessionHeld`` of a session the stream never scheduled (the fold cannot
    apply it: there is no such session); return its version."""
    last = last_event(app, engagement_id)
    now = datetime.now(UTC)
    event = Engagement.SessionHeld(  # type: ignore[call-arg]
        originator_id=engagement_id,
        originator_version=last.originator_version + 1,
        timestamp=now,
        actor_id=last.actor_id,
        actor_role=last.actor_role,
        firm_id=last.firm_id,
        correlation_id=uuid4(),
        causation_id=None,
        occurred_at=now,
        session_id=str(uuid4()),
        duration_minutes=60,
        notes="",
        pillars=[],
    )
    app.events.put([event])
    return event.originator_version
