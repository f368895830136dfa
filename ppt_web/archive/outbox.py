"""Where each archive-relevant change writes its archive job (the outbox row).

Every function is called by a domain service inside its transaction, after the change and
before the commit: job and change commit together (docs/decisions.md, "One transaction per user action"). The worker
is told after the commit; if Redis is down then, the periodic sweep finds the job anyway.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select, update

from ..clock import today, utcnow
from ..extensions import db
from ..models import ArchiveJob, ArchiveStatus, Case, CaseStatus, JobStatus, JournalPost, MetadataCorrection, User
from ..models.domain import LOCKED_STATUSES
from ..queue import Job, enqueue_after_commit
from . import snapshot
from .job_messages import message_values
from .message import EVENTS


def case_is_linked(case: Case) -> bool:
    """Linked to a national id (a client) or an organisation number (docs/decisions.md, "Which cases are archived")."""
    return case.client_id is not None or (case.organisation is not None and bool(case.organisation.org_number))


def post_is_archived(post: JournalPost) -> bool:
    return post.status in LOCKED_STATUSES and case_is_linked(post.case)


def _add(event: str, case: Case, post: JournalPost | None = None,
         correction: MetadataCorrection | None = None) -> ArchiveJob:
    db.session.flush()
    late_folder = event != "case_created" and not db.session.scalar(
        select(ArchiveJob.id).where(ArchiveJob.case_id == case.id, ArchiveJob.event == "case_created",
                                    ArchiveJob.deleted_at.is_(None)).limit(1))
    if late_folder:
        _add("case_created", case)  # the archive needs the saksmappe before anything in it
    previous = db.session.scalar(select(ArchiveJob.id)
                                 .where(ArchiveJob.case_id == case.id, ArchiveJob.deleted_at.is_(None))
                                 .order_by(ArchiveJob.id.desc()).limit(1))
    immediate = current_app.config.get("PPT_ARCHIVE_IMMEDIATE", True)  # off only to measure the sweep alone
    # What the message needs, as it is now: the job says this whenever it is sent (a case_created
    # job added here for a case closed since is still an open folder: snapshot.take sees to it).
    taken = snapshot.take(event, case, post, correction)
    job = ArchiveJob(event=event, operation=EVENTS[event], case_id=case.id, post_id=post.id if post else None,
                     client_id=case.client_id, correction_id=correction.id if correction else None,
                     after_job_id=previous, finalized_on=today(), notified_at=utcnow() if immediate else None,
                     snapshot=taken)
    db.session.add(job)
    db.session.flush()
    if immediate:
        enqueue_after_commit(Job.SEND_ARCHIVE_JOB, job.id)
    if late_folder and case.status == CaseStatus.CLOSED and event not in ("case_closed", "case_reopened"):
        # A closed case that only now reaches the archive (linked later, or its folder job deleted):
        # the folder is created open, so its closing follows what went into it.
        _add("case_closed", case)
    return job


def case_created(case: Case) -> None:
    """A new case: the archive gets its saksmappe (arkivmelding.opprett)."""
    if case_is_linked(case):
        _add("case_created", case)


def case_closed(case: Case) -> None:
    """Case closed: saksstatus A (arkivmelding.oppdater)."""
    if case_is_linked(case):
        _add("case_closed", case)


def case_reopened(case: Case) -> None:
    """Case reopened: saksstatus B (arkivmelding.oppdater)."""
    if case_is_linked(case):
        _add("case_reopened", case)


def post_finalized(post: JournalPost) -> None:
    """A finalized post linked to a national id or organisation number is archived."""
    if post_is_archived(post):
        _add("post_finalized", post.case, post)


def metadata_corrected(post: JournalPost, correction: MetadataCorrection) -> None:
    """A metadata correction of a finalized post (arkivmelding.oppdater)."""
    if post_is_archived(post):
        _add("metadata_corrected", post.case, post, correction)


def post_written_off(post: JournalPost) -> None:
    """A write-off of an incoming post (avskrivning.opprett)."""
    if post_is_archived(post):
        _add("post_written_off", post.case, post)


def post_expedited(post: JournalPost) -> None:
    """The letter left us (SvarUt confirmed it, or it went on paper): journalstatus E and sendtDato
    (arkivmelding.oppdater). The post's expedited_on must be set before this is called."""
    if post_is_archived(post):
        _add("post_expedited", post.case, post)


def case_corrected(case: Case) -> None:
    """A corrected case title: the folder's new title (arkivmelding.oppdater)."""
    if case_is_linked(case):
        _add("case_corrected", case)


def restarted(actor: User) -> dict:
    """The columns of a job started again by a person (Prøv på nytt, or a correction): Ny, its
    attempts counted anew, due now, the worker told now."""
    return dict(job_status=JobStatus.NEW, archive_status=ArchiveStatus.NEW, attempts=0, next_attempt_at=None,
                done_at=None, reply_deadline=None, received_at=None, notified_at=utcnow(),
                **message_values("restarted", name=actor.full_name))


def _clean_snapshots(case_ids: list[int]) -> None:
    """Clean the text of the snapshots of these cases' jobs not archived yet (failed or still waiting):
    a correction of that text is what they needed."""
    if not case_ids:
        return
    for job_id, taken in db.session.execute(select(ArchiveJob.id, ArchiveJob.snapshot).where(
            ArchiveJob.case_id.in_(case_ids), ArchiveJob.deleted_at.is_(None),
            ArchiveJob.archive_status != ArchiveStatus.ARCHIVED, ArchiveJob.snapshot.is_not(None))).all():
        cleaned = snapshot.cleaned(taken)
        if cleaned != taken:
            db.session.execute(update(ArchiveJob).where(ArchiveJob.id == job_id).values(snapshot=cleaned)
                               .execution_options(synchronize_session=False))


def restart_unarchivable(cases: Case | list[Case], actor: User) -> int:
    """Set the jobs of these cases that failed on text the archive cannot carry back to Ny, as a
    correction of that text is what they waited for; the worker is told after the commit. Their
    snapshots, and those of the jobs still waiting, hold the old text: it is cleaned there (as
    text.clean cleans a row on flush), so they go, and the correction's own job then carries the
    corrected text."""
    case_ids = [c.id for c in (cases if isinstance(cases, list) else [cases])]
    job_ids = list(db.session.scalars(select(ArchiveJob.id).where(
        ArchiveJob.case_id.in_(case_ids), ArchiveJob.deleted_at.is_(None),
        ArchiveJob.message_code == "unarchivable_text", ArchiveJob.job_status == JobStatus.DONE,
        ArchiveJob.archive_status == ArchiveStatus.FAILED))) if case_ids else []
    _clean_snapshots(case_ids)
    if not job_ids:
        return 0
    db.session.execute(update(ArchiveJob).where(ArchiveJob.id.in_(job_ids), ArchiveJob.job_status == JobStatus.DONE)
                       .values(**restarted(actor)).execution_options(synchronize_session=False))
    for job_id in job_ids:
        enqueue_after_commit(Job.SEND_ARCHIVE_JOB, job_id)
    return len(job_ids)
