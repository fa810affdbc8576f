"""JSON transcodings for the types our events and snapshots hold beyond eventsourcing's own."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import date
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.errors import UnstorableValue
from domain.state import STATE_RECORDS


class StrictJSONTranscoder(JSONTranscoder):
    """eventsourcing's JSON transcoder, storing standard JSON only.

    The stock encoder writes ``NaN`` and ``Infinity`` (which no other JSON reader
    accepts) and fails deep inside a save on text the store cannot encode (an unpaired
    surrogate) or on nesting deeper than the interpreter's stack. Here each of those is
    an :class:`UnstorableValue` naming the field, raised while the save is prepared
    (domain/groupcommit.py), so it fails that command alone.
    """

    def __init__(self) -> None:
        super().__init__()
        self.encoder = json.JSONEncoder(
            default=self._encode_obj,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )

    def encode(self, obj: Any) -> bytes:
        try:
            return super().encode(obj)
        except (ValueError, RecursionError) as error:  # UnicodeEncodeError is a ValueError
            raise UnstorableValue(self._culprit(obj), _reason(error)) from None

    def _culprit(self, obj: Any) -> str:
        """The first field of a dict whose value cannot be encoded on its own."""
        if isinstance(obj, dict):
            for name, value in obj.items():
                try:
                    super().encode(value)
                except (ValueError, RecursionError):
                    return str(name)
        return "payload"


def _reason(error: BaseException) -> str:
    if isinstance(error, UnicodeError):
        return "holds an unpaired surrogate (not a character): it cannot be stored"
    if isinstance(error, RecursionError):
        return "is nested too deeply to be stored"
    return "holds a value JSON cannot represent (NaN or Infinity): it cannot be stored"


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
