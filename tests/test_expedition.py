"""Expedition: the first delivery SvarUt confirms, or a letter recorded as sent on paper, gives the post
its sent date on screen and the archive an update with journalstatus E and sendtDato, once per post.
A letter that went on paper (recorded, or registered after downtime as already sent) is not also
sent electronically."""
from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select, update

from ppt_web.archive import message
from ppt_web.cases import post_actions, posts
from ppt_web.clock import today
from ppt_web.dispatch import expedition
from ppt_web.dispatch import service as dispatch
from ppt_web.errors import Conflict, Forbidden, Invalid
from ppt_web.extensions import db
from ppt_web.models import ActivityLog, ArchiveJob, Dispatch, DispatchStatus, JournalPost, PostStatus
from ppt_web.outbound.folder import FolderAdapter

from . import builders
from .conftest import user

pytestmark = pytest.mark.app_config(PPT_DISPATCH_BACKOFF_SECONDS=0)


def letter(*, to_school: bool = False, **data) -> JournalPost:
    """A finalized outgoing letter (no approval needed) to a guardian, and a school if asked."""
    case = builders.case(category="follow_up")
    recipients = [posts.CorrespondentData(name="Kari Føresett", address="Heimvegen 3, 6065 Ulsteinvik",
                                          national_id=builders.valid_national_id(901))]
    if to_school:
        recipients.append(posts.CorrespondentData(name="Per Føresett", address="Heimvegen 3, 6065 Ulsteinvik",
                                                  national_id=builders.valid_national_id(902)))
    fields = {"document_date": today(), **data}
    post = posts.create_post(user("radgjevar1"), case.id, posts.PostData(
        post_type="U", title="Brev til føresette", correspondents=recipients, **fields),
        posts.Upload(io.BytesIO(builders.make_pdf()), "brev.pdf"))
    posts.finalize(user("radgjevar1"), post.id)
    return fresh(post)


def fresh(post: JournalPost) -> JournalPost:
    db.session.expire_all()
    found = db.session.get(JournalPost, post.id)
    assert found is not None
    return found


def folder(app) -> FolderAdapter:
    return FolderAdapter(Path(app.config["PPT_SVARUT_DIR"]))


def set_status(app, row: Dispatch, status: str) -> None:
    where = Path(app.config["PPT_SVARUT_DIR"]) / "status"
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{row.external_ref}.json").write_text(json.dumps({"status": status}))


def dispatches(post: JournalPost) -> list[Dispatch]:
    db.session.expire_all()
    return list(db.session.scalars(select(Dispatch).where(Dispatch.post_id == post.id).order_by(Dispatch.id)))


def expedited_jobs(post: JournalPost) -> list[ArchiveJob]:
    return list(db.session.scalars(select(ArchiveJob).where(ArchiveJob.post_id == post.id,
                                                            ArchiveJob.event == "post_expedited")))


def sent_in_archive(job: ArchiveJob) -> tuple[str, str]:
    """journalstatus kode and sendtDato of the update the job sends."""
    root = etree.fromstring(message.build(job).payload)
    status = root.xpath("//*[local-name()='journalstatus']/*[local-name()='kode']/text()")
    sent = root.xpath("//*[local-name()='sendtDato']/text()")
    return (status[0] if status else ""), (sent[0] if sent else "")


def test_the_first_confirmed_delivery_expedites_the_post_once(app, ctx):
    post = letter(to_school=True)
    guardian, other = dispatch.request_dispatch(user("radgjevar1"), post.id)
    set_status(app, other, "SENDT_PRINT")  # handed over, not yet delivered
    set_status(app, guardian, "SENDT_DIGITALT")
    dispatch.sweep(folder(app))
    post = fresh(post)
    assert [r.status for r in dispatches(post)] == [DispatchStatus.SENT] * 2
    assert post.expedited_on is None and expedited_jobs(post) == []  # sent is not yet expedited

    set_status(app, guardian, "LEST")
    for _ in range(3):  # the same status polled again changes nothing
        dispatch.follow_statuses(folder(app))
    post = fresh(post)
    assert (post.expedited_on, post.expedition) == (today(), "svarut")
    assert post.sent_on is None  # metadata: only a correction changes it
    (job,) = expedited_jobs(post)
    status, sent = sent_in_archive(job)
    assert status == "E" and sent.startswith(today().isoformat())

    # The status delivered again (a poll whose commit was lost): still one expedition.
    db.session.execute(update(Dispatch).where(Dispatch.id == guardian.id)
                       .values(status=DispatchStatus.SENT, raw_status="SENDT_DIGITALT"))
    db.session.commit()
    dispatch.follow_statuses(folder(app))
    set_status(app, other, "PRINTET")  # the second recipient's delivery is not a second expedition
    dispatch.follow_statuses(folder(app))
    post = fresh(post)
    assert post.status == PostStatus.DISPATCHED and len(expedited_jobs(post)) == 1
    assert db.session.scalar(select(func.count(ActivityLog.id)).where(
        ActivityLog.action == "post_expedited", ActivityLog.object_id == str(post.id))) == 1


def test_the_post_page_shows_the_sent_date_and_how(app, ctx, login_as):
    post = letter()
    (row,) = dispatch.request_dispatch(user("radgjevar1"), post.id)
    dispatch.sweep(folder(app))  # a written folder reads as LEST
    page = login_as("radgjevar1").get(f"/posts/{post.id}").get_data(as_text=True)
    assert re.search(r'<dd class="sent">' + today().strftime("%d.%m.%Y") + r' <span class="expedition '
                     r'expedition-svarut">', page)
    assert 'class="sent-on-paper"' not in page and f"/dispatch/posts/{post.id}" not in page


def test_a_letter_recorded_as_sent_on_paper(app, ctx, login_as):
    post = letter(document_date=today() - timedelta(days=3))
    client = login_as("radgjevar1")
    page = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert 'class="sent-on-paper"' in page and f'value="{today().strftime("%d.%m.%Y")}"' in page
    assert f"/dispatch/posts/{post.id}" in page  # both are offered until one is chosen
    yesterday = today() - timedelta(days=1)
    response = client.post(f"/posts/{post.id}/sent-on-paper", data={"sent_on": yesterday.isoformat()})
    assert response.status_code == 302
    post = fresh(post)
    assert (post.expedited_on, post.expedition, post.status) == (yesterday, "paper", PostStatus.FINALIZED)
    (job,) = expedited_jobs(post)
    status, sent = sent_in_archive(job)
    assert status == "E" and sent.startswith(yesterday.isoformat())
    assert [e.kind for e in post.events][-1] == "expedited"
    assert db.session.scalar(select(ActivityLog).where(ActivityLog.action == "post_expedited")).actor_id == \
        user("radgjevar1").id
    page = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "expedition-paper" in page and yesterday.strftime("%d.%m.%Y") in page
    assert f"/dispatch/posts/{post.id}" not in page and 'class="sent-on-paper"' not in page
    # Electronic sending is refused by the service too, and a second paper record.
    with pytest.raises(Conflict):
        dispatch.request_dispatch(user("radgjevar1"), post.id)
    with pytest.raises(Conflict):
        expedition.record_paper(user("radgjevar1"), post.id, today())
    assert dispatches(post) == [] and len(expedited_jobs(post)) == 1


@pytest.mark.parametrize("sent_on, field", [
    ("tomorrow", "sent_on"), ("before_document_date", "sent_on"), (None, "sent_on")])
def test_a_paper_date_that_cannot_be_is_refused(ctx, sent_on, field):
    post = letter(document_date=today() - timedelta(days=2))
    on = {"tomorrow": today() + timedelta(days=1), "before_document_date": today() - timedelta(days=3),
          None: None}[sent_on]
    with pytest.raises(Invalid) as refused:
        expedition.record_paper(user("radgjevar1"), post.id, on)
    assert refused.value.details.get("field") == field
    assert fresh(post).expedited_on is None and expedited_jobs(post) == []


def test_paper_is_refused_for_what_is_not_a_finalized_letter_or_without_permission(ctx):
    case = builders.case(category="follow_up")
    note = builders.finalized_post(case, post_type="N")
    incoming = builders.finalized_post(case, post_type="I", correspondent="Skulen")
    draft = builders.post(case, post_type="U", correspondent="Føresette")
    for post in (note, incoming, draft):
        with pytest.raises(Conflict):
            expedition.record_paper(user("radgjevar1"), post.id, today())
    ok = letter()
    with pytest.raises(Forbidden):  # the leader has no "send"
        expedition.record_paper(user("leiar"), ok.id, today())
    assert not post_actions.allowed(user("leiar"), ok).record_paper
    assert all(fresh(p).expedited_on is None for p in (note, incoming, draft, ok))
    assert db.session.scalar(select(func.count(ArchiveJob.id)).where(ArchiveJob.event == "post_expedited")) == 0


def test_the_page_refuses_a_bad_date_with_a_message(app, ctx, login_as):
    post = letter()
    client = login_as("radgjevar1")
    for value in ("not-a-date", (today() + timedelta(days=1)).isoformat(), ""):
        response = client.post(f"/posts/{post.id}/sent-on-paper", data={"sent_on": value}, follow_redirects=True)
        assert response.status_code == 200 and '<p class="alert error">' in response.get_data(as_text=True)
    assert fresh(post).expedited_on is None


def test_the_page_refuses_paper_without_permission(app, login_as):
    with app.app_context():  # no app context around the requests: each request signs its own user in
        post_id = letter().id
        db.session.remove()
    assert login_as("leiar").post(f"/posts/{post_id}/sent-on-paper",
                                  data={"sent_on": today().isoformat()}).status_code == 403
    with app.app_context():
        assert db.session.get(JournalPost, post_id).expedited_on is None


def test_paper_is_not_recorded_while_the_letter_is_on_its_way_electronically(app, ctx):
    post = letter()
    dispatch.request_dispatch(user("radgjevar1"), post.id)
    with pytest.raises(Conflict):
        expedition.record_paper(user("radgjevar1"), post.id, today())
    assert not post_actions.allowed(user("radgjevar1"), fresh(post)).record_paper


def test_a_failed_dispatch_is_not_retried_after_the_letter_went_on_paper(app, ctx):
    post = letter()
    (row,) = dispatch.request_dispatch(user("radgjevar1"), post.id)
    set_status(app, row, "IKKE_LEVERT")
    dispatch.sweep(folder(app))
    (failed,) = dispatches(post)
    assert failed.status == DispatchStatus.FAILED and dispatch.failures(user("radgjevar1"))
    expedition.record_paper(user("radgjevar1"), post.id, today())  # printed and posted instead
    assert dispatch.retry_refusal(user("radgjevar1"), failed) is not None
    with pytest.raises(Conflict):
        dispatch.retry(user("radgjevar1"), failed.id)
    assert [r.status for r in dispatches(post)] == [DispatchStatus.FAILED]
    assert dispatch.failures(user("radgjevar1")) == [] and dispatch.failed_count(user("radgjevar1")) == 0


def test_a_letter_registered_after_downtime_as_sent_is_not_sent_electronically(app, ctx, login_as):
    sent = today() - timedelta(days=2)
    post = letter(document_date=sent, sent_on=sent, registered_after_downtime=True)
    refusal = dispatch.dispatch_refusal(user("radgjevar1"), post)
    assert isinstance(refusal, Conflict)
    with pytest.raises(Conflict):
        dispatch.request_dispatch(user("radgjevar1"), post.id)
    # Finalizing it expedited it on paper on its own sent date: the archive gets E with that date.
    post = fresh(post)
    assert (post.expedited_on, post.expedition) == (sent, "paper") and len(expedited_jobs(post)) == 1
    can = post_actions.allowed(user("radgjevar1"), post)
    assert not can.dispatch and not can.record_paper
    page = login_as("radgjevar1").get(f"/posts/{post.id}").get_data(as_text=True)
    assert f"/dispatch/posts/{post.id}" not in page and f"/posts/{post.id}/sent-on-paper" not in page
    assert not expedition.on_finalized(post, user("radgjevar1"))  # once
    assert dispatches(post) == []
