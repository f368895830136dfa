"""Journal posts: finalize rules, immutability (service, UI and raw SQL), corrections, write-off, deletion."""
from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from ppt_web.cases import posts
from ppt_web.clock import today as oslo_today
from ppt_web.errors import Conflict, Forbidden, Invalid, NotFound
from ppt_web.extensions import db
from ppt_web.files.storage import file_path
from ppt_web.models import Document, JournalPost, PostStatus, StoredFile

from . import builders
from .conftest import TEST_DATABASE_URL, activity_rows, user


def test_finalize_names_what_is_missing(ctx):
    case = builders.case()
    draft = posts.create_post(user("radgjevar1"), case.id, posts.PostData(post_type="I"))
    with pytest.raises(Invalid) as caught:
        posts.finalize(user("radgjevar1"), draft.id)
    message = str(caught.value.message)
    for word in ("tittel", "avsendar", "dokumentdato", "hovuddokument"):
        assert word in message
    assert db.session.get(JournalPost, draft.id).status == PostStatus.DRAFT


def test_notes_need_no_correspondent(ctx):
    done = builders.finalized_post(builders.case(), post_type="N")
    assert done.status == PostStatus.FINALIZED and done.finalized_at is not None


def test_future_document_date_is_refused(ctx):
    case = builders.case()
    with pytest.raises(Invalid):
        builders.post(case, document_date=oslo_today() + timedelta(days=3))
    assert db.session.scalar(db.select(db.func.count()).select_from(JournalPost)) == 0


def _finalized(ctx_case=None):
    case = ctx_case or builders.case()
    return builders.finalized_post(case, post_type="I", correspondent="Ulstein skule", title="Tilvising")


def test_finalized_post_refuses_every_change_through_the_service(ctx):
    post = _finalized()
    sha = post.documents[0].sha256
    data = posts.PostData(post_type="I", title="Endra", document_date=oslo_today())
    for attempt in (lambda: posts.update_post(user("radgjevar1"), post.id, data),
                    lambda: posts.update_post(user("konsulent"), post.id, data),
                    lambda: posts.delete_post(user("konsulent"), post.id, "feil"),
                    lambda: posts.remove_document(user("radgjevar1"), post.id, post.documents[0].id),
                    lambda: posts.update_post(user("radgjevar1"), post.id, data,
                                              posts.Upload(io.BytesIO(builders.make_pdf()), "ny.pdf"))):
        with pytest.raises(Conflict):
            attempt()
        db.session.rollback()
    fresh = db.session.get(JournalPost, post.id)
    assert fresh.title == "Tilvising" and fresh.documents[0].sha256 == sha
    assert hashlib.sha256(file_path(sha).read_bytes()).hexdigest() == sha


@pytest.mark.parametrize("statement", [
    "UPDATE journal_post SET title = 'forged'",
    "UPDATE journal_post SET document_date = '2001-01-01'",
    "UPDATE journal_post SET status = 'draft'",
    "UPDATE journal_post SET case_id = case_id + 1",
    "DELETE FROM journal_post",
    "UPDATE document SET sha256 = 'x'",
    "DELETE FROM document",
    "INSERT INTO document (post_id, role, position, filename, sha256) SELECT id, 'attachment', 9, 'x.pdf', "
    "(SELECT sha256 FROM stored_file LIMIT 1) FROM journal_post",
    "UPDATE correspondent SET name = 'forged'",
    "DELETE FROM correspondent",
    "UPDATE stored_file SET size = 1",
    "DELETE FROM stored_file",
])
def test_raw_sql_cannot_change_a_finalized_post(ctx, statement):
    """The database itself refuses: the floor under the service layer."""
    post = _finalized()
    sha = post.documents[0].sha256
    with pytest.raises(DatabaseError):
        db.session.execute(text(statement))
        db.session.flush()
    db.session.rollback()
    fresh = db.session.get(JournalPost, post.id)
    assert fresh.title == "Tilvising" and fresh.status == PostStatus.FINALIZED
    assert [d.sha256 for d in fresh.documents] == [sha] and fresh.correspondents[0].name == "Ulstein skule"


def test_drafts_can_still_change_in_sql(ctx):
    """The triggers guard finalized posts only: ordinary work on drafts is untouched."""
    post = builders.post(builders.case())
    db.session.execute(text("UPDATE journal_post SET title = 'Ny tittel' WHERE id = :id"), {"id": post.id})
    db.session.commit()
    assert db.session.get(JournalPost, post.id).title == "Ny tittel"


@pytest.mark.parametrize("username", ["leiar", "nestleiar", "radgjevar1", "sekretaer", "admin", "superbrukar"])
def test_only_correct_metadata_may_correct(ctx, username):
    post = _finalized()
    data = posts.PostData(post_type="I", title="Retta tittel", document_date=oslo_today(),
                          correspondents=[posts.CorrespondentData(name="Ulstein skule")])
    with pytest.raises((Forbidden, NotFound)):
        posts.correct_metadata(user(username), post.id, "Skrivefeil", data)
    db.session.rollback()
    assert db.session.get(JournalPost, post.id).title == "Tilvising"


def test_konsulent_corrects_metadata_with_a_reason_and_history_keeps_both(ctx):
    post = _finalized()
    data = posts.PostData(post_type="I", title="Tilvising frå Ulstein skule", document_date=oslo_today() - timedelta(days=2),
                          received_on=oslo_today() - timedelta(days=1),
                          correspondents=[posts.CorrespondentData(name="Ulstein skule v/ rektor")])
    with pytest.raises(Invalid):
        posts.correct_metadata(user("konsulent"), post.id, "   ", data)
    db.session.rollback()
    correction = posts.correct_metadata(user("konsulent"), post.id, "Feil tittel og avsendar", data)
    fresh = db.session.get(JournalPost, post.id)
    assert fresh.title == "Tilvising frå Ulstein skule" and fresh.status == PostStatus.FINALIZED
    assert [c.name for c in fresh.correspondents] == ["Ulstein skule v/ rektor"]
    assert correction.before["title"] == "Tilvising" and correction.after["title"] == fresh.title
    assert correction.applying is False
    row = activity_rows("post_metadata_corrected")[-1]
    assert row.detail == "Feil tittel og avsendar" and row.before["correspondents"] == ["Ulstein skule"]
    with pytest.raises(DatabaseError):  # the correction itself is kept as it is
        db.session.execute(text("UPDATE metadata_correction SET reason = 'x'"))
    db.session.rollback()


def test_dispatched_post_cannot_change_not_even_metadata(ctx):
    post = builders.finalized_post(builders.case(), post_type="U", correspondent="Føresette", title="Brev")
    db.session.execute(text("UPDATE journal_post SET status = 'dispatched' WHERE id = :id"), {"id": post.id})
    db.session.commit()
    data = posts.PostData(post_type="U", title="Nytt", document_date=oslo_today(),
                          correspondents=[posts.CorrespondentData(name="Føresette")])
    with pytest.raises(Conflict):
        posts.correct_metadata(user("konsulent"), post.id, "grunn", data)
    db.session.rollback()
    with pytest.raises(DatabaseError):
        db.session.execute(text("UPDATE journal_post SET status = 'finalized'"))
    db.session.rollback()


def test_misregistered_draft_is_deleted_by_fix_misregistered_and_recorded(ctx):
    post = builders.post(builders.case(), title="Feil klient")
    with pytest.raises(Forbidden):
        posts.delete_post(user("radgjevar1"), post.id, "feil")
    db.session.rollback()
    posts.delete_post(user("sekretaer"), post.id, "Registrert på feil klient")
    assert db.session.get(JournalPost, post.id) is None
    row = activity_rows("post_deleted")[-1]
    assert row.before["title"] == "Feil klient" and row.detail == "Registrert på feil klient"


def test_write_off_by_reply_or_other_method(ctx):
    case = builders.case()
    incoming = builders.finalized_post(case, post_type="I", correspondent="Skule", title="Spørsmål")
    note = builders.post(case, post_type="N")
    with pytest.raises(Invalid):  # BU needs the outgoing reply
        posts.write_off(user("radgjevar1"), incoming.id, "BU")
    with pytest.raises(Invalid):
        posts.write_off(user("radgjevar1"), incoming.id, "BU", note.id)
    with pytest.raises(Invalid):
        posts.write_off(user("radgjevar1"), incoming.id, "XX")
    db.session.rollback()
    assert [p.id for p in posts.outstanding(user("radgjevar1"))] == [incoming.id]
    reply = builders.finalized_post(case, post_type="U", correspondent="Skule", title="Svar")
    posts.write_off(user("radgjevar1"), incoming.id, "BU", reply.id)
    fresh = db.session.get(JournalPost, incoming.id)
    assert fresh.write_off_method == "BU" and fresh.write_off_reply_id == reply.id
    assert posts.outstanding(user("radgjevar1")) == []
    with pytest.raises(Conflict):
        posts.write_off(user("radgjevar1"), incoming.id, "TE")
    other = builders.finalized_post(case, post_type="I", correspondent="BUP", title="Kopi")
    posts.write_off(user("radgjevar1"), other.id, "TO")
    assert db.session.get(JournalPost, other.id).write_off_method == "TO"


def test_leader_sees_everyones_outstanding_posts(ctx):
    mine = builders.post(builders.case("radgjevar1"), post_type="I", correspondent="A")
    theirs = builders.post(builders.case("radgjevar2"), post_type="I", correspondent="B")
    assert {p.id for p in posts.outstanding(user("leiar"))} == {mine.id, theirs.id}
    assert [p.id for p in posts.outstanding(user("radgjevar1"))] == [mine.id]


def test_registration_after_downtime_carries_the_real_date(ctx):
    case = builders.case()
    earlier = oslo_today() - timedelta(days=5)
    post = builders.post(case, post_type="I", correspondent="Skule", received_on=earlier,
                         document_date=earlier, registered_after_downtime=True)
    assert post.registered_after_downtime and post.received_on == earlier
    assert post.registered_at.date() >= oslo_today() - timedelta(days=1)
    with pytest.raises(Invalid):  # "after downtime" needs an earlier real date
        builders.post(case, post_type="I", correspondent="Skule", received_on=oslo_today(),
                      registered_after_downtime=True)


def test_closed_case_takes_no_new_posts(ctx):
    from ppt_web.cases import service as cases

    case = builders.case()
    cases.close_case(user("radgjevar1"), case.id)
    with pytest.raises(Conflict):
        builders.post(case)


def test_bad_upload_leaves_no_row_and_no_file(ctx, app):
    """A good main document with a bad attachment: nothing of either is kept."""
    case = builders.case()
    good = builders.make_pdf(tag="good-main")
    files_dir = __import__("pathlib").Path(app.instance_path) / "files"
    before = sorted(p for p in files_dir.rglob("*") if p.is_file()) if files_dir.exists() else []
    with pytest.raises(Invalid):
        posts.create_post(user("radgjevar1"), case.id, posts.PostData(post_type="N", title="x"),
                          posts.Upload(io.BytesIO(good), "ok.pdf"),
                          [posts.Upload(io.BytesIO(b"GIF89a not a pdf"), "../../x.pdf")])
    assert db.session.scalar(db.select(db.func.count()).select_from(JournalPost)) == 0
    assert db.session.scalar(db.select(db.func.count()).select_from(StoredFile)) == 0
    after = sorted(p for p in files_dir.rglob("*") if p.is_file()) if files_dir.exists() else []
    assert after == before


def test_same_file_is_stored_once(ctx):
    case = builders.case()
    pdf = builders.make_pdf(tag="shared")
    for title in ("A", "B"):
        posts.create_post(user("radgjevar1"), case.id, posts.PostData(post_type="N", title=title),
                          posts.Upload(io.BytesIO(pdf), "same.pdf"))
    assert db.session.scalar(db.select(db.func.count()).select_from(StoredFile)) == 1
    assert db.session.scalar(db.select(db.func.count()).select_from(Document)) == 2


def test_write_off_needs_finalized_posts(ctx):
    case = builders.case()
    draft_in = builders.post(case, post_type="I", correspondent="Skule", title="Utkast inn")
    with pytest.raises(Conflict):
        posts.write_off(user("radgjevar1"), draft_in.id, "TE")
    db.session.rollback()
    incoming = builders.finalized_post(case, post_type="I", correspondent="Skule", title="Inn")
    draft_reply = builders.post(case, post_type="U", correspondent="Skule", title="Svar-utkast")
    with pytest.raises(Invalid):
        posts.write_off(user("radgjevar1"), incoming.id, "BU", draft_reply.id)


def test_a_reply_that_writes_off_another_post_is_not_deleted(ctx):
    case = builders.case()
    incoming = builders.finalized_post(case, post_type="I", correspondent="Skule", title="Inn")
    reply = builders.finalized_post(case, post_type="U", correspondent="Skule", title="Svar")
    posts.write_off(user("radgjevar1"), incoming.id, "BU", reply.id)
    with pytest.raises(Conflict):
        posts.delete_post(user("konsulent"), reply.id, "feil")


@pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"),
                    reason="two writers at once is the PostgreSQL profile; SQLite has one writer at a time")
def test_two_handlers_registering_in_one_case_at_once_get_the_next_numbers(app, ctx):
    """The first registration holds its transaction open; the second, started meanwhile, waits for it
    and takes the next number instead of failing on a duplicate."""
    import threading

    case = builders.case()
    case_id = case.id
    builders.post(case, title="Første")
    db.session.commit()
    first_open, results = threading.Event(), {}

    def first():
        with app.app_context():
            posts.add_post(user("radgjevar1"), case_id, posts.PostData(post_type="N", title="A"))
            first_open.set()
            threading.Event().wait(1.0)  # the second is now blocked on the case row
            db.session.commit()
            db.session.remove()

    def second():
        first_open.wait(10)
        with app.app_context():
            try:
                results["post"] = posts.create_post(user("radgjevar1"), case_id,
                                                    posts.PostData(post_type="N", title="B")).seq
            except Exception as exc:  # noqa: BLE001 - the test reports it
                results["error"] = exc
            db.session.remove()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert "error" not in results and results["post"] == 3
    db.session.expire_all()
    assert sorted(p.seq for p in db.session.scalars(select(JournalPost).where(JournalPost.case_id == case_id))) == [1, 2, 3]


@pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"),
                    reason="two writers at once is the PostgreSQL profile; SQLite has one writer at a time")
def test_the_same_new_letter_uploaded_twice_at_once_is_stored_once_and_both_posts_keep_it(app, ctx):
    import threading

    first_case, second_case = builders.case(), builders.case()
    ids = first_case.id, second_case.id
    pdf = builders.make_pdf(tag="same-letter-twice")
    first_open, results = threading.Event(), {}

    def register(case_id, hold: bool):
        with app.app_context():
            try:
                register_post = posts.add_post if hold else posts.create_post  # add_post: the transaction stays open
                post = register_post(user("radgjevar1"), case_id, posts.PostData(post_type="N", title="Brev"),
                                     posts.Upload(io.BytesIO(pdf), "brev.pdf"))
                if hold:
                    first_open.set()
                    threading.Event().wait(1.0)  # the other upload now waits on this one's row
                    db.session.commit()
                results[case_id] = post.id
            except Exception as exc:  # noqa: BLE001 - the test reports it
                results[case_id] = exc
            db.session.remove()

    threads = [threading.Thread(target=register, args=(ids[0], True)),
               threading.Thread(target=lambda: (first_open.wait(10), register(ids[1], False)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(isinstance(v, int) for v in results.values()) and len(results) == 2, results
    sha = hashlib.sha256(pdf).hexdigest()
    assert db.session.scalar(db.select(db.func.count()).select_from(StoredFile).where(StoredFile.sha256 == sha)) == 1
    assert file_path(sha).read_bytes() == pdf


@pytest.mark.parametrize("becomes", ["awaiting_approval", "finalized"])
def test_an_edit_that_crosses_a_send_to_approval_or_a_finalize_is_refused(app, ctx, monkeypatch, becomes):
    """editable() looked while the post was a draft; another request sent it to approval (or finalized it)
    before the edit's commit (an upload's checks take seconds). The edit is refused and nothing of it is kept,
    so the approver approves what was sent."""
    from sqlalchemy import create_engine

    case = builders.case()
    draft = builders.post(case, post_type="N", title="Før")
    real = posts.editable

    def changed_meanwhile(actor, post_id, lock=False):  # read without the edit's lock: changed just after
        post = real(actor, post_id)
        other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        with other.begin() as conn:
            conn.execute(text("UPDATE journal_post SET status = :s WHERE id = :id"), {"s": becomes, "id": post_id})
        other.dispose()
        return post

    monkeypatch.setattr(posts, "editable", changed_meanwhile)
    with pytest.raises(Conflict):
        posts.update_post(user("radgjevar1"), draft.id, posts.PostData(post_type="N", title="Etter"),
                          posts.Upload(io.BytesIO(builders.make_pdf(2, tag="ny")), "ny.pdf"))
    db.session.rollback()
    after = db.session.get(JournalPost, draft.id)
    assert after.title == "Før" and [d.filename for d in after.documents] != ["ny.pdf"]


def test_a_document_removed_from_a_post_finalized_meanwhile_is_refused_with_the_reason(app, ctx, monkeypatch):
    """The database's guard refuses the edit's write: the answer is why (finalized), not a 500 from reading the
    post of a session that must roll back first."""
    case = builders.case()
    post = builders.post(case, title="Brev")
    extra = posts.update_post(user("radgjevar1"), post.id, posts.PostData(
        post_type=post.post_type.value, title="Brev", document_date=post.document_date,
        correspondents=[posts.CorrespondentData(name="Skulen")]),
        attachments=[posts.Upload(io.BytesIO(builders.make_pdf()), "vedlegg.pdf")])
    attachment = next(d for d in extra.documents if d.role != "main")
    real = posts.editable

    def finalized_meanwhile(actor, post_id, lock=False):  # read without the edit's lock: finalized just after
        from sqlalchemy import create_engine
        found = real(actor, post_id)
        other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        with other.begin() as conn:
            conn.execute(text("UPDATE journal_post SET status = 'finalized' WHERE id = :id"), {"id": post.id})
        other.dispose()
        return found

    monkeypatch.setattr(posts, "editable", finalized_meanwhile)
    with pytest.raises(Conflict) as refused:
        posts.remove_document(user("radgjevar1"), post.id, attachment.id)
    assert "ferdigstilt" in str(refused.value.message) or "finalized" in str(refused.value.message)
    db.session.rollback()
    assert attachment.id in [d.id for d in db.session.get(JournalPost, post.id).documents]
