"""Write the Markdown report of a run (docs/PERFORMANCE.md)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from bench.common import ROOT, Report

ANALYSIS = ROOT / "bench" / "analysis.md"


def write(
    output: Path,
    report: Report,
    info: dict[str, str],
    started: datetime,
    finished: datetime,
    wanted: set[str],
    failures: dict[str, str],
    titles: dict[str, str],
    args: argparse.Namespace,
) -> None:
    command = "python bench/run.py" + (" --quick" if args.quick else "")
    if wanted != set(titles):
        command += f" --sections {','.join(sorted(wanted))}"
    lines = [
        "# Performance",
        "",
        "Every figure below was measured against its physical limit **in the same run**, on a",
        "scratch PostgreSQL database, with the real components (application service,",
        "gunicorn, relay, Kafka projector, rebuild, export, dashboard queries). Issue 9.",
        "",
        f"- **Command**: `{command}` (`--quick` is a smoke run of every section in about a"
        " minute; `--sections 1,3,5` picks sections; `--admin-url` names the PostgreSQL"
        " server, where a scratch database is created and dropped)",
        f"- **Date**: {started:%Y-%m-%d %H:%M} – {finished:%H:%M} UTC"
        f" ({(finished - started).total_seconds() / 60:.1f} min)",
        f"- **Machine**: {info['cores']} cores, {info['cpu']}, {info['ram']} RAM,"
        f" Linux {info['kernel']} (host {info['host']})",
        f"- **Software**: Python {info['python']}, PostgreSQL {info['postgresql']}"
        f" ({info['postgresql settings']}), on the same host; Kafka: {info['kafka']}",
    ]
    if report.quick:
        lines.append("- **Quick run**: small sizes; the figures are a smoke test, not results.")
    lines += [
        "",
        "## Summary",
        "",
        "| § | figure | measured | same-run baseline | ratio | target | verdict |",
        "|---|---|---|---|---:|---|---|",
    ]
    for c in sorted(report.checks, key=lambda c: c.section):
        ratio = "—" if c.ratio is None else f"{c.ratio:.3f}"
        lines.append(
            f"| {c.section} | {c.name} | {c.figure} | {c.baseline} | {ratio} | {c.target}"
            f" | **{c.verdict}** |"
        )
    for section, error in sorted(failures.items()):
        lines.append(f"| {section} | {titles[section]} | failed: {error} | | | | **ERROR** |")
    lines.append("")
    for section in sorted(titles):
        if section not in wanted:
            continue
        lines += [f"## {section}. {titles[section]}", ""]
        lines += report.tables.get(section, [])
        for note in report.notes.get(section, []):
            lines.append(f"- {note}")
        if section in report.seconds:
            lines.append(f"- section time: {report.seconds[section]:.0f} s")
        lines.append("")
    for note in report.notes.get("log", []):
        note = note.removeprefix("shared log: ")
        lines += [f"Shared log of sections 3, 5, 6, 7: {note}.", ""]
    if ANALYSIS.exists():
        lines += [ANALYSIS.read_text().rstrip(), ""]
    output.write_text("\n".join(lines))


def main() -> None:
    """Render the last run again (e.g. after editing bench/analysis.md):
    ``python -m bench.doc [OUTPUT]``."""
    import pickle
    import sys
    import tempfile

    from bench.run import TITLES

    with open(Path(tempfile.gettempdir()) / "coachlog-bench-last.pickle", "rb") as f:
        report, info, started, finished, wanted, failures, args = pickle.load(f)
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "PERFORMANCE.md"
    write(output, report, info, started, finished, wanted, failures, TITLES, args)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
