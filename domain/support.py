"""Pillar 5, psychological support: wellbeing check-ins and referrals."""

from __future__ import annotations

from domain.event import EngagementEvent
from domain.state import EngagementState
from domain.values import ReferralKind, enum_value, in_range, text


class WellbeingChecked(EngagementEvent):
    TOPIC = "coachlog.WellbeingChecked"
    SENSITIVE = frozenset({"confidence", "stress", "motivation", "imposter_feelings"})
    confidence: int
    stress: int
    motivation: int
    imposter_feelings: int

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
    referral_kind: str
    reason: str

    def fold(self, state: EngagementState) -> None:
        state.referrals += 1


class SupportCommands(EngagementState):
    """Commands of the psychological-support pillar."""

    def check_wellbeing(
        self, confidence: int, stress: int, motivation: int, imposter_feelings: int
    ) -> None:
        """Record a wellbeing check-in, each dimension 0-10."""
        self._require_open_for_work("check wellbeing")
        self._record(
            WellbeingChecked,
            confidence=in_range("confidence", confidence, 0, 10),
            stress=in_range("stress", stress, 0, 10),
            motivation=in_range("motivation", motivation, 0, 10),
            imposter_feelings=in_range("imposter_feelings", imposter_feelings, 0, 10),
        )

    def make_referral(self, referral_kind: str, reason: str) -> None:
        """Refer the client to another professional."""
        self._require_open_for_work("make a referral")
        self._record(
            ReferralMade,
            referral_kind=enum_value(ReferralKind, "referral_kind", referral_kind).value,
            reason=text("reason", reason, max_length=5000),
        )
