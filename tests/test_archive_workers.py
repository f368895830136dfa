"""Real Redis, real forking workers: finalize -> Arkivert, and two workers never send twice."""
from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ppt_web.archive import sending as archive
from ppt_web.archive.transports.local import LocalArchive
from ppt_web.clock import utcnow
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob
from ppt_web.queue import get_queue

from . import builders
from .helpers import ROOT, run_worker_burst, stored_count, worker_env

pytestmark = pytest.mark.app_config(PPT_QUEUE_NAME=f"archive-{uuid.uuid4().hex[:8]}")


@pytest.mark.slow
def test_finalized_document_is_archived_by_a_real_worker(app, ctx):
    post = builders.finalized_post(builders.case(), post_type="N", title="Samtale")
    assert get_queue().count == 2  # told after commit: case folder and post
    done = run_worker_burst(app)
    assert done.returncode == 0, done.stderr
    db.session.expire_all()
    states = {(j.event, j.job_status, j.archive_status) for j in db.session.scalars(select(ArchiveJob))}
    assert states == {("case_created", "done", "archived"), ("post_finalized", "done", "archived")}
    assert LocalArchive(app.config["PPT_LOCAL_ARCHIVE_DIR"]).messages_for(f"post:{post.id}")


@pytest.mark.slow
def test_two_workers_and_two_sweeps_send_each_job_once(app, ctx, tmp_path):
    for i in range(100):
        builders.case(title=f"Sak {i}")  # notified at once
    app.config["PPT_ARCHIVE_IMMEDIATE"] = False
    for i in range(100):
        builders.case(title=f"Stille {i}")  # no Redis notice, as if Redis had lost it: only the sweeps find these
    archive.sweep()  # finds the 100 that were never told: 2 batches of 50
    # A second sweep, late enough that every job counts as not told lately: all 200 again (4 batches).
    archive.sweep(now=utcnow() + timedelta(minutes=5))
    env = worker_env(app)
    logs = [tmp_path / f"worker{n}.log" for n in range(2)]
    workers = [subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "--burst"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=log.open("w")) for log in logs]
    for worker, log in zip(workers, logs, strict=False):
        assert worker.wait(240) == 0, log.read_text()[-3000:]
    db.session.expire_all()
    # On a failure, each job not archived or claimed twice as it was left, and what the workers warned of.
    odd = [(j.id, j.job_status, j.archive_status, j.attempts, j.message_code, j.message_params)
           for j in db.session.scalars(select(ArchiveJob).where(
               (ArchiveJob.archive_status != "archived") | (ArchiveJob.attempts != 1)))]
    warned = [line for log in logs for line in log.read_text().splitlines() if " WARNING " in line or " ERROR " in line]
    assert not odd, (odd, warned[-20:])
    assert db.session.scalar(select(func.count()).select_from(ArchiveJob)
                             .where(ArchiveJob.archive_status == "archived")) == 200
    assert stored_count(LocalArchive(app.config["PPT_LOCAL_ARCHIVE_DIR"])) == 200
    done = "".join(log.read_text() for log in logs)
    # 100 notices at once, then 2 + 4 sweep batches: every job was offered two or three times.
    assert done.count("Job OK") == 106 and all("Job OK" in log.read_text() for log in logs)  # both worked
