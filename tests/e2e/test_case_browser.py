"""In real Chromium: a PP-rådgjevar registers a client and a case, adds a note with a PDF,
finalizes it and sees it locked; a second PP-rådgjevar cannot find it."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from ppt_web.clock import today as oslo_today
from tests import builders
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.app_config(WTF_CSRF_ENABLED=True)]



def test_handler_registers_and_finalizes_and_a_colleague_cannot_find_it(page, tmp_path):
    nid = builders.valid_national_id(42)
    pdf = tmp_path / "samtale.pdf"
    pdf.write_bytes(builders.make_pdf(2, tag="browser"))

    sign_in(page, "radgjevar1")
    page.get_by_role("link", name="Ny klient").click()
    page.get_by_label("Fødselsnummer").fill(nid)
    page.get_by_label("Førenamn").fill("Tuva")
    page.get_by_label("Etternamn").fill("Testesen")
    page.get_by_role("button", name="Lagre").click()
    expect(page.get_by_role("heading", name="Tuva Testesen")).to_be_visible()
    assert nid not in page.url

    page.get_by_role("link", name="Ny sak").click()
    page.get_by_label("Kategori").select_option(value="referral")
    page.get_by_label("Tittel").fill("Tilvising lesing")
    page.get_by_role("button", name="Registrer sak").click()
    expect(page.get_by_role("heading", name="Tilvising lesing")).to_be_visible()

    page.get_by_role("link", name="Ny journalpost").click()
    page.get_by_label("Tittel").fill("Samtale med føresette")
    # Each value waits for its own inline check to come back and settle, so a reply cannot land on the next value.
    with page.expect_response("**/posts/validate/document_date"):
        page.get_by_label("Dokumentdato").fill("01.01.2999")
        page.get_by_label("Dokumentdato").blur()
    expect(page.locator("#field-document_date .error")).to_contain_text("framtida")  # inline, before saving
    expect(page.locator("#field-document_date.htmx-settling")).to_have_count(0)
    with page.expect_response("**/posts/validate/document_date"):
        page.get_by_label("Dokumentdato").fill(oslo_today().strftime("%d.%m.%Y"))
        page.get_by_label("Dokumentdato").blur()
    expect(page.locator("#field-document_date .error")).to_have_count(0)
    page.get_by_label("Hovuddokument (PDF)").set_input_files(str(pdf))
    page.get_by_role("button", name="Lagre").click()
    expect(page.get_by_text("samtale.pdf")).to_be_visible()
    expect(page.get_by_text("2 sider")).to_be_visible()

    page.get_by_role("button", name="Ferdigstill").click()
    expect(page.locator(".alert.lock")).to_be_visible()
    expect(page.get_by_role("link", name="Rediger")).to_have_count(0)
    expect(page.get_by_role("button", name="Ferdigstill")).to_have_count(0)
    post_url = page.url

    page.get_by_role("button", name="Logg ut").click()
    sign_in(page, "radgjevar2")
    page.get_by_role("link", name="Søk").click()
    page.get_by_label("Namn, fødselsnummer").fill("Tuva")
    expect(page.locator("#search-results")).to_contain_text("Ingen treff")
    page.get_by_label("Namn, fødselsnummer").fill(nid)
    expect(page.locator("#search-results")).to_contain_text("Ingen treff")
    response = page.goto(post_url)
    assert response.status == 404
    assert page.console_errors == [] or all("404" in e for e in page.console_errors)
