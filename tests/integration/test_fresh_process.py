"""Every read and command works in a process that did not write the store.

A store is seeded by one ``coachlog`` process; a *new* interpreter (``coachlog serve``)
then reads every engagement in every way the API offers (now, at a version, as
recorded, as occurred, history, dashboard), commands every one of them and erases a
client; more fresh processes verify the audit chains and rebuild the read model. Most
seeded engagements are past their first snapshot, so snapshots are read by a process
that never took one (their class's topic must be known at import, not only once a
process has taken a snapshot itself).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from coachlog.bootstrap import bootstrap
from coachlog.cli import _opened
from coachlog.settings import Settings
from tests.api.live import LIVE_FIRM, LiveServer, cli, start_server

ENGAGEMENTS = 8


@pytest.fixture(params=["sqlite", "postgres"])
def variables(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of an empty store on each backend."""
    if request.param == "sqlite":
        yield {"COACHLOG_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"fresh_{uuid.uuid4().hex[:12]}"
    try:
        yield {"COACHLOG_DATABASE_URL": url, "COACHLOG_DATABASE_SCHEMA": schema}
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def child_env(variables: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COACHLOG_")}
    env["COACHLOG_MASTER_KEY"] = os.environ["COACHLOG_MASTER_KEY"]
    env.update(variables)
    return env


def seeded(variables: dict[str, str]) -> tuple[list[str], int]:
    """The seeded engagement ids, and how many of them have a snapshot."""
    settings = Settings(
        database_url=variables["COACHLOG_DATABASE_URL"],
        database_schema=variables.get("COACHLOG_DATABASE_SCHEMA"),
    )
    with bootstrap(settings) as app:
        ids = [e.originator_id for e in _opened(app) if e.firm_id == LIVE_FIRM]
        assert app.snapshots is not None
        with_snapshot = sum(1 for i in ids if app.snapshots.recorder.select_events(i, limit=1))
    return [str(i) for i in ids], with_snapshot


def wait_projected(server: LiveServer, engagement_id: str, version: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        reply = server.request(
            "GET", f"/engagements/{engagement_id}/dashboard", headers=server.admin_auth
        )
        if reply.status == 200 and reply.body["data"]["version"] == version:
            return dict(reply.body["data"])
        assert reply.status in (200, 404), (reply.status, reply.body, server.log_text())
        assert time.monotonic() < deadline, (reply.body, server.log_text())
        time.sleep(0.2)


def test_a_fresh_server_reads_and_commands_every_engagement_another_process_seeded(
    variables: dict[str, str], tmp_path: Path
) -> None:
    env = child_env(variables)
    cli(env, "seed", "--engagements", str(ENGAGEMENTS), "--firm", LIVE_FIRM, "--today",
        "2026-10-01")  # fmt: skip
    ids, with_snapshot = seeded(variables)
    assert len(ids) == ENGAGEMENTS
    assert with_snapshot >= ENGAGEMENTS // 2, "the seed should snapshot most engagements"

    postgres = "COACHLOG_DATABASE_SCHEMA" in variables
    server = start_server(
        variables,
        tmp_path,
        workers=2 if postgres else None,
        extra=("--projections",) if postgres else (),
    )
    admin = server.admin_auth
    now = quote(datetime.now(UTC).isoformat())
    try:
        versions = {}
        for engagement_id in ids:
            path = f"/engagements/{engagement_id}"
            state = server.request("GET", path, headers=admin)
            assert state.status == 200, (state.body, server.log_text())
            version = int(state.body["version"])
            assert state.headers["etag"] == f'"{version}"'
            for query in (
                "version=1",
                f"version={max(1, version - 1)}",
                f"recorded_at={now}",
                f"occurred_at={now}",
            ):
                past = server.request("GET", f"{path}?{query}", headers=admin)
                assert past.status == 200, (query, past.body)
            history = server.request("GET", f"{path}/history", headers=admin)
            assert history.status == 200
            assert len(history.body["events"]) == version
            cost = server.request(
                "POST",
                f"{path}/record-cost",
                {"category": "admin", "amount": "12.50", "currency": state.body["currency"]},
                headers={**admin, "If-Match": f'"{version}"'},
            )
            assert cost.status == 200, (cost.body, server.log_text())
            assert cost.headers["etag"] == f'"{version + 1}"'
            versions[engagement_id] = version + 1

        for engagement_id, version in versions.items():
            dashboard = wait_projected(server, engagement_id, version)
            assert dashboard["money"]["costs"] != "0.00"

        erased = ids[0]
        reply = server.request("POST", f"/engagements/{erased}/erase-subject", {}, headers=admin)
        assert reply.status == 200, (reply.body, server.log_text())
        after = server.request("GET", f"/engagements/{erased}", headers=admin)
        assert after.status == 200
        assert after.body["erased"] is True
        assert after.body["client_name"] == ""
    finally:
        assert server.stop() == 0, server.log_text()

    # More fresh processes on the same store: the audit, an analyst's export and
    # dataset, the CLI's timeline, and a rebuild of the read model.
    assert "OK: every chain and anchor verifies." in cli(env, "audit", "verify")
    analyst = {**env, "COACHLOG_PSEUDONYM_KEY": "fresh-process-pseudonyms"}
    exported = cli(analyst, "export", "--format", "jsonl", "--output", str(tmp_path / "log.jsonl"))
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert f"Wrote {len(lines)} events" in exported
    assert len(lines) == sum(versions.values()) + 1  # the costs and the erasure included
    study = cli(analyst, "study", "--output", str(tmp_path / "study.csv"))
    assert f"Wrote {ENGAGEMENTS} engagements" in study
    timeline = cli(env, "history", "--firm", LIVE_FIRM, ids[-1])
    assert f"({versions[ids[-1]]} events)" in timeline
    rebuilt = cli(env, "projections", "rebuild", "progress")
    assert "No differences" in rebuilt, rebuilt
