"""Paper originals: destroying one asks for a confirmation, and the register of destroyed originals
(who destroyed what, when) stays readable, by period and a page at a time."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from ppt_web.clock import today, utcnow
from ppt_web.errors import Invalid
from ppt_web.extensions import db
from ppt_web.models import ActivityLog, PaperOriginal
from ppt_web.postreg import paper
from ppt_web.postreg.upload import receive_upload

from . import builders
from .conftest import user

REGISTER = "/post-registration/paper-originals?view=destroyed"


def due_original(tag: str = "Papir") -> PaperOriginal:
    """A scanned paper original whose three months are over."""
    post = builders.post(builders.case(), title=f"Brev {tag}")
    item = receive_upload(user("sekretaer"), io.BytesIO(builders.make_pdf(tag=tag)), f"{tag}.pdf")
    original = PaperOriginal(item_id=item.id, document_id=post.documents[0].id, storage_place="Arkivrom 2",
                             scanned_on=today() - timedelta(days=100), destroy_by=today() - timedelta(days=1),
                             created_at=utcnow())
    db.session.add(original)
    db.session.commit()
    return original


def destroyed_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(ActivityLog)
                             .where(ActivityLog.action == "paper_destroyed")) or 0


def test_the_due_list_asks_for_the_confirmation_in_the_form(app, ctx, login_as):
    original = due_original()
    page = login_as("sekretaer").get("/post-registration/paper-originals").get_data(as_text=True)
    form = re.search(rf'<form[^>]*action="/post-registration/paper-originals/{original.id}/destroyed".*?</form>',
                     page, re.S)
    assert form is not None
    assert re.search(r'<input type="checkbox" name="confirm" value="1" required', form.group(0))


def test_destroying_without_the_confirmation_is_refused_and_nothing_is_recorded(app, ctx, login_as):
    original = due_original()
    client = login_as("sekretaer")
    response = client.post(f"/post-registration/paper-originals/{original.id}/destroyed", data={})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r'<p class="alert error">[^<]+</p>', page)  # the reason, shown on the list
    assert f'data-original="{original.id}"' in page  # still due: still on the list
    db.session.expire_all()
    assert db.session.get(PaperOriginal, original.id).destroyed_at is None
    assert destroyed_rows() == 0
    response = client.post(f"/post-registration/paper-originals/{original.id}/destroyed", data={"confirm": "0"})
    db.session.expire_all()
    assert db.session.get(PaperOriginal, original.id).destroyed_at is None and destroyed_rows() == 0
    with pytest.raises(Invalid):
        paper.confirm_destroyed(user("sekretaer"), original.id, confirmed=False)
    db.session.expire_all()
    assert db.session.get(PaperOriginal, original.id).destroyed_at is None and destroyed_rows() == 0


def test_a_confirmed_destruction_is_recorded_with_who_and_when_and_the_register_lists_it(app, ctx, login_as):
    original = due_original()
    number = original.document.post.number
    client = login_as("sekretaer")
    before = utcnow()
    response = client.post(f"/post-registration/paper-originals/{original.id}/destroyed", data={"confirm": "1"})
    assert response.status_code == 302
    db.session.expire_all()
    done = db.session.get(PaperOriginal, original.id)
    assert done.destroyed_by.username == "sekretaer" and done.destroyed_at >= before - timedelta(seconds=1)
    assert destroyed_rows() == 1
    due = client.get("/post-registration/paper-originals").get_data(as_text=True)
    assert f'data-original="{original.id}"' not in due  # no longer due
    page = client.get(REGISTER).get_data(as_text=True)
    row = re.search(rf'<tr data-destroyed="{original.id}">.*?</tr>', page, re.S)
    assert row is not None
    assert number in row.group(0) and user("sekretaer").full_name in row.group(0) and "Arkivrom 2" in row.group(0)
    assert today().strftime("%d.%m.%Y") in row.group(0)
    # A period: today's destructions are in today, not in one that ends yesterday.
    day = today().strftime("%d.%m.%Y")
    assert f'data-destroyed="{original.id}"' in client.get(f"{REGISTER}&from={day}&to={day}").get_data(as_text=True)
    before_today = (today() - timedelta(days=1)).strftime("%d.%m.%Y")
    assert f'data-destroyed="{original.id}"' not in client.get(f"{REGISTER}&to={before_today}").get_data(as_text=True)
    # A date that is no date: a message and the whole register, never a 500.
    response = client.get(f"{REGISTER}&from=31.02.2026")
    assert response.status_code == 200 and f'data-destroyed="{original.id}"' in response.get_data(as_text=True)
    assert '<p class="alert error">' in response.get_data(as_text=True)


def test_the_register_is_paged_newest_first_and_one_query_per_list(app, ctx, login_as):
    made = [due_original(f"P{n}") for n in range(paper.PER_PAGE + 3)]
    for original in made:
        paper.confirm_destroyed(user("sekretaer"), original.id, confirmed=True)
    first = paper.destroyed_register(user("sekretaer"))
    assert first.total == len(made) and len(first.items) == paper.PER_PAGE and first.pages == 2
    assert [o.id for o in paper.destroyed_register(user("sekretaer"), page=2).items] == \
        [o.id for o in reversed(made[:3])]
    client = login_as("sekretaer")
    client.get(REGISTER)  # the first request of a session reads more (the user, the menu's counts)
    statements: list[str] = []

    def count(*args):
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        few = client.get(f"{REGISTER}&page=2")
        few_queries = len(statements)
        statements.clear()
        many = client.get(REGISTER)
        many_queries = len(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert few.status_code == many.status_code == 200
    assert many.get_data(as_text=True).count("data-destroyed=") == paper.PER_PAGE
    assert many_queries == few_queries  # 50 rows cost what 3 rows cost: no query per row


def test_only_distribute_mail_holders_see_the_register(ctx):
    from ppt_web.errors import Forbidden

    with pytest.raises(Forbidden):
        paper.destroyed_register(user("radgjevar1"))


@pytest.mark.parametrize("query, message", [
    ("&from=31.02.2026", "31.02.2026 is not a date."),
    ("&from=abc", "Write the date as dd.mm.yyyy"),
    ("&from=02.01.2026&to=01.01.2026", "The first date is after the last."),
])
def test_a_period_that_names_no_day_or_runs_backwards_is_told_and_kept(app, ctx, login_as, query, message):
    user("sekretaer").locale = "en"
    db.session.commit()
    page = login_as("sekretaer").get(REGISTER + query)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and message in html
    for part in query.strip("&").split("&"):
        name, typed = part.split("=")
        assert f'name="{name}" value="{typed}"' in html  # what was typed stays, to be put right


def test_a_destroyed_original_stays_destroyed_when_its_post_is_deleted_and_the_mail_filed_again(app, ctx, login_as):
    """Deleting a held-back post as misregistered sent the mail back to the inbox and took the record of its
    paper original with it, destroyed or not: the register lost the destruction, and filing the mail again
    put paper that no longer exists back on the list of what is due."""
    from ppt_web.cases import posts
    from ppt_web.models import InboxItem

    from .test_hold_back import held_back_post
    from .test_postreg import transfer_data

    post = held_back_post()
    item = db.session.scalar(select(InboxItem).where(InboxItem.post_id == post.id))
    original = db.session.scalar(select(PaperOriginal).where(PaperOriginal.item_id == item.id))
    original.destroy_by = today() - timedelta(days=1)  # its months are over
    db.session.commit()
    paper.confirm_destroyed(user("sekretaer"), original.id)
    posts.delete_post(user("konsulent"), post.id, "Feil klient")
    register = login_as("sekretaer").get(REGISTER).get_data(as_text=True)
    assert f'data-destroyed="{original.id}"' in register and "Tilbake i innboksen" in register
    from ppt_web.postreg import transfer

    other = builders.case()
    again = transfer.transfer(user("sekretaer"), item.id, transfer_data(other.client, other,
                                                                         storage_place="Arkivrommet, hylle 3"))
    kept = db.session.scalars(select(PaperOriginal).where(PaperOriginal.item_id == item.id)).all()
    assert [(k.id, k.destroyed_at is not None, k.document_id) for k in kept] == \
        [(original.id, True, again.post.main_document.id)]
    assert original.id not in [o.id for o in paper.paper_originals(user("sekretaer"), due_only=False)]
    assert destroyed_rows() == 1
