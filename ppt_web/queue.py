"""The job queue: RQ on Redis. Jobs are handed over only after the database commit."""
from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import timedelta
from enum import StrEnum

import redis
from flask import Flask, current_app
from rq import Queue
from sqlalchemy import event
from sqlalchemy.orm import Session

from .extensions import db, session_in_transaction

log = logging.getLogger(__name__)

PENDING_KEY = "ppt_pending_jobs"


class Job(StrEnum):
    """The worker's jobs, by the import path RQ resolves in the worker. Services enqueue by these names
    and never import ppt_web.jobs, which sits above them (it runs them)."""

    SEND_ARCHIVE_JOB = "ppt_web.jobs.send_archive_job"
    SEND_ARCHIVE_JOBS = "ppt_web.jobs.send_archive_jobs"
    ARCHIVE_SWEEP = "ppt_web.jobs.archive_sweep"
    SEND_DISPATCH = "ppt_web.jobs.send_dispatch"
    SEND_NOTIFICATION_MAIL = "ppt_web.jobs.send_notification_mail"


def connection(app: Flask | None = None) -> redis.Redis:
    """A plain Redis client for PPT_REDIS_URL (redis://, rediss:// or unix://)."""
    app = app or current_app
    url = app.config.get("PPT_REDIS_URL")
    if not url:
        raise RuntimeError("PPT_REDIS_URL is not set: start the app with the launcher or set it")
    client = app.extensions.get("ppt_redis")
    if client is None or app.extensions.get("ppt_redis_url") != url:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        app.extensions["ppt_redis"] = client
        app.extensions["ppt_redis_url"] = url
    return client


def worker_connection(app: Flask | None = None) -> redis.Redis:
    """For an RQ worker: no read timeout, since the worker blocks on BLPOP for minutes on purpose."""
    app = app or current_app
    return redis.Redis.from_url(app.config["PPT_REDIS_URL"], socket_connect_timeout=5, health_check_interval=30)


LOCK_SECONDS = 60


@contextlib.contextmanager
def only_one(key: str):
    """Yield a Redis connection while holding the lock `key` (one holder across processes and hosts),
    or None when another holds it. The holder may renew it (expire); a killed one's lock runs out."""
    conn = connection()
    token = uuid.uuid4().hex
    if not conn.set(key, token, nx=True, ex=LOCK_SECONDS):
        yield None
        return
    try:
        yield conn
    finally:
        db.session.remove()
        # Only our own lock: after a long stall another process may hold a new one.
        conn.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                  1, key, token)


def get_queue(app: Flask | None = None) -> Queue:
    app = app or current_app
    return Queue(app.config["PPT_QUEUE_NAME"], connection=connection(app))


def enqueue(job: Job, *args, **kwargs):
    """Hand a job to Redis now (the sweep, a job that schedules another); kwargs go to RQ."""
    return get_queue().enqueue(str(job), *args, **kwargs)


def enqueue_in(delay: timedelta, job: Job, *args) -> None:
    """Run a job after a delay (needs a worker started with the scheduler, as worker.py does)."""
    get_queue().enqueue_in(delay, str(job), *args)


def enqueue_after_commit(job: Job, *args, delay: timedelta | None = None, job_timeout: int | None = None) -> None:
    """Hand a job to Redis once the current transaction commits (after delay, by the worker's scheduler;
    with RQ's time limit job_timeout, else its default); drop it on rollback. Never while the transaction
    is open: it may hold the database's write lock, and Redis may be slow to answer.

    A failure to reach Redis is logged and harmless: the database row is the unit of work
    and the periodic sweep finds it again (docs/decisions.md, "One transaction per user action").
    """
    target = session_in_transaction()  # its events carry the pending jobs; a rollback drops them
    options = {"job_timeout": job_timeout} if job_timeout is not None else {}
    target.info.setdefault(PENDING_KEY, []).append((str(job), args, delay, options))


@event.listens_for(Session, "after_commit")
def _flush_pending(session: Session) -> None:
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    try:
        queue = get_queue()
    except Exception:  # noqa: BLE001 - no Redis configured or app context: the sweep covers it
        log.warning("queue unavailable; %d job(s) left for the sweep", len(pending))
        return
    # At the front of the queue, in their own order: what a user just did is sent before the rest of
    # a backlog the sweep queued (its batches wait at the back), so one finalize is not stuck behind
    # thousands of old jobs.
    for job, args, delay, options in reversed(pending):
        try:
            if delay is None:
                queue.enqueue(job, *args, at_front=True, **options)
            else:
                queue.enqueue_in(delay, job, *args, **options)
        except redis.RedisError as exc:
            log.warning("could not enqueue %s: %s; left for the sweep", job, exc)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    # Fires on every rollback() call, also when no SQL had been sent yet.
    session.info.pop(PENDING_KEY, None)

