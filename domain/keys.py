"""Per-client data keys under a master key (envelope encryption), and their destruction.

Every client (data subject) of a firm has a random 256-bit data key. Personal and
sensitive event fields are encrypted under it (AES-GCM); the data key itself is stored
only wrapped (encrypted) under the master key, which comes from configuration
(``COACHLOG_MASTER_KEY``) and never touches the database. Erasing a client destroys
their data keys: the wrapped key is overwritten with NULL, so every ciphertext made
under it — in events, snapshots, Kafka messages, backups — can no longer be read
("crypto-shredding"), while the events themselves, and the audit chain over them, stay.

Keys live in two tables beside the event store (same database, same transactions
semantics): ``coachlog_data_keys`` and ``coachlog_engagement_keys`` (which key an
engagement's events are sealed under). Unwrapped keys are cached per process for a
few seconds (``COACHLOG_KEY_CACHE_SECONDS``, default 5). Every destruction also moves
the *erasure generation* (``coachlog_key_generation``, in the same transaction); a
process that calls ``KeyRing.refresh`` (the API does, once per request) drops every
cached key when it moved, so no answer begun after an erasure was answered shows the
erased data, whichever process gives it. Processes that do not refresh (workers) see a
destruction within the cache time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast
from uuid import UUID

from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.utils import Environment, retry

_F = TypeVar("_F", bound=Callable[..., Any])


def retrying(method: _F) -> _F:
    """Run again (up to 10 times, 0.2 s apart) when the connection was lost, as
    eventsourcing does for its own statements: a pooled connection a server restart
    broke fails once and is replaced. Every statement here is idempotent."""
    return cast(_F, retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)(method))


MASTER_KEY_ENV = "COACHLOG_MASTER_KEY"
CACHE_SECONDS_ENV = "COACHLOG_KEY_CACHE_SECONDS"


class CryptoError(Exception):
    """A key could not be used as configured (wrong master key, damaged ciphertext)."""


class MasterKeyError(CryptoError):
    """The master key is missing or malformed."""


def new_master_key() -> str:
    """A fresh master key: 32 random bytes, base64 (what COACHLOG_MASTER_KEY holds)."""
    return AESCipher.create_key(32)


def _cipher(key_b64: str) -> AESCipher:
    return AESCipher(Environment(env={AESCipher.CIPHER_KEY: key_b64}))


@dataclass(frozen=True)
class MasterKey:
    """The key that wraps every data key; identified by a short digest (never stored)."""

    secret: str

    def __post_init__(self) -> None:
        try:
            raw = base64.b64decode(self.secret.encode(), validate=True)
        except ValueError:
            raise MasterKeyError(f"{MASTER_KEY_ENV} is not base64") from None
        if len(raw) != 32:
            raise MasterKeyError(f"{MASTER_KEY_ENV} must be 32 bytes (base64), got {len(raw)}")

    @property
    def key_id(self) -> str:
        """First 16 hex digits of SHA-256 of the key: names it in error messages."""
        return hashlib.sha256(b"coachlog-master:" + self.secret.encode()).hexdigest()[:16]

    def derive(self, purpose: str) -> bytes:
        """A 32-byte secret for one purpose (HMAC-SHA256 of the purpose under the master
        key): other secrets need not be configured, and none of them opens a data key."""
        raw = base64.b64decode(self.secret.encode())
        return hmac.new(raw, b"coachlog-derive:" + purpose.encode(), hashlib.sha256).digest()

    def wrap(self, key_id: str, data_key: str) -> str:
        """Encrypt a data key, bound to its id."""
        plain = json.dumps({"id": key_id, "key": data_key}).encode()
        return base64.b64encode(_cipher(self.secret).encrypt(plain)).decode()

    def unwrap(self, key_id: str, wrapped: str) -> str:
        """Decrypt a wrapped data key; refuse one bound to another id."""
        try:
            plain = json.loads(_cipher(self.secret).decrypt(base64.b64decode(wrapped)))
        except Exception as error:
            raise CryptoError(
                f"data key {key_id} cannot be unwrapped: the configured master key "
                f"({self.key_id}) is not the one it was wrapped under"
            ) from error
        if plain.get("id") != key_id:
            raise CryptoError(f"data key {key_id} was swapped with another key")
        return str(plain["key"])


class KeyStore(Protocol):
    """Where wrapped data keys and the engagement → key map are kept."""

    def create_tables(self) -> None: ...

    def current_key(self, firm_id: str, client_id: str) -> tuple[str, str] | None:
        """The live (key id, wrapped key) of a client, if any."""

    def add_key(self, key_id: str, firm_id: str, client_id: str, wrapped: str, master: str) -> None:
        """Store a new wrapped key (losing a race to another writer is fine)."""

    def bind(self, engagement_id: UUID, key_id: str) -> str:
        """Map an engagement to a key unless it is mapped already; return its key id."""

    def key_of(self, engagement_id: UUID) -> str | None:
        """The key id an engagement's data is sealed under."""

    def wrapped(self, key_id: str) -> str | None:
        """The wrapped key, or None once it was destroyed (or never existed)."""

    def destroy(self, firm_id: str, client_id: str) -> list[str]:
        """Destroy every key of a client; return their ids."""

    def engagements_of(self, firm_id: str, client_id: str) -> list[UUID]:
        """Every engagement whose data is sealed under one of the client's keys."""

    def keys_of(self, engagement_ids: list[UUID]) -> list[tuple[UUID, str, str | None]]:
        """(engagement, key id, wrapped key or None if destroyed) of each known one."""

    def generation(self) -> int:
        """How many destructions there were so far (moves with every one)."""

    def firm_of(self, engagement_id: UUID) -> str | None:
        """The firm of the client whose key an engagement is sealed under."""

    def engagements_of_firm(self, firm_id: str) -> list[UUID]:
        """Every engagement sealed under a key of one of the firm's clients."""


_TABLES = [
    """CREATE TABLE IF NOT EXISTS {p}coachlog_data_keys (
        key_id TEXT PRIMARY KEY,
        firm_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        wrapped_key TEXT,
        master_key_id TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        destroyed_at DOUBLE PRECISION
    )""",
    """CREATE UNIQUE INDEX IF NOT EXISTS coachlog_data_keys_live
        ON {p}coachlog_data_keys (firm_id, client_id) WHERE destroyed_at IS NULL""",
    """CREATE TABLE IF NOT EXISTS {p}coachlog_engagement_keys (
        engagement_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS coachlog_engagement_keys_key
        ON {p}coachlog_engagement_keys (key_id)""",
    """CREATE TABLE IF NOT EXISTS {p}coachlog_key_generation (
        id INTEGER PRIMARY KEY,
        generation BIGINT NOT NULL
    )""",
    """INSERT INTO {p}coachlog_key_generation (id, generation) VALUES (1, 0)
        ON CONFLICT DO NOTHING""",
]


class SqlTables:
    """Our own tables in the event store's database, through eventsourcing's datastore.

    ``datastore`` is the application recorder's SQLiteDatastore or PostgresDatastore;
    ``schema`` qualifies table names on PostgreSQL. SQL is written with ``%s`` and
    ``{p}`` (the schema prefix) placeholders.
    """

    def __init__(self, datastore: Any, dialect: str, schema: str | None = None) -> None:
        self.datastore = datastore
        self.dialect = dialect
        self.schema = schema if dialect == "postgres" else None
        self.prefix = f'"{schema}".' if schema and dialect == "postgres" else ""

    @contextmanager
    def _cursor(self, commit: bool = False) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield cursor

    def sql(self, statement: str) -> str:
        statement = statement.replace("{p}", self.prefix)
        return statement.replace("%s", "?") if self.dialect == "sqlite" else statement

    @staticmethod
    def _first(row: Any) -> Any:
        if row is None:
            return None
        return next(iter(row.values())) if isinstance(row, dict) else row[0]

    @staticmethod
    def _row(row: Any) -> tuple[Any, ...] | None:
        if row is None:
            return None
        return tuple(row.values()) if isinstance(row, dict) else tuple(row)


class SqlKeyStore(SqlTables):
    """Data keys and the engagement → key map, in SQL tables."""

    @retrying
    def create_tables(self) -> None:
        with self._cursor(commit=True) as cur:
            for statement in _TABLES:
                cur.execute(self.sql(statement))

    @retrying
    def current_key(self, firm_id: str, client_id: str) -> tuple[str, str] | None:
        with self._cursor() as cur:
            cur.execute(
                self.sql(
                    "SELECT key_id, wrapped_key FROM {p}coachlog_data_keys"
                    " WHERE firm_id = %s AND client_id = %s AND destroyed_at IS NULL"
                ),
                (firm_id, client_id),
            )
            row = self._row(cur.fetchone())
        return None if row is None else (str(row[0]), str(row[1]))

    @retrying
    def add_key(self, key_id: str, firm_id: str, client_id: str, wrapped: str, master: str) -> None:
        with self._cursor(commit=True) as cur:
            cur.execute(
                self.sql(
                    "INSERT INTO {p}coachlog_data_keys (key_id, firm_id, client_id, wrapped_key,"
                    " master_key_id, created_at) VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING"
                ),
                (key_id, firm_id, client_id, wrapped, master, time.time()),
            )

    @retrying
    def bind(self, engagement_id: UUID, key_id: str) -> str:
        with self._cursor(commit=True) as cur:
            cur.execute(
                self.sql(
                    "INSERT INTO {p}coachlog_engagement_keys (engagement_id, key_id)"
                    " VALUES (%s, %s) ON CONFLICT DO NOTHING"
                ),
                (str(engagement_id), key_id),
            )
            cur.execute(
                self.sql("SELECT key_id FROM {p}coachlog_engagement_keys WHERE engagement_id = %s"),
                (str(engagement_id),),
            )
            return str(self._first(cur.fetchone()))

    @retrying
    def key_of(self, engagement_id: UUID) -> str | None:
        with self._cursor() as cur:
            cur.execute(
                self.sql("SELECT key_id FROM {p}coachlog_engagement_keys WHERE engagement_id = %s"),
                (str(engagement_id),),
            )
            value = self._first(cur.fetchone())
        return None if value is None else str(value)

    @retrying
    def wrapped(self, key_id: str) -> str | None:
        with self._cursor() as cur:
            cur.execute(
                self.sql("SELECT wrapped_key FROM {p}coachlog_data_keys WHERE key_id = %s"),
                (key_id,),
            )
            value = self._first(cur.fetchone())
        return None if value is None else str(value)

    @retrying
    def destroy(self, firm_id: str, client_id: str) -> list[str]:
        with self._cursor(commit=True) as cur:
            if self.dialect == "sqlite":
                cur.execute("PRAGMA secure_delete = ON")  # zero the old row's bytes
            cur.execute(
                self.sql(
                    "SELECT key_id FROM {p}coachlog_data_keys"
                    " WHERE firm_id = %s AND client_id = %s AND wrapped_key IS NOT NULL"
                ),
                (firm_id, client_id),
            )
            ids = [str(self._first(row)) for row in cur.fetchall()]
            cur.execute(
                self.sql(
                    "UPDATE {p}coachlog_data_keys SET wrapped_key = NULL, destroyed_at = %s"
                    " WHERE firm_id = %s AND client_id = %s AND wrapped_key IS NOT NULL"
                ),
                (time.time(), firm_id, client_id),
            )
            cur.execute(
                self.sql(
                    "UPDATE {p}coachlog_key_generation SET generation = generation + 1 WHERE id = 1"
                )
            )
        try:
            self._purge_old_row_versions()
        except Exception as error:  # the keys are destroyed; only the clean-up failed
            logging.getLogger("coachlog.keys").warning(
                "destroyed keys %s, but could not purge their old row versions: %s", ids, error
            )
        return ids

    @retrying
    def firm_of(self, engagement_id: UUID) -> str | None:
        with self._cursor() as cur:
            cur.execute(
                self.sql(
                    "SELECT k.firm_id FROM {p}coachlog_engagement_keys e"
                    " JOIN {p}coachlog_data_keys k ON k.key_id = e.key_id"
                    " WHERE e.engagement_id = %s"
                ),
                (str(engagement_id),),
            )
            value = self._first(cur.fetchone())
        return None if value is None else str(value)

    @retrying
    def engagements_of_firm(self, firm_id: str) -> list[UUID]:
        with self._cursor() as cur:
            cur.execute(
                self.sql(
                    "SELECT e.engagement_id FROM {p}coachlog_engagement_keys e"
                    " JOIN {p}coachlog_data_keys k ON k.key_id = e.key_id WHERE k.firm_id = %s"
                ),
                (firm_id,),
            )
            return [UUID(str(self._first(row))) for row in cur.fetchall()]

    # Not retried: the API asks before every request, and during a database outage
    # the request must fail at once with 503 rather than wait out ten attempts (the
    # pool's pre-ping already replaces a connection a restart broke).
    def generation(self) -> int:
        with self._cursor() as cur:
            cur.execute(self.sql("SELECT generation FROM {p}coachlog_key_generation WHERE id = 1"))
            value = self._first(cur.fetchone())
        return 0 if value is None else int(value)

    def _purge_old_row_versions(self) -> None:
        """Make the destroyed keys' old row versions unreachable on disk too: SQLite's
        write-ahead log is checkpointed and truncated, PostgreSQL's dead tuples of the
        key table are vacuumed away (WAL archives and backups are outside our reach)."""
        if self.dialect == "sqlite":
            with self.datastore.get_connection(commit=True) as conn:
                conn._sqlite_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return
        with self.datastore.get_connection() as conn:
            autocommit = conn.autocommit
            conn.autocommit = True
            try:
                conn.execute(self.sql("VACUUM {p}coachlog_data_keys"))
            finally:
                conn.autocommit = autocommit

    @retrying
    def engagements_of(self, firm_id: str, client_id: str) -> list[UUID]:
        with self._cursor() as cur:
            cur.execute(
                self.sql(
                    "SELECT e.engagement_id FROM {p}coachlog_engagement_keys e"
                    " JOIN {p}coachlog_data_keys k ON k.key_id = e.key_id"
                    " WHERE k.firm_id = %s AND k.client_id = %s ORDER BY e.engagement_id"
                ),
                (firm_id, client_id),
            )
            return [UUID(str(self._first(row))) for row in cur.fetchall()]

    @retrying
    def keys_of(self, engagement_ids: list[UUID]) -> list[tuple[UUID, str, str | None]]:
        found: list[tuple[UUID, str, str | None]] = []
        with self._cursor() as cur:
            for start in range(0, len(engagement_ids), 500):
                chunk = [str(e) for e in engagement_ids[start : start + 500]]
                marks = ", ".join(["%s"] * len(chunk))
                cur.execute(
                    self.sql(
                        "SELECT e.engagement_id, e.key_id, k.wrapped_key"
                        " FROM {p}coachlog_engagement_keys e"
                        " LEFT JOIN {p}coachlog_data_keys k ON k.key_id = e.key_id"
                        f" WHERE e.engagement_id IN ({marks})"
                    ),
                    chunk,
                )
                for row in cur.fetchall():
                    values = self._row(row)
                    assert values is not None
                    wrapped = None if values[2] is None else str(values[2])
                    found.append((UUID(str(values[0])), str(values[1]), wrapped))
        return found


class MemoryKeyStore:
    """Keys in memory, for the in-memory (popo) event store."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.engagements: dict[UUID, str] = {}
        self.lock = threading.Lock()
        self.destructions = 0

    def create_tables(self) -> None:
        return None

    def current_key(self, firm_id: str, client_id: str) -> tuple[str, str] | None:
        for key_id, key in self.keys.items():
            if (key["firm_id"], key["client_id"]) == (firm_id, client_id) and key["wrapped"]:
                return key_id, str(key["wrapped"])
        return None

    def add_key(self, key_id: str, firm_id: str, client_id: str, wrapped: str, master: str) -> None:
        with self.lock:
            if self.current_key(firm_id, client_id) is None:
                self.keys[key_id] = {"firm_id": firm_id, "client_id": client_id, "wrapped": wrapped}

    def bind(self, engagement_id: UUID, key_id: str) -> str:
        with self.lock:
            return self.engagements.setdefault(engagement_id, key_id)

    def key_of(self, engagement_id: UUID) -> str | None:
        return self.engagements.get(engagement_id)

    def wrapped(self, key_id: str) -> str | None:
        key = self.keys.get(key_id)
        return None if key is None else key["wrapped"]

    def destroy(self, firm_id: str, client_id: str) -> list[str]:
        with self.lock:
            ids = [
                key_id
                for key_id, key in self.keys.items()
                if (key["firm_id"], key["client_id"]) == (firm_id, client_id) and key["wrapped"]
            ]
            for key_id in ids:
                self.keys[key_id]["wrapped"] = None
            self.destructions += 1
        return ids

    def generation(self) -> int:
        return self.destructions

    def firm_of(self, engagement_id: UUID) -> str | None:
        key_id = self.engagements.get(engagement_id)
        key = None if key_id is None else self.keys.get(key_id)
        return None if key is None else str(key["firm_id"])

    def engagements_of_firm(self, firm_id: str) -> list[UUID]:
        return sorted(e for e in self.engagements if self.firm_of(e) == firm_id)

    def engagements_of(self, firm_id: str, client_id: str) -> list[UUID]:
        ids = {
            key_id
            for key_id, key in self.keys.items()
            if (key["firm_id"], key["client_id"]) == (firm_id, client_id)
        }
        return sorted(e for e, k in self.engagements.items() if k in ids)

    def keys_of(self, engagement_ids: list[UUID]) -> list[tuple[UUID, str, str | None]]:
        return [
            (e, self.engagements[e], self.wrapped(self.engagements[e]))
            for e in engagement_ids
            if e in self.engagements
        ]


class NoMasterKey(MasterKey):
    """The master key of a process that never opens sealed data (the relay): it holds
    no secret, and any use is refused."""

    def __init__(self) -> None:
        object.__setattr__(self, "secret", "")

    def _refuse(self) -> MasterKeyError:
        return MasterKeyError("this process has no key access (it never opens sealed data)")

    def derive(self, purpose: str) -> bytes:
        raise self._refuse()

    def wrap(self, key_id: str, data_key: str) -> str:
        raise self._refuse()

    def unwrap(self, key_id: str, wrapped: str) -> str:
        raise self._refuse()


class KeyRing:
    """Seals and opens bytes for an engagement under its client's data key."""

    def __init__(self, store: KeyStore, master: MasterKey, cache_seconds: float = 5.0) -> None:
        self.store = store
        self.master = master
        self.cache_seconds = cache_seconds
        #: key id -> (when read, erasure generation then, cipher or None if destroyed)
        self._ciphers: dict[str, tuple[float, int, AESCipher | None]] = {}
        self._engagement_keys: dict[UUID, str] = {}
        self._lock = threading.Lock()
        #: The store's erasure generation as last seen (``refresh``).
        self.generation = -1

    def refresh(self) -> None:
        """Ask the store for its erasure generation (one small query) and drop every
        cached key if it moved since: called at the start of each API request, it
        makes an erasure visible to every process once it has been answered."""
        generation = self.store.generation()
        if generation != self.generation:
            with self._lock:
                self._ciphers.clear()
                self.generation = generation

    def _fresh(self, cached: tuple[float, int, AESCipher | None] | None, now: float) -> bool:
        return (
            cached is not None
            and now - cached[0] < self.cache_seconds
            and cached[1] == self.generation
        )

    # -- keys ---------------------------------------------------------------------------

    def key_for_new_engagement(self, engagement_id: UUID, firm_id: str, client_id: str) -> str:
        """The key an opening engagement's data is sealed under (its client's live key)."""
        known = self._engagement_keys.get(engagement_id) or self.store.key_of(engagement_id)
        if known is not None:
            self._engagement_keys[engagement_id] = known
            return known
        current = self.store.current_key(firm_id, client_id)
        if current is None:
            key_id = uuid.uuid4().hex
            wrapped = self.master.wrap(key_id, AESCipher.create_key(32))
            self.store.add_key(key_id, firm_id, client_id, wrapped, self.master.key_id)
            current = self.store.current_key(firm_id, client_id)
            if current is None:  # pragma: no cover - destroyed between the two statements
                raise CryptoError(f"the key of client {client_id} vanished while being made")
        key_id = self.store.bind(engagement_id, current[0])
        self._engagement_keys[engagement_id] = key_id
        return key_id

    def key_of(self, engagement_id: UUID) -> str | None:
        """The key id an engagement is sealed under, if it has one."""
        key_id = self._engagement_keys.get(engagement_id)
        if key_id is None:
            key_id = self.store.key_of(engagement_id)
            if key_id is not None:
                self._engagement_keys[engagement_id] = key_id
        return key_id

    def _cipher(self, key_id: str) -> AESCipher | None:
        now = time.monotonic()
        cached = self._ciphers.get(key_id)
        if cached is not None and self._fresh(cached, now):
            return cached[2]
        seen = self.generation  # before reading: a refresh meanwhile makes this stale
        wrapped = self.store.wrapped(key_id)
        cipher = None if wrapped is None else _cipher(self.master.unwrap(key_id, wrapped))
        with self._lock:
            self._ciphers[key_id] = (now, seen, cipher)
        return cipher

    def prefetch(self, engagement_ids: Iterable[UUID]) -> None:
        """Load the keys of many engagements in one query (a projection batch, an export
        page) instead of one query per engagement."""
        now = time.monotonic()
        missing = []
        for engagement_id in set(engagement_ids):
            key_id = self._engagement_keys.get(engagement_id)
            cached = None if key_id is None else self._ciphers.get(key_id)
            if not self._fresh(cached, now):
                missing.append(engagement_id)
        if not missing:
            return
        seen = self.generation
        for engagement_id, key_id, wrapped in self.store.keys_of(missing):
            self.remember(engagement_id, key_id, wrapped, seen)

    def remember(
        self, engagement_id: UUID, key_id: str, wrapped: str | None, seen: int | None = None
    ) -> None:
        """Use a key read along with something else (e.g. a read-model row); ``seen`` is
        the erasure generation as it was before that read."""
        self._engagement_keys[engagement_id] = key_id
        cipher = None if wrapped is None else _cipher(self.master.unwrap(key_id, wrapped))
        with self._lock:
            self._ciphers[key_id] = (
                time.monotonic(),
                self.generation if seen is None else seen,
                cipher,
            )

    def forget(self, key_ids: list[str]) -> None:
        """Drop cached keys (after they were destroyed)."""
        with self._lock:
            for key_id in key_ids:
                self._ciphers.pop(key_id, None)

    # -- sealing ------------------------------------------------------------------------

    def seal(self, key_id: str, context: str, plain: bytes) -> dict[str, str] | None:
        """Encrypt ``plain`` bound to ``context``; None if the key was destroyed."""
        cipher = self._cipher(key_id)
        if cipher is None:
            return None
        body = context.encode() + b"\x00" + plain
        return {"k": key_id, "c": base64.b64encode(cipher.encrypt(body)).decode()}

    def open(self, envelope: dict[str, str], context: str) -> bytes | None:
        """Decrypt a sealed envelope; None if its key was destroyed."""
        cipher = self._cipher(envelope["k"])
        if cipher is None:
            return None
        try:
            body = cipher.decrypt(base64.b64decode(envelope["c"]))
        except Exception as error:
            raise CryptoError(f"sealed data of {context} is damaged") from error
        bound, _, plain = body.partition(b"\x00")
        if bound != context.encode():
            raise CryptoError(f"sealed data of {bound.decode()!r} was moved to {context}")
        return plain

    # -- erasure ------------------------------------------------------------------------

    def destroy(self, firm_id: str, client_id: str) -> list[str]:
        """Destroy every key of a client; afterwards their sealed data cannot be read."""
        ids = self.store.destroy(firm_id, client_id)
        with self._lock:
            self._ciphers.clear()  # whatever of theirs this process still holds
        return ids


def master_key_from(environ: dict[str, str] | Any, fallback_file: str | None) -> MasterKey:
    """The configured master key; for an embedded SQLite file without one, a key file
    beside the database (made on first use, mode 0600); in memory, a random key."""
    secret = environ.get(MASTER_KEY_ENV) or os.environ.get(MASTER_KEY_ENV)
    if secret:
        return MasterKey(secret.strip())
    if fallback_file is None:
        raise MasterKeyError(
            f"{MASTER_KEY_ENV} is not set: give coachlog a master key "
            "(`coachlog keys new-master` prints one)"
        )
    if fallback_file == ":memory:":
        return MasterKey(new_master_key())
    try:
        with open(fallback_file, encoding="ascii") as handle:
            return MasterKey(handle.read().strip())
    except FileNotFoundError:
        pass
    secret = new_master_key()
    fd = os.open(fallback_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret + "\n")
    return MasterKey(secret)


def key_cache_seconds(environ: dict[str, str] | Any) -> float:
    """How long an unwrapped key may be used before asking the store again."""
    value = environ.get(CACHE_SECONDS_ENV) or os.environ.get(CACHE_SECONDS_ENV) or "5"
    return max(0.0, float(value))
