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
    """The WSGI app for gunicorn: ``gunicorn 'coachlog.server:create_wsgi()'``."""
    return create_app(bootstrap_services(Settings.from_env()))


class Server(BaseApplication):
    """gunicorn, configured in code; the app is built in each worker after the fork."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app(bootstrap_services(self.settings))


def serve(settings: Settings, host: str, port: int, workers: int | None = None) -> None:
    """Serve the API until interrupted (SIGTERM/SIGINT stop it gracefully)."""
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
    ).run()
