"""Group commit: concurrent saves of one process share one transaction.

Every insert into the event store takes the events table's lock and waits for the
commit to reach disk; saving each command alone serialises threads behind one fsync
each. Here the first thread to save becomes the *leader*: it takes every save queued
by then (its own included) and stores all their events in one transaction, while the
others wait; then it hands leadership to the first save that queued meanwhile.

Per-engagement optimistic concurrency is kept: each engagement's events still carry
the versions its command expected, the store's unique (engagement, version) key
still refuses a lost race. Two saves of one engagement in one batch never go in
together (the second waits for the next turn, where it meets the first one's events).
If the shared transaction is refused, the saves that lost a race are found (their
first version is no longer above the stored head, ``heads``) and retried alone, where
the store refuses them; the others are written together again. So a conflict fails
only the save that caused it, and costs the others one more round trip, not a
transaction each.

One save must never fail another, whoever sent it: everything about a save that can
fail on its own — encoding its events (text the store cannot hold), sealing them under
its client's key — is done by ``prepare`` in the saving thread, *before* it joins the
queue, so such an error reaches only that save's caller. If the shared transaction
still fails for another reason than a lost race, every save in it is retried alone
(only the one that causes the error gets it), unless the error says the database
itself is unavailable (``unavailable``): then it is every save's answer, at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


class _Save:
    __slots__ = ("error", "events", "lead", "prepared", "ready", "stored")

    def __init__(self, events: Sequence[Any], prepared: Any) -> None:
        self.events = list(events)
        self.prepared = prepared
        self.stored = False
        self.error: BaseException | None = None
        self.lead = False
        self.ready = threading.Event()


class GroupCommit:
    """Coalesce concurrent ``store(events)`` calls into as few transactions as possible.

    ``store`` writes a list of prepared saves in one transaction (raising on conflict);
    ``conflict`` is the exception type of a refused write.
    """

    def __init__(
        self,
        store: Callable[[list[Any]], None],
        conflict: type[BaseException],
        heads: Callable[[set[Any]], dict[Any, int]] | None = None,
        *,
        prepare: Callable[[list[Any]], Any] | None = None,
        unavailable: tuple[type[BaseException], ...] = (),
    ) -> None:
        """``heads`` returns the stored version of each originator id given (to find who
        lost a race when a shared transaction is refused). ``prepare`` turns one save's
        events into what ``store`` writes (default: the events themselves), raising if
        they cannot be stored; ``store`` then gets the prepared saves' items, in order.
        ``unavailable`` are the errors that mean the database itself failed."""
        self._store = store
        self._conflict = conflict
        self._heads = heads
        self._prepare = prepare
        self._unavailable = unavailable
        self._lock = threading.Lock()
        self._queue: list[_Save] = []
        self._leading = False
        #: Transactions and saves so far (for metrics and tests).
        self.transactions = 0
        self.saves = 0

    def save(self, events: Sequence[Any]) -> None:
        """Store ``events`` (all of one engagement) durably, or raise as ``store`` would.

        They are prepared first, here: if that fails, the error is this caller's alone
        and nothing was queued."""
        prepared = list(events) if self._prepare is None else self._prepare(list(events))
        item = _Save(events, prepared)
        with self._lock:
            self._queue.append(item)
            lead = not self._leading
            self._leading = True
        if not lead:
            item.ready.wait()
            if not item.lead:
                if item.error is not None:
                    raise item.error
                return
        self._lead()
        if item.error is not None:
            raise item.error

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._commit(batch)
        except BaseException as error:  # e.g. the database went away while finding losers
            for item in batch:
                if not item.stored and item.error is None:
                    item.error = error
            raise
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.ready.set()
                else:
                    self._leading = False
            for item in batch:
                if not item.lead:
                    item.ready.set()

    def _commit(self, batch: list[_Save]) -> None:
        together: list[_Save] = []
        later: list[_Save] = []
        seen: set[Any] = set()
        for item in batch:
            originators = {e.originator_id for e in item.events}
            (later if originators & seen else together).append(item)
            seen |= originators
        for attempt in range(2):
            if len(together) < 2:
                break
            try:
                self._write(together)
            except self._conflict:
                losers = self._losers(together) if attempt == 0 else together
                if not losers:
                    losers = together  # cannot tell: each alone
                later = losers + later
                together = [item for item in together if item not in losers]
            except self._unavailable as error:
                for item in together:
                    item.error = error
                together = []
            except Exception:
                # Not a lost race and not an outage: one of them causes it. Alone, only
                # that one fails.
                later = together + later
                together = []
            else:
                together = []
        later = together + later
        for item in later:
            try:
                self._write([item])
            except BaseException as error:
                item.error = error

    def _losers(self, items: list[_Save]) -> list[_Save]:
        if self._heads is None:
            return items
        heads = self._heads({e.originator_id for item in items for e in item.events})
        return [
            item
            for item in items
            if any(e.originator_version <= heads.get(e.originator_id, 0) for e in item.events)
        ]

    def _write(self, items: list[_Save]) -> None:
        if self._prepare is None:
            self._store([e for item in items for e in item.events])
        else:
            self._store([item.prepared for item in items])
        for item in items:
            item.stored = True
        self.transactions += 1
        self.saves += len(items)
