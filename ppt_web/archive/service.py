"""Archive dispatch: claim a job, build and send its message, record the outcome; the sweep;
and the consultant's actions on the archive log (retry, bulk retry, delete).

The database row is the unit of work (DESIGN.md §2). A job is claimed by one conditional
UPDATE, so two workers or two sweeps never send it twice; Redis only says "look now".
"""
from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from rq.timeouts import BaseTimeoutException
from sqlalchemy import and_, func, or_, select, tuple_, update

from .. import claims
from ..activity import service as activity
from ..auth.access import require
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..models import ArchiveJob, ArchiveStatus, Client, JobStatus, User
from ..models.base import unindexed, utcnow
from . import transports
from .transports.files import FileMissing
from .message import MessageInvalid, build

log = logging.getLogger(__name__)
OSLO = ZoneInfo("Europe/Oslo")

OPERATION_NAMES = {  # the Operation column, as the archive calls it
    "case_created": "Opprett saksmappe",
    "case_closed": "Avslutt sak",
    "case_reopened": "Gjenopne sak",
    "post_finalized": "Arkiver journalpost",
    "metadata_corrected": "Rett metadata",
    "post_written_off": "Avskriv journalpost",
}


def worker_name() -> str:
    from rq import get_current_job

    job = get_current_job()
    return (job.worker_name if job is not None and job.worker_name else None) or socket.gethostname()


def claim(job_id: int, worker: str, now: datetime | None = None) -> bool:
    """Ny -> Under arbeid for exactly one claimant; the row count says who won."""
    now = now or utcnow()
    lease = timedelta(seconds=current_app.config["PPT_ARCHIVE_LEASE_SECONDS"])
    return claims.claim(
        ArchiveJob, job_id,
        [ArchiveJob.job_status == JobStatus.NEW, ArchiveJob.deleted_at.is_(None),
         or_(ArchiveJob.next_attempt_at.is_(None), ArchiveJob.next_attempt_at <= now)],
        dict(job_status=JobStatus.IN_PROGRESS, claimed_by=worker[:200], attempts=ArchiveJob.attempts + 1,
             lease_until=now + lease))


def process(job_id: int, worker: str | None = None) -> str:
    """Send one job if it is due and this worker wins the claim; returns what happened."""
    if not claim(job_id, worker or worker_name()):
        return "not claimed"
    job = db.session.get(ArchiveJob, job_id)
    db.session.refresh(job)
    waiting = _predecessor_blocks(job)
    if waiting:
        job.job_status, job.lease_until, job.claimed_by = JobStatus.NEW, None, None
        job.attempts = max(0, job.attempts - 1)  # waiting is not an attempt
        job.message = waiting
        job.next_attempt_at = utcnow() + timedelta(seconds=current_app.config["PPT_ARCHIVE_BACKOFF_SECONDS"])
        db.session.commit()
        return "waiting"
    try:
        message = build(job, current_app.config.get("PPT_ARCHIVE_SETTINGS"))
        transport = transports.get_transport()
        reply = transport.send(message, job.message_id)
    except MessageInvalid as exc:
        _finish(job, ArchiveStatus.FAILED, f"Meldinga er ikkje gyldig og vart ikkje sendt: {exc}")
        return "invalid message"
    except FileMissing as exc:
        _finish(job, ArchiveStatus.FAILED, f"Kunne ikkje sende: {exc}")
        return "file missing"
    except BaseTimeoutException:
        raise  # RQ's job timeout: the lease runs out and the sweep sets the job back to Ny
    except Exception as exc:  # noqa: BLE001 - a bug or a broken setup: visible on the log, not a silent loop
        log.exception("archive job %s failed inside the app", job_id)
        db.session.rollback()
        job = db.session.get(ArchiveJob, job_id)
        _finish(job, ArchiveStatus.FAILED, f"Intern feil i fagsystemet ({type(exc).__name__}). Sjå loggen; "
                "prøv på nytt når feilen er retta.")
        return "internal error"
    return apply_reply(job, reply, transport.asynchronous)


def apply_reply(job: ArchiveJob, reply: transports.Reply, asynchronous: bool = False) -> str:
    """The status mapping of SPEC §10, and the message column in plain Nynorsk."""
    failed_parts = [part.get("feilet") for part in (reply.ids or {}).values()
                    if isinstance(part, dict) and part.get("feilet")]
    if reply.kind == transports.OK and failed_parts:
        _finish(job, ArchiveStatus.FAILED, "Arkivet tok imot meldinga, men avviste ein del av ho: "
                + "; ".join(failed_parts))
        return "failed"
    if reply.kind == transports.OK:
        job.archive_ref = reply.ids or {}
        _finish(job, ArchiveStatus.ARCHIVED, "Arkivert." + describe_ids(reply.ids or {}))
        _wake_successors(job)
        return "archived"
    if reply.kind == transports.HANDED_OVER:
        job.lease_until = None
        job.reply_deadline = utcnow() + timedelta(hours=current_app.config["PPT_ARCHIVE_REPLY_HOURS"])
        job.archive_status, job.message = ArchiveStatus.NEW, "Overlevert til arkivet, ventar på kvittering."
        db.session.commit()
        return "handed over"
    if reply.kind in transports.TRANSIENT and not asynchronous:
        limit = current_app.config["PPT_ARCHIVE_MAX_ATTEMPTS"]
        if job.attempts < limit:
            delay = min(current_app.config["PPT_ARCHIVE_BACKOFF_SECONDS"] * 2 ** (job.attempts - 1), 3600)
            job.job_status, job.archive_status = JobStatus.NEW, ArchiveStatus.FAILED
            job.next_attempt_at = utcnow() + timedelta(seconds=delay)
            job.lease_until, job.claimed_by = None, None
            when = job.next_attempt_at.astimezone(OSLO).strftime("%H:%M")
            job.message = f"Forsøk {job.attempts} av {limit} feila: {reply.text}. Nytt forsøk kl. {when}."
            db.session.commit()
            from ..jobs import dispatch_archive_job
            from ..queue import get_queue

            try:  # needs the worker's scheduler; the sweep picks it up in any case
                get_queue().enqueue_in(timedelta(seconds=delay), dispatch_archive_job, job.id)
            except Exception:  # noqa: BLE001 - Redis trouble: the sweep covers it
                log.warning("could not schedule retry of archive job %s", job.id)
            return "retry later"
        _finish(job, ArchiveStatus.FAILED, f"Gav opp etter {limit} forsøk: {reply.text}. Prøv på nytt når feilen er retta.")
        return "gave up"
    _finish(job, ArchiveStatus.FAILED, reply.text[:2000] or "Arkivet avviste meldinga.")
    return "failed"


def describe_ids(ids: dict) -> str:
    """The archive's own number for what it stored, for the Message column."""
    if ids.get("arkivnummer"):
        return f" Arkivnummer {ids['arkivnummer']}."
    registrering, mappe = ids.get("registrering") or {}, ids.get("mappe") or {}
    if registrering.get("journalpostnummer") is not None:
        return f" Journalpostnummer {registrering.get('journalaar', '')}/{registrering['journalpostnummer']}."
    if mappe.get("sakssekvensnummer") is not None:
        return f" Saksnummer {mappe.get('saksaar', '')}/{mappe['sakssekvensnummer']}."
    return ""


def _finish(job: ArchiveJob, archive_status: str, text: str) -> None:
    job.job_status, job.archive_status, job.message = JobStatus.DONE, archive_status, text
    job.done_at, job.lease_until, job.reply_deadline = utcnow(), None, None
    db.session.commit()


def _predecessor_blocks(job: ArchiveJob) -> str | None:
    """Jobs of one case go in order: a post waits until its case exists in the archive."""
    before = job.after_job
    while before is not None and before.deleted_at is not None:
        before = before.after_job  # a deleted job no longer holds anyone up
    if before is None or before.archive_status == ArchiveStatus.ARCHIVED:
        return None
    name = OPERATION_NAMES.get(before.event, before.event)
    if before.job_status == JobStatus.DONE and before.archive_status == ArchiveStatus.FAILED:
        return f"Ventar på «{name}» (jobb {before.id}), som feila. Rett den først."
    return f"Ventar på «{name}» (jobb {before.id})."


def _wake_successors(job: ArchiveJob) -> None:
    from ..jobs import dispatch_archive_job
    from ..queue import enqueue_after_commit

    successors = list(db.session.scalars(select(ArchiveJob.id).where(
        ArchiveJob.after_job_id == job.id, ArchiveJob.job_status == JobStatus.NEW)))
    for successor_id in successors:
        db.session.execute(update(ArchiveJob).where(ArchiveJob.id == successor_id)
                           .values(next_attempt_at=None, notified_at=utcnow())
                           .execution_options(synchronize_session=False))
        enqueue_after_commit(db.session, dispatch_archive_job, successor_id)
    if successors:
        db.session.commit()


SWEEP_BATCH = 50


def sweep(now: datetime | None = None, limit: int = 5000) -> dict:
    """What the routine's minute job does, and more: expired leases back to Ny, asynchronous
    replies read, and every due Ny job handed to the queue."""
    from ..jobs import dispatch_archive_jobs
    from ..queue import get_queue

    now = now or utcnow()
    requeued = db.session.execute(
        update(ArchiveJob).where(ArchiveJob.job_status == JobStatus.IN_PROGRESS, ArchiveJob.reply_deadline.is_(None),
                                 ArchiveJob.lease_until < now)
        .values(job_status=JobStatus.NEW, lease_until=None, claimed_by=None,
                message="Arbeidaren stoppa midt i jobben; jobben er sett tilbake til Ny.")
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    replies_read = _read_async_replies(now)
    # Due jobs not told to a worker lately: a notice still in the queue is not sent again and again
    # (that would flood a backlog); one that Redis lost is re-told after a couple of periods.
    quiet = now - timedelta(seconds=max(2 * current_app.config["PPT_SWEEP_SECONDS"], 10))
    due = list(db.session.scalars(
        select(ArchiveJob.id).where(ArchiveJob.job_status == JobStatus.NEW, ArchiveJob.deleted_at.is_(None),
                                    or_(ArchiveJob.next_attempt_at.is_(None), ArchiveJob.next_attempt_at <= now),
                                    or_(ArchiveJob.notified_at.is_(None), ArchiveJob.notified_at < quiet))
        .order_by(ArchiveJob.id).limit(limit)))
    if due:
        db.session.execute(update(ArchiveJob).where(ArchiveJob.id.in_(due)).values(notified_at=now)
                           .execution_options(synchronize_session=False))
        db.session.commit()
    queued = 0
    try:
        queue = get_queue()
        for start in range(0, len(due), SWEEP_BATCH):  # batches: one work horse for many jobs
            batch = due[start:start + SWEEP_BATCH]
            per_job = current_app.config["PPT_ARCHIVE_HTTP_TIMEOUT"] + 30
            queue.enqueue(dispatch_archive_jobs, batch, job_timeout=len(batch) * per_job)
            queued += len(due[start:start + SWEEP_BATCH])
    except Exception:  # noqa: BLE001 - without Redis, process here: nothing waits for it
        for job_id in due[queued:]:
            process(job_id)
    return {"requeued": requeued, "replies": replies_read, "due": len(due), "queued": queued}


def _read_async_replies(now: datetime) -> int:
    waiting = list(db.session.scalars(select(ArchiveJob).where(
        ArchiveJob.job_status == JobStatus.IN_PROGRESS, ArchiveJob.reply_deadline.is_not(None)).limit(1000)))
    if not waiting:
        return 0
    transport = transports.get_transport()
    read = 0
    for job in waiting:
        reply = transport.poll(job.message_id)
        if reply is not None:
            apply_reply(job, reply, asynchronous=True)
            read += 1
        elif job.reply_deadline < now:
            _finish(job, ArchiveStatus.FAILED, "Ingen kvittering frå arkivet innan fristen.")
            read += 1
    return read


# --- the archive log ---------------------------------------------------------------------

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
        if self.status == "deleted":  # the soft-deleted jobs, to look at or restore
            out = [ArchiveJob.deleted_at.is_not(None)]
        else:
            out = [ArchiveJob.deleted_at.is_(None)]
        if self.status in (JobStatus.NEW, JobStatus.IN_PROGRESS, JobStatus.DONE):
            out.append(col(ArchiveJob.job_status) == self.status)
        elif self.status in (ArchiveStatus.FAILED, ArchiveStatus.ARCHIVED):
            out.append(ArchiveJob.archive_status == self.status)
        if self.event in OPERATION_NAMES:
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


def log_page(flt: LogFilter, before_id: int | None = None) -> dict:
    """Failed jobs always on top (all of them, whatever their date), then the rest newest first,
    paged by keyset so that page 1000 costs what page 1 costs.

    Newest first is by id; with a date filter it is by finalized date, then id: that order walks
    the date index and stops after a page, where ordering a month of jobs by id sorted them all.
    The "Older" link carries the last job's id either way (its date is looked up)."""
    failed = [] if before_id else list(db.session.scalars(
        select(ArchiveJob).where(*flt.clauses(by_failed=True), ArchiveJob.archive_status == ArchiveStatus.FAILED)
        .order_by(ArchiveJob.id.desc()).limit(500)))
    rest_q = select(ArchiveJob).where(*flt.clauses(), ArchiveJob.archive_status != ArchiveStatus.FAILED)
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


def count_failed(flt: LogFilter) -> int:
    return db.session.scalar(select(func.count()).select_from(ArchiveJob)
                             .where(*flt.clauses(by_failed=True), unindexed(ArchiveJob.job_status) == JobStatus.DONE,
                                    ArchiveJob.archive_status == ArchiveStatus.FAILED))


def get(job_id: int) -> ArchiveJob:
    job = db.session.get(ArchiveJob, job_id)
    if job is None or job.deleted_at is not None:
        raise NotFound(object_type="archive_job", object_id=job_id)
    return job


def retry(actor: User, job_id: int) -> ArchiveJob:
    """Prøv på nytt: a failed job back to Ny, picked up at once. A second click changes nothing."""
    require(actor, "archive_retry")
    job = get(job_id)
    if _reset(job, actor):
        db.session.commit()
    else:
        db.session.rollback()
    db.session.refresh(job)
    return job


RETRYABLE = or_(and_(ArchiveJob.job_status == JobStatus.DONE, ArchiveJob.archive_status == ArchiveStatus.FAILED),
                and_(ArchiveJob.job_status == JobStatus.NEW, ArchiveJob.archive_status == ArchiveStatus.FAILED))


def _reset(job: ArchiveJob, actor: User) -> bool:
    """One conditional UPDATE: only a job that is failed and not being worked on is reset."""
    from ..jobs import dispatch_archive_job
    from ..queue import enqueue_after_commit

    changed = db.session.execute(
        update(ArchiveJob).where(ArchiveJob.id == job.id, ArchiveJob.deleted_at.is_(None), RETRYABLE)
        .values(job_status=JobStatus.NEW, archive_status=ArchiveStatus.NEW, attempts=0, next_attempt_at=None,
                done_at=None, reply_deadline=None, notified_at=utcnow(),
                message=f"Sett i gang på nytt av {actor.full_name}.")
        .execution_options(synchronize_session=False)).rowcount
    if not changed:
        return False  # already on its way, or archived: nothing to do, nothing sent twice
    transport = transports.get_transport()
    if transport.asynchronous and hasattr(transport, "reset"):
        transport.reset(job.message_id)
    activity.record("archive_job_retried", actor=actor, object_type="archive_job", object_id=job.id,
                    detail=job.operation)
    enqueue_after_commit(db.session, dispatch_archive_job, job.id)
    return True


def bulk_retry(actor: User, flt: LogFilter) -> int:
    """Retry every failed job that matches the filter; returns how many."""
    require(actor, "archive_retry")
    jobs = list(db.session.scalars(select(ArchiveJob).where(
        *flt.clauses(), ArchiveJob.job_status == JobStatus.DONE, ArchiveJob.archive_status == ArchiveStatus.FAILED)))
    count = sum(1 for job in jobs if _reset(job, actor))
    db.session.commit()
    return count


DELETE_WORD = "SLETT"


def delete(actor: User, job_id: int, reason: str, confirmation: str) -> None:
    """Dangerous: the job is lost. Needs archive_delete, a typed confirmation and a reason; the
    activity log keeps the job's full content, so an administrator can put it back."""
    require(actor, "archive_delete", object_type="archive_job", object_id=job_id)
    job = get(job_id)
    if (confirmation or "").strip().upper() != DELETE_WORD:
        raise Invalid(_l("Type %(word)s to confirm.", word=DELETE_WORD), field="confirmation")
    reason = " ".join((reason or "").split())
    if not reason:
        raise Invalid(_l("Give the reason for deleting the job."), field="reason")
    content = {c.name: _plain(getattr(job, c.name)) for c in ArchiveJob.__table__.columns}
    deleted = db.session.execute(
        update(ArchiveJob).where(ArchiveJob.id == job.id, ArchiveJob.deleted_at.is_(None),
                                 ArchiveJob.job_status != JobStatus.IN_PROGRESS)
        .values(deleted_at=utcnow(), deleted_by_id=actor.id, deleted_reason=reason)
        .execution_options(synchronize_session=False)).rowcount
    if not deleted:
        db.session.rollback()
        raise Conflict(_l("The job is being sent right now. Wait until it is done."))
    activity.record("archive_job_deleted", actor=actor, object_type="archive_job", object_id=job.id,
                    before=content, detail=reason)
    db.session.commit()


def restore(actor: User, job_id: int) -> ArchiveJob:
    """Undo a deletion: the row was only marked, so it comes back as it was, and is sent if due."""
    from ..jobs import dispatch_archive_job
    from ..queue import enqueue_after_commit

    require(actor, "archive_delete", object_type="archive_job", object_id=job_id)
    job = db.session.get(ArchiveJob, job_id)
    if job is None or job.deleted_at is None:
        raise NotFound(object_type="archive_job", object_id=job_id)
    reason = job.deleted_reason
    job.deleted_at, job.deleted_by_id, job.deleted_reason = None, None, None
    activity.record("archive_job_restored", actor=actor, object_type="archive_job", object_id=job.id,
                    detail=f"sletta med grunngjeving: {reason}")
    if job.job_status == JobStatus.NEW:
        enqueue_after_commit(db.session, dispatch_archive_job, job.id)
    db.session.commit()
    return job


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def alerts() -> dict:
    """Jobs stuck in Under arbeid, or failed, for longer than the alert time (cf. SvarInn's 2 h)."""
    limit = utcnow() - timedelta(minutes=current_app.config["PPT_ARCHIVE_ALERT_MINUTES"])
    stuck = db.session.scalar(select(func.count()).select_from(ArchiveJob).where(
        ArchiveJob.deleted_at.is_(None), ArchiveJob.job_status == JobStatus.IN_PROGRESS,
        ArchiveJob.created_at < limit))
    failing = db.session.scalar(select(func.count()).select_from(ArchiveJob).where(
        ArchiveJob.deleted_at.is_(None), ArchiveJob.archive_status == ArchiveStatus.FAILED,
        ArchiveJob.created_at < limit))
    return {"stuck": stuck, "failing": failing, "total": stuck + failing}



def archive_copy(case) -> dict:
    """What the archive holds for a case (local archive), and what our jobs say was archived."""
    jobs = list(db.session.scalars(select(ArchiveJob).where(ArchiveJob.case_id == case.id,
                                                            ArchiveJob.deleted_at.is_(None)).order_by(ArchiveJob.id)))
    transport = transports.get_transport()
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
