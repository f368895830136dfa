"""Post registration: checklist, transfer, hold back, split, reject, paper originals, notifications (SPEC §5, §8)."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from ppt_web.clock import today as oslo_today
from ppt_web.errors import Conflict, Forbidden, Invalid
from ppt_web.extensions import db
from ppt_web.models import (
    ArchiveJob,
    Case,
    InboxItem,
    InboxSource,
    InboxStatus,
    JournalPost,
    Notification,
    PaperOriginal,
    PostStatus,
    PostType,
)
from ppt_web.postreg import paper, service, split, transfer, upload

from . import builders
from .conftest import activity_rows, user


def scanned(pages: int = 1, source: InboxSource = InboxSource.SCAN) -> InboxItem:
    """An item as the intake leaves it (the intake itself is tested in test_postreg_intake)."""
    item = upload.receive_upload(user("sekretaer"), io.BytesIO(builders.make_pdf(pages)), "skann.pdf")
    item.source = source
    db.session.commit()
    return item


def tick_all(item: InboxItem, username: str = "sekretaer") -> None:
    for point in item.check_points:
        service.set_check(user(username), item.id, point, True)


def transfer_data(client_obj, case_obj=None, **extra) -> transfer.TransferData:
    values = dict(client_id=client_obj.id, case_id=case_obj.id if case_obj else None, title="Tilvising frå skulen",
                  document_date=oslo_today() - timedelta(days=2), sender_name="Nordby skule",
                  storage_place="Arkivrommet, hylle 3")
    values.update(extra)
    return transfer.TransferData(**values)


def test_transfer_is_refused_until_every_point_is_ticked(ctx):
    case = builders.case()
    item = scanned()
    for point in (1, 2, 3):
        service.set_check(user("sekretaer"), item.id, point, True)
        with pytest.raises(Invalid) as refused:
            transfer.transfer(user("sekretaer"), item.id, transfer_data(case.client, case))
        assert "4" in str(refused.value.message)
    assert db.session.scalar(select(JournalPost).where(JournalPost.case_id == case.id)) is None
    assert db.session.get(InboxItem, item.id).status == InboxStatus.IN_PROGRESS

    service.set_check(user("konsulent"), item.id, 4, True)
    item = db.session.get(InboxItem, item.id)
    assert item.status == InboxStatus.CHECKED
    assert [(c.point, c.checked_by.username) for c in item.checks] == [
        (1, "sekretaer"), (2, "sekretaer"), (3, "sekretaer"), (4, "konsulent")]
    assert all(c.checked_at is not None for c in item.checks)
    assert [r.after["point"] for r in activity_rows("inbox_checked")] == [1, 2, 3, 4]

    service.set_check(user("sekretaer"), item.id, 4, False)  # unticking is allowed, and logged
    assert db.session.get(InboxItem, item.id).status == InboxStatus.IN_PROGRESS
    assert len(activity_rows("inbox_unchecked")) == 1


def test_digital_mail_gets_the_checks_that_apply(ctx):
    item = scanned(source=InboxSource.SVARINN)
    assert item.check_points == (2, 3, 4)
    with pytest.raises(Invalid):
        service.set_check(user("sekretaer"), item.id, 1, True)
    tick_all(item)
    assert db.session.get(InboxItem, item.id).status == InboxStatus.CHECKED


def test_transfer_files_a_finalized_incoming_post_with_its_archive_job_and_tells_the_handler(ctx):
    case = builders.case(handler="radgjevar1")
    item = scanned(pages=2)
    tick_all(item)
    done = transfer.transfer(user("sekretaer"), item.id, transfer_data(case.client, case))

    post = done.post
    assert done.status == InboxStatus.TRANSFERRED and done.transferred_by.username == "sekretaer"
    assert post.post_type == PostType.I and post.status == PostStatus.FINALIZED and not post.held_back
    assert post.case_id == case.id and post.title == "Tilvising frå skulen"
    assert [c.name for c in post.correspondents] == ["Nordby skule"]
    assert post.received_on == oslo_today()  # the day it came in, unless the user says otherwise
    assert post.main_document.sha256 == item.sha256 and done.document_id == post.main_document.id
    jobs = list(db.session.scalars(select(ArchiveJob).where(ArchiveJob.post_id == post.id)))
    assert [j.event for j in jobs] == ["post_finalized"]
    # The checklist stays with the document.
    assert [c.point for c in service.document_checks(post.main_document.id)] == [1, 2, 3, 4]
    # The responsible handler is told, with a link to the post.
    (note,) = db.session.scalars(select(Notification).where(Notification.user_id == user("radgjevar1").id))
    assert post.title in note.text and note.link == f"/posts/{post.id}"
    # A scanned paper original is kept three months.
    original = db.session.scalar(select(PaperOriginal).where(PaperOriginal.item_id == item.id))
    assert original.storage_place == "Arkivrommet, hylle 3" and not original.downtime_log
    assert original.destroy_by == paper.add_months(original.scanned_on, 3)
    # Once only.
    with pytest.raises(Conflict):
        transfer.transfer(user("sekretaer"), item.id, transfer_data(case.client, case))


def test_hold_back_leaves_the_post_unfinalized_without_an_archive_job_and_tells_the_leaders(ctx):
    case = builders.case()
    item = scanned()
    tick_all(item)
    done = transfer.transfer(user("sekretaer"), item.id, transfer_data(case.client, case, hold_back=True))
    assert done.post.status == PostStatus.DRAFT and done.post.held_back
    assert db.session.scalar(select(ArchiveJob).where(ArchiveJob.post_id == done.post.id)) is None
    told = {db.session.get(type(user("leiar")), n.user_id).username
            for n in db.session.scalars(select(Notification))}
    assert {"leiar", "radgjevar1"} <= told


def test_transfer_can_open_a_case_on_the_spot(ctx):
    client = builders.client(handler="radgjevar2")
    item = scanned()
    tick_all(item)
    done = transfer.transfer(user("sekretaer"), item.id,
                            transfer_data(client, new_case_category="referral", new_case_title="Tilvising"))
    case = db.session.get(Case, done.post.case_id)
    assert case.client_id == client.id and case.handler.username == "radgjevar2" and case.title == "Tilvising"
    events = [j.event for j in db.session.scalars(select(ArchiveJob).where(ArchiveJob.case_id == case.id)
                                                  .order_by(ArchiveJob.id))]
    assert events == ["case_created", "post_finalized"]


def test_a_refused_transfer_changes_nothing(ctx):
    case = builders.case()
    other = builders.case()
    item = scanned()
    tick_all(item)
    before = (db.session.query(JournalPost).count(), db.session.query(ArchiveJob).count(),
              db.session.query(Notification).count(), db.session.query(PaperOriginal).count())
    for bad in (transfer_data(case.client, other),                       # a case of another client
                transfer_data(case.client, case, title=""),              # no title: cannot be finalized
                transfer_data(case.client, case, storage_place=""),      # paper needs its place
                transfer_data(case.client, case, document_date=oslo_today() + timedelta(days=3))):
        with pytest.raises(Invalid):
            transfer.transfer(user("sekretaer"), item.id, bad)
    after = (db.session.query(JournalPost).count(), db.session.query(ArchiveJob).count(),
             db.session.query(Notification).count(), db.session.query(PaperOriginal).count())
    assert after == before
    assert db.session.get(InboxItem, item.id).status == InboxStatus.CHECKED


def test_after_downtime_paper_is_kept_six_months(ctx):
    case = builders.case()
    item = scanned()
    tick_all(item)
    transfer.transfer(user("sekretaer"), item.id, transfer_data(
        case.client, case, after_downtime=True, received_on=oslo_today() - timedelta(days=10)))
    original = db.session.scalar(select(PaperOriginal).where(PaperOriginal.item_id == item.id))
    assert original.downtime_log and original.destroy_by == paper.add_months(original.scanned_on, 6)


def test_split_by_page_ranges_gives_documents_with_the_right_page_counts(ctx):
    item = scanned(pages=6)
    for bad in ("1-6", "1-2, 4-6", "1-3, 3-6", "1-2, 3-7", "2-3, 4-6", "a-b, 3"):
        with pytest.raises(Invalid):
            split.split(user("sekretaer"), item.id, bad)
    assert db.session.query(InboxItem).count() == 1
    parts = split.split(user("sekretaer"), item.id, "1-2, 3, 4-6")
    assert [(p.page_count, p.first_page, p.last_page, p.status) for p in parts] == [
        (2, 1, 2, InboxStatus.NEW), (1, 3, 3, InboxStatus.NEW), (3, 4, 6, InboxStatus.NEW)]
    assert db.session.get(InboxItem, item.id).status == InboxStatus.SPLIT
    assert all(p.parent_id == item.id and p.source == InboxSource.SCAN for p in parts)
    with pytest.raises(Conflict):
        split.split(user("sekretaer"), item.id, "1-3, 4-6")


def test_reject_needs_a_reason_and_keeps_the_item(ctx):
    item = scanned()
    with pytest.raises(Invalid):
        service.reject(user("sekretaer"), item.id, "  ")
    service.reject(user("sekretaer"), item.id, "Reklame, ikkje til PPT")
    kept = db.session.get(InboxItem, item.id)
    assert kept.status == InboxStatus.REJECTED and kept.reject_reason == "Reklame, ikkje til PPT"
    assert kept.rejected_by.username == "sekretaer" and kept.sha256 is not None
    assert [i.id for i in service.inbox(user("sekretaer"), "rejected")["items"]] == [item.id]
    assert service.inbox(user("sekretaer"), "open")["items"] == []


def test_paper_originals_due_list_and_confirmed_destruction(ctx):
    case = builders.case()
    item = scanned()
    tick_all(item)
    transfer.transfer(user("sekretaer"), item.id, transfer_data(case.client, case))
    original = db.session.scalar(select(PaperOriginal))
    assert paper.paper_originals(user("sekretaer")) == []  # not due for three months
    with pytest.raises(Conflict):
        paper.confirm_destroyed(user("sekretaer"), original.id)
    original.destroy_by = oslo_today() - timedelta(days=1)
    db.session.commit()
    assert [o.id for o in paper.paper_originals(user("sekretaer"))] == [original.id]
    paper.confirm_destroyed(user("sekretaer"), original.id)
    done = db.session.get(PaperOriginal, original.id)
    assert done.destroyed_by.username == "sekretaer" and done.destroyed_at is not None
    assert paper.paper_originals(user("sekretaer")) == []
    assert len(activity_rows("paper_destroyed")) == 1
    with pytest.raises(Conflict):
        paper.confirm_destroyed(user("sekretaer"), original.id)


@pytest.mark.parametrize("username", ["radgjevar1", "leiar", "nestleiar"])
def test_only_distribute_mail_holders_reach_the_inbox(ctx, username):
    item = scanned()
    for call in (lambda: service.inbox(user(username)), lambda: service.open_item(user(username), item.id),
                 lambda: service.set_check(user(username), item.id, 1, True),
                 lambda: service.reject(user(username), item.id, "nei"),
                 lambda: paper.paper_originals(user(username))):
        with pytest.raises(Forbidden):
            call()


def test_opening_an_item_shows_who_has_it(ctx):
    item = scanned()
    service.open_item(user("sekretaer"), item.id)
    service.open_item(user("konsulent"), item.id)  # opening does not take it from a colleague
    assert db.session.get(InboxItem, item.id).claimed_by.username == "sekretaer"
    service.take_over(user("konsulent"), item.id)
    assert db.session.get(InboxItem, item.id).claimed_by.username == "konsulent"


def test_a_colleague_unticking_meanwhile_stops_the_transfer(ctx):
    case = builders.case()
    item = scanned()
    tick_all(item)
    stale = db.session.get(InboxItem, item.id)
    # A colleague unticks point 3 in another session after this one read the item as checked.
    db.session.execute(InboxItem.__table__.update().where(InboxItem.id == item.id).values(status="in_progress"))
    db.session.commit()
    assert stale.id == item.id
    with pytest.raises(Conflict):
        transfer.transfer(user("sekretaer"), item.id, transfer_data(case.client, case))
    assert db.session.query(JournalPost).filter(JournalPost.case_id == case.id).count() == 0


def test_a_split_item_cannot_then_be_transferred(ctx):
    case = builders.case()
    item = scanned(pages=2)
    tick_all(item)
    split.split(user("sekretaer"), item.id, "1, 2")
    with pytest.raises(Conflict):
        transfer.transfer(user("sekretaer"), item.id, transfer_data(case.client, case))
    with pytest.raises(Conflict):
        service.set_check(user("sekretaer"), item.id, 1, False)


def test_deleting_a_held_back_post_puts_its_mail_back_in_the_inbox(ctx):
    from ppt_web.cases import posts

    case = builders.case()
    item = scanned()
    tick_all(item)
    done = transfer.transfer(user("sekretaer"), item.id, transfer_data(case.client, case, hold_back=True))
    post_id = done.post_id
    posts.delete_post(user("konsulent"), post_id, "Feil klient")
    back = db.session.get(InboxItem, item.id)
    assert db.session.get(JournalPost, post_id) is None
    assert back.status == InboxStatus.CHECKED and back.post_id is None and back.document_id is None
    assert back.sha256 is not None and [c.point for c in back.checks] == [1, 2, 3, 4]
    kept = db.session.scalar(select(PaperOriginal))  # the paper's record stays, without a document meanwhile
    assert kept.item_id == item.id and kept.document_id is None and kept.destroyed_at is None
    assert len(activity_rows("inbox_returned")) == 1
    assert back.hold_back_required
    other = builders.case()
    # Filed again without ticking hold back: it is held back again, so deleting cannot bypass the leader.
    again = transfer.transfer(user("sekretaer"), item.id, transfer_data(other.client, other))
    assert again.post.case_id == other.id and again.post.status == PostStatus.DRAFT
    assert again.post.held_back and again.post.hold_decision is None
    assert db.session.scalars(select(PaperOriginal)).all() == [kept] and kept.document_id == again.post.main_document.id


def test_the_client_handler_is_told_only_when_they_can_open_the_case(ctx):
    client = builders.client(handler="radgjevar2")
    case = builders.case(handler="radgjevar1", client_obj=client)
    item = scanned()
    tick_all(item)
    transfer.transfer(user("sekretaer"), item.id, transfer_data(client, case))
    told = {n.user_id for n in db.session.scalars(select(Notification))}
    assert user("radgjevar1").id in told and user("radgjevar2").id not in told


def test_taking_over_keeps_a_checked_status_a_colleague_set_meanwhile(app, ctx, monkeypatch):
    """The colleague's last tick made the item "checked" while the take-over was on its way: it stays checked
    (it was set back to "in progress" with every point ticked, and its transfer refused)."""
    from .helpers import elsewhere

    item = scanned()
    points = list(item.check_points)
    for point in points[:-1]:
        service.set_check(user("sekretaer"), item.id, point, True)
    real = service.get_item
    calls = []

    def get_item(actor, item_id):
        found = real(actor, item_id)
        if not calls:
            calls.append(item_id)  # before: the colleague's own tick looks the item up through here too
            elsewhere(app, lambda: service.set_check(user("sekretaer"), item_id, points[-1], True).id)
        return found

    monkeypatch.setattr(service, "get_item", get_item)
    service.take_over(user("konsulent"), item.id)
    db.session.expire_all()
    taken = db.session.get(InboxItem, item.id)
    assert taken.status == InboxStatus.CHECKED and taken.claimed_by_id == user("konsulent").id
