"""JSON transcodings for the types our events and snapshots hold beyond eventsourcing's own."""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.state import STATE_RECORDS


class DateAsISO(Transcoding):
    """A calendar date as 'YYYY-MM-DD'."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class RecordAsDict(Transcoding):
    """A state record dataclass as a dict of its fields (nested values transcode too)."""

    def __init__(self, record_type: type[Any]) -> None:
        self.type = record_type
        self.name = record_type.__name__

    def encode(self, obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in fields(obj)}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


def register_domain_transcodings(transcoder: JSONTranscoder) -> None:
    """Register dates and every state record on ``transcoder``."""
    transcoder.register(DateAsISO())
    for record_type in STATE_RECORDS:
        transcoder.register(RecordAsDict(record_type))
