"""The base class of every command on an existing engagement.

A command is the contract of a use case: a frozen dataclass naming the engagement
method it runs (``METHOD``) and the event that method records (``EVENT``). Each command
lives in its pillar module, beside its event; domain/commands.py gathers them all.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar
from uuid import UUID

from domain.event import EngagementEvent


@dataclass(frozen=True, kw_only=True)
class Command:
    """A use case on an existing engagement."""

    METHOD: ClassVar[str] = ""
    #: The event the method records: each field of the command that the event has too
    #: is declared there (domain/fields.py), and checked and documented as declared.
    EVENT: ClassVar[type[EngagementEvent]]
    engagement_id: UUID

    def arguments(self) -> dict[str, Any]:
        """Return the keyword arguments for the engagement method."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "engagement_id"}

    def run(self, engagement: Any) -> Any:
        """Run this command's method on ``engagement`` and return what it returns."""
        return getattr(engagement, self.METHOD)(**self.arguments())
