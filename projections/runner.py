"""Follow the event store and fold it into the progress read model, supervised.

The runner reads the notification log after its tracked position in batches and
applies each batch in one transaction. On PostgreSQL it sleeps on LISTEN/NOTIFY
between batches (new events wake it at once); on SQLite it polls. Any failure — a
dropped connection, a restarting database — is logged, waited out with backoff, and
followed by a resume from the tracked position, so nothing is skipped or doubled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from domain.application import Engagements
from domain.event import EngagementEvent
from domain.storage import prefetch_keys
from projections.progress import reading_mapper
from projections.store import Positioned, ProgressStore, StalePosition, StreamReader

log = logging.getLogger("coachlog.projections")

BATCH_SIZE = 500


def stream_reader(engagements: Engagements) -> StreamReader:
    """Read one engagement's events from the event store (up to a version), decoded as
    this read model folds them: the store's answer when an event arrives out of order."""
    mapper = reading_mapper(engagements.mapper)

    def read(engagement_id: str, upto: int | None) -> list[EngagementEvent]:
        originator = UUID(engagement_id)
        stored = engagements.recorder.select_events(originator, lte=upto)
        prefetch_keys(mapper, {originator})
        events = (mapper.to_domain_event(item) for item in stored)
        return [event for event in events if isinstance(event, EngagementEvent)]

    return read


class ProjectionRunner:
    """Keeps one generation of the progress read model up to date with the log."""

    def __init__(
        self,
        engagements: Engagements,
        store: ProgressStore,
        *,
        generation: int | None = None,
        batch_size: int = BATCH_SIZE,
        poll_interval: float = 0.2,
    ) -> None:
        self.engagements = engagements
        self.mapper = reading_mapper(engagements.mapper)
        self.store = store
        if store.stream is None:
            store.stream = stream_reader(engagements)
        self.generation = generation
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self.errors = 0

    # -- one step ----------------------------------------------------------------------

    def _generation(self) -> int:
        return self.generation if self.generation is not None else self.store.live_generation()

    def read_batch(self, after: int, limit: int, stop: int | None = None) -> list[Positioned]:
        """Decode up to ``limit`` engagement events after position ``after``."""
        notifications = self.engagements.recorder.select_notifications(
            start=after, limit=limit, stop=stop, inclusive_of_start=False
        )
        prefetch_keys(self.mapper, {n.originator_id for n in notifications})
        batch = []
        for notification in notifications:
            event = self.mapper.to_domain_event(notification)
            if isinstance(event, EngagementEvent):
                batch.append(Positioned(notification.id, event))
        return batch

    def run_once(self, stop: int | None = None) -> int:
        """Apply at most one batch; return how many events it folded."""
        generation = self._generation()
        tracked = self.store.tracking(generation).position
        batch = self.read_batch(tracked, self.batch_size, stop)
        if not batch:
            return 0
        try:
            self.store.apply(generation, batch, expected=tracked)
        except StalePosition:
            log.info("another runner advanced %s; re-reading", self.store.tracking_name(generation))
            return 0
        return len(batch)

    def catch_up(
        self, stop: int | None = None, progress: Callable[[int], Any] | None = None
    ) -> int:
        """Apply batches until the log head (or ``stop``) is reached; return events folded."""
        total = 0
        while True:
            done = self.run_once(stop)
            if done == 0:
                head = self.engagements.recorder.max_notification_id() or 0
                target = head if stop is None else min(stop, head)
                if self.store.tracking(self._generation()).position >= target:
                    return total
                continue
            total += done
            if progress is not None:
                progress(done)

    # -- supervised loop ---------------------------------------------------------------

    def start(self) -> None:
        """Run in a background thread until stop()."""
        self._thread = threading.Thread(
            target=self.run_forever, name="projection-runner", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Ask the loop to finish its batch and stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_forever(self) -> None:
        """Fold new events as they arrive; survive and resume after any failure."""
        if self.engagements.factory.__class__.__module__.endswith("postgres"):
            self._listener = threading.Thread(
                target=self._listen, name="projection-listen", daemon=True
            )
            self._listener.start()
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if self.run_once() == 0:
                    self._wake.wait(self.poll_interval)
                    self._wake.clear()
                backoff = 0.5
            except Exception:
                self.errors += 1
                log.exception("projection runner failed; resuming in %.1fs", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10)

    def _listen(self) -> None:
        """Set the wake event on every NOTIFY from the event store (PostgreSQL only)."""
        recorder: Any = self.engagements.recorder
        params = {k: v for k, v in recorder.datastore.pool.kwargs.items() if k != "row_factory"}
        while not self._stop.is_set():
            try:
                with psycopg.connect(**params, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(recorder.channel_name)))
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except psycopg.Error:
                self._stop.wait(1.0)
