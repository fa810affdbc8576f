"""Section 2: the same single-event commands through HTTP (gunicorn), against raw INSERTs.

``coachlog serve --workers 2`` (gthread, 8 threads each; projections off, as in
production on PostgreSQL) on loopback; the load generator is http.client on keep-alive
connections, one thread per client, each on its own engagement, sending
``POST /engagements/{id}/celebrate-win`` with ``If-Match`` (the concurrency check). The
load generator shares the 2 cores with gunicorn and PostgreSQL. The raw INSERT baseline
is measured again in this section's own scratch database.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.commands import WIN, raw_insert_loads, record
from bench.common import (
    EXE,
    Child,
    Http,
    Load,
    Report,
    admin_token,
    child_env,
    closed_loop,
    free_port,
    interleaved,
    open_engagements,
    services,
    wait_http,
)

FIRM = "firm-http"
WORKERS = 2


def http_loads(
    port: int, token: str, svc: Any, clients_list: list[int], per_client: int, seconds: float
) -> dict[int, Load]:
    loads = {}
    for clients in clients_list:
        ids = open_engagements(svc, FIRM, clients)

        def make(i: int, ids: list[Any] = ids) -> Callable[[int], Any]:
            client = Http(port, token)
            state = {"version": 1}
            path = f"/engagements/{ids[i]}/celebrate-win"

            def work(n: int) -> None:
                status, headers, body = client.request(
                    "POST", path, {"win": WIN}, {"If-Match": f'"{state["version"]}"'}
                )
                if status != 200:
                    msg = f"HTTP {status}: {body!r}"[:300]
                    raise RuntimeError(msg)
                state["version"] = int(headers["etag"].strip('"'))

            return work

        loads[clients] = closed_loop(clients, per_client, seconds, make)
    return loads


def run(report: Report, admin_url: str, quick: bool, scratch: Any) -> None:
    rounds, per1, per8, secs = (2, 100, 20, 3.0) if quick else (4, 600, 120, 8.0)
    with scratch(admin_url, "http") as url:
        svc = services(url)
        token = admin_token(svc, FIRM)
        port = free_port()
        log = Path(tempfile.gettempdir()) / f"coachlog-bench-http-{port}.log"
        server = Child(
            [EXE, "serve", "--port", str(port), "--workers", str(WORKERS), "--no-projections"],
            child_env(url),
            log,
        )
        try:
            wait_http(port)
            http_loads(port, token, svc, [8], 10, 5.0)  # warm up every worker
            raw_insert_loads(url, [1], 20, 5.0)
            got = interleaved(
                rounds,
                {
                    "cmd1": lambda: http_loads(port, token, svc, [1], per1, secs)[1],
                    "raw1": lambda: raw_insert_loads(url, [1], per1, secs)[1],
                    "cmd8": lambda: http_loads(port, token, svc, [8], per8, secs)[8],
                    "raw8": lambda: raw_insert_loads(url, [8], per8, secs)[8],
                },
            )
        finally:
            server.stop()
            svc.close()
    cmd = {1: got["cmd1"], 8: got["cmd8"]}
    raw = {1: got["raw1"], 8: got["raw8"]}
    record(report, "2", f"HTTP (gunicorn, {WORKERS} workers × 8 threads)", cmd, raw)
    report.note(
        "2",
        f"gunicorn peak RSS (master and workers, max) {server.peak_rss_mib:.0f} MiB;"
        f" access log to {log}; {rounds} interleaved rounds per figure; each client on its"
        " own engagement, every POST with If-Match; the load generator runs on the same 2"
        " cores",
    )
