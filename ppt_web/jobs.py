"""RQ job functions. Plain importable functions taking ids; nothing runs at import time."""
from __future__ import annotations

import os
import socket
from functools import wraps

from flask import Flask, has_app_context

_app: Flask | None = None
_app_pid: int | None = None


def use_app(app: Flask) -> None:
    """The worker process registers the app its jobs run in."""
    global _app, _app_pid
    _app, _app_pid = app, os.getpid()


def _job_app() -> Flask:
    global _app, _app_pid
    if _app is None:
        from . import create_app

        use_app(create_app())
    return _app


def app_job(func):
    """Run a job inside an app context; after a fork, drop the parent's DB connections."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return func(*args, **kwargs)
        app = _job_app()
        from .extensions import db

        with app.app_context():
            if _app_pid != os.getpid():
                db.engine.dispose(close=False)  # pooled sockets belong to the parent process
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper


@app_job
def heartbeat(token: str = "") -> str:
    """Record that a worker ran a job: proves queue, worker and database are wired."""
    from .extensions import db
    from .models import WorkerHeartbeat
    from .models.base import utcnow

    from rq import get_current_job

    job = get_current_job()
    name = (job.worker_name if job is not None and job.worker_name else None) or socket.gethostname()
    row = db.session.get(WorkerHeartbeat, name) or WorkerHeartbeat(name=name)
    row.beat_at, row.token = utcnow(), token
    db.session.add(row)
    db.session.commit()
    return name


@app_job
def dispatch_archive_job(job_id: int) -> str:
    """Send one archive job (claims it first: a duplicate notification does nothing)."""
    from .archive import service

    return service.process(job_id)


@app_job
def dispatch_archive_jobs(job_ids: list[int]) -> dict:
    """A batch from the sweep: one forked work horse for many jobs, so a backlog drains fast."""
    from collections import Counter

    from .archive import service

    return dict(Counter(service.process(job_id) for job_id in job_ids))


@app_job
def archive_sweep() -> dict:
    """Every PPT_SWEEP_SECONDS: expired leases, asynchronous replies, and every due Ny job."""
    from .archive import service

    return service.sweep()


@app_job
def dispatch_send(dispatch_id: int) -> str:
    """Send one recipient's shipment now (after the request's commit); the dispatch sweep covers misses."""
    from .dispatch import service

    return service.process(dispatch_id)


def dispatch_sweep() -> dict:
    """Run by a worker thread every PPT_DISPATCH_SECONDS, one process at a time."""
    from flask import current_app

    from .dispatch import service
    from .queue import LOCK_SECONDS, only_one

    key = f"ppt:{current_app.config['PPT_QUEUE_NAME']}:dispatch-sweep-lock"
    with only_one(key) as conn:
        if conn is None:
            return {"busy": 1}
        return service.sweep(renew=lambda: conn.expire(key, LOCK_SECONDS))
