"""The OpenAPI document is as strict as the domain, field by field.

Every field of every command body in the served document is put to the boundary values
of its declaration (domain/fields.py): what the document accepts, the domain's own
check accepts (a client that validates against the document never meets a 422 for a
single field). Where the document narrows a form the domain would take (money written
as ``1E+3``, a UUID in braces) the case is named and checked to be so; the two rules
JSON Schema cannot state (no value twice ignoring case; the depth and size of free-form
findings) are stated in the field's description and enforced by the request schema.
Then schemathesis generates whole bodies from the document, and the request schemas —
which run the domain's checks — must take every one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from marshmallow import ValidationError
from schemathesis import GenerationMode

from api import create_app
from api.schemas import COMMAND_SCHEMAS, OpenEngagementRequest
from coachlog.bootstrap import bootstrap_services
from coachlog.settings import Settings
from domain.checks import check
from domain.commands import (
    ENGAGEMENT_COMMANDS,
    Command,
    CompleteAssessment,
    HoldSession,
    OpenEngagement,
    RankValues,
    ScheduleSession,
)
from domain.errors import InvalidValue
from domain.fields import (
    Amount,
    Between,
    Currency,
    Declared,
    Freeform,
    Id,
    Items,
    Label,
    Levels,
    OneOf,
    PersonId,
    Share,
    Text,
    declaration,
)
from domain.goals import SmartGoal
from domain.values import Money
from tests.api.conftest import slug

METADATA = {"occurred_at", "causation_id"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    path: Path = tmp_path_factory.mktemp("openapi") / "coachlog.db"
    services = bootstrap_services(Settings(database_url=f"sqlite:///{path}"))
    try:
        served = create_app(services).test_client().get("/openapi.json")
        assert served.status_code == 200
        yield served.get_json()
    finally:
        services.close()


def _path(command: type[Any]) -> str:
    if command is OpenEngagement:
        return "/engagements"
    return f"/engagements/{{engagement_id}}/{slug(command)}"


def _body(document: dict[str, Any], command: type[Any]) -> dict[str, Any]:
    operation = document["paths"][_path(command)]["post"]
    return _resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    found: Any = document
    for part in node["$ref"].removeprefix("#/").split("/"):
        found = found[part]
    return dict(found)


@dataclass(frozen=True)
class Case:
    """One value for one field, and what is known about it beforehand."""

    value: Any
    #: The document deliberately refuses a spelling the domain accepts.
    narrowed: bool = False
    #: A rule JSON Schema cannot state: the domain refuses, the document accepts.
    in_words: bool = False


def _text_cases(shape: Text) -> list[Case]:
    top = shape.max_length
    return [
        Case(v)
        for v in (
            "",
            " ",
            "\t\n",
            "\u3000",
            "\x1c",
            "\ufeff",
            "x",
            " x ",
            "x" * top,
            "x" * (top + 1),
            " " + "x" * (top - 1),
            "x\x00y",
            "line one\nline two",
            7,
        )
    ]


def _cases(spec: Declared) -> list[Case]:
    """Boundary values of one declared field, as JSON would carry them."""
    if spec.origin is list:
        assert spec.item is not None
        items = [c.value for c in _cases(spec.item)]
        good = [v for v in items if _domain_accepts(spec.item, v)]
        rules = spec.get(Items) or Items()
        cases = [Case([]), Case([good[0]]), Case(good[:2]), Case([good[0], good[0]]), Case("x")]
        cases += [Case([v]) for v in items]
        if rules.ignore_case:
            cases.append(Case(["Autonomy", "autonomy"], in_words=True))
        return cases
    if spec.has(Levels):
        scale = spec.get(Levels)
        assert scale is not None
        full = {level: f"what {level} looks like" for level in scale.levels}
        missing = dict(list(full.items())[1:])
        return [
            Case(full),
            Case(missing),
            Case({**full, "3": "beyond"}),
            Case({**full, "0": " "}),
            Case({**full, "0": "x" * 1001}),
            Case([]),
        ]
    if (freeform := spec.get(Freeform)) is not None:
        deep: Any = 1
        for _ in range(freeform.max_depth):
            deep = {"a": deep}
        deeper = {"a": deep}
        big = {"a": "x" * freeform.max_bytes}
        return [
            Case({}),
            Case({"scores": {"d": 7, "i": [1, 2.5]}, "top": "strategic"}),
            Case(deep),
            Case(deeper, in_words=True),
            Case(big, in_words=True),
            Case([1]),
            Case("x"),
        ]
    if spec.has(Amount):
        values = ("0", "0.0000", "150.00", "0.01", "1.23456", "-1", "abc", "1" * 16)
        cases = [Case(v) for v in (*values, "999999999999999.99", "1000000000000000")]
        # In whole minor units of the body's currency (EUR here): a rule across fields.
        cases += [Case("1.2345", in_words=True), Case("0.001", in_words=True)]
        # The document says money is a string; the API takes a JSON number too.
        cases += [Case("1E+3", narrowed=True), Case(".5", narrowed=True)]
        cases += [Case(150, narrowed=True), Case(1.5, narrowed=True), Case(True), Case("")]
        return cases
    if spec.has(Currency):
        values = ("EUR", "JPY", "BHD", "XXX", "XAU", "AAA", "XXQ", "eur", "EURO", "", 978)
        return [Case(v) for v in values]
    if spec.has(Share):
        values = ("0", "1", "0.35", "1.0", "0.1234", "0.12345", "1.5", "-0.1", "2", "x", "")
        narrowed = [Case(v, narrowed=True) for v in (".5", "5E-1", "0.30000", 0.5, 1)]
        return [*(Case(v) for v in values), *narrowed]
    if spec.type is int:
        choice, bounds = spec.get(OneOf), spec.get(Between)
        values: list[Any] = [0, True, "5", 2.5, None]
        if choice is not None:
            values += [*choice.values, 7, max(choice.values) + 1]
        if bounds is not None:
            low, high = int(bounds.low), int(bounds.high)
            values += [low - 1, low, high, high + 1]
        return [Case(v) for v in values]
    if spec.type is bool:
        return [Case(v) for v in (True, False, "true", 1, None)]
    if spec.type is date:
        cases = [Case(v) for v in ("2026-02-28", "2026-02-30", "0001-01-01", "2026-2-28", 1)]
        return [*cases, Case("20260228", narrowed=True)]
    if spec.type is datetime:
        cases = [
            Case(v)
            for v in (
                "2026-03-01T09:00:00+00:00",
                "2026-03-01T09:00:00.25Z",
                "2026-03-01T09:00:00",
                "0001-01-01T00:00:00+01:00",
                "9999-12-31T23:59:59-01:00",
                "2026-13-01T09:00:00Z",
                "now",
            )
        ]
        return [*cases, Case("0001-06-01T00:00:00Z", narrowed=True)]
    if (choice := spec.get(OneOf)) is not None:
        first = str(choice.values[0])
        return [Case(v) for v in (*choice.values, first.upper(), "nope", "", 1)]
    if spec.has(PersonId):
        return [
            Case(v)
            for v in ("coach-ada", "ab", "a", "a" * 63, "a" * 64, "Coach", "jane doe", "a_b.c-d", 5)
        ]
    if spec.has(Id):
        ident = uuid.uuid4()
        cases = [Case(v) for v in (str(ident), str(ident).upper(), "s-1", "", 4)]
        return [*cases, Case(f"{{{ident}}}", narrowed=True), Case(ident.urn, narrowed=True)]
    if (label := spec.get(Label)) is not None:
        values = ("4.0", "2024", "Form-M", "v1+build.7", "Form M", "", "1..2", "-1", "x" * 51)
        return [Case(v) for v in (*values, "x" * label.max_length)]
    shape = spec.get(Text)
    assert shape is not None, spec
    return _text_cases(shape)


def _as_domain(spec: Declared, value: Any) -> Any:
    """A JSON value as the API hands it on: fractions as Decimal, dates and times parsed."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str) and spec.type is Decimal and not spec.has(Currency):
        return Decimal(value)
    if isinstance(value, str) and spec.type is date:
        return date.fromisoformat(value)
    if isinstance(value, str) and spec.type is datetime:
        return datetime.fromisoformat(value)
    return value


def _domain_accepts(spec: Declared, value: Any) -> bool:
    try:
        check(spec, _as_domain(spec, value), {"currency": "EUR"})
    except (InvalidValue, InvalidOperation, ValueError, TypeError):
        return False
    return True


def _document_accepts(document: dict[str, Any], prop: dict[str, Any], value: Any) -> bool:
    if value is None:
        return bool(prop.get("nullable"))
    if prop.get("type") == "integer" and isinstance(value, float):
        return False  # OpenAPI 3.0: an integer is a number without a fraction part
    schema = {**prop, "components": document["components"]}
    validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    return bool(validator.is_valid(value))


def _fields(command: type[Any]) -> list[tuple[str, Declared]]:
    """The body fields of a command: the engagement is never the body's to name (it is
    in the path, or made at random on opening)."""
    return [(n, s) for n, s in declaration(command).items() if n != "engagement_id"]


COMMANDS = [OpenEngagement, *ENGAGEMENT_COMMANDS]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.__name__)
def test_a_value_the_document_accepts_the_domain_accepts(
    document: dict[str, Any], command: type[Command]
) -> None:
    body = _body(document, command)
    properties = body["properties"]
    assert set(properties) - METADATA == {n for n, _ in _fields(command)}
    targets: list[tuple[str, Declared, dict[str, Any]]] = []
    for name, spec in _fields(command):
        if spec.type is SmartGoal:
            goal = _resolve(document, properties[name])
            targets += [
                (f"{name}.{n}", s, goal["properties"][n]) for n, s in declaration(SmartGoal).items()
            ]
        else:
            targets.append((name, spec, properties[name]))
    for where, spec, prop in targets:
        prop = _resolve(document, prop)
        assert _document_accepts(document, prop, None) == spec.optional, where
        for case in _cases(spec):
            in_document = _document_accepts(document, prop, case.value)
            in_domain = _domain_accepts(spec, case.value)
            label = f"{command.__name__}.{where} = {case.value!r:.60}"
            if case.narrowed:
                assert in_domain, f"{label}: the domain refuses what is marked narrowed"
                assert not in_document, f"{label}: the document does not narrow it"
            elif case.in_words:
                assert not in_domain, label
                assert in_document, f"{label}: the document states it after all"
            else:
                assert in_document == in_domain, (
                    f"{label}: document {'accepts' if in_document else 'refuses'}, "
                    f"domain {'accepts' if in_domain else 'refuses'}"
                )


def test_the_rules_json_schema_cannot_state_are_in_words_and_enforced(
    document: dict[str, Any],
) -> None:
    values = _body(document, RankValues)["properties"]["values"]
    assert "ignoring case" in values["description"]
    refused = COMMAND_SCHEMAS[RankValues]()
    with pytest.raises(ValidationError, match="more than once"):
        refused.load({"values": ["Autonomy", "autonomy"]})
    result = _body(document, CompleteAssessment)["properties"]["result"]
    assert "8 levels deep" in result["description"]
    assert "65536 bytes" in result["description"]
    deep: Any = 1
    for _ in range(9):
        deep = {"a": deep}
    with pytest.raises(ValidationError, match="levels deep"):
        COMMAND_SCHEMAS[CompleteAssessment]().load(
            {"instrument": "disc", "instrument_version": "2", "result": deep}
        )


def test_bounds_that_drifted_now_follow_the_events(document: dict[str, Any]) -> None:
    scheduled = _body(document, ScheduleSession)["properties"]["duration_minutes"]
    held = _body(document, HoldSession)["properties"]["duration_minutes"]
    assert (scheduled["minimum"], scheduled["maximum"]) == (5, 480)
    assert (held["minimum"], held["maximum"]) == (1, 480)
    currency = _body(document, OpenEngagement)["properties"]["currency"]
    assert "EUR" in currency["enum"]
    assert "AAA" not in currency["enum"]


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(_holds_nul(v) for v in value)


def _breaks_a_rule_in_words(body: dict[str, Any]) -> bool:
    """Whether a body breaks a rule the document can state only in a description: a
    value twice ignoring case, or free-form findings too deep, too long, or with NUL
    characters (which PostgreSQL cannot store)."""
    values = body.get("values")
    texts = values if isinstance(values, list) else []
    if texts and all(isinstance(v, str) for v in texts):
        return len({v.strip().casefold() for v in texts}) < len(texts)
    result = body.get("result")
    if isinstance(result, dict):
        spec = declaration(CompleteAssessment)["result"]
        return _holds_nul(result) or not _domain_accepts(spec, result)
    return _money_in_other_units(body)


def _money_in_other_units(body: dict[str, Any]) -> bool:
    """Whether an amount has more decimal places than the minor unit of the body's
    currency has (a rule across two fields)."""
    currency = body.get("currency")
    for name in ("amount", "annualized_value", "fee_per_session"):
        if isinstance(body.get(name), str) and isinstance(currency, str):
            try:
                Money.of(name, Decimal(body[name]), currency)
            except InvalidValue as error:
                return "minor units" in error.message
    return False


@pytest.fixture(scope="module")
def generated(document: dict[str, Any]) -> Any:
    """The document as schemathesis reads it (once: reading it takes a while)."""
    return schemathesis.openapi.from_dict(document)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.__name__)
def test_every_body_generated_from_the_document_is_taken(
    generated: Any, command: type[Command]
) -> None:
    """schemathesis draws bodies from the document; each passes the request schema,
    whose fields run the domain's own checks, unless it breaks a rule in words."""
    operation = generated[_path(command)]["POST"]
    request_schema = (
        OpenEngagementRequest if command is OpenEngagement else COMMAND_SCHEMAS[command]
    )

    @settings(
        max_examples=8,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def taken(case: Any) -> None:
        # As the API reads a body: JSON numbers with a fraction become Decimal.
        body = json.loads(json.dumps(case.body), parse_float=Decimal)
        try:
            request_schema().load(body)
        except ValidationError as error:
            if not _breaks_a_rule_in_words(body):
                raise AssertionError(f"{body!r:.400} refused: {error.messages}") from None

    taken()


def test_the_schema_strategies_cover_every_kind_of_field() -> None:
    kinds = {
        type(m).__name__
        for c in COMMANDS
        for s in declaration(c).values()
        for m in (*s.markers, *(s.item.markers if s.item else ()))
    }
    assert kinds >= {"Text", "Label", "PersonId", "Id", "OneOf", "Between", "Items", "Amount"}
    assert kinds >= {"Currency", "Freeform", "Personal", "Sensitive"}
    assert any(s.has(Levels) for s in declaration(SmartGoal).values())
