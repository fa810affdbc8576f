"""The progress read model is exactly a fold of the log: however it is batched, and
whatever crashes on the way, nothing is applied twice and nothing is skipped."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coachlog.seed import seed_firm
from domain.application import Engagements
from projections.database import Cursor, SqliteDatabase
from projections.progress import Doc, fold
from projections.queries import NotFound
from projections.rebuild import rebuild
from projections.runner import ProjectionRunner
from projections.store import Positioned, ProgressStore, StalePosition

TODAY = datetime(2026, 11, 1, 18, tzinfo=UTC)


def log_of(app: Engagements) -> list[Positioned]:
    """Every engagement event of the store with its position."""
    runner = ProjectionRunner(app, ProgressStore(SqliteDatabase(":memory:")))
    return runner.read_batch(0, 10**9)


def one_pass(log: Sequence[Positioned]) -> dict[str, Doc]:
    """The read model by definition: fold every event once, in log order."""
    docs: dict[str, Doc] = {}
    for item in log:
        key = str(item.event.originator_id)
        folded = fold(docs.get(key), item.event)
        if folded is not None:
            docs[key] = folded
    return docs


def _json_round_trip(docs: dict[str, Doc]) -> dict[str, Doc]:
    return {k: json.loads(json.dumps(v)) for k, v in docs.items()}


class CrashingStore(ProgressStore):
    """A real store that dies half-way through writing its ``crash_on``-th batch."""

    def __init__(self, db: Any, crash_on: int) -> None:
        super().__init__(db)
        self.crash_on = crash_on
        self.batches = 0

    def _upsert(self, cur: Cursor, table: str, docs: Any) -> None:
        self.batches += 1
        docs = list(docs)
        if self.batches == self.crash_on:
            super()._upsert(cur, table, docs[: len(docs) // 2])  # some rows written...
            raise RuntimeError("simulated crash in the middle of a batch")  # ...then death
        super()._upsert(cur, table, docs)


class Seeded:
    """A seeded event store and its log (with a short repr for hypothesis reports)."""

    def __init__(self, app: Engagements) -> None:
        self.app = app
        self.log = log_of(app)

    def __repr__(self) -> str:
        return f"Seeded({len(self.log)} events)"


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    with tempfile.TemporaryDirectory() as tmp:
        app = Engagements(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(Path(tmp) / "log.db"),
            }
        )
        seed_firm(app, seed=21, engagements=12, today=TODAY, firm_id="firm-p")
        yield Seeded(app)
        app.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cuts=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=12))
def test_any_batch_split_gives_the_one_pass_fold(seeded: Seeded, cuts: list[int]) -> None:
    log = seeded.log
    with tempfile.TemporaryDirectory() as tmp:
        store = ProgressStore(SqliteDatabase(str(Path(tmp) / "rm.db")))
        store.create_tables()
        position, start = 0, 0
        sizes = iter(cuts)
        while start < len(log):
            size = next(sizes, len(log))
            batch = log[start : start + size]
            position = store.apply(1, batch, expected=position)
            start += size
        assert position == log[-1].position
        assert store.all_docs(1) == _json_round_trip(one_pass(log))


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch_size=st.integers(min_value=5, max_value=300),
    crash_on=st.integers(min_value=0, max_value=10_000),
)
def test_a_crash_mid_batch_then_resume_gives_the_one_pass_fold(
    seeded: Seeded, batch_size: int, crash_on: int
) -> None:
    app, log = seeded.app, seeded.log
    with tempfile.TemporaryDirectory() as tmp:
        db = SqliteDatabase(str(Path(tmp) / "rm.db"))
        batches = -(-len(log) // batch_size)
        crashing = CrashingStore(db, 1 + crash_on % batches)
        crashing.create_tables()
        runner = ProjectionRunner(app, crashing, batch_size=batch_size)
        with pytest.raises(RuntimeError, match="simulated crash"):
            runner.catch_up()
        crashed_at = crashing.tracking(1).position
        assert crashed_at < log[-1].position  # the crashed batch left nothing behind
        # A new process resumes from the tracked position.
        ProjectionRunner(app, ProgressStore(db), batch_size=batch_size).catch_up()
        assert crashing.tracking(1).position == log[-1].position
        assert crashing.all_docs(1) == _json_round_trip(one_pass(log))


def test_a_batch_applied_twice_is_refused_and_changes_nothing(
    seeded: Seeded, tmp_path: Path
) -> None:
    log = seeded.log
    store = ProgressStore(SqliteDatabase(str(tmp_path / "rm.db")))
    store.create_tables()
    first = store.apply(1, log[:100], expected=0)
    before = store.all_docs(1)
    with pytest.raises(StalePosition):
        store.apply(1, log[50:150], expected=0)  # a second runner with a stale view
    assert store.all_docs(1) == before
    assert store.tracking(1).position == first
    assert store.apply(1, log[50:150], expected=first) == log[149].position  # skips 50..99


# -- on both backends -------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_a_rebuild_reports_differences_and_switches_readers(services: Any) -> None:
    seed_firm(services.engagements, seed=3, engagements=6, today=TODAY, firm_id="firm-r")
    ProjectionRunner(services.engagements, services.progress).catch_up()
    live = services.progress.live_generation()
    # Corrupt one live row behind the projection's back.
    victim = sorted(services.progress.all_docs(live))[0]
    # The dashboards read the victim (and so remember the live generation) before.
    other = sorted(services.progress.all_docs(live))[1]
    before, fresh = services.dashboards.document("firm-r", other)
    head = services.engagements.recorder.max_notification_id()
    assert (fresh.position, fresh.head, fresh.lag) == (head, head, 0)
    with services.db.transaction() as cur:
        cur.execute(
            f"DELETE FROM {services.progress.table(live)} WHERE engagement_id = %s", (victim,)
        )
    report = rebuild(services.engagements, services.progress)
    assert report.differences == [f"{victim}: only in the rebuilt generation"]
    assert report.switched
    assert services.progress.live_generation() == live + 1
    expected = _json_round_trip(one_pass(log_of(services.engagements)))
    assert services.progress.all_docs(live + 1) == expected
    with services.db.transaction() as cur:  # the old generation is gone
        cur.execute(
            "SELECT COUNT(*) FROM rm_tracking WHERE name = %s",
            (services.progress.tracking_name(live),),
        )
        assert cur.fetchone()[0] == 0
    # One statement reads the new generation now; the victim is back.
    after, fresh = services.dashboards.document("firm-r", other)
    assert after == before
    assert fresh.position == head
    assert services.dashboards.document("firm-r", victim)[0] == expected[victim]
    with pytest.raises(NotFound):
        services.dashboards.document("firm-elsewhere", victim)
    again = rebuild(services.engagements, services.progress)
    assert again.differences == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_an_interrupted_rebuild_resumes_where_it_stopped(services: Any) -> None:
    seed_firm(services.engagements, seed=4, engagements=6, today=TODAY, firm_id="firm-r")
    ProjectionRunner(services.engagements, services.progress).catch_up()

    class Interrupt(Exception):
        pass

    folded: list[int] = []

    def stop_after_two_batches(n: int) -> None:
        folded.append(n)
        if len(folded) == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        rebuild(
            services.engagements, services.progress, progress=stop_after_two_batches, batch_size=50
        )
    # Not left marked as building, and readers never saw the half-built one.
    assert services.progress.building_generation() is None
    assert services.progress.live_generation() == 1
    report = rebuild(services.engagements, services.progress, batch_size=50)
    assert report.resumed
    assert report.new_generation == 2
    assert report.events_folded == log_of(services.engagements)[-1].position - 100
    assert report.differences == []
    assert services.progress.live_generation() == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_the_runner_follows_new_events_and_survives_a_lost_connection(services: Any) -> None:
    runner = services.start_projections()
    seed_firm(services.engagements, seed=5, engagements=3, today=TODAY, firm_id="firm-l")
    _wait_for_head(services)
    if services.db.dialect == "postgres":
        # Kill every other connection to this database: the event store's pool, the
        # listener and the read-model pool all lose theirs.
        with psycopg.connect(_url(services), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    seed_firm(services.engagements, seed=6, engagements=3, today=TODAY, firm_id="firm-l")
    _wait_for_head(services)
    assert runner._thread is not None
    assert runner._thread.is_alive()
    live = services.progress.live_generation()
    assert services.progress.all_docs(live) == _json_round_trip(
        one_pass(log_of(services.engagements))
    )


def _url(services: Any) -> str:
    kwargs = services.engagements.recorder.datastore.pool.kwargs
    return f"postgresql://{kwargs['user']}@{kwargs['host']}:{kwargs['port']}/{kwargs['dbname']}"


def _wait_for_head(services: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head = services.engagements.recorder.max_notification_id() or 0
        try:
            if services.progress.tracking(services.progress.live_generation()).position >= head:
                return
        except Exception:
            pass
        time.sleep(0.1)
    pytest.fail("the runner did not reach the head of the log")


def test_decrypting_only_what_the_fold_uses_gives_the_same_documents(seeded: Seeded) -> None:
    """Projections decode with a mapper that opens only SEALED_FIELDS_USED; a fold of
    the fully decoded log must give the very same documents (so no class whose personal
    fields the fold reads is missing from that set)."""
    full = [
        Positioned(n.id, seeded.app.mapper.to_domain_event(n))
        for n in seeded.app.recorder.select_notifications(start=1, limit=10**9)
    ]
    assert len(full) == len(seeded.log)
    with_titles = one_pass(full)
    assert any(g["title"] for d in with_titles.values() for g in d["goals"].values())
    assert any(d["wellbeing"] for d in with_titles.values())
    assert one_pass(seeded.log) == with_titles
    notes = [
        (p.event.notes, f.event.notes)  # type: ignore[attr-defined]
        for p, f in zip(seeded.log, full, strict=True)
        if type(p.event).__name__ == "SessionHeld"
    ]
    assert notes, "the seeded log holds sessions"
    assert all(read == "" and written for read, written in notes), "notes left sealed"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_group_figures_come_from_the_stored_column_or_else_the_document(services: Any) -> None:
    """The firm overview and ROI read each engagement's small stored figures; a row
    written before that column existed (NULL there) is computed from its document, and
    the answers are the same either way."""
    seed_firm(services.engagements, seed=6, engagements=8, today=TODAY, firm_id="firm-f")
    ProjectionRunner(services.engagements, services.progress).catch_up()
    now = datetime(2026, 11, 2, tzinfo=UTC)
    stored = services.dashboards.firm("firm-f", now)[0]
    by_coach = services.dashboards.roi("firm-f", "coach")[0]
    by_engagement = services.dashboards.roi("firm-f", "engagement")[0]
    assert stored["engagements"] == 8
    assert stored["roi"]["engagements_with_outcomes"] > 0
    table = services.progress.table(services.progress.live_generation())
    with services.db.transaction() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table} WHERE figures IS NOT NULL")
        assert cur.fetchone()[0] == 8
        cur.execute(f"UPDATE {table} SET figures = NULL")
    assert services.dashboards.firm("firm-f", now)[0] == stored
    assert services.dashboards.roi("firm-f", "coach")[0] == by_coach
    assert services.dashboards.roi("firm-f", "engagement")[0] == by_engagement
    # A table from before the column: start-up adds it back, the answers stay.
    with services.db.transaction() as cur:
        cur.execute(f"ALTER TABLE {table} DROP COLUMN figures")
    services.progress.create_tables()
    assert services.dashboards.firm("firm-f", now)[0] == stored
    ProjectionRunner(services.engagements, services.progress).catch_up()
    assert services.dashboards.roi("firm-f", "engagement")[0] == by_engagement
