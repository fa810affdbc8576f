"""The domain's checks of a field's value, read from the field's declaration.

Every command method records its event through :func:`conform` (``_record`` in
domain/state.py), so a bound written once in a declaration (domain/fields.py) is the
bound the domain enforces; the API's request schemas call :func:`check` too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from uuid import UUID

from domain.errors import InvalidValue
from domain.fields import (
    USER_ID_PATTERN,
    Amount,
    Between,
    Currency,
    Declared,
    Freeform,
    FromState,
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
from domain.values import (
    Money,
    a_date,
    currency_code,
    decimal_of,
    enum_value,
    fraction,
    in_range,
    moment_utc,
    text,
)


@cache
def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def conform(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` checked against the declaration of ``cls``, as they are recorded.

    Checked in the order given; the first value the declaration does not allow raises
    :class:`InvalidValue` naming its field. Fields declared :class:`FromState` pass as
    they are.
    """
    declared = declaration(cls)
    result: dict[str, Any] = {}
    for name, value in values.items():
        spec = declared[name]
        result[name] = value if spec.has(FromState) else check(spec, value, values)
    return result


def checked(cls: type, name: str, value: Any, **spanned: Any) -> Any:
    """One field's value checked against the declaration of ``cls``, as recorded
    (``spanned``: the other fields its rule spans, such as an amount's currency)."""
    return conform(cls, {name: value, **spanned})[name]


def check(spec: Declared, value: Any, context: Mapping[str, Any] | None = None) -> Any:
    """One field's ``value`` as recorded, or :class:`InvalidValue` naming the field.

    ``context`` holds the other values of the same command, for the rules that span two
    fields (an amount's currency).
    """
    name = spec.name
    if value is None and spec.optional:
        return None
    amount = spec.get(Amount)
    if amount is not None:
        return _money(name, amount, value, (context or {}).get(amount.currency))
    if spec.has(Share):
        return fraction(name, value)
    if spec.has(Currency):
        return currency_code(name, value)
    if spec.origin is list:
        return _list(spec, value)
    if spec.origin is dict:
        return _mapping(spec, value)
    return _scalar(spec, value)


def _money(name: str, amount: Amount, value: Any, currency: Any) -> Decimal:
    if currency is None:
        number = Money.amount_of(name, value)
    else:
        number = Money.of(name, value, currency).amount
    if amount.positive_for and number == 0:
        raise InvalidValue(name, f"{amount.positive_for} must be for more than zero")
    return number


def _scalar(spec: Declared, value: Any) -> Any:
    name = spec.name
    choice = spec.get(OneOf)
    if choice is not None:
        return _one_of(name, choice, value)
    bounds = spec.get(Between)
    if spec.type is int:
        if bounds is None:
            return in_range(name, value, -(2**63), 2**63 - 1)
        return in_range(name, value, int(bounds.low), int(bounds.high))
    if spec.type is Decimal:
        number = decimal_of(name, value)
        if bounds is not None and not bounds.low <= number <= bounds.high:
            raise InvalidValue(
                name, f"must be between {bounds.low} and {bounds.high}, got {number}"
            )
        return number
    if spec.type is bool:
        if not isinstance(value, bool):
            raise InvalidValue(name, f"must be true or false, got {value!r}")
        return value
    if spec.type is datetime:
        return moment_utc(name, value)
    if spec.type is date:
        return a_date(name, value)
    if spec.type is str:
        return _string(spec, value)
    return value


def _string(spec: Declared, value: Any) -> str:
    name = spec.name
    person = spec.get(PersonId)
    if person is not None:
        if not isinstance(value, str) or not _pattern(USER_ID_PATTERN).match(value):
            raise InvalidValue(
                name,
                f"{value!r} is not a user id (2-63 characters of a-z, 0-9, '.', '_' or '-')",
            )
        return value
    ident = spec.get(Id)
    if ident is not None:
        try:
            return str(UUID(str(value)))
        except ValueError:
            raise InvalidValue(name, f"{value!r} is not a UUID") from None
    label = spec.get(Label)
    if label is not None:
        if not isinstance(value, str) or len(value) > label.max_length:
            raise InvalidValue(name, f"must be text of at most {label.max_length} characters")
        if not _pattern(Label.PATTERN).match(value):
            raise InvalidValue(
                name,
                f"{value!r} is not a label: letters and digits, joined by '.', '_', '-' or '+'",
            )
        return value
    shape = spec.get(Text)
    if shape is None:
        msg = f"{name}: a text field declares its shape (Text, Label, PersonId or Id)"
        raise TypeError(msg)
    if isinstance(value, str) and len(value) > shape.max_length:
        raise InvalidValue(name, f"must be at most {shape.max_length} characters")
    return text(name, value, max_length=shape.max_length, required=shape.required)


def _one_of(name: str, choice: OneOf, value: Any) -> Any:
    if not isinstance(choice.choices, tuple):
        return enum_value(choice.choices, name, value).value
    # ``type(...) is``: True must not pass for 1, nor 5.0 for 5.
    if any(type(value) is type(v) and value == v for v in choice.choices):
        return value
    raise InvalidValue(name, f"must be one of {list(choice.choices)}")


def _list(spec: Declared, value: Any) -> list[Any]:
    name = spec.name
    rules = spec.get(Items) or Items()
    if not isinstance(value, list | tuple):
        raise InvalidValue(name, "must be a list")
    item = spec.item
    if item is None:
        msg = f"{name}: a list field declares its items"
        raise TypeError(msg)
    items = [check(item, v) for v in value]
    if len(items) < rules.min_items:
        raise InvalidValue(name, f"must list at least {_count(rules.min_items, rules.noun)}")
    if rules.distinct:
        keys = [v.casefold() if rules.ignore_case else v for v in items]
        if len(set(keys)) != len(keys):
            raise InvalidValue(name, f"lists a {rules.noun} more than once")
    return items


def _mapping(spec: Declared, value: Any) -> dict[str, Any]:
    name = spec.name
    freeform = spec.get(Freeform)
    if freeform is not None:
        return _freeform(name, freeform, value)
    scale = spec.get(Levels)
    if scale is None or spec.item is None:
        msg = f"{name}: a mapping is declared Freeform, or Levels with described items"
        raise TypeError(msg)
    if not isinstance(value, dict):
        raise InvalidValue(name, f"must map each level {', '.join(scale.levels)} to a description")
    if {str(k) for k in value} != set(scale.levels):
        raise InvalidValue(name, f"must describe exactly the levels {sorted(scale.levels)}")
    item = spec.item
    return {str(k): check(_renamed(item, f"{name}.{k}"), v) for k, v in value.items()}


def _freeform(name: str, rules: Freeform, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise InvalidValue(name, "must be a non-empty object of findings")
    # Breadth-first, so depth is judged without recursion however deep the value is.
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > rules.max_depth:
            raise InvalidValue(name, f"must be nested at most {rules.max_depth} levels deep")
        children: list[Any] = []
        for node in level:
            members = node.values() if isinstance(node, dict) else node
            children.extend(v for v in members if isinstance(v, dict | list))
        level = children
    try:
        encoded = json.dumps(value, separators=(",", ":"), allow_nan=False, default=_number)
    except (TypeError, ValueError):
        raise InvalidValue(name, "must hold only finite JSON values") from None
    size = len(encoded.encode())
    if size > rules.max_bytes:
        raise InvalidValue(name, f"must be at most {rules.max_bytes} bytes as JSON, got {size}")
    return dict(value)


def _number(value: Any) -> str:
    """An exact decimal as the JSON transcoder writes it; nothing else is JSON."""
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)
    msg = f"{type(value).__name__} is not JSON"
    raise TypeError(msg)


def _renamed(spec: Declared, name: str) -> Declared:
    return Declared(name, spec.type, spec.optional, spec.markers, spec.item)


def _count(number: int, noun: str) -> str:
    return f"one {noun}" if number == 1 else f"{number} {noun}s"
