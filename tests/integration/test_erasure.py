"""The right to be forgotten, end to end (the issue's acceptance test), on both backends.

A firm has client X with two engagements and client Y with one. X's personal text
(name, session notes, an assessment result, a limiting assumption, outcome evidence, a
survey comment, a closing reason) carries a unique marker, and X has wellbeing
check-ins; one of X's engagements is long enough to be snapshotted (and is erased at
exactly a snapshot version, so the erasure itself takes a snapshot that must go too).
Y carries a marker of its own. Every step proves the data was really there before
(readable through the application, in a full export, in the sealed Kafka copies), then
that after ``EraseSubject`` on one of X's engagements it is gone everywhere: database
dump and files, history, aggregates (now and at past versions), read models,
dashboards, exports, Kafka; that X's keys are destroyed and X's snapshots deleted; that
the stored events were not rewritten and the audit chain still verifies; that Y is
untouched; and that the firm's figures did not move. A second test does the same for
the Kafka copies (published before and after the erasure). Two more cover what writing
these found: free-text titles (goals, milestones, commitments) must be sealed and
forgotten too, and the destroyed wrapped key must be gone from SQLite's files (the
-wal file included), not only from the table.

Raw searches look for each secret both as plain bytes and in hex, because SQLite's
``iterdump`` and ``pg_dump`` print BLOB / bytea columns (the stored events) in hex; a
control token stored in a non-personal field of the same events shows the search does
find what is stored in the clear.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID

import pyarrow.parquet as pq
import pytest
from eventsourcing.utils import resolve_topic
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from domain import commands as c
from domain.application import Engagements
from domain.context import CommandContext
from domain.event import EngagementEvent
from domain.fields import sealed_fields
from domain.goals import SmartGoal
from domain.privacy import SubjectErased
from domain.storage import split_state
from domain.support import WellbeingChecked
from domain.values import CloseReason, CostCategory, Instrument, IntangibleKind, Pillar
from projections.database import Database, PostgresDatabase, SqliteDatabase
from projections.queries import Dashboards
from projections.runner import ProjectionRunner
from projections.store import ProgressStore
from tests.conftest import FIRM, NOW, days_ago, opening
from tests.integration.helpers import fill_with_work, ident, snapshot_versions
from tests.workers import conftest as workers
from workers.codec import decode
from workers.export import Pseudonymizer, Slice, export
from workers.relay import Relay
from workers.settings import KafkaSettings

SNAPSHOT_INTERVAL = 50
COACH = CommandContext(actor_id="coach-ada", actor_role="coach", firm_id=FIRM)
ADMIN = CommandContext(actor_id="admin-1", actor_role="firm_admin", firm_id=FIRM)
PSEUDONYMS = Pseudonymizer(b"erasure-test-pseudonym-key")

#: Firm-level figures (firm overview, and each by-coach / by-segment group) that are
#: not personal and therefore must be identical before and after an erasure.
GROUP_FIGURES = (
    "engagements",
    "active",
    "paused",
    "closed",
    "off_track",
    "completion_rate",
    "median_length_days",
    "sessions_held",
    "no_show_rate",
    "late_cancel_rate",
    "nps",
    "currency",
    "invoiced",
    "paid",
    "outstanding",
    "money_by_currency",
    "roi",
)
#: Per-engagement dashboard figures that must not move either. Deliberately left out:
#: ``wellbeing`` (sensitive: it must disappear), ``goals`` and ``commitments`` (their
#: titles are blanked by the read model on erasure; their counts are compared apart),
#: ``consents`` (cleared on erasure) and ``version`` (the erasure is one more event).
ENGAGEMENT_FIGURES = (
    "status",
    "sessions",
    "sessions_held",
    "sessions_planned",
    "days_since_last_session",
    "off_track",
    "held_at",
    "cadence_adherence",
    "gas_t_score",
    "follow_through",
    "time_to_first_milestone_days",
    "assessments_completed",
    "skills",
    "money",
    "roi",
    "roi_pct",
    "reactions",
)


# -- searching raw bytes ------------------------------------------------------------------


def contains(blob: bytes, secret: str) -> bool:
    """Whether ``secret`` is in ``blob`` as plain bytes or hex (how dumps print BLOBs)."""
    raw = secret.encode()
    return raw in blob or raw.hex().encode() in blob.lower()


def text_of(value: Any) -> str:
    """Everything in ``value`` as one searchable string."""
    return json.dumps(value, default=repr, ensure_ascii=False)


# -- the world ----------------------------------------------------------------------------


def pg_url_of(env: dict[str, str]) -> str:
    """The libpq URL of a PostgreSQL store's database (for pg_dump and read models)."""
    user = quote(env["POSTGRES_USER"])
    password = env.get("POSTGRES_PASSWORD")
    auth = f"{user}:{quote(password)}" if password else user
    host, port, name = env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]
    return f"postgresql://{auth}@{host}:{port}/{name}"


def open_database(env: dict[str, str]) -> Database:
    """Our SQL tables' access to the event store's database (read models live there)."""
    if env["PERSISTENCE_MODULE"].endswith("sqlite"):
        return SqliteDatabase(env["SQLITE_DBNAME"])
    return PostgresDatabase(pg_url_of(env), env["POSTGRES_SCHEMA"], max_size=2)


@dataclass
class World:
    """One firm's store on one backend, with X (two engagements) and Y (one)."""

    app: Engagements
    env: dict[str, str]
    db: Database
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    x1: UUID = field(init=False)
    x2: UUID = field(init=False)
    y: UUID = field(init=False)

    def __post_init__(self) -> None:
        self.progress = ProgressStore(self.db, self.app.keys)  # as bootstrap wires it
        self.dashboards = Dashboards(
            self.progress, lambda: self.app.recorder.max_notification_id() or 0
        )
        self.x_marker = f"MARKER-X-{self.token}"
        self.y_marker = f"MARKER-Y-{self.token}"
        #: Stored in the clear (an instrument version) in the same events as X's secrets.
        self.control = f"CONTROL-X-{self.token}"
        self.x_client = f"client-x-{self.token[:8]}"
        self.y_client = f"client-y-{self.token[:8]}"

    @property
    def xs(self) -> tuple[UUID, UUID]:
        return (self.x1, self.x2)

    @property
    def sqlite_path(self) -> Path | None:
        if self.env["PERSISTENCE_MODULE"].endswith("sqlite"):
            return Path(self.env["SQLITE_DBNAME"])
        return None

    def project(self) -> None:
        """Bring the progress read model up to the head of the log."""
        ProjectionRunner(self.app, self.progress).catch_up()

    def dump(self) -> bytes:
        """The whole database as an operator could copy it: SQLite's SQL dump plus the
        bytes of its files (main, -wal, -shm); PostgreSQL's pg_dump of the schema."""
        path = self.sqlite_path
        if path is not None:
            files = b"".join(p.read_bytes() for p in sorted(path.parent.glob(f"{path.name}*")))
            with closing(sqlite3.connect(path)) as conn:
                text = "\n".join(conn.iterdump())
            return text.encode() + b"\n" + files
        done = subprocess.run(
            ["pg_dump", "--dbname", pg_url_of(self.env), "--schema", self.env["POSTGRES_SCHEMA"]],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout


def run(app: Engagements, when: datetime, command: c.Command) -> Any:
    return app.execute(COACH.at(when), command).result


def _personal_block(world: World, eid: UUID, marker: str, start: datetime, control: str) -> None:
    """A held session with notes, an assessment, a limiting assumption, wellbeing."""
    app = world.app
    session = run(
        app,
        start,
        c.ScheduleSession(engagement_id=eid, scheduled_for=start, duration_minutes=60),
    )
    run(
        app,
        start + timedelta(hours=1),
        c.HoldSession(
            engagement_id=eid,
            session_id=session,
            duration_minutes=60,
            pillars=[Pillar.SUPPORT],
            notes=f"session notes {marker}",
        ),
    )
    run(
        app,
        start + timedelta(hours=2),
        c.CompleteAssessment(
            engagement_id=eid,
            instrument=Instrument.DISC,
            instrument_version=control,
            result={"profile": f"result {marker}", "scores": {"d": 7}},
        ),
    )
    run(
        app,
        start + timedelta(hours=3),
        c.IdentifyLimitingAssumption(engagement_id=eid, assumption=f"assumption {marker}"),
    )
    for hour, (confidence, stress) in enumerate([(2, 9), (6, 4)], start=4):
        run(
            app,
            start + timedelta(hours=hour),
            c.CheckWellbeing(
                engagement_id=eid,
                confidence=confidence,
                stress=stress,
                motivation=5,
                imposter_feelings=8,
            ),
        )


def _verify_outcomes(world: World, eid: UUID, marker: str, when: datetime, blocks: int) -> None:
    """Verify the outcomes fill_with_work reported (so ROI is measurable)."""
    for block in range(blocks):
        run(
            world.app,
            when + timedelta(minutes=block),
            c.VerifyOutcome(
                engagement_id=eid, outcome_id=ident(6000 + block), evidence=f"payslip {marker}"
            ),
        )


def build(world: World) -> None:
    """X1: long (snapshotted), closed, at version 99 so its erasure lands on version 100.
    X2: the same client, shorter. Y: another client, snapshotted too."""
    app = world.app
    x_open = {"client_id": world.x_client, "client_name": f"Xavier {world.x_marker}"}
    world.x1 = app.open_engagement(COACH.at(days_ago(250)), opening(**x_open)).engagement_id
    _personal_block(world, world.x1, world.x_marker, days_ago(249), world.control)
    fill_with_work(app, COACH, world.x1, 72, days_ago(245))  # 6 blocks of 12
    _verify_outcomes(world, world.x1, world.x_marker, days_ago(240), 6)
    when = days_ago(239)
    run(
        app,
        when,
        c.SurveyReaction(
            engagement_id=world.x1, satisfaction=5, nps=10, comment=f"great {world.x_marker}"
        ),
    )
    run(
        app,
        when + timedelta(hours=1),
        c.RecordCost(
            engagement_id=world.x1,
            category=CostCategory.ADMIN,
            amount=Decimal("42.50"),
            currency="EUR",
        ),
    )
    run(
        app,
        when + timedelta(hours=2),
        c.CloseEngagement(
            engagement_id=world.x1,
            close_reason=CloseReason.COMPLETED,
            reason=f"moved on {world.x_marker}",
        ),
    )
    version = app.get(FIRM, world.x1).version
    for step in range(2 * SNAPSHOT_INTERVAL - 1 - version):  # pad to version 99
        run(
            app,
            when + timedelta(hours=3 + step),
            c.ReportIntangibleOutcome(
                engagement_id=world.x1, kind=IntangibleKind.CLARITY, before=3, after=7
            ),
        )

    world.x2 = app.open_engagement(
        COACH.at(days_ago(120)),
        opening(**x_open, coach_id="coach-bo", segment="career_changer"),
    ).engagement_id
    _personal_block(world, world.x2, world.x_marker, days_ago(119), world.control)
    fill_with_work(app, COACH, world.x2, 24, days_ago(110))
    _verify_outcomes(world, world.x2, world.x_marker, days_ago(100), 2)

    world.y = app.open_engagement(
        COACH.at(days_ago(90)),
        opening(client_id=world.y_client, client_name=f"Yvonne {world.y_marker}"),
    ).engagement_id
    _personal_block(world, world.y, world.y_marker, days_ago(89), f"CONTROL-Y-{world.token}")
    fill_with_work(app, COACH, world.y, 60, days_ago(80))
    _verify_outcomes(world, world.y, world.y_marker, days_ago(70), 5)
    run(app, days_ago(69), c.SurveyReaction(engagement_id=world.y, satisfaction=3, nps=6))


@pytest.fixture
def world(store_env: dict[str, str], app: Engagements) -> Iterator[World]:
    """The built firm, with its read model projected (in the event store's database)."""
    built = World(app, store_env, open_database(store_env))
    try:
        built.progress.create_tables()
        build(built)
        built.project()
        yield built
    finally:
        built.db.close()


# -- what is stored ------------------------------------------------------------------------


def stored_rows(app: Engagements, engagement_id: UUID) -> list[tuple[int, str, bytes]]:
    """(version, topic, stored bytes) of every event of an engagement, as recorded."""
    return [
        (s.originator_version, s.topic, bytes(s.state))
        for s in app.recorder.select_events(engagement_id)
    ]


def blank(value: Any) -> bool:
    return value in ("", [], {}, None)


def assert_sealed_at_rest(app: Engagements, engagement_ids: tuple[UUID, ...]) -> None:
    """No personal or sensitive field is stored in the clear (wellbeing included)."""
    wellbeing = 0
    for engagement_id in engagement_ids:
        for _, topic, state in stored_rows(app, engagement_id):
            cls = resolve_topic(topic)
            if not issubclass(cls, EngagementEvent):
                continue
            stored = json.loads(split_state(state)[1])
            clear = {n: stored[n] for n in sealed_fields(cls) if n in stored}
            assert all(blank(v) for v in clear.values()), (topic, clear)
            if cls is WellbeingChecked:
                assert "_sealed" in stored, stored
                assert "stress" not in stored, stored
                wellbeing += 1
    assert wellbeing >= 2 * len(engagement_ids), "every engagement had wellbeing check-ins"


def assert_whole_dump(world: World, dump: bytes) -> None:
    """The dump really holds the store: event and key tables, and event payloads."""
    events_table = world.app.recorder.events_table_name  # type: ignore[attr-defined]
    for name in (events_table, "coachlog_data_keys", "coachlog_engagement_keys", "rm_progress"):
        assert name.encode() in dump, f"{name} missing from the dump"
    assert contains(dump, world.control), "event payloads are not searchable in the dump"


def data_keys(world: World) -> dict[str, list[tuple[str, str | None, Any]]]:
    """client id -> [(key id, wrapped key, destroyed at)] of the firm's data keys."""
    with world.db.read() as cur:
        cur.execute(
            "SELECT client_id, key_id, wrapped_key, destroyed_at FROM coachlog_data_keys"
            " WHERE firm_id = %s ORDER BY key_id",
            (FIRM,),
        )
        rows = cur.fetchall()
    found: dict[str, list[tuple[str, str | None, Any]]] = {}
    for client_id, key_id, wrapped, destroyed_at in rows:
        found.setdefault(str(client_id), []).append((str(key_id), wrapped, destroyed_at))
    return found


def engagement_keys(world: World) -> dict[str, str]:
    with world.db.read() as cur:
        cur.execute("SELECT engagement_id, key_id FROM coachlog_engagement_keys")
        return {str(e): str(k) for e, k in cur.fetchall()}


def history_text(app: Engagements, engagement_id: UUID) -> str:
    return text_of([(h.event_type, h.payload) for h in app.history(FIRM, engagement_id)])


def state_text(app: Engagements, engagement_id: UUID, version: int | None = None) -> str:
    return text_of(vars(app.get(FIRM, engagement_id, version)))


# -- what is shown ---------------------------------------------------------------------------


def figures(dashboards: Dashboards, engagement_ids: tuple[UUID, ...]) -> dict[str, Any]:
    """The non-personal figures: firm overview (and its groups), ROI three ways, and the
    per-engagement dashboards of ``engagement_ids`` (keys as listed above)."""
    firm, _ = dashboards.firm(FIRM, NOW)
    found: dict[str, Any] = {"firm": {k: firm[k] for k in GROUP_FIGURES}}
    for grouping in ("by_coach", "by_segment"):
        found[grouping] = {
            group: {k: stats[k] for k in GROUP_FIGURES} for group, stats in firm[grouping].items()
        }
    for group_by in ("engagement", "coach", "segment"):
        found[f"roi_by_{group_by}"] = dashboards.roi(FIRM, group_by)[0]["items"]
    for engagement_id in engagement_ids:
        board, _ = dashboards.engagement(FIRM, str(engagement_id), NOW)
        commitments = board["commitments"]
        found[str(engagement_id)] = {
            **{k: board[k] for k in ENGAGEMENT_FIGURES},
            "commitment_counts": {k: commitments[k] for k in ("open", "kept", "missed")},
            "overdue_commitments": len(commitments["overdue"]),
            "goals": [
                {k: v for k, v in goal.items() if k not in ("title", "milestones")}
                for goal in board["goals"]
            ],
        }
    return found


def shown_text(world: World) -> str:
    """Every read-model document and every dashboard answer of the firm, as text."""
    progress, boards = world.progress, world.dashboards
    shown: list[Any] = [progress.all_docs(progress.live_generation())]
    shown.append(boards.firm(FIRM, NOW)[0])
    shown.append(boards.list(FIRM, NOW, limit=100)[0])
    for coach in ("coach-ada", "coach-bo"):
        shown.append(boards.coach(FIRM, coach, NOW)[0])
    for group_by in ("engagement", "coach", "segment"):
        shown.append(boards.roi(FIRM, group_by)[0])
    for engagement_id in (*world.xs, world.y):
        shown.append(boards.engagement(FIRM, str(engagement_id), NOW)[0])
        shown.append(boards.sponsor(FIRM, str(engagement_id), NOW)[0])
    return text_of(shown)


def exports(world: World, pseudonymizer: Pseudonymizer | None) -> dict[str, tuple[bytes, str]]:
    """format -> (bytes written, the rows read back as text) of the firm's export."""
    found = {}
    for fmt in ("jsonl", "csv", "parquet"):
        out = io.BytesIO()
        count = export(world.app, out, fmt, Slice(firm_id=FIRM), pseudonymizer)
        data = out.getvalue()
        rows = read_rows(fmt, data)
        assert len(rows) == count == world.app.recorder.max_notification_id()
        found[fmt] = (data, text_of(rows))
    return found


def read_rows(fmt: str, data: bytes) -> list[dict[str, Any]]:
    if fmt == "jsonl":
        return [json.loads(line) for line in data.splitlines()]
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(data.decode())))
    else:
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
    return [{**r, "payload": json.loads(r["payload"])} for r in rows]


def rows_of(export_text: str, engagement_id: UUID) -> int:
    return export_text.count(f'"engagement_id": "{engagement_id}"')


# -- the acceptance test -----------------------------------------------------------------


def test_erasure_forgets_the_client_everywhere_and_keeps_the_figures(
    world: World, tmp_path: Path
) -> None:
    app, x1, x2, y = world.app, world.x1, world.x2, world.y
    x_marker, y_marker = world.x_marker, world.y_marker
    everyone = (x1, x2, y)
    versions = {e: app.get(FIRM, e).version for e in everyone}
    assert versions[x1] == 2 * SNAPSHOT_INTERVAL - 1  # its erasure lands on a snapshot

    # -- 1. before: the data is really there, and encrypted at rest ----------------------
    for engagement_id in world.xs:
        engagement = app.get(FIRM, engagement_id)
        assert engagement.client_id == world.x_client
        assert x_marker in engagement.client_name
        assert len(engagement.wellbeing) > 2  # two check-ins of ours, more of fill_with_work
        history = history_text(app, engagement_id)
        for what in ("session notes", "result", "assumption", "payslip"):
            assert f"{what} {x_marker}" in history, what
        assert x_marker in state_text(app, engagement_id, version=1)
    assert f"great {x_marker}" in history_text(app, x1)
    assert f"moved on {x_marker}" in history_text(app, x1)
    assert y_marker in app.get(FIRM, y).client_name
    y_wellbeing = app.get(FIRM, y).wellbeing
    assert len(y_wellbeing) > 2
    assert f"session notes {y_marker}" in history_text(app, y)
    assert_sealed_at_rest(app, everyone)
    dump = world.dump()
    assert_whole_dump(world, dump)
    assert not contains(dump, x_marker), "X's personal data is stored in the clear"
    assert not contains(dump, y_marker), "Y's personal data is stored in the clear"

    assert snapshot_versions(app, x1) == [SNAPSHOT_INTERVAL]
    assert snapshot_versions(app, x2) == []
    assert snapshot_versions(app, y) == [SNAPSHOT_INTERVAL]
    keys_before = data_keys(world)
    assert set(keys_before) == {world.x_client, world.y_client}
    for _, wrapped, destroyed in keys_before[world.x_client]:
        assert wrapped
        assert destroyed is None
    x_key_ids = {key_id for key_id, _, _ in keys_before[world.x_client]}
    bound = engagement_keys(world)
    assert {bound[str(x1)], bound[str(x2)]} <= x_key_ids
    assert bound[str(y)] not in x_key_ids

    # -- 2. the firm's figures before, non-trivial ----------------------------------------
    before = figures(world.dashboards, everyone)
    firm = before["firm"]
    assert firm["engagements"] == 3
    assert firm["closed"] == 1
    assert firm["sessions_held"] > 3
    assert firm["invoiced"] > firm["paid"] > 0
    # Programme ROI counts closed engagements: the one closed has a counted outcome.
    assert firm["roi"]["engagements_with_outcomes"] == 1
    assert firm["roi"]["pooled_roi_pct"] is not None
    assert firm["nps"] is not None
    assert set(before["by_coach"]) == {"coach-ada", "coach-bo"}
    for engagement_id in world.xs:
        board, _ = world.dashboards.engagement(FIRM, str(engagement_id), NOW)
        assert board["wellbeing"] is not None
        assert board["wellbeing"]["checks"] >= 2
        assert before[str(engagement_id)]["roi"]["roi_pct"] is not None
    assert not contains(shown_text(world).encode(), x_marker)

    full_before = exports(world, None)
    for fmt, (_, rows) in full_before.items():
        assert x_marker in rows, f"the full {fmt} export is not full"
        assert y_marker in rows, f"the full {fmt} export is not full"
    for fmt, (data, rows) in exports(world, PSEUDONYMS).items():
        assert x_marker not in rows, fmt
        assert not contains(data, x_marker), fmt

    # -- the chain is anchored and the stored bytes kept, then X is erased ---------------
    assert app.auditor.anchor() is not None
    stored_before = {e: stored_rows(app, e) for e in everyone}
    app.execute(ADMIN, c.EraseSubject(engagement_id=x2))
    world.project()

    # -- 3. both of X's engagements are erased, and nothing of X can be read -------------
    for engagement_id in world.xs:
        entries = app.history(FIRM, engagement_id)
        assert [h.version for h in entries] == list(range(1, versions[engagement_id] + 2))
        assert entries[-1].event_type == SubjectErased.__name__
        assert [h.event_type for h in entries].count(SubjectErased.__name__) == 1
    assert app.get(FIRM, y).version == versions[y]
    assert not app.get(FIRM, y).erased

    dump = world.dump()
    assert_whole_dump(world, dump)  # the events are still all there...
    assert not contains(dump, x_marker)  # ...but X cannot be found in them
    assert not contains(dump, y_marker)

    reopened = Engagements(env=world.env)  # no key or aggregate cached from before
    try:
        for reader in (app, reopened):
            for engagement_id in world.xs:
                engagement = reader.get(FIRM, engagement_id)
                assert engagement.erased
                assert engagement.client_id == world.x_client
                assert engagement.client_name == ""
                assert engagement.wellbeing == []
                assert x_marker not in history_text(reader, engagement_id)
                last = versions[engagement_id]  # and as it was, from before the erasure
                for version in (None, *(v for v in (1, SNAPSHOT_INTERVAL, last) if v <= last)):
                    assert x_marker not in state_text(reader, engagement_id, version)
            # erasure is per client: Y reads as before
            assert y_marker in reader.get(FIRM, y).client_name
            assert f"session notes {y_marker}" in history_text(reader, y)
            assert reader.get(FIRM, y).wellbeing == y_wellbeing
    finally:
        reopened.close()

    keys_after = data_keys(world)
    assert {k for k, _, _ in keys_after[world.x_client]} == x_key_ids
    assert all(
        wrapped is None and destroyed is not None
        for _, wrapped, destroyed in keys_after[world.x_client]
    ), keys_after[world.x_client]
    assert keys_after[world.y_client] == keys_before[world.y_client]
    assert snapshot_versions(app, x1) == []  # the one at 50 and the one the erasure took
    assert snapshot_versions(app, x2) == []
    assert snapshot_versions(app, y) == [SNAPSHOT_INTERVAL]

    # -- 4. the events were not rewritten, and the chain still verifies ------------------
    for engagement_id in world.xs:
        stored_after = stored_rows(app, engagement_id)
        assert stored_after[:-1] == stored_before[engagement_id], "stored events were rewritten"
        assert stored_after[-1][:2] == (versions[engagement_id] + 1, SubjectErased.TOPIC)
    assert stored_rows(app, y) == stored_before[y]
    report = app.auditor.verify()
    assert report.ok, report.breaks
    assert report.anchors == 1
    assert report.events == sum(versions.values()) + 2

    # -- read models and dashboards: nothing of X; wellbeing gone; Y untouched ----------
    shown = shown_text(world)
    assert x_marker not in shown
    assert y_marker not in shown
    docs = world.progress.all_docs(world.progress.live_generation())
    for engagement_id in world.xs:
        doc = docs[str(engagement_id)]
        assert doc["erased"]
        assert doc["wellbeing"] == []
        assert doc["version"] == versions[engagement_id] + 1
        board, _ = world.dashboards.engagement(FIRM, str(engagement_id), NOW)
        assert board["wellbeing"] is None
    assert len(docs[str(y)]["wellbeing"]) == len(y_wellbeing)

    # -- 5. the firm's figures did not move (incrementally, and rebuilt from scratch) ---
    after = figures(world.dashboards, everyone)
    assert set(after) == set(before)
    for section in before:
        assert after[section] == before[section], section
    rebuilt = ProgressStore(SqliteDatabase(str(tmp_path / "rebuilt.db")))
    rebuilt.create_tables()
    ProjectionRunner(app, rebuilt).catch_up()
    from_scratch = figures(Dashboards(rebuilt, lambda: 0), everyone)
    for section in before:
        assert from_scratch[section] == before[section], f"rebuilt: {section}"

    # -- exports: full form keeps X's events, without X; pseudonymized as well ----------
    for fmt, (data, rows) in exports(world, None).items():
        assert x_marker not in rows, fmt
        assert not contains(data, x_marker), fmt
        assert y_marker in rows, fmt
        for engagement_id in world.xs:
            assert rows_of(rows, engagement_id) == versions[engagement_id] + 1, fmt
    for fmt, (data, rows) in exports(world, PSEUDONYMS).items():
        assert x_marker not in rows, fmt
        assert not contains(data, x_marker), fmt


# -- beyond the acceptance test: gaps found while writing it ------------------------------


def test_free_text_titles_of_an_erased_client_are_forgotten_too(world: World) -> None:
    """Goal, milestone and commitment titles are free text a coach writes about the
    client (test_export.py's own example is "leave my abusive manager"); exports drop
    them from the pseudonymized form and the read model blanks them at erasure, and
    docs/security.md lists what stays in clear as "ids, times, actor and firm, enums,
    counts, dates and money". They must be gone after an erasure like the rest."""
    app, marker = world.app, world.x_marker
    when = days_ago(60)
    levels = {str(n): f"level {n}" for n in range(-2, 3)}
    target = (NOW + timedelta(days=90)).date()
    goal = SmartGoal.of(f"goal {marker}", "offers", "0", "2", target, 2, levels)
    goal_id = run(app, when, c.SetGoal(engagement_id=world.x2, goal=goal))
    run(
        app,
        when + timedelta(hours=1),
        c.DefineMilestone(engagement_id=world.x2, goal_id=goal_id, title=f"milestone {marker}"),
    )
    run(
        app,
        when + timedelta(hours=2),
        c.MakeCommitment(engagement_id=world.x2, title=f"commitment {marker}", due_date=target),
    )
    for what in ("goal", "milestone", "commitment"):
        assert f"{what} {marker}" in history_text(app, world.x2), what
    # Read models too keep them sealed at rest, and open them to answer.
    world.project()
    board, _ = world.dashboards.engagement(FIRM, str(world.x2), NOW)
    assert f"goal {marker}" in text_of(board)
    document, _ = world.dashboards.document(FIRM, str(world.x2))
    for what in ("goal", "milestone", "commitment"):
        assert f"{what} {marker}" in text_of(document), what
    assert not contains(world.dump(), marker), "titles in clear in the database"

    app.execute(ADMIN, c.EraseSubject(engagement_id=world.x2))
    world.project()
    document, _ = world.dashboards.document(FIRM, str(world.x2))
    assert marker not in text_of(document), "titles survive in the read model"

    assert marker not in history_text(app, world.x2), "titles survive in the history"
    assert marker not in state_text(app, world.x2), "titles survive in the aggregate"
    assert not contains(world.dump(), marker), "titles survive in the database"


@pytest.mark.parametrize("store_env", ["sqlite"], indirect=True)
def test_no_copy_of_a_destroyed_key_is_left_in_the_sqlite_files(world: World) -> None:
    """Crypto-shredding holds only if the wrapped data key is gone from the files, not
    just from the table: a copy of the database directory (which, embedded and without
    COACHLOG_MASTER_KEY, also holds the master key file ``<db>.key``) could otherwise
    unwrap it and read X's data again."""
    path = world.sqlite_path
    assert path is not None
    wrapped = [w for _, w, _ in data_keys(world)[world.x_client] if w is not None]
    assert wrapped, "X has a live key"
    files = sorted(path.parent.glob(f"{path.name}*"))
    assert any(w.encode() in p.read_bytes() for p in files for w in wrapped)

    world.app.execute(ADMIN, c.EraseSubject(engagement_id=world.x2))

    assert all(w is None for _, w, _ in data_keys(world)[world.x_client])
    with closing(sqlite3.connect(path)) as conn:
        sql_dump = "\n".join(conn.iterdump())
    assert not any(w in sql_dump for w in wrapped), "in the SQL dump"
    left = [
        p.name for p in files if p.exists() and any(w.encode() in p.read_bytes() for w in wrapped)
    ]
    assert not left, f"X's destroyed data key is still readable in {left}"


# -- Kafka ------------------------------------------------------------------------------------

PARTITIONS = 3


def relay_to_fresh_topic(world: World, bootstrap: str, label: str) -> list[ConsumerRecord]:
    """Publish the whole log to a new topic with a new relay; read every record back."""
    topic = f"coachlog-erasure-{label}-{uuid.uuid4().hex[:10]}"
    workers.create_topic(bootstrap, topic, PARTITIONS)
    settings = KafkaSettings(bootstrap=bootstrap, topic=topic, partitions=PARTITIONS)
    relay = Relay(world.app, world.db, settings, name=f"erasure-{label}-{world.token[:8]}")
    relay.create_tables()
    try:
        while relay.run_once():
            pass
    finally:
        relay.producer().close(timeout=5)
    head = world.app.recorder.max_notification_id() or 0
    assert relay.position() == head
    return read_topic(bootstrap, topic, set(range(1, head + 1)))


def read_topic(
    bootstrap: str, topic: str, positions: set[int], timeout: float = 20.0
) -> list[ConsumerRecord]:
    """Every record on the topic, read from the beginning until each of ``positions``
    was seen and the topic stayed quiet a moment."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        partitions = workers.wait_until(
            lambda: consumer.partitions_for_topic(topic), 15, f"metadata of {topic}"
        )
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        records: list[ConsumerRecord] = []
        seen: set[int] = set()
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline and quiet < 2:
            batch = consumer.poll(timeout_ms=300, max_records=5000)
            for found in batch.values():
                for record in found:
                    records.append(record)
                    seen.add(int(dict(record.headers)["coachlog_position"]))
            quiet = quiet + 1 if positions <= seen and not batch else 0
        assert positions <= seen, f"{len(positions - seen)} positions never came back"
        return records
    finally:
        consumer.close()


def record_bytes(record: ConsumerRecord) -> bytes:
    headers = b"".join(k.encode() + b"=" + v for k, v in record.headers)
    return bytes(record.key or b"") + b"\n" + bytes(record.value) + b"\n" + headers


def opened(records: list[ConsumerRecord], mapper: Any) -> dict[UUID, list[EngagementEvent]]:
    """The events of the records, their sealed fields opened where ``mapper`` can."""
    events: dict[UUID, list[EngagementEvent]] = {}
    for record in records:
        event = decode(record.value, record.headers, mapper=mapper).positioned.event
        events.setdefault(event.originator_id, []).append(event)
    return events


def personal_text(events: list[EngagementEvent]) -> str:
    return text_of([{n: getattr(e, n) for n in sealed_fields(type(e))} for e in events])


def readable(events: list[EngagementEvent]) -> int:
    """How many events show any personal or sensitive value."""
    return sum(1 for e in events if not all(blank(getattr(e, n)) for n in sealed_fields(type(e))))


def test_kafka_copies_of_an_erased_client_cannot_be_opened(
    world: World, kafka_bootstrap: str
) -> None:
    app, x_marker, y_marker = world.app, world.x_marker, world.y_marker
    stored_x1_v1 = json.loads(split_state(stored_rows(app, world.x1)[0][2])[1])["_sealed"]

    published = relay_to_fresh_topic(world, kafka_bootstrap, "before")
    for record in published:
        raw = record_bytes(record)
        assert not contains(raw, x_marker), record.headers
        assert not contains(raw, y_marker), record.headers
    x1_v1 = next(r for r in published if dict(r.headers)["ce_id"] == f"{world.x1}/1".encode())
    assert json.loads(x1_v1.value)["sealed"] == stored_x1_v1  # the very stored ciphertext

    # before the erasure, whoever holds the key ring opens the sealed copies
    events = opened(published, app.mapper)
    for engagement_id in world.xs:
        text = personal_text(events[engagement_id])
        for what in ("Xavier", "session notes", "result", "assumption", "payslip"):
            assert f"{what} {x_marker}" in text, what
        assert readable(events[engagement_id]) > 6
    assert f"Yvonne {y_marker}" in personal_text(events[world.y])

    app.execute(ADMIN, c.EraseSubject(engagement_id=world.x2))

    # the copies already in Kafka can no longer be opened, by this process or a new one
    reopened = Engagements(env=world.env)
    try:
        for mapper in (app.mapper, reopened.mapper):
            events = opened(published, mapper)
            for engagement_id in world.xs:
                assert readable(events[engagement_id]) == 0, personal_text(events[engagement_id])
                assert x_marker not in personal_text(events[engagement_id])
            assert f"Yvonne {y_marker}" in personal_text(events[world.y])
    finally:
        reopened.close()

    # and the log published again after the erasure carries nothing of X either
    republished = relay_to_fresh_topic(world, kafka_bootstrap, "after")
    for record in republished:
        raw = record_bytes(record)
        assert not contains(raw, x_marker), record.headers
        assert not contains(raw, y_marker), record.headers
    events = opened(republished, app.mapper)
    for engagement_id in world.xs:
        assert readable(events[engagement_id]) == 0
        assert type(events[engagement_id][-1]) is SubjectErased
    assert f"Yvonne {y_marker}" in personal_text(events[world.y])
