"""Render an engagement's history as a readable timeline for the terminal."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from domain.application import HistoryEntry

_WORD = re.compile(r"(?<!^)(?=[A-Z])")
_LATE = 60 * 60  # seconds between occurred and recorded before we call an entry late


def humanize(event_type: str) -> str:
    """'SessionHeld' -> 'session held'."""
    return _WORD.sub(" ", event_type).lower()


def _value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) or "-"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_value(v)}" for k, v in value.items())
    text = str(value)
    return text if len(text) <= 90 else text[:87] + "..."


def format_entry(entry: HistoryEntry) -> str:
    """One event as 'when  vN  what  by whom' followed by its details."""
    meta = entry.metadata
    lag = (entry.recorded_at - entry.occurred_at).total_seconds()
    late = f"  (logged {entry.recorded_at:%Y-%m-%d})" if lag > _LATE else ""
    head = (
        f"{entry.occurred_at:%Y-%m-%d %H:%M}  v{entry.version:<4} {humanize(entry.event_type):<32}"
        f" by {meta['actor_id']} ({meta['actor_role']}){late}"
    )
    details = [
        f"{' ' * 24}{key.replace('_', ' ')}: {_value(value)}"
        for key, value in entry.payload.items()
        if value not in (None, "", [], {})
    ]
    return "\n".join([head, *details])


def format_history(entries: Iterable[HistoryEntry]) -> str:
    """The whole timeline, oldest first."""
    return "\n".join(format_entry(entry) for entry in entries)
