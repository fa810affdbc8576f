"""Section 1: single-event commands through the application service, against raw INSERTs.

Each command is ``Engagements.execute(ctx, CelebrateWin(...), expected_version=v)``: load
the engagement (snapshot + events), check the expected version, run the rule, save one
event (eventsourcing's insert: table lock, NOTIFY, INSERT, commit). 8 clients are 8
threads, each on its own engagement (no contention: the concurrency check passes; what
serialises them is the store, not the domain). The baseline is psycopg autocommit
INSERTs of rows of the same shape and size into a copy of the events table, 1 and 8
clients, in the same run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from bench.common import (
    Check,
    Load,
    Report,
    closed_loop,
    interleaved,
    open_engagements,
    say,
    services,
)
from domain.commands import CelebrateWin
from domain.context import CommandContext

FIRM = "firm-cmd"
WIN = "Asked for the stretch assignment and got it"


def raw_insert_loads(url: str, clients_list: list[int], per_client: int, seconds: float) -> dict:
    """Autocommit single-row INSERTs into a copy of the events table, by client count."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw_events"
            " (LIKE engagements_events INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
        sample = conn.execute(
            "SELECT topic, state FROM engagements_events WHERE topic LIKE %s"
            " ORDER BY notification_id DESC LIMIT 1",
            ("%WinCelebrated%",),
        ).fetchone()
    topic, state = sample if sample else ("coachlog.WinCelebrated", b"x" * 600)
    loads = {}
    for clients in clients_list:

        def make(i: int) -> Callable[[int], Any]:
            conn = psycopg.connect(url, autocommit=True)
            originator = uuid.uuid4()
            sql = (
                "INSERT INTO bench_raw_events (originator_id, originator_version, topic, state)"
                " VALUES (%s, %s, %s, %s)"
            )

            def work(n: int) -> None:
                conn.execute(sql, (originator, n + 1, topic, state), prepare=True)

            return work

        loads[clients] = closed_loop(clients, per_client, seconds, make)
    return loads


def command_loads(
    svc: Any, clients_list: list[int], per_client: int, seconds: float
) -> dict[int, Load]:
    app = svc.engagements
    loads = {}
    for clients in clients_list:
        ids = open_engagements(svc, FIRM, clients)

        def make(i: int, ids: list[Any] = ids) -> Callable[[int], Any]:
            ctx = CommandContext(actor_id="coach-bench", actor_role="coach", firm_id=FIRM)
            state = {"version": 1}
            eid = ids[i]

            def work(n: int) -> None:
                result = app.execute(
                    ctx, CelebrateWin(engagement_id=eid, win=WIN), expected_version=state["version"]
                )
                state["version"] = result.version

            return work

        loads[clients] = closed_loop(clients, per_client, seconds, make)
    return loads


def run(report: Report, admin_url: str, quick: bool, scratch: Any) -> None:
    rounds, per1, per8, secs = (2, 150, 30, 3.0) if quick else (4, 1000, 200, 8.0)
    with scratch(admin_url, "cmd") as url:
        svc = services(url)
        try:
            # Warm up (connections, prepared statements, one event of the right shape).
            command_loads(svc, [1], 20, 5.0)
            raw_insert_loads(url, [1], 20, 5.0)
            got = interleaved(
                rounds,
                {
                    "cmd1": lambda: command_loads(svc, [1], per1, secs)[1],
                    "raw1": lambda: raw_insert_loads(url, [1], per1, secs)[1],
                    "cmd8": lambda: command_loads(svc, [8], per8, secs)[8],
                    "raw8": lambda: raw_insert_loads(url, [8], per8, secs)[8],
                },
            )
        finally:
            svc.close()
    cmd = {1: got["cmd1"], 8: got["cmd8"]}
    raw = {1: got["raw1"], 8: got["raw8"]}
    record(report, "1", "application service", cmd, raw)
    report.note(
        "1",
        f"{rounds} interleaved rounds per figure (command, raw, command × 8, raw × 8, …);"
        " each of the 8 clients works on its own engagement (no contention), every command"
        " passes expected_version",
    )


def record(
    report: Report, section: str, label: str, cmd: dict[int, Load], raw: dict[int, Load]
) -> None:
    rows = []
    for clients in (1, 8):
        for name, load in ((label, cmd[clients]), ("raw INSERT (autocommit)", raw[clients])):
            rows.append(
                [
                    name,
                    str(clients),
                    f"{load.ops:,}",
                    f"{load.rate:,.0f}",
                    f"{load.p(50) * 1000:.2f}",
                    f"{load.p(99) * 1000:.2f}",
                    str(load.errors),
                ]
            )
    report.table(
        section,
        ["path", "clients", "events", "events/s", "p50 ms", "p99 ms", "errors"],
        rows,
    )
    r1 = cmd[1].rate / raw[1].rate
    report.check(
        Check(
            section,
            f"{label}, 1 client",
            f"{cmd[1].rate:,.0f} events/s",
            f"raw INSERT 1 client {raw[1].rate:,.0f}/s",
            r1,
            "≥ 0.7",
            r1 >= 0.7,
        )
    )
    r8 = cmd[8].rate / raw[1].rate
    report.check(
        Check(
            section,
            f"{label}, 8 clients",
            f"{cmd[8].rate:,.0f} events/s",
            f"raw INSERT 1 client {raw[1].rate:,.0f}/s",
            r8,
            "≥ 2 (group commit)",
            r8 >= 2,
        )
    )
    say(f"  raw INSERT 8 clients: {raw[8].describe()}")
