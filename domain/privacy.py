"""Privacy: the client's consents, and erasure of the client as a data subject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from domain.checks import checked
from domain.command import Command
from domain.errors import ClientErased, ConsentAlreadyGranted, ConsentNotGranted
from domain.event import EngagementEvent
from domain.fields import OneOf, erase
from domain.state import EngagementState
from domain.values import ConsentScope


class ConsentGranted(EngagementEvent):
    TOPIC = "coachlog.ConsentGranted"
    scope: Annotated[str, OneOf(ConsentScope)]

    def fold(self, state: EngagementState) -> None:
        state.consents = sorted({*state.consents, self.scope})


class ConsentWithdrawn(EngagementEvent):
    TOPIC = "coachlog.ConsentWithdrawn"
    scope: Annotated[str, OneOf(ConsentScope)]

    def fold(self, state: EngagementState) -> None:
        state.consents = [c for c in state.consents if c != self.scope]


class SubjectErased(EngagementEvent):
    """The client's key was destroyed: their personal data can no longer be read."""

    TOPIC = "coachlog.SubjectErased"

    def fold(self, state: EngagementState) -> None:
        state.erased = True
        state.consents = []
        erase(state, EngagementState)  # what the state declares personal or sensitive


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GrantConsent(Command):
    METHOD = "grant_consent"
    EVENT = ConsentGranted
    scope: ConsentScope


@dataclass(frozen=True, kw_only=True)
class WithdrawConsent(Command):
    METHOD = "withdraw_consent"
    EVENT = ConsentWithdrawn
    scope: ConsentScope


@dataclass(frozen=True, kw_only=True)
class EraseSubject(Command):
    METHOD = "erase_subject"
    EVENT = SubjectErased


class PrivacyCommands(EngagementState):
    """Commands on consent and erasure."""

    def grant_consent(self, scope: str) -> None:
        """Record the client's consent to a use of their data."""
        self._require_not_erased()
        name = checked(ConsentGranted, "scope", scope)
        if name in self.consents:
            raise ConsentAlreadyGranted(f"consent to {name} is already in force")
        self._record(ConsentGranted, scope=name)

    def withdraw_consent(self, scope: str) -> None:
        """Record that the client withdrew a consent in force."""
        self._require_not_erased()
        name = checked(ConsentWithdrawn, "scope", scope)
        if name not in self.consents:
            raise ConsentNotGranted(f"consent to {name} is not in force")
        self._record(ConsentWithdrawn, scope=name)

    def erase_subject(self) -> None:
        """Record that the client was erased; afterwards the engagement takes nothing new."""
        if self.erased:
            raise ClientErased("the client was already erased")
        self._record(SubjectErased)
