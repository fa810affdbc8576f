"""Tamper evidence: every stored event is hash-linked; anchors pin the heads of all chains.

Tampering is done the way an attacker with database access would: direct SQL on the
events and anchor tables, bypassing coachlog. Each kind — a changed byte, a deleted
event, a truncated stream, a consistently rewritten stream, an edited anchor — must be
detected and located (engagement and first version affected).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from domain.application import Engagements
from domain.audit import AuditReport
from domain.commands import ScheduleSession
from domain.context import CommandContext
from domain.keys import SqlTables
from domain.storage import MAGIC, chain_link, split_state
from tests.conftest import days_ago
from tests.integration.helpers import fill_with_work, open_engagement


def _tables(app: Engagements) -> SqlTables:
    store = app.keys.store
    assert isinstance(store, SqlTables)
    return store


def _events_table(app: Engagements) -> str:
    tables = _tables(app)
    name = app.recorder.events_table_name  # type: ignore[attr-defined]
    return f'{tables.prefix}"{name}"' if tables.dialect == "postgres" else name


def _id(app: Engagements, engagement_id: UUID) -> Any:
    return engagement_id if _tables(app).dialect == "postgres" else engagement_id.hex


def execute(app: Engagements, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    tables = _tables(app)
    with app.recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
        cursor.execute(tables.sql(statement), params)
        try:
            return [tables._row(r) for r in cursor.fetchall()]
        except Exception:
            return []


def raw_state(app: Engagements, engagement_id: UUID, version: int) -> bytes:
    (stored,) = app.recorder.select_events(engagement_id, gt=version - 1, lte=version)
    return bytes(stored.state)


def write_state(app: Engagements, engagement_id: UUID, version: int, state: bytes) -> None:
    execute(
        app,
        f"UPDATE {_events_table(app)} SET state = %s"
        " WHERE originator_id = %s AND originator_version = %s",
        (state, _id(app, engagement_id), version),
    )


def delete_events(app: Engagements, engagement_id: UUID, condition: str, value: int) -> None:
    execute(
        app,
        f"DELETE FROM {_events_table(app)} WHERE originator_id = %s"
        f" AND originator_version {condition} %s",
        (_id(app, engagement_id), value),
    )


def more_work(app: Engagements, ctx: CommandContext, engagement_id: UUID, count: int) -> None:
    """Schedule ``count`` more sessions (fresh ids), one save each."""
    for number in range(count):
        app.execute(
            ctx.at(days_ago(30 - number)),
            ScheduleSession(
                engagement_id=engagement_id,
                scheduled_for=days_ago(29 - number),
                duration_minutes=60,
            ),
        )


@pytest.fixture
def two(app: Engagements, ctx: CommandContext) -> tuple[UUID, UUID]:
    """Two engagements of 1 + 20 events each, anchored."""
    first = open_engagement(app, ctx, days_ago(60))
    second = open_engagement(app, ctx, days_ago(60))
    for engagement_id in (first, second):
        fill_with_work(app, ctx, engagement_id, 20, days_ago(59))
    assert app.auditor.anchor() is not None
    return first, second


def only_break(report: AuditReport) -> tuple[str, int, str]:
    assert not report.ok
    assert len(report.breaks) == 1, report.breaks
    (found,) = report.breaks
    return found.engagement_id, found.version, found.problem


def test_an_untouched_store_verifies_and_every_event_is_linked(
    app: Engagements, two: tuple[UUID, UUID]
) -> None:
    report = app.auditor.verify()
    assert report.ok, report.breaks
    assert (report.engagements, report.events, report.anchors) == (2, 42, 1)
    for engagement_id in two:
        assert app.auditor.verify_engagement(engagement_id).ok
        previous = bytes(32)
        for stored in app.recorder.select_events(engagement_id):
            link, payload = split_state(bytes(stored.state))
            assert link == chain_link(
                previous, engagement_id, stored.originator_version, stored.topic, payload
            )
            previous = link


def test_a_changed_byte_is_detected_at_its_version(
    app: Engagements, two: tuple[UUID, UUID]
) -> None:
    first, second = two
    state = bytearray(raw_state(app, first, 7))
    state[len(state) // 2 + 20] ^= 0x01  # inside the payload, past the header
    write_state(app, first, 7, bytes(state))

    assert only_break(app.auditor.verify()) == (str(first), 7, "content_changed")
    assert only_break(app.auditor.verify_engagement(first)) == (str(first), 7, "content_changed")
    assert app.auditor.verify_engagement(second).ok


def test_a_rewritten_link_is_detected_at_the_next_version(
    app: Engagements, two: tuple[UUID, UUID]
) -> None:
    first, _ = two
    _, payload = split_state(raw_state(app, first, 7))
    forged = payload.replace(b"coach-ada", b"coach-eve")
    assert forged != payload
    (stored,) = app.recorder.select_events(first, gt=6, lte=7)
    previous, _ = split_state(raw_state(app, first, 6))
    assert previous is not None
    new_link = chain_link(previous, first, 7, stored.topic, forged)
    write_state(app, first, 7, MAGIC + new_link + forged)

    assert only_break(app.auditor.verify()) == (str(first), 8, "content_changed")


def test_a_deleted_event_is_detected_where_it_was(app: Engagements, two: tuple[UUID, UUID]) -> None:
    first, _ = two
    delete_events(app, first, "=", 12)
    report = app.auditor.verify()
    assert only_break(report) == (str(first), 12, "missing_event")
    assert "version 12 missing before version 13" in report.breaks[0].detail


def test_a_deleted_opening_event_is_detected(app: Engagements, two: tuple[UUID, UUID]) -> None:
    _, second = two
    delete_events(app, second, "=", 1)
    assert only_break(app.auditor.verify_engagement(second)) == (str(second), 1, "missing_event")


def test_a_truncated_stream_is_detected_by_the_anchor(
    app: Engagements, two: tuple[UUID, UUID]
) -> None:
    first, _ = two
    delete_events(app, first, ">", 15)
    report = app.auditor.verify()
    assert only_break(report) == (str(first), 16, "truncated")
    assert "ends at version 15, but anchor 1 recorded version 21" in report.breaks[0].detail


def test_a_whole_stream_deleted_is_detected_by_the_anchor(
    app: Engagements, two: tuple[UUID, UUID]
) -> None:
    _, second = two
    delete_events(app, second, ">=", 1)
    assert only_break(app.auditor.verify()) == (str(second), 1, "stream_missing")


def test_a_consistently_rewritten_stream_is_caught_by_the_anchor(
    app: Engagements, two: tuple[UUID, UUID]
) -> None:
    """Recomputing every link after a change makes the chain whole again; the anchored
    head no longer matches."""
    first, _ = two
    previous = bytes(32)
    for stored in app.recorder.select_events(first):
        _, payload = split_state(bytes(stored.state))
        if stored.originator_version == 5:
            payload = payload.replace(b"coach-ada", b"coach-eve")
        link = chain_link(previous, first, stored.originator_version, stored.topic, payload)
        write_state(app, first, stored.originator_version, MAGIC + link + payload)
        previous = link
    assert only_break(app.auditor.verify()) == (str(first), 21, "anchor_mismatch")


def test_anchors_extend_the_running_digest_and_an_edited_anchor_is_caught(
    app: Engagements, ctx: CommandContext, two: tuple[UUID, UUID]
) -> None:
    first, _ = two
    assert app.auditor.anchor() is None  # nothing moved
    more_work(app, ctx, first, 3)
    second_anchor = app.auditor.anchor()
    assert second_anchor is not None
    assert (second_anchor.seq, list(second_anchor.heads)) == (2, [str(first)])
    report = app.auditor.verify(expect_digest=second_anchor.digest)
    assert report.ok
    assert (report.anchors, report.digest) == (2, second_anchor.digest)

    assert only_break(app.auditor.verify(expect_digest="0" * 64))[2] == "digest_mismatch"

    execute(
        app,
        "UPDATE {p}coachlog_audit_anchors SET position = position - 1 WHERE seq = %s",
        (1,),
    )
    found = app.auditor.verify().breaks
    assert [(b.version, b.problem) for b in found] == [(1, "anchor_tampered")]


def test_new_events_keep_chaining_after_a_restart(
    app: Engagements, store_env: dict[str, str], ctx: CommandContext, two: tuple[UUID, UUID]
) -> None:
    """A fresh process (empty link cache) continues each chain from the stored head."""
    first, _ = two
    other = Engagements(env=store_env)
    try:
        more_work(other, ctx, first, 2)
        more_work(app, ctx, first, 2)  # app's cache of chain heads is now stale
    finally:
        other.close()
    assert app.auditor.verify().ok
