"""Two projector instances share the partitions of the topic; each event is folded
exactly once."""

from __future__ import annotations

from tests.workers.conftest import (
    Stack,
    Store,
    assignments,
    seed_chunk,
    wait_converged,
    wait_until,
)


def test_two_projectors(stack: Stack, store: Store) -> None:
    stack.relay()
    first = stack.projector("projector-1")
    second = stack.projector("projector-2")

    def split() -> bool:
        a, b = assignments(first), assignments(second)
        if not a or not b:
            return False
        mine, theirs = set(a[-1]), set(b[-1])
        return (
            bool(mine)
            and bool(theirs)
            and not mine & theirs
            and (mine | theirs == set(range(stack.partitions)))
        )

    try:
        wait_until(split, 45, "both projectors to own partitions", interval=0.5)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{stack.logs()}") from None

    rebalances = (len(assignments(first)), len(assignments(second)))
    events = sum(seed_chunk(store, n, 6) for n in range(3))
    assert events > 1000
    wait_converged(store, stack, timeout=60)

    # No rebalance since the split: each instance folded the records of its partitions.
    assert (len(assignments(first)), len(assignments(second))) == rebalances
    owned = [set(assignments(first)[-1]), set(assignments(second)[-1])]
    assert owned[0]
    assert owned[1]
    assert not owned[0] & owned[1]
    rows = store.partitions(stack.topic)
    head = store.head()
    assert sorted(rows) == list(range(stack.partitions))
    for partition, (next_offset, watermark) in rows.items():
        assert watermark == head, partition
        assert next_offset > 0, f"partition {partition} was never consumed from Kafka"
    assert first.alive()
    assert second.alive()
