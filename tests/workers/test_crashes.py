"""kill -9 the relay and the projectors at random moments during a load: in the end
the read model is the one-pass fold of the store, nothing missing, nothing twice."""

from __future__ import annotations

import random
import threading
import time

from tests.workers.conftest import (
    Proc,
    Stack,
    Store,
    seed_chunk,
    topic_positions,
    wait_converged,
)

CHUNKS = 8
ENGAGEMENTS_PER_CHUNK = 9  # ≈ 85 events each: ≈ 6,000 events in all
ROUNDS = 4


def test_crashes(stack: Stack, store: Store) -> None:
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    relay = stack.relay()
    projectors = [stack.projector("projector-1"), stack.projector("projector-2")]

    written: list[int] = []
    failure: list[BaseException] = []

    def load() -> None:
        try:
            for number in range(CHUNKS):
                written.append(seed_chunk(store, number, ENGAGEMENTS_PER_CHUNK))
                time.sleep(rng.uniform(0.5, 2.0))
        except BaseException as error:
            failure.append(error)

    loader = threading.Thread(target=load, name="load")
    loader.start()
    kills = 0
    try:
        for _ in range(ROUNDS):
            victims: list[Proc] = [relay, *projectors]
            rng.shuffle(victims)
            for victim in victims:
                time.sleep(rng.uniform(0.3, 2.0))
                victim.kill9()
                kills += 1
                if rng.random() < 0.5:  # sometimes restart at once, sometimes later
                    victim.start()
            time.sleep(rng.uniform(0.2, 1.0))
            for victim in victims:
                if not victim.alive():
                    victim.start()
    finally:
        loader.join(timeout=120)
    assert not failure, failure
    assert not loader.is_alive()
    assert kills == 3 * ROUNDS

    events = sum(written)
    head = store.head()
    assert events >= 5000, events
    assert head == events
    wait_converged(store, stack, timeout=120)

    # The relay published everything, at least once, and saved the head as its position.
    assert store.relay_position() == head
    positions = topic_positions(stack.bootstrap, stack.topic, range(1, head + 1))
    assert set(positions) == set(range(1, head + 1)), f"random seed {seed}"
    assert len(positions) >= head
    assert relay.starts > 1
    assert all(p.starts > 1 for p in projectors)
