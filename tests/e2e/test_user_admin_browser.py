"""In real Chromium: sign in as konsulent, add a role to a user in place, sign out."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.app_config(WTF_CSRF_ENABLED=True)]


def test_konsulent_adds_a_role_without_a_page_reload(page, app):
    page.goto("/")
    page.get_by_label("Brukarnamn").fill("konsulent")
    page.get_by_label("Passord").fill("demo-passord")
    page.get_by_role("button", name="Logg inn").click()
    expect(page.locator("header .user")).to_contain_text("Kari Konsulent")

    page.get_by_role("link", name="Brukarar").first.click()
    row = page.locator("tr", has_text="Randi Rådgjevar")
    expect(row).to_contain_text("PP-rådgjevar")
    # A marker on the window survives only if the page is not reloaded.
    page.evaluate("window.__noReload = true")
    row.get_by_label("Legg til rolle").select_option(label="Nestleiar")
    row.get_by_role("button", name="Legg til rolle").click()
    expect(row.locator(".chips").first).to_contain_text("Nestleiar")
    assert page.evaluate("window.__noReload") is True

    # The change is real: in the database and in the activity log.
    from tests.conftest import activity_rows, user

    with app.app_context():
        assert sorted(r.code for r in user("radgjevar2").roles) == ["nestleiar", "pp_radgjevar"]
        assert activity_rows("role_granted")[-1].actor_name == "konsulent"

    # Remove it again in place.
    row.get_by_role("button", name="Fjern rolla Nestleiar").click()
    expect(row.locator(".chips").first).not_to_contain_text("Nestleiar")
    assert page.evaluate("window.__noReload") is True

    page.get_by_role("button", name="Logg ut").click()
    expect(page.get_by_role("heading", name="Logg inn")).to_be_visible()
    page.goto("/admin/users")
    expect(page.get_by_role("heading", name="Logg inn")).to_be_visible()
    assert page.console_errors == []
