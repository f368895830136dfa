"""The queue wiring: a job handed over after commit runs in a real forking worker on real Redis."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import select

from ppt_web.extensions import db
from ppt_web.models import ArchiveJob, ArchiveStatus
from ppt_web.queue import Job, enqueue_after_commit, get_queue

from . import builders
from .helpers import ROOT, run_worker_burst

pytestmark = pytest.mark.app_config(PPT_QUEUE_NAME=f"test-{uuid.uuid4().hex[:8]}")


@pytest.mark.slow
@pytest.mark.app_config(PPT_ARCHIVE_IMMEDIATE=False)
def test_job_enqueued_after_commit_runs_in_a_forking_worker(app, ctx):
    """Commit -> Redis -> `python worker.py` (forks per job) -> the job writes to the database."""
    case = builders.case()  # its "create folder" job waits for the sweep (not told at once here)
    job_id = db.session.scalar(select(ArchiveJob.id).where(ArchiveJob.case_id == case.id))
    enqueue_after_commit(Job.SEND_ARCHIVE_JOB, job_id)
    assert get_queue().count == 0  # nothing reaches Redis before the commit
    db.session.commit()
    assert get_queue().count == 1
    done = run_worker_burst(app)
    assert done.returncode == 0, done.stderr
    db.session.expire_all()
    assert db.session.get(ArchiveJob, job_id).archive_status == ArchiveStatus.ARCHIVED
    assert get_queue().count == 0 and get_queue().failed_job_registry.count == 0


def test_rolled_back_work_enqueues_nothing(app, ctx):
    enqueue_after_commit(Job.SEND_ARCHIVE_JOB, 0)
    db.session.rollback()
    db.session.commit()
    assert get_queue().count == 0


def test_redis_down_does_not_fail_the_users_commit(app, ctx):
    """If Redis is unreachable after commit, the change stands; the sweep will find the work."""
    app.config["PPT_REDIS_URL"] = "redis://127.0.0.1:1/0"
    from ppt_web.activity import service as activity

    activity.record("sign_in", actor_name="while-redis-down")
    enqueue_after_commit(Job.SEND_ARCHIVE_JOB, 0)
    db.session.commit()  # must not raise
    from .conftest import activity_rows

    assert activity_rows("sign_in")[-1].actor_name == "while-redis-down"


def test_every_job_name_resolves_to_a_function_of_the_worker():
    """Services enqueue by name; a misspelt or renamed job would only fail in the worker."""
    from rq.utils import import_attribute

    for job in Job:
        assert callable(import_attribute(str(job))), job


@pytest.mark.slow
@pytest.mark.one_database  # not the test database: a child makes an app and counts its unconfigured mappers
def test_the_app_is_made_with_its_mappers_configured_so_a_forked_horse_cannot_inherit_that_lock(tmp_path):
    """A work horse forked while a worker thread configured the ORM hung for good (the lock came
    along held). create_app() configures the mappers itself, so no thread takes that lock later."""
    code = ("from ppt_web import create_app; create_app({'SECRET_KEY': 'x'}); "
            "from sqlalchemy.orm import mapperlib; "
            "print(sum(r._new_mappers for r in mapperlib._all_registries()))")
    env = {**os.environ, "PPT_INSTANCE_PATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "0", done.stderr
