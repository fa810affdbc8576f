"""The figures dashboards show, computed from progress documents. Definitions follow
DESIGN.md ("Read models"); each function says its formula."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from statistics import median
from statistics import quantiles as stat_quantiles
from typing import Any

Doc = dict[str, Any]

#: Correlation assumed between goals in the GAS T-score (Kiresuk & Sherman).
GAS_RHO = 0.3


def _date(iso: str) -> date:
    return datetime.fromisoformat(iso).date()


def cadence_adherence(held_at: Sequence[str], cadence_days: int) -> float | None:
    """Share of gaps between consecutive held sessions that are ≤ the planned cadence.

    Gaps are whole calendar days between session dates; None with fewer than two sessions.
    """
    days = sorted(_date(at) for at in held_at)
    gaps = [(b - a).days for a, b in pairwise(days)]
    if not gaps:
        return None
    return sum(1 for gap in gaps if gap <= cadence_days) / len(gaps)


def follow_through(commitments: Iterable[Doc]) -> float | None:
    """kept / (kept + missed); None while nothing was resolved."""
    statuses = [c["status"] for c in commitments]
    kept, missed = statuses.count("kept"), statuses.count("missed")
    return None if kept + missed == 0 else kept / (kept + missed)


def overdue_commitments(commitments: Iterable[Doc], today: date) -> int:
    """Open commitments whose due date has passed."""
    return sum(
        1
        for c in commitments
        if c["status"] == "open" and date.fromisoformat(c["due_date"]) < today
    )


def gas_t_score(goals: Iterable[Doc], rho: float = GAS_RHO) -> float | None:
    """T = 50 + 10·Σwᵢxᵢ / √((1−ρ)·Σwᵢ² + ρ·(Σwᵢ)²) over rated goals that were not
    abandoned (xᵢ = latest rating −2..+2, wᵢ = weight 1..4); None if no goal is rated."""
    rated: list[tuple[int, int]] = [
        (int(g["weight"]), int(g["score"]))
        for g in goals
        if g["score"] is not None and g["status"] != "abandoned"
    ]
    if not rated:
        return None
    weighted = sum(w * x for w, x in rated)
    sum_w2 = sum(w * w for w, _ in rated)
    sum_w = sum(w for w, _ in rated)
    return 50.0 + 10.0 * weighted / math.sqrt((1 - rho) * sum_w2 + rho * sum_w**2)


def time_to_first_milestone_days(doc: Doc) -> float | None:
    """Days from opening to the first milestone hit."""
    if doc["first_milestone_at"] is None:
        return None
    delta = datetime.fromisoformat(doc["first_milestone_at"]) - datetime.fromisoformat(
        doc["opened_at"]
    )
    return round(delta.total_seconds() / 86400, 2)


def days_since_last_session(doc: Doc, today: date) -> int | None:
    """Whole days since the last held session; None if none was held."""
    if not doc["held_at"]:
        return None
    return (today - _date(doc["held_at"][-1])).days


def off_track_after(doc: Doc) -> datetime | None:
    """When an active engagement goes off track: two planned cadences after the last
    session (or after opening, before the first). None unless active."""
    if doc["status"] != "active":
        return None
    reference = doc["held_at"][-1] if doc["held_at"] else doc["opened_at"]
    return datetime.fromisoformat(reference) + timedelta(days=2 * doc["cadence_days"])


def is_off_track(doc: Doc, now: datetime) -> bool:
    """Active and more than two planned cadences since the last session."""
    limit = off_track_after(doc)
    return limit is not None and now > limit


def wellbeing_trend(checks: Sequence[Doc]) -> Doc | None:
    """First and latest check-in, and the change in each dimension."""
    if not checks:
        return None
    first, latest = checks[0], checks[-1]
    dims = ("confidence", "stress", "motivation", "imposter_feelings")
    return {
        "checks": len(checks),
        "first": {d: first[d] for d in dims},
        "latest": {d: latest[d] for d in dims},
        "change": {d: latest[d] - first[d] for d in dims},
    }


def session_counts(doc: Doc) -> Doc:
    """Sessions by how they ended."""
    statuses = [s["status"] for s in doc["sessions"].values()]
    late = sum(1 for s in doc["sessions"].values() if s["status"] == "cancelled" and s["late"])
    return {
        "held": statuses.count("held"),
        "no_show": statuses.count("no_show"),
        "cancelled": statuses.count("cancelled"),
        "late_cancelled": late,
        "scheduled": statuses.count("scheduled"),
        "planned": doc["planned_sessions"],
    }


def money(doc: Doc) -> Doc:
    """Invoiced (net of voids), paid, outstanding and recorded costs, as Decimals."""
    live = [i for i in doc["invoices"].values() if not i["voided"]]
    invoiced = sum((Decimal(i["amount"]) for i in live), Decimal(0))
    paid = sum((Decimal(i["paid"]) for i in live), Decimal(0))
    costs = sum((Decimal(c["amount"]) for c in doc["costs"].values()), Decimal(0))
    cent = Decimal("0.01")
    return {
        "invoiced": invoiced.quantize(cent),
        "paid": paid.quantize(cent),
        "outstanding": (invoiced - paid).quantize(cent),
        "costs": costs.quantize(cent),
    }


def roi(doc: Doc, money_figures: Doc | None = None) -> Doc:
    """Phillips ROI of one engagement.

    benefit = Σ annualized value × attribution × confidence over verified, non-excluded
    outcomes (first-year, annualized values only); cost = invoices net of voids +
    recorded costs (fully loaded); ROI % = (benefit − cost) / cost × 100;
    BCR = benefit / cost. ROI and BCR are None while cost is zero or no outcome counts
    yet (an engagement is not "−100 %" before its results are in). Intangibles are
    listed, never monetised.
    """
    counted = [o for o in doc["outcomes"].values() if o["verified"] and o["excluded"] is None]
    benefit = sum(
        (
            Decimal(o["annualized_value"]) * Decimal(o["attribution"]) * Decimal(o["confidence"])
            for o in counted
        ),
        Decimal(0),
    )
    figures = money_figures if money_figures is not None else money(doc)
    cost = figures["invoiced"] + figures["costs"]
    measurable = cost > 0 and bool(counted)
    roi_pct = (benefit - cost) / cost * 100 if measurable else None
    bcr = benefit / cost if measurable else None
    return {
        "benefit": benefit.quantize(Decimal("0.01")),
        "cost": cost.quantize(Decimal("0.01")),
        "roi_pct": None if roi_pct is None else roi_pct.quantize(Decimal("0.01")),
        "bcr": None if bcr is None else bcr.quantize(Decimal("0.0001")),
        "outcomes_counted": len(counted),
        "outcomes_reported": len(doc["outcomes"]),
        "intangibles": list(doc["intangibles"]),
    }


#: What a reported tangible outcome is, for the pages and answers that list it.
VERIFIED, AWAITING_VERIFICATION, EXCLUDED = "verified", "awaiting_verification", "excluded"


def outcome_status(outcome: Doc) -> str:
    """``excluded`` (whatever else), else ``verified``, else ``awaiting_verification``:
    reported but counting for nothing in ROI until someone verifies it."""
    if outcome["excluded"] is not None:
        return EXCLUDED
    return VERIFIED if outcome["verified"] else AWAITING_VERIFICATION


def outcomes(doc: Doc) -> Doc:
    """Every reported tangible outcome with its status, and what awaits verification:
    how many, and the adjusted benefit (value × attribution × confidence) they would add
    once verified (by currency of the outcome)."""
    listed = []
    awaiting: dict[str, Decimal] = {}
    for outcome_id, o in doc["outcomes"].items():
        status = outcome_status(o)
        adjusted = (
            Decimal(o["annualized_value"]) * Decimal(o["attribution"]) * Decimal(o["confidence"])
        )
        currency = o.get("currency") or doc["currency"]
        listed.append(
            {
                "outcome_id": outcome_id,
                "kind": o["kind"],
                "annualized_value": o["annualized_value"],
                "currency": currency,
                "attribution": o["attribution"],
                "confidence": o["confidence"],
                "source": o["source"],
                "adjusted_value": str(adjusted.quantize(Decimal("0.01"))),
                "status": status,
                "excluded": o["excluded"],
            }
        )
        if status == AWAITING_VERIFICATION:
            awaiting[currency] = awaiting.get(currency, Decimal(0)) + adjusted
    return {
        "items": listed,
        "verified": sum(1 for o in listed if o["status"] == VERIFIED),
        "awaiting_verification": sum(1 for o in listed if o["status"] == AWAITING_VERIFICATION),
        "excluded": sum(1 for o in listed if o["status"] == EXCLUDED),
        "benefit_awaiting_verification": {
            k: str(v.quantize(Decimal("0.01"))) for k, v in sorted(awaiting.items())
        },
    }


def quartiles(values: Sequence[float]) -> Doc | None:
    """Median and interquartile range (inclusive method); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return {"median": ordered[0], "q1": ordered[0], "q3": ordered[0], "iqr": 0.0, "n": 1}
    q1, _, q3 = _quantiles(ordered)
    return {"median": median(ordered), "q1": q1, "q3": q3, "iqr": q3 - q1, "n": len(ordered)}


def _quantiles(ordered: Sequence[float]) -> tuple[float, float, float]:
    q = stat_quantiles(ordered, n=4, method="inclusive")
    return q[0], q[1], q[2]


def nps(scores: Sequence[int]) -> float | None:
    """Net Promoter Score: % promoters (9-10) − % detractors (0-6)."""
    if not scores:
        return None
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return round(100 * (promoters - detractors) / len(scores), 1)
