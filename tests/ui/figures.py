"""Read what a page shows, and write API figures the way a person reads them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from selenium.webdriver.common.by import By


def figure(driver: Any, name: str) -> str:
    """The value shown in a page's figure card (without its small print)."""
    element = driver.find_element(By.CSS_SELECTOR, f'[data-figure="{name}"] dd')
    text: str = driver.execute_script(
        "const dd = arguments[0].cloneNode(true);"
        "dd.querySelectorAll('small').forEach(s => s.remove());"
        "return dd.textContent.trim();",
        element,
    )
    return text


def rate(value: float | None) -> str:
    """0.8696 reads '87.0 %'."""
    return "—" if value is None else f"{value * 100:.1f} %"


def percent(value: float | str | None) -> str:
    """191.3 reads '191.3 %'."""
    return "—" if value is None else f"{float(value):,.1f} %"


def money(value: str) -> str:
    """'42450.00' reads '42,450.00'."""
    return f"{Decimal(value):,.2f}"


def chart_data(driver: Any, canvas_id: str) -> dict[str, Any]:
    """The labels and datasets Chart.js drew on a canvas."""
    data: dict[str, Any] = driver.execute_script(
        "const chart = Chart.getChart(document.getElementById(arguments[0]));"
        "return chart ? {labels: chart.data.labels,"
        " datasets: chart.data.datasets.map(d => ({label: d.label, data: d.data}))} : null;",
        canvas_id,
    )
    return data


def painted_pixels(driver: Any, canvas_id: str) -> int:
    """How many pixels of a canvas are not transparent: 0 means nothing was drawn."""
    count: int = driver.execute_script(
        "const c = document.getElementById(arguments[0]);"
        "if (!c || !c.width || !c.height) return 0;"
        "const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;"
        "return n;",
        canvas_id,
    )
    return count
