"""Fixtures of the integration tests: the whole service on a fresh store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from coachlog.bootstrap import bootstrap_services
from coachlog.settings import Settings


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a fresh store; parametrized indirectly with "sqlite" or "postgres"."""
    if request.param == "sqlite":
        yield Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}")
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield Settings(database_url=url, database_schema=schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def services(backend: Settings) -> Iterator[Any]:
    """The service's parts on the store of ``backend``."""
    built = bootstrap_services(backend)
    try:
        yield built
    finally:
        built.close()
