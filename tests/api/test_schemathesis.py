"""Property-based tests of every documented operation of a live server, by schemathesis.

Each operation gets a bounded number of generated requests (valid and invalid), sent over
real HTTP to `coachlog serve` (SQLite, and PostgreSQL with two workers) with a firm
admin's token (a coach's would lose its engagements to the first generated reassign-coach
and meet only 403 from then on; tests/api/test_authorization.py checks every role's
statuses against the document); most requests name an engagement that exists, so the
commands reach the domain.
Every answer must not be a server error and must match the status codes and schemas the
OpenAPI document declares.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.api.conftest import opening_body
from tests.api.live import LIVE_COACH, LiveServer

#: Generated requests per operation: the full budget on SQLite, a smaller one on PostgreSQL
#: (which catches what only PostgreSQL refuses, such as NUL characters in text).
EXAMPLES_PER_OPERATION = {"sqlite": 25, "postgres": 10}
SEEDED = 4
#: A request slower than this is a failure (a hung server must not hang the suite).
REQUEST_TIMEOUT = 10
#: The whole run per backend must finish within this many seconds.
BUDGET_SECONDS = 240


@pytest.fixture(scope="module")
def engagement_ids(live_server: LiveServer) -> Iterator[str]:
    """Engagements that exist (plus, now and then, one that does not), in turn."""
    ids = []
    for number in range(SEEDED):
        body = opening_body(client_id=f"c-{number}", coach_id=LIVE_COACH)  # the token's own
        reply = live_server.request("POST", "/engagements", body)
        assert reply.status == 201, reply.body
        ids.append(reply.body["engagement_id"])
    ids.append("00000000-0000-4000-8000-000000000000")
    return itertools.cycle(ids)


def _strategy(operation: APIOperation) -> st.SearchStrategy[Case]:
    """Valid requests and, where the operation has inputs to break, invalid ones."""
    strategies = [operation.as_strategy(generation_mode=GenerationMode.POSITIVE)]
    if operation.body or any(True for _ in operation.iter_parameters()):
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    return st.one_of(strategies)


def _describe(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup):
        return "\n".join(_describe(inner) for inner in error.exceptions)
    return f"{type(error).__name__}: {error}"[:2500]


def test_every_operation_conforms(
    live_server: LiveServer, engagement_ids: Iterator[str], request: pytest.FixtureRequest
) -> None:
    # schemathesis' own pytest loader (from_fixture) does not work with this pytest, so the
    # operations are driven through its Python API: a Hypothesis test per operation.
    schema = schemathesis.openapi.from_url(f"{live_server.base_url}/openapi.json", timeout=30)
    examples = EXAMPLES_PER_OPERATION[request.node.callspec.params["live_server"]]
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance]
    failures: dict[str, str] = {}
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50

    started = time.monotonic()
    for operation in operations:
        if time.monotonic() - started > BUDGET_SECONDS:
            failures[operation.label] = f"not run: the {BUDGET_SECONDS}s budget was spent"
            continue

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            # Report the first failure found, unshrunk: a slow server cannot stall the suite.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=_strategy(operation))
        def run(case: Case) -> None:
            if case.path_parameters and "engagement_id" in case.path_parameters:
                case.path_parameters["engagement_id"] = next(engagement_ids)
            response = case.call_and_validate(
                headers=live_server.admin_auth, checks=checks, timeout=REQUEST_TIMEOUT
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        try:
            run()
        except Exception as error:  # collected, so one run reports every operation
            failures[operation.label] = _describe(error)

    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
    # The generated requests reached the domain, not only the validators.
    assert statuses.get(200, 0) + statuses.get(201, 0) > 4 * examples, statuses
    assert statuses.get(409, 0) > 0, statuses
