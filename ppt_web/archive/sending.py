"""The worker's side of the archive: claim a job, build and send its message, record the outcome,
wake the jobs that waited for it; and the sweep.

The database row is the unit of work (docs/decisions.md, "The archive job"). A job is claimed by one
conditional UPDATE, so two workers or two sweeps never send it twice; Redis only says "look now".
The claim's lease is short, and the claimant extends it while it works (keep_lease): a job whose
horse or worker died is free again within the lease (docs/decisions.md, "The claim").
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TypeVar, cast

from flask import current_app
from rq import get_current_job
from rq.timeouts import BaseTimeoutException
from sqlalchemy import Row, Table, bindparam, func, or_, select, update
from sqlalchemy import case as sql_case
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from .. import claims
from ..clock import OSLO, utcnow
from ..extensions import changed_rows, commit_keeping_loaded, db, on_postgresql
from ..fiksio.settings import SettingsError
from ..models import ArchiveJob, ArchiveStatus, Case, JobStatus, JournalPost
from ..queue import Job, enqueue, enqueue_after_commit
from ..text import NOT_ARCHIVABLE, clean
from . import identity, transports
from .job_messages import message_values
from .message import Message, MessageInvalid, TextNotArchivable, build, unarchivable_in
from .transports.files import FileMissing

log = logging.getLogger(__name__)
R = TypeVar("R")
DB_RETRY_SECONDS = 60  # how long a locked or unreachable database is tried again before a job gives up
_together: ContextVar[bool] = ContextVar("archive_outcomes_together", default=False)
# While a run's outcomes are written together: its UPDATEs, queued and run at the end, each kind with
# one executemany (see _write_queued). None: run each statement at once.
_queued: ContextVar[list | None] = ContextVar("archive_outcomes_queued", default=None)
# A run's done_at, the same in each try of writing its outcomes (None: each outcome takes the time it is written).
_finished_at: ContextVar[datetime | None] = ContextVar("archive_outcomes_finished_at", default=None)


def worker_name() -> str:
    job = get_current_job()
    return (job.worker_name if job is not None and job.worker_name else None) or socket.gethostname()


def claim_token(worker: str, pid: int | None = None) -> str:
    """What claimed_by holds: the worker's name and the claiming process (the work horse), so the
    worker can free exactly its dead horse's claims (worker.py, handle_work_horse_killed)."""
    return f"{worker[:180]}#{pid or os.getpid()}"


def claim(job_id: int, worker: str, now: datetime | None = None) -> bool:
    """Ny -> Under arbeid for exactly one claimant; the row count says who won (commit included). As
    claim_many's, by one statement for one id (id = :job_id, not an expanding IN list rendered anew per call;
    on PostgreSQL its FOR UPDATE SKIP LOCKED as a subquery)."""
    now = now or utcnow()
    lease = timedelta(seconds=current_app.config["PPT_ARCHIVE_LEASE_SECONDS"])
    params = {"job_id": job_id, "now": now, "worker": worker[:200], "lease_until": now + lease}
    won = db.session.scalar(_claim_statements(on_postgresql(), one=True)[1], params) is not None
    db.session.commit()
    return won


def _committed() -> None:
    """write_retrying's commit for a change that commits itself (a claim)."""


def _commit() -> None:
    """write_retrying's commit unless it is given another."""
    db.session.commit()


def process(job_id: int, worker: str | None = None) -> str:
    """Send one job if it is due and this worker wins the claim; returns what happened. While it
    works, a thread extends the claim's lease; a locked or unreachable database is waited for."""
    token = claim_token(worker or worker_name())
    if not write_retrying(lambda: claim(job_id, token), commit=_committed):
        return "not claimed"
    with keep_lease(job_id, token):
        return _send(job_id, token)


def claim_many(job_ids: list[int], worker: str, now: datetime | None = None) -> list[int]:
    """Ny -> Under arbeid for every job of job_ids that is due, in one UPDATE: the ids this claimant won,
    commit included. On PostgreSQL the rows are first taken FOR UPDATE SKIP LOCKED, so a claimant never
    queues behind another process's open transaction on a row, it leaves that row (docs/decisions.md,
    "The claim"); SQLite has one writer at a time, so the UPDATE's conditions alone decide there. A new
    send: the previous one's Fiks IO id (kept among the earlier sends' ids) and "mottatt" no longer describe
    it (a late error about that send then changes nothing; its late receipt still archives it,
    archive/fiksio.py)."""
    now = now or utcnow()
    lease = timedelta(seconds=current_app.config["PPT_ARCHIVE_LEASE_SECONDS"])
    params = {"ids": job_ids, "now": now, "worker": worker[:200], "lease_until": now + lease}
    lock, claim_update = _claim_statements(on_postgresql())
    if lock is not None:
        params["ids"] = list(db.session.scalars(lock, params))
        if not params["ids"]:
            db.session.rollback()
            return []
    won = set(db.session.scalars(claim_update, params))
    db.session.commit()
    return [job_id for job_id in job_ids if job_id in won]


@functools.cache
def _claim_statements(postgresql: bool, one: bool = False):
    """claim_many's statements (claim's for one id: one), built once per process and engine kind: on
    PostgreSQL the SELECT ... FOR UPDATE SKIP LOCKED (its own statement: as a subquery of the UPDATE, the
    planner walked every Ny job once per row, a drain of 10,000 jobs at a sixth of its speed), then the
    UPDATE ... RETURNING. For one id the subquery is found by the primary key, so there it is the UPDATE's
    (one statement and round trip on PostgreSQL too)."""
    table = cast(Table, ArchiveJob.__table__)
    which = table.c.id == bindparam("job_id") if one else table.c.id.in_(bindparam("ids", expanding=True))
    due = [which, table.c.job_status == JobStatus.NEW,
           table.c.deleted_at.is_(None),
           or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= bindparam("now"))]
    lock = select(table.c.id).where(*due).with_for_update(skip_locked=True) if postgresql else None
    if lock is not None and one:  # one id: the lock as the UPDATE's subquery (by its key: no walk), one round trip
        due, lock = [table.c.id == lock.scalar_subquery(), *due[1:]], None
    return lock, (update(table).where(*due)
                  .values(job_status=JobStatus.IN_PROGRESS, claimed_by=bindparam("worker"),
                          attempts=table.c.attempts + 1,
                          lease_until=bindparam("lease_until", type_=table.c.lease_until.type),
                          fiksio_message_id=None, received_at=None,
                          fiksio_earlier_ids=_earlier_ids(table))
                  .returning(table.c.id))


def _earlier_ids(table: Table):
    """The job's earlier sends' Fiks IO ids with the last send's added (a new send is claimed)."""
    earlier, last = table.c.fiksio_earlier_ids, table.c.fiksio_message_id
    return sql_case((last.is_(None), earlier), else_=func.ltrim(func.coalesce(earlier, "") + " " + last))


def process_many(job_ids: list[int], worker: str | None = None) -> Counter:
    """A batch (the sweep's, or a dead horse's jobs told again): claimed in one UPDATE, then sent in the
    batch's order, as process() sends one, under one lease thread for the batch. Counts the outcomes; a
    job another claimant holds, or not due, is "not claimed".

    A transport that takes several messages at once (send_many: the built-in archive, one transaction
    and one fsync for all) gets them in runs, and the runs' outcomes are written in one transaction here
    too. A run ends before a job that waits for one of its own jobs, so that job is judged once the one
    before it is done, as if they went one by one."""
    token = claim_token(worker or worker_name())
    claimed = write_retrying(lambda: claim_many(list(dict.fromkeys(job_ids)), token))
    current = functools.cache(identity.settings)  # the saved archive settings, read once for the batch
    outcomes: Counter = Counter()
    if len(claimed) < len(job_ids):
        outcomes["not claimed"] = len(job_ids) - len(claimed)
    if not claimed:
        return outcomes
    run: list[tuple[ArchiveJob, Message]] = []
    run_transport: list[transports.Transport] = []  # the one transport the run goes to

    def send_run() -> None:
        if run:
            outcomes.update(_send_together(list(run), run_transport[0], token))
            run.clear()

    with keep_lease(claimed, token):
        for done, job_id in enumerate(claimed):
            try:
                prepared = _prepare(job_id, token, current, run, send_run)
                if isinstance(prepared, str):
                    outcomes[prepared] += 1
                    if prepared == "database unavailable":  # every claim of this batch was set back to Ny
                        outcomes[prepared] += len(claimed) - done - 1 + len(run)
                        run.clear()
                        break
                    continue
                job, message, transport = prepared
                if run and transport is not run_transport[0]:  # the settings changed during the batch
                    send_run()
                if not hasattr(transport, "send_many"):
                    outcomes[_deliver(job, message, transport, token)] += 1
                    continue
                run.append((job, message))
                run_transport[:] = [transport]
                if len(run) >= RUN_LIMIT:
                    send_run()
            except BaseException:
                # RQ's timeout, or the database gone for good: the job in hand keeps its lease (it may be on
                # its way to the archive); the ones not reached yet were never sent, and a run's were either
                # not sent or are known to the archive by their message ids (sent again, they get its stored
                # replies): Ny again now.
                rest = [queued.id for queued, _ in run] + claimed[done + 1:]
                if rest:
                    with contextlib.suppress(Exception):
                        db.session.rollback()
                        _set_back(ArchiveJob.claimed_by == token, ArchiveJob.id.in_(rest),
                                  not_sent=claimed[done + 1:])
                raise
        send_run()
    return outcomes


RUN_LIMIT = 50  # messages a transport with send_many takes at once (the sweep's batch)


@functools.cache
def _statements() -> SimpleNamespace:
    """The per-job statements, built once per process with bound parameters: building an ORM statement
    per job (its values coerced, its cache key made) cost more than running it. The job's outcome and the
    wake of its successors are Core statements on the table (the ORM's bulk UPDATE path converts every
    value again); they go through the session all the same, in its transaction, seen by its hooks."""
    table = cast(Table, ArchiveJob.__table__)
    done = {c: bindparam(f"v_{c}", type_=table.c[c].type) for c in
            ("job_status", "archive_status", "done_at", "lease_until", "reply_deadline", "message_code",
             "message_params", "message")}
    finish = update(table).where(table.c.id == bindparam("job_id"))
    # The sender's outcome: written only while the job is still its claim (a sender paused past its lease
    # finds the job set back, or claimed, sent and finished by another sender since, and writes nothing).
    mine = finish.where(table.c.claimed_by == bindparam("claim"), table.c.job_status == JobStatus.IN_PROGRESS)
    return SimpleNamespace(
        # As claimed: fresh from the row, with the case and post its receipt's ids go on (one query, not three).
        load=select(ArchiveJob).where(ArchiveJob.id == bindparam("job_id"))
        .options(joinedload(ArchiveJob.case), joinedload(ArchiveJob.post))
        .execution_options(populate_existing=True),
        # What _predecessor_blocks reads of the job another waits for: a few columns, not the ORM's lazy load of
        # the whole row with its snapshot and receipt (0.3 ms of the sender's 3.6 ms for a post, SQLite, http).
        before=select(table.c.id, table.c.event, table.c.job_status, table.c.archive_status, table.c.deleted_at,
                      table.c.after_job_id).where(table.c.id == bindparam("job_id")),
        finish={claimed: where.values(**done) for claimed, where in ((False, finish), (True, mine))},
        finish_with_ref={claimed: where.values(**done, archive_ref=bindparam("v_archive_ref",
                                                                            type_=table.c.archive_ref.type))
                         for claimed, where in ((False, finish), (True, mine))},
        wake=update(table).where(table.c.after_job_id == bindparam("job_id"), table.c.job_status == JobStatus.NEW)
        .values(next_attempt_at=None, notified_at=bindparam("now", type_=table.c.notified_at.type))
        .returning(table.c.id),
        wake_many=update(table).where(table.c.after_job_id.in_(bindparam("job_ids", expanding=True)),
                                      table.c.job_status == JobStatus.NEW)
        .values(next_attempt_at=None, notified_at=bindparam("now", type_=table.c.notified_at.type))
        .returning(table.c.id))


def _send(job_id: int, token: str, current: Callable[[], dict] = identity.settings) -> str:
    prepared = _prepare(job_id, token, current)
    if isinstance(prepared, str):
        return prepared
    return _deliver(*prepared, token)


def _prepare(job_id: int, token: str, current: Callable[[], dict], run: Sequence[tuple[ArchiveJob, Message]] = (),
             send_run: Callable[[], None] | None = None) -> str | tuple[ArchiveJob, Message, transports.Transport]:
    """A claimed job loaded, checked for a job it waits for, and its message built: the job, its message
    and the transport; or what happened instead (waiting, or a failure already written). run holds jobs
    built and not yet sent: one of them that this job waits for is sent first (send_run)."""
    job = db.session.execute(_statements().load, {"job_id": job_id}).scalar_one()  # (many-to-one joins: no unique())
    if run and send_run is not None and _waits_on(job, {queued.id for queued, _ in run}):
        send_run()
    waiting = _predecessor_blocks(job)
    if waiting:
        job_id = job.id
        due = utcnow() + timedelta(seconds=current_app.config["PPT_ARCHIVE_BACKOFF_SECONDS"])

        def wait() -> bool:
            # Back to Ny while it is still this claim (a locked database may hold this write past the lease);
            # waiting is not an attempt. Tried again after a commit that landed unanswered, it finds its own write.
            return bool(changed_rows(update(ArchiveJob).where(
                ArchiveJob.id == job_id, ArchiveJob.job_status == JobStatus.IN_PROGRESS,
                ArchiveJob.claimed_by == token)
                .values(job_status=JobStatus.NEW, lease_until=None, claimed_by=None, next_attempt_at=due,
                        attempts=sql_case((ArchiveJob.attempts > 0, ArchiveJob.attempts - 1), else_=0),
                        **message_values(waiting[0], **waiting[1]))
                .execution_options(synchronize_session=False))) \
                or _row_is(job_id, job_status=JobStatus.NEW, claimed_by=None, next_attempt_at=due)
        written = write_retrying(wait)
        db.session.expire(job)
        return "waiting" if written else claims.LOST
    try:
        message = build(job, current_app.config.get("PPT_ARCHIVE_SETTINGS"), current=current())
        try:
            transport = transports.get_transport()
        except SettingsError as exc:  # the way to the archive is not set up right: wait for the fix
            return apply_reply(job, transports.Reply(transports.UNREACHABLE, f"oppsettet av Fiks IO: {exc}"),
                               claim=token)
    except BaseTimeoutException:
        raise
    except Exception as exc:  # noqa: BLE001 - _failed says what each kind means
        return _failed(job, token, exc)
    return job, message, transport


def _deliver(job: ArchiveJob, message: Message, transport: transports.Transport, token: str) -> str:
    """One built message sent, and the reply written."""
    try:
        reply = transport.send(message, job.message_id)
    except BaseTimeoutException:
        raise  # RQ's job timeout: the lease runs out and the sweep sets the job back to Ny
    except Exception as exc:  # noqa: BLE001 - _failed says what each kind means
        return _failed(job, token, exc)
    return apply_reply(job, reply, claim=token)  # a failed hand-over is retried, even on an asynchronous transport


def _send_together(run: list[tuple[ArchiveJob, Message]], transport: transports.Transport, token: str) -> Counter:
    """A run of built messages handed to a transport that takes them at once, then every reply written in
    one transaction (tried again whole if the database is locked or gone, as write_retrying does). Should
    writing one job's outcome fail otherwise (a fault in our code, a constraint), the run's writes are
    rolled back and each outcome is written on its own, so only that job is marked as failed."""
    try:
        results = transport.send_many([(message, job.message_id) for job, message in run])  # type: ignore[attr-defined]
    except BaseTimeoutException:
        raise
    except Exception as exc:  # noqa: BLE001 - a fault in the transport: each job says so
        return Counter(_failed(job, token, exc) for job, _ in run)

    def write_all() -> Counter:
        together, queued = _together.set(True), _queued.set([])
        try:
            outcomes = Counter(_failed(job, token, result) if isinstance(result, Exception)
                               else apply_reply(job, result, claim=token)
                               for (job, _), result in zip(run, results, strict=True))
            _write_queued(_queued.get() or [])
            return outcomes
        finally:
            _queued.reset(queued)
            _together.reset(together)

    stamp = _finished_at.set(utcnow())  # every try writes the same done_at: a retry knows its own write by it
    try:
        try:
            return write_retrying(write_all, commit=commit_keeping_loaded)
        except OperationalError:
            raise
        except _ClaimLost:  # the run's jobs one by one: each one's claim checked, the lost ones left as they are
            db.session.rollback()
        except Exception:  # noqa: BLE001 - one outcome could not be written: each on its own, as if sent alone
            db.session.rollback()
            log.warning("the outcomes of a run of %d archive jobs could not be written together; writing them "
                        "one by one", len(run), exc_info=True)
        return Counter(_write_alone(job, token, result) for (job, _), result in zip(run, results, strict=True))
    finally:
        _finished_at.reset(stamp)


_WAKE = object()  # the queued wake of a finished job's successors (one statement for the run's jobs)


class _ClaimLost(Exception):
    """A run's outcomes, written together, met a job that is no longer the run's claim."""


def _write(statement, params: dict) -> bool:
    """An outcome's UPDATE: at once (whether it changed a row), or queued while a run's outcomes are written
    together (True: _write_queued checks the claims of the run's finishes)."""
    queued = _queued.get()
    if queued is None:
        return bool(cast(CursorResult, db.session.execute(statement, params)).rowcount)
    queued.append((statement, params))
    return True


def _write_queued(queued: list) -> None:
    """A run's queued UPDATEs, each kind (statement) in one executemany, in the order the kinds came and
    each kind's rows in the run's order, then one wake for the successors of all the run's finished jobs.
    On SQLite the write lock is taken at the first of them: the run's outcomes were built before it, not
    while the other workers wait for it (the lock was held for 15 ms of a 75 ms batch, which capped two
    workers at 1.6 times one). The outcomes and the wake write other rows or columns than the receipts'
    ids, so their order among themselves changes nothing. Two jobs of a run may write one case's ids by
    different kinds (one with the case's numbers, one with its systemID alone): the archive gives a folder
    its ids once and every receipt repeats them, so whichever kind runs last writes the same values."""
    by_statement: dict = {}
    for statement, params in queued:
        by_statement.setdefault(statement, []).append(params)
    wake = by_statement.pop(_WAKE, None)
    statements = _statements()
    claimed = (statements.finish[True], statements.finish_with_ref[True])
    for statement, rows in by_statement.items():
        result = cast(CursorResult, db.session.execute(statement, rows))
        # A finish the claim no longer holds changed no row (psycopg and sqlite3 sum an executemany's counts;
        # a driver that cannot still writes no lost job's row, only the run's ids and wakes, which are the same):
        if statement in claimed and db.engine.dialect.supports_sane_multi_rowcount and result.rowcount < len(rows):
            raise _ClaimLost
    if wake:
        now = utcnow()
        successors = sorted(db.session.scalars(_statements().wake_many,
                                               {"job_ids": [row["job_id"] for row in wake], "now": now}))
        for successor_id in successors:
            enqueue_after_commit(Job.SEND_ARCHIVE_JOB, successor_id)


def _write_alone(job: ArchiveJob, token: str, result: transports.Reply | Exception) -> str:
    """One job's outcome written in its own transaction; a fault in writing it fails that job alone."""
    try:
        return _failed(job, token, result) if isinstance(result, Exception) else apply_reply(job, result, claim=token)
    except OperationalError:
        raise
    except Exception as exc:  # noqa: BLE001 - _failed logs it and marks the job
        return _failed(job, token, exc)


def _waits_on(job: ArchiveJob, ids: set[int]) -> bool:
    """Whether the job waits for one of ids (a deleted job between them holds nobody up)."""
    before = job.after_job
    while before is not None:
        if before.id in ids:
            return True
        if before.deleted_at is None:
            return False
        before = before.after_job
    return False


def _failed(job: ArchiveJob, token: str, exc: Exception) -> str:
    """A job whose message could not be built or sent, written as what happened."""
    if isinstance(exc, TextNotArchivable):
        found = unarchivable_in(job)
        if not found:
            return _finish(job, ArchiveStatus.FAILED, "invalid", claim=token, outcome="invalid message",
                           detail=str(exc))
        return _finish(job, ArchiveStatus.FAILED, "unarchivable_text", claim=token, outcome="unarchivable text",
                       what=found[0][0], object_id=found[0][1])
    if isinstance(exc, MessageInvalid):
        return _finish(job, ArchiveStatus.FAILED, "invalid", claim=token, outcome="invalid message", detail=str(exc))
    if isinstance(exc, FileMissing):
        return _finish(job, ArchiveStatus.FAILED, "file_missing", claim=token, outcome="file missing",
                       detail=str(exc))
    job_id = job.id
    if isinstance(exc, OperationalError):  # the database failed while the message was built: nothing was sent
        log.warning("archive job %s: database unavailable while building its message; set back to Ny", job_id,
                    exc_info=exc)
        db.session.rollback()
        release_claims(token)
        return "database unavailable"
    # A bug or a broken setup: visible on the log, not a silent loop.
    log.error("archive job %s failed inside the app", job_id, exc_info=exc)
    if not _together.get():  # (in a run's outcomes the session is sound, and holds the run's other outcomes)
        db.session.rollback()
        job = db.session.get_one(ArchiveJob, job_id)
    return _finish(job, ArchiveStatus.FAILED, "internal_error", claim=token, outcome="internal error",
                   kind=type(exc).__name__)


def apply_reply(job: ArchiveJob, reply: transports.Reply, asynchronous: bool = False, claim: str | None = None) -> str:
    """Map the transport's reply to the job's statuses and message (docs/decisions.md, "The archive job").
    claim: the sender's claim token; its outcome is written only while the job is still that claim's (else
    "claim lost"). Without it (a reply read later, by the Fiks IO consumer or the sweep), as the job is."""
    held = claim if claim is not None else job.claimed_by
    failed_parts = [str(part["feilet"]) for part in (reply.ids or {}).values()
                    if isinstance(part, dict) and part.get("feilet")]
    if reply.kind == transports.OK and failed_parts:
        return _finish(job, ArchiveStatus.FAILED, "partly_refused", claim=claim, outcome="failed",
                       detail="; ".join(failed_parts))
    if reply.kind == transports.OK:
        ids = reply.ids or {}
        return _finish(job, ArchiveStatus.ARCHIVED, *describe_ids(ids, job), claim=claim, outcome="archived",
                       archive_ref=ids, also=lambda: record_archive_ids(job, ids), then=lambda: _wake_successors(job))
    if reply.kind == transports.HANDED_OVER:
        def handed_over() -> bool:
            # One conditional UPDATE, not the loaded row: over Fiks IO the archive's reply may already
            # have been applied by the consumer (the job done, or "mottatt" shown), and must stay.
            deadline = utcnow() + timedelta(hours=current_app.config["PPT_ARCHIVE_REPLY_HOURS"])
            if reply.transport_id:  # kept even if the reply finished the job already; never by a stale claim
                db.session.execute(update(ArchiveJob).where(ArchiveJob.id == job.id,
                                                            ArchiveJob.claimed_by == held)
                                   .values(fiksio_message_id=reply.transport_id)
                                   .execution_options(synchronize_session=False))
            waiting = [ArchiveJob.id == job.id, ArchiveJob.job_status == JobStatus.IN_PROGRESS,
                       ArchiveJob.claimed_by == held]
            if not changed_rows(update(ArchiveJob).where(*waiting)
                                .values(lease_until=None, reply_deadline=deadline, archive_status=ArchiveStatus.NEW)
                                .execution_options(synchronize_session=False)):
                # done by the reply already, under this claim: handed over all the same
                return _row_is(job.id, claimed_by=held)
            db.session.execute(update(ArchiveJob).where(*waiting, ArchiveJob.received_at.is_(None))
                               .values(**message_values("handed_over"))
                               .execution_options(synchronize_session=False))
            return True
        handed = write_retrying(handed_over)
        db.session.expire(job)
        return "handed over" if handed else claims.LOST
    if reply.kind in transports.TRANSIENT and not asynchronous:
        limit = current_app.config["PPT_ARCHIVE_MAX_ATTEMPTS"]
        if job.attempts < limit:
            delay = min(current_app.config["PPT_ARCHIVE_BACKOFF_SECONDS"] * 2 ** (job.attempts - 1), 3600)

            def retry_later() -> int:
                # Conditional: a reply the consumer applied meanwhile (the send timed out, yet arrived) stays.
                due = utcnow() + timedelta(seconds=delay)
                when = due.astimezone(OSLO).strftime("%H:%M")
                changed = changed_rows(update(ArchiveJob).where(
                    ArchiveJob.id == job.id, ArchiveJob.job_status == JobStatus.IN_PROGRESS,
                    ArchiveJob.claimed_by == held)
                    .values(job_status=JobStatus.NEW, archive_status=ArchiveStatus.FAILED, next_attempt_at=due,
                            lease_until=None, claimed_by=None,
                            **message_values("retry_later", attempt=job.attempts, limit=limit, detail=reply.text,
                                             time=when))
                    .execution_options(synchronize_session=False))
                if changed:  # told to the scheduler once committed (a run's outcomes: after them all), never
                    # while the transaction holds the write lock; the sweep picks it up in any case
                    enqueue_after_commit(Job.SEND_ARCHIVE_JOB, job.id, delay=timedelta(seconds=delay))
                return changed
            if not write_retrying(retry_later):
                db.session.expire(job)
                return "answered meanwhile"
            db.session.expire(job)
            return "retry later"
        return _finish(job, ArchiveStatus.FAILED, "gave_up", claim=claim, outcome="gave up", limit=limit,
                       detail=reply.text)
    if reply.text:
        return _finish(job, ArchiveStatus.FAILED, "refused", claim=claim, outcome="failed", detail=reply.text[:2000])
    return _finish(job, ArchiveStatus.FAILED, "refused_silently", claim=claim, outcome="failed")


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None and str(value).strip() else None
    except ValueError:
        return None


def record_archive_ids(job: ArchiveJob, ids: dict) -> None:
    """Keep what the archive's receipt says on the case and the post: its systemID and numbers.
    An update or a write-off (no receipt payload) changes nothing; a receipt for another object
    than the job's (its referanseEksternNoekkel says so) is not taken."""
    mappe, registrering = ids.get("mappe") or {}, ids.get("registrering") or {}
    case = job.case
    if mappe.get("systemID") and not mappe.get("feilet") and _is_for(mappe, f"case:{case.id}"):
        values: dict = {"archive_system_id": str(mappe["systemID"])[:64]}
        year, seq = _int(mappe.get("saksaar")), _int(mappe.get("sakssekvensnummer"))
        if year is not None and seq is not None:
            values.update(archive_year=year, archive_seq=seq)
        _write_columns(case, values)
    post = job.post if job.post_id else None
    if post is not None and registrering.get("systemID") and not registrering.get("feilet") \
            and _is_for(registrering, f"post:{post.id}"):
        values = {"archive_system_id": str(registrering["systemID"])[:64]}
        for column, key in (("archive_year", "journalaar"), ("archive_journal_seq", "journalsekvensnummer"),
                            ("archive_post_number", "journalpostnummer")):
            value = _int(registrering.get(key))
            if value is not None:
                values[column] = value
        _write_columns(post, values)


def _write_columns(row: Case | JournalPost, values: dict) -> None:
    """The receipt's ids on the case or post by one UPDATE in the session's transaction, and on the loaded
    object as its committed state: the unit of work's flush of them was about a sixth of a job's CPU time.
    The archive's ids are cleaned as the flush would clean them (ppt_web/text.py)."""
    values = {column: clean(value) if isinstance(value, str) and NOT_ARCHIVABLE.search(value) else value
              for column, value in values.items()}
    _write(_columns_statement(type(row), tuple(values)),
           {"row_id": row.id, **{f"v_{column}": value for column, value in values.items()}})
    for column, value in values.items():
        set_committed_value(row, column, value)


@functools.cache
def _columns_statement(model: type[Case] | type[JournalPost], columns: tuple[str, ...]):
    table = cast(Table, model.__table__)
    return update(table).where(table.c.id == bindparam("row_id")).values(
        **{column: bindparam(f"v_{column}", type_=table.c[column].type) for column in columns})


def _is_for(part: dict, key: str) -> bool:
    echoed = part.get("referanseEksternNoekkel")
    return not echoed or str(echoed) == key


def describe_ids(ids: dict, job: ArchiveJob | None = None) -> tuple[str, dict]:
    """The Message column's code and values for what the archive stored: its own number, if it gave one."""
    registrering, mappe = ids.get("registrering") or {}, ids.get("mappe") or {}
    if registrering.get("journalpostnummer") is not None and job is not None and job.case.archive_number:
        return "archived_post_in_case", {"number": f"{job.case.archive_number}-{registrering['journalpostnummer']}"}
    if registrering.get("journalsekvensnummer") is not None:
        return "archived_post", {"year": registrering.get("journalaar", ""),
                                 "number": registrering["journalsekvensnummer"]}
    if mappe.get("sakssekvensnummer") is not None:
        return "archived_folder", {"year": mappe.get("saksaar", ""), "number": mappe["sakssekvensnummer"]}
    if ids.get("arkivnummer"):
        return "archived_number", {"number": ids["arkivnummer"]}
    return "archived", {}


def _finish(job: ArchiveJob, archive_status: ArchiveStatus, code: str, params: dict | None = None, /,
            *, claim: str | None, outcome: str, archive_ref: dict | None = None,
            also: Callable[[], None] | None = None, then: Callable[[], None] | None = None, **values) -> str:
    """The job done in one transaction: the job's row by one UPDATE (not the unit of work: it was the largest
    part of a job's own CPU time), then also()'s changes (the case's and post's ids) and then(); returns
    outcome. claim: the sender's claim token. The row is written only while the job is still in progress under
    it: a sender paused past its lease (a stopped VM, a swapped-out process) may find its job set back to Ny,
    or claimed, sent and finished by another sender since, and must not write its own outcome over that one.
    Then nothing is written and the outcome is claims.LOST (in a run's outcomes, written together, the run is
    written again one job at a time: _send_together). Without claim (a reply read later, by the Fiks IO
    consumer or the sweep) the row is written as it is."""
    job_id = job.id  # (before the commit: after it, reading it would load the row again)
    done = dict(job_status=JobStatus.DONE, archive_status=archive_status, done_at=_finished_at.get() or utcnow(),
                lease_until=None, reply_deadline=None, **message_values(code, **(params or {}), **values))
    if archive_ref is not None:
        done["archive_ref"] = archive_ref
    for key, value in done.items():  # as the flush would clean them (ppt_web/text.py)
        if isinstance(value, str) and NOT_ARCHIVABLE.search(value):
            done[key] = clean(value)

    def finish() -> bool:
        statements = _statements()
        row = {"job_id": job_id, **{f"v_{key}": value for key, value in done.items()}}
        if claim is not None:
            row["claim"] = claim
        if not _write((statements.finish if archive_ref is None else statements.finish_with_ref)[claim is not None],
                      row):
            if claim is None or not _row_is(job_id, job_status=JobStatus.DONE, claimed_by=claim,
                                            archive_status=archive_status, done_at=done["done_at"]):
                return False
            # Done by this very write already (its done_at: not by a reply the consumer applied meanwhile):
            # this is write_retrying's second try, and the first one's commit landed (only its answer was
            # lost). Its wake of the successors ran, but they are told of it only after a commit that
            # answers: wake them again.
            if then is not None:
                then()
            return True
        if also is not None:
            also()
        if then is not None:
            then()
        return True
    written = write_retrying(finish)
    db.session.expire(job)
    if written:
        return outcome
    log.warning("archive job %s: the claim %s no longer holds it (its lease ran out while it was sent); "
                "the outcome %r is not written", job_id, claim or "(none: the job is gone)", outcome)
    return claims.LOST


def _row_is(job_id: int, **expected) -> bool:
    """Whether the job's row holds these values now (a write that changed nothing: was it there already?)."""
    table = cast(Table, ArchiveJob.__table__)
    found = db.session.execute(select(*(table.c[column] for column in expected))
                               .where(table.c.id == job_id)).first()
    return found is not None and tuple(found) == tuple(expected.values())


def write_retrying(change: Callable[[], R], commit: Callable[[], None] | None = None) -> R:
    """change() and commit (db.session.commit, or the one given). A locked (SQLite) or unreachable database
    is tried again with back-off for DB_RETRY_SECONDS: an outage must not fail a job for good, nor leave it
    to its lease."""
    if _together.get():  # part of a run's outcomes: committed (and tried again) with them
        return change()
    delay, deadline = 0.5, time.monotonic() + DB_RETRY_SECONDS
    while True:
        try:
            result = change()
            (commit or _commit)()
            return result
        except OperationalError as exc:
            db.session.rollback()
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database unavailable (%s); trying again in %.1f s", exc.orig, delay)
            time.sleep(delay)
            delay = min(delay * 2, 8)


@contextlib.contextmanager
def keep_lease(job_id: int | list[int], token: str) -> Iterator[None]:
    """While the block runs, the claim's lease is moved on every quarter lease, so a job that takes long
    keeps it and one whose process died is free again within PPT_ARCHIVE_LEASE_SECONDS. The UPDATE holds
    only while this claim (token) is the job's; once the job is done, waiting or handed over, it changes
    nothing. A batch's jobs (a list) are one claim. The claims in hand are moved on by one thread per process
    (_LeaseKeeper), not a thread per job: starting and joining one was 0.2 ms of the sender's 3.6 ms for a post
    (SQLite, http)."""
    claim = _Lease(list(job_id) if isinstance(job_id, list) else [job_id], token, db.engine,
                   current_app.config["PPT_ARCHIVE_LEASE_SECONDS"])
    _leases.add(claim)
    try:
        yield
    finally:
        _leases.remove(claim)


@dataclasses.dataclass(eq=False)
class _Lease:
    """A claim in hand: its jobs, its token, the engine to write with, the lease's length and the next beat."""

    ids: list[int]
    token: str
    engine: Engine
    seconds: float
    due: float = 0.0  # time.monotonic() of the next beat

    @property
    def every(self) -> float:
        return max(0.2, self.seconds / 4)

    def beat(self) -> None:
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # A job's row locked by another transaction: this beat gives up within its interval, tried
                    # again at the next one, rather than hold up the beats of every other claim in the process.
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(self.every * 1000)}")
                conn.execute(update(ArchiveJob).where(
                    ArchiveJob.id.in_(self.ids), ArchiveJob.job_status == JobStatus.IN_PROGRESS,
                    ArchiveJob.claimed_by == self.token, ArchiveJob.reply_deadline.is_(None))
                    .values(lease_until=utcnow() + timedelta(seconds=self.seconds)))
        except Exception as exc:  # noqa: BLE001 - the next beat tries again; the lease has room for two misses
            log.warning("archive job %s: lease not extended: %s", self.ids[0] if len(self.ids) == 1 else self.ids,
                        exc)


class _LeaseKeeper:
    """The thread of this process that moves on the leases of the claims in hand (keep_lease), each every
    quarter lease from when it was taken. Started at the first claim, and again in a forked child (a fork
    leaves the parent's threads behind); it sleeps while no claim is in hand."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._claims: list[_Lease] = []
        self._pid = 0
        self._wakes_at = NEVER  # time.monotonic() the sleeping thread wakes at; NEVER while it is awake
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._cond, self._claims, self._pid, self._wakes_at = threading.Condition(), [], 0, NEVER

    def add(self, claim: _Lease) -> None:
        claim.due = time.monotonic() + claim.every
        with self._cond:
            self._claims.append(claim)
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, args=(self._cond,), daemon=True, name="archive-leases").start()
            if claim.due < self._wakes_at:  # else the thread wakes in time anyway: woken per job, it cost a switch
                self._cond.notify()

    def remove(self, claim: _Lease) -> None:
        """The claim's leases moved on no more (a beat under way may still end: once the job is done, waiting
        or handed over, it changes nothing; it is not waited for, since a locked database may hold it)."""
        with self._cond:
            self._claims.remove(claim)

    def _run(self, cond: threading.Condition) -> None:
        while cond is self._cond:  # (a forked child makes a new condition and a thread of its own)
            with cond:
                now = time.monotonic()
                due = [claim for claim in self._claims if claim.due <= now]
                if not due:
                    self._wakes_at = min((claim.due for claim in self._claims), default=now + 60)
                    cond.wait(self._wakes_at - now)
                    self._wakes_at = NEVER
                    continue
                for claim in due:
                    claim.due = now + claim.every
            for claim in due:
                with cond:
                    if claim not in self._claims:  # its block ended meanwhile
                        continue
                claim.beat()


NEVER = float("-inf")
_leases = _LeaseKeeper()


def _set_back(*conditions, not_sent: Sequence[int] = ()) -> list[int]:
    """In-progress jobs (not handed over) meeting conditions back to Ny, told again by the next sweep;
    their ids. Only a read when there are none, so it is cheap to run often. not_sent: those of them known
    never to have gone to the archive (a batch cut short before them): their claim's attempt is given back."""
    where = [ArchiveJob.job_status == JobStatus.IN_PROGRESS, ArchiveJob.reply_deadline.is_(None), *conditions]
    ids = list(db.session.scalars(select(ArchiveJob.id).where(*where).order_by(ArchiveJob.id).limit(1000)))
    if not ids:
        db.session.rollback()
        return []
    back = dict(job_status=JobStatus.NEW, lease_until=None, claimed_by=None, notified_at=None,
                **message_values("worker_stopped"))
    unsent = set(not_sent)
    attempt_back = {**back, "attempts": sql_case((ArchiveJob.attempts > 0, ArchiveJob.attempts - 1), else_=0)}
    sent = [job_id for job_id in ids if job_id not in unsent]
    for chosen, values in ((sent, back), ([job_id for job_id in ids if job_id in unsent], attempt_back)):
        if chosen:
            changed_rows(update(ArchiveJob).where(ArchiveJob.id.in_(chosen), *where).values(**values)
                         .execution_options(synchronize_session=False))
    db.session.commit()
    return ids


def release_claims(token: str) -> list[int]:
    """The jobs a dead (or failed) claimant held, back to Ny at once: nobody else can be sending them."""
    return write_retrying(lambda: _set_back(ArchiveJob.claimed_by == token))


def reclaim_expired(now: datetime | None = None) -> list[int]:
    """Jobs whose lease ran out (their worker and horse died, or stalled) back to Ny; their ids."""
    return _set_back(ArchiveJob.lease_until < (now or utcnow()))


def _predecessor_blocks(job: ArchiveJob) -> tuple[str, dict] | None:
    """Jobs of one case go in order: a post waits until its case exists in the archive. Returns the
    message (code and values) that says what it waits for, or None when it may go."""
    before = _job_before(job.after_job_id)
    while before is not None and before.deleted_at is not None:
        before = _job_before(before.after_job_id)  # a deleted job no longer holds anyone up
    if before is None or before.archive_status == ArchiveStatus.ARCHIVED:
        return None
    failed = before.job_status == JobStatus.DONE and before.archive_status == ArchiveStatus.FAILED
    return ("waiting_failed" if failed else "waiting"), {"operation": before.event, "job": before.id}


def _job_before(job_id: int | None) -> Row | None:
    """The columns _predecessor_blocks reads of a job (as this transaction sees it), or None."""
    return None if job_id is None else db.session.execute(_statements().before, {"job_id": job_id}).first()


def _wake_successors(job: ArchiveJob) -> None:
    """The Ny jobs that waited for this one are due now and told after the commit (in the finishing
    transaction: one statement, and a job done without them is not told of twice)."""
    if _queued.get() is not None:
        _write(_WAKE, {"job_id": job.id})
        return
    successors = sorted(db.session.scalars(_statements().wake, {"job_id": job.id, "now": utcnow()}))
    for successor_id in successors:
        enqueue_after_commit(Job.SEND_ARCHIVE_JOB, successor_id)


SWEEP_BATCH = 50
SWEEP_SLACK = 0.1  # of a period: a sweep may start a little early (the timer's and the queue's delays)


def enqueue_batches(job_ids: Sequence[int], at_front: bool = False) -> int:
    """Archive jobs handed to the queue in batches of SWEEP_BATCH, each with time for all of its jobs (the
    transport's timeout and some, per job): RQ's default of 180 s would cut a batch to a slow archive
    short, again and again. How many were queued (Redis errors are the caller's)."""
    per_job = current_app.config["PPT_ARCHIVE_HTTP_TIMEOUT"] + 30
    queued = 0
    for start in range(0, len(job_ids), SWEEP_BATCH):
        batch = list(job_ids[start:start + SWEEP_BATCH])
        enqueue(Job.SEND_ARCHIVE_JOBS, batch, job_timeout=len(batch) * per_job, at_front=at_front)
        queued += len(batch)
    return queued


def quiet_period() -> timedelta:
    """How long a Ny job goes untold before the sweep tells a worker about it: one sweep period, less
    a tenth, so a sweep that starts a moment early still takes the jobs that waited since the last one."""
    return timedelta(seconds=current_app.config["PPT_SWEEP_SECONDS"] * (1 - SWEEP_SLACK))


def sweep(now: datetime | None = None, limit: int = 5000) -> dict:
    """What the routine's minute job does, and more: expired leases back to Ny, asynchronous
    replies read, and every due Ny job handed to the queue."""
    now = now or utcnow()
    requeued = len(reclaim_expired(now))  # notified_at cleared: handed to the queue below
    replies_read = _read_async_replies(now)
    # Due jobs not told to a worker for a sweep period: one whose notice Redis lost is told by the next
    # sweep after a period, so none waits more than two. A notice still queued behind a backlog is told
    # again at most once a period (the claim makes the extra notice a no-op, never a second send).
    quiet = now - quiet_period()
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
        for start in range(0, len(due), SWEEP_BATCH):  # batches: one worker's run for many jobs
            queued += enqueue_batches(due[start:start + SWEEP_BATCH])
    except Exception:  # noqa: BLE001 - without Redis, process here: nothing waits for it
        for job_id in due[queued:]:
            process(job_id)
    return {"requeued": requeued, "replies": replies_read, "due": len(due), "queued": queued}


def _read_async_replies(now: datetime) -> int:
    waiting = list(db.session.scalars(select(ArchiveJob).where(
        ArchiveJob.job_status == JobStatus.IN_PROGRESS, ArchiveJob.reply_deadline.is_not(None)).limit(1000)))
    if not waiting:
        return 0
    try:
        transport: transports.Transport | None = transports.get_transport()
    except SettingsError as exc:  # the deadlines still hold; the jobs' sends say what is wrong
        log.warning("archive sweep: %s", exc)
        transport = None
    read = 0
    for job in waiting:
        reply = transport.poll(job.message_id) if transport is not None else None
        if reply is not None:
            apply_reply(job, reply, asynchronous=True)
            read += 1
        elif job.reply_deadline is not None and job.reply_deadline < now:
            read += write_retrying(functools.partial(_no_receipt, job.id, now))
    return read


def _no_receipt(job_id: int, now: datetime) -> int:
    """Feil "no receipt" for a job whose reply deadline passed; conditional, so a receipt the consumer
    applied since the row was read stays."""
    return changed_rows(update(ArchiveJob).where(
        ArchiveJob.id == job_id, ArchiveJob.job_status == JobStatus.IN_PROGRESS,
        ArchiveJob.reply_deadline.is_not(None), ArchiveJob.reply_deadline < now)
        .values(job_status=JobStatus.DONE, archive_status=ArchiveStatus.FAILED, done_at=utcnow(),
                lease_until=None, reply_deadline=None, **message_values("no_receipt"))
        .execution_options(synchronize_session=False))
