"""Outcome and money invariants: exact non-negative Decimals in the engagement currency,
payments within the invoice, fractions in 0..1, excluded outcomes never verified."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from domain.application import Engagements
from domain.commands import (
    CloseEngagement,
    ExcludeOutcome,
    IssueInvoice,
    ReceivePayment,
    RecordCost,
    ReportIntangibleOutcome,
    ReportTangibleOutcome,
    SurveyReaction,
    VerifyOutcome,
    VoidInvoice,
)
from domain.context import CommandContext
from domain.errors import (
    CurrencyMismatch,
    DomainError,
    InvalidValue,
    InvoiceAlreadyVoided,
    InvoiceHasPayments,
    OccurredTooEarly,
    OutcomeAlreadyExcluded,
    OutcomeAlreadyVerified,
    PaymentExceedsInvoice,
)
from tests.conftest import FIRM, days_ago
from tests.unit.helpers import assert_refused, open_engagement, run


def outcome(engagement_id: UUID, **overrides: Any) -> ReportTangibleOutcome:
    """A salary increase of 12,000 EUR a year, half due to coaching, 80% sure."""
    fields: dict[str, Any] = {
        "engagement_id": engagement_id,
        "kind": "salary_increase",
        "annualized_value": Decimal("12000.00"),
        "currency": "EUR",
        "attribution": Decimal("0.5"),
        "confidence": Decimal("0.8"),
        "source": "hr_records",
    }
    fields.update(overrides)
    return ReportTangibleOutcome(**fields)


def invoice(app: Engagements, ctx: CommandContext, engagement_id: UUID, amount: str) -> str:
    """Issue an invoice in EUR and return its id."""
    invoice_id: str = run(
        app, ctx, IssueInvoice(engagement_id=engagement_id, amount=Decimal(amount), currency="EUR")
    )
    return invoice_id


# -- outcomes ----------------------------------------------------------------------------


def test_a_reported_outcome_is_verified_once(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    outcome_id = run(app, ctx, outcome(engagement_id))

    run(
        app,
        ctx,
        VerifyOutcome(engagement_id=engagement_id, outcome_id=outcome_id, evidence="payslip"),
    )

    assert app.get(FIRM, engagement_id).outcomes[outcome_id].verified is True
    assert_refused(
        app,
        ctx,
        VerifyOutcome(engagement_id=engagement_id, outcome_id=outcome_id, evidence="again"),
        OutcomeAlreadyVerified,
        f"outcome {outcome_id} is already verified",
    )


def test_an_excluded_outcome_cannot_be_verified(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    outcome_id = run(app, ctx, outcome(engagement_id))
    run(
        app,
        ctx,
        ExcludeOutcome(engagement_id=engagement_id, outcome_id=outcome_id, exclusion="extreme"),
    )

    assert app.get(FIRM, engagement_id).outcomes[outcome_id].excluded == "extreme"
    assert_refused(
        app,
        ctx,
        VerifyOutcome(engagement_id=engagement_id, outcome_id=outcome_id, evidence="payslip"),
        OutcomeAlreadyExcluded,
        "was excluded \\(extreme\\) and cannot be verified",
    )
    assert_refused(
        app,
        ctx,
        ExcludeOutcome(engagement_id=engagement_id, outcome_id=outcome_id, exclusion="unsupported"),
        OutcomeAlreadyExcluded,
        "is already excluded",
    )


def test_an_outcome_cannot_be_verified_before_it_was_reported(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    outcome_id = run(app, ctx.at(days_ago(5)), outcome(engagement_id))

    assert_refused(
        app,
        ctx.at(days_ago(6)),
        VerifyOutcome(engagement_id=engagement_id, outcome_id=outcome_id, evidence="payslip"),
        OccurredTooEarly,
        "before the outcome was reported",
    )


def test_outcomes_and_costs_may_arrive_after_the_engagement_closed(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    run(
        app,
        ctx.at(days_ago(5)),
        CloseEngagement(engagement_id=engagement_id, close_reason="completed"),
    )

    outcome_id = run(app, ctx, outcome(engagement_id))
    invoice_id = invoice(app, ctx, engagement_id, "1500.00")

    engagement = app.get(FIRM, engagement_id)
    assert outcome_id in engagement.outcomes
    assert invoice_id in engagement.invoices


@pytest.mark.parametrize("field", ["attribution", "confidence"])
@pytest.mark.parametrize(
    ("value", "accepted"),
    [("0", True), ("1", True), ("0.25", True), ("-0.01", False), ("1.01", False)],
)
def test_attribution_and_confidence_lie_between_zero_and_one(
    app: Engagements, ctx: CommandContext, field: str, value: str, accepted: bool
) -> None:
    engagement_id = open_engagement(app, ctx)
    command = outcome(engagement_id, **{field: Decimal(value)})

    if accepted:
        outcome_id = run(app, ctx, command)
        assert getattr(app.get(FIRM, engagement_id).outcomes[outcome_id], field) == Decimal(value)
    else:
        assert_refused(app, ctx, command, InvalidValue, f"{field}: must be between 0 and 1")


@pytest.mark.parametrize("field", ["attribution", "confidence"])
def test_attribution_and_confidence_refuse_floats(
    app: Engagements, ctx: CommandContext, field: str
) -> None:
    engagement_id = open_engagement(app, ctx)

    assert_refused(
        app, ctx, outcome(engagement_id, **{field: 0.5}), InvalidValue, f"{field}: .*not a float"
    )


def test_an_outcome_is_valued_in_the_engagement_currency(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)

    assert_refused(
        app,
        ctx,
        outcome(engagement_id, currency="USD"),
        CurrencyMismatch,
        "outcome is in USD but the engagement is in EUR",
    )


def test_an_outcome_value_is_not_negative(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)

    assert_refused(
        app,
        ctx,
        outcome(engagement_id, annualized_value=Decimal("-1")),
        InvalidValue,
        "annualized_value: must not be negative",
    )


@pytest.mark.parametrize(("level", "accepted"), [(-1, False), (0, True), (10, True), (11, False)])
def test_an_intangible_outcome_is_rated_zero_to_ten(
    app: Engagements, ctx: CommandContext, level: int, accepted: bool
) -> None:
    engagement_id = open_engagement(app, ctx)
    command = ReportIntangibleOutcome(
        engagement_id=engagement_id, kind="clarity", before=5, after=level
    )

    if accepted:
        run(app, ctx, command)
        assert app.get(FIRM, engagement_id).intangibles[-1]["after"] == level
    else:
        assert_refused(app, ctx, command, InvalidValue, "after: must be between 0 and 10")


@pytest.mark.parametrize(
    ("satisfaction", "nps", "refused_field"),
    [
        (1, 0, None),
        (5, 10, None),
        (0, 5, "satisfaction: must be between 1 and 5"),
        (6, 5, "satisfaction: must be between 1 and 5"),
        (3, -1, "nps: must be between 0 and 10"),
        (3, 11, "nps: must be between 0 and 10"),
    ],
)
def test_a_reaction_survey_has_satisfaction_one_to_five_and_nps_zero_to_ten(
    app: Engagements,
    ctx: CommandContext,
    satisfaction: int,
    nps: int,
    refused_field: str | None,
) -> None:
    engagement_id = open_engagement(app, ctx)
    command = SurveyReaction(engagement_id=engagement_id, satisfaction=satisfaction, nps=nps)

    if refused_field is None:
        run(app, ctx, command)
        assert app.get(FIRM, engagement_id).reactions == [
            {"satisfaction": satisfaction, "nps": nps}
        ]
    else:
        assert_refused(app, ctx, command, InvalidValue, refused_field)


# -- invoices and payments ---------------------------------------------------------------


def test_payments_up_to_the_invoice_amount_are_accepted(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    invoice_id = invoice(app, ctx, engagement_id, "1500.00")

    for amount in ("1000.00", "500.00"):
        run(
            app,
            ctx,
            ReceivePayment(
                engagement_id=engagement_id,
                invoice_id=invoice_id,
                amount=Decimal(amount),
                currency="EUR",
            ),
        )

    assert app.get(FIRM, engagement_id).invoices[invoice_id].paid == Decimal("1500.00")


@pytest.mark.parametrize(("paid", "payment"), [("0", "1500.01"), ("1000.00", "500.01")])
def test_payments_never_exceed_the_invoice(
    app: Engagements, ctx: CommandContext, paid: str, payment: str
) -> None:
    engagement_id = open_engagement(app, ctx)
    invoice_id = invoice(app, ctx, engagement_id, "1500.00")
    if Decimal(paid):
        run(
            app,
            ctx,
            ReceivePayment(
                engagement_id=engagement_id,
                invoice_id=invoice_id,
                amount=Decimal(paid),
                currency="EUR",
            ),
        )

    assert_refused(
        app,
        ctx,
        ReceivePayment(
            engagement_id=engagement_id,
            invoice_id=invoice_id,
            amount=Decimal(payment),
            currency="EUR",
        ),
        PaymentExceedsInvoice,
        f"payment of {payment} EUR exceeds the",
    )


def test_an_unpaid_invoice_is_voided_and_then_takes_no_payment(
    app: Engagements, ctx: CommandContext
) -> None:
    engagement_id = open_engagement(app, ctx)
    invoice_id = invoice(app, ctx, engagement_id, "1500.00")

    run(app, ctx, VoidInvoice(engagement_id=engagement_id, invoice_id=invoice_id, reason="typo"))

    assert app.get(FIRM, engagement_id).invoices[invoice_id].voided is True
    assert_refused(
        app,
        ctx,
        ReceivePayment(
            engagement_id=engagement_id, invoice_id=invoice_id, amount=Decimal("10"), currency="EUR"
        ),
        InvoiceAlreadyVoided,
        f"invoice {invoice_id} was voided",
    )
    assert_refused(
        app,
        ctx,
        VoidInvoice(engagement_id=engagement_id, invoice_id=invoice_id, reason="twice"),
        InvoiceAlreadyVoided,
        "was voided",
    )


def test_an_invoice_with_a_payment_cannot_be_voided(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    invoice_id = invoice(app, ctx, engagement_id, "1500.00")
    run(
        app,
        ctx,
        ReceivePayment(
            engagement_id=engagement_id, invoice_id=invoice_id, amount=Decimal("1"), currency="EUR"
        ),
    )

    assert_refused(
        app,
        ctx,
        VoidInvoice(engagement_id=engagement_id, invoice_id=invoice_id, reason="oops"),
        InvoiceHasPayments,
        "has 1 paid against it and cannot be voided",
    )


def money_commands(engagement_id: UUID, amount: Any, currency: str) -> dict[str, Any]:
    """One command per way money enters an engagement, keyed by what it records."""
    return {
        "invoice": IssueInvoice(engagement_id=engagement_id, amount=amount, currency=currency),
        "cost": RecordCost(
            engagement_id=engagement_id, category="travel", amount=amount, currency=currency
        ),
        "outcome": outcome(engagement_id, annualized_value=amount, currency=currency),
    }


@pytest.mark.parametrize("kind", ["invoice", "cost", "outcome"])
@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        (Decimal("99.95"), "EUR"),
        (Decimal("99.9500"), "EUR"),  # trailing zeros are still whole cents
        (Decimal("999999999999999.99"), "EUR"),  # the largest amount there is
        (Decimal("0.01"), "EUR"),
        (Decimal("1E+3"), "EUR"),
        (Decimal("150000"), "JPY"),  # no minor unit
        (Decimal("12.345"), "BHD"),  # three places (fils)
        (Decimal("1.2345"), "CLF"),  # four
    ],
)
def test_money_is_an_exact_decimal_in_whole_minor_units_of_the_engagement_currency(
    app: Engagements, ctx: CommandContext, kind: str, amount: Decimal, currency: str
) -> None:
    engagement_id = open_engagement(app, ctx, currency=currency, fee_per_session=Decimal("1"))

    run(app, ctx, money_commands(engagement_id, amount, currency)[kind])

    assert len(app.history(FIRM, engagement_id)) == 2


@pytest.mark.parametrize("kind", ["invoice", "cost", "outcome"])
@pytest.mark.parametrize(
    ("amount", "currency", "error", "match"),
    [
        (99.99, "EUR", InvalidValue, "not a float"),
        (Decimal("-0.01"), "EUR", InvalidValue, "must not be negative"),
        (Decimal("1.00001"), "EUR", InvalidValue, "more than 4 decimal places"),
        (Decimal("99.995"), "EUR", InvalidValue, r"whole minor units of EUR \(at most 2 decimal"),
        (Decimal("1E-100000"), "EUR", InvalidValue, "more than 4 decimal places"),
        (Decimal("NaN"), "EUR", InvalidValue, "must be a finite number"),
        (Decimal("Infinity"), "EUR", InvalidValue, "must be a finite number"),
        ("ten", "EUR", InvalidValue, "is not a decimal number"),
        (Decimal("11111111111111111111111111111"), "EUR", InvalidValue, r"less than 10\^15"),
        (Decimal("1000000000000000"), "EUR", InvalidValue, r"less than 10\^15"),
        (Decimal("1e30"), "EUR", InvalidValue, r"less than 10\^15"),
        (Decimal("1E+100000"), "EUR", InvalidValue, r"less than 10\^15 .*, got 1E\+100000"),
        (Decimal("10"), "GBP", CurrencyMismatch, "is in GBP but the engagement is in EUR"),
        (Decimal("10"), "EURO", InvalidValue, "is not an ISO 4217 code"),
        (Decimal("10"), "XAU", InvalidValue, "XAU has no minor unit in ISO 4217"),
    ],
    ids=[
        "float",
        "negative",
        "too-precise",
        "fractions-of-cents",
        "tiny",
        "nan",
        "infinity",
        "text",
        "29-digits",
        "10^15",
        "1e30",
        "huge-exponent",
        "other-currency",
        "bad-code",
        "gold",
    ],
)
def test_money_that_is_inexact_negative_or_in_another_currency_is_refused(
    app: Engagements,
    ctx: CommandContext,
    kind: str,
    amount: Any,
    currency: str,
    error: type[DomainError],
    match: str,
) -> None:
    engagement_id = open_engagement(app, ctx)

    assert_refused(app, ctx, money_commands(engagement_id, amount, currency)[kind], error, match)


def test_an_amount_in_yen_has_no_decimal_places(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx, currency="JPY", fee_per_session=Decimal("20000"))

    assert_refused(
        app,
        ctx,
        IssueInvoice(engagement_id=engagement_id, amount=Decimal("1500.5"), currency="JPY"),
        InvalidValue,
        r"amount: must be in whole minor units of JPY \(no decimal places\), got 1500.5",
    )


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (Decimal("0.33333"), "attribution: must have at most 4 decimal places"),
        (Decimal("1E-100000"), "attribution: must have at most 4 decimal places"),
        (Decimal("1.0001"), "attribution: must be between 0 and 1, got 1.0001"),
    ],
)
def test_an_attribution_is_a_fraction_of_at_most_four_places(
    app: Engagements, ctx: CommandContext, value: Decimal, match: str
) -> None:
    engagement_id = open_engagement(app, ctx)

    assert_refused(app, ctx, outcome(engagement_id, attribution=value), InvalidValue, match)


def test_a_payment_is_in_the_engagement_currency(app: Engagements, ctx: CommandContext) -> None:
    engagement_id = open_engagement(app, ctx)
    invoice_id = invoice(app, ctx, engagement_id, "1500.00")

    assert_refused(
        app,
        ctx,
        ReceivePayment(
            engagement_id=engagement_id, invoice_id=invoice_id, amount=Decimal("10"), currency="USD"
        ),
        CurrencyMismatch,
        "amount is in USD but the engagement is in EUR",
    )
    assert_refused(
        app,
        ctx,
        ReceivePayment(
            engagement_id=engagement_id,
            invoice_id=invoice_id,
            amount=10.0,
            currency="EUR",  # type: ignore[arg-type]
        ),
        InvalidValue,
        "amount: must be a Decimal or a decimal string, not a float",
    )


@pytest.mark.parametrize("kind", ["invoice", "payment"])
def test_an_invoice_or_payment_is_for_more_than_zero(
    app: Engagements, ctx: CommandContext, kind: str
) -> None:
    engagement_id = open_engagement(app, ctx)
    invoice_id = invoice(app, ctx, engagement_id, "100")
    command = (
        IssueInvoice(engagement_id=engagement_id, amount=Decimal("0"), currency="EUR")
        if kind == "invoice"
        else ReceivePayment(
            engagement_id=engagement_id, invoice_id=invoice_id, amount=Decimal("0"), currency="EUR"
        )
    )

    assert_refused(
        app, ctx, command, InvalidValue, f"amount: an? {kind} must be for more than zero"
    )
