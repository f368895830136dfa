"""Archive sending under load: backlog drain and finalize-to-Arkivert latency.

    .venv/bin/python bench/archive.py [--backlog 10000] [--workers 1,2,4] [--transports local,http,fiksio]
                                      [--engines sqlite,postgresql] [--database-url URL ...]
                                      [--trickle-ms 1000] [--documents 40] [--sweep 10] [--skip-latency]
                                      [--immediate 20]

1. Idle latency (the reference): documents finalized one at a time on SQLite with the local archive,
   immediate dispatch vs. the sweep alone.
2. Backlog drains, one per engine x transport x worker count: a backlog of NY jobs is written in
   bulk (no Redis notice, as if Redis had lost them), then N real `worker.py` processes start and
   the periodic sweep hands the jobs out. Meanwhile a trickle of new posts is finalized through the
   real service (one every --trickle-ms, each in its own case so that no post waits for another)
   and their finalize-to-Arkivert time is taken from the job's done_at. An RSS sampler follows
   every worker and its forked children (RQ's scheduler and work horses) every 100 ms, and the CPU
   time of the system, of the workers, of the database server and of this process is metered, so a
   run disturbed by something else on the machine shows up ("other" column). The first run with
   1 worker on SQLite and the local archive is the baseline each run's speed-up is given against.
   The drain is timed from the workers' start; "once ready" times it again from the moment every
   worker had registered with RQ to the last backlog job's done_at, leaving out their start-up (about
   1.5 s of imports and forks, the same for one worker or two), which otherwise flattens the speed-up.

Engines: sqlite (a fresh file per run) and postgresql (a throwaway cluster from
scripts/pg-throwaway.sh when PostgreSQL is installed, else skipped); --database-url adds a
PostgreSQL server to use instead (a database is created and dropped per run; it needs CREATEDB).
The http transport talks to tests/archive_server.py, run in its own process on 127.0.0.1. The fiksio
transport goes the whole way over Fiks IO on this machine: a throwaway RabbitMQ node
(tests/rabbitmq_node.py), the strict Fiks IO test server and the reference archive answering as a
Fiks IO participant in this process (tests/fiksio_chain.py); each worker's consumer thread applies the
replies. With fiksio among the transports the idle latency is also taken over Fiks IO.
Everything is loopback and temporary; workers, the archive server, Redis, the PostgreSQL cluster
and the temp folder are removed at the end, also on an error or Ctrl-C (--keep keeps the folder
with the worker logs).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import RssSampler, pct  # noqa: E402  (bench/, beside this file)

MiB = 1024 * 1024


def load_avg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# --- processes ------------------------------------------------------------------------------

def start_workers(n: int, env: dict, logs: Path) -> list[subprocess.Popen]:
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    for i in range(n):
        with open(logs / f"worker-{i}.log", "a") as err:
            name = f"bench-{logs.parent.name}-{i}"  # unique in the shared Redis, run after run
            procs.append(subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "--name", name],
                                          env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                                          start_new_session=True))
    return procs


def stop_group(p: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM to the process group (RQ: warm shutdown, the horse finishes its batch), SIGKILL after grace."""
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)  # also a horse or scheduler left behind in the group
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(10)


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        stop_group(p)


ARCHIVE_SERVER = """
import signal, sys, time
sys.path.insert(0, sys.argv[1])
from tests.archive_server import ArchiveServer
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with ArchiveServer() as server:
    print(server.url, flush=True)
    while True:
        time.sleep(3600)
"""


def start_archive_server(log: Path) -> tuple[subprocess.Popen, str]:
    """tests/archive_server.py in its own process (its parsing must not share our GIL), on 127.0.0.1."""
    with open(log, "a") as err:
        proc = subprocess.Popen([sys.executable, "-c", ARCHIVE_SERVER, str(ROOT)], stdout=subprocess.PIPE,
                                stderr=err, text=True, start_new_session=True)
    url = proc.stdout.readline().strip()  # (the server prints its URL at once, or dies)
    if not url.startswith("http://127.0.0.1:"):
        stop_group(proc, 5)
        raise RuntimeError(f"archive server did not start; see {log}")
    return proc, url


def pg_throwaway(cmd: str, folder: Path) -> str:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "pg-throwaway.sh"), cmd, str(folder)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"pg-throwaway.sh {cmd}: {done.stderr.strip()}")
    return done.stdout.strip()


def pg_installed() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


def pg_admin(url: str, sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def postmaster(url: str):
    """The PostgreSQL server process of a unix-socket URL from pg-throwaway (for its CPU time), or None."""
    import psutil
    from sqlalchemy.engine import make_url

    host = make_url(url).query.get("host")
    pid_file = Path(host or "/nonexistent") / "data" / "postmaster.pid"
    try:
        return psutil.Process(int(pid_file.read_text().split()[0]))
    except (OSError, ValueError, psutil.Error):
        return None


# --- measuring ------------------------------------------------------------------------------

def tree_cpu(proc) -> float:
    """CPU seconds of a live process, its live descendants and every descendant they reaped."""
    import psutil

    total = 0.0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def system_busy() -> float:
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)


def wait_quiet(below: float, limit: float) -> tuple[float, float]:
    """Before a run: wait (at most `limit` s) until the machine's busy CPU over 3 s is below `below`
    cores (between runs our own processes idle, so that is someone else's). (waited s, last busy)."""
    start = time.monotonic()
    while True:
        b0 = system_busy()
        time.sleep(3)
        busy = (system_busy() - b0) / 3
        if busy < below or time.monotonic() - start > limit:
            return time.monotonic() - start, busy
        time.sleep(2)


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system




# --- the app --------------------------------------------------------------------------------

def make_app(instance: Path, redis_url: str, **extra):
    from ppt_web import create_app

    return create_app({"INSTANCE_PATH": str(instance), "PPT_REDIS_URL": redis_url, "PPT_QUEUE_NAME": instance.name,
                       **extra})


def prepare(app) -> None:
    from flask_migrate import upgrade

    from ppt_web.cli import seed_demo_users

    with app.app_context():
        upgrade()
        seed_demo_users()


def dispose(app) -> None:
    from ppt_web.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def latency_run(instance: Path, redis_url: str, documents: int, immediate: bool, sweep: int,
                chain=None) -> list[float]:
    """Idle: finalize documents one by one; time from the finalize call to Arkivert."""
    from ppt_web.cases import posts
    from ppt_web.extensions import db
    from ppt_web.models import ArchiveJob
    from tests import builders

    env = {**os.environ, "PPT_INSTANCE_PATH": str(instance), "PPT_REDIS_URL": redis_url,
           "PPT_QUEUE_NAME": instance.name, "PPT_SWEEP_SECONDS": str(sweep),
           "PPT_ARCHIVE_IMMEDIATE": "1" if immediate else "0", **(fiksio_env(chain) if chain else {})}
    app = make_app(instance, redis_url, PPT_ARCHIVE_IMMEDIATE=immediate, PPT_SWEEP_SECONDS=sweep,
                   **(chain.app_config() if chain else {}))
    prepare(app)
    if chain:
        chain.reset()
        chain.start_participant(instance / "fiksio-archive")
    workers = start_workers(1, env, instance / "logs")
    samples = []
    try:
        with app.test_request_context():
            case = builders.case()
            if chain:  # the case's folder first, so the posts' times are their own
                first = db.session.scalar(db.select(ArchiveJob).where(ArchiveJob.case_id == case.id))
                t0 = time.perf_counter()
                while db.session.scalar(db.select(ArchiveJob.archive_status).where(
                        ArchiveJob.id == first.id)) != "archived":
                    db.session.rollback()
                    if time.perf_counter() - t0 > 60:
                        raise RuntimeError("the case's folder did not reach the archive over Fiks IO")
                    time.sleep(0.02)
            for i in range(documents):
                draft = builders.post(case, title=f"Latens {i}", pdf=builders.make_pdf(tag="bench"))
                t0 = time.perf_counter()
                posts.finalize(builders.user("radgjevar1"), draft.id)
                while True:
                    db.session.expire_all()
                    job = db.session.scalar(db.select(ArchiveJob).where(ArchiveJob.post_id == draft.id))
                    if job.archive_status == "archived":
                        samples.append(time.perf_counter() - t0)
                        break
                    if time.perf_counter() - t0 > sweep * 3 + 30:
                        raise RuntimeError(f"job {job.id} not archived: {job.message}")
                    time.sleep(0.01)
    finally:
        stop_workers(workers)
        if chain:
            chain.stop_participant()
        dispose(app)
    return samples


def fiksio_env(chain) -> dict:
    """A worker process's Fiks IO settings (tests/fiksio_chain.py), the token provider loaded by name."""
    from tests.fiksio_chain import ORG, TOKEN_PROVIDER

    config = {**chain.app_config(), "PPT_FIKSIO_TOKEN_PROVIDER": TOKEN_PROVIDER}
    return {**{key: str(value) for key, value in config.items()},
            "PPT_TEST_SVARUT_TOKEN_KEY": str(chain.token_key_path), "PPT_TEST_SVARUT_ORG": ORG}


@contextlib.contextmanager
def consuming_here(app):
    """The app's Fiks IO consumer in this process (the bench's setup, before any worker runs)."""
    import threading

    from ppt_web.archive import fiksio

    stop = threading.Event()
    thread = threading.Thread(target=fiksio.run_consumer, args=(app, stop, "bench-setup"), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(15)


@dataclass
class Run:
    engine: str
    transport: str
    workers: int
    backlog: int
    insert_s: float = 0.0
    drain_s: float | None = None  # None: not drained within the time limit
    # From the moment every worker had registered with RQ to the last backlog job's done_at: the drain
    # without the workers' start-up (imports, app, fork of the sender), which is the same for any count.
    ready_s: float | None = None
    archived: int = 0
    failed: int = 0
    latencies: list = field(default_factory=list)  # seconds, trickle posts under load
    trickle_lost: int = 0  # trickle posts not archived by the end
    trickle_skipped: int = 0  # ticks with no free case
    max_queue: int = 0
    memory: list = field(default_factory=list)  # WorkerMemory per worker
    cpu: dict = field(default_factory=dict)  # seconds: workers, db, redis, archive, bench, other
    load_before: str = ""
    load_after: str = ""
    note: str = ""
    floor_rate: float | None = None  # jobs/s of build + XSD validation + one commit, one core, tight loop
    immediate_ms: float | None = None  # worker CPU (all its processes) per immediate job, idle workers
    immediate_wall_ms: float | None = None  # finalize -> Arkivert of those immediate jobs, p50
    worker_cpu_s: float = 0.0  # CPU seconds of all worker processes (horses included) over the drain and trickle

    @property
    def rate(self) -> float | None:
        return self.backlog / self.drain_s if self.drain_s else None

    @property
    def ready_rate(self) -> float | None:
        return self.backlog / self.ready_s if self.ready_s else None


FLOOR_JOBS = 300


def backlog_snapshots(case_ids: list[int]) -> dict[int, dict | None]:
    """The snapshot each backlog case's own case_created job took (as every job written since snapshots has
    one): the backlog rows carry it, so a drain builds from it as the worker does for any job of today."""
    from sqlalchemy import select

    from ppt_web.extensions import db
    from ppt_web.models import ArchiveJob

    return dict(db.session.execute(select(ArchiveJob.case_id, ArchiveJob.snapshot).where(
        ArchiveJob.case_id.in_(case_ids), ArchiveJob.event == "case_created")).all())


def floor_rate(backlog_cases: list[int], jobs: int = FLOOR_JOBS) -> float:
    """The floor of one job: build its message (with the XSD and code-list validation) from a backlog row
    and commit its outcome, in a tight loop in this process: jobs/s on one core. The rows are written
    first, like the backlog's, and left done (before the backlog's ids)."""
    from flask import current_app
    from sqlalchemy import insert, select

    from ppt_web.archive import identity
    from ppt_web.archive.message import build
    from ppt_web.clock import utcnow
    from ppt_web.extensions import db
    from ppt_web.models import ArchiveJob, ArchiveStatus
    from ppt_web.models.archive import OPPRETT

    snaps = backlog_snapshots(backlog_cases)
    first = db.session.scalar(select(db.func.max(ArchiveJob.id))) or 0
    db.session.execute(insert(ArchiveJob), [
        {"message_id": str(uuid.uuid4()), "event": "case_created", "operation": OPPRETT,
         "case_id": backlog_cases[i % len(backlog_cases)], "client_id": None, "job_status": "done",
         "snapshot": snaps[backlog_cases[i % len(backlog_cases)]],
         "archive_status": "new", "message": "", "attempts": 0, "finalized_on": date.today()} for i in range(jobs)])
    db.session.commit()
    ids = list(db.session.scalars(select(ArchiveJob.id).where(ArchiveJob.id > first).order_by(ArchiveJob.id)))
    settings = current_app.config.get("PPT_ARCHIVE_SETTINGS")
    t0 = time.perf_counter()
    for job_id in ids:
        job = db.session.get_one(ArchiveJob, job_id)
        build(job, settings, current=identity.settings())
        job.archive_status, job.done_at = ArchiveStatus.ARCHIVED, utcnow()
        db.session.commit()
    elapsed = time.perf_counter() - t0
    db.session.expunge_all()
    return len(ids) / elapsed


def immediate_jobs(run: Run, workers: list, free: list[int], pdf: bytes, handler, count: int = 20) -> None:
    """With the workers idle after the drain: posts finalized one at a time through the service (the UI's
    path: one RQ job per archive job, told after the commit); the workers' CPU per job, less what they
    use idle (the sweep timer's jobs, their threads), and finalize -> Arkivert."""
    import psutil
    from flask import current_app
    from sqlalchemy import select

    from ppt_web.cases import posts
    from ppt_web.extensions import db
    from ppt_web.models import ArchiveJob, Case
    from ppt_web.queue import connection
    from tests import builders

    # No sweep meanwhile (its lock held for the workers' sweep timers): its work horse every 2 s would
    # drown the jobs' own CPU time.
    connection().set(f"ppt:archive-sweep-lock:{current_app.config['PPT_QUEUE_NAME']}", "bench", ex=600)
    time.sleep(3)  # a sweep under way ends
    procs = [psutil.Process(p.pid) for p in workers if p.poll() is None]
    cpu = lambda: sum(tree_cpu(p) for p in procs)  # noqa: E731
    c0, t0 = cpu(), time.perf_counter()
    time.sleep(4)
    idle = (cpu() - c0) / (time.perf_counter() - t0)
    walls = []
    c0, t0 = cpu(), time.perf_counter()
    for i in range(count):
        if not free:
            break
        case_id = free[i % len(free)]
        draft = builders.post(db.session.get(Case, case_id), title=f"Straks {i}", pdf=pdf)
        began = time.perf_counter()
        posts.finalize(handler, draft.id)
        job_id = db.session.scalar(select(ArchiveJob.id).where(ArchiveJob.post_id == draft.id))
        while True:
            status = db.session.scalar(select(ArchiveJob.job_status).where(ArchiveJob.id == job_id))
            db.session.rollback()
            if status == "done":
                walls.append(time.perf_counter() - began)
                break
            if time.perf_counter() - began > 30:
                run.note = (run.note + "; " if run.note else "") + f"immediate job {job_id} not done in 30 s"
                return
            time.sleep(0.002)
        time.sleep(0.05)  # the worker back at BLPOP and the horse reaped before the next one
    time.sleep(0.2)
    used = cpu() - c0 - idle * (time.perf_counter() - t0)  # the threads' own turns (intake, lease check)
    if walls:
        run.immediate_ms = max(0.0, used) / len(walls) * 1000
        run.immediate_wall_ms = pct(walls, .5) * 1000


def drain_run(run: Run, instance: Path, redis, db_url: str | None, http_url: str | None,
              archive_proc, trickle_ms: int, trickle_cases: int, timeout: float, chain=None,
              immediate: int = 20) -> Run:
    """One backlog drain with a trickle of finalized posts on top; fills in `run`."""
    import psutil
    from rq import Worker
    from sqlalchemy import func, insert, select

    from ppt_web.archive import sending as service
    from ppt_web.cases import posts
    from ppt_web.extensions import db
    from ppt_web.models import ArchiveJob, Case
    from ppt_web.models.archive import OPPRETT
    from ppt_web.queue import get_queue
    from tests import builders

    extra = {"PPT_ARCHIVE_BACKEND": run.transport, "PPT_ARCHIVE_IMMEDIATE": False}
    env = {**os.environ, "PPT_INSTANCE_PATH": str(instance), "PPT_REDIS_URL": redis.url,
           "PPT_QUEUE_NAME": instance.name, "PPT_SWEEP_SECONDS": "2", "PPT_ARCHIVE_BACKEND": run.transport,
           "PPT_ARCHIVE_IMMEDIATE": "1"}
    if db_url:
        extra["SQLALCHEMY_DATABASE_URI"] = env["PPT_DATABASE_URL"] = db_url
    if http_url:
        extra["PPT_ARCHIVE_HTTP_URL"] = env["PPT_ARCHIVE_HTTP_URL"] = http_url
    if chain:
        extra.update(chain.app_config())
        env.update(fiksio_env(chain))
        chain.reset()
        chain.start_participant(instance / "fiksio-archive")
    app = make_app(instance, redis.url, **extra)
    prepare(app)
    workers: list[subprocess.Popen] = []
    sampler = None
    try:
        with app.test_request_context():
            # 20 cases the backlog points at, and one case per trickle post in flight: their
            # saksmappe is archived here, in this process, so the trickle's posts wait for nothing.
            backlog_cases = [builders.case(title=f"Backlog {i}").id for i in range(20)]
            free = [builders.case(title=f"Trickle {i}").id for i in range(trickle_cases)]
            with consuming_here(app) if chain else contextlib.nullcontext():
                for job_id in list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id))):
                    outcome = service.process(job_id, "bench-setup")
                    if outcome != ("handed over" if chain else "archived"):
                        raise RuntimeError(f"setup: case job {job_id} {outcome}")
                t = time.perf_counter()
                while chain and db.session.scalar(select(func.count()).select_from(ArchiveJob).where(
                        ArchiveJob.archive_status != "archived")):
                    db.session.rollback()
                    if time.perf_counter() - t > 120:
                        raise RuntimeError("setup: the cases did not reach the archive over Fiks IO")
                    time.sleep(0.05)
            run.floor_rate = floor_rate(backlog_cases)
            app.config["PPT_ARCHIVE_IMMEDIATE"] = True  # the trickle is told at once, as the web app does
            snaps = backlog_snapshots(backlog_cases)
            rows = [{"message_id": str(uuid.uuid4()), "event": "case_created", "operation": OPPRETT,
                     "case_id": backlog_cases[i % len(backlog_cases)], "client_id": None, "job_status": "new",
                     "snapshot": snaps[backlog_cases[i % len(backlog_cases)]],
                     "archive_status": "new", "message": "", "attempts": 0, "finalized_on": date.today()}
                    for i in range(run.backlog)]
            t = time.perf_counter()
            first = db.session.scalar(select(func.max(ArchiveJob.id))) or 0
            for start in range(0, len(rows), 1000):
                db.session.execute(insert(ArchiveJob), rows[start:start + 1000])
            db.session.commit()
            last = db.session.scalar(select(func.max(ArchiveJob.id)))
            run.insert_s = time.perf_counter() - t
            in_backlog = (ArchiveJob.id > first, ArchiveJob.id <= last)
            pdf = builders.make_pdf(tag=f"trickle-{instance.name}")  # one file for all: stored once
            handler = builders.user("radgjevar1")
            queue = get_queue(app)
            pg = postmaster(db_url) if db_url else None
            redis_proc = psutil.Process(redis.proc.pid)

            run.load_before = load_avg()
            cpu0 = {"system": system_busy(), "bench": self_cpu(), "db": tree_cpu(pg) if pg else 0.0,
                    "redis": tree_cpu(redis_proc), "archive": tree_cpu(psutil.Process(archive_proc.pid))
                    if archive_proc else 0.0}
            t0 = time.perf_counter()
            workers = start_workers(run.workers, env, instance / "logs")
            sampler = RssSampler([p.pid for p in workers])
            sampler.start()

            pending: dict[int, tuple[datetime, int]] = {}  # job id -> (commit time, case id)
            ready_at: datetime | None = None  # every worker registered with RQ
            interval = trickle_ms / 1000
            next_tick, next_poll, drained_at, n = t0 + interval, t0, None, 0
            while True:
                now = time.perf_counter()
                if now - t0 > timeout:
                    run.note = f"not drained in {timeout:.0f} s"
                    break
                if drained_at is None and trickle_ms > 0 and now >= next_tick:
                    next_tick = max(next_tick + interval, now)
                    if free:
                        case_id = free.pop()
                        n += 1
                        draft = builders.post(db.session.get(Case, case_id), title=f"Under last {n}", pdf=pdf)
                        posts.finalize(handler, draft.id)
                        committed = datetime.now(UTC)
                        job_id = db.session.scalar(select(ArchiveJob.id).where(ArchiveJob.post_id == draft.id))
                        pending[job_id] = (committed, case_id)
                    else:
                        run.trickle_skipped += 1
                if ready_at is None and Worker.count(queue=queue) >= run.workers:
                    ready_at = datetime.now(UTC)
                if now >= next_poll:
                    next_poll = now + 0.5
                    if drained_at is None:
                        left = db.session.scalar(select(func.count()).select_from(ArchiveJob).where(
                            *in_backlog, ArchiveJob.job_status != "done"))
                        if left == 0:
                            drained_at = time.perf_counter()
                            run.drain_s = drained_at - t0
                            last = db.session.scalar(select(func.max(ArchiveJob.done_at)).where(*in_backlog))
                            if ready_at is not None and last is not None:
                                run.ready_s = (last.replace(tzinfo=UTC) - ready_at).total_seconds()
                    run.max_queue = max(run.max_queue, queue.count)
                    if pending:
                        for job_id, status, done_at in db.session.execute(
                                select(ArchiveJob.id, ArchiveJob.archive_status, ArchiveJob.done_at)
                                .where(ArchiveJob.id.in_(list(pending)), ArchiveJob.job_status == "done")):
                            committed, case_id = pending.pop(job_id)
                            if status == "archived":
                                run.latencies.append((done_at - committed).total_seconds())
                                free.append(case_id)
                            else:
                                run.trickle_lost += 1
                    db.session.rollback()  # no read transaction held open between polls
                if drained_at is not None and (not pending or now - drained_at > 120):
                    break
                time.sleep(max(0.005, min(next_tick if drained_at is None else next_poll, next_poll)
                               - time.perf_counter()))
            run.trickle_lost += len(pending)
            elapsed = time.perf_counter() - t0
            cpu1 = {"workers": sum(tree_cpu(psutil.Process(p.pid)) for p in workers if p.poll() is None),
                    "system": system_busy(), "bench": self_cpu(), "db": tree_cpu(pg) if pg else 0.0,
                    "redis": tree_cpu(redis_proc), "archive": tree_cpu(psutil.Process(archive_proc.pid))
                    if archive_proc else 0.0}
            run.load_after = load_avg()
            sampler.stop()
            run.memory = [sampler.memory[p.pid] for p in workers]
            run.cpu = {k: (cpu1[k] - cpu0.get(k, 0.0)) / elapsed for k in cpu1}
            run.worker_cpu_s = cpu1["workers"] - cpu0.get("workers", 0.0)
            ours = sum(v for k, v in run.cpu.items() if k != "system")
            run.cpu["other"] = max(0.0, run.cpu["system"] - ours)
            for status, count in db.session.execute(select(ArchiveJob.archive_status, func.count())
                                                    .where(*in_backlog).group_by(ArchiveJob.archive_status)):
                if status == "archived":
                    run.archived = count
                elif status == "failed":
                    run.failed = count
            db.session.rollback()
            if free and not chain:
                immediate_jobs(run, workers, free, pdf, handler, immediate)
    finally:
        if sampler is not None:
            sampler.stop()
        stop_workers(workers)
        if chain:
            chain.stop_participant()
        dispose(app)
        with contextlib.suppress(Exception):
            with app.app_context():
                get_queue(app).delete(delete_jobs=True)
    return run


# --- report ---------------------------------------------------------------------------------

def mib(n: int) -> str:
    return f"{n / MiB:.0f}"


def print_run(run: Run, baseline: Run | None) -> None:
    ref = baseline.rate if baseline and baseline.rate else None
    speed = f"x{run.rate / ref:.2f}" if run.rate and ref else "-"
    drain = f"{run.drain_s:7.1f} s {run.rate:7.1f}/s" if run.drain_s else f"{'not drained':>19s}"
    lat = (f"p50 {pct(run.latencies, .5):6.2f} s p95 {pct(run.latencies, .95):6.2f} s (n {len(run.latencies)})"
           if run.latencies else "no trickle samples")
    print(f"{run.engine:10s} {run.transport:6s} {run.workers} w: {drain} {speed:>6s} | {lat}", flush=True)
    if run.ready_rate:
        ready_ref = baseline.ready_rate if baseline else None
        ready_speed = f", x{run.ready_rate / ready_ref:.2f}" if ready_ref else ""
        print(f"    once every worker was ready (start-up left out): {run.ready_s:.1f} s, {run.ready_rate:.1f}/s"
              f"{ready_speed}", flush=True)
    floor, ratio = "-", ""
    if run.floor_rate:
        floor = f"{run.floor_rate:.0f}/s per core ({run.floor_rate * run.workers:.0f}/s on {run.workers})"
        if run.rate:
            ratio = f", drain at {run.rate / (run.floor_rate * run.workers):.2f} of it"
    immediate = (f"{run.immediate_ms:.1f} ms worker CPU, finalize -> done p50 {run.immediate_wall_ms:.0f} ms"
                 if run.immediate_ms is not None and run.immediate_wall_ms is not None else "-")
    print(f"    floor (build + XSD + commit, tight loop): {floor}{ratio}; one immediate job: {immediate}", flush=True)
    if run.worker_cpu_s:
        print(f"    worker CPU per job sent (drain and trickle, horses included): "
              f"{run.worker_cpu_s / (run.backlog + len(run.latencies)) * 1000:.1f} ms", flush=True)
    mem = "; ".join(f"w{i} {mib(m.main)}/{mib(m.split()[0])}/{mib(m.split()[1])}/{mib(m.total)}"
                    for i, m in enumerate(run.memory))
    cpu = " ".join(f"{k} {v:.2f}" for k, v in run.cpu.items())
    print(f"    insert {run.insert_s:.1f} s, archived {run.archived}, failed {run.failed}, max queue {run.max_queue}"
          f" RQ jobs, trickle lost {run.trickle_lost} skipped {run.trickle_skipped}; load {run.load_before} -> "
          f"{run.load_after}{'; ' + run.note if run.note else ''}", flush=True)
    print(f"    peak RSS MiB (worker/scheduler/largest horse/sum): {mem}", flush=True)
    print(f"    CPU (cores busy): {cpu}", flush=True)


def print_table(runs: list[Run], baseline: Run | None) -> None:
    ref = baseline.rate if baseline and baseline.rate else None
    print()
    print("| engine | transport | workers | drain s | jobs/s | floor jobs/s (1 core) | vs baseline "
          "| once ready: s, jobs/s, vs baseline | finalize->Arkivert p50 / p95 s (n) "
          "| immediate job: worker CPU ms / wall ms "
          "| peak RSS MiB worker / horse / sum | CPU other | load 1-min before->after | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        lat = (f"{pct(r.latencies, .5):.2f} / {pct(r.latencies, .95):.2f} ({len(r.latencies)})"
               if r.latencies else "-")
        worker = max((m.main for m in r.memory), default=0)
        horse = max((m.split()[1] for m in r.memory), default=0)
        total = max((m.total for m in r.memory), default=0)
        floor = f"{r.floor_rate:.0f}" if r.floor_rate else "-"
        immediate = f"{r.immediate_ms:.1f} / {r.immediate_wall_ms:.0f}" \
            if r.immediate_ms is not None and r.immediate_wall_ms is not None else "-"
        ready = "-"
        if r.ready_rate:
            ready_ref = baseline.ready_rate if baseline else None
            ready = f"{r.ready_s:.1f}, {r.ready_rate:.0f}" + (f", x{r.ready_rate / ready_ref:.2f}" if ready_ref else "")
        print(f"| {r.engine} | {r.transport} | {r.workers} | {r.drain_s:.1f} | {r.rate:.1f} | {floor} | "
              f"{'x%.2f' % (r.rate / ref) if ref else '-'} | {ready} | {lat} | {immediate} | "
              f"{mib(worker)} / {mib(horse)} / {mib(total)} | "
              f"{r.cpu.get('other', 0):.2f} | {r.load_before.split('/')[0]}->{r.load_after.split('/')[0]} | {r.note} |"
              if r.drain_s else
              f"| {r.engine} | {r.transport} | {r.workers} | - | - | - | - | - | {lat} | - | - | - | - | {r.note} |")
    if baseline:
        print(f"\nbaseline: {baseline.engine} {baseline.transport} {baseline.workers} worker(s)")


def csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=40, help="idle latency: documents per mode")
    parser.add_argument("--sweep", type=int, default=10, help="sweep period for the sweep-only idle run (s)")
    parser.add_argument("--skip-latency", action="store_true", help="only the backlog runs")
    parser.add_argument("--backlog", type=int, default=10000, help="NY jobs per drain")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, e.g. 1,2,4")
    parser.add_argument("--transports", default="local,http", help="local, http and/or fiksio")
    parser.add_argument("--engines", default=None,
                        help="sqlite and/or postgresql (default: both when PostgreSQL is installed, "
                             "or none besides --database-url)")
    parser.add_argument("--database-url", action="append", default=[],
                        help="a PostgreSQL server (URL to an existing database) to create a database per run on; "
                             "repeatable")
    parser.add_argument("--only", action="append", default=[],
                        help="run only ENGINE:TRANSPORT:WORKERS (repeatable; the baseline runs too)")
    parser.add_argument("--trickle-ms", type=int, default=1000, help="a post finalized every N ms during a drain "
                        "(0: none)")
    parser.add_argument("--trickle-cases", type=int, default=100,
                        help="cases for the trickle (posts in flight at most)")
    parser.add_argument("--run-timeout", type=float, default=1800, help="give up a drain after N s")
    parser.add_argument("--quiet-below", type=float, default=0.3,
                        help="before each run, wait until other processes use less than this many cores")
    parser.add_argument("--quiet-wait", type=float, default=120, help="... but at most this long (s)")
    parser.add_argument("--retries", type=int, default=1,
                        help="re-run a run in which other processes used more than --quiet-below cores "
                             "(keep the least disturbed)")
    parser.add_argument("--immediate", type=int, default=20,
                        help="immediate jobs after each drain, one at a time, for their worker CPU per job")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (worker logs)")
    args = parser.parse_args()

    worker_counts = [int(x) for x in csv_list(args.workers)]
    transports = csv_list(args.transports)
    if args.engines is None:
        engines = [] if args.database_url else ["sqlite"] + (["postgresql"] if pg_installed() else [])
    else:
        engines = csv_list(args.engines)
    for url in args.database_url:
        if not url.startswith("postgresql"):
            parser.error("--database-url: a PostgreSQL URL (SQLite runs use a fresh file: --engines sqlite)")
    if "postgresql" in engines and not pg_installed():
        print("PostgreSQL is not installed: skipping it (apt-get install postgresql)", flush=True)
        engines.remove("postgresql")

    from ppt_web.launcher import EmbeddedRedis

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # unwind: stop workers, servers, Redis
    base = Path(tempfile.mkdtemp(prefix="ppt-bench-archive-"))
    print(f"bench folder {base}; load {load_avg()}; {os.cpu_count()} CPUs", flush=True)
    with contextlib.ExitStack() as stack:
        if not args.keep:
            stack.callback(shutil.rmtree, base, True)
        redis = EmbeddedRedis(base / "redis")
        stack.callback(redis.stop)
        redis.start()

        servers: list[tuple[str, str]] = []  # (engine label, admin URL or "")
        if "sqlite" in engines:
            servers.append(("sqlite", ""))
        if "postgresql" in engines:
            pg_dir = Path(tempfile.mkdtemp(prefix="ppt-bench-pg-"))
            stack.callback(pg_throwaway, "stop", pg_dir)
            servers.append(("postgresql", pg_throwaway("start", pg_dir)))
        for i, url in enumerate(args.database_url):
            servers.append((f"pg-url{i + 1}" if len(args.database_url) > 1 else "pg-url", url))

        chain = None
        if "fiksio" in transports:
            from tests.fiksio_chain import Chain
            from tests.rabbitmq_node import RabbitNode, new_folder

            node = RabbitNode(new_folder())
            stack.callback(node.close)
            node.start()
            chain = Chain(node, base / "fiksio")
            stack.callback(chain.close)

        if not args.skip_latency:
            idle = [("local", "immediate dispatch", True, None), ("local", f"sweep only ({args.sweep} s)", False, None)]
            if chain:
                idle.append(("fiksio", "immediate dispatch", True, chain))
            for transport, label, immediate, over in idle:
                samples = latency_run(base / f"idle-{transport}-{label.split()[0]}", redis.url, args.documents,
                                      immediate, args.sweep, over)
                print(f"idle finalize -> Arkivert (sqlite, {transport:6s}), {label:22s}: "
                      f"p50 {pct(samples, .5) * 1000:8.1f} ms  p95 {pct(samples, .95) * 1000:8.1f} ms  "
                      f"mean {statistics.mean(samples) * 1000:8.1f} ms  ({len(samples)} documents)", flush=True)

        plan = [(label, admin, transport, n) for label, admin in servers for transport in transports
                for n in worker_counts]
        base_key = next(((lab, t, n) for lab, _, t, n in plan if (lab, t, n) == ("sqlite", "local", 1)),
                        (plan[0][0], plan[0][2], plan[0][3]) if plan else None)
        if args.only:
            wanted = {tuple(x.split(":")) for x in args.only}
            plan = [p for p in plan if (p[0], p[2], str(p[3])) in wanted or (p[0], p[2], p[3]) == base_key]
        baseline: Run | None = None
        results: dict[int, Run] = {}
        attempts = [(i, 0) for i in range(len(plan))]  # (plan index, retry)
        number = 0
        while attempts:
            index, attempt = attempts.pop(0)
            label, admin, transport, n = plan[index]
            number += 1
            name = f"r{number}-{label}-{transport}-{n}"
            instance = base / name
            instance.mkdir()
            db_url = None
            if admin:
                from sqlalchemy.engine import make_url

                db_name = f"bench_{uuid.uuid4().hex[:8]}"
                pg_admin(admin, f'CREATE DATABASE "{db_name}"')
                drop = stack.enter_context(contextlib.ExitStack())
                drop.callback(pg_admin, admin, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
                db_url = make_url(admin).set(database=db_name).render_as_string(hide_password=False)
            archive_proc, http_url = None, None
            run = Run(label, transport, n, args.backlog)
            try:
                if transport == "http":
                    archive_proc, http_url = start_archive_server(instance / "archive-server.log")
                elif transport not in ("local", "fiksio"):
                    raise SystemExit(f"unknown transport {transport!r}: local, http or fiksio")
                waited, busy = wait_quiet(args.quiet_below, args.quiet_wait)
                print(f"[{index + 1}/{len(plan)}{f' retry {attempt}' if attempt else ''}] {label} {transport} "
                      f"{n} worker(s), backlog {args.backlog} (waited {waited:.0f} s for quiet: busy {busy:.2f} "
                      f"cores) ...", flush=True)
                drain_run(run, instance, redis, db_url, http_url, archive_proc, args.trickle_ms,
                          args.trickle_cases, args.run_timeout, chain if transport == "fiksio" else None,
                          args.immediate)
            finally:
                if archive_proc is not None:
                    stop_group(archive_proc, 5)
                if admin:
                    drop.close()
            disturbed = run.cpu.get("other", 0.0) > args.quiet_below
            if disturbed:
                run.note = (run.note + "; " if run.note else "") + f"disturbed: other {run.cpu['other']:.2f} cores"
            earlier = results.get(index)
            if earlier is None or run.cpu.get("other", 9) < earlier.cpu.get("other", 9):
                results[index] = run
            if (label, transport, n) == base_key:
                baseline = results[index]
            print_run(run, baseline)
            if disturbed and attempt < args.retries:
                attempts.append((index, attempt + 1))  # once more at the end, when it may be quieter
        if results:
            print_table([results[i] for i in sorted(results)], baseline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
