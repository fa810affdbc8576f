"""Cost of an engagement: invoices, payments, voids and other fully-loaded costs."""

from __future__ import annotations

from decimal import Decimal

from domain.errors import (
    CurrencyMismatch,
    InvalidValue,
    InvoiceAlreadyVoided,
    InvoiceHasPayments,
    InvoiceNotFound,
    PaymentExceedsInvoice,
)
from domain.event import EngagementEvent
from domain.state import EngagementState, InvoiceRecord
from domain.values import CostCategory, Money, enum_value, text


class InvoiceIssued(EngagementEvent):
    TOPIC = "coachlog.InvoiceIssued"
    invoice_id: str
    amount: Decimal
    currency: str
    description: str

    def fold(self, state: EngagementState) -> None:
        state.invoices[self.invoice_id] = InvoiceRecord(
            amount=self.amount, issued_at=self.occurred_at
        )


class PaymentReceived(EngagementEvent):
    TOPIC = "coachlog.PaymentReceived"
    invoice_id: str
    amount: Decimal
    currency: str

    def fold(self, state: EngagementState) -> None:
        state.invoices[self.invoice_id].paid += self.amount


class InvoiceVoided(EngagementEvent):
    TOPIC = "coachlog.InvoiceVoided"
    invoice_id: str
    reason: str

    def fold(self, state: EngagementState) -> None:
        state.invoices[self.invoice_id].voided = True


class CostRecorded(EngagementEvent):
    TOPIC = "coachlog.CostRecorded"
    cost_id: str
    category: str
    amount: Decimal
    currency: str
    description: str

    def fold(self, state: EngagementState) -> None:
        state.costs[self.cost_id] = self.amount


class BillingCommands(EngagementState):
    """Commands that record what an engagement costs; allowed after closing too."""

    def _money(self, field: str, amount: Decimal, currency: str) -> Money:
        money = Money.of(field, amount, currency)
        if money.currency != self.currency:
            raise CurrencyMismatch(
                f"{field} is in {money.currency} but the engagement is in {self.currency}"
            )
        return money

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
        money = self._money("amount", amount, currency)
        if money.amount == 0:
            raise InvalidValue("amount", "an invoice must be for more than zero")
        self._record(
            InvoiceIssued,
            invoice_id=ident,
            amount=money.amount,
            currency=money.currency,
            description=text("description", description, max_length=2000, required=False),
        )
        return ident

    def receive_payment(self, invoice_id: str, amount: Decimal, currency: str) -> None:
        """Record a payment against an invoice; payments never exceed the invoice."""
        self._require_not_erased()
        invoice = self._invoice(invoice_id)
        money = self._money("amount", amount, currency)
        if money.amount == 0:
            raise InvalidValue("amount", "a payment must be for more than zero")
        outstanding = invoice.amount - invoice.paid
        if money.amount > outstanding:
            raise PaymentExceedsInvoice(
                f"payment of {money.amount} {money.currency} exceeds the {outstanding} "
                f"outstanding on invoice {invoice_id}"
            )
        self._record(
            PaymentReceived,
            invoice_id=self._ref(invoice_id),
            amount=money.amount,
            currency=money.currency,
        )

    def void_invoice(self, invoice_id: str, reason: str) -> None:
        """Void an unpaid invoice."""
        self._require_not_erased()
        invoice = self._invoice(invoice_id)
        if invoice.paid > 0:
            raise InvoiceHasPayments(
                f"invoice {invoice_id} has {invoice.paid} paid against it and cannot be voided"
            )
        self._record(
            InvoiceVoided,
            invoice_id=self._ref(invoice_id),
            reason=text("reason", reason, max_length=2000),
        )

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
        money = self._money("amount", amount, currency)
        self._record(
            CostRecorded,
            cost_id=ident,
            category=enum_value(CostCategory, "category", category).value,
            amount=money.amount,
            currency=money.currency,
            description=text("description", description, max_length=2000, required=False),
        )
        return ident
