"""Marshmallow schemas, derived from the domain's command and record dataclasses.

The command dataclasses are the contract of each use case; deriving request schemas
from their type hints keeps the API, its OpenAPI document and the domain in step.
Ranges and enums become OpenAPI constraints, so clients see them before they are
refused; the domain still checks everything itself.
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

from domain.commands import ENGAGEMENT_COMMANDS, Command, OpenEngagement
from domain.errors import InvalidValue
from domain.goals import SmartGoal
from domain.state import STATE_RECORDS, EngagementState
from domain.values import MONEY_INTEGER_DIGITS, MONEY_MAX_PLACES, Money

#: OpenAPI (and early 422) bounds for integer and decimal fields, by field name.
INT_RANGES: dict[str, tuple[int, int]] = {
    "score": (-2, 2),
    "weight": (1, 4),
    "confidence": (0, 10),
    "stress": (0, 10),
    "motivation": (0, 10),
    "imposter_feelings": (0, 10),
    "baseline": (0, 10),
    "before": (0, 10),
    "after": (0, 10),
    "satisfaction": (1, 5),
    "nps": (0, 10),
    "duration_minutes": (1, 480),
    "planned_sessions": (1, 500),
    "cadence_days": (1, 365),
    "minutes": (1, 1440),
}
FRACTIONS = {"attribution", "confidence"}
MONEY = {"amount", "annualized_value", "fee_per_session"}


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


class UtcDateTime(mf.AwareDateTime):
    """A date-time with an offset that can also be expressed in UTC.

    ``0001-01-01T00:00:00+01:00`` is a valid ISO 8601 string, but it lies before
    ``datetime.min`` in UTC, and converting it (as the domain does) overflows.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment: datetime = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Not a representable date-time in UTC.") from None
        return moment


#: What a decimal looks like on the wire ("150.00", "0.4", "1E+3").
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"


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


def money_checks(money_fields: list[str]) -> Any:
    """A schema validator: each amount in whole minor units of the body's currency."""

    @validates_schema(skip_on_field_errors=True)
    def check_money(self: Schema, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        for name in money_fields:
            if data.get(name) is None or not isinstance(data.get("currency"), str):
                continue
            try:
                Money.of(name, data[name], data["currency"])
            except InvalidValue as error:
                field = "currency" if error.field.endswith(".currency") else name
                errors[field] = [error.message.partition(": ")[2]]
        if errors:
            raise ValidationError(errors)

    return check_money


def field_for(name: str, hint: Any, **kwargs: Any) -> mf.Field[Any]:
    """Return the marshmallow field for a dataclass field's type hint."""
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
        bounds = INT_RANGES.get(name)
        if bounds and "validate" not in kwargs:
            kwargs["validate"] = validate.Range(*bounds)
        return mf.Integer(strict=True, **kwargs)
    if hint is Decimal:
        if name in FRACTIONS:
            kwargs.setdefault("validate", validate.Range(0, 1))
        elif name in MONEY:
            return MoneyString(**kwargs)
        return DecimalString(**kwargs)
    if hint is datetime:
        return UtcDateTime(format="iso", **kwargs)
    if hint is date:
        return mf.Date(**kwargs)
    if hint is UUID:
        return mf.UUID(**kwargs)
    if hint is str:
        if name == "currency":
            kwargs.setdefault("validate", validate.Regexp(r"^[A-Z]{3}$"))
        return mf.String(**kwargs)
    if hint is SmartGoal:
        return mf.Nested(SmartGoalSchema, **kwargs)
    if is_dataclass(hint) and isinstance(hint, type):
        return mf.Nested(record_schema(hint), **kwargs)
    msg = f"no schema field for {name}: {hint!r}"
    raise TypeError(msg)


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


class SmartGoalSchema(RequestSchema):
    """A SMART goal with its Goal Attainment Scale (a description per level -2..+2)."""

    title = mf.String(required=True, validate=validate.Length(min=1, max=300))
    measure = mf.String(required=True, validate=validate.Length(min=1, max=1000))
    baseline = mf.String(required=True, validate=validate.Length(min=1, max=1000))
    target = mf.String(required=True, validate=validate.Length(min=1, max=1000))
    target_date = mf.Date(required=True)
    weight = mf.Integer(required=True, strict=True, validate=validate.Range(1, 4))
    levels = mf.Dict(
        keys=mf.String(validate=validate.OneOf(["-2", "-1", "0", "1", "2"])),
        values=mf.String(validate=validate.Length(min=1, max=1000)),
        required=True,
        metadata={"description": "A description for each level -2, -1, 0, 1 and 2."},
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> SmartGoal:
        return SmartGoal.of(**data)


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


def _schema_fields(cls: type[Any], skip: set[str]) -> dict[str, mf.Field[Any]]:
    hints = typing.get_type_hints(cls)
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
        result[f.name] = field_for(f.name, hints[f.name], **kwargs)
    return result


def _command_schema(cls: type[Any], skip: set[str]) -> type[Schema]:
    attrs: dict[str, Any] = _schema_fields(cls, skip)
    money = [name for name in attrs if name in MONEY]
    if money:
        attrs["check_money"] = money_checks(money)
    attrs.update(_metadata_fields())
    attrs["__doc__"] = (cls.__doc__ or "").strip() or f"Body of {cls.__name__}."
    return type(f"{cls.__name__}Request", (RequestSchema,), attrs)


_RECORD_SCHEMAS: dict[type[Any], type[Schema]] = {}


def record_schema(cls: type[Any]) -> type[Schema]:
    """Return (and cache) a dump schema for a state record dataclass."""
    if cls not in _RECORD_SCHEMAS:
        attrs: dict[str, Any] = _schema_fields(cls, set())
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
