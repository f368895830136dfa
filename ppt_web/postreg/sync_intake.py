"""The scanners' sync folder: a file is read once it has settled, stored, put in the inbox, then removed
(docs/decisions.md, "Sync folder and inbox intake")."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import queue
from ..clock import utcnow
from ..extensions import db
from ..files import pdfcheck
from ..files.storage import UploadRejected, store_upload
from ..models import InboxItem, InboxSource, InboxStatus
from .intake import (
    LOCK_SECONDS,
    SCAN_LOCK,
    SEEN_KEY,
    SKIPPED_NAMES,
    SKIPPED_SUFFIXES,
    STOPPING,
    WAITABLE,
    duplicate_of,
    mark_received,
    quarantine_bytes,
    quarantine_dir,
    reason_text,
    record_refusal,
    redis_key,
)

log = logging.getLogger(__name__)


def sync_root() -> Path:
    root = Path(current_app.config["PPT_SYNC_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    return root


def _walk(root: Path) -> Iterator[Path]:
    """Regular files under root, oldest folders first, skipping hidden names and scanners' temp files."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.lower().endswith(SKIPPED_SUFFIXES) or name.lower() in SKIPPED_NAMES:
                continue
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue  # never follow a link out of the folder
            yield path


def scan_sync_folder() -> Counter:
    """One pass over the sync folder: note new or changed files, import the ones that have settled.

    Settled files are imported by PPT_INTAKE_THREADS threads, each with its own checking child and
    database session: checking and rendering pages is the cost, and it uses every core.
    """
    counts: Counter = Counter()
    with queue.only_one(redis_key(SCAN_LOCK)) as conn:
        if conn is None:
            counts["busy"] += 1
            return counts
        seen = {k.decode(): v.decode() for k, v in conn.hgetall(redis_key(SEEN_KEY)).items()}
        present: set[str] = set()
        ready = _settled(sync_root(), conn, seen, present, counts)
        threads = max(1, min(int(current_app.config["PPT_INTAKE_THREADS"]), len(ready)))
        if threads == 1:
            counts.update(_import_all(conn, ready))
        else:
            app = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy, typed as Flask
            # Files with the same bytes go to the same thread, so one of them is found to be the duplicate.
            shares: list[list] = [[] for _ in range(threads)]
            for entry in ready:
                try:
                    shares[int(_sha256(entry[0])[:8], 16) % threads].append(entry)
                except FileNotFoundError:
                    continue  # gone since it was listed
                except OSError as exc:
                    log.warning("cannot read %s in the sync folder: %s", entry[1], exc)
                    counts["error"] += 1
            with ThreadPoolExecutor(threads, thread_name_prefix="intake") as pool:
                for result in pool.map(lambda share: _import_in_context(app, conn, share), shares):
                    counts.update(result)
        gone = set(seen) - present
        if gone:
            conn.hdel(redis_key(SEEN_KEY), *gone)
    return counts


def _settled(root: Path, conn, seen: dict, present: set, counts: Counter) -> list[tuple[Path, str, os.stat_result]]:
    """Files unchanged for PPT_SYNC_SETTLE_SECONDS; new or changed ones are noted for the next pass."""
    settle = float(current_app.config["PPT_SYNC_SETTLE_SECONDS"])
    ready = []
    for path in _walk(root):
        rel = _display_path(path.relative_to(root))
        present.add(rel)
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        signature = f"{st.st_size}:{st.st_mtime_ns}"
        previous = seen.get(rel, "")
        now = time.time()
        if previous.split("|")[0] != signature:
            conn.hset(redis_key(SEEN_KEY), rel, f"{signature}|{now}")
            counts["waiting"] += 1
        elif now - float(previous.split("|")[1]) < settle:
            counts["waiting"] += 1
        else:
            ready.append((path, rel, st))
    return ready


def _import_in_context(app, conn, share) -> Counter:
    with app.app_context():
        try:
            return _import_all(conn, share)
        finally:
            db.session.remove()


def _import_all(conn, share) -> Counter:
    counts: Counter = Counter()
    with pdfcheck.batch():
        for path, rel, st in share:
            if STOPPING.is_set():  # the worker is shutting down: the rest waits in the folder
                counts["deferred"] += 1
                continue
            try:
                outcome = import_scan(path, rel, st)
            except Exception:  # noqa: BLE001 - even the refusal failed (disk full): the file stays, next pass
                db.session.rollback()
                log.exception("could not take %s from the sync folder; it stays there", rel)
                outcome = "error"
            counts[outcome] += 1
            if outcome != "waiting":
                conn.hdel(redis_key(SEEN_KEY), rel)
            conn.expire(redis_key(SCAN_LOCK), LOCK_SECONDS)
    return counts


def _display_path(rel: Path) -> str:
    """The relative path as text; a name that is not UTF-8 (an old scanner) keeps its bytes as \\xNN."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def _looks_complete(path: Path) -> bool:
    """Cheap test before a child process is spent: a whole PDF ends with %%EOF.

    A file whose first kilobyte holds no "%PDF-" will never become a PDF: it is read at once (and
    refused as not a PDF) instead of being waited for.
    """
    try:
        with path.open("rb") as f:
            head = f.read(1024)
            if len(head) == 1024 and b"%PDF-" not in head:
                return True
            f.seek(max(0, path.stat().st_size - 1024))
            return b"%%EOF" in f.read()
    except OSError:
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _remove_source(path: Path, signature: tuple[int, int]) -> None:
    """Remove a scan whose bytes are stored; leave it if it changed since it was read (read again then)."""
    try:
        st = path.stat()
        if (st.st_size, st.st_mtime_ns) == signature:
            path.unlink()
    except FileNotFoundError:
        pass


def import_scan(path: Path, rel: str, st: os.stat_result) -> str:
    """Import one settled file: "imported", "refused", "finished" (seen before a crash) or "waiting"."""
    # The path is hashed: the key stays short and plain whatever the folder depth and names.
    key = f"scan:{hashlib.sha256(rel.encode()).hexdigest()}:{st.st_size}:{st.st_mtime_ns}"
    signature = (st.st_size, st.st_mtime_ns)
    if db.session.scalar(select(InboxItem.id).where(InboxItem.source_key == key)) is not None:
        _remove_source(path, signature)  # committed before a crash; only the clean-up was left
        return "finished"
    young = time.time() - st.st_mtime < float(current_app.config["PPT_SYNC_INCOMPLETE_SECONDS"])
    if young and not _looks_complete(path):
        return "waiting"
    try:
        duplicate = duplicate_of(_sha256(path))
        if duplicate is not None:
            return _refuse_scan(path, rel, key, signature, "duplicate",
                                f"{reason_text('duplicate')} ({duplicate})")
        with path.open("rb") as stream:
            stored = store_upload(stream, path.name, previews=True)
        mark_received(InboxItem(source=InboxSource.SCAN, status=InboxStatus.NEW, filename=stored.filename,
                            source_key=key, sha256=stored.sha256, page_count=stored.page_count,
                            arrived_at=utcnow(), meta={"path": rel}))
        db.session.commit()
    except UploadRejected as exc:
        db.session.rollback()
        if exc.reason in WAITABLE and young:
            return "waiting"
        code = "incomplete" if exc.reason in WAITABLE and not _looks_complete(path) else exc.reason
        return _refuse_scan(path, rel, key, signature, code, reason_text(code))
    except IntegrityError:
        db.session.rollback()  # another scanner committed the same key first
        return "finished"
    except FileNotFoundError:
        db.session.rollback()
        return "waiting"
    except Exception:  # noqa: BLE001 - unreadable, disk full, database away: keep the file, try again
        db.session.rollback()
        log.exception("could not import %s from the sync folder; it stays there and is tried again", rel)
        return "error"
    _remove_source(path, signature)
    return "imported"


def _refuse_scan(path: Path, rel: str, key: str, signature: tuple[int, int], code: str, detail: str) -> str:
    name = quarantine_bytes(path.read_bytes(), path.name)
    try:
        record_refusal(InboxSource.SCAN, path.name, code, detail, name, key, meta={"path": rel})
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        (quarantine_dir() / name).unlink(missing_ok=True)
        return "finished"
    _remove_source(path, signature)
    return "refused"
