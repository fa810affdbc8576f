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
    """The database answers; 503 otherwise. Read models holding engagements in
    quarantine make it ``degraded`` (still 200: every other engagement is served)."""
    services = current_app.extensions["coachlog"]
    try:
        services.db.ping()
        services.engagements.recorder.max_notification_id()
        with services.db.read() as cur:
            held = services.progress.count_quarantined(services.progress.live_generation(cur), cur)
    except (DatabaseUnavailable, Exception) as error:
        return problem(
            503,
            "Not ready",
            f"The database is not answering: {type(error).__name__}",
            code="not_ready",
            headers={"Retry-After": "5"},
        )
    if held:
        return jsonify(
            status="degraded",
            read_models={"progress": {"status": "degraded", "quarantined": held}},
            detail=f"{held} engagement(s) of the progress read model are held in quarantine;"
            " see `coachlog projections retry`.",
        )
    return jsonify(status="ready", read_models={"progress": {"status": "ok", "quarantined": 0}})
