"""The archive sender when something around it is slow or stuck: a batch cut short by its time limit, a
retry scheduled while Redis is slow, a job's row locked by another transaction while its lease is moved on."""
from __future__ import annotations

import sqlite3
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
import redis
from rq import Queue
from rq.timeouts import JobTimeoutException
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from ppt_web.archive import sending, transports
from ppt_web.archive.transports.local import LocalArchive
from ppt_web.clock import utcnow
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob, JobStatus
from ppt_web.queue import Job, get_queue

from . import builders
from .conftest import TEST_DATABASE_URL
from .helpers import elsewhere

pytestmark = pytest.mark.app_config(PPT_QUEUE_NAME=f"sender-faults-{uuid.uuid4().hex[:8]}",
                                    PPT_ARCHIVE_IMMEDIATE=False)


def cases(n: int) -> list[int]:
    for i in range(n):
        builders.case(title=f"Sak {i}")
    return list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)))


@pytest.mark.app_config(PPT_ARCHIVE_HTTP_TIMEOUT=90)
def test_a_batch_told_again_after_its_sender_was_cut_short_has_time_for_all_its_jobs(app, ctx):
    """A batch whose sender was killed (its time limit, a crash) goes back to the queue with the time the
    sweep gives a batch, not RQ's default 180 s, which would cut it short again and again on a slow archive."""
    import worker

    ids = cases(3)
    w = worker.PPTWorker([get_queue().name], connection=redis.Redis.from_url(app.config["PPT_REDIS_URL"]))
    w.app = app
    get_queue().empty()
    assert sending.claim_many(ids, sending.claim_token(w.name, 4242)) == ids
    w._free_claims(SimpleNamespace(func_name=str(Job.SEND_ARCHIVE_JOBS), args=(ids,)), 4242)
    told = [get_queue().fetch_job(job_id) for job_id in get_queue().job_ids]
    assert [(job.func_name, job.args) for job in told] == [(str(Job.SEND_ARCHIVE_JOBS), (ids,))]
    assert told[0].timeout == 3 * (90 + 30)
    assert {job.job_status for job in db.session.scalars(select(ArchiveJob))} == {JobStatus.NEW}


def test_jobs_a_cut_batch_never_reached_keep_their_attempts(app, ctx, monkeypatch):
    """The batch's time limit strikes while its first job is in hand: the jobs after it were never sent, so
    their claim does not count as an attempt (each cut cost every waiting job one: after eight, a job never
    sent gave up at its first busy answer)."""
    ids = cases(3)

    def cut_short(job_id, *args, **kwargs):
        raise JobTimeoutException("the batch's time is up")

    monkeypatch.setattr(sending, "_prepare", cut_short)
    with pytest.raises(JobTimeoutException):
        sending.process_many(ids, "w1")
    db.session.expire_all()
    jobs = {job.id: job for job in db.session.scalars(select(ArchiveJob))}
    assert jobs[ids[0]].job_status == JobStatus.IN_PROGRESS and jobs[ids[0]].attempts == 1  # may be on its way
    assert [(jobs[i].job_status, jobs[i].attempts) for i in ids[1:]] == [(JobStatus.NEW, 0)] * 2


def test_a_retry_is_scheduled_only_after_the_outcomes_are_committed(app, ctx, monkeypatch):
    """A run of busy answers: each job's retry is told to the scheduler after the run's one transaction has
    committed, so a slow Redis never holds the database's write lock (SQLite: every user's save waits)."""
    ids = cases(3)
    busy = [transports.Reply(transports.SERVER_ERROR, "arkivet er opptatt")] * 3
    monkeypatch.setattr(LocalArchive, "send_many", lambda self, messages: busy[:len(messages)])
    seen: list = []
    url = app.config["SQLALCHEMY_DATABASE_URI"]

    def enqueue_in(queue, delay, func, *args, **kwargs):
        if url.startswith("sqlite"):
            other = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                seen.append(("free", delay, args))
            except sqlite3.OperationalError as exc:
                seen.append((str(exc), delay, args))
            finally:
                other.close()
        else:  # the job's row, as another process would want it
            with other_engine.connect() as conn:
                try:
                    conn.execute(text("SELECT id FROM archive_job WHERE id = :id FOR UPDATE NOWAIT"), {"id": args[0]})
                    seen.append(("free", delay, args))
                except OperationalError:
                    seen.append(("row locked", delay, args))
                conn.rollback()

    other_engine = create_engine(url)
    monkeypatch.setattr(Queue, "enqueue_in", enqueue_in)
    try:
        assert sending.process_many(ids, "w1") == {"retry later": 3}
    finally:
        other_engine.dispose()
    delay = timedelta(seconds=app.config["PPT_ARCHIVE_BACKOFF_SECONDS"])
    assert sorted(seen) == [("free", delay, (job_id,)) for job_id in ids]


@pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"),
                    reason="a row lock held by another transaction is PostgreSQL's; SQLite locks the whole file")
@pytest.mark.app_config(PPT_ARCHIVE_LEASE_SECONDS=1)
def test_a_locked_row_holds_up_only_its_own_claims_lease(app, ctx):
    """Another transaction holds one job's row: the beat of that claim gives up within its interval, and the
    leases of the process's other claims are still moved on (one thread beats them all)."""
    first, second = cases(2)
    token = sending.claim_token("w1", 4242)
    assert sending.claim_many([first, second], token) == [first, second]
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with other.connect() as holder:
            holder.execute(text("SELECT id FROM archive_job WHERE id = :id FOR UPDATE"), {"id": first})
            with sending.keep_lease(first, token), sending.keep_lease(second, token):
                time.sleep(2.5)  # 2.5 leases: without its beats the second's lease has run out
                db.session.rollback()
                lease = db.session.scalar(select(ArchiveJob.lease_until).where(ArchiveJob.id == second))
                assert lease > utcnow()
            holder.rollback()
    finally:
        other.dispose()


def _another_sender_takes_over(app, job_id: int, batch: bool) -> None:
    """What happens while a sender is paused past its lease (a stopped VM): the sweep sets its jobs back to Ny
    and another sender claims, sends and finishes them."""
    def takes_over():
        sending.reclaim_expired(utcnow() + timedelta(hours=1))
        return sending.process_many([job_id], "other") if batch else sending.process(job_id, "other")

    assert elsewhere(app, takes_over)


@pytest.fixture
def meanwhile(app):
    """meanwhile(sql, job_id): a change to a job by another connection, committed at once (what another
    process does while the sender is at work)."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])

    def change(sql: str, job_id: int) -> None:
        with engine.begin() as conn:
            conn.execute(text(sql), {"id": job_id})

    yield change
    engine.dispose()


def test_a_sender_paused_past_its_lease_leaves_the_outcome_of_the_sender_that_took_over(app, ctx, monkeypatch):
    """The paused sender's send ends in a refusal after another sender archived the job: the job stays
    archived, with the other sender's receipt and message; the paused one writes nothing."""
    job_id = cases(1)[0]
    refused = transports.Reply(transports.INVALID, "arkivet avviste meldinga: for seint")

    def paused(self, message, message_id):
        _another_sender_takes_over(app, job_id, batch=True)  # the built-in archive's send_many
        return refused

    monkeypatch.setattr(LocalArchive, "send", paused)
    assert sending.process(job_id, "paused") == "claim lost"
    db.session.expire_all()
    job = db.session.get_one(ArchiveJob, job_id)
    assert (job.job_status, job.archive_status) == (JobStatus.DONE, "archived")
    assert job.claimed_by.startswith("other#") and job.message.startswith("Arkivert") and job.archive_ref
    assert job.case.archive_system_id


def test_a_run_whose_sender_was_paused_writes_nothing_over_what_happened_meanwhile(app, ctx, monkeypatch):
    """A run of three: while its sender was paused, the sweep set all three back and another sender archived
    the first. The run's refusals are not written: the first stays archived, the other two wait for the sweep."""
    ids = cases(3)
    original_send = LocalArchive.send

    def paused(self, messages):
        monkeypatch.setattr(LocalArchive, "send", original_send)
        _another_sender_takes_over(app, ids[0], batch=False)  # the built-in archive's send
        return [transports.Reply(transports.INVALID, "arkivet avviste meldinga: for seint")] * len(messages)

    monkeypatch.setattr(LocalArchive, "send_many", paused)
    assert sending.process_many(ids, "paused") == {"claim lost": 3}
    db.session.expire_all()
    jobs = {job.id: job for job in db.session.scalars(select(ArchiveJob))}
    assert (jobs[ids[0]].job_status, jobs[ids[0]].archive_status) == (JobStatus.DONE, "archived")
    assert jobs[ids[0]].claimed_by.startswith("other#")
    assert [(jobs[i].job_status, jobs[i].claimed_by) for i in ids[1:]] == [(JobStatus.NEW, None)] * 2


def test_a_run_writes_the_outcomes_of_the_jobs_still_its_own_when_one_is_not(app, ctx, monkeypatch, meanwhile):
    """One job of a run was taken from it meanwhile (set back and claimed by another sender): the run's
    outcomes are written for the other two, that one is left to its new claimant."""
    ids = cases(3)

    def one_taken(self, messages):
        meanwhile("UPDATE archive_job SET claimed_by = 'other#1' WHERE id = :id", ids[1])
        return [transports.Reply(transports.INVALID, "arkivet avviste meldinga")] * len(messages)

    monkeypatch.setattr(LocalArchive, "send_many", one_taken)
    assert sending.process_many(ids, "run") == {"claim lost": 1, "failed": 2}
    db.session.expire_all()
    jobs = {job.id: job for job in db.session.scalars(select(ArchiveJob))}
    assert [(jobs[i].job_status, jobs[i].archive_status) for i in ids] == \
        [(JobStatus.DONE, "failed"), (JobStatus.IN_PROGRESS, "new"), (JobStatus.DONE, "failed")]
    assert jobs[ids[1]].claimed_by == "other#1"


def test_a_sender_paused_past_its_lease_does_not_finish_a_job_another_sender_holds(app, ctx, monkeypatch):
    """The job was set back and claimed again, and is on its way with the other sender: the paused sender's
    receipt does not end it under the other's hands."""
    job_id = cases(1)[0]

    def paused(self, message, message_id):
        sending.reclaim_expired(utcnow() + timedelta(hours=1))
        assert sending.claim(job_id, sending.claim_token("other", 1))
        return original_send(self, message, message_id)

    original_send = LocalArchive.send
    monkeypatch.setattr(LocalArchive, "send", paused)
    assert sending.process(job_id, "paused") == "claim lost"
    db.session.expire_all()
    job = db.session.get_one(ArchiveJob, job_id)
    assert (job.job_status, job.claimed_by) == (JobStatus.IN_PROGRESS, "other#1")


def test_a_job_found_waiting_after_its_claim_was_lost_is_left_to_its_new_claimant(app, ctx, monkeypatch,
                                                                                    meanwhile):
    """Setting a waiting job back to Ny holds only while it is still this sender's claim (a locked database
    may hold that write past the lease, and another sender may hold the job by then)."""
    job_id = cases(1)[0]

    def taken_meanwhile(job):
        meanwhile("UPDATE archive_job SET claimed_by = 'other#1' WHERE id = :id", job_id)
        return "waiting", {"operation": "case_created", "job": job_id}

    monkeypatch.setattr(sending, "_predecessor_blocks", taken_meanwhile)
    assert sending.process(job_id, "paused") == "claim lost"
    db.session.expire_all()
    job = db.session.get_one(ArchiveJob, job_id)
    assert (job.job_status, job.claimed_by, job.attempts) == (JobStatus.IN_PROGRESS, "other#1", 1)


def _commit_lands_but_its_answer_is_lost(monkeypatch, name: str, real) -> list:
    """The next commit through sending.<name> after arming (armed.append(1)) reaches the database, but the
    answer does not come back (the connection dropped during COMMIT): write_retrying tries the write again."""
    armed: list = []

    def commit() -> None:
        if not armed:
            return real()
        armed.clear()
        db.session.connection().connection.dbapi_connection.commit()
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(sending, name, commit)
    return armed


def post_waiting_for_its_case() -> tuple[int, int]:
    """A case's job and the job of a post in it, which waits for the case's."""
    from ppt_web.cases import posts

    from .conftest import user

    case = builders.case()
    posts.finalize(user("radgjevar1"), builders.post(case, title="Dokument").id)
    case_job, post_job = db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id))
    return case_job, post_job


def test_a_run_whose_commit_landed_but_went_unanswered_is_archived_and_wakes_its_successors(app, ctx, monkeypatch):
    """Tried again, the run's writes find their jobs done under their own claim: archived, not "claim lost",
    and the jobs that waited for them are told (the first try's notice went with its unanswered commit)."""
    case_job, post_job = post_waiting_for_its_case()
    other_case_jobs = cases(3)[2:]  # (cases() lists every job: the two above, then the new ones)
    get_queue().empty()
    armed = _commit_lands_but_its_answer_is_lost(monkeypatch, "commit_keeping_loaded", sending.commit_keeping_loaded)
    real_send_many = LocalArchive.send_many

    def send_many(self, messages):
        armed.append(1)
        return real_send_many(self, messages)

    monkeypatch.setattr(LocalArchive, "send_many", send_many)
    assert sending.process_many([case_job, *other_case_jobs], "run") == {"archived": 4}
    assert not armed  # (the commit was tried, and answered nothing)
    told = [get_queue().fetch_job(job_id) for job_id in get_queue().job_ids]
    assert [(job.func_name, job.args) for job in told] == [(str(Job.SEND_ARCHIVE_JOB), (post_job,))]


def test_one_job_whose_commit_landed_but_went_unanswered_is_archived_and_wakes_its_successor(app, ctx, monkeypatch):
    case_job, post_job = post_waiting_for_its_case()
    get_queue().empty()
    armed = _commit_lands_but_its_answer_is_lost(monkeypatch, "_commit", db.session.commit)
    real_send = LocalArchive.send

    def send(self, message, message_id):
        armed.append(1)
        return real_send(self, message, message_id)

    monkeypatch.setattr(LocalArchive, "send", send)
    assert sending.process(case_job, "one") == "archived"
    assert not armed
    told = [get_queue().fetch_job(job_id) for job_id in get_queue().job_ids]
    assert [(job.func_name, job.args) for job in told] == [(str(Job.SEND_ARCHIVE_JOB), (post_job,))]


def test_a_send_that_ends_after_a_reply_finished_its_job_neither_claims_that_outcome_nor_wakes(app, ctx,
                                                                                               monkeypatch, meanwhile):
    """While the send was on its way, a reply to an earlier send (Fiks IO's consumer, the sweep) failed the
    job, by id, leaving the claim as it was. The send's own receipt is not taken for its outcome: the job
    stays as the reply left it, and the jobs that wait for it are not woken."""
    case_job, post_job = post_waiting_for_its_case()
    get_queue().empty()
    real_send = LocalArchive.send

    def send(self, message, message_id):
        reply = real_send(self, message, message_id)
        meanwhile("UPDATE archive_job SET job_status = 'done', archive_status = 'failed', "
                  "message = 'arkivet avviste meldinga' WHERE id = :id", case_job)
        return reply

    monkeypatch.setattr(LocalArchive, "send", send)
    assert sending.process(case_job, "one") == "claim lost"
    db.session.expire_all()
    job = db.session.get_one(ArchiveJob, case_job)
    assert (job.job_status, job.archive_status, job.message) == (JobStatus.DONE, "failed", "arkivet avviste meldinga")
    assert get_queue().job_ids == []


def test_a_waiting_job_whose_commit_landed_but_went_unanswered_is_waiting(app, ctx, monkeypatch):
    case_job, post_job = post_waiting_for_its_case()
    armed = _commit_lands_but_its_answer_is_lost(monkeypatch, "_commit", db.session.commit)
    real_blocks = sending._predecessor_blocks

    def blocks(job):
        armed.append(1)
        return real_blocks(job)

    monkeypatch.setattr(sending, "_predecessor_blocks", blocks)
    assert sending.process(post_job, "one") == "waiting"
    assert not armed
    db.session.expire_all()
    job = db.session.get_one(ArchiveJob, post_job)
    assert (job.job_status, job.claimed_by, job.attempts, job.message_code) == (JobStatus.NEW, None, 0, "waiting")
