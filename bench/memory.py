"""Section 7: peak memory of the projector and of export as the log grows.

At each size (100k, 200k, 400k events) of the shared log: the live read model is
emptied and ``coachlog project --source store`` is started as a child process; once its
tracking reaches the head it is stopped with SIGTERM and its peak RSS read with wait4.
Then ``coachlog export --format parquet`` (pseudonymized) runs to completion the same
way. The reference is the peak RSS of ``coachlog --help`` (interpreter + imports).
"Flat" means: peak RSS at the largest size ≤ 1.25 × the peak RSS at the smallest.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import EXE, Check, Child, GrowingLog, Report, child_env, say


def reset_read_model(log: GrowingLog) -> None:
    store = log.svc.progress
    generation = store.live_generation()
    with store.db.transaction() as cur:
        cur.execute(f"DELETE FROM {store.table(generation)}")
        cur.execute(
            "UPDATE rm_tracking SET position = 0, recorded_at = NULL WHERE name = %s",
            (store.tracking_name(generation),),
        )


def project_catch_up(log: GrowingLog, timeout: float) -> tuple[float, float]:
    """(seconds to reach the head, peak RSS MiB) of a `coachlog project` child."""
    store = log.svc.progress
    head = log.events
    child = Child([EXE, "project", "--source", "store"], child_env(log.url))
    deadline = time.perf_counter() + timeout
    caught = float("nan")
    try:
        while time.perf_counter() < deadline:
            if store.tracking(store.live_generation()).position >= head:
                caught = time.perf_counter() - child.started
                break
            if child.proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        child.stop()
    return caught, child.peak_rss_mib


def export_child(log: GrowingLog, timeout: float) -> tuple[float, float, float]:
    """(seconds, peak RSS MiB, file MiB) of a `coachlog export --format parquet` child."""
    out = Path(tempfile.gettempdir()) / f"coachlog-bench-{log.svc.engagements.name}.parquet"
    child = Child([EXE, "export", "--format", "parquet", "--output", str(out)], child_env(log.url))
    child.wait(timeout)
    size = out.stat().st_size / 2**20 if out.exists() else float("nan")
    out.unlink(missing_ok=True)
    if child.returncode != 0:
        say(f"  export exited {child.returncode}")
    return child.seconds, child.peak_rss_mib, size


def run(report: Report, quick: bool, log: GrowingLog, sizes: list[int]) -> None:
    floor = Child([EXE, "--help"], child_env(log.url))
    floor.wait(60)
    rows, projector, exporter = [], [], []
    for size in sizes:
        log.grow_to_events(size)
        reset_read_model(log)
        p_s, p_rss = project_catch_up(log, timeout=600)
        e_s, e_rss, e_mb = export_child(log, timeout=900)
        events = log.events
        projector.append(p_rss)
        exporter.append(e_rss)
        rows.append(
            [
                f"{events:,}",
                f"{p_s:.1f}",
                f"{events / p_s:,.0f}",
                f"{p_rss:.0f}",
                f"{e_s:.1f}",
                f"{events / e_s:,.0f}",
                f"{e_rss:.0f}",
                f"{e_mb:.1f}",
            ]
        )
        say(f"  {events:,} events: projector {p_rss:.0f} MiB, export {e_rss:.0f} MiB")
    report.table(
        "7",
        [
            "events",
            "projector catch-up s",
            "events/s",
            "projector peak RSS MiB",
            "export s",
            "events/s",
            "export peak RSS MiB",
            "Parquet MiB",
        ],
        rows,
    )
    report.note(
        "7", f"`coachlog --help` peak RSS (interpreter + imports): {floor.peak_rss_mib:.0f} MiB"
    )
    for name, values in (("projector", projector), ("export", exporter)):
        growth = values[-1] / values[0]
        report.check(
            Check(
                "7",
                f"{name} peak RSS, {sizes[0]:,} → {sizes[-1]:,} events",
                f"{values[0]:.0f} → {values[-1]:.0f} MiB",
                f"smallest size {values[0]:.0f} MiB",
                growth,
                "≤ 1.25 (flat)",
                growth <= 1.25,
            )
        )
