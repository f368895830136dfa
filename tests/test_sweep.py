"""The archive sweep takes every Ny job that has waited one sweep period, so a job whose notice
Redis lost waits at most two periods (the routine: the background routine takes Ny jobs every minute),
and a job told twice (its own notice and the sweep's) is still sent once."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from ppt_web.archive import sending
from ppt_web.archive.transports.local import LocalArchive
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob
from ppt_web.queue import get_queue

from . import builders
from .helpers import stored_count

pytestmark = pytest.mark.app_config(PPT_QUEUE_NAME=f"sweep-{uuid.uuid4().hex[:8]}")


def _told() -> list[int]:
    """The archive job ids the queue holds notices for (single notices and the sweep's batches)."""
    ids: list[int] = []
    for job in get_queue().jobs:
        if job.func_name.endswith("send_archive_jobs"):
            ids += job.args[0]
        elif job.func_name.endswith("send_archive_job"):
            ids.append(job.args[0])
    return ids


def _lost_notice() -> tuple[ArchiveJob, datetime]:
    """A case is registered: its archive job is told to the queue after the commit, and Redis loses it."""
    get_queue().empty()
    builders.case()
    assert len(_told()) == 1
    get_queue().empty()
    job = db.session.scalars(select(ArchiveJob)).one()
    assert job.notified_at is not None
    return job, job.notified_at


def _period(app) -> timedelta:
    return timedelta(seconds=app.config["PPT_SWEEP_SECONDS"])


def test_a_lost_notice_is_taken_by_the_next_sweep_one_period_later_and_not_before(app, ctx):
    job, told = _lost_notice()
    assert sending.sweep(now=told + _period(app) / 2)["queued"] == 0  # its notice may still be queued
    assert _told() == []
    assert sending.sweep(now=told + _period(app))["queued"] == 1
    assert _told() == [job.id]


@pytest.mark.parametrize("offset", [1, 30, 59])
def test_no_lost_notice_waits_more_than_two_periods(app, ctx, offset):
    """Sweeps every period, at any phase against the job's notice: the job is told by the second sweep
    at the latest, also when that sweep starts a couple of seconds early (the timer and the queue's delay)."""
    job, told = _lost_notice()
    period = _period(app)
    first = told + timedelta(seconds=offset)
    waited = None
    for n, at in enumerate([first, first + period - timedelta(seconds=2), first + 2 * period]):
        if sending.sweep(now=at)["queued"]:
            waited = at - told
            break
        assert n == 0, f"passed over by sweep {n + 1}"
    assert waited is not None and waited < 2 * period
    assert _told() == [job.id]


def test_a_job_told_by_its_own_notice_and_by_the_sweep_is_sent_once(app, ctx):
    """The notice after commit is still queued when the sweep tells the job again: whichever runs first
    claims the job and sends it; the other finds it claimed and does nothing."""
    get_queue().empty()
    builders.case()
    job = db.session.scalars(select(ArchiveJob)).one()
    assert sending.sweep(now=job.notified_at + _period(app))["queued"] == 1
    notices = _told()
    assert notices == [job.id, job.id]
    outcomes = [sending.process(job_id, "test") for job_id in notices]
    assert outcomes.count("not claimed") == 1
    db.session.expire_all()
    job = db.session.get(ArchiveJob, job.id)
    assert (job.job_status, job.archive_status, job.attempts) == ("done", "archived", 1)
    assert stored_count(LocalArchive(app.config["PPT_LOCAL_ARCHIVE_DIR"])) == 1
    assert sending.sweep(now=job.notified_at + 3 * _period(app))["queued"] == 0  # done: never told again
    get_queue().empty()
