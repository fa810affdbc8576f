"""The projector: fold the Kafka topic into the read models, exactly once in effect.

Instances share the topic's partitions in a consumer group. Broker offsets are never
the source of truth: each partition's next offset and watermark live in the read-model
database and commit in the same transaction as the documents they produced; on
assignment the consumer seeks to them. Every record names the previous log position
sent to its partition, so a lost record (a broker that forgot its data, offsets out
of range) shows as a broken link and is healed from the event store. When a partition
is idle, a sweep folds from the store whatever the relay has not published yet, which
keeps freshness honest and closes any tail the broker lost.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from domain.application import Engagements
from domain.event import EngagementEvent
from domain.storage import prefetch_keys
from projections.database import DATABASE_ERRORS
from projections.progress import reading_mapper
from projections.runner import stream_reader
from projections.store import Linked, Positioned, ProgressStore
from workers.codec import decode, partition_for
from workers.settings import KafkaSettings

log = logging.getLogger("coachlog.projector")

#: The longest pause between attempts while the broker is away (seconds).
BROKER_BACKOFF = 2.0
#: The longest pause between attempts while the database is away (seconds).
DATABASE_BACKOFF = 2.0
#: How long a batch is retried on the same consumer while the database is away
#: (seconds); under the consumer's max poll interval, so it never leaves the group.
DATABASE_PATIENCE = 240.0
#: How often an instance records itself (assigned partitions, last progress) and
#: checks that it is not stalled (seconds).
HEARTBEAT_SECONDS = 2.0
#: An instance not heard of for this long no longer owns anything (seconds).
LIVE_SECONDS = 15.0
#: How often a busy instance sweeps anyway (an idle one sweeps after ``sweep_after``).
BUSY_SWEEP_SECONDS = 10.0
#: How long an instance may hold no partition, or make no progress while the log
#: grows, before it says so in its log (seconds).
STALL_SECONDS = 30.0


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, projector: KafkaProjector) -> None:
        self.projector = projector

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.projector.seek_assigned(list(assigned))


class KafkaProjector:
    """One instance of the Kafka projection worker."""

    def __init__(
        self,
        engagements: Engagements,
        store: ProgressStore,
        settings: KafkaSettings,
        *,
        sweep_after: float = 2.0,
        max_records: int = 1000,
    ) -> None:
        self.engagements = engagements
        self.mapper = reading_mapper(engagements.mapper)
        self.store = store
        if store.stream is None:
            store.stream = stream_reader(engagements)
        self.settings = settings
        self.sweep_after = sweep_after
        self.max_records = max_records
        self._stop = threading.Event()
        self._consumer: KafkaConsumer | None = None
        #: Partitions sought to a stored offset whose end offset is not checked yet.
        self._unchecked: dict[TopicPartition, int] = {}
        self.applied = 0
        self.healed = 0
        self._partition_count: int | None = None
        #: Partitions were assigned since the partition count was last read.
        self._recount = False
        self.instance = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.last_progress = time.time()
        self._last_heartbeat = 0.0
        self._last_sweep = time.monotonic()
        self._stall_logged = time.time()  # the first warning comes after STALL_SECONDS

    # -- healing from the store ---------------------------------------------------------

    def heal(self, partition: int, after: int, upto: int) -> list[Positioned]:
        """Events of ``partition`` with log positions in (after, upto], from the store."""
        found: list[Positioned] = []
        count = self.partitions()
        start = after
        while start < upto:
            notifications = self.engagements.recorder.select_notifications(
                start=start, limit=1000, stop=upto, inclusive_of_start=False
            )
            if not notifications:
                break
            for notification in notifications:
                if partition_for(notification.originator_id, count) != partition:
                    continue
                event = self.mapper.to_domain_event(notification)
                if isinstance(event, EngagementEvent):
                    found.append(Positioned(notification.id, event))
            start = notifications[-1].id
        self.healed += len(found)
        return found

    def partitions(self) -> int:
        """The topic's real partition count (what the relay hashes keys over), as read
        when partitions were last assigned; the setting until then."""
        return self._partition_count or self.settings.partitions

    # -- consuming ----------------------------------------------------------------------

    def consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.settings.bootstrap,
                group_id=self.settings.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=self.settings.session_timeout_ms,
                heartbeat_interval_ms=max(500, self.settings.session_timeout_ms // 5),
                max_poll_records=self.max_records,
                # Never let a subscription create the topic with the broker's defaults:
                # the relay creates it with the configured partitions.
                allow_auto_create_topics=False,
                metadata_max_age_ms=10_000,  # notice a topic created after we subscribed
                max_poll_interval_ms=int((DATABASE_PATIENCE + 60) * 1000),
                # back within 2 s of the broker's return (the client's default: 30 s)
                reconnect_backoff_max_ms=int(BROKER_BACKOFF * 1000),
            )
            self._consumer.subscribe([self.settings.topic], listener=_SeekToStored(self))
        return self._consumer

    def seek_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        """Start each newly assigned partition at the offset our database recorded.

        Runs inside the client's network thread (the rebalance callback): nothing here
        may wait on the broker. The topic's partition count is read again after the
        poll that assigned them, before any record is folded.
        """
        generation = self.store.live_generation()
        offsets = self.store.partition_offsets(generation, self.settings.topic)
        consumer = self.consumer()
        self._recount = True
        for tp in assigned:
            next_offset = offsets.get(tp.partition, (0, 0))[0]
            consumer.seek(tp, next_offset)
            self._unchecked[tp] = next_offset
        log.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))

    def assigned(self) -> list[int]:
        """Partitions this instance owns now."""
        return sorted(tp.partition for tp in self.consumer().assignment())

    def run_once(self, timeout_ms: int = 500) -> int:
        """Fold one poll's worth of records; return how many records it saw."""
        records = self.consumer().poll(timeout_ms=timeout_ms, max_records=self.max_records)
        if self._recount:
            self._recount = False
            known = self.consumer().partitions_for_topic(self.settings.topic)
            self._partition_count = len(known) if known else None
            if self._partition_count is not None and self._align(self._partition_count):
                return 0  # re-keyed: what this poll read is read again from the new offsets
        if self._unchecked:
            self._clamp_to_end(records)
        generation = self._retrying(self.store.live_generation)
        seen = 0
        for tp, messages in sorted(records.items(), key=lambda item: item[0].partition):
            chain: list[Linked] = []
            prefetch_keys(self.mapper, {m.key.decode() for m in messages if m.key})
            for message in messages:
                try:
                    chain.append(
                        decode(
                            message.value,
                            list(message.headers or []),
                            self.mapper,
                        )
                    )
                except (ValueError, KeyError, TypeError) as error:
                    # Not ours or not decodable: the store remains the source of truth,
                    # and the next link (or the sweep) heals whatever this record carried.
                    log.warning("skipping record %s@%d: %s", tp, message.offset, error)
            self._retrying(
                partial(
                    self.store.apply_partition,
                    generation,
                    self.settings.topic,
                    tp.partition,
                    chain,
                    messages[-1].offset + 1,
                    partial(self.heal, tp.partition),
                    self.partitions(),
                )
            )
            seen += len(messages)
        self.applied += seen
        if seen:
            self.last_progress = time.time()
        return seen

    def _align(self, count: int) -> bool:
        """Re-key the stored partition state if it was kept under another partition
        count; then start every owned partition again at its new stored offset."""
        generation = self._retrying(self.store.live_generation)
        if not self._retrying(
            partial(self.store.align_partitions, generation, self.settings.topic, count)
        ):
            return False
        offsets = self.store.partition_offsets(generation, self.settings.topic)
        consumer = self.consumer()
        for tp in consumer.assignment():
            consumer.seek(tp, offsets.get(tp.partition, (0, 0))[0])
        self._unchecked = {}
        return True

    def _retrying(self, step: Callable[[], Any]) -> Any:
        """Run a database step until it succeeds, waiting out a database that is away
        on the same consumer (it stays in the group: heartbeats go on in the client's
        own thread); give up after DATABASE_PATIENCE."""
        backoff = 0.2
        deadline = time.monotonic() + DATABASE_PATIENCE
        while True:
            try:
                return step()
            except DATABASE_ERRORS as error:
                if self._stop.is_set() or time.monotonic() > deadline:
                    raise
                log.warning("database trouble (%s); trying again in %.1fs", error, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, DATABASE_BACKOFF)

    def _clamp_to_end(self, records: dict[TopicPartition, Any]) -> None:
        """Seek back to the end of a partition whose stored offset lies past it.

        The broker then holds fewer records than we consumed: it lost its log (a
        restart, a recreated topic), and the partition would stall until its new log
        grew that long. Reading from the end, the next record's chain link (or the idle
        sweep) heals what lies before it from the store; the new offset is recorded at
        once, so that it never stays past the end. Runs after poll: the blocking
        end_offsets call must not run inside the rebalance callback.
        """
        consumer = self.consumer()
        pending, self._unchecked = self._unchecked, {}
        owned = consumer.assignment()
        candidates = {tp: o for tp, o in pending.items() if tp in owned and not records.get(tp)}
        if not candidates:
            return
        try:
            ends = consumer.end_offsets(list(candidates))
        except KafkaError as error:
            log.warning("could not read end offsets (%s); keeping the stored ones", error)
            return
        for tp, stored in candidates.items():
            end = ends.get(tp)
            if end is not None and stored > end:
                log.info(
                    "partition %d: stored offset %d is past the log end %d; reading from there",
                    tp.partition,
                    stored,
                    end,
                )
                consumer.seek(tp, end)
                # Recorded at once: with no new record on this partition the stored
                # offset would otherwise stay past the end until the next assignment.
                self.store.apply_partition(
                    self.store.live_generation(),
                    self.settings.topic,
                    tp.partition,
                    [],
                    end,
                    partial(self.heal, tp.partition),
                    self.partitions(),
                )

    def sweep(self) -> None:
        """Fold from the store what the owned partitions lack up to the log head, and
        what the partitions no live instance owns lack (a group that assigned nobody
        anything stalls no read model)."""
        head = self.engagements.recorder.max_notification_id() or 0
        generation = self.store.live_generation()
        owned = self.assigned()
        for partition in sorted(set(owned) | set(self.unowned())):
            self.store.sweep_partition(
                generation,
                self.settings.topic,
                partition,
                head,
                partial(self.heal, partition),
                self.partitions(),
            )
        self.last_progress = time.time()
        self._last_sweep = time.monotonic()

    def unowned(self) -> list[int]:
        """Partitions of the topic that no live instance of the group says it owns."""
        if self._partition_count is None:
            return []
        owned: set[int] = set()
        with self.store.db.read() as cur:
            cur.execute(
                "SELECT instance, assigned FROM rm_projector_instances"
                " WHERE topic = %s AND group_id = %s AND last_seen_at >= %s",
                (self.settings.topic, self.settings.group, time.time() - LIVE_SECONDS),
            )
            for instance, assigned in cur.fetchall():
                if instance != self.instance:
                    owned.update(json.loads(assigned))
        owned.update(self.assigned())
        return [p for p in range(self._partition_count) if p not in owned]

    def heartbeat(self) -> None:
        """Record this instance (assigned partitions, last progress) for /metrics, and
        say in the log when it holds no partition or makes no progress."""
        now = time.time()
        assigned = self.assigned()
        with self.store.db.transaction() as cur:
            cur.execute(
                "INSERT INTO rm_projector_instances (instance, topic, group_id, host, pid,"
                " assigned, partitions, last_progress_at, last_seen_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (instance) DO UPDATE"
                " SET assigned = excluded.assigned, partitions = excluded.partitions,"
                " last_progress_at = excluded.last_progress_at,"
                " last_seen_at = excluded.last_seen_at",
                (
                    self.instance,
                    self.settings.topic,
                    self.settings.group,
                    socket.gethostname(),
                    os.getpid(),
                    json.dumps(assigned),
                    self._partition_count,
                    self.last_progress,
                    now,
                ),
            )
            # Instances gone for long are forgotten.
            cur.execute("DELETE FROM rm_projector_instances WHERE last_seen_at < %s", (now - 3600,))
        self._last_heartbeat = time.monotonic()
        if now - self._stall_logged < STALL_SECONDS:
            return
        if not assigned and self._partition_count:
            self._stall_logged = now
            log.warning(
                "instance %s holds no partition of the %d of %s; sweeping from the store"
                " the partitions no live instance owns: %s",
                self.instance,
                self._partition_count,
                self.settings.topic,
                self.unowned(),
            )
        elif now - self.last_progress > STALL_SECONDS:
            self._stall_logged = now
            log.warning(
                "instance %s made no progress for %.0fs on partitions %s",
                self.instance,
                now - self.last_progress,
                assigned,
            )

    def _forget(self) -> None:
        with self.store.db.transaction() as cur:
            cur.execute("DELETE FROM rm_projector_instances WHERE instance = %s", (self.instance,))

    def stop(self) -> None:
        """Finish the poll under way, then stop."""
        self._stop.set()

    def run_forever(self) -> None:
        """Consume, fold and heal until stopped; survive broker and database trouble."""
        backoff = 0.5
        idle_since = time.monotonic()
        while not self._stop.is_set():
            try:
                if self.run_once() > 0:
                    idle_since = time.monotonic()
                    if time.monotonic() - self._last_sweep >= BUSY_SWEEP_SECONDS:
                        self._retrying(self.sweep)
                elif time.monotonic() - idle_since >= self.sweep_after:
                    self._retrying(self.sweep)
                    idle_since = time.monotonic()
                if time.monotonic() - self._last_heartbeat >= HEARTBEAT_SECONDS:
                    self._retrying(self.heartbeat)
                backoff = 0.5
            except KafkaError as error:
                log.warning("broker trouble (%s); reconnecting in %.1fs", error, backoff)
                self._close_consumer()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BROKER_BACKOFF)
            except Exception:
                log.exception("projector step failed; resuming in %.1fs", backoff)
                self._close_consumer()  # re-seek to the stored offsets on reassignment
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10)
        self._close_consumer()
        try:
            self._forget()
        except DATABASE_ERRORS:
            log.debug("could not remove instance %s", self.instance, exc_info=True)

    def _close_consumer(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception:
                log.debug("closing the consumer failed", exc_info=True)
        self._consumer = None
        self._unchecked = {}
