"""Hostile bodies and headers: every one is a 4xx problem+json and writes nothing.

The probes are the ones that used to answer 500: deep nesting (in a free-form result or
a body of nothing but ``[``), unpaired surrogates, integers of thousands of digits,
an If-Match of thousands of digits, and the non-standard JSON numbers NaN and Infinity.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.jsonbody import MAX_DEPTH, BadBody, depth, parse
from tests.api.conftest import assert_problem, history, open_engagement

ASSESSMENT = {"instrument": "disc", "instrument_version": "2.0", "result": {"style": "D"}}


@pytest.fixture
def engagement_id(client: FlaskClient, auth: dict[str, str]) -> str:
    return open_engagement(client, auth)


def _post_raw(
    client: FlaskClient, auth: dict[str, str], path: str, raw: bytes, **headers: str
) -> Any:
    return client.post(path, data=raw, content_type="application/json", headers={**auth, **headers})


def _nested(levels: int) -> Any:
    value: Any = "deep"
    for _ in range(levels):
        value = {"x": value}
    return value


HOSTILE_BODIES: dict[str, tuple[bytes, str]] = {
    "350 levels in a result": (
        json.dumps({**ASSESSMENT, "result": _nested(350)}).encode(),
        "json_too_deep",
    ),
    "100k opening brackets": (b"[" * 100_000, "json_too_deep"),
    "100k brackets inside a result": (
        b'{"instrument": "disc", "instrument_version": "1", "result": {"a": '
        + b"[" * 100_000
        + b"1"
        + b"]" * 100_000
        + b"}}",
        "json_too_deep",
    ),
    "an escaped lone surrogate": (
        b'{"instrument": "disc", "instrument_version": "x \\ud800", "result": {"a": 1}}',
        "invalid_text",
    ),
    "a lone low surrogate in a key": (
        b'{"instrument": "disc", "instrument_version": "1", "result": {"\\udc00": 1}}',
        "invalid_text",
    ),
    "an encoded surrogate (CESU bytes)": (
        b'{"instrument": "disc", "instrument_version": "\xed\xa0\x80", "result": {"a": 1}}',
        "malformed_json",
    ),
    "a 5000-digit integer": (
        b'{"instrument": "disc", "instrument_version": "1", "result": {"a": ' + b"9" * 5000 + b"}}",
        "number_out_of_range",
    ),
    "a 5000-digit fraction": (
        b'{"instrument": "disc", "instrument_version": "1", "result": {"a": 0.'
        + b"1" * 5000
        + b"}}",
        "number_out_of_range",
    ),
    "a huge exponent": (
        b'{"instrument": "disc", "instrument_version": "1", "result": {"a": 1e999999999}}',
        "number_out_of_range",
    ),
    "NaN": (
        b'{"instrument": "disc", "instrument_version": "1", "result": {"a": NaN}}',
        "malformed_json",
    ),
    "Infinity": (
        b'{"instrument": "disc", "instrument_version": "1", "result": {"a": Infinity}}',
        "malformed_json",
    ),
    "-Infinity": (
        b'{"instrument": "disc", "instrument_version": "1", "result": [-Infinity]}',
        "malformed_json",
    ),
}


@pytest.mark.parametrize("probe", sorted(HOSTILE_BODIES))
def test_a_hostile_body_is_a_400_problem_and_writes_nothing(
    client: FlaskClient, auth: dict[str, str], engagement_id: str, probe: str
) -> None:
    raw, code = HOSTILE_BODIES[probe]
    path = f"/engagements/{engagement_id}/complete-assessment"
    problem = assert_problem(_post_raw(client, auth, path, raw), 400, code)
    assert problem["detail"]
    keyed = _post_raw(client, auth, path, raw, **{"Idempotency-Key": f"probe-{probe}"})
    assert_problem(keyed, 400, code)
    assert_problem(_post_raw(client, auth, "/engagements", raw), 400, code)
    assert len(history(client, auth, engagement_id)) == 1


def test_nan_and_infinity_are_refused_in_every_number_field(
    client: FlaskClient, auth: dict[str, str], engagement_id: str
) -> None:
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        wellbeing = b'{"confidence": %s, "stress": 1, "motivation": 1, "imposter_feelings": 1}'
        response = _post_raw(
            client,
            auth,
            f"/engagements/{engagement_id}/check-wellbeing",
            wellbeing % literal,
        )
        assert_problem(response, 400, "malformed_json")
        fee = b'{"amount": %s, "currency": "EUR"}' % literal
        response = _post_raw(client, auth, f"/engagements/{engagement_id}/issue-invoice", fee)
        assert_problem(response, 400, "malformed_json")
        # As decimal strings they are not numbers either.
        text = literal.decode()
        response = client.post(
            f"/engagements/{engagement_id}/report-tangible-outcome",
            json={
                "kind": "salary_increase",
                "annualized_value": text,
                "currency": "EUR",
                "attribution": "0.5",
                "confidence": "0.5",
                "source": "client",
            },
            headers=auth,
        )
        assert_problem(response, 422)
    assert len(history(client, auth, engagement_id)) == 1


def test_an_if_match_of_thousands_of_digits_is_a_400(
    client: FlaskClient, auth: dict[str, str], engagement_id: str
) -> None:
    response = client.post(
        f"/engagements/{engagement_id}/celebrate-win",
        json={"win": "First interview"},
        headers={**auth, "If-Match": '"' + "9" * 5000 + '"'},
    )
    assert_problem(response, 400, "malformed_if_match")
    # Eighteen digits is still a version (one that is not current).
    response = client.post(
        f"/engagements/{engagement_id}/celebrate-win",
        json={"win": "First interview"},
        headers={**auth, "If-Match": '"' + "9" * 18 + '"'},
    )
    assert_problem(response, 412, "stale_version")
    assert len(history(client, auth, engagement_id)) == 1


def test_a_query_of_thousands_of_digits_is_a_422(
    client: FlaskClient, auth: dict[str, str], engagement_id: str
) -> None:
    response = client.get(f"/engagements/{engagement_id}?version={'9' * 5000}", headers=auth)
    assert_problem(response, 422)


def test_trace_and_other_methods_are_405_with_allow(
    client: FlaskClient, auth: dict[str, str], engagement_id: str
) -> None:
    for path, allowed in (
        ("/engagements", {"POST", "GET", "HEAD", "OPTIONS"}),
        (f"/engagements/{engagement_id}/history", {"GET", "HEAD", "OPTIONS"}),
        ("/audit/verify", {"GET", "HEAD", "OPTIONS"}),
    ):
        for headers in (auth, {}):  # the methods of a path are no secret
            response = client.open(path, method="TRACE", headers=headers)
            assert_problem(response, 405, "method_not_allowed")
            assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
    assert_problem(client.delete(f"/engagements/{engagement_id}", headers=auth), 405)


def test_answers_are_standard_json_even_for_a_stored_non_finite_float(
    flask_app: Flask,
) -> None:
    with flask_app.app_context():
        text = flask_app.json.dumps(
            {"score": math.nan, "nested": [math.inf, {"low": -math.inf}], "ok": 1.5}
        )
    assert json.loads(text) == {"score": None, "nested": [None, {"low": None}], "ok": 1.5}
    assert "NaN" not in text
    assert "Infinity" not in text


def test_the_depth_scanner_ignores_brackets_inside_strings() -> None:
    assert depth(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == 1
    assert depth(b'{"a": "\\"[[[", "b": [[[]]]}') == 4
    assert depth(b"[" * (MAX_DEPTH + 10), limit=MAX_DEPTH) == MAX_DEPTH + 1
    assert parse(json.dumps(_nested(MAX_DEPTH)).encode()) == _nested(MAX_DEPTH)
    with pytest.raises(BadBody) as refused:
        parse(json.dumps(_nested(MAX_DEPTH + 1)).encode())
    assert refused.value.code == "json_too_deep"
    # A valid surrogate pair is one character, not a lone surrogate.
    assert parse(b'{"emoji": "\\ud83d\\ude00"}') == {"emoji": "\U0001f600"}
