"""In real Chromium, with a real worker: radgjevar1 writes an expert assessment from the shipped template in
the editor (bold, a list, a table), sees it saved and kept across a reload and a closed tab; a second tab
on the same letter is told its text was not saved; leiar approves with a signature; the letter's PDF is
finalized, archived and dispatched. Screenshots of the editor and of the PDF's first page are kept."""
from __future__ import annotations

import io
import os
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from ppt_web.extensions import db
from ppt_web.files.storage import file_path
from ppt_web.models import ArchiveJob, JournalPost, PostStatus
from ppt_web.models.letters import DocumentTemplate, Letter
from tests.e2e.conftest import sign_in, start_worker, stop_worker
from tests.helpers import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.one_database, pytest.mark.app_config(WTF_CSRF_ENABLED=True,
                                                          PPT_QUEUE_NAME=f"e2e-{uuid.uuid4().hex[:8]}")]

# Read at import: the tests' environment is cleared of PPT_* settings (conftest).
ARTIFACTS = Path(os.environ.get("PPT_TEST_ARTIFACTS") or ROOT / "test-artifacts")


@pytest.fixture
def worker(app):
    proc = start_worker(app, PPT_DISPATCH_SECONDS=1, PPT_SWEEP_SECONDS=2)
    yield proc
    stop_worker(proc)


def expert_template() -> DocumentTemplate:
    """The shipped expert assessment for school (a plain one if the shipped templates are not there)."""
    try:
        from ppt_web.letters.shipped import ensure_shipped

        ensure_shipped()
        found = db.session.scalar(select(DocumentTemplate).where(DocumentTemplate.shipped_key == "expert_school"))
        if found is not None:
            return found
    except ImportError:
        pass
    from tests.test_letters import template

    return template(title="Sakkunnig vurdering")


def saved(page) -> None:
    expect(page.locator("#letter-state")).to_have_attribute("data-state", "saved", timeout=10_000)


def write(page, text: str) -> None:
    """Type at the end of the editor's text."""
    page.locator(".ql-editor").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def pdf_first_page_png(data: bytes, target: Path) -> None:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        document[0].render(scale=1.5).to_pil().save(target)
    finally:
        document.close()


@pytest.mark.slow
def test_a_letter_from_the_shipped_template_is_written_approved_signed_archived_and_dispatched(
        app, browser, live_server, page, worker):
    from tests.test_letters import case_with_recipients

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with app.app_context():
        case = case_with_recipients(category="expert_assessment")
        template_id, case_id = expert_template().id, case.id
    sign_in(page, "radgjevar1")
    page.goto(f"/cases/{case_id}")
    page.locator("#new-letter").click()
    page.locator("#template_id").select_option(str(template_id))
    expect(page.locator("input[name=recipients]").first).to_be_checked()  # the guardian, chosen already
    page.locator("#new-letter-form button[type=submit]").click()
    expect(page.locator(".ql-editor")).to_be_visible()
    post_id = int(page.url.rstrip("/").split("/")[-2])
    saved(page)

    # Bold, a bulleted list and a table, through the toolbar.
    write(page, "\n")
    page.locator("button.ql-bold").click()
    page.keyboard.type("Viktig tilråding")
    page.locator("button.ql-bold").click()
    page.keyboard.press("Enter")
    page.locator('button.ql-list[value="bullet"]').click()
    page.keyboard.type("Punkt ein")
    page.keyboard.press("Enter")
    page.keyboard.type("Punkt to")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # an empty item ends the list
    page.locator("button.ql-table-insert").click()
    page.keyboard.type("Celle A1")
    saved(page)
    expect(page.locator("button.ql-bold")).to_have_attribute("title", "Feit")
    page.screenshot(path=str(ARTIFACTS / "letter-editor.png"), full_page=True)

    page.reload()
    editor = page.locator(".ql-editor")
    expect(editor.locator("strong", has_text="Viktig tilråding")).to_have_count(1)
    expect(editor.locator("li", has_text="Punkt ein")).to_have_count(1)
    expect(editor.locator("li", has_text="Punkt to")).to_have_count(1)
    expect(editor.locator("table", has=page.locator("td", has_text="Celle A1")).locator("td")).to_have_count(9)

    # Two tabs on one letter: the one that saves second is told, and nothing it wrote overwrites the other.
    other = page.context.new_page()
    other.goto(f"/posts/{post_id}/letter")
    expect(other.locator(".ql-editor")).to_be_visible()
    write(page, " Frå første fane.")
    saved(page)
    write(other, " Frå andre fane.")
    expect(other.locator("#letter-state")).to_have_attribute("data-state", "conflict", timeout=10_000)
    write(other, " Meir.")
    expect(other.locator("#letter-state")).to_have_attribute("data-state", "conflict")
    other.close()
    with app.app_context():
        body = db.session.scalar(select(Letter.body).where(Letter.post_id == post_id))
        assert "Frå første fane." in body and "Frå andre fane." not in body

    # Typed, saved, tab closed: the text is there when the letter is opened again.
    write(page, " Siste ord.")
    saved(page)
    errors, context = page.console_errors, page.context
    page.close()
    page = context.new_page()
    page.goto(f"/posts/{post_id}/letter")
    expect(page.locator(".ql-editor")).to_contain_text("Siste ord.")

    preview = page.request.get(f"/posts/{post_id}/letter/preview")
    assert preview.ok and preview.headers["content-type"] == "application/pdf"

    page.locator("#letter-to-post").click()
    form = page.locator("form.approval-request")
    form.get_by_label("Godkjennar", exact=True).select_option(label="Ingrid Leiar")
    form.get_by_role("button", name="Send til godkjenning").click()
    expect(page.locator(".alert.awaiting")).to_contain_text("Ingrid Leiar")

    leader_context = browser.new_context(base_url=live_server, locale="nn-NO")
    leader = leader_context.new_page()
    sign_in(leader, "leiar")
    leader.goto(f"/posts/{post_id}")
    decision = leader.locator("form.approval-decision")
    sign_box = decision.locator("input[name=sign]")
    if sign_box.count():
        sign_box.check()
    decision.get_by_role("button", name="Godkjenn og ferdigstill").click()
    expect(leader.locator("h1")).to_have_text("Godkjenning")
    leader_context.close()

    page.goto(f"/posts/{post_id}")
    expect(page.locator(".alert.lock")).to_be_visible()
    page.locator("#open-letter").click()
    expect(page.locator("#letter-read")).to_contain_text("Siste ord.")
    assert page.locator(".ql-editor").count() == 0
    page.goto(f"/posts/{post_id}")
    page.get_by_role("button", name="Send elektronisk").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "Ekspedert" not in page.locator("h1").inner_text():
        time.sleep(0.5)
        page.reload()
    expect(page.locator("h1")).to_contain_text("Ekspedert")
    expect(page.locator(".dispatches")).to_contain_text("Levert")

    with app.app_context():
        post = db.session.get(JournalPost, post_id)
        letter = db.session.scalar(select(Letter).where(Letter.post_id == post_id))
        assert post.status == PostStatus.DISPATCHED and post.approved_by.username == "leiar"
        assert letter.rendered_version == letter.version
        pdf = file_path(post.main_document.sha256).read_bytes()
        from pypdf import PdfReader

        words = "".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages)
        assert "Punkt to" in words and "Celle A1" in words and "Siste ord." in words
        pdf_first_page_png(pdf, ARTIFACTS / "letter-pdf-page-1.png")
        deadline = time.monotonic() + 20
        job = db.session.scalar(select(ArchiveJob).where(ArchiveJob.post_id == post_id))
        while job.archive_status != "archived" and time.monotonic() < deadline:
            time.sleep(0.3)
            db.session.expire_all()
            job = db.session.scalar(select(ArchiveJob).where(ArchiveJob.post_id == post_id))
        assert job.archive_status == "archived"
    assert not [e for e in errors if "Content Security Policy" in e], errors
