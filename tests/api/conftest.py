"""API fixtures: a Flask test client over real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from psycopg import sql
from werkzeug.test import TestResponse

from api import Services, create_app
from coachlog.bootstrap import bootstrap_services
from coachlog.settings import Settings
from tests.api.live import LiveServer, start_server

FIRM = "firm-north"
OTHER_FIRM = "firm-south"


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh store on each backend (a schema of its own on PostgreSQL)."""
    if request.param == "sqlite":
        yield Settings(database_url=f"sqlite:///{tmp_path / 'coachlog.db'}")
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield Settings(database_url=url, database_schema=schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The API's services on a fresh store, with two firms and a user per role."""
    built = bootstrap_services(settings)
    for firm in (FIRM, OTHER_FIRM):
        built.accounts.create_firm(firm, firm)
        for role in ("firm_admin", "coach", "client", "sponsor", "analyst", "auditor"):
            built.accounts.create_user(firm, f"{role.replace('_', '-')}-1", role)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def flask_app(services: Services) -> Flask:
    return create_app(services)


@pytest.fixture
def client(flask_app: Flask) -> FlaskClient:
    return flask_app.test_client()


@pytest.fixture
def token_for(services: Services) -> Callable[..., str]:
    """Issue a token for the user of ``role`` in ``firm``."""

    def issue(role: str = "coach", firm: str = FIRM) -> str:
        return services.accounts.issue_token(firm, f"{role.replace('_', '-')}-1")

    return issue


@pytest.fixture
def auth(token_for: Callable[..., str]) -> dict[str, str]:
    """Authorization header of FIRM's coach."""
    return {"Authorization": f"Bearer {token_for('coach')}"}


# -- request helpers ----------------------------------------------------------------------


def opening_body(**overrides: Any) -> dict[str, Any]:
    """A valid POST /engagements body (with a sponsor, in EUR)."""
    body: dict[str, Any] = {
        "client_id": "client-1",
        "client_name": "Grace Hopper",
        "coach_id": "coach-1",
        "sponsor_id": "sponsor-acme",
        "segment": "stalled_mid_career",
        "delivery": "remote",
        "planned_sessions": 10,
        "cadence_days": 14,
        "fee_per_session": "150.00",
        "currency": "EUR",
    }
    body.update(overrides)
    return body


def open_engagement(client: FlaskClient, headers: dict[str, str], **overrides: Any) -> str:
    """Open an engagement over HTTP and return its id."""
    response = client.post("/engagements", json=opening_body(**overrides), headers=headers)
    assert response.status_code == 201, response.get_json()
    engagement_id: str = response.get_json()["engagement_id"]
    return engagement_id


def slug(command_type: type[Any]) -> str:
    """The URL segment of a command: its class name in kebab case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", command_type.__name__).lower()


def post_command(
    client: FlaskClient,
    headers: dict[str, str],
    engagement_id: str,
    command: str,
    body: dict[str, Any] | None = None,
    **extra_headers: str,
) -> TestResponse:
    """POST a command body to /engagements/{id}/{command}."""
    return client.post(
        f"/engagements/{engagement_id}/{command}",
        json={} if body is None else body,
        headers={**headers, **{k.replace("_", "-"): v for k, v in extra_headers.items()}},
    )


def history(client: FlaskClient, headers: dict[str, str], engagement_id: str) -> list[Any]:
    """The events of an engagement as GET /engagements/{id}/history returns them."""
    response = client.get(f"/engagements/{engagement_id}/history", headers=headers)
    assert response.status_code == 200, response.get_json()
    events: list[Any] = response.get_json()["events"]
    return events


def assert_problem(response: TestResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """Check an RFC 9457 problem+json answer and return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = json.loads(response.get_data(as_text=True))
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["type"], str)
    assert body["type"]
    if code is not None:
        assert body["code"] == code
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    assert 'File "' not in text
    return body


# -- live servers (real processes over real HTTP) ------------------------------------------


@pytest.fixture(scope="session")
def live_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`coachlog serve` on a fresh SQLite file, started once per session."""
    directory = tmp_path_factory.mktemp("live-sqlite")
    server = start_server(
        {"COACHLOG_DATABASE_URL": f"sqlite:///{directory / 'live.db'}"}, directory
    )
    try:
        yield server
    finally:
        assert server.stop() == 0, server.log_text()


@pytest.fixture(scope="session")
def live_postgres(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`coachlog serve --workers 2` on a fresh PostgreSQL schema, started once per session."""
    directory = tmp_path_factory.mktemp("live-postgres")
    schema = f"live_{uuid.uuid4().hex[:12]}"
    server = start_server(
        {"COACHLOG_DATABASE_URL": postgres_url, "COACHLOG_DATABASE_SCHEMA": schema},
        directory,
        workers=2,
    )
    try:
        yield server
    finally:
        code = server.stop()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        assert code == 0, server.log_text()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def live_server(request: pytest.FixtureRequest) -> LiveServer:
    """A running server on each backend."""
    server: LiveServer = request.getfixturevalue(f"live_{request.param}")
    return server
