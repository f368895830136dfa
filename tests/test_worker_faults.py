"""The worker under faults, with real processes: SIGKILL of the worker and of its work horse during 200
archive jobs, and Redis stopped for 45 s (with the database locked a while) while users act.

Each suite prints its figures (run with -s to see them). Settings are shortened where that keeps the
test meaningful: the lease (8 s instead of 20 s) and the sweep period (2 s instead of 60 s).
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, func, select, text

from ppt_web.cases import posts
from ppt_web.clock import utcnow
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob

from . import builders
from .archive_server import LocalServer
from .conftest import redis_binary, sign_in, user
from .helpers import ROOT, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.app_config(PPT_QUEUE_NAME=f"wfaults-{uuid.uuid4().hex[:8]}")]

LEASE = 8
SWEEP = 2


class PrivateRedis:
    """A redis-server of this test's own on a unix socket, to stop and start again (without its data,
    as after a crash)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="ppt-wf-redis-"))
        self.socket = self.dir / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([redis_binary(), "--port", "0", "--unixsocket", str(self.socket), "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir), "--loglevel", "warning"],
                                     stdout=subprocess.DEVNULL)
        client = redis_lib.Redis(unix_socket_path=str(self.socket))
        for _ in range(200):
            try:
                client.ping()
                return
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private Redis did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()  # as a crash: no goodbye to the clients
            self.proc.wait(10)
        self.socket.unlink(missing_ok=True)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_redis(app):
    server = PrivateRedis()
    server.start()
    app.config["PPT_REDIS_URL"] = server.url
    yield server
    server.close()


class RecordingArchive(LocalServer):
    """An archive on 127.0.0.1 for the http transport that records every send of every klientmelding id,
    and counts sends of one id that overlap in time (two processes sending the same job at once)."""

    def __init__(self, delay: float = 0.03):
        self.sends: Counter[str] = Counter()
        self.overlaps = 0
        self.in_flight: set[str] = set()
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
                    if message_id in archive.in_flight:
                        archive.overlaps += 1
                    archive.in_flight.add(message_id)
                try:
                    time.sleep(delay)  # a send takes a while: kills land in the middle of some
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                finally:
                    with archive.lock:
                        archive.in_flight.discard(message_id)

        self.serve(Handler)


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=ROOT, start_new_session=True,
                                stdout=out, stderr=subprocess.STDOUT)


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)


def not_archived() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(ArchiveJob).where(ArchiveJob.archive_status != "archived"))


def wait_all_archived(timeout: float, worker: subprocess.Popen | None = None, log: Path | None = None) -> float:
    started = time.monotonic()
    while not_archived():
        if worker is not None:
            assert worker.poll() is None, log.read_text()[-3000:] if log else "worker exited"
        if time.monotonic() - started > timeout:
            rows = db.session.execute(select(ArchiveJob.id, ArchiveJob.job_status, ArchiveJob.archive_status,
                                             ArchiveJob.message).where(ArchiveJob.archive_status != "archived")).all()
            raise AssertionError(f"{len(rows)} not archived in {timeout} s: {rows[:5]}")
        time.sleep(0.2)
    return time.monotonic() - started


def faults_env(app, **extra) -> dict:
    return {**worker_env(app), "PPT_REDIS_URL": app.config["PPT_REDIS_URL"], "PPT_SWEEP_SECONDS": str(SWEEP),
            "PPT_ARCHIVE_LEASE_SECONDS": str(LEASE), "PPT_ARCHIVE_BACKOFF_SECONDS": "1",
            **{key: str(value) for key, value in extra.items()}}


class FreedWatch:
    """Polls, on a connection of its own, when each killed claim's jobs were free again (no longer Under
    arbeid under the dead claim): the recovery time, whatever the queue in front of them."""

    def __init__(self, url: str):
        self.engine = create_engine(url)
        self.kills: list[dict] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            for kill in [k for k in self.kills if "freed" not in k]:
                with self.engine.connect() as conn:
                    held = conn.execute(select(func.count()).select_from(ArchiveJob).where(
                        ArchiveJob.id.in_(kill["jobs"]), ArchiveJob.claimed_by == kill["token"],
                        ArchiveJob.job_status == "in_progress")).scalar()
                if not held:
                    kill["freed"] = time.monotonic() - kill["t"]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.engine.dispose()


def in_progress_claim(timeout: float = 3.0) -> tuple[str, list[int]] | None:
    """Some claim being worked on right now: (claimed_by, its job ids)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        rows = db.session.execute(select(ArchiveJob.id, ArchiveJob.claimed_by)
                                  .where(ArchiveJob.job_status == "in_progress", ArchiveJob.claimed_by.is_not(None))).all()
        if rows:
            token = rows[0].claimed_by
            return token, [r.id for r in rows if r.claimed_by == token]
        time.sleep(0.005)
    return None


@pytest.mark.app_config(PPT_ARCHIVE_LEASE_SECONDS=LEASE, PPT_ARCHIVE_BACKOFF_SECONDS=1, PPT_SWEEP_SECONDS=SWEEP)
def test_sigkill_of_worker_and_horse_during_200_jobs_loses_nothing_sends_nothing_twice_at_once(
        app, ctx, private_redis, tmp_path):
    with RecordingArchive() as archive:
        app.config.update(PPT_ARCHIVE_BACKEND="http", PPT_ARCHIVE_HTTP_URL=archive.url)
        env = faults_env(app, PPT_ARCHIVE_BACKEND="http", PPT_ARCHIVE_HTTP_URL=archive.url)
        log = tmp_path / "worker.log"
        pdf = builders.make_pdf(tag="kills")
        rng = random.Random(20240611)
        steps = 40  # each: a case and four finalized posts, five archive jobs
        kill_steps = sorted(rng.sample(range(2, steps - 2), 9))
        kinds = ["horse", "worker", "both"] * 3
        watch = FreedWatch(app.config["SQLALCHEMY_DATABASE_URI"])
        kills = watch.kills
        worker = start_worker(env, log)
        started = time.monotonic()
        try:
            for step in range(steps):
                case = builders.case(title=f"Sak {step}")
                for n in range(4):
                    posts.finalize(user("radgjevar1"), builders.post(case, title=f"Dokument {n}", pdf=pdf).id)
                if step not in kill_steps:
                    continue
                kind = kinds[len(kills)]
                found = in_progress_claim()
                if found is None:
                    continue
                token, claimed = found
                horse = int(token.rsplit("#", 1)[1])
                at, t = utcnow(), time.monotonic()
                if kind in ("horse", "both"):
                    try:
                        os.kill(horse, signal.SIGKILL)
                    except ProcessLookupError:  # done just now
                        pass
                if kind in ("worker", "both"):
                    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its scheduler; the horse has its own group
                    worker.wait()
                    worker = start_worker(env, log)  # as the launcher and systemd do
                kills.append({"kind": kind, "at": at, "t": t, "token": token, "jobs": claimed})
            wait_all_archived(180)
            elapsed = time.monotonic() - started
            alive = worker.poll() is None
            time.sleep(0.3)
        finally:
            watch.close()
            stop_worker(worker)
            with archive.lock:
                overlaps, sends = archive.overlaps, Counter(archive.sends)
        db.session.rollback()
        jobs = list(db.session.scalars(select(ArchiveJob)))
        recoveries = [kill.get("freed", float("inf")) for kill in kills]
        archived_after = [max(0.0, max((j.done_at - kill["at"]).total_seconds() for j in jobs if j.id in kill["jobs"]))
                          for kill in kills]
        resent = sum(count - 1 for count in sends.values())
        print(f"\n[kills] jobs={len(jobs)} kills={len(kills)} ({Counter(k['kind'] for k in kills)}) "
              f"archived={sum(j.archive_status == 'archived' for j in jobs)} lost={sum(j.archive_status != 'archived' for j in jobs)} "
              f"stored_ids={len(sends)} sent_at_once_twice={overlaps} sent_again_after_a_kill={resent} "
              f"recovery_max={max(recoveries, default=0):.1f}s recovery_by_kill="
              f"{[(k['kind'], round(r, 1)) for k, r in zip(kills, recoveries, strict=True)]} "
              f"archived_after_kill_max={max(archived_after, default=0):.1f}s (behind the backlog) wall={elapsed:.0f}s")
        assert len(jobs) == 200 and all(j.archive_status == "archived" for j in jobs)
        assert set(sends) == {j.message_id for j in jobs}  # every job reached the archive
        assert overlaps == 0  # never two sends of one job at once
        assert resent <= len(kills)  # at most the one in flight per kill is sent again (same id)
        assert len(kills) >= 6 and {k["kind"] for k in kills} == {"horse", "worker", "both"}
        assert max(recoveries) < 30
        assert alive


def hold_write_lock(app, seconds: float, held: threading.Event) -> None:
    """Another process's long write transaction: SQLite's one write lock, or on PostgreSQL a lock that
    blocks every write to archive_job and journal_post."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()
        return
    engine = create_engine(url)
    with engine.connect() as conn:
        conn.execute(text("LOCK TABLE archive_job, journal_post IN EXCLUSIVE MODE"))
        held.set()
        time.sleep(seconds)
        conn.rollback()
    engine.dispose()


@pytest.mark.app_config(PPT_ARCHIVE_LEASE_SECONDS=LEASE, PPT_ARCHIVE_BACKOFF_SECONDS=1, PPT_SWEEP_SECONDS=SWEEP,
                        PROPAGATE_EXCEPTIONS=False)
def test_redis_stopped_45_s_and_database_locked_while_users_act(app, private_redis, tmp_path):
    """Users finalize posts and read pages while Redis is gone for 45 s, and while another process holds
    the database's write lock for 8 s: no 500 for anyone, the worker lives on, and everything is archived."""
    log = tmp_path / "worker.log"
    with app.app_context():
        pdf = builders.make_pdf(tag="outage")
        drafts = []
        for i in range(12):
            case = builders.case(title=f"Sak {i}")
            drafts += [(case.id, builders.post(case, title=f"Dokument {n}", pdf=pdf).id) for n in range(4)]
        for i in range(60):  # a stream of jobs in hand when Redis goes: the worker must outlive its end
            builders.case(title=f"Stille {i}")
        env = faults_env(app)
    worker = start_worker(env, log)
    client, archivist = app.test_client(), app.test_client()
    assert sign_in(client, "radgjevar1").status_code == 302
    assert sign_in(archivist, "konsulent").status_code == 302  # may read the archive log
    statuses: Counter[int] = Counter()
    slowest = 0.0

    def act(method: str, url: str, who=client) -> None:
        nonlocal slowest
        began = time.monotonic()
        response = who.open(url, method=method)
        slowest = max(slowest, time.monotonic() - began)
        statuses[response.status_code] += 1

    try:
        with app.app_context():
            deadline = time.monotonic() + 60
            while not_archived() > 72 - 5 and time.monotonic() < deadline:  # the worker is at it
                time.sleep(0.05)
            db.session.remove()
        private_redis.stop()
        outage = time.monotonic()
        held = threading.Event()
        locker = threading.Thread(target=hold_write_lock, args=(app, 8, held), daemon=True)
        n = 0
        while time.monotonic() - outage < 45:
            if n == 10:
                locker.start()
                held.wait(10)
            case_id, post_id = drafts[n % len(drafts)]
            act("POST", f"/posts/{post_id}/finalize")
            act("GET", f"/cases/{case_id}")
            act("GET", "/archive-log/", archivist)
            n += 1
            time.sleep(0.5)
        locker.join(30)
        alive_in_outage = worker.poll() is None
        private_redis.start()
        back = time.monotonic()
        with app.app_context():
            drained = wait_all_archived(90, worker, log)
            total = db.session.scalar(select(func.count()).select_from(ArchiveJob))
            db.session.remove()
        alive = worker.poll() is None
    finally:
        stop_worker(worker)
    reconnected = "working again" in log.read_text() or "retrying in" in log.read_text()
    print(f"\n[redis-outage] outage=45s db_lock=8s user_requests={sum(statuses.values())} statuses={dict(statuses)} "
          f"server_errors={sum(c for s, c in statuses.items() if s >= 500)} slowest_request={slowest:.1f}s "
          f"worker_alive_during={alive_in_outage} worker_alive_after={alive} jobs={total} "
          f"all_archived_after_redis_back={drained:.1f}s (wall {time.monotonic() - back:.1f}s)")
    assert not [s for s in statuses if s >= 500], statuses
    assert alive_in_outage and alive, log.read_text()[-3000:]
    assert reconnected
    assert total == 72 + min(n, len(drafts))


def test_a_dead_horses_claim_is_freed_at_once_and_a_stalled_lease_soon(app, ctx):
    """The quick paths: release_claims() for a horse the worker saw die; reclaim_expired() every quarter
    lease for a claimant that vanished with its worker (no sweep period to wait for)."""
    from ppt_web.archive import sending

    builders.case()
    builders.case()
    first, second = db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id))
    assert sending.claim(first, sending.claim_token("w1", 4242))
    assert sending.claim(second, sending.claim_token("w2", 4343))
    assert sending.release_claims(sending.claim_token("w1", 9999)) == []  # another horse's claim: untouched
    assert sending.release_claims(sending.claim_token("w1", 4242)) == [first]
    assert sending.reclaim_expired() == []  # w2's lease still runs
    assert sending.reclaim_expired(utcnow() + timedelta(seconds=app.config["PPT_ARCHIVE_LEASE_SECONDS"] + 1)) == [second]
    db.session.expire_all()
    assert {j.job_status for j in db.session.scalars(select(ArchiveJob))} == {"new"}
    assert app.config["PPT_ARCHIVE_LEASE_SECONDS"] + app.config["PPT_ARCHIVE_LEASE_SECONDS"] / 4 < 30


@pytest.mark.app_config(PPT_ARCHIVE_LEASE_SECONDS=1)
def test_a_live_horse_keeps_its_short_lease_while_it_sends(app, ctx, monkeypatch):
    """A send that takes longer than the lease keeps its claim: the lease is moved on while it works."""
    from ppt_web.archive import sending, transports

    builders.case()
    job_id = db.session.scalar(select(ArchiveJob.id))
    seen: list[list[int]] = []
    real = transports.get_transport()

    class Slow:
        asynchronous = False

        def send(self, message, message_id):
            time.sleep(2.5)  # two and a half leases
            seen.append(sending.reclaim_expired())  # what a lease check elsewhere would find now
            return real.send(message, message_id)

    monkeypatch.setattr(transports, "get_transport", lambda: Slow())
    assert sending.process(job_id, "w") == "archived"
    assert seen == [[]]
