"""The figures about documents, approvals, the archive and dispatches (docs/statistics.md)."""
from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import Integer, Select, String, and_, case, cast, exists, func, literal, select, type_coerce, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import FunctionElement

from .. import clock
from ..archive.job_messages import MESSAGES
from ..clock import OSLO
from ..extensions import db
from ..i18n import catalog, labels
from ..models import ArchiveJob, ArchiveStatus, Case, JobStatus, JournalPost, PostEvent, PostStatus, PostType
from ..models.base import rare, unindexed
from ..models.dispatch import Dispatch, DispatchStatus
from ..models.inbox import InboxItem, InboxSource
from .figures import (
    Chart,
    Column,
    Figure,
    Filters,
    Period,
    day_month_key,
    month_key,
    percentile,
    seconds_between,
    team_clause,
)

DAY = 86400.0
POST_TYPES = tuple(t.value for t in PostType)  # I, U, N, X
APP = "app"  # a post no inbox item was filed as: a letter or a file added on the case
CHANNELS = (*(s.value for s in InboxSource), APP)  # scan, svarinn, upload, app
WAITING_BANDS = ((0, 3), (3, 7), (7, 14), (14, None))  # days waited: [from, to)
ARCHIVE_STATES = ("new", "in_progress", "archived", "failed", "deleted")
TOP_MESSAGES = 10
OTHER = "other"


class oslo_month_bucket(FunctionElement):
    """What a UTC datetime column is grouped by to count it per Oslo month, cheaply: on PostgreSQL the
    Oslo month itself (month_key); on SQLite the UTC month ('YYYY-MM'), except for 22:00-24:00 UTC on the
    28th and later, given to the hour ('YYYY-MM-DD HH'), which _month() places. Oslo is one or two hours
    ahead of UTC, so only those hours of a month's last day can be in the next Oslo month; the rest need
    no date function per row (month_key's strftime costs more than the counting on ten years of posts)."""

    type = String()
    inherit_cache = True


@compiles(oslo_month_bucket)
def _bucket_sqlite(element, compiler, **kw):
    col = compiler.process(list(element.clauses)[0], **kw)  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'
    return (f"CASE WHEN substr({col}, 9, 2) >= '28' AND substr({col}, 12, 2) >= '22' "
            f"THEN substr({col}, 1, 13) ELSE substr({col}, 1, 7) END")


@compiles(oslo_month_bucket, "postgresql")
def _bucket_pg(element, compiler, **kw):
    return compiler.process(month_key(*element.clauses), **kw)


def _month(bucket: str) -> str:
    """The Oslo month of an oslo_month_bucket value."""
    if len(bucket) == 7:
        return bucket
    return datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(OSLO).strftime("%Y-%m")


def _by_team(stmt: Select, f: Filters, case_id) -> Select:
    """The team filter on a statement over posts or events: the case's handler is in the team now."""
    if f.team_id is None:
        return stmt
    return stmt.join(Case, Case.id == case_id).where(team_clause(f.team_id))


def _rows(stmt):
    """The rows of a statement as plain tuples (no ORM loading: some figures read a row per job)."""
    return db.session.connection().execute(stmt)


def _month_rows(f: Filters, counts: dict[tuple[str, str], int], keys: tuple[str, ...]) -> list[tuple]:
    """A row per month of the period: the month, a count per key, the total."""
    rows = []
    for month in f.period.months():
        values = [counts.get((month, key), 0) for key in keys]
        rows.append((month, *values, sum(values)))
    return rows


def documents_by_type(f: Filters) -> Figure:
    """key "documents-type": posts registered per month (registered_at, Oslo month) by post type I, U,
    N, X, and a total. Chart: stacked."""
    start, end = f.period.utc_bounds()
    month = oslo_month_bucket(JournalPost.registered_at)
    stmt = (select(month, JournalPost.post_type, func.count())
            .where(JournalPost.registered_at >= start, JournalPost.registered_at < end)
            .group_by(month, JournalPost.post_type))
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for m, t, n in _rows(_by_team(stmt, f, JournalPost.case_id)):
        counts[_month(m), PostType(t).value] += n
    names = labels()["post_type_labels"]
    return Figure(
        key="documents-type", title=_("Documents registered per month, by type"),
        columns=[Column("month", _("Month"), "label"), *(Column(t, names[t]) for t in POST_TYPES),
                 Column("total", _("Total"), derived=True)],
        rows=_month_rows(f, counts, POST_TYPES),
        chart=Chart("stacked", "month", POST_TYPES, unit=_("documents")),
        note=_("Journal posts by the month they were registered (Norwegian time), drafts included."))


def documents_by_channel(f: Filters) -> Figure:
    """key "documents-channel": the same posts per month by how they came: scan, SvarInn, upload to the
    inbox (InboxItem.source of the item filed as the post), or made in the app (no inbox item: a letter
    or a file added on the case). Chart: stacked."""
    start, end = f.period.utc_bounds()
    month = oslo_month_bucket(JournalPost.registered_at)
    # The first inbox item filed as the post names its channel: a post counts once, however many items
    # went into it. (A join, not a subquery per post: PostgreSQL hashes the items once.)
    earlier = aliased(InboxItem)
    first = and_(InboxItem.post_id == JournalPost.id,
                 ~exists().where(earlier.post_id == InboxItem.post_id, earlier.id < InboxItem.id))
    channel = func.coalesce(type_coerce(InboxItem.source, String), literal(APP))
    stmt = (select(month, channel, func.count()).select_from(JournalPost).outerjoin(InboxItem, first)
            .where(JournalPost.registered_at >= start, JournalPost.registered_at < end)
            .group_by(month, channel))
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for m, c, n in _rows(_by_team(stmt, f, JournalPost.case_id)):
        counts[_month(m), c] += n
    names = {**labels()["inbox_source_labels"], APP: _("Made in the app")}
    return Figure(
        key="documents-channel", title=_("Documents registered per month, by how they came"),
        columns=[Column("month", _("Month"), "label"), *(Column(c, names[c]) for c in CHANNELS),
                 Column("total", _("Total"), derived=True)],
        rows=_month_rows(f, counts, CHANNELS),
        chart=Chart("stacked", "month", CHANNELS, unit=_("documents")),
        note=_("The same journal posts by how they came: filed from the post registration inbox (scanned "
               "paper, SvarInn, uploaded by hand) or made in the app (a letter, or a file added on the case)."))


def _band_label(low: int, high: int | None) -> str:
    if low == 0:
        return _("Under %(days)s days", days=high)
    if high is None:
        return _("Over %(days)s days", days=low)
    return _("%(low)s–%(high)s days", low=low, high=high)


def approvals_waiting(f: Filters) -> Figure:
    """key "approvals-waiting": posts waiting for approval now, by how long they have waited (under 3
    days, 3-7, 7-14, over 14) and the oldest. Chart: bar."""
    now = clock.utcnow()
    requested = JournalPost.approval_requested_at
    band = case(*((requested > now - timedelta(days=high), index)
                  for index, (_low, high) in enumerate(WAITING_BANDS) if high is not None),
                else_=len(WAITING_BANDS) - 1)
    stmt = (select(band, func.count(), func.min(requested))
            .where(JournalPost.status == PostStatus.AWAITING_APPROVAL, requested.is_not(None))
            .group_by(band))
    found = {index: (n, oldest) for index, n, oldest in _rows(_by_team(stmt, f, JournalPost.case_id))}
    rows = []
    for index, (low, high) in enumerate(WAITING_BANDS):
        n, oldest = found.get(index, (0, None))
        age = round((now - oldest).total_seconds() / DAY, 1) if oldest is not None else None
        rows.append((_band_label(low, high), n, age))
    return Figure(
        key="approvals-waiting", title=_("Posts waiting for approval now"),
        columns=[Column("band", _("Waited"), "label"), Column("count", _("Posts")),
                 Column("oldest", _("Oldest (days)"), "days")],
        rows=rows, chart=Chart("bar", "band", ("count",), unit=_("posts")),
        note=_("Posts sent for approval and not yet approved or returned, by how long they have waited "
               "since they were sent. The last column is how long the oldest of each row has waited."))


def approvals_by_month(f: Filters) -> Figure:
    """key "approvals-month": per month of the period, decisions (approved, returned), the returned share
    in percent and the median days from sent for approval to the decision. Chart: grouped."""
    start, end = f.period.utc_bounds()
    sent = PostEvent.__table__.alias("sent")
    # The post's last "sent to approval" before the decision: a post returned and sent again is timed
    # from its second sending.
    sent_at = (select(func.max(sent.c.at))
               .where(sent.c.post_id == PostEvent.post_id, sent.c.kind == "sent_to_approval", sent.c.at <= PostEvent.at)
               .correlate(PostEvent).scalar_subquery())
    month = month_key(PostEvent.at)
    stmt = (select(month, PostEvent.kind, seconds_between(PostEvent.at, sent_at))
            .where(PostEvent.kind.in_(("approved", "returned")), PostEvent.at >= start, PostEvent.at < end))
    if f.team_id is not None:
        stmt = _by_team(stmt.join(JournalPost, JournalPost.id == PostEvent.post_id), f, JournalPost.case_id)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    durations: dict[str, list[float]] = defaultdict(list)
    for m, kind, seconds in _rows(stmt):  # one row per decision: the median needs each
        counts[m, kind] += 1
        if seconds is not None:
            durations[m].append(float(seconds) / DAY)
    rows = []
    for m in f.period.months():
        approved, returned = counts[m, "approved"], counts[m, "returned"]
        decided = approved + returned
        share = round(100.0 * returned / decided, 1) if decided else None
        median = percentile(durations[m], 0.5)
        rows.append((m, approved, returned, share, None if median is None else round(median, 1)))
    return Figure(
        key="approvals-month", title=_("Approval decisions per month"),
        columns=[Column("month", _("Month"), "label"), Column("approved", _("Approved")),
                 Column("returned", _("Returned")),
                 Column("returned_share", _("Returned (%)"), "percent", derived=True),
                 Column("median_days", _("Median days to decision"), "days")],
        rows=rows, chart=Chart("grouped", "month", ("approved", "returned"), unit=_("decisions")),
        note=_("Approvals and returns by the month of the decision. A post returned and then approved counts "
               "twice. Days run from when the post was last sent for approval to the decision."))


def _in_period(f: Filters, indexed: bool = True) -> tuple:
    """The jobs of the period by their log date. indexed=False: by another index (the few failed or
    deleted jobs), not by reading every job of the period."""
    day = ArchiveJob.finalized_on if indexed else unindexed(ArchiveJob.finalized_on)
    return day >= f.period.first, day <= f.period.last


def _per_day(f: Filters) -> dict[date, int]:
    """Jobs per log date, deleted ones included: read from the date index alone."""
    day = ArchiveJob.finalized_on
    return {_day(d): n for d, n in _rows(select(day, func.count()).where(*_in_period(f)).group_by(day))}


def _exceptions(f: Filters):
    """The jobs of the period that are not simply archived, with the row they count in: the failed and
    waiting ones (by the archive status index; rare() tells SQLite they are few) and the deleted ones (by
    their partial index). One statement; the rest of the period's jobs are archived."""
    waiting = (select(ArchiveJob.finalized_on.label("day"),
                      case((ArchiveJob.archive_status == ArchiveStatus.FAILED, literal("failed")),
                           (ArchiveJob.job_status == JobStatus.IN_PROGRESS, literal("in_progress")),
                           else_=literal("new")).label("state"))
               .where(rare(ArchiveJob.archive_status.in_((ArchiveStatus.NEW, ArchiveStatus.FAILED))),
                      ArchiveJob.deleted_at.is_(None), *_in_period(f, indexed=False)))
    deleted = (select(ArchiveJob.finalized_on.label("day"), literal("deleted").label("state"))
               .where(ArchiveJob.deleted_at.is_not(None), *_in_period(f, indexed=False)))
    both = union_all(waiting, deleted).subquery()
    return _rows(select(both.c.day, both.c.state, func.count()).group_by(both.c.day, both.c.state))


def archive_status(f: Filters) -> Figure:
    """key "archive-status": archive jobs of the period (finalized_on) by status: Ny, Under arbeid,
    Arkivert, Feil, deleted. scope "service". Chart: bar."""
    counts: dict[str, int] = defaultdict(int)
    for _d, state, n in _exceptions(f):
        counts[state] += n
    counts["archived"] = sum(_per_day(f).values()) - sum(counts.values())
    names = labels()
    shown = {"new": names["archive_status_labels"]["new"], "in_progress": names["job_status_labels"]["in_progress"],
             "archived": names["archive_status_labels"]["archived"], "failed": names["archive_status_labels"]["failed"],
             "deleted": _("Deleted")}
    return Figure(
        key="archive-status", title=_("Archive jobs by status"),
        columns=[Column("status", _("Status"), "label"), Column("count", _("Jobs"))],
        rows=[(shown[s], counts[s]) for s in ARCHIVE_STATES],
        chart=Chart("bar", "status", ("count",), unit=_("jobs")), scope="service",
        note=_("Archive jobs by the date in the archive log, and their status now. A job that failed and is "
               "being tried again counts as an error; deleted jobs are counted on their own."))


def _day(value) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(str(value)[:10])


def _week_key(day: date) -> str:
    year, week, _weekday = day.isocalendar()
    return f"{year}-W{week:02d}"


def _whole_weeks(f: Filters) -> Filters:
    """The period widened to whole ISO weeks: from the Monday on or before its first day to the Sunday on
    or after its last."""
    first = f.period.first - timedelta(days=f.period.first.weekday())
    last = f.period.last + timedelta(days=6 - f.period.last.weekday())
    return Filters(Period(first, last), f.team_id, f.threshold_days)


def archive_errors_by_week(f: Filters) -> Figure:
    """key "archive-errors": per ISO week the period touches, jobs, failed jobs and the error rate in
    percent. The first and the last week count whole (also their days outside the period), so a week's
    numbers are the same whatever period shows them. scope "service". Chart: line of the rate."""
    weeks = _whole_weeks(f)
    jobs: dict[str, int] = defaultdict(int)
    failed: dict[str, int] = defaultdict(int)
    for day, n in _per_day(weeks).items():  # counted per day in SQL, added up per week here
        jobs[_week_key(day)] += n
    for day, state, n in _exceptions(weeks):
        if state == "deleted":
            jobs[_week_key(_day(day))] -= n
        elif state == "failed":
            failed[_week_key(_day(day))] += n
    rows = []
    monday = weeks.period.first
    while monday <= weeks.period.last:
        week = _week_key(monday)
        rate = round(100.0 * failed[week] / jobs[week], 1) if jobs[week] else None
        rows.append((week, jobs[week], failed[week], rate))
        monday += timedelta(days=7)
    return Figure(
        key="archive-errors", title=_("Archive errors per week"),
        columns=[Column("week", _("Week"), "label"), Column("jobs", _("Jobs")), Column("failed", _("Failed")),
                 Column("rate", _("Error rate (%)"), "percent", derived=True)],
        rows=rows, chart=Chart("line", "week", ("rate",), unit="%"), scope="service",
        note=_("Per week (Monday to Sunday) of the date in the archive log: the jobs not deleted, how many of "
               "them have failed now, and that share. The first and the last week count whole, also their days "
               "outside the period."))


BLANK = "\ue000"  # where a value stood, until it is shown as "…" (a character no message holds)


class _Blank(dict):
    """Every value of a message left out: a value could name a person or a case."""

    def __missing__(self, key: str) -> str:
        return BLANK


def _blanked(text: str) -> str:
    """The message with each value shown as "…". A full stop right after a value goes: "…" ends the
    sentence itself ("failed: … Next attempt"), where "…." would read as a doubled stop."""
    return (text % _Blank()).replace(BLANK + ".", "…").replace(BLANK, "…")


def _fixed_texts() -> dict[str, str]:
    """The messages without values, in the service's default language (a job without a code keeps
    its text in that language), by their text."""
    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "nn")):
        return {catalog().ugettext(text): code for code, text in MESSAGES.items() if "%(" not in text}


def _message_text(code: str) -> str:
    if code == OTHER:
        return _("Other message")
    if MESSAGES[code] == "%(detail)s":  # nothing but the archive's own words, which are left out
        return _("The archive refused the message (its reason left out).")
    return _blanked(catalog().ugettext(MESSAGES[code]))


def archive_top_errors(f: Filters) -> Figure:
    """key "archive-messages": the ten commonest messages of failed jobs of the period, in the reader's
    language, without the values that could name a person. scope "service". Chart: bar."""
    legacy = case((ArchiveJob.message_code.is_(None), ArchiveJob.message), else_=literal(""))
    stmt = (select(ArchiveJob.message_code, legacy, func.count())
            .where(ArchiveJob.archive_status == ArchiveStatus.FAILED, ArchiveJob.deleted_at.is_(None),
                   *_in_period(f, indexed=False))
            .group_by(ArchiveJob.message_code, legacy))
    fixed = _fixed_texts()
    counts: dict[str, int] = defaultdict(int)
    for code, message, n in _rows(stmt):
        key = code if code in MESSAGES else fixed.get((message or "").strip(), OTHER) if code is None else OTHER
        counts[key] += n
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] == OTHER, kv[0]))[:TOP_MESSAGES]
    return Figure(
        key="archive-messages", title=_("Commonest messages of failed archive jobs"),
        columns=[Column("message", _("Message"), "label"), Column("count", _("Jobs"))],
        rows=[(_message_text(key), n) for key, n in ranked],
        chart=Chart("bar", "message", ("count",), unit=_("jobs")), scope="service",
        note=_("The failed jobs of the period by their message, the ten commonest. Names, numbers and the "
               "archive's own words in a message are left out (shown as …)."))


def archive_latency(f: Filters) -> Figure:
    """key "archive-latency": per month, posts archived and the minutes from finalized to Arkivert,
    p50 and p95. scope "service". Chart: line."""
    month = day_month_key(ArchiveJob.finalized_on)
    # From finalized: the job is written in the finalizing transaction (the outbox), so its created_at is
    # the post's finalized_at to the millisecond, and no join to the posts is needed (it cost 90 % of the
    # time on PostgreSQL). Each job's time to the second, counted per month and second in SQL: a few
    # hundred rows a year come back instead of one per job.
    seconds = cast(func.round(seconds_between(ArchiveJob.done_at, ArchiveJob.created_at)), Integer)
    stmt = (select(month, seconds, func.count())
            .where(*_in_period(f), ArchiveJob.event == "post_finalized", ArchiveJob.deleted_at.is_(None),
                   ArchiveJob.archive_status == ArchiveStatus.ARCHIVED, ArchiveJob.done_at.is_not(None))
            .group_by(month, seconds))
    minutes: dict[str, list[float]] = defaultdict(list)
    for m, value, n in _rows(stmt):
        minutes[m].extend([max(value, 0) / 60.0] * n)  # one number per job again, for percentile()

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    rows = [(m, len(minutes[m]), rounded(percentile(minutes[m], 0.5)), rounded(percentile(minutes[m], 0.95)))
            for m in f.period.months()]
    return Figure(
        key="archive-latency", title=_("Time from finalized to archived"),
        columns=[Column("month", _("Month"), "label"), Column("archived", _("Posts archived")),
                 Column("p50", _("Median (minutes)"), "minutes"), Column("p95", _("95th percentile (minutes)"),
                                                                          "minutes")],
        rows=rows, chart=Chart("line", "month", ("p50", "p95"), unit=_("minutes")), scope="service",
        note=_("Finalized journal posts now archived, by the month of the date in the archive log: minutes from "
               "when the post was finalized until the archive's receipt."))


def dispatches_by_status(f: Filters) -> Figure:
    """key "dispatches": SvarUt dispatches made in the period by status. scope "service". Chart: bar."""
    start, end = f.period.utc_bounds()
    counts = {DispatchStatus(s).value: n for s, n in _rows(
        select(Dispatch.status, func.count()).where(and_(Dispatch.created_at >= start, Dispatch.created_at < end))
        .group_by(Dispatch.status))}
    names = labels()["dispatch_status_labels"]
    return Figure(
        key="dispatches", title=_("SvarUt dispatches by status"),
        columns=[Column("status", _("Status"), "label"), Column("count", _("Dispatches"))],
        rows=[(names[s.value], counts.get(s.value, 0)) for s in DispatchStatus],
        chart=Chart("bar", "status", ("count",), unit=_("dispatches")), scope="service",
        note=_("Letters sent through SvarUt in the period, one per recipient, by their status now. A failed "
               "dispatch that was tried again counts as replaced, and its new attempt counts on its own."))


FIGURES = (documents_by_type, documents_by_channel, approvals_waiting, approvals_by_month, archive_status,
           archive_errors_by_week, archive_top_errors, archive_latency, dispatches_by_status)
