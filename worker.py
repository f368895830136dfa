"""Run one RQ worker with its scheduler, and take part in the periodic archive sweep.

python worker.py [--burst] [--name NAME]

Several workers may run, on several hosts: a short Redis lock lets one of them enqueue the
sweep each period (PPT_SWEEP_SECONDS), so the load stays flat.
"""
from __future__ import annotations

import argparse
import logging
import socket
import threading
import uuid

from rq import Worker

from ppt_web import create_app
from ppt_web.jobs import archive_sweep, use_app
from ppt_web.queue import connection, get_queue, worker_connection

log = logging.getLogger("ppt.worker")
SWEEP_LOCK = "ppt:archive-sweep-lock"


def sweep_timer(app, stop: threading.Event) -> None:
    """Enqueue the archive sweep once per period across all workers (a Redis lock per period)."""
    period = max(1, int(app.config["PPT_SWEEP_SECONDS"]))
    with app.app_context():
        conn, queue = connection(), get_queue()
    while not stop.is_set():
        try:
            if conn.set(f"{SWEEP_LOCK}:{app.config['PPT_QUEUE_NAME']}", "1", nx=True, ex=period):
                queue.enqueue(archive_sweep, job_timeout=max(60, period * 5))
        except Exception as exc:  # noqa: BLE001 - Redis away: try again next period
            log.warning("sweep not enqueued: %s", exc)
        stop.wait(period)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: host and a random suffix)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)

    app = create_app()
    use_app(app)
    with app.app_context():
        conn = worker_connection()
        queue = get_queue()
    name = args.name or f"{socket.gethostname()}.{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    if not args.burst:
        threading.Thread(target=sweep_timer, args=(app, stop), daemon=True, name="sweep-timer").start()
    worker = Worker([queue.name], connection=conn, name=name)
    try:
        worker.work(with_scheduler=True, burst=args.burst)
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
