"""How the pages write figures: rates as percentages, money with separators, dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from flask import Flask

#: Shown where a figure does not exist yet (no closed engagements, no outcomes, ...).
NONE = "—"


def rate(value: float | None) -> str:
    """A share 0..1 as a percentage: 0.8696 -> '87.0 %'."""
    return NONE if value is None else f"{value * 100:.1f} %"


def percent(value: float | str | Decimal | None) -> str:
    """A figure already in percent (ROI %, NPS): 191.3 -> '191.3 %'."""
    return NONE if value is None else f"{float(value):,.1f} %"


def number(value: float | int | None, places: int = 1) -> str:
    """A plain figure, rounded for reading: 68.1631 -> '68.2'."""
    if value is None:
        return NONE
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{places}f}"


def money(value: str | Decimal | None, currency: str | None = None) -> str:
    """A decimal amount with thousands separators: '42450.00' -> '42,450.00 EUR'."""
    if value is None:
        return NONE
    try:
        amount = f"{Decimal(value):,.2f}"
    except InvalidOperation:
        return str(value)
    return f"{amount} {currency}" if currency else amount


def label(value: str | None) -> str:
    """An enumerated value for people: 'stalled_mid_career' -> 'Stalled mid career'."""
    if not value:
        return NONE
    text = value.replace("_", " ")
    return text[:1].upper() + text[1:]


def day(value: str | date | datetime | None) -> str:
    """A date: '2026-10-15T12:00:00+00:00' -> '15 Oct 2026'."""
    if value is None:
        return NONE
    moment = _parse(value)
    return f"{moment.day} {moment:%b %Y}"


def moment(value: str | datetime | None) -> str:
    """A time in UTC: '2026-11-29T15:22:24+00:00' -> '29 Nov 2026, 15:22 UTC'."""
    if value is None:
        return NONE
    parsed = _parse(value)
    if not isinstance(parsed, datetime):
        return day(parsed)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return f"{parsed.day} {parsed:%b %Y, %H:%M} UTC"


def _parse(value: str | date | datetime) -> date | datetime:
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)


def register(app: Flask) -> None:
    """Make the formats available to templates as filters."""
    for name, function in {
        "rate": rate,
        "percent": percent,
        "number": number,
        "money": money,
        "label": label,
        "day": day,
        "moment": moment,
    }.items():
        app.jinja_env.filters[name] = function
