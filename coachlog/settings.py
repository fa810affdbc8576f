"""Settings from the environment: one database URL picks SQLite or PostgreSQL.

``COACHLOG_DATABASE_URL`` is ``sqlite:///path/to/file.db`` (the embedded default,
``sqlite:///coachlog.db`` in the working directory) or
``postgresql://user:password@host:port/dbname``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_DATABASE_URL = "sqlite:///coachlog.db"


class SettingsError(ValueError):
    """The configuration cannot be used as given."""


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    database_url: str = DEFAULT_DATABASE_URL
    #: PostgreSQL schema for every coachlog table (default: public).
    database_schema: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("COACHLOG_DATABASE_URL", DEFAULT_DATABASE_URL),
            database_schema=env.get("COACHLOG_DATABASE_SCHEMA") or None,
        )

    @property
    def is_postgres(self) -> bool:
        """Tell whether the event store is PostgreSQL."""
        return urlsplit(self.database_url).scheme in ("postgres", "postgresql")

    def eventsourcing_env(self) -> dict[str, str]:
        """Translate the database URL into eventsourcing's persistence settings."""
        env = persistence_env(self.database_url)
        if self.database_schema and self.is_postgres:
            env["POSTGRES_SCHEMA"] = self.database_schema
        return env


def persistence_env(url: str) -> dict[str, str]:
    """Return eventsourcing environment variables for a database URL."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        # sqlite:///relative.db -> "/relative.db" after urlsplit; sqlite:////abs -> "//abs"
        if path.startswith("//") or path.startswith("/"):
            path = path[1:]
        if not path:
            raise SettingsError(f"no file named in SQLite URL {url!r}")
        if path != ":memory:":
            path = str(Path(path).expanduser().resolve())
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path if path != ":memory:" else "file::memory:?cache=shared",
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    if parts.scheme in ("postgres", "postgresql"):
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise SettingsError(f"no database named in PostgreSQL URL {url!r}")
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_LOCK_TIMEOUT": "5",
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "6",
            # A SELECT 1 before each use of a pooled connection costs two round trips per
            # command (~20 % of the command path), but without it a request during a
            # database outage waits out eventsourcing's retries (10 × 0.2 s) instead of
            # failing fast with 503 (tests/workers/test_postgres_restart.py).
            "POSTGRES_PRE_PING": "y",
        }
    raise SettingsError(
        f"unsupported database URL {url!r}: use sqlite:///file.db or postgresql://host/db"
    )
