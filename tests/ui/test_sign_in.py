"""Signing in with a token, and out again; the same authorization as the JSON API."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.ui.conftest import Site, click_and_wait, screenshot, sign_in


def test_the_root_sends_a_signed_out_browser_to_sign_in(browser: Any, site: Site) -> None:
    browser.get(site.base + "/")
    assert browser.current_url == site.base + "/ui/sign-in"
    browser.get(site.base + "/ui/firm")
    assert browser.current_url.startswith(site.base + "/ui/sign-in?next=")
    screenshot(browser, "sign-in-1280")


def test_a_wrong_token_is_refused(browser: Any, site: Site) -> None:
    sign_in(browser, site, "cl_not-a-real-token")
    assert "unknown or revoked" in browser.find_element(By.CSS_SELECTOR, "[data-error]").text
    browser.get(site.base + "/ui/firm")
    assert browser.current_url.startswith(site.base + "/ui/sign-in")


def test_signing_in_opens_the_firm_overview_with_a_strict_http_only_cookie(
    browser: Any, site: Site
) -> None:
    sign_in(browser, site, site.admin_token)
    assert browser.current_url == site.base + "/ui/firm"
    assert "ui-admin" in browser.find_element(By.CSS_SELECTOR, "[data-principal]").text
    cookie = browser.get_cookie("coachlog_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert site.admin_token not in cookie["value"]


def test_signing_in_returns_to_the_page_asked_for(browser: Any, site: Site) -> None:
    coach = next(iter(site.api("/firm/overview")["data"]["by_coach"]))
    browser.get(f"{site.base}/ui/coaches/{coach}")
    browser.find_element(By.ID, "token").send_keys(site.admin_token)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    assert browser.current_url == f"{site.base}/ui/coaches/{coach}"


def test_signing_out_ends_the_session(browser: Any, site: Site) -> None:
    sign_in(browser, site, site.admin_token)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, ".who button"))
    assert browser.current_url == site.base + "/ui/sign-in"
    browser.get(site.base + "/ui/firm")
    assert browser.current_url.startswith(site.base + "/ui/sign-in")


def test_a_revoked_token_signs_the_browser_out(browser: Any, site: Site) -> None:
    token = site.new_token("ui-coach-revoked", "coach")
    sign_in(browser, site, token)
    # A coach starts at their own portfolio (the firm overview is not theirs to see).
    assert browser.current_url == site.base + "/ui/coaches/ui-coach-revoked"
    site.cli("tokens", "revoke", token)
    browser.refresh()
    assert browser.current_url.startswith(site.base + "/ui/sign-in")
    assert "revoked" in browser.find_element(By.CSS_SELECTOR, "[data-error]").text


def test_a_sign_in_post_without_the_form_token_is_refused(site: Site) -> None:
    body = urllib.parse.urlencode({"token": site.admin_token}).encode()
    request = urllib.request.Request(site.base + "/ui/sign-in", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    cookie = (refused.value.headers.get("Set-Cookie") or "").split(";")[0]
    follow = urllib.request.Request(site.base + "/ui/firm", headers={"Cookie": cookie})
    with urllib.request.urlopen(follow, timeout=10) as response:
        assert response.url.startswith(site.base + "/ui/sign-in")


def test_the_json_api_does_not_accept_the_page_cookie(browser: Any, site: Site) -> None:
    sign_in(browser, site, site.admin_token)
    cookie = browser.get_cookie("coachlog_session")
    request = urllib.request.Request(
        site.base + "/firm/overview", headers={"Cookie": f"coachlog_session={cookie['value']}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
