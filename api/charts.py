"""Chart.js configurations built from read-model figures.

Each function returns a plain Chart.js config (``type``, ``data``, ``options``) that a
page embeds as JSON; ``api/static/dashboards.js`` hands it to the vendored Chart.js.
Only numbers and labels go in: no code, so the pages need no inline script.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from api.formats import day

Spec = dict[str, Any]

BLUE = "#2563eb"
BLUE_LIGHT = "rgba(37, 99, 235, 0.3)"
GREEN = "#059669"
ORANGE = "#d97706"
RED = "#dc2626"
PURPLE = "#7c3aed"
GREY = "rgba(100, 116, 139, 0.25)"


def _same(name: str) -> str:
    return name


def _axis(title: str, **extra: Any) -> Spec:
    return {"title": {"display": True, "text": title}, **extra}


def _bar(labels: Sequence[str], datasets: list[Spec], *, horizontal: bool, **options: Any) -> Spec:
    return {
        "type": "bar",
        "data": {"labels": list(labels), "datasets": datasets},
        "options": {"indexAxis": "y" if horizontal else "x", **options},
        "rows": len(labels) if horizontal else None,
    }


def roi_distribution(
    groups: Mapping[str, Mapping[str, Any]], label: Callable[[str], str] = _same
) -> Spec:
    """ROI % per group: the interquartile range as a bar, the median as a mark."""
    names = list(groups)
    quartiles = [groups[name]["roi"]["roi_pct"] for name in names]
    labels = [
        f"{label(name)} (n={q['n']})" if q else f"{label(name)} (no ROI yet)"
        for name, q in zip(names, quartiles, strict=True)
    ]
    return _bar(
        labels,
        [
            {
                "type": "bar",
                "label": "Q1 – Q3",
                "data": [[q["q1"], q["q3"]] if q else None for q in quartiles],
                "backgroundColor": BLUE_LIGHT,
                "borderColor": BLUE,
                "borderWidth": 1,
                "borderSkipped": False,
                "order": 2,
            },
            {
                "type": "line",
                "label": "Median",
                # Points name their row, so groups without an ROI are simply left out
                # (a null among object points breaks Chart.js's parser).
                "data": [
                    {"x": q["median"], "y": text}
                    for q, text in zip(quartiles, labels, strict=True)
                    if q
                ],
                "showLine": False,
                "pointStyle": "line",
                "pointRadius": 10,
                "pointBorderWidth": 3,
                "pointRotation": 90,
                "borderColor": ORANGE,
                "backgroundColor": ORANGE,
                "order": 1,
            },
        ],
        horizontal=True,
        scales={"x": _axis("ROI %", grace="5%")},
    )


def revenue(groups: Mapping[str, Mapping[str, Any]]) -> Spec:
    """Paid and outstanding invoices per coach (coaches billing in one currency)."""
    names = [n for n in groups if groups[n]["paid"] is not None]
    return _bar(
        names,
        [
            {
                "label": "Paid",
                "data": [float(Decimal(groups[n]["paid"])) for n in names],
                "backgroundColor": GREEN,
            },
            {
                "label": "Outstanding",
                "data": [float(Decimal(groups[n]["outstanding"])) for n in names],
                "backgroundColor": ORANGE,
            },
        ],
        horizontal=True,
        scales={"x": _axis("Invoiced", stacked=True), "y": {"stacked": True}},
    )


def rates(
    groups: Mapping[str, Mapping[str, Any]],
    key: str,
    title: str,
    label: Callable[[str], str] = _same,
) -> Spec:
    """One share (0..1) per group, as percentages."""
    names = list(groups)
    values = [groups[n][key] for n in names]
    return _bar(
        [label(n) for n in names],
        [
            {
                "label": title,
                "data": [None if v is None else round(v * 100, 1) for v in values],
                "backgroundColor": PURPLE,
            }
        ],
        horizontal=True,
        scales={"x": _axis(f"{title} %", min=0, max=100)},
    )


def sessions(counts: Mapping[str, int]) -> Spec:
    """Sessions held and scheduled against the planned number."""
    held, scheduled, planned = counts["held"], counts["scheduled"], counts["planned"]
    return _bar(
        ["Sessions"],
        [
            {"label": "Held", "data": [held], "backgroundColor": GREEN},
            {"label": "Scheduled", "data": [scheduled], "backgroundColor": BLUE_LIGHT},
            {
                "label": "Not yet scheduled",
                "data": [max(planned - held - scheduled, 0)],
                "backgroundColor": GREY,
            },
        ],
        horizontal=True,
        scales={
            "x": _axis(f"of {planned} planned", stacked=True, min=0, ticks={"precision": 0}),
            "y": {"stacked": True},
        },
    )


def sessions_by_engagement(items: Sequence[Mapping[str, Any]]) -> Spec:
    """Held against planned sessions for each engagement of a portfolio."""
    return _bar(
        [f"{item['client_id']} ({item['status']})" for item in items],
        [
            {
                "label": "Held",
                "data": [item["sessions_held"] for item in items],
                "backgroundColor": GREEN,
            },
            {
                "label": "Planned, not held",
                "data": [
                    max(item["sessions_planned"] - item["sessions_held"], 0) for item in items
                ],
                "backgroundColor": GREY,
            },
        ],
        horizontal=True,
        scales={
            "x": _axis("Sessions", stacked=True, ticks={"precision": 0}),
            "y": {"stacked": True},
        },
    )


def gas_by_goal(goals: Sequence[Mapping[str, Any]]) -> Spec:
    """The latest Goal Attainment Scaling rating (−2..+2) of each goal."""
    scores = [goal["latest_score"] for goal in goals]
    return _bar(
        [_short(goal["title"] or "(erased)") for goal in goals],
        [
            {
                "label": "Latest GAS rating",
                "data": scores,
                "backgroundColor": [RED if (s or 0) < 0 else BLUE for s in scores],
            }
        ],
        horizontal=False,
        scales={"y": _axis("GAS rating", min=-2, max=2, ticks={"stepSize": 1})},
        plugins={"legend": {"display": False}},
    )


def wellbeing(checks: Sequence[Mapping[str, Any]]) -> Spec:
    """Each wellbeing dimension (0–10) at every check-in."""
    dims = (
        ("confidence", "Confidence", BLUE),
        ("motivation", "Motivation", GREEN),
        ("stress", "Stress", RED),
        ("imposter_feelings", "Imposter feelings", PURPLE),
    )
    return {
        "type": "line",
        "data": {
            "labels": [day(check["at"]) for check in checks],
            "datasets": [
                {
                    "label": title,
                    "data": [check[key] for check in checks],
                    "borderColor": color,
                    "backgroundColor": color,
                    "tension": 0.2,
                }
                for key, title, color in dims
            ],
        },
        "options": {"scales": {"y": _axis("Score (0–10)", min=0, max=10)}},
        "rows": None,
    }


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
