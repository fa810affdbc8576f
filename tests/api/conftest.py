"""API fixtures: a Flask test client over real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from psycopg import sql

from api import Services, create_app
from coachlog.bootstrap import bootstrap_services
from coachlog.settings import Settings

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
