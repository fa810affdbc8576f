"""The engagement progress fold: events in, one progress document per engagement out.

Pure: a handler per event type mutates a plain-JSON document (strings for money and
times) and nothing else — no aggregates, no I/O. Every dashboard (engagement, lists,
coach portfolio, firm overview, sponsor report, ROI) is computed from these documents.

Coaches log notes late, so the log's order is not the world's. Everything "latest",
"first", "change" or "over time" is ordered by occurred time, ties by recorded order
(the event's version): lists are kept sorted on that key and a value that is replaced
(a rating, a revised goal, a skill's level, a renegotiated due date, the coach) is
replaced only by an event at or after the one that set it. Whatever order the same
occurred-time history is entered in, the document is the same (tests/integration/
test_occurred_order.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from functools import singledispatch
from typing import Any

from domain import accountability as acc
from domain import assessment as asm
from domain import billing as bil
from domain import goals as gls
from domain import lifecycle as lif
from domain import outcomes as out
from domain import privacy as prv
from domain import sessions as ses
from domain import skills as skl
from domain import support as sup
from domain.event import EngagementEvent
from domain.storage import SealingMapper
from projections import docseal

#: The event classes whose sealed (personal) fields this read model folds: the ones its
#: personal parts copy (projections/docseal.py). Readers feeding it decrypt only these
#: (tests/integration/test_projection_properties.py checks nothing is missed).
SEALED_FIELDS_USED: frozenset[type] = docseal.COPIED_FROM


def reading_mapper(mapper: Any) -> Any:
    """The mapper a projection of this read model decodes with (decrypting only what it
    folds); any other mapper is returned as it is."""
    if isinstance(mapper, SealingMapper):
        return mapper.reading_only(SEALED_FIELDS_USED)
    return mapper


Doc = dict[str, Any]


def new_document(event: lif.EngagementOpened) -> Doc:
    """The progress document of a just-opened engagement."""
    return {
        "engagement_id": str(event.originator_id),
        "firm_id": event.firm_id,
        "client_id": event.client_id,
        "coach_id": event.coach_id,
        "sponsor_id": event.sponsor_id,
        "segment": event.segment,
        "delivery": event.delivery,
        "currency": event.currency,
        "fee_per_session": str(event.fee_per_session),
        "planned_sessions": event.planned_sessions,
        "cadence_days": event.cadence_days,
        "status": "active",
        "opened_at": event.occurred_at.isoformat(),
        "closed_at": None,
        "close_reason": None,
        "sponsor_may_see": [],
        "consents": [],
        "erased": False,
        "pauses": [],
        "sessions": {},
        "held_at": [],
        "goals": {},
        "first_milestone_at": None,
        "commitments": {},
        "wellbeing": [],
        "assessments": 0,
        "skills": {},
        "outcomes": {},
        "intangibles": [],
        "reactions": [],
        "invoices": {},
        "costs": {},
        "version": event.originator_version,
        "last_event_at": event.occurred_at.isoformat(),
    }


class OutOfOrder(Exception):
    """The event is not the next one of its stream in the document: an event before it
    never reached this fold (lost on the way), or the document never saw the opening.
    The stream in the event store is authoritative: fold it again from there."""

    def __init__(self, engagement_id: str, have: int | None, got: int) -> None:
        self.engagement_id = engagement_id
        self.have = have
        self.got = got
        before = "no document" if have is None else f"the document at version {have}"
        super().__init__(f"engagement {engagement_id}: event version {got} came to {before}")


class Unfoldable(Exception):
    """An event that can never be folded onto its engagement's document (a second
    opening, an event about a session, goal or invoice the stream never created)."""


def fold(doc: Doc | None, event: EngagementEvent, *, in_order: bool = True) -> Doc | None:
    """Apply one event to an engagement's document (None before it was opened).

    An event at or below the document's version is a replayed duplicate and changes
    nothing (the opening included). Any other event must be the very next of its
    stream: a gap raises OutOfOrder (``in_order=False``, for folds over a slice of the
    log, applies what comes and skips what has no document). An event that cannot
    apply raises Unfoldable, or the handler's own error.
    """
    if doc is None:
        if isinstance(event, lif.EngagementOpened) and event.originator_version == 1:
            return new_document(event)
        if not in_order:
            return None  # an engagement this fold never saw open: nothing to add to
        raise OutOfOrder(str(event.originator_id), None, event.originator_version)
    if event.originator_version <= doc["version"]:
        return doc  # already applied (a replayed duplicate)
    if in_order and event.originator_version != doc["version"] + 1:
        raise OutOfOrder(str(event.originator_id), doc["version"], event.originator_version)
    if isinstance(event, lif.EngagementOpened):
        raise Unfoldable(
            f"EngagementOpened at version {event.originator_version} of an engagement"
            " opened already"
        )
    try:
        apply(event, doc)
    except KeyError as error:
        raise Unfoldable(
            f"{type(event).__name__} refers to {error} that its stream never created"
        ) from error
    doc["version"] = event.originator_version
    doc["last_event_at"] = max(doc["last_event_at"], event.occurred_at.isoformat())
    return doc


def fold_stream(events: Iterable[EngagementEvent]) -> Doc | None:
    """One engagement's document folded from its whole stream, from the start."""
    doc: Doc | None = None
    for event in events:
        doc = fold(doc, event)
    return doc


@singledispatch
def apply(event: EngagementEvent, doc: Doc) -> None:
    """Events this read model does not use change nothing (values, strengths, ...)."""


def _at(event: EngagementEvent) -> str:
    return event.occurred_at.isoformat()


def _supersedes(event: EngagementEvent, mark: str | None) -> bool:
    """Whether ``event`` replaces what the event that occurred at ``mark`` set (None:
    nothing set it yet). Events fold in recorded order, so on a tie the later-recorded
    one, folded last, wins."""
    return mark is None or _at(event) >= mark


def _entry_key(entry: Doc) -> str:
    return str(entry.get("at") or "")


def _insert(entries: list[Doc], entry: Doc) -> None:
    """Add a dated entry, keeping the list in occurred order. The sort is stable and
    entries arrive in recorded order, so ties stay in recorded order; no version is kept,
    so the same history entered in another order gives the same document."""
    entries.append(entry)
    entries.sort(key=_entry_key)


# -- lifecycle --------------------------------------------------------------------------


@apply.register
def _(event: lif.AgreementSigned, doc: Doc) -> None:
    doc["sponsor_may_see"] = list(event.sponsor_may_see)


def _end_pause(doc: Doc, at: str) -> None:
    for pause in doc.setdefault("pauses", []):
        if pause["to"] is None:
            pause["to"] = at


@apply.register
def _(event: lif.EngagementPaused, doc: Doc) -> None:
    doc["status"] = "paused"
    _insert(doc.setdefault("pauses", []), {"at": _at(event), "to": None})


@apply.register
def _(event: lif.EngagementResumed, doc: Doc) -> None:
    doc["status"] = "active"
    _end_pause(doc, _at(event))


@apply.register
def _(event: lif.CoachReassigned, doc: Doc) -> None:
    if _supersedes(event, doc.get("coach_set")):
        doc["coach_id"] = event.to_coach_id
        doc["coach_set"] = _at(event)


@apply.register
def _(event: lif.EngagementClosed, doc: Doc) -> None:
    if doc["status"] == "paused":
        _end_pause(doc, _at(event))
    doc["status"] = "closed"
    doc["closed_at"] = _at(event)
    doc["close_reason"] = event.close_reason


@apply.register
def _(event: lif.EngagementReopened, doc: Doc) -> None:
    doc["status"] = "active"
    doc["closed_at"] = None
    doc["close_reason"] = None


# -- sessions ---------------------------------------------------------------------------


@apply.register
def _(event: ses.SessionScheduled, doc: Doc) -> None:
    doc["sessions"][event.session_id] = {
        "status": "scheduled",
        "scheduled_for": event.scheduled_for.isoformat(),
        "late": False,
    }


@apply.register
def _(event: ses.SessionRescheduled, doc: Doc) -> None:
    doc["sessions"][event.session_id]["scheduled_for"] = event.scheduled_for.isoformat()


@apply.register
def _(event: ses.SessionCancelled, doc: Doc) -> None:
    session = doc["sessions"][event.session_id]
    session["status"] = "cancelled"
    session["late"] = event.late


@apply.register
def _(event: ses.SessionHeld, doc: Doc) -> None:
    doc["sessions"][event.session_id]["status"] = "held"
    doc["held_at"] = sorted([*doc["held_at"], _at(event)])


@apply.register
def _(event: ses.SessionNoShow, doc: Doc) -> None:
    doc["sessions"][event.session_id]["status"] = "no_show"


# -- assessment and skills --------------------------------------------------------------


@apply.register
def _(event: asm.AssessmentCompleted, doc: Doc) -> None:
    doc["assessments"] += 1


@apply.register
def _(event: skl.SkillFocusStarted, doc: Doc) -> None:
    doc["skills"][event.area] = {
        "baseline": event.baseline,
        "current": event.baseline,
        "assessed": _at(event),
    }


@apply.register
def _(event: skl.SkillReassessed, doc: Doc) -> None:
    skill = doc["skills"][event.area]
    if _supersedes(event, skill.get("assessed")):
        skill["current"] = event.after
        skill["assessed"] = _at(event)


# -- goals ------------------------------------------------------------------------------


@apply.register
def _(event: gls.GoalSet, doc: Doc) -> None:
    doc["goals"][event.goal_id] = {
        "title": event.title,
        "weight": event.weight,
        "target_date": event.target_date.isoformat(),
        "status": "open",
        "closed_at": None,
        "scores": {},
        "ratings": [],
        "defined": _at(event),
        "milestones": {},
    }


@apply.register
def _(event: gls.GoalRevised, doc: Doc) -> None:
    goal = doc["goals"][event.goal_id]
    if not _supersedes(event, goal.get("defined")):
        return  # a revision entered late that an already-folded later one replaced
    goal["title"] = event.title
    goal["weight"] = event.weight
    goal["target_date"] = event.target_date.isoformat()
    goal["defined"] = _at(event)


@apply.register
def _(event: gls.GoalProgressRated, doc: Doc) -> None:
    goal = doc["goals"][event.goal_id]
    ratings = goal.setdefault("ratings", [])
    _insert(
        ratings,
        {"at": _at(event), "rater": event.rater, "score": event.score},
    )
    latest = {r["rater"]: r["score"] for r in ratings}  # sorted: the last one wins
    goal["scores"] = dict(sorted(latest.items()))


@apply.register
def _(event: gls.GoalAchieved, doc: Doc) -> None:
    doc["goals"][event.goal_id]["status"] = "achieved"
    doc["goals"][event.goal_id]["closed_at"] = _at(event)


@apply.register
def _(event: gls.GoalAbandoned, doc: Doc) -> None:
    doc["goals"][event.goal_id]["status"] = "abandoned"
    doc["goals"][event.goal_id]["closed_at"] = _at(event)


@apply.register
def _(event: gls.MilestoneDefined, doc: Doc) -> None:
    doc["goals"][event.goal_id]["milestones"][event.milestone_id] = {
        "title": event.title,
        "hit_at": None,
    }


@apply.register
def _(event: gls.MilestoneHit, doc: Doc) -> None:
    doc["goals"][event.goal_id]["milestones"][event.milestone_id]["hit_at"] = _at(event)
    first = doc["first_milestone_at"]
    if first is None or _at(event) < first:
        doc["first_milestone_at"] = _at(event)


# -- accountability and support ---------------------------------------------------------


@apply.register
def _(event: acc.CommitmentMade, doc: Doc) -> None:
    doc["commitments"][event.commitment_id] = {
        "title": event.title,
        "due_date": event.due_date.isoformat(),
        "status": "open",
    }


@apply.register
def _(event: acc.CommitmentKept, doc: Doc) -> None:
    doc["commitments"][event.commitment_id]["status"] = "kept"


@apply.register
def _(event: acc.CommitmentMissed, doc: Doc) -> None:
    doc["commitments"][event.commitment_id]["status"] = "missed"


@apply.register
def _(event: acc.CommitmentRenegotiated, doc: Doc) -> None:
    commitment = doc["commitments"][event.commitment_id]
    if _supersedes(event, commitment.get("renegotiated")):
        commitment["due_date"] = event.new_due_date.isoformat()
        commitment["renegotiated"] = _at(event)


@apply.register
def _(event: sup.WellbeingChecked, doc: Doc) -> None:
    if event.confidence is None:
        return  # read after the client's key was destroyed: nothing to show
    _insert(
        doc["wellbeing"],
        {
            "at": _at(event),
            "confidence": event.confidence,
            "stress": event.stress,
            "motivation": event.motivation,
            "imposter_feelings": event.imposter_feelings,
        },
    )


# -- outcomes ---------------------------------------------------------------------------


@apply.register
def _(event: out.TangibleOutcomeReported, doc: Doc) -> None:
    doc["outcomes"][event.outcome_id] = {
        "kind": event.kind,
        "annualized_value": str(event.annualized_value),
        "attribution": str(event.attribution),
        "confidence": str(event.confidence),
        "source": event.source,
        "verified": False,
        "excluded": None,
    }


@apply.register
def _(event: out.OutcomeVerified, doc: Doc) -> None:
    doc["outcomes"][event.outcome_id]["verified"] = True


@apply.register
def _(event: out.OutcomeExcluded, doc: Doc) -> None:
    doc["outcomes"][event.outcome_id]["excluded"] = event.exclusion


@apply.register
def _(event: out.IntangibleOutcomeReported, doc: Doc) -> None:
    doc["intangibles"].append({"kind": event.kind, "before": event.before, "after": event.after})


@apply.register
def _(event: out.ReactionSurveyed, doc: Doc) -> None:
    _insert(
        doc["reactions"],
        {
            "at": _at(event),
            "satisfaction": event.satisfaction,
            "nps": event.nps,
        },
    )


# -- cost -------------------------------------------------------------------------------


@apply.register
def _(event: bil.InvoiceIssued, doc: Doc) -> None:
    doc["invoices"][event.invoice_id] = {
        "amount": str(event.amount),
        "paid": "0",
        "voided": False,
    }


@apply.register
def _(event: bil.PaymentReceived, doc: Doc) -> None:
    invoice = doc["invoices"][event.invoice_id]
    invoice["paid"] = str(Decimal(invoice["paid"]) + event.amount)


@apply.register
def _(event: bil.InvoiceVoided, doc: Doc) -> None:
    doc["invoices"][event.invoice_id]["voided"] = True


@apply.register
def _(event: bil.CostRecorded, doc: Doc) -> None:
    doc["costs"][event.cost_id] = {"category": event.category, "amount": str(event.amount)}


# -- privacy ----------------------------------------------------------------------------


@apply.register
def _(event: prv.ConsentGranted, doc: Doc) -> None:
    doc["consents"] = sorted({*doc["consents"], event.scope})


@apply.register
def _(event: prv.ConsentWithdrawn, doc: Doc) -> None:
    doc["consents"] = [c for c in doc["consents"] if c != event.scope]


@apply.register
def _(event: prv.SubjectErased, doc: Doc) -> None:
    # Figures stay; the personal parts this read model keeps (titles, wellbeing) go.
    doc["erased"] = True
    doc["consents"] = []
    docseal.erase(doc)
