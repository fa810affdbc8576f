"""Idempotency keys: a retried POST returns the first answer and writes nothing new.

A key is claimed (a row with no response yet) before the command runs and completed
with the response after it, in the same database as the events, per firm and per user
(:func:`scoped_key`), with an expiry. The command's correlation id is derived from the
scoped key, so a request that died between writing its events and recording its answer
is recognised on retry by finding its correlation id in the engagement's history, and
never applied twice.

Keys are per user: the same key sent by two users of a firm is two keys, so a replay
only ever returns the caller's own earlier answer (and two users' "open" requests with
the same key never name the same engagement).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from projections.database import Database

#: How long a key is remembered.
KEY_TTL_SECONDS = 24 * 60 * 60
#: After this long an unanswered claim is presumed dead and may be taken over.
CLAIM_TIMEOUT_SECONDS = 30
_NAMESPACE = uuid.UUID("6f1c1f0e-5d8a-4b8e-9a43-2f1f3b6c0d11")

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS coachlog_idempotency (
        firm_id TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        claimed_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        status INTEGER,
        headers TEXT,
        body TEXT,
        PRIMARY KEY (firm_id, idem_key)
    )""",
    """CREATE INDEX IF NOT EXISTS coachlog_idempotency_expiry
        ON coachlog_idempotency (expires_at)""",
]


def scoped_key(user_id: str, key: str) -> str:
    """The key as stored: the caller's own (user ids never contain ':')."""
    return f"{user_id}:{key}"


def correlation_for(firm_id: str, key: str) -> uuid.UUID:
    """The correlation id every event of the keyed request carries."""
    return uuid.uuid5(_NAMESPACE, f"{firm_id}\x00{key}")


def fingerprint(method: str, path: str, body: bytes) -> str:
    """A digest of what was asked, to tell a retry from a different request."""
    digest = hashlib.sha256()
    for part in (method.encode(), b"\x00", path.encode(), b"\x00", body):
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key."""

    state: str  # "new" | "replay" | "mismatch" | "in_flight" | "abandoned"
    response: StoredResponse | None = None


class IdempotencyStore:
    """Durable idempotency keys, per firm."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_tables(self) -> None:
        """Create the table if it does not exist."""
        self.db.run_script(SCHEMA)

    def claim(self, firm_id: str, key: str, print_: str) -> Claim:
        """Claim ``key`` for a request, or say why it cannot be run afresh."""
        now = time.time()
        with self.db.transaction() as cur:
            cur.execute(
                "DELETE FROM coachlog_idempotency"
                " WHERE firm_id = %s AND idem_key = %s AND expires_at < %s",
                (firm_id, key, now),
            )
            cur.execute(
                "INSERT INTO coachlog_idempotency (firm_id, idem_key, fingerprint, claimed_at,"
                " expires_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (firm_id, key, print_, now, now + KEY_TTL_SECONDS),
            )
            if cur.rowcount == 1:
                return Claim("new")
            cur.execute(
                "SELECT fingerprint, claimed_at, status, headers, body FROM coachlog_idempotency"
                " WHERE firm_id = %s AND idem_key = %s",
                (firm_id, key),
            )
            row = cur.fetchone()
        if row is None:  # expired and removed by a concurrent claim: try once more
            return self.claim(firm_id, key, print_)
        stored_print, claimed_at, status, headers, body = row
        if stored_print != print_:
            return Claim("mismatch")
        if status is not None:
            return Claim(
                "replay", StoredResponse(int(status), json.loads(headers), json.loads(body))
            )
        if now - float(claimed_at) < CLAIM_TIMEOUT_SECONDS:
            return Claim("in_flight")
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE coachlog_idempotency SET claimed_at = %s"
                " WHERE firm_id = %s AND idem_key = %s AND status IS NULL AND claimed_at = %s",
                (now, firm_id, key, claimed_at),
            )
            taken = cur.rowcount == 1
        return Claim("abandoned") if taken else Claim("in_flight")

    def complete(self, firm_id: str, key: str, response: StoredResponse) -> None:
        """Record the answer to a claimed key."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE coachlog_idempotency SET status = %s, headers = %s, body = %s"
                " WHERE firm_id = %s AND idem_key = %s",
                (
                    response.status,
                    json.dumps(response.headers),
                    json.dumps(response.body),
                    firm_id,
                    key,
                ),
            )

    def release(self, firm_id: str, key: str) -> None:
        """Forget an unanswered claim (the request failed before writing anything)."""
        with self.db.transaction() as cur:
            cur.execute(
                "DELETE FROM coachlog_idempotency"
                " WHERE firm_id = %s AND idem_key = %s AND status IS NULL",
                (firm_id, key),
            )

    def purge_expired(self) -> int:
        """Delete expired keys; return how many."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM coachlog_idempotency WHERE expires_at < %s", (time.time(),))
            return int(cur.rowcount)
