"""Each page shows the figures the JSON API gives for the same read model."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By

from tests.ui.conftest import Site, screenshot, sign_in
from tests.ui.figures import chart_data, figure, money, painted_pixels, percent, rate


@pytest.fixture
def admin(browser: Any, site: Site) -> Any:
    """The browser, signed in as the seeded firm's administrator."""
    sign_in(browser, site, site.admin_token)
    return browser


def _engagements(site: Site) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = site.api("/engagements?limit=200")["data"]["items"]
    return items


def _busiest_with_sponsor(site: Site) -> tuple[str, dict[str, Any]]:
    """An engagement with a sponsor, goals, milestones hit and several wellbeing checks."""
    for item in _engagements(site):
        if item["sponsor_id"] is None:
            continue
        dashboard = site.api(f"/engagements/{item['engagement_id']}/dashboard")["data"]
        milestones_hit = sum(goal["milestones_hit"] for goal in dashboard["goals"])
        checks = (dashboard["wellbeing"] or {}).get("checks", 0)
        if milestones_hit and checks >= 2 and dashboard["sessions"]["held"] >= 2:
            return item["engagement_id"], dashboard
    raise AssertionError("the seeded firm has no engagement with a full dashboard")


def test_the_firm_overview_shows_the_api_figures(admin: Any, site: Site) -> None:
    answer = site.api("/firm/overview")
    overview = answer["data"]
    admin.get(site.base + "/ui/firm")

    for name in ("engagements", "active", "closed", "off_track", "sessions_held"):
        assert figure(admin, name) == f"{overview[name]:,}", name
    assert figure(admin, "completion_rate") == rate(overview["completion_rate"])
    assert figure(admin, "no_show_rate") == rate(overview["no_show_rate"])
    assert figure(admin, "invoiced") == money(overview["invoiced"])
    assert figure(admin, "outstanding") == money(overview["outstanding"])
    roi = overview["roi"]["roi_pct"]
    assert figure(admin, "roi_median") == percent(roi["median"])
    assert figure(admin, "roi_iqr") == f"{percent(roi['q1'])} – {percent(roi['q3'])}"
    assert figure(admin, "pooled_roi") == percent(overview["roi"]["pooled_roi_pct"])

    freshness = admin.find_element(By.CSS_SELECTOR, "[data-freshness]")
    assert freshness.get_attribute("data-position") == str(answer["freshness"]["position"])
    assert "up to date" in freshness.text

    rows = admin.find_elements(By.CSS_SELECTOR, '[data-table="coach"] tbody tr')
    assert [row.get_attribute("data-group") for row in rows] == list(overview["by_coach"])
    for row in rows:
        stats = overview["by_coach"][row.get_attribute("data-group")]
        cell = row.find_element(By.CSS_SELECTOR, '[data-cell="engagements"]')
        assert cell.text == str(stats["engagements"])
        median = row.find_element(By.CSS_SELECTOR, '[data-cell="roi_median"]').text
        expected = stats["roi"]["roi_pct"]
        assert median.startswith(percent(expected["median"]) if expected else "—")
    segments = admin.find_elements(By.CSS_SELECTOR, '[data-table="segment"] tbody tr')
    assert {row.get_attribute("data-group") for row in segments} == set(overview["by_segment"])
    off_track = admin.find_elements(By.CSS_SELECTOR, '[data-table="off-track"] tbody tr')
    assert len(off_track) == overview["off_track"]


def test_the_firm_charts_draw_the_roi_distribution_of_the_api(admin: Any, site: Site) -> None:
    admin.get(site.base + "/ui/firm")
    for canvas in ("roi-by-coach", "roi-by-segment", "revenue-by-coach", "completion-by-segment"):
        assert painted_pixels(admin, f"canvas-{canvas}") > 500, canvas

    for group_by, canvas in (("coach", "roi-by-coach"), ("segment", "roi-by-segment")):
        items = site.api(f"/firm/roi?group_by={group_by}")["data"]["items"]
        drawn = chart_data(admin, f"canvas-{canvas}")
        ranges, medians = drawn["datasets"]
        assert len(drawn["labels"]) == len(items)
        marks = {point["y"]: point["x"] for point in medians["data"]}
        for item, iqr, row in zip(items, ranges["data"], drawn["labels"], strict=True):
            q = item["roi_pct"]
            if q is None:  # a group without a measurable ROI has neither bar nor mark
                assert iqr is None
                assert row not in marks
            else:
                assert iqr == [q["q1"], q["q3"]]
                assert marks[row] == q["median"]
    screenshot(admin, "firm-1280")


def test_a_coach_portfolio_lists_off_track_engagements_first(admin: Any, site: Site) -> None:
    by_coach = site.api("/firm/overview")["data"]["by_coach"]
    coach = next(name for name, stats in by_coach.items() if stats["off_track"])
    portfolio = site.api(f"/coaches/{coach}/portfolio")["data"]
    admin.get(f"{site.base}/ui/coaches/{coach}")

    rows = admin.find_elements(By.CSS_SELECTOR, '[data-table="portfolio"] tbody tr')
    shown = [row.get_attribute("data-engagement") for row in rows]
    assert shown == [item["engagement_id"] for item in portfolio["items"]]
    flags = [row.get_attribute("data-off-track") == "true" for row in rows]
    assert flags == sorted(flags, reverse=True), "off-track engagements come first"
    assert sum(flags) == portfolio["off_track"] > 0
    for row, item in zip(rows, portfolio["items"], strict=True):
        sessions = row.find_element(By.CSS_SELECTOR, '[data-cell="sessions"]').text
        assert sessions == f"{item['sessions_held']} / {item['sessions_planned']}"
    assert figure(admin, "engagements") == str(portfolio["engagements"])
    assert figure(admin, "sessions_held") == str(portfolio["sessions_held"])
    assert painted_pixels(admin, "canvas-sessions") > 500
    drawn = chart_data(admin, "canvas-sessions")
    assert drawn["datasets"][0]["data"] == [item["sessions_held"] for item in portfolio["items"]]
    screenshot(admin, "coach-1280")


def test_the_engagement_page_shows_its_timeline_charts_and_api_figures(
    admin: Any, site: Site
) -> None:
    engagement_id, dashboard = _busiest_with_sponsor(site)
    admin.get(f"{site.base}/ui/engagements/{engagement_id}")

    sessions = dashboard["sessions"]
    assert figure(admin, "sessions") == f"{sessions['held']} / {sessions['planned']}"
    assert figure(admin, "gas_t_score") == f"{dashboard['gas_t_score']:,.1f}"
    assert figure(admin, "follow_through") == rate(dashboard["follow_through"])
    assert figure(admin, "cadence_adherence") == rate(dashboard["cadence_adherence"])
    assert (
        figure(admin, "invoiced")
        == f"{money(dashboard['money']['invoiced'])} " + (dashboard["currency"])
    )

    timeline = admin.find_element(By.CSS_SELECTOR, "[data-timeline]")
    held = timeline.find_elements(By.CSS_SELECTOR, '[data-kind="session"][data-status="held"]')
    assert len(held) == sessions["held"]
    hit = timeline.find_elements(By.CSS_SELECTOR, '[data-kind="milestone"]')
    assert len(hit) == sum(goal["milestones_hit"] for goal in dashboard["goals"])
    checks = timeline.find_elements(By.CSS_SELECTOR, '[data-kind="wellbeing"]')
    assert len(checks) == dashboard["wellbeing"]["checks"]
    times = timeline.find_elements(By.TAG_NAME, "time")
    dates = [entry.get_attribute("datetime") for entry in times]
    assert dates == sorted(dates), "the timeline runs oldest first"

    for canvas in ("sessions", "gas", "wellbeing"):
        assert painted_pixels(admin, f"canvas-{canvas}") > 500, canvas
    gas = chart_data(admin, "canvas-gas")
    assert gas["datasets"][0]["data"] == [goal["latest_score"] for goal in dashboard["goals"]]
    wellbeing = chart_data(admin, "canvas-wellbeing")
    confidence = next(d for d in wellbeing["datasets"] if d["label"] == "Confidence")["data"]
    assert len(confidence) == dashboard["wellbeing"]["checks"]
    assert confidence[0] == dashboard["wellbeing"]["first"]["confidence"]
    assert confidence[-1] == dashboard["wellbeing"]["latest"]["confidence"]
    held_drawn = chart_data(admin, "canvas-sessions")["datasets"][0]["data"]
    assert held_drawn == [sessions["held"]]
    screenshot(admin, "engagement-1280")


def _sponsor_reports(site: Site) -> list[tuple[str, dict[str, Any]]]:
    return [
        (item["engagement_id"], site.api(f"/engagements/{item['engagement_id']}/sponsor-report"))
        for item in _engagements(site)
        if item["sponsor_id"] is not None
    ]


def test_the_sponsor_page_shows_only_what_consent_allows(admin: Any, site: Site) -> None:
    reports = _sponsor_reports(site)
    withholding = [r for r in reports if r[1]["data"]["withheld"]]
    sharing = [r for r in reports if "goals" in r[1]["data"]]
    assert withholding, "the seed has a sponsor report withholding something"
    assert sharing, "the seed has a sponsor report sharing goals"
    for n, (engagement_id, answer) in enumerate([withholding[0], sharing[0]]):
        report = answer["data"]
        admin.get(f"{site.base}/ui/engagements/{engagement_id}/sponsor")
        for section in ("attendance", "goals", "outcomes", "roi"):
            shown = admin.find_elements(By.CSS_SELECTOR, f'section[data-section="{section}"]')
            assert bool(shown) == (section in report), section
        withheld = admin.find_elements(By.CSS_SELECTOR, "[data-withheld]")
        assert {w.get_attribute("data-withheld") for w in withheld} == set(report["withheld"])
        milestones = admin.find_elements(By.CSS_SELECTOR, 'th[data-section="milestones"]')
        assert bool(milestones) == ("goals" in report and "milestones" not in report["withheld"])
        text = admin.find_element(By.TAG_NAME, "main").text
        assert "Wellbeing check-in" not in text
        assert "imposter" not in text.lower()
        if "attendance" in report:
            held = report["attendance"]["held"]
            assert figure(admin, "sessions") == f"{held} / {report['attendance']['planned']}"
            assert painted_pixels(admin, "canvas-sessions") > 500
        if "roi" in report:
            assert figure(admin, "roi_pct") == percent(report["roi"]["roi_pct"])
        if "goals" in report:
            assert figure(admin, "gas_t_score") == (
                "—" if report["gas_t_score"] is None else f"{report['gas_t_score']:,.1f}"
            )
        screenshot(admin, f"sponsor-{'withheld' if n == 0 else 'shared'}-1280")


def test_an_engagement_without_a_sponsor_has_no_sponsor_page(admin: Any, site: Site) -> None:
    engagement_id = next(i["engagement_id"] for i in _engagements(site) if i["sponsor_id"] is None)
    admin.get(f"{site.base}/ui/engagements/{engagement_id}/sponsor")
    assert admin.find_elements(By.CSS_SELECTOR, "[data-not-found]")


def test_another_firms_engagement_is_not_found(admin: Any, site: Site) -> None:
    theirs = site.api("/engagements?limit=1", token=site.other_firm_token)["data"]["items"][0]
    for path in ("", "/sponsor"):
        admin.get(f"{site.base}/ui/engagements/{theirs['engagement_id']}{path}")
        assert admin.find_elements(By.CSS_SELECTOR, "[data-not-found]")
        assert theirs["client_id"] not in admin.page_source
    admin.get(f"{site.base}/ui/coaches/coach-nobody")
    assert admin.find_elements(By.CSS_SELECTOR, "[data-not-found]")


def test_pages_load_nothing_from_another_origin(admin: Any, site: Site) -> None:
    engagement_id, _ = _busiest_with_sponsor(site)
    for path in ("/ui/firm", f"/ui/engagements/{engagement_id}"):
        admin.get(site.base + path)
        loaded = admin.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".concat([...document.querySelectorAll('script[src], link[href], img[src]')]"
            ".map(e => e.src || e.href));"
        )
        origin = urlsplit(site.base).netloc
        outside = [u for u in loaded if not u.startswith("data:") and urlsplit(u).netloc != origin]
        assert not outside, outside
        assert admin.execute_script("return typeof Chart") == "function"
