"""Section 5: export of the whole log to Parquet, against COPY (SELECT …) TO STDOUT.

``workers.export.export`` in process, pseudonymized (the default form of ``coachlog
export``), to a Parquet file, on the shared log. Baselines in the same run: COPY of the
same rows (the event table's columns, in log order) to STDOUT with psycopg — the rate
the target is against — and the export's own read + decode step alone.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import psycopg

from bench.common import PSEUDONYM_KEY, Check, GrowingLog, Report
from bench.rebuild import decode_only
from workers.export import Pseudonymizer, Slice, export


def copy_out(url: str) -> tuple[int, float]:
    rows = 0
    t0 = time.perf_counter()
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        cur.copy(
            "COPY (SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM engagements_events ORDER BY notification_id) TO STDOUT"
        ) as copy,
    ):
        for _ in copy.rows():
            rows += 1
    return rows, time.perf_counter() - t0


def copy_bytes(url: str) -> tuple[int, float]:
    size = 0
    t0 = time.perf_counter()
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        cur.copy(
            "COPY (SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM engagements_events ORDER BY notification_id) TO STDOUT"
        ) as copy,
    ):
        for block in copy:
            size += len(block)
    return size, time.perf_counter() - t0


def run(report: Report, quick: bool, log: GrowingLog, min_events: int) -> None:
    log.grow_to_events(min_events)
    events = log.events
    out = Path(tempfile.gettempdir()) / f"coachlog-bench-export-{events}.parquet"
    t0 = time.perf_counter()
    with out.open("wb") as f:
        written = export(
            log.svc.engagements, f, "parquet", Slice(), Pseudonymizer(PSEUDONYM_KEY.encode())
        )
    export_s = time.perf_counter() - t0
    mib = out.stat().st_size / 2**20
    out.unlink()
    size, copy_s = copy_bytes(log.url)
    parsed_rows, parsed_s = copy_out(log.url)
    dec_rows, dec_s = decode_only(log)
    rate, copy_rate = written / export_s, events / copy_s
    report.table(
        "5",
        ["what", "events", "seconds", "events/s", "÷ COPY"],
        [
            [
                "export → Parquet (pseudonymized)",
                f"{written:,}",
                f"{export_s:.1f}",
                f"{rate:,.0f}",
                f"{rate / copy_rate:.3f}",
            ],
            [
                "read + decode only (mapper)",
                f"{dec_rows:,}",
                f"{dec_s:.1f}",
                f"{dec_rows / dec_s:,.0f}",
                f"{dec_rows / dec_s / copy_rate:.3f}",
            ],
            [
                "COPY … TO STDOUT, rows parsed (psycopg)",
                f"{parsed_rows:,}",
                f"{parsed_s:.2f}",
                f"{parsed_rows / parsed_s:,.0f}",
                f"{parsed_rows / parsed_s / copy_rate:.3f}",
            ],
            [
                "COPY … TO STDOUT, raw blocks",
                f"{events:,}",
                f"{copy_s:.2f}",
                f"{copy_rate:,.0f}",
                "1.000",
            ],
        ],
    )
    report.note("5", f"Parquet file {mib:.1f} MiB; COPY text {size / 2**20:.1f} MiB")
    ratio = rate / copy_rate
    report.check(
        Check(
            "5",
            f"export of {written:,} events to Parquet",
            f"{rate:,.0f} events/s",
            f"COPY TO STDOUT {copy_rate:,.0f} rows/s",
            ratio,
            "≥ 0.5",
            ratio >= 0.5,
        )
    )
