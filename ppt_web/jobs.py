"""RQ job functions: plain importable functions taking ids, each run inside an app context.

This module sits above the services it runs: services never import it, they enqueue by name
(`queue.Job`). Nothing runs at import time."""
from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from flask import Flask, current_app, has_app_context
from redis.exceptions import RedisError

from . import create_app, notify
from .archive import sending
from .dispatch import service as dispatch
from .extensions import db
from .queue import LOCK_SECONDS, only_one

_app: Flask | None = None
_app_pid: int | None = None
R = TypeVar("R")


def use_app(app: Flask) -> None:
    """The worker process registers the app its jobs run in."""
    global _app, _app_pid
    _app, _app_pid = app, os.getpid()


def _job_app() -> Flask:
    if _app is None:
        use_app(create_app())
    assert _app is not None
    return _app


def app_job(func: Callable[..., R]) -> Callable[..., R]:
    """Run a job inside an app context; after a fork, drop the parent's DB connections."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return func(*args, **kwargs)
        app = _job_app()
        with app.app_context():
            if _app_pid != os.getpid():
                db.engine.dispose(close=False)  # pooled sockets belong to the parent process
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper


@app_job
def send_archive_job(job_id: int) -> str:
    """Send one archive job (claims it first: a duplicate notice does nothing)."""
    return sending.process(job_id)


@app_job
def send_archive_jobs(job_ids: list[int]) -> dict:
    """A batch from the sweep: one forked work horse for many jobs, claimed in one statement, so a backlog
    drains fast."""
    return dict(sending.process_many(job_ids))


@app_job
def archive_sweep() -> dict:
    """Every PPT_SWEEP_SECONDS: expired leases, asynchronous replies, and every due Ny job."""
    return sending.sweep()


@app_job
def send_dispatch(dispatch_id: int) -> str:
    """Send one recipient's shipment now (after the request's commit); the dispatch sweep covers misses."""
    return dispatch.process(dispatch_id)


@app_job
def send_notification_mail(notification_id: int) -> str:
    """E-mail one notification: the text and a link, never the document itself."""
    return notify.send_mail(notification_id)


def dispatch_sweep() -> dict:
    """Run by a worker thread every PPT_DISPATCH_SECONDS, one process at a time."""
    key = f"ppt:{current_app.config['PPT_QUEUE_NAME']}:dispatch-sweep-lock"
    with only_one(key) as conn:
        if conn is None:
            return {"busy": 1}
        return dispatch.sweep(renew=lambda: conn.expire(key, LOCK_SECONDS))


def lease_check() -> dict:
    """Run by a worker thread every quarter PPT_ARCHIVE_LEASE_SECONDS: archive jobs whose claim's lease
    ran out (their worker and horse died) back to Ny and into the queue at once, not at the next sweep.
    Only a read while no lease has run out; several workers doing it at once do no harm (the claim decides)."""
    released = sending.reclaim_expired()
    if released:
        try:
            sending.enqueue_batches(released, at_front=True)
        except RedisError:
            pass  # notified_at is clear: the sweep tells the queue once Redis answers
    return {"released": len(released)}
