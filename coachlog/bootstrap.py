"""Build the application and its stores from settings; nothing here runs at import time."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from api import Services
from api.accounts import Accounts
from api.idempotency import IdempotencyStore
from coachlog.settings import Settings
from domain.application import Engagements
from projections.database import Database, PostgresDatabase, SqliteDatabase
from projections.queries import Dashboards
from projections.store import ProgressStore


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


def bootstrap(settings: Settings | None = None) -> Engagements:
    """Return the engagement application wired to the configured event store."""
    settings = settings or Settings.from_env()
    return Engagements(env=settings.eventsourcing_env())


def bootstrap_services(settings: Settings | None = None) -> Services:
    """Return everything the API needs, with the API's tables created."""
    settings = settings or Settings.from_env()
    db = database(settings)
    engagements = Engagements(env=settings.eventsourcing_env())
    progress = ProgressStore(db)
    services = Services(
        engagements=engagements,
        db=db,
        accounts=Accounts(db),
        idempotency=IdempotencyStore(db),
        progress=progress,
        dashboards=Dashboards(progress, lambda: engagements.recorder.max_notification_id() or 0),
    )
    services.create_tables()
    return services
