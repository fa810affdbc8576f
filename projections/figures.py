"""What group figures need of one engagement, small enough to store beside its document.

A firm overview puts every engagement in three groups (the firm, its coach, its
segment). Parsing every full progress document and recomputing its money, ROI and
session counts for each answer made the overview cost O(documents × document size);
the projection now stores these few figures in their own column when it writes the
document (``figures``), and group answers read only that column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from projections import metrics

Doc = dict[str, Any]

#: The document fields group figures use.
FIELDS = (
    "engagement_id",
    "coach_id",
    "segment",
    "status",
    "close_reason",
    "opened_at",
    "closed_at",
    "currency",
)
_MONEY = ("invoiced", "paid", "outstanding", "costs")
_ROI = metrics.ROI_DECIMALS


@dataclass(frozen=True)
class Figures:
    """One engagement's part in group figures."""

    doc: Doc  # FIELDS only
    counts: dict[str, Any]
    money: dict[str, Any]
    roi: dict[str, Any]
    latest_nps: int | None
    off_track_after: float | None  # epoch seconds; None unless active

    def off_track(self, now: datetime) -> bool:
        """Active and past two planned cadences since the last session."""
        return self.off_track_after is not None and now.timestamp() > self.off_track_after


def figures_of(doc: Doc) -> Figures:
    """Session counts, money, ROI, latest NPS and off-track time of one document."""
    money = metrics.money(doc)
    limit = metrics.off_track_after(doc)
    return Figures(
        {k: doc[k] for k in FIELDS},
        metrics.session_counts(doc),
        money,
        metrics.roi(doc, money),
        doc["reactions"][-1]["nps"] if doc["reactions"] else None,
        None if limit is None else limit.timestamp(),
    )


def _text(value: Any) -> Any:
    return None if value is None else str(value)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def dumps(figures: Figures) -> str:
    """The stored form (JSON; decimals as strings)."""
    return json.dumps(
        {
            "doc": figures.doc,
            "counts": figures.counts,
            "money": {k: _text(figures.money[k]) for k in _MONEY},
            "roi": {**figures.roi, **{k: _text(figures.roi[k]) for k in _ROI}},
            "nps": figures.latest_nps,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def loads(text: str, off_track_after: float | None) -> Figures:
    """Figures from their stored form and the row's off-track time."""
    data = json.loads(text)
    return Figures(
        data["doc"],
        data["counts"],
        {k: _decimal(data["money"][k]) for k in _MONEY},
        {**data["roi"], **{k: _decimal(data["roi"].get(k)) for k in _ROI}},
        data["nps"],
        off_track_after,
    )
