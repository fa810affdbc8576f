"""Engagement events as Kafka messages: plain JSON data, CloudEvents 1.0 binary mode.

The value is the event as JSON (ids, times, money as strings) with its personal and
sensitive fields (domain/fields.py) emptied (listed under ``redacted``) and carried
only inside ``sealed``:
the very ciphertext the event store holds, under the client's data key (domain/keys.py).
A consumer with access to the key ring opens it (``decode(..., mapper=...)``); once the
client was erased, nobody can. Headers carry the
CloudEvents attributes (``ce_*``), the global log position and the position of the
previous event sent to the same partition, which lets a consumer prove it saw every
event of its partition, or find exactly what it missed.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper
from eventsourcing.utils import resolve_topic
from kafka.partitioner.default import murmur2

from domain.event import EngagementEvent
from domain.fields import blanks
from domain.storage import open_sealed
from projections.store import Linked, Positioned

CONTENT_TYPE = "application/json"
SOURCE = "urn:coachlog"


@dataclass(frozen=True)
class Message:
    """One Kafka record: key, value, headers and the partition it goes to."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int


def partition_for(engagement_id: str | UUID, partitions: int) -> int:
    """The partition of an engagement (Kafka's murmur2 of the key, as the Java client)."""
    digest: int = murmur2(str(engagement_id).encode())
    return (digest & 0x7FFFFFFF) % partitions


def plain_json(value: Any) -> Any:
    """``value`` with times, decimals and UUIDs as strings, recursively (JSON-ready)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    return value


def encode(event: EngagementEvent, position: int, previous: int, partitions: int) -> Message:
    """Encode ``event`` at log ``position`` (``previous`` = last position on its partition)."""
    data: dict[str, Any] = {}
    redacted = []
    empty = blanks(type(event))
    for f in fields(event):
        value = getattr(event, f.name)
        if f.name in empty:
            redacted.append(f.name)
            value = empty[f.name]
        data[f.name] = plain_json(value)
    data["redacted"] = redacted
    data["sealed"] = event.__dict__.get("_sealed")
    engagement_id = str(event.originator_id)
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", f"{engagement_id}/{event.originator_version}".encode()),
        ("ce_source", f"{SOURCE}:firm:{event.firm_id}".encode()),
        ("ce_type", type(event).TOPIC.encode()),
        ("ce_subject", engagement_id.encode()),
        ("ce_time", event.timestamp.isoformat().encode()),
        ("content-type", CONTENT_TYPE.encode()),
        ("coachlog_position", str(position).encode()),
        ("coachlog_previous_position", str(previous).encode()),
        # The partition count the key was hashed over: a record sent under another
        # count than the consumer's proves nothing about its partition's chain.
        ("coachlog_partitions", str(partitions).encode()),
    ]
    return Message(
        key=engagement_id.encode(),
        value=json.dumps(data, separators=(",", ":")).encode(),
        headers=headers,
        partition=partition_for(engagement_id, partitions),
    )


def _typed(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _typed(options[0], value) if len(options) == 1 else value
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        return [_typed(item, v) for v in value]
    if hint is datetime:
        return datetime.fromisoformat(value)
    if hint is date:
        return date.fromisoformat(value)
    if hint is Decimal:
        return Decimal(value)
    if hint is UUID:
        return UUID(value)
    return value


def decode(
    value: bytes, headers: list[tuple[str, bytes]], mapper: Mapper[UUID] | None = None
) -> Linked:
    """Rebuild the event with its position and chain link; its personal fields stay
    empty unless ``mapper`` (a sealing mapper) can open the sealed copy."""
    meta = {k: v.decode() for k, v in headers}
    if meta.get("ce_specversion") != "1.0" or "ce_type" not in meta:
        msg = "not a coachlog CloudEvent"
        raise ValueError(msg)
    event_class = resolve_topic(meta["ce_type"])
    data = json.loads(value)
    hints = typing.get_type_hints(event_class)
    hints["originator_id"] = UUID  # declared as the aggregate's id type variable
    kwargs = {f.name: _typed(hints.get(f.name, Any), data.get(f.name)) for f in fields(event_class)}
    event = event_class(**kwargs)
    if mapper is not None and isinstance(event, EngagementEvent):
        open_sealed(mapper, event, data.get("sealed"))
    count = meta.get("coachlog_partitions")
    return Linked(
        Positioned(int(meta["coachlog_position"]), event),
        int(meta["coachlog_previous_position"]),
        None if count is None else int(count),
    )
