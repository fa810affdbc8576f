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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.event import EngagementEvent
from domain.keys import KeyRing
from projections import docseal, figures
from projections.database import Cursor, Database
from projections.progress import Doc, fold

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


@dataclass(frozen=True)
class Tracking:
    """How far a generation has folded the log."""

    position: int
    recorded_at: str | None


class StalePosition(Exception):
    """Another runner advanced this generation first; the batch was not applied."""


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

    def __init__(self, db: Database, keys: KeyRing | None = None) -> None:
        """``keys``: the client keys that seal each document's personal parts at rest
        (projections/docseal.py); without them documents are stored as folded."""
        self.db = db
        self.keys = keys

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
            ]
        )
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO rm_generations (name, live) VALUES (%s, 1) ON CONFLICT DO NOTHING",
                (NAME,),
            )
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
        self._add_figures_column(t)
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO rm_tracking (name, position, recorded_at, updated_at)"
                " VALUES (%s, 0, NULL, NULL) ON CONFLICT DO NOTHING",
                (self.tracking_name(generation),),
            )

    def _add_figures_column(self, table: str) -> None:
        """A table made before the figures column existed gets it (rows written before
        keep NULL there and are computed from their document when read)."""
        with self.db.transaction() as cur:
            if self.db.dialect == "postgres":
                cur.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS figures TEXT")
                return
            cur.execute(f"SELECT name FROM pragma_table_info('{table}')")
            if "figures" not in {row[0] for row in cur.fetchall()}:
                cur.execute(f"ALTER TABLE {table} ADD COLUMN figures TEXT")

    def drop_generation(self, generation: int) -> None:
        """Drop a generation's table and tracking row."""
        with self.db.transaction() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.table(generation)}")
            cur.execute(
                "DELETE FROM rm_tracking WHERE name = %s", (self.tracking_name(generation),)
            )

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
        t = self.table(generation)
        with self.db.transaction() as cur:
            if self.db.dialect == "postgres":
                cur.execute(
                    "SELECT position FROM rm_tracking WHERE name = %s FOR UPDATE",
                    (self.tracking_name(generation),),
                )
            self._fold_into(cur, t, todo)
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
        t = self.table(generation)
        with self.db.transaction() as cur:
            watermark, recorded_at = self._partition_row(cur, generation, topic, partition)
            todo: list[Positioned] = []
            for link in chain:
                if link.positioned.position <= watermark:
                    continue
                if link.previous_position > watermark:
                    todo.extend(heal(watermark, link.previous_position))
                todo.append(link.positioned)
                watermark = link.positioned.position
                recorded_at = link.positioned.event.timestamp.isoformat()
            if todo:
                self._fold_into(cur, t, todo)
            cur.execute(
                "UPDATE rm_kafka_partitions SET next_offset = %s, watermark = %s,"
                " recorded_at = %s WHERE generation = %s AND topic = %s AND partition_no = %s",
                (next_offset, watermark, recorded_at, generation, topic, partition),
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
            watermark, recorded_at = self._partition_row(cur, generation, topic, partition)
            if head <= watermark:
                return watermark
            todo = list(heal(watermark, head))
            if todo:
                self._fold_into(cur, self.table(generation), todo)
                recorded_at = todo[-1].event.timestamp.isoformat()
            cur.execute(
                "UPDATE rm_kafka_partitions SET watermark = %s, recorded_at = %s"
                " WHERE generation = %s AND topic = %s AND partition_no = %s",
                (head, recorded_at, generation, topic, partition),
            )
            self._publish_low_watermark(cur, generation, topic, partitions)
        return head

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
        self, cur: Cursor, generation: int, topic: str, partition: int
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
            " watermark, recorded_at) VALUES (%s, %s, %s, 0, %s, %s) ON CONFLICT DO NOTHING",
            (generation, topic, partition, tracked.position, tracked.recorded_at),
        )
        cur.execute(query, (generation, topic, partition))
        row = cur.fetchone()
        return int(row[0]), row[1]

    def _fold_into(self, cur: Cursor, table: str, todo: Sequence[Positioned]) -> None:
        """Load the documents the events touch (locked on PostgreSQL), fold, upsert."""
        ids = sorted({str(p.event.originator_id) for p in todo})
        if self.keys is not None:
            self.keys.prefetch(p.event.originator_id for p in todo)
        docs = self._load(cur, table, ids)
        for item in todo:
            key = str(item.event.originator_id)
            folded = fold(docs.get(key), item.event)
            if folded is not None:
                docs[key] = folded
        self._upsert(cur, table, docs.values())

    def _publish_low_watermark(
        self, cur: Cursor, generation: int, topic: str, partitions: int
    ) -> None:
        """Freshness on the Kafka path: every event up to the lowest partition watermark
        is folded, once every partition has been seen."""
        cur.execute(
            "SELECT watermark, recorded_at FROM rm_kafka_partitions"
            " WHERE generation = %s AND topic = %s ORDER BY watermark ASC",
            (generation, topic),
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
