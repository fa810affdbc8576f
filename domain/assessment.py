"""Pillar 1, assessment and self-discovery: instruments, values, strengths, assumptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from domain.command import Command
from domain.errors import AssumptionNotFound
from domain.event import EngagementEvent
from domain.fields import (
    Freeform,
    Id,
    Items,
    Label,
    OneOf,
    OptionalParagraphs,
    Paragraphs,
    Personal,
    Text,
)
from domain.state import EngagementState
from domain.values import Instrument

AssumptionId = Annotated[str, Id("assumption")]


class AssessmentCompleted(EngagementEvent):
    TOPIC = "coachlog.AssessmentCompleted"
    assessment_id: Annotated[str, Id("assessment")]
    instrument: Annotated[str, OneOf(Instrument)]
    instrument_version: Annotated[str, Label(max_length=50)]
    result: Annotated[dict[str, Any], Personal(), Freeform(max_depth=8, max_bytes=65_536)]

    def fold(self, state: EngagementState) -> None:
        state.assessments[self.assessment_id] = self.instrument


class ValuesRanked(EngagementEvent):
    TOPIC = "coachlog.ValuesRanked"
    values: Annotated[
        list[Annotated[str, Text(max_length=200)]],
        Personal(),
        Items(min_items=1, distinct=True, ignore_case=True, noun="value"),
    ]

    def fold(self, state: EngagementState) -> None:
        state.values_ranked += 1


class StrengthIdentified(EngagementEvent):
    TOPIC = "coachlog.StrengthIdentified"
    strength: Annotated[str, Personal(), Text(max_length=500)]
    evidence: OptionalParagraphs

    def fold(self, state: EngagementState) -> None:
        state.strengths += 1


class LimitingAssumptionIdentified(EngagementEvent):
    TOPIC = "coachlog.LimitingAssumptionIdentified"
    assumption_id: AssumptionId
    assumption: Paragraphs

    def fold(self, state: EngagementState) -> None:
        state.assumptions[self.assumption_id] = self.occurred_at


class LimitingAssumptionReframed(EngagementEvent):
    TOPIC = "coachlog.LimitingAssumptionReframed"
    assumption_id: AssumptionId
    reframe: Paragraphs

    def fold(self, state: EngagementState) -> None:
        if self.assumption_id not in state.reframed:
            state.reframed.append(self.assumption_id)


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CompleteAssessment(Command):
    METHOD = "complete_assessment"
    EVENT = AssessmentCompleted
    instrument: Instrument
    instrument_version: str
    result: dict[str, Any]
    assessment_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class RankValues(Command):
    METHOD = "rank_values"
    EVENT = ValuesRanked
    values: list[str]


@dataclass(frozen=True, kw_only=True)
class IdentifyStrength(Command):
    METHOD = "identify_strength"
    EVENT = StrengthIdentified
    strength: str
    evidence: str = ""


@dataclass(frozen=True, kw_only=True)
class IdentifyLimitingAssumption(Command):
    METHOD = "identify_limiting_assumption"
    EVENT = LimitingAssumptionIdentified
    assumption: str
    assumption_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReframeLimitingAssumption(Command):
    METHOD = "reframe_limiting_assumption"
    EVENT = LimitingAssumptionReframed
    assumption_id: str
    reframe: str


class AssessmentCommands(EngagementState):
    """Commands of the assessment and self-discovery pillar."""

    def complete_assessment(
        self,
        instrument: str,
        instrument_version: str,
        result: dict[str, Any],
        assessment_id: str | None = None,
    ) -> str:
        """Record a completed assessment instrument and its result; return its id."""
        self._require_open_for_work("record an assessment")
        ident = self._new_id("assessment", assessment_id, self.assessments)
        self._record(
            AssessmentCompleted,
            assessment_id=ident,
            instrument=instrument,
            instrument_version=instrument_version,
            result=result,
        )
        return ident

    def rank_values(self, values: list[str]) -> None:
        """Record the client's values, most important first."""
        self._require_open_for_work("rank values")
        self._record(ValuesRanked, values=values)

    def identify_strength(self, strength: str, evidence: str = "") -> None:
        """Record a strength the client has and the evidence for it."""
        self._require_open_for_work("identify a strength")
        self._record(StrengthIdentified, strength=strength, evidence=evidence)

    def identify_limiting_assumption(
        self, assumption: str, assumption_id: str | None = None
    ) -> str:
        """Record a limiting assumption the client holds; return its id."""
        self._require_open_for_work("identify a limiting assumption")
        ident = self._new_id("assumption", assumption_id, self.assumptions)
        self._record(LimitingAssumptionIdentified, assumption_id=ident, assumption=assumption)
        return ident

    def reframe_limiting_assumption(self, assumption_id: str, reframe: str) -> None:
        """Record how a known limiting assumption was reframed."""
        self._require_open_for_work("reframe a limiting assumption")
        try:
            identified_at = self.assumptions[self._ref(assumption_id)]
        except KeyError:
            raise AssumptionNotFound(f"no limiting assumption {assumption_id} here") from None
        self._require_after(identified_at, "the assumption was identified")
        self._record(
            LimitingAssumptionReframed, assumption_id=self._ref(assumption_id), reframe=reframe
        )
