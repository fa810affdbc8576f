"""Who may do what: one table of role → action → scope, and the ownership checks.

Authentication (api/security.py, api/pages.py) says who the caller is; this module says
what they may do. Everything is inside the caller's firm: an engagement of another firm
is "not found", exactly like one that does not exist, for every role. Inside the firm a
request outside one's rights is refused (403 ``forbidden``), with a detail saying what
the role may not do.

An action has one of two scopes for a role:

* ``ALL`` — on everything of the firm;
* ``OWN`` — only where the caller is the engagement's person of that role: the *current*
  coach (``coach_id``, which ``CoachReassigned`` changes), the client (``client_id``) or
  the sponsor (``sponsor_id``). A coach's own portfolio and list are those of their own
  user id; a coach may open an engagement only with themselves as its coach.

A role without the action at all is refused before the request body is read
(:func:`gate`); an ``OWN`` scope is checked by the view on what it loaded (the
engagement, or its progress document), so the check and the command or answer are about
the same state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import Any
from uuid import UUID

from flask import current_app

from api.accounts import Principal
from domain.commands import ENGAGEMENT_COMMANDS, EraseSubject
from domain.engagement import Engagement
from domain.values import Role


class Action(StrEnum):
    """What a request does, as far as authorization is concerned."""

    OPEN = "open"  # POST /engagements
    COMMAND = "command"  # POST /engagements/{id}/{command}, all but erase-subject
    ERASE = "erase"  # POST /engagements/{id}/erase-subject
    READ = "read"  # GET /engagements/{id} (now, at a version, as recorded/occurred), history
    DASHBOARD = "dashboard"  # GET /engagements/{id}/dashboard; the engagement page
    SPONSOR_REPORT = "sponsor_report"  # GET /engagements/{id}/sponsor-report; sponsor page
    LIST = "list"  # GET /engagements
    PORTFOLIO = "portfolio"  # GET /coaches/{coach_id}/portfolio; the coach page
    FIRM = "firm"  # GET /firm/overview, GET /firm/roi; the firm page
    AUDIT = "audit"  # GET /audit/... (api/audit.py): recompute hash chains, check anchors


class Scope(Enum):
    ALL = "everything of the caller's firm"
    OWN = "only what is the caller's own"


ALL, OWN = Scope.ALL, Scope.OWN
A = Action
log = logging.getLogger("coachlog.api")

#: The policy. A role missing an action may not do it at all.
RULES: Mapping[Role, Mapping[Action, Scope]] = {
    Role.FIRM_ADMIN: dict.fromkeys(Action, ALL),
    Role.COACH: {
        A.OPEN: OWN,
        A.COMMAND: OWN,
        A.READ: OWN,
        A.DASHBOARD: OWN,
        A.SPONSOR_REPORT: OWN,
        A.LIST: OWN,
        A.PORTFOLIO: OWN,
    },
    Role.CLIENT: {A.READ: OWN, A.DASHBOARD: OWN},
    Role.SPONSOR: {A.SPONSOR_REPORT: OWN},
    Role.ANALYST: {A.FIRM: ALL},
    Role.AUDITOR: {
        A.READ: ALL,
        A.DASHBOARD: ALL,
        A.SPONSOR_REPORT: ALL,
        A.LIST: ALL,
        A.PORTFOLIO: ALL,
        A.FIRM: ALL,
        A.AUDIT: ALL,
    },
}

#: For an ``OWN`` scope: the field of the engagement that must be the caller's user id.
RELATION: Mapping[Role, str] = {
    Role.COACH: "coach_id",
    Role.CLIENT: "client_id",
    Role.SPONSOR: "sponsor_id",
}

#: The action of every endpoint that needs a caller. An endpoint missing here (and not
#: public) is refused to everyone: a new endpoint is closed until it is given a rule.
ENDPOINTS: dict[str, Action] = {
    "engagements.EngagementCollection": A.OPEN,
    "engagements.EngagementResource": A.READ,
    "engagements.EngagementHistory": A.READ,
    "dashboards.EngagementList": A.LIST,
    "dashboards.EngagementDashboard": A.DASHBOARD,
    "dashboards.SponsorReport": A.SPONSOR_REPORT,
    "dashboards.CoachPortfolio": A.PORTFOLIO,
    "dashboards.FirmOverview": A.FIRM,
    "dashboards.FirmRoi": A.FIRM,
    "audit.EngagementAudit": A.AUDIT,
    "audit.FirmAudit": A.AUDIT,
    "audit.LatestAnchor": A.AUDIT,
    "pages.firm": A.FIRM,
    "pages.coach": A.PORTFOLIO,
    "pages.engagement": A.DASHBOARD,
    "pages.sponsor": A.SPONSOR_REPORT,
}
for _command in ENGAGEMENT_COMMANDS:
    ENDPOINTS[f"engagements.{_command.METHOD}"] = A.ERASE if _command is EraseSubject else A.COMMAND

_DOING = {
    A.OPEN: "open engagements",
    A.COMMAND: "send commands to engagements",
    A.ERASE: "erase a client's personal data",
    A.READ: "read engagement state and history",
    A.DASHBOARD: "read engagement dashboards",
    A.SPONSOR_REPORT: "read sponsor reports",
    A.LIST: "list engagements",
    A.PORTFOLIO: "read coach portfolios",
    A.FIRM: "read the firm overview and ROI",
    A.AUDIT: "audit the hash chains and anchors",
}
_THEIRS = {
    Role.COACH: "engagements they coach",
    Role.CLIENT: "their own engagement",
    Role.SPONSOR: "engagements they sponsor",
}


class Forbidden(Exception):
    """The caller is authenticated, in the right firm, but may not do this (403)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _role(principal: Principal) -> Role:
    try:
        return Role(principal.role)
    except ValueError:
        return Role.SYSTEM  # unknown roles have no rights (RULES has no entry)


def _who(role: Role) -> str:
    name = role.value.replace("_", " ")
    return f"{'An' if name[0] in 'aeiou' else 'A'} {name}"


def _may_do(role: Role) -> str:
    rights = RULES.get(role, {})
    if not rights:
        return "nothing"
    return "; ".join(
        _DOING[action] + (" (own only)" if scope is OWN else "") for action, scope in rights.items()
    )


def scope(principal: Principal, action: Action) -> Scope | None:
    """The caller's scope for ``action``, or None if their role may not do it at all."""
    return RULES.get(_role(principal), {}).get(action)


def role_refusal(principal: Principal, action: Action) -> Forbidden | None:
    """The refusal for a role that may never do ``action``; None if it may, at least on
    something of its own."""
    if scope(principal, action) is not None:
        return None
    role = _role(principal)
    return Forbidden(f"{_who(role)} may not {_DOING[action]}. {_who(role)} may: {_may_do(role)}.")


def owners(engagement: Engagement) -> dict[str, Any]:
    """The people of an engagement, as ownership checks compare them."""
    return {
        "coach_id": engagement.coach_id,
        "client_id": engagement.client_id,
        "sponsor_id": engagement.sponsor_id,
    }


def require(principal: Principal, action: Action, subject: Mapping[str, Any]) -> None:
    """Raise :class:`Forbidden` unless the caller may do ``action`` on ``subject``.

    ``subject`` holds the people the request is about — ``coach_id``, ``client_id``,
    ``sponsor_id`` of an engagement (its state or its progress document), or only the
    ``coach_id`` of a portfolio or of an engagement about to be opened.
    """
    refusal = role_refusal(principal, action)
    if refusal is not None:
        raise refusal
    if scope(principal, action) is ALL:
        return
    role = _role(principal)
    relation = RELATION[role]
    if subject.get(relation) == principal.user_id:
        return
    who = _who(role)
    if action is A.OPEN:
        detail = (
            f"{who} may open only engagements they coach themselves: "
            f"coach_id must be {principal.user_id!r}."
        )
    elif action is A.PORTFOLIO:
        detail = f"{who} may read only their own portfolio ({principal.user_id!r})."
    elif action is A.LIST:
        detail = (
            f"{who} may list only {_THEIRS[role]}: leave out {relation} or set it to "
            f"{principal.user_id!r}."
        )
    else:
        detail = f"{who} may {_DOING[action]} only for {_THEIRS[role]}; this one is not."
    raise Forbidden(detail)


def may(principal: Principal, action: Action, subject: Mapping[str, Any] | None = None) -> bool:
    """Tell whether :func:`require` would let the caller through (for links on pages)."""
    try:
        require(principal, action, subject or {})
    except Forbidden:
        return False
    return True


def list_filter(principal: Principal, filters: dict[str, Any]) -> dict[str, Any]:
    """The list filters of a caller: with an ``OWN`` scope, pinned to their user id (a
    filter naming someone else is refused rather than quietly answered empty)."""
    refusal = role_refusal(principal, A.LIST)
    if refusal is not None:
        raise refusal
    if scope(principal, A.LIST) is ALL:
        return filters
    relation = RELATION[_role(principal)]
    require(principal, A.LIST, {relation: filters.get(relation, principal.user_id)})
    return {**filters, relation: principal.user_id}


def action_of(endpoint: str) -> Action | None:
    """The action of an endpoint, or None if it has no rule (then it is refused)."""
    return ENDPOINTS.get(endpoint)


def gate(
    principal: Principal,
    endpoint: str | None,
    view_args: Mapping[str, Any] | None,
) -> None:
    """Refuse, before the body is read, a request the caller's role may never make.

    A request naming an engagement is first looked up in the caller's firm, so that
    another firm's engagement stays "not found" for every role (raised as the view of
    that endpoint would: EngagementNotFound, or the read model's NotFound).
    """
    if endpoint is None:  # no route matched: routing answers 404/405
        return
    action = action_of(endpoint)
    if action is None:
        log.warning("endpoint %s has no authorization rule: refused", endpoint)
        raise Forbidden("This endpoint has no authorization rule; it is closed to everyone.")
    refusal = role_refusal(principal, action)
    if refusal is None:
        return
    engagement_id = (view_args or {}).get("engagement_id")
    if isinstance(engagement_id, UUID):
        _must_exist(principal.firm_id, engagement_id, action)
    raise refusal


def _must_exist(firm_id: str, engagement_id: UUID, action: Action) -> None:
    services = current_app.extensions["coachlog"]
    if action in (A.DASHBOARD, A.SPONSOR_REPORT):
        services.dashboards.document(firm_id, str(engagement_id))  # raises NotFound
    else:
        services.engagements.get(firm_id, engagement_id)  # raises EngagementNotFound
