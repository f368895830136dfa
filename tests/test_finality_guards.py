"""A finalized post's approval, signatures and history never change, even for raw SQL (migration 0022);
what the app itself writes there (approval, signing, the history appended after finalizing, deleting a
misregistered draft) still works."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from ppt_web.cases import approval, posts
from ppt_web.clock import today as oslo_today
from ppt_web.dispatch import expedition
from ppt_web.extensions import db
from ppt_web.models import JournalPost, PostStatus

from . import builders
from .conftest import TEST_DATABASE_URL, user


def assessment():
    """A complete outgoing expert assessment to a guardian (a draft): it is finalized by its approver."""
    case = builders.case()
    data = posts.PostData(post_type="U", title="Sakkunnig vurdering", document_date=oslo_today(),
                          correspondents=[posts.CorrespondentData(name="Kari Føresett",
                                                                  address="Skulevegen 1, 6065 Ulsteinvik",
                                                                  national_id=builders.valid_national_id(900))])
    return posts.create_post(user("radgjevar1"), case.id, data,
                             posts.Upload(io.BytesIO(builders.make_pdf(2)), "vurdering.pdf"))


def add_signature(post_id: int) -> None:
    """A signature row for the post's main document, as signing adds it (without signing the PDF)."""
    db.session.execute(text(
        "INSERT INTO post_signature (post_id, unsigned_sha256, signed_sha256, signed_by_id, signed_at, "
        "certificate_subject) SELECT d.post_id, d.sha256, d.sha256, :u, CURRENT_TIMESTAMP, 'CN=Leiar' "
        "FROM document d WHERE d.post_id = :p AND d.role = 'main'"), {"p": post_id, "u": user("leiar").id})
    db.session.commit()


def approved_and_signed() -> int:
    """An expert assessment signed, sent to approval and approved: finalized, with its approval columns, a
    signature and a history."""
    post = assessment()
    add_signature(post.id)
    approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id, "Sjå konklusjonen")
    approval.approve(user("leiar"), post.id, "Godt skrive")
    return post.id


def kept(post_id: int) -> tuple:
    """What the guards keep, read with plain SQL."""
    p = {"p": post_id}
    columns = db.session.execute(text(
        "SELECT approver_id, approval_requested_by_id, approval_requested_at, approved_by_id, approved_at, status "
        "FROM journal_post WHERE id = :p"), p).one()
    signatures = db.session.execute(text(
        "SELECT id, post_id, unsigned_sha256, signed_sha256, signed_by_id, signed_at, certificate_subject "
        "FROM post_signature WHERE post_id = :p ORDER BY id"), p).all()
    events = db.session.execute(text(
        "SELECT id, post_id, at, actor_id, kind, to_user_id, comment FROM post_event WHERE post_id = :p ORDER BY id"),
        p).all()
    return tuple(columns), [tuple(r) for r in signatures], [tuple(r) for r in events]


def refused(statement: str, post_id: int, message: str) -> None:
    """The statement is refused by the database, with the guard's message; nothing of it is kept."""
    with pytest.raises(DatabaseError, match=message):
        db.session.execute(text(statement), {"p": post_id})
        db.session.flush()
    db.session.rollback()


FINALIZED = "journal post is finalized"
SIGNATURES = "signatures of a finalized journal post never change"


@pytest.mark.parametrize("statement, message", [
    ("UPDATE journal_post SET approved_by_id = NULL WHERE id = :p", FINALIZED),
    ("UPDATE journal_post SET approved_at = CURRENT_TIMESTAMP WHERE id = :p", FINALIZED),
    ("UPDATE journal_post SET approver_id = approval_requested_by_id WHERE id = :p", FINALIZED),
    ("UPDATE journal_post SET approval_requested_by_id = NULL WHERE id = :p", FINALIZED),
    ("UPDATE journal_post SET approval_requested_at = NULL WHERE id = :p", FINALIZED),
    ("UPDATE post_signature SET certificate_subject = 'CN=Forged' WHERE post_id = :p", "signatures are kept"),
    ("UPDATE post_signature SET signed_at = CURRENT_TIMESTAMP WHERE post_id = :p", "signatures are kept"),
    ("DELETE FROM post_signature WHERE post_id = :p", SIGNATURES),
    ("INSERT INTO post_signature (post_id, unsigned_sha256, signed_sha256, signed_by_id, signed_at, "
     "certificate_subject) SELECT post_id, unsigned_sha256, signed_sha256, signed_by_id, signed_at, 'CN=Forged' "
     "FROM post_signature WHERE post_id = :p", SIGNATURES),
    ("UPDATE post_event SET comment = 'forged' WHERE post_id = :p", "post events are kept"),
    ("UPDATE post_event SET actor_id = NULL WHERE post_id = :p", "post events are kept"),
    ("DELETE FROM post_event WHERE post_id = :p", "post events are kept"),
], ids=["approved_by", "approved_at", "approver", "requested_by", "requested_at", "signature_subject",
        "signature_time", "signature_delete", "signature_insert", "event_comment", "event_actor", "event_delete"])
def test_raw_sql_cannot_change_the_approval_signatures_or_history_of_a_finalized_post(ctx, statement, message):
    """The database refuses, for a finalized post and for a dispatched one."""
    post_id = approved_and_signed()
    before = kept(post_id)
    assert before[0][3] == user("leiar").id and len(before[1]) == 1
    assert [e[4] for e in before[2]] == ["sent_to_approval", "approved"]
    refused(statement, post_id, message)
    assert kept(post_id) == before
    db.session.execute(text("UPDATE journal_post SET status = 'dispatched' WHERE id = :p"), {"p": post_id})
    db.session.commit()
    dispatched = kept(post_id)
    refused(statement, post_id, message)
    assert kept(post_id) == dispatched


def test_approval_writes_its_columns_signature_and_history_then_they_are_kept(ctx):
    """Sent, returned (the approver cleared), sent again, approved with the approver's signature: the app
    writes all of it before the post is finalized; afterwards none of it changes."""
    post = assessment()
    approval.send_for_approval(user("radgjevar1"), post.id, user("nestleiar").id)
    approval.return_for_changes(user("nestleiar"), post.id, "Manglar tilrådinga")
    assert db.session.get(JournalPost, post.id).approver_id is None
    approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id)
    approval.approve(user("leiar"), post.id, "Godt skrive", sign=True)  # the test certificate signs
    db.session.expire_all()
    done = db.session.get(JournalPost, post.id)
    assert done.status == PostStatus.FINALIZED and done.approved_by.username == "leiar"
    assert done.approver.username == "leiar" and done.approval_requested_by.username == "radgjevar1"
    assert [e.kind for e in done.events] == ["sent_to_approval", "returned", "sent_to_approval", "signed", "approved"]
    before = kept(post.id)
    assert len(before[1]) == 1 and before[1][0][3] == done.main_document.sha256
    refused("UPDATE journal_post SET approved_by_id = approval_requested_by_id WHERE id = :p", post.id, FINALIZED)
    refused("UPDATE post_signature SET certificate_subject = 'CN=Forged' WHERE post_id = :p", post.id,
            "signatures are kept")
    refused("DELETE FROM post_event WHERE post_id = :p AND kind = 'returned'", post.id, "post events are kept")
    assert kept(post.id) == before


def test_the_history_grows_after_finalizing_but_what_is_in_it_stays(ctx):
    """Expedition and dispatch append to a finalized post's history; no event is changed or removed."""
    post_id = approved_and_signed()
    expedition.record_paper(user("radgjevar1"), post_id, oslo_today())
    # As dispatch does once every recipient is confirmed: the status, then the event.
    db.session.execute(text("UPDATE journal_post SET status = 'dispatched' WHERE id = :p"), {"p": post_id})
    db.session.execute(text("INSERT INTO post_event (post_id, at, kind, comment, detail) "
                            "VALUES (:p, CURRENT_TIMESTAMP, 'dispatched', '', '{}')"), {"p": post_id})
    db.session.commit()
    assert [e[4] for e in kept(post_id)[2]] == ["sent_to_approval", "approved", "expedited", "dispatched"]
    before = kept(post_id)
    refused("UPDATE post_event SET kind = 'approved' WHERE post_id = :p AND kind = 'expedited'", post_id,
            "post events are kept")
    refused("DELETE FROM post_event WHERE post_id = :p AND kind = 'dispatched'", post_id, "post events are kept")
    assert kept(post_id) == before


def test_a_misregistered_draft_is_deleted_with_its_history_and_signature(ctx):
    """A draft's events and signatures go with it; until then they are not edited either."""
    draft = assessment()
    approval.send_for_approval(user("radgjevar1"), draft.id, user("leiar").id)
    approval.return_for_changes(user("leiar"), draft.id, "Feil klient")
    add_signature(draft.id)
    before = kept(draft.id)
    assert [e[4] for e in before[2]] == ["sent_to_approval", "returned"] and len(before[1]) == 1
    refused("UPDATE post_event SET comment = 'Alt i orden' WHERE post_id = :p", draft.id, "post events are kept")
    refused("UPDATE post_signature SET certificate_subject = 'CN=Forged' WHERE post_id = :p", draft.id,
            "signatures are kept")
    assert kept(draft.id) == before
    posts.delete_post(user("sekretaer"), draft.id, "Registrert på feil klient")
    assert db.session.get(JournalPost, draft.id) is None
    for table in ("post_event", "post_signature"):
        assert db.session.execute(text(f"SELECT count(*) FROM {table} WHERE post_id = :p"), {"p": draft.id}).scalar() == 0


def test_the_guards_go_with_a_downgrade_and_come_back_with_the_upgrade(app, ctx):
    from flask_migrate import downgrade, upgrade

    post_id = approved_and_signed()
    db.session.commit()
    db.session.remove()
    downgrade(revision="0021")
    db.session.execute(text("UPDATE post_event SET comment = 'allowed without the guard' WHERE post_id = :p"),
                       {"p": post_id})
    db.session.rollback()
    db.session.remove()
    upgrade()
    refused("UPDATE post_event SET comment = 'forged' WHERE post_id = :p", post_id, "post events are kept")
    refused("UPDATE journal_post SET approved_at = NULL WHERE id = :p", post_id, FINALIZED)


# Every guard the migrations make, by engine. A later migration that rebuilds one of these tables (SQLite's
# batch mode copies a table into a new one) drops its triggers without a word: this list says so.
GUARDS = {
    "sqlite": {
        "activity_log_no_delete", "activity_log_no_update",
        *(f"{t}_locked_{v}" for t in ("correspondent", "document", "letter") for v in ("insert", "update", "delete")),
        "document_template_version_no_delete", "document_template_version_no_update",
        "journal_post_locked_approval", "journal_post_locked_delete", "journal_post_locked_metadata",
        "journal_post_locked_structure", "metadata_correction_no_delete", "metadata_correction_no_update",
        "post_event_locked_delete", "post_event_no_update", "post_signature_locked_delete",
        "post_signature_locked_insert", "post_signature_no_update", "stored_file_no_delete_in_use",
        "stored_file_no_update",
        # the search's word tables, kept in step with their rows
        *(f"{t}_words_{v}" for t in ("case", "client", "journal_post") for v in ("ai", "au", "ad")),
    },
    "postgresql": {
        "activity_log_append_only", "activity_log_no_truncate", "journal_post_guard", "journal_post_approval_guard",
        *(f"{t}_guard" for t in ("correspondent", "document", "document_template_version", "letter",
                                 "metadata_correction", "post_event", "post_signature", "stored_file")),
        *(f"{t}_no_truncate" for t in ("journal_post", "correspondent", "document", "document_template_version",
                                       "letter", "metadata_correction", "post_event", "post_signature",
                                       "stored_file")),
    },
}


def triggers() -> set[str]:
    """The database's own triggers, by name."""
    if db.engine.dialect.name == "sqlite":
        return set(db.session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
    return set(db.session.scalars(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))


def test_every_guard_is_in_place_after_all_migrations(ctx):
    assert triggers() == GUARDS[db.engine.dialect.name]


def test_emptying_a_table_at_once_is_refused_while_it_holds_a_finalized_post(ctx):
    """SQLite: a DELETE without WHERE (which empties a table without its row triggers when it has none)."""
    post_id = approved_and_signed()
    before = kept(post_id)
    for table in ("post_event", "post_signature", "journal_post"):
        with pytest.raises(DatabaseError):
            db.session.execute(text(f"DELETE FROM {table}"))
        db.session.rollback()
    assert kept(post_id) == before


postgresql_only = pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"),
                                     reason="TRUNCATE is PostgreSQL's; SQLite's is a DELETE (the test above)")


@postgresql_only
@pytest.mark.parametrize("statement", [
    "TRUNCATE journal_post CASCADE", "TRUNCATE client CASCADE", "TRUNCATE post_event", "TRUNCATE post_signature",
    "TRUNCATE document CASCADE", "TRUNCATE correspondent CASCADE", "TRUNCATE letter", "TRUNCATE stored_file CASCADE",
    "TRUNCATE metadata_correction CASCADE", "TRUNCATE document_template_version CASCADE",
])
def test_truncate_cannot_empty_what_the_guards_keep(ctx, statement):
    """Row triggers do not fire for TRUNCATE: a statement trigger refuses it (migration 0023)."""
    post_id = approved_and_signed()
    db.session.execute(text(
        "INSERT INTO metadata_correction (post_id, before, after, reason, actor_id, at, applying) "
        "VALUES (:p, '{}', '{}', 'Feil tittel', :u, CURRENT_TIMESTAMP, false)"), {"p": post_id, "u": user("leiar").id})
    db.session.commit()
    before = kept(post_id), db.session.scalar(text("SELECT count(*) FROM metadata_correction"))
    with pytest.raises(DatabaseError, match="cannot be truncated"):
        db.session.execute(text(statement))
    db.session.rollback()
    assert (kept(post_id), db.session.scalar(text("SELECT count(*) FROM metadata_correction"))) == before


@postgresql_only
def test_a_database_of_drafts_only_may_still_be_emptied(ctx):
    assessment()
    db.session.commit()
    db.session.execute(text("TRUNCATE journal_post CASCADE"))
    db.session.execute(text("TRUNCATE stored_file CASCADE"))  # (no document uses one any more)
    db.session.commit()
    assert db.session.scalar(text("SELECT count(*) FROM journal_post")) == 0
