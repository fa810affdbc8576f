"""A poison event stops its own engagement and nobody else; a lost or repeated event is
healed from the stream in the event store. On SQLite and PostgreSQL, through the real
runner, rebuild, CLI and HTTP API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner

from api import create_app
from coachlog.cli import main
from coachlog.seed import seed_firm
from coachlog.settings import Settings
from domain.application import Engagements
from projections.database import SqliteDatabase
from projections.progress import Doc, OutOfOrder, Unfoldable, fold, fold_stream
from projections.rebuild import rebuild
from projections.runner import ProjectionRunner
from projections.store import Positioned, ProgressStore
from tests.poison import inject_unscheduled_session

TODAY = datetime(2026, 11, 1, 18, tzinfo=UTC)
FIRM = "firm-p"
METRICS_TOKEN = "scraper-secret-0123456789"


def log_of(app: Engagements) -> list[Positioned]:
    runner = ProjectionRunner(app, ProgressStore(SqliteDatabase(":memory:")))
    return runner.read_batch(0, 10**9)


def foldable_docs(app: Engagements) -> dict[str, Doc]:
    """Every engagement whose whole stream folds, folded from scratch (JSON round trip)."""
    streams: dict[str, list[Any]] = {}
    for item in log_of(app):
        streams.setdefault(str(item.event.originator_id), []).append(item.event)
    docs = {}
    for key, events in streams.items():
        try:
            doc = fold_stream(events)
        except (Unfoldable, OutOfOrder):
            continue
        assert doc is not None
        docs[key] = json.loads(json.dumps(doc))
    return docs


def _cli(settings_: Settings, *args: str) -> Any:
    options = ["--database-url", settings_.database_url]
    if settings_.database_schema:
        options += ["--database-schema", settings_.database_schema]
    return CliRunner().invoke(main, [*options, *args], catch_exceptions=False)


def _victim(services: Any) -> UUID:
    docs = services.progress.all_docs(services.progress.live_generation())
    return UUID(sorted(docs)[0])


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_a_poison_event_quarantines_its_engagement_and_no_other(
    services: Any, backend: Settings
) -> None:
    app, progress = services.engagements, services.progress
    seed_firm(app, seed=7, engagements=4, today=TODAY, firm_id=FIRM)
    runner = ProjectionRunner(app, progress, batch_size=40)
    runner.catch_up()
    victim = _victim(services)
    version = inject_unscheduled_session(app, victim)
    poison_position = app.recorder.max_notification_id()
    # Others keep writing after it, in the same batches as the poison event.
    seed_firm(app, seed=8, engagements=3, today=TODAY, firm_id="firm-q")

    runner.catch_up()  # returns: no exception loop

    head = app.recorder.max_notification_id()
    assert progress.tracking(progress.live_generation()).position == head
    (held,) = progress.quarantined()
    assert held.engagement_id == str(victim)
    assert held.firm_id == FIRM
    assert held.event_type == "SessionHeld"
    assert held.version == version
    assert held.position == poison_position
    assert "never created" in held.error
    # Every other engagement is exactly its from-scratch fold; the poisoned one stays
    # as it was before the poison event.
    expected = foldable_docs(app)
    actual = progress.all_docs(progress.live_generation())
    assert str(victim) not in expected
    assert {k: v for k, v in actual.items() if k != str(victim)} == expected
    assert actual[str(victim)]["version"] == version - 1

    # HTTP: its dashboards answer 503 naming the cause; /readyz says degraded; /metrics counts it.
    client = create_app(services, {"COACHLOG_METRICS_TOKEN": METRICS_TOKEN}).test_client()
    services.accounts.create_firm(FIRM, FIRM)
    services.accounts.create_user(FIRM, "admin-p", "firm_admin")
    auth = {"Authorization": f"Bearer {services.accounts.issue_token(FIRM, 'admin-p')}"}
    for path in (f"/engagements/{victim}/dashboard", f"/engagements/{victim}/sponsor-report"):
        answer = client.get(path, headers=auth)
        assert answer.status_code == 503, answer.json
        assert answer.content_type == "application/problem+json"
        assert answer.json["code"] == "read_model_quarantined"
        assert answer.json["event_type"] == "SessionHeld"
        assert answer.json["position"] == poison_position
        assert "SessionHeld" in answer.json["detail"]
        assert "retry" in answer.json["detail"]
    other = next(k for k, v in actual.items() if k != str(victim) and v["firm_id"] == FIRM)
    assert client.get(f"/engagements/{other}/dashboard", headers=auth).status_code == 200
    assert client.get("/firm/overview", headers=auth).status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["status"] == "degraded"
    assert ready.json["read_models"]["progress"]["quarantined"] == 1
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).get_data(
        as_text=True
    )
    assert 'coachlog_projection_quarantined_engagements{read_model="progress"} 1.0' in scraped

    # A retry before any fix keeps it in quarantine and says why (exit 1).
    result = _cli(backend, "projections", "retry")
    assert result.exit_code == 1, result.output
    assert str(victim) in result.output
    assert "SessionHeld" in result.output
    assert [q.engagement_id for q in progress.quarantined()] == [str(victim)]

    # The rebuild finishes, reports it, and switches; nothing is left marked building.
    report = rebuild(app, progress, batch_size=25)
    assert report.switched
    assert [q.engagement_id for q in report.quarantined] == [str(victim)]
    assert progress.building_generation() is None
    assert [q.engagement_id for q in progress.quarantined()] == [str(victim)]
    rebuilt = progress.all_docs(progress.live_generation())
    assert {k: v for k, v in rebuilt.items() if k != str(victim)} == expected
    result = _cli(backend, "projections", "rebuild", "progress")
    assert result.exit_code == 0, result.output
    assert "1 engagement(s) in quarantine" in result.output
    assert str(victim) in result.output


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_retry_folds_a_quarantined_engagement_again_after_a_fix(
    services: Any, backend: Settings
) -> None:
    """An event out of order where the store cannot be read is quarantined; once the
    store can be read (the fix), `coachlog projections retry` folds it from its stream."""
    app = services.engagements
    seed_firm(app, seed=9, engagements=3, today=TODAY, firm_id=FIRM)
    blind = ProgressStore(services.db, app.keys)  # no access to the event store
    generation = blind.live_generation()
    log = log_of(app)
    victim = str(log[0].event.originator_id)
    # The victim's second event never arrives.
    lost = next(
        p for p in log if str(p.event.originator_id) == victim and p.event.originator_version == 2
    )
    blind.apply(generation, [p for p in log if p is not lost], expected=0)
    (held,) = blind.quarantined()
    assert held.engagement_id == victim
    assert "OutOfOrder" in held.error
    assert held.version == 3

    result = _cli(backend, "projections", "retry", victim)
    assert result.exit_code == 0, result.output
    assert f"{victim}: folded again, released from quarantine" in result.output
    assert services.progress.quarantined() == []
    assert services.progress.all_docs(generation) == foldable_docs(app)
    assert _cli(backend, "projections", "retry").output.strip() == ("No engagement in quarantine.")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_lost_and_repeated_events_are_healed_from_the_store(services: Any) -> None:
    app, progress = services.engagements, services.progress
    seed_firm(app, seed=10, engagements=4, today=TODAY, firm_id=FIRM)
    log = log_of(app)
    generation = progress.live_generation()
    # A SessionScheduled never reaches the fold; its SessionHeld does.
    scheduled = next(p for p in log if type(p.event).__name__ == "SessionScheduled")
    openings = [p for p in log if p.event.originator_version == 1]
    middle = len(log) // 2
    # ... and openings are delivered again half-way (a duplicate EngagementOpened).
    batch = [p for p in log[:middle] if p is not scheduled] + openings + log[middle:]
    position = 0
    for start in range(0, len(batch), 30):
        chunk = batch[start : start + 30]
        ordered = [p for p in chunk if p.position > position]
        position = progress.apply(generation, ordered, expected=position) if ordered else position
    assert progress.quarantined() == []
    assert progress.all_docs(generation) == foldable_docs(app)


def test_the_fold_applies_a_stream_only_in_order(app: Engagements) -> None:
    seed_firm(app, seed=11, engagements=1, today=TODAY, firm_id=FIRM)
    events = [p.event for p in log_of(app)]
    doc = fold(None, events[0])
    assert doc is not None
    assert fold(doc, events[0]) is doc  # a repeated opening changes nothing
    with pytest.raises(OutOfOrder):
        fold(json.loads(json.dumps(doc)), events[2])  # version 2 is missing
    with pytest.raises(OutOfOrder):
        fold(None, events[1])  # never saw the opening
    folded = fold_stream(events)
    assert folded is not None
    assert folded["version"] == len(events)
    state = {k: v for k, v in events[0].__dict__.items() if not k.startswith("_")}
    second_opening = type(events[0])(**{**state, "originator_version": len(events) + 1})
    with pytest.raises(Unfoldable, match="EngagementOpened"):
        fold(folded, second_opening)
