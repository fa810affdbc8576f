"""Swagger UI at /docs works under its Content-Security-Policy (its scripts run)."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.ui.conftest import Site


def test_swagger_ui_renders_the_document_under_its_policy(browser: Any, site: Site) -> None:
    browser.get(site.base + "/docs")
    title = WebDriverWait(browser, 30).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .info h2"))
    )
    assert "coachlog" in title.text
    operations = browser.find_elements(By.CSS_SELECTOR, ".opblock")
    assert len(operations) > 10
