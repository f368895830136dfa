"""Closing a case by Noark's rules: finalized incoming posts (I) and notes for follow-up (N) that are not
written off are shown before the closing and written off by it, in the same transaction, before the
archive hears of the closing. Through the service and through the page."""
from __future__ import annotations

import re

import pytest
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ppt_web.archive.message import build
from ppt_web.cases import posts
from ppt_web.cases import service as cases
from ppt_web.clock import today
from ppt_web.errors import Conflict, Forbidden, Invalid
from ppt_web.extensions import db
from ppt_web.models import ActivityLog, ArchiveJob, Case, CaseStatus, JournalPost, PostStatus

from . import builders
from .conftest import activity_rows, user


def jobs(case_id: int) -> list[tuple[str, int | None]]:
    """The case's archive jobs in the order the worker sends them: (event, post id)."""
    db.session.expire_all()
    return [(j.event, j.post_id) for j in db.session.scalars(
        select(ArchiveJob).where(ArchiveJob.case_id == case_id).order_by(ArchiveJob.id))]


def fresh(model, object_id: int):
    db.session.expire_all()
    return db.session.get(model, object_id)


def mixed_case():
    """An open case with one of each: what closing writes off (an I and an N post, finalized, not written
    off) and what it leaves alone (X, U, an I post written off already)."""
    case = builders.case(category="follow_up")
    incoming = builders.finalized_post(case, post_type="I", correspondent="Ulstein skule", title="Kartlegging",
                                       received_on=today())
    note = builders.finalized_post(case, title="Samtale med føresette")  # N
    builders.finalized_post(case, post_type="X", title="Intern merknad")
    reply = builders.finalized_post(case, post_type="U", correspondent="Kari Føresett", title="Svar")
    answered = builders.finalized_post(case, post_type="I", correspondent="Kari Føresett", title="Spørsmål",
                                       received_on=today())
    posts.write_off(user("radgjevar1"), answered.id, "BU", reply.id)
    return case, incoming, note, answered


def test_closing_without_a_method_is_refused_saying_how_many_and_changes_nothing(ctx):
    case, incoming, note, _ = mixed_case()
    before, logged = jobs(case.id), len(activity_rows())
    with pytest.raises(Conflict) as caught:
        cases.close_case(user("radgjevar1"), case.id)
    message = str(caught.value.message)
    assert message.startswith("2 ") and incoming.number in message and note.number in message
    db.session.rollback()
    assert fresh(Case, case.id).status == CaseStatus.OPEN
    assert fresh(JournalPost, incoming.id).written_off_at is None and fresh(JournalPost, note.id).written_off_at is None
    assert jobs(case.id) == before and len(activity_rows()) == logged


def test_closing_with_a_method_writes_off_exactly_the_open_items_then_closes(ctx):
    case, incoming, note, answered = mixed_case()
    untouched = {p.id: (p.written_off_at, p.write_off_method, p.written_off_by_id)
                 for p in fresh(Case, case.id).posts if p.id not in (incoming.id, note.id)}
    before = jobs(case.id)
    cases.close_case(user("konsulent"), case.id, write_off_method="TO")
    closed = fresh(Case, case.id)
    assert closed.status == CaseStatus.CLOSED and closed.closed_on == today()
    for post in (fresh(JournalPost, incoming.id), fresh(JournalPost, note.id)):
        assert post.written_off_at is not None and post.write_off_method == "TO"
        assert post.written_off_by.username == "konsulent" and post.write_off_reply_id is None
    assert {p.id: (p.written_off_at, p.write_off_method, p.written_off_by_id)
            for p in closed.posts if p.id in untouched} == untouched  # X, U and the one answered by letter
    # The archive hears of the write-offs first, then of the closing.
    assert jobs(case.id)[len(before):] == [("post_written_off", incoming.id), ("post_written_off", note.id),
                                           ("case_closed", None)]
    rows = [r for r in activity_rows() if r.action in ("post_written_off", "case_closed")][-3:]
    assert [(r.action, r.object_id, r.actor.username) for r in rows] == [
        ("post_written_off", str(incoming.id), "konsulent"), ("post_written_off", str(note.id), "konsulent"),
        ("case_closed", str(case.id), "konsulent")]
    assert rows[0].detail == "TO" and incoming.number in rows[2].detail


def _write_off_job(case_id: int, post_id: int) -> ArchiveJob:
    db.session.expire_all()
    return db.session.scalars(select(ArchiveJob).where(
        ArchiveJob.case_id == case_id, ArchiveJob.event == "post_written_off", ArchiveJob.post_id == post_id)).one()


def test_the_write_off_message_of_an_incoming_post_closed_in_is_built(ctx):
    case, incoming, _, _ = mixed_case()
    cases.close_case(user("radgjevar1"), case.id, write_off_method="TE")
    build(_write_off_job(case.id, incoming.id))  # validates against the XSDs and code lists, or raises


def test_the_write_off_message_of_a_note_closed_in_is_built(ctx):
    """A note names no correspondent; the archive gets its internal recipient to write it off for."""
    case, _, note, _ = mixed_case()
    cases.close_case(user("radgjevar1"), case.id, write_off_method="TE")
    build(_write_off_job(case.id, note.id))


def test_an_invalid_method_is_refused_and_changes_nothing(ctx):
    case, incoming, _, _ = mixed_case()
    before = jobs(case.id)
    for method in ("BU", "TLF", "XX", ""):
        with pytest.raises(Invalid):
            cases.close_case(user("radgjevar1"), case.id, write_off_method=method)
        db.session.rollback()
    assert fresh(Case, case.id).status == CaseStatus.OPEN and jobs(case.id) == before
    assert fresh(JournalPost, incoming.id).written_off_at is None


def test_drafts_still_block_the_closing_with_or_without_a_method(ctx):
    case = builders.case(category="follow_up")
    incoming = builders.finalized_post(case, post_type="I", correspondent="Skule", title="Kartlegging")
    builders.post(case, title="Utkast")
    before = jobs(case.id)
    with pytest.raises(Conflict) as caught:
        cases.close_case(user("radgjevar1"), case.id, write_off_method="TE")
    assert "Utkast" in str(caught.value.message)
    db.session.rollback()
    assert fresh(JournalPost, incoming.id).written_off_at is None and jobs(case.id) == before


def test_a_case_without_open_items_closes_as_before(ctx):
    case = builders.case(category="follow_up")
    builders.finalized_post(case, post_type="X", title="Intern merknad")
    cases.close_case(user("radgjevar1"), case.id)
    assert fresh(Case, case.id).status == CaseStatus.CLOSED
    assert [e for e, _ in jobs(case.id)] == ["case_created", "post_finalized", "case_closed"]
    assert activity_rows("case_closed")[-1].detail == ""


def test_what_the_user_was_shown_must_still_be_what_is_open(ctx):
    case, incoming, note, _ = mixed_case()
    with pytest.raises(Conflict):  # a post finalized since the confirmation was shown
        cases.close_case(user("radgjevar1"), case.id, "TE", expected=[incoming.id])
    db.session.rollback()
    assert fresh(Case, case.id).status == CaseStatus.OPEN and fresh(JournalPost, incoming.id).written_off_at is None
    cases.close_case(user("radgjevar1"), case.id, "TE", expected=[note.id, incoming.id])
    assert fresh(Case, case.id).status == CaseStatus.CLOSED


def test_a_user_without_close_case_is_refused_as_before(ctx):
    case, incoming, _, _ = mixed_case()
    before = jobs(case.id)
    with pytest.raises(Forbidden):
        cases.close_case(user("leiar"), case.id, write_off_method="TE")
    db.session.rollback()
    assert fresh(Case, case.id).status == CaseStatus.OPEN and jobs(case.id) == before
    assert fresh(JournalPost, incoming.id).written_off_at is None


def test_closing_twice_writes_off_once(ctx):
    case, incoming, note, _ = mixed_case()
    cases.close_case(user("radgjevar1"), case.id, write_off_method="TE")
    after = jobs(case.id)
    with pytest.raises(Conflict) as caught:
        cases.close_case(user("radgjevar1"), case.id, write_off_method="TO")
    assert str(caught.value.message) == str(_l("The case is closed already."))
    db.session.rollback()
    assert jobs(case.id) == after
    assert {fresh(JournalPost, i).write_off_method for i in (incoming.id, note.id)} == {"TE"}


def test_notes_for_follow_up_are_written_off_on_their_own(ctx):
    case = builders.case(category="follow_up")
    note = builders.finalized_post(case, title="Observasjon")
    plain = builders.finalized_post(case, post_type="X", title="Intern merknad")
    draft = builders.post(case, title="Utkast")
    assert posts.write_off_refusal(user("radgjevar1"), note) is None
    assert isinstance(posts.write_off_refusal(user("radgjevar1"), plain), Conflict)
    assert isinstance(posts.write_off_refusal(user("radgjevar1"), draft), Conflict)
    with pytest.raises(Conflict):
        posts.write_off(user("radgjevar1"), plain.id, "TE")
    db.session.rollback()
    posts.write_off(user("radgjevar1"), note.id, "TE")
    written = fresh(JournalPost, note.id)
    assert written.write_off_method == "TE" and written.written_off_by.username == "radgjevar1"
    assert jobs(case.id)[-1] == ("post_written_off", note.id)
    assert activity_rows("post_written_off")[-1].object_id == str(note.id)
    with pytest.raises(Conflict):
        posts.write_off(user("radgjevar1"), note.id, "TO")
    db.session.rollback()
    # By letter: a finalized outgoing reply in the same case, as for incoming posts.
    other = builders.finalized_post(case, title="Notat til oppfølging")
    with pytest.raises(Invalid):
        posts.write_off(user("radgjevar1"), other.id, "BU")
    db.session.rollback()
    reply = builders.finalized_post(case, post_type="U", correspondent="Kari Føresett", title="Brev")
    posts.write_off(user("radgjevar1"), other.id, "BU", reply.id)
    assert fresh(JournalPost, other.id).write_off_reply_id == reply.id
    # The list of outstanding posts stays about incoming posts.
    assert note.id not in {p.id for p in posts.outstanding(user("radgjevar1"))}


def test_a_reopened_case_takes_new_posts_and_closes_again(ctx):
    case, incoming, note, _ = mixed_case()
    cases.close_case(user("radgjevar1"), case.id, write_off_method="TE")
    cases.reopen_case(user("radgjevar1"), case.id)
    later = builders.finalized_post(fresh(Case, case.id), post_type="I", correspondent="Skule", title="Ny tilvising")
    with pytest.raises(Conflict) as caught:
        cases.close_case(user("radgjevar1"), case.id)
    assert str(caught.value.message).startswith("1 ") and later.number in str(caught.value.message)
    db.session.rollback()
    cases.close_case(user("radgjevar1"), case.id, write_off_method="TO")
    assert fresh(Case, case.id).status == CaseStatus.CLOSED
    assert fresh(JournalPost, later.id).write_off_method == "TO"
    assert fresh(JournalPost, incoming.id).write_off_method == "TE"  # the first closing's write-off stands
    assert [e for e, _ in jobs(case.id)][-6:] == ["post_written_off", "case_closed", "case_reopened",
                                                  "post_finalized", "post_written_off", "case_closed"]


# --- the page ---

def _seen(page: str) -> str:
    found = re.search(r'name="seen" value="([^"]*)"', page)
    assert found, "the confirmation carries the posts it shows"
    return found.group(1)


def test_the_close_action_shows_the_open_items_before_confirming(app, login_as):
    with app.app_context():
        case, incoming, note, answered = mixed_case()
        case_id, numbers, others = case.id, {incoming.number, note.number}, answered.number
    client = login_as("radgjevar1")
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert f'href="/cases/{case_id}/close"' in page and f'hx-get="/cases/{case_id}/close"' in page
    assert 'id="close-case"' in page

    # Without JavaScript: a page of its own.
    full = client.get(f"/cases/{case_id}/close")
    body = full.get_data(as_text=True)
    assert full.status_code == 200 and "<html" in body
    table = body.split('id="unsettled-posts"', 1)[1].split("</table>", 1)[0]
    assert {n for n in numbers if n in table} == numbers and others not in table
    assert table.count("<tr>") == 3  # the head and the two posts
    assert re.search(r'value="TE"\s+checked', body) and 'value="TO"' in body and 'value="BU"' not in body
    # With htmx: the same confirmation, to put into the case page.
    part = client.get(f"/cases/{case_id}/close", headers={"HX-Request": "true"})
    assert part.status_code == 200 and "<html" not in part.get_data(as_text=True)
    assert 'id="unsettled-posts"' in part.get_data(as_text=True)
    with app.app_context():
        assert fresh(Case, case_id).status == CaseStatus.OPEN and not activity_rows("case_closed")


def test_confirming_on_the_page_writes_off_and_closes(app, login_as):
    with app.app_context():
        case, incoming, note, _ = mixed_case()
        case_id, ids = case.id, (incoming.id, note.id)
    client = login_as("radgjevar1")
    seen = _seen(client.get(f"/cases/{case_id}/close").get_data(as_text=True))
    assert sorted(map(int, seen.split(","))) == sorted(ids)
    # No method chosen (the radio buttons cleared by hand): refused on the same confirmation, nothing done.
    refused = client.post(f"/cases/{case_id}/close", data={"seen": seen})
    assert refused.status_code == 409 and 'class="alert error"' in refused.get_data(as_text=True)
    assert 'id="unsettled-posts"' in refused.get_data(as_text=True)
    with app.app_context():
        assert fresh(Case, case_id).status == CaseStatus.OPEN
    answer = client.post(f"/cases/{case_id}/close", data={"seen": seen, "write_off_method": "TE"},
                         headers={"HX-Request": "true"})
    assert answer.status_code == 204 and answer.headers["HX-Redirect"] == f"/cases/{case_id}"
    with app.app_context():
        assert fresh(Case, case_id).status == CaseStatus.CLOSED
        assert {fresh(JournalPost, i).write_off_method for i in ids} == {"TE"}
        done = jobs(case_id)
    # The same form again (a double click, the back button): closed already, nothing written off twice.
    again = client.post(f"/cases/{case_id}/close", data={"seen": seen, "write_off_method": "TE"})
    assert again.status_code == 409 and 'class="alert error"' in again.get_data(as_text=True)
    with app.app_context():
        assert jobs(case_id) == done
        assert db.session.scalar(select(db.func.count()).select_from(ActivityLog).where(
            ActivityLog.action == "post_written_off", ActivityLog.object_id.in_([str(i) for i in ids]))) == 2
    # A closed case offers reopening, not closing; its close address leads back to the case.
    assert client.get(f"/cases/{case_id}/close").status_code == 302


def test_a_stale_confirmation_is_shown_again_with_what_is_open_now(app, login_as):
    with app.app_context():
        case, incoming, note, _ = mixed_case()
        case_id = case.id
    client = login_as("radgjevar1")
    seen = _seen(client.get(f"/cases/{case_id}/close").get_data(as_text=True))
    with app.app_context():
        later = builders.finalized_post(fresh(Case, case_id), post_type="I", correspondent="Skule", title="Ny")
        later_number = later.number
    answer = client.post(f"/cases/{case_id}/close", data={"seen": seen, "write_off_method": "TE"})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 409 and 'class="alert error"' in body and later_number in body
    assert len(_seen(body).split(",")) == 3
    with app.app_context():
        assert fresh(Case, case_id).status == CaseStatus.OPEN


def test_without_open_items_the_page_confirms_and_closes(app, login_as):
    with app.app_context():
        case_id = builders.case(category="follow_up").id
    client = login_as("radgjevar1")
    body = client.get(f"/cases/{case_id}/close").get_data(as_text=True)
    assert 'id="unsettled-posts"' not in body and 'name="write_off_method"' not in body
    assert _seen(body) == ""
    assert client.post(f"/cases/{case_id}/close", data={"seen": ""}).status_code == 302
    with app.app_context():
        assert fresh(Case, case_id).status == CaseStatus.CLOSED


def test_with_drafts_the_page_says_why_and_offers_no_confirmation(app, login_as):
    with app.app_context():
        case = builders.case(category="follow_up")
        draft = builders.post(case, title="Utkast")
        case_id, number = case.id, draft.number
    client = login_as("radgjevar1")
    body = client.get(f"/cases/{case_id}/close").get_data(as_text=True)
    assert number in body and 'name="seen"' not in body and 'type="submit" class="primary"' not in body


def test_without_close_case_the_page_is_refused(app, login_as):
    with app.app_context():
        case, _, _, _ = mixed_case()
        case_id = case.id
    client = login_as("leiar")
    assert f"/cases/{case_id}/close" not in client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert client.get(f"/cases/{case_id}/close").status_code == 403
    assert client.post(f"/cases/{case_id}/close", data={"write_off_method": "TE"}).status_code == 403
    with app.app_context():
        assert fresh(Case, case_id).status == CaseStatus.OPEN
        assert all(p.written_off_at is None for p in fresh(Case, case_id).posts
                   if p.post_type.value in "IN" and p.status == PostStatus.FINALIZED and p.title != "Spørsmål")


def test_closing_at_once_writes_off_once(app, ctx):
    """The close button sent many times at once: one closing, each open item written off once."""
    from .test_double_actions import check, race

    case, incoming, note, _ = mixed_case()
    case_id, ids = case.id, (incoming.id, note.id)
    result = race(app, "radgjevar1", lambda c, i: c.post(f"/cases/{case_id}/close", data={"write_off_method": "TE"},
                                                         follow_redirects=True), n=4)
    events = [e for e, post_id in jobs(case_id) if post_id in ids and e == "post_written_off" or e == "case_closed"]
    check("close case, writing off", result, events.count("case_closed"), already=("The case is closed already.",))
    assert events == ["post_written_off", "post_written_off", "case_closed"]
    assert len([r for r in activity_rows("post_written_off") if r.object_id in {str(i) for i in ids}]) == 2
