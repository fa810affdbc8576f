"""The base class of every engagement event: payload plus the metadata of its command."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from domain.fields import PersonId

if TYPE_CHECKING:
    from domain.state import EngagementState


class EngagementEvent(Aggregate.Event):
    """Something that happened in an engagement, with who, for whom, when and why.

    ``timestamp`` is the recorded time (set when the event is made, just before it is
    stored); ``occurred_at`` is when it happened in the world and may be earlier.
    Every concrete event names a stable ``TOPIC`` so stored events never depend on
    module paths; the topic is registered as the class is defined. Each payload field
    says what it is with the markers of domain/fields.py (personal, a person's id,
    bounds...): sealing, redaction, exports, erasure and the API's schemas follow them.
    """

    actor_id: Annotated[str, PersonId("actor")]
    actor_role: str
    firm_id: str
    correlation_id: UUID
    causation_id: UUID | None
    occurred_at: datetime

    TOPIC: ClassVar[str] = ""
    METADATA: ClassVar[tuple[str, ...]] = (
        "actor_id",
        "actor_role",
        "firm_id",
        "correlation_id",
        "causation_id",
        "occurred_at",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        topic = cls.__dict__.get("TOPIC")
        if not topic:
            msg = f"{cls.__qualname__} must declare a stable TOPIC"
            raise TypeError(msg)
        register_topic(topic, cls)

    def apply(self, aggregate: Any) -> None:
        """Fold this event into the engagement state (overridden by each event)."""
        self.fold(aggregate)

    def fold(self, state: EngagementState) -> None:
        """Mutate ``state``; never validates (the command method already did)."""
        raise NotImplementedError(type(self).__name__)

    def payload(self) -> dict[str, Any]:
        """Return the event's own fields, without identity and metadata."""
        skip = {"originator_id", "originator_version", "originator_topic", "timestamp"}
        skip.update(self.METADATA)
        return {k: v for k, v in self.__dict__.items() if k not in skip and not k.startswith("_")}

    def metadata(self) -> dict[str, Any]:
        """Return the command metadata stamped on this event."""
        return {name: getattr(self, name) for name in self.METADATA}
