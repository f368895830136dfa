"""In real Chromium: each role signs in, lands on its start page, and clicks one row into the work.
A screenshot of each start page is kept in test-artifacts/ (start-<role>.png)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import sign_in
from tests.helpers import ROOT
from tests.test_start_pages import build_world

pytestmark = [pytest.mark.browser, pytest.mark.one_database, pytest.mark.app_config(WTF_CSRF_ENABLED=True)]

# Read at import: the tests' environment is cleared of PPT_* settings (conftest).
ARTIFACTS = Path(os.environ.get("PPT_TEST_ARTIFACTS") or ROOT / "test-artifacts")

# What a screen reader and a keyboard need from the page: a language, one h1, named links, buttons and
# form fields, headed tables, panels named by their heading, and ids that are unique.
ACCESSIBILITY_PROBLEMS = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
  for (const el of document.querySelectorAll("a, button")) {
    const name = (el.innerText || el.getAttribute("aria-label") || el.title || "").trim();
    if (!name) problems.push("unnamed " + el.tagName + " " + el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const labelled = el.labels && el.labels.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    if (!labelled) problems.push("unlabelled field " + (el.name || el.id));
  }
  for (const th of document.querySelectorAll("main table thead th")) {
    if (!th.getAttribute("scope")) problems.push("th without scope");
  }
  for (const section of document.querySelectorAll("section[aria-labelledby]")) {
    if (!document.getElementById(section.getAttribute("aria-labelledby"))) problems.push("section names a missing heading");
  }
  const seen = new Set();
  for (const el of document.querySelectorAll("[id]")) {
    if (seen.has(el.id)) problems.push("duplicate id " + el.id);
    seen.add(el.id);
  }
  return problems;
}"""


@pytest.fixture
def world(app):
    with app.app_context():
        w = build_world()
        return {"own": w.own.id, "own_title": w.own.title, "job": w.failed_job.id, "waiting": w.waiting.id,
                "waiting_title": w.waiting.title, "paper_place": w.paper_due.storage_place}


def open_start_page(page, username: str, panel: str) -> None:
    sign_in(page, username)
    page.goto("/")
    expect(page.locator(f"#{panel}")).to_be_visible()
    assert page.evaluate(ACCESSIBILITY_PROBLEMS) == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"start-{username}.png"), full_page=True)


def test_handler_opens_the_oldest_open_case_from_the_start_page(page, world):
    open_start_page(page, "radgjevar1", "panel-handler")
    expect(page.locator("#open-cases tbody tr")).to_have_count(3)
    expect(page.locator("#open-cases tbody tr").first).to_contain_text("Anna Berg")
    page.locator("#open-cases tbody tr").first.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/cases/{world['own']}$"))
    expect(page.get_by_role("heading", name=world["own_title"])).to_be_visible()
    assert page.console_errors == []


def test_secretary_goes_from_the_start_page_to_the_paper_originals_due(page, world):
    open_start_page(page, "sekretaer", "panel-secretary")
    expect(page.locator("#inbox-waiting li")).to_have_count(4)
    expect(page.locator("#in-progress li").first).to_contain_text("Siri Sekretær")
    page.locator("#paper-due li a").first.click()
    expect(page).to_have_url(re.compile(r"/post-registration/paper-originals$"))
    expect(page.get_by_text(world["paper_place"]).first).to_be_visible()
    assert page.console_errors == []


def test_consultant_goes_from_the_start_page_to_the_failed_job_in_the_archive_log(page, world):
    open_start_page(page, "konsulent", "panel-consultant")
    expect(page.locator("#failed-jobs li")).to_have_count(2)
    expect(page.locator("#stuck-jobs li")).to_have_count(1)
    expect(page.locator("#failed-dispatches li")).to_have_count(1)
    page.locator(f"#failed-jobs li[data-job='{world['job']}'] a").click()
    expect(page).to_have_url(re.compile(rf"/archive-log/\?status=failed#job-{world['job']}$"))
    expect(page.locator(f"#job-{world['job']}")).to_be_visible()
    assert page.console_errors == []


def test_leader_opens_the_oldest_approval_from_the_start_page(page, world):
    open_start_page(page, "leiar", "panel-leader")
    expect(page.locator("#approvals tbody tr")).to_have_count(2)
    expect(page.locator("#held-back li")).to_have_count(1)
    expect(page.locator("#by-handler tbody tr")).to_have_count(2)
    page.locator("#approvals tbody tr").first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/posts/{world['waiting']}$"))
    expect(page.get_by_text(world["waiting_title"]).first).to_be_visible()
    assert page.console_errors == []
