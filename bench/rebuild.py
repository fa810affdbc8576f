"""Section 3: rebuild of the read models from the whole log, against a raw keyset SELECT.

``projections.rebuild.rebuild`` on the live store (the shared log, ≥ 200k events): fold
every event into a new generation, bring the live one to the same position, compare
document by document, switch. Timed as a whole, and the fold phase alone (until the last
batch). Baselines in the same run: a keyset SELECT of the same log in pages of 1,000 with
psycopg (the read rate the target is against), and the runner's own read + decode of
every event (no fold, no write) to show where the time goes.
"""

from __future__ import annotations

import time

from bench.common import Check, GrowingLog, Report, raw_keyset_read
from projections.rebuild import rebuild
from projections.runner import ProjectionRunner


def decode_only(log: GrowingLog, page: int = 1000) -> tuple[int, float]:
    runner = ProjectionRunner(log.svc.engagements, log.svc.progress, batch_size=page)
    after, count = 0, 0
    t0 = time.perf_counter()
    while True:
        batch = runner.read_batch(after, page)
        if not batch:
            break
        count += len(batch)
        after = batch[-1].position
    return count, time.perf_counter() - t0


def run(report: Report, quick: bool, log: GrowingLog, min_events: int) -> None:
    log.grow_to_events(min_events)
    svc = log.svc
    ProjectionRunner(svc.engagements, svc.progress, batch_size=1000).catch_up()  # live at head
    marks: list[float] = []
    t0 = time.perf_counter()
    result = rebuild(
        svc.engagements, svc.progress, progress=lambda n: marks.append(time.perf_counter())
    )
    total = time.perf_counter() - t0
    fold = (marks[-1] - t0) if marks else total
    events = result.events_folded
    raw_rows, raw_s = raw_keyset_read(log.url)
    dec_rows, dec_s = decode_only(log)
    rate, fold_rate, raw_rate = events / total, events / fold, raw_rows / raw_s
    report.table(
        "3",
        ["what", "events", "seconds", "events/s", "÷ raw read"],
        [
            [
                "rebuild (fold, compare, switch)",
                f"{events:,}",
                f"{total:.1f}",
                f"{rate:,.0f}",
                f"{rate / raw_rate:.3f}",
            ],
            [
                "  of which fold phase",
                f"{events:,}",
                f"{fold:.1f}",
                f"{fold_rate:,.0f}",
                f"{fold_rate / raw_rate:.3f}",
            ],
            [
                "read + decode only (runner.read_batch)",
                f"{dec_rows:,}",
                f"{dec_s:.1f}",
                f"{dec_rows / dec_s:,.0f}",
                f"{dec_rows / dec_s / raw_rate:.3f}",
            ],
            [
                "raw keyset SELECT (psycopg, pages of 1,000)",
                f"{raw_rows:,}",
                f"{raw_s:.2f}",
                f"{raw_rate:,.0f}",
                "1.000",
            ],
        ],
    )
    report.note(
        "3",
        f"rebuild switched generation {result.old_generation} → {result.new_generation},"
        f" {len(result.differences)} differences found by the compare",
    )
    ratio = rate / raw_rate
    report.check(
        Check(
            "3",
            f"rebuild of {events:,} events",
            f"{rate:,.0f} events/s",
            f"raw keyset SELECT {raw_rate:,.0f} rows/s",
            ratio,
            "≥ 0.25",
            ratio >= 0.25,
        )
    )
