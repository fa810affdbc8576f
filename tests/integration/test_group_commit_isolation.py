"""One firm's unstorable values never fail another firm's writes that share a transaction.

Concurrent saves of one process are stored together (domain/groupcommit.py). A value
the domain's rules let through but the store cannot encode — an unpaired surrogate or
NaN inside a free-form assessment result — must fail the command that carries it, and
nothing else: it is found while that save is prepared, before it joins the batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest

from domain.application import Engagements
from domain.commands import CelebrateWin, CompleteAssessment
from domain.context import CommandContext
from domain.errors import InvalidValue, UnstorableValue
from tests.conftest import days_ago
from tests.integration.helpers import open_engagement

ROUNDS = 20
WRITERS = 4


class SlowCommits(Engagements):
    """The real application, whose shared transactions take a little longer (as under
    load), so that concurrent saves are sure to queue up and go together."""

    name = "Engagements"  # the same tables as the application it stands in for

    def _store_together(self, prepared: list[Any]) -> None:
        time.sleep(0.004)
        super()._store_together(prepared)


@pytest.fixture
def slow_app(store_env: dict[str, str]) -> Iterator[SlowCommits]:
    application = SlowCommits(env=store_env)
    try:
        yield application
    finally:
        application.close()


def _ctx(firm: str, actor: str = "admin-1") -> CommandContext:
    return CommandContext(actor_id=actor, actor_role="firm_admin", firm_id=firm)


def test_an_unpaired_surrogate_in_a_result_passes_the_rules_and_is_refused_when_prepared(
    app: Engagements,
) -> None:
    """The case the shared transaction used to fail on: nothing before storing refuses it."""
    ctx = _ctx("firm-north")
    engagement_id = open_engagement(app, ctx, days_ago(30))
    command = CompleteAssessment(
        engagement_id=engagement_id,
        instrument="disc",
        instrument_version="1",
        result={"note": "x \ud800"},
    )
    with pytest.raises(UnstorableValue) as refused:
        app.execute(ctx, command)
    assert refused.value.field == "result"
    assert app.get("firm-north", engagement_id).version == 1


@pytest.mark.parametrize(
    "poison",
    [{"note": "x \ud800"}, {"score": float("nan")}, {"score": float("-inf")}],
    ids=["lone surrogate", "NaN", "-Infinity"],
)
def test_an_unstorable_result_fails_only_its_own_command(
    slow_app: SlowCommits, poison: dict[str, Any]
) -> None:
    north, south = _ctx("firm-north"), _ctx("firm-south")
    hostile = open_engagement(slow_app, north, days_ago(30))
    victims = [open_engagement(slow_app, south, days_ago(30)) for _ in range(WRITERS)]
    start = threading.Barrier(2 * WRITERS)
    before = (slow_app.group_commit.saves, slow_app.group_commit.transactions)

    def attack() -> list[BaseException | None]:
        start.wait()
        outcomes: list[BaseException | None] = []
        for _ in range(ROUNDS):
            command = CompleteAssessment(
                engagement_id=hostile, instrument="disc", instrument_version="1", result=poison
            )
            try:
                slow_app.execute(north, command)
            except BaseException as error:
                outcomes.append(error)
            else:
                outcomes.append(None)
        return outcomes

    def write(engagement_id: UUID) -> list[BaseException | None]:
        start.wait()
        outcomes: list[BaseException | None] = []
        for number in range(ROUNDS):
            try:
                slow_app.execute(south, CelebrateWin(engagement_id=engagement_id, win=f"#{number}"))
            except BaseException as error:
                outcomes.append(error)
            else:
                outcomes.append(None)
        return outcomes

    with ThreadPoolExecutor(2 * WRITERS) as pool:
        attacks = [pool.submit(attack) for _ in range(WRITERS)]
        writes = [pool.submit(write, engagement_id) for engagement_id in victims]
        attacked = [o for f in attacks for o in f.result(timeout=120)]
        written = [o for f in writes for o in f.result(timeout=120)]

    assert written == [None] * (WRITERS * ROUNDS), {type(o).__name__ for o in written}
    # Refused by the domain's rules for free-form results, or when the save is prepared
    # (UnstorableValue, a kind of InvalidValue): either way that command alone.
    assert all(isinstance(o, InvalidValue) for o in attacked), attacked[:3]
    assert all(o.field == "result" for o in attacked if isinstance(o, InvalidValue))
    for engagement_id in victims:
        assert slow_app.get("firm-south", engagement_id).version == 1 + ROUNDS
    assert slow_app.get("firm-north", hostile).version == 1
    saves = slow_app.group_commit.saves - before[0]
    transactions = slow_app.group_commit.transactions - before[1]
    # The victims' saves really did share transactions (with each other, and with the
    # attacks until these were refused before joining).
    assert saves == WRITERS * ROUNDS
    assert transactions < saves
