"""Money is bounded at the boundary: every amount of every command, refused with a 422
naming the field and the rule, and nothing written; the OpenAPI document states the
bounds. Then no figure of any read model can fail on an amount the API accepted."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from api import Services
from tests.api.conftest import assert_problem, history, open_engagement, opening_body, post_command

#: (command, body without the amount, the amount's field) for every way money enters.
MONEY_COMMANDS: list[tuple[str, dict[str, Any], str]] = [
    ("issue-invoice", {"currency": "EUR"}, "amount"),
    ("record-cost", {"category": "travel", "currency": "EUR"}, "amount"),
    (
        "report-tangible-outcome",
        {
            "kind": "salary_increase",
            "currency": "EUR",
            "attribution": "0.5",
            "confidence": "0.8",
            "source": "hr_records",
        },
        "annualized_value",
    ),
    ("receive-payment", {"currency": "EUR"}, "amount"),
]

OUT_OF_BOUNDS: list[tuple[Any, str]] = [
    ("11111111111111111111111111111", "plain decimal notation, at most 15 digits"),
    ("1" * 50, "plain decimal notation, at most 15 digits"),
    ("1000000000000000", "plain decimal notation, at most 15 digits"),
    ("1e30", "plain decimal notation"),
    ("1E+100000", "plain decimal notation"),
    (1e30, "must be less than 10^15"),
    (11111111111111111111111111111, "must be less than 10^15"),
    ("99.995", "whole minor units of EUR (at most 2 decimal places)"),
    ("0.00001", "plain decimal notation"),
    ("-1.00", "plain decimal notation"),
    ("NaN", "plain decimal notation"),
]


@pytest.mark.parametrize(("command", "body", "field"), MONEY_COMMANDS)
@pytest.mark.parametrize(("amount", "message"), OUT_OF_BOUNDS)
def test_an_amount_out_of_bounds_is_a_422_naming_the_field_and_writes_nothing(
    client: FlaskClient,
    auth: dict[str, str],
    command: str,
    body: dict[str, Any],
    field: str,
    amount: Any,
    message: str,
) -> None:
    engagement_id = open_engagement(client, auth)
    invoice = post_command(
        client, auth, engagement_id, "issue-invoice", {"amount": "100.00", "currency": "EUR"}
    ).get_json()["result"]
    before = history(client, auth, engagement_id)
    sent = {**body, field: amount}
    if command == "receive-payment":
        sent["invoice_id"] = invoice

    problem = assert_problem(
        post_command(client, auth, engagement_id, command, sent), 422, "validation_failed"
    )

    assert list(problem["errors"]) == [field]
    assert message in problem["errors"][field][0]
    assert history(client, auth, engagement_id) == before


@pytest.mark.parametrize(
    ("fee", "currency", "message"),
    [
        ("1" * 50, "EUR", "plain decimal notation"),
        ("1e30", "EUR", "plain decimal notation"),
        ("150.50", "JPY", "whole minor units of JPY (no decimal places)"),
        ("150.00", "XAU", "XAU has no minor unit"),
    ],
)
def test_an_engagement_cannot_open_with_a_fee_out_of_bounds(
    client: FlaskClient, auth: dict[str, str], services: Services, fee: str, currency: str,
    message: str,
) -> None:  # fmt: skip
    reply = client.post(
        "/engagements", json=opening_body(fee_per_session=fee, currency=currency), headers=auth
    )

    problem = assert_problem(reply, 422, "validation_failed")
    assert message in str(problem["errors"])
    assert (services.engagements.recorder.max_notification_id() or 0) == 0


def test_the_largest_amounts_are_accepted_and_every_figure_reads_them(
    client: FlaskClient, auth: dict[str, str], services: Services, token_for: Any
) -> None:
    admin = {"Authorization": f"Bearer {token_for('firm_admin')}"}
    largest = "999999999999999.99"
    engagement_id = open_engagement(client, auth, fee_per_session=largest)
    for command, body, field in MONEY_COMMANDS[:3]:
        for _ in range(3):
            reply = post_command(client, auth, engagement_id, command, {**body, field: largest})
            assert reply.status_code == 200, reply.get_json()
            if command == "report-tangible-outcome":
                verified = post_command(
                    client,
                    auth,
                    engagement_id,
                    "verify-outcome",
                    {"outcome_id": reply.get_json()["result"], "evidence": "payslips"},
                )
                assert verified.status_code == 200, verified.get_json()
    services.start_projections().catch_up()

    dashboard = client.get(f"/engagements/{engagement_id}/dashboard", headers=auth)
    assert dashboard.status_code == 200, dashboard.get_json()
    data = dashboard.get_json()["data"]
    # By hand: three of each; benefit = 3 × largest × 0.5 × 0.8, cost = invoices + costs.
    assert data["money"]["invoiced"] == "2999999999999999.97"
    assert data["money"]["costs"] == "2999999999999999.97"
    assert data["roi"]["benefit"] == "1199999999999999.99"  # ...999.988 rounded
    # The engagement is active: its ROI is measured at planned cost, 10 × largest.
    assert data["roi"]["cost"] == "9999999999999999.90"
    assert data["roi"]["roi_pct"] == "-88.00"  # benefit / planned cost is exactly 0.12
    assert data["roi"]["bcr"] == "0.1200"
    for path in ("/engagements", "/firm/overview", "/firm/roi?group_by=coach"):
        answer = client.get(path, headers=admin)
        assert answer.status_code == 200, (path, answer.get_json())
    overview = client.get("/firm/overview", headers=admin).get_json()["data"]
    assert overview["invoiced"] == "2999999999999999.97"
    # No engagement is closed: the programme figure has nothing to pool (active ones apart).
    assert overview["roi"]["pooled_roi_pct"] is None


def test_openapi_states_the_bounds_of_every_amount(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    found = 0
    for name, schema in schemas.items():
        if not name.endswith("Request"):
            continue
        for field, spec in schema.get("properties", {}).items():
            if field in ("amount", "annualized_value", "fee_per_session"):
                found += 1
                assert spec["type"] == "string", (name, field)
                assert spec["pattern"] == r"^[0-9]{1,15}(\.[0-9]{1,4})?$", (name, field)
                assert spec["maxLength"] == 20
                assert "below 10^15" in spec["description"]
                assert "minor units" in spec["description"]
    assert found == 5  # open, issue-invoice, receive-payment, record-cost, tangible outcome
