"""The built-in archive takes a batch's messages in one transaction (one fsync, one turn at its write lock),
and the batch's outcomes are written in one transaction on our side: yet every message is judged as if it
came alone, one bad message costs only itself, and a batch cut off between the two commits is sent again
without anything stored twice."""
from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import select, update

from ppt_web.archive import sending
from ppt_web.archive.message import build
from ppt_web.archive.reference import archive as reference_archive
from ppt_web.archive.reference.store import Store
from ppt_web.archive.transports.local import LocalArchive
from ppt_web.extensions import db
from ppt_web.files.storage import file_path
from ppt_web.models import ArchiveJob

from . import builders


def jobs() -> list[ArchiveJob]:
    db.session.expire_all()
    return list(db.session.scalars(select(ArchiveJob).order_by(ArchiveJob.id)))


def archive(app) -> LocalArchive:
    return LocalArchive(app.config["PPT_LOCAL_ARCHIVE_DIR"])


@pytest.fixture
def transactions(monkeypatch):
    """How many write transactions the built-in archive opens."""
    opened: list[int] = []
    write = Store.write

    @contextlib.contextmanager
    def counting(self):
        opened.append(1)
        with write(self) as conn:
            yield conn

    monkeypatch.setattr(Store, "write", counting)
    return opened


def test_a_batch_is_one_transaction_in_the_built_in_archive(app, ctx, transactions):
    for i in range(6):
        builders.case(title=f"Sak {i}")
    ids = [j.id for j in jobs()]

    assert sending.process_many(ids, "w1") == {"archived": 6}

    assert len(transactions) == 1
    assert archive(app).stored_count() == 6
    assert all(j.archive_status == "archived" and j.archive_ref for j in jobs())


def test_a_refused_message_in_a_batch_leaves_nothing_and_the_others_are_archived(app, ctx, transactions):
    first = builders.case(title="Før")
    builders.finalized_post(first, title="Notat om ei sak arkivet ikkje kjenner")
    builders.case(title="Etter")
    folder_job, post_job, other_job = [j.id for j in jobs()]
    # The archive never got the first case's folder: its post is refused (ikkefunnet), as it would be alone.
    db.session.execute(update(ArchiveJob).where(ArchiveJob.id == folder_job)
                       .values(job_status="done", archive_status="archived"))
    db.session.commit()

    assert sending.process_many([post_job, other_job], "w1") == {"failed": 1, "archived": 1}

    assert len(transactions) == 1
    by_id = {j.id: j for j in jobs()}
    assert by_id[post_job].archive_status == "failed" and "ikkje" in by_id[post_job].message.lower() \
        or by_id[post_job].message_code == "refused"
    assert by_id[other_job].archive_status == "archived"
    assert archive(app).stored_count() == 1  # the refused one left nothing behind


def test_a_missing_file_fails_its_own_job_only(app, ctx):
    case = builders.case(title="Sak")
    assert sending.process_many([j.id for j in jobs()], "w1") == {"archived": 1}
    builders.finalized_post(case, title="Notat med fil som er borte")
    builders.case(title="Anna sak")
    post_job, other_job = [j.id for j in jobs()][1:]
    message = build(db.session.get_one(ArchiveJob, post_job), app.config.get("PPT_ARCHIVE_SETTINGS"))
    assert message.files
    for f in message.files:
        file_path(f.sha256).unlink()

    assert sending.process_many([post_job, other_job], "w1") == {"file missing": 1, "archived": 1}

    by_id = {j.id: j for j in jobs()}
    assert (by_id[post_job].archive_status, by_id[post_job].message_code) == ("failed", "file_missing")
    assert by_id[other_job].archive_status == "archived"


def three_cases_the_archive_fails_on_the_second(monkeypatch, fault: Exception) -> list[int]:
    """Three case jobs; the built-in archive raises fault while it takes the second one's message."""
    for i in range(3):
        builders.case(title=f"Sak {i}")
    ids = [j.id for j in jobs()]
    broken = db.session.get_one(ArchiveJob, ids[1]).message_id
    take = reference_archive.ReferenceArchive._take

    def faulty(self, conn, meldingstype, message_id, *args):
        if message_id == broken:
            raise fault
        return take(self, conn, meldingstype, message_id, *args)

    monkeypatch.setattr(reference_archive.ReferenceArchive, "_take", faulty)
    return ids


def test_a_fault_in_the_archive_on_one_message_costs_only_that_message(app, ctx, monkeypatch):
    ids = three_cases_the_archive_fails_on_the_second(monkeypatch, KeyError("a fault in the archive's own code"))

    outcomes = sending.process_many(ids, "w1")

    assert outcomes == {"archived": 2, "internal error": 1}
    by_id = {j.id: j for j in jobs()}
    assert [by_id[i].archive_status for i in ids] == ["archived", "failed", "archived"]
    assert archive(app).stored_count() == 2


def test_a_batch_cut_off_after_the_archive_took_it_is_sent_again_and_stored_once(app, ctx, monkeypatch):
    """The archive has committed the batch; our side dies before its commit (the sender killed). The jobs
    are still ours, in progress: set back to Ny and sent again, they get the archive's stored replies."""
    for i in range(4):
        builders.case(title=f"Sak {i}")
    ids = [j.id for j in jobs()]

    def killed() -> None:
        raise SystemExit("the sender is killed")

    with monkeypatch.context() as patched:
        patched.setattr(sending, "commit_keeping_loaded", killed)
        with pytest.raises(SystemExit):
            sending.process_many(ids, "w1")
    db.session.rollback()
    assert archive(app).stored_count() == 4
    assert {j.job_status for j in jobs()} == {"in_progress"}
    assert all(j.archive_status != "archived" for j in jobs())
    token = jobs()[0].claimed_by
    assert sorted(sending.release_claims(token)) == ids  # what the worker does when its sender dies

    assert sending.process_many(ids, "w2") == {"archived": 4}

    assert archive(app).stored_count() == 4  # nothing twice
    assert all(j.archive_status == "archived" and j.archive_ref.get("mappe") for j in jobs())


def test_a_post_waiting_for_a_case_in_the_same_batch_goes_after_it(app, ctx, transactions):
    case = builders.case(title="Sak")
    builders.finalized_post(case, title="Første")
    builders.finalized_post(case, title="Andre")
    other = builders.case(title="Anna sak")
    ids = [j.id for j in jobs()]

    assert sending.process_many(ids, "w1") == {"archived": 4}

    assert all(j.archive_status == "archived" for j in jobs())
    assert other and len(transactions) == 3  # the case; the first post; the second post with the other case


def test_a_database_failure_while_building_sets_the_batch_back_and_sends_none_of_it(app, ctx, monkeypatch):
    """The database failing while a message is built sets every claim of the batch back to Ny. The rest of
    the batch is then no longer this worker's: it must not be sent (another worker may claim it now)."""
    from sqlalchemy.exc import OperationalError

    for i in range(3):
        builders.case(title=f"Sak {i}")
    ids = [j.id for j in jobs()]
    real_build = sending.build

    def failing(job, *args, **kwargs):
        if job.id == ids[0]:
            raise OperationalError("SELECT 1", {}, Exception("the database went away"))
        return real_build(job, *args, **kwargs)

    monkeypatch.setattr(sending, "build", failing)

    assert sending.process_many(ids, "w1") == {"database unavailable": 3}

    assert archive(app).stored_count() == 0
    assert {(j.job_status, j.claimed_by) for j in jobs()} == {("new", None)}


def test_a_fault_writing_one_outcome_fails_that_job_and_the_others_are_written(app, ctx, monkeypatch):
    for i in range(3):
        builders.case(title=f"Sak {i}")
    ids = [j.id for j in jobs()]
    real = sending.record_archive_ids

    def faulty(job, receipt_ids):
        if job.id == ids[1]:
            raise ValueError("a fault in writing one job's receipt")
        return real(job, receipt_ids)

    monkeypatch.setattr(sending, "record_archive_ids", faulty)

    assert sending.process_many(ids, "w1") == {"archived": 2, "internal error": 1}

    by_id = {j.id: j for j in jobs()}
    assert [by_id[i].archive_status for i in ids] == ["archived", "failed", "archived"]
    assert by_id[ids[1]].message_code == "internal_error"


def test_a_constraint_the_archive_trips_on_one_message_costs_only_that_message(app, ctx, monkeypatch):
    import sqlite3

    ids = three_cases_the_archive_fails_on_the_second(
        monkeypatch, sqlite3.IntegrityError("UNIQUE constraint failed: document.post_id, document.dokumentnummer"))

    assert sending.process_many(ids, "w1") == {"archived": 2, "retry later": 1}

    by_id = {j.id: j for j in jobs()}
    assert [by_id[i].archive_status for i in ids] == ["archived", "failed", "archived"]
    assert [by_id[i].attempts for i in ids] == [1, 1, 1] and by_id[ids[1]].job_status == "new"
    assert archive(app).stored_count() == 2


def test_a_batch_cut_off_before_its_run_was_sent_sets_the_run_back_at_once(app, ctx, monkeypatch):
    """Built but not yet sent when the batch ends (its timeout): the run's jobs go back to Ny at once,
    not after their lease."""
    for i in range(3):
        builders.case(title=f"Sak {i}")
    ids = [j.id for j in jobs()]
    real_prepare = sending._prepare

    def stopped(job_id, *args, **kwargs):
        if job_id == ids[2]:
            raise SystemExit("the batch's time is up")
        return real_prepare(job_id, *args, **kwargs)

    monkeypatch.setattr(sending, "_prepare", stopped)
    with pytest.raises(SystemExit):
        sending.process_many(ids, "w1")
    db.session.rollback()

    by_id = {j.id: j for j in jobs()}
    assert [(by_id[i].job_status, by_id[i].claimed_by) for i in ids[:2]] == [("new", None)] * 2
    assert by_id[ids[2]].job_status == "in_progress"  # the one in hand keeps its lease
    assert archive(app).stored_count() == 0
