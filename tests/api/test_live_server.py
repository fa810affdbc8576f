"""`coachlog serve` as a real process, over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.api.conftest import opening_body
from tests.api.live import LIVE_COACH, LiveServer, Reply, start_server

WELLBEING = {"confidence": 6, "stress": 4, "motivation": 8, "imposter_feelings": 5}
WRITERS = 50


def _open(server: LiveServer) -> str:
    reply = server.request("POST", "/engagements", opening_body(coach_id=LIVE_COACH))
    assert reply.status == 201, reply.body
    assert reply.headers["etag"] == '"1"'
    engagement_id: str = reply.body["engagement_id"]
    assert reply.headers["location"] == f"/engagements/{engagement_id}"
    return engagement_id


def test_probes_docs_and_a_first_engagement(live_server: LiveServer) -> None:
    assert live_server.request("GET", "/healthz", headers={"Authorization": ""}).status == 200
    assert live_server.request("GET", "/readyz", headers={"Authorization": ""}).status == 200
    docs = live_server.request("GET", "/docs", headers={"Authorization": ""})
    assert docs.status == 200
    engagement_id = _open(live_server)
    state = live_server.request("GET", f"/engagements/{engagement_id}")
    assert state.status == 200
    assert state.body["version"] == 1
    assert state.body["coach_id"] == LIVE_COACH
    history = live_server.request("GET", f"/engagements/{engagement_id}/history")
    assert history.body["events"][0]["metadata"]["actor_id"] == "coach-live"
    unauthorised = live_server.request(
        "GET", f"/engagements/{engagement_id}", headers={"Authorization": "Bearer cl_nope"}
    )
    assert unauthorised.status == 401
    assert unauthorised.headers["content-type"] == "application/problem+json"


def test_fifty_concurrent_conflicting_commands_lose_no_update(live_server: LiveServer) -> None:
    engagement_id = _open(live_server)
    path = f"/engagements/{engagement_id}/check-wellbeing"
    read_barrier = threading.Barrier(WRITERS)
    write_barrier = threading.Barrier(WRITERS)
    replies: list[tuple[bool, int, Reply]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def writer(number: int) -> None:
        try:
            read_barrier.wait()
            seen = live_server.request("GET", f"/engagements/{engagement_id}")
            version = int(seen.headers["etag"].strip('"'))
            conditional = number % 2 == 0
            headers = {"If-Match": f'"{version}"'} if conditional else {}
            write_barrier.wait()
            reply = live_server.request("POST", path, WELLBEING, headers)
            with lock:
                replies.append((conditional, version, reply))
        except BaseException as error:  # reported below, with the server log
            with lock:
                failures.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, (failures, live_server.log_text())
    assert len(replies) == WRITERS

    won: list[int] = []
    for conditional, read_version, reply in replies:
        if reply.status == 200:
            won.append(reply.body["version"])
            assert reply.headers["etag"] == f'"{reply.body["version"]}"'
            if conditional:
                assert reply.body["version"] == read_version + 1
            continue
        assert reply.status in (409, 412), (reply.status, reply.body, live_server.log_text())
        assert reply.headers["content-type"] == "application/problem+json"
        assert isinstance(reply.body["current_version"], int)
        assert reply.body["current_version"] >= 1
        if reply.status == 412:
            assert conditional
            assert reply.body["code"] == "stale_version"
        else:
            assert reply.body["code"] == "concurrency_conflict"
    # Exactly one success per version, nothing lost, nothing written twice.
    assert won
    assert sorted(won) == list(range(2, 2 + len(won)))
    state = live_server.request("GET", f"/engagements/{engagement_id}")
    assert state.body["version"] == 1 + len(won)
    assert len(state.body["wellbeing"]) == len(won)
    history = live_server.request("GET", f"/engagements/{engagement_id}/history").body["events"]
    assert len(history) == state.body["version"]
    assert [e["version"] for e in history] == list(range(1, len(history) + 1))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigterm_stops_the_server_cleanly(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    schema = f"stop_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        variables = {"COACHLOG_DATABASE_URL": f"sqlite:///{tmp_path / 'stop.db'}"}
        workers = None
    else:
        url = request.getfixturevalue("postgres_url")
        variables = {"COACHLOG_DATABASE_URL": url, "COACHLOG_DATABASE_SCHEMA": schema}
        workers = 2
    server = start_server(variables, tmp_path, workers=workers)
    try:
        _open(server)
    finally:
        code = server.stop()
        if backend == "postgres":
            with psycopg.connect(variables["COACHLOG_DATABASE_URL"], autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    log = server.log_text()
    assert code == 0, log
    assert "Shutting down" in log or "Handling signal: term" in log, log
    assert "Traceback" not in log, log
