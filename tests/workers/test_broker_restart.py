"""The Apache Kafka broker is killed (-9) under the workers' feet, twice, while events
keep being written: first it comes back on its own data, then on an empty, freshly
formatted directory (it lost its disk: no topics, no records, no groups, no offsets).
Relay and projector recover by themselves each time and the read model converges to
the fold of the store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import KafkaBroker
from tests.workers.conftest import (
    Stack,
    Store,
    make_stack,
    seed_chunk,
    topic_records,
    wait_converged,
    wait_until,
)


@pytest.fixture
def own_stack(
    postgres_url: str, pg_schema: str, kafka_broker: KafkaBroker, tmp_path: Path
) -> Iterator[Stack]:
    built = make_stack(postgres_url, pg_schema, kafka_broker.bootstrap, tmp_path)
    try:
        yield built
    finally:
        built.kill_all()


@pytest.fixture
def own_store(own_stack: Stack) -> Iterator[Store]:
    opened = Store(own_stack.settings)
    try:
        yield opened
    finally:
        opened.close()


def assert_consumed_to_the_end(
    store: Store, stack: Stack, records: dict[int, list[tuple[int, int]]]
) -> None:
    """The projector's stored offsets are the ends of the broker's log."""
    ends = {p: found[-1][0] + 1 if found else 0 for p, found in records.items()}

    def consumed_to_the_end() -> bool:
        return {p: o for p, (o, _) in store.partitions(stack.topic).items()} == ends

    try:
        wait_until(consumed_to_the_end, 30, f"the projector to consume the log {ends}")
    except AssertionError as error:
        stored = store.partitions(stack.topic)
        raise AssertionError(f"{error}: stored {stored}\n{stack.logs()}") from None


def test_broker_restart(own_stack: Stack, own_store: Store, kafka_broker: KafkaBroker) -> None:
    stack, store = own_stack, own_store
    relay = stack.relay()
    projector = stack.projector()
    seed_chunk(store, 0, 4)
    wait_converged(store, stack, timeout=60)

    # 1. Killed, events written while it is away, back on its own data.
    kafka_broker.kill9()
    seed_chunk(store, 1, 4)
    time.sleep(2)
    kafka_broker.start()
    seed_chunk(store, 2, 4)
    wait_converged(store, stack, timeout=120)
    head = store.head()
    # Nothing was lost: the whole log is on the topic, in offsets that only grew.
    kept = topic_records(stack.bootstrap, stack.topic, range(1, head + 1))
    assert all(found[0][0] == 0 for found in kept.values() if found)
    assert_consumed_to_the_end(store, stack, kept)
    published_before = store.relay_position()
    assert published_before == head

    # 2. Killed again, events written, back on an empty disk.
    kafka_broker.kill9()
    seed_chunk(store, 3, 4)
    time.sleep(2)
    kafka_broker.restart_with_data_loss()
    seed_chunk(store, 4, 4)
    wait_converged(store, stack, timeout=120)

    # Nobody restarted the workers: they recovered on their own, both times.
    assert relay.alive()
    assert projector.alive()
    assert relay.starts == projector.starts == 1
    assert kafka_broker.starts == 3
    # The relay created the topic again, with its partitions; the new log starts again
    # at offset 0 and holds what was published since, none of the old records.
    head = store.head()
    assert kafka_broker.partition_count(stack.topic) == stack.partitions
    fresh = topic_records(stack.bootstrap, stack.topic, range(published_before + 1, head + 1))
    assert all(found[0][0] == 0 for found in fresh.values() if found)
    assert min(pos for found in fresh.values() for _, pos in found) > published_before
    # The projector follows the new log to its end (its stored offsets were past it).
    assert_consumed_to_the_end(store, stack, fresh)
