"""A draft's content changed while an action on it was under way (the letter saved, the post edited while it
was being signed, sent to approval, finalized or released from hold back; or signed while a save was on its
way): exactly one of the two takes effect, the other is refused and keeps nothing, so what is signed,
approved or finalized is what the draft showed. The change runs in another thread with its own session, as
another request would, at the slow moment of the action (the signature, the checks after the render). On
SQLite it commits there and the action is refused; where the action already holds a row the change needs
(PostgreSQL's row locks), the change waits, the action commits, and the change is refused."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from ppt_web.cases import approval, esign, hold_back, posts
from ppt_web.errors import Conflict
from ppt_web.extensions import db
from ppt_web.letters import service
from ppt_web.models import ArchiveJob, JournalPost, PostSignature, PostStatus

from .conftest import user
from .helpers import Meanwhile, elsewhere
from .test_letters import case_with_recipients, new_letter, pdf_text

NEW_TEXT = "<p>Ny tekst skriven medan</p>"
NEW_TITLE = "Heilt ny tittel"


def save(post_id: int):
    return lambda: service.save(user("radgjevar1"), post_id, NEW_TEXT, 1).version


def retitle(post_id: int, post_type: str = "U", username: str = "radgjevar1"):
    def edit() -> str:
        post = db.session.get(JournalPost, post_id)
        data = posts.PostData(post_type=post_type, title=NEW_TITLE, document_date=post.document_date,
                              received_on=post.received_on,
                              correspondents=[posts.CorrespondentData(name="Anna Mottakar", address="Vegen 1",
                                                                      postal_code="6060", city="Hareid")])
        return posts.update_post(user(username), post_id, data).title
    return edit


def signatures(post_id: int) -> int:
    return len(db.session.scalars(select(PostSignature).where(PostSignature.post_id == post_id)).all())


def one_of_the_two(action, change: list[Meanwhile]) -> bool:
    """Run the action (which starts the change at its slow moment); whether the action took effect. Exactly one
    of the two did: the change committed first and the action was refused, or the action and the change
    refused after it."""
    try:
        action()
        acted = True
    except Conflict:
        acted = False
    db.session.rollback()
    status, result = change[0].outcome()
    assert acted != (status == "ok"), (acted, status, result)
    assert acted or change[0].ended_first  # the action is refused only for a change that came first
    if not db.engine.url.get_backend_name().startswith("postgresql"):
        assert change[0].ended_first  # SQLite: the action took no lock before its write, so the race was run
    if status == "refused":
        assert isinstance(result, Conflict), result
    return acted


@pytest.mark.parametrize("change", ["save", "retitle"])
def test_a_change_while_the_letter_is_signed(app, ctx, monkeypatch, change):
    post = new_letter(case_with_recipients(category="follow_up"))
    signing = esign._signing()
    real, started = signing.sign_pdf, []

    def sign_pdf(*args, **kwargs):
        started.append(Meanwhile(app, save(post.id) if change == "save" else retitle(post.id)))
        return real(*args, **kwargs)

    monkeypatch.setattr(signing, "sign_pdf", sign_pdf)
    signed = one_of_the_two(lambda: esign.sign(user("radgjevar1"), post.id), started)
    post = db.session.get(JournalPost, post.id)
    assert signatures(post.id) == (1 if signed else 0) and post.status == PostStatus.DRAFT
    if not signed:
        monkeypatch.setattr(signing, "sign_pdf", real)
        esign.sign(user("radgjevar1"), post.id)
        post = db.session.get(JournalPost, post.id)
    words = " ".join(pdf_text(post.main_document.sha256)[1].split())  # what is signed is what the draft says
    now = service.letter_of(post).body == NEW_TEXT if change == "save" else post.title == NEW_TITLE
    assert now == (not signed)
    assert (("Ny tekst skriven medan" if change == "save" else NEW_TITLE) in words) == (not signed)


def test_a_save_while_the_letter_is_sent_to_approval(app, ctx, monkeypatch):
    post = new_letter(case_with_recipients())
    real, started = posts.missing_for_finalize, []

    def missing(checked):
        if not started:  # after the letter was rendered for the approver, before the send's write
            started.append(Meanwhile(app, save(post.id)))
        return real(checked)

    monkeypatch.setattr(posts, "missing_for_finalize", missing)
    sent = one_of_the_two(lambda: approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id), started)
    post = db.session.get(JournalPost, post.id)
    assert post.status == (PostStatus.AWAITING_APPROVAL if sent else PostStatus.DRAFT)
    assert (service.letter_of(post).body == NEW_TEXT) == (not sent)
    if sent:  # the approver is shown what the letter says
        assert "Ny tekst skriven medan" not in " ".join(pdf_text(post.main_document.sha256)[1].split())


def test_an_edit_while_the_post_is_finalized(app, ctx, monkeypatch):
    post = new_letter(case_with_recipients(category="follow_up"))
    real, started = posts.checked_path, []

    def checked_path(*args, **kwargs):
        if not started:  # while the finalize checks the post's files
            started.append(Meanwhile(app, retitle(post.id)))
        return real(*args, **kwargs)

    monkeypatch.setattr(posts, "checked_path", checked_path)
    finalized = one_of_the_two(lambda: posts.finalize(user("radgjevar1"), post.id), started)
    post = db.session.get(JournalPost, post.id)
    assert post.status == (PostStatus.FINALIZED if finalized else PostStatus.DRAFT)
    assert (post.title == NEW_TITLE) == (not finalized)


def test_an_edit_while_a_held_back_post_is_released(app, ctx, monkeypatch):
    """The leader releases what the decision page showed: an edit committed after the release compared it is
    not finalized with it (SQLite locks nothing until the release's first write)."""
    from .test_hold_back import held_back_post

    post = held_back_post()
    shown = hold_back.seen_version(post)
    real, started = posts.missing_for_finalize, []

    def missing(checked):
        if not started:
            started.append(Meanwhile(app, retitle(post.id, post_type="I")))
        return real(checked)

    monkeypatch.setattr(posts, "missing_for_finalize", missing)
    released = one_of_the_two(lambda: hold_back.release(user("leiar"), post.id, seen=shown), started)
    post = db.session.get(JournalPost, post.id)
    assert post.status == (PostStatus.FINALIZED if released else PostStatus.DRAFT)
    assert (post.title == NEW_TITLE) == (not released)
    jobs = db.session.scalars(select(ArchiveJob).where(ArchiveJob.post_id == post.id)).all()
    assert len(jobs) == (1 if released else 0)


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


def test_a_save_crossing_an_edit_of_the_post_says_the_text_was_not_saved(app, ctx, monkeypatch):
    """The post's title changed between the save's check and its write: the save is refused, and says the text
    was not saved and to copy it (a plain "changed meanwhile, open it again" lost what was typed)."""
    post = new_letter(case_with_recipients(category="follow_up"))
    real, calls = service.save_refusal, []

    def save_refusal(actor, checked):
        if not calls:
            calls.append(elsewhere(app, retitle(post.id)))
        return real(actor, checked)

    monkeypatch.setattr(service, "save_refusal", save_refusal)
    with pytest.raises(Conflict) as refused:
        service.save(user("radgjevar1"), post.id, NEW_TEXT, 1)
    assert "IKKJE lagra" in str(refused.value.message)
    db.session.rollback()
    post = db.session.get(JournalPost, post.id)
    assert post.title == NEW_TITLE and service.letter_of(post).body != NEW_TEXT
