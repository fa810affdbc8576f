"""End-to-end fixtures: a real ``coachlog serve`` over a seeded firm, driven by Debian's
headless Chromium through Selenium (no browser download: /usr/bin/chromedriver).

Without Chromium the tests skip locally and fail under CI. Screenshots go to
``COACHLOG_TEST_ARTIFACTS`` (default ``tests/ui/artifacts``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("COACHLOG_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("COACHLOG_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = Path(os.environ.get("COACHLOG_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))

FIRM = "firm-northwind"
OTHER_FIRM = "firm-elsewhere"
LAPTOP = (1280, 800)
PHONE = (390, 844)


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def _coachlog() -> list[str]:
    script = Path(sys.executable).with_name("coachlog")
    if script.exists():
        return [str(script)]
    found = shutil.which("coachlog")
    if found is None:
        pytest.fail("the coachlog command is not installed (pip install -e .)")
    return [found]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Site:
    """The running server, its database and the tokens made for the tests."""

    base: str
    env: dict[str, str]
    admin_token: str
    other_firm_token: str

    def cli(self, *args: str) -> str:
        """Run a coachlog command against the test database and return its output."""
        done = subprocess.run(
            [*_coachlog(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"coachlog {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def new_token(self, user_id: str, role: str) -> str:
        """Create a user of the seeded firm and return a fresh token for it."""
        self.cli("users", "create", user_id, "--firm", FIRM, "--role", role)
        return _token(self.cli("tokens", "create", user_id, "--firm", FIRM))

    def api(self, path: str, token: str | None = None) -> dict[str, Any]:
        """GET a read model from the JSON API with a bearer token."""
        request = urllib.request.Request(
            self.base + path,
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.load(response)
            return answer


def _token(output: str) -> str:
    match = re.search(r"cl_[A-Za-z0-9_-]+", output)
    assert match, f"no token in {output!r}"
    return match.group(0)


def _wait_until_ready(site: Site, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"coachlog serve exited:\n{log.read_text()}")
        try:
            freshness = site.api("/firm/overview")["freshness"]
            if freshness["lag"] == 0 and freshness["position"] > 0:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"coachlog serve did not catch up in time:\n{log.read_text()}")


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    """A seeded firm served by ``coachlog serve`` on a free port, over SQLite."""
    workdir = Path(tempfile.mkdtemp(prefix="coachlog-ui-"))
    env = {
        **os.environ,
        "COACHLOG_DATABASE_URL": f"sqlite:///{workdir / 'coachlog.db'}",
    }
    env.pop("COACHLOG_SECRET_KEY", None)
    port = _free_port()
    site = Site(f"http://127.0.0.1:{port}", env, admin_token="", other_firm_token="")
    site.cli("seed", "--firm", FIRM)
    site.cli("firms", "create", FIRM, "--name", "Northwind Careers")
    site.admin_token = site.new_token("ui-admin", "firm_admin")
    site.cli("seed", "--firm", OTHER_FIRM, "--engagements", "2", "--seed", "8")
    site.cli("firms", "create", OTHER_FIRM, "--name", "Elsewhere")
    site.cli("users", "create", "other-admin", "--firm", OTHER_FIRM, "--role", "firm_admin")
    other = site.cli("tokens", "create", "other-admin", "--firm", OTHER_FIRM)
    site.other_firm_token = _token(other)
    log = workdir / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*_coachlog(), "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_ready(site, server, log)
        yield site
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def chrome() -> Iterator[Any]:
    """One headless Chromium for the run (each test starts signed out)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            _missing(f"{path} is missing: apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[test]')")
    profile = tempfile.mkdtemp(prefix="coachlog-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(chrome: Any, site: Site) -> Any:
    """The browser, signed out, at laptop width."""
    chrome.get(site.base + "/ui/sign-in")
    chrome.delete_all_cookies()
    set_viewport(chrome, *LAPTOP)
    return chrome


# -- helpers the tests share ------------------------------------------------------------


def set_viewport(driver: Any, width: int, height: int) -> None:
    """Emulate a screen of this size (a phone below 600 px: the viewport meta applies)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def click_and_wait(driver: Any, element: Any) -> None:
    """Click a button that submits a form, and wait for the next page to replace this one."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    # A mark on this page's window object disappears once the next page has loaded.
    driver.execute_script("window.coachlogPreviousPage = true;")
    element.click()
    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.coachlogPreviousPage === undefined"
            " && document.readyState === 'complete';"
        )
    )


def sign_in(driver: Any, site: Site, token: str) -> None:
    """Sign in through the form, as a person would."""
    from selenium.webdriver.common.by import By

    driver.get(site.base + "/")
    driver.find_element(By.ID, "token").send_keys(token)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))


def screenshot(driver: Any, name: str) -> Path:
    """Save the whole page (not just the viewport) as a PNG artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": min(size["height"], 8000),
                "scale": 1,
            },
        },
    )
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
