"""Archive dispatch: finalize-to-Arkivert latency (immediate dispatch vs. sweep only) and the
time for a backlog of NY jobs to drain with 1 and 2 workers, against the local archive.

    .venv/bin/python bench/archive.py [--documents 40] [--backlog 10000] [--sweep 10]

Runs its own embedded Redis and real `worker.py` processes on a fresh SQLite instance.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_workers(n: int, env: dict) -> list[subprocess.Popen]:
    logs = Path(env["PPT_INSTANCE_PATH"])
    logs.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=open(logs / f"worker-{i}.log", "a"),
                             start_new_session=True)
            for i in range(n)]


def stop_workers(procs: list[subprocess.Popen]) -> None:
    import signal

    for p in procs:
        os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        p.wait(30)


def make_app(instance: Path, redis_url: str, **extra):
    from ppt_web import create_app

    return create_app({"INSTANCE_PATH": str(instance), "PPT_REDIS_URL": redis_url, "PPT_QUEUE_NAME": instance.name,
                       **extra})


def latency_run(instance: Path, redis_url: str, documents: int, immediate: bool, sweep: int) -> list[float]:
    """Finalize documents one by one; time from the finalize commit to Arkivert."""
    from ppt_web.cases import posts
    from ppt_web.extensions import db
    from ppt_web.models import ArchiveJob
    from tests import builders

    env = {**os.environ, "PPT_INSTANCE_PATH": str(instance), "PPT_REDIS_URL": redis_url, "PPT_QUEUE_NAME": instance.name,
           "PPT_SWEEP_SECONDS": str(sweep), "PPT_ARCHIVE_IMMEDIATE": "1" if immediate else "0"}
    app = make_app(instance, redis_url, PPT_ARCHIVE_IMMEDIATE=immediate, PPT_SWEEP_SECONDS=sweep)
    workers = start_workers(1, env)
    samples = []
    try:
        with app.test_request_context():
            case = builders.case()
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
    return samples


def backlog_run(instance: Path, redis_url: str, backlog: int, n_workers: int) -> float:
    """Insert NY jobs for existing cases (no Redis notice), let the sweep find them, time the drain."""
    from sqlalchemy import func, insert, select

    from ppt_web.extensions import db
    from ppt_web.models import ArchiveJob, Case
    from ppt_web.models.archive import OPPRETT

    app = make_app(instance, redis_url)
    with app.app_context():
        case_ids = list(db.session.scalars(select(Case.id).where(Case.client_id.is_not(None))))
        rows = [{"message_id": str(uuid.uuid4()), "event": "case_created", "operation": OPPRETT,
                 "case_id": case_ids[i % len(case_ids)], "client_id": None, "job_status": "new",
                 "archive_status": "new", "message": "", "attempts": 0, "finalized_on": date.today()}
                for i in range(backlog)]
        first = db.session.scalar(select(func.max(ArchiveJob.id))) or 0
        for start in range(0, len(rows), 1000):
            db.session.execute(insert(ArchiveJob), rows[start:start + 1000])
        db.session.commit()
    env = {**os.environ, "PPT_INSTANCE_PATH": str(instance), "PPT_REDIS_URL": redis_url, "PPT_QUEUE_NAME": instance.name,
           "PPT_SWEEP_SECONDS": "2"}
    t0 = time.perf_counter()
    workers = start_workers(n_workers, env)
    try:
        with app.app_context():
            while True:
                left = db.session.scalar(select(func.count()).select_from(ArchiveJob).where(
                    ArchiveJob.id > first, ArchiveJob.job_status != "done"))
                db.session.rollback()
                if left == 0:
                    return time.perf_counter() - t0
                time.sleep(0.5)
    finally:
        stop_workers(workers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=40)
    parser.add_argument("--backlog", type=int, default=10000)
    parser.add_argument("--sweep", type=int, default=10, help="sweep period for the sweep-only baseline (s)")
    parser.add_argument("--skip-latency", action="store_true", help="only the backlog runs")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from ppt_web.cli import seed_demo_users
    from ppt_web.launcher import EmbeddedRedis

    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop workers and Redis on the way out
    base = Path(tempfile.mkdtemp(prefix="ppt-bench-archive-"))
    redis = EmbeddedRedis(base / "redis")
    redis.start()
    try:
        latency_runs = [] if args.skip_latency else [("immediate dispatch", True), (f"sweep only ({args.sweep} s)", False)]
        for label, immediate in latency_runs:
            instance = base / label.split()[0]
            app = make_app(instance, redis.url)
            with app.app_context():
                upgrade()
                seed_demo_users()
            samples = latency_run(instance, redis.url, args.documents, immediate, args.sweep)
            print(f"finalize -> Arkivert, {label:22s}: p50 {pct(samples, .5) * 1000:8.1f} ms  "
                  f"p95 {pct(samples, .95) * 1000:8.1f} ms  mean {statistics.mean(samples) * 1000:8.1f} ms  "
                  f"({len(samples)} documents)")
        for n_workers in (1, 2):
            instance = base / f"backlog{n_workers}"
            app = make_app(instance, redis.url)
            with app.test_request_context():
                upgrade()
                seed_demo_users()
                from tests import builders

                for i in range(20):
                    builders.case(title=f"Backlog {i}")
            took = backlog_run(instance, redis.url, args.backlog, n_workers)
            print(f"backlog of {args.backlog} NY jobs, {n_workers} worker(s): {took:7.1f} s "
                  f"({args.backlog / took:6.1f} jobs/s)")
    finally:
        redis.stop()
    return 0  # (workers are stopped by each run's own finally)


if __name__ == "__main__":
    raise SystemExit(main())
