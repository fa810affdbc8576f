"""Build the application and its stores from settings; nothing here runs at import time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from api import Services
from api.accounts import Accounts
from api.idempotency import SECRET_PURPOSE, IdempotencyStore
from coachlog.settings import Settings
from domain.application import KEYLESS_ENV, Engagements
from projections.database import Cursor, Database, PostgresDatabase, SqliteDatabase
from projections.queries import Dashboards
from projections.runner import stream_reader
from projections.store import ProgressStore
from workers.relay import create_schema as create_relay_schema


def _libpq_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def database(settings: Settings) -> Database:
    """Return the SQL database that holds the event store, for our own tables beside it."""
    env = settings.eventsourcing_env()
    if settings.is_postgres:
        db = PostgresDatabase(_libpq_url(settings.database_url), settings.database_schema)
        db.create_schema()
        return db
    return SqliteDatabase(env["SQLITE_DBNAME"])


#: The relay's acknowledged position (NULL where no relay has run).
RELAY_POSITION_SQL = "SELECT MIN(position) FROM relay_tracking"


def head_sql(engagements: Engagements, postgres: bool) -> str:
    """A scalar SELECT of the head of the event log (its highest notification id)."""
    recorder = engagements.recorder
    table = recorder.events_table_name  # type: ignore[attr-defined]
    if postgres:
        schema = recorder.datastore.schema  # type: ignore[attr-defined]
        return f'SELECT MAX(notification_id) FROM "{schema}"."{table}"'
    return f"SELECT MAX(rowid) FROM {table}"


def relay_position(cur: Cursor) -> int | None:
    """The relay's acknowledged position, or None where no relay has run."""
    cur.execute(RELAY_POSITION_SQL)
    row = cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


#: pg_advisory_lock key held while a process creates or checks coachlog's tables.
SCHEMA_LOCK = 0x636F6163686C6F67  # "coachlog"


@contextmanager
def schema_lock(settings: Settings) -> Iterator[None]:
    """Serialise table creation between processes that start together (gunicorn
    workers, relay, projectors): PostgreSQL fails concurrent ``CREATE OR REPLACE
    FUNCTION`` (run by eventsourcing on every start) and concurrent ``CREATE ... IF NOT
    EXISTS`` of one object with "tuple concurrently updated" or a duplicate key. Also
    creates the configured schema."""
    if not settings.is_postgres:
        yield
        return
    with psycopg.connect(
        _libpq_url(settings.database_url), autocommit=True, connect_timeout=5
    ) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            if settings.database_schema:
                # Whichever command runs first on a new database (seed, serve, relay...)
                # makes the configured schema; none relies on another having run before.
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                        sql.Identifier(settings.database_schema)
                    )
                )
            yield
        finally:
            # A lost connection releases the lock by itself.
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


def bootstrap(settings: Settings | None = None, *, keyless: bool = False) -> Engagements:
    """Return the engagement application wired to the configured event store
    (``keyless``: without any master key, for a process that never opens sealed data)."""
    settings = settings or Settings.from_env()
    env = settings.eventsourcing_env()
    if keyless:
        env[KEYLESS_ENV] = "1"
    with schema_lock(settings):
        return Engagements(env=env)


def bootstrap_services(settings: Settings | None = None) -> Services:
    """Return everything the API needs, with the API's tables created."""
    settings = settings or Settings.from_env()
    with schema_lock(settings):
        return _services(settings)


def _services(settings: Settings) -> Services:
    db = database(settings)
    engagements = Engagements(env=settings.eventsourcing_env())
    progress = ProgressStore(db, engagements.keys, stream_reader(engagements))
    services = Services(
        engagements=engagements,
        db=db,
        accounts=Accounts(db),
        idempotency=IdempotencyStore(db, engagements.keys.master.derive(SECRET_PURPOSE)),
        progress=progress,
        dashboards=Dashboards(
            progress,
            lambda: engagements.recorder.max_notification_id() or 0,
            relay_position,
            head_sql=head_sql(engagements, settings.is_postgres),
            published_sql=RELAY_POSITION_SQL,
        ),
    )
    services.create_tables()
    engagements.erasure_hooks.append(services.accounts.forget_person)
    create_relay_schema(db)  # so /metrics can report the relay before it first runs
    return services
