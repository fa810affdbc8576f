"""Benchmarks of coachlog against the physical limits, measured in the same run.

Run: python bench/run.py [--quick] [--sections 1,3,5] [--admin-url URL] [--output FILE]

Each section works on a scratch PostgreSQL database (created and dropped here), drives
the real components, measures a raw baseline in the same run and prints the ratio and
PASS/MISS against its target. Sections 3, 5, 6 and 7 share one log grown as they need
it (7 first: 100k, 200k, 400k events; then 3 and 5 on that log; then 6 grows it to
10,000 engagements). The results and the machine go to docs/PERFORMANCE.md (with
--quick to coachlog-PERFORMANCE-quick.md in the temporary directory, so a smoke run
never overwrites the results; --output chooses). ``python -m bench.doc`` renders the
last run again, e.g. after editing bench/analysis.md.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import commands, dashboards, export, freshness, http_api, memory, rebuild
from bench.common import (
    DEFAULT_ADMIN_URL,
    ROOT,
    GrowingLog,
    Report,
    machine,
    say,
    scratch_database,
)
from bench.doc import write
from domain.keys import new_master_key

TITLES = {
    "1": "Command path through the application service",
    "2": "Command path through HTTP (gunicorn)",
    "3": "Projection rebuild of all read models",
    "4": "End-to-end freshness through Kafka",
    "5": "Export to Parquet",
    "6": "Dashboard queries",
    "7": "Peak memory as the log grows",
}
ORDER = ["1", "2", "4", "7", "3", "5", "6"]  # the shared log only grows


def sizes(quick: bool) -> dict[str, object]:
    if quick:
        return {
            "memory": [5_000, 10_000, 20_000],
            "rebuild": 20_000,
            "export": 20_000,
            "engagements": 300,
            "dash_events": 20_000,
        }
    return {
        "memory": [100_000, 200_000, 400_000],
        "rebuild": 200_000,
        "export": 200_000,
        "engagements": 10_000,
        "dash_events": 500_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run of every section")
    parser.add_argument("--sections", default="1,2,3,4,5,6,7", help="e.g. 1,3,5")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--output", default=None, help="where to write the Markdown report")
    args = parser.parse_args()
    wanted = {s.strip() for s in args.sections.split(",") if s.strip()}
    unknown = wanted - set(TITLES)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.output:
        output = Path(args.output)
    elif args.quick:  # a smoke run never overwrites the results
        output = Path(tempfile.gettempdir()) / "coachlog-PERFORMANCE-quick.md"
    else:
        output = ROOT / "docs" / "PERFORMANCE.md"
    # Scratch databases only: a master key of this run's own unless one is configured.
    os.environ.setdefault("COACHLOG_MASTER_KEY", new_master_key())
    size = sizes(args.quick)
    report = Report(quick=args.quick)
    info = machine(args.admin_url)
    started = datetime.now(UTC)
    say(f"coachlog benchmarks ({'quick' if args.quick else 'full'}), sections {sorted(wanted)}")
    shared: GrowingLog | None = None
    shared_ctx = None
    failures: dict[str, str] = {}
    try:
        for section in ORDER:
            if section not in wanted:
                continue
            say(f"section {section}: {TITLES[section]}")
            t0 = time.perf_counter()
            try:
                if section in ("1", "2", "4"):
                    module = {"1": commands, "2": http_api, "4": freshness}[section]
                    module.run(report, args.admin_url, args.quick, scratch_database)
                else:
                    if shared is None:
                        shared_ctx = scratch_database(args.admin_url, "log")
                        shared = GrowingLog(shared_ctx.__enter__())
                    if section == "7":
                        memory.run(report, args.quick, shared, size["memory"])
                    elif section == "3":
                        rebuild.run(report, args.quick, shared, size["rebuild"])
                    elif section == "5":
                        export.run(report, args.quick, shared, size["export"])
                    elif section == "6":
                        dashboards.run(
                            report, args.quick, shared, size["engagements"], size["dash_events"]
                        )
            except Exception as error:
                failures[section] = f"{type(error).__name__}: {error}"
                traceback.print_exc()
            report.seconds[section] = time.perf_counter() - t0
            say(f"section {section} took {report.seconds[section]:.0f}s")
    finally:
        if shared is not None:
            report.note(
                "log",
                f"{shared.events:,} events, {shared.engagements:,} engagements,"
                f" seeded in {shared.seed_seconds:.0f}s"
                f" ({shared.events / max(shared.seed_seconds, 1e-9):,.0f} events/s through"
                " import_engagement)",
            )
            shared.close()
        if shared_ctx is not None:
            shared_ctx.__exit__(None, None, None)
    finished = datetime.now(UTC)
    with open(Path(tempfile.gettempdir()) / "coachlog-bench-last.pickle", "wb") as f:
        pickle.dump((report, info, started, finished, wanted, failures, args), f)
    write(output, report, info, started, finished, wanted, failures, TITLES, args)
    say(f"wrote {output}")
    for check in report.checks:
        say(
            f"{check.verdict:4} §{check.section} {check.name}: ratio "
            f"{'—' if check.ratio is None else f'{check.ratio:.3f}'} (target {check.target})"
        )
    if failures:
        say(f"sections failed: {failures}")
        sys.exit(1)


if __name__ == "__main__":
    main()
