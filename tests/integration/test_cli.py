"""The coachlog command line on the embedded default and on PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from coachlog.cli import main
from coachlog.seed import seed_firm
from domain.application import Engagements
from domain.engagement import EVENT_CLASSES

TODAY = datetime(2026, 10, 1, 18, tzinfo=UTC)


def _comparable(app: Engagements, firm: str, ids: list[Any]) -> list[Any]:
    return [
        [
            (e.version, e.event_type, e.occurred_at, e.metadata, e.payload)
            for e in app.history(firm, i)
        ]
        for i in ids
    ]


def test_seed_is_deterministic_for_a_seed_and_a_day(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        app = Engagements(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(tmp_path / f"{name}.db"),
            }
        )
        report = seed_firm(app, seed=11, engagements=8, today=TODAY, firm_id="firm-x")
        runs.append((report, _comparable(app, "firm-x", report.engagement_ids)))
        app.close()
    (first, first_history), (second, second_history) = runs
    assert first.engagement_ids == second.engagement_ids
    assert first.events == second.events > 8 * 30
    assert first_history == second_history


def test_another_seed_gives_another_firm(tmp_path: Path) -> None:
    reports = []
    for seed in (1, 2):
        app = Engagements(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(tmp_path / f"{seed}.db"),
            }
        )
        reports.append(seed_firm(app, seed=seed, engagements=3, today=TODAY))
        app.close()
    assert reports[0].engagement_ids != reports[1].engagement_ids


def test_a_seeded_firm_covers_every_segment_and_most_of_the_catalogue(app: Engagements) -> None:
    report = seed_firm(app, seed=5, engagements=40, today=TODAY, firm_id="firm-x")
    seen_types: set[str] = set()
    segments: set[str] = set()
    for ident in report.engagement_ids:
        history = app.history("firm-x", ident)
        seen_types.update(e.event_type for e in history)
        segments.add(history[0].payload["segment"])
    assert len(segments) == 5
    # Every pillar shows up; a realistic firm has no reopenings or erasures.
    expected = {cls.__name__ for cls in EVENT_CLASSES} - {
        "EngagementReopened",
        "CoachReassigned",
        "SubjectErased",
        "ConsentWithdrawn",
        "GoalRevised",
        "GoalAbandoned",
        "GapIdentified",
        "CommitmentRenegotiated",
        "CourseCorrected",
        "ReferralMade",
        "SessionRescheduled",
        "InvoiceVoided",
    }
    assert expected <= seen_types, expected - seen_types


def test_seed_then_history_on_the_embedded_default(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"COACHLOG_DATABASE_URL": f"sqlite:///{tmp_path / 'coachlog.db'}"}
    seeded = runner.invoke(main, ["seed", "--engagements", "4", "--seed", "3"], env=env)
    assert seeded.exit_code == 0, seeded.output
    assert "Wrote 4 engagements" in seeded.output
    listed = runner.invoke(main, ["engagements"], env=env)
    assert listed.exit_code == 0
    ids = [line.split()[0] for line in listed.output.splitlines()]
    assert len(ids) == 4
    shown = runner.invoke(main, ["history", ids[0]], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"Engagement {ids[0]}" in shown.output
    assert "engagement opened" in shown.output
    assert "session held" in shown.output
    latest = runner.invoke(main, ["history", "--latest"], env=env)
    assert f"Engagement {ids[-1]}" in latest.output


def test_history_refuses_bad_ids_and_other_firms(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"COACHLOG_DATABASE_URL": f"sqlite:///{tmp_path / 'coachlog.db'}"}
    runner.invoke(main, ["seed", "--engagements", "1"], env=env)
    ident = runner.invoke(main, ["engagements"], env=env).output.split()[0]
    bad = runner.invoke(main, ["history", "not-a-uuid"], env=env)
    assert bad.exit_code == 2
    assert "is not a UUID" in bad.output
    other = runner.invoke(main, ["history", "--firm", "firm-elsewhere", ident], env=env)
    assert other.exit_code == 1
    assert "not found" in other.output
    future = runner.invoke(main, ["seed", "--today", "2999-01-01"], env=env)
    assert future.exit_code == 2
    assert "future" in future.output


def test_the_console_script_seeds_and_prints_history_with_no_services(tmp_path: Path) -> None:
    exe = shutil.which("coachlog", path=str(Path(sys.executable).parent))
    assert exe is not None, "the coachlog console script is not installed"
    env = {**os.environ, "COACHLOG_DATABASE_URL": ""}
    env.pop("COACHLOG_DATABASE_URL")
    seeded = subprocess.run(
        [exe, "seed", "--engagements", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stderr
    assert (tmp_path / "coachlog.db").exists()
    shown = subprocess.run(
        [exe, "history", "--latest"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "engagement opened" in shown.stdout


def test_seed_writes_into_postgres_too(postgres_url: str) -> None:
    engagements = 3
    runner = CliRunner()
    env = {"COACHLOG_DATABASE_URL": postgres_url}
    seeded = runner.invoke(
        main, ["seed", "--engagements", str(engagements), "--firm", "firm-pg"], env=env
    )
    assert seeded.exit_code == 0, seeded.output
    listed = runner.invoke(main, ["engagements", "--firm", "firm-pg"], env=env)
    assert len(listed.output.splitlines()) == engagements


def test_seeding_twice_with_the_same_seed_adds_nothing_twice(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")}
    app = Engagements(env=env)
    first = seed_firm(app, seed=4, engagements=3, today=TODAY)
    again = seed_firm(app, seed=4, engagements=3, today=TODAY)
    assert (first.engagements, again.engagements, again.skipped) == (3, 0, 3)
    assert app.recorder.max_notification_id() == first.events
    app.close()


def test_two_firms_seeded_with_the_same_seed_get_their_own_engagements(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")}
    app = Engagements(env=env)
    north = seed_firm(app, seed=4, engagements=2, today=TODAY, firm_id="firm-north")
    south = seed_firm(app, seed=4, engagements=2, today=TODAY, firm_id="firm-south")
    assert (north.engagements, south.engagements, south.skipped) == (2, 2, 0)
    assert not set(north.engagement_ids) & set(south.engagement_ids)
    app.close()


def test_audit_anchor_and_verify_report_a_tampered_event_and_exit_1(tmp_path: Path) -> None:
    import sqlite3

    runner = CliRunner()
    path = tmp_path / "coachlog.db"
    env = {"COACHLOG_DATABASE_URL": f"sqlite:///{path}"}
    assert (
        runner.invoke(main, ["seed", "--engagements", "2", "--seed", "4"], env=env).exit_code == 0
    )
    anchored = runner.invoke(main, ["audit", "anchor"], env=env)
    assert anchored.exit_code == 0, anchored.output
    assert anchored.output.startswith("Anchor 1 at position ")
    digest = anchored.output.split("digest ")[1].strip()
    assert runner.invoke(main, ["audit", "anchor"], env=env).output == "Nothing new to anchor.\n"
    clean = runner.invoke(main, ["audit", "verify", "--expect-digest", digest], env=env)
    assert clean.exit_code == 0, clean.output
    assert "OK: every chain and anchor verifies." in clean.output

    ident = runner.invoke(main, ["engagements"], env=env).output.split()[0]
    with sqlite3.connect(path) as conn:
        (state,) = conn.execute(
            "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = 3",
            (ident.replace("-", ""),),
        ).fetchone()
        changed = bytearray(state)
        changed[-5] ^= 0x20
        conn.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 3",
            (bytes(changed), ident.replace("-", "")),
        )
    for args in (["audit", "verify"], ["audit", "verify", ident]):
        broken = runner.invoke(main, args, env=env)
        assert broken.exit_code == 1, broken.output
        assert f"BROKEN engagement {ident} v3: content_changed" in broken.output
    as_json = runner.invoke(main, ["audit", "verify", "--json"], env=env)
    report = json.loads(as_json.output)
    assert report["ok"] is False
    assert [(b["engagement_id"], b["version"]) for b in report["breaks"]] == [(ident, 3)]


def test_keys_new_master_prints_a_usable_key() -> None:
    from domain.keys import MasterKey

    printed = CliRunner().invoke(main, ["keys", "new-master"]).output.strip()
    assert (
        MasterKey(printed).key_id
        != MasterKey(CliRunner().invoke(main, ["keys", "new-master"]).output.strip()).key_id
    )
