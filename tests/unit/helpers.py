"""Small builders and one assertion shared by the invariant tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.application import Engagements
from domain.commands import Command
from domain.context import CommandContext
from domain.errors import DomainError
from domain.goals import SmartGoal
from tests.conftest import FIRM, NOW, days_ago, opening

LEVELS = {
    "-2": "no interviews at all",
    "-1": "one interview",
    "0": "three interviews",
    "1": "five interviews",
    "2": "an offer",
}


def today() -> date:
    """Return the UTC calendar day the test run started."""
    return NOW.date()


def in_days(days: int) -> date:
    """Return the calendar day ``days`` after (or before, if negative) the run started."""
    return today() + timedelta(days=days)


def a_goal(target_date: date | None = None, weight: int = 2) -> SmartGoal:
    """Return a valid SMART goal, due in 90 days unless told otherwise."""
    return SmartGoal.of(
        title="Land a product role",
        measure="interviews reached",
        baseline="none",
        target="an offer",
        target_date=target_date or in_days(90),
        weight=weight,
        levels=dict(LEVELS),
    )


def open_engagement(
    app: Engagements, ctx: CommandContext, days: float = 30, **overrides: object
) -> UUID:
    """Open an engagement ``days`` ago and return its id."""
    return app.open_engagement(ctx.at(days_ago(days)), opening(**overrides)).engagement_id


def run(app: Engagements, ctx: CommandContext, command: Command) -> Any:
    """Execute ``command`` and return what its method returned (a new id, usually)."""
    return app.execute(ctx, command).result


def written(app: Engagements, engagement_id: UUID) -> tuple[int, int]:
    """Return the engagement's version and the length of its stored history."""
    return app.get(FIRM, engagement_id).version, len(app.history(FIRM, engagement_id))


def assert_refused(
    app: Engagements,
    ctx: CommandContext,
    command: Command,
    error: type[DomainError],
    match: str,
    expected_version: int | None = None,
) -> None:
    """Assert ``command`` raises exactly ``error`` (matching ``match``) and writes nothing."""
    before = written(app, command.engagement_id)
    with pytest.raises(error, match=match) as raised:
        app.execute(ctx, command, expected_version=expected_version)
    assert type(raised.value) is error
    assert written(app, command.engagement_id) == before
