"""Optimistic concurrency on the engagement version: one writer wins, nothing is lost.

Two writers that loaded the same version race to save; the store accepts exactly one
and the other gets a named conflict with the version it now has to reload. To make the
race deterministic, :class:`RacingEngagements` (a real application, on the real store)
waits at a barrier right after loading, so both writers hold the same stale version
before either saves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError

from domain.application import CommandResult, Engagements
from domain.commands import CheckWellbeing, Command, GiveFeedback, IdentifyStrength
from domain.context import CommandContext, acting
from domain.engagement import Engagement
from domain.errors import ConcurrencyConflict, DomainError, StaleVersion
from domain.values import FeedbackDirection
from tests.conftest import FIRM, days_ago
from tests.integration.helpers import open_engagement

WRITERS = 8


class RacingEngagements(Engagements):
    """The engagement application, pausing after each load until its rival has loaded too."""

    barrier: threading.Barrier | None = None

    def _load(self, firm_id: str, engagement_id: UUID, version: int | None = None) -> Engagement:
        engagement = super()._load(firm_id, engagement_id, version)
        if self.barrier is not None:
            self.barrier.wait(timeout=10)
        return engagement


@pytest.fixture
def racers(store_env: dict[str, str]) -> Iterator[tuple[RacingEngagements, RacingEngagements]]:
    """Two application instances on one store whose loads meet at a shared barrier."""
    first, second = RacingEngagements(env=store_env), RacingEngagements(env=store_env)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def wellbeing(engagement_id: UUID, stress: int) -> CheckWellbeing:
    return CheckWellbeing(
        engagement_id=engagement_id, confidence=6, stress=stress, motivation=7, imposter_feelings=2
    )


def feedback(engagement_id: UUID, text: str) -> GiveFeedback:
    return GiveFeedback(
        engagement_id=engagement_id, direction=FeedbackDirection.COACH_TO_CLIENT, feedback=text
    )


def race(calls: list[Callable[[], CommandResult]]) -> list[CommandResult | DomainError]:
    """Run ``calls`` on threads at once; return each one's result or domain error."""

    def attempt(call: Callable[[], CommandResult]) -> CommandResult | DomainError:
        try:
            return call()
        except DomainError as error:
            return error

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(attempt, calls))


def test_two_stale_copies_one_save_wins_the_other_is_refused_and_writes_nothing(
    app: Engagements, store_env: dict[str, str], ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx, days_ago(30))
    app.execute(ctx.at(days_ago(29)), wellbeing(engagement_id, 5))
    other = Engagements(env=store_env)
    try:
        mine: Engagement = app.repository.get(engagement_id)
        theirs: Engagement = other.repository.get(engagement_id)
        assert isinstance(mine, Engagement)
        assert isinstance(theirs, Engagement)
        assert mine.version == theirs.version == 2
        with acting(ctx.at(days_ago(28))):
            mine.give_feedback("coach_to_client", "great week")
            mine.identify_strength("storytelling")
        with acting(ctx.at(days_ago(27))):
            theirs.check_wellbeing(confidence=1, stress=9, motivation=1, imposter_feelings=9)

        app.save(mine)
        with pytest.raises(IntegrityError):
            other.save(theirs)

        current = other.get(FIRM, engagement_id)
    finally:
        other.close()
    assert current.version == 4
    assert current == mine
    assert current.feedback_count == 1
    assert current.strengths == 1
    assert [w["stress"] for w in current.wellbeing] == [5]
    history = app.history(FIRM, engagement_id)
    assert [h.version for h in history] == [1, 2, 3, 4]
    assert [h.event_type for h in history] == [
        "EngagementOpened",
        "WellbeingChecked",
        "FeedbackGiven",
        "StrengthIdentified",
    ]


def test_racing_executes_one_succeeds_the_other_gets_a_concurrency_conflict(
    racers: tuple[RacingEngagements, RacingEngagements], ctx: CommandContext
) -> None:
    first, second = racers
    engagement_id = open_engagement(first, ctx, days_ago(30))
    first.execute(ctx.at(days_ago(29)), wellbeing(engagement_id, 5))
    barrier = threading.Barrier(2)
    first.barrier = second.barrier = barrier

    outcomes = race(
        [
            lambda: first.execute(ctx.at(days_ago(28)), feedback(engagement_id, "from first")),
            lambda: second.execute(ctx.at(days_ago(28)), wellbeing(engagement_id, 9)),
        ]
    )

    first.barrier = second.barrier = None
    wins = [o for o in outcomes if isinstance(o, CommandResult)]
    conflicts = [o for o in outcomes if isinstance(o, ConcurrencyConflict)]
    assert len(wins) == 1, outcomes
    assert len(conflicts) == 1, outcomes
    assert wins[0].version == 3
    assert conflicts[0].current_version == 3
    assert conflicts[0].code == "concurrency_conflict"

    for reader in (first, second):
        engagement = reader.get(FIRM, engagement_id)
        history = reader.history(FIRM, engagement_id)
        assert engagement.version == 3
        assert len(history) == engagement.version
        assert [h.version for h in history] == [1, 2, 3]
    winner_wrote_feedback = outcomes[0] is wins[0]
    engagement = first.get(FIRM, engagement_id)
    assert engagement.feedback_count == (1 if winner_wrote_feedback else 0)
    assert [w["stress"] for w in engagement.wellbeing] == ([5] if winner_wrote_feedback else [5, 9])


def test_retry_after_a_conflict_reloads_and_succeeds(
    racers: tuple[RacingEngagements, RacingEngagements], ctx: CommandContext
) -> None:
    first, second = racers
    engagement_id = open_engagement(first, ctx, days_ago(30))
    barrier = threading.Barrier(2)
    first.barrier = second.barrier = barrier
    commands: list[tuple[Engagements, Command]] = [
        (first, feedback(engagement_id, "keep going")),
        (second, IdentifyStrength(engagement_id=engagement_id, strength="resilience")),
    ]

    def attempt(app: Engagements, command: Command) -> Callable[[], CommandResult]:
        return lambda: app.execute(ctx.at(days_ago(20)), command)

    outcomes = race([attempt(app, command) for app, command in commands])
    first.barrier = second.barrier = None

    (loser_index,) = [i for i, o in enumerate(outcomes) if isinstance(o, ConcurrencyConflict)]
    conflict = outcomes[loser_index]
    assert isinstance(conflict, ConcurrencyConflict)
    assert conflict.current_version == 2
    loser_app, loser_command = commands[loser_index]

    retried = loser_app.execute(
        ctx.at(days_ago(19)), loser_command, expected_version=conflict.current_version
    )

    assert retried.version == 3
    engagement = first.get(FIRM, engagement_id)
    assert engagement.version == 3
    assert engagement.feedback_count == 1
    assert engagement.strengths == 1
    assert [h.version for h in first.history(FIRM, engagement_id)] == [1, 2, 3]


def test_many_threads_with_the_same_expected_version_exactly_one_wins(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx, days_ago(30))
    start = app.execute(ctx.at(days_ago(29)), wellbeing(engagement_id, 5)).version
    go = threading.Barrier(WRITERS)

    def writer(number: int) -> Callable[[], CommandResult]:
        def call() -> CommandResult:
            go.wait(timeout=10)
            return app.execute(
                ctx.at(days_ago(28) + timedelta(minutes=number)),
                wellbeing(engagement_id, number),
                expected_version=start,
            )

        return call

    outcomes = race([writer(n) for n in range(WRITERS)])

    wins = [o for o in outcomes if isinstance(o, CommandResult)]
    refusals = [o for o in outcomes if isinstance(o, StaleVersion | ConcurrencyConflict)]
    assert len(wins) == 1, outcomes
    assert len(refusals) == WRITERS - 1, outcomes
    assert wins[0].version == start + 1
    for refusal in refusals:
        if isinstance(refusal, StaleVersion):
            assert (refusal.expected, refusal.actual) == (start, start + 1)
        else:
            assert refusal.current_version == start + 1
    engagement = app.get(FIRM, engagement_id)
    assert engagement.version == start + 1
    assert len(app.history(FIRM, engagement_id)) == start + 1
    winner = outcomes.index(wins[0])
    assert [w["stress"] for w in engagement.wellbeing] == [5, winner]


def test_a_batch_that_loses_the_race_writes_none_of_its_events(
    racers: tuple[RacingEngagements, RacingEngagements], ctx: CommandContext
) -> None:
    first, second = racers
    engagement_id = open_engagement(first, ctx, days_ago(30))
    first.barrier = second.barrier = threading.Barrier(2)
    batch: list[Command] = [feedback(engagement_id, f"note {n}") for n in range(5)]

    outcomes = race(
        [
            lambda: first.execute_batch(ctx.at(days_ago(20)), engagement_id, batch)[-1],
            lambda: second.execute(ctx.at(days_ago(20)), wellbeing(engagement_id, 3)),
        ]
    )
    first.barrier = second.barrier = None

    engagement = second.get(FIRM, engagement_id)
    if isinstance(outcomes[0], CommandResult):
        assert isinstance(outcomes[1], ConcurrencyConflict)
        assert outcomes[1].current_version == 6
        assert (engagement.version, engagement.feedback_count, engagement.wellbeing) == (6, 5, [])
    else:
        assert isinstance(outcomes[0], ConcurrencyConflict)
        assert outcomes[0].current_version == 2
        assert (engagement.version, engagement.feedback_count) == (2, 0)
        assert len(engagement.wellbeing) == 1
    assert len(second.history(FIRM, engagement_id)) == engagement.version


def test_one_process_many_threads_lose_nothing_and_each_race_has_one_loser(
    racers: tuple[RacingEngagements, RacingEngagements], ctx: CommandContext
) -> None:
    """Group commit in one application: 8 threads, each on its own engagement, plus two
    threads racing on one shared engagement each round (so a refused shared transaction
    has to find its loser). Every accepted command is stored exactly once, each race has
    exactly one loser, and the chains verify. (That saves do share transactions is
    shown deterministically in tests/unit/test_group_commit.py.)"""
    app, _ = racers
    own = [open_engagement(app, ctx, days_ago(40)) for _ in range(WRITERS)]
    shared = open_engagement(app, ctx, days_ago(40))
    rounds = 6
    start = app.group_commit.transactions, app.group_commit.saves
    outcomes: list[str] = []

    def work(engagement_id: UUID, stress: int) -> str:
        try:
            app.execute(ctx, wellbeing(engagement_id, stress))
        except ConcurrencyConflict:
            return "conflict"
        return "ok"

    with ThreadPoolExecutor(max_workers=WRITERS + 2) as pool:
        for number in range(rounds):
            # All ten load, then all ten save at once.
            app.barrier = threading.Barrier(WRITERS + 2)
            jobs = [pool.submit(work, e, number % 10) for e in own]
            jobs += [pool.submit(work, shared, 1), pool.submit(work, shared, 2)]
            outcomes += [job.result(timeout=30) for job in jobs]
    app.barrier = None

    assert outcomes.count("conflict") == rounds  # one loser per race on the shared one
    assert outcomes.count("ok") == rounds * (WRITERS + 1)
    for engagement_id in own:
        assert app.get(FIRM, engagement_id).version == 1 + rounds
    assert app.get(FIRM, shared).version == 1 + rounds
    assert app.auditor.verify().ok
    assert app.group_commit.saves - start[1] == rounds * (WRITERS + 1)
    assert app.group_commit.transactions - start[0] <= rounds * (WRITERS + 1)
