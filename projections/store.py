"""The progress read model in SQL, in generations, with exactly-once tracking.

Each generation is a table ``rm_progress_g<N>``; ``rm_generations`` names the live one,
so a rebuild can fill a new generation beside it and switch readers in one
transaction. A batch of events is folded and written together with the generation's
tracking position in ONE transaction; the position is advanced by compare-and-set, so
two runners can never apply the same event twice, and a crash anywhere leaves either
the whole batch or none of it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.event import EngagementEvent
from domain.keys import KeyRing
from projections import docseal, figures
from projections.database import DATABASE_ERRORS, Cursor, Database
from projections.progress import Doc, OutOfOrder, fold, fold_stream

log = logging.getLogger("coachlog.projections")

#: One engagement's stream from the event store, up to a version (all of it: None).
StreamReader = Callable[[str, "int | None"], Sequence[EngagementEvent]]

NAME = "progress"

_COLUMNS = (
    "engagement_id",
    "firm_id",
    "coach_id",
    "client_id",
    "sponsor_id",
    "segment",
    "status",
    "opened_at",
    "closed_at",
    "last_session_at",
    "off_track_after",
    "roi_pct",
    "version",
    "doc",
    "figures",
)


@dataclass(frozen=True)
class Positioned:
    """An event with its place in the log."""

    position: int
    event: EngagementEvent


@dataclass(frozen=True)
class Linked:
    """A record of the Kafka path: the event, and the previous position on its partition."""

    positioned: Positioned
    previous_position: int
    #: The partition count the relay hashed the key over (None: not said).
    partitions: int | None = None


@dataclass(frozen=True)
class Tracking:
    """How far a generation has folded the log."""

    position: int
    recorded_at: str | None


@dataclass(frozen=True)
class Quarantine:
    """An engagement whose events this generation stopped folding, and why."""

    engagement_id: str
    firm_id: str | None
    position: int | None
    version: int
    event_type: str
    error: str
    quarantined_at: float

    def describe(self) -> str:
        where = "" if self.position is None else f" at log position {self.position}"
        return f"{self.event_type} (version {self.version}{where}) failed: {self.error}"


class StalePosition(Exception):
    """Another runner advanced this generation first; the batch was not applied."""


def _by_position(item: Positioned) -> int:
    return item.position


def _epoch(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso).timestamp()


def row_values(doc: Doc) -> tuple[Any, ...]:
    """The indexed columns, the JSON document and the group figures of one engagement
    (money, ROI and the off-track time computed once, for the columns and the figures)."""
    group = figures.figures_of(doc)
    roi_pct = group.roi["roi_pct"]
    return (
        doc["engagement_id"],
        doc["firm_id"],
        doc["coach_id"],
        doc["client_id"],
        doc["sponsor_id"],
        doc["segment"],
        doc["status"],
        _epoch(doc["opened_at"]),
        _epoch(doc["closed_at"]),
        _epoch(doc["held_at"][-1] if doc["held_at"] else None),
        group.off_track_after,
        None if roi_pct is None else float(roi_pct),
        doc["version"],
        json.dumps(doc, sort_keys=True, separators=(",", ":")),
        figures.dumps(group),
    )


class ProgressStore:
    """SQL tables of the progress read model."""

    def __init__(
        self, db: Database, keys: KeyRing | None = None, stream: StreamReader | None = None
    ) -> None:
        """``keys``: the client keys that seal each document's personal parts at rest
        (projections/docseal.py); without them documents are stored as folded.
        ``stream``: reads one engagement's events from the event store, to fold a
        document again from its stream when an event arrives out of order; without it
        such an engagement is quarantined."""
        self.db = db
        self.keys = keys
        self.stream = stream

    def open_doc(self, stored: str) -> Doc:
        """A stored document, its personal parts unsealed."""
        return docseal.unseal(json.loads(stored), self.keys)

    @staticmethod
    def table(generation: int) -> str:
        return f"rm_progress_g{int(generation)}"

    @staticmethod
    def tracking_name(generation: int) -> str:
        return f"{NAME}_g{int(generation)}"

    def create_tables(self) -> None:
        """Create the bookkeeping tables and the live generation (1 on a new database)."""
        self.db.run_script(
            [
                "CREATE TABLE IF NOT EXISTS rm_generations (name TEXT PRIMARY KEY,"
                " live INTEGER NOT NULL, building INTEGER)",
                "CREATE TABLE IF NOT EXISTS rm_tracking (name TEXT PRIMARY KEY,"
                " position BIGINT NOT NULL, recorded_at TEXT, updated_at DOUBLE PRECISION)",
                # The Kafka path: per partition, the next offset to read and the watermark
                # (every event of the partition up to this log position is folded).
                "CREATE TABLE IF NOT EXISTS rm_kafka_partitions (generation INTEGER NOT NULL,"
                " topic TEXT NOT NULL, partition_no INTEGER NOT NULL,"
                " next_offset BIGINT NOT NULL, watermark BIGINT NOT NULL, recorded_at TEXT,"
                " PRIMARY KEY (generation, topic, partition_no))",
                # Engagements a generation stopped folding: the event that failed and why.
                "CREATE TABLE IF NOT EXISTS rm_quarantine (generation INTEGER NOT NULL,"
                " engagement_id TEXT NOT NULL, firm_id TEXT, position BIGINT,"
                " version INTEGER NOT NULL, event_type TEXT NOT NULL, error TEXT NOT NULL,"
                " quarantined_at DOUBLE PRECISION NOT NULL,"
                " PRIMARY KEY (generation, engagement_id))",
                # Kafka projector instances: what each owns and when it last progressed.
                "CREATE TABLE IF NOT EXISTS rm_projector_instances (instance TEXT PRIMARY KEY,"
                " topic TEXT NOT NULL, group_id TEXT NOT NULL, host TEXT, pid INTEGER,"
                " assigned TEXT NOT NULL, partitions INTEGER, last_progress_at DOUBLE PRECISION,"
                " last_seen_at DOUBLE PRECISION NOT NULL)",
            ]
        )
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO rm_generations (name, live) VALUES (%s, 1) ON CONFLICT DO NOTHING",
                (NAME,),
            )
        self._add_column("rm_kafka_partitions", "partition_count", "INTEGER")
        self.create_generation(self.live_generation())

    def create_generation(self, generation: int) -> None:
        """Create a generation's table, indexes and tracking row (idempotent)."""
        t = self.table(generation)
        self.db.run_script(
            [
                f"CREATE TABLE IF NOT EXISTS {t} (engagement_id TEXT PRIMARY KEY,"
                " firm_id TEXT NOT NULL, coach_id TEXT NOT NULL, client_id TEXT NOT NULL,"
                " sponsor_id TEXT, segment TEXT NOT NULL, status TEXT NOT NULL,"
                " opened_at DOUBLE PRECISION NOT NULL, closed_at DOUBLE PRECISION,"
                " last_session_at DOUBLE PRECISION, off_track_after DOUBLE PRECISION,"
                " roi_pct DOUBLE PRECISION, version INTEGER NOT NULL, doc TEXT NOT NULL,"
                " figures TEXT)",
                f"CREATE INDEX IF NOT EXISTS {t}_firm_opened ON {t} (firm_id, opened_at)",
                f"CREATE INDEX IF NOT EXISTS {t}_firm_coach ON {t} (firm_id, coach_id)",
                f"CREATE INDEX IF NOT EXISTS {t}_firm_status ON {t} (firm_id, status)",
                f"CREATE INDEX IF NOT EXISTS {t}_firm_segment ON {t} (firm_id, segment)",
                f"CREATE INDEX IF NOT EXISTS {t}_firm_client ON {t} (firm_id, client_id)",
                f"CREATE INDEX IF NOT EXISTS {t}_firm_sponsor ON {t} (firm_id, sponsor_id)",
                f"CREATE INDEX IF NOT EXISTS {t}_firm_off_track ON {t} (firm_id, off_track_after)",
            ]
        )
        self._add_column(t, "figures", "TEXT")
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO rm_tracking (name, position, recorded_at, updated_at)"
                " VALUES (%s, 0, NULL, NULL) ON CONFLICT DO NOTHING",
                (self.tracking_name(generation),),
            )

    def _add_column(self, table: str, column: str, kind: str) -> None:
        """A table made before a column existed gets it (NULL in the rows written
        before: figures are then computed from their document when read, a partition
        count is taken to be the topic's)."""
        with self.db.transaction() as cur:
            if self.db.dialect == "postgres":
                cur.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
                return
            cur.execute(f"SELECT name FROM pragma_table_info('{table}')")
            if column not in {row[0] for row in cur.fetchall()}:
                cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def drop_generation(self, generation: int) -> None:
        """Drop a generation's table and tracking row."""
        with self.db.transaction() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.table(generation)}")
            cur.execute(
                "DELETE FROM rm_tracking WHERE name = %s", (self.tracking_name(generation),)
            )
            cur.execute("DELETE FROM rm_quarantine WHERE generation = %s", (generation,))
            cur.execute("DELETE FROM rm_kafka_partitions WHERE generation = %s", (generation,))

    # -- generations ----------------------------------------------------------------------

    def live_generation(self, cur: Cursor | None = None) -> int:
        """The generation readers use now."""
        if cur is None:
            with self.db.transaction() as own:
                return self.live_generation(own)
        cur.execute("SELECT live FROM rm_generations WHERE name = %s", (NAME,))
        row = cur.fetchone()
        return 1 if row is None else int(row[0])

    def building_generation(self) -> int | None:
        """The generation a rebuild is filling, if one is under way."""
        with self.db.transaction() as cur:
            cur.execute("SELECT building FROM rm_generations WHERE name = %s", (NAME,))
            row = cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def set_building(self, generation: int | None) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE rm_generations SET building = %s WHERE name = %s", (generation, NAME)
            )

    def switch_live(self, generation: int) -> int:
        """Make ``generation`` the live one (atomically); return the previous one."""
        with self.db.transaction() as cur:
            previous = self.live_generation(cur)
            cur.execute(
                "UPDATE rm_generations SET live = %s, building = NULL WHERE name = %s",
                (generation, NAME),
            )
        return previous

    # -- tracking and writes --------------------------------------------------------------

    def tracking(self, generation: int, cur: Cursor | None = None) -> Tracking:
        """The position and recorded time a generation reflects."""
        if cur is None:
            with self.db.transaction() as own:
                return self.tracking(generation, own)
        cur.execute(
            "SELECT position, recorded_at FROM rm_tracking WHERE name = %s",
            (self.tracking_name(generation),),
        )
        row = cur.fetchone()
        return Tracking(0, None) if row is None else Tracking(int(row[0]), row[1])

    def apply(self, generation: int, batch: Sequence[Positioned], *, expected: int) -> int:
        """Fold ``batch`` (positions after ``expected``) into ``generation`` atomically.

        Returns the new position. Raises StalePosition (and writes nothing) if the
        generation is no longer at ``expected``.
        """
        todo = [p for p in batch if p.position > expected]
        if not todo:
            return expected
        with self.db.transaction() as cur:
            if self.db.dialect == "postgres":
                cur.execute(
                    "SELECT position FROM rm_tracking WHERE name = %s FOR UPDATE",
                    (self.tracking_name(generation),),
                )
            self._fold_into(cur, generation, todo)
            last = todo[-1]
            cur.execute(
                "UPDATE rm_tracking SET position = %s, recorded_at = %s, updated_at = %s"
                " WHERE name = %s AND position = %s",
                (
                    last.position,
                    last.event.timestamp.isoformat(),
                    datetime.now().timestamp(),
                    self.tracking_name(generation),
                    expected,
                ),
            )
            if cur.rowcount != 1:
                raise StalePosition(f"{self.tracking_name(generation)} moved past {expected}")
        return last.position

    def _load(self, cur: Cursor, table: str, ids: Sequence[str]) -> dict[str, Doc]:
        docs: dict[str, Doc] = {}
        # Locked: two writers (Kafka projectors during a rebalance) never interleave a
        # read-fold-write of the same document.
        suffix = " FOR UPDATE" if self.db.dialect == "postgres" else ""
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join(["%s"] * len(chunk))
            cur.execute(
                f"SELECT engagement_id, doc FROM {table} WHERE engagement_id IN ({marks}){suffix}",
                chunk,
            )
            docs.update({row[0]: self.open_doc(row[1]) for row in cur.fetchall()})
        return docs

    def _upsert(self, cur: Cursor, table: str, docs: Any) -> None:
        columns = ", ".join(_COLUMNS)
        marks = ", ".join(["%s"] * len(_COLUMNS))
        updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
        statement = (
            f"INSERT INTO {table} ({columns}) VALUES ({marks})"
            f" ON CONFLICT (engagement_id) DO UPDATE SET {updates}"
        )
        for doc in docs:
            cur.execute(statement, row_values(docseal.seal(doc, self.keys)))

    def apply_partition(
        self,
        generation: int,
        topic: str,
        partition: int,
        chain: Sequence[Linked],
        next_offset: int,
        heal: Callable[[int, int], Sequence[Positioned]],
        partitions: int,
    ) -> int:
        """Fold one partition's records (the Kafka path) in one transaction.

        ``chain`` items carry their log position and the position of the previous event
        sent to the partition. Anything at or below the partition's watermark is a
        duplicate; a link that points past the watermark means records were lost, and
        ``heal(after, upto)`` supplies them from the event store first. The docs, the
        next offset and the watermark commit together. Returns the new watermark.
        """
        with self.db.transaction() as cur:
            watermark, recorded_at = self._partition_row(
                cur, generation, topic, partition, partitions
            )
            todo: list[Positioned] = []
            loose: list[Positioned] = []
            for link in chain:
                if link.partitions is not None and link.partitions != partitions:
                    # Sent under another partition count: its event is folded (in
                    # stream order, like any other), but its link and position say
                    # nothing about this partition; the sweep closes what it lacks.
                    loose.append(link.positioned)
                    continue
                if link.positioned.position <= watermark:
                    continue
                if link.previous_position > watermark:
                    todo.extend(heal(watermark, link.previous_position))
                todo.append(link.positioned)
                watermark = link.positioned.position
                recorded_at = link.positioned.event.timestamp.isoformat()
            if todo or loose:
                self._fold_into(cur, generation, sorted(loose + todo, key=_by_position))
            cur.execute(
                "UPDATE rm_kafka_partitions SET next_offset = %s, watermark = %s,"
                " recorded_at = %s, partition_count = %s"
                " WHERE generation = %s AND topic = %s AND partition_no = %s",
                (next_offset, watermark, recorded_at, partitions, generation, topic, partition),
            )
            self._publish_low_watermark(cur, generation, topic, partitions)
        return watermark

    def sweep_partition(
        self,
        generation: int,
        topic: str,
        partition: int,
        head: int,
        heal: Callable[[int, int], Sequence[Positioned]],
        partitions: int,
    ) -> int:
        """Fold from the store whatever of this partition is missing up to ``head``."""
        with self.db.transaction() as cur:
            watermark, recorded_at = self._partition_row(
                cur, generation, topic, partition, partitions
            )
            if head <= watermark:
                return watermark
            todo = list(heal(watermark, head))
            if todo:
                self._fold_into(cur, generation, todo)
                recorded_at = todo[-1].event.timestamp.isoformat()
            cur.execute(
                "UPDATE rm_kafka_partitions SET watermark = %s, recorded_at = %s"
                " WHERE generation = %s AND topic = %s AND partition_no = %s",
                (head, recorded_at, generation, topic, partition),
            )
            self._publish_low_watermark(cur, generation, topic, partitions)
        return head

    def align_partitions(self, generation: int, topic: str, partitions: int) -> bool:
        """Make the partition state match a topic of ``partitions`` partitions; return
        whether it had been kept under another count.

        Watermarks are per partition, and which partition an engagement's events are on
        depends on the count: state kept under another count means nothing under this
        one. It is then re-keyed: every partition of the new count starts at the lowest
        watermark of the old state (every event up to it is folded, whatever its
        partition), reading its topic from offset 0 (duplicates are skipped, the chain
        links heal the rest from the store), and the rows of vanished partitions go.
        """
        with self.db.transaction() as cur:
            lock = " FOR UPDATE" if self.db.dialect == "postgres" else ""
            cur.execute(
                f"SELECT position FROM rm_tracking WHERE name = %s{lock}",
                (self.tracking_name(generation),),
            )
            cur.execute(
                "SELECT partition_no, watermark, recorded_at, partition_count"
                " FROM rm_kafka_partitions WHERE generation = %s AND topic = %s",
                (generation, topic),
            )
            rows = cur.fetchall()
            if all(
                int(p) < partitions and (c is None or int(c) == partitions) for p, _, _, c in rows
            ):
                cur.execute(
                    "UPDATE rm_kafka_partitions SET partition_count = %s"
                    " WHERE generation = %s AND topic = %s AND partition_count IS NULL",
                    (partitions, generation, topic),
                )
                return False
            tracked = self.tracking(generation, cur)
            low, recorded_at = tracked.position, tracked.recorded_at
            for _, watermark, at, _ in rows:
                if int(watermark) < low:
                    low, recorded_at = int(watermark), at
            before = [str(c) for c in sorted({int(c) for *_, c in rows if c is not None})] or ["?"]
            log.error(
                "topic %s has %d partitions, its state here was kept under %s: re-keyed"
                " from position %d, healing from the event store",
                topic,
                partitions,
                "/".join(before),
                low,
            )
            cur.execute(
                "DELETE FROM rm_kafka_partitions WHERE generation = %s AND topic = %s",
                (generation, topic),
            )
            for partition in range(partitions):
                cur.execute(
                    "INSERT INTO rm_kafka_partitions (generation, topic, partition_no,"
                    " next_offset, watermark, recorded_at, partition_count)"
                    " VALUES (%s, %s, %s, 0, %s, %s, %s)",
                    (generation, topic, partition, low, recorded_at, partitions),
                )
            return True

    def partition_offsets(self, generation: int, topic: str) -> dict[int, tuple[int, int]]:
        """Next offset and watermark of every partition this generation has tracked."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT partition_no, next_offset, watermark FROM rm_kafka_partitions"
                " WHERE generation = %s AND topic = %s",
                (generation, topic),
            )
            return {int(p): (int(o), int(w)) for p, o, w in cur.fetchall()}

    def _partition_row(
        self,
        cur: Cursor,
        generation: int,
        topic: str,
        partition: int,
        partitions: int | None = None,
    ) -> tuple[int, str | None]:
        lock = " FOR UPDATE" if self.db.dialect == "postgres" else ""
        query = (
            "SELECT watermark, recorded_at FROM rm_kafka_partitions"
            " WHERE generation = %s AND topic = %s AND partition_no = %s" + lock
        )
        cur.execute(query, (generation, topic, partition))
        row = cur.fetchone()
        if row is not None:
            return int(row[0]), row[1]
        # A partition first seen by this generation starts where the generation is:
        # everything up to its tracked position (e.g. after a rebuild) is folded.
        tracked = self.tracking(generation, cur)
        cur.execute(
            "INSERT INTO rm_kafka_partitions (generation, topic, partition_no, next_offset,"
            " watermark, recorded_at, partition_count) VALUES (%s, %s, %s, 0, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (generation, topic, partition, tracked.position, tracked.recorded_at, partitions),
        )
        cur.execute(query, (generation, topic, partition))
        row = cur.fetchone()
        return int(row[0]), row[1]

    def _fold_into(self, cur: Cursor, generation: int, todo: Sequence[Positioned]) -> None:
        """Load the documents the events touch (locked on PostgreSQL), fold, upsert.

        Each engagement is folded on its own: an event that arrives out of order makes
        its document fold again from the stream in the event store; an event that
        cannot be folded quarantines its engagement (recorded in ``rm_quarantine``, in
        this transaction) and leaves its document as it was, while every other
        engagement goes on. Events of a quarantined engagement are skipped until
        ``retry`` folds it again.
        """
        table = self.table(generation)
        grouped: dict[str, list[Positioned]] = {}
        for item in todo:
            grouped.setdefault(str(item.event.originator_id), []).append(item)
        ids = sorted(grouped)
        held = self._quarantined_ids(cur, generation, ids)
        if self.keys is not None:
            self.keys.prefetch(
                p.event.originator_id for p in todo if str(p.event.originator_id) not in held
            )
        docs = self._load(cur, table, [i for i in ids if i not in held])
        changed: list[Doc] = []
        for key in ids:
            if key in held:
                continue
            doc = docs.get(key)
            item = grouped[key][0]
            try:
                for item in grouped[key]:
                    doc = self._fold_one(doc, item)
            except DATABASE_ERRORS:
                raise  # the database, not the data: the whole batch is tried again
            except Exception as error:
                self._quarantine(cur, generation, item, error)
                continue
            if doc is not None:
                changed.append(doc)
        self._upsert(cur, table, changed)

    def _fold_one(self, doc: Doc | None, item: Positioned) -> Doc | None:
        try:
            return fold(doc, item.event)
        except OutOfOrder as gap:
            if self.stream is None:
                raise
            log.info("%s; folding it again from the event store", gap)
            events = self.stream(gap.engagement_id, item.event.originator_version)
            return fold_stream(events)

    def _quarantined_ids(self, cur: Cursor, generation: int, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        # Shared lock: a retry of one of them (which locks its row) finishes first.
        suffix = " FOR SHARE" if self.db.dialect == "postgres" else ""
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join(["%s"] * len(chunk))
            cur.execute(
                "SELECT engagement_id FROM rm_quarantine WHERE generation = %s"
                f" AND engagement_id IN ({marks}){suffix}",
                (generation, *chunk),
            )
            found.update(row[0] for row in cur.fetchall())
        return found

    def _quarantine(
        self,
        cur: Cursor,
        generation: int,
        item: Positioned | None,
        error: Exception,
        *,
        engagement_id: str | None = None,
        event: EngagementEvent | None = None,
    ) -> None:
        event = event if event is not None else (item.event if item is not None else None)
        assert event is not None
        key = engagement_id or str(event.originator_id)
        text = f"{type(error).__name__}: {error}"[:2000]
        log.error(
            "engagement %s quarantined: %s (version %d, position %s) failed: %s",
            key,
            type(event).__name__,
            event.originator_version,
            None if item is None else item.position,
            text,
        )
        cur.execute(
            "INSERT INTO rm_quarantine (generation, engagement_id, firm_id, position, version,"
            " event_type, error, quarantined_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (generation, engagement_id) DO UPDATE SET position = excluded.position,"
            " version = excluded.version, event_type = excluded.event_type,"
            " error = excluded.error, quarantined_at = excluded.quarantined_at",
            (
                generation,
                key,
                getattr(event, "firm_id", None),
                None if item is None else item.position,
                event.originator_version,
                type(event).__name__,
                text,
                time.time(),
            ),
        )

    # -- quarantine -----------------------------------------------------------------------

    def count_quarantined(self, generation: int, cur: Cursor) -> int:
        """How many engagements a generation holds in quarantine."""
        cur.execute("SELECT COUNT(*) FROM rm_quarantine WHERE generation = %s", (generation,))
        row = cur.fetchone()
        return 0 if row is None else int(row[0])

    def quarantined(self, generation: int | None = None) -> list[Quarantine]:
        """The engagements a generation (the live one by default) holds in quarantine."""
        with self.db.read() as cur:
            if generation is None:
                generation = self.live_generation(cur)
            cur.execute(
                "SELECT engagement_id, firm_id, position, version, event_type, error,"
                " quarantined_at FROM rm_quarantine WHERE generation = %s"
                " ORDER BY quarantined_at, engagement_id",
                (generation,),
            )
            return [
                Quarantine(
                    r[0],
                    r[1],
                    None if r[2] is None else int(r[2]),
                    int(r[3]),
                    r[4],
                    r[5],
                    float(r[6]),
                )
                for r in cur.fetchall()
            ]

    def retry(
        self, generation: int | None = None, only: Sequence[str] = ()
    ) -> tuple[list[str], list[Quarantine]]:
        """Fold each quarantined engagement again from its whole stream in the event
        store (after a fix); return the ones released and the ones still failing."""
        if self.stream is None:
            msg = "retry needs the event store (a stream reader)"
            raise RuntimeError(msg)
        if generation is None:
            generation = self.live_generation()
        released: list[str] = []
        for entry in self.quarantined(generation):
            if only and entry.engagement_id not in only:
                continue
            with self.db.transaction() as cur:
                lock = " FOR UPDATE" if self.db.dialect == "postgres" else ""
                cur.execute(
                    "SELECT position FROM rm_quarantine WHERE generation = %s"
                    f" AND engagement_id = %s{lock}",
                    (generation, entry.engagement_id),
                )
                if cur.fetchone() is None:
                    continue  # released meanwhile
                events = self.stream(entry.engagement_id, None)
                doc: Doc | None = None
                failed: tuple[EngagementEvent, Exception] | None = None
                for event in events:
                    try:
                        doc = fold(doc, event)
                    except Exception as problem:
                        failed = (event, problem)
                        break
                if failed is not None:
                    event, cause = failed
                    same = event.originator_version == entry.version
                    position = entry.position if same else None
                    self._quarantine(
                        cur,
                        generation,
                        None if position is None else Positioned(position, event),
                        cause,
                        event=event,
                    )
                    continue
                if doc is not None:
                    self._upsert(cur, self.table(generation), [doc])
                cur.execute(
                    "DELETE FROM rm_quarantine WHERE generation = %s AND engagement_id = %s",
                    (generation, entry.engagement_id),
                )
                log.info("engagement %s released from quarantine", entry.engagement_id)
                released.append(entry.engagement_id)
        still = [q for q in self.quarantined(generation) if not only or q.engagement_id in only]
        return released, still

    def _publish_low_watermark(
        self, cur: Cursor, generation: int, topic: str, partitions: int
    ) -> None:
        """Freshness on the Kafka path: every event up to the lowest partition watermark
        is folded, once every partition has been seen."""
        cur.execute(
            "SELECT watermark, recorded_at FROM rm_kafka_partitions"
            " WHERE generation = %s AND topic = %s AND partition_no < %s ORDER BY watermark ASC",
            (generation, topic, partitions),
        )
        rows = cur.fetchall()
        if len(rows) < partitions:
            return
        cur.execute(
            "UPDATE rm_tracking SET position = %s, recorded_at = %s, updated_at = %s"
            " WHERE name = %s AND position < %s",
            (
                rows[0][0],
                rows[0][1],
                datetime.now().timestamp(),
                self.tracking_name(generation),
                rows[0][0],
            ),
        )

    # -- reads ----------------------------------------------------------------------------

    def all_docs(self, generation: int) -> dict[str, Doc]:
        """Every document of a generation (for comparisons and tests)."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT engagement_id, doc FROM {self.table(generation)}")
            return {row[0]: self.open_doc(row[1]) for row in cur.fetchall()}
