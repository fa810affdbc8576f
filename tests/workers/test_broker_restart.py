"""The broker dies and comes back empty (tansu keeps nothing): relay and projector
recover by themselves and the read model converges to the fold of the store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from tests.workers.conftest import (
    Stack,
    Store,
    Tansu,
    make_stack,
    seed_chunk,
    topic_records,
    wait_converged,
    wait_until,
)


@pytest.fixture
def own_stack(
    postgres_url: str, pg_schema: str, own_broker: Tansu, tmp_path: Path
) -> Iterator[Stack]:
    built = make_stack(postgres_url, pg_schema, own_broker.bootstrap, tmp_path)
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


def partition_count(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        found = wait_until(lambda: consumer.partitions_for_topic(topic), 15, "topic metadata")
        return len(found)
    finally:
        consumer.close()


def test_broker_restart(own_stack: Stack, own_store: Store, own_broker: Tansu) -> None:
    stack, store = own_stack, own_store
    relay = stack.relay()
    projector = stack.projector()
    seed_chunk(store, 0, 5)
    wait_converged(store, stack, timeout=60)
    published_before = store.relay_position()

    own_broker.kill()
    seed_chunk(store, 1, 5)  # written while the broker is gone
    time.sleep(3)
    own_broker.start()  # same port, no topics, no groups, no offsets
    seed_chunk(store, 2, 5)
    wait_converged(store, stack, timeout=120)

    # Nobody restarted the workers: they recovered on their own.
    assert relay.alive()
    assert projector.alive()
    assert relay.starts == projector.starts == 1
    # The topic came back with its partitions, and everything after the restart is on it.
    head = store.head()
    assert partition_count(stack.bootstrap, stack.topic) == stack.partitions
    records = topic_records(stack.bootstrap, stack.topic, range(published_before + 1, head + 1))
    # The projector consumes the new broker's log to its end (offsets start again at 0).
    ends = {p: found[-1][0] + 1 if found else 0 for p, found in records.items()}

    def consumed_to_the_end() -> bool:
        return {p: o for p, (o, _) in store.partitions(stack.topic).items()} == ends

    try:
        wait_until(consumed_to_the_end, 30, f"the projector to consume the new log {ends}")
    except AssertionError as error:
        stored = store.partitions(stack.topic)
        raise AssertionError(f"{error}: stored {stored}\n{stack.logs()}") from None
