"""Build the application from settings; nothing here runs at import time."""

from __future__ import annotations

from coachlog.settings import Settings
from domain.application import Engagements


def bootstrap(settings: Settings | None = None) -> Engagements:
    """Return the engagement application wired to the configured event store."""
    settings = settings or Settings.from_env()
    return Engagements(env=settings.eventsourcing_env())
