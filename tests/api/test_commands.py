"""Every command endpoint, driven over HTTP through one realistic engagement."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from api import Services
from api.schemas import COMMAND_SCHEMAS
from domain import commands as c
from domain.commands import ENGAGEMENT_COMMANDS
from tests.api.conftest import (
    FIRM,
    assert_problem,
    history,
    open_engagement,
    opening_body,
    post_command,
    slug,
)

TODAY = datetime.now(UTC).date()


def _day(days: int) -> str:
    return (TODAY + timedelta(days=days)).isoformat()


def _moment(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


def _goal(title: str = "Land a product-manager role") -> dict[str, Any]:
    return {
        "title": title,
        "measure": "Offers received",
        "baseline": "No interviews in six months",
        "target": "One written offer",
        "target_date": _day(120),
        "weight": 3,
        "levels": {
            "-2": "No applications",
            "-1": "Applications, no interviews",
            "0": "Interviews, no offer",
            "1": "One offer",
            "2": "Two offers or more",
        },
    }


Ids = dict[str, str]


@dataclass(frozen=True)
class Step:
    """One command of the walk: what to send, the event it records, what id it returns."""

    command: type[c.Command]
    event: str
    body: Callable[[Ids], dict[str, Any]]
    keep: str | None = None


#: A whole engagement, in an order the domain accepts, using every command at least once.
WALK: tuple[Step, ...] = (
    Step(
        c.SignAgreement,
        "AgreementSigned",
        lambda _: {"sponsor_may_see": ["attendance", "goals", "roi"]},
    ),
    Step(c.GrantConsent, "ConsentGranted", lambda _: {"scope": "research"}),
    Step(
        c.CompleteAssessment,
        "AssessmentCompleted",
        lambda _: {
            "instrument": "clifton_strengths",
            "instrument_version": "4.0",
            "result": {"top5": ["Learner", "Achiever", "Strategic", "Input", "Focus"]},
        },
        keep="assessment",
    ),
    Step(c.RankValues, "ValuesRanked", lambda _: {"values": ["autonomy", "mastery", "family"]}),
    Step(
        c.IdentifyStrength,
        "StrengthIdentified",
        lambda _: {"strength": "Explains complex ideas simply", "evidence": "Led 12 trainings"},
    ),
    Step(
        c.IdentifyLimitingAssumption,
        "LimitingAssumptionIdentified",
        lambda _: {"assumption": "I am too old to change careers"},
        keep="assumption",
    ),
    Step(
        c.ReframeLimitingAssumption,
        "LimitingAssumptionReframed",
        lambda ids: {
            "assumption_id": ids["assumption"],
            "reframe": "Twenty years of domain knowledge is an asset",
        },
    ),
    Step(
        c.StateVision,
        "VisionStated",
        lambda _: {"horizon_years": 5, "vision": "Leading a product team in health tech"},
    ),
    Step(c.SetGoal, "GoalSet", lambda _: {"goal": _goal()}, keep="goal"),
    Step(
        c.IdentifyGap,
        "GapIdentified",
        lambda ids: {"kind": "network", "description": "No PMs in network", "goal_id": ids["goal"]},
    ),
    Step(
        c.DefineMilestone,
        "MilestoneDefined",
        lambda ids: {
            "goal_id": ids["goal"],
            "title": "Five informational calls",
            "due_date": _day(30),
        },
        keep="milestone",
    ),
    Step(
        c.HitMilestone,
        "MilestoneHit",
        lambda ids: {"goal_id": ids["goal"], "milestone_id": ids["milestone"]},
    ),
    Step(
        c.AnticipateObstacle,
        "ObstacleAnticipated",
        lambda ids: {
            "goal_id": ids["goal"],
            "obstacle": "Rejection fatigue",
            "if_then_plan": "If rejected, then ask for feedback within a day",
        },
    ),
    Step(
        c.RateGoalProgress,
        "GoalProgressRated",
        lambda ids: {"goal_id": ids["goal"], "score": 1, "rater": "coach"},
    ),
    Step(
        c.ReviseGoal,
        "GoalRevised",
        lambda ids: {
            "goal_id": ids["goal"],
            "goal": _goal("Land a senior product-manager role"),
            "reason": "Interviews went better than expected",
        },
    ),
    Step(c.AchieveGoal, "GoalAchieved", lambda ids: {"goal_id": ids["goal"]}),
    Step(c.SetGoal, "GoalSet", lambda _: {"goal": _goal("Publish a portfolio")}, keep="goal2"),
    Step(
        c.AbandonGoal,
        "GoalAbandoned",
        lambda ids: {"goal_id": ids["goal2"], "reason": "No longer needed after the offer"},
    ),
    Step(c.StartSkillFocus, "SkillFocusStarted", lambda _: {"area": "networking", "baseline": 3}),
    Step(
        c.CompletePractice,
        "PracticeCompleted",
        lambda _: {"area": "networking", "minutes": 45, "description": "Mock coffee chats"},
    ),
    Step(c.ReassessSkill, "SkillReassessed", lambda _: {"area": "networking", "after": 6}),
    Step(
        c.MakeCommitment,
        "CommitmentMade",
        lambda _: {"title": "Update the CV", "due_date": _day(-3)},
        keep="late_commitment",
    ),
    Step(
        c.MissCommitment, "CommitmentMissed", lambda ids: {"commitment_id": ids["late_commitment"]}
    ),
    Step(
        c.MakeCommitment,
        "CommitmentMade",
        lambda ids: {"title": "Apply to 3 roles", "due_date": _day(7), "goal_id": ids["goal"]},
        keep="commitment",
    ),
    Step(
        c.RenegotiateCommitment,
        "CommitmentRenegotiated",
        lambda ids: {
            "commitment_id": ids["commitment"],
            "new_due_date": _day(14),
            "reason": "Waiting for a referral",
        },
    ),
    Step(c.KeepCommitment, "CommitmentKept", lambda ids: {"commitment_id": ids["commitment"]}),
    Step(
        c.GiveFeedback,
        "FeedbackGiven",
        lambda _: {"direction": "coach_to_client", "feedback": "Your stories are vivid"},
    ),
    Step(
        c.CorrectCourse,
        "CourseCorrected",
        lambda ids: {"correction": "Fewer, better applications", "goal_id": ids["goal"]},
    ),
    Step(c.CelebrateWin, "WinCelebrated", lambda _: {"win": "First final-round interview"}),
    Step(
        c.CheckWellbeing,
        "WellbeingChecked",
        lambda _: {"confidence": 6, "stress": 4, "motivation": 8, "imposter_feelings": 5},
    ),
    Step(
        c.MakeReferral,
        "ReferralMade",
        lambda _: {"referral_kind": "counsellor", "reason": "Persistent sleep problems"},
    ),
    Step(
        c.ScheduleSession,
        "SessionScheduled",
        lambda _: {"scheduled_for": _moment(-3), "duration_minutes": 60},
        keep="session",
    ),
    Step(
        c.RescheduleSession,
        "SessionRescheduled",
        lambda ids: {"session_id": ids["session"], "scheduled_for": _moment(-2)},
    ),
    Step(
        c.HoldSession,
        "SessionHeld",
        lambda ids: {
            "session_id": ids["session"],
            "duration_minutes": 55,
            "pillars": ["goals", "support"],
            "notes": "Practised the salary conversation",
        },
    ),
    Step(
        c.ScheduleSession,
        "SessionScheduled",
        lambda _: {"scheduled_for": _moment(-1), "duration_minutes": 45},
        keep="session2",
    ),
    Step(c.RecordNoShow, "SessionNoShow", lambda ids: {"session_id": ids["session2"]}),
    Step(
        c.ScheduleSession,
        "SessionScheduled",
        lambda _: {"scheduled_for": _moment(17), "duration_minutes": 45},
        keep="session3",
    ),
    Step(
        c.CancelSession,
        "SessionCancelled",
        lambda ids: {"session_id": ids["session3"], "late": True, "reason": "Client travelling"},
    ),
    Step(
        c.ReportTangibleOutcome,
        "TangibleOutcomeReported",
        lambda _: {
            "kind": "salary_increase",
            "annualized_value": "12000.00",
            "currency": "EUR",
            "attribution": "0.4",
            "confidence": "0.8",
            "source": "client",
        },
        keep="outcome",
    ),
    Step(
        c.VerifyOutcome,
        "OutcomeVerified",
        lambda ids: {"outcome_id": ids["outcome"], "evidence": "Signed offer letter"},
    ),
    Step(
        c.ReportTangibleOutcome,
        "TangibleOutcomeReported",
        lambda _: {
            "kind": "revenue",
            "annualized_value": "900000.00",
            "currency": "EUR",
            "attribution": "1",
            "confidence": "0.1",
            "source": "coach",
        },
        keep="outcome2",
    ),
    Step(
        c.ExcludeOutcome,
        "OutcomeExcluded",
        lambda ids: {"outcome_id": ids["outcome2"], "exclusion": "extreme"},
    ),
    Step(
        c.ReportIntangibleOutcome,
        "IntangibleOutcomeReported",
        lambda _: {"kind": "clarity", "before": 3, "after": 8},
    ),
    Step(
        c.SurveyReaction,
        "ReactionSurveyed",
        lambda _: {"satisfaction": 5, "nps": 9, "comment": "Worth it"},
    ),
    Step(
        c.IssueInvoice,
        "InvoiceIssued",
        lambda _: {"amount": "150.00", "currency": "EUR", "description": "Session 1"},
        keep="invoice",
    ),
    Step(
        c.ReceivePayment,
        "PaymentReceived",
        lambda ids: {"invoice_id": ids["invoice"], "amount": "150.00", "currency": "EUR"},
    ),
    Step(
        c.IssueInvoice,
        "InvoiceIssued",
        lambda _: {"amount": "150.00", "currency": "EUR"},
        keep="invoice2",
    ),
    Step(
        c.VoidInvoice,
        "InvoiceVoided",
        lambda ids: {"invoice_id": ids["invoice2"], "reason": "Issued twice"},
    ),
    Step(
        c.RecordCost,
        "CostRecorded",
        lambda _: {"category": "platform", "amount": "12.50", "currency": "EUR"},
    ),
    Step(c.WithdrawConsent, "ConsentWithdrawn", lambda _: {"scope": "research"}),
    Step(c.PauseEngagement, "EngagementPaused", lambda _: {"reason": "Client on holiday"}),
    Step(c.ResumeEngagement, "EngagementResumed", lambda _: {}),
    Step(
        c.ReassignCoach,
        "CoachReassigned",
        lambda _: {"to_coach_id": "coach-2", "reason": "Coach on parental leave"},
    ),
    Step(
        c.CloseEngagement,
        "EngagementClosed",
        lambda _: {"close_reason": "completed", "reason": "All goals reached"},
    ),
    Step(c.ReopenEngagement, "EngagementReopened", lambda _: {"reason": "Follow-up requested"}),
    Step(c.EraseSubject, "SubjectErased", lambda _: {}),
)

#: Ids that the walk's bodies may name, for requests where nothing needs to exist.
PLACEHOLDER_IDS: Ids = {
    name: str(uuid.uuid4())
    for name in {step.keep for step in WALK if step.keep}
    | {"goal", "milestone", "commitment", "session", "outcome", "invoice"}
}


def test_every_command_has_a_schema_and_a_post_route(flask_app: Flask) -> None:
    assert set(COMMAND_SCHEMAS) == set(ENGAGEMENT_COMMANDS)
    assert len(ENGAGEMENT_COMMANDS) == 50  # the README: "50 in all"
    routes = {
        rule.rule: rule.methods or set()
        for rule in flask_app.url_map.iter_rules()
        if rule.rule.startswith("/engagements/")
    }
    for command in ENGAGEMENT_COMMANDS:
        path = f"/engagements/<uuid:engagement_id>/{slug(command)}"
        assert path in routes, f"{command.__name__} has no route"
        assert "POST" in routes[path]


def test_the_walk_uses_every_command() -> None:
    assert {step.command for step in WALK} == set(ENGAGEMENT_COMMANDS)


def test_every_command_endpoint_answers_404_for_an_unknown_engagement(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    unknown = str(uuid.uuid4())
    for step in WALK:
        response = post_command(
            client, auth, unknown, slug(step.command), step.body(PLACEHOLDER_IDS)
        )
        assert_problem(response, 404, "engagement_not_found")


def test_open_engagement_answers_201_with_location_and_etag(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    response = client.post("/engagements", json=opening_body(), headers=auth)
    assert response.status_code == 201
    body = response.get_json()
    assert body["version"] == 1
    assert body["result"] == body["engagement_id"]
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/engagements/{body['engagement_id']}"
    [opened] = history(client, auth, body["engagement_id"])
    assert opened["event_type"] == "EngagementOpened"
    assert opened["metadata"]["actor_id"] == "coach-1"
    assert opened["metadata"]["firm_id"] == FIRM
    assert opened["payload"]["fee_per_session"] == "150.00"


def test_a_realistic_engagement_runs_through_every_command_over_http(
    client: FlaskClient, token_for: Callable[..., str], services: Services
) -> None:
    services.accounts.create_user(FIRM, "coach-2", "coach")
    users = {"coach": "coach-1", "firm_admin": "firm-admin-1", "coach-2": "coach-2"}
    tokens = {
        role: {
            "Authorization": f"Bearer {services.accounts.issue_token(FIRM, user)}",
            # Headers a client might use to claim another identity: never believed.
            "X-Actor-Id": "mallory",
            "X-User-Id": "mallory",
            "X-Firm-Id": "firm-south",
        }
        for role, user in users.items()
    }
    # Opened ten days ago: the commitment due three days ago falls within its life.
    engagement_id = open_engagement(client, tokens["coach"], occurred_at=_moment(-10))
    ids: Ids = {}
    version = 1
    coaches = ("coach", "firm_admin")
    for number, step in enumerate(WALK):
        # The current coach and a firm admin take turns; only a firm admin may erase.
        role = "firm_admin" if step.command is c.EraseSubject else coaches[number % 2]
        response = post_command(
            client,
            tokens[role],
            engagement_id,
            slug(step.command),
            step.body(ids),
            If_Match=f'"{version}"',
        )
        assert response.status_code == 200, (step.command.__name__, response.get_json())
        version += 1
        body = response.get_json()
        assert body == {
            "engagement_id": engagement_id,
            "version": version,
            "result": body["result"],
        }
        assert response.headers["ETag"] == f'"{version}"'
        if step.keep:
            assert body["result"], step.command.__name__
            ids[step.keep] = body["result"]
        events = history(client, tokens["firm_admin"], engagement_id)
        assert len(events) == version
        last = events[-1]
        assert last["version"] == version
        assert last["event_type"] == step.event
        assert last["metadata"]["actor_id"] == users[role]
        assert last["metadata"]["actor_role"] == role.removesuffix("-2")
        assert last["metadata"]["firm_id"] == FIRM
        if step.command is c.ReassignCoach:
            # coach-1 no longer coaches it: no more commands or reads; coach-2 takes over.
            refused = post_command(
                client, tokens["coach"], engagement_id, "celebrate-win", {"win": "x"}
            )
            assert_problem(refused, 403, "forbidden")
            gone = client.get(f"/engagements/{engagement_id}", headers=tokens["coach"])
            assert_problem(gone, 403, "forbidden")
            coaches = ("coach-2", "firm_admin")

    state = client.get(f"/engagements/{engagement_id}", headers=tokens["coach-2"])
    assert state.status_code == 200
    assert state.headers["ETag"] == f'"{version}"'
    final = state.get_json()
    assert final["version"] == version == len(WALK) + 1
    assert final["erased"] is True
    assert final["status"] == "active"
    assert final["coach_id"] == "coach-2"
    assert final["goals"][ids["goal"]]["status"] == "achieved"
    assert final["goals"][ids["goal2"]]["status"] == "abandoned"
    assert final["commitments"][ids["late_commitment"]]["status"] == "missed"
    assert final["commitments"][ids["commitment"]]["status"] == "kept"
    assert final["sessions"][ids["session"]]["status"] == "held"
    assert final["sessions"][ids["session2"]]["status"] == "no_show"
    assert final["sessions"][ids["session3"]]["status"] == "cancelled"
    assert final["outcomes"][ids["outcome"]]["verified"] is True
    assert final["invoices"][ids["invoice"]]["paid"] == "150.00"
    assert final["invoices"][ids["invoice2"]]["voided"] is True
    assert final["costs"] == dict.fromkeys(final["costs"], "12.50")

    # After erasure the engagement takes nothing new, and says so with a stable code.
    refused = post_command(
        client, tokens["coach-2"], engagement_id, "check-wellbeing", WALK[29].body(ids)
    )
    assert_problem(refused, 409, "subject_erased")


def test_the_actor_cannot_be_set_in_the_body(client: FlaskClient, auth: dict[str, str]) -> None:
    engagement_id = open_engagement(client, auth)
    response = post_command(
        client,
        auth,
        engagement_id,
        "pause-engagement",
        {"reason": "holiday", "actor_id": "mallory", "actor_role": "firm_admin", "firm_id": "x"},
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert set(problem["errors"]) == {"actor_id", "actor_role", "firm_id"}
    assert len(history(client, auth, engagement_id)) == 1


def test_occurred_at_and_causation_id_are_stamped_on_the_event(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    engagement_id = open_engagement(
        client, auth, occurred_at=(datetime.now(UTC) - timedelta(days=10)).isoformat()
    )
    occurred = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    cause = str(uuid.uuid4())
    response = post_command(
        client,
        auth,
        engagement_id,
        "celebrate-win",
        {"win": "Offer", "occurred_at": occurred.isoformat(), "causation_id": cause},
    )
    assert response.status_code == 200, response.get_json()
    last = history(client, auth, engagement_id)[-1]
    assert datetime.fromisoformat(last["occurred_at"]) == occurred
    assert last["metadata"]["causation_id"] == cause
    assert datetime.fromisoformat(last["recorded_at"]) > occurred
    assert date.fromisoformat(last["recorded_at"][:10]) >= TODAY
