"""The pages offer what the services allow: the post page's actions and the main menu come from the
same guards and permissions the actions and views enforce, not from copies in the templates."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from ppt_web.admin.service import create_user_unchecked
from ppt_web.cases import esign, post_actions
from ppt_web.cli import DEMO_PASSWORD, DEMO_USERS
from ppt_web.errors import Conflict
from ppt_web.extensions import db
from ppt_web.models import Permission, Role

from . import builders
from .conftest import user


def menu_links(page: str) -> list[str]:
    nav = page.split('aria-label="Hovudmeny"', 1)[-1].split("</nav>", 1)[0]
    return re.findall(r'<a href="([^"]+)"', nav)


@pytest.mark.parametrize("username", [u for u, _name, _role in DEMO_USERS])
def test_every_menu_entry_opens_for_its_user(client, login_as, username):
    """No menu entry answers 403: the menu is built from each view's own permissions."""
    browser = login_as(username)
    links = menu_links(browser.get("/").get_data(as_text=True))
    assert links, "the menu is empty"
    for link in links:
        assert browser.get(link).status_code == 200, link


def test_the_menu_hides_pages_the_user_may_not_open(ctx, login_as):
    """A reader of the archive log only (no case search) is offered that page and no other; the activity
    log, which also needs case search, is not offered though the role holds it."""
    reader = Role(code="log_reader", name="Loggleser", permissions=list(
        db.session.scalars(select(Permission).where(Permission.code.in_(["archive_log", "activity_log"])))))
    db.session.add(reader)
    db.session.commit()
    create_user_unchecked(username="loggleser", full_name="Lars Loggleser", password=DEMO_PASSWORD,
                          role_codes=["log_reader"])
    browser = login_as("loggleser")
    assert menu_links(browser.get("/").get_data(as_text=True)) == ["/archive-log/"]
    assert browser.get("/search/").status_code == 403
    assert browser.get("/activity-log/").status_code == 403


def test_an_unfinalized_incoming_post_offers_no_write_off(ctx, login_as):
    """The service writes off only finalized incoming posts, so the draft's page has no write-off form."""
    case = builders.case()
    draft = builders.post(case, post_type="I", correspondent="Skulen")
    page = login_as("radgjevar1").get(f"/posts/{draft.id}").get_data(as_text=True)
    assert f"/posts/{draft.id}/write-off" not in page
    assert not post_actions.allowed(user("radgjevar1"), draft).write_off
    builders.finalize(draft, "radgjevar1")
    page = login_as("radgjevar1").get(f"/posts/{draft.id}").get_data(as_text=True)
    assert f"/posts/{draft.id}/write-off" in page


def test_a_note_is_not_signed_even_when_asked_directly(ctx):
    """The page offered Sign only on outgoing letters; the service now refuses the rest as well."""
    note = builders.post(builders.case(category="follow_up"), post_type="N")
    with pytest.raises(Conflict) as refused:
        esign.sign(user("radgjevar1"), note.id)
    assert "utgåande" in str(refused.value.message)  # Nynorsk: "only an outgoing letter is signed"
