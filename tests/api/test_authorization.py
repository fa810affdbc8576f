"""The authorization matrix: every endpoint × role × own or another engagement × own or
another firm, plus the browser pages and idempotency keys.

The expectations are written here from the rules (README, "Who may do what"), not read
from api/authorization.py, so a change of policy has to change both. The endpoints are
read from the app's URL map and its OpenAPI document: an endpoint with no entry here
fails ``test_every_endpoint_is_in_the_matrix``.

One module-wide world (SQLite): two firms; in the north firm the engagement OWN (coach-1,
client-1, sponsor-1), OTHER (coach-2, client-2, sponsor-2) and two walked through every
command (WALK_COACH by coach-1, WALK_ADMIN by the firm admin); in the south firm FOREIGN
with the very same person ids as OWN (a matching user id in another firm grants
nothing), and one of coach-9. MISSING is an id that never existed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import MapAdapter
from werkzeug.test import TestResponse

from api import Services, create_app
from coachlog.bootstrap import bootstrap_services
from coachlog.settings import Settings
from domain.commands import ENGAGEMENT_COMMANDS, EraseSubject, ReassignCoach
from projections.runner import ProjectionRunner
from tests.api.conftest import (
    FIRM,
    OTHER_FIRM,
    assert_problem,
    opening_body,
    post_command,
    slug,
)
from tests.api.test_commands import WALK, Ids

NORTH, SOUTH = FIRM, OTHER_FIRM
ROLES = ("firm_admin", "coach", "client", "sponsor", "analyst", "auditor")
#: The user each role signs in as (north and south alike).
USER = {
    "firm_admin": "firm-admin-1",
    "coach": "coach-1",
    "client": "client-1",
    "sponsor": "sponsor-1",
    "analyst": "analyst-1",
    "auditor": "auditor-1",
}
OWN_PEOPLE = {"coach_id": "coach-1", "client_id": "client-1", "sponsor_id": "sponsor-1"}
OTHER_PEOPLE = {"coach_id": "coach-2", "client_id": "client-2", "sponsor_id": "sponsor-2"}
TARGETS = ("own", "other", "foreign", "missing")
WELLBEING = {"confidence": 6, "stress": 4, "motivation": 8, "imposter_feelings": 5}

# -- the rules, as the README states them -------------------------------------------------

ALL, OWN = "all", "own"
KINDS = (
    "open",
    "command",
    "erase",
    "read",
    "dashboard",
    "sponsor_report",
    "list",
    "portfolio",
    "firm",
    "audit",
)
SPEC: dict[str, dict[str, str]] = {
    "firm_admin": dict.fromkeys(KINDS, ALL),
    "coach": {
        "open": OWN,
        "command": OWN,
        "read": OWN,
        "dashboard": OWN,
        "sponsor_report": OWN,
        "list": OWN,
        "portfolio": OWN,
    },
    "client": {"read": OWN, "dashboard": OWN},
    "sponsor": {"sponsor_report": OWN},
    "analyst": {"firm": ALL},
    "auditor": {
        "read": ALL,
        "dashboard": ALL,
        "sponsor_report": ALL,
        "list": ALL,
        "portfolio": ALL,
        "firm": ALL,
        "audit": ALL,
    },
}

#: What each endpoint of the JSON API is, by Flask endpoint name.
API_KINDS: dict[str, str] = {
    "engagements.EngagementCollection": "open",
    "engagements.EngagementResource": "read",
    "engagements.EngagementHistory": "read",
    "dashboards.EngagementList": "list",
    "dashboards.EngagementDashboard": "dashboard",
    "dashboards.SponsorReport": "sponsor_report",
    "dashboards.CoachPortfolio": "portfolio",
    "dashboards.FirmOverview": "firm",
    "dashboards.FirmRoi": "firm",
    **{
        f"engagements.{command.METHOD}": "erase" if command is EraseSubject else "command"
        for command in ENGAGEMENT_COMMANDS
    },
}
#: The tamper-evidence endpoints (api/audit.py), once the app registers them.
AUDIT_KINDS = {
    "audit.EngagementAudit": "audit",
    "audit.FirmAudit": "audit",
    "audit.LatestAnchor": "audit",
}
#: The browser pages, by the read model each one shows.
PAGE_KINDS = {
    "pages.firm": "firm",
    "pages.coach": "portfolio",
    "pages.engagement": "dashboard",
    "pages.sponsor": "sponsor_report",
}
#: Reachable without a role: probes, metrics, docs, signing in and out, static files.
UNGUARDED = {
    "health.healthz",
    "health.readyz",
    "metrics.metrics",
    "api-docs.openapi_json",
    "api-docs.openapi_swagger_ui",
    "swagger_assets",
    "pages.static",
    "pages.index",
    "pages.sign_in",
    "pages.sign_out",
}


def expected(role: str, kind: str, target: str) -> int:
    """The status of a request about an engagement (or a coach) for ``role``."""
    if target in ("foreign", "missing"):
        return 404  # for every role: nothing tells another firm's from none at all
    scope = SPEC[role].get(kind)
    if scope == ALL or (scope == OWN and target == "own"):
        return 200
    return 403


def expected_portfolio(role: str, target: str) -> int:
    """A coach id is not an engagement: a coach asking for anyone else's is refused
    without looking (403), a firm-wide reader gets 404 for a coach with nothing here."""
    scope = SPEC[role].get("portfolio")
    if scope == OWN:
        return 200 if target == "own" else 403
    if scope == ALL:
        return 200 if target in ("own", "other") else 404
    return 403


# -- the world --------------------------------------------------------------------------


@dataclass
class World:
    app: Flask
    client: FlaskClient
    services: Services
    adapter: MapAdapter
    tokens: dict[tuple[str, str], str]
    ids: dict[str, str]  # own, other, foreign, missing, walk_coach, walk_admin, coach9
    people: dict[str, dict[str, str]]
    declared: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    north_ids: set[str] = field(default_factory=set)

    def auth(self, user: str, firm: str = NORTH) -> dict[str, str]:
        key = (firm, user)
        if key not in self.tokens:
            self.tokens[key] = self.services.accounts.issue_token(firm, user)
        return {"Authorization": f"Bearer {self.tokens[key]}"}

    def call(
        self,
        role: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: str | None = None,
        firm: str = NORTH,
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        """Send a request as ``role`` and check its status is declared in OpenAPI."""
        sent = {**self.auth(user or USER[role], firm), **(headers or {})}
        if body is None:
            response = self.client.open(path, method=method, headers=sent)
        else:
            response = self.client.open(path, method=method, json=body, headers=sent)
        endpoint, _ = self.adapter.match(urlsplit(path).path, method)
        assert response.status_code in self.declared[(endpoint, method)], (
            f"{method} {path} answered {response.status_code}, which its OpenAPI operation "
            f"does not declare ({sorted(self.declared[(endpoint, method)])})"
        )
        return response

    def version(self, key: str) -> int:
        """The current version of one of the world's engagements, from the store."""
        return self.version_of(self.ids[key], SOUTH if key == "foreign" else NORTH)

    def version_of(self, engagement_id: str, firm: str = NORTH) -> int:
        return self.services.engagements.get(firm, uuid.UUID(engagement_id)).version

    def project(self) -> None:
        ProjectionRunner(self.services.engagements, self.services.progress).catch_up()


def _declared(client: FlaskClient, adapter: MapAdapter) -> dict[tuple[str, str], set[int]]:
    document = client.get("/openapi.json").get_json()
    declared: dict[tuple[str, str], set[int]] = {}
    for path, operations in document["paths"].items():
        concrete = path.replace("{engagement_id}", str(uuid.uuid4())).replace(
            "{coach_id}", "someone"
        )
        for method, operation in operations.items():
            if method == "parameters":  # shared by the path's operations, not one of them
                continue
            endpoint, _ = adapter.match(concrete, method.upper())
            declared[(endpoint, method.upper())] = {int(s) for s in operation["responses"]}
    return declared


def _open(client: FlaskClient, headers: dict[str, str], **fields: Any) -> str:
    response = client.post("/engagements", json=opening_body(**fields), headers=headers)
    assert response.status_code == 201, response.get_json()
    engagement_id: str = response.get_json()["engagement_id"]
    return engagement_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path: Path = tmp_path_factory.mktemp("authz") / "coachlog.db"
    services = bootstrap_services(Settings(database_url=f"sqlite:///{path}"))
    users = [*USER.items(), ("coach", "coach-2"), ("client", "client-2"), ("sponsor", "sponsor-2")]
    for firm in (NORTH, SOUTH):
        services.accounts.create_firm(firm, firm)
        for role, user in users:
            services.accounts.create_user(firm, user, role)
    services.accounts.create_user(SOUTH, "coach-9", "coach")
    app = create_app(services)
    client = app.test_client()
    adapter = app.url_map.bind("localhost")
    world = World(app, client, services, adapter, {}, {}, {})
    world.declared = _declared(client, adapter)
    admin, south_admin = world.auth("firm-admin-1"), world.auth("firm-admin-1", SOUTH)
    ids = world.ids
    ids["own"] = _open(client, admin, **OWN_PEOPLE)
    ids["other"] = _open(client, admin, **OTHER_PEOPLE, client_name="Ada Lovelace")
    # Walked through every command; clients of their own, so that erasing them (which
    # reaches every engagement of the client) leaves OWN and OTHER alone.
    # Opened ten days ago: the walk's commitment due three days ago is within its life.
    walk_opened = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    ids["walk_coach"] = _open(
        client, admin, **{**OWN_PEOPLE, "client_id": "client-w1"}, occurred_at=walk_opened
    )
    # (WALK reassigns to coach-2, so this one starts with a coach who is no user.)
    ids["walk_admin"] = _open(
        client, admin, coach_id="coach-3", client_id="client-w2", occurred_at=walk_opened
    )
    ids["foreign"] = _open(client, south_admin, **OWN_PEOPLE)
    ids["coach9"] = _open(client, south_admin, coach_id="coach-9", client_id="client-9")
    ids["missing"] = str(uuid.uuid4())
    world.people = {"own": OWN_PEOPLE, "other": OTHER_PEOPLE, "foreign": OWN_PEOPLE}
    world.north_ids = {ids["own"], ids["other"], ids["walk_coach"], ids["walk_admin"]}
    world.project()
    try:
        yield world
    finally:
        services.close()


# -- every endpoint has a rule ----------------------------------------------------------


def test_every_endpoint_is_in_the_matrix(world: World) -> None:
    endpoints = {rule.endpoint for rule in world.app.url_map.iter_rules()}
    unknown = endpoints - UNGUARDED - set(API_KINDS) - set(PAGE_KINDS) - set(AUDIT_KINDS)
    assert not unknown, f"endpoints with no row in the authorization matrix: {unknown}"
    assert set(API_KINDS) | set(PAGE_KINDS) <= endpoints
    # Every documented operation is one the matrix knows, and each can answer 403.
    kinds = {**API_KINDS, **{e: k for e, k in AUDIT_KINDS.items() if e in endpoints}}
    documented = {endpoint for endpoint, _ in world.declared}
    assert documented == set(kinds), documented ^ set(kinds)
    for (endpoint, method), statuses in world.declared.items():
        assert {401, 403} <= statuses, (endpoint, method, statuses)
        if kinds[endpoint] not in ("open", "list", "firm", "audit"):
            assert 404 in statuses, (endpoint, method, statuses)
    # The command matrix below walks WALK: it must reach every command endpoint.
    walked = {f"engagements.{step.command.METHOD}" for step in WALK}
    assert walked == {e for e, kind in API_KINDS.items() if kind in ("command", "erase")}


# -- reads of one engagement ------------------------------------------------------------


def _reads() -> tuple[tuple[str, str], ...]:
    """Every read of one engagement: its kind and the path after the id."""
    now = quote(datetime.now(UTC).isoformat(), safe="")
    return (
        ("read", ""),
        ("read", "?version=1"),
        ("read", f"?recorded_at={now}"),
        ("read", f"?occurred_at={now}"),
        ("read", "/history"),
        ("dashboard", "/dashboard"),
        ("sponsor_report", "/sponsor-report"),
    )


def _check_body(world: World, suffix: str, target: str, body: dict[str, Any]) -> None:
    """An allowed read answers about exactly the engagement asked for."""
    engagement_id, people = world.ids[target], world.people[target]
    if suffix == "/history":
        assert body["engagement_id"] == engagement_id
        opened = body["events"][0]
        assert opened["event_type"] == "EngagementOpened"
        assert opened["metadata"]["firm_id"] == NORTH
        assert opened["payload"]["client_id"] == people["client_id"]
    elif suffix in ("/dashboard", "/sponsor-report"):
        data = body["data"]
        assert data["engagement_id"] == engagement_id
        assert data["sponsor_id"] == people["sponsor_id"]
        if suffix == "/dashboard":
            assert (data["client_id"], data["coach_id"]) == (
                people["client_id"],
                people["coach_id"],
            )
        else:
            assert "client_id" not in data
    else:
        assert body["id"] == engagement_id
        assert body["firm_id"] == NORTH
        assert (body["client_id"], body["coach_id"]) == (people["client_id"], people["coach_id"])
        assert body["version"] == (1 if suffix == "?version=1" else world.version(target))


@pytest.mark.parametrize("role", ROLES)
def test_reads_of_an_engagement(world: World, role: str) -> None:
    for kind, suffix in _reads():
        bodies = {}
        for target in TARGETS:
            path = f"/engagements/{world.ids[target]}{suffix}"
            response = world.call(role, "GET", path)
            status = expected(role, kind, target)
            assert response.status_code == status, (role, path, target, response.get_json())
            if status == 200:
                _check_body(world, suffix, target, response.get_json())
            elif status == 403:
                problem = assert_problem(response, 403, "forbidden")
                assert role.replace("_", " ") in problem["detail"]
            else:
                assert_problem(response, 404)
            bodies[target] = response
        # Another firm's engagement answers exactly what a missing one does.
        foreign, missing = bodies["foreign"], bodies["missing"]
        assert foreign.get_data(as_text=True).replace(
            world.ids["foreign"], world.ids["missing"]
        ) == missing.get_data(as_text=True), (role, suffix)
        assert set(foreign.headers.keys()) == set(missing.headers.keys())


def test_a_sponsor_report_of_an_engagement_without_a_sponsor(world: World) -> None:
    engagement_id = _open(world.client, world.auth("firm-admin-1"), sponsor_id=None)
    world.north_ids.add(engagement_id)
    world.project()
    path = f"/engagements/{engagement_id}/sponsor-report"
    assert_problem(world.call("firm_admin", "GET", path), 404, "not_found")
    # Not theirs to ask about, sponsor or not: refused, not "has no sponsor".
    assert_problem(world.call("sponsor", "GET", path), 403, "forbidden")
    assert_problem(world.call("coach", "GET", path, user="coach-2"), 403, "forbidden")


# -- commands: every command endpoint, walked -------------------------------------------


def _actor(world: World, key: str) -> dict[str, Any]:
    last = world.services.engagements.history(NORTH, uuid.UUID(world.ids[key]))[-1]
    return last.metadata


def test_every_command_by_every_role(world: World) -> None:
    """Walk two engagements through every command: WALK_COACH by its coach (coach-1,
    then coach-2 once reassigned to them; erasure by the firm admin), WALK_ADMIN by the
    firm admin. At every step every refused cell is tried first, and writes nothing."""
    ids_coach: Ids = {}
    ids_admin: Ids = {}
    driver = "coach-1"
    watched = ("own", "other", "foreign")
    for step in WALK:
        kind = "erase" if step.command is EraseSubject else "command"
        before = {key: world.version(key) for key in watched}
        for role in ROLES:
            for target in TARGETS:
                status = expected(role, kind, target)
                if status == 200:
                    continue  # allowed cells are the walks below
                path = f"/engagements/{world.ids[target]}/{slug(step.command)}"
                response = world.call(role, "POST", path, step.body(ids_coach))
                assert response.status_code == status, (step.command.__name__, role, target)
                assert_problem(response, status, "forbidden" if status == 403 else None)
        assert {key: world.version(key) for key in watched} == before, step.command.__name__

        # WALK_COACH: by its current coach, but erasure only by a firm admin.
        role, user = ("coach", driver) if kind == "command" else ("firm_admin", "firm-admin-1")
        if kind == "erase":
            refused = world.call(
                "coach",
                "POST",
                f"/engagements/{world.ids['walk_coach']}/erase-subject",
                {},
                user=driver,
            )
            assert_problem(refused, 403, "forbidden")
        version = world.version("walk_coach")
        response = world.call(
            role,
            "POST",
            f"/engagements/{world.ids['walk_coach']}/{slug(step.command)}",
            step.body(ids_coach),
            user=user,
        )
        assert response.status_code == 200, (step.command.__name__, response.get_json())
        assert response.get_json()["version"] == version + 1 == world.version("walk_coach")
        actor = _actor(world, "walk_coach")
        assert (actor["actor_id"], actor["actor_role"], actor["firm_id"]) == (user, role, NORTH)
        if step.keep:
            ids_coach[step.keep] = response.get_json()["result"]
        if step.command is ReassignCoach:
            # coach-1 no longer coaches it: refused from now on; coach-2 may.
            gone = world.call("coach", "GET", f"/engagements/{world.ids['walk_coach']}")
            assert_problem(gone, 403, "forbidden")
            now_theirs = f"/engagements/{world.ids['walk_coach']}?version=1"
            assert world.call("coach", "GET", now_theirs, user="coach-2").status_code == 200
            refused = world.call(
                "coach",
                "POST",
                f"/engagements/{world.ids['walk_coach']}/check-wellbeing",
                WELLBEING,
            )
            assert_problem(refused, 403, "forbidden")
            assert world.version("walk_coach") == version + 1
            driver = "coach-2"

        # WALK_ADMIN: the firm admin, on an engagement of coach-2.
        response = world.call(
            "firm_admin",
            "POST",
            f"/engagements/{world.ids['walk_admin']}/{slug(step.command)}",
            step.body(ids_admin),
        )
        assert response.status_code == 200, (step.command.__name__, response.get_json())
        if step.keep:
            ids_admin[step.keep] = response.get_json()["result"]
        assert _actor(world, "walk_admin")["actor_id"] == "firm-admin-1"
    assert world.services.engagements.get(NORTH, uuid.UUID(world.ids["walk_coach"])).erased


def test_a_refusal_comes_before_if_match(world: World) -> None:
    """A stale If-Match from someone without rights is 403, not a 412 that would tell
    them the current version."""
    path = f"/engagements/{world.ids['other']}/check-wellbeing"
    response = world.call("coach", "POST", path, WELLBEING, headers={"If-Match": '"99"'})
    problem = assert_problem(response, 403, "forbidden")
    assert "current_version" not in problem
    assert "ETag" not in response.headers


@pytest.mark.parametrize("role", ROLES)
def test_opening_an_engagement(world: World, role: str) -> None:
    for target, coach in (("own", "coach-1"), ("other", "coach-2")):
        client_id = f"client-{role}-{target}"
        body = opening_body(coach_id=coach, client_id=client_id)
        response = world.call(role, "POST", "/engagements", body)
        status = expected(role, "open", target)
        opened_for_client = world.services.engagements.keys.store.engagements_of(NORTH, client_id)
        if status == 200:
            assert response.status_code == 201, response.get_json()
            engagement_id = response.get_json()["engagement_id"]
            assert [str(e) for e in opened_for_client] == [engagement_id]
            opened = world.services.engagements.get(NORTH, uuid.UUID(engagement_id))
            assert opened.coach_id == coach
            world.north_ids.add(engagement_id)
        else:
            assert_problem(response, 403, "forbidden")
            assert opened_for_client == []


# -- lists, portfolios, the firm ---------------------------------------------------------


def _items(response: TestResponse) -> set[str]:
    return {item["engagement_id"] for item in response.get_json()["data"]["items"]}


@pytest.mark.parametrize("role", ROLES)
def test_lists(world: World, role: str) -> None:
    world.project()
    scope = SPEC[role].get("list")
    response = world.call(role, "GET", "/engagements?limit=200")
    if scope is None:
        assert_problem(response, 403, "forbidden")
        assert_problem(world.call(role, "GET", "/engagements?coach_id=coach-1"), 403)
        return
    assert response.status_code == 200
    listed = _items(response)
    assert world.ids["foreign"] not in listed
    assert listed <= world.north_ids
    if scope == ALL:
        assert {world.ids["own"], world.ids["other"]} <= listed
        theirs = world.call(role, "GET", "/engagements?coach_id=coach-2&limit=200")
        assert world.ids["other"] in _items(theirs)
        assert world.ids["own"] not in _items(theirs)
        return
    # A coach lists only what they coach now; naming another coach is refused.
    assert world.ids["own"] in listed
    assert world.ids["other"] not in listed
    for item in response.get_json()["data"]["items"]:
        assert item["coach_id"] == "coach-1"
    assert _items(world.call(role, "GET", "/engagements?coach_id=coach-1&limit=200")) == listed
    refused = world.call(role, "GET", "/engagements?coach_id=coach-2")
    assert "coach-1" in assert_problem(refused, 403, "forbidden")["detail"]


@pytest.mark.parametrize("role", ROLES)
def test_portfolios(world: World, role: str) -> None:
    world.project()
    coaches = {"own": "coach-1", "other": "coach-2", "foreign": "coach-9", "missing": "nobody"}
    for target, coach in coaches.items():
        response = world.call(role, "GET", f"/coaches/{coach}/portfolio")
        status = expected_portfolio(role, target)
        assert response.status_code == status, (role, coach, response.get_json())
        if status == 200:
            data = response.get_json()["data"]
            assert data["coach_id"] == coach
            assert {i["engagement_id"] for i in data["items"]} <= world.north_ids
            assert {i["coach_id"] for i in data["items"]} == {coach}
        else:
            assert_problem(response, status)


@pytest.mark.parametrize("role", ROLES)
def test_firm_overview_and_roi(world: World, role: str) -> None:
    world.project()
    status = expected(role, "firm", "own")
    for path in ("/firm/overview", *(f"/firm/roi?group_by={g}" for g in ("engagement", "coach"))):
        response = world.call(role, "GET", path)
        assert response.status_code == status, (role, path)
        if status != 200:
            assert_problem(response, 403, "forbidden")
            continue
        data = response.get_json()["data"]
        if path == "/firm/overview":
            assert data["firm_id"] == NORTH
            assert data["engagements"] >= 4
            assert "coach-9" not in data["by_coach"]
        elif "engagement" in path:
            assert (
                {world.ids["own"], world.ids["other"]}
                <= {i["engagement_id"] for i in data["items"]}
                <= world.north_ids
            )
        else:
            assert "coach-9" not in {i["coach_id"] for i in data["items"]}


@pytest.mark.parametrize("role", ROLES)
def test_audit_endpoints(world: World, role: str) -> None:
    endpoints = {rule.endpoint for rule in world.app.url_map.iter_rules()}
    assert set(AUDIT_KINDS) <= endpoints, "the audit endpoints are registered"
    world.services.engagements.auditor.anchor()
    allowed = expected(role, "audit", "own") == 200
    for path in ("/audit/verify", "/audit/anchors/latest"):
        response = world.call(role, "GET", path)
        if not allowed:
            assert_problem(response, 403, "forbidden")
        elif path == "/audit/verify":
            assert response.status_code == 200
            report = response.get_json()
            assert report["ok"] is True
            assert report["engagements"] == len(world.north_ids)  # the north firm's only
        else:
            assert response.status_code == 200
            latest = world.services.engagements.auditor.anchors.latest()
            assert latest is not None
            assert response.get_json()["digest"] == latest.digest
    bodies = {}
    for target in TARGETS:
        response = world.call(role, "GET", f"/audit/engagements/{world.ids[target]}")
        status = expected(role, "audit", target)
        assert response.status_code == status, (role, target, response.get_json())
        if status == 200:
            assert response.get_json()["ok"] is True
        bodies[target] = response.get_data(as_text=True)
    assert (
        bodies["foreign"].replace(world.ids["foreign"], world.ids["missing"]) == (bodies["missing"])
    )


# -- the actor is the caller -------------------------------------------------------------


def test_the_actor_and_firm_come_from_the_token_only(world: World) -> None:
    spoof = {
        "X-Actor-Id": "mallory",
        "X-User-Id": "mallory",
        "X-Role": "firm_admin",
        "X-Firm-Id": SOUTH,
    }
    engagement_id = _open(world.client, {**world.auth("coach-1"), **spoof}, **OWN_PEOPLE)
    world.north_ids.add(engagement_id)
    path = f"/engagements/{engagement_id}/check-wellbeing"
    for field_name, value in (
        ("actor_id", "mallory"),
        ("actor_role", "firm_admin"),
        ("firm_id", SOUTH),
    ):
        refused = world.call("coach", "POST", path, {**WELLBEING, field_name: value})
        assert field_name in assert_problem(refused, 422, "validation_failed")["errors"]
        opening = opening_body(**{field_name: value})
        refused = world.call("firm_admin", "POST", "/engagements", opening)
        assert field_name in assert_problem(refused, 422, "validation_failed")["errors"]
    assert world.call("coach", "POST", path, WELLBEING, headers=spoof).status_code == 200
    events = world.services.engagements.history(NORTH, uuid.UUID(engagement_id))
    assert len(events) == 2
    for event in events:
        assert event.metadata["actor_id"] == "coach-1"
        assert event.metadata["actor_role"] == "coach"
        assert event.metadata["firm_id"] == NORTH


# -- idempotency keys never cross users --------------------------------------------------


def test_a_key_replays_only_the_callers_own_answer(world: World) -> None:
    admin = world.auth("firm-admin-1")
    engagement_id = _open(world.client, admin, **OWN_PEOPLE)
    world.north_ids.add(engagement_id)
    path = f"/engagements/{engagement_id}/check-wellbeing"
    keyed = {"Idempotency-Key": "wellbeing-1"}

    first = world.call("firm_admin", "POST", path, WELLBEING, headers=keyed)
    assert first.status_code == 200
    # The same key and request from someone who may not: refused, never the replay.
    other_coach = world.call("coach", "POST", path, WELLBEING, user="coach-2", headers=keyed)
    assert_problem(other_coach, 403, "forbidden")
    assert "Idempotent-Replayed" not in other_coach.headers
    auditor = world.call("auditor", "POST", path, WELLBEING, headers=keyed)
    assert_problem(auditor, 403, "forbidden")
    # The owner's own key of the same name is theirs: it runs, it is not a replay.
    mine = world.call("coach", "POST", path, WELLBEING, headers=keyed)
    assert mine.status_code == 200
    assert "Idempotent-Replayed" not in mine.headers
    assert mine.get_json()["version"] == 3
    again = world.call("firm_admin", "POST", path, WELLBEING, headers=keyed)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()

    # Rights are checked again before a replay: once reassigned away, coach-1's own
    # earlier answer is not handed out any more.
    reassign = {"to_coach_id": "coach-2", "reason": "Leave"}
    post_command(world.client, admin, engagement_id, "reassign-coach", reassign)
    replay = world.call("coach", "POST", path, WELLBEING, headers=keyed)
    assert_problem(replay, 403, "forbidden")
    assert world.version_of(engagement_id) == 4


def test_a_refusal_is_not_remembered_under_a_key(world: World) -> None:
    admin = world.auth("firm-admin-1")
    engagement_id = _open(world.client, admin, **OTHER_PEOPLE)
    world.north_ids.add(engagement_id)
    path = f"/engagements/{engagement_id}/check-wellbeing"
    keyed = {"Idempotency-Key": "refused-then-allowed"}
    assert_problem(world.call("coach", "POST", path, WELLBEING, headers=keyed), 403)
    reassign = {"to_coach_id": "coach-1", "reason": "Cover"}
    post_command(world.client, admin, engagement_id, "reassign-coach", reassign)
    allowed = world.call("coach", "POST", path, WELLBEING, headers=keyed)
    assert allowed.status_code == 200
    assert "Idempotent-Replayed" not in allowed.headers


def test_two_users_opening_with_the_same_key_get_two_engagements(world: World) -> None:
    keyed = {"Idempotency-Key": "open-1"}
    ones = [
        world.call(
            "coach",
            "POST",
            "/engagements",
            opening_body(coach_id=coach, client_id="client-k"),
            user=coach,
            headers=keyed,
        )
        for coach in ("coach-1", "coach-2")
    ]
    assert [r.status_code for r in ones] == [201, 201]
    assert "Idempotent-Replayed" not in ones[1].headers
    first, second = (r.get_json()["engagement_id"] for r in ones)
    assert first != second
    assert world.services.engagements.get(NORTH, uuid.UUID(second)).coach_id == "coach-2"
    world.north_ids |= {first, second}


# -- browser pages ------------------------------------------------------------------------


def _page_client(world: World, role: str) -> FlaskClient:
    """A browser signed in as ``role`` (the session the sign-in form would make)."""
    world.auth(USER[role])
    browser = world.app.test_client()
    with browser.session_transaction() as session:
        session["sid"] = world.services.accounts.start_session(
            world.tokens[(NORTH, USER[role])], 3600
        )
    return browser


def _assert_page(response: TestResponse, status: int) -> str:
    assert response.status_code == status
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    marker = {200: None, 403: "data-forbidden", 404: "data-not-found"}[status]
    if marker:
        assert marker in html
    else:
        assert "data-forbidden" not in html
        assert "data-not-found" not in html
    return html


@pytest.mark.parametrize("role", ROLES)
def test_pages_follow_the_same_rules(world: World, role: str) -> None:
    world.project()
    browser = _page_client(world, role)

    html = _assert_page(browser.get("/ui/firm"), expected(role, "firm", "own"))
    if role == "analyst":  # aggregates only: no list of engagements, no links into them
        assert 'data-table="off-track"' not in html
        assert "/ui/engagements/" not in html
        assert "/ui/coaches/" not in html

    coaches = {"own": "coach-1", "other": "coach-2", "foreign": "coach-9", "missing": "nobody"}
    for target, coach in coaches.items():
        response = browser.get(f"/ui/coaches/{coach}")
        _assert_page(response, expected_portfolio(role, target))

    for kind, suffix in (("dashboard", ""), ("sponsor_report", "/sponsor")):
        pages = {}
        for target in TARGETS:
            response = browser.get(f"/ui/engagements/{world.ids[target]}{suffix}")
            status = expected(role, kind, target)
            pages[target] = html = _assert_page(response, status)
            people = world.people.get(target, {})
            if status == 200 and kind == "dashboard":
                assert f"{people['client_id']} <small>with {people['coach_id']}" in html
            elif status == 200:
                assert f"for {people['sponsor_id']}" in html
            if status == 200 and role in ("client", "sponsor"):
                assert "/ui/firm" not in html  # no links to pages they may not open
                assert "/ui/coaches/" not in html
        assert pages["foreign"] == pages["missing"]


@pytest.mark.parametrize(
    ("role", "start"),
    [
        ("firm_admin", "/ui/firm"),
        ("auditor", "/ui/firm"),
        ("analyst", "/ui/firm"),
        ("coach", "/ui/coaches/coach-1"),
        ("client", "/ui/engagements/"),
        ("sponsor", "/ui/engagements/"),
    ],
)
def test_signing_in_lands_on_a_page_one_may_open(world: World, role: str, start: str) -> None:
    browser = _page_client(world, role)
    response = browser.get("/")
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"]).path
    assert target.startswith(start), target
    _assert_page(browser.get(target), 200)
    if role == "sponsor":
        assert target.endswith("/sponsor")


def test_a_forbidden_page_says_why(world: World) -> None:
    browser = _page_client(world, "sponsor")
    response = browser.get("/ui/firm")
    html = _assert_page(response, 403)
    assert "A sponsor may not read the firm overview and ROI" in html
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert response.headers["Cache-Control"] == "no-store"
    # A way on: the sponsor's own report.
    assert "/sponsor" in html.split("data-home", 1)[0].rsplit("<a", 1)[-1]


# -- the same on PostgreSQL ---------------------------------------------------------------


@pytest.mark.parametrize("settings", ["postgres"], indirect=True)
def test_the_rules_hold_on_postgresql(client: FlaskClient, services: Services) -> None:
    services.accounts.create_user(NORTH, "coach-2", "coach")

    def auth(user: str, firm: str = NORTH) -> dict[str, str]:
        return {"Authorization": f"Bearer {services.accounts.issue_token(firm, user)}"}

    coach, admin = auth("coach-1"), auth("firm-admin-1")
    own = _open(client, coach)  # coach-1, client-1, sponsor-acme
    other = _open(client, admin, coach_id="coach-2", client_id="client-2")
    version = services.engagements.get(NORTH, uuid.UUID(other)).version
    assert client.get(f"/engagements/{own}", headers=coach).status_code == 200
    assert_problem(client.get(f"/engagements/{other}", headers=coach), 403, "forbidden")
    refused = post_command(client, coach, other, "check-wellbeing", WELLBEING)
    assert_problem(refused, 403, "forbidden")
    assert services.engagements.get(NORTH, uuid.UUID(other)).version == version
    assert client.get(f"/engagements/{own}/history", headers=auth("client-1")).status_code == 200
    assert_problem(client.get(f"/engagements/{own}", headers=auth("sponsor-1")), 403)
    assert_problem(client.get(f"/engagements/{own}", headers=auth("analyst-1")), 403)
    assert client.get("/firm/overview", headers=auth("analyst-1")).status_code == 200
    south = auth("firm-admin-1", OTHER_FIRM)
    foreign = client.get(f"/engagements/{own}", headers=south)
    missing_id = str(uuid.uuid4())
    missing = client.get(f"/engagements/{missing_id}", headers=south)
    assert_problem(foreign, 404)
    assert foreign.get_data(as_text=True).replace(own, missing_id) == missing.get_data(as_text=True)
