"""Request bodies as JSON, refused before anything else reads them when they are hostile.

``json.loads`` accepts more than the JSON we store and serve: ``NaN`` and ``Infinity``,
integers of any length (and Python refuses to convert one of more than 4300 digits),
unpaired UTF-16 surrogates (``"\\ud800"``, which no UTF-8 text can hold and the event
store cannot encode), and nesting deep enough to exhaust the interpreter's stack in
whatever walks the result next (validation, sealing, encoding). :func:`parse` refuses
each of them with a :class:`BadBody` that the views answer as a 400 problem; what it
returns is plain JSON that every later step can handle. Limits on a particular field
(the length of a text, the size of a free-form result) are the schemas' business.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

#: Deepest nesting of arrays and objects a body may have (a goal inside a command is 3).
MAX_DEPTH = 32
#: Longest integer literal: far beyond any value a field accepts (each field's own bound
#: answers those with a 422 naming it), far below what Python refuses to convert (4300).
MAX_INTEGER_DIGITS = 100
#: Longest number with a fraction or an exponent, and the largest power of ten it may
#: reach (money and fractions need far less; their fields bound them precisely).
MAX_DECIMAL_CHARS = 100
MAX_DECIMAL_EXPONENT = 1000

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadBody(ValueError):
    """A body that is not JSON we accept; ``code`` names why (problem+json)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def depth(raw: bytes, limit: int = MAX_DEPTH) -> int:
    """The nesting depth of a JSON text, counted without parsing it (stops past ``limit``).

    Brackets inside strings do not count; an unterminated string counts its brackets,
    which only makes malformed input look deeper (it is refused either way).
    """
    brackets = _NOT_BRACKETS.sub(b"", _STRINGS.sub(b'""', raw))
    level = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            level += 1
            if level > deepest:
                deepest = level
                if deepest > limit:
                    break
        else:
            level -= 1
    return deepest


def _integer(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise BadBody(
            "number_out_of_range",
            f"An integer in the body has more than {MAX_INTEGER_DIGITS} digits.",
        )
    return int(literal)


def _decimal(literal: str) -> Decimal:
    try:
        number = Decimal(literal)
    except InvalidOperation:  # pragma: no cover - the scanner only passes numbers
        raise BadBody("malformed_json", "The body is not valid JSON.") from None
    if len(literal) > MAX_DECIMAL_CHARS or abs(number.adjusted()) > MAX_DECIMAL_EXPONENT:
        raise BadBody(
            "number_out_of_range",
            f"A number in the body is longer than {MAX_DECIMAL_CHARS} characters or "
            f"beyond 10^±{MAX_DECIMAL_EXPONENT}.",
        )
    return number


def _constant(name: str) -> Any:
    raise BadBody("malformed_json", f"{name} is not a JSON number; send a finite number.")


def _unpaired_surrogate(value: Any) -> str | None:
    """The path of the first text holding an unpaired surrogate, if any (iterative)."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path or "(the body)"
        elif isinstance(item, dict):
            for key, child in item.items():
                if _SURROGATE.search(key):
                    return f"{path}.{key!a}" if path else repr(key)
                stack.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
    return None


def parse(raw: bytes) -> Any:
    """Parse a request body, or raise BadBody saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("malformed_json", "The body is not UTF-8 text.") from None
    if depth(raw) > MAX_DEPTH:
        raise BadBody(
            "json_too_deep",
            f"The body nests arrays and objects more than {MAX_DEPTH} levels deep.",
        )
    try:
        value = json.loads(text, parse_int=_integer, parse_float=_decimal, parse_constant=_constant)
    except BadBody:
        raise
    except (ValueError, RecursionError):
        raise BadBody("malformed_json", "The body is not valid JSON.") from None
    where = _unpaired_surrogate(value)
    if where is not None:
        raise BadBody(
            "invalid_text",
            f"Text at {where} holds an unpaired UTF-16 surrogate (such as \\ud800): "
            "it is not a character and cannot be stored.",
        )
    return value
