"""Pillar 4, accountability: commitments kept or missed, feedback, corrections, wins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from domain.checks import checked
from domain.command import Command
from domain.errors import (
    CommitmentAlreadyResolved,
    CommitmentNotFound,
    CommitmentNotYetDue,
    GoalNotFound,
)
from domain.event import EngagementEvent
from domain.fields import Id, OneOf, Paragraphs, Personal, Reason, Text
from domain.goals import GoalId
from domain.state import CommitmentRecord, EngagementState
from domain.values import CommitmentStatus, FeedbackDirection

CommitmentId = Annotated[str, Id("commitment")]


class CommitmentMade(EngagementEvent):
    TOPIC = "coachlog.CommitmentMade"
    commitment_id: CommitmentId
    title: Annotated[str, Personal(), Text(max_length=500)]
    due_date: date
    goal_id: GoalId | None

    def fold(self, state: EngagementState) -> None:
        state.commitments[self.commitment_id] = CommitmentRecord(
            title=self.title, due_date=self.due_date, made_at=self.occurred_at, goal_id=self.goal_id
        )


class CommitmentKept(EngagementEvent):
    TOPIC = "coachlog.CommitmentKept"
    commitment_id: CommitmentId

    def fold(self, state: EngagementState) -> None:
        record = state.commitments[self.commitment_id]
        record.status = CommitmentStatus.KEPT.value
        record.resolved_at = self.occurred_at


class CommitmentMissed(EngagementEvent):
    TOPIC = "coachlog.CommitmentMissed"
    commitment_id: CommitmentId

    def fold(self, state: EngagementState) -> None:
        record = state.commitments[self.commitment_id]
        record.status = CommitmentStatus.MISSED.value
        record.resolved_at = self.occurred_at


class CommitmentRenegotiated(EngagementEvent):
    TOPIC = "coachlog.CommitmentRenegotiated"
    commitment_id: CommitmentId
    new_due_date: date
    reason: Reason

    def fold(self, state: EngagementState) -> None:
        record = state.commitments[self.commitment_id]
        record.due_date = self.new_due_date
        record.renegotiations += 1


class FeedbackGiven(EngagementEvent):
    TOPIC = "coachlog.FeedbackGiven"
    direction: Annotated[str, OneOf(FeedbackDirection)]
    feedback: Annotated[str, Personal(), Text(max_length=10_000)]

    def fold(self, state: EngagementState) -> None:
        state.feedback_count += 1


class CourseCorrected(EngagementEvent):
    TOPIC = "coachlog.CourseCorrected"
    goal_id: GoalId | None
    correction: Paragraphs

    def fold(self, state: EngagementState) -> None:
        state.course_corrections += 1


class WinCelebrated(EngagementEvent):
    TOPIC = "coachlog.WinCelebrated"
    goal_id: GoalId | None
    win: Paragraphs

    def fold(self, state: EngagementState) -> None:
        state.wins += 1


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MakeCommitment(Command):
    METHOD = "make_commitment"
    EVENT = CommitmentMade
    title: str
    due_date: date
    goal_id: str | None = None
    commitment_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class KeepCommitment(Command):
    METHOD = "keep_commitment"
    EVENT = CommitmentKept
    commitment_id: str


@dataclass(frozen=True, kw_only=True)
class MissCommitment(Command):
    METHOD = "miss_commitment"
    EVENT = CommitmentMissed
    commitment_id: str


@dataclass(frozen=True, kw_only=True)
class RenegotiateCommitment(Command):
    METHOD = "renegotiate_commitment"
    EVENT = CommitmentRenegotiated
    commitment_id: str
    new_due_date: date
    reason: str


@dataclass(frozen=True, kw_only=True)
class GiveFeedback(Command):
    METHOD = "give_feedback"
    EVENT = FeedbackGiven
    direction: FeedbackDirection
    feedback: str


@dataclass(frozen=True, kw_only=True)
class CorrectCourse(Command):
    METHOD = "correct_course"
    EVENT = CourseCorrected
    correction: str
    goal_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class CelebrateWin(Command):
    METHOD = "celebrate_win"
    EVENT = WinCelebrated
    win: str
    goal_id: str | None = None


class AccountabilityCommands(EngagementState):
    """Commands of the accountability pillar."""

    def _open_commitment(self, commitment_id: str) -> CommitmentRecord:
        try:
            record = self.commitments[self._ref(commitment_id)]
        except KeyError:
            raise CommitmentNotFound(f"no commitment {commitment_id} in this engagement") from None
        if record.status != CommitmentStatus.OPEN:
            raise CommitmentAlreadyResolved(
                f"commitment {commitment_id} was already resolved ({record.status})"
            )
        self._require_after(record.made_at, "the commitment was made")
        return record

    def _known_goal(self, goal_id: str | None) -> str | None:
        if goal_id is None:
            return None
        if self._ref(goal_id) not in self.goals:
            raise GoalNotFound(f"no goal {goal_id} to tie this to")
        return self._ref(goal_id)

    def make_commitment(
        self,
        title: str,
        due_date: date,
        goal_id: str | None = None,
        commitment_id: str | None = None,
    ) -> str:
        """Record a commitment the client made, due on a date; return its id."""
        self._require_open_for_work("make a commitment")
        ident = self._new_id("commitment", commitment_id, self.commitments)
        due_date = checked(CommitmentMade, "due_date", due_date)
        self._require_date_in_life("due_date", due_date)
        self._record(
            CommitmentMade,
            commitment_id=ident,
            title=title,
            due_date=due_date,
            goal_id=self._known_goal(goal_id),
        )
        return ident

    def keep_commitment(self, commitment_id: str) -> None:
        """Record that an open commitment was kept."""
        self._require_open_for_work("resolve a commitment")
        self._open_commitment(commitment_id)
        self._record(CommitmentKept, commitment_id=self._ref(commitment_id))

    def miss_commitment(self, commitment_id: str) -> None:
        """Record that an open commitment was missed; only possible after its due date."""
        self._require_open_for_work("resolve a commitment")
        record = self._open_commitment(commitment_id)
        today = self._occurred_at().date()
        if today <= record.due_date:
            raise CommitmentNotYetDue(
                f"commitment {commitment_id} is due {record.due_date.isoformat()}: it can be "
                f"missed only after that day (this is {today.isoformat()})"
            )
        self._record(CommitmentMissed, commitment_id=self._ref(commitment_id))

    def renegotiate_commitment(self, commitment_id: str, new_due_date: date, reason: str) -> None:
        """Move an open commitment's due date, saying why."""
        self._require_open_for_work("renegotiate a commitment")
        self._open_commitment(commitment_id)
        new_due_date = checked(CommitmentRenegotiated, "new_due_date", new_due_date)
        self._require_date_in_life("new_due_date", new_due_date)
        self._record(
            CommitmentRenegotiated,
            commitment_id=self._ref(commitment_id),
            new_due_date=new_due_date,
            reason=reason,
        )

    def give_feedback(self, direction: str, feedback: str) -> None:
        """Record feedback between coach and client."""
        self._require_open_for_work("give feedback")
        self._record(FeedbackGiven, direction=direction, feedback=feedback)

    def correct_course(self, correction: str, goal_id: str | None = None) -> None:
        """Record a change of approach, optionally for one goal."""
        self._require_open_for_work("correct course")
        self._record(CourseCorrected, goal_id=self._known_goal(goal_id), correction=correction)

    def celebrate_win(self, win: str, goal_id: str | None = None) -> None:
        """Record a win worth celebrating, optionally for one goal."""
        self._require_open_for_work("celebrate a win")
        self._record(WinCelebrated, goal_id=self._known_goal(goal_id), win=win)
