"""The consultant's actions on the archive log: retry (one, or all failed and backing off), delete and restore."""
from __future__ import annotations

import logging
from datetime import date, datetime

import redis
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select, update

from ..activity import service as activity
from ..auth.access import require
from ..clock import utcnow
from ..errors import Conflict, Invalid, NotFound
from ..extensions import changed_rows, db
from ..fiksio.settings import SettingsError
from ..models import ArchiveJob, ArchiveStatus, JobStatus, User
from ..models.base import unindexed
from ..queue import Job, enqueue, enqueue_after_commit
from . import outbox, transports
from .log import LogFilter

log = logging.getLogger(__name__)


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
        _send_again([job])
    else:
        db.session.rollback()
    db.session.refresh(job)
    return job


RETRYABLE = or_(and_(ArchiveJob.job_status == JobStatus.DONE, ArchiveJob.archive_status == ArchiveStatus.FAILED),
                and_(ArchiveJob.job_status == JobStatus.NEW, ArchiveJob.archive_status == ArchiveStatus.FAILED))


def _reset(job: ArchiveJob, actor: User) -> bool:
    """One conditional UPDATE: only a job that is failed and not being worked on is reset."""
    changed = changed_rows(
        update(ArchiveJob).where(ArchiveJob.id == job.id, ArchiveJob.deleted_at.is_(None), RETRYABLE)
        .values(**outbox.restarted(actor)).execution_options(synchronize_session=False))
    if not changed:
        return False  # already on its way, or archived: nothing to do, nothing sent twice
    activity.record("archive_job_retried", actor=actor, object_type="archive_job", object_id=job.id,
                    detail=job.operation)
    return True


def _send_again(jobs: list[ArchiveJob]) -> None:
    """After the commit: an asynchronous transport sets the old reply aside (a file move that must not
    happen for a reset that did not commit), then the worker is told. The sweep tells it if Redis is away."""
    try:
        transport: transports.Transport | None = transports.get_transport()
    except SettingsError:  # Fiks IO set up wrong: the job's send says so on the log
        transport = None
    for job in jobs:
        if transport is not None and transport.asynchronous and hasattr(transport, "reset"):
            transport.reset(job.message_id)
        try:
            enqueue(Job.SEND_ARCHIVE_JOB, job.id)
        except (redis.RedisError, RuntimeError) as exc:  # Redis away, or none configured
            log.warning("archive job %s not handed to the queue (%s); the sweep sends it", job.id, exc)


def count_retryable(flt: LogFilter) -> int:
    """What "Prøv alle på nytt" would retry: the failed jobs that match the filter, and those that
    failed for a while and wait out their back-off (Ny, Feil, next attempt later)."""
    return db.session.scalar(select(func.count()).select_from(ArchiveJob).where(*_retryable(flt))) or 0


def _retryable(flt: LogFilter) -> list:
    # On the index of the (few) failed jobs; Under arbeid is left to its worker. _reset checks again.
    return [*flt.clauses(by_failed=True), ArchiveJob.archive_status == ArchiveStatus.FAILED,
            unindexed(ArchiveJob.job_status).in_((JobStatus.DONE, JobStatus.NEW))]


def bulk_retry(actor: User, flt: LogFilter) -> int:
    """Retry every failed job that matches the filter, and every one waiting out its back-off (which
    would otherwise wait up to the longest back-off): all are due now and handed to the queue."""
    require(actor, "archive_retry")
    jobs = list(db.session.scalars(select(ArchiveJob).where(*_retryable(flt)).order_by(ArchiveJob.id)))
    reset = [job for job in jobs if _reset(job, actor)]
    db.session.commit()
    _send_again(reset)
    return len(reset)


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
    deleted = changed_rows(
        update(ArchiveJob).where(ArchiveJob.id == job.id, ArchiveJob.deleted_at.is_(None),
                                 ArchiveJob.job_status != JobStatus.IN_PROGRESS)
        .values(deleted_at=utcnow(), deleted_by_id=actor.id, deleted_reason=reason)
        .execution_options(synchronize_session=False))
    if not deleted:
        db.session.rollback()
        raise Conflict(_l("The job is being sent right now. Wait until it is done."))
    activity.record("archive_job_deleted", actor=actor, object_type="archive_job", object_id=job.id,
                    before=content, detail=reason)
    db.session.commit()


def restore(actor: User, job_id: int) -> ArchiveJob:
    """Undo a deletion: the row was only marked, so it comes back as it was, and is sent if due."""
    require(actor, "archive_delete", object_type="archive_job", object_id=job_id)
    job = db.session.get(ArchiveJob, job_id)
    if job is None or job.deleted_at is None:
        raise NotFound(object_type="archive_job", object_id=job_id)
    reason = job.deleted_reason
    job.deleted_at, job.deleted_by_id, job.deleted_reason = None, None, None
    activity.record("archive_job_restored", actor=actor, object_type="archive_job", object_id=job.id,
                    detail=f"sletta med grunngjeving: {reason}")
    if job.job_status == JobStatus.NEW:
        enqueue_after_commit(Job.SEND_ARCHIVE_JOB, job.id)
    db.session.commit()
    return job


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
