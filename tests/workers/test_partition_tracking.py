"""ProgressStore.apply_partition and sweep_partition (the Kafka path) on PostgreSQL:
duplicates are skipped, a broken chain link heals exactly what is missing, and the
result is always the one-pass fold."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest

from coachlog.seed import seed_firm
from coachlog.settings import Settings
from projections.progress import Doc
from projections.store import Linked, Positioned
from tests.workers.conftest import Store, one_pass
from workers.codec import partition_for
from workers.projector import KafkaProjector
from workers.settings import KafkaSettings

TOPIC = "t-unit"
PARTITIONS = 3
TODAY = datetime(2026, 10, 1, 18, tzinfo=UTC)


@pytest.fixture
def store(postgres_url: str, pg_schema: str) -> Iterator[Store]:
    opened = Store(Settings(database_url=postgres_url, database_schema=pg_schema))
    seed_firm(opened.app, seed=5, engagements=9, today=TODAY, firm_id="firm-unit")
    try:
        yield opened
    finally:
        opened.close()


class Healer:
    """The projector's heal from the store, recording every call."""

    def __init__(self, store: Store, partition: int) -> None:
        self.projector = KafkaProjector(
            store.app, store.progress, KafkaSettings(topic=TOPIC, partitions=PARTITIONS)
        )
        self.partition = partition
        self.calls: list[tuple[int, int, list[int]]] = []

    def __call__(self, after: int, upto: int) -> Sequence[Positioned]:
        found = self.projector.heal(self.partition, after, upto)
        self.calls.append((after, upto, [p.position for p in found]))
        return found


def chain_of(log: Sequence[Positioned], partition: int) -> list[Linked]:
    """What the relay sends to ``partition``: each record linked to the previous one."""
    linked, previous = [], 0
    for item in log:
        if partition_for(item.event.originator_id, PARTITIONS) == partition:
            linked.append(Linked(item, previous))
            previous = item.position
    return linked


def docs_of_partition(docs: dict[str, Doc], partition: int) -> dict[str, Doc]:
    return {k: v for k, v in docs.items() if partition_for(k, PARTITIONS) == partition}


def fold_of(log: Sequence[Positioned], partition: int, upto: int | None = None) -> dict[str, Doc]:
    chosen = [
        p
        for p in log
        if partition_for(p.event.originator_id, PARTITIONS) == partition
        and (upto is None or p.position <= upto)
    ]
    return {k: json.loads(json.dumps(v)) for k, v in one_pass(chosen).items()}


def busiest_partition(log: Sequence[Positioned]) -> int:
    sizes = [len(chain_of(log, p)) for p in range(PARTITIONS)]
    assert min(sizes) > 0, sizes
    return sizes.index(max(sizes))


def apply(store: Store, partition: int, chain: Sequence[Linked], offset: int, heal: Healer) -> int:
    return store.progress.apply_partition(1, TOPIC, partition, chain, offset, heal, PARTITIONS)


def test_in_order_records_fold_once_and_track_offset_and_watermark(store: Store) -> None:
    log = store.log()
    partition = busiest_partition(log)
    chain = chain_of(log, partition)
    heal = Healer(store, partition)

    half = len(chain) // 2
    assert apply(store, partition, chain[:half], half, heal) == chain[half - 1].positioned.position
    assert apply(store, partition, chain[half:], len(chain), heal) == chain[-1].positioned.position

    assert heal.calls == []
    assert store.partitions(TOPIC) == {partition: (len(chain), chain[-1].positioned.position)}
    assert docs_of_partition(store.docs(), partition) == fold_of(log, partition)


def test_duplicates_are_skipped(store: Store) -> None:
    log = store.log()
    partition = busiest_partition(log)
    chain = chain_of(log, partition)
    heal = Healer(store, partition)
    apply(store, partition, chain, len(chain), heal)
    before = store.docs()

    # Redelivered: the whole chain again, an overlapping slice, and single records.
    assert apply(store, partition, chain, len(chain) * 2, heal) == chain[-1].positioned.position
    apply(store, partition, chain[3:9], len(chain) * 2 + 6, heal)
    apply(store, partition, [chain[0], chain[0], chain[-1]], len(chain) * 2 + 9, heal)

    assert heal.calls == []
    assert store.docs() == before
    assert docs_of_partition(before, partition) == fold_of(log, partition)
    assert store.partitions(TOPIC)[partition] == (len(chain) * 2 + 9, chain[-1].positioned.position)


def test_a_redelivered_batch_overlapping_new_records_folds_only_the_new_ones(
    store: Store,
) -> None:
    log = store.log()
    partition = busiest_partition(log)
    chain = chain_of(log, partition)
    heal = Healer(store, partition)
    apply(store, partition, chain[:10], 10, heal)
    apply(store, partition, chain[5:20], 20, heal)  # 5..9 again, 10..19 new

    assert heal.calls == []
    upto = chain[19].positioned.position
    assert docs_of_partition(store.docs(), partition) == fold_of(log, partition, upto)


def test_a_broken_link_heals_exactly_the_missing_events(store: Store) -> None:
    log = store.log()
    partition = busiest_partition(log)
    chain = chain_of(log, partition)
    assert len(chain) > 40
    heal = Healer(store, partition)
    apply(store, partition, chain[:10], 10, heal)

    # The broker lost records 10..29 (a restart, offsets out of range); 30.. arrive.
    apply(store, partition, chain[30:], 100, heal)

    missing = [link.positioned.position for link in chain[10:30]]
    watermark_before = chain[9].positioned.position
    assert heal.calls == [(watermark_before, chain[30].previous_position, missing)]
    assert store.partitions(TOPIC)[partition] == (100, chain[-1].positioned.position)
    assert docs_of_partition(store.docs(), partition) == fold_of(log, partition)


def test_a_lost_beginning_heals_from_the_start(store: Store) -> None:
    log = store.log()
    partition = busiest_partition(log)
    chain = chain_of(log, partition)
    heal = Healer(store, partition)

    apply(store, partition, chain[5:], 7, heal)

    assert heal.calls == [
        (0, chain[4].positioned.position, [x.positioned.position for x in chain[:5]])
    ]
    assert docs_of_partition(store.docs(), partition) == fold_of(log, partition)


def test_several_gaps_in_one_batch_each_heal_once(store: Store) -> None:
    log = store.log()
    partition = busiest_partition(log)
    chain = chain_of(log, partition)
    heal = Healer(store, partition)

    kept = chain[:3] + chain[6:12] + chain[20:]
    apply(store, partition, kept, 50, heal)

    assert [call[2] for call in heal.calls] == [
        [x.positioned.position for x in chain[3:6]],
        [x.positioned.position for x in chain[12:20]],
    ]
    assert docs_of_partition(store.docs(), partition) == fold_of(log, partition)


def test_sweep_folds_the_unpublished_tail_and_then_duplicates_are_skipped(store: Store) -> None:
    log = store.log()
    partition = busiest_partition(log)
    chain = chain_of(log, partition)
    heal = Healer(store, partition)
    apply(store, partition, chain[:10], 10, heal)

    head = store.head()
    assert store.progress.sweep_partition(1, TOPIC, partition, head, heal, PARTITIONS) == head
    assert docs_of_partition(store.docs(), partition) == fold_of(log, partition)
    after_sweep = store.docs()

    # The relay publishes the tail later: all of it is already folded.
    apply(store, partition, chain[10:], len(chain), heal)
    assert len(heal.calls) == 1
    assert store.docs() == after_sweep
    assert store.partitions(TOPIC)[partition] == (len(chain), head)


def test_every_partition_together_is_the_whole_fold_and_freshness_follows(store: Store) -> None:
    log = store.log()
    head = store.head()
    tracked = []
    for partition in range(PARTITIONS):
        chain = chain_of(log, partition)
        apply(store, partition, chain, len(chain), Healer(store, partition))
        tracked.append(store.progress.tracking(1).position)
    # Freshness is published only once every partition is seen, as the lowest watermark.
    assert tracked[:-1] == [0] * (PARTITIONS - 1)
    lowest = min(chain_of(log, p)[-1].positioned.position for p in range(PARTITIONS))
    assert tracked[-1] == lowest
    for partition in range(PARTITIONS):
        store.progress.sweep_partition(1, TOPIC, partition, head, Healer(store, partition), 3)
    assert store.progress.tracking(1).position == head
    assert store.docs() == {k: json.loads(json.dumps(v)) for k, v in one_pass(log).items()}
