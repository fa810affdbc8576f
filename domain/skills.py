"""Pillar 3, skill building: a focus area, deliberate practice, and reassessment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from domain.checks import checked
from domain.command import Command
from domain.errors import InvalidValue, SkillFocusNotStarted
from domain.event import EngagementEvent
from domain.fields import Between, FromState, OneOf, OptionalParagraphs
from domain.state import EngagementState, SkillRecord
from domain.values import SkillArea

Area = Annotated[str, OneOf(SkillArea)]
#: A self-rated level of a skill.
SkillLevel = Annotated[int, Between(0, 10)]


class SkillFocusStarted(EngagementEvent):
    TOPIC = "coachlog.SkillFocusStarted"
    area: Area
    baseline: SkillLevel

    def fold(self, state: EngagementState) -> None:
        state.skills[self.area] = SkillRecord(
            started_at=self.occurred_at, baseline=self.baseline, current=self.baseline
        )


class PracticeCompleted(EngagementEvent):
    TOPIC = "coachlog.PracticeCompleted"
    area: Area
    minutes: Annotated[int, Between(1, 24 * 60)]
    description: OptionalParagraphs

    def fold(self, state: EngagementState) -> None:
        skill = state.skills[self.area]
        skill.practices += 1
        skill.practice_minutes += self.minutes


class SkillReassessed(EngagementEvent):
    TOPIC = "coachlog.SkillReassessed"
    area: Area
    before: Annotated[SkillLevel, FromState()]
    after: SkillLevel

    def fold(self, state: EngagementState) -> None:
        state.skills[self.area].current = self.after


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StartSkillFocus(Command):
    METHOD = "start_skill_focus"
    EVENT = SkillFocusStarted
    area: SkillArea
    baseline: int


@dataclass(frozen=True, kw_only=True)
class CompletePractice(Command):
    METHOD = "complete_practice"
    EVENT = PracticeCompleted
    area: SkillArea
    minutes: int
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class ReassessSkill(Command):
    METHOD = "reassess_skill"
    EVENT = SkillReassessed
    area: SkillArea
    after: int


class SkillCommands(EngagementState):
    """Commands of the skill-building pillar."""

    def _skill(self, area: str) -> tuple[str, SkillRecord]:
        name = checked(SkillFocusStarted, "area", area)
        try:
            skill = self.skills[name]
        except KeyError:
            raise SkillFocusNotStarted(f"no skill focus on {name} was started") from None
        self._require_after(skill.started_at, "the skill focus started")
        return name, skill

    def start_skill_focus(self, area: str, baseline: int) -> None:
        """Start working on a skill area from a self-rated baseline (0-10)."""
        self._require_open_for_work("start a skill focus")
        name = checked(SkillFocusStarted, "area", area)
        if name in self.skills:
            raise InvalidValue("area", f"a focus on {name} is already under way")
        self._record(SkillFocusStarted, area=name, baseline=baseline)

    def complete_practice(self, area: str, minutes: int, description: str = "") -> None:
        """Record a practice exercise in a skill area under focus."""
        self._require_open_for_work("record practice")
        name, _ = self._skill(area)
        self._record(PracticeCompleted, area=name, minutes=minutes, description=description)

    def reassess_skill(self, area: str, after: int) -> None:
        """Rate a skill again (0-10); the event keeps the level before and after."""
        self._require_open_for_work("reassess a skill")
        name, skill = self._skill(area)
        self._record(SkillReassessed, area=name, before=skill.current, after=after)
