"""The OpenAPI document and the self-hosted Swagger UI."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from api.schemas import COMMAND_SCHEMAS
from tests.api.conftest import slug


def _document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict[str, Any] = response.get_json()
    return document


def _resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def test_openapi_is_version_3_and_documents_every_command(client: FlaskClient) -> None:
    document = _document(client)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "coachlog"
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert document["security"] == [{"bearerAuth": []}]
    paths = document["paths"]
    assert "post" in paths["/engagements"]
    assert set(paths["/engagements/{engagement_id}"]) >= {"get"}
    assert "get" in paths["/engagements/{engagement_id}/history"]
    schemas = document["components"]["schemas"]
    for command, schema in COMMAND_SCHEMAS.items():
        path = f"/engagements/{{engagement_id}}/{slug(command)}"
        assert path in paths, f"{command.__name__} is not documented"
        operation = paths[path]["post"]
        assert operation["operationId"] == command.METHOD
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        component = _resolve(document, body["$ref"])
        assert body["$ref"].rsplit("/", 1)[-1] in schemas
        # The documented body is the command's fields plus occurred_at and causation_id.
        assert set(component.get("properties", {})) == set(schema().fields)
        assert {"occurred_at", "causation_id"} <= set(component.get("properties", {}))
        assert component.get("additionalProperties") is False
        responses = operation["responses"]
        assert {"200", "401", "404", "409", "412", "415", "422"} <= set(responses)
        assert "application/problem+json" in responses["409"]["content"]
    assert len([p for p in paths if p.startswith("/engagements/{engagement_id}/")]) >= len(
        COMMAND_SCHEMAS
    )
    for name in ("CommandResult", "EngagementState", "History", "Problem"):
        assert name in schemas, name


def test_openapi_documents_ranges_and_money_as_strings(client: FlaskClient) -> None:
    document = _document(client)
    operation = document["paths"]["/engagements/{engagement_id}/check-wellbeing"]["post"]
    body = _resolve(
        document, operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    )
    stress = body["properties"]["stress"]
    assert (stress["minimum"], stress["maximum"]) == (0, 10)
    assert set(body["required"]) == {"confidence", "stress", "motivation", "imposter_feelings"}
    opening = document["paths"]["/engagements"]["post"]
    body = _resolve(
        document, opening["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    )
    fee = body["properties"]["fee_per_session"]
    assert (fee["type"], fee["format"]) == ("string", "decimal")
    assert "minimum" not in fee  # a string has no numeric bounds in JSON Schema
    state = document["components"]["schemas"]["EngagementState"]["properties"]
    assert state["fee_per_session"]["type"] == "string"


def test_docs_serve_swagger_ui_from_local_assets(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "SwaggerUIBundle" in html
    assert "/openapi.json" in html
    # No CDN: nothing is fetched from another host.
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html), html
    for cdn in ("unpkg", "jsdelivr", "cdnjs", "googleapis"):
        assert cdn not in html
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    scripts = [a for a in assets if a.endswith(".js")]
    styles = [a for a in assets if a.endswith(".css")]
    assert scripts
    assert styles
    for asset in assets:
        assert asset.startswith("/"), asset
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.get_data()) > 1000, asset
        expected = "javascript" if asset.endswith(".js") else "css"
        assert expected in response.mimetype, (asset, response.mimetype)
    assert client.get("/docs/assets/no-such-file.js").status_code == 404
    assert client.get("/docs/assets/../../api/__init__.py").status_code == 404


def test_every_error_answer_is_documented_as_problem_json(client: FlaskClient) -> None:
    document = _document(client)
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    continue
                assert set(response.get("content", {})) == {"application/problem+json"}, (
                    method,
                    path,
                    status,
                )
                checked += 1
            assert "503" in operation["responses"], (method, path)
    audit = document["paths"]["/audit/verify"]["get"]["responses"]
    assert {"401", "403", "422", "503"} <= set(audit)
    assert checked > 100
