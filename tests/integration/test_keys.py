"""Per-client data keys: sealed at rest, loaded in bulk, and gone once destroyed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from domain.application import Engagements
from domain.commands import HoldSession, ScheduleSession
from domain.context import CommandContext
from domain.keys import CryptoError, MasterKey, MasterKeyError, new_master_key
from tests.conftest import FIRM, days_ago, opening


def _counting(store: Any, name: str, calls: list[str]) -> None:
    original: Callable[..., Any] = getattr(store, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return original(*args, **kwargs)

    setattr(store, name, counted)


def _engagement_with_notes(app: Engagements, ctx: CommandContext, client: str) -> UUID:
    opened = app.open_engagement(ctx.at(days_ago(9)), opening(client_id=client))
    session = app.execute(
        ctx.at(days_ago(8)),
        ScheduleSession(
            engagement_id=opened.engagement_id, scheduled_for=days_ago(7), duration_minutes=60
        ),
    ).result
    app.execute(
        ctx.at(days_ago(7)),
        HoldSession(
            engagement_id=opened.engagement_id,
            session_id=session,
            duration_minutes=60,
            pillars=["goals"],
            notes=f"notes of {client}",
        ),
    )
    return opened.engagement_id


def test_a_batch_of_engagements_loads_its_keys_in_one_query(
    app: Engagements, store_env: dict[str, str], ctx: CommandContext
) -> None:
    ids = [_engagement_with_notes(app, ctx, f"client-{n}") for n in range(6)]
    app.keys.destroy(FIRM, "client-5")  # one erased client among them
    reader = Engagements(env=store_env)  # a fresh process: nothing cached
    try:
        calls: list[str] = []
        for name in ("key_of", "wrapped", "keys_of"):
            _counting(reader.keys.store, name, calls)
        notifications = reader.recorder.select_notifications(start=1, limit=1000)
        reader.mapper.prefetch(n.originator_id for n in notifications)  # type: ignore[attr-defined]
        notes = {
            event.originator_id: event.notes
            for event in map(reader.mapper.to_domain_event, notifications)
            if type(event).__name__ == "SessionHeld"
        }
        assert calls == ["keys_of"]
        assert notes == {ids[n]: (f"notes of client-{n}" if n < 5 else "") for n in range(6)}
    finally:
        reader.close()


def test_a_wrong_master_key_is_refused_with_a_clear_error(
    app: Engagements,
    store_env: dict[str, str],
    ctx: CommandContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engagement_id = _engagement_with_notes(app, ctx, "client-w")
    monkeypatch.setenv("COACHLOG_MASTER_KEY", new_master_key())
    other = Engagements(env=store_env)
    try:
        with pytest.raises(CryptoError, match="is not the one it was wrapped under"):
            list(other.events.get(engagement_id))
    finally:
        other.close()


def test_a_malformed_master_key_is_refused() -> None:
    with pytest.raises(MasterKeyError, match="32 bytes"):
        MasterKey("c2hvcnQ=")
    with pytest.raises(MasterKeyError, match="not base64"):
        MasterKey("not base64 at all!")


def test_postgres_refuses_to_start_without_a_master_key(
    store_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COACHLOG_MASTER_KEY")
    if store_env["PERSISTENCE_MODULE"].endswith("sqlite"):
        embedded = Engagements(env=store_env)  # a key file beside the database instead
        embedded.close()
        key_file = f"{store_env['SQLITE_DBNAME']}.key"
        with open(key_file, encoding="ascii") as handle:
            assert MasterKey(handle.read().strip())
        return
    with pytest.raises(MasterKeyError, match="COACHLOG_MASTER_KEY is not set"):
        Engagements(env=store_env)
