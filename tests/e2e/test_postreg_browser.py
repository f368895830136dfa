"""In real Chromium, with a real worker reading the sync folder: the secretary drops two scans,
sees them appear without a reload, ticks the four points and transfers one to a client; the
handler signs in and sees the notification and the document."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests import builders
from tests.e2e.conftest import sign_in, start_worker, stop_worker

pytestmark = [pytest.mark.browser, pytest.mark.one_database, pytest.mark.app_config(WTF_CSRF_ENABLED=True,
                                                          PPT_QUEUE_NAME=f"e2e-{uuid.uuid4().hex[:8]}")]


@pytest.fixture
def worker(app):
    proc = start_worker(app, PPT_INTAKE_SECONDS=1, PPT_SYNC_SETTLE_SECONDS=1, PPT_INBOUND_SECONDS=1)
    yield proc
    stop_worker(proc)


@pytest.mark.slow
def test_secretary_registers_scanned_mail_and_the_handler_is_told(app, browser, live_server, page, worker):
    with app.app_context():
        case = builders.case("radgjevar1", title="Tilvising 2026")
        client_name, case_number = case.client.name, case.number
    sign_in(page, "sekretaer")
    page.get_by_role("link", name="Postregistrering").click()
    page.evaluate("window.__noReload = true")

    sync = Path(app.config["PPT_SYNC_DIR"])
    sync.mkdir(parents=True, exist_ok=True)
    (sync / "skann-0001.pdf").write_bytes(builders.make_pdf(2))
    (sync / "skann-0002.pdf").write_bytes(builders.make_pdf(1))
    rows = page.locator("#inbox-rows tr[data-item]")
    expect(rows).to_have_count(2, timeout=20000)
    expect(page.locator("#inbox-rows")).to_contain_text("skann-0001.pdf")
    assert page.evaluate("window.__noReload") is True

    page.locator("#inbox-rows a", has_text="skann-0001.pdf").click()
    expect(page.locator(".preview img").first).to_be_visible()
    assert page.locator(".preview img").count() == 2
    assert page.evaluate("document.querySelector('.preview img').naturalWidth") > 0  # the page image loaded
    for point in (1, 2, 3, 4):
        page.locator(f'button.check[data-point="{point}"]').click()
        expect(page.locator(f'button.check[data-point="{point}"]')).to_have_attribute("aria-checked", "true")

    page.get_by_label("Klient (namn eller fødselsnummer)").fill(client_name.split()[0])
    page.locator("#client-results button", has_text=client_name).click()
    page.locator("#client-choice select[name=case_id]").select_option(label=f"{case_number} Tilvising 2026")
    page.locator("#transfer-form input[name=title]").fill("Tilvising frå Nordby skule")
    page.locator("#transfer-form input[name=document_date]").fill("20.11.2026")
    page.locator("#transfer-form input[name=sender_name]").fill("Nordby skule")
    page.get_by_role("button", name="Overfør").click()
    expect(page.locator("#flash")).to_contain_text("Overført og ferdigstilt")
    expect(page.locator("#inbox-rows tr[data-item]")).to_have_count(1)

    handler_context = browser.new_context(base_url=live_server, locale="nn-NO")
    handler = handler_context.new_page()
    sign_in(handler, "radgjevar1")
    expect(handler.locator("#notification-count")).to_have_text("1")
    handler.locator("a.bell").click()
    handler.get_by_role("button", name="Tilvising frå Nordby skule").click()
    expect(handler.locator("h1")).to_contain_text("Tilvising frå Nordby skule")
    expect(handler.locator("body")).to_contain_text("Nordby skule")
    handler.goto("/")
    expect(handler.locator("#notification-count")).to_have_text("0")  # opened, so read
    handler_context.close()
