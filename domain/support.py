"""Pillar 5, psychological support: wellbeing check-ins and referrals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from domain.command import Command
from domain.event import EngagementEvent
from domain.fields import Between, OneOf, Paragraphs, Sensitive
from domain.state import EngagementState
from domain.values import ReferralKind

#: One dimension of a wellbeing check-in, 0-10: sealed, yet kept for research.
WellbeingScore = Annotated[int, Sensitive(), Between(0, 10)]


class WellbeingChecked(EngagementEvent):
    TOPIC = "coachlog.WellbeingChecked"
    confidence: WellbeingScore
    stress: WellbeingScore
    motivation: WellbeingScore
    imposter_feelings: WellbeingScore

    def fold(self, state: EngagementState) -> None:
        if self.confidence is None:
            return  # read after the client's key was destroyed
        state.wellbeing.append(
            {
                "confidence": self.confidence,
                "stress": self.stress,
                "motivation": self.motivation,
                "imposter_feelings": self.imposter_feelings,
            }
        )


class ReferralMade(EngagementEvent):
    TOPIC = "coachlog.ReferralMade"
    referral_kind: Annotated[str, OneOf(ReferralKind)]
    reason: Paragraphs

    def fold(self, state: EngagementState) -> None:
        state.referrals += 1


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CheckWellbeing(Command):
    METHOD = "check_wellbeing"
    EVENT = WellbeingChecked
    confidence: int
    stress: int
    motivation: int
    imposter_feelings: int


@dataclass(frozen=True, kw_only=True)
class MakeReferral(Command):
    METHOD = "make_referral"
    EVENT = ReferralMade
    referral_kind: ReferralKind
    reason: str


class SupportCommands(EngagementState):
    """Commands of the psychological-support pillar."""

    def check_wellbeing(
        self, confidence: int, stress: int, motivation: int, imposter_feelings: int
    ) -> None:
        """Record a wellbeing check-in, each dimension 0-10."""
        self._require_open_for_work("check wellbeing")
        self._record(
            WellbeingChecked,
            confidence=confidence,
            stress=stress,
            motivation=motivation,
            imposter_feelings=imposter_feelings,
        )

    def make_referral(self, referral_kind: str, reason: str) -> None:
        """Refer the client to another professional."""
        self._require_open_for_work("make a referral")
        self._record(ReferralMade, referral_kind=referral_kind, reason=reason)
