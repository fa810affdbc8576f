"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from api.problems import problem
from projections.database import DatabaseUnavailable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """The database answers; 503 otherwise."""
    services = current_app.extensions["coachlog"]
    try:
        services.db.ping()
        services.engagements.recorder.max_notification_id()
    except (DatabaseUnavailable, Exception) as error:
        return problem(
            503,
            "Not ready",
            f"The database is not answering: {type(error).__name__}",
            code="not_ready",
            headers={"Retry-After": "5"},
        )
    return jsonify(status="ready")
