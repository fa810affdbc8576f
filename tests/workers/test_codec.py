"""Engagement events as Kafka messages: typed round trip, CloudEvents headers, no
personal text on the wire."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.application import Engagements
from domain.commands import HoldSession, ScheduleSession
from domain.context import CommandContext
from domain.engagement import EVENT_CLASSES
from domain.event import EngagementEvent
from domain.fields import blanks, declaration, sealed_fields
from projections.store import Positioned
from tests.conftest import FIRM, days_ago, opening
from tests.unit.test_catalogue import drive_a_whole_engagement
from workers.codec import CONTENT_TYPE, decode, encode, partition_for

MARKER = "zq-PERSONAL-MARKER-7731"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engagements]:
    path = tmp_path_factory.mktemp("codec") / "events.db"
    application = Engagements(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    try:
        yield application
    finally:
        application.close()


def log_of(app: Engagements) -> list[Positioned]:
    """Every event as the application decodes it (every sealed field opened; a
    projection's reader opens only what its fold needs)."""
    return [
        Positioned(n.id, event)
        for n in app.recorder.select_notifications(start=1, limit=10**9)
        if isinstance(event := app.mapper.to_domain_event(n), EngagementEvent)
    ]


@pytest.fixture(scope="module")
def every_event(app: Engagements) -> list[Positioned]:
    """One engagement driven through every command: every event type, from the store."""
    ctx = CommandContext(actor_id="coach-ada", actor_role="coach", firm_id=FIRM)
    drive_a_whole_engagement(app, ctx)
    return log_of(app)


def _same_types(left: Any, right: Any, where: str) -> None:
    assert type(left) is type(right), (where, type(left), type(right))
    if isinstance(left, list):
        for a, b in zip(left, right, strict=True):
            _same_types(a, b, where)
    if isinstance(left, dict):
        for key in left:
            _same_types(left[key], right[key], f"{where}.{key}")


def test_the_fixture_covers_every_event_type(every_event: list[Positioned]) -> None:
    assert {type(p.event) for p in every_event} == set(EVENT_CLASSES)


def test_every_event_type_round_trips_with_its_types(every_event: list[Positioned]) -> None:
    previous: dict[int, int] = {}
    seen_types: set[type] = set()
    for item in every_event:
        event = item.event
        partition = partition_for(event.originator_id, 6)
        message = encode(event, item.position, previous.get(partition, 0), 6)
        linked = decode(message.value, message.headers)

        assert linked.positioned.position == item.position
        assert linked.previous_position == previous.get(partition, 0)
        previous[partition] = item.position
        decoded = linked.positioned.event
        assert type(decoded) is type(event)
        empty = blanks(type(event))
        for f in dataclasses.fields(event):
            original = getattr(event, f.name)
            expected = empty.get(f.name, original)
            got = getattr(decoded, f.name)
            assert got == expected, (type(event).__name__, f.name, got, expected)
            if expected is not None:
                _same_types(got, expected, f"{type(event).__name__}.{f.name}")
                seen_types.add(type(expected))
        assert message.partition == partition
        assert message.key == str(event.originator_id).encode()
    # The payloads exercised every type that JSON alone would not bring back.
    assert {Decimal, datetime, date, UUID} <= seen_types


def test_cloudevents_headers(every_event: list[Positioned]) -> None:
    for item in every_event:
        event = item.event
        message = encode(event, item.position, 0, 4)
        headers = dict(message.headers)
        assert len(headers) == len(message.headers), "a header appears twice"
        assert headers["ce_specversion"] == b"1.0"
        assert headers["ce_id"] == f"{event.originator_id}/{event.originator_version}".encode()
        assert headers["ce_source"].decode().startswith("urn:coachlog")
        assert FIRM in headers["ce_source"].decode()
        assert headers["ce_type"] == type(event).TOPIC.encode()
        assert headers["ce_subject"] == str(event.originator_id).encode()
        assert datetime.fromisoformat(headers["ce_time"].decode()) == event.timestamp
        assert headers["content-type"] == CONTENT_TYPE.encode() == b"application/json"
        assert headers["coachlog_position"] == str(item.position).encode()
        assert json.loads(message.value)["originator_version"] == event.originator_version


def test_ce_ids_are_unique_per_event(every_event: list[Positioned]) -> None:
    ids = [dict(encode(p.event, p.position, 0, 4).headers)["ce_id"] for p in every_event]
    assert len(ids) == len(set(ids))


def _planted(event: EngagementEvent) -> EngagementEvent:
    """The same event with the marker planted in every text-holding sealed field."""
    changes: dict[str, Any] = {}
    for name in sealed_fields(type(event)):
        if declaration(type(event))[name].type is int:
            continue  # a sealed score holds no text to plant
        value = getattr(event, name)
        if isinstance(value, dict):
            changes[name] = {MARKER: MARKER}
        elif isinstance(value, list):
            changes[name] = [MARKER]
        else:
            changes[name] = MARKER
    return dataclasses.replace(event, **changes) if changes else event


def _bytes_of(message: Any) -> bytes:
    return message.key + message.value + b"".join(k.encode() + v for k, v in message.headers)


def test_personal_fields_never_travel(every_event: list[Positioned]) -> None:
    planted_somewhere = 0
    for item in every_event:
        event = _planted(item.event)
        planted_somewhere += event is not item.event
        message = encode(event, item.position, 0, 4)
        assert MARKER.encode() not in _bytes_of(message), type(event).__name__
        assert sorted(json.loads(message.value)["redacted"]) == sorted(sealed_fields(type(event)))
    assert planted_somewhere >= 10


def test_personal_text_written_through_the_app_is_absent_from_the_bytes(
    app: Engagements,
) -> None:
    ctx = CommandContext(actor_id="coach-ada", actor_role="coach", firm_id=FIRM).at(days_ago(3))
    opened = app.open_engagement(ctx, opening(client_id=f"c-{uuid4()}", client_name=MARKER))
    session = app.execute(
        ctx,
        ScheduleSession(
            engagement_id=opened.engagement_id,
            scheduled_for=days_ago(2),
            duration_minutes=60,
        ),
    ).result
    app.execute(
        ctx.at(days_ago(2)),
        HoldSession(
            engagement_id=opened.engagement_id,
            session_id=str(session),
            duration_minutes=50,
            pillars=["goals"],
            notes=f"the client said {MARKER} in confidence",
        ),
    )
    mine = [p for p in log_of(app) if p.event.originator_id == opened.engagement_id]
    assert [type(p.event).__name__ for p in mine] == [
        "EngagementOpened",
        "SessionScheduled",
        "SessionHeld",
    ]
    assert MARKER in mine[0].event.client_name  # type: ignore[attr-defined]
    assert MARKER in mine[2].event.notes  # type: ignore[attr-defined]
    for item in mine:
        message = encode(item.event, item.position, 0, 4)
        assert MARKER.encode() not in _bytes_of(message)
        decoded = decode(message.value, message.headers).positioned.event
        assert MARKER not in repr(decoded)


def test_records_that_are_not_coachlog_cloudevents_are_refused() -> None:
    with pytest.raises(ValueError, match="CloudEvent"):
        decode(b"{}", [("content-type", b"application/json")])
    with pytest.raises(ValueError, match="CloudEvent"):
        decode(b"{}", [("ce_specversion", b"0.3"), ("ce_type", b"coachlog.SessionHeld")])


def test_partitioning_is_kafkas_murmur2_and_spreads() -> None:
    # Values from Apache Kafka's UtilsTest.testMurmur2 (the Java client's partitioner).
    assert partition_for("21", 2**31 - 1) == -973932308 & 0x7FFFFFFF
    assert partition_for("foobar", 2**31 - 1) == -790332482 & 0x7FFFFFFF
    ids = [uuid4() for _ in range(400)]
    assert {partition_for(i, 6) for i in ids} == set(range(6))
    assert all(partition_for(i, 6) == partition_for(str(i), 6) for i in ids)
