"""In real Chromium, with a real worker: radgjevar1 sends an expert assessment to leiar; leiar returns
it with a comment; radgjevar1 fixes it and sends it again; leiar approves; the document is finalized,
archived, dispatched (the SvarUt folder stand-in), and shows as locked."""
from __future__ import annotations

import io
import time
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from ppt_web.cases import posts
from ppt_web.clock import today as oslo_today
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob, JournalPost, PostStatus
from tests import builders
from tests.e2e.conftest import sign_in, start_worker, stop_worker

pytestmark = [pytest.mark.browser, pytest.mark.one_database, pytest.mark.app_config(WTF_CSRF_ENABLED=True,
                                                          PPT_QUEUE_NAME=f"e2e-{uuid.uuid4().hex[:8]}")]


@pytest.fixture
def worker(app):
    proc = start_worker(app, PPT_DISPATCH_SECONDS=1, PPT_SWEEP_SECONDS=2)
    yield proc
    stop_worker(proc)


@pytest.mark.slow
def test_expert_assessment_is_returned_fixed_approved_and_dispatched(app, browser, live_server, page, worker):
    with app.app_context():
        case = builders.case("radgjevar1", category="expert_assessment", title="Sakkunnig vurdering 2026")
        draft = posts.create_post(builders.user("radgjevar1"), case.id, posts.PostData(
            post_type="U", title="Sakkunnig vurdering", document_date=oslo_today(),
            correspondents=[posts.CorrespondentData(name="Kari Føresett", address="Heimvegen 3, 6065 Ulsteinvik",
                                                    national_id=builders.valid_national_id(903))]),
            posts.Upload(io.BytesIO(builders.make_pdf(2)), "vurdering.pdf"))
        post_id = draft.id
    sign_in(page, "radgjevar1")
    page.goto(f"/posts/{post_id}")
    form = page.locator("form.approval-request")
    form.get_by_label("Godkjennar", exact=True).select_option(label="Ingrid Leiar")
    form.locator("textarea").fill("Klar for godkjenning")
    form.get_by_role("button", name="Send til godkjenning").click()
    expect(page.locator(".alert.awaiting")).to_contain_text("Ingrid Leiar")

    leader_context = browser.new_context(base_url=live_server, locale="nn-NO")
    leader = leader_context.new_page()
    sign_in(leader, "leiar")
    leader.get_by_role("link", name="Godkjenning").click()
    leader.get_by_role("link", name="Sakkunnig vurdering").click()
    decision = leader.locator("form.approval-decision")
    decision.get_by_label("Kommentar", exact=True).fill("Manglar tilrådinga om timetal")
    decision.get_by_role("button", name="Send tilbake med kommentar").click()
    expect(leader.locator("#flash")).to_contain_text("tilbake")

    page.goto("/")
    expect(page.locator("#notification-count")).not_to_have_text("0")
    page.goto(f"/posts/{post_id}")
    expect(page.locator(".history")).to_contain_text("Manglar tilrådinga om timetal")
    page.get_by_role("link", name="Rediger").click()
    page.locator("input[name=title]").fill("Sakkunnig vurdering med tilråding")
    page.get_by_role("button", name="Lagre").click()
    form = page.locator("form.approval-request")
    form.get_by_label("Godkjennar", exact=True).select_option(label="Ingrid Leiar")
    form.get_by_role("button", name="Send til godkjenning").click()
    expect(page.locator(".alert.awaiting")).to_be_visible()

    leader.goto(f"/posts/{post_id}")
    leader.locator("form.approval-decision").get_by_role("button", name="Godkjenn og ferdigstill").click()
    expect(leader.locator("h1")).to_have_text("Godkjenning")  # back to the queue, now empty
    expect(leader.locator("table.approvals")).not_to_contain_text("Sakkunnig vurdering")
    leader.goto(f"/posts/{post_id}")
    expect(leader.locator("h1")).to_contain_text("Ferdigstilt")
    leader_context.close()

    page.goto(f"/posts/{post_id}")
    expect(page.locator(".alert.lock")).to_be_visible()
    page.get_by_role("button", name="Send elektronisk").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "Ekspedert" not in page.locator("h1").inner_text():
        time.sleep(0.5)
        page.reload()
    expect(page.locator("h1")).to_contain_text("Ekspedert")
    expect(page.locator(".dispatches")).to_contain_text("Levert")
    expect(page.locator(".alert.lock")).to_be_visible()
    assert page.get_by_role("link", name="Rediger").count() == 0
    with app.app_context():
        post = db.session.get(JournalPost, post_id)
        assert post.status == PostStatus.DISPATCHED and post.approved_by.username == "leiar"
        job = db.session.scalar(select(ArchiveJob).where(ArchiveJob.post_id == post_id))
        deadline = time.monotonic() + 20
        while job.archive_status != "archived" and time.monotonic() < deadline:
            time.sleep(0.3)
            db.session.expire_all()
            job = db.session.scalar(select(ArchiveJob).where(ArchiveJob.post_id == post_id))
        assert job.archive_status == "archived"
