"""What a batch job costs the worker: its statements (the job with its case and post in one load, the
outcome by one UPDATE, the successors woken by one more; the archive settings once a batch), and that the outcome's row is written as the
flush wrote it before (text the archive cannot carry cleaned out of the message)."""
from __future__ import annotations

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


def test_a_finished_job_s_message_is_cleaned_as_before(app, ctx):
    builders.case()
    job = db.session.scalars(select(ArchiveJob)).one()
    sending._finish(job, ArchiveStatus.FAILED, "refused", detail="avvist\x07 av\x1b arkivet")
    db.session.expire_all()
    job = db.session.get_one(ArchiveJob, job.id)
    assert (job.job_status, job.archive_status, job.done_at is not None) == ("done", "failed", True)
    assert "avvist av arkivet" in job.message and not NOT_ARCHIVABLE.search(job.message)
