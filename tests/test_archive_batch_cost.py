"""What a batch job costs the worker: its statements (the job with its case and post in one load, the
outcome by one UPDATE, the successors woken by one more; the archive settings once a batch), and that the outcome's row is written as the
flush wrote it before (text the archive cannot carry cleaned out of the message). And what one job costs
(an immediate one, sent by the worker's sender): the job it waits for read by a few columns, no thread
started per job."""
from __future__ import annotations

import threading
import time

from sqlalchemy import event, select

from ppt_web.archive import sending
from ppt_web.cases import posts
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob, ArchiveStatus, Case
from ppt_web.text import NOT_ARCHIVABLE

from . import builders
from .conftest import user


def test_a_batch_costs_five_statements_a_job_at_most_besides_its_claim(app, ctx):
    case = builders.case()
    case_id = case.id
    for n in range(3):
        posts.finalize(user("radgjevar1"), builders.post(case, title=f"Dokument {n}").id)
    ids = list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)))
    db.session.expunge_all()
    seen: list[str] = []
    listener = lambda *args: seen.append(args[2].split()[0].upper())  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert sending.process_many(ids, "w1") == {"archived": 4}
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    claim = 2 if db.engine.dialect.name == "postgresql" else 1  # SELECT ... FOR UPDATE SKIP LOCKED first
    # The settings once; per job: the job with its case and post, its predecessor (a post's), the receipt's
    # ids on the case or post, the outcome, the wake of its successors.
    assert len(seen) <= claim + 1 + 5 * len(ids), seen
    done = [db.session.get_one(ArchiveJob, i) for i in ids]
    assert all(j.archive_status == "archived" and j.archive_ref for j in done)
    case = db.session.get_one(Case, case_id)
    assert all(p.archive_system_id for p in case.posts) and case.archive_system_id


def test_a_run_s_outcomes_are_all_built_before_the_first_write_and_written_by_kind(app, ctx, monkeypatch):
    """On SQLite the first UPDATE of a transaction takes the database's one write lock, held until the
    commit, and every other worker's claim or outcome waits for it. A run's outcomes are all worked out
    first and then written, each kind of UPDATE (the receipt's ids, the outcome, the wake of successors)
    as one executemany. Before, each outcome was worked out inside the lock, which held it for 15 ms of a
    75 ms batch of 50 and capped two workers at 1.6 times one."""
    for n in range(6):
        builders.case(title=f"Sak {n}")
    ids = list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)))
    db.session.expunge_all()
    seen: list[str] = []
    real_reply = sending.apply_reply

    def reply(job, answer, asynchronous=False, claim=None):
        seen.append("reply")
        return real_reply(job, answer, asynchronous, claim)

    monkeypatch.setattr(sending, "apply_reply", reply)
    listener = lambda *args: seen.append(args[2].split()[0].upper())  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert sending.process_many(ids, "w1") == {"archived": len(ids)}
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    first, last = seen.index("reply"), len(seen) - 1 - seen[::-1].index("reply")
    assert seen[first:last + 1] == ["reply"] * len(ids), seen  # nothing written while outcomes are worked out
    writes = [s for s in seen[last + 1:] if s in ("UPDATE", "INSERT", "DELETE")]
    assert len(ids) >= 6 and 1 <= len(writes) <= 3, seen  # by kind, not by job
    assert all(j.archive_status == "archived" and j.done_at for j in
               db.session.scalars(select(ArchiveJob).where(ArchiveJob.id.in_(ids))))
    assert all(c.archive_system_id for c in db.session.scalars(select(Case)))


def test_a_finished_job_s_message_is_cleaned_as_before(app, ctx):
    builders.case()
    job = db.session.scalars(select(ArchiveJob)).one()
    sending._finish(job, ArchiveStatus.FAILED, "refused", claim=None, outcome="failed",
                    detail="avvist\x07 av\x1b arkivet")
    db.session.expire_all()
    job = db.session.get_one(ArchiveJob, job.id)
    assert (job.job_status, job.archive_status, job.done_at is not None) == ("done", "failed", True)
    assert "avvist av arkivet" in job.message and not NOT_ARCHIVABLE.search(job.message)


def _statements_of(run) -> list[str]:
    seen: list[str] = []
    listener = lambda *args: seen.append(" ".join(args[2].split()).upper())  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        run()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return seen


def test_one_post_job_reads_the_job_it_waits_for_by_a_few_columns(app, ctx):
    """The UI's path, one job at a time (an immediate job in the worker's sender): its claim; the job with its
    case and post in one load; what the job it waits for says (its status, not its whole row: the ORM's load
    of it, snapshot and receipt parsed, was a tenth of the job's CPU time); the settings; the receipt's ids
    on the post; the outcome; the wake."""
    case = builders.case()
    assert sending.process(db.session.scalar(select(ArchiveJob.id)), "w1") == "archived"
    posts.finalize(user("radgjevar1"), builders.post(case, title="Dokument").id)
    job_id = db.session.scalar(select(ArchiveJob.id).where(ArchiveJob.post_id.is_not(None)))
    db.session.expunge_all()

    result: list[str] = []
    seen = _statements_of(lambda: result.append(sending.process(job_id, "w1")))

    assert result == ["archived"]
    claim = 1  # one statement on both engines (on PostgreSQL the FOR UPDATE SKIP LOCKED is its subquery)
    assert len(seen) == claim + 6, seen
    assert len([s for s in seen if s.startswith("SELECT") and "ARCHIVE_JOB.SNAPSHOT" in s]) == 1, seen  # its own
    job = db.session.get_one(ArchiveJob, job_id)
    assert job.archive_status == "archived" and job.post.archive_system_id and job.case.archive_system_id


def test_a_post_waits_for_its_case_and_says_so(app, ctx):
    """A post whose case is not in the archive yet waits, and its message names the job it waits for."""
    case = builders.case()
    case_job = db.session.scalar(select(ArchiveJob.id))
    posts.finalize(user("radgjevar1"), builders.post(case, title="Dokument").id)
    job_id = db.session.scalar(select(ArchiveJob.id).where(ArchiveJob.post_id.is_not(None)))
    db.session.expunge_all()

    assert sending.process(job_id, "w1") == "waiting"

    job = db.session.get_one(ArchiveJob, job_id)
    assert (job.job_status, job.message_code, job.message_params["job"]) == ("new", "waiting", case_job)
    assert job.attempts == 0 and job.claimed_by is None and job.next_attempt_at is not None


def test_jobs_in_hand_one_after_another_start_no_thread_each(app, ctx, monkeypatch):
    """The leases of the claims in hand are moved on by one thread of the process, not one started (and
    joined) per job: that was a twentieth of an immediate job's CPU time."""
    for n in range(5):
        builders.case(title=f"Sak {n}")
    ids = list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)))
    started: list[str] = []
    real = threading.Thread.start

    def start(self):
        started.append(self.name)
        return real(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    assert [sending.process(job_id, "w1") for job_id in ids] == ["archived"] * 5
    assert len(started) <= 1, started


def test_one_job_s_claim_names_its_id_and_each_write_commits_once(app, ctx):
    """The UI's path claims one job: by its id (not an IN list rendered anew for every claim); and a job is
    two commits, its claim's and its outcome's (the claim was committed a second time, empty: work for nothing)."""
    builders.case()
    job_id = db.session.scalar(select(ArchiveJob.id))
    db.session.expunge_all()
    commits: list[object] = []

    def committed(session) -> None:
        commits.append(session)

    event.listen(db.session, "after_commit", committed)
    try:
        seen = _statements_of(lambda: commits.append(sending.process(job_id, "w1")))
    finally:
        event.remove(db.session, "after_commit", committed)
    claim = next(s for s in seen if s.startswith("UPDATE ARCHIVE_JOB"))
    assert " IN (" not in claim and "ARCHIVE_JOB.ID = " in claim, seen
    assert commits.count("archived") == 1 and len(commits) == 3, commits  # the outcome, and two commits
    assert db.session.get_one(ArchiveJob, job_id).archive_status == "archived"


def test_jobs_in_hand_one_after_another_wake_no_thread_each(app, ctx, monkeypatch):
    """A claim taken while the lease thread sleeps until before the claim's first beat does not wake it: woken
    for every job, it cost the sender a thread switch per job."""
    for n in range(6):
        builders.case(title=f"Sak {n}")
    ids = list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)))
    assert sending.process(ids[0], "w1") == "archived"  # the lease thread started, asleep till a beat is due
    time.sleep(0.05)
    woken: list[int] = []
    real = threading.Condition.notify

    def notify(self, n=1):
        if self is sending._leases._cond:  # (the connection pool's queue notifies too)
            woken.append(n)
        return real(self, n)

    monkeypatch.setattr(threading.Condition, "notify", notify)
    assert [sending.process(job_id, "w1") for job_id in ids[1:]] == ["archived"] * 5
    assert len(woken) <= 1, woken
