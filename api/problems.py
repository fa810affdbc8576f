"""Errors as RFC 9457 problem+json, mapped in one place.

Validation 422 (per-field messages), malformed JSON 400, missing or bad token 401,
outside the caller's rights 403, unknown engagement (or another firm's) 404, broken
domain rule 409 (with the rule's stable code), stale If-Match 412, body too large 413,
wrong content type 415, database down (or an engagement's read model in quarantine)
503. Client input never yields a 5xx or a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import PersistenceError
from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from api.authorization import Forbidden
from domain.errors import (
    ConcurrencyConflict,
    DomainError,
    EngagementNotFound,
    ErasureIncomplete,
    InvalidValue,
    MissingActor,
    OccurredInFuture,
    StaleVersion,
)
from projections.database import DatabaseUnavailable
from projections.queries import NotFound, Quarantined

log = logging.getLogger("coachlog.api")

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str = "",
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": f"urn:coachlog:problem:{code}" if code else "about:blank",
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if code:
        body["code"] = code
    body["instance"] = request.path
    body.update({k: v for k, v in extra.items() if v is not None})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if status == 422 and messages:
        # webargs nests by location: {"json": {...}} / {"query": {...}}
        errors: dict[str, Any] = {}
        for located in messages.values():
            if isinstance(located, dict):
                errors.update(located)
        return problem(
            422,
            "Validation failed",
            "The request has invalid or unknown fields.",
            code="validation_failed",
            errors=errors or messages,
        )
    if status == 400 and messages:
        return problem(
            400, "Malformed request", "The body is not valid JSON.", code="malformed_json"
        )
    headers = dict(data.get("headers") or {})
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(set(error.valid_methods)))  # RFC 9110 15.5.6
    return problem(
        status,
        error.name,
        error.description or "",
        code=error.name.lower().replace(" ", "_"),
        headers=headers,
    )


def _domain_error(error: DomainError) -> Response:
    if isinstance(error, ErasureIncomplete):
        # Not a refusal: part of it is done, and the detail says what remains.
        log.warning("erasure incomplete: %s", error.message)
        return problem(
            503,
            "Erasure incomplete",
            error.message,
            code=error.code,
            headers={"Retry-After": "5"},
        )
    if isinstance(error, EngagementNotFound):
        return problem(404, "Not found", error.message, code=error.code)
    if isinstance(error, InvalidValue):
        return problem(
            422,
            "Validation failed",
            error.message,
            code=error.code,
            errors={error.field: [error.message]},
        )
    if isinstance(error, OccurredInFuture | MissingActor):
        return problem(422, "Validation failed", error.message, code=error.code)
    if isinstance(error, StaleVersion):
        return problem(
            412,
            "Precondition failed",
            error.message,
            code=error.code,
            current_version=error.actual,
            headers={"ETag": f'"{error.actual}"'},
        )
    if isinstance(error, ConcurrencyConflict):
        return problem(
            409,
            "Conflict",
            error.message,
            code=error.code,
            current_version=error.current_version,
        )
    return problem(409, "Rule broken", error.message, code=error.code)


def _forbidden(error: Forbidden) -> Response:
    return problem(403, "Forbidden", error.detail, code="forbidden")


def _read_model_not_found(error: NotFound) -> Response:
    return problem(404, "Not found", str(error), code="not_found")


def _quarantined(error: Quarantined) -> Response:
    return problem(
        503,
        "Read model in quarantine",
        str(error),
        code="read_model_quarantined",
        cause=error.cause,
        event_type=error.event_type,
        position=error.position,
        version=error.version,
    )


def _database_down(error: Exception) -> Response:
    log.warning("database unavailable: %s", error)
    return problem(
        503,
        "Service unavailable",
        "The database is not answering; try again shortly.",
        code="database_unavailable",
        headers={"Retry-After": "5"},
    )


def _unexpected(error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem(
        500,
        "Internal error",
        "Something went wrong on our side; it was logged.",
        code="internal_error",
    )


def register(app: Flask) -> None:
    """Install the problem+json handlers on ``app``."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(Forbidden, _forbidden)
    app.register_error_handler(NotFound, _read_model_not_found)
    app.register_error_handler(Quarantined, _quarantined)
    app.register_error_handler(DatabaseUnavailable, _database_down)
    app.register_error_handler(PersistenceError, _database_down)
    app.register_error_handler(Exception, _unexpected)
