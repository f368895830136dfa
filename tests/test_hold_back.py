"""The leader's decision on a post held back from access: release (finalized and archived) or keep (with a reason)."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.attributes import set_committed_value

from ppt_web.cases import hold_back, post_actions, posts
from ppt_web.clock import today as oslo_today
from ppt_web.errors import Conflict, Forbidden, Invalid
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob, InboxItem, InboxSource, JournalPost, Notification, PostEvent, PostStatus
from ppt_web.postreg import service, transfer, upload

from . import builders
from .conftest import activity_rows, role, user


def held_back_post(pages: int = 2) -> JournalPost:
    """A scan transferred by the secretary with "hold back from access" ticked, as post registration does it."""
    case = builders.case()
    item = upload.receive_upload(user("sekretaer"), io.BytesIO(builders.make_pdf(pages)), "skann.pdf")
    item.source = InboxSource.SCAN
    db.session.commit()
    for point in item.check_points:
        service.set_check(user("sekretaer"), item.id, point, True)
    done = transfer.transfer(user("sekretaer"), item.id, transfer.TransferData(
        client_id=case.client.id, case_id=case.id, title="Klage frå føresette",
        document_date=oslo_today() - timedelta(days=2), sender_name="Kari Føresett",
        storage_place="Arkivrommet, hylle 3", hold_back=True))
    assert done.post.status == PostStatus.DRAFT and done.post.held_back and done.post.hold_decision is None
    return done.post


def archive_jobs(post_id: int) -> list[ArchiveJob]:
    return list(db.session.scalars(select(ArchiveJob).where(ArchiveJob.post_id == post_id)))


def events(post_id: int) -> list[PostEvent]:
    return list(db.session.scalars(select(PostEvent).where(PostEvent.post_id == post_id).order_by(PostEvent.id)))


def release(actor, post_id: int) -> JournalPost:
    """A release as the decision page sends it: with the digest of the post as the page showed it."""
    return hold_back.release(actor, post_id, seen=hold_back.seen_version(reloaded(post_id)))


def reloaded(post_id: int) -> JournalPost:
    db.session.expire_all()
    found = db.session.get(JournalPost, post_id)
    assert found is not None
    return found


# --- the service --------------------------------------------------------------------------------------------


def test_release_finalizes_the_post_and_makes_its_archive_job(ctx):
    """Released, the post is finalized by the leader and goes to the archive as any other, in one transaction."""
    post = held_back_post()
    assert [p.id for p in hold_back.waiting(user("leiar"))] == [post.id]
    release(user("leiar"), post.id)
    post = reloaded(post.id)
    assert post.status == PostStatus.FINALIZED and post.finalized_by.username == "leiar"
    assert post.hold_decision == "released" and post.hold_decided_by.username == "leiar"
    assert post.hold_decided_at is not None
    assert [job.event for job in archive_jobs(post.id)] == ["post_finalized"]
    assert hold_back.waiting(user("leiar")) == []
    assert [e.kind for e in events(post.id)] == ["hold_released"]
    assert [r.object_id for r in activity_rows("post_hold_released")] == [str(post.id)]
    assert [r.object_id for r in activity_rows("post_finalized")] == [str(post.id)]
    told = db.session.scalars(select(Notification).where(Notification.user_id == user("radgjevar1").id)
                              .order_by(Notification.id)).all()
    assert told[-1].link == f"/posts/{post.id}"  # the handler is told, with a link to the post


def test_the_deputy_leader_decides_too(ctx):
    post = held_back_post()
    release(user("nestleiar"), post.id)
    assert reloaded(post.id).status == PostStatus.FINALIZED


def test_keep_needs_a_reason_and_leaves_the_post_unfinalized_and_off_the_waiting_list(ctx):
    post = held_back_post()
    for bad in ("", "   \n ", "x" * 501):
        with pytest.raises(Invalid) as refused:
            hold_back.keep(user("leiar"), post.id, bad)
        assert refused.value.details.get("field") == "reason"
    assert reloaded(post.id).hold_decision is None and activity_rows("post_hold_kept") == []

    hold_back.keep(user("leiar"), post.id, "  Opplysningar om tredjeperson,\n avklarast med jurist  ")
    post = reloaded(post.id)
    assert post.status == PostStatus.DRAFT and post.hold_decision == "kept"
    assert post.hold_reason == "Opplysningar om tredjeperson, avklarast med jurist"
    assert post.hold_decided_by.username == "leiar" and post.hold_decided_at is not None
    assert archive_jobs(post.id) == []
    assert hold_back.waiting(user("leiar")) == [] and hold_back.waiting(user("nestleiar")) == []
    assert [(e.kind, e.comment) for e in events(post.id)] == [("hold_kept", post.hold_reason)]
    assert [(r.object_id, r.detail) for r in activity_rows("post_hold_kept")] == [(str(post.id), post.hold_reason)]


def test_the_handler_cannot_finalize_while_it_waits_nor_when_it_is_kept(ctx):
    """The service refuses (not only the button), on every path that finalizes."""
    post = held_back_post()
    handler = user("radgjevar1")
    with pytest.raises(Conflict) as refused:
        posts.finalize(handler, post.id)
    assert str(refused.value.message) == str(hold_back.finalize_refusal(reloaded(post.id)).message)
    assert not post_actions.allowed(handler, reloaded(post.id)).finalize
    with pytest.raises(Conflict):
        posts.finalize_post(handler, reloaded(post.id))  # the step approval and transfer compose
    db.session.rollback()

    hold_back.keep(user("leiar"), post.id, "Vent på avklaring")
    with pytest.raises(Conflict) as refused:
        posts.finalize(handler, post.id)
    kept_refusal = hold_back.finalize_refusal(reloaded(post.id))
    assert kept_refusal is not None and str(refused.value.message) == str(kept_refusal.message)
    assert not post_actions.allowed(handler, reloaded(post.id)).finalize
    assert reloaded(post.id).status == PostStatus.DRAFT and archive_jobs(post.id) == []


def test_a_kept_post_can_be_released_later(ctx):
    post = held_back_post()
    hold_back.keep(user("leiar"), post.id, "Vent på avklaring")
    assert post_actions.allowed(user("nestleiar"), reloaded(post.id)).decide_hold
    release(user("nestleiar"), post.id)
    post = reloaded(post.id)
    assert post.status == PostStatus.FINALIZED and post.hold_decision == "released"
    assert post.hold_decided_by.username == "nestleiar"
    assert [e.kind for e in events(post.id)] == ["hold_kept", "hold_released"]
    assert activity_rows("post_hold_released")[-1].before["hold_decision"] == "kept"


@pytest.mark.parametrize("username", ["radgjevar1", "sekretaer", "konsulent", "admin"])
def test_only_holders_of_approve_decide(ctx, username):
    """The case's own handler is refused too: the decision is the leader's."""
    post = held_back_post()
    with pytest.raises(Forbidden):
        release(user(username), post.id)
    with pytest.raises(Forbidden):
        hold_back.keep(user(username), post.id, "Grunn")
    post = reloaded(post.id)
    assert post.hold_decision is None and post.status == PostStatus.DRAFT and archive_jobs(post.id) == []
    assert hold_back.waiting(user(username)) == []
    assert not post_actions.allowed(user(username), post).decide_hold


def test_deciding_the_same_way_twice_is_a_conflict_and_changes_nothing(ctx):
    kept = held_back_post()
    hold_back.keep(user("leiar"), kept.id, "Første grunn")
    with pytest.raises(Conflict) as refused:
        hold_back.keep(user("nestleiar"), kept.id, "Andre grunn")
    assert str(refused.value.message) == str(hold_back.keep_refusal(user("nestleiar"), reloaded(kept.id)).message)
    kept = reloaded(kept.id)
    assert kept.hold_reason == "Første grunn" and kept.hold_decided_by.username == "leiar"
    assert len(activity_rows("post_hold_kept")) == 1 and len(events(kept.id)) == 1

    released = held_back_post()
    release(user("leiar"), released.id)
    for again in (lambda: release(user("nestleiar"), released.id),
                  lambda: hold_back.keep(user("nestleiar"), released.id, "For seint")):
        with pytest.raises(Conflict) as refused:
            again()
        assert not isinstance(refused.value, posts.ChangedMeanwhile)  # "released already", not "look again"
    released = reloaded(released.id)
    assert released.hold_decided_by.username == "leiar" and len(archive_jobs(released.id)) == 1
    assert len(activity_rows("post_hold_released")) == 1


def test_a_post_that_is_not_held_back_has_nothing_to_decide(ctx):
    case = builders.case()
    note = builders.post(case, title="Notat")
    with pytest.raises(Conflict):
        release(user("leiar"), note.id)
    assert reloaded(note.id).status == PostStatus.DRAFT


def test_two_leaders_at_once_the_second_gets_a_conflict(ctx, monkeypatch):
    """The second leader read the post before the first one's decision: the conditional UPDATE finds the
    decision made, so the second changes nothing and is told."""
    post = held_back_post()
    hold_back.keep(user("leiar"), post.id, "Første avgjerd")
    original = hold_back.decidable

    def as_read_before(actor, post_id, **kwargs):
        found = original(actor, post_id, **kwargs)
        set_committed_value(found, "hold_decision", None)  # what the second leader saw: no decision yet
        return found

    monkeypatch.setattr(hold_back, "decidable", as_read_before)
    with pytest.raises(Conflict) as refused:
        hold_back.keep(user("nestleiar"), post.id, "Andre avgjerd")
    assert not isinstance(refused.value, posts.ChangedMeanwhile)  # "kept already": the guard on the post as it is
    with pytest.raises(Conflict):  # a release decided on a post that was not kept when read: look again
        release(user("nestleiar"), post.id)
    post = reloaded(post.id)
    assert post.hold_decision == "kept" and post.hold_reason == "Første avgjerd" and post.status == PostStatus.DRAFT
    assert archive_jobs(post.id) == [] and len(events(post.id)) == 1


def test_release_of_a_post_missing_what_finalizing_needs_is_refused_with_what_is_missing(ctx):
    post = held_back_post()
    post.title = ""  # as if the handler had emptied it meanwhile
    db.session.commit()
    with pytest.raises(Invalid) as refused:
        release(user("leiar"), post.id)
    assert str(posts.missing_for_finalize(reloaded(post.id))[0]) in str(refused.value.message)
    post = reloaded(post.id)
    assert post.hold_decision is None and post.status == PostStatus.DRAFT and archive_jobs(post.id) == []
    assert activity_rows("post_hold_released") == [] and events(post.id) == []


def test_another_handlers_post_is_not_found_for_an_approver_without_search_all(app, login_as):
    """Scope rules as elsewhere: approve alone does not open posts outside one's own cases (404 and a row)."""
    from ppt_web.errors import NotFound
    from ppt_web.models import Permission

    with app.app_context():
        post_id = held_back_post().id
        search_all = db.session.scalar(select(Permission).where(Permission.code == "search_all"))
        leader_role = role("leiar")
        leader_role.permissions.remove(search_all)
        db.session.commit()
        leader = user("leiar")
        assert leader.can("approve") and not leader.can("search_all")
        with pytest.raises(NotFound):
            hold_back.release(leader, post_id)
        assert hold_back.waiting(leader) == []
    client = login_as("leiar")
    assert client.get(f"/posts/{post_id}/hold-back").status_code == 404
    assert client.post(f"/posts/{post_id}/hold-back/keep", data={"reason": "Grunn"}).status_code == 404
    with app.app_context():
        assert [r.object_id for r in activity_rows("not_found")][-2:] == [str(post_id)] * 2
        assert reloaded(post_id).hold_decision is None


# --- the pages ----------------------------------------------------------------------------------------------


def test_the_leaders_notice_leads_to_the_decision_page(ctx):
    post = held_back_post()
    for username in ("leiar", "nestleiar"):
        links = db.session.scalars(select(Notification.link).where(Notification.user_id == user(username).id)).all()
        assert f"/posts/{post.id}/hold-back" in links


def test_the_decision_page_shows_every_page_image_and_both_actions(app, login_as):
    with app.app_context():
        post_id = held_back_post(pages=3).id
        doc_id = reloaded(post_id).documents[0].id
    client = login_as("leiar")
    page = client.get(f"/posts/{post_id}/hold-back")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    images = re.findall(rf'<img src="(/documents/{doc_id}/pages/\d+\.jpg)"', html)
    assert len(images) == 3
    assert 'id="hold-back-release"' in html and 'id="hold-back-keep"' in html and 'data-hold="waiting"' in html
    image = client.get(images[0])
    assert image.status_code == 200 and image.mimetype == "image/jpeg" and image.data[:2] == b"\xff\xd8"
    assert "no-store" in image.headers["Cache-Control"]
    assert client.get(f"/documents/{doc_id}/pages/4.jpg").status_code == 409  # there is no page 4
    listing = client.get("/hold-back").get_data(as_text=True)
    assert f'data-post="{post_id}"' in listing


def seen_on_page(client, post_id: int) -> str:
    """The `seen` digest the decision page puts in its release form."""
    html = client.get(f"/posts/{post_id}/hold-back").get_data(as_text=True)
    found = re.search(r'name="seen" type="hidden" value="(\w+)"|type="hidden" name="seen" value="(\w+)"|'
                      r'id="seen" name="seen" type="hidden" value="(\w+)"', html)
    assert found, "the release form carries what the page showed"
    return next(g for g in found.groups() if g)


def test_keep_and_release_through_the_pages(app, login_as):
    with app.app_context():
        post_id = held_back_post().id
    client = login_as("leiar")
    refused = client.post(f"/posts/{post_id}/hold-back/keep", data={"reason": "  "})
    assert refused.status_code == 422 and 'id="hold-back-keep"' in refused.get_data(as_text=True)
    kept = client.post(f"/posts/{post_id}/hold-back/keep", data={"reason": "Avklarast", "form_token": "keep-1"})
    assert kept.status_code == 302 and kept.headers["Location"].endswith(f"/posts/{post_id}")
    post_page = client.get(f"/posts/{post_id}").get_data(as_text=True)
    assert 'data-hold="kept"' in post_page and "Avklarast" in post_page
    again = client.post(f"/posts/{post_id}/hold-back/keep", data={"reason": "Avklarast", "form_token": "keep-1"})
    assert again.status_code == 302  # the same form sent twice: led to the post, nothing more
    twice = client.post(f"/posts/{post_id}/hold-back/keep", data={"reason": "Ny grunn"})
    assert twice.status_code == 409

    seen = seen_on_page(client, post_id)
    released = client.post(f"/posts/{post_id}/hold-back/release", data={"form_token": "release-1", "seen": seen})
    assert released.status_code == 302
    assert client.post(f"/posts/{post_id}/hold-back/release",
                       data={"form_token": "release-1", "seen": seen}).status_code == 302
    assert client.post(f"/posts/{post_id}/hold-back/release").status_code == 409
    with app.app_context():
        post = reloaded(post_id)
        assert post.status == PostStatus.FINALIZED and len(archive_jobs(post_id)) == 1
        assert len(activity_rows("post_hold_kept")) == 1 and len(activity_rows("post_hold_released")) == 1
    assert 'data-hold="released"' in client.get(f"/posts/{post_id}").get_data(as_text=True)


def test_the_handlers_post_page_offers_no_finalize_while_held_back(app, login_as):
    with app.app_context():
        post_id = held_back_post().id
    client = login_as("radgjevar1")
    html = client.get(f"/posts/{post_id}").get_data(as_text=True)
    assert 'data-hold="waiting"' in html and f"/posts/{post_id}/finalize" not in html
    assert 'id="hold-back-decide"' not in html
    assert client.post(f"/posts/{post_id}/finalize").status_code == 409
    assert client.get(f"/posts/{post_id}/hold-back").status_code == 403
    assert client.post(f"/posts/{post_id}/hold-back/release").status_code == 403
    with app.app_context():
        assert reloaded(post_id).status == PostStatus.DRAFT
        assert db.session.scalar(select(func.count()).select_from(ArchiveJob)
                                 .where(ArchiveJob.post_id == post_id)) == 0


def test_the_leaders_post_page_leads_to_the_decision(app, login_as):
    with app.app_context():
        post_id = held_back_post().id
    html = login_as("leiar").get(f"/posts/{post_id}").get_data(as_text=True)
    assert 'id="hold-back-decide"' in html and f'href="/posts/{post_id}/hold-back"' in html


def test_a_release_of_a_post_changed_since_the_page_showed_it_is_refused(ctx):
    """The handler may still edit the draft: the leader releases only what the decision page showed."""
    post = held_back_post()
    shown = hold_back.seen_version(post)
    post.title = "Klage frå føresette (retta)"
    db.session.commit()
    with pytest.raises(posts.ChangedMeanwhile):
        hold_back.release(user("leiar"), post.id, seen=shown)
    assert reloaded(post.id).hold_decision is None and archive_jobs(post.id) == []
    hold_back.release(user("leiar"), post.id, seen=hold_back.seen_version(reloaded(post.id)))
    assert reloaded(post.id).status == PostStatus.FINALIZED


# --- guards and lists added with issue 18's review -------------------------------------------------------------


@pytest.mark.parametrize("decision", [None, "kept"])
def test_a_held_back_post_deleted_as_misregistered_is_held_back_again_when_filed_anew(ctx, decision):
    """Deleting puts the mail back in the inbox; filed again (even without the tick) it waits for the leader."""
    post = held_back_post()
    if decision == "kept":
        hold_back.keep(user("leiar"), post.id, "Vent")
    secretary = user("sekretaer")
    item = db.session.scalar(select(InboxItem).where(InboxItem.post_id == post.id))
    posts.delete_post(secretary, post.id, "Feil klient")
    item = db.session.get(InboxItem, item.id)
    assert item.hold_back_required and item.post_id is None
    other = builders.case()
    again = transfer.transfer(secretary, item.id, transfer.TransferData(
        client_id=other.client.id, case_id=other.id, title="Klage frå føresette",
        document_date=oslo_today() - timedelta(days=2), sender_name="Kari Føresett",
        storage_place="Arkivrommet, hylle 3", hold_back=False))
    assert again.post.status == PostStatus.DRAFT and again.post.held_back and again.post.hold_decision is None
    assert again.post.id in [p.id for p in hold_back.waiting(user("leiar"))]


def test_mail_back_from_a_held_back_post_and_split_is_held_back_in_every_part(ctx):
    """Deleting and filing anew cannot get around the leader's decision, split in parts neither."""
    from ppt_web.postreg import split

    post = held_back_post(pages=2)
    secretary = user("sekretaer")
    item = db.session.scalar(select(InboxItem).where(InboxItem.post_id == post.id))
    posts.delete_post(user("konsulent"), post.id, "Feil klient")
    parts = split.split(secretary, item.id, "1, 2")
    assert [db.session.get(InboxItem, p.id).hold_back_required for p in parts] == [True, True]
    for part in parts:
        for point in db.session.get(InboxItem, part.id).check_points:
            service.set_check(secretary, part.id, point, True)
        other = builders.case()
        filed = transfer.transfer(secretary, part.id, transfer.TransferData(
            client_id=other.client.id, case_id=other.id, title="Klage, del", document_date=oslo_today(),
            sender_name="Kari Føresett", storage_place="Arkivrommet, hylle 3", hold_back=False))
        assert filed.post.status == PostStatus.DRAFT and filed.post.held_back and archive_jobs(filed.post.id) == []


def test_the_registered_mail_stays_on_a_held_back_post_while_its_handler_edits_it(ctx):
    """The handler may edit a held-back draft, but the scan post registration filed is the mail itself: not
    replaced nor removed (it was a 500, the inbox item and paper original naming it). Attachments may be added."""
    post = held_back_post()
    scan = post.main_document
    data = posts.PostData(post_type="I", title=post.title, document_date=post.document_date,
                          received_on=post.received_on,
                          correspondents=[posts.CorrespondentData(name="Kari Føresett")])
    other = posts.Upload(io.BytesIO(builders.make_pdf()), "anna.pdf")
    with pytest.raises(Invalid):
        posts.update_post(user("radgjevar1"), post.id, data, main=other)
    db.session.rollback()
    with pytest.raises(Invalid):
        posts.remove_document(user("radgjevar1"), post.id, scan.id)
    db.session.rollback()
    posts.update_post(user("radgjevar1"), post.id, data,
                      attachments=[posts.Upload(io.BytesIO(builders.make_pdf()), "vedlegg.pdf")])
    post = reloaded(post.id)
    assert post.main_document.id == scan.id and [d.filename for d in post.documents if d.role != "main"] == \
        ["vedlegg.pdf"]


def test_a_release_without_what_the_page_showed_is_refused(app, login_as):
    """A POST without `seen` would release content the leader never saw: refused, nothing changes."""
    with app.app_context():
        post_id = held_back_post().id
        with pytest.raises(Invalid):
            hold_back.release(user("leiar"), post_id)
    client = login_as("leiar")
    refused = client.post(f"/posts/{post_id}/hold-back/release", data={"form_token": "r-1"})
    assert refused.status_code == 422 and 'id="hold-back-release"' in refused.get_data(as_text=True)
    assert client.post(f"/posts/{post_id}/hold-back/release", data={"seen": ""}).status_code == 422
    with app.app_context():
        post = reloaded(post_id)
        assert post.status == PostStatus.DRAFT and post.hold_decision is None and archive_jobs(post_id) == []
        assert activity_rows("post_hold_released") == []


def test_every_page_image_shown_is_logged_as_an_opening_of_the_document(app, login_as):
    with app.app_context():
        post_id = held_back_post(pages=2).id
        doc_id = reloaded(post_id).documents[0].id
    client = login_as("leiar")
    assert client.get(f"/documents/{doc_id}/pages/2.jpg").status_code == 200
    assert client.get(f"/documents/{doc_id}/pages/9.jpg").status_code == 409  # no such page: nothing shown
    with app.app_context():
        rows = [(r.object_id, r.detail, r.actor_id) for r in activity_rows("document_opened")]
        assert rows == [(str(post_id), f"document {doc_id} page 2", user("leiar").id)]


def test_kept_posts_are_listed_for_the_leader_with_reason_who_when_and_release(app, login_as):
    with app.app_context():
        waiting = held_back_post().id
        kept = held_back_post().id
        hold_back.keep(user("nestleiar"), kept, "Tredjepersonsopplysningar")
        assert [p.id for p in hold_back.kept(user("leiar"))] == [kept] and hold_back.count(user("leiar"), "kept") == 1
        assert hold_back.count(user("leiar")) == 1
    client = login_as("leiar")
    html = client.get("/hold-back").get_data(as_text=True)
    waiting_part = html.split('id="held-waiting"', 1)[1].split("</table>", 1)[0]
    kept_part = html.split('id="held-kept"', 1)[1].split("</table>", 1)[0]
    assert f'data-post="{waiting}"' in waiting_part and f'data-post="{kept}"' not in waiting_part
    assert f'data-post="{kept}"' in kept_part and "Tredjepersonsopplysningar" in kept_part
    assert f'data-release="{kept}"' in kept_part and f'href="/posts/{kept}/hold-back#hold-back-release"' in kept_part
    with app.app_context():
        assert user("nestleiar").full_name in kept_part
    assert 'id="menu-held-back"' in html  # the menu leads there
    client.post("/logout")
    assert 'id="menu-held-back"' not in login_as("sekretaer").get("/").get_data(as_text=True)


def test_the_case_cannot_be_closed_and_says_a_leader_must_release_the_held_post(ctx):
    from flask_babel import lazy_gettext

    from ppt_web.cases import service as cases

    post = held_back_post()
    hold_back.keep(user("leiar"), post.id, "Vent")
    with pytest.raises(Conflict) as refused:
        cases.close_case(user("radgjevar1"), reloaded(post.id).case_id)
    message = str(refused.value.message)
    assert reloaded(post.id).number in message
    assert f'({lazy_gettext("held back from access: a leader must release it")})' in message
