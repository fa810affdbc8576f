"""Idempotency keys: a retried POST returns the first answer and writes nothing new.

A key is claimed (a row with no answer yet) before the command runs and completed with
the answer after it, in the same database as the events, per firm and per user, with an
expiry. The claim is made with a **random** correlation id (and, for an open, a random
engagement id) that the command then uses: a request that died between writing its
events and recording its answer is recognised on retry by finding that correlation id
in the engagement's history, and never applied twice. Nothing a client chooses — the
key, the body, a header — determines an id, so no one can predict or take the id of
another user's request.

Keys are stored only as keyed hashes (HMAC-SHA256 under a secret derived from the
master key, never stored): a key is often made of personal words ("open-grace-1"), and
the table keeps no trace of them. Keys are per user: the same key sent by two users of
a firm is two keys, so a replay only ever returns the caller's own earlier answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from projections.database import Cursor, Database

log = logging.getLogger("coachlog.idempotency")

#: What the secret of the key hashes is derived for (``MasterKey.derive``).
SECRET_PURPOSE = "idempotency keys"
#: How long a key is remembered.
KEY_TTL_SECONDS = 24 * 60 * 60
#: After this long an unanswered claim is presumed dead and may be taken over.
CLAIM_TIMEOUT_SECONDS = 30

TABLE = "coachlog_idempotency_keys"
SCHEMA = [
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        firm_id TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        engagement_id TEXT,
        claimed_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        status INTEGER,
        headers TEXT,
        body TEXT,
        PRIMARY KEY (firm_id, key_hash)
    )""",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_expiry ON {TABLE} (expires_at)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_engagement ON {TABLE} (engagement_id)",
]
#: The table of earlier versions, which kept keys in clear (migrated, then dropped).
_LEGACY = "coachlog_idempotency"
_LEGACY_NAMESPACE = uuid.UUID("6f1c1f0e-5d8a-4b8e-9a43-2f1f3b6c0d11")
_LEGACY_PRINT = "sha256:"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key, with the ids the request runs under."""

    state: str  # "new" | "replay" | "mismatch" | "in_flight" | "abandoned"
    correlation_id: UUID
    engagement_id: UUID | None = None
    response: StoredResponse | None = None


class IdempotencyStore:
    """Durable idempotency keys, per firm and user, stored hashed."""

    def __init__(self, db: Database, secret: bytes) -> None:
        """``secret`` keys the hashes of keys and requests (derive it from the master
        key: ``MasterKey.derive``); it is never stored."""
        if len(secret) < 16:
            msg = "the idempotency secret must be at least 16 bytes"
            raise ValueError(msg)
        self.db = db
        self._secret = secret

    def create_tables(self) -> None:
        """Create the table if it does not exist, and migrate keys kept in clear."""
        self.db.run_script(SCHEMA)
        self._migrate_legacy()

    # -- hashing --------------------------------------------------------------------------

    def _mac(self, *parts: bytes) -> str:
        digest = hmac.new(self._secret, digestmod=hashlib.sha256)
        for part in parts:
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.hexdigest()

    def key_hash(self, user_id: str, key: str) -> str:
        """How a user's key is stored: a keyed hash, per user."""
        return self._mac(b"key", user_id.encode(), key.encode())

    def fingerprint(self, method: str, path: str, body: bytes) -> str:
        """A keyed digest of what was asked, to tell a retry from a different request."""
        return self._mac(b"request", method.encode(), path.encode(), body)

    # -- claims ---------------------------------------------------------------------------

    def claim(
        self,
        firm_id: str,
        user_id: str,
        key: str,
        print_: str,
        legacy_print: str,
        engagement_id: UUID | None,
    ) -> Claim:
        """Claim ``key`` for a request, or say why it cannot be run afresh.

        A new claim gets a random correlation id and, without ``engagement_id`` (an
        open), a random engagement id; a later attempt gets the ones stored with it.
        ``legacy_print`` is the request's digest as versions before keyed hashes made it.
        """
        now = time.time()
        expires = now + KEY_TTL_SECONDS
        hashed = self.key_hash(user_id, key)
        correlation_id = uuid.uuid4()
        made = engagement_id or uuid.uuid4()
        with self.db.transaction() as cur:
            cur.execute(
                f"DELETE FROM {TABLE} WHERE firm_id = %s AND key_hash = %s AND expires_at < %s",
                (firm_id, hashed, now),
            )
            cur.execute(
                f"INSERT INTO {TABLE} (firm_id, key_hash, fingerprint, correlation_id,"
                " engagement_id, claimed_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (firm_id, hashed, print_, str(correlation_id), str(made), now, expires),
            )
            if cur.rowcount == 1:
                return Claim("new", correlation_id, made)
            cur.execute(
                "SELECT fingerprint, correlation_id, engagement_id, claimed_at, status, headers,"
                f" body FROM {TABLE} WHERE firm_id = %s AND key_hash = %s",
                (firm_id, hashed),
            )
            row = cur.fetchone()
        if row is None:  # expired and removed by a concurrent claim: try once more
            return self.claim(firm_id, user_id, key, print_, legacy_print, engagement_id)
        stored_print, stored_correlation, stored_target, claimed_at, status, headers, body = row
        correlation_id = UUID(str(stored_correlation))
        target = UUID(str(stored_target)) if stored_target else engagement_id
        if stored_print not in (print_, _LEGACY_PRINT + legacy_print):
            return Claim("mismatch", correlation_id, target)
        if status is not None:
            stored = StoredResponse(int(status), json.loads(headers), json.loads(body))
            return Claim("replay", correlation_id, target, stored)
        if now - float(claimed_at) < CLAIM_TIMEOUT_SECONDS:
            return Claim("in_flight", correlation_id, target)
        with self.db.transaction() as cur:
            cur.execute(
                f"UPDATE {TABLE} SET claimed_at = %s"
                " WHERE firm_id = %s AND key_hash = %s AND status IS NULL AND claimed_at = %s",
                (now, firm_id, hashed, claimed_at),
            )
            taken = cur.rowcount == 1
        return Claim("abandoned" if taken else "in_flight", correlation_id, target)

    def complete(self, firm_id: str, user_id: str, key: str, response: StoredResponse) -> None:
        """Record the answer to a claimed key."""
        with self.db.transaction() as cur:
            cur.execute(
                f"UPDATE {TABLE} SET status = %s, headers = %s, body = %s"
                " WHERE firm_id = %s AND key_hash = %s",
                (
                    response.status,
                    json.dumps(response.headers),
                    json.dumps(response.body),
                    firm_id,
                    self.key_hash(user_id, key),
                ),
            )

    def release(self, firm_id: str, user_id: str, key: str) -> None:
        """Forget an unanswered claim (the request failed before writing anything)."""
        with self.db.transaction() as cur:
            cur.execute(
                f"DELETE FROM {TABLE} WHERE firm_id = %s AND key_hash = %s AND status IS NULL",
                (firm_id, self.key_hash(user_id, key)),
            )

    def purge_expired(self) -> int:
        """Delete expired keys; return how many."""
        with self.db.transaction() as cur:
            cur.execute(f"DELETE FROM {TABLE} WHERE expires_at < %s", (time.time(),))
            return int(cur.rowcount)

    # -- migration ------------------------------------------------------------------------

    def _migrate_legacy(self) -> None:
        """Move keys from the table that kept them in clear, then drop that table.

        Their correlation ids were derived from the key; they are kept, so that a
        request that died before the upgrade is still recognised on retry.
        """
        if not self.db.table_exists(_LEGACY):
            return
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT firm_id, idem_key, fingerprint, claimed_at, expires_at, status, headers,"
                f" body FROM {_LEGACY}"
            )
            rows = cur.fetchall()
            for firm_id, idem_key, fingerprint, claimed, expires, status, headers, body in rows:
                self._migrate_row(
                    cur, firm_id, idem_key, fingerprint, claimed, expires, status, headers, body
                )
            cur.execute(f"DROP TABLE {_LEGACY}")
        log.info("migrated %d idempotency keys to keyed hashes", len(rows))

    def _migrate_row(self, cur: Cursor, firm_id: str, idem_key: str, *values: Any) -> None:
        fingerprint, claimed, expires, status, headers, body = values
        user_id, _, key = str(idem_key).partition(":")
        derived = uuid.uuid5(_LEGACY_NAMESPACE, f"{firm_id}\x00{idem_key}")
        cur.execute(
            f"INSERT INTO {TABLE} (firm_id, key_hash, fingerprint, correlation_id,"
            " engagement_id, claimed_at, expires_at, status, headers, body)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                firm_id,
                self.key_hash(user_id, key),
                _LEGACY_PRINT + str(fingerprint),
                str(derived),
                str(derived),
                claimed,
                expires,
                status,
                headers,
                body,
            ),
        )


def legacy_fingerprint(method: str, path: str, body: bytes) -> str:
    """A request's digest as versions before keyed hashes computed it (to recognise the
    retry of a request whose key was migrated)."""
    digest = hashlib.sha256()
    for part in (method.encode(), b"\x00", path.encode(), b"\x00", body):
        digest.update(part)
    return digest.hexdigest()
