"""Audit endpoints: recompute hash chains, check anchors, read the latest anchor digest.

Firm admins and auditors only (api/authorization.py). Every answer is about the caller's
firm: another firm's engagement is "not found", and a firm-wide verification reports
only the caller's engagements. Verification reads every stored event of its scope, so it
is O(events): one engagement is quick, the whole firm takes as long as reading the log.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema
from marshmallow import fields as mf

from api.engagements import EngagementBlueprint
from api.problems import problem
from api.schemas import ProblemSchema, RequestSchema
from api.security import current_principal
from domain.application import Engagements
from domain.errors import EngagementNotFound

blp = EngagementBlueprint(
    "audit",
    __name__,
    url_prefix="/audit",
    description="Tamper evidence: hash chains over every engagement's events, and anchors.",
)


class BreakSchema(Schema):
    engagement_id = mf.String(required=True, metadata={"description": "Empty for anchors."})
    version = mf.Integer(required=True, metadata={"description": "First version affected."})
    problem = mf.String(
        required=True,
        metadata={
            "description": "content_changed, missing_event, unchained, truncated, "
            "stream_missing, anchor_mismatch, anchor_tampered or digest_mismatch."
        },
    )
    detail = mf.String(required=True)


class AuditReportSchema(Schema):
    ok = mf.Boolean(required=True, metadata={"description": "Every chain and anchor holds."})
    engagements = mf.Integer(required=True)
    events = mf.Integer(required=True)
    anchors = mf.Integer(required=True, metadata={"description": "Anchors checked."})
    anchored_position = mf.Integer(allow_none=True)
    digest = mf.String(allow_none=True, metadata={"description": "Latest anchor digest."})
    breaks = mf.List(mf.Nested(BreakSchema), required=True)


class VerifyQuerySchema(RequestSchema):
    expect_digest = mf.String(
        metadata={"description": "A digest kept outside the database; it must match."}
    )


class AnchorSchema(Schema):
    seq = mf.Integer(required=True)
    position = mf.Integer(required=True, metadata={"description": "Log position anchored."})
    anchored_at = mf.Float(required=True, metadata={"description": "Unix time."})
    digest = mf.String(required=True, metadata={"description": "Running digest: keep a copy."})


def _engagements() -> Engagements:
    engagements: Engagements = current_app.extensions["coachlog"].engagements
    return engagements


_PROBLEMS = {
    401: "Missing, unknown or revoked token.",
    403: "Only firm admins and auditors may audit.",
    404: "No such engagement in your firm.",
    422: "An unknown or malformed parameter.",
    503: "The database is not answering; retry after Retry-After seconds.",
}


def _problems(*statuses: int, **descriptions: str) -> Any:
    """Document the problem+json answers of a view (``s404="..."`` overrides a text)."""

    def decorate(view: Any) -> Any:
        for status in (*statuses, 401, 403, 503):
            view = blp.alt_response(
                status,
                schema=ProblemSchema,
                description=descriptions.get(f"s{status}", _PROBLEMS[status]),
                content_type="application/problem+json",
            )(view)
        return view

    return decorate


@blp.route("/engagements/<uuid:engagement_id>")
class EngagementAudit(MethodView):
    @blp.arguments(VerifyQuerySchema, location="query")
    @blp.response(200, AuditReportSchema)
    @_problems(404, 422)
    def get(self, query: dict[str, Any], engagement_id: UUID) -> dict[str, Any]:
        """Recompute one engagement's hash chain and check it against the anchors."""
        auditor = _engagements().auditor
        # Its firm by its events, its anchors or its key: deleted or moved, still found.
        if current_principal().firm_id not in auditor.firms_of(engagement_id):
            raise EngagementNotFound(f"engagement {engagement_id} not found")
        return auditor.verify_engagement(engagement_id, query.get("expect_digest")).as_dict()


@blp.route("/verify")
class FirmAudit(MethodView):
    @blp.arguments(VerifyQuerySchema, location="query")
    @blp.response(200, AuditReportSchema)
    @_problems(422)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Recompute the chains of every engagement of your firm and check all anchors."""
        report = _engagements().auditor.verify(
            query.get("expect_digest"), firm_id=current_principal().firm_id
        )
        return report.as_dict()


@blp.route("/anchors/latest")
class LatestAnchor(MethodView):
    @blp.response(200, AnchorSchema)
    @_problems(404, s404="Nothing was anchored yet.")
    def get(self) -> Any:
        """The latest anchor: write its digest down outside coachlog to pin the history."""
        anchor = _engagements().auditor.anchors.latest()
        if anchor is None:
            return problem(404, "Not Found", "Nothing was anchored yet.", code="no_anchor")
        return {
            "seq": anchor.seq,
            "position": anchor.position,
            "anchored_at": anchor.anchored_at,
            "digest": anchor.digest,
        }
