"""The Apache Kafka broker is killed (-9) under the workers' feet and comes back: once on
its own data, once on an empty, freshly formatted directory (it lost its disk: no
topics, no records, no groups, no offsets). Relay and projector recover by themselves
and the read model converges to the fold of the store."""

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


@pytest.mark.parametrize("loses_data", [False, True], ids=["keeps-data", "loses-data"])
def test_broker_restart(
    own_stack: Stack, own_store: Store, kafka_broker: KafkaBroker, loses_data: bool
) -> None:
    stack, store = own_stack, own_store
    relay = stack.relay()
    projector = stack.projector()
    seed_chunk(store, 0, 5)
    wait_converged(store, stack, timeout=60)
    published_before = store.relay_position()
    offsets_before = {p: o for p, (o, _) in store.partitions(stack.topic).items()}

    kafka_broker.kill9()
    seed_chunk(store, 1, 5)  # written while the broker is gone
    time.sleep(3)
    if loses_data:
        kafka_broker.restart_with_data_loss()  # same address, nothing on it
    else:
        kafka_broker.start()
    seed_chunk(store, 2, 5)
    wait_converged(store, stack, timeout=120)

    # Nobody restarted the workers: they recovered on their own.
    assert relay.alive()
    assert projector.alive()
    assert relay.starts == projector.starts == 1
    assert kafka_broker.starts == 2
    # The topic is there with its partitions (the relay created it again after the loss)
    # and holds everything published since; before the loss, everything at all.
    head = store.head()
    assert kafka_broker.partition_count(stack.topic) == stack.partitions
    first = published_before + 1 if loses_data else 1
    records = topic_records(stack.bootstrap, stack.topic, range(first, head + 1))
    ends = {p: found[-1][0] + 1 if found else 0 for p, found in records.items()}
    if loses_data:
        # the new log starts again at offset 0 and holds none of the old records
        assert all(found[0][0] == 0 for found in records.values() if found)
        assert min(pos for found in records.values() for _, pos in found) > published_before
    else:
        assert all(ends[p] >= offsets_before[p] for p in offsets_before)

    # The projector consumed the broker's log to its end.
    def consumed_to_the_end() -> bool:
        return {p: o for p, (o, _) in store.partitions(stack.topic).items()} == ends

    try:
        wait_until(consumed_to_the_end, 30, f"the projector to consume the log {ends}")
    except AssertionError as error:
        stored = store.partitions(stack.topic)
        raise AssertionError(f"{error}: stored {stored}\n{stack.logs()}") from None
