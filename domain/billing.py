"""Cost of an engagement: invoices, payments, voids and other fully-loaded costs."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from domain.checks import checked
from domain.command import Command
from domain.errors import (
    CurrencyMismatch,
    InvoiceAlreadyVoided,
    InvoiceHasPayments,
    InvoiceNotFound,
    PaymentExceedsInvoice,
)
from domain.event import EngagementEvent
from domain.fields import Amount, CurrencyCode, Id, OneOf, Personal, Reason, Text
from domain.state import EngagementState, InvoiceRecord
from domain.values import CostCategory

InvoiceId = Annotated[str, Id("invoice")]
#: What an invoice or a cost is for.
Description = Annotated[str, Personal(), Text(max_length=2000, required=False)]


class InvoiceIssued(EngagementEvent):
    TOPIC = "coachlog.InvoiceIssued"
    invoice_id: InvoiceId
    amount: Annotated[Decimal, Amount(positive_for="an invoice")]
    currency: CurrencyCode
    description: Description

    def fold(self, state: EngagementState) -> None:
        state.invoices[self.invoice_id] = InvoiceRecord(
            amount=self.amount, issued_at=self.occurred_at
        )


class PaymentReceived(EngagementEvent):
    TOPIC = "coachlog.PaymentReceived"
    invoice_id: InvoiceId
    amount: Annotated[Decimal, Amount(positive_for="a payment")]
    currency: CurrencyCode

    def fold(self, state: EngagementState) -> None:
        state.invoices[self.invoice_id].paid += self.amount


class InvoiceVoided(EngagementEvent):
    TOPIC = "coachlog.InvoiceVoided"
    invoice_id: InvoiceId
    reason: Reason

    def fold(self, state: EngagementState) -> None:
        state.invoices[self.invoice_id].voided = True


class CostRecorded(EngagementEvent):
    TOPIC = "coachlog.CostRecorded"
    cost_id: Annotated[str, Id("cost")]
    category: Annotated[str, OneOf(CostCategory)]
    amount: Annotated[Decimal, Amount()]
    currency: CurrencyCode
    description: Description

    def fold(self, state: EngagementState) -> None:
        state.costs[self.cost_id] = self.amount


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IssueInvoice(Command):
    METHOD = "issue_invoice"
    EVENT = InvoiceIssued
    amount: Decimal
    currency: str
    description: str = ""
    invoice_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReceivePayment(Command):
    METHOD = "receive_payment"
    EVENT = PaymentReceived
    invoice_id: str
    amount: Decimal
    currency: str


@dataclass(frozen=True, kw_only=True)
class VoidInvoice(Command):
    METHOD = "void_invoice"
    EVENT = InvoiceVoided
    invoice_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class RecordCost(Command):
    METHOD = "record_cost"
    EVENT = CostRecorded
    category: CostCategory
    amount: Decimal
    currency: str
    description: str = ""
    cost_id: str | None = None


class BillingCommands(EngagementState):
    """Commands that record what an engagement costs; allowed after closing too."""

    def _amount(
        self, event_class: type[EngagementEvent], amount: Decimal, currency: str
    ) -> Decimal:
        """The amount checked as ``event_class`` declares it, in the engagement's currency."""
        number: Decimal = checked(event_class, "amount", amount, currency=currency)
        if currency != self.currency:
            raise CurrencyMismatch(
                f"amount is in {currency} but the engagement is in {self.currency}"
            )
        return number

    def _invoice(self, invoice_id: str) -> InvoiceRecord:
        try:
            invoice = self.invoices[self._ref(invoice_id)]
        except KeyError:
            raise InvoiceNotFound(f"no invoice {invoice_id} in this engagement") from None
        if invoice.voided:
            raise InvoiceAlreadyVoided(f"invoice {invoice_id} was voided")
        self._require_after(invoice.issued_at, "the invoice was issued")
        return invoice

    def issue_invoice(
        self, amount: Decimal, currency: str, description: str = "", invoice_id: str | None = None
    ) -> str:
        """Issue an invoice in the engagement's currency; return its id."""
        self._require_not_erased()
        ident = self._new_id("invoice", invoice_id, self.invoices)
        self._record(
            InvoiceIssued,
            invoice_id=ident,
            amount=self._amount(InvoiceIssued, amount, currency),
            currency=currency,
            description=description,
        )
        return ident

    def receive_payment(self, invoice_id: str, amount: Decimal, currency: str) -> None:
        """Record a payment against an invoice; payments never exceed the invoice."""
        self._require_not_erased()
        invoice = self._invoice(invoice_id)
        paid = self._amount(PaymentReceived, amount, currency)
        outstanding = invoice.amount - invoice.paid
        if paid > outstanding:
            raise PaymentExceedsInvoice(
                f"payment of {paid} {currency} exceeds the {outstanding} "
                f"outstanding on invoice {invoice_id}"
            )
        self._record(
            PaymentReceived, invoice_id=self._ref(invoice_id), amount=paid, currency=currency
        )

    def void_invoice(self, invoice_id: str, reason: str) -> None:
        """Void an unpaid invoice."""
        self._require_not_erased()
        invoice = self._invoice(invoice_id)
        if invoice.paid > 0:
            raise InvoiceHasPayments(
                f"invoice {invoice_id} has {invoice.paid} paid against it and cannot be voided"
            )
        self._record(InvoiceVoided, invoice_id=self._ref(invoice_id), reason=reason)

    def record_cost(
        self,
        category: str,
        amount: Decimal,
        currency: str,
        description: str = "",
        cost_id: str | None = None,
    ) -> str:
        """Record a cost (coach fee, licence, client time...) for the fully-loaded ROI."""
        self._require_not_erased()
        ident = self._new_id("cost", cost_id, self.costs)
        self._record(
            CostRecorded,
            cost_id=ident,
            category=category,
            amount=self._amount(CostRecorded, amount, currency),
            currency=currency,
            description=description,
        )
        return ident
