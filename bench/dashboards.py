"""Section 6: dashboard queries at 10,000 engagements and ≥ 500k events, against a PK SELECT.

The shared log is grown to 10,000 engagements of one firm (seeded timelines, ~90 events
each), the live read model caught up in process, and then every ``Dashboards`` query is
timed in process (no HTTP) on random engagements and coaches of that firm. The baseline
in the same run is a primary-key SELECT of one progress document with psycopg.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.common import BIG_FIRM, Check, GrowingLog, Report, percentile, say
from projections.runner import ProjectionRunner


def sample(fn: Callable[[int], Any], count: int, seconds: float) -> list[float]:
    fn(0)  # warm
    out: list[float] = []
    stop = time.perf_counter() + seconds
    for n in range(count):
        if time.perf_counter() > stop:
            break
        t0 = time.perf_counter()
        fn(n)
        out.append(time.perf_counter() - t0)
    return out


def run(report: Report, quick: bool, log: GrowingLog, engagements: int, min_events: int) -> None:
    log.grow_to_engagements(engagements)
    log.grow_to_events(min_events)
    svc = log.svc
    t0 = time.perf_counter()
    folded = ProjectionRunner(svc.engagements, svc.progress, batch_size=1000).catch_up()
    say(f"  read model caught up: {folded:,} events in {time.perf_counter() - t0:.1f}s")
    dash = svc.dashboards  # as the API wires them (one statement per engagement answer)
    table = svc.progress.table(svc.progress.live_generation())
    with psycopg.connect(log.url) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                f"SELECT engagement_id FROM {table} WHERE firm_id = %s", (BIG_FIRM,)
            )
        ]
        sponsored = [
            r[0]
            for r in conn.execute(
                f"SELECT engagement_id FROM {table} WHERE firm_id = %s AND sponsor_id IS NOT NULL",
                (BIG_FIRM,),
            )
        ]
        coaches = [
            r[0]
            for r in conn.execute(
                f"SELECT DISTINCT coach_id FROM {table} WHERE firm_id = %s", (BIG_FIRM,)
            )
        ]
    rng = random.Random(1)
    now = datetime.now(UTC)
    n = len(ids)
    scale = 0.2 if quick else 1.0

    with psycopg.connect(log.url, autocommit=True) as conn:

        def pk(_: int) -> None:
            conn.execute(
                f"SELECT doc FROM {table} WHERE engagement_id = %s",
                (rng.choice(ids),),
                prepare=True,
            ).fetchone()

        baseline = sample(pk, 2000, 20 * scale)

    queries: list[tuple[str, Callable[[int], Any], int, float]] = [
        (
            "engagement dashboard",
            lambda _: dash.engagement(BIG_FIRM, rng.choice(ids), now),
            1000,
            20,
        ),
        ("sponsor report", lambda _: dash.sponsor(BIG_FIRM, rng.choice(sponsored), now), 500, 15),
        ("list, first page of 50 (newest)", lambda _: dash.list(BIG_FIRM, now), 300, 20),
        (
            "list, off-track, sorted by ROI",
            lambda _: dash.list(BIG_FIRM, now, off_track=True, sort="roi_pct"),
            200,
            20,
        ),
        (
            f"coach portfolio (~{n // max(1, len(coaches)):,} engagements)",
            lambda _: dash.coach(BIG_FIRM, rng.choice(coaches), now),
            40,
            40,
        ),
        (f"firm overview ({n:,} engagements)", lambda _: dash.firm(BIG_FIRM, now), 15, 60),
        ("firm ROI by segment", lambda _: dash.roi(BIG_FIRM, "segment"), 15, 40),
    ]
    bp99 = percentile(baseline, 99)
    rows = [
        [
            "primary-key SELECT (psycopg)",
            f"{len(baseline)}",
            f"{percentile(baseline, 50) * 1000:.2f}",
            f"{bp99 * 1000:.2f}",
            "1.0",
        ]
    ]
    for name, fn, count, secs in queries:
        lat = sample(fn, max(5, int(count * scale)), secs * scale)
        p99 = percentile(lat, 99)
        rows.append(
            [
                name,
                f"{len(lat)}",
                f"{percentile(lat, 50) * 1000:.2f}",
                f"{p99 * 1000:.2f}",
                f"{p99 / bp99:,.1f}",
            ]
        )
        report.check(
            Check(
                "6",
                name,
                f"p50 {percentile(lat, 50) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms",
                f"PK SELECT p99 {bp99 * 1000:.2f} ms",
                p99 / bp99,
                "p99 ≤ 3 × PK p99",
                p99 <= 3 * bp99,
            )
        )
    report.table("6", ["query", "samples", "p50 ms", "p99 ms", "p99 ÷ PK p99"], rows)
    report.note("6", f"{n:,} engagements, {log.events:,} events in the log, firm {BIG_FIRM}")
