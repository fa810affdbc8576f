"""Sessions: scheduled, rescheduled, then ended exactly once (held, no-show or cancelled)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from domain.checks import checked
from domain.command import Command
from domain.errors import DateOutOfRange, SessionAlreadyEnded, SessionNotFound
from domain.event import EngagementEvent
from domain.fields import Between, Id, Items, OneOf, OptionalReason, Personal, Text
from domain.state import HELD_BEFORE_SCHEDULED, EngagementState, SessionRecord
from domain.values import Pillar, SessionStatus

MAX_SESSION_MINUTES = 480
SessionId = Annotated[str, Id("session")]


class SessionScheduled(EngagementEvent):
    TOPIC = "coachlog.SessionScheduled"
    session_id: SessionId
    scheduled_for: datetime
    duration_minutes: Annotated[int, Between(5, MAX_SESSION_MINUTES)]

    def fold(self, state: EngagementState) -> None:
        state.sessions[self.session_id] = SessionRecord(
            scheduled_for=self.scheduled_for,
            duration_minutes=self.duration_minutes,
            scheduled_at=self.occurred_at,
        )


class SessionRescheduled(EngagementEvent):
    TOPIC = "coachlog.SessionRescheduled"
    session_id: SessionId
    scheduled_for: datetime

    def fold(self, state: EngagementState) -> None:
        record = state.sessions[self.session_id]
        record.scheduled_for = self.scheduled_for
        record.reschedules += 1


class SessionCancelled(EngagementEvent):
    TOPIC = "coachlog.SessionCancelled"
    session_id: SessionId
    late: bool
    counts_against_allocation: bool
    reason: OptionalReason

    def fold(self, state: EngagementState) -> None:
        record = state.sessions[self.session_id]
        record.status = SessionStatus.CANCELLED.value
        record.ended_at = self.occurred_at
        record.late = self.late
        record.counts_against_allocation = self.counts_against_allocation


class SessionHeld(EngagementEvent):
    """A session took place. Version 2 added ``pillars`` (the pillars it covered)."""

    TOPIC = "coachlog.SessionHeld"
    class_version = 2
    session_id: SessionId
    duration_minutes: Annotated[int, Between(1, MAX_SESSION_MINUTES)]
    notes: Annotated[str, Personal(), Text(max_length=20_000, required=False)]
    pillars: Annotated[list[Annotated[str, OneOf(Pillar)]], Items(distinct=True, noun="pillar")]

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """Version 1 did not record pillars: an old session covered none we know of."""
        state["pillars"] = []

    def fold(self, state: EngagementState) -> None:
        record = state.sessions[self.session_id]
        record.status = SessionStatus.HELD.value
        record.ended_at = self.occurred_at
        record.held_minutes = self.duration_minutes
        record.pillars = list(self.pillars)
        record.counts_against_allocation = True


class SessionNoShow(EngagementEvent):
    TOPIC = "coachlog.SessionNoShow"
    session_id: SessionId

    def fold(self, state: EngagementState) -> None:
        record = state.sessions[self.session_id]
        record.status = SessionStatus.NO_SHOW.value
        record.ended_at = self.occurred_at
        record.counts_against_allocation = True


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ScheduleSession(Command):
    METHOD = "schedule_session"
    EVENT = SessionScheduled
    scheduled_for: datetime
    duration_minutes: int
    session_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class RescheduleSession(Command):
    METHOD = "reschedule_session"
    EVENT = SessionRescheduled
    session_id: str
    scheduled_for: datetime


@dataclass(frozen=True, kw_only=True)
class CancelSession(Command):
    METHOD = "cancel_session"
    EVENT = SessionCancelled
    session_id: str
    late: bool = False
    counts_against_allocation: bool = False
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class HoldSession(Command):
    METHOD = "hold_session"
    EVENT = SessionHeld
    session_id: str
    duration_minutes: int
    pillars: list[Pillar]
    notes: str = ""


@dataclass(frozen=True, kw_only=True)
class RecordNoShow(Command):
    METHOD = "record_no_show"
    EVENT = SessionNoShow
    session_id: str


class SessionCommands(EngagementState):
    """Commands on coaching sessions."""

    def _open_session(self, session_id: str, what: str) -> SessionRecord:
        try:
            record = self.sessions[self._ref(session_id)]
        except KeyError:
            raise SessionNotFound(f"no session {session_id} in this engagement") from None
        if record.status != SessionStatus.SCHEDULED:
            raise SessionAlreadyEnded(
                f"cannot {what}: session {session_id} already ended ({record.status})"
            )
        return record

    def _session_time(
        self, event_class: type[EngagementEvent], scheduled_for: datetime
    ) -> datetime:
        """A session's time, in UTC, within the engagement's life (domain/state.py)."""
        moment: datetime = checked(event_class, "scheduled_for", scheduled_for)
        self._require_moment_in_life("scheduled_for", moment)
        return moment

    def _require_not_early(self, record: SessionRecord, what: str) -> None:
        """Refuse a session ended (held, no-show) well before its scheduled time."""
        earliest = record.scheduled_for - HELD_BEFORE_SCHEDULED
        occurred_at = self._occurred_at()
        if occurred_at < earliest:
            hours = HELD_BEFORE_SCHEDULED.total_seconds() / 3600
            raise DateOutOfRange(
                "occurred_at",
                f"a session cannot be {what} at {occurred_at.isoformat()}, more than "
                f"{hours:g} hours before its scheduled time ({record.scheduled_for.isoformat()})",
            )

    def schedule_session(
        self, scheduled_for: datetime, duration_minutes: int, session_id: str | None = None
    ) -> str:
        """Schedule a session and return its id."""
        self._require_active("schedule a session")
        ident = self._new_id("session", session_id, self.sessions)
        scheduled_for = self._session_time(SessionScheduled, scheduled_for)
        self._record(
            SessionScheduled,
            session_id=ident,
            scheduled_for=scheduled_for,
            duration_minutes=duration_minutes,
        )
        return ident

    def reschedule_session(self, session_id: str, scheduled_for: datetime) -> None:
        """Move a scheduled session to another time."""
        self._require_active("reschedule a session")
        record = self._open_session(session_id, "reschedule it")
        self._require_after(record.scheduled_at, "the session was scheduled")
        scheduled_for = self._session_time(SessionRescheduled, scheduled_for)
        self._record(
            SessionRescheduled, session_id=self._ref(session_id), scheduled_for=scheduled_for
        )

    def cancel_session(
        self,
        session_id: str,
        late: bool = False,
        counts_against_allocation: bool = False,
        reason: str = "",
    ) -> None:
        """Cancel a scheduled session (allowed while paused, and to tidy up after closing)."""
        self._require_not_erased()
        record = self._open_session(session_id, "cancel it")
        self._require_after(record.scheduled_at, "the session was scheduled")
        self._record(
            SessionCancelled,
            session_id=self._ref(session_id),
            late=late,
            counts_against_allocation=counts_against_allocation,
            reason=reason,
        )

    def hold_session(
        self, session_id: str, duration_minutes: int, pillars: list[str], notes: str = ""
    ) -> None:
        """Record that a scheduled session was held."""
        self._require_active("hold a session")
        record = self._open_session(session_id, "hold it")
        self._require_after(record.scheduled_at, "the session was scheduled")
        self._require_not_early(record, "held")
        self._record(
            SessionHeld,
            session_id=self._ref(session_id),
            duration_minutes=duration_minutes,
            notes=notes,
            pillars=pillars,
        )

    def record_no_show(self, session_id: str) -> None:
        """Record that the client did not attend a scheduled session."""
        self._require_active("record a no-show")
        record = self._open_session(session_id, "record a no-show")
        self._require_after(record.scheduled_at, "the session was scheduled")
        self._require_not_early(record, "recorded as a no-show")
        self._record(SessionNoShow, session_id=self._ref(session_id))
