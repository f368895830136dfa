"""The worker's archive sender: the RQ jobs that send archive jobs run in one long-lived process forked
from the worker (no work horse per job), and keep a horse's guarantees: a killed sender's claims are freed
at once and sent again, a hung send is killed at the job's timeout, the worker lives on, nothing is lost
and nothing is sent twice at once. Real `worker.py --burst` processes on real Redis and an http archive.
"""
from __future__ import annotations

import os
import select as io_select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler

import pytest
from sqlalchemy import select

from ppt_web.extensions import db
from ppt_web.models import ArchiveJob
from ppt_web.queue import Job, get_queue

from . import builders
from .archive_server import LocalServer
from .helpers import ROOT, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.app_config(PPT_QUEUE_NAME=f"sender-{uuid.uuid4().hex[:8]}",
                                                       PPT_ARCHIVE_IMMEDIATE=False)]


class Archive(LocalServer):
    """An http archive that records each send by klientmelding id, counts sends of one id that overlap
    in time (while the sender's connection is open), and waits `delays[n]` seconds before answering the
    n-th request (then `delay`)."""

    def __init__(self, delay: float = 0.0, delays: list[float] | None = None):
        self.sends: Counter[str] = Counter()
        self.overlaps = 0
        self.in_flight: set[str] = set()
        self.delays = list(delays or [])
        self.lock = threading.Lock()
        archive = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                message_id = self.headers.get("X-Klientmelding-Id", "")
                with archive.lock:
                    archive.sends[message_id] += 1
                    archive.overlaps += message_id in archive.in_flight
                    archive.in_flight.add(message_id)
                    wait = archive.delays.pop(0) if archive.delays else delay
                try:
                    if not self.client_gone(wait):
                        self.send_response(200)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                finally:
                    with archive.lock:
                        archive.in_flight.discard(message_id)

            def client_gone(self, wait: float) -> bool:
                """Wait `wait` s, or until the sender closes its connection (killed): a send no longer
                in flight."""
                deadline = time.monotonic() + wait
                while (left := deadline - time.monotonic()) > 0:
                    if io_select.select([self.connection], [], [], min(left, 0.05))[0] \
                            and not self.connection.recv(1, socket.MSG_PEEK):
                        return True
                return False

        self.serve(Handler)


def start_burst(app, archive: Archive) -> subprocess.Popen:
    env = {**worker_env(app), "PPT_ARCHIVE_BACKEND": "http", "PPT_ARCHIVE_HTTP_URL": archive.url,
           "PPT_ARCHIVE_HTTP_TIMEOUT": "120"}
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "--burst"], env=env, cwd=ROOT,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def case_jobs(count: int) -> list[int]:
    """`count` archive jobs, one per case (none waits for another), not yet told to the queue."""
    for n in range(count):
        builders.case(title=f"Sak {n}")
    return list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)))


def rows() -> list[ArchiveJob]:
    db.session.rollback()
    return list(db.session.scalars(select(ArchiveJob).order_by(ArchiveJob.id)))


def claim_in_progress(timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = [j.claimed_by for j in rows() if j.job_status == "in_progress" and j.claimed_by]
        if held:
            return held[0]
        time.sleep(0.01)
    raise AssertionError("no archive job was claimed")


def test_immediate_archive_jobs_run_in_one_sender_process_not_a_horse_each(app, ctx):
    jobs = case_jobs(6)
    with Archive() as archive:
        app.config.update(PPT_ARCHIVE_BACKEND="http", PPT_ARCHIVE_HTTP_URL=archive.url)
        for job_id in jobs:
            get_queue().enqueue(str(Job.SEND_ARCHIVE_JOB), job_id)
        worker = start_burst(app, archive)
        out, _ = worker.communicate(timeout=120)
    done = rows()
    assert worker.returncode == 0, out[-3000:]
    assert [j.archive_status for j in done] == ["archived"] * 6
    claimants = {j.claimed_by.rsplit("#", 1)[1] for j in done}
    assert len(claimants) == 1 and claimants != {str(worker.pid)}, claimants  # one process, not the worker
    assert get_queue().failed_job_registry.count == 0
    assert sorted(archive.sends.values()) == [1] * 6


@pytest.mark.app_config(PPT_ARCHIVE_LEASE_SECONDS=60)
def test_a_killed_sender_frees_its_claim_at_once_and_the_job_is_sent_again(app, ctx):
    jobs = case_jobs(4)
    with Archive(delay=1.0) as archive:
        app.config.update(PPT_ARCHIVE_BACKEND="http", PPT_ARCHIVE_HTTP_URL=archive.url)
        for job_id in jobs:
            get_queue().enqueue(str(Job.SEND_ARCHIVE_JOB), job_id)
        worker = start_burst(app, archive)
        token = claim_in_progress()
        sender = int(token.rsplit("#", 1)[1])
        assert sender != worker.pid
        os.kill(sender, signal.SIGKILL)
        killed = time.monotonic()
        freed = None
        while freed is None and time.monotonic() - killed < 30:
            if not [j for j in rows() if j.claimed_by == token and j.job_status == "in_progress"]:
                freed = time.monotonic() - killed
            time.sleep(0.02)
        out, _ = worker.communicate(timeout=120)
    done = rows()
    assert worker.returncode == 0, out[-3000:]  # the worker lived on and went on with the rest
    assert freed is not None and freed < 5, out[-3000:]  # at once, not after the 60 s lease
    assert [j.archive_status for j in done] == ["archived"] * 4  # none lost
    assert archive.overlaps == 0 and sum(archive.sends.values()) <= 5  # the one in flight sent again, at most
    assert len({j.claimed_by.rsplit("#", 1)[1] for j in done} - {str(sender)}) == 1  # a new sender took over


@pytest.mark.app_config(PPT_ARCHIVE_LEASE_SECONDS=60)
def test_a_hung_send_is_killed_at_its_timeout_and_sent_again_at_once(app, ctx):
    jobs = case_jobs(2)
    with Archive(delays=[90.0]) as archive:  # the first request hangs (the http transport waits 120 s)
        app.config.update(PPT_ARCHIVE_BACKEND="http", PPT_ARCHIVE_HTTP_URL=archive.url)
        failed_before = set(get_queue().failed_job_registry.get_job_ids())  # the other tests' (one queue)
        get_queue().enqueue(str(Job.SEND_ARCHIVE_JOB), jobs[0], job_timeout=5)
        get_queue().enqueue(str(Job.SEND_ARCHIVE_JOB), jobs[1])
        began = time.monotonic()
        worker = start_burst(app, archive)
        out, _ = worker.communicate(timeout=120)
        took = time.monotonic() - began
    done = rows()
    assert worker.returncode == 0, out[-3000:]
    assert [j.archive_status for j in done] == ["archived"] * 2, out[-3000:]
    assert took < 30, out[-3000:]  # killed at 5 s and sent again, not left to the 60 s lease
    assert archive.overlaps == 0 and sorted(archive.sends.values()) == [1, 2]
    failed = [get_queue().fetch_job(rq_id) for rq_id in get_queue().failed_job_registry.get_job_ids()
              if rq_id not in failed_before]
    assert [(j.func_name, j.args) for j in failed] == [(str(Job.SEND_ARCHIVE_JOB), (jobs[0],))], out[-5000:]
    assert "JobTimeoutException" in (failed[0].latest_result().exc_string or "")


def test_a_stop_command_with_no_horse_kills_nothing_of_the_worker(app, monkeypatch):
    """RQ's kill_horse() with no horse (the archive job runs in the sender) killed os.getpgid(0): the
    worker's own process group."""
    import redis

    import worker

    killed: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "killpg", lambda pgid, sig: killed.append((pgid, sig)))  # RQ's and ours
    pptworker = worker.PPTWorker(["q"], connection=redis.Redis.from_url(app.config["PPT_REDIS_URL"]))
    pptworker.kill_horse()
    assert killed == []


def test_an_archive_job_costs_few_redis_round_trips_and_rqs_records_stay_as_rq_keeps_them(app, ctx):
    """RQ's bookkeeping around one archive job was some twenty round trips to Redis (five heartbeats, the
    state set idle twice, the job's dependents watched, its start in two transactions): a third or more of
    the worker's CPU for a job. Now a handful, with what RQ records unchanged: each job finished with its
    result kept, counted on the worker, nothing left in the started registry or the intermediate queue, and
    a job enqueued to depend on one still runs after it."""
    from rq.job import JobStatus

    jobs = case_jobs(21)
    name = f"sender-test-{uuid.uuid4().hex[:8]}"
    with Archive() as archive:
        app.config.update(PPT_ARCHIVE_BACKEND="http", PPT_ARCHIVE_HTTP_URL=archive.url)
        queue = get_queue()
        enqueued = [queue.enqueue(str(Job.SEND_ARCHIVE_JOB), job_id) for job_id in jobs[:20]]
        dependent = queue.enqueue(str(Job.SEND_ARCHIVE_JOB), jobs[20], depends_on=enqueued[-1])
        assert dependent.get_status() == JobStatus.DEFERRED
        commands_before = queue.connection.info("stats")["total_commands_processed"]
        env = {**worker_env(app), "PPT_ARCHIVE_BACKEND": "http", "PPT_ARCHIVE_HTTP_URL": archive.url}
        worker = subprocess.run([sys.executable, str(ROOT / "worker.py"), "--burst", "--name", name], env=env,
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        commands = queue.connection.info("stats")["total_commands_processed"] - commands_before
    out = worker.stdout + worker.stderr
    assert worker.returncode == 0, out[-3000:]
    assert [j.archive_status for j in rows()] == ["archived"] * 21, out[-3000:]
    assert sorted(archive.sends.values()) == [1] * 21
    for rq_job in [*enqueued, dependent]:
        assert rq_job.get_status() == JobStatus.FINISHED
        result = rq_job.latest_result()
        assert result is not None and result.type == result.Type.SUCCESSFUL and result.return_value == "archived"
    assert queue.finished_job_registry.count >= 21
    assert queue.started_job_registry.count == 0
    assert queue.connection.llen(queue.intermediate_queue_key) == 0
    assert queue.connection.hget(f"rq:worker:{name}", "successful_job_count") == b"21"
    # All of the worker's Redis commands over its life (start, scheduler, the jobs, stop), per job: 61
    # before, when each beat and each state was a command (and a round trip) of its own; 43 now.
    assert commands / 21 < 50, commands
