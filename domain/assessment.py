"""Pillar 1, assessment and self-discovery: instruments, values, strengths, assumptions."""

from __future__ import annotations

from typing import Any

from domain.errors import AssumptionNotFound, InvalidValue
from domain.event import EngagementEvent
from domain.state import EngagementState
from domain.values import Instrument, enum_value, text


class AssessmentCompleted(EngagementEvent):
    TOPIC = "coachlog.AssessmentCompleted"
    assessment_id: str
    instrument: str
    instrument_version: str
    result: dict[str, Any]

    def fold(self, state: EngagementState) -> None:
        state.assessments[self.assessment_id] = self.instrument


class ValuesRanked(EngagementEvent):
    TOPIC = "coachlog.ValuesRanked"
    values: list[str]

    def fold(self, state: EngagementState) -> None:
        state.values_ranked += 1


class StrengthIdentified(EngagementEvent):
    TOPIC = "coachlog.StrengthIdentified"
    strength: str
    evidence: str

    def fold(self, state: EngagementState) -> None:
        state.strengths += 1


class LimitingAssumptionIdentified(EngagementEvent):
    TOPIC = "coachlog.LimitingAssumptionIdentified"
    assumption_id: str
    assumption: str

    def fold(self, state: EngagementState) -> None:
        state.assumptions[self.assumption_id] = self.occurred_at


class LimitingAssumptionReframed(EngagementEvent):
    TOPIC = "coachlog.LimitingAssumptionReframed"
    assumption_id: str
    reframe: str

    def fold(self, state: EngagementState) -> None:
        if self.assumption_id not in state.reframed:
            state.reframed.append(self.assumption_id)


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
        if not isinstance(result, dict) or not result:
            raise InvalidValue("result", "must be a non-empty object of findings")
        self._record(
            AssessmentCompleted,
            assessment_id=ident,
            instrument=enum_value(Instrument, "instrument", instrument).value,
            instrument_version=text("instrument_version", instrument_version, max_length=50),
            result=dict(result),
        )
        return ident

    def rank_values(self, values: list[str]) -> None:
        """Record the client's values, most important first."""
        self._require_open_for_work("rank values")
        ranked = [text("values", v, max_length=200) for v in values]
        if not ranked:
            raise InvalidValue("values", "must list at least one value")
        if len({v.casefold() for v in ranked}) != len(ranked):
            raise InvalidValue("values", "lists a value more than once")
        self._record(ValuesRanked, values=ranked)

    def identify_strength(self, strength: str, evidence: str = "") -> None:
        """Record a strength the client has and the evidence for it."""
        self._require_open_for_work("identify a strength")
        self._record(
            StrengthIdentified,
            strength=text("strength", strength, max_length=500),
            evidence=text("evidence", evidence, max_length=5000, required=False),
        )

    def identify_limiting_assumption(
        self, assumption: str, assumption_id: str | None = None
    ) -> str:
        """Record a limiting assumption the client holds; return its id."""
        self._require_open_for_work("identify a limiting assumption")
        ident = self._new_id("assumption", assumption_id, self.assumptions)
        self._record(
            LimitingAssumptionIdentified,
            assumption_id=ident,
            assumption=text("assumption", assumption, max_length=5000),
        )
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
            LimitingAssumptionReframed,
            assumption_id=self._ref(assumption_id),
            reframe=text("reframe", reframe, max_length=5000),
        )
