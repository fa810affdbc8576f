"""Value objects and vocabularies of a coaching engagement, with their validation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar

import pycountry
from iso4217 import Currency

from domain.errors import InvalidValue


class Segment(StrEnum):
    CAREER_CHANGER = "career_changer"
    EARLY_CAREER = "early_career"
    STALLED_MID_CAREER = "stalled_mid_career"
    RETURNER = "returner"
    ENTREPRENEUR = "entrepreneur"


class Delivery(StrEnum):
    REMOTE = "remote"
    HYBRID = "hybrid"
    IN_PERSON = "in_person"


class Status(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    CLOSED = "closed"


class CloseReason(StrEnum):
    COMPLETED = "completed"
    CLIENT_WITHDREW = "client_withdrew"
    SPONSOR_ENDED = "sponsor_ended"
    COACH_ENDED = "coach_ended"


class Role(StrEnum):
    FIRM_ADMIN = "firm_admin"
    COACH = "coach"
    CLIENT = "client"
    SPONSOR = "sponsor"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    SYSTEM = "system"


class Pillar(StrEnum):
    ASSESSMENT = "assessment"
    GOALS = "goals"
    SKILLS = "skills"
    ACCOUNTABILITY = "accountability"
    SUPPORT = "support"


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    HELD = "held"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class Instrument(StrEnum):
    CLIFTON_STRENGTHS = "clifton_strengths"
    DISC = "disc"
    MBTI = "mbti"
    RIASEC = "riasec"
    VALUES_CARD_SORT = "values_card_sort"
    SKILLS_INVENTORY = "skills_inventory"
    CUSTOM = "custom"


class GapKind(StrEnum):
    SKILL = "skill"
    CREDENTIAL = "credential"
    NETWORK = "network"
    EXPERIENCE = "experience"


class GoalStatus(StrEnum):
    OPEN = "open"
    ACHIEVED = "achieved"
    ABANDONED = "abandoned"


class Rater(StrEnum):
    CLIENT = "client"
    COACH = "coach"
    SPONSOR = "sponsor"


class SkillArea(StrEnum):
    BRANDING = "branding"
    NETWORKING = "networking"
    INTERVIEWING = "interviewing"
    COMMUNICATION = "communication"
    LEADERSHIP_READINESS = "leadership_readiness"
    TECHNICAL = "technical"


class CommitmentStatus(StrEnum):
    OPEN = "open"
    KEPT = "kept"
    MISSED = "missed"


class FeedbackDirection(StrEnum):
    COACH_TO_CLIENT = "coach_to_client"
    CLIENT_TO_COACH = "client_to_coach"


class ReferralKind(StrEnum):
    THERAPIST = "therapist"
    COUNSELLOR = "counsellor"
    MEDICAL = "medical"
    FINANCIAL = "financial"
    OTHER = "other"


class TangibleKind(StrEnum):
    SALARY_INCREASE = "salary_increase"
    PROMOTION = "promotion"
    NEW_ROLE = "new_role"
    TIME_TO_HIRE_REDUCED = "time_to_hire_reduced"
    REVENUE = "revenue"
    RETENTION = "retention"


class OutcomeSource(StrEnum):
    CLIENT = "client"
    SPONSOR = "sponsor"
    HR_RECORDS = "hr_records"
    COACH = "coach"
    THIRD_PARTY = "third_party"


class ExclusionReason(StrEnum):
    EXTREME = "extreme"
    UNSUPPORTED = "unsupported"


class IntangibleKind(StrEnum):
    SATISFACTION = "satisfaction"
    CONFIDENCE = "confidence"
    WORK_LIFE_BALANCE = "work_life_balance"
    STRESS = "stress"
    CLARITY = "clarity"


class CostCategory(StrEnum):
    COACH_FEE = "coach_fee"
    ASSESSMENT_LICENCE = "assessment_licence"
    CLIENT_TIME = "client_time"
    ADMIN = "admin"
    TRAVEL = "travel"
    PLATFORM = "platform"


class ConsentScope(StrEnum):
    SHARE_GOALS_WITH_SPONSOR = "share_goals_with_sponsor"
    SHARE_OUTCOMES = "share_outcomes"
    RESEARCH = "research"


class SponsorView(StrEnum):
    """What an agreement may let the sponsor see (session notes are never among them)."""

    ATTENDANCE = "attendance"
    GOALS = "goals"
    MILESTONES = "milestones"
    OUTCOMES = "outcomes"
    ROI = "roi"


E = TypeVar("E", bound=StrEnum)

#: A UTF-16 surrogate on its own: what a JSON escape such as "\ud800" decodes to. It is
#: not a character, so no UTF-8 text (and no event) can hold it.
_SURROGATE = re.compile("[\ud800-\udfff]")

VISION_HORIZONS = (5, 10, 20)
GAS_LEVELS = range(-2, 3)
GAS_WEIGHTS = range(1, 5)


def enum_value(kind: type[E], field: str, value: str) -> E:
    """Return ``value`` as a member of ``kind`` or raise a clear InvalidValue."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidValue(field, f"{value!r} is not one of: {allowed}") from None


def in_range(field: str, value: int, low: int, high: int) -> int:
    """Return an integer ``value`` checked to lie in ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(field, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise InvalidValue(field, f"must be between {low} and {high}, got {value}")
    return value


#: Decimal places a fraction (attribution, confidence) may have: 0.3, 0.75, 0.3333.
FRACTION_PLACES = 4


def fraction(field: str, value: Decimal) -> Decimal:
    """Return a Decimal checked to lie in 0..1 with at most FRACTION_PLACES places."""
    number = decimal_of(field, value)
    if not Decimal(0) <= number <= Decimal(1):
        raise InvalidValue(field, f"must be between 0 and 1, got {_shown(number)}")
    if not _has_places(number, FRACTION_PLACES):
        raise InvalidValue(field, f"must have at most {FRACTION_PLACES} decimal places")
    return number


def _shown(number: Decimal) -> str:
    """A number as it goes into an error message (never thousands of digits)."""
    text = str(number)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _has_places(number: Decimal, places: int) -> bool:
    """Whether ``number`` (already bounded in magnitude) needs no more than ``places``
    decimal places; trailing zeros do not count (150.000 is 150.00)."""
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int) or exponent >= -places:
        return True
    return number == number.quantize(Decimal(1).scaleb(-places))


def decimal_of(field: str, value: Decimal) -> Decimal:
    """Return ``value`` as a finite Decimal; floats are refused to keep money exact."""
    if isinstance(value, float | bool):
        raise InvalidValue(field, "must be a Decimal or a decimal string, not a float")
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidValue(field, f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise InvalidValue(field, f"must be a finite number, got {_shown(number)}")
    return number


def currency_code(field: str, code: str) -> str:
    """Return the code of an ISO 4217 currency that money can be kept in (it has a
    minor unit: not gold, SDRs or the testing code), or raise InvalidValue."""
    if not isinstance(code, str) or len(code) != 3 or not code.isupper():
        raise InvalidValue(field, f"{code!r} is not an ISO 4217 code like 'EUR'")
    if pycountry.currencies.get(alpha_3=code) is None:
        raise InvalidValue(field, f"{code!r} is not an ISO 4217 currency")
    if _minor_units(code) is None:
        raise InvalidValue(field, f"{code} has no minor unit in ISO 4217: not a currency of fees")
    return code


def _minor_units(code: str) -> int | None:
    try:
        return Currency(code).exponent
    except ValueError:
        return None


def minor_units(code: str) -> int:
    """Decimal places of a currency's minor unit (ISO 4217: EUR 2, JPY 0, BHD 3)."""
    places = _minor_units(currency_code("currency", code))
    assert places is not None  # currency_code refuses currencies without one
    return places


#: Money is kept below 10^15 major units of its currency (a quadrillion: room for any
#: fee, invoice, cost or annualized benefit, also in currencies of small unit value),
#: and in whole minor units (cents). Sums and ratios of such amounts stay exact within
#: Decimal's default 28 digits: no figure computed from them can fail.
MONEY_INTEGER_DIGITS = 15
MONEY_LIMIT = Decimal(10) ** MONEY_INTEGER_DIGITS
#: The most decimal places of any currency money is accepted in (CLF and UYW have 4).
MONEY_MAX_PLACES = 4


@dataclass(frozen=True)
class Money:
    """A non-negative Decimal amount in an ISO 4217 currency, in its minor units.

    ``Money.of`` is the one validator of every amount (fees, invoices, payments, costs,
    outcome values), in commands and in the API's schemas alike.
    """

    amount: Decimal
    currency: str

    @classmethod
    def of(cls, field: str, amount: Decimal, currency: str) -> Money:
        """Validate and build money: an exact, finite, non-negative Decimal below
        MONEY_LIMIT, in whole minor units of a known currency."""
        number = cls.amount_of(field, amount)
        code = currency_code(f"{field}.currency", currency)
        places = minor_units(code)
        if not _has_places(number, places):
            unit = "no decimal places" if places == 0 else f"at most {places} decimal places"
            raise InvalidValue(
                field, f"must be in whole minor units of {code} ({unit}), got {_shown(number)}"
            )
        return cls(number, code)

    @staticmethod
    def amount_of(field: str, amount: Decimal) -> Decimal:
        """The checks that need no currency: finite, not negative, below MONEY_LIMIT,
        at most MONEY_MAX_PLACES decimal places."""
        number = decimal_of(field, amount)
        if number < 0:
            raise InvalidValue(field, f"must not be negative, got {_shown(number)}")
        if number >= MONEY_LIMIT:
            raise InvalidValue(
                field,
                f"must be less than 10^{MONEY_INTEGER_DIGITS} "
                f"(at most {MONEY_INTEGER_DIGITS} digits before the point), got {_shown(number)}",
            )
        if not _has_places(number, MONEY_MAX_PLACES):
            raise InvalidValue(
                field, f"has more than {MONEY_MAX_PLACES} decimal places: {_shown(number)}"
            )
        return number


def text(field: str, value: str, *, max_length: int = 10_000, required: bool = True) -> str:
    """Return stripped text, refusing empty (when required) or over-long input."""
    if not isinstance(value, str):
        raise InvalidValue(field, "must be text")
    if "\x00" in value:
        raise InvalidValue(field, "must not contain NUL characters")
    if _SURROGATE.search(value):
        raise InvalidValue(field, "must not contain unpaired surrogates (they are not characters)")
    stripped = value.strip()
    if required and not stripped:
        raise InvalidValue(field, "must not be empty")
    if len(stripped) > max_length:
        raise InvalidValue(field, f"must be at most {max_length} characters")
    return stripped


def moment_utc(field: str, value: datetime) -> datetime:
    """Return a timezone-aware date-time in UTC, refusing naive or unrepresentable ones."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidValue(field, "must be a date-time with a timezone offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidValue(field, "is not a representable moment in UTC") from None


def a_date(field: str, value: date) -> date:
    """Return a calendar date (not a datetime)."""
    if not isinstance(value, date) or hasattr(value, "hour"):
        raise InvalidValue(field, f"must be a calendar date, got {value!r}")
    return value
