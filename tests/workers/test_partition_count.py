"""The topic's real partition count decides where events go, whatever the setting says.

A topic may predate the setting, or a broker may have created it with its own default
when something subscribed first (and tansu cannot add partitions): relay and
projectors must still agree on the partition of every engagement.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workers.conftest import (
    PARTITIONS,
    Stack,
    Store,
    assert_read_model_is_the_fold,
    converged,
    create_topic,
    make_stack,
    seed_chunk,
    wait_until,
)

ACTUAL = PARTITIONS - 1


@pytest.fixture
def odd_stack(
    postgres_url: str, pg_schema: str, kafka_bootstrap: str, tmp_path: Path
) -> Iterator[Stack]:
    built = make_stack(postgres_url, pg_schema, kafka_bootstrap, tmp_path, create=False)
    create_topic(kafka_bootstrap, built.topic, ACTUAL)  # not what the setting says
    try:
        yield built
    finally:
        built.kill_all()


def test_relay_and_projector_follow_the_topic_not_the_setting(odd_stack: Stack) -> None:
    assert odd_stack.env["COACHLOG_KAFKA_PARTITIONS"] == str(PARTITIONS) != str(ACTUAL)
    store = Store(odd_stack.settings)
    try:
        odd_stack.relay()
        odd_stack.projector("projector-1")
        seed_chunk(store, 1, 4)
        try:
            wait_until(lambda: converged(store, odd_stack.topic, ACTUAL), 90, "convergence")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{odd_stack.logs()}") from None
        assert_read_model_is_the_fold(store)
    finally:
        store.close()
