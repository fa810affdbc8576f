"""The figures dashboards show, computed from progress documents. Definitions are in
docs/read-models.md; each function says its formula."""

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
#: Who rates goals, each a perspective of its own (never mixed into one T-score).
RATERS = ("coach", "client", "sponsor")
#: The headline GAS: the coach's T-score if the coach rated any goal still counted,
#: else the client's; the sponsor's is shown beside, never headline.
HEADLINE_RATERS = ("coach", "client")


def _date(iso: str) -> date:
    return datetime.fromisoformat(iso).date()


def _paused_days(start: date, end: date, pauses: Sequence[Doc]) -> int:
    """Whole calendar days of [start, end] the engagement spent paused."""
    days = 0
    for pause in pauses:
        since = _date(pause["at"])
        until = end if pause.get("to") is None else min(end, _date(pause["to"]))
        days += max(0, (until - max(start, since)).days)
    return days


def session_gaps(held_at: Sequence[str], pauses: Sequence[Doc] = ()) -> list[int]:
    """Whole calendar days between consecutive held sessions, net of paused days."""
    days = sorted(_date(at) for at in held_at)
    return [(b - a).days - _paused_days(a, b, pauses) for a, b in pairwise(days)]


def cadence_adherence(
    held_at: Sequence[str], cadence_days: int, pauses: Sequence[Doc] = ()
) -> float | None:
    """Share of gaps between consecutive held sessions that are ≤ the planned cadence.

    Gaps are whole calendar days between session dates, net of the days the engagement
    was paused in between (a pause is not the client's lapse); None with fewer than two
    sessions. Its n is the number of gaps.
    """
    gaps = session_gaps(held_at, pauses)
    if not gaps:
        return None
    return sum(1 for gap in gaps if gap <= cadence_days) / len(gaps)


def follow_through(commitments: Iterable[Doc]) -> float | None:
    """kept / (kept + missed); None while nothing was resolved."""
    statuses = [c["status"] for c in commitments]
    kept, missed = statuses.count("kept"), statuses.count("missed")
    return None if kept + missed == 0 else kept / (kept + missed)


def cadence(doc: Doc) -> Doc:
    """Cadence adherence net of pauses, with its n (gaps) and the days paused."""
    pauses = doc.get("pauses", [])
    gaps = session_gaps(doc["held_at"], pauses)
    value = cadence_adherence(doc["held_at"], doc["cadence_days"], pauses)
    return {
        "cadence_adherence": None if value is None else round(value, 4),
        "cadence_adherence_n": len(gaps),
    }


def follow_through_n(commitments: Iterable[Doc]) -> int:
    """The n of follow-through: commitments kept or missed."""
    return sum(1 for c in commitments if c["status"] in ("kept", "missed"))


def overdue_commitments(commitments: Iterable[Doc], today: date) -> int:
    """Open commitments whose due date has passed."""
    return sum(
        1
        for c in commitments
        if c["status"] == "open" and date.fromisoformat(c["due_date"]) < today
    )


def t_score(rated: Sequence[tuple[int, int]], rho: float = GAS_RHO) -> float | None:
    """T = 50 + 10·Σwᵢxᵢ / √((1−ρ)·Σwᵢ² + ρ·(Σwᵢ)²) over (wᵢ, xᵢ); None for none."""
    if not rated:
        return None
    weighted = sum(w * x for w, x in rated)
    sum_w2 = sum(w * w for w, _ in rated)
    sum_w = sum(w for w, _ in rated)
    return 50.0 + 10.0 * weighted / math.sqrt((1 - rho) * sum_w2 + rho * sum_w**2)


def _scores(goal: Doc, until: str | None) -> dict[str, int]:
    """The goal's latest rating per rater (occurred time), up to ``until`` if given."""
    if until is None:
        return dict(goal.get("scores") or {})
    return {r["rater"]: r["score"] for r in goal.get("ratings", []) if r["at"] <= until}


def _status(goal: Doc, until: str | None) -> str:
    closed = goal.get("closed_at")
    if until is None or goal["status"] == "open" or (closed is not None and closed <= until):
        return str(goal["status"])
    return "open"


def gas_perspective(goals: Iterable[Doc], rater: str, until: str | None = None) -> Doc:
    """One rater's GAS: T-score over the goals they rated, with its counts.

    Abandoned goals are left out (counted as ``abandoned``); goals this rater never
    rated are counted as ``unrated``; an achieved goal scores at least its expected
    level: xᵢ = max(latest rating, 0).
    """
    rated: list[tuple[int, int]] = []
    unrated = abandoned = 0
    for goal in goals:
        status = _status(goal, until)
        if status == "abandoned":
            abandoned += 1
            continue
        score = _scores(goal, until).get(rater)
        if score is None:
            unrated += 1
            continue
        rated.append((int(goal["weight"]), max(score, 0) if status == "achieved" else score))
    t = t_score(rated)
    return {
        "t_score": None if t is None else round(t, 2),
        "rated": len(rated),
        "unrated": unrated,
        "abandoned": abandoned,
    }


def gas(goals: Iterable[Doc], until: str | None = None) -> Doc:
    """GAS per rater perspective and the headline (coach's, else client's)."""
    listed = list(goals)
    by_rater = {r: gas_perspective(listed, r, until) for r in RATERS}
    headline = next((r for r in HEADLINE_RATERS if by_rater[r]["rated"]), None)
    chosen = by_rater[headline] if headline is not None else by_rater[HEADLINE_RATERS[0]]
    return {
        "t_score": chosen["t_score"],
        "rater": headline,
        "rated": chosen["rated"],
        "unrated": chosen["unrated"],
        "abandoned": chosen["abandoned"],
        "by_rater": by_rater,
    }


def gas_t_score(goals: Iterable[Doc]) -> float | None:
    """The headline GAS T-score (see :func:`gas`)."""
    t: float | None = gas(goals)["t_score"]
    return t


def gas_over_time(goals: Iterable[Doc]) -> list[Doc]:
    """The headline GAS after each day a goal was rated, achieved or abandoned, in
    occurred order (each point as the figures stood at the end of that moment)."""
    listed = list(goals)
    moments = sorted(
        {r["at"] for g in listed for r in g.get("ratings", [])}
        | {g["closed_at"] for g in listed if g.get("closed_at")}
    )
    points = []
    for at in moments:
        figure = gas(listed, until=at)
        if figure["t_score"] is not None:
            points.append({"at": at, "t_score": figure["t_score"], "rater": figure["rater"]})
    return points


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
    session (or after opening, before the first), plus the time it spent paused since.
    None unless active."""
    if doc["status"] != "active":
        return None
    reference = doc["held_at"][-1] if doc["held_at"] else doc["opened_at"]
    start = datetime.fromisoformat(reference)
    paused = timedelta(0)
    for pause in doc.get("pauses", []):
        if pause.get("to") is not None:
            since, until = datetime.fromisoformat(pause["at"]), datetime.fromisoformat(pause["to"])
            paused += max(timedelta(0), until - max(start, since))
    return start + timedelta(days=2 * doc["cadence_days"]) + paused


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


#: Costs the client's side bears (declared by the firm for the sponsor's ROI); every
#: other recorded cost is the firm's own cost of delivery.
CLIENT_SIDE_COSTS = frozenset({"client_time"})
#: The decimal figures of :func:`roi` (stored as strings beside each document).
ROI_DECIMALS = (
    "benefit",
    "cost",
    "roi_pct",
    "bcr",
    "fees",
    "client_costs",
    "cost_to_date",
    "planned_cost",
    "roi_pct_to_date",
    "bcr_to_date",
    "delivery_costs",
    "margin",
    "margin_pct",
)
_CENT = Decimal("0.01")


def _pct(benefit: Decimal, cost: Decimal) -> Decimal:
    return ((benefit - cost) / cost * 100).quantize(_CENT)


def _bcr(benefit: Decimal, cost: Decimal) -> Decimal:
    return (benefit / cost).quantize(Decimal("0.0001"))


def roi(doc: Doc, money_figures: Doc | None = None) -> Doc:
    """Phillips ROI of one engagement, in two explicit perspectives (one currency: the
    engagement's).

    The sponsor's (client's): benefit = Σ annualized value × attribution × confidence
    over verified, non-excluded outcomes (first-year values); cost = fees (invoices net
    of voids) + declared client-side costs (``CLIENT_SIDE_COSTS``), fully loaded; the
    firm's delivery costs are not the client's and are not added. ROI % = (benefit −
    cost) / cost × 100, BCR = benefit / cost. A *closed* engagement is always measured
    (no improvement data: zero benefit, its full costs). An *active* (or paused) one is
    measured once an outcome counts, at planned cost (``planned_cost``: planned
    sessions × fee, or what was invoiced if more, + client-side costs) as its ROI, and
    beside it at ``cost_to_date``; its results are not in, so it is never −100 %.

    The firm's: margin = fees − delivery costs (every recorded cost not client-side);
    margin % = margin / fees × 100. Intangibles are listed, never monetised.
    """
    counted = [o for o in doc["outcomes"].values() if o["verified"] and o["excluded"] is None]
    benefit = sum(
        (
            Decimal(o["annualized_value"]) * Decimal(o["attribution"]) * Decimal(o["confidence"])
            for o in counted
        ),
        Decimal(0),
    ).quantize(_CENT)
    figures = money_figures if money_figures is not None else money(doc)
    client_costs = sum(
        (Decimal(c["amount"]) for c in doc["costs"].values() if c["category"] in CLIENT_SIDE_COSTS),
        Decimal(0),
    ).quantize(_CENT)
    fees = Decimal(figures["invoiced"]).quantize(_CENT)
    delivery_costs = (Decimal(figures["costs"]) - client_costs).quantize(_CENT)
    cost_to_date = fees + client_costs
    active = doc["status"] != "closed"
    planned_fees = Decimal(doc["fee_per_session"]) * int(doc["planned_sessions"])
    planned_cost = (max(planned_fees, fees) + client_costs).quantize(_CENT) if active else None
    cost = planned_cost if planned_cost is not None else cost_to_date
    measured = cost > 0 and (not active or bool(counted))
    to_date = active and bool(counted) and cost_to_date > 0
    margin = fees - delivery_costs
    return {
        "currency": doc["currency"],
        "basis": "planned_cost" if active else "closed",
        "benefit": benefit,
        "cost": cost,
        "roi_pct": _pct(benefit, cost) if measured else None,
        "bcr": _bcr(benefit, cost) if measured else None,
        "fees": fees,
        "client_costs": client_costs,
        "cost_to_date": cost_to_date,
        "planned_cost": planned_cost,
        "roi_pct_to_date": _pct(benefit, cost_to_date) if to_date else None,
        "bcr_to_date": _bcr(benefit, cost_to_date) if to_date else None,
        "delivery_costs": delivery_costs,
        "margin": margin,
        "margin_pct": (margin / fees * 100).quantize(_CENT) if fees > 0 else None,
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
