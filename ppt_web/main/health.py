"""Readiness and metrics for the load balancer and monitoring : no personal data, counts only.

/healthz says the process answers; /readyz says it can do its work (database, Redis, a worker
listening on the queue, the archive reachable) and answers 503 naming what is not; /metrics is
Prometheus text (prometheus_client), behind PPT_METRICS_TOKEN when that is set.
"""
from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from rq import Worker
from sqlalchemy import func, select, text

from ..clock import utcnow
from ..extensions import db
from ..models import ArchiveJob, Dispatch, InboxItem, JournalPost, PostStatus
from ..queue import connection, get_queue


def _database() -> str | None:
    db.session.execute(text("SELECT 1"))
    return None


def _redis() -> str | None:
    connection().ping()
    return None


def _workers() -> str | None:
    # Worker.all() skips registrations whose key has run out: a worker killed with SIGKILL leaves its
    # name in RQ's set, but its key lives only WORKER_TTL + 60 s past its last heartbeat.
    return None if Worker.all(queue=get_queue()) else "no worker listens on the queue"


def _archive() -> str | None:
    cfg = current_app.config
    backend = cfg["PPT_ARCHIVE_BACKEND"]
    if backend in ("local", "folder"):
        folder = Path(cfg["PPT_LOCAL_ARCHIVE_DIR"] if backend == "local" else cfg["PPT_ARCHIVE_FOLDER"])
        folder.mkdir(parents=True, exist_ok=True)
        return None if os.access(folder, os.W_OK) else f"the {backend} archive folder is not writable"
    url = urlsplit(cfg.get("PPT_ARCHIVE_HTTP_URL") or "")
    if not url.hostname:
        return "PPT_ARCHIVE_HTTP_URL is not set"
    with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=2):
        return None


CHECKS = {"database": _database, "redis": _redis, "worker": _workers, "archive": _archive}


def readiness() -> tuple[bool, dict[str, str]]:
    results = {}
    for name, check in CHECKS.items():
        try:
            problem = check()
        except Exception as exc:  # noqa: BLE001 - any failure is "not ready", with its kind
            db.session.rollback()
            problem = f"{type(exc).__name__}"
        results[name] = problem or "ok"
    return all(v == "ok" for v in results.values()), results


def metrics_text() -> bytes:
    """The current counts as Prometheus text, built per scrape (nothing is kept in the process)."""
    class Counts:
        def collect(self):
            jobs = GaugeMetricFamily("ppt_archive_jobs", "Archive jobs by job and archive status",
                                     labels=["job_status", "archive_status"])
            for job_status, archive_status, n in db.session.execute(
                    select(ArchiveJob.job_status, ArchiveJob.archive_status, func.count(ArchiveJob.id))
                    .group_by(ArchiveJob.job_status, ArchiveJob.archive_status)):
                jobs.add_metric([str(job_status), str(archive_status)], n)
            yield jobs
            since = utcnow() - timedelta(hours=1)
            done = db.session.execute(select(ArchiveJob.created_at, ArchiveJob.done_at).where(
                ArchiveJob.done_at >= since, ArchiveJob.archive_status == "archived")).all()
            latency = GaugeMetricFamily("ppt_archive_latency_seconds_mean",
                                        "Mean seconds from an archive job to Arkivert, over the last hour")
            latency.add_metric([], sum((d - c).total_seconds() for c, d in done) / len(done) if done else 0.0)
            yield latency
            dispatches = GaugeMetricFamily("ppt_dispatches", "SvarUt dispatches by status", labels=["status"])
            for status, n in db.session.execute(select(Dispatch.status, func.count(Dispatch.id))
                                                .group_by(Dispatch.status)):
                dispatches.add_metric([getattr(status, "value", str(status))], n)
            yield dispatches
            inbox = GaugeMetricFamily("ppt_inbox_items", "Post registration items by status", labels=["status"])
            for status, n in db.session.execute(select(InboxItem.status, func.count(InboxItem.id))
                                                .group_by(InboxItem.status)):
                inbox.add_metric([getattr(status, "value", str(status))], n)
            yield inbox
            waiting = GaugeMetricFamily("ppt_approvals_waiting", "Posts waiting for approval")
            waiting.add_metric([], db.session.scalar(select(func.count(JournalPost.id)).where(
                JournalPost.status == PostStatus.AWAITING_APPROVAL)) or 0)
            yield waiting
            depth = GaugeMetricFamily("ppt_queue_depth", "Jobs waiting in the RQ queue")
            depth.add_metric([], get_queue().count)
            yield depth

    registry = CollectorRegistry()
    registry.register(Counts())
    return generate_latest(registry)
