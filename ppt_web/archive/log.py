"""The archive log page's queries, and the header's alerts about stuck or failed jobs."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, tuple_
from sqlalchemy.orm import joinedload

from .. import runtime_settings
from ..clock import utcnow
from ..extensions import db
from ..fiksio.settings import SettingsError
from ..models import ArchiveJob, ArchiveStatus, Case, Client, JobStatus
from ..models.base import unindexed
from . import transports
from .message import EVENTS


@dataclass
class LogFilter:
    status: str = ""  # new | in_progress | done | failed | archived
    event: str = ""
    date_from: date | None = None
    date_to: date | None = None
    client: str = ""  # a client's name (prefix)

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
        text = "".join(c for c in self.client if not c.isdigit()).strip().lower()  # names only: no ids here
        if text:
            ids = select(Client.id).where(or_(and_(Client.name_lower >= text, Client.name_lower < text + "\uffff"),
                                              and_(Client.family_lower >= text, Client.family_lower < text + "\uffff")))
            out.append(col(ArchiveJob.client_id).in_(ids))
        return out


PAGE = 50
# What a row names (the case's number, the post's number, the client or organisation), loaded with the
# page's own query: a page of 50 rows costs what a page of one costs.
ROW_NAMES = (joinedload(ArchiveJob.case, innerjoin=True).joinedload(Case.organisation),
             joinedload(ArchiveJob.post), joinedload(ArchiveJob.client))


def log_page(flt: LogFilter, before_id: int | None = None) -> dict:
    """Failed jobs always on top (all of them, whatever their date), then the rest newest first,
    paged by keyset so that page 1000 costs what page 1 costs.

    Newest first is by id; with a date filter it is by finalized date, then id: that order walks
    the date index and stops after a page, where ordering a month of jobs by id sorted them all.
    The "Older" link carries the last job's id either way (its date is looked up)."""
    failed = [] if before_id else list(db.session.scalars(
        select(ArchiveJob).options(*ROW_NAMES)
        .where(*flt.clauses(by_failed=True), ArchiveJob.archive_status == ArchiveStatus.FAILED)
        .order_by(ArchiveJob.id.desc()).limit(500)))
    rest_q = (select(ArchiveJob).options(*ROW_NAMES)
              .where(*flt.clauses(), ArchiveJob.archive_status != ArchiveStatus.FAILED))
    dated = flt.date_from is not None or flt.date_to is not None
    if before_id:
        day = db.session.scalar(select(ArchiveJob.finalized_on).where(ArchiveJob.id == before_id)) if dated else None
        if day is not None:
            rest_q = rest_q.where(tuple_(ArchiveJob.finalized_on, ArchiveJob.id) < tuple_(day, before_id))
        else:
            rest_q = rest_q.where(ArchiveJob.id < before_id)
    order = (ArchiveJob.finalized_on.desc(), ArchiveJob.id.desc()) if dated else (ArchiveJob.id.desc(),)
    rest = list(db.session.scalars(rest_q.order_by(*order).limit(PAGE + 1)))
    more = len(rest) > PAGE
    rest = rest[:PAGE]
    return {"failed": failed, "rows": rest, "next_before": rest[-1].id if more else None}


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
