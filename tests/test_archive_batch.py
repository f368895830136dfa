"""A batch of archive jobs in one work horse (the sweep's): claimed in one statement, sent in order, the
same outcomes as one by one; and the built-in archive's open connection, which must follow its file."""
from __future__ import annotations

import shutil
from datetime import timedelta

from sqlalchemy import select, update

from ppt_web.archive import sending
from ppt_web.archive.transports.local import LocalArchive
from ppt_web.cases import posts
from ppt_web.clock import utcnow
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob

from . import builders
from .conftest import user


def set_job(job_id: int, **values) -> None:
    db.session.execute(update(ArchiveJob).where(ArchiveJob.id == job_id).values(**values))
    db.session.commit()


def job(job_id: int) -> ArchiveJob:
    db.session.expire_all()
    return db.session.get_one(ArchiveJob, job_id)


def test_a_batch_sends_only_the_jobs_it_wins_and_leaves_the_others_as_they_are(app, ctx):
    cases = [builders.case(title=f"Sak {i}") for i in range(5)]
    ids = list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)))
    assert len(ids) == 5
    held, later, deleted = ids[1], ids[2], ids[3]
    set_job(held, job_status="in_progress", claimed_by="another#1", lease_until=utcnow() + timedelta(seconds=20))
    set_job(later, next_attempt_at=utcnow() + timedelta(hours=1))
    set_job(deleted, deleted_at=utcnow())

    outcomes = sending.process_many(ids, "w1")

    assert outcomes == {"archived": 2, "not claimed": 3}
    assert [job(i).archive_status for i in (ids[0], ids[4])] == ["archived", "archived"]
    assert job(held).claimed_by == "another#1" and job(held).job_status == "in_progress"  # another's: untouched
    assert job(later).job_status == "new" and job(later).attempts == 0
    assert job(deleted).job_status == "new"
    stored = LocalArchive(app.config["PPT_LOCAL_ARCHIVE_DIR"])
    assert stored.stored_count() == 2 and cases


def test_a_case_and_its_posts_in_one_batch_go_in_order(app, ctx):
    case = builders.case()
    for n in range(3):
        posts.finalize(user("radgjevar1"), builders.post(case, title=f"Dokument {n}").id)
    ids = list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)))
    assert len(ids) == 4

    assert sending.process_many(ids, "w1") == {"archived": 4}

    done = [job(i) for i in ids]
    assert all(j.job_status == "done" and j.archive_status == "archived" for j in done)
    assert [j.done_at for j in done] == sorted(j.done_at for j in done)  # the folder first, then its posts in order
    assert all(j.claimed_by and j.claimed_by.startswith("w1#") for j in done)


def test_a_batch_told_twice_sends_each_job_once(app, ctx):
    builders.case(title="Ein")
    builders.case(title="To")
    ids = list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)))
    assert sending.process_many(ids, "w1") == {"archived": 2}
    assert sending.process_many(ids, "w2") == {"not claimed": 2}
    assert LocalArchive(app.config["PPT_LOCAL_ARCHIVE_DIR"]).stored_count() == 2


def test_the_built_in_archive_removed_between_messages_is_set_up_again(app, ctx):
    """The archive keeps its database connection open between messages; a folder removed meanwhile (a
    reset) is made again on the next message, which is stored there, not in the removed file."""
    builders.case(title="Før")
    first = list(db.session.scalars(select(ArchiveJob.id)))
    assert sending.process_many(first, "w1") == {"archived": 1}
    folder = app.config["PPT_LOCAL_ARCHIVE_DIR"]
    shutil.rmtree(folder)

    builders.case(title="Etter")
    second = list(db.session.scalars(select(ArchiveJob.id).where(ArchiveJob.id.not_in(first))))
    assert sending.process_many(second, "w1") == {"archived": 1}
    assert LocalArchive(folder).stored_count() == 1
    assert LocalArchive(folder).messages_for(f"case:{job(second[0]).case_id}")
