"""The archive log page's queries, and the header's alerts about stuck or failed jobs."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import ColumnElement, Row, Text, and_, bindparam, cast, func, or_, select, tuple_

from .. import runtime_settings
from ..clock import utcnow
from ..extensions import db
from ..fiksio.settings import SettingsError
from ..models import ArchiveJob, ArchiveStatus, Case, Client, JobStatus, JournalPost, Organisation
from ..models.base import unindexed
from . import transports
from .message import EVENTS


@dataclass
class LogFilter:
    status: str = ""  # new | in_progress | done | failed | archived
    event: str = ""
    date_from: date | None = None
    date_to: date | None = None
    client: str = ""  # a client's name (prefix); digits are dropped, so no national id is kept or linked

    def __post_init__(self) -> None:
        self.client = "".join(c for c in self.client if not c.isdigit()).strip()

    def clauses(self, by_failed: bool = False) -> list:
        """The filter's conditions. by_failed: for the failed jobs' queries, which should read the
        index of the (few) failed jobs, not every job of a common name or of a month."""
        col = unindexed if by_failed else (lambda column: column)
        out: list[ColumnElement[bool]]
        if self.status == "deleted":  # the soft-deleted jobs, to look at or restore
            out = [ArchiveJob.deleted_at.is_not(None)]
        else:
            out = [ArchiveJob.deleted_at.is_(None)]
        if self.status in (JobStatus.NEW, JobStatus.IN_PROGRESS, JobStatus.DONE):
            out.append(col(ArchiveJob.job_status) == self.status)
        elif self.status in (ArchiveStatus.FAILED, ArchiveStatus.ARCHIVED):
            out.append(ArchiveJob.archive_status == self.status)
        if self.event in EVENTS:
            out.append(col(ArchiveJob.event) == self.event)
        if self.date_from:
            out.append(col(ArchiveJob.finalized_on) >= self.date_from)
        if self.date_to:
            out.append(col(ArchiveJob.finalized_on) <= self.date_to)
        text = self.client.lower()  # names only (__post_init__): no ids here
        if text:
            ids = select(Client.id).where(or_(and_(Client.name_lower >= text, Client.name_lower < text + "\uffff"),
                                              and_(Client.family_lower >= text, Client.family_lower < text + "\uffff")))
            out.append(col(ArchiveJob.client_id).in_(ids))
        return out


PAGE = 50
FAILED_LIMIT = 500

# What a row of the log shows, for a list of job ids: the job's columns and what the row names (the case's
# number, the post's number, the client's name, the organisation). Built once: a statement of this size
# cost more to build per page than to run. Every value a row shows is a column here, so that a row's HTML
# is a function of its row (archive/routes.py keeps finished jobs' rows).
_job = ArchiveJob.__table__
_case = Case.__table__.alias("job_case")
_post_case = Case.__table__.alias("post_case")
_organisation = Organisation.__table__.alias("case_organisation")
_post = JournalPost.__table__.alias("job_post")
_client = Client.__table__.alias("job_client")
_SHOWN = (
    select(_job.c.id, _job.c.event, _job.c.job_status, _job.c.archive_status, _job.c.message, _job.c.message_code,
           cast(_job.c.message_params, Text).label("message_params_json"), _job.c.finalized_on, _job.c.deleted_at,
           _job.c.deleted_reason, _job.c.case_id, _job.c.post_id, _job.c.client_id,
           _case.c.number.label("case_number"), _organisation.c.name.label("organisation_name"),
           _post.c.seq.label("post_seq"), _post_case.c.number.label("post_case_number"),
           _client.c.given_name.label("client_given_name"), _client.c.family_name.label("client_family_name"))
    .select_from(_job.join(_case, _case.c.id == _job.c.case_id)
                 .outerjoin(_organisation, _organisation.c.id == _case.c.organisation_id)
                 .outerjoin(_post, _post.c.id == _job.c.post_id)
                 .outerjoin(_post_case, _post_case.c.id == _post.c.case_id)
                 .outerjoin(_client, _client.c.id == _job.c.client_id))
    .where(_job.c.id.in_(bindparam("ids", expanding=True))))


def job_rows(job_ids: list[int]) -> list[Row]:
    """The log's rows of these jobs, in this order: the page's, and the one row an action re-renders."""
    if not job_ids:
        return []
    found = {row.id: row for row in db.session.execute(_SHOWN, {"ids": job_ids})}
    return [found[job_id] for job_id in job_ids if job_id in found]


def _ids(where: list, order: tuple, limit: int) -> list[int]:
    # The page's ids on archive_job alone, then its rows by id: joined before the limit, SQLite joined and
    # sorted every job of a common family name (and read each one's snapshot) to keep 50.
    return list(db.session.scalars(select(ArchiveJob.id).where(*where).order_by(*order).limit(limit)))


def log_page(flt: LogFilter, before_id: int | None = None) -> dict:
    """Failed jobs always on top (all of them, whatever their date), then the rest newest first,
    paged by keyset so that page 1000 costs what page 1 costs.

    Newest first is by id; with a date filter it is by finalized date, then id: that order walks
    the date index and stops after a page, where ordering a month of jobs by id sorted them all.
    The "Older" link carries the last job's id either way (its date is looked up)."""
    failed = [] if before_id else _ids(
        [*flt.clauses(by_failed=True), ArchiveJob.archive_status == ArchiveStatus.FAILED],
        (ArchiveJob.id.desc(),), FAILED_LIMIT)
    where = [*flt.clauses(), ArchiveJob.archive_status != ArchiveStatus.FAILED]
    dated = flt.date_from is not None or flt.date_to is not None
    if before_id:
        day = db.session.scalar(select(ArchiveJob.finalized_on).where(ArchiveJob.id == before_id)) if dated else None
        if day is not None:
            where.append(tuple_(ArchiveJob.finalized_on, ArchiveJob.id) < tuple_(day, before_id))
        else:
            where.append(ArchiveJob.id < before_id)
    order = (ArchiveJob.finalized_on.desc(), ArchiveJob.id.desc()) if dated else (ArchiveJob.id.desc(),)
    rest = _ids(where, order, PAGE + 1)
    more = len(rest) > PAGE
    rest = rest[:PAGE]
    rows = job_rows(failed + rest)
    return {"failed": rows[:len(failed)], "rows": rows[len(failed):], "next_before": rest[-1] if more else None}


def alerts() -> dict:
    """Jobs stuck in Under arbeid, or failed, for longer than the alert time (cf. SvarInn's 2 h)."""
    minutes = int(runtime_settings.value("alerts.archive_minutes"))
    limit = utcnow() - timedelta(minutes=minutes)
    stuck = db.session.scalar(select(func.count()).select_from(ArchiveJob).where(
        ArchiveJob.deleted_at.is_(None), ArchiveJob.job_status == JobStatus.IN_PROGRESS,
        ArchiveJob.created_at < limit)) or 0
    failing = db.session.scalar(select(func.count()).select_from(ArchiveJob).where(
        ArchiveJob.deleted_at.is_(None), ArchiveJob.archive_status == ArchiveStatus.FAILED,
        ArchiveJob.created_at < limit)) or 0
    return {"stuck": stuck, "failing": failing, "total": stuck + failing, "minutes": minutes}


def archive_copy(case) -> dict:
    """What the archive holds for a case (local archive), and what our jobs say was archived."""
    jobs = list(db.session.scalars(select(ArchiveJob).where(ArchiveJob.case_id == case.id,
                                                            ArchiveJob.deleted_at.is_(None)).order_by(ArchiveJob.id)))
    try:
        transport: object = transports.get_transport()
    except SettingsError:  # Fiks IO set up wrong: /readyz says what; the page shows our side
        transport = None
    messages = []
    if hasattr(transport, "messages_for"):
        keys = [f"case:{case.id}"] + [f"post:{p.id}" for p in case.posts]
        seen = set()
        for key in keys:
            for meta in transport.messages_for(key):
                if meta["klientmelding_id"] not in seen:
                    seen.add(meta["klientmelding_id"])
                    messages.append(meta)
        messages.sort(key=lambda m: m["mottatt"])
    return {"jobs": jobs, "messages": messages, "browsable": hasattr(transport, "messages_for")}
