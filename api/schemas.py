"""Marshmallow schemas, derived from the domain's declarations of each field.

A command's request schema is built from its fields as domain/fields.py declares them
(through the event the command records): bounds become ``minimum``/``maximum``, text
limits ``maxLength`` and a ``pattern``, vocabularies and ISO 4217 codes ``enum``, ids
``format: uuid``, money a decimal string within the bounds of ``Money``. Each
field then runs the domain's own check of its declaration (domain/checks.py), so a
value the schema lets through is one the domain accepts, and the 422 names the field
before any engagement is loaded. Response schemas are typed only.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

import pycountry
from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    post_load,
    pre_load,
    validate,
    validates_schema,
)
from marshmallow import fields as mf

from domain.checks import check
from domain.commands import ENGAGEMENT_COMMANDS, Command, OpenEngagement
from domain.errors import InvalidValue
from domain.fields import (
    USER_ID_PATTERN,
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
from domain.state import STATE_RECORDS, EngagementState
from domain.values import (
    FRACTION_PLACES,
    MONEY_INTEGER_DIGITS,
    MONEY_MAX_PLACES,
    Money,
    currency_code,
)


def _optional(hint: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


#: The largest version a query may name (the stores' integers are 64-bit; no engagement
#: comes near this).
MAX_VERSION = 2**31 - 1


#: An RFC 3339 date-time whose year (0002-9998) keeps it placeable in UTC whatever its
#: offset: ``0001-01-01T00:00:00+01:00`` is valid ISO 8601, but lies before
#: ``datetime.min`` in UTC, and the domain refuses it.
MOMENT_PATTERN = (
    r"^(000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
    r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)


class UtcDateTime(mf.AwareDateTime):
    """A date-time with an offset that can also be expressed in UTC.

    ``0001-01-01T00:00:00+01:00`` is a valid ISO 8601 string, but it lies before
    ``datetime.min`` in UTC, and converting it (as the domain does) overflows; the
    document says so with :data:`MOMENT_PATTERN`.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {"pattern": MOMENT_PATTERN, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment: datetime = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Not a representable date-time in UTC.") from None
        return moment


#: What a decimal looks like on the wire ("150.00", "0.4", "1E+3").
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"

#: A share from 0 to 1 on the wire ("0", "0.35", "1.0").
FRACTION_PATTERN = rf"^(0(\.[0-9]{{1,{FRACTION_PLACES}}})?|1(\.0{{1,{FRACTION_PLACES}}})?)$"

#: The characters Python's ``str.strip()`` removes (``str.isspace``), spelled so that an
#: ECMA-262 pattern (JSON Schema's) means the same as Python does; the domain strips
#: exactly these before it judges text blank (tests/unit/test_fields.py checks the list).
WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: Text that is not blank: whitespace, then something else, and no NUL anywhere.
FILLED_TEXT_PATTERN = rf"^[{WHITESPACE}]*[^{WHITESPACE}\u0000][^\u0000]*$"
#: Text that may be empty, but holds no NUL.
ANY_TEXT_PATTERN = r"^[^\u0000]*$"


def _keepable(code: str) -> bool:
    try:
        currency_code("currency", code)
    except InvalidValue:
        return False
    return True


#: The ISO 4217 codes the domain keeps money in (those with a minor unit).
CURRENCY_CODES = sorted(c.alpha_3 for c in pycountry.currencies if _keepable(c.alpha_3))


class DecimalString(mf.Decimal):
    """An exact decimal (money, fractions), answered as a string such as "150.00".

    Documented as ``type: string, format: decimal`` (see ``create_app``): it is never
    a float on the wire. Requests may send a string or a JSON number.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {"pattern": DECIMAL_PATTERN, **kwargs.get("metadata", {})}
        super().__init__(as_string=True, allow_nan=False, **kwargs)


#: What an amount of money looks like on the wire: plain decimal notation within the
#: bounds of domain.values.Money (no exponent, no sign).
MONEY_PATTERN = rf"^[0-9]{{1,{MONEY_INTEGER_DIGITS}}}(\.[0-9]{{1,{MONEY_MAX_PLACES}}})?$"


class MoneyString(DecimalString):
    """An amount of money: a decimal string such as "150.00", 0 ≤ amount < 10^15, in
    whole minor units of the body's ``currency`` (checked with it: ``money_checks``).

    The bounds are the domain's (``Money``): this field calls its validator, so the
    API refuses with 422 exactly what the domain would.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {
            "description": f"A decimal string, at least 0 and below 10^{MONEY_INTEGER_DIGITS}, "
            "in whole minor units of the currency (ISO 4217: EUR and USD 2 decimal places, "
            "JPY none, BHD 3); a JSON number is read the same way.",
            **kwargs.get("metadata", {}),
            "pattern": MONEY_PATTERN,
            "maxLength": MONEY_INTEGER_DIGITS + 1 + MONEY_MAX_PLACES,
        }
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(MONEY_PATTERN, value):
            raise ValidationError(
                f"Not an amount of money: use plain decimal notation, at most "
                f"{MONEY_INTEGER_DIGITS} digits before the point and {MONEY_MAX_PLACES} after."
            )
        number = super()._deserialize(value, attr, data, **kwargs)
        try:
            return Money.amount_of(attr or "amount", number)
        except InvalidValue as error:
            raise ValidationError(error.message.partition(": ")[2]) from None


def field_for(name: str, hint: Any, **kwargs: Any) -> mf.Field[Any]:
    """Return the marshmallow field for a type hint (answers: types only, no bounds)."""
    hint, nullable = _optional(hint)
    if nullable:
        kwargs.setdefault("allow_none", True)
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        return mf.List(field_for(name, item), **kwargs)
    if origin is dict:
        _, value = typing.get_args(hint)
        if isinstance(value, type) and is_dataclass(value):
            return mf.Dict(keys=mf.String(), values=mf.Nested(record_schema(value)), **kwargs)
        values = mf.Raw() if value is Any else field_for(name, value)
        return mf.Dict(keys=mf.String(), values=values, **kwargs)
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return mf.String(validate=validate.OneOf([m.value for m in hint]), **kwargs)
    if hint is bool:
        return mf.Boolean(**kwargs)
    if hint is int:
        return mf.Integer(strict=True, **kwargs)
    if hint is Decimal:
        return DecimalString(**kwargs)
    if hint is datetime:
        return UtcDateTime(format="iso", **kwargs)
    if hint is date:
        return mf.Date(**kwargs)
    if hint is UUID:
        return mf.UUID(**kwargs)
    if hint is str:
        return mf.String(**kwargs)
    if is_dataclass(hint) and isinstance(hint, type):
        return mf.Nested(record_schema(hint), **kwargs)
    msg = f"no schema field for {name}: {hint!r}"
    raise TypeError(msg)


class Conforms(validate.Validator):
    """The domain's own check of a field's declaration (domain/checks.py).

    It runs after the field's standard validators (which give the document its bounds
    and the client their familiar messages) and stays silent when one of those already
    refused the value, so each problem is reported once.
    """

    def __init__(self, spec: Declared, before: list[validate.Validator]) -> None:
        self.spec = spec
        self.before = before

    def __call__(self, value: Any) -> Any:
        for validator in self.before:
            try:
                validator(value)
            except ValidationError:
                return value
        try:
            check(self.spec, value)
        except InvalidValue as error:
            raise ValidationError(_message(error)) from None
        return value


def _message(error: InvalidValue) -> str:
    """The domain's message without the field name (the problem's errors key it)."""
    return error.message.partition(": ")[2]


def _text_schema(shape: Text) -> dict[str, Any]:
    """The JSON Schema of a text field (also for the descriptions of a goal's levels)."""
    return {
        "type": "string",
        "minLength": 1 if shape.required else 0,
        "maxLength": shape.max_length,
        "pattern": FILLED_TEXT_PATTERN if shape.required else ANY_TEXT_PATTERN,
    }


def _levels_schema(spec: Declared, scale: Levels) -> type[Schema]:
    item = spec.item
    if item is None or item.get(Text) is None:
        msg = f"{spec.name}: the levels of a scale are described in text"
        raise TypeError(msg)
    described = {level: request_field(item, required=True) for level in scale.levels}
    schema: type[Schema] = RequestSchema.from_dict(described, name="GoalLevels")
    return schema


def request_field(spec: Declared, **kwargs: Any) -> mf.Field[Any]:
    """The request field of a declared command field: the constraints its declaration
    states, documented and enforced."""
    if spec.optional:
        kwargs.setdefault("allow_none", True)
    metadata: dict[str, Any] = kwargs.pop("metadata", {})
    standard: list[validate.Validator] = []
    field_class: Any
    extra: dict[str, Any] = {}
    if spec.origin is list:
        rules = spec.get(Items) or Items()
        if spec.item is None:
            msg = f"{spec.name}: a list field declares its items"
            raise TypeError(msg)
        if rules.min_items:
            standard.append(validate.Length(min=rules.min_items))
        if rules.distinct:
            metadata["uniqueItems"] = True
        if rules.ignore_case:
            metadata["description"] = f"No {rules.noun} twice, ignoring case."
        field_class, extra = mf.List, {"cls_or_instance": request_field(spec.item)}
    elif spec.origin is dict and spec.get(Levels) is not None:
        scale = spec.get(Levels)
        assert scale is not None
        levels = _levels_schema(spec, scale)
        return mf.Nested(levels, **kwargs, metadata=metadata)
    elif spec.origin is dict:
        freeform = spec.get(Freeform)
        if freeform is None:
            msg = f"{spec.name}: a free-form object declares its limits"
            raise TypeError(msg)
        metadata["minProperties"] = 1
        metadata.setdefault(
            "description",
            f"Free-form findings: at most {freeform.max_depth} levels deep and "
            f"{freeform.max_bytes} bytes as compact JSON, no NUL characters anywhere.",
        )
        field_class, extra = mf.Dict, {"keys": mf.String(), "values": mf.Raw(allow_none=True)}
    elif (amount := spec.get(Amount)) is not None:
        if amount.positive_for:
            metadata["not"] = {"pattern": r"^[0.]*$"}  # "0", "0.00": nothing to pay
        field_class = MoneyString
    elif spec.has(Share):
        metadata["pattern"] = FRACTION_PATTERN
        metadata["description"] = (
            f'A share from 0 to 1, at most {FRACTION_PLACES} decimal places (e.g. "0.35").'
        )
        field_class = DecimalString
    elif spec.type is int:
        field_class, extra = mf.Integer, {"strict": True}
        choice, bounds = spec.get(OneOf), spec.get(Between)
        if choice is not None:
            standard.append(validate.OneOf(choice.values))
        elif bounds is not None:
            standard.append(validate.Range(int(bounds.low), int(bounds.high)))
    elif spec.type is str:
        field_class = mf.String
        choice, shape, label = spec.get(OneOf), spec.get(Text), spec.get(Label)
        if choice is not None:
            standard.append(validate.OneOf(choice.values))
        elif spec.has(Currency):
            metadata["enum"] = CURRENCY_CODES
        elif spec.has(PersonId):
            metadata["pattern"] = USER_ID_PATTERN
        elif spec.has(Id):
            metadata["format"] = "uuid"
        elif label is not None:
            metadata["pattern"] = Label.PATTERN
            standard.append(validate.Length(min=1, max=label.max_length))
        elif shape is not None:
            metadata["pattern"] = _text_schema(shape)["pattern"]
            standard.append(validate.Length(min=1 if shape.required else 0, max=shape.max_length))
        else:
            msg = f"{spec.name}: a text field declares its shape"
            raise TypeError(msg)
    elif spec.type is bool:
        field_class = mf.Boolean
    elif spec.type is datetime:
        field_class, extra = UtcDateTime, {"format": "iso"}
    elif spec.type is date:
        field_class = mf.Date
    elif spec.type is UUID:
        field_class = mf.UUID
    elif spec.type is SmartGoal:
        return mf.Nested(SmartGoalSchema, **kwargs, metadata=metadata)
    else:
        msg = f"no request field for {spec.name}: {spec.type!r}"
        raise TypeError(msg)
    validators = [*standard, Conforms(spec, standard)]
    field: mf.Field[Any] = field_class(**extra, validate=validators, metadata=metadata, **kwargs)
    return field


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class RequestSchema(Schema):
    """Request bodies (and query strings) refuse unknown fields and NUL characters."""

    class Meta:
        unknown = RAISE

    @pre_load
    def refuse_nul(self, data: Any, **_: Any) -> Any:
        """Refuse text with NUL characters: PostgreSQL cannot store them in text columns."""
        if isinstance(data, typing.Mapping):
            bad = {
                str(key): ["Must not contain NUL characters."]
                for key in data
                if _has_nul(key) or _has_nul(data[key])
            }
            if bad:
                raise ValidationError(bad)
        return data


def _metadata_fields() -> dict[str, mf.Field[Any]]:
    """Fields every command body may carry besides its own (fresh instances each time)."""
    return {
        "occurred_at": UtcDateTime(
            format="iso",
            load_default=None,
            allow_none=True,
            metadata={
                "description": "When it happened in the world (default: now). May be earlier "
                "than now, never more than 5 minutes ahead."
            },
        ),
        "causation_id": mf.UUID(
            load_default=None,
            allow_none=True,
            metadata={"description": "The id of the event or message that caused this command."},
        ),
    }


def _request_fields(cls: type, skip: set[str]) -> dict[str, mf.Field[Any]]:
    declared = declaration(cls)
    result: dict[str, mf.Field[Any]] = {}
    for f in fields(cls):
        if f.name in skip:
            continue
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        kwargs: dict[str, Any] = (
            {"load_default": None if f.default is MISSING else f.default}
            if has_default
            else {"required": True}
        )
        result[f.name] = request_field(declared[f.name], **kwargs)
    return result


def _spanning(cls: type) -> Any:
    """A schema validator for the rules that span two fields (an amount's currency)."""
    spans = [spec for spec in declaration(cls).values() if spec.has(Amount)]

    @validates_schema
    def check_spans(self: Schema, data: dict[str, Any], **_: Any) -> None:
        for spec in spans:
            if data.get(spec.name) is None:
                continue
            try:
                check(spec, data[spec.name], data)
            except InvalidValue as error:
                amount = spec.get(Amount)
                field = amount.currency if amount and error.field.endswith(".currency") else None
                raise ValidationError({field or spec.name: [_message(error)]}) from None

    return check_spans


def _request_schema(
    cls: type, skip: set[str], name: str, extra: dict[str, mf.Field[Any]] | None = None
) -> type[Schema]:
    attrs: dict[str, Any] = {**_request_fields(cls, skip), **(extra or {})}
    attrs["check_spans"] = _spanning(cls)
    attrs["__doc__"] = (cls.__doc__ or "").strip() or f"Body of {cls.__name__}."
    return type(name, (RequestSchema,), attrs)


def _smart_goal_schema() -> type[Schema]:
    schema = _request_schema(SmartGoal, set(), "SmartGoalSchema")

    @post_load
    def make(self: Schema, data: dict[str, Any], **_: Any) -> SmartGoal:
        return SmartGoal.of(**data)

    return type("SmartGoalSchema", (schema,), {"make": make, "__doc__": schema.__doc__})


#: A SMART goal with its Goal Attainment Scale (a description per level -2..+2).
SmartGoalSchema = _smart_goal_schema()


def _command_schema(cls: type, skip: set[str]) -> type[Schema]:
    return _request_schema(cls, skip, f"{cls.__name__}Request", _metadata_fields())


_RECORD_SCHEMAS: dict[type[Any], type[Schema]] = {}


def record_schema(cls: type[Any]) -> type[Schema]:
    """Return (and cache) a dump schema for a state record dataclass."""
    if cls not in _RECORD_SCHEMAS:
        hints = typing.get_type_hints(cls)
        attrs: dict[str, Any] = {f.name: field_for(f.name, hints[f.name]) for f in fields(cls)}
        _RECORD_SCHEMAS[cls] = type(cls.__name__, (Schema,), attrs)
    return _RECORD_SCHEMAS[cls]


#: Request schema of every command on an existing engagement, by command class.
COMMAND_SCHEMAS: dict[type[Command], type[Schema]] = {
    cmd: _command_schema(cmd, {"engagement_id"}) for cmd in ENGAGEMENT_COMMANDS
}
#: The id of a new engagement is never the client's to choose (it is random).
OpenEngagementRequest = _command_schema(OpenEngagement, {"engagement_id"})


class CommandResultSchema(Schema):
    """What a command did: the engagement, its version now, and the id it created."""

    engagement_id = mf.UUID(required=True)
    version = mf.Integer(required=True)
    result = mf.String(
        allow_none=True,
        metadata={"description": "The id of what the command created (session, goal...)."},
    )


def _state_schema() -> type[Schema]:
    hints = typing.get_type_hints(EngagementState)
    attrs: dict[str, Any] = {
        "id": mf.UUID(),
        "version": mf.Integer(),
        "created_on": mf.AwareDateTime(metadata={"description": "Recorded time of opening."}),
        "modified_on": mf.AwareDateTime(
            metadata={"description": "Recorded time of the last event."}
        ),
    }
    for name, hint in hints.items():
        attrs[name] = field_for(name, hint)
    for record in STATE_RECORDS:
        record_schema(record)
    attrs["Meta"] = type("Meta", (), {"unknown": EXCLUDE})
    return type("EngagementState", (Schema,), attrs)


EngagementStateSchema = _state_schema()


class HistoryEntrySchema(Schema):
    """One stored event with its metadata, as an auditor reads it."""

    version = mf.Integer(required=True)
    event_type = mf.String(required=True)
    topic = mf.String(required=True)
    occurred_at = mf.AwareDateTime(required=True)
    recorded_at = mf.AwareDateTime(required=True)
    metadata = mf.Dict(keys=mf.String(), values=mf.Raw(), required=True)
    payload = mf.Dict(keys=mf.String(), values=mf.Raw(), required=True)


class HistorySchema(Schema):
    engagement_id = mf.UUID(required=True)
    version = mf.Integer(required=True)
    events = mf.List(mf.Nested(HistoryEntrySchema), required=True)


class StateQuerySchema(RequestSchema):
    """Choose at most one way to look back in time."""

    version = mf.Integer(strict=False, validate=validate.Range(min=1, max=MAX_VERSION))
    recorded_at = UtcDateTime(format="iso")
    occurred_at = UtcDateTime(format="iso")


class ProblemSchema(Schema):
    """An RFC 9457 problem detail."""

    type = mf.String()
    title = mf.String(required=True)
    status = mf.Integer(required=True)
    detail = mf.String()
    instance = mf.String()
    code = mf.String(metadata={"description": "Stable machine-readable error code."})
    errors = mf.Dict(metadata={"description": "Per-field messages (validation errors)."})
    current_version = mf.Integer(allow_none=True)
