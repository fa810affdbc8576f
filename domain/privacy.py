"""Privacy: the client's consents, and erasure of the client as a data subject."""

from __future__ import annotations

from domain.errors import ClientErased, ConsentAlreadyGranted, ConsentNotGranted
from domain.event import EngagementEvent
from domain.state import EngagementState
from domain.values import ConsentScope, enum_value


class ConsentGranted(EngagementEvent):
    TOPIC = "coachlog.ConsentGranted"
    scope: str

    def fold(self, state: EngagementState) -> None:
        state.consents = sorted({*state.consents, self.scope})


class ConsentWithdrawn(EngagementEvent):
    TOPIC = "coachlog.ConsentWithdrawn"
    scope: str

    def fold(self, state: EngagementState) -> None:
        state.consents = [c for c in state.consents if c != self.scope]


class SubjectErased(EngagementEvent):
    """The client's key was destroyed: their personal data can no longer be read."""

    TOPIC = "coachlog.SubjectErased"

    def fold(self, state: EngagementState) -> None:
        state.erased = True
        state.client_name = ""
        state.consents = []
        state.wellbeing = []
        for goal in state.goals.values():
            goal.title = goal.measure = goal.baseline = goal.target = ""
            goal.levels = {}
            for milestone in goal.milestones.values():
                milestone.title = ""
        for commitment in state.commitments.values():
            commitment.title = ""


class PrivacyCommands(EngagementState):
    """Commands on consent and erasure."""

    def grant_consent(self, scope: str) -> None:
        """Record the client's consent to a use of their data."""
        self._require_not_erased()
        name = enum_value(ConsentScope, "scope", scope).value
        if name in self.consents:
            raise ConsentAlreadyGranted(f"consent to {name} is already in force")
        self._record(ConsentGranted, scope=name)

    def withdraw_consent(self, scope: str) -> None:
        """Record that the client withdrew a consent in force."""
        self._require_not_erased()
        name = enum_value(ConsentScope, "scope", scope).value
        if name not in self.consents:
            raise ConsentNotGranted(f"consent to {name} is not in force")
        self._record(ConsentWithdrawn, scope=name)

    def erase_subject(self) -> None:
        """Record that the client was erased; afterwards the engagement takes nothing new."""
        if self.erased:
            raise ClientErased("the client was already erased")
        self._record(SubjectErased)
