"""Group commit: concurrent saves share transactions; a conflict fails only its own save."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from domain.groupcommit import GroupCommit


class Conflict(Exception):
    pass


@dataclass(frozen=True)
class Ev:
    originator_id: str
    originator_version: int


class SlowStore:
    """Stores events with a unique (originator, version) key, slowly like an fsync."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.rows: dict[tuple[str, int], Ev] = {}
        self.transactions: list[list[Ev]] = []
        self.lock = threading.Lock()
        self.fail_with: BaseException | None = None
        #: While set and not yet released, the first write waits for it (see behind_a_leader).
        self.hold: threading.Event | None = None

    def wait_for_release(self) -> None:
        if self.hold is not None:
            self.hold.wait(5)

    def __call__(self, events: list[Any]) -> None:
        self.wait_for_release()
        time.sleep(self.delay)
        with self.lock:
            if self.fail_with is not None:
                raise self.fail_with
            keys = [(e.originator_id, e.originator_version) for e in events]
            if len(set(keys)) != len(keys) or any(k in self.rows for k in keys):
                raise Conflict(keys)
            self.rows.update(zip(keys, events, strict=True))
            self.transactions.append(list(events))


def run_concurrently(commit: GroupCommit, saves: list[list[Ev]]) -> list[BaseException | None]:
    results: list[BaseException | None] = [None] * len(saves)
    start = threading.Barrier(len(saves))

    def work(i: int) -> None:
        start.wait()
        try:
            commit.save(saves[i])
        except BaseException as error:
            results[i] = error

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(saves))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    return results


def behind_a_leader(
    commit: GroupCommit, store: SlowStore, saves: list[list[Ev]]
) -> list[BaseException | None]:
    """Run ``saves`` while a first save ("first" v1) holds the leadership, writing: all of
    them queue meanwhile and go in one batch after it."""
    store.hold = threading.Event()
    first = threading.Thread(target=commit.save, args=([Ev("first", 1)],))
    first.start()

    def release() -> None:
        deadline = time.monotonic() + 5
        while len(commit._queue) < len(saves) and time.monotonic() < deadline:
            time.sleep(0.001)
        assert store.hold is not None
        store.hold.set()

    releaser = threading.Thread(target=release)
    releaser.start()
    results = run_concurrently(commit, saves)
    first.join()
    releaser.join()
    return results


def test_concurrent_saves_share_transactions_and_all_are_stored() -> None:
    store = SlowStore()
    commit = GroupCommit(store, Conflict)
    saves = [[Ev(f"e{i}", 1), Ev(f"e{i}", 2)] for i in range(16)]
    assert run_concurrently(commit, saves) == [None] * 16
    assert len(store.rows) == 32
    # The first leader commits alone (or nearly); the rest queue behind it and go together.
    assert len(store.transactions) < 16
    assert max(len(t) for t in store.transactions) >= 4
    assert (commit.saves, commit.transactions) == (16, len(store.transactions))


def test_a_conflict_fails_only_its_own_save() -> None:
    store = SlowStore()
    store.rows[("e3", 1)] = Ev("e3", 1)  # someone else already wrote e3 v1
    commit = GroupCommit(store, Conflict)
    saves = [[Ev(f"e{i}", 1)] for i in range(8)]
    results = run_concurrently(commit, saves)
    assert [i for i, r in enumerate(results) if r is not None] == [3]
    assert isinstance(results[3], Conflict)
    assert {k for k in store.rows if k[0] != "e3"} == {(f"e{i}", 1) for i in range(8) if i != 3}


def test_two_saves_of_one_engagement_never_share_a_transaction() -> None:
    store = SlowStore()
    commit = GroupCommit(store, Conflict)
    # Both loaded version 0 and wrote version 1: exactly one may win.
    saves = [[Ev("same", 1)], [Ev("same", 1)], [Ev("other", 1)]]
    results = run_concurrently(commit, saves)
    assert sum(r is None for r in results[:2]) == 1
    assert sum(isinstance(r, Conflict) for r in results[:2]) == 1
    assert results[2] is None
    for transaction in store.transactions:
        originators = [e.originator_id for e in transaction]
        assert len(originators) == len(set(originators))


def test_an_unavailable_database_reaches_every_save_at_once_and_the_next_saves_go_on() -> None:
    store = SlowStore(delay=0.05)
    store.fail_with = OSError("database down")
    attempts: list[int] = []

    def counting(events: list[Any]) -> None:
        attempts.append(len(events))
        store(events)

    commit = GroupCommit(counting, Conflict, unavailable=(OSError,))
    results = run_concurrently(commit, [[Ev(f"e{i}", 1)] for i in range(6)])
    assert all(isinstance(r, OSError) for r in results)
    # An outage is not retried save by save: each transaction tried once.
    assert sum(attempts) == 6
    store.fail_with = None
    commit.save([Ev("after", 1)])
    assert ("after", 1) in store.rows


class PoisonStore(SlowStore):
    """A store one of whose rows makes the whole transaction fail (not a conflict)."""

    def __call__(self, events: list[Any]) -> None:
        self.wait_for_release()
        if any(e.originator_id == "poison" for e in events):
            time.sleep(self.delay)
            raise ValueError("this row cannot be stored")
        super().__call__(events)


def test_an_error_caused_by_one_save_in_a_shared_transaction_fails_only_that_save() -> None:
    store = PoisonStore(delay=0.03)
    commit = GroupCommit(store, Conflict, unavailable=(OSError,))
    saves = [[Ev(f"e{i}", 1)] for i in range(7)] + [[Ev("poison", 1)]]
    results = behind_a_leader(commit, store, saves)
    assert [type(r) for r in results] == [type(None)] * 7 + [ValueError]
    assert set(store.rows) == {("first", 1)} | {(f"e{i}", 1) for i in range(7)}


def test_a_save_that_cannot_be_prepared_fails_alone_before_it_joins_anything() -> None:
    store = SlowStore(delay=0.03)
    prepared_by: list[str] = []

    def prepare(events: list[Ev]) -> list[Ev]:
        prepared_by.append(threading.current_thread().name)
        if any(e.originator_id == "bad" for e in events):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return events

    def store_prepared(saves: list[list[Ev]]) -> None:
        store([e for save in saves for e in save])

    commit = GroupCommit(store_prepared, Conflict, prepare=prepare)
    saves = [[Ev("bad", 1)] if i % 3 == 0 else [Ev(f"e{i}", 1)] for i in range(9)]
    results = run_concurrently(commit, saves)
    for i, result in enumerate(results):
        assert isinstance(result, UnicodeEncodeError) if i % 3 == 0 else result is None
    assert set(store.rows) == {(f"e{i}", 1) for i in range(9) if i % 3}
    # Each save was prepared by its own thread, not by the leader of a batch.
    assert len(set(prepared_by)) == 9
    assert len(store.transactions) < 6


@pytest.mark.parametrize("count", [1, 2])
def test_a_lone_save_is_committed_at_once(count: int) -> None:
    store = SlowStore(delay=0)
    commit = GroupCommit(store, Conflict)
    for i in range(count):
        commit.save([Ev("solo", i + 1)])
    assert [len(t) for t in store.transactions] == [1] * count


def test_with_heads_a_conflict_costs_the_others_one_retry_together() -> None:
    store = SlowStore(delay=0.03)
    store.rows[("e3", 1)] = Ev("e3", 1)

    def heads(originators: set[Any]) -> dict[Any, int]:
        return {o: max((v for (i, v) in store.rows if i == o), default=0) for o in originators}

    commit = GroupCommit(store, Conflict, heads)
    results = behind_a_leader(commit, store, [[Ev(f"e{i}", 1)] for i in range(8)])
    assert [i for i, r in enumerate(results) if r is not None] == [3]
    # "first" alone, then the seven winners together once more after the refusal.
    assert sorted(len(t) for t in store.transactions) == [1, 7]


def test_an_error_while_finding_losers_reaches_every_unsaved_save() -> None:
    store = SlowStore(delay=0.03)
    store.rows[("e3", 1)] = Ev("e3", 1)

    def heads(originators: set[Any]) -> dict[Any, int]:
        raise OSError("database down")

    commit = GroupCommit(store, Conflict, heads)
    results = behind_a_leader(commit, store, [[Ev(f"e{i}", 1)] for i in range(8)])
    assert all(isinstance(r, OSError) for r in results)
    assert set(store.rows) == {("e3", 1), ("first", 1)}
