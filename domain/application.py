"""The application service: open, command and read engagements; list their history.

Every use case is ``get → call → save`` inside a command context; library exceptions
are translated to named domain errors at this boundary. Reads are scoped to the
caller's firm: another firm's engagement is "not found", never a hint that it exists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    Mapper,
    OperationalError,
    Transcoder,
)

from domain.audit import AnchorStore, Auditor, MemoryAnchorStore, firm_of_payload
from domain.commands import Command, OpenEngagement
from domain.context import CommandContext, acting
from domain.engagement import Engagement
from domain.errors import (
    ConcurrencyConflict,
    EngagementAlreadyExists,
    EngagementNotFound,
    ErasureIncomplete,
    StaleVersion,
)
from domain.event import EngagementEvent
from domain.groupcommit import GroupCommit
from domain.keys import (
    KeyRing,
    KeyStore,
    MasterKey,
    MemoryKeyStore,
    NoMasterKey,
    SqlKeyStore,
    key_cache_seconds,
    master_key_from,
    retrying,
)
from domain.privacy import EraseSubject, SubjectErased
from domain.storage import ChainedEventStore, Prepared, SealingMapper, split_state
from domain.transcoding import StrictJSONTranscoder, register_domain_transcodings

log = logging.getLogger("coachlog.engagements")

#: How often an erasure is tried again when a concurrent command on another of the
#: client's engagements won the race (each try reloads them).
ERASURE_ATTEMPTS = 20

#: Engagements whose firm a process remembers (then it forgets them all and starts over).
FIRMS_REMEMBERED = 100_000


#: Set to "1" in the environment of an application that must never open sealed data
#: (the relay): it then holds no master key at all.
KEYLESS_ENV = "COACHLOG_KEYLESS"


@dataclass(frozen=True)
class CommandResult:
    """What a command produced: the engagement, its new version, and any new id."""

    engagement_id: UUID
    version: int
    result: Any = None


@dataclass(frozen=True)
class HistoryEntry:
    """One event of an engagement's history, as an auditor reads it."""

    version: int
    event_type: str
    topic: str
    occurred_at: datetime
    recorded_at: datetime
    metadata: dict[str, Any]
    payload: dict[str, Any]


class Engagements(Application[UUID]):
    """Coaching engagements, persisted as event streams (one per engagement)."""

    name = "Engagements"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Engagement: 50}
    #: Keep recently used engagements in memory; each command then reads only the events
    #: stored since (usually none) instead of a snapshot and up to 49 events to decode.
    #: Every get re-checks the store ("fast-forward"), so other writers are always seen.
    env: ClassVar[dict[str, str]] = {"AGGREGATE_CACHE_MAXSIZE": "1000"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Called with (firm id, client id) when a client is erased, before their keys
        #: are destroyed: personal data kept outside the events (a user's display name).
        self.erasure_hooks: list[Callable[[str, str], None]] = []
        self._firms: dict[UUID, str] = {}
        super().__init__(*args, **kwargs)

    def construct_transcoder(self) -> Transcoder:
        """A transcoder that stores standard JSON only (domain/transcoding.py)."""
        transcoder = StrictJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        """Register eventsourcing's transcodings and the domain's own."""
        super().register_transcodings(transcoder)
        register_domain_transcodings(transcoder)

    # -- storage: sealed personal fields, hash-chained events ----------------------------

    def construct_mapper(self) -> Mapper[UUID]:
        """A mapper that seals personal fields (its key ring is attached once the
        recorder, whose database also holds the keys, exists)."""
        return SealingMapper(self.construct_transcoder())

    def construct_event_store(self) -> EventStore[UUID]:
        """The hash-chained event store; also builds the key ring beside it."""
        self.keys = KeyRing(self._key_store(), self._master_key(), key_cache_seconds(self.env))
        self.keys.store.create_tables()
        keystore = self.keys.store
        anchors: AnchorStore | MemoryAnchorStore = (
            AnchorStore(keystore.datastore, keystore.dialect, keystore.schema)
            if isinstance(keystore, SqlKeyStore)
            else MemoryAnchorStore()
        )
        anchors.create_tables()
        self.auditor = Auditor(self.recorder, anchors, self.keys.store)
        if isinstance(self.mapper, SealingMapper):
            self.mapper.keys = self.keys
        store = ChainedEventStore(self.mapper, self.recorder)
        self.group_commit = GroupCommit(
            self._store_together,
            IntegrityError,
            self._heads,
            prepare=store.prepare,
            unavailable=(OperationalError, InterfaceError),
        )
        return store

    def _key_store(self) -> KeyStore:
        datastore = getattr(self.recorder, "datastore", None)
        module = self.env.get("PERSISTENCE_MODULE", "eventsourcing.popo")
        if datastore is None:
            return MemoryKeyStore()
        if module.endswith("postgres"):
            return SqlKeyStore(datastore, "postgres", getattr(datastore, "schema", None))
        return SqlKeyStore(datastore, "sqlite")

    def _master_key(self) -> MasterKey:
        if self.env.get(KEYLESS_ENV) == "1":
            return NoMasterKey()  # a process that never opens sealed data (the relay)
        module = self.env.get("PERSISTENCE_MODULE", "eventsourcing.popo")
        if module.endswith("postgres"):
            fallback = None
        elif module.endswith("sqlite"):
            dbname = self.env.get("SQLITE_DBNAME", ":memory:")
            fallback = ":memory:" if "memory" in dbname else f"{dbname}.key"
        else:
            fallback = ":memory:"
        return master_key_from(self.env, fallback)

    # -- commands -----------------------------------------------------------------------

    def open_engagement(self, ctx: CommandContext, command: OpenEngagement) -> CommandResult:
        """Open a new engagement for the context's firm."""
        with acting(ctx):
            engagement = Engagement.open(**command.arguments())
        try:
            self._commit(engagement)
        except IntegrityError:
            raise EngagementAlreadyExists(
                f"an engagement with id {engagement.id} already exists"
            ) from None
        return CommandResult(engagement.id, engagement.version, engagement.id)

    def execute(
        self,
        ctx: CommandContext,
        command: Command,
        expected_version: int | None = None,
        *,
        authorize: Callable[[Engagement], None] | None = None,
    ) -> CommandResult:
        """Run one command on its engagement and save the events it produced."""
        return self.execute_batch(
            ctx, command.engagement_id, [command], expected_version, authorize=authorize
        )[0]

    def execute_batch(
        self,
        ctx: CommandContext,
        engagement_id: UUID,
        commands: Sequence[Command],
        expected_version: int | None = None,
        *,
        authorize: Callable[[Engagement], None] | None = None,
    ) -> list[CommandResult]:
        """Run several commands on one engagement and save them atomically (all or none).

        ``authorize``, if given, is called with the loaded engagement before anything
        else (even the version check): it raises to refuse, and then nothing is written.
        """
        engagement = self._load(ctx.firm_id, engagement_id)
        if authorize is not None:
            authorize(engagement)
        if (
            [type(c) for c in commands] == [EraseSubject]
            and engagement.erased
            and self.erasure_unfinished(engagement)
        ):
            # The same erasure again, after one that stopped half-way: finish it.
            self.finish_erasure(ctx, engagement)
            return [CommandResult(engagement_id, engagement.version)]
        if expected_version is not None and expected_version != engagement.version:
            raise StaleVersion(expected_version, engagement.version)
        results = []
        with acting(ctx):
            for command in commands:
                if command.engagement_id != engagement_id:
                    msg = "every command of a batch must name the same engagement"
                    raise ValueError(msg)
                result = command.run(engagement)
                results.append(CommandResult(engagement_id, engagement.version, result))
        self._save(engagement)
        return results

    def import_engagement(
        self,
        opening: tuple[CommandContext, OpenEngagement],
        steps: Iterable[tuple[CommandContext, Command]],
    ) -> CommandResult:
        """Open an engagement and replay a whole timeline of commands, saved at once.

        For imports and seeding: every step is checked by the same rules as a live
        command, each with its own context (actor, occurred time); if any step is
        refused, nothing of the engagement is written.
        """
        ctx, command = opening
        with acting(ctx):
            engagement = Engagement.open(**command.arguments())
        for step_ctx, step in steps:
            if step_ctx.firm_id != ctx.firm_id or step.engagement_id != engagement.id:
                msg = "every step of an import must be for the opened engagement and its firm"
                raise ValueError(msg)
            with acting(step_ctx):
                step.run(engagement)
        try:
            self._commit(engagement)
        except IntegrityError:
            raise EngagementAlreadyExists(
                f"an engagement with id {engagement.id} already exists"
            ) from None
        return CommandResult(engagement.id, engagement.version, engagement.id)

    def _save(self, engagement: Engagement) -> None:
        if any(isinstance(e, SubjectErased) for e in engagement.pending_events):
            self._erase(engagement)
            return
        try:
            self._commit(engagement)
        except IntegrityError:
            raise self._conflict(engagement.id) from None

    def _conflict(self, engagement_id: UUID) -> ConcurrencyConflict:
        current = self._head_version(engagement_id)
        return ConcurrencyConflict(
            f"engagement {engagement_id} was changed by someone else "
            f"(now at version {current}); reload and try again",
            current_version=current,
        )

    def _commit(self, engagement: Engagement) -> None:
        """Store the engagement's new events, in one transaction with whatever other
        threads of this process are saving at the same moment (domain/groupcommit.py);
        they are encoded and sealed first, so what they hold can fail only this save."""
        self.group_commit.save(engagement.collect_events())

    def _store_together(self, prepared: list[Prepared]) -> None:
        """Store the prepared saves of several engagements in one transaction, then
        snapshot (a snapshot is an optimisation: failing to take one fails no save)."""
        assert isinstance(self.events, ChainedEventStore)
        recordings = self.events.put_prepared(prepared)
        interval = self.snapshotting_intervals[Engagement]
        for save in prepared:
            for event in save.events:
                if event.originator_version % interval == 0 and self.snapshots is not None:
                    self._snapshot(event.originator_id, event.originator_version)
        self._notify(recordings)

    def _snapshot(self, engagement_id: UUID, version: int) -> None:
        try:
            self.take_snapshot(engagement_id, version)
        except Exception as error:  # the events are stored; the next read folds them
            log.warning("no snapshot of %s at version %d: %s", engagement_id, version, error)

    # -- erasure ------------------------------------------------------------------------

    def _erase(self, engagement: Engagement) -> None:
        """Store ``SubjectErased`` on this engagement and, in the same transaction, on
        every other engagement of the same client; then finish (``_finish_erasure``).

        Either every engagement of the client records the erasure or none does: a
        concurrent command on another of them only makes this try again (that command
        lost or won its own race; an erased engagement takes no new one)."""
        mine = list(engagement.collect_events())
        erasure = next(e for e in reversed(mine) if isinstance(e, SubjectErased))
        ctx = CommandContext(
            actor_id=erasure.actor_id,
            actor_role=erasure.actor_role,
            firm_id=erasure.firm_id,
            correlation_id=erasure.correlation_id,
            causation_id=erasure.correlation_id,
        )
        for attempt in range(ERASURE_ATTEMPTS):
            others = self._erase_others(engagement, ctx)
            events = mine + [e for other in others for e in other.collect_events()]
            try:
                self.group_commit.save(events)
                break
            except IntegrityError:
                if (self._head_version(engagement.id) or 0) >= mine[0].originator_version:
                    raise self._conflict(engagement.id) from None
                if attempt == ERASURE_ATTEMPTS - 1:
                    raise ConcurrencyConflict(
                        f"the client of engagement {engagement.id} is being written to "
                        f"too busily to erase; nothing was erased, try again",
                        current_version=self._head_version(engagement.id),
                    ) from None
        self._finish_erasure(engagement)

    def _erase_others(self, engagement: Engagement, ctx: CommandContext) -> list[Engagement]:
        """The client's other engagements not yet erased, each with its erasure pending."""
        pending = []
        for other_id in self.keys.store.engagements_of(engagement.firm_id, engagement.client_id):
            if other_id == engagement.id:
                continue
            other = self._load(engagement.firm_id, other_id)
            if not other.erased:
                with acting(ctx):
                    other.erase_subject()
                pending.append(other)
        return pending

    def _finish_erasure(self, engagement: Engagement) -> None:
        """After every engagement of the client recorded its erasure: drop their
        snapshots and destroy the client's keys (crypto-shredding). If that fails the
        erasure is reported incomplete, and the same request finishes it."""
        firm_id, client_id = engagement.firm_id, engagement.client_id
        try:
            for engagement_id in self.keys.store.engagements_of(firm_id, client_id):
                self._delete_snapshots(engagement_id)
            for forget in self.erasure_hooks:
                forget(firm_id, client_id)
            self.keys.destroy(firm_id, client_id)
        except Exception as error:
            raise ErasureIncomplete(
                f"the client of engagement {engagement.id} is recorded as erased on every "
                f"engagement of theirs, but their keys could not be destroyed yet ({error}): "
                f"their personal data is still readable; send the same request again to "
                f"finish"
            ) from error

    def erasure_unfinished(self, engagement: Engagement) -> bool:
        """Whether an erased engagement's client still has a live key, or another
        engagement not yet erased (an erasure that stopped half-way)."""
        if not engagement.erased:
            return False
        store = self.keys.store
        if store.current_key(engagement.firm_id, engagement.client_id) is not None:
            return True
        return any(
            not self._load(engagement.firm_id, other_id).erased
            for other_id in store.engagements_of(engagement.firm_id, engagement.client_id)
            if other_id != engagement.id
        )

    def finish_erasure(self, ctx: CommandContext, engagement: Engagement) -> None:
        """Complete an erasure that stopped half-way: erase the client's engagements
        still unerased (one transaction), then destroy their keys."""
        for attempt in range(ERASURE_ATTEMPTS):
            others = self._erase_others(engagement, ctx)
            events = [e for other in others for e in other.collect_events()]
            if not events:
                break
            try:
                self.group_commit.save(events)
                break
            except IntegrityError:
                if attempt == ERASURE_ATTEMPTS - 1:
                    raise
        self._finish_erasure(engagement)

    @retrying
    def _delete_snapshots(self, engagement_id: UUID) -> None:
        recorder = self.snapshots.recorder if self.snapshots is not None else None
        datastore = getattr(recorder, "datastore", None)
        if recorder is None:
            return
        if datastore is None:  # in memory
            stored = getattr(recorder, "_stored_events_index", None)
            if isinstance(stored, dict):
                stored.pop(str(engagement_id), None)
            return
        table = getattr(recorder, "events_table_name", "stored_snapshots")
        with datastore.transaction(commit=True) as cursor:
            if isinstance(self.keys.store, SqlKeyStore) and self.keys.store.dialect == "postgres":
                cursor.execute(
                    f'DELETE FROM {self.keys.store.prefix}"{table}" WHERE originator_id = %s',
                    (engagement_id,),
                )
            else:
                cursor.execute(f"DELETE FROM {table} WHERE originator_id = ?", (engagement_id.hex,))

    def _heads(self, engagement_ids: set[Any]) -> dict[Any, int]:
        """The stored version of each engagement (0 if none)."""
        return {e: self._head_version(e) or 0 for e in engagement_ids}

    def _head_version(self, engagement_id: UUID) -> int | None:
        stored = self.recorder.select_events(engagement_id, desc=True, limit=1)
        return stored[0].originator_version if stored else None

    # -- reads --------------------------------------------------------------------------

    def _require_in_firm(self, firm_id: str, engagement_id: UUID) -> None:
        """Refuse another firm's engagement as "not found" before anything of it is
        read: one small query (its first stored event, not opened), exactly as for an
        engagement that does not exist, so neither answer takes longer than the other.
        Engagements found in the caller's firm are remembered (firms never change)."""
        if self._firms.get(engagement_id) == firm_id:
            return
        rows = self.recorder.select_events(engagement_id, limit=1)
        firm = firm_of_payload(split_state(rows[0].state)[1]) if rows else None
        if firm != firm_id:
            raise EngagementNotFound(f"engagement {engagement_id} not found")
        if len(self._firms) >= FIRMS_REMEMBERED:
            self._firms.clear()
        self._firms[engagement_id] = firm_id

    def _load(self, firm_id: str, engagement_id: UUID, version: int | None = None) -> Engagement:
        self._require_in_firm(firm_id, engagement_id)
        try:
            engagement: object = self.repository.get(engagement_id, version=version)
        except AggregateNotFoundError:
            raise EngagementNotFound(f"engagement {engagement_id} not found") from None
        if not isinstance(engagement, Engagement) or engagement.firm_id != firm_id:
            raise EngagementNotFound(f"engagement {engagement_id} not found")
        return engagement

    def get(self, firm_id: str, engagement_id: UUID, version: int | None = None) -> Engagement:
        """Return the engagement now, or as it was at ``version``."""
        if version is not None and version < 1:
            raise EngagementNotFound(f"engagement {engagement_id} has no version {version}")
        engagement = self._load(firm_id, engagement_id, version)
        if version is not None and engagement.version != version:
            raise EngagementNotFound(f"engagement {engagement_id} has no version {version}")
        return engagement

    def _events(self, firm_id: str, engagement_id: UUID) -> list[EngagementEvent]:
        self._require_in_firm(firm_id, engagement_id)
        events = [e for e in self.events.get(engagement_id) if isinstance(e, EngagementEvent)]
        if not events or events[0].firm_id != firm_id:
            raise EngagementNotFound(f"engagement {engagement_id} not found")
        return events

    def get_as_recorded_at(self, firm_id: str, engagement_id: UUID, at: datetime) -> Engagement:
        """Return the engagement as the store held it at recorded time ``at``."""
        events = self._events(firm_id, engagement_id)
        known = [e for e in events if e.timestamp <= at]
        if not known:
            raise EngagementNotFound(
                f"engagement {engagement_id} did not exist at {at.isoformat()}"
            )
        return self._load(firm_id, engagement_id, known[-1].originator_version)

    def get_as_occurred_by(self, firm_id: str, engagement_id: UUID, at: datetime) -> Engagement:
        """Return the engagement with everything that had happened in the world by ``at``.

        Events recorded late (occurred earlier than recorded) count from when they
        occurred. The domain refuses an event that claims to have occurred before what
        it depends on, so this subset, folded in occurred order (ties in recorded
        order), always folds, and what is "latest" in it is latest in the world: a
        rating or check-in logged late for an earlier day does not replace a later one.
        The version is the highest of the events included.
        """
        events = self._events(firm_id, engagement_id)
        included = sorted(
            (e for e in events if e.occurred_at <= at),
            key=lambda e: (e.occurred_at, e.originator_version),
        )
        if not included:
            raise EngagementNotFound(
                f"engagement {engagement_id} had not begun by {at.isoformat()}"
            )
        return fold_subset(included)

    def history(self, firm_id: str, engagement_id: UUID) -> list[HistoryEntry]:
        """Return every event of the engagement with its metadata, oldest first."""
        return [
            HistoryEntry(
                version=e.originator_version,
                event_type=type(e).__name__,
                topic=type(e).TOPIC,
                occurred_at=e.occurred_at,
                recorded_at=e.timestamp,
                metadata=e.metadata(),
                payload=e.payload(),
            )
            for e in self._events(firm_id, engagement_id)
        ]


def fold_subset(events: Iterable[EngagementEvent]) -> Engagement:
    """Fold events that need not be contiguous (the as-of-occurred view)."""
    iterator = iter(events)
    engagement: Engagement | None = next(iterator).mutate(None)
    if not isinstance(engagement, Engagement):
        msg = "the first event of a subset must open the engagement"
        raise TypeError(msg)
    for event in iterator:
        event.apply(engagement)
        if event.originator_version > engagement.version:
            engagement.version = event.originator_version
            engagement.modified_on = event.timestamp
    return engagement
