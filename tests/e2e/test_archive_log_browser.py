"""In real Chromium, with a real worker: the consultant watches the archive log while a handler
finalizes in another browser; the row appears and turns Utført without a reload. A failed job
shows on top, and Prøv på nytt fixes it."""
from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from ppt_web.archive.job_messages import set_message
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob
from tests import builders
from tests.e2e.conftest import sign_in, start_worker, stop_worker

pytestmark = [pytest.mark.browser, pytest.mark.one_database, pytest.mark.app_config(WTF_CSRF_ENABLED=True,
                                                          PPT_QUEUE_NAME=f"e2e-{uuid.uuid4().hex[:8]}")]



@pytest.fixture
def worker(app):
    proc = start_worker(app)
    yield proc
    stop_worker(proc)


@pytest.mark.slow
def test_archive_log_updates_live_and_retry_fixes_a_failure(app, browser, live_server, page, worker):
    with app.app_context():
        case = builders.case("radgjevar1", title="Live-sak")
        draft = builders.post(case, title="Live-notat")
        draft_id = draft.id
    sign_in(page, "konsulent")
    page.get_by_role("link", name="Arkivlogg").click()
    expect(page.locator("#archive-rows")).to_contain_text("Opprett saksmappe")
    page.evaluate("window.__noReload = true")
    rows_before = page.locator("#archive-rows tr.job").count()

    handler_context = browser.new_context(base_url=live_server, locale="nn-NO")
    handler = handler_context.new_page()
    sign_in(handler, "radgjevar1")
    handler.goto(f"/posts/{draft_id}")
    handler.get_by_role("button", name="Ferdigstill").click()
    expect(handler.locator(".alert.lock")).to_be_visible()
    handler_context.close()

    new_row = page.locator("#archive-rows tr.job", has_text="Arkiver journalpost")
    expect(new_row).to_be_visible(timeout=15000)
    expect(new_row).to_contain_text("Utført", timeout=15000)
    expect(new_row).to_contain_text("Arkivert")
    assert page.locator("#archive-rows tr.job").count() == rows_before + 1
    assert page.evaluate("window.__noReload") is True

    with app.app_context():  # force a failure on the oldest job
        job = db.session.scalars(select(ArchiveJob).order_by(ArchiveJob.id)).first()
        job.job_status, job.archive_status = "done", "failed"
        set_message(job, "refused", detail="Arkivet svarte ikkje (test).")
        db.session.commit()
        job_id = job.id
    first = page.locator("#archive-rows tr.job").first
    expect(first).to_have_attribute("id", f"job-{job_id}", timeout=10000)
    expect(first).to_contain_text("Arkivet svarte ikkje")
    first.get_by_role("button", name="Prøv på nytt").click()
    fixed = page.locator(f"#job-{job_id}")
    expect(fixed).to_contain_text("Arkivert", timeout=15000)
    expect(page.locator("#archive-rows tr.job.failed")).to_have_count(0)
    assert page.evaluate("window.__noReload") is True
