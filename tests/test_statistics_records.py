"""The figures about documents, approvals, the archive and dispatches (docs/statistics.md) against numbers
worked out by hand on a small fixed world of January to April 2026: documents per month by type and by
channel, approvals waiting and decided, the archive's jobs, errors, messages and time to Arkivert, and
SvarUt dispatches by status."""
from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from ppt_web import clock
from ppt_web.archive.job_messages import MESSAGES, message_values
from ppt_web.cases import approval
from ppt_web.extensions import db
from ppt_web.models import (
    AccessGroup,
    ArchiveJob,
    ArchiveStatus,
    JobStatus,
    JournalPost,
    PostEvent,
    PostStatus,
)
from ppt_web.models.dispatch import Dispatch, DispatchStatus
from ppt_web.models.inbox import InboxItem, InboxSource, InboxStatus
from ppt_web.statistics import records
from ppt_web.statistics.figures import Filters, Period

from . import builders
from .conftest import user

SPRING = Filters(Period(date(2026, 1, 1), date(2026, 4, 30), "range"))  # winter, the change to summer, summer
MARCH = Filters(Period(date(2026, 3, 1), date(2026, 3, 31), "month"))
NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
_seq = itertools.count(100)


@pytest.fixture(autouse=True)
def english(ctx):
    """The labels and notes these tests read are the English ones, whatever the translations say."""
    with force_locale("en"):
        yield


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def team(name: str) -> int:
    found = db.session.scalar(select(AccessGroup.id).where(AccessGroup.name == name))
    assert found is not None  # the demo teams
    return found


def journal_post(case, post_type: str = "N", registered: str = "2025-06-01 10:00", **extra) -> JournalPost:
    row = JournalPost(case_id=case.id, seq=next(_seq), post_type=post_type, title="Notat", title_lower="notat",
                      registered_at=utc(registered), created_by_id=case.handler_id, **extra)
    db.session.add(row)
    db.session.flush()
    return row


def inbox_item(post: JournalPost, source: InboxSource) -> InboxItem:
    row = InboxItem(source=source, status=InboxStatus.TRANSFERRED, filename="post.pdf", post_id=post.id)
    db.session.add(row)
    db.session.flush()
    return row


def column(figure, key: str) -> list:
    index = figure.column(key)
    return [row[index] for row in figure.rows]


@pytest.fixture
def cases():
    """Case A belongs to radgjevar1 (Team barnehage), case B to radgjevar2 (Team skule)."""
    return builders.case("radgjevar1"), builders.case("radgjevar2")


@pytest.fixture
def documents(cases):
    """Posts at the edges of Oslo's months, in winter and in summer time, filed from the inbox or made in
    the app. March has none."""
    a, b = cases
    jan_last = journal_post(a, "I", "2026-01-31 22:30")  # 23:30 Oslo (winter) on the 31st: January
    inbox_item(jan_last, InboxSource.SCAN)
    journal_post(a, "U", "2026-04-30 21:30")  # 23:30 Oslo (summer) on the 30th: April; a letter made in the app
    feb_first = journal_post(b, "N", "2026-01-31 23:30")  # 00:30 Oslo on 1 February
    inbox_item(feb_first, InboxSource.SVARINN)
    inbox_item(feb_first, InboxSource.UPLOAD)  # a second item into the same post: the post counts once
    journal_post(b, "X", "2026-02-15 10:00")
    new_year = journal_post(a, "I", "2025-12-31 23:30")  # 00:30 Oslo on 1 January: in the period
    inbox_item(new_year, InboxSource.UPLOAD)
    journal_post(a, "I", "2026-04-30 22:30")  # 00:30 Oslo on 1 May: after the period
    journal_post(a, "I", "2025-12-31 22:30")  # 23:30 Oslo on 31 December: before it
    db.session.commit()


def test_documents_by_type_count_each_post_in_its_oslo_month(documents):
    """A post registered at 23:30 Oslo time on a month's last day counts in that month, in winter and in
    summer time; one at 00:30 on the first in the new month; a month without posts is a row of zeros."""
    figure = records.documents_by_type(SPRING)
    assert figure.key == "documents-type" and figure.scope == "team"
    assert [c.key for c in figure.columns] == ["month", "I", "U", "N", "X", "total"]
    assert figure.rows == [("2026-01", 2, 0, 0, 0, 2), ("2026-02", 0, 0, 1, 1, 2), ("2026-03", 0, 0, 0, 0, 0),
                           ("2026-04", 0, 1, 0, 0, 1)]
    assert figure.chart is not None and figure.chart.kind == "stacked" and figure.chart.series == ("I", "U", "N", "X")


def test_documents_by_type_for_a_team_count_only_its_handlers_cases(documents):
    figure = records.documents_by_type(Filters(SPRING.period, team("Team barnehage")))
    assert column(figure, "total") == [2, 0, 0, 1]
    figure = records.documents_by_type(Filters(SPRING.period, team("Team skule")))
    assert column(figure, "total") == [0, 2, 0, 0]


def test_documents_by_channel_tell_inbox_mail_from_letters_made_in_the_app(documents):
    """Filed from the inbox: by the item's source (the first item when two went into one post); else made
    in the app. Each post counts once."""
    figure = records.documents_by_channel(SPRING)
    assert figure.key == "documents-channel"
    assert [c.key for c in figure.columns] == ["month", "scan", "svarinn", "upload", "app", "total"]
    assert figure.rows == [("2026-01", 1, 0, 1, 0, 2), ("2026-02", 0, 1, 0, 1, 2), ("2026-03", 0, 0, 0, 0, 0),
                           ("2026-04", 0, 0, 0, 1, 1)]
    assert column(figure, "total") == column(records.documents_by_type(SPRING), "total")
    assert [c.label for c in figure.columns][4] == "Made in the app"


def test_approvals_waiting_now_by_how_long(cases, monkeypatch):
    """Four posts wait: 1, 5, 16 and 20 days. The oldest column is the longest wait of each row."""
    monkeypatch.setattr(clock, "utcnow", lambda: NOW)
    a, b = cases
    for case, days in ((a, 1), (b, 5), (a, 16), (a, 20)):
        journal_post(case, "U", status=PostStatus.AWAITING_APPROVAL, approver_id=user("leiar").id,
                     approval_requested_at=NOW - timedelta(days=days))
    journal_post(a, "U", status=PostStatus.DRAFT, approval_requested_at=NOW - timedelta(days=30))  # returned once
    db.session.commit()
    figure = records.approvals_waiting(SPRING)
    assert figure.key == "approvals-waiting" and figure.scope == "team"
    assert figure.rows == [("Under 3 days", 1, 1.0), ("3–7 days", 1, 5.0), ("7–14 days", 0, None),
                           ("Over 14 days", 2, 20.0)]
    assert column(records.approvals_waiting(Filters(SPRING.period, team("Team skule"))), "count") == [0, 1, 0, 0]


def event(post: JournalPost, kind: str, at: str) -> None:
    db.session.add(PostEvent(post_id=post.id, kind=kind, at=utc(at), actor_id=user("leiar").id))


def test_approvals_per_month_count_each_decision_in_its_oslo_month(cases):
    """A post returned and then approved is two decisions; the days to a decision run from the last
    sending before it; a decision at 00:30 Oslo on 1 April (summer time) is April's."""
    a, b = cases
    twice = journal_post(a, "U")
    event(twice, "sent_to_approval", "2026-01-10 09:00")
    event(twice, "returned", "2026-01-12 09:00")  # 2 days
    event(twice, "sent_to_approval", "2026-01-20 09:00")
    event(twice, "approved", "2026-02-03 09:00")  # 14 days from the second sending
    quick = journal_post(a, "U")
    event(quick, "sent_to_approval", "2026-02-01 12:00")
    event(quick, "approved", "2026-02-02 12:00")  # 1 day
    late = journal_post(b, "U")
    event(late, "sent_to_approval", "2026-03-31 20:00")
    event(late, "returned", "2026-03-31 22:30")  # 2.5 hours, at 00:30 Oslo on 1 April
    db.session.commit()
    figure = records.approvals_by_month(SPRING)
    assert figure.key == "approvals-month"
    assert figure.rows == [("2026-01", 0, 1, 100.0, 2.0), ("2026-02", 2, 0, 0.0, 7.5),
                           ("2026-03", 0, 0, None, None), ("2026-04", 0, 1, 100.0, 0.1)]
    barnehage = records.approvals_by_month(Filters(SPRING.period, team("Team barnehage")))
    assert barnehage.rows == [("2026-01", 0, 1, 100.0, 2.0), ("2026-02", 2, 0, 0.0, 7.5),
                              ("2026-03", 0, 0, None, None), ("2026-04", 0, 0, None, None)]


def test_a_post_returned_and_then_approved_through_the_service_is_two_decisions(ctx):
    """The events approval.py writes are the ones the figure reads."""
    draft = builders.post(builders.case("radgjevar1"), post_type="U", title="Brev", correspondent="Skulen")
    approval.send_for_approval(user("radgjevar1"), draft.id, user("leiar").id)
    approval.return_for_changes(user("leiar"), draft.id, "Rett namnet")
    approval.send_for_approval(user("radgjevar1"), draft.id, user("leiar").id)
    approval.approve(user("leiar"), draft.id)
    today = clock.today()
    figure = records.approvals_by_month(Filters(Period(today.replace(day=1), today, "month")))
    assert figure.rows == [(today.strftime("%Y-%m"), 1, 1, 50.0, 0.0)]


def job(case, day: str, archive: ArchiveStatus = ArchiveStatus.ARCHIVED, status: JobStatus = JobStatus.DONE,
        event_name: str = "case_created", post=None, done: str | None = None, deleted: bool = False,
        code: str | None = None, message: str = "", **params) -> ArchiveJob:
    """An archive job as the outbox writes it: a post's job in the transaction that finalized the post."""
    values = message_values(code, **params) if code else {"message": message}
    if post is not None and post.finalized_at is not None:
        values["created_at"] = post.finalized_at
    row = ArchiveJob(event=event_name, operation="opprett", case_id=case.id, post_id=post.id if post else None,
                     finalized_on=date.fromisoformat(day), archive_status=archive, job_status=status,
                     done_at=utc(done) if done else None, deleted_at=clock.utcnow() if deleted else None,
                     **values)
    db.session.add(row)
    return row


@pytest.fixture
def archive(cases):
    """March 2026 (1 March is a Sunday: week 9; 31 March a Tuesday: week 14)."""
    a, _b = cases
    first = journal_post(a, "N", status=PostStatus.FINALIZED, finalized_at=utc("2026-03-01 10:00"))
    last = journal_post(a, "N", status=PostStatus.FINALIZED, finalized_at=utc("2026-03-31 21:00"))
    job(a, "2026-03-01", event_name="post_finalized", post=first, done="2026-03-01 10:02")  # 2 minutes
    failed = dict(archive=ArchiveStatus.FAILED)
    job(a, "2026-03-02", code="gave_up", limit=5, detail="Fant ikkje Ola Nordmann i arkivet", **failed)
    job(a, "2026-03-02", code="gave_up", limit=5, detail="Tidsavbrot", **failed)
    job(a, "2026-03-03", message=message_values("refused_silently")["message"], **failed)  # no code, a fixed text
    job(a, "2026-03-03", message="Kari Nordmann er ukjend", **failed)  # no code, not a fixed text
    job(a, "2026-03-04", ArchiveStatus.NEW, JobStatus.NEW)
    job(a, "2026-03-04", ArchiveStatus.NEW, JobStatus.IN_PROGRESS)
    job(a, "2026-03-05", code="retry_later", attempt=2, limit=5, detail="Kari", time="10:00",
        archive=ArchiveStatus.FAILED, status=JobStatus.IN_PROGRESS)  # failed, being tried again: an error
    job(a, "2026-03-05", done="2026-03-05 10:00")  # archived, but not a post: not in the time to Arkivert
    job(a, "2026-03-10", deleted=True)
    job(a, "2026-03-10", code="gave_up", limit=5, detail="Per", deleted=True, **failed)
    job(a, "2026-03-31", event_name="post_finalized", post=last, done="2026-03-31 22:00")  # 60 minutes
    job(a, "2026-04-01", done="2026-04-01 10:00")  # after the period
    job(a, "2026-02-28", **failed)  # before it
    db.session.commit()


def test_archive_jobs_by_status_with_deleted_ones_on_their_own(archive):
    figure = records.archive_status(MARCH)
    assert figure.key == "archive-status" and figure.scope == "service"
    assert figure.rows == [("New", 1), ("In progress", 1), ("Archived", 3), ("Error", 5), ("Deleted", 2)]
    assert records.archive_status(Filters(MARCH.period, team("Team skule"))).rows == figure.rows  # the whole service


def test_archive_error_rate_per_iso_week(archive):
    """Every week the period touches is a row, whole: week 9 (23 February to 1 March) has the failed job of
    28 February too, week 14 (30 March to 5 April) the job of 1 April. Deleted jobs are not counted; a week
    with no jobs has no rate."""
    figure = records.archive_errors_by_week(MARCH)
    assert figure.key == "archive-errors" and figure.scope == "service"
    assert figure.rows == [("2026-W09", 2, 1, 50.0), ("2026-W10", 8, 5, 62.5), ("2026-W11", 0, 0, None),
                           ("2026-W12", 0, 0, None), ("2026-W13", 0, 0, None), ("2026-W14", 2, 0, 0.0)]


def test_a_weeks_archive_errors_are_the_same_whatever_period_shows_them(archive):
    """Week 9 ends February's rows and begins March's; week 14 ends March's and begins April's."""
    february = records.archive_errors_by_week(Filters(Period(date(2026, 2, 1), date(2026, 2, 28), "month")))
    march = records.archive_errors_by_week(MARCH)
    april = records.archive_errors_by_week(Filters(Period(date(2026, 4, 1), date(2026, 4, 30), "month")))
    assert february.rows[-1] == march.rows[0] == ("2026-W09", 2, 1, 50.0)
    assert march.rows[-1] == april.rows[0] == ("2026-W14", 2, 0, 0.0)


def test_commonest_archive_messages_leave_out_their_values(archive):
    """Grouped by the message's code and shown in the reader's language without the values (a name could
    be one); a job without a code by its text only when it is one of the fixed texts, else "Other message"."""
    figure = records.archive_top_errors(MARCH)
    assert figure.key == "archive-messages" and figure.scope == "service"
    assert figure.rows == [("Gave up after … attempts: … Retry when the fault is fixed.", 2),
                           ("The archive refused the message.", 1),
                           ("Attempt … of … failed: … Next attempt at …", 1),
                           ("Other message", 1)]
    assert not any(name in str(figure.rows) for name in ("Ola", "Kari", "Per", "Nordmann", "Tidsavbrot"))


@pytest.mark.parametrize("language", ["en", "nn", "nb"])
def test_a_left_out_value_never_doubles_a_full_stop(ctx, language):
    """A value at the end of a sentence ("…: %(detail)s. Retry") is shown as "…", which ends the sentence
    itself: never "…." nor "..", in any language."""
    with force_locale(language):
        texts = {code: records._message_text(code) for code in MESSAGES}
    assert texts["gave_up"].count("…") == 2
    for code, text in texts.items():
        assert "…." not in text and ".." not in text, (code, text)
    assert texts["waiting"].endswith("…).")  # a stop after a bracket stays


def test_time_from_finalized_to_archived_per_month(archive):
    figure = records.archive_latency(MARCH)
    assert figure.key == "archive-latency" and figure.scope == "service"
    assert figure.rows == [("2026-03", 2, 31.0, 57.1)]  # PERCENTILE.INC of 2 and 60 minutes
    assert records.archive_latency(SPRING).rows == [("2026-01", 0, None, None), ("2026-02", 0, None, None),
                                                    ("2026-03", 2, 31.0, 57.1), ("2026-04", 0, None, None)]


def test_time_to_archived_percentiles_over_every_job(cases):
    """PERCENTILE.INC over one number per job: of 1, 2, 3, 4, 10, 20 and 100 minutes the median is 4 and
    the 95th percentile lies 70 % of the way from 20 to 100."""
    a, _b = cases
    for minutes in (10, 1, 100, 3, 20, 2, 4):
        post = journal_post(a, "N", status=PostStatus.FINALIZED, finalized_at=utc("2026-01-20 08:00"))
        job(a, "2026-01-20", event_name="post_finalized", post=post,
            done=(utc("2026-01-20 08:00") + timedelta(minutes=minutes)).isoformat()[:16])
    db.session.commit()
    assert records.archive_latency(SPRING).rows[0] == ("2026-01", 7, 4.0, 76.0)


def test_a_finalized_posts_archive_job_is_written_with_it(ctx):
    """The time to Arkivert counts from the job's creation: the post's finalizing, in the same transaction."""
    post = builders.finalized_post(builders.case("radgjevar1"))
    written = db.session.scalar(select(ArchiveJob.created_at).where(ArchiveJob.post_id == post.id,
                                                                    ArchiveJob.event == "post_finalized"))
    assert written is not None and post.finalized_at is not None
    assert abs((written - post.finalized_at).total_seconds()) < 1


def test_dispatches_by_status_every_status_a_row(cases):
    a, _b = cases
    letter = journal_post(a, "U")
    made = [(DispatchStatus.PENDING, "2026-01-05 10:00"), (DispatchStatus.SENT, "2026-02-05 10:00"),
            (DispatchStatus.SENT, "2026-04-30 21:30"), (DispatchStatus.CONFIRMED, "2026-03-05 10:00"),
            (DispatchStatus.FAILED, "2026-03-06 10:00"), (DispatchStatus.MANUAL, "2026-03-07 10:00"),
            (DispatchStatus.REPLACED, "2026-03-08 10:00"),
            (DispatchStatus.FAILED, "2026-04-30 22:30"),  # 00:30 Oslo on 1 May: after the period
            (DispatchStatus.CONFIRMED, "2025-12-31 22:30")]  # 23:30 Oslo on 31 December: before it
    for status, at in made:
        db.session.add(Dispatch(post_id=letter.id, external_ref=str(uuid.uuid4()), recipient_kind="organisation",
                                recipient_name="Skulen", recipient_id="123456789", address_line1="Vegen 1",
                                postal_code="6065", city="Ulsteinvik", status=status, created_by_id=a.handler_id,
                                created_at=utc(at)))
    db.session.commit()
    figure = records.dispatches_by_status(SPRING)
    assert figure.key == "dispatches" and figure.scope == "service"
    assert figure.rows == [("Waiting to be sent", 1), ("Sent", 2), ("Delivered", 1), ("Failed", 1),
                           ("Handled manually at SvarUt", 1), ("Replaced by a new attempt", 1)]


def test_totals_and_shares_are_marked_derived_so_a_csv_cannot_give_a_small_count_away(ctx):
    """A total or a share beside a hidden small count would give it away: they say they are made from the
    row's counts; the counts, the medians and the times are not."""
    derived = {figure.key: [c.key for c in figure.columns if c.derived]
               for figure in (make(MARCH) for make in records.FIGURES)}
    assert derived == {"documents-type": ["total"], "documents-channel": ["total"], "approvals-waiting": [],
                       "approvals-month": ["returned_share"], "archive-status": [], "archive-errors": ["rate"],
                       "archive-messages": [], "archive-latency": [], "dispatches": []}


def test_an_empty_period_gives_every_row_with_zeros(ctx):
    """Nothing registered, decided, archived or dispatched: every figure still has its rows, with 0 or no value."""
    for make in records.FIGURES:
        figure = make(MARCH)
        assert figure.rows or figure.key == "archive-messages", figure.key
        for row in figure.rows:
            assert all(cell in (0, None) for cell, col in zip(row, figure.columns, strict=True)
                       if col.kind != "label"), (figure.key, row)
    assert records.archive_top_errors(MARCH).rows == []
