"""Idempotency keys expire on schedule: every API process deletes expired ones."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from api.idempotency import TABLE
from coachlog.server import create_wsgi
from tests.api.conftest import opening_body


def _keys(services: object) -> int:
    with services.db.transaction() as cur:  # type: ignore[attr-defined]
        cur.execute(f"SELECT COUNT(*) FROM {TABLE}")
        return int(cur.fetchone()[0])


def test_the_server_purges_expired_keys_on_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COACHLOG_DATABASE_URL", f"sqlite:///{tmp_path / 'c.db'}")
    monkeypatch.setenv("COACHLOG_IDEMPOTENCY_PURGE_SECONDS", "1")
    app = create_wsgi()
    services = app.extensions["coachlog"]
    try:
        assert services.purging is not None
        assert services.purging.seconds == 1
        services.accounts.create_firm("firm-i", "firm-i")
        services.accounts.create_user("firm-i", "coach-1", "coach")
        headers = {"Authorization": f"Bearer {services.accounts.issue_token('firm-i', 'coach-1')}"}
        client = app.test_client()
        for key in ("open-1", "open-2"):
            sent = client.post(
                "/engagements",
                json=opening_body(client_id=f"client-{key}"),
                headers={**headers, "Idempotency-Key": key},
            )
            assert sent.status_code == 201, sent.get_json()
        assert _keys(services) == 2
        # One key's 24 hours are over; the other's are not.
        with services.db.transaction() as cur:
            cur.execute(
                f"UPDATE {TABLE} SET expires_at = %s WHERE expires_at = (SELECT MIN(expires_at)"
                f" FROM {TABLE})",
                (time.time() - 1,),
            )
        deadline = time.monotonic() + 10
        while _keys(services) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _keys(services) == 1
        assert services.purging.runs >= 1
    finally:
        services.close()
