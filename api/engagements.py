"""Engagement endpoints: open, one POST per command, current and past state, history.

Every POST honours ``If-Match`` (the engagement version, as sent in ``ETag``) and
``Idempotency-Key``; every response about one engagement carries its version as ETag.
Who may do what is api/authorization.py: roles that may never do an action are refused
before the view runs; ownership is checked here on the engagement that was loaded.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from uuid import UUID

import flask
from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from api import authorization, jsonbody
from api.authorization import Action, Scope
from api.idempotency import IdempotencyStore, StoredResponse, legacy_fingerprint
from api.problems import problem
from api.schemas import (
    COMMAND_SCHEMAS,
    CommandResultSchema,
    EngagementStateSchema,
    HistorySchema,
    OpenEngagementRequest,
    ProblemSchema,
    StateQuerySchema,
)
from api.security import current_principal
from domain.application import CommandResult, Engagements
from domain.commands import Command, EraseSubject, OpenEngagement
from domain.context import CommandContext
from domain.engagement import Engagement
from domain.errors import EngagementAlreadyExists, EngagementNotFound


class DecimalJsonParser(FlaskParser):
    """Parse bodies with api/jsonbody.py (numbers with a fraction as Decimal, so money is
    never a float; hostile JSON refused with a 400 problem); and let query schemas refuse
    unknown parameters (a typo such as ``?as_of=`` must not quietly return the current
    state)."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None}

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        try:
            return jsonbody.parse(req.get_data(cache=True))
        except jsonbody.BadBody as error:
            flask.abort(problem(400, "Malformed request", error.detail, code=error.code))


class EngagementBlueprint(Blueprint):
    """Blueprints of the JSON API: decimals stay exact, unknown parameters are refused."""

    ARGUMENTS_PARSER = DecimalJsonParser()


blp = EngagementBlueprint(
    "engagements",
    __name__,
    url_prefix="/engagements",
    description="Open engagements, record what happens in them, and read their history.",
)

#: An ETag as we send it: a version of at most 18 digits (any longer is not a version).
_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,18})"\s*$')
_ERRORS = {
    400: "Malformed JSON.",
    401: "Missing or invalid bearer token.",
    403: "The caller's role may not do this, or not on this engagement (see detail).",
    404: "No such engagement in the caller's firm.",
    409: "A domain rule was broken, or another writer saved first (see current_version).",
    412: "If-Match named a version that is no longer current.",
    413: "The body is too large.",
    415: "The body must be application/json.",
    422: "Validation failed (per-field messages), or an Idempotency-Key reused with another body.",
    503: "The database is not answering; retry after Retry-After seconds.",
}


def _document_errors(*statuses: int) -> Callable[[Any], Any]:
    def decorate(view: Any) -> Any:
        for status in (*statuses, 503):
            view = blp.alt_response(
                status,
                schema=ProblemSchema,
                description=_ERRORS[status],
                content_type="application/problem+json",
            )(view)
        return view

    return decorate


def _services() -> Any:
    return current_app.extensions["coachlog"]


def _engagements() -> Engagements:
    engagements: Engagements = _services().engagements
    return engagements


def _etag(version: int) -> str:
    return f'"{version}"'


def _json(schema: Schema, data: Any, status: int, headers: dict[str, str]) -> StoredResponse:
    return StoredResponse(status=status, headers=headers, body=schema.dump(data))


def _to_response(stored: StoredResponse, *, replayed: bool = False) -> Response:
    response = flask.jsonify(stored.body)
    response.status_code = stored.status
    for name, value in stored.headers.items():
        response.headers[name] = value
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _expected_version() -> int | None:
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = _ETAG.match(header)
    if match is None:
        flask.abort(
            problem(
                400,
                "Malformed If-Match",
                'If-Match must be an ETag such as "7".',
                code="malformed_if_match",
            )
        )
    return int(match.group(1))


def _context(body: dict[str, Any], correlation_id: UUID) -> CommandContext:
    principal = current_principal()
    return CommandContext(
        actor_id=principal.user_id,
        actor_role=principal.role,
        firm_id=principal.firm_id,
        correlation_id=correlation_id,
        causation_id=body.pop("causation_id", None),
        occurred_at=body.pop("occurred_at", None),
    )


def _already_applied(engagement_id: UUID, correlation_id: UUID) -> bool:
    firm_id = current_principal().firm_id
    try:
        history = _engagements().history(firm_id, engagement_id)
    except EngagementNotFound:
        return False
    return any(e.metadata["correlation_id"] == correlation_id for e in history)


#: ``run(correlation_id, engagement_id)``: the engagement is the path's, or for an open
#: the one made with the key's claim (None without a key: the domain makes one).
Run = Callable[[UUID, "UUID | None"], StoredResponse]


def _idempotent(
    engagement_id: UUID | None,
    run: Run,
    recover: Callable[[UUID], StoredResponse],
    reauthorize: Callable[[], None],
) -> Response:
    """Run ``run`` at most once per Idempotency-Key; replay its answer on retries.

    Keys are the caller's own (see api/idempotency.py), and ``reauthorize`` runs again
    before a stored answer is replayed or a half-done request recovered: rights can
    change (a coach reassigned away) and a replay must not outlive them. A refusal for
    lack of rights (403), like one that depends on the engagement's state (409, 412),
    is not remembered: the retry is judged afresh. Without a key every request gets a
    fresh random correlation id (no header is believed).
    """
    sent_key = request.headers.get("Idempotency-Key")
    if sent_key is None:
        return _to_response(run(uuid.uuid4(), engagement_id))
    if not 1 <= len(sent_key) <= 200 or "\x00" in sent_key:
        return problem(
            422,
            "Validation failed",
            "Idempotency-Key must be 1-200 characters, none of them NUL.",
            code="invalid_idempotency_key",
        )
    principal = current_principal()
    firm_id, user_id = principal.firm_id, principal.user_id
    store: IdempotencyStore = _services().idempotency
    raw = request.get_data()
    claim = store.claim(
        firm_id,
        user_id,
        sent_key,
        store.fingerprint(request.method, request.path, raw),
        legacy_fingerprint(request.method, request.path, raw),
        engagement_id,
    )
    if claim.state in ("replay", "abandoned"):
        # Raises when the caller may no longer do this. An abandoned claim then stays
        # unanswered (it may have written): a later retry finds and recovers it.
        reauthorize()
    if claim.state == "replay" and claim.response is not None:
        return _to_response(claim.response, replayed=True)
    if claim.state == "mismatch":
        return problem(
            422,
            "Idempotency-Key reused",
            "This Idempotency-Key was used with a different request.",
            code="idempotency_key_reused",
        )
    if claim.state == "in_flight":
        return problem(
            409,
            "Request in progress",
            "A request with this Idempotency-Key is still being processed.",
            code="idempotency_key_in_flight",
            headers={"Retry-After": "1"},
        )
    target = engagement_id or claim.engagement_id
    if (
        claim.state == "abandoned"
        and target is not None
        and _already_applied(target, claim.correlation_id)
    ):
        stored = recover(target)
        store.complete(firm_id, user_id, sent_key, stored)
        return _to_response(stored)
    try:
        stored = run(claim.correlation_id, target)
    except Exception as error:
        # A refused command wrote nothing. A client error is the answer to this key; a
        # server-side failure is not, so the key is released for a retry.
        response = current_app.make_response(current_app.handle_user_exception(error))
        if 400 <= response.status_code < 500 and response.status_code not in (403, 409, 412):
            store.complete(
                firm_id,
                user_id,
                sent_key,
                StoredResponse(
                    response.status_code,
                    {k: v for k, v in response.headers.items() if k in ("ETag", "Content-Type")},
                    response.get_json(force=True, silent=True) or {},
                ),
            )
        else:
            store.release(firm_id, user_id, sent_key)
        return response
    store.complete(firm_id, user_id, sent_key, stored)
    return _to_response(stored)


def _result(result: CommandResult, status: int = 200) -> StoredResponse:
    headers = {"ETag": _etag(result.version)}
    if status == 201:
        headers["Location"] = f"/engagements/{result.engagement_id}"
    data = {
        "engagement_id": result.engagement_id,
        "version": result.version,
        "result": None if result.result is None else str(result.result),
    }
    return _json(CommandResultSchema(), data, status, headers)


def _current(engagement_id: UUID, status: int = 200) -> StoredResponse:
    engagement = _engagements().get(current_principal().firm_id, engagement_id)
    return _result(CommandResult(engagement_id, engagement.version), status)


@blp.before_request
def _require_json() -> Response | None:
    if request.method == "POST" and not request.is_json:
        return problem(
            415,
            "Unsupported media type",
            "Send the body as application/json.",
            code="unsupported_media_type",
        )
    return None


@blp.route("")
class EngagementCollection(MethodView):
    @blp.arguments(OpenEngagementRequest)
    @blp.response(201, CommandResultSchema, description="Opened; Location names it.")
    @_document_errors(400, 401, 403, 409, 413, 415, 422)
    @blp.doc(tags=["lifecycle"], summary="Open an engagement")
    def post(self, body: dict[str, Any]) -> Response:
        """Open an engagement in the caller's firm (the only command that creates one).

        A coach may open only an engagement they coach themselves (``coach_id`` is their
        own user id); a firm admin may open any."""
        principal = current_principal()

        def authorize() -> None:
            authorization.require(principal, Action.OPEN, {"coach_id": body.get("coach_id")})

        authorize()

        def run(correlation_id: UUID, engagement_id: UUID | None) -> StoredResponse:
            # The id is never the client's choice: random, made here or with the claim.
            fields = dict(body)
            ctx = _context(fields, correlation_id)
            command = OpenEngagement(**fields, engagement_id=engagement_id)
            try:
                result = _engagements().open_engagement(ctx, command)
            except EngagementAlreadyExists:
                # Only a keyed retry can name an id that exists: the first attempt's.
                if engagement_id and _already_applied(engagement_id, correlation_id):
                    return _current(engagement_id, 201)
                raise
            return _result(result, 201)

        return _idempotent(None, run, lambda opened: _current(opened, 201), authorize)


def _command_view(command_type: type[Command]) -> Callable[..., Response]:
    action = Action.ERASE if command_type is EraseSubject else Action.COMMAND

    def view(body: dict[str, Any], engagement_id: UUID) -> Response:
        principal = current_principal()

        def authorize(engagement: Engagement) -> None:
            authorization.require(principal, action, authorization.owners(engagement))

        def reauthorize() -> None:
            authorize(_engagements().get(principal.firm_id, engagement_id))

        def run(correlation_id: UUID, _: UUID | None) -> StoredResponse:
            fields = dict(body)
            ctx = _context(fields, correlation_id)
            command = command_type(engagement_id=engagement_id, **fields)
            # Ownership is judged on the very engagement the command runs on.
            result = _engagements().execute(ctx, command, _expected_version(), authorize=authorize)
            return _result(result)

        def recover(target: UUID) -> StoredResponse:
            # A keyed erasure whose process stopped after recording it: finish it first.
            if command_type is EraseSubject:
                engagements = _engagements()
                engagement = engagements.get(principal.firm_id, target)
                if engagements.erasure_unfinished(engagement):
                    ctx = _context(dict(body), uuid.uuid4())
                    engagements.finish_erasure(ctx, engagement)
            return _current(target)

        return _idempotent(engagement_id, run, recover, reauthorize)

    view.__name__ = f"post_{command_type.METHOD}"
    view.__doc__ = (command_type.__doc__ or "").strip()
    return view


def _slug(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _pillar(command_type: type[Command]) -> str:
    method = getattr(Engagement, command_type.METHOD)
    return str(method.__module__).rsplit(".", 1)[-1]


for _command_type, _schema in COMMAND_SCHEMAS.items():
    _method = getattr(Engagement, _command_type.METHOD)
    _summary = (_method.__doc__ or _command_type.__name__).strip().splitlines()[0]
    _view = _command_view(_command_type)
    _view = _document_errors(400, 401, 403, 404, 409, 412, 413, 415, 422)(_view)
    _view = blp.response(
        200, CommandResultSchema, description="Recorded; ETag is the new version."
    )(_view)
    _view = blp.arguments(_schema)(_view)
    _view = blp.doc(
        tags=[_pillar(_command_type)], summary=_summary, operationId=_command_type.METHOD
    )(_view)
    blp.route(
        f"/<uuid:engagement_id>/{_slug(_command_type.__name__)}",
        methods=["POST"],
        endpoint=_command_type.METHOD,
    )(_view)


def _authorize_read(engagement_id: UUID, current: Engagement | None = None) -> None:
    """Refuse (403) a caller who may not read this engagement of their firm.

    Rights follow the current state (``current``, loaded if not given; another firm's
    engagement is "not found" on loading): a coach reads every past version of an
    engagement they coach now, and none of one they no longer coach. A firm-wide scope
    needs no load at all.
    """
    principal = current_principal()
    if authorization.scope(principal, Action.READ) is Scope.ALL:
        return
    if current is None:
        current = _engagements().get(principal.firm_id, engagement_id)
    authorization.require(principal, Action.READ, authorization.owners(current))


@blp.route("/<uuid:engagement_id>")
class EngagementResource(MethodView):
    @blp.arguments(StateQuerySchema, location="query")
    @blp.response(200, EngagementStateSchema, description="The state; ETag is its version.")
    @_document_errors(401, 403, 404, 422)
    @blp.doc(tags=["queries"], summary="Read an engagement now or in the past")
    def get(self, query: dict[str, Any], engagement_id: UUID) -> Response:
        """Return the engagement now, at a version, as recorded at a time, or as it stood
        in the world at an occurred time (at most one of the three)."""
        chosen = [k for k in ("version", "recorded_at", "occurred_at") if query.get(k) is not None]
        if len(chosen) > 1:
            return problem(
                422,
                "Validation failed",
                "Choose at most one of version, recorded_at and occurred_at.",
                code="validation_failed",
                errors={k: ["Only one time selector at a time."] for k in chosen},
            )
        firm_id = current_principal().firm_id
        app = _engagements()
        if not chosen:
            engagement = app.get(firm_id, engagement_id)
            _authorize_read(engagement_id, engagement)
        else:
            _authorize_read(engagement_id)
        if "version" in chosen:
            engagement = app.get(firm_id, engagement_id, version=query["version"])
        elif "recorded_at" in chosen:
            engagement = app.get_as_recorded_at(firm_id, engagement_id, query["recorded_at"])
        elif "occurred_at" in chosen:
            engagement = app.get_as_occurred_by(firm_id, engagement_id, query["occurred_at"])
        stored = _json(
            EngagementStateSchema(), engagement.as_dict(), 200, {"ETag": _etag(engagement.version)}
        )
        return _to_response(stored)


@blp.route("/<uuid:engagement_id>/history")
class EngagementHistory(MethodView):
    @blp.response(200, HistorySchema, description="Every event, oldest first.")
    @_document_errors(401, 403, 404)
    @blp.doc(tags=["queries"], summary="The full history (audit view)")
    def get(self, engagement_id: UUID) -> Response:
        """Return every event with version, type, occurred and recorded time, actor and
        payload."""
        _authorize_read(engagement_id)
        entries = _engagements().history(current_principal().firm_id, engagement_id)
        data = {
            "engagement_id": engagement_id,
            "version": entries[-1].version,
            "events": [e.__dict__ for e in entries],
        }
        stored = _json(HistorySchema(), data, 200, {"ETag": _etag(entries[-1].version)})
        return _to_response(stored)
