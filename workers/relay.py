"""The relay: publish the event store's notification log to Kafka, in order, at least once.

It reads the log after its tracked position in batches, sends each event to the
engagement's partition (key = engagement id) with an idempotent producer and
``acks=all``, waits until the broker acknowledged every record of the batch, and only
then saves its position — together with the last position sent to each partition,
which every message carries as its chain link. A crash before the save re-sends the
batch (consumers skip the duplicates); nothing is ever skipped.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from domain.application import Engagements
from domain.event import EngagementEvent
from domain.storage import SealingMapper
from projections.database import Database
from workers.codec import encode, partition_for
from workers.settings import KafkaSettings

log = logging.getLogger("coachlog.relay")

#: The longest pause between attempts while the broker is away (seconds): a broker that
#: is back is used again within this.
BROKER_BACKOFF = 2.0

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS relay_tracking (name TEXT PRIMARY KEY,"
    " position BIGINT NOT NULL, updated_at DOUBLE PRECISION)",
    "CREATE TABLE IF NOT EXISTS relay_partitions (name TEXT NOT NULL, topic TEXT NOT NULL,"
    " partition_no INTEGER NOT NULL, last_position BIGINT NOT NULL,"
    " PRIMARY KEY (name, topic, partition_no))",
    # The partition count the chain links were kept under (a newer column).
    "ALTER TABLE relay_partitions ADD COLUMN IF NOT EXISTS partition_count INTEGER",
]

#: The same for SQLite, which lacks ADD COLUMN IF NOT EXISTS.
SQLITE_SCHEMA = [*SCHEMA[:2]]


def create_schema(db: Database) -> None:
    """The relay's tables (idempotent, also on a database made by an older release)."""
    if db.dialect == "postgres":
        db.run_script(SCHEMA)
        return
    db.run_script(SQLITE_SCHEMA)
    with db.transaction() as cur:
        cur.execute("SELECT name FROM pragma_table_info('relay_partitions')")
        if "partition_count" not in {row[0] for row in cur.fetchall()}:
            cur.execute("ALTER TABLE relay_partitions ADD COLUMN partition_count INTEGER")


def ensure_topic(settings: KafkaSettings) -> bool:
    """Create the topic with the configured partitions if the broker lacks it; return
    whether it had to."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap,
        request_timeout_ms=10_000,
        reconnect_backoff_max_ms=1000,
    )
    try:
        if settings.topic in admin.list_topics():
            return False
        admin.create_topics(
            [
                NewTopic(
                    settings.topic,
                    num_partitions=settings.partitions,
                    replication_factor=settings.replication,
                )
            ]
        )
        log.info("created topic %s with %d partitions", settings.topic, settings.partitions)
        return True
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()


class Relay:
    """Publishes every engagement event of the store to Kafka."""

    def __init__(
        self,
        engagements: Engagements,
        db: Database,
        settings: KafkaSettings,
        *,
        name: str = "relay",
        batch_size: int = 500,
        poll_interval: float = 0.2,
    ) -> None:
        self.engagements = engagements
        # Never opens a sealed field: messages carry the stored ciphertext as it is.
        mapper = engagements.mapper
        self.mapper = (
            mapper.reading_only(frozenset()) if isinstance(mapper, SealingMapper) else mapper
        )
        self.db = db
        self.settings = settings
        self.name = name
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._producer: KafkaProducer | None = None
        self._stop = threading.Event()
        self.published = 0
        self._warned: int | None = None

    def create_tables(self) -> None:
        create_schema(self.db)
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO relay_tracking (name, position, updated_at) VALUES (%s, 0, NULL)"
                " ON CONFLICT DO NOTHING",
                (self.name,),
            )

    def position(self) -> int:
        """The last log position the broker acknowledged."""
        with self.db.transaction() as cur:
            cur.execute("SELECT position FROM relay_tracking WHERE name = %s", (self.name,))
            row = cur.fetchone()
        return 0 if row is None else int(row[0])

    def _chain(self, partitions: int, position: int) -> dict[int, int]:
        """The last position sent to each partition, as kept under ``partitions``.

        Kept under another count, the links mean nothing (keys hash to other
        partitions): every partition's chain then starts at the relay's position, so
        the first record of each tells consumers that all before it must come from the
        store."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT partition_no, last_position, partition_count FROM relay_partitions"
                " WHERE name = %s AND topic = %s",
                (self.name, self.settings.topic),
            )
            rows = cur.fetchall()
        counts = {int(c) for _, _, c in rows if c is not None}
        if all(int(p) < partitions for p, _, _ in rows) and counts <= {partitions}:
            return {int(p): int(pos) for p, pos, _ in rows}
        log.error(
            "topic %s has %d partitions, the relay's chain was kept under %s:"
            " starting every partition's chain again at position %d",
            self.settings.topic,
            partitions,
            "/".join(str(c) for c in sorted(counts)) or "another count",
            position,
        )
        return dict.fromkeys(range(partitions), position)

    def producer(self) -> KafkaProducer:
        if self._producer is None:
            ensure_topic(self.settings)
            self._producer = KafkaProducer(
                bootstrap_servers=self.settings.bootstrap,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                compression_type="gzip",
                max_in_flight_requests_per_connection=5,
                request_timeout_ms=15_000,
                delivery_timeout_ms=30_000,
                # back at work within 2 s of the broker's return (the client waits up
                # to 30 s between attempts by default)
                reconnect_backoff_max_ms=int(BROKER_BACKOFF * 1000),
                # notice partitions added to the topic within seconds (default 5 min)
                metadata_max_age_ms=5_000,
            )
        return self._producer

    def _reset_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:
                log.debug("closing the producer failed", exc_info=True)
        self._producer = None

    def run_once(self) -> int:
        """Publish one batch after the tracked position; return how many events."""
        start = self.position()
        notifications = self.engagements.recorder.select_notifications(
            start=start, limit=self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0
        producer = self.producer()
        # The topic's real partition count decides where keys go (it may predate our
        # setting, and some brokers cannot add partitions); projectors read it the same way.
        partitions = len(producer.partitions_for(self.settings.topic))
        if partitions != self.settings.partitions and partitions != self._warned:
            self._warned = partitions
            log.error(
                "topic %s has %d partitions, COACHLOG_KAFKA_PARTITIONS says %d: keys are"
                " hashed over the topic's count",
                self.settings.topic,
                partitions,
                self.settings.partitions,
            )
        chain = self._chain(partitions, start)
        futures = []
        for notification in notifications:
            event = self.mapper.to_domain_event(notification)
            if not isinstance(event, EngagementEvent):
                continue
            partition = partition_for(event.originator_id, partitions)
            message = encode(event, notification.id, chain.get(partition, 0), partitions)
            chain[partition] = notification.id
            futures.append(
                producer.send(
                    self.settings.topic,
                    key=message.key,
                    value=message.value,
                    headers=message.headers,
                    partition=message.partition,
                )
            )
        self._flush(producer)
        for future in futures:
            future.get(timeout=30)  # raises if the broker did not acknowledge
        last = notifications[-1].id
        self._save(start, last, chain, partitions)
        self.published += len(futures)
        return len(notifications)

    def _flush(self, producer: KafkaProducer, timeout: float = 30.0) -> None:
        """Wait until every record sent is acknowledged or failed. While that takes, look
        every few seconds whether the topic still exists: a broker that lost its data
        has none, and the producer would retry into it until its delivery timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                producer.flush(timeout=5)
                return
            except KafkaTimeoutError:
                if ensure_topic(self.settings) or time.monotonic() > deadline:
                    raise  # start again with a new producer (and from the saved position)

    def _save(self, start: int, last: int, chain: dict[int, int], partitions: int) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE relay_tracking SET position = %s, updated_at = %s"
                " WHERE name = %s AND position = %s",
                (last, time.time(), self.name, start),
            )
            if cur.rowcount != 1:
                msg = f"relay {self.name} moved past {start}: is another relay running?"
                raise RuntimeError(msg)
            cur.execute(
                "DELETE FROM relay_partitions WHERE name = %s AND topic = %s"
                " AND (partition_no >= %s OR partition_count IS NULL OR partition_count <> %s)",
                (self.name, self.settings.topic, partitions, partitions),
            )
            for partition, position in chain.items():
                cur.execute(
                    "INSERT INTO relay_partitions (name, topic, partition_no, last_position,"
                    " partition_count) VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (name, topic, partition_no) DO UPDATE SET"
                    " last_position = excluded.last_position,"
                    " partition_count = excluded.partition_count",
                    (self.name, self.settings.topic, partition, position, partitions),
                )

    def stop(self) -> None:
        """Finish the batch under way, then stop."""
        self._stop.set()

    def run_forever(self) -> None:
        """Publish as the log grows; on any failure, back off and resume from tracking."""
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if self.run_once() == 0:
                    self._stop.wait(self.poll_interval)
                backoff = 0.5
            except (KafkaError, OSError) as error:
                log.warning("broker trouble (%s); retrying in %.1fs", error, backoff)
                self._reset_producer()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BROKER_BACKOFF)
            except Exception:
                log.exception("relay batch failed; retrying in %.1fs", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10)
        self._reset_producer()
