"""Stream the event log, or a slice of it, to JSONL, CSV or Parquet in constant memory.

Pseudonymized by default: person ids become stable keyed hashes (HMAC-SHA256 under
``COACHLOG_PSEUDONYM_KEY``), and every personal field (the client's own words or data,
as domain/fields.py declares them) is dropped; sensitive research data (the wellbeing
scores) stays. The full form is for roles allowed to have it (firm admins and
auditors).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any
from uuid import UUID

from eventsourcing.persistence import Mapper

from domain.application import Engagements
from domain.engagement import EVENT_CLASSES
from domain.event import EngagementEvent
from domain.fields import declaration, person_fields, personal_fields, sealed_fields
from domain.lifecycle import EngagementOpened
from domain.storage import SealingMapper, prefetch_keys
from workers.codec import plain_json

COLUMNS = (
    "position",
    "engagement_id",
    "version",
    "event_type",
    "occurred_at",
    "recorded_at",
    "firm_id",
    "actor_id",
    "actor_role",
    "correlation_id",
    "causation_id",
    "payload",
)
PAGE = 1000


class ExportError(ValueError):
    """The export cannot be made as asked."""


@dataclass(frozen=True)
class Slice:
    """Which part of the log to take. Empty means everything."""

    firm_id: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None
    event_types: frozenset[str] = field(default_factory=frozenset)
    segment: str | None = None
    upto: int | None = None


@dataclass
class Pseudonymizer:
    """Stable keyed hashes for person ids; the key never leaves the server."""

    key: bytes

    @classmethod
    def from_env(cls) -> Pseudonymizer:
        """The key from COACHLOG_PSEUDONYM_KEY (required: a default would be guessable)."""
        secret = os.environ.get("COACHLOG_PSEUDONYM_KEY", "")
        if len(secret) < 16:
            msg = "set COACHLOG_PSEUDONYM_KEY (16+ characters) to export pseudonymized data"
            raise ExportError(msg)
        return cls(secret.encode())

    def person(self, value: str | None) -> str | None:
        if value is None:
            return None
        digest = hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()
        return f"p_{digest[:20]}"


def pseudonymize(event: EngagementEvent, pseudonymizer: Pseudonymizer) -> EngagementEvent:
    """A copy of ``event`` with person ids hashed and personal data emptied (same type)."""
    declared = declaration(type(event))
    changes: dict[str, Any] = {
        name: pseudonymizer.person(getattr(event, name)) for name in person_fields(type(event))
    }
    changes.update({name: declared[name].blank() for name in personal_fields(type(event))})
    return dataclasses.replace(event, **changes)


def row(
    position: int, event: EngagementEvent, pseudonymizer: Pseudonymizer | None
) -> dict[str, Any]:
    """One event as an export row (payload as a dict of plain JSON values)."""
    payload = event.payload()
    payload.pop("originator_topic", None)
    meta = event.metadata()
    actor = meta["actor_id"]
    if pseudonymizer is not None:
        persons, personal = person_fields(type(event)), personal_fields(type(event))
        payload = {
            k: (pseudonymizer.person(v) if k in persons else v)
            for k, v in payload.items()
            if k not in personal
        }
        actor = pseudonymizer.person(actor)
    return {
        "position": position,
        "engagement_id": str(event.originator_id),
        "version": event.originator_version,
        "event_type": type(event).__name__,
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.timestamp.isoformat(),
        "firm_id": event.firm_id,
        "actor_id": actor,
        "actor_role": meta["actor_role"],
        "correlation_id": str(meta["correlation_id"]),
        "causation_id": None if meta["causation_id"] is None else str(meta["causation_id"]),
        "payload": plain_json(payload),
    }


def events(
    engagements: Engagements, part: Slice, mapper: Mapper[UUID] | None = None
) -> Iterator[tuple[int, EngagementEvent]]:
    """The log's engagement events in order, filtered by ``part``, up to a fixed position.

    The head is read once at the start (or ``part.upto``), so an export or a replay
    sees one consistent prefix of the log however long it runs. ``mapper`` decodes
    (default: the application's, which decrypts every sealed field it can).
    """
    mapper = mapper or engagements.mapper
    stop = part.upto if part.upto is not None else engagements.recorder.max_notification_id() or 0
    in_segment: set[str] = set()
    start = 0
    while start < stop:
        page = engagements.recorder.select_notifications(
            start=start, limit=PAGE, stop=stop, inclusive_of_start=False
        )
        if not page:
            return
        prefetch_keys(mapper, {n.originator_id for n in page})
        for notification in page:
            event = mapper.to_domain_event(notification)
            if isinstance(event, EngagementEvent) and _wanted(event, part, in_segment):
                yield notification.id, event
        start = page[-1].id


def _wanted(event: EngagementEvent, part: Slice, in_segment: set[str]) -> bool:
    if part.segment is not None:
        # Opening precedes everything else of an engagement in the log: one pass suffices.
        if isinstance(event, EngagementOpened) and event.segment == part.segment:
            in_segment.add(str(event.originator_id))
        if str(event.originator_id) not in in_segment:
            return False
    if part.firm_id is not None and event.firm_id != part.firm_id:
        return False
    if part.event_types and type(event).__name__ not in part.event_types:
        return False
    if part.occurred_from and event.occurred_at < part.occurred_from:
        return False
    if part.occurred_to and event.occurred_at >= part.occurred_to:
        return False
    if part.recorded_from and event.timestamp < part.recorded_from:
        return False
    return not (part.recorded_to and event.timestamp >= part.recorded_to)


def pseudonymized_reader(mapper: Mapper[UUID]) -> Mapper[UUID]:
    """The mapper of the pseudonymized form: it decrypts only sealed fields that form
    keeps (the wellbeing scores), never the free text it drops anyway."""
    if not isinstance(mapper, SealingMapper):
        return mapper
    keeps = frozenset(c for c in EVENT_CLASSES if set(sealed_fields(c)) - set(personal_fields(c)))
    return mapper.reading_only(keeps)


def _rows(
    engagements: Engagements, part: Slice, pseudonymizer: Pseudonymizer | None
) -> Iterator[dict[str, Any]]:
    reader = (
        engagements.mapper if pseudonymizer is None else pseudonymized_reader(engagements.mapper)
    )
    for position, event in events(engagements, part, reader):
        yield row(position, event, pseudonymizer)


def write_jsonl(
    rows: Iterator[dict[str, Any]], out: IO[bytes], progress: Callable[[int], Any]
) -> int:
    count = 0
    for item in rows:
        out.write(json.dumps(item, separators=(",", ":")).encode() + b"\n")
        count += 1
        progress(1)
    return count


def write_csv(
    rows: Iterator[dict[str, Any]], out: IO[bytes], progress: Callable[[int], Any]
) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    count = 0
    for item in rows:
        writer.writerow({**item, "payload": json.dumps(item["payload"], separators=(",", ":"))})
        count += 1
        progress(1)
    text.detach()
    return count


def write_parquet(
    rows: Iterator[dict[str, Any]],
    out: IO[bytes],
    progress: Callable[[int], Any],
    row_group: int = 10_000,
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("position", pa.int64()),
            ("engagement_id", pa.string()),
            ("version", pa.int32()),
            ("event_type", pa.string()),
            ("occurred_at", pa.timestamp("us", tz="UTC")),
            ("recorded_at", pa.timestamp("us", tz="UTC")),
            ("firm_id", pa.string()),
            ("actor_id", pa.string()),
            ("actor_role", pa.string()),
            ("correlation_id", pa.string()),
            ("causation_id", pa.string()),
            ("payload", pa.string()),
        ]
    )
    count = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []
        for item in rows:
            batch.append(
                {
                    **item,
                    "occurred_at": datetime.fromisoformat(item["occurred_at"]),
                    "recorded_at": datetime.fromisoformat(item["recorded_at"]),
                    "payload": json.dumps(item["payload"], separators=(",", ":")),
                }
            )
            if len(batch) >= row_group:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
                progress(len(batch))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
            progress(len(batch))
    return count


WRITERS = {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet}


def export(
    engagements: Engagements,
    out: IO[bytes],
    fmt: str,
    part: Slice,
    pseudonymizer: Pseudonymizer | None,
    progress: Callable[[int], Any] = lambda n: None,
) -> int:
    """Write the slice to ``out`` in ``fmt``; return how many events were written.

    ``pseudonymizer=None`` writes the full form: callers must have checked the role.
    """
    if fmt not in WRITERS:
        msg = f"unknown format {fmt!r}: use one of {', '.join(WRITERS)}"
        raise ExportError(msg)
    return WRITERS[fmt](_rows(engagements, part, pseudonymizer), out, progress)
