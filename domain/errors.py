"""Named domain errors: every broken rule raises one of these, and nothing is written.

Each class carries a stable machine-readable ``code`` (the API puts it in problem+json)
and a message that says what was wrong in words a coach would understand.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base class of every rule an engagement enforces."""

    code: ClassVar[str] = "domain_rule_broken"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- lookup and concurrency -------------------------------------------------------------


class EngagementNotFound(DomainError):
    code = "engagement_not_found"


class EngagementAlreadyExists(DomainError):
    code = "engagement_already_exists"


class ConcurrencyConflict(DomainError):
    """Another writer saved a newer version first; reload and retry."""

    code = "concurrency_conflict"

    def __init__(self, message: str, current_version: int | None) -> None:
        super().__init__(message)
        self.current_version = current_version


class StaleVersion(DomainError):
    """The caller's expected version is not the engagement's current version."""

    code = "stale_version"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected engagement version {expected}, but it is at version {actual}")
        self.expected = expected
        self.actual = actual


class MissingActor(DomainError):
    code = "missing_actor"


# -- values -----------------------------------------------------------------------------


class InvalidValue(DomainError):
    """A value is outside what the domain accepts (range, enum, format)."""

    code = "invalid_value"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnstorableValue(InvalidValue):
    """A value passed every rule but cannot be stored as standard JSON (NaN, Infinity,
    an unpaired surrogate, nesting too deep): the command is refused, nothing written."""

    code = "unstorable_value"


class DateOutOfRange(InvalidValue):
    """A date or time contradicts the engagement: before it opened (beyond the stated
    tolerance), beyond the planning horizon, a milestone due after its goal's target, a
    session held well before it was scheduled (domain/state.py states the tolerances)."""

    code = "date_out_of_range"


class OccurredInFuture(DomainError):
    code = "occurred_in_future"


class OccurredTooEarly(DomainError):
    code = "occurred_before_prerequisite"


class DuplicateId(DomainError):
    code = "duplicate_id"


class CurrencyMismatch(DomainError):
    code = "currency_mismatch"


# -- lifecycle --------------------------------------------------------------------------


class InvalidTransition(DomainError):
    code = "invalid_status_transition"


class EngagementClosed(DomainError):
    code = "engagement_closed"


class EngagementPaused(DomainError):
    code = "engagement_paused"


class NoSponsor(DomainError):
    code = "no_sponsor"


class ClientErased(DomainError):
    code = "subject_erased"


class ErasureIncomplete(DomainError):
    """The erasure was recorded but its keys are not destroyed yet: retry to finish."""

    code = "erasure_incomplete"


# -- sessions ---------------------------------------------------------------------------


class SessionNotFound(DomainError):
    code = "session_not_found"


class SessionAlreadyEnded(DomainError):
    code = "session_already_ended"


# -- goals and milestones ---------------------------------------------------------------


class GoalNotFound(DomainError):
    code = "goal_not_found"


class GoalNotOpen(DomainError):
    code = "goal_not_open"


class TargetDateNotAfterSetDate(DomainError):
    code = "target_date_not_after_set_date"


class MilestoneNotFound(DomainError):
    code = "milestone_not_found"


class MilestoneAlreadyHit(DomainError):
    code = "milestone_already_hit"


class AssumptionNotFound(DomainError):
    code = "limiting_assumption_not_found"


class SkillFocusNotStarted(DomainError):
    code = "skill_focus_not_started"


# -- commitments ------------------------------------------------------------------------


class CommitmentNotFound(DomainError):
    code = "commitment_not_found"


class CommitmentAlreadyResolved(DomainError):
    code = "commitment_already_resolved"


class CommitmentNotYetDue(DomainError):
    code = "commitment_not_yet_due"


# -- outcomes ---------------------------------------------------------------------------


class OutcomeNotFound(DomainError):
    code = "outcome_not_found"


class OutcomeAlreadyVerified(DomainError):
    code = "outcome_already_verified"


class OutcomeAlreadyExcluded(DomainError):
    code = "outcome_already_excluded"


# -- money ------------------------------------------------------------------------------


class InvoiceNotFound(DomainError):
    code = "invoice_not_found"


class InvoiceAlreadyVoided(DomainError):
    code = "invoice_voided"


class InvoiceHasPayments(DomainError):
    code = "invoice_has_payments"


class PaymentExceedsInvoice(DomainError):
    code = "payment_exceeds_invoice"


# -- consent ----------------------------------------------------------------------------


class ConsentAlreadyGranted(DomainError):
    code = "consent_already_granted"


class ConsentNotGranted(DomainError):
    code = "consent_not_granted"
