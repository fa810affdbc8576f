"""Chaos on the production path: the relay (holding no master key) and two projectors
on a real Apache Kafka broker, a writer that never stops, and everything that goes
wrong at once.

1. Ten rounds or more of kill -9 of a random worker, restarted at once, while the
   writer writes.
2. An unfoldable event is injected into one engagement's stream.
3. The broker is killed and comes back on an empty disk; the relay comes back
   configured for 3 partitions instead of 6, and creates the topic so.
4. The topic grows to 8 partitions under the running workers.

At the end every other document equals a from-scratch fold of the store, the poisoned
engagement is quarantined and shown by /metrics and /readyz, and freshness is at lag 0.
Rounds, events, differences and convergence times are printed (``pytest -s``)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from projections.progress import Doc, OutOfOrder, Unfoldable, fold_stream
from tests.broker import KafkaBroker
from tests.poison import inject_unscheduled_session
from tests.workers.conftest import (
    Proc,
    Stack,
    Store,
    converged,
    create_topic,
    make_stack,
    opening_body,
    scrape,
    seed_chunk,
    serve,
    wait_until,
)

ROUNDS = 10


@pytest.fixture
def chaos_stack(
    postgres_url: str, pg_schema: str, kafka_broker: KafkaBroker, tmp_path: Path
) -> Iterator[Stack]:
    built = make_stack(postgres_url, pg_schema, kafka_broker.bootstrap, tmp_path, create=False)
    built.partitions = 6
    create_topic(built.bootstrap, built.topic, 6)
    try:
        yield built
    finally:
        built.kill_all()


def keyless_relay(stack: Stack, partitions: int) -> Proc:
    """A relay process that holds no master key, configured for ``partitions``."""
    env = {k: v for k, v in stack.env.items() if k != "COACHLOG_MASTER_KEY"}
    env["COACHLOG_KAFKA_PARTITIONS"] = str(partitions)
    proc = Proc("relay", ["relay"], env, stack.directory / "relay.log")
    stack.procs.append(proc)
    return proc.start()


class Writer:
    """Writes chunks of realistic engagements (a firm each) while resumed."""

    def __init__(self, stack: Stack) -> None:
        self.store = Store(stack.settings)
        self.chunk = 100
        self.events = 0
        self._go = threading.Event()
        self._idle = threading.Event()
        self._stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._idle.set()
            if not self._go.wait(0.1):
                continue
            self._idle.clear()
            try:
                self.events += seed_chunk(self.store, self.chunk, 1)
            except BaseException as error:  # reported by the test
                self.errors.append(error)
                self._idle.set()
                return
            self.chunk += 1

    def resume(self) -> None:
        self._idle.clear()
        self._go.set()

    def pause(self) -> None:
        """Stop after the chunk under way."""
        self._go.clear()
        assert self._idle.wait(60), "the writer did not pause"

    def close(self) -> None:
        self._stop.set()
        self._go.clear()
        self.thread.join(60)
        self.store.close()


def foldable(store: Store) -> tuple[dict[str, Doc], set[str]]:
    """Every engagement of the store folded from scratch; and the ones that cannot be."""
    streams: dict[str, list[Any]] = {}
    for item in store.log():
        streams.setdefault(str(item.event.originator_id), []).append(item.event)
    docs, poisoned = {}, set()
    for key, events in streams.items():
        try:
            doc = fold_stream(events)
        except (Unfoldable, OutOfOrder):
            poisoned.add(key)
            continue
        assert doc is not None
        docs[key] = json.loads(json.dumps(doc))
    return docs, poisoned


def differences(store: Store, poisoned: set[str]) -> list[str]:
    expected, unfoldable = foldable(store)
    assert unfoldable == poisoned
    actual = {k: v for k, v in store.docs().items() if k not in poisoned}
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    differ = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    return [f"missing {k}" for k in missing] + [f"extra {k}" for k in extra] + differ


@pytest.fixture
def chaos_store(chaos_stack: Stack) -> Iterator[Store]:
    opened = Store(chaos_stack.settings)
    try:
        yield opened
    finally:
        opened.close()


def test_chaos(chaos_stack: Stack, chaos_store: Store, kafka_broker: KafkaBroker) -> None:
    stack, store = chaos_stack, chaos_store
    api = serve(stack)
    rng = random.Random(13)
    started = time.monotonic()
    figures: dict[str, Any] = {}

    def converge(partitions: int, what: str) -> float:
        begin = time.monotonic()
        try:
            wait_until(lambda: converged(store, stack.topic, partitions), 90, what)
        except AssertionError as error:
            raise AssertionError(
                f"{error}\nhead={store.head()} relay={store.relay_position()}"
                f" partitions={store.partitions(stack.topic)}\n{stack.logs()}"
            ) from None
        return round(time.monotonic() - begin, 1)

    relay = keyless_relay(stack, 6)
    workers = {"relay": relay, "projector-1": stack.projector("projector-1")}
    workers["projector-2"] = stack.projector("projector-2")
    writer = Writer(stack)
    try:
        seed_chunk(store, 0, 3)
        opened = [api.request("POST", "/engagements", opening_body()) for _ in range(2)]
        assert [reply.status for reply in opened] == [201, 201], opened[0].body
        victim, other = (UUID(reply.body["engagement_id"]) for reply in opened)
        figures["first convergence s"] = converge(6, "the first convergence")

        # 1. kill -9 of random workers while the writer writes.
        writer.resume()
        killed = []
        for round_no in range(ROUNDS):
            # Each worker dies at least once, then whichever chance picks.
            name = sorted(workers)[round_no] if round_no < 3 else rng.choice(sorted(workers))
            workers[name].kill9()
            time.sleep(rng.uniform(0.2, 1.0))
            workers[name].start()
            killed.append(name)
            time.sleep(rng.uniform(0.3, 1.0))
            if round_no == ROUNDS // 2:
                # 2. An unfoldable event in one engagement's stream.
                inject_unscheduled_session(store.app, victim)
        writer.pause()
        figures["rounds"] = ROUNDS
        figures["killed"] = {n: killed.count(n) for n in sorted(workers)}
        figures["after kills s"] = converge(6, "convergence after the kills")

        # 3. The broker loses everything; the relay comes back configured for 3.
        writer.resume()
        time.sleep(1)
        workers["relay"].kill9()
        kafka_broker.restart_with_data_loss()
        stack.procs.remove(workers["relay"])
        workers["relay"] = keyless_relay(stack, 3)
        back = time.monotonic()
        time.sleep(2)
        writer.pause()
        figures["after data loss and 6 -> 3 s"] = converge(3, "convergence on 3 partitions")
        figures["after data loss and 6 -> 3 s, from the broker's return"] = round(
            time.monotonic() - back, 1
        )
        assert kafka_broker.partition_count(stack.topic) == 3

        # 4. The topic grows to 8 partitions under the running workers.
        writer.resume()
        kafka_broker.create_partitions(stack.topic, 8)
        time.sleep(2)
        writer.pause()
        figures["after 3 -> 8 s"] = converge(8, "convergence on 8 partitions")
    finally:
        writer.close()
    assert not writer.errors, writer.errors

    # Every other document is its from-scratch fold; the poisoned one is quarantined.
    different = differences(store, {str(victim)})
    figures["events"] = store.head()
    figures["written under chaos"] = writer.events
    figures["engagements"] = len(store.docs())
    figures["differences"] = len(different)
    assert different == [], different[:5]
    (held,) = store.progress.quarantined()
    assert held.engagement_id == str(victim)
    assert held.event_type == "SessionHeld"
    assert store.progress.tracking(store.progress.live_generation()).position == store.head()

    # Visible to an operator: /metrics (quarantine, lag 0, per-instance partitions) and /readyz.
    live_pids = {str(p.process.pid) for p in workers.values() if p.process is not None}

    def reported() -> bool:
        samples = scrape(api)
        instances = {
            dict(labels)["instance"]: value
            for (name, labels), value in samples.items()
            if name == "coachlog_projector_assigned_partitions"
            and dict(labels)["instance"].split("-")[-2] in live_pids
        }
        return (
            samples[("coachlog_projection_quarantined_engagements", (("read_model", "progress"),))]
            == 1
            and samples[("coachlog_projection_lag_events", (("read_model", "progress"),))] == 0
            and len(instances) == 2
            and sum(instances.values()) == 8
        )

    wait_until(reported, 30, "/metrics to show the quarantine, lag 0 and 8 partitions owned")
    ready = api.request("GET", "/readyz")
    assert ready.status == 200
    assert ready.body["status"] == "degraded"
    assert ready.body["read_models"]["progress"]["quarantined"] == 1
    dashboard = api.request("GET", f"/engagements/{victim}/dashboard")
    assert dashboard.status == 503
    assert dashboard.body["code"] == "read_model_quarantined"
    answer = api.request("GET", f"/engagements/{other}/dashboard")
    assert answer.status == 200, answer.body
    assert answer.body["freshness"]["lag"] == 0
    # The relay never held a key; relay and projectors said when the count changed.
    assert "COACHLOG_MASTER_KEY" not in workers["relay"].env
    assert "the relay's chain was kept under 6" in workers["relay"].text()
    projector_logs = workers["projector-1"].text() + workers["projector-2"].text()
    assert "re-keyed from position" in projector_logs
    figures["wall s"] = round(time.monotonic() - started, 1)
    print("\nchaos:", json.dumps(figures, indent=1))
