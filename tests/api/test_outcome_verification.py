"""A reported outcome counts for nothing until verified, and every answer and page that
lists it says so: verified, awaiting verification, or excluded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from api import Services
from projections.runner import ProjectionRunner
from tests.api.conftest import open_engagement, post_command

OUTCOME = {
    "kind": "salary_increase",
    "currency": "EUR",
    "attribution": "0.5",
    "confidence": "0.8",
    "source": "client",
}


def _report(client: FlaskClient, auth: dict[str, str], engagement_id: str, value: str) -> str:
    response = post_command(
        client,
        auth,
        engagement_id,
        "report-tangible-outcome",
        {**OUTCOME, "annualized_value": value},
    )
    assert response.status_code == 200, response.get_json()
    outcome_id: str = response.get_json()["result"]
    return outcome_id


def _reported_three(client: FlaskClient, auth: dict[str, str]) -> tuple[str, dict[str, str]]:
    engagement_id = open_engagement(client, auth, occurred_at="2026-09-01T09:00:00+00:00")
    ids = {
        "verified": _report(client, auth, engagement_id, "10000.00"),
        "awaiting": _report(client, auth, engagement_id, "6000.00"),
        "excluded": _report(client, auth, engagement_id, "9000.00"),
    }
    for command, body in (
        ("verify-outcome", {"outcome_id": ids["verified"], "evidence": "payslip"}),
        ("exclude-outcome", {"outcome_id": ids["excluded"], "exclusion": "unsupported"}),
        ("issue-invoice", {"amount": "1000.00", "currency": "EUR"}),
        ("sign-agreement", {"sponsor_may_see": ["outcomes", "roi"]}),
        ("grant-consent", {"scope": "share_outcomes"}),
    ):
        response = post_command(client, auth, engagement_id, command, body)
        assert response.status_code == 200, (command, response.get_json())
    return engagement_id, ids


def test_the_dashboard_says_which_outcomes_await_verification(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    engagement_id, ids = _reported_three(client, auth)
    ProjectionRunner(services.engagements, services.progress).catch_up()

    data: dict[str, Any] = client.get(
        f"/engagements/{engagement_id}/dashboard", headers=auth
    ).get_json()["data"]

    outcomes = data["outcomes"]
    statuses = {o["outcome_id"]: o["status"] for o in outcomes["items"]}
    assert statuses == {
        ids["verified"]: "verified",
        ids["awaiting"]: "awaiting_verification",
        ids["excluded"]: "excluded",
    }
    assert (outcomes["verified"], outcomes["awaiting_verification"], outcomes["excluded"]) == (
        1,
        1,
        1,
    )
    # 6000 × 0.5 × 0.8 would count once verified; until then only the verified one does.
    assert outcomes["benefit_awaiting_verification"] == {"EUR": "2400.00"}
    assert data["roi"]["benefit"] == "4000.00"  # 10000 × 0.5 × 0.8


def test_the_pages_and_the_sponsor_report_say_awaiting_verification(
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    flask_app: Any,
    token_for: Callable[..., str],
) -> None:
    engagement_id, _ = _reported_three(client, auth)
    ProjectionRunner(services.engagements, services.progress).catch_up()
    admin = token_for("firm_admin")

    report = client.get(
        f"/engagements/{engagement_id}/sponsor-report",
        headers={"Authorization": f"Bearer {admin}"},
    ).get_json()["data"]
    assert sorted(o["status"] for o in report["outcomes"]) == [
        "awaiting_verification",
        "verified",
    ]

    browser = flask_app.test_client()
    with browser.session_transaction() as session:  # what signing in makes
        session["sid"] = services.accounts.start_session(admin, 3600)
    page = browser.get(f"/ui/engagements/{engagement_id}").get_data(as_text=True)
    assert page.count('data-outcome-status="awaiting_verification"') == 1
    assert "awaiting verification</strong>: not counted in ROI until verified" in page
    assert "1 verified, 1 awaiting verification, 1 excluded" in page
    sponsor_page = browser.get(f"/ui/engagements/{engagement_id}/sponsor").get_data(as_text=True)
    assert "(awaiting verification: not counted in ROI)" in sponsor_page
