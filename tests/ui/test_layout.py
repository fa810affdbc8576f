"""Every page reads at laptop and phone widths: nothing wider than the screen."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import LAPTOP, PHONE, Site, screenshot, set_viewport, sign_in


def _paths(site: Site) -> dict[str, str]:
    overview = site.api("/firm/overview")["data"]
    coach = max(overview["by_coach"], key=lambda name: overview["by_coach"][name]["off_track"])
    items = site.api("/engagements?limit=200&sort=opened_at&order=asc")["data"]["items"]
    sponsored = next(i for i in items if i["sponsor_id"] and i["sessions_held"] >= 3)
    return {
        "firm": "/ui/firm",
        "coach": f"/ui/coaches/{coach}",
        "engagement": f"/ui/engagements/{sponsored['engagement_id']}",
        "sponsor": f"/ui/engagements/{sponsored['engagement_id']}/sponsor",
    }


def _fits(browser: Any, name: str, width: int) -> None:
    inner, scroll = browser.execute_script(
        "return [window.innerWidth, document.scrollingElement.scrollWidth];"
    )
    assert inner == width, f"{name}: the viewport meta makes the page {inner}px wide"
    assert scroll <= inner, f"{name} overflows sideways at {width}px: {scroll}px"
    rendered = browser.execute_script(
        "return [...document.querySelectorAll('canvas[data-chart]')]"
        ".every(c => c.dataset.rendered === 'true' && c.clientWidth > 0"
        " && c.getBoundingClientRect().right <= window.innerWidth);"
    )
    assert rendered, f"{name}: a chart did not render within the screen"
    screenshot(browser, f"{name}-{width}")


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_page_fits_the_screen(browser: Any, site: Site, size: tuple[int, int]) -> None:
    width, height = size
    set_viewport(browser, width, height)
    browser.get(site.base + "/ui/sign-in")
    _fits(browser, "sign-in", width)
    sign_in(browser, site, site.admin_token)
    for name, path in _paths(site).items():
        browser.get(site.base + path)
        _fits(browser, name, width)
