"""The audit endpoints report what `coachlog audit verify` reports, for every tampering.

Each case tampers behind coachlog's back (direct SQL) after the history was anchored,
then asks the real CLI (a fresh process, the whole store) and the API (a firm admin of
the tampered firm): the firm's report must hold exactly the CLI's findings about that
firm's engagements and about the anchors, and the per-engagement report exactly the
CLI's findings about that engagement.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from flask.testing import FlaskClient

from api import Services
from coachlog.settings import Settings
from domain.application import Engagements
from tests.api.conftest import FIRM, OTHER_FIRM, open_engagement
from tests.integration.test_audit import (
    _events_table,
    _id,
    _tables,
    delete_events,
    execute,
    raw_state,
    write_state,
)

COACHLOG = str(Path(sys.executable).parent / "coachlog")
WELLBEING = {"confidence": 5, "stress": 4, "motivation": 6, "imposter_feelings": 3}


def _anchors_table(app: Engagements) -> str:
    return f"{_tables(app).prefix}coachlog_audit_anchors"


def _delete_stream(app: Engagements, engagement_id: UUID) -> None:
    delete_events(app, engagement_id, ">=", 1)


def _move_to_other_firm(app: Engagements, engagement_id: UUID) -> None:
    state = raw_state(app, engagement_id, 1)
    assert FIRM.encode() in state
    write_state(app, engagement_id, 1, state.replace(FIRM.encode(), OTHER_FIRM.encode()))


def _overwrite_digest(app: Engagements, _: UUID) -> None:
    execute(app, f"UPDATE {_anchors_table(app)} SET digest = %s WHERE seq = 1", ("0" * 64,))


def _backdate_anchor(app: Engagements, _: UUID) -> None:
    execute(app, f"UPDATE {_anchors_table(app)} SET anchored_at = anchored_at - 86400")


def _swap_in_log(app: Engagements, engagement_id: UUID) -> None:
    """Versions 2 and 3 change places in the log (their positions are swapped)."""
    table, key = _events_table(app), _id(app, engagement_id)
    column = "notification_id" if _tables(app).dialect == "postgres" else "rowid"
    rows = execute(
        app,
        f"SELECT {column}, originator_version FROM {table} WHERE originator_id = %s"
        " AND originator_version IN (2, 3) ORDER BY originator_version",
        (key,),
    )
    (second, _), (third, _) = rows
    where = " WHERE originator_id = %s AND originator_version = %s"
    execute(app, f"UPDATE {table} SET {column} = %s{where}", (-1, key, 2))
    execute(app, f"UPDATE {table} SET {column} = %s{where}", (second, key, 3))
    execute(app, f"UPDATE {table} SET {column} = %s{where}", (third, key, 2))


TAMPERING: dict[str, Callable[[Engagements, UUID], None]] = {
    "deleted_stream": _delete_stream,
    "edited_firm": _move_to_other_firm,
    "overwritten_digest": _overwrite_digest,
    "backdated_anchor": _backdate_anchor,
    "swapped_in_log": _swap_in_log,
}


def _cli(settings: Settings, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COACHLOG_")}
    env["COACHLOG_MASTER_KEY"] = os.environ["COACHLOG_MASTER_KEY"]
    env["COACHLOG_DATABASE_URL"] = settings.database_url
    if settings.database_schema:
        env["COACHLOG_DATABASE_SCHEMA"] = settings.database_schema
    done = subprocess.run(
        [COACHLOG, "audit", "verify", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["ok"] is (done.returncode == 0)
    return report


def _findings(report: dict[str, Any], engagements: set[str] | None = None) -> list[Any]:
    return sorted(
        (b["engagement_id"], b["version"], b["problem"])
        for b in report["breaks"]
        if engagements is None or b["engagement_id"] in engagements
    )


@pytest.mark.parametrize("tampering", sorted(TAMPERING))
def test_the_api_reports_what_the_cli_reports(
    tampering: str,
    client: FlaskClient,
    services: Services,
    settings: Settings,
    token_for: Callable[..., str],
) -> None:
    admin = {"Authorization": f"Bearer {token_for('firm_admin')}"}
    other_admin = {"Authorization": f"Bearer {token_for('firm_admin', OTHER_FIRM)}"}
    app = services.engagements
    mine = [open_engagement(client, admin) for _ in range(2)]
    theirs = open_engagement(client, other_admin)
    for engagement_id in [*mine, theirs]:
        headers = other_admin if engagement_id == theirs else admin
        for _ in range(3):
            path = f"/engagements/{engagement_id}/check-wellbeing"
            reply = client.post(path, json=WELLBEING, headers=headers)
            assert reply.status_code == 200, reply.get_json()
    assert app.auditor.anchor() is not None
    assert client.get("/audit/verify", headers=admin).get_json()["ok"] is True

    target = mine[0]
    TAMPERING[tampering](app, UUID(target))

    cli = _cli(settings)
    assert not cli["ok"], cli
    firm = client.get("/audit/verify", headers=admin)
    assert firm.status_code == 200
    assert firm.get_json()["ok"] is False
    assert _findings(firm.get_json()) == _findings(cli, {*mine, ""})
    one = client.get(f"/audit/engagements/{target}", headers=admin)
    assert one.status_code == 200, one.get_json()
    cli_one = _cli(settings, target)
    assert _findings(one.get_json()) == _findings(cli_one)
    assert _findings(cli_one) == _findings(cli, {target, ""})
    # The other firm learns nothing about this firm's engagements.
    other = client.get("/audit/verify", headers=other_admin).get_json()
    if tampering != "edited_firm":  # whoever the edited events now name sees the break
        assert not {b["engagement_id"] for b in other["breaks"]} & set(mine)
