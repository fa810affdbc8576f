"""Browser sessions: the cookie carries a session id only, signing out ends the session
on the server (a copied cookie opens nothing), and the API's own pages (/docs) are as
locked down as the dashboards."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from api import Services
from api.accounts import token_hash

COOKIE = "coachlog_session"


def _csrf(browser: FlaskClient, path: str = "/ui/sign-in") -> str:
    html = browser.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


def _sign_in(browser: FlaskClient, token: str) -> str:
    reply = browser.post("/ui/sign-in", data={"token": token, "csrf_token": _csrf(browser)})
    assert reply.status_code == 302, reply.get_data(as_text=True)
    cookie = browser.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def _firm_page(flask_app: Flask, cookie: str) -> int:
    browser = flask_app.test_client()
    browser.set_cookie(COOKIE, cookie)
    reply = browser.get("/ui/firm")
    if reply.status_code == 302:
        assert "/ui/sign-in" in reply.headers["Location"]
    return reply.status_code


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(
    flask_app: Flask, token_for: Any
) -> None:
    token = token_for("firm_admin")
    browser = flask_app.test_client()
    cookie = _sign_in(browser, token)
    assert _firm_page(flask_app, cookie) == 200  # the copy works while signed in
    signed_out = browser.post("/ui/sign-out", data={"csrf_token": _csrf(browser, "/ui/firm")})
    assert signed_out.status_code == 302
    assert _firm_page(flask_app, cookie) == 302  # the copy is signed out too
    # The token itself stays valid for the API, and signs in afresh.
    assert (
        flask_app.test_client()
        .get("/firm/overview", headers={"Authorization": f"Bearer {token}"})
        .status_code
        == 200
    )
    assert _firm_page(flask_app, _sign_in(flask_app.test_client(), token)) == 200


def test_the_cookie_carries_a_session_id_only(
    flask_app: Flask, services: Services, token_for: Any
) -> None:
    token = token_for("firm_admin")
    cookie = _sign_in(flask_app.test_client(), token)
    serializer = flask_app.session_interface.get_signing_serializer(flask_app)  # type: ignore[attr-defined]
    assert serializer is not None
    kept = serializer.loads(cookie)
    assert set(kept) <= {"sid", "csrf", "_permanent"}, kept
    assert token not in repr(kept)
    assert token_hash(token) not in repr(kept)
    # The store keeps the session id's hash, not the id itself.
    with services.db.read() as cur:
        cur.execute("SELECT * FROM coachlog_sessions")
        rows = repr(cur.fetchall())
    assert kept["sid"] not in rows
    assert token_hash(kept["sid"]) in rows


def test_a_revoked_token_ends_its_sessions(
    flask_app: Flask, services: Services, token_for: Any
) -> None:
    token = token_for("firm_admin")
    cookie = _sign_in(flask_app.test_client(), token)
    services.accounts.revoke_token(token)
    assert _firm_page(flask_app, cookie) == 302


def test_docs_may_not_be_framed_and_run_only_their_own_scripts(client: FlaskClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["X-Frame-Options"] == "DENY"
    policy = docs.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src
    inline = re.findall(rb"<script>(.*?)</script>", docs.get_data(), re.DOTALL)
    assert inline  # Swagger UI's start-up script, allowed by its hash alone
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
        assert f"'sha256-{digest}'" in script_src
