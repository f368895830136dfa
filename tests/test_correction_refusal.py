"""A dispatched post never changes, not even its metadata: the correction form is refused when it is
asked for, not first when it is sent, and the post page does not offer it."""
from __future__ import annotations

import re

from sqlalchemy import func, select, update

from ppt_web.extensions import db
from ppt_web.models import JournalPost, MetadataCorrection, PostStatus

from . import builders


def finalized() -> JournalPost:
    return builders.finalized_post(builders.case(category="follow_up"), title="Referat frå møte")


def dispatched() -> JournalPost:
    post = finalized()
    db.session.execute(update(JournalPost).where(JournalPost.id == post.id).values(status=PostStatus.DISPATCHED))
    db.session.commit()
    return post


def test_the_correction_form_of_a_dispatched_post_is_not_shown(app, ctx, login_as):
    post = dispatched()
    client = login_as("konsulent")
    response = client.get(f"/posts/{post.id}/correct")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/posts/{post.id}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r'<p class="alert error">[^<]+</p>', page)  # why, on the post page
    assert 'name="reason"' not in page  # no correction form
    assert f'href="/posts/{post.id}/correct"' not in page  # and none offered
    # Sent anyway (a form kept open from before): refused, nothing changed.
    response = client.post(f"/posts/{post.id}/correct", data={"reason": "Skrivefeil", "title": "Ny tittel",
                                                               "document_date": post.document_date.isoformat()})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(JournalPost, post.id).title == "Referat frå møte"
    assert db.session.scalar(select(func.count()).select_from(MetadataCorrection)) == 0


def test_a_finalized_post_still_offers_and_shows_the_correction_form(app, ctx, login_as):
    post = finalized()
    client = login_as("konsulent")
    assert f'href="/posts/{post.id}/correct"' in client.get(f"/posts/{post.id}").get_data(as_text=True)
    response = client.get(f"/posts/{post.id}/correct")
    assert response.status_code == 200 and 'name="reason"' in response.get_data(as_text=True)


def test_a_draft_gets_no_correction_form_either(app, ctx, login_as):
    post = builders.post(builders.case(), title="Utkast")
    response = login_as("konsulent").get(f"/posts/{post.id}/correct")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/posts/{post.id}")
