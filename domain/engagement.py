"""The Engagement aggregate: one coach, one client, one immutable stream of events.

Each pillar's events, commands and command methods live in their own module
(``sessions``, ``goals``, ...); this class mixes the pillars' methods over one state and
nests every event class of those modules on itself (``Engagement.SessionHeld``). A new
event needs only its pillar module: its class, its command, and the method recording
it.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from types import ModuleType
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.domain import Snapshot as BaseSnapshot
from eventsourcing.utils import register_topic

from domain import context as command_context
from domain.accountability import AccountabilityCommands
from domain.assessment import AssessmentCommands
from domain.billing import BillingCommands
from domain.checks import conform
from domain.event import EngagementEvent
from domain.goals import GoalCommands
from domain.lifecycle import EngagementOpened, LifecycleCommands
from domain.outcomes import OutcomeCommands
from domain.privacy import PrivacyCommands
from domain.sessions import SessionCommands
from domain.skills import SkillCommands
from domain.state import EngagementState, plain
from domain.support import SupportCommands


class Engagement(
    Aggregate,
    LifecycleCommands,
    SessionCommands,
    AssessmentCommands,
    GoalCommands,
    SkillCommands,
    AccountabilityCommands,
    SupportCommands,
    OutcomeCommands,
    BillingCommands,
    PrivacyCommands,
):
    """A coaching engagement between a coach and a client, possibly paid by a sponsor."""

    TOPIC = "coachlog.Engagement"

    class Snapshot(BaseSnapshot):
        TOPIC = "coachlog.Engagement.Snapshot"

    Event = EngagementEvent
    Created = EngagementOpened

    def __init__(self) -> None:
        self._init_state()

    @classmethod
    def open(
        cls,
        *,
        client_id: str,
        client_name: str,
        coach_id: str,
        segment: str,
        delivery: str,
        planned_sessions: int,
        cadence_days: int,
        fee_per_session: Decimal,
        currency: str,
        sponsor_id: str | None = None,
        engagement_id: UUID | None = None,
    ) -> Engagement:
        """Open a new engagement for the firm of the command context in force."""
        ctx = command_context.current()
        payload = conform(
            EngagementOpened,
            {
                # The fee first: its check names a bad currency as fee_per_session's.
                "fee_per_session": fee_per_session,
                "currency": currency,
                "client_id": client_id,
                "client_name": client_name,
                "coach_id": coach_id,
                "sponsor_id": sponsor_id,
                "segment": segment,
                "delivery": delivery,
                "planned_sessions": planned_sessions,
                "cadence_days": cadence_days,
            },
        )
        return cls._create(
            EngagementOpened,
            id=engagement_id or uuid4(),
            actor_id=ctx.actor_id,
            actor_role=ctx.actor_role,
            firm_id=ctx.firm_id,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
            occurred_at=ctx.resolved_occurred_at(command_context.utcnow()),
            **payload,
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the current state as plain values (records become dicts)."""
        state = {k.lstrip("_"): v for k, v in vars(self).items() if k != "_pending_events"}
        return {"id": self.id, "version": self.version, **plain(state)}


# eventsourcing registers the explicit topics of the aggregate and its events as the
# class is made, but a snapshot class's only when a process first takes a snapshot
# (``get_topic``): a fresh process reading a snapshotted engagement could not resolve
# it. Register it here, at import, like every other stored class.
register_topic(Engagement.Snapshot.TOPIC, Engagement.Snapshot)


#: The pillar modules, in catalogue order: each holds its events, its commands and the
#: mixin of its command methods, which is how it joins the engagement.
PILLARS: tuple[ModuleType, ...] = tuple(
    sys.modules[base.__module__]
    for base in Engagement.__bases__
    if issubclass(base, EngagementState)
)


def _defined_in(module: ModuleType) -> list[type[EngagementEvent]]:
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, EngagementEvent)
        and value.__module__ == module.__name__
    ]


#: Every event class of the catalogue, in catalogue order (pillar by pillar, each in the
#: order its module defines them).
EVENT_CLASSES: tuple[type[EngagementEvent], ...] = tuple(
    event_class for module in PILLARS for event_class in _defined_in(module)
)

# Each event is nested on the aggregate under its own name (``Engagement.SessionHeld``),
# as eventsourcing's examples do, without a list to keep beside the pillar modules.
for _event_class in EVENT_CLASSES:
    setattr(Engagement, _event_class.__name__, _event_class)
