"""The HTTP API: a Flask app factory over the engagement application service."""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import swagger_ui_bundle
from flask import Flask, request, send_from_directory
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api
from werkzeug.wrappers import Response

from api import health, metrics, pages, problems, security
from api.accounts import Accounts
from api.audit import blp as audit_blp
from api.dashboards import blp as dashboards_blp
from api.engagements import blp as engagements_blp
from api.idempotency import IdempotencyStore
from api.schemas import DecimalString
from domain.application import Engagements
from domain.audit import Anchoring
from projections.database import Database
from projections.queries import Dashboards
from projections.runner import ProjectionRunner
from projections.store import ProgressStore

log = logging.getLogger("coachlog.api")

#: Largest request body accepted (413 above it).
MAX_BODY_BYTES = 256 * 1024


class Every:
    """Run ``job`` every ``seconds`` in a daemon thread until stopped; a failure is
    logged and the next run comes on schedule."""

    def __init__(self, seconds: float, job: Callable[[], Any], name: str) -> None:
        self.seconds = seconds
        self.job = job
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.job()
                self.runs += 1
            except Exception:
                log.exception("%s failed; next run in %.0fs", self._thread.name, self.seconds)


@dataclass
class Services:
    """What the views use: the application service and the API's own stores."""

    engagements: Engagements
    db: Database
    accounts: Accounts
    idempotency: IdempotencyStore
    progress: ProgressStore
    dashboards: Dashboards
    runner: ProjectionRunner | None = None
    anchoring: Anchoring | None = None
    purging: Every | None = None

    def create_tables(self) -> None:
        """Create the API's and the read models' tables if they are missing."""
        self.accounts.create_tables()
        self.idempotency.create_tables()
        self.progress.create_tables()

    def start_projections(self) -> ProjectionRunner:
        """Fold the event store into the read models in a background thread."""
        if self.runner is None:
            self.runner = ProjectionRunner(self.engagements, self.progress)
            self.runner.start()
        return self.runner

    def start_anchoring(self, seconds: float) -> Anchoring:
        """Anchor the audit chains every ``seconds`` in a background thread."""
        if self.anchoring is None:
            self.anchoring = Anchoring(self.engagements.auditor, seconds)
            self.anchoring.start()
        return self.anchoring

    def start_purging(self, seconds: float) -> Every:
        """Delete expired idempotency keys every ``seconds`` in a background thread."""
        if self.purging is None:
            self.purging = Every(seconds, self.idempotency.purge_expired, "idempotency-purge")
            self.purging.start()
        return self.purging

    def close(self) -> None:
        """Stop the in-process projections, close the event store and the pool."""
        if self.purging is not None:
            self.purging.stop()
        if self.runner is not None:
            self.runner.stop()
        if self.anchoring is not None:
            self.anchoring.stop()
        self.engagements.close()
        self.db.close()


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class JSONProvider(DefaultJSONProvider):
    """ISO 8601 times and dates, decimals as strings, UUIDs as strings; standard JSON
    only: a non-finite float (which nothing accepted today can hold, but data stored
    before NaN was refused might) is answered as null, never as ``NaN``."""

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime | date):
            return o.isoformat()
        if isinstance(o, Decimal | UUID):
            return str(o)
        return DefaultJSONProvider.default(o)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs["allow_nan"] = False
        try:
            return super().dumps(obj, **kwargs)
        except ValueError:
            return super().dumps(_finite(obj), **kwargs)


class CoachlogApi(Api):
    """flask-smorest's Api, leaving error rendering to our problem+json handlers.

    No catch-all ``default`` response in the document: every status an operation can
    answer is declared (as problem+json), so clients and schemathesis can hold us to it.
    """

    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self) -> None:
        pass


def _refuse_nul_in_path() -> Response | None:
    """No resource has a NUL in its path (and PostgreSQL cannot store one in text)."""
    if "\x00" in request.path:
        return problems.problem(404, "Not Found", "No such resource.", code="not_found")
    return None


#: Swagger UI's inline start-up script, found in the page it renders.
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def _docs_headers(response: Response) -> Response:
    """Swagger UI (``/docs``) may run its own scripts and the one inline script that
    starts it (allowed by its hash), load nothing from elsewhere and not be framed."""
    if request.path.startswith("/docs") and response.mimetype == "text/html":
        allowed = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
            for script in _INLINE_SCRIPT.findall(response.get_data())
        )
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'self' {allowed}; style-src 'self' 'unsafe-inline';"
            " img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none';"
            " form-action 'self'; frame-ancestors 'none'"
        )
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
    return response


def create_app(services: Services, config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app around ``services`` (no side effects at import time)."""
    # No app-wide /static route: the pages serve their assets under /ui/static.
    app = Flask(__name__, static_folder=None)
    app.json = JSONProvider(app)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        API_TITLE="coachlog",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
        API_SPEC_OPTIONS={
            "info": {
                "description": "Event-sourced records of career-coaching engagements. "
                "Authenticate with 'Authorization: Bearer <token>' (see the README). "
                "POSTs accept If-Match (the version from ETag) and Idempotency-Key.",
            },
            "security": [{"bearerAuth": []}],
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        },
    )
    if config:
        app.config.update(config)
    app.extensions["coachlog"] = services
    problems.register(app)
    security.register(app)
    app.before_request(_refuse_nul_in_path)
    app.after_request(_docs_headers)
    app.register_blueprint(health.bp)
    metrics.configure(app)
    app.register_blueprint(metrics.bp)
    pages.register(app)  # browser dashboards: a plain blueprint, not in the OpenAPI document
    app.extensions["coachlog_metrics"] = metrics.Scraper(metrics.registry_for(services))

    @app.get("/docs/assets/<path:filename>")
    def swagger_assets(filename: str) -> Response:
        """Serve Swagger UI from the installed package: no CDN, works air-gapped."""
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    api = CoachlogApi(app)
    # Decimals are strings on the wire ("150.00"); document them so, not as numbers.
    api.register_field(DecimalString, "string", "decimal")
    api.register_blueprint(engagements_blp)
    api.register_blueprint(dashboards_blp)
    api.register_blueprint(audit_blp)
    return app
