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
    """The shipped expert assessment for school, as a new installation has it."""
    from ppt_web.letters.shipped import ensure_shipped

    ensure_shipped()
    found = db.session.scalar(select(DocumentTemplate).where(DocumentTemplate.shipped_key == "expert_school"))
    assert found is not None, "the shipped template expert_school is missing"
    return found


def csp_errors(errors: list[str]) -> list[str]:
    return [e for e in errors if "Content Security Policy" in e]


def watched(page):
    """The page's console errors and uncaught exceptions, as the page fixture collects them."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors
    return page


def letter_post(app, title: str = "Sakkunnig vurdering") -> int:
    """A draft letter from a plain template in a case with a guardian; its post id."""
    from tests.test_letters import case_with_recipients, new_letter, template

    with app.app_context():
        return new_letter(case_with_recipients(category="follow_up"), template(title=title)).id


def saved(page) -> None:
    """Everything typed is saved: nothing pending on the form (data-unsaved) and the status line says so."""
    expect(page.locator("#letter-form:not([data-unsaved])")).to_have_count(1, timeout=10_000)
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
    page = watched(context.new_page())
    page.goto(f"/posts/{post_id}/letter")
    expect(page.locator(".ql-editor")).to_contain_text("Siste ord.")
    expect(page.locator("#letter-restore")).to_be_hidden()
    errors += page.console_errors

    preview = page.request.get(f"/posts/{post_id}/letter/preview")
    assert preview.ok and preview.headers["content-type"] == "application/pdf"

    page.locator("#letter-to-post").click()
    form = page.locator("form.approval-request")
    form.get_by_label("Godkjennar", exact=True).select_option(label="Ingrid Leiar")
    form.get_by_role("button", name="Send til godkjenning").click()
    expect(page.locator(".alert.awaiting")).to_contain_text("Ingrid Leiar")

    leader_context = browser.new_context(base_url=live_server, locale="nn-NO")
    leader = watched(leader_context.new_page())
    sign_in(leader, "leiar")
    leader.goto(f"/posts/{post_id}")
    decision = leader.locator("form.approval-decision")
    sign_box = decision.locator("input[name=sign]")
    expect(sign_box).to_have_count(1)  # signing works out of the box (the local test certificate)
    sign_box.check()
    decision.get_by_role("button", name="Godkjenn og ferdigstill").click()
    expect(leader.locator("h1")).to_have_text("Godkjenning")
    errors += leader.console_errors
    leader_context.close()

    page.goto(f"/posts/{post_id}")
    expect(page.locator(".alert.lock")).to_be_visible()
    expect(page.locator("[data-test-signature]").first).to_be_visible()  # says plainly: a test signature
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
    assert not csp_errors(errors), errors


def test_text_typed_just_before_the_tab_closes_is_there_when_the_letter_opens_again(app, browser, live_server, page):
    """No wait for "Lagra": the beacon saved it, or the browser's copy is offered back (never restored
    silently); either way the text is not lost, and nothing on the next page speaks of a conflict."""
    post_id = letter_post(app)
    sign_in(page, "radgjevar1")
    page.goto(f"/posts/{post_id}/letter")
    expect(page.locator(".ql-editor")).to_be_visible()
    write(page, " Skrive i siste liten.")
    context = page.context
    page.close(run_before_unload=True)
    again = watched(context.new_page())
    again.goto(f"/posts/{post_id}/letter")
    editor = again.locator(".ql-editor")
    expect(editor).to_be_visible()
    restore = again.locator("#letter-restore")
    if restore.is_visible():
        expect(editor).not_to_contain_text("Skrive i siste liten.")
        again.locator("#letter-restore-yes").click()
        expect(restore).to_be_hidden()
        saved(again)
    expect(editor).to_contain_text("Skrive i siste liten.")
    expect(again.locator("#letter-state")).not_to_have_attribute("data-state", "conflict")
    assert again.locator(".alert.success, .alert.error").count() == 0
    with app.app_context():
        assert "Skrive i siste liten." in db.session.scalar(select(Letter.body).where(Letter.post_id == post_id))
    assert not csp_errors(again.console_errors), again.console_errors


def test_unsaved_text_kept_in_the_browser_is_offered_back_and_can_be_discarded(app, browser, live_server, page):
    """The copy in localStorage (based on the version shown) is offered with a button, not restored silently."""
    post_id = letter_post(app)
    sign_in(page, "radgjevar1")
    page.goto(f"/posts/{post_id}/letter")
    expect(page.locator(".ql-editor")).to_be_visible()
    version = page.locator("#letter-version").input_value()
    page.evaluate("([key, version]) => localStorage.setItem(key, JSON.stringify({version: version, "
                  "text: '<p>Teksten som ikkje vart lagra</p>'}))", [f"ppt-letter:{post_id}", version])
    page.reload()
    expect(page.locator("#letter-restore")).to_be_visible()
    expect(page.locator(".ql-editor")).not_to_contain_text("Teksten som ikkje vart lagra")
    page.locator("#letter-restore-yes").click()
    expect(page.locator(".ql-editor")).to_contain_text("Teksten som ikkje vart lagra")
    saved(page)
    assert page.evaluate(f"localStorage.getItem('ppt-letter:{post_id}')") is None
    with app.app_context():
        assert "Teksten som ikkje vart lagra" in db.session.scalar(select(Letter.body).where(Letter.post_id == post_id))

    page.evaluate("([key, version]) => localStorage.setItem(key, JSON.stringify({version: version, "
                  "text: '<p>Forkasta</p>'}))", [f"ppt-letter:{post_id}", page.locator("#letter-version").input_value()])
    page.reload()
    page.locator("#letter-restore-no").click()
    expect(page.locator("#letter-restore")).to_be_hidden()
    assert page.evaluate(f"localStorage.getItem('ppt-letter:{post_id}')") is None
    page.reload()
    expect(page.locator("#letter-restore")).to_be_hidden()
    assert not csp_errors(page.console_errors), page.console_errors


def test_a_signed_out_writer_stays_in_the_editor_with_an_error_and_the_text_kept(app, browser, live_server, page):
    """The session ends: the save is refused (401, or 400 for the form's token), the status line says so
    instead of "Lagrar …" for ever, htmx does not leave the page for the sign-in form, and the text stays
    in the browser; the status line is the same element all along (a live region)."""
    post_id = letter_post(app)
    sign_in(page, "radgjevar1")
    page.goto(f"/posts/{post_id}/letter")
    expect(page.locator(".ql-editor")).to_be_visible()
    page.evaluate("document.getElementById('letter-state').dataset.marker = 'same'")
    write(page, " Lagra før utlogging.")
    saved(page)
    page.context.clear_cookies()
    write(page, " Skrive etter utlogging.")
    state = page.locator("#letter-state")
    expect(state).to_have_attribute("data-state", "error", timeout=10_000)
    assert page.url.endswith(f"/posts/{post_id}/letter")
    assert state.get_attribute("data-marker") == "same"
    kept = page.evaluate(f"JSON.parse(localStorage.getItem('ppt-letter:{post_id}'))")
    assert "Skrive etter utlogging." in kept["text"]
    status = page.evaluate("document.getElementById('letter-form').dataset.error")
    assert status in ("400", "401"), status


def test_pasted_word_html_keeps_its_text_and_loses_colours_fonts_and_images(app, browser, live_server, page):
    """What the editor shows is what is saved: Quill keeps only the formats the sanitizer keeps."""
    post_id = letter_post(app)
    sign_in(page, "radgjevar1")
    page.goto(f"/posts/{post_id}/letter")
    expect(page.locator(".ql-editor")).to_be_visible()
    word = ('<p class="MsoNormal" style="mso-margin-top-alt:auto"><span style="color:red;font-family:Calibri;'
            'font-size:20pt;background:yellow">Limt inn frå Word</span><o:p></o:p></p>'
            '<p class="MsoListParagraph"><b>Feit tekst</b> <img src="file:///C:/Users/x/image001.png"></p>'
            '<pre>kode</pre><p><font face="Comic Sans" color="blue">Skrift</font></p>')
    page.locator(".ql-editor").click()
    page.keyboard.press("Control+End")
    page.evaluate("""(html) => {
        const data = new DataTransfer();
        data.setData('text/html', html);
        data.setData('text/plain', 'Limt inn frå Word');
        const target = document.querySelector('.ql-editor');
        target.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
    }""", word)
    editor = page.locator(".ql-editor")
    expect(editor).to_contain_text("Limt inn frå Word")
    expect(editor.locator("img, [style*=color], .ql-font-serif, .ql-size-large, pre, .ql-code-block")).to_have_count(0)
    saved(page)
    with app.app_context():
        body = db.session.scalar(select(Letter.body).where(Letter.post_id == post_id))
    assert "Limt inn frå Word" in body and "Feit tekst" in body and "Skrift" in body
    for gone in ("style", "color", "Calibri", "<img", "file:", "mso", "<pre", "o:p", "<font"):
        assert gone not in body, (gone, body)
    assert not csp_errors(page.console_errors), page.console_errors


def test_preview_saves_what_was_typed_before_it_opens(app, browser, live_server, page):
    """Clicking Førehandsvis right after typing: the text is saved first, then the PDF opens in a new tab."""
    post_id = letter_post(app)
    sign_in(page, "radgjevar1")
    page.goto(f"/posts/{post_id}/letter")
    expect(page.locator(".ql-editor")).to_be_visible()
    write(page, " Med i førehandsvisinga.")
    with page.context.expect_page() as opened:
        page.locator("#letter-preview").click()
    preview = opened.value
    preview.wait_for_load_state()
    assert f"/posts/{post_id}/letter/preview" in preview.url
    expect(page.locator("#letter-state")).to_have_attribute("data-state", "saved")
    with app.app_context():
        from tests.conftest import activity_rows

        letter = db.session.scalar(select(Letter).where(Letter.post_id == post_id))
        assert "Med i førehandsvisinga." in letter.body
        previewed = [r for r in activity_rows("letter_previewed") if r.object_id == str(post_id)]
        assert previewed and previewed[0].at >= letter.updated_at  # the PDF was made from the saved text
    assert not csp_errors(page.console_errors), page.console_errors


def test_choosing_a_note_template_unchecks_the_recipients(app, browser, live_server, page):
    """A note (N) has no recipients chosen for it; back on an outgoing letter (U) the guardian is chosen again."""
    from tests.test_letters import case_with_recipients, template

    with app.app_context():
        case_id = case_with_recipients(category="follow_up").id
        note_id, letter_id = template(post_type="N", title="Notat").id, template(title="Brev").id
    sign_in(page, "radgjevar1")
    page.goto(f"/cases/{case_id}/letters/new")
    guardian = page.locator("input[name=recipients][data-kind=guardian]")
    expect(guardian).to_be_checked()
    page.locator("#template_id").select_option(str(note_id))
    expect(page.locator("input[name=recipients]:checked")).to_have_count(0)
    page.locator("#template_id").select_option(str(letter_id))
    expect(guardian).to_be_checked()
    page.locator("#template_id").select_option(str(note_id))
    page.locator("#new-letter-form button[type=submit]").click()
    expect(page.locator(".ql-editor")).to_be_visible()
    post_id = int(page.url.rstrip("/").split("/")[-2])
    with app.app_context():
        post = db.session.get(JournalPost, post_id)
        assert post.post_type.value == "N" and post.correspondents == []
    assert not csp_errors(page.console_errors), page.console_errors


def test_the_administrator_writes_a_template_in_the_editor_and_a_letter_is_made_from_its_latest_version(
        app, browser, live_server, page):
    """The template form uses the same editor: a merge field typed in it is kept, an unknown one is refused
    on save with the field named, a second save is version 2, and a handler's letter is made from it with
    the client's name merged in."""
    from tests.test_letters import case_with_recipients

    with app.app_context():
        case = case_with_recipients(category="follow_up")
        case_id, client_name = case.id, case.client.name
    watched(page)
    sign_in(page, "admin")
    page.goto("/templates/new")
    page.fill("input[name=name]", "Kort brev til føresette")
    page.select_option("select[name=post_type]", "U")
    page.fill("input[name=default_title]", "Brev om kartlegging")
    editor = page.locator("#template-form .ql-editor")
    expect(editor).to_be_visible()
    editor.click()
    page.keyboard.type("Hei. Vi skriv om {{ klient.adress }}.")
    page.locator("#template-form button[type=submit]").click()
    expect(page.locator("#template-form")).to_contain_text("klient.adress")  # named on save, nothing kept
    with app.app_context():
        assert db.session.scalar(select(DocumentTemplate).where(
            DocumentTemplate.name == "Kort brev til føresette")) is None
    editor = page.locator("#template-form .ql-editor")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("Hei. Vi skriv om {{ klient.namn }}, sak {{ sak.nummer }}.")
    page.locator("#template-form button[type=submit]").click()
    expect(page.locator(".alert.success")).to_be_visible()
    with app.app_context():
        made = db.session.scalar(select(DocumentTemplate).where(DocumentTemplate.name == "Kort brev til føresette"))
        assert made is not None and made.version == 1 and "{{ klient.namn }}" in made.body
        template_id = made.id
    page.goto(f"/templates/{template_id}")
    editor = page.locator("#template-form .ql-editor")
    expect(editor).to_contain_text("{{ klient.namn }}")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" Helsing PPT.")
    page.locator("#template-form button[type=submit]").click()
    expect(page.locator(".alert.success")).to_be_visible()
    with app.app_context():
        assert db.session.get(DocumentTemplate, template_id).version == 2

    page.context.clear_cookies()
    sign_in(page, "radgjevar1")
    page.goto(f"/cases/{case_id}/letters/new")
    page.select_option("select[name=template_id]", str(template_id))
    page.locator("#field-recipients input[type=checkbox]").first.check()
    page.get_by_role("button", name="Skriv brevet").click()
    letter_editor = page.locator(".ql-editor")
    expect(letter_editor).to_contain_text(f"Hei. Vi skriv om {client_name}, sak")
    expect(letter_editor).to_contain_text("Helsing PPT.")
    expect(letter_editor).not_to_contain_text("{{")
    assert not csp_errors(page.console_errors), page.console_errors
