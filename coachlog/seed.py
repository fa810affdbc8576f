"""Generate a realistic coaching firm: coaches, clients, months of engagement history.

Deterministic for a given ``seed``, firm and ``today``: ids, names, times and figures all come
from one random generator. Every engagement is written through the domain's rules (an
import of a whole timeline, saved at once), so seeded data is as valid as live data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain import commands as c
from domain.application import Engagements
from domain.context import CommandContext
from domain.errors import EngagementAlreadyExists
from domain.goals import SmartGoal
from domain.values import Delivery, Segment

FIRST_NAMES = [
    "Amara",
    "Bruno",
    "Chen",
    "Dara",
    "Elif",
    "Farah",
    "Gustavo",
    "Hana",
    "Ibrahim",
    "Jonas",
    "Keiko",
    "Lena",
    "Mateo",
    "Nadia",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Viktor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Adeyemi",
    "Bergström",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Haddad",
    "Ito",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Rossi",
    "Santos",
    "Tanaka",
    "Usman",
    "Varga",
    "Weber",
    "Yilmaz",
    "Zhang",
]
COACHES = ["Ada Okonkwo", "Ben Carter", "Clara Weiss", "Dev Raman", "Eva Lindgren", "Femi Bello"]
SPONSORS = ["Acme Logistics", "Globex Health", "Initech", "Umbrella Retail", None, None]

GOALS_BY_SEGMENT: dict[str, list[tuple[str, str, str, str]]] = {
    Segment.CAREER_CHANGER: [
        ("Land a first role in UX research", "offers received", "0 offers", "1 offer"),
        ("Complete a portfolio of three case studies", "case studies published", "0", "3"),
    ],
    Segment.EARLY_CAREER: [
        ("Secure a graduate analyst role", "offers received", "0 offers", "1 offer"),
        ("Build a professional network in fintech", "warm contacts", "4", "25"),
    ],
    Segment.STALLED_MID_CAREER: [
        ("Be promoted to engineering manager", "promotion decision", "not nominated", "promoted"),
        ("Lead a cross-team initiative", "initiatives led", "0", "1"),
    ],
    Segment.RETURNER: [
        ("Return to work in a part-time senior role", "offers received", "0", "1 offer"),
        ("Refresh certifications", "certifications current", "0 of 2", "2 of 2"),
    ],
    Segment.ENTREPRENEUR: [
        ("Reach 10 paying clients", "paying clients", "2", "10"),
        ("Raise day rate by 30%", "day rate", "600", "780"),
    ],
}
SKILL_AREAS = ["branding", "networking", "interviewing", "communication", "leadership_readiness"]
VALUES = ["autonomy", "learning", "security", "impact", "family", "recognition", "creativity"]
OUTCOMES_BY_SEGMENT = {
    Segment.CAREER_CHANGER: ("new_role", 18_000),
    Segment.EARLY_CAREER: ("new_role", 9_000),
    Segment.STALLED_MID_CAREER: ("promotion", 14_000),
    Segment.RETURNER: ("new_role", 22_000),
    Segment.ENTREPRENEUR: ("revenue", 30_000),
}


@dataclass
class SeedReport:
    """What a seed run wrote."""

    engagements: int = 0
    events: int = 0
    engagement_ids: list[UUID] = field(default_factory=list)
    skipped: int = 0


class _Timeline:
    """Collects (context, command) steps of one engagement in occurred order."""

    def __init__(self, rng: random.Random, firm_id: str, engagement_id: UUID, today: datetime):
        self.rng = rng
        self.firm_id = firm_id
        self.engagement_id = engagement_id
        self.today = today
        self.steps: list[tuple[CommandContext, c.Command]] = []

    def uuid(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def ident(self) -> str:
        return str(self.uuid())

    def add(
        self, at: datetime, actor: tuple[str, str], command_type: type[c.Command], **kw: Any
    ) -> None:
        ctx = CommandContext(
            actor_id=actor[0],
            actor_role=actor[1],
            firm_id=self.firm_id,
            correlation_id=self.uuid(),
            occurred_at=min(at, self.today),
        )
        self.steps.append((ctx, command_type(engagement_id=self.engagement_id, **kw)))


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-")


def _levels(target: str) -> dict[str, str]:
    return {
        "-2": "went backwards",
        "-1": "no progress",
        "0": f"expected: {target}",
        "1": "better than expected",
        "2": "far beyond the target",
    }


def _engagement(
    rng: random.Random, firm_id: str, today: datetime, index: int
) -> tuple[tuple[CommandContext, c.OpenEngagement], list[tuple[CommandContext, c.Command]]]:
    engagement_id = UUID(int=rng.getrandbits(128), version=4)
    t = _Timeline(rng, firm_id, engagement_id, today)
    segment = list(Segment)[index % len(Segment)]
    coach = COACHES[rng.randrange(len(COACHES))]
    coach_actor = (f"coach-{_slug(coach)}", "coach")
    admin_actor = ("admin-office", "firm_admin")
    sponsor = rng.choice(SPONSORS) if segment != Segment.ENTREPRENEUR else None
    client_name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    planned = rng.choice([6, 8, 10, 12])
    cadence = rng.choice([7, 14, 14, 21])
    fee = Decimal(rng.choice([120, 150, 180, 220, 260]))
    opened_at = today - timedelta(days=rng.randint(20, 330), hours=rng.randint(0, 8))
    opening = c.OpenEngagement(
        client_id=f"client-{index:04d}",
        client_name=client_name,
        coach_id=coach_actor[0],
        sponsor_id=None if sponsor is None else f"sponsor-{_slug(sponsor)}",
        segment=segment,
        delivery=Delivery(rng.choice(["remote", "remote", "hybrid", "in_person"])),
        planned_sessions=planned,
        cadence_days=cadence,
        fee_per_session=fee,
        currency="EUR",
        engagement_id=engagement_id,
    )
    opening_ctx = CommandContext(
        actor_id=admin_actor[0],
        actor_role=admin_actor[1],
        firm_id=firm_id,
        correlation_id=t.uuid(),
        occurred_at=opened_at,
    )
    at = opened_at + timedelta(hours=1)
    if sponsor is not None:
        t.add(at, admin_actor, c.SignAgreement, sponsor_may_see=["attendance", "goals", "roi"])
        if rng.random() < 0.8:
            t.add(at, admin_actor, c.GrantConsent, scope="share_goals_with_sponsor")
    if rng.random() < 0.7:
        t.add(at, admin_actor, c.GrantConsent, scope="share_outcomes")
    if rng.random() < 0.5:
        t.add(at, admin_actor, c.GrantConsent, scope="research")
    t.add(
        at,
        admin_actor,
        c.RecordCost,
        category="assessment_licence",
        amount=Decimal(45),
        currency="EUR",
        description="CliftonStrengths licence",
        cost_id=t.ident(),
    )

    # Assessment in the first days.
    at = opened_at + timedelta(days=2)
    t.add(
        at,
        coach_actor,
        c.CompleteAssessment,
        instrument="clifton_strengths",
        instrument_version="2024",
        assessment_id=t.ident(),
        result={
            "top5": rng.sample(
                [
                    "Achiever",
                    "Learner",
                    "Strategic",
                    "Relator",
                    "Input",
                    "Focus",
                    "Arranger",
                    "Empathy",
                ],
                5,
            )
        },
    )
    t.add(at, coach_actor, c.RankValues, values=rng.sample(VALUES, 5))
    t.add(
        at,
        coach_actor,
        c.IdentifyStrength,
        strength="Calm under pressure",
        evidence="Led the incident review that turned a crisis into a process change",
    )
    assumption_id = t.ident()
    t.add(
        at,
        coach_actor,
        c.IdentifyLimitingAssumption,
        assumption_id=assumption_id,
        assumption="People like me don't get hired into senior roles",
    )
    t.add(
        at,
        coach_actor,
        c.StateVision,
        horizon_years=5,
        vision="Doing work I am proud of, with room for family",
    )
    t.add(
        at,
        coach_actor,
        c.CheckWellbeing,
        confidence=rng.randint(2, 5),
        stress=rng.randint(5, 8),
        motivation=rng.randint(4, 7),
        imposter_feelings=rng.randint(5, 9),
    )

    goals: list[tuple[str, list[str]]] = []
    for title, measure, baseline, target in GOALS_BY_SEGMENT[segment]:
        goal_id = t.ident()
        target_date = (opened_at + timedelta(days=rng.randint(90, 240))).date()
        t.add(
            at,
            coach_actor,
            c.SetGoal,
            goal_id=goal_id,
            goal=SmartGoal.of(
                title=title,
                measure=measure,
                baseline=baseline,
                target=target,
                target_date=target_date,
                weight=rng.randint(1, 4),
                levels=_levels(target),
            ),
        )
        milestones = []
        for m_title in ("Plan agreed", "First concrete step", "Halfway there"):
            milestone_id = t.ident()
            t.add(
                at,
                coach_actor,
                c.DefineMilestone,
                goal_id=goal_id,
                milestone_id=milestone_id,
                title=m_title,
                due_date=target_date - timedelta(days=rng.randint(10, 60)),
            )
            milestones.append(milestone_id)
        t.add(
            at,
            coach_actor,
            c.AnticipateObstacle,
            goal_id=goal_id,
            obstacle="Evenings get eaten by work",
            if_then_plan="If a week slips, then book two 30-minute blocks on Saturday morning",
        )
        goals.append((goal_id, milestones))
    focus = rng.sample(SKILL_AREAS, 2)
    for area in focus:
        t.add(at, coach_actor, c.StartSkillFocus, area=area, baseline=rng.randint(2, 5))

    # Sessions on the planned cadence, with the work between them.
    withdraws_after = rng.randint(2, planned - 1) if rng.random() < 0.12 else None
    open_commitments: list[tuple[str, date]] = []
    held = 0
    session_at = opened_at + timedelta(days=rng.randint(3, 7))
    level = dict.fromkeys(focus, 4)
    score = {goal_id: -1 for goal_id, _ in goals}
    paused_once = False
    invoice_sessions = 0
    for n in range(planned):
        session_id = t.ident()
        scheduled_at = max(
            session_at - timedelta(days=min(6, cadence - 1)), opened_at + timedelta(hours=2)
        )
        slot = datetime.combine(session_at.date(), time(9 + rng.randint(0, 8)), tzinfo=UTC)
        if slot >= today - timedelta(hours=2):
            if scheduled_at < today:  # the next session is already in the diary
                t.add(
                    scheduled_at,
                    coach_actor,
                    c.ScheduleSession,
                    session_id=session_id,
                    scheduled_for=slot,
                    duration_minutes=60,
                )
            break
        t.add(
            scheduled_at,
            coach_actor,
            c.ScheduleSession,
            session_id=session_id,
            scheduled_for=slot,
            duration_minutes=60,
        )
        roll = rng.random()
        if roll < 0.05:
            t.add(slot, coach_actor, c.RecordNoShow, session_id=session_id)
        elif roll < 0.12:
            late = rng.random() < 0.4
            cancelled_at = max(slot - timedelta(hours=6 if late else 72), scheduled_at)
            t.add(
                cancelled_at + timedelta(minutes=5),
                coach_actor,
                c.CancelSession,
                session_id=session_id,
                late=late,
                counts_against_allocation=late,
                reason="Client travelling",
            )
        else:
            held += 1
            invoice_sessions += 1
            pillars = sorted(
                rng.sample(
                    ["assessment", "goals", "skills", "accountability", "support"],
                    rng.randint(1, 3),
                )
            )
            t.add(
                slot,
                coach_actor,
                c.HoldSession,
                session_id=session_id,
                duration_minutes=rng.choice([45, 55, 60, 60, 75]),
                pillars=pillars,
                notes=f"Session {held}: reviewed commitments, worked on {', '.join(pillars)}.",
            )
            after = slot + timedelta(hours=1)
            for commitment_id, due in open_commitments:
                if rng.random() < 0.72 or after.date() <= due:
                    t.add(after, coach_actor, c.KeepCommitment, commitment_id=commitment_id)
                else:
                    t.add(after, coach_actor, c.MissCommitment, commitment_id=commitment_id)
            open_commitments = []
            for _ in range(rng.randint(1, 2)):
                commitment_id = t.ident()
                due = (slot + timedelta(days=max(2, cadence - 2))).date()
                goal_id = rng.choice(goals)[0]
                t.add(
                    after,
                    coach_actor,
                    c.MakeCommitment,
                    commitment_id=commitment_id,
                    title=rng.choice(
                        [
                            "Send three outreach messages",
                            "Rewrite LinkedIn headline",
                            "Practise the STAR answers",
                            "Ask for a stretch project",
                        ]
                    ),
                    due_date=due,
                    goal_id=goal_id,
                )
                open_commitments.append((commitment_id, due))
            for goal_id, milestones in goals:
                if score[goal_id] < 2 and rng.random() < 0.45:
                    score[goal_id] += 1
                t.add(
                    after,
                    coach_actor,
                    c.RateGoalProgress,
                    goal_id=goal_id,
                    score=score[goal_id],
                    rater="coach",
                )
                if milestones and rng.random() < 0.35:
                    t.add(
                        after,
                        coach_actor,
                        c.HitMilestone,
                        goal_id=goal_id,
                        milestone_id=milestones.pop(0),
                    )
            for area in focus:
                if rng.random() < 0.6:
                    t.add(
                        after,
                        coach_actor,
                        c.CompletePractice,
                        area=area,
                        minutes=rng.choice([20, 30, 45]),
                        description="Mock interview drill",
                    )
            if held % 2 == 0:
                t.add(
                    after,
                    coach_actor,
                    c.CheckWellbeing,
                    confidence=min(10, 3 + held // 2 + rng.randint(0, 2)),
                    stress=max(0, 7 - held // 2 + rng.randint(-1, 1)),
                    motivation=min(10, 5 + held // 3 + rng.randint(0, 2)),
                    imposter_feelings=max(0, 7 - held // 2),
                )
            if held == 3:
                t.add(
                    after,
                    coach_actor,
                    c.ReframeLimitingAssumption,
                    assumption_id=assumption_id,
                    reframe="Senior hires value what I did in the last two years",
                )
                t.add(
                    after,
                    coach_actor,
                    c.GiveFeedback,
                    direction="coach_to_client",
                    feedback="Your preparation is now consistently strong.",
                )
            if held == 4 and rng.random() < 0.5:
                t.add(
                    after,
                    coach_actor,
                    c.CelebrateWin,
                    win="First recruiter call booked",
                    goal_id=goals[0][0],
                )
        if invoice_sessions == 4:
            invoice_id = t.ident()
            amount = fee * invoice_sessions
            issued = session_at + timedelta(days=1)
            t.add(
                issued,
                admin_actor,
                c.IssueInvoice,
                invoice_id=invoice_id,
                amount=amount,
                currency="EUR",
                description=f"{invoice_sessions} sessions",
            )
            if issued + timedelta(days=14) < today:
                paid = amount if rng.random() < 0.8 else (amount / 2).quantize(Decimal("0.01"))
                t.add(
                    issued + timedelta(days=14),
                    admin_actor,
                    c.ReceivePayment,
                    invoice_id=invoice_id,
                    amount=paid,
                    currency="EUR",
                )
            invoice_sessions = 0
        if withdraws_after is not None and n + 1 >= withdraws_after:
            t.add(
                session_at + timedelta(days=2),
                admin_actor,
                c.CloseEngagement,
                close_reason="client_withdrew",
                reason="New job demands all their time",
            )
            return (opening_ctx, opening), t.steps
        gap = cadence + rng.choice([-2, -1, 0, 0, 1, 3, 8])
        if not paused_once and rng.random() < 0.07:
            paused_once = True
            t.add(
                session_at + timedelta(days=1),
                admin_actor,
                c.PauseEngagement,
                reason="Family leave",
            )
            gap += 21
            t.add(session_at + timedelta(days=gap - 8), admin_actor, c.ResumeEngagement)
        session_at = session_at + timedelta(days=max(3, gap))

    for commitment_id, due in open_commitments:
        if session_at.date() > due and session_at < today:
            t.add(session_at, coach_actor, c.KeepCommitment, commitment_id=commitment_id)
    if invoice_sessions:
        t.add(
            min(session_at, today),
            admin_actor,
            c.IssueInvoice,
            invoice_id=t.ident(),
            amount=fee * invoice_sessions,
            currency="EUR",
            description=f"{invoice_sessions} sessions",
        )
    if held >= planned - 2 and session_at < today - timedelta(days=5):
        end = session_at
        for area in focus:
            t.add(
                end,
                coach_actor,
                c.ReassessSkill,
                area=area,
                after=min(10, level[area] + rng.randint(1, 4)),
            )
        for goal_id, _ in goals:
            if score[goal_id] >= 1:
                t.add(end, coach_actor, c.AchieveGoal, goal_id=goal_id)
        t.add(
            end,
            admin_actor,
            c.CloseEngagement,
            close_reason="completed",
            reason="All planned sessions held",
        )
        kind, base_value = OUTCOMES_BY_SEGMENT[segment]
        outcome_id = t.ident()
        value = Decimal(int(base_value * rng.uniform(0.5, 1.6)))
        extreme = rng.random() < 0.08
        if extreme:
            value *= 8
        t.add(
            end + timedelta(days=3),
            admin_actor,
            c.ReportTangibleOutcome,
            outcome_id=outcome_id,
            kind=kind,
            annualized_value=value,
            currency="EUR",
            attribution=Decimal(rng.choice(["0.3", "0.4", "0.5", "0.6"])),
            confidence=Decimal(rng.choice(["0.6", "0.7", "0.8", "0.9"])),
            source=rng.choice(["client", "sponsor", "hr_records"]),
            description="Reported in the three-month follow-up",
        )
        if extreme:
            t.add(
                end + timedelta(days=4),
                admin_actor,
                c.ExcludeOutcome,
                outcome_id=outcome_id,
                exclusion="extreme",
                reason="Equity grant counted as salary",
            )
        elif rng.random() < 0.75:
            t.add(
                end + timedelta(days=4),
                admin_actor,
                c.VerifyOutcome,
                outcome_id=outcome_id,
                evidence="Offer letter seen",
            )
        t.add(
            end + timedelta(days=3),
            admin_actor,
            c.ReportIntangibleOutcome,
            kind="confidence",
            before=rng.randint(2, 5),
            after=rng.randint(6, 9),
        )
        t.add(
            end + timedelta(days=3),
            admin_actor,
            c.SurveyReaction,
            satisfaction=rng.choice([3, 4, 4, 5, 5]),
            nps=rng.choice([6, 8, 9, 9, 10, 10]),
            comment="Helpful and practical",
        )
    return (opening_ctx, opening), t.steps


def firm_timelines(
    seed: int, engagements: int, today: datetime, firm_id: str
) -> Iterator[
    tuple[tuple[CommandContext, c.OpenEngagement], list[tuple[CommandContext, c.Command]]]
]:
    """Yield each engagement's opening and timeline, deterministically for ``seed``."""
    # Keyed by firm too: another firm seeded with the same seed gets its own ids.
    rng = random.Random(f"{seed}:{firm_id}")
    for index in range(engagements):
        opening, steps = _engagement(rng, firm_id, today, index)
        steps.sort(key=lambda step: step[0].occurred_at or today)
        yield opening, steps


def seed_firm(
    app: Engagements,
    *,
    seed: int = 7,
    engagements: int = 36,
    today: datetime | None = None,
    firm_id: str = "firm-northwind",
    progress: Any = None,
) -> SeedReport:
    """Write a firm's engagements into ``app``; ``progress`` is called once per engagement.

    Engagements already in the store (same seed, same ids) are skipped, not doubled.
    """
    today = today or datetime.now(UTC)
    report = SeedReport()
    for opening, steps in firm_timelines(seed, engagements, today, firm_id):
        try:
            result = app.import_engagement(opening, steps)
        except EngagementAlreadyExists:
            report.skipped += 1
        else:
            report.engagements += 1
            report.events += result.version
            report.engagement_ids.append(result.engagement_id)
        if progress is not None:
            progress(1)
    return report
