"""Read-model endpoints: dashboards, lists, portfolios, firm overview, sponsor report, ROI.

Every answer carries ``freshness`` (the log position and recorded time it reflects,
the head of the log, and the lag between them) in its JSON and in ``X-Coachlog-*``
headers. Nothing here loads an aggregate. Who may read what is api/authorization.py;
ownership is checked on the progress document that is served (its coach_id, client_id
and sponsor_id).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import flask
from flask import Response, current_app
from flask.views import MethodView
from marshmallow import Schema, validate
from marshmallow import fields as mf

from api import authorization
from api.authorization import Action
from api.engagements import EngagementBlueprint
from api.schemas import ProblemSchema, RequestSchema
from api.security import current_principal
from projections.progress import Doc
from projections.queries import FILTERS, SORTS, Dashboards, Freshness

blp = EngagementBlueprint(
    "dashboards",
    __name__,
    description="Read models: progress dashboards, lists, portfolios and ROI (with freshness).",
)


class FreshnessSchema(Schema):
    position = mf.Integer(required=True, metadata={"description": "Last log position folded."})
    recorded_at = mf.String(allow_none=True, metadata={"description": "Its recorded time."})
    head = mf.Integer(required=True, metadata={"description": "Head of the event log."})
    lag = mf.Integer(required=True, metadata={"description": "Events not yet reflected."})
    published = mf.Integer(
        allow_none=True, metadata={"description": "Relay position (Kafka path), if any."}
    )
    relay_lag = mf.Integer(
        allow_none=True, metadata={"description": "Events not yet published to Kafka."}
    )


class ReadModelSchema(Schema):
    """A read-model answer: ``data`` plus ``freshness``."""

    data = mf.Dict(required=True)
    freshness = mf.Nested(FreshnessSchema, required=True)


class ListQuerySchema(RequestSchema):
    coach_id = mf.String()
    client_id = mf.String()
    sponsor_id = mf.String()
    status = mf.String(validate=validate.OneOf(["active", "paused", "closed"]))
    segment = mf.String(
        validate=validate.OneOf(
            ["career_changer", "early_career", "stalled_mid_career", "returner", "entrepreneur"]
        )
    )
    off_track = mf.Boolean()
    sort = mf.String(load_default="opened_at", validate=validate.OneOf(sorted(SORTS)))
    order = mf.String(load_default="desc", validate=validate.OneOf(["asc", "desc"]))
    limit = mf.Integer(load_default=50, validate=validate.Range(1, 200))
    offset = mf.Integer(load_default=0, validate=validate.Range(0, 10_000_000))


class RoiQuerySchema(RequestSchema):
    group_by = mf.String(
        load_default="engagement", validate=validate.OneOf(["engagement", "coach", "segment"])
    )


def _dashboards() -> Dashboards:
    dashboards: Dashboards = current_app.extensions["coachlog"].dashboards
    return dashboards


def _answer(data: dict[str, Any], fresh: Freshness) -> Response:
    response = flask.jsonify({"data": data, "freshness": fresh.as_dict()})
    response.headers["X-Coachlog-Position"] = str(fresh.position)
    response.headers["X-Coachlog-Head"] = str(fresh.head)
    response.headers["X-Coachlog-Lag"] = str(fresh.lag)
    if fresh.published is not None:
        response.headers["X-Coachlog-Relay-Lag"] = str(fresh.head - fresh.published)
    if fresh.recorded_at:
        response.headers["X-Coachlog-Recorded-At"] = fresh.recorded_at
    return response


def _authorize(action: Action) -> Callable[[Doc], None]:
    """Check the caller's rights on the document about to be served."""
    principal = current_principal()

    def check(doc: Doc) -> None:
        authorization.require(principal, action, doc)

    return check


def _now() -> datetime:
    return datetime.now(UTC)


_DOC = {"description": "Read model with freshness."}


def _errors(view: Any) -> Any:
    for status, text in (
        (401, "Missing or invalid token."),
        (403, "The caller's role may not read this, or not this one (see detail)."),
        (404, "Not found in your firm."),
        (422, "Invalid query."),
        (503, "The database is not answering; retry after Retry-After seconds."),
    ):
        view = blp.alt_response(
            status, schema=ProblemSchema, description=text, content_type="application/problem+json"
        )(view)
    return view


@blp.route("/engagements")
class EngagementList(MethodView):
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, ReadModelSchema, **_DOC)
    @_errors
    @blp.doc(tags=["read models"], summary="List and search engagements")
    def get(self, query: dict[str, Any]) -> Response:
        """Engagements of the caller's firm, filtered, sorted and paginated (a coach's:
        only those they coach)."""
        principal = current_principal()
        filters = authorization.list_filter(principal, {k: query[k] for k in FILTERS if k in query})
        page, fresh = _dashboards().list(
            principal.firm_id,
            _now(),
            filters=filters,
            off_track=query.get("off_track"),
            sort=query["sort"],
            descending=query["order"] == "desc",
            limit=query["limit"],
            offset=query["offset"],
        )
        return _answer(page, fresh)


@blp.route("/engagements/<uuid:engagement_id>/dashboard")
class EngagementDashboard(MethodView):
    @blp.response(200, ReadModelSchema, **_DOC)
    @_errors
    @blp.doc(tags=["read models"], summary="Engagement progress dashboard")
    def get(self, engagement_id: UUID) -> Response:
        """Sessions, cadence, goals and GAS, milestones, commitments, wellbeing, money, ROI."""
        data, fresh = _dashboards().engagement(
            current_principal().firm_id, str(engagement_id), _now(), _authorize(Action.DASHBOARD)
        )
        return _answer(data, fresh)


@blp.route("/engagements/<uuid:engagement_id>/sponsor-report")
class SponsorReport(MethodView):
    @blp.response(200, ReadModelSchema, **_DOC)
    @_errors
    @blp.doc(tags=["read models"], summary="Sponsor report")
    def get(self, engagement_id: UUID) -> Response:
        """Only what the signed agreement and the client's consent allow; never notes."""
        data, fresh = _dashboards().sponsor(
            current_principal().firm_id,
            str(engagement_id),
            _now(),
            _authorize(Action.SPONSOR_REPORT),
        )
        return _answer(data, fresh)


@blp.route("/coaches/<string:coach_id>/portfolio")
class CoachPortfolio(MethodView):
    @blp.response(200, ReadModelSchema, **_DOC)
    @_errors
    @blp.doc(tags=["read models"], summary="Coach portfolio")
    def get(self, coach_id: str) -> Response:
        """A coach's figures and engagements, off-track ones first."""
        principal = current_principal()
        authorization.require(principal, Action.PORTFOLIO, {"coach_id": coach_id})
        data, fresh = _dashboards().coach(principal.firm_id, coach_id, _now())
        return _answer(data, fresh)


@blp.route("/firm/overview")
class FirmOverview(MethodView):
    @blp.response(200, ReadModelSchema, **_DOC)
    @_errors
    @blp.doc(tags=["read models"], summary="Firm overview")
    def get(self) -> Response:
        """Status counts, completion, length, no-shows, NPS, money and ROI — overall, by
        coach and by client segment."""
        principal = current_principal()
        authorization.require(principal, Action.FIRM, {})
        data, fresh = _dashboards().firm(principal.firm_id, _now())
        return _answer(data, fresh)


@blp.route("/firm/roi")
class FirmRoi(MethodView):
    @blp.arguments(RoiQuerySchema, location="query")
    @blp.response(200, ReadModelSchema, **_DOC)
    @_errors
    @blp.doc(tags=["read models"], summary="ROI by engagement, coach or segment")
    def get(self, query: dict[str, Any]) -> Response:
        """Phillips ROI per engagement, or its median and IQR per coach or client segment."""
        principal = current_principal()
        authorization.require(principal, Action.FIRM, {})
        data, fresh = _dashboards().roi(principal.firm_id, query["group_by"])
        return _answer(data, fresh)
