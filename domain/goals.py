"""Pillar 2, goals: vision, SMART goals scaled for Goal Attainment Scaling, milestones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from domain.checks import checked, conform
from domain.command import Command
from domain.errors import (
    DateOutOfRange,
    GoalNotFound,
    GoalNotOpen,
    InvalidValue,
    MilestoneAlreadyHit,
    MilestoneNotFound,
    TargetDateNotAfterSetDate,
)
from domain.event import EngagementEvent
from domain.fields import Between, Id, Levels, OneOf, Paragraphs, Personal, Reason, Text
from domain.state import EngagementState, GoalRecord, MilestoneRecord
from domain.values import (
    GAS_LEVELS,
    GAS_WEIGHTS,
    VISION_HORIZONS,
    GapKind,
    GoalStatus,
    Rater,
    a_date,
)

GoalId = Annotated[str, Id("goal")]
MilestoneId = Annotated[str, Id("milestone")]
#: What the client wants, in their own words.
GoalTitle = Annotated[str, Personal(), Text(max_length=300)]
#: How a goal is measured, where it starts and where it should get to.
GoalYardstick = Annotated[str, Personal(), Text(max_length=1000)]
GoalWeight = Annotated[int, Between(GAS_WEIGHTS[0], GAS_WEIGHTS[-1])]
#: What each level of the goal's Goal Attainment Scale (-2..+2) looks like.
GoalLevels = Annotated[
    dict[str, Annotated[str, Text(max_length=1000)]],
    Personal(),
    Levels(tuple(str(n) for n in GAS_LEVELS)),
]


@dataclass(frozen=True)
class SmartGoal:
    """A Specific, Measurable, Achievable, Relevant, Time-bound goal with its GAS scale."""

    title: GoalTitle
    measure: GoalYardstick
    baseline: GoalYardstick
    target: GoalYardstick
    target_date: date
    weight: GoalWeight
    levels: GoalLevels

    @classmethod
    def of(
        cls,
        title: str,
        measure: str,
        baseline: str,
        target: str,
        target_date: date,
        weight: int,
        levels: dict[str, str],
    ) -> SmartGoal:
        """Validate a goal: text present, weight 1-4, a description for each level -2..+2."""
        given = {
            "levels": levels,
            "title": title,
            "measure": measure,
            "baseline": baseline,
            "target": target,
            "target_date": target_date,
            "weight": weight,
        }
        return cls(**conform(cls, given))

    def as_payload(self) -> dict[str, Any]:
        """Return the goal's fields as event payload."""
        return dict(self.__dict__)


def _validated(goal: SmartGoal) -> SmartGoal:
    """Re-check a goal: the plain dataclass constructor bypasses ``SmartGoal.of``."""
    if not isinstance(goal, SmartGoal):
        raise InvalidValue("goal", "must be a SMART goal")
    return SmartGoal.of(**goal.as_payload())


class VisionStated(EngagementEvent):
    TOPIC = "coachlog.VisionStated"
    horizon_years: Annotated[int, OneOf(VISION_HORIZONS)]
    vision: Paragraphs

    def fold(self, state: EngagementState) -> None:
        if self.horizon_years not in state.visions:
            state.visions.append(self.horizon_years)


class GoalSet(EngagementEvent):
    TOPIC = "coachlog.GoalSet"
    goal_id: GoalId
    title: GoalTitle
    measure: GoalYardstick
    baseline: GoalYardstick
    target: GoalYardstick
    target_date: date
    weight: GoalWeight
    levels: GoalLevels

    def fold(self, state: EngagementState) -> None:
        state.goals[self.goal_id] = GoalRecord(
            title=self.title,
            measure=self.measure,
            baseline=self.baseline,
            target=self.target,
            target_date=self.target_date,
            weight=self.weight,
            levels=dict(self.levels),
            set_at=self.occurred_at,
        )


class GapIdentified(EngagementEvent):
    TOPIC = "coachlog.GapIdentified"
    gap_id: Annotated[str, Id("gap")]
    goal_id: GoalId | None
    kind: Annotated[str, OneOf(GapKind)]
    description: Paragraphs

    def fold(self, state: EngagementState) -> None:
        state.gaps[self.gap_id] = self.kind


class MilestoneDefined(EngagementEvent):
    TOPIC = "coachlog.MilestoneDefined"
    goal_id: GoalId
    milestone_id: MilestoneId
    title: GoalTitle
    due_date: date | None

    def fold(self, state: EngagementState) -> None:
        state.goals[self.goal_id].milestones[self.milestone_id] = MilestoneRecord(
            title=self.title, defined_at=self.occurred_at, due_date=self.due_date
        )


class MilestoneHit(EngagementEvent):
    TOPIC = "coachlog.MilestoneHit"
    goal_id: GoalId
    milestone_id: MilestoneId

    def fold(self, state: EngagementState) -> None:
        state.goals[self.goal_id].milestones[self.milestone_id].hit_at = self.occurred_at


class ObstacleAnticipated(EngagementEvent):
    TOPIC = "coachlog.ObstacleAnticipated"
    goal_id: GoalId
    obstacle: Paragraphs
    if_then_plan: Paragraphs

    def fold(self, state: EngagementState) -> None:
        state.goals[self.goal_id].obstacles += 1


class GoalProgressRated(EngagementEvent):
    TOPIC = "coachlog.GoalProgressRated"
    goal_id: GoalId
    score: Annotated[int, Between(GAS_LEVELS[0], GAS_LEVELS[-1])]
    rater: Annotated[str, OneOf(Rater)]

    def fold(self, state: EngagementState) -> None:
        goal = state.goals[self.goal_id]
        if goal.rated_at is None or self.occurred_at >= goal.rated_at:
            goal.latest_score = self.score
            goal.rated_at = self.occurred_at
        goal.scores.append(self.score)


class GoalRevised(EngagementEvent):
    TOPIC = "coachlog.GoalRevised"
    goal_id: GoalId
    title: GoalTitle
    measure: GoalYardstick
    baseline: GoalYardstick
    target: GoalYardstick
    target_date: date
    weight: GoalWeight
    levels: GoalLevels
    reason: Reason

    def fold(self, state: EngagementState) -> None:
        goal = state.goals[self.goal_id]
        goal.title = self.title
        goal.measure = self.measure
        goal.baseline = self.baseline
        goal.target = self.target
        goal.target_date = self.target_date
        goal.weight = self.weight
        goal.levels = dict(self.levels)
        goal.revisions += 1


class GoalAchieved(EngagementEvent):
    TOPIC = "coachlog.GoalAchieved"
    goal_id: GoalId

    def fold(self, state: EngagementState) -> None:
        goal = state.goals[self.goal_id]
        goal.status = GoalStatus.ACHIEVED.value
        goal.closed_at = self.occurred_at


class GoalAbandoned(EngagementEvent):
    TOPIC = "coachlog.GoalAbandoned"
    goal_id: GoalId
    reason: Reason

    def fold(self, state: EngagementState) -> None:
        goal = state.goals[self.goal_id]
        goal.status = GoalStatus.ABANDONED.value
        goal.closed_at = self.occurred_at


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StateVision(Command):
    METHOD = "state_vision"
    EVENT = VisionStated
    horizon_years: int
    vision: str


@dataclass(frozen=True, kw_only=True)
class SetGoal(Command):
    METHOD = "set_goal"
    EVENT = GoalSet
    goal: SmartGoal
    goal_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class IdentifyGap(Command):
    METHOD = "identify_gap"
    EVENT = GapIdentified
    kind: GapKind
    description: str
    goal_id: str | None = None
    gap_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class DefineMilestone(Command):
    METHOD = "define_milestone"
    EVENT = MilestoneDefined
    goal_id: str
    title: str
    due_date: date | None = None
    milestone_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class HitMilestone(Command):
    METHOD = "hit_milestone"
    EVENT = MilestoneHit
    goal_id: str
    milestone_id: str


@dataclass(frozen=True, kw_only=True)
class AnticipateObstacle(Command):
    METHOD = "anticipate_obstacle"
    EVENT = ObstacleAnticipated
    goal_id: str
    obstacle: str
    if_then_plan: str


@dataclass(frozen=True, kw_only=True)
class RateGoalProgress(Command):
    METHOD = "rate_goal_progress"
    EVENT = GoalProgressRated
    goal_id: str
    score: int
    rater: Rater


@dataclass(frozen=True, kw_only=True)
class ReviseGoal(Command):
    METHOD = "revise_goal"
    EVENT = GoalRevised
    goal_id: str
    goal: SmartGoal
    reason: str


@dataclass(frozen=True, kw_only=True)
class AchieveGoal(Command):
    METHOD = "achieve_goal"
    EVENT = GoalAchieved
    goal_id: str


@dataclass(frozen=True, kw_only=True)
class AbandonGoal(Command):
    METHOD = "abandon_goal"
    EVENT = GoalAbandoned
    goal_id: str
    reason: str


class GoalCommands(EngagementState):
    """Commands of the goal-setting pillar."""

    def _goal(self, goal_id: str) -> GoalRecord:
        try:
            return self.goals[self._ref(goal_id)]
        except KeyError:
            raise GoalNotFound(f"no goal {goal_id} in this engagement") from None

    def _open_goal(self, goal_id: str, what: str) -> GoalRecord:
        goal = self._goal(goal_id)
        if goal.status != GoalStatus.OPEN:
            raise GoalNotOpen(f"cannot {what}: goal {goal_id} is {goal.status}")
        self._require_after(goal.set_at, "the goal was set")
        return goal

    def _check_target_date(self, target_date: date, goal: GoalRecord | None = None) -> None:
        """A target after the day the goal is set, within the planning horizon, and (for
        a revision) not before any of the goal's milestones is due."""
        set_on = self._occurred_at().date()
        if a_date("target_date", target_date) <= set_on:
            raise TargetDateNotAfterSetDate(
                f"target date {target_date.isoformat()} must be after the day the goal "
                f"is set ({set_on.isoformat()})"
            )
        self._require_date_in_life("goal.target_date", target_date)
        for milestone_id, milestone in (goal.milestones if goal else {}).items():
            if milestone.due_date is not None and milestone.due_date > target_date:
                raise DateOutOfRange(
                    "goal.target_date",
                    f"{target_date.isoformat()} is before milestone {milestone_id} is due "
                    f"({milestone.due_date.isoformat()})",
                )

    def state_vision(self, horizon_years: int, vision: str) -> None:
        """Record the client's vision for 5, 10 or 20 years ahead."""
        self._require_open_for_work("state a vision")
        self._record(VisionStated, horizon_years=horizon_years, vision=vision)

    def set_goal(self, goal: SmartGoal, goal_id: str | None = None) -> str:
        """Set a SMART goal whose target date lies after today; return its id."""
        self._require_open_for_work("set a goal")
        goal = _validated(goal)
        ident = self._new_id("goal", goal_id, self.goals)
        self._check_target_date(goal.target_date)
        self._record(GoalSet, goal_id=ident, **goal.as_payload())
        return ident

    def identify_gap(
        self, kind: str, description: str, goal_id: str | None = None, gap_id: str | None = None
    ) -> str:
        """Record a skill, credential, network or experience gap; return its id."""
        self._require_open_for_work("identify a gap")
        if goal_id is not None:
            self._goal(goal_id)
        ident = self._new_id("gap", gap_id, self.gaps)
        self._record(
            GapIdentified,
            gap_id=ident,
            goal_id=None if goal_id is None else self._ref(goal_id),
            kind=kind,
            description=description,
        )
        return ident

    def define_milestone(
        self,
        goal_id: str,
        title: str,
        due_date: date | None = None,
        milestone_id: str | None = None,
    ) -> str:
        """Define a milestone on an open goal; return its id."""
        self._require_open_for_work("define a milestone")
        goal = self._open_goal(goal_id, "define a milestone")
        ident = self._new_id("milestone", milestone_id, goal.milestones)
        if due_date is not None:
            due_date = checked(MilestoneDefined, "due_date", due_date)
            self._require_date_in_life(
                "due_date", due_date, latest=goal.target_date, latest_what="the goal's target date"
            )
        self._record(
            MilestoneDefined,
            goal_id=self._ref(goal_id),
            milestone_id=ident,
            title=title,
            due_date=due_date,
        )
        return ident

    def hit_milestone(self, goal_id: str, milestone_id: str) -> None:
        """Record that a milestone of an open goal was reached (once)."""
        self._require_open_for_work("hit a milestone")
        goal = self._open_goal(goal_id, "hit a milestone")
        try:
            milestone = goal.milestones[self._ref(milestone_id)]
        except KeyError:
            raise MilestoneNotFound(f"goal {goal_id} has no milestone {milestone_id}") from None
        if milestone.hit_at is not None:
            raise MilestoneAlreadyHit(f"milestone {milestone_id} was already hit")
        self._require_after(milestone.defined_at, "the milestone was defined")
        self._record(MilestoneHit, goal_id=self._ref(goal_id), milestone_id=self._ref(milestone_id))

    def anticipate_obstacle(self, goal_id: str, obstacle: str, if_then_plan: str) -> None:
        """Record an obstacle to an open goal and the if-then plan for it."""
        self._require_open_for_work("anticipate an obstacle")
        self._open_goal(goal_id, "anticipate an obstacle")
        self._record(
            ObstacleAnticipated,
            goal_id=self._ref(goal_id),
            obstacle=obstacle,
            if_then_plan=if_then_plan,
        )

    def rate_goal_progress(self, goal_id: str, score: int, rater: str) -> None:
        """Rate an open goal on its Goal Attainment Scale (-2..+2)."""
        self._require_open_for_work("rate goal progress")
        self._open_goal(goal_id, "rate progress")
        self._record(
            GoalProgressRated,
            goal_id=self._ref(goal_id),
            score=score,
            rater=rater,
        )

    def revise_goal(self, goal_id: str, goal: SmartGoal, reason: str) -> None:
        """Replace an open goal's SMART definition, saying why."""
        self._require_open_for_work("revise a goal")
        record = self._open_goal(goal_id, "revise it")
        goal = _validated(goal)
        self._check_target_date(goal.target_date, record)
        self._record(
            GoalRevised,
            goal_id=self._ref(goal_id),
            reason=reason,
            **goal.as_payload(),
        )

    def achieve_goal(self, goal_id: str) -> None:
        """Record that an open goal was achieved."""
        self._require_open_for_work("achieve a goal")
        self._open_goal(goal_id, "achieve it")
        self._record(GoalAchieved, goal_id=self._ref(goal_id))

    def abandon_goal(self, goal_id: str, reason: str) -> None:
        """Record that an open goal was abandoned, and why."""
        self._require_open_for_work("abandon a goal")
        self._open_goal(goal_id, "abandon it")
        self._record(GoalAbandoned, goal_id=self._ref(goal_id), reason=reason)
