"""One small SQL access layer over SQLite (embedded) and PostgreSQL (production).

Read-model stores and the API's own tables (tokens, idempotency keys) write their SQL
once, with ``%s`` placeholders; on SQLite they are rewritten to ``?``. Each
``transaction()`` commits on success and rolls back on any error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import psycopg
from eventsourcing.persistence import PersistenceError
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout


class DatabaseUnavailable(Exception):
    """The database did not answer (down, restarting, or unreachable)."""


#: What a database in trouble raises through any of our layers (ours, psycopg, SQLite,
#: the event store's): a worker waits these out and tries again, it never takes them
#: for a fault of the data.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    psycopg.Error,
    sqlite3.Error,
    PersistenceError,
    PoolTimeout,
    OSError,
)

#: Read-model statements on PostgreSQL give up after this long (milliseconds), and
#: after LOCK_TIMEOUT_MS waiting for a lock: a stuck lock or a hanging query is an
#: error a worker retries, never a silent stall.
STATEMENT_TIMEOUT_MS = 60_000
LOCK_TIMEOUT_MS = 10_000


class Cursor(Protocol):
    """What stores may do inside a transaction."""

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    @property
    def rowcount(self) -> int: ...


class _SqliteCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(query.replace("%s", "?"), tuple(params))

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


class Database:
    """A connection source for one database, SQLite or PostgreSQL."""

    dialect: str

    def transaction(self) -> AbstractContextManager[Cursor]:
        """A cursor in a transaction that commits when the block succeeds."""
        raise NotImplementedError

    def read(self) -> AbstractContextManager[Cursor]:
        """A cursor for reading only (no write lock taken where that matters)."""
        return self.transaction()

    def read_row(self, query: str, params: Sequence[Any] = ()) -> Any:
        """One row of one read-only statement, in as few round trips as the database
        allows (PostgreSQL: one, no transaction around it)."""
        with self.read() as cursor:
            cursor.execute(query, params)
            return cursor.fetchone()

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers a trivial query."""
        try:
            with self.transaction() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseUnavailable:
            raise
        except (sqlite3.Error, psycopg.Error) as error:
            raise DatabaseUnavailable(str(error)) from error

    def table_exists(self, name: str) -> bool:
        """Tell whether a table of that name exists (in the configured schema)."""
        raise NotImplementedError

    def run_script(self, statements: Sequence[str]) -> None:
        """Run DDL statements (idempotent CREATE ... IF NOT EXISTS) in one transaction."""
        with self.transaction() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def close(self) -> None:
        """Release connections."""


class SqliteDatabase(Database):
    """SQLite, one short-lived connection per transaction (safe across threads)."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        # WAL + NORMAL never corrupts; a power cut may lose the last commits, which the
        # read models then re-project from the event store (tracking is in the same file).
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextmanager
    def _begin(self, statement: str) -> Iterator[Cursor]:
        conn = self._connect()
        try:
            conn.execute(statement)
            yield _SqliteCursor(conn.cursor())
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def table_exists(self, name: str) -> bool:
        with self.read() as cursor:
            cursor.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", (name,)
            )
            return cursor.fetchone() is not None

    def read(self) -> AbstractContextManager[Cursor]:
        """A deferred transaction: under WAL, readers never wait for the writer."""
        return self._begin("BEGIN")

    def transaction(self) -> AbstractContextManager[Cursor]:
        """A write transaction: takes SQLite's write lock at once, so it cannot deadlock."""
        return self._begin("BEGIN IMMEDIATE")


class PostgresDatabase(Database):
    """PostgreSQL through a small psycopg pool; ``schema`` goes first on the search path."""

    dialect = "postgres"

    def __init__(
        self,
        conninfo: str,
        schema: str | None = None,
        *,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 5.0,
        statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
        lock_timeout_ms: int = LOCK_TIMEOUT_MS,
    ) -> None:
        kwargs: dict[str, Any] = {"connect_timeout": 5}
        options = [
            f"-c statement_timeout={statement_timeout_ms}",
            f"-c lock_timeout={lock_timeout_ms}",
        ]
        if schema:
            options.append(f"-c search_path={schema},public")
        kwargs["options"] = " ".join(options)
        self.schema = schema
        self.timeout = timeout
        self.pool = ConnectionPool(
            conninfo,
            kwargs=kwargs,
            min_size=min_size,
            max_size=max_size,
            open=False,
            check=ConnectionPool.check_connection,
            name="coachlog",
        )
        self.pool.open(wait=False)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        try:
            conn_cm = self.pool.connection(timeout=self.timeout)
            conn = conn_cm.__enter__()
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise DatabaseUnavailable(str(error)) from error
        try:
            with conn.transaction(), conn.cursor() as cursor:
                yield cursor
        except psycopg.OperationalError as error:
            conn_cm.__exit__(type(error), error, error.__traceback__)
            raise DatabaseUnavailable(str(error)) from error
        except BaseException as error:
            conn_cm.__exit__(type(error), error, error.__traceback__)
            raise
        else:
            conn_cm.__exit__(None, None, None)

    def read_row(self, query: str, params: Sequence[Any] = ()) -> Any:
        """One row of one statement in autocommit: a single round trip (a statement
        sees one consistent snapshot on its own)."""
        try:
            conn_cm = self.pool.connection(timeout=self.timeout)
            conn = conn_cm.__enter__()
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise DatabaseUnavailable(str(error)) from error
        try:
            conn.autocommit = True
            try:
                row = conn.execute(query, tuple(params), prepare=True).fetchone()
            finally:
                conn.autocommit = False
        except psycopg.OperationalError as error:
            conn_cm.__exit__(type(error), error, error.__traceback__)
            raise DatabaseUnavailable(str(error)) from error
        except BaseException as error:
            conn_cm.__exit__(type(error), error, error.__traceback__)
            raise
        conn_cm.__exit__(None, None, None)
        return row

    def table_exists(self, name: str) -> bool:
        row = self.read_row(
            "SELECT 1 FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_name = %s",
            (name,),
        )
        return row is not None

    def create_schema(self) -> None:
        """Create the configured schema if it does not exist."""
        if self.schema:
            with self.transaction() as cursor:
                cursor.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}")
                    .format(sql.Identifier(self.schema))
                    .as_string()
                )

    def close(self) -> None:
        self.pool.close()
