"""Lifecycle of an engagement: opened, agreed, paused, resumed, reassigned, closed, reopened."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Annotated, Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.checks import checked
from domain.command import Command
from domain.errors import InvalidTransition, InvalidValue, NoSponsor
from domain.event import EngagementEvent
from domain.fields import (
    Amount,
    Between,
    ClientId,
    CoachId,
    CurrencyCode,
    FromState,
    Items,
    OneOf,
    OptionalReason,
    Personal,
    Reason,
    SponsorId,
    Text,
)
from domain.state import EngagementState, StatusChange
from domain.values import CloseReason, Delivery, Segment, SponsorView, Status


class EngagementOpened(EngagementEvent, Aggregate.Created):
    TOPIC = "coachlog.EngagementOpened"
    client_id: ClientId
    client_name: Annotated[str, Personal(), Text(max_length=300)]
    coach_id: CoachId
    sponsor_id: SponsorId | None
    segment: Annotated[str, OneOf(Segment)]
    delivery: Annotated[str, OneOf(Delivery)]
    planned_sessions: Annotated[int, Between(1, 500)]
    cadence_days: Annotated[int, Between(1, 365)]
    fee_per_session: Annotated[Decimal, Amount()]
    currency: CurrencyCode

    def fold(self, state: EngagementState) -> None:
        state.firm_id = self.firm_id
        state.client_id = self.client_id
        state.client_name = self.client_name
        state.coach_id = self.coach_id
        state.sponsor_id = self.sponsor_id
        state.segment = self.segment
        state.delivery = self.delivery
        state.planned_sessions = self.planned_sessions
        state.cadence_days = self.cadence_days
        state.fee_per_session = self.fee_per_session
        state.currency = self.currency
        state.opened_at = self.occurred_at
        state.status_history = [StatusChange(self.occurred_at, Status.ACTIVE.value)]
        state.coach_history = [self.coach_id]


class AgreementSigned(EngagementEvent):
    TOPIC = "coachlog.AgreementSigned"
    sponsor_may_see: Annotated[
        list[Annotated[str, OneOf(SponsorView)]], Items(distinct=True, noun="view")
    ]

    def fold(self, state: EngagementState) -> None:
        state.sponsor_may_see = list(self.sponsor_may_see)


class EngagementPaused(EngagementEvent):
    TOPIC = "coachlog.EngagementPaused"
    reason: Reason

    def fold(self, state: EngagementState) -> None:
        state.status = Status.PAUSED.value
        state.status_history.append(StatusChange(self.occurred_at, state.status))


class EngagementResumed(EngagementEvent):
    TOPIC = "coachlog.EngagementResumed"

    def fold(self, state: EngagementState) -> None:
        state.status = Status.ACTIVE.value
        state.status_history.append(StatusChange(self.occurred_at, state.status))


class CoachReassigned(EngagementEvent):
    TOPIC = "coachlog.CoachReassigned"
    from_coach_id: Annotated[CoachId, FromState()]
    to_coach_id: CoachId
    reason: Reason

    def fold(self, state: EngagementState) -> None:
        state.coach_id = self.to_coach_id
        state.coach_history.append(self.to_coach_id)


class EngagementClosed(EngagementEvent):
    TOPIC = "coachlog.EngagementClosed"
    close_reason: Annotated[str, OneOf(CloseReason)]
    reason: OptionalReason

    def fold(self, state: EngagementState) -> None:
        state.status = Status.CLOSED.value
        state.close_reason = self.close_reason
        state.status_history.append(StatusChange(self.occurred_at, state.status))


class EngagementReopened(EngagementEvent):
    TOPIC = "coachlog.EngagementReopened"
    reason: Reason

    def fold(self, state: EngagementState) -> None:
        state.status = Status.ACTIVE.value
        state.close_reason = None
        state.status_history.append(StatusChange(self.occurred_at, state.status))


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OpenEngagement:
    """Open an engagement (the only command that creates a stream)."""

    EVENT: ClassVar[type[EngagementEvent]] = EngagementOpened
    client_id: str
    client_name: str
    coach_id: str
    segment: Segment
    delivery: Delivery
    planned_sessions: int
    cadence_days: int
    fee_per_session: Decimal
    currency: str
    sponsor_id: str | None = None
    engagement_id: UUID | None = None

    def arguments(self) -> dict[str, Any]:
        """Return the keyword arguments for ``Engagement.open``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, kw_only=True)
class SignAgreement(Command):
    METHOD = "sign_agreement"
    EVENT = AgreementSigned
    sponsor_may_see: list[SponsorView]


@dataclass(frozen=True, kw_only=True)
class PauseEngagement(Command):
    METHOD = "pause"
    EVENT = EngagementPaused
    reason: str


@dataclass(frozen=True, kw_only=True)
class ResumeEngagement(Command):
    METHOD = "resume"
    EVENT = EngagementResumed


@dataclass(frozen=True, kw_only=True)
class ReassignCoach(Command):
    METHOD = "reassign_coach"
    EVENT = CoachReassigned
    to_coach_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class CloseEngagement(Command):
    METHOD = "close"
    EVENT = EngagementClosed
    close_reason: CloseReason
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ReopenEngagement(Command):
    METHOD = "reopen"
    EVENT = EngagementReopened
    reason: str


class LifecycleCommands(EngagementState):
    """Commands that move an engagement between active, paused and closed."""

    def sign_agreement(self, sponsor_may_see: list[str]) -> None:
        """Record what the sponsor may see under the signed agreement."""
        self._require_not_erased()
        if self.sponsor_id is None:
            raise NoSponsor("an agreement needs a sponsor, and this engagement has none")
        if self.status == Status.CLOSED:
            raise InvalidTransition("cannot sign an agreement on a closed engagement")
        views = checked(AgreementSigned, "sponsor_may_see", sponsor_may_see)
        self._record(AgreementSigned, sponsor_may_see=sorted(views))

    def pause(self, reason: str) -> None:
        """Pause an active engagement."""
        self._require_not_erased()
        if self.status != Status.ACTIVE:
            raise InvalidTransition(f"only an active engagement can be paused; it is {self.status}")
        self._require_after(self.status_changed_at, "the last status change")
        self._record(EngagementPaused, reason=reason)

    def resume(self) -> None:
        """Resume a paused engagement."""
        self._require_not_erased()
        if self.status != Status.PAUSED:
            raise InvalidTransition(f"only a paused engagement can resume; it is {self.status}")
        self._require_after(self.status_changed_at, "the engagement was paused")
        self._record(EngagementResumed)

    def reassign_coach(self, to_coach_id: str, reason: str) -> None:
        """Hand the engagement to another coach."""
        self._require_open_for_work("reassign the coach")
        to_coach = checked(CoachReassigned, "to_coach_id", to_coach_id)
        if to_coach == self.coach_id:
            raise InvalidValue("to_coach_id", f"{to_coach} is already the coach")
        self._record(
            CoachReassigned, from_coach_id=self.coach_id, to_coach_id=to_coach, reason=reason
        )

    def close(self, close_reason: str, reason: str = "") -> None:
        """Close an active or paused engagement for one of the recognised reasons."""
        self._require_not_erased()
        if self.status == Status.CLOSED:
            raise InvalidTransition("the engagement is already closed")
        why = checked(EngagementClosed, "close_reason", close_reason)
        self._require_after(self.status_changed_at, "the last status change")
        self._record(EngagementClosed, close_reason=why, reason=reason)

    def reopen(self, reason: str) -> None:
        """Reopen a closed engagement; only this command leaves the closed state."""
        self._require_not_erased()
        if self.status != Status.CLOSED:
            raise InvalidTransition(f"only a closed engagement can reopen; it is {self.status}")
        self._require_after(self.status_changed_at, "the engagement was closed")
        self._record(EngagementReopened, reason=reason)
