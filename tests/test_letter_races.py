"""A draft's content changed while an action on it was under way (the letter saved, the post edited while it
was being signed, sent to approval or finalized; or signed while a save was on its way): the action that
comes second is refused and keeps nothing, so what is signed, approved or finalized is what the draft showed.
The change runs in another thread with its own session, as another request would, at the slow moment of
the action (the signature, the checks after the render)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from ppt_web.cases import approval, esign, posts
from ppt_web.errors import Conflict
from ppt_web.extensions import db
from ppt_web.letters import service
from ppt_web.models import JournalPost, PostSignature, PostStatus

from .conftest import user
from .helpers import elsewhere
from .test_letters import case_with_recipients, new_letter, pdf_text

NEW_TEXT = "<p>Ny tekst skriven medan</p>"


def saved_meanwhile(app, post_id: int):
    return lambda: elsewhere(app, lambda: service.save(user("radgjevar1"), post_id, NEW_TEXT, 1).version)


def retitled_meanwhile(app, post_id: int):
    def edit() -> str:
        post = db.session.get(JournalPost, post_id)
        data = posts.PostData(post_type="U", title="Heilt ny tittel", document_date=post.document_date,
                              correspondents=[posts.CorrespondentData(name="Anna Mottakar", address="Vegen 1",
                                                                      postal_code="6060", city="Hareid")])
        return posts.update_post(user("radgjevar1"), post_id, data).title
    return lambda: elsewhere(app, edit)


def signatures(post_id: int) -> int:
    return len(db.session.scalars(select(PostSignature).where(PostSignature.post_id == post_id)).all())


@pytest.mark.parametrize("change", [saved_meanwhile, retitled_meanwhile])
def test_a_change_while_the_letter_is_signed_refuses_the_signature(app, ctx, monkeypatch, change):
    post = new_letter(case_with_recipients(category="follow_up"))
    signing = esign._signing()
    real, meanwhile = signing.sign_pdf, change(app, post.id)

    def sign_pdf(*args, **kwargs):
        meanwhile()  # committed while the signature is made
        return real(*args, **kwargs)

    monkeypatch.setattr(signing, "sign_pdf", sign_pdf)
    with pytest.raises(Conflict):
        esign.sign(user("radgjevar1"), post.id)
    db.session.rollback()
    post = db.session.get(JournalPost, post.id)
    assert signatures(post.id) == 0 and post.status == PostStatus.DRAFT
    monkeypatch.setattr(signing, "sign_pdf", real)
    esign.sign(user("radgjevar1"), post.id)  # signed again, it is the draft as it is now that is signed
    post = db.session.get(JournalPost, post.id)
    words = " ".join(pdf_text(post.main_document.sha256)[1].split())
    assert ("Ny tekst skriven medan" in words) if change is saved_meanwhile else ("Heilt ny tittel" in words)


def test_a_save_while_the_letter_is_sent_to_approval_refuses_the_send(app, ctx, monkeypatch):
    post = new_letter(case_with_recipients())
    real, meanwhile = posts.missing_for_finalize, saved_meanwhile(app, post.id)

    def missing(checked):
        meanwhile()  # committed after the letter was rendered for the approver, before the send's write
        return real(checked)

    monkeypatch.setattr(posts, "missing_for_finalize", missing)
    with pytest.raises(Conflict):
        approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id)
    db.session.rollback()
    post = db.session.get(JournalPost, post.id)
    assert post.status == PostStatus.DRAFT and post.approver_id is None
    assert service.letter_of(post).body == NEW_TEXT


def test_an_edit_while_the_post_is_finalized_refuses_the_finalize(app, ctx, monkeypatch):
    post = new_letter(case_with_recipients(category="follow_up"))
    real, meanwhile = posts.checked_path, retitled_meanwhile(app, post.id)
    calls = []

    def checked_path(*args, **kwargs):
        if not calls:
            calls.append(meanwhile())  # committed while the finalize checks the post's files
        return real(*args, **kwargs)

    monkeypatch.setattr(posts, "checked_path", checked_path)
    with pytest.raises(Conflict):
        posts.finalize(user("radgjevar1"), post.id)
    db.session.rollback()
    post = db.session.get(JournalPost, post.id)
    assert post.status == PostStatus.DRAFT and post.title == "Heilt ny tittel"


def test_a_signature_while_a_save_is_on_its_way_refuses_the_save(app, ctx, monkeypatch):
    """The save checked "not signed", then the letter was signed by another request before the save's
    write: the save is refused and the letter keeps the text that was signed."""
    post = new_letter(case_with_recipients(category="follow_up"))
    real = service.save_refusal
    calls = []

    def save_refusal(actor, checked):
        if not calls:
            calls.append(elsewhere(app, lambda: esign.sign(user("radgjevar1"), post.id).id))
        return real(actor, checked)

    monkeypatch.setattr(service, "save_refusal", save_refusal)
    with pytest.raises(Conflict):
        service.save(user("radgjevar1"), post.id, NEW_TEXT, 1)
    db.session.rollback()
    post = db.session.get(JournalPost, post.id)
    assert signatures(post.id) == 1 and service.letter_of(post).body != NEW_TEXT


def test_a_signed_letter_is_not_signed_again(ctx, client, login_as):
    """Signed once, the draft offers no second signature and the service refuses one: one signature row,
    one "signed" event."""
    post = new_letter(case_with_recipients(category="follow_up"))
    esign.sign(user("radgjevar1"), post.id)
    assert esign.sign_refusal(user("radgjevar1"), db.session.get(JournalPost, post.id)) is not None
    with pytest.raises(Conflict):
        esign.sign(user("radgjevar1"), post.id)
    db.session.rollback()
    assert signatures(post.id) == 1
    page = login_as("radgjevar1").get(f"/posts/{post.id}").get_data(as_text=True)
    assert f"/posts/{post.id}/sign" not in page


def test_a_signed_letter_is_not_sent_to_approval(ctx):
    """Sent and returned, the handler could neither change it (signed) nor delete it (a handler does not
    delete posts): a draft for ever, holding the case open. It is finalized as signed, or a new letter made."""
    post = new_letter(case_with_recipients(category="follow_up"))
    esign.sign(user("radgjevar1"), post.id)
    with pytest.raises(Conflict):
        approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id)
    db.session.rollback()
    assert db.session.get(JournalPost, post.id).status == PostStatus.DRAFT
    posts.finalize(user("radgjevar1"), post.id)
    assert db.session.get(JournalPost, post.id).status == PostStatus.FINALIZED
