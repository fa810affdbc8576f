"""Bearer-token authentication: every request but health and docs names its caller.

Once the caller is known, api/authorization.py's gate refuses what their role may never
do (before the body is read); the views check ownership on what they load.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request

from api import authorization
from api.accounts import Accounts, Principal
from api.pages import is_page
from api.problems import problem

#: Paths without a firm's token: probes, the OpenAPI document, docs, and metrics (which
#: ask for the metrics token of their own, api/metrics.py).
PUBLIC_PREFIXES = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")


def current_principal() -> Principal:
    """The authenticated caller of this request."""
    principal: Principal = g.principal
    return principal


def _authenticate() -> Response | None:
    if request.path.startswith(PUBLIC_PREFIXES) or request.method == "OPTIONS":
        return None
    if request.routing_exception is not None:
        return None  # no such path (404) or method (405 with Allow): routing answers
    _see_erasures()
    if is_page(request.path):
        return None  # pages sign in with their session cookie (api/pages.py)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="coachlog"'}
    if scheme.lower() != "bearer" or not token.strip():
        return problem(
            401,
            "Unauthorized",
            "Send 'Authorization: Bearer <token>'.",
            code="missing_token",
            headers=challenge,
        )
    accounts: Accounts = current_app.extensions["coachlog"].accounts
    principal = accounts.authenticate(token.strip())
    if principal is None:
        return problem(
            401,
            "Unauthorized",
            "The token is unknown or revoked.",
            code="invalid_token",
            headers=challenge,
        )
    g.principal = principal
    # Raises Forbidden (403) or, for another firm's engagement, its "not found" (404).
    authorization.gate(principal, request.endpoint, request.view_args)
    return None


def _see_erasures() -> None:
    """Drop this process's cached data keys if any key was destroyed since they were
    read (one small query): an erasure answered by any worker is seen by all of them
    before they answer anything else."""
    current_app.extensions["coachlog"].engagements.keys.refresh()


def register(app: Flask) -> None:
    """Authenticate every request before its view runs."""
    app.before_request(_authenticate)
