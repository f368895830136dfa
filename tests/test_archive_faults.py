"""Fault injection: workers killed with SIGKILL mid-stream, Redis gone, the archive down.
Nothing is lost, nothing is archived twice."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy import func, select

from ppt_web.archive import sending as archive
from ppt_web.archive.transports.local import LocalArchive
from ppt_web.cases import posts
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob

from . import builders
from .archive_server import ArchiveServer
from .conftest import user
from .helpers import ROOT, stored_count, worker_env

pytestmark = pytest.mark.app_config(PPT_QUEUE_NAME=f"faults-{uuid.uuid4().hex[:8]}", PPT_ARCHIVE_LEASE_SECONDS=3,
                                    PPT_ARCHIVE_BACKOFF_SECONDS=1)


def start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_all_done(timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        left = db.session.scalar(select(func.count()).select_from(ArchiveJob)
                                 .where(ArchiveJob.archive_status != "archived"))
        if left == 0:
            return
        time.sleep(0.5)
    rows = db.session.execute(select(ArchiveJob.id, ArchiveJob.job_status, ArchiveJob.archive_status,
                                     ArchiveJob.message).where(ArchiveJob.archive_status != "archived")).all()
    raise AssertionError(f"not archived in time: {rows[:5]}")


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_duplicates_nothing(app, ctx):
    env = {**worker_env(app), "PPT_SWEEP_SECONDS": "1", "PPT_ARCHIVE_LEASE_SECONDS": "3",
           "PPT_ARCHIVE_BACKOFF_SECONDS": "1"}
    pdf = builders.make_pdf(tag="faults")
    cases = [builders.case(title=f"Sak {i}") for i in range(10)]
    drafts = [builders.post(case, title=f"Dokument {n}", pdf=pdf) for n in range(10) for case in cases]
    rng = random.Random(7)
    kill_at = set(rng.sample(range(5, 95), 5))
    worker = start_worker(env)
    try:
        for n, draft in enumerate(drafts):
            posts.finalize(user("radgjevar1"), draft.id)
            if n in kill_at:
                time.sleep(rng.uniform(0.05, 0.4))  # somewhere in the middle of its work
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
                worker = start_worker(env)
        wait_all_done()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    assert db.session.scalar(select(func.count()).select_from(ArchiveJob)) == 110
    archived = LocalArchive(app.config["PPT_LOCAL_ARCHIVE_DIR"])
    assert stored_count(archived) == 110
    for draft in drafts:
        assert len(archived.messages_for(f"post:{draft.id}")) == 1


@pytest.mark.slow
def test_redis_down_during_finalizations_then_everything_arrives(app, ctx):
    """No error for the user while Redis is away; the sweep archives it all when it is back."""
    redis_url = app.config["PPT_REDIS_URL"]
    app.config["PPT_REDIS_URL"] = "redis://127.0.0.1:1/0"  # Redis unreachable
    for i in range(5):
        builders.finalized_post(builders.case(title=f"Utan Redis {i}"), title="Notat")
    assert db.session.scalar(select(func.count()).select_from(ArchiveJob)
                             .where(ArchiveJob.job_status == "new")) == 10
    app.config["PPT_REDIS_URL"] = redis_url  # back
    worker = start_worker({**worker_env(app), "PPT_SWEEP_SECONDS": "1"})
    try:
        wait_all_done(120)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)


def test_archive_down_then_up(app, ctx):
    with ArchiveServer() as server:
        app.config.update(PPT_ARCHIVE_BACKEND="http", PPT_ARCHIVE_HTTP_URL=server.url, PPT_ARCHIVE_MAX_ATTEMPTS=20)
        server.mode = "server_error"
        builders.finalized_post(builders.case(), title="Notat")
        for job_id in db.session.scalars(select(ArchiveJob.id)):
            archive.process(job_id, "test")
        case_job, post_job = db.session.scalars(select(ArchiveJob).order_by(ArchiveJob.id))
        assert case_job.archive_status == "failed" and "Forsøk 1" in case_job.message
        assert post_job.archive_status == "new" and "Ventar på" in post_job.message  # the case first
        server.mode = "ok"
        for _ in range(10):
            db.session.execute(ArchiveJob.__table__.update().values(next_attempt_at=None))
            db.session.commit()
            archive.sweep()
            for job_id in list(db.session.scalars(select(ArchiveJob.id).where(ArchiveJob.job_status == "new"))):
                archive.process(job_id, "test")
        db.session.expire_all()
        assert {(j.job_status, j.archive_status) for j in db.session.scalars(select(ArchiveJob))} == {("done", "archived")}
        assert len(server.stored) == 2
