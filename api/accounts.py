"""Firms, users, bearer API tokens and browser sessions; tokens and session ids are
stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from domain.values import Role, enum_value
from projections.database import Database

TOKEN_PREFIX = "cl_"
SESSION_PREFIX = "cls_"
_IDENT = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS coachlog_firms (
        firm_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS coachlog_users (
        firm_id TEXT NOT NULL REFERENCES coachlog_firms (firm_id),
        user_id TEXT NOT NULL,
        role TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (firm_id, user_id)
    )""",
    """CREATE TABLE IF NOT EXISTS coachlog_tokens (
        token_hash TEXT PRIMARY KEY,
        token_prefix TEXT NOT NULL,
        firm_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION,
        FOREIGN KEY (firm_id, user_id) REFERENCES coachlog_users (firm_id, user_id)
    )""",
    """CREATE TABLE IF NOT EXISTS coachlog_sessions (
        session_hash TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL REFERENCES coachlog_tokens (token_hash),
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        ended_at DOUBLE PRECISION
    )""",
]


class AccountError(ValueError):
    """A firm, user or token request that cannot be carried out."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: who they are, their role and their firm."""

    firm_id: str
    user_id: str
    role: str


def token_hash(token: str) -> str:
    """The SHA-256 hex digest a token is stored under."""
    return hashlib.sha256(token.encode()).hexdigest()


def _ident(kind: str, value: str) -> str:
    if not _IDENT.match(value):
        raise AccountError(f"{kind} {value!r} must be 2-63 characters of a-z, 0-9, '.', '_' or '-'")
    return value


class Accounts:
    """The store of firms, users and tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_tables(self) -> None:
        """Create the account tables if they do not exist."""
        self.db.run_script(SCHEMA)

    def create_firm(self, firm_id: str, name: str) -> None:
        """Create a firm (tenant)."""
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO coachlog_firms (firm_id, name, created_at) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (_ident("firm id", firm_id), name.strip() or firm_id, time.time()),
            )
            if cur.rowcount == 0:
                raise AccountError(f"firm {firm_id} already exists")

    def firm_exists(self, firm_id: str) -> bool:
        """Tell whether a firm exists."""
        with self.db.transaction() as cur:
            cur.execute("SELECT 1 FROM coachlog_firms WHERE firm_id = %s", (firm_id,))
            return cur.fetchone() is not None

    def create_user(self, firm_id: str, user_id: str, role: str, name: str = "") -> None:
        """Add a user with a role to a firm."""
        role_value = enum_value(Role, "role", role).value
        if role_value == Role.SYSTEM:
            raise AccountError("the system role is reserved for coachlog itself")
        if not self.firm_exists(firm_id):
            raise AccountError(f"no firm {firm_id}")
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO coachlog_users (firm_id, user_id, role, name, created_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (firm_id, _ident("user id", user_id), role_value, name.strip(), time.time()),
            )
            if cur.rowcount == 0:
                raise AccountError(f"user {user_id} already exists in firm {firm_id}")

    def forget_person(self, firm_id: str, user_id: str) -> None:
        """Blank a user's display name (their personal data here) when they are erased
        as a client; the user id stays, as the events name it."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE coachlog_users SET name = '' WHERE firm_id = %s AND user_id = %s",
                (firm_id, user_id),
            )

    def issue_token(self, firm_id: str, user_id: str) -> str:
        """Create a token for a user and return it; only its hash is kept."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT 1 FROM coachlog_users WHERE firm_id = %s AND user_id = %s",
                (firm_id, user_id),
            )
            if cur.fetchone() is None:
                raise AccountError(f"no user {user_id} in firm {firm_id}")
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            cur.execute(
                "INSERT INTO coachlog_tokens (token_hash, token_prefix, firm_id, user_id,"
                " created_at) VALUES (%s, %s, %s, %s, %s)",
                (token_hash(token), token[:10], firm_id, user_id, time.time()),
            )
        return token

    def revoke_token(self, token_or_prefix: str) -> int:
        """Revoke the token given whole, or every token with that 10-character prefix."""
        with self.db.transaction() as cur:
            if len(token_or_prefix) > 10:
                cur.execute(
                    "UPDATE coachlog_tokens SET revoked_at = %s"
                    " WHERE token_hash = %s AND revoked_at IS NULL",
                    (time.time(), token_hash(token_or_prefix)),
                )
            else:
                cur.execute(
                    "UPDATE coachlog_tokens SET revoked_at = %s"
                    " WHERE token_prefix = %s AND revoked_at IS NULL",
                    (time.time(), token_or_prefix),
                )
            return int(cur.rowcount)

    def authenticate(self, token: str) -> Principal | None:
        """Return who a bearer token belongs to, or None if it is unknown or revoked."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        return self.authenticate_hash(token_hash(token))

    def start_session(self, token: str, lifetime_seconds: float) -> str | None:
        """Open a browser session for a valid token; return its id (what the cookie
        carries; only its hash is kept), or None if the token is unknown or revoked."""
        if self.authenticate(token) is None:
            return None
        session_id = SESSION_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO coachlog_sessions (session_hash, token_hash, created_at,"
                " expires_at) VALUES (%s, %s, %s, %s)",
                (token_hash(session_id), token_hash(token), now, now + lifetime_seconds),
            )
        return session_id

    def end_session(self, session_id: str) -> None:
        """Sign a session out: its id opens nothing any more, wherever it was copied."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE coachlog_sessions SET ended_at = %s"
                " WHERE session_hash = %s AND ended_at IS NULL",
                (time.time(), token_hash(session_id)),
            )

    def authenticate_session(self, session_id: str) -> Principal | None:
        """Who a live session belongs to: not ended, not expired, its token not revoked."""
        if not session_id.startswith(SESSION_PREFIX) or len(session_id) > 200:
            return None
        row = self.db.read_row(  # every page does this: one round trip
            "SELECT u.firm_id, u.user_id, u.role FROM coachlog_sessions s"
            " JOIN coachlog_tokens t ON t.token_hash = s.token_hash"
            " JOIN coachlog_users u ON u.firm_id = t.firm_id AND u.user_id = t.user_id"
            " WHERE s.session_hash = %s AND s.ended_at IS NULL AND s.expires_at > %s"
            " AND t.revoked_at IS NULL",
            (token_hash(session_id), time.time()),
        )
        return None if row is None else Principal(firm_id=row[0], user_id=row[1], role=row[2])

    def authenticate_hash(self, digest: str) -> Principal | None:
        """Like ``authenticate``, from the token's SHA-256 hash."""
        row = self.db.read_row(  # every request does this: one round trip
            "SELECT u.firm_id, u.user_id, u.role FROM coachlog_tokens t"
            " JOIN coachlog_users u ON u.firm_id = t.firm_id AND u.user_id = t.user_id"
            " WHERE t.token_hash = %s AND t.revoked_at IS NULL",
            (digest,),
        )
        return None if row is None else Principal(firm_id=row[0], user_id=row[1], role=row[2])
