"""Shared fixtures: every store-backed test runs against SQLite and PostgreSQL, every
Kafka test against Apache Kafka.

PostgreSQL comes from ``COACHLOG_TEST_POSTGRES_URL`` (the test command sets it after
making sure a server answers); each run creates a throwaway database and each test a
schema of its own in it. Under CI a missing server is a failure, never a skip.

Apache Kafka comes from ``COACHLOG_TEST_KAFKA_BOOTSTRAP`` (the test command starts one
when nothing answers): one broker for every test that does not stop it. A test that
kills or restarts "the broker" takes ``kafka_broker``, a broker process of its own
(:class:`tests.broker.KafkaBroker`).
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from coachlog.settings import persistence_env
from domain.application import Engagements
from domain.commands import OpenEngagement
from domain.context import CommandContext
from tests.broker import KafkaBroker, answers, is_apache_kafka

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"

#: The master key of every store the tests make (child processes inherit it).
TEST_MASTER_KEY = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE="
os.environ.setdefault("COACHLOG_MASTER_KEY", TEST_MASTER_KEY)


def _with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test run."""
    admin_url = os.environ.get("COACHLOG_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but did not answer: {error}")
        pytest.skip(f"no PostgreSQL at {admin_url}: {error}")
    dbname = f"coachlog_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        yield _with_db(admin_url, dbname)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Apache Kafka broker of the whole run: the one at COACHLOG_TEST_KAFKA_BOOTSTRAP
    (the test command starts it), else one of our own for the session."""
    bootstrap = os.environ.get("COACHLOG_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    host, _, port = bootstrap.rpartition(":")
    if answers(host, int(port)):
        if is_apache_kafka(bootstrap):
            yield bootstrap
            return
        warnings.warn(
            f"the broker at {bootstrap} is not Apache Kafka 4: the Kafka tests start one"
            " of their own (scripts/ensure-kafka.sh starts Apache Kafka on a free port)",
            pytest.PytestWarning,
            stacklevel=1,
        )
    elif os.environ.get("CI") and "COACHLOG_TEST_KAFKA_BOOTSTRAP" in os.environ:
        pytest.fail(f"no Kafka broker answers at {bootstrap}")
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.kill9()


@pytest.fixture
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """An Apache Kafka broker only this test uses, started: it may kill it (``kill9``),
    restart it (``restart``, ``restart_with_data_loss``) and reshape its topics
    (``create_partitions``, ``delete_topic``). Killed at the end of the test."""
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.kill9()


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Persistence settings for a fresh, empty event store on each backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("store") / "events.db"
        yield persistence_env(f"sqlite:///{path}")
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    env = persistence_env(url)
    env["POSTGRES_SCHEMA"] = schema
    env["POSTGRES_POOL_SIZE"] = "2"
    env["POSTGRES_MAX_OVERFLOW"] = "4"
    try:
        yield env
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def app(store_env: dict[str, str]) -> Iterator[Engagements]:
    """The engagement application on a fresh store."""
    application = Engagements(env=store_env)
    try:
        yield application
    finally:
        application.close()


FIRM = "firm-north"
NOW = datetime.now(UTC)


def days_ago(days: float) -> datetime:
    """A moment ``days`` before the start of the test run."""
    return NOW - timedelta(days=days)


@pytest.fixture
def ctx() -> CommandContext:
    """A coach of FIRM acting now."""
    return CommandContext(actor_id="coach-ada", actor_role="coach", firm_id=FIRM)


def opening(**overrides: object) -> OpenEngagement:
    """An OpenEngagement command with sensible defaults."""
    fields: dict[str, object] = {
        "client_id": "client-1",
        "client_name": "Grace Hopper",
        "coach_id": "coach-ada",
        "sponsor_id": "sponsor-acme",
        "segment": "stalled_mid_career",
        "delivery": "remote",
        "planned_sessions": 10,
        "cadence_days": 14,
        "fee_per_session": Decimal("150.00"),
        "currency": "EUR",
    }
    fields.update(overrides)
    return OpenEngagement(**fields)  # type: ignore[arg-type]
