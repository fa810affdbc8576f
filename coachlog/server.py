"""Run the API under gunicorn: one process with threads on SQLite, workers on PostgreSQL."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from api import create_app
from coachlog.bootstrap import bootstrap_services
from coachlog.settings import Settings


def create_wsgi() -> Flask:
    """The WSGI app for gunicorn: ``gunicorn 'coachlog.server:create_wsgi()'``.

    Projections run elsewhere (``coachlog project``) unless COACHLOG_IN_PROCESS_PROJECTIONS
    is set; on SQLite they always run in-process.
    """
    settings = Settings.from_env()
    services = bootstrap_services(settings)
    services.start_purging(purge_seconds())
    if not settings.is_postgres or os.environ.get("COACHLOG_IN_PROCESS_PROJECTIONS"):
        services.start_projections()
        services.start_anchoring(anchor_seconds())
    return create_app(services)


def anchor_seconds() -> float:
    """How often the embedded server anchors the audit chains (COACHLOG_ANCHOR_SECONDS)."""
    return max(1.0, float(os.environ.get("COACHLOG_ANCHOR_SECONDS", "60")))


def purge_seconds() -> float:
    """How often each API process deletes expired idempotency keys
    (COACHLOG_IDEMPOTENCY_PURGE_SECONDS)."""
    return max(1.0, float(os.environ.get("COACHLOG_IDEMPOTENCY_PURGE_SECONDS", "600")))


class Server(BaseApplication):
    """gunicorn, configured in code; the app is built in each worker after the fork."""

    def __init__(self, settings: Settings, options: dict[str, Any], projections: bool) -> None:
        self.settings = settings
        self.options = options
        self.projections = projections
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        services = bootstrap_services(self.settings)
        services.start_purging(purge_seconds())
        if self.projections:
            services.start_projections()
            services.start_anchoring(anchor_seconds())
        return create_app(services)


def serve(
    settings: Settings,
    host: str,
    port: int,
    workers: int | None = None,
    projections: bool | None = None,
) -> None:
    """Serve the API until interrupted (SIGTERM/SIGINT stop it gracefully).

    ``projections`` runs the read-model runner in each worker (default: on SQLite).
    """
    if projections is None:
        projections = not settings.is_postgres
    if workers is None:
        workers = min(4, 2 * (os.cpu_count() or 1) + 1) if settings.is_postgres else 1
    Server(
        settings,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": 8,
            "worker_class": "gthread",
            "timeout": 60,
            "graceful_timeout": 20,
            "accesslog": "-",
            "errorlog": "-",
            "loglevel": "info",
            # One control socket per user would clash between several servers on a host.
            "control_socket_disable": True,
        },
        projections,
    ).run()
