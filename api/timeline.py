"""An engagement's timeline, read from its progress document (never the aggregate).

Sessions, goal target dates, milestones hit, commitments due and wellbeing check-ins,
in date order, each marked past or upcoming against today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.formats import label

Doc = dict[str, Any]

#: What a cleared title shows once the client's key was destroyed.
ERASED = "(erased)"


@dataclass(frozen=True)
class Entry:
    """One dated line of the timeline."""

    at: str
    kind: str
    title: str
    detail: str
    status: str
    upcoming: bool


def _title(text: str) -> str:
    return text or ERASED


def _session_entries(doc: Doc) -> list[tuple[str, str, str, str, str]]:
    rows = [(at, "session", "Session held", "", "held") for at in doc["held_at"]]
    for session in doc["sessions"].values():
        status = session["status"]
        if status == "held":
            continue  # dated by held_at, when it actually happened
        title = {
            "scheduled": "Session scheduled",
            "no_show": "Session: no-show",
            "cancelled": "Session cancelled" + (" late" if session.get("late") else ""),
        }.get(status, f"Session {label(status).lower()}")
        rows.append((session["scheduled_for"], "session", title, "", status))
    return rows


def _goal_entries(doc: Doc) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for goal in doc["goals"].values():
        scores = goal.get("scores") or {}
        score = (
            ", ".join(f"GAS {rater} {value:+d}" for rater, value in scores.items())
            if scores
            else "not rated"
        )
        rows.append(
            (
                goal["target_date"],
                "goal",
                f"Goal target: {_title(goal['title'])}",
                f"weight {goal['weight']}, {score}",
                goal["status"],
            )
        )
        for milestone in goal["milestones"].values():
            if milestone["hit_at"]:
                rows.append(
                    (
                        milestone["hit_at"],
                        "milestone",
                        f"Milestone hit: {_title(milestone['title'])}",
                        _title(goal["title"]),
                        "hit",
                    )
                )
    return rows


def _commitment_entries(doc: Doc, today: str) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for commitment in doc["commitments"].values():
        status = commitment["status"]
        if status == "open" and commitment["due_date"] < today:
            status = "overdue"
        rows.append(
            (
                commitment["due_date"],
                "commitment",
                f"Commitment due: {_title(commitment['title'])}",
                "",
                status,
            )
        )
    return rows


def _wellbeing_entries(doc: Doc) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            check["at"],
            "wellbeing",
            "Wellbeing check-in",
            f"confidence {check['confidence']}, stress {check['stress']}, "
            f"motivation {check['motivation']}, imposter feelings {check['imposter_feelings']}",
            "checked",
        )
        for check in doc["wellbeing"]
    ]


def entries(doc: Doc, now: datetime) -> list[Entry]:
    """Everything dated in the engagement, oldest first."""
    today = now.date().isoformat()
    rows = [(doc["opened_at"], "lifecycle", "Engagement opened", label(doc["segment"]), "opened")]
    rows += _session_entries(doc)
    rows += _goal_entries(doc)
    rows += _commitment_entries(doc, today)
    rows += _wellbeing_entries(doc)
    if doc["closed_at"]:
        rows.append(
            (
                doc["closed_at"],
                "lifecycle",
                "Engagement closed",
                label(doc["close_reason"]),
                "closed",
            )
        )
    now_iso = now.isoformat()
    return [
        Entry(at, kind, title, detail, status, upcoming=at > (now_iso if "T" in at else today))
        for at, kind, title, detail, status in sorted(rows, key=lambda row: row[0])
    ]
