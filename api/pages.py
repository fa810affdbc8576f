"""Dashboards in the browser: server-rendered pages over the read models.

Pages sign in with a bearer token once and then ride on a signed, HttpOnly,
SameSite=Strict session cookie that carries a random session id only (the server
keeps its hash, the token it was opened with, and when it expires). Every request
re-checks the session against the store, so signing out ends it everywhere (a copied
cookie opens nothing any more) and a revoked token signs the browser out; every query
is scoped to the token's firm, exactly as the JSON API does. The JSON API never accepts
the cookie: it keeps asking for ``Authorization: Bearer``.

Who may open which page is the JSON API's rule for the same read model
(api/authorization.py): the firm page is the firm overview, a coach page the portfolio,
an engagement page the dashboard, a sponsor page the sponsor report. A page outside
one's rights is a 403 HTML page; another firm's engagement is "not found". Links to
pages the caller may not open are left out, and signing in lands on the caller's own
start page (the firm for admins, auditors and analysts, the portfolio for a coach, the
engagement for a client, the sponsor report for a sponsor).

Pages live under ``/ui`` (``/`` redirects there): ``/engagements/<id>`` and the other
resource paths already belong to the JSON API.
"""

from __future__ import annotations

import functools
import hmac
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any, ParamSpec
from uuid import UUID

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from api import authorization, charts, formats, timeline
from api.accounts import Accounts, Principal
from api.authorization import Action, Forbidden
from domain.errors import EngagementNotFound
from domain.values import Role
from projections import metrics
from projections.queries import Dashboards, NotFound, engagement_dashboard

bp = Blueprint(
    "pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/ui/static",
)

#: Paths the pages own; api/security.py leaves them to the session cookie.
PAGE_PREFIX = "/ui/"
PAGE_PATHS = ("/", "/ui")

#: How long a browser stays signed in without signing in again.
SESSION_LIFETIME = timedelta(hours=8)

#: Used when COACHLOG_SECRET_KEY is unset. Made when the module is imported so that the
#: gunicorn workers forked from one master share it; sessions end when the server stops.
_PROCESS_SECRET = secrets.token_hex(32)

#: Browsers load nothing from elsewhere: no CDN, no inline script, no frames.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

P = ParamSpec("P")


def register(app: Flask) -> None:
    """Configure the session cookie and add the pages to ``app``."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ.get("COACHLOG_SECRET_KEY") or _PROCESS_SECRET
    app.config.setdefault(
        "COACHLOG_SECURE_COOKIES", bool(os.environ.get("COACHLOG_SECURE_COOKIES"))
    )
    app.config.update(
        SESSION_COOKIE_NAME="coachlog_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=app.config["COACHLOG_SECURE_COOKIES"],
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    formats.register(app)
    app.register_blueprint(bp)


def is_page(path: str) -> bool:
    """Tell whether a path is a page or a page's static file (not the JSON API)."""
    return path in PAGE_PATHS or path.startswith(PAGE_PREFIX)


# -- signing in ---------------------------------------------------------------------------


def _accounts() -> Accounts:
    accounts: Accounts = current_app.extensions["coachlog"].accounts
    return accounts


def _dashboards() -> Dashboards:
    dashboards: Dashboards = current_app.extensions["coachlog"].dashboards
    return dashboards


def _csrf_token() -> str:
    """The session's anti-forgery token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _csrf_ok() -> bool:
    sent = request.form.get("csrf_token", "")
    kept = session.get("csrf")
    return isinstance(kept, str) and hmac.compare_digest(sent.encode(), kept.encode())


def _principal() -> Principal | None:
    """The signed-in caller, re-checked against the token store on every request."""
    session_id = session.get("sid")
    if not isinstance(session_id, str):
        return None
    principal = _accounts().authenticate_session(session_id)
    if principal is None:
        session.clear()
        session["notice"] = "Your token was revoked or is unknown: sign in again."
    return principal


def _home(principal: Principal) -> str:
    """The caller's start page: the first of firm, own portfolio, own engagement, own
    sponsor report that their role may open (the firm page, with its 403, otherwise)."""
    if authorization.may(principal, Action.FIRM):
        return url_for("pages.firm")
    if principal.role == Role.COACH:
        return url_for("pages.coach", coach_id=principal.user_id)
    if principal.role in (Role.CLIENT, Role.SPONSOR):
        relation = authorization.RELATION[Role(principal.role)]
        page, _ = _dashboards().list(
            principal.firm_id, _now(), filters={relation: principal.user_id}, limit=1
        )
        if page["items"]:
            engagement_id = page["items"][0]["engagement_id"]
            target = "pages.engagement" if relation == "client_id" else "pages.sponsor"
            return url_for(target, engagement_id=engagement_id)
    return url_for("pages.firm")


def _safe_next(target: str | None, principal: Principal) -> str:
    """Only ever send a browser back to one of our own pages after signing in."""
    if target and target.startswith(PAGE_PREFIX) and not target.startswith("//"):
        return target
    return _home(principal)


def signed_in(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """Let the view run only for a signed-in caller with a live token, and only if their
    role may open this kind of page at all (the view checks ownership)."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        principal = _principal()
        if principal is None:
            return redirect(url_for("pages.sign_in", next=request.path))
        g.principal = principal
        authorization.gate(principal, request.endpoint, request.view_args)
        return view(*args, **kwargs)

    return wrapper


@bp.get("/ui")
@bp.get("/")
def index() -> Response:
    """Send the browser to the caller's start page, or to sign in first."""
    principal = _principal()
    if principal is None:
        return redirect(url_for("pages.sign_in"))
    return redirect(_home(principal))


@bp.route("/ui/sign-in", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    """Show the sign-in form; on POST, trade a valid token for a session cookie."""
    next_page = request.values.get("next")
    if request.method == "GET":
        signed = _principal()
        if signed is not None:
            return redirect(_safe_next(next_page, signed))
        return _sign_in_form(next_page, session.pop("notice", None), 200)
    if not _csrf_ok():
        return _sign_in_form(next_page, "The form expired; please try again.", 400)
    token = request.form.get("token", "").strip()
    principal = _accounts().authenticate(token) if token else None
    session_id = (
        _accounts().start_session(token, SESSION_LIFETIME.total_seconds()) if principal else None
    )
    if principal is None or session_id is None:
        return _sign_in_form(next_page, "That token is unknown or revoked.", 401)
    session.clear()
    session.permanent = True
    session["sid"] = session_id
    return redirect(_safe_next(next_page, principal))


def _sign_in_form(next_page: str | None, error: str | None, status: int) -> ResponseReturnValue:
    return (
        render_template("sign_in.html", error=error, next_page=next_page, csrf_token=_csrf_token()),
        status,
    )


@bp.post("/ui/sign-out")
def sign_out() -> Response:
    """End the session on the server and forget it (the token stays valid for the API)."""
    if _csrf_ok():
        session_id = session.get("sid")
        if isinstance(session_id, str):
            _accounts().end_session(session_id)
        session.clear()
    return redirect(url_for("pages.sign_in"))


# -- pages --------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _page(template: str, **context: Any) -> str:
    return render_template(
        template, principal=g.principal, csrf_token=_csrf_token(), now=_now(), **context
    )


@bp.get("/ui/firm")
@signed_in
def firm() -> ResponseReturnValue:
    """The firm overview: figures, ROI by coach and segment, cadence, revenue."""
    firm_id = g.principal.firm_id
    now = _now()
    authorization.require(g.principal, Action.FIRM, {})
    overview, fresh = _dashboards().firm(firm_id, now)
    # The off-track list names engagements: only for those who may list them (not the
    # analyst, whose reads are aggregate).
    off_track = None
    if authorization.may(g.principal, Action.LIST):
        off_track, _ = _dashboards().list(
            firm_id, now, off_track=True, sort="last_session_at", descending=False, limit=50
        )
    # The firm overview has no cadence figure; fold it from the same documents.
    docs, _ = _dashboards().documents(firm_id)
    cadence = _cadence(docs)
    return _page(
        "firm.html",
        overview=overview,
        fresh=fresh,
        off_track=off_track,
        cadence=cadence,
        charts={
            "roi-by-coach": charts.roi_distribution(overview["by_coach"]),
            "roi-by-segment": charts.roi_distribution(overview["by_segment"], label=formats.label),
            "revenue-by-coach": charts.revenue(overview["by_coach"]),
            "completion-by-segment": charts.rates(
                overview["by_segment"], "completion_rate", "Completion", label=formats.label
            ),
        },
    )


@bp.get("/ui/coaches/<string:coach_id>")
@signed_in
def coach(coach_id: str) -> ResponseReturnValue:
    """A coach's portfolio: figures, then engagements with off-track ones first."""
    authorization.require(g.principal, Action.PORTFOLIO, {"coach_id": coach_id})
    try:
        portfolio, fresh = _dashboards().coach(g.principal.firm_id, coach_id, _now())
    except NotFound:
        abort(404)
    return _page(
        "coach.html",
        portfolio=portfolio,
        fresh=fresh,
        charts={"sessions": charts.sessions_by_engagement(portfolio["items"])},
    )


@bp.get("/ui/engagements/<uuid:engagement_id>")
@signed_in
def engagement(engagement_id: UUID) -> ResponseReturnValue:
    """One engagement: timeline, GAS, wellbeing, sessions, commitments, money, ROI."""
    now = _now()
    try:
        # One read: the dashboard's figures and the timeline come from the same document.
        doc, fresh = _dashboards().document(g.principal.firm_id, str(engagement_id))
    except NotFound:
        abort(404)
    authorization.require(g.principal, Action.DASHBOARD, doc)
    dashboard = engagement_dashboard(doc, now)
    return _page(
        "engagement.html",
        e=dashboard,
        fresh=fresh,
        entries=timeline.entries(doc, now),
        charts={
            "gas": charts.gas_by_goal(dashboard["goals"]),
            "wellbeing": charts.wellbeing(doc["wellbeing"]),
            "sessions": charts.sessions(dashboard["sessions"]),
        },
    )


@bp.get("/ui/engagements/<uuid:engagement_id>/sponsor")
@signed_in
def sponsor(engagement_id: UUID) -> ResponseReturnValue:
    """The sponsor report: only what the agreement and the client's consent allow."""
    people: dict[str, Any] = {}

    def authorize(doc: dict[str, Any]) -> None:
        authorization.require(g.principal, Action.SPONSOR_REPORT, doc)
        people.update({k: doc[k] for k in authorization.RELATION.values()})

    try:
        report, fresh = _dashboards().sponsor(
            g.principal.firm_id, str(engagement_id), _now(), authorize
        )
    except NotFound:
        abort(404)
    attendance = report.get("attendance")
    return _page(
        "sponsor.html",
        report=report,
        fresh=fresh,
        engagement_link=authorization.may(g.principal, Action.DASHBOARD, people),
        charts={"sessions": charts.sessions(attendance)} if attendance else {},
    )


def _cadence(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median cadence adherence over engagements with two sessions or more: for the firm,
    by coach and by client segment."""
    groups: dict[str, dict[str, list[float]]] = {"coach_id": {}, "segment": {}}
    every: list[float] = []
    for doc in docs:
        adherence = metrics.cadence_adherence(
            doc["held_at"], doc["cadence_days"], doc.get("pauses", [])
        )
        if adherence is None:
            continue
        every.append(adherence)
        for key, by in groups.items():
            by.setdefault(doc[key], []).append(adherence)
    return {
        "firm": median(every) if every else None,
        "by_coach": {k: median(v) for k, v in groups["coach_id"].items()},
        "by_segment": {k: median(v) for k, v in groups["segment"].items()},
    }


# -- errors and headers -------------------------------------------------------------------


@bp.context_processor
def _rights() -> dict[str, Any]:
    """``may("portfolio", coach_id=...)`` in templates: show only links one may follow."""

    def may(action: str, **subject: Any) -> bool:
        principal = g.get("principal")
        return principal is not None and authorization.may(principal, Action(action), subject)

    return {"may": may}


@bp.errorhandler(404)
@bp.errorhandler(NotFound)
@bp.errorhandler(EngagementNotFound)
def not_found(error: Exception) -> ResponseReturnValue:
    """An HTML page, not problem+json: nothing by that id in your firm."""
    principal = g.get("principal")
    csrf = _csrf_token() if principal else ""
    return render_template("not_found.html", principal=principal, csrf_token=csrf), 404


@bp.errorhandler(Forbidden)
def forbidden(error: Forbidden) -> ResponseReturnValue:
    """An HTML page saying what the caller's role may not see, and where to go instead."""
    principal = g.principal
    return (
        render_template(
            "forbidden.html",
            principal=principal,
            csrf_token=_csrf_token(),
            detail=error.detail,
            home=_home(principal),
        ),
        403,
    )


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        # Pages show a firm's private figures: never keep them in a shared cache.
        response.headers["Cache-Control"] = "no-store"
    return response
