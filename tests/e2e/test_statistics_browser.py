"""In real Chromium, on generated data: the leader opens the statistics page from the menu, picks last
year, sees a chart, takes a table's CSV (UTF-8 with a BOM, for Norwegian Excel) and opens the print
view; a PP-rådgjevar has no menu link and is refused the page. A screenshot of the page is kept in
test-artifacts/ (statistics-leiar.png, statistics-print.png)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ppt_web import clock
from ppt_web.generate import generate
from tests.e2e.conftest import sign_in
from tests.e2e.test_start_pages_browser import ACCESSIBILITY_PROBLEMS, ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.one_database, pytest.mark.app_config(WTF_CSRF_ENABLED=True)]

MENU_LINK = "header nav a[href='/statistics/']"


@pytest.fixture
def generated(app):
    """A small service's work through the services, as `flask generate-data` makes it: cases over the
    last three years, posts, approvals, archive jobs."""
    with app.app_context():
        stats = generate(12, seed=19, echo=lambda *a: None)
    assert stats["clients"] == 12
    return stats


def test_leader_reads_last_years_statistics_takes_a_csv_and_prints(page, generated, tmp_path):
    sign_in(page, "leiar")
    page.locator(MENU_LINK).click()
    expect(page).to_have_url(re.compile(r"/statistics/$"))
    expect(page.locator("#stats-filters")).to_be_visible()
    assert page.evaluate(ACCESSIBILITY_PROBLEMS) == []

    year = clock.today().year - 1
    page.locator("#stats-period").select_option("year")
    page.locator("#stats-year").fill(str(year))
    page.locator("#stats-filters button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"period=year&year={year}"))
    expect(page.locator("#stats-chosen")).to_contain_text(f"01.01.{year}")
    expect(page.locator("#stats-chosen")).to_contain_text(f"31.12.{year}")
    expect(page.locator("#stats-problems")).to_have_count(0)
    assert page.evaluate(ACCESSIBILITY_PROBLEMS) == []

    chart = page.locator("#figure-referrals-month svg[role=img]")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    # A year of referrals: the table beside the chart has a row per month, and some were made.
    rows = page.locator("#figure-referrals-month tbody tr")
    expect(rows).to_have_count(12)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "statistics-leiar.png"), full_page=True)

    with page.expect_download() as download_info:
        page.locator("a[data-csv='referrals-month']").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    data = saved.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data[3:].decode("utf-8").split("\r\n")
    assert ";" in lines[0] and len([line for line in lines if line]) == 13  # the header and a row per month

    page.locator("#stats-print").click()
    expect(page).to_have_url(re.compile(rf"/statistics/print\?.*year={year}"))
    expect(page.locator("#figure-referrals-month svg[role=img]")).to_be_visible()
    expect(page.locator("header nav")).to_have_count(0)  # no menu on paper
    page.emulate_media(media="print")
    page.screenshot(path=str(ARTIFACTS / "statistics-print.png"), full_page=True)
    assert page.console_errors == []


def test_a_handler_has_no_statistics(page, generated):
    sign_in(page, "radgjevar1")
    expect(page.locator("header nav")).to_be_visible()
    expect(page.locator(MENU_LINK)).to_have_count(0)
    response = page.goto("/statistics/")
    assert response is not None and response.status == 403
