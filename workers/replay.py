"""Replay the log through an analyst's own fold, and build the outcome-study dataset.

A fold is ``fold(state, event) -> state`` (state starts as ``initial``, default None).
It runs over one consistent prefix of the log (the head when the replay starts, or an
explicit position), in log order, on pseudonymized copies of the events unless the full
form is asked for; nothing it does can write to coachlog.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from domain.application import Engagements
from domain.event import EngagementEvent
from projections import metrics
from projections.progress import Doc, fold
from workers.export import Pseudonymizer, Slice, events, pseudonymize

Fold = Callable[[Any, EngagementEvent], Any]


@dataclass(frozen=True)
class ReplayResult:
    """What a fold returned, the log position it reflects and how many events it saw."""

    state: Any
    position: int
    events: int


def load_fold(spec: str) -> Fold:
    """Import ``package.module:function``."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        msg = f"{spec!r} is not of the form package.module:function"
        raise ValueError(msg)
    function = getattr(importlib.import_module(module_name), name, None)
    if not callable(function):
        msg = f"{spec} is not a function"
        raise ValueError(msg)
    return function  # type: ignore[no-any-return]


def replay(
    engagements: Engagements,
    user_fold: Fold,
    *,
    initial: Any = None,
    part: Slice | None = None,
    pseudonymizer: Pseudonymizer | None = None,
) -> ReplayResult:
    """Run ``user_fold`` over the (sliced) log up to a fixed position and return its state.

    With a ``pseudonymizer`` the fold sees pseudonymized copies (person ids hashed, free
    text emptied); without one, the events as stored (for roles allowed the full form).
    """
    part = part or Slice()
    upto = part.upto if part.upto is not None else engagements.recorder.max_notification_id() or 0
    fixed = replace(part, upto=upto)
    state = initial
    seen = 0
    for _, event in events(engagements, fixed):
        copy = event if pseudonymizer is None else pseudonymize(event, pseudonymizer)
        state = user_fold(state, copy)
        seen += 1
    return ReplayResult(state=state, position=upto, events=seen)


def progress_documents(state: dict[str, Doc] | None, event: EngagementEvent) -> dict[str, Doc]:
    """A replayable fold mirroring the live progress read model (one doc per engagement)."""
    docs = state if state is not None else {}
    key = str(event.originator_id)
    folded = fold(docs.get(key), event, in_order=False)  # a slice may lack events
    if folded is not None:
        docs[key] = folded
    return docs


def study_rows(docs: dict[str, Doc], now: datetime) -> Iterator[dict[str, Any]]:
    """One row per engagement: features, then outcomes (for outcome studies)."""
    for doc in sorted(docs.values(), key=lambda d: d["opened_at"]):
        counts = metrics.session_counts(doc)
        roi = metrics.roi(doc)
        wellbeing = doc["wellbeing"]
        end = datetime.fromisoformat(doc["closed_at"]) if doc["closed_at"] else now
        tangible = [o for o in doc["outcomes"].values() if o["verified"] and not o["excluded"]]
        intangible = doc["intangibles"]
        yield {
            "engagement_id": doc["engagement_id"],
            "coach": doc["coach_id"],
            "segment": doc["segment"],
            "delivery": doc["delivery"],
            "status": doc["status"],
            "close_reason": doc["close_reason"],
            "planned_sessions": doc["planned_sessions"],
            "cadence_days": doc["cadence_days"],
            "sessions_held": counts["held"],
            "no_shows": counts["no_show"],
            "cadence_adherence": metrics.cadence_adherence(
                doc["held_at"], doc["cadence_days"], doc.get("pauses", [])
            ),
            "follow_through": metrics.follow_through(doc["commitments"].values()),
            "gas_t_score": metrics.gas_t_score(doc["goals"].values()),
            "goals_achieved": sum(1 for g in doc["goals"].values() if g["status"] == "achieved"),
            "confidence_before": wellbeing[0]["confidence"] if wellbeing else None,
            "confidence_after": wellbeing[-1]["confidence"] if wellbeing else None,
            "stress_before": wellbeing[0]["stress"] if wellbeing else None,
            "stress_after": wellbeing[-1]["stress"] if wellbeing else None,
            "duration_days": (end - datetime.fromisoformat(doc["opened_at"])).days,
            "benefit": float(roi["benefit"]),
            "cost": float(roi["cost"]),
            "roi_pct": None if roi["roi_pct"] is None else float(roi["roi_pct"]),
            "bcr": None if roi["bcr"] is None else float(roi["bcr"]),
            "tangible_outcomes": len(tangible),
            "tangible_kinds": ",".join(sorted({o["kind"] for o in tangible})),
            "intangible_outcomes": len(intangible),
            "intangible_mean_change": (
                sum(i["after"] - i["before"] for i in intangible) / len(intangible)
                if intangible
                else None
            ),
            "nps": doc["reactions"][-1]["nps"] if doc["reactions"] else None,
            "satisfaction": doc["reactions"][-1]["satisfaction"] if doc["reactions"] else None,
        }


def outcome_dataset(
    engagements: Engagements,
    *,
    part: Slice | None = None,
    pseudonymizer: Pseudonymizer | None = None,
    now: datetime | None = None,
) -> Any:
    """The outcome-study dataset as a pandas DataFrame, one row per engagement."""
    import pandas as pd

    result = replay(engagements, progress_documents, part=part, pseudonymizer=pseudonymizer)
    rows = list(study_rows(result.state or {}, now or datetime.now(UTC)))
    frame = pd.DataFrame(rows)
    frame.attrs["position"] = result.position
    return frame
