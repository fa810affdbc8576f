"""Who did a command, for which firm, when it happened, and why: stamped on every event.

The application service enters a :class:`CommandContext` around each use case; the
aggregate's ``trigger_event`` reads it, so command methods stay about the rule they
enforce while every event still carries its actor, tenant and correlation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from domain.errors import InvalidValue, MissingActor, OccurredInFuture
from domain.values import Role, enum_value, moment_utc, text

#: How far an ``occurred_at`` may lie ahead of the server clock (client clock skew).
CLOCK_SKEW = timedelta(minutes=5)


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class CommandContext:
    """The metadata of one command: actor, tenant, correlation and occurred time."""

    actor_id: str
    actor_role: str
    firm_id: str
    correlation_id: UUID = field(default_factory=uuid4)
    causation_id: UUID | None = None
    occurred_at: datetime | None = None

    def __post_init__(self) -> None:
        text("actor_id", self.actor_id, max_length=200)
        enum_value(Role, "actor_role", self.actor_role)
        text("firm_id", self.firm_id, max_length=200)
        if self.occurred_at is not None and self.occurred_at.tzinfo is None:
            raise InvalidValue("occurred_at", "must carry a timezone offset")

    def at(self, occurred_at: datetime | None) -> CommandContext:
        """Return a copy of this context for something that happened at ``occurred_at``."""
        return replace(self, occurred_at=occurred_at)

    def resolved_occurred_at(self, now: datetime) -> datetime:
        """Return when the command happened: the given time, or ``now`` when unset."""
        if self.occurred_at is None:
            return now
        occurred_at = moment_utc("occurred_at", self.occurred_at)
        if occurred_at > now + CLOCK_SKEW:
            raise OccurredInFuture(
                f"occurred_at {self.occurred_at.isoformat()} is in the future "
                f"(server time {now.isoformat()})"
            )
        return occurred_at


_current: ContextVar[CommandContext | None] = ContextVar("coachlog_command", default=None)


@contextmanager
def acting(context: CommandContext) -> Iterator[CommandContext]:
    """Make ``context`` the metadata of every event triggered inside the block."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def current() -> CommandContext:
    """Return the command context in force, or raise MissingActor."""
    context = _current.get()
    if context is None:
        raise MissingActor("an engagement event needs an actor: run commands via acting()")
    return context
