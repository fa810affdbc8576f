"""The state of an engagement, and the guards every pillar's commands share.

State holds only JSON-friendly values (str ids, lists, dicts keyed by str, dataclass
records registered with the transcoder) so that a snapshot reloads equal to the
aggregate it was taken from. What holds the client's words or data is marked
``Personal`` or ``Sensitive`` (domain/fields.py): erasure blanks exactly those.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID, uuid4

from domain import context as command_context
from domain.checks import conform
from domain.errors import (
    ClientErased,
    DateOutOfRange,
    DuplicateId,
    EngagementClosed,
    EngagementPaused,
    InvalidValue,
    OccurredTooEarly,
)
from domain.fields import Personal, Sensitive
from domain.values import Status

if TYPE_CHECKING:
    from domain.event import EngagementEvent

# -- the tolerances of the date rules (README, "Dates an engagement accepts") ------------

#: How long before the engagement's opening a session may be scheduled: coaching often
#: starts before the engagement is entered in coachlog, and those sessions are logged late.
SESSION_BEFORE_OPENING = timedelta(days=30)
#: How long before its scheduled time a session may be recorded as held (or as a
#: no-show): a session that started a little early.
HELD_BEFORE_SCHEDULED = timedelta(hours=2)
#: How far ahead of the command a planned date may lie (a session, a goal's target date,
#: a due date): five years, the shortest vision horizon.
PLANNING_HORIZON = timedelta(days=5 * 365 + 2)


@dataclass
class StatusChange:
    """The engagement's status from ``at`` (occurred time) on."""

    at: datetime
    status: str


@dataclass
class SessionRecord:
    scheduled_for: datetime
    duration_minutes: int
    scheduled_at: datetime
    status: str = "scheduled"
    ended_at: datetime | None = None
    held_minutes: int | None = None
    pillars: list[str] = field(default_factory=list)
    late: bool = False
    counts_against_allocation: bool = False
    reschedules: int = 0


@dataclass
class MilestoneRecord:
    title: Annotated[str, Personal()]
    defined_at: datetime
    due_date: date | None = None
    hit_at: datetime | None = None


@dataclass
class GoalRecord:
    title: Annotated[str, Personal()]
    measure: Annotated[str, Personal()]
    baseline: Annotated[str, Personal()]
    target: Annotated[str, Personal()]
    target_date: date
    weight: int
    levels: Annotated[dict[str, str], Personal()]
    set_at: datetime
    status: str = "open"
    closed_at: datetime | None = None
    latest_score: int | None = None
    #: When the latest score occurred: a rating logged late for an earlier day does not
    #: replace a later one.
    rated_at: datetime | None = None
    scores: list[int] = field(default_factory=list)
    revisions: int = 0
    milestones: dict[str, MilestoneRecord] = field(default_factory=dict)
    obstacles: int = 0


@dataclass
class CommitmentRecord:
    title: Annotated[str, Personal()]
    due_date: date
    made_at: datetime
    goal_id: str | None = None
    status: str = "open"
    resolved_at: datetime | None = None
    renegotiations: int = 0


@dataclass
class SkillRecord:
    started_at: datetime
    baseline: int
    current: int
    practices: int = 0
    practice_minutes: int = 0


@dataclass
class OutcomeRecord:
    kind: str
    annualized_value: Decimal
    currency: str
    attribution: Decimal
    confidence: Decimal
    source: str
    reported_at: datetime
    verified: bool = False
    excluded: str | None = None


@dataclass
class InvoiceRecord:
    amount: Decimal
    issued_at: datetime
    paid: Decimal = Decimal(0)
    voided: bool = False


def plain(value: Any) -> Any:
    """Return ``value`` with state records turned into dicts, recursively."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


STATE_RECORDS: tuple[type[Any], ...] = (
    StatusChange,
    SessionRecord,
    MilestoneRecord,
    GoalRecord,
    CommitmentRecord,
    SkillRecord,
    OutcomeRecord,
    InvoiceRecord,
)


class EngagementState:
    """Attributes of an engagement and the shared guards of its command methods."""

    if TYPE_CHECKING:
        # Provided by eventsourcing's Aggregate, which Engagement mixes in.
        @property
        def id(self) -> UUID: ...

        @property
        def version(self) -> int: ...

        def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None: ...

    firm_id: str
    client_id: str
    client_name: Annotated[str, Personal()]
    coach_id: str
    sponsor_id: str | None
    segment: str
    delivery: str
    planned_sessions: int
    cadence_days: int
    fee_per_session: Decimal
    currency: str
    opened_at: datetime
    status: str
    status_history: list[StatusChange]
    close_reason: str | None
    sponsor_may_see: list[str]
    coach_history: list[str]
    sessions: dict[str, SessionRecord]
    assessments: dict[str, str]
    values_ranked: int
    strengths: int
    assumptions: dict[str, datetime]
    reframed: list[str]
    visions: list[int]
    goals: dict[str, GoalRecord]
    gaps: dict[str, str]
    skills: dict[str, SkillRecord]
    commitments: dict[str, CommitmentRecord]
    feedback_count: int
    course_corrections: int
    wins: int
    wellbeing: Annotated[list[dict[str, int]], Sensitive()]
    referrals: int
    outcomes: dict[str, OutcomeRecord]
    intangibles: list[dict[str, Any]]
    reactions: list[dict[str, int]]
    invoices: dict[str, InvoiceRecord]
    costs: dict[str, Decimal]
    consents: list[str]
    erased: bool

    def _init_state(self) -> None:
        self.firm_id = ""
        self.client_id = ""
        self.client_name = ""
        self.coach_id = ""
        self.sponsor_id = None
        self.segment = ""
        self.delivery = ""
        self.planned_sessions = 0
        self.cadence_days = 0
        self.fee_per_session = Decimal(0)
        self.currency = ""
        self.status = Status.ACTIVE.value
        self.status_history = []
        self.close_reason = None
        self.sponsor_may_see = []
        self.coach_history = []
        self.sessions = {}
        self.assessments = {}
        self.values_ranked = 0
        self.strengths = 0
        self.assumptions = {}
        self.reframed = []
        self.visions = []
        self.goals = {}
        self.gaps = {}
        self.skills = {}
        self.commitments = {}
        self.feedback_count = 0
        self.course_corrections = 0
        self.wins = 0
        self.wellbeing = []
        self.referrals = 0
        self.outcomes = {}
        self.intangibles = []
        self.reactions = []
        self.invoices = {}
        self.costs = {}
        self.consents = []
        self.erased = False

    # -- recording --------------------------------------------------------------------

    def _record(self, event_class: type[EngagementEvent], **payload: Any) -> None:
        """Trigger ``event_class`` stamped with the command context in force, its payload
        checked against the event's declaration first (domain/fields.py)."""
        payload = conform(event_class, payload)
        ctx = command_context.current()
        occurred_at = self._occurred_at()
        self.trigger_event(
            event_class,
            actor_id=ctx.actor_id,
            actor_role=ctx.actor_role,
            firm_id=self.firm_id,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
            occurred_at=occurred_at,
            **payload,
        )

    def _occurred_at(self, *, not_before: datetime | None = None, what: str = "") -> datetime:
        """Return the command's occurred time, checked against clock and prerequisites."""
        ctx = command_context.current()
        occurred_at = ctx.resolved_occurred_at(command_context.utcnow())
        floor, floor_name = self.opened_at, "the engagement was opened"
        if not_before is not None and not_before > floor:
            floor, floor_name = not_before, what
        if occurred_at < floor:
            raise OccurredTooEarly(
                f"occurred_at {occurred_at.isoformat()} is before {floor_name} "
                f"({floor.isoformat()})"
            )
        return occurred_at

    def _require_after(self, moment: datetime, what: str) -> None:
        """Refuse a command that claims to have happened before ``what``."""
        self._occurred_at(not_before=moment, what=what)

    # -- dates within the engagement's life -------------------------------------------

    def _horizon(self) -> datetime:
        return self._occurred_at() + PLANNING_HORIZON

    def _require_moment_in_life(self, name: str, moment: datetime) -> None:
        """Refuse a session time more than SESSION_BEFORE_OPENING before the opening, or
        beyond the planning horizon of the command."""
        earliest = self.opened_at - SESSION_BEFORE_OPENING
        if moment < earliest:
            raise DateOutOfRange(
                name,
                f"{moment.isoformat()} is more than {SESSION_BEFORE_OPENING.days} days before "
                f"the engagement was opened ({self.opened_at.isoformat()})",
            )
        horizon = self._horizon()
        if moment > horizon:
            raise DateOutOfRange(
                name,
                f"{moment.isoformat()} is beyond the planning horizon of "
                f"{PLANNING_HORIZON.days} days ({horizon.date().isoformat()})",
            )

    def _require_date_in_life(
        self, name: str, day: date, *, latest: date | None = None, latest_what: str = ""
    ) -> None:
        """Refuse a due or target date before the day the engagement opened, after
        ``latest`` (``latest_what`` says what that is), or beyond the planning horizon."""
        opened_on = self.opened_at.date()
        if day < opened_on:
            raise DateOutOfRange(
                name,
                f"{day.isoformat()} is before the engagement was opened ({opened_on.isoformat()})",
            )
        if latest is not None and day > latest:
            raise DateOutOfRange(
                name, f"{day.isoformat()} is after {latest_what} ({latest.isoformat()})"
            )
        horizon = self._horizon().date()
        if day > horizon:
            raise DateOutOfRange(
                name,
                f"{day.isoformat()} is beyond the planning horizon of "
                f"{PLANNING_HORIZON.days} days ({horizon.isoformat()})",
            )

    # -- shared guards ----------------------------------------------------------------

    def _require_not_erased(self) -> None:
        if self.erased:
            raise ClientErased("the client was erased: this engagement takes no new records")

    @property
    def status_changed_at(self) -> datetime:
        """When (occurred time) the status last changed."""
        return self.status_history[-1].at

    def _status_at(self, moment: datetime) -> str:
        """The status the engagement had at ``moment`` (occurred time)."""
        for change in reversed(self.status_history):
            if change.at <= moment:
                return change.status
        return Status.ACTIVE.value

    def _require_open_for_work(self, what: str) -> str:
        """Refuse coaching work (goals, commitments, assessments...) that would fall in a
        closed period; return the status at the command's occurred time.

        Judged at the occurred time, not now: a session held before a pause may be
        logged after it, and nothing may be backdated into a paused or closed period.
        """
        self._require_not_erased()
        when = self._occurred_at()
        status = self._status_at(when)
        if status == Status.CLOSED:
            raise EngagementClosed(
                f"cannot {what}: the engagement was closed at {when.isoformat()}"
            )
        return status

    def _require_active(self, what: str) -> None:
        """Refuse session work unless the engagement was active (not paused or closed)."""
        if self._require_open_for_work(what) == Status.PAUSED:
            when = self._occurred_at()
            raise EngagementPaused(
                f"cannot {what}: the engagement was paused at {when.isoformat()}"
            )

    @staticmethod
    def _ref(value: str) -> str:
        """Return an id as stored: UUIDs in canonical lower-case form, anything else as is."""
        try:
            return str(UUID(str(value)))
        except ValueError:
            return str(value)

    @staticmethod
    def _new_id(kind: str, given: str | None, existing: dict[str, Any]) -> str:
        """Return a fresh id (or the caller's), refusing one already used here."""
        if given is None:
            return str(uuid4())
        try:
            ident = str(UUID(str(given)))
        except ValueError:
            raise InvalidValue(f"{kind}_id", f"{given!r} is not a UUID") from None
        if ident in existing:
            raise DuplicateId(f"{kind} {ident} already exists in this engagement")
        return ident
