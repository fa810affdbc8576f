"""Outcomes: tangible results (verified or excluded), intangibles, and reaction surveys.

Outcomes are often known months after the last session, so they may be recorded on a
closed engagement.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from domain.checks import checked
from domain.command import Command
from domain.errors import (
    CurrencyMismatch,
    OutcomeAlreadyExcluded,
    OutcomeAlreadyVerified,
    OutcomeNotFound,
)
from domain.event import EngagementEvent
from domain.fields import (
    Amount,
    Between,
    CurrencyCode,
    Id,
    OneOf,
    OptionalParagraphs,
    OptionalReason,
    Paragraphs,
    Personal,
    Share,
    Text,
)
from domain.state import EngagementState, OutcomeRecord
from domain.values import ExclusionReason, IntangibleKind, OutcomeSource, TangibleKind

OutcomeId = Annotated[str, Id("outcome")]
Fraction = Annotated[Decimal, Share()]
#: A rating from 0 to 10, before or after the coaching.
Rating = Annotated[int, Between(0, 10)]


class TangibleOutcomeReported(EngagementEvent):
    TOPIC = "coachlog.TangibleOutcomeReported"
    outcome_id: OutcomeId
    kind: Annotated[str, OneOf(TangibleKind)]
    annualized_value: Annotated[Decimal, Amount()]
    currency: CurrencyCode
    attribution: Fraction
    confidence: Fraction
    source: Annotated[str, OneOf(OutcomeSource)]
    description: OptionalParagraphs

    def fold(self, state: EngagementState) -> None:
        state.outcomes[self.outcome_id] = OutcomeRecord(
            kind=self.kind,
            annualized_value=self.annualized_value,
            currency=self.currency,
            attribution=self.attribution,
            confidence=self.confidence,
            source=self.source,
            reported_at=self.occurred_at,
        )


class OutcomeVerified(EngagementEvent):
    TOPIC = "coachlog.OutcomeVerified"
    outcome_id: OutcomeId
    evidence: Paragraphs

    def fold(self, state: EngagementState) -> None:
        state.outcomes[self.outcome_id].verified = True


class OutcomeExcluded(EngagementEvent):
    TOPIC = "coachlog.OutcomeExcluded"
    outcome_id: OutcomeId
    exclusion: Annotated[str, OneOf(ExclusionReason)]
    reason: OptionalReason

    def fold(self, state: EngagementState) -> None:
        state.outcomes[self.outcome_id].excluded = self.exclusion


class IntangibleOutcomeReported(EngagementEvent):
    TOPIC = "coachlog.IntangibleOutcomeReported"
    kind: Annotated[str, OneOf(IntangibleKind)]
    before: Rating
    after: Rating

    def fold(self, state: EngagementState) -> None:
        state.intangibles.append({"kind": self.kind, "before": self.before, "after": self.after})


class ReactionSurveyed(EngagementEvent):
    TOPIC = "coachlog.ReactionSurveyed"
    satisfaction: Annotated[int, Between(1, 5)]
    nps: Rating
    comment: Annotated[str, Personal(), Text(max_length=5000, required=False)]

    def fold(self, state: EngagementState) -> None:
        state.reactions.append({"satisfaction": self.satisfaction, "nps": self.nps})


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReportTangibleOutcome(Command):
    METHOD = "report_tangible_outcome"
    EVENT = TangibleOutcomeReported
    kind: TangibleKind
    annualized_value: Decimal
    currency: str
    attribution: Decimal
    confidence: Decimal
    source: OutcomeSource
    description: str = ""
    outcome_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class VerifyOutcome(Command):
    METHOD = "verify_outcome"
    EVENT = OutcomeVerified
    outcome_id: str
    evidence: str


@dataclass(frozen=True, kw_only=True)
class ExcludeOutcome(Command):
    METHOD = "exclude_outcome"
    EVENT = OutcomeExcluded
    outcome_id: str
    exclusion: ExclusionReason
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ReportIntangibleOutcome(Command):
    METHOD = "report_intangible_outcome"
    EVENT = IntangibleOutcomeReported
    kind: IntangibleKind
    before: int
    after: int


@dataclass(frozen=True, kw_only=True)
class SurveyReaction(Command):
    METHOD = "survey_reaction"
    EVENT = ReactionSurveyed
    satisfaction: int
    nps: int
    comment: str = ""


class OutcomeCommands(EngagementState):
    """Commands that record what the coaching achieved."""

    def _outcome(self, outcome_id: str) -> OutcomeRecord:
        try:
            outcome = self.outcomes[self._ref(outcome_id)]
        except KeyError:
            raise OutcomeNotFound(f"no outcome {outcome_id} in this engagement") from None
        self._require_after(outcome.reported_at, "the outcome was reported")
        return outcome

    def report_tangible_outcome(
        self,
        kind: str,
        annualized_value: Decimal,
        currency: str,
        attribution: Decimal,
        confidence: Decimal,
        source: str,
        description: str = "",
        outcome_id: str | None = None,
    ) -> str:
        """Report a monetisable outcome with its attribution and confidence; return its id."""
        self._require_not_erased()
        ident = self._new_id("outcome", outcome_id, self.outcomes)
        value = checked(
            TangibleOutcomeReported, "annualized_value", annualized_value, currency=currency
        )
        if currency != self.currency:
            raise CurrencyMismatch(
                f"outcome is in {currency} but the engagement is in {self.currency}"
            )
        self._record(
            TangibleOutcomeReported,
            outcome_id=ident,
            kind=kind,
            annualized_value=value,
            currency=currency,
            attribution=attribution,
            confidence=confidence,
            source=source,
            description=description,
        )
        return ident

    def verify_outcome(self, outcome_id: str, evidence: str) -> None:
        """Mark a reported outcome verified; an excluded outcome cannot be verified."""
        self._require_not_erased()
        outcome = self._outcome(outcome_id)
        if outcome.excluded is not None:
            raise OutcomeAlreadyExcluded(
                f"outcome {outcome_id} was excluded ({outcome.excluded}) and cannot be verified"
            )
        if outcome.verified:
            raise OutcomeAlreadyVerified(f"outcome {outcome_id} is already verified")
        self._record(
            OutcomeVerified,
            outcome_id=self._ref(outcome_id),
            evidence=evidence,
        )

    def exclude_outcome(self, outcome_id: str, exclusion: str, reason: str = "") -> None:
        """Exclude an outcome from ROI as extreme or unsupported."""
        self._require_not_erased()
        outcome = self._outcome(outcome_id)
        if outcome.excluded is not None:
            raise OutcomeAlreadyExcluded(f"outcome {outcome_id} is already excluded")
        self._record(
            OutcomeExcluded,
            outcome_id=self._ref(outcome_id),
            exclusion=exclusion,
            reason=reason,
        )

    def report_intangible_outcome(self, kind: str, before: int, after: int) -> None:
        """Report a change that is listed but never monetised (0-10 before and after)."""
        self._require_not_erased()
        self._record(IntangibleOutcomeReported, kind=kind, before=before, after=after)

    def survey_reaction(self, satisfaction: int, nps: int, comment: str = "") -> None:
        """Record the client's reaction: satisfaction 1-5 and likelihood to recommend 0-10."""
        self._require_not_erased()
        self._record(ReactionSurveyed, satisfaction=satisfaction, nps=nps, comment=comment)
