"""Readiness and metrics for the load balancer and monitoring : no personal data, counts only.

/healthz says the process answers; /readyz says it can do its work (database, Redis, a worker
listening on the queue, the archive reachable; over Fiks IO: its settings, the archive's key in the
catalog and a connected consumer of our queue) and answers 503 naming what is not; /metrics is
Prometheus text (prometheus_client): behind PPT_METRICS_TOKEN when that is set, for the host
itself only when it is not (metrics_refusal), and still answered when Redis or the database is away.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import Flask, Request, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from rq import Worker
from sqlalchemy import func, select, text

from ..clock import utcnow
from ..extensions import db
from ..models import ArchiveJob, Dispatch, InboxItem, JournalPost, PostStatus
from ..queue import connection, get_queue

if TYPE_CHECKING:
    from ..fiksio.client import FiksIoClient

log = logging.getLogger(__name__)
READY_TIMEOUT = 5.0  # a catalog lookup from /readyz: a load balancer will not wait longer


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
    if backend == "fiksio":
        return _fiksio(cfg)
    if backend in ("local", "folder"):
        folder = Path(cfg["PPT_LOCAL_ARCHIVE_DIR"] if backend == "local" else cfg["PPT_ARCHIVE_FOLDER"])
        folder.mkdir(parents=True, exist_ok=True)
        return None if os.access(folder, os.W_OK) else f"the {backend} archive folder is not writable"
    url = urlsplit(cfg.get("PPT_ARCHIVE_HTTP_URL") or "")
    if not url.hostname:
        return "PPT_ARCHIVE_HTTP_URL is not set"
    with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=2):
        return None


FIKSIO_PROBLEMS_SHOWN = 3
_catalogs: dict[str, FiksIoClient] = {}  # per API base: keeps the archive's key cached between calls


def _fiksio(cfg) -> str | None:
    """The settings, then the archive account's key in the catalog, then a live consumer of our queue."""
    # Imported here, as in log_archive_problems: only over Fiks IO (they import pika and cryptography, ~10 MiB).
    from ..archive.fiksio import CONSUMER_KEY  # noqa: PLC0415
    from ..fiksio import settings as fiksio_settings  # noqa: PLC0415
    from ..fiksio.client import FiksIoClient, FiksIoError  # noqa: PLC0415

    found = fiksio_settings.problems(cfg)
    if found:
        more = len(found) - FIKSIO_PROBLEMS_SHOWN
        return "; ".join(found[:FIKSIO_PROBLEMS_SHOWN]) + (f" (and {more} more)" if more > 0 else "")
    settings = fiksio_settings.from_config(cfg)
    archive = str(cfg["PPT_FIKSIO_ARCHIVE_ACCOUNT_ID"])
    catalog = _catalogs.get(settings.api_url)
    if catalog is None:
        catalog = _catalogs[settings.api_url] = FiksIoClient(settings, timeout=READY_TIMEOUT)
    try:
        catalog.public_key(archive)
    except FiksIoError as exc:
        return f"the archive account's public key cannot be fetched from the Fiks IO catalog: {exc.text}"
    holder = connection().get(CONSUMER_KEY + settings.account_id)
    return None if holder else "no Fiks IO consumer is connected (is a worker running?)"


def log_archive_problems(app: Flask) -> None:
    """At start: with PPT_ARCHIVE_BACKEND=fiksio, every problem of its settings as one ERROR line. Never
    raises: the web must come up to show /readyz."""
    if app.config.get("PPT_ARCHIVE_BACKEND") != "fiksio":
        return
    from ..fiksio import settings as fiksio_settings  # noqa: PLC0415 - only over Fiks IO (see _fiksio)

    try:
        found = fiksio_settings.problems(app.config)
    except Exception as exc:  # noqa: BLE001 - a start-up check must not stop the start
        found = [f"the Fiks IO settings could not be checked ({type(exc).__name__})"]
    if found:
        log.error("PPT_ARCHIVE_BACKEND=fiksio cannot work: %s", "; ".join(found))


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


def metrics_refusal(req: Request) -> int | None:
    """None when the caller may read /metrics, else the status to answer.

    With PPT_METRICS_TOKEN set, every caller shows it (Authorization: Bearer <token>), or 401.
    Unset, only the host itself is answered: a request from a loopback address that did not come
    through a proxy (or whose trusted proxy, PPT_TRUSTED_PROXIES, says the client is the host
    itself); anyone else gets 404, as for a page that does not exist.
    """
    token = current_app.config.get("PPT_METRICS_TOKEN")
    if token:
        scheme, _, given = req.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), str(token).encode()):
            return 401
        return None
    return None if _from_this_host(req) else 404


FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def _from_this_host(req: Request) -> bool:
    try:
        address = ipaddress.ip_address(req.remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_loopback:
        return False
    if int(current_app.config.get("PPT_TRUSTED_PROXIES") or 0) > 0:
        return True  # ProxyFix has put the forwarded client's address in remote_addr
    # A proxy on this host that the app does not trust connects from 127.0.0.1 for anyone.
    return not any(header in req.headers for header in FORWARDING_HEADERS)


def _database_families() -> list[GaugeMetricFamily]:
    jobs = GaugeMetricFamily("ppt_archive_jobs", "Archive jobs by job and archive status",
                             labels=["job_status", "archive_status"])
    for job_status, archive_status, n in db.session.execute(
            select(ArchiveJob.job_status, ArchiveJob.archive_status, func.count(ArchiveJob.id))
            .group_by(ArchiveJob.job_status, ArchiveJob.archive_status)):
        jobs.add_metric([str(job_status), str(archive_status)], n)
    since = utcnow() - timedelta(hours=1)
    done = db.session.execute(select(ArchiveJob.created_at, ArchiveJob.done_at).where(
        ArchiveJob.done_at >= since, ArchiveJob.archive_status == "archived")).all()
    latency = GaugeMetricFamily("ppt_archive_latency_seconds_mean",
                                "Mean seconds from an archive job to Arkivert, over the last hour")
    seconds = [(d - c).total_seconds() for c, d in done if c is not None and d is not None]
    latency.add_metric([], sum(seconds) / len(seconds) if seconds else 0.0)
    dispatches = GaugeMetricFamily("ppt_dispatches", "SvarUt dispatches by status", labels=["status"])
    for status, n in db.session.execute(select(Dispatch.status, func.count(Dispatch.id))
                                        .group_by(Dispatch.status)):
        dispatches.add_metric([getattr(status, "value", str(status))], n)
    inbox = GaugeMetricFamily("ppt_inbox_items", "Post registration items by status", labels=["status"])
    for item_status, n in db.session.execute(select(InboxItem.status, func.count(InboxItem.id))
                                             .group_by(InboxItem.status)):
        inbox.add_metric([getattr(item_status, "value", str(item_status))], n)
    waiting = GaugeMetricFamily("ppt_approvals_waiting", "Posts waiting for approval")
    waiting.add_metric([], db.session.scalar(select(func.count(JournalPost.id)).where(
        JournalPost.status == PostStatus.AWAITING_APPROVAL)) or 0)
    return [jobs, latency, dispatches, inbox, waiting]


def _redis_families() -> list[GaugeMetricFamily]:
    depth = GaugeMetricFamily("ppt_queue_depth", "Jobs waiting in the RQ queue")
    depth.add_metric([], get_queue().count)
    # Imported here: the inbound mail's modules (the CMS decryptor, the PDF check) are not a page's.
    from ..postreg.mail_intake import undecryptable_count  # noqa: PLC0415

    undecryptable = GaugeMetricFamily("ppt_svarinn_undecryptable",
                                      "SvarInn items our private key could not open in the last poll (left waiting)")
    undecryptable.add_metric([], undecryptable_count())
    return [depth, undecryptable]


PARTS = {"database": _database_families, "redis": _redis_families}


def metrics_text() -> bytes:
    """The current counts as Prometheus text, built per scrape (nothing is kept in the process).

    A part that does not answer (Redis or the database away) is left out, and its ppt_<part>_up
    gauge is 0: the scrape still succeeds, and a missing gauge is never mistaken for a zero.
    """
    class Counts:
        def collect(self):
            families, up = [], {}
            for name, part in PARTS.items():
                try:
                    families += part()
                    up[name] = 1
                except Exception as exc:  # noqa: BLE001 - any failure of a part: 0, never a 500
                    if name == "database":
                        _rollback_quietly()
                    log.warning("metrics: the %s did not answer (%s)", name, type(exc).__name__)
                    up[name] = 0
            for name, value in up.items():
                gauge = GaugeMetricFamily(f"ppt_{name}_up", f"1 when the {name} answered this scrape, else 0 "
                                          f"(its gauges are left out)")
                gauge.add_metric([], value)
                yield gauge
            yield from families

    registry = CollectorRegistry()
    registry.register(Counts())
    return generate_latest(registry)


def _rollback_quietly() -> None:
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone: nothing to roll back
        pass
