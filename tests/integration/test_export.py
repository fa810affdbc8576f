"""Export, outcome-study dataset and replay: complete, ordered, and leaking nothing."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from coachlog.cli import main
from coachlog.seed import seed_firm
from domain import commands as c
from domain.application import Engagements
from domain.context import CommandContext
from domain.event import EngagementEvent
from domain.goals import SmartGoal
from projections.database import SqliteDatabase
from projections.progress import fold
from projections.runner import ProjectionRunner
from projections.store import ProgressStore
from workers.export import Pseudonymizer, Slice, export
from workers.replay import outcome_dataset, progress_documents, replay

ROOT = Path(__file__).resolve().parents[2]
TODAY = datetime(2026, 11, 1, 18, tzinfo=UTC)
KEY = Pseudonymizer(b"a-test-key-of-enough-length")
MARKERS = {
    "client_name": "Zebulon Quackenbush-7731",
    "client_id": "client-marker-5519",
    "coach_id": "coach-marker-8842",
    "sponsor_id": "sponsor-marker-2207",
    "notes": "MARKER-NOTES: panic attacks before interviews",
    "goal": "MARKER-GOAL: leave my abusive manager",
    "assumption": "MARKER-ASSUMPTION: too old to change",
    "feedback": "MARKER-FEEDBACK: stop apologising",
}


def _plant(app: Engagements) -> str:
    """An engagement whose personal fields all carry known marker strings."""
    ctx = CommandContext(
        MARKERS["coach_id"], "coach", "firm-e", occurred_at=TODAY - timedelta(days=40)
    )
    opened = app.open_engagement(
        ctx,
        c.OpenEngagement(
            client_id=MARKERS["client_id"],
            client_name=MARKERS["client_name"],
            coach_id=MARKERS["coach_id"],
            sponsor_id=MARKERS["sponsor_id"],
            segment="returner",
            delivery="remote",
            planned_sessions=6,
            cadence_days=14,
            fee_per_session=Decimal("100"),
            currency="EUR",
        ),
    ).engagement_id

    def run(days: int, command: type[c.Command], **kw: Any) -> Any:
        return app.execute(
            ctx.at(TODAY - timedelta(days=days)), command(engagement_id=opened, **kw)
        ).result

    session = run(
        39, c.ScheduleSession, scheduled_for=TODAY - timedelta(days=30), duration_minutes=60
    )
    run(
        30,
        c.HoldSession,
        session_id=session,
        duration_minutes=60,
        pillars=["support"],
        notes=MARKERS["notes"],
    )
    levels = {str(n): f"level {n}" for n in range(-2, 3)}
    run(
        29,
        c.SetGoal,
        goal=SmartGoal.of(
            MARKERS["goal"], "m", "b", "t", (TODAY + timedelta(days=90)).date(), 2, levels
        ),
    )
    run(29, c.IdentifyLimitingAssumption, assumption=MARKERS["assumption"])
    run(28, c.GiveFeedback, direction="coach_to_client", feedback=MARKERS["feedback"])
    run(
        27,
        c.CompleteAssessment,
        instrument="disc",
        instrument_version="2",
        result={"profile": MARKERS["notes"]},
    )
    return str(opened)


@pytest.fixture
def seeded(app: Engagements) -> Engagements:
    seed_firm(app, seed=8, engagements=6, today=TODAY, firm_id="firm-e")
    seed_firm(app, seed=9, engagements=3, today=TODAY, firm_id="firm-other")
    _plant(app)
    return app


def _oracle(app: Engagements, keep: Any) -> list[tuple[int, str, str, int]]:
    """What a slice must contain, read straight from the recorder."""
    found = []
    for n in app.recorder.select_notifications(start=1, limit=10**9):
        event = app.mapper.to_domain_event(n)
        if isinstance(event, EngagementEvent) and keep(event):
            found.append(
                (n.id, type(event).__name__, str(event.originator_id), event.originator_version)
            )
    return found


def _read(fmt: str, data: bytes) -> list[dict[str, Any]]:
    if fmt == "jsonl":
        return [json.loads(line) for line in data.splitlines()]
    if fmt == "csv":
        return [
            {
                **r,
                "position": int(r["position"]),
                "version": int(r["version"]),
                "payload": json.loads(r["payload"]),
            }
            for r in csv.DictReader(io.StringIO(data.decode()))
        ]
    table = pq.read_table(io.BytesIO(data))
    return [{**r, "payload": json.loads(r["payload"])} for r in table.to_pylist()]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_an_export_holds_every_event_of_its_slice_once_and_in_order(
    seeded: Engagements, fmt: str
) -> None:
    types = frozenset({"SessionHeld", "GoalSet", "EngagementOpened", "InvoiceIssued"})
    since = TODAY - timedelta(days=200)
    part = Slice(firm_id="firm-e", event_types=types, occurred_from=since)
    out = io.BytesIO()
    count = export(seeded, out, fmt, part, KEY)
    rows = _read(fmt, out.getvalue())
    got = [(r["position"], r["event_type"], r["engagement_id"], r["version"]) for r in rows]
    expected = _oracle(
        seeded,
        lambda e: e.firm_id == "firm-e" and type(e).__name__ in types and e.occurred_at >= since,
    )
    assert count == len(expected) > 50
    assert got == expected  # each once, in log order, types preserved
    assert {r["event_type"] for r in rows} == types


def test_a_segment_slice_keeps_whole_engagements_of_that_segment(seeded: Engagements) -> None:
    out = io.BytesIO()
    export(seeded, out, "jsonl", Slice(segment="returner"), KEY)
    rows = _read("jsonl", out.getvalue())
    opened = {
        r["engagement_id"]: r["payload"]["segment"]
        for r in rows
        if r["event_type"] == "EngagementOpened"
    }
    assert set(opened.values()) == {"returner"}
    assert {r["engagement_id"] for r in rows} == set(opened)
    segment_ids = {
        eid
        for _, t, eid, _ in _oracle(seeded, lambda e: True)
        if t == "EngagementOpened" and eid in opened
    }
    assert len(_oracle(seeded, lambda e: str(e.originator_id) in segment_ids)) == len(rows)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_pseudonymized_exports_leak_no_personal_string(seeded: Engagements, fmt: str) -> None:
    out = io.BytesIO()
    export(seeded, out, fmt, Slice(), KEY)
    data = out.getvalue()
    text = data.decode("latin-1")
    for marker in MARKERS.values():
        assert marker not in text
    assert "MARKER" not in text
    rows = _read(fmt, data)
    hashed = {r["actor_id"] for r in rows}
    assert all(re.fullmatch(r"p_[0-9a-f]{20}", h) for h in hashed if h)
    assert KEY.person(MARKERS["coach_id"]) in hashed  # stable: same person, same hash
    # Sealed, but research data the pseudonymized form keeps: the wellbeing scores.
    checks = [r for r in rows if r["event_type"] == "WellbeingChecked"]
    assert checks
    for check in checks:
        payload = (
            check["payload"]
            if isinstance(check["payload"], dict)
            else (json.loads(check["payload"]))
        )
        assert isinstance(payload["confidence"], int), payload


def test_the_full_form_keeps_personal_fields(seeded: Engagements) -> None:
    out = io.BytesIO()
    export(seeded, out, "jsonl", Slice(firm_id="firm-e"), None)
    assert MARKERS["notes"] in out.getvalue().decode()  # the full form is full


def test_replaying_the_progress_fold_equals_the_live_projection(
    seeded: Engagements, tmp_path: Path
) -> None:
    store = ProgressStore(SqliteDatabase(str(tmp_path / "rm.db")))
    store.create_tables()
    ProjectionRunner(seeded, store).catch_up()
    result = replay(seeded, progress_documents)
    assert result.position == seeded.recorder.max_notification_id()
    assert json.loads(json.dumps(result.state)) == store.all_docs(store.live_generation())
    # Pseudonymized, the same figures come out (only ids and text differ).
    hidden = replay(seeded, progress_documents, pseudonymizer=KEY)
    assert sorted(d["sessions"].__len__() for d in hidden.state.values()) == sorted(
        len(d["sessions"]) for d in result.state.values()
    )


def test_a_replay_stops_at_a_consistent_position(seeded: Engagements) -> None:
    upto = 100
    result = replay(seeded, lambda n, e: (n or 0) + 1, part=Slice(upto=upto))
    assert (result.position, result.state, result.events) == (upto, upto, upto)


def test_the_outcome_dataset_has_one_row_per_engagement_with_features_and_outcomes(
    seeded: Engagements,
) -> None:
    frame = outcome_dataset(seeded, part=Slice(firm_id="firm-e"), pseudonymizer=KEY, now=TODAY)
    assert len(frame) == 7
    assert {
        "segment",
        "cadence_adherence",
        "follow_through",
        "gas_t_score",
        "confidence_before",
        "confidence_after",
        "duration_days",
        "roi_pct",
        "bcr",
        "tangible_outcomes",
        "intangible_outcomes",
    } <= set(frame.columns)
    docs: dict[str, Any] = {}
    for event in (e for _, e in _events(seeded) if e.firm_id == "firm-e"):
        folded = fold(docs.get(str(event.originator_id)), event)
        if folded:
            docs[str(event.originator_id)] = folded
    held = {
        k: sum(1 for s in d["sessions"].values() if s["status"] == "held") for k, d in docs.items()
    }
    assert dict(zip(frame.engagement_id, frame.sessions_held, strict=True)) == held
    assert MARKERS["coach_id"] not in set(frame.coach)


def _events(app: Engagements) -> Iterator[tuple[int, EngagementEvent]]:
    for n in app.recorder.select_notifications(start=1, limit=10**9):
        event = app.mapper.to_domain_event(n)
        if isinstance(event, EngagementEvent):
            yield n.id, event


def test_the_cli_exports_refuses_the_full_form_without_the_right_role(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    env = {"COACHLOG_DATABASE_URL": url, "COACHLOG_PSEUDONYM_KEY": "k" * 24}
    runner = CliRunner()
    assert (
        runner.invoke(main, ["seed", "--engagements", "2", "--firm", "firm-a"], env=env).exit_code
        == 0
    )
    runner.invoke(main, ["firms", "create", "firm-a"], env=env)
    runner.invoke(
        main, ["users", "create", "ann", "--firm", "firm-a", "--role", "analyst"], env=env
    )
    runner.invoke(
        main, ["users", "create", "aud", "--firm", "firm-a", "--role", "auditor"], env=env
    )
    analyst = runner.invoke(
        main, ["tokens", "create", "ann", "--firm", "firm-a"], env=env
    ).output.strip()
    auditor = runner.invoke(
        main, ["tokens", "create", "aud", "--firm", "firm-a"], env=env
    ).output.strip()
    out = str(tmp_path / "e.jsonl")
    base = ["export", "--output", out]
    assert runner.invoke(main, [*base, "--full"], env=env).exit_code == 2
    refused = runner.invoke(main, [*base, "--full", "--token", analyst], env=env)
    assert refused.exit_code == 2
    assert "firm admin or an auditor" in refused.output
    allowed = runner.invoke(main, [*base, "--full", "--token", auditor], env=env)
    assert allowed.exit_code == 0, allowed.output
    assert "(full)" in allowed.output
    plain = runner.invoke(main, [*base, "--format", "csv"], env=env)
    assert "(pseudonymized)" in plain.output
    no_key = runner.invoke(main, base, env={"COACHLOG_DATABASE_URL": url})
    assert no_key.exit_code == 2
    assert "COACHLOG_PSEUDONYM_KEY" in no_key.output


def test_the_analysis_guide_runs_as_written(tmp_path: Path) -> None:
    guide = (ROOT / "docs" / "analysis.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, re.S)
    shells = re.findall(r"```sh\n(.*?)```", guide, re.S)
    assert blocks
    assert shells
    env = {
        **os.environ,
        "COACHLOG_DATABASE_URL": f"sqlite:///{tmp_path / 'coachlog.db'}",
        "COACHLOG_PSEUDONYM_KEY": "an-analysis-key-for-tests",
        "PYTHONPATH": str(ROOT),
    }
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    for script in shells:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    for code in blocks:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip()
