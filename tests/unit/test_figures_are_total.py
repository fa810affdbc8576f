"""No amount the domain accepts can make a fold or a figure fail.

Engagements are built through the domain's own commands (so every value is one the
domain accepts), with amounts drawn towards the extremes of ``Money``: the smallest
minor unit, the largest amount below 10^15, in currencies of 0, 2, 3 and 4 decimal
places, with fractions from 0 to 1 in their finest steps. Every figure of every read
model is then computed from the folded documents, one engagement and many together.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.application import Engagements
from domain.commands import (
    CheckWellbeing,
    Command,
    ExcludeOutcome,
    IssueInvoice,
    RateGoalProgress,
    ReceivePayment,
    RecordCost,
    ReportTangibleOutcome,
    SetGoal,
    SurveyReaction,
    VerifyOutcome,
)
from domain.context import CommandContext
from domain.values import FRACTION_PLACES, MONEY_INTEGER_DIGITS, minor_units
from projections import figures, metrics, queries
from projections.progress import Doc, fold
from projections.store import row_values
from tests.conftest import FIRM, NOW, days_ago, opening
from tests.unit.helpers import a_goal

CURRENCIES = ["JPY", "EUR", "BHD", "CLF"]


@st.composite
def amounts(draw: st.DrawFn, currency: str, positive: bool = True) -> Decimal:
    """An amount in whole minor units, most often at an extreme."""
    largest = largest_units(currency)
    units = draw(
        st.one_of(
            st.sampled_from([1, 2, largest, largest - 1]),
            st.integers(1 if positive else 0, largest),
        )
    )
    return Decimal(f"{units}E-{minor_units(currency)}")  # exact (scaleb would round)


def largest_units(currency: str) -> int:
    """The largest amount there is, in minor units (just below 10^15 major units)."""
    return 10 ** (MONEY_INTEGER_DIGITS + minor_units(currency)) - 1


fractions = st.one_of(
    st.sampled_from([Decimal(0), Decimal(1), Decimal("0.0001"), Decimal("0.9999")]),
    st.integers(0, 10**FRACTION_PLACES).map(lambda n: Decimal(n).scaleb(-FRACTION_PLACES)),
)


@st.composite
def engagements(draw: st.DrawFn) -> tuple[str, list[tuple[int, Any]]]:
    """A currency and a list of (days ago, step) to run after the opening."""
    currency = draw(st.sampled_from(CURRENCIES))
    steps: list[tuple[int, Any]] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["invoice", "cost", "outcome", "survey", "goal", "wellbeing"]))
        if kind == "invoice":
            steps.append((20, ("invoice", draw(amounts(currency)), draw(st.booleans()))))
        elif kind == "cost":
            steps.append((20, ("cost", draw(amounts(currency, positive=False)))))
        elif kind == "outcome":
            steps.append(
                (
                    10,
                    (
                        "outcome",
                        draw(amounts(currency, positive=False)),
                        draw(fractions),
                        draw(fractions),
                        draw(st.sampled_from(["verify", "exclude", "none"])),
                    ),
                )
            )
        elif kind == "survey":
            steps.append((5, ("survey", draw(st.sampled_from([1, 5])), draw(st.integers(0, 10)))))
        elif kind == "goal":
            steps.append(
                (15, ("goal", draw(st.sampled_from([1, 4])), draw(st.sampled_from([-2, 0, 2]))))
            )
        else:
            steps.append((5, ("wellbeing", draw(st.sampled_from([0, 10])))))
    return currency, steps


def build(app: Engagements, currency: str, steps: list[tuple[int, Any]]) -> None:
    ctx = CommandContext(actor_id="coach-ada", actor_role="coach", firm_id=FIRM)
    fee = Decimal(f"{largest_units(currency)}E-{minor_units(currency)}")
    opened = app.open_engagement(
        ctx.at(days_ago(30)),
        opening(currency=currency, fee_per_session=fee, planned_sessions=500, cadence_days=1),
    )
    eid = opened.engagement_id

    def run(days: int, command: Command) -> Any:
        return app.execute(ctx.at(days_ago(days)), command).result

    for days, step in steps:
        if step[0] == "invoice":
            invoice = run(days, IssueInvoice(engagement_id=eid, amount=step[1], currency=currency))
            if step[2]:  # paid in full
                run(
                    days - 1,
                    ReceivePayment(
                        engagement_id=eid, invoice_id=invoice, amount=step[1], currency=currency
                    ),
                )
        elif step[0] == "cost":
            run(
                days,
                RecordCost(engagement_id=eid, category="travel", amount=step[1], currency=currency),
            )
        elif step[0] == "outcome":
            outcome = run(
                days,
                ReportTangibleOutcome(
                    engagement_id=eid,
                    kind="revenue",
                    annualized_value=step[1],
                    currency=currency,
                    attribution=step[2],
                    confidence=step[3],
                    source="sponsor",
                ),
            )
            if step[4] == "verify":
                run(days - 1, VerifyOutcome(engagement_id=eid, outcome_id=outcome, evidence="ok"))
            elif step[4] == "exclude":
                run(
                    days - 1,
                    ExcludeOutcome(engagement_id=eid, outcome_id=outcome, exclusion="extreme"),
                )
        elif step[0] == "survey":
            run(days, SurveyReaction(engagement_id=eid, satisfaction=step[1], nps=step[2]))
        elif step[0] == "goal":
            goal = run(days, SetGoal(engagement_id=eid, goal=a_goal(weight=step[1])))
            run(
                days - 1,
                RateGoalProgress(engagement_id=eid, goal_id=goal, score=step[2], rater="coach"),
            )
        else:
            level = step[1]
            run(
                days,
                CheckWellbeing(
                    engagement_id=eid,
                    confidence=level,
                    stress=10 - level,
                    motivation=level,
                    imposter_feelings=level,
                ),
            )


def folded(app: Engagements) -> list[Doc]:
    docs: dict[str, Doc] = {}
    for notification in app.recorder.select_notifications(start=1, limit=10_000):
        event = app.mapper.to_domain_event(notification)
        key = str(event.originator_id)
        result = fold(docs.get(key), event)  # type: ignore[arg-type]
        if result is not None:
            docs[key] = result
    return [json.loads(json.dumps(doc)) for doc in docs.values()]  # as the store keeps them


def every_figure(docs: list[Doc]) -> None:
    """Compute everything a read-model answer can show from these documents."""
    now = NOW + timedelta(days=400)
    for doc in docs:
        row_values(doc)
        group = figures.figures_of(doc)
        figures.loads(figures.dumps(group), group.off_track_after)
        queries.engagement_dashboard(doc, now)
        queries.sponsor_report(
            {**doc, "sponsor_may_see": ["attendance", "goals", "outcomes", "roi"]}, now
        )
        metrics.roi(doc)
    many = docs * 40  # a firm of many such engagements
    queries.group_stats(many, now)
    stats = queries._group_stats([figures.figures_of(d) for d in many], now)
    queries._grouped([figures.figures_of(d) for d in many], "coach_id", now)
    json.dumps(stats, default=str)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # fmt: skip
@given(st.lists(engagements(), min_size=1, max_size=3))
def test_no_amount_the_domain_accepts_makes_a_figure_fail(
    built: list[tuple[str, list[tuple[int, Any]]]],
) -> None:
    app = Engagements(env={})
    try:
        for currency, steps in built:
            build(app, currency, steps)
        docs = folded(app)
        assert len(docs) == len(built)
        every_figure(docs)
        for doc in docs:  # the domain's own fold reads them too
            state = app.get(FIRM, UUID(doc["engagement_id"]))
            assert state.as_dict()["version"] == doc["version"]
    finally:
        app.close()
