"""Run one RQ worker with its scheduler, and take part in the periodic archive sweep and mail intake.

python worker.py [--burst] [--name NAME]

Several workers may run, on several hosts: a short Redis lock lets one of them enqueue the
sweep each period (PPT_SWEEP_SECONDS), so the load stays flat. The intake of the sync folder
(every PPT_INTAKE_SECONDS), of inbound digital mail (every PPT_INBOUND_SECONDS) and the dispatch
sweep (every PPT_DISPATCH_SECONDS: due SvarUt sends and status follow-up) run in threads of the
worker, not as queued jobs, so a backlog of archive jobs never delays them; a Redis lock lets
only one process do each at a time.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import socket
import threading
import uuid

from rq import Worker

import ppt_web
from ppt_web import create_app
from ppt_web.archive import codes, message
from ppt_web.jobs import archive_sweep, dispatch_sweep, use_app
from ppt_web.logs import configure as configure_logging
from ppt_web.postreg import intake
from ppt_web.postreg.mail_intake import poll_inbound
from ppt_web.postreg.sync_intake import scan_sync_folder
from ppt_web.queue import connection, get_queue, worker_connection

log = logging.getLogger("ppt.worker")
SWEEP_LOCK = "ppt:archive-sweep-lock"
WORKER_TTL = 60


class PPTWorker(Worker):
    """RQ's worker, with a stop that does not hang for a minute.

    RQ 3.0 unsubscribes from its command channel, then stops the listening thread, expecting stop()
    to return at once. Since redis-py 8.2, stop() waits for the thread, which, once unsubscribed,
    sleeps 60 s between looks: every worker took a minute to exit after SIGTERM (seen as a systemd
    stop that ran into its timeout, and as tests waiting on a worker). Stopping the thread first and
    then unsubscribing wakes it with the unsubscribe reply, so it ends within a second.
    """

    def unsubscribe(self) -> None:
        thread = self.pubsub_thread
        if not thread:
            return
        self.log.info("Worker %s: unsubscribing from channel %s", self.name, self.pubsub_channel_name)
        try:
            thread.stop(timeout=1)  # redis-py >= 8.2: clears the flag and waits at most a second
        except TypeError:
            thread.stop()  # older redis-py: clears the flag only
        self.pubsub.unsubscribe()
        thread.join(timeout=2)
        self.pubsub.close()


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


def every(app, stop: threading.Event, seconds_key: str, func, what: str) -> None:
    """Call func in an app context every PPT_*_SECONDS until stop; a failure waits for the next turn."""
    period = max(1, int(app.config[seconds_key]))
    while not stop.wait(period):
        try:
            with app.app_context():
                func()
        except Exception:  # noqa: BLE001 - a full disk or Redis away: try again next period
            log.exception("%s failed; trying again in %s s", what, period)


def warm_up() -> None:
    """Import every module of the app and load the Fiks Arkiv XSDs and code lists now, before any
    thread starts and before RQ forks a work horse per job.

    A fork copies a lock as it is at that moment. A work horse forked while a worker thread was in
    the middle of importing a module (the dispatch thread importing requests, say) inherits that
    module's import lock held, and hangs for good the first time it imports the same module: seen
    in bench/archive.py, a horse stuck in `import` with its job Under arbeid until the lease ran
    out. With everything imported up front, no thread imports anything later. It also spares each
    horse parsing the schemas again.
    """
    for module in pkgutil.walk_packages(ppt_web.__path__, "ppt_web."):
        importlib.import_module(module.name)
    for meldingstype in set(message.EVENTS.values()):
        codes.schema(meldingstype)
    codes.code_list("dokumenttype")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: host and a random suffix)")
    args = parser.parse_args()
    configure_logging()  # PPT_LOG_FORMAT/PPT_LOG_LEVEL from the environment; create_app() applies the app's
    logging.getLogger("alembic").setLevel(logging.WARNING)

    app = create_app()
    use_app(app)
    warm_up()
    with app.app_context():
        conn = worker_connection()
        queue = get_queue()
    name = args.name or f"{socket.gethostname()}.{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    if not args.burst:
        threading.Thread(target=sweep_timer, args=(app, stop), daemon=True, name="sweep-timer").start()
        threading.Thread(target=every, args=(app, stop, "PPT_INTAKE_SECONDS", scan_sync_folder, "sync folder scan"),
                         daemon=True, name="sync-intake").start()
        threading.Thread(target=every, args=(app, stop, "PPT_INBOUND_SECONDS", poll_inbound, "inbound mail poll"),
                         daemon=True, name="inbound-intake").start()

        threading.Thread(target=every, args=(app, stop, "PPT_DISPATCH_SECONDS", dispatch_sweep, "dispatch sweep"),
                         daemon=True, name="dispatch").start()
    # A short TTL: the worker beats every WORKER_TTL - 15 s while idle, and /readyz stops counting a
    # killed one WORKER_TTL + 60 s after its last beat (RQ's default, 420 s, hid a dead worker for 8 min).
    worker = PPTWorker([queue.name], connection=conn, name=name, worker_ttl=WORKER_TTL)
    try:
        worker.work(with_scheduler=True, burst=args.burst)
    finally:
        stop.set()
        intake.STOPPING.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
