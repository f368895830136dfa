"""Intake: scans from the sync folder, digital mail from SvarInn, and uploads by hand, into the inbox.

Exactly once, nothing lost (docs/decisions.md, "Sync folder and inbox intake"):
- a scan is read only after it has stayed unchanged for PPT_SYNC_SETTLE_SECONDS, and a file that
  does not yet read as a whole PDF is waited for (a scanner may pause) until it is
  PPT_SYNC_INCOMPLETE_SECONDS old; then it is reported, not dropped;
- each intake has a key ("scan:<path>:<size>:<mtime>", "svarinn:<id>:<n>") that is UNIQUE in the
  database, so a crash after the commit and before the clean-up only repeats the clean-up;
- the source file is removed (a scan) or acknowledged (SvarInn MOTTATT) only after the stored
  file and the inbox row are committed;
- anything the intake cannot take (not a PDF, encrypted, no pages, too large, a duplicate, a
  SvarInn item that fails its checks) becomes a "rejected by the system" row with the reason,
  and its bytes are kept in instance/quarantine/, never deleted.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import queue
from ..activity import service as activity
from ..auth.access import require
from ..clock import utcnow
from ..errors import Invalid
from ..extensions import db
from ..files import pdfcheck
from ..files.errors import MESSAGES as FILE_MESSAGES
from ..files.storage import UploadRejected, fsync_path, safe_filename, store_upload
from ..inbound.folder import FolderSource, write_example
from ..inbound.svarinn import SvarInnSource
from ..inbound.types import InboundFailure, InboundUnavailable
from ..models import Document, InboxItem, InboxSource, InboxStatus, JournalPost, User

log = logging.getLogger(__name__)

# Redis keys, per deployment (PPT_QUEUE_NAME), since several services may share one Redis.
SEEN_KEY = "ppt:{}:sync-seen"          # hash: relative path -> "<size>:<mtime_ns>|<first seen like this>"
SCAN_LOCK = "ppt:{}:intake-scan-lock"
INBOUND_LOCK = "ppt:{}:inbound-poll-lock"
LOCK_SECONDS = queue.LOCK_SECONDS
SKIPPED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", "~")
SKIPPED_NAMES = ("desktop.ini", "thumbs.db")  # what Windows leaves in a shared folder
# Set by the worker on shutdown: a pass over a burst of scans stops after the file in hand, so
# SIGTERM does not wait for hundreds of files (those left are read by the next pass).
STOPPING = threading.Event()
WAITABLE = ("damaged", "empty")     # what a file still being written looks like

REASONS = {
    **FILE_MESSAGES,
    "too_large": _l("The file is larger than the upload limit."),
    "duplicate": _l("The same file (identical content) is registered already."),
    "incomplete": _l("The file was never completed by the scanner."),
    "bad_metadata": _l("The digital mail had missing or invalid metadata."),
    "decrypt_failed": _l("The digital mail could not be decrypted with the service's key."),
    "bad_zip": _l("The digital mail's file package was damaged."),
    "missing_file": _l("A file named in the digital mail was missing."),
    "hash_mismatch": _l("A file of the digital mail did not match its checksum."),
    "size_mismatch": _l("A file of the digital mail did not have the size its metadata gave."),
}


def reason_text(code: str | None) -> str:
    return str(REASONS.get(code or "", _l("The file could not be read.")))


# --- shared steps -------------------------------------------------------------------------------

def _quarantine_dir() -> Path:
    folder = Path(current_app.instance_path) / "quarantine"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _quarantine_name(filename: str) -> str:
    # At most 60 characters of the name: 60 x 4 bytes of UTF-8 stays inside a file system's 255.
    stem = safe_filename(filename)[:-4][:60].rstrip(" .") or "fil"
    return f"{utcnow():%Y%m%d}-{uuid.uuid4().hex[:12]}-{stem}"


def quarantine_bytes(data: bytes, filename: str) -> str:
    """Keep bytes the intake refused; fsynced before the row that names them commits."""
    name = _quarantine_name(filename)
    path = _quarantine_dir() / name
    with path.open("xb") as out:
        out.write(data)
    fsync_path(path)
    return name


def quarantine_path(name: str) -> Path | None:
    """The kept file for a row's quarantine_name (names are ours; a crafted one cannot climb out)."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = _quarantine_dir() / name
    return path if path.is_file() else None


def duplicate_of(sha256: str) -> str | None:
    """What already holds these bytes: a document in a case, or an inbox item (not a refused one)."""
    number = db.session.execute(
        select(JournalPost.id).join(Document, Document.post_id == JournalPost.id)
        .where(Document.sha256 == sha256).limit(1)).scalar()
    if number is not None:
        post = db.session.get(JournalPost, number)
        assert post is not None  # its id was just read, in the same transaction
        return f"{post.number}"
    item_id = db.session.scalar(select(InboxItem.id).where(
        InboxItem.sha256 == sha256, InboxItem.status != InboxStatus.SYSTEM_REJECTED).limit(1))
    return f"#{item_id}" if item_id is not None else None


def _refused(source: InboxSource, filename: str, code: str, detail: str, quarantine_name: str | None,
             source_key: str | None, **fields) -> InboxItem:
    item = InboxItem(source=source, status=InboxStatus.SYSTEM_REJECTED, filename=safe_filename(filename),
                     source_key=source_key, reject_code=code, reject_reason=detail[:2000],
                     quarantine_name=quarantine_name, rejected_at=utcnow(), arrived_at=utcnow(), **fields)
    db.session.add(item)
    db.session.flush()
    activity.record("inbox_refused", actor_name="intake", object_type="inbox_item", object_id=item.id,
                    outcome="refused", after={"source": source.value, "reason": code}, detail=detail[:500])
    return item


def _received(item: InboxItem) -> None:
    db.session.add(item)
    db.session.flush()
    activity.record("inbox_received", actor_name="intake", object_type="inbox_item", object_id=item.id,
                    after={"source": item.source.value, "file": item.filename, "pages": item.page_count})


def redis_key(template: str) -> str:
    return template.format(current_app.config["PPT_QUEUE_NAME"])


# --- the sync folder ----------------------------------------------------------------------------

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
        _received(InboxItem(source=InboxSource.SCAN, status=InboxStatus.NEW, filename=stored.filename,
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
        _refused(InboxSource.SCAN, path.name, code, detail, name, key, meta={"path": rel})
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        (_quarantine_dir() / name).unlink(missing_ok=True)
        return "finished"
    _remove_source(path, signature)
    return "refused"


# --- digital mail (SvarInn) ---------------------------------------------------------------------

def inbound_source():
    """The configured inbound adapter: the folder stand-in (default) or SvarInn V2."""
    cfg = current_app.config
    limit = int(cfg["PPT_MAX_UPLOAD_BYTES"]) * 4
    if cfg["PPT_INBOUND_BACKEND"] == "svarinn":
        key = Path(cfg["PPT_SVARINN_KEY"]).read_bytes()
        return SvarInnSource(cfg["PPT_SVARINN_URL"], cfg["PPT_SVARINN_USER"], cfg["PPT_SVARINN_PASSWORD"], key,
                             max_bytes=limit)
    return FolderSource(Path(cfg["PPT_SVARINN_DIR"]), max_bytes=limit)


def message_meta(message) -> dict:
    """What pre-fills the registration form: sender, title, dates, the sender's own references."""
    return {
        "title": message.title, "sender_name": message.sender_name,
        "sender_org_number": message.sender_org_number, "sender_address": message.sender_address,
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "document_date": message.document_date.isoformat() if message.document_date else None,
        "sender_case_ref": message.sender_case_ref, "sender_post_ref": message.sender_post_ref,
        "sender_handler": message.sender_handler, "confidential": bool(message.confidential),
    }


def poll_inbound(source=None) -> Counter:
    """One pass over waiting digital mail: store each item, then acknowledge it (MOTTATT)."""
    counts: Counter = Counter()
    with queue.only_one(redis_key(INBOUND_LOCK)) as conn:
        if conn is None:
            counts["busy"] += 1
            return counts
        try:
            source = source or inbound_source()
            with pdfcheck.batch():
                _poll(source, conn, counts)
        except InboundUnavailable as exc:
            log.warning("inbound mail not fetched: %s", exc)
            counts["unavailable"] += 1
    return counts


def _poll(source, conn, counts: Counter) -> None:
    for got in source.fetch():
        conn.expire(redis_key(INBOUND_LOCK), LOCK_SECONDS)
        try:
            if isinstance(got, InboundFailure):
                counts[_take_failure(source, got)] += 1
            else:
                counts[_take_message(source, got)] += 1
        except Exception:  # noqa: BLE001 - one bad item must not stop the others; it comes again
            db.session.rollback()
            log.exception("inbound item %s not taken; it stays waiting", getattr(got, "id", "?"))
            counts["error"] += 1


def _known(message_id: str) -> list[InboxItem]:
    return list(db.session.scalars(select(InboxItem).where(InboxItem.svarinn_id == message_id)))


def _tell(call, *args) -> bool:
    """Acknowledge or fail at the sender; a failure here only means the item comes again."""
    try:
        call(*args)
        return True
    except Exception as exc:  # noqa: BLE001
        log.warning("could not report inbound item %s: %s", args[0], exc)
        return False


def _take_failure(source, got) -> str:
    if not got.permanent:
        log.info("inbound item %s: %s (%s); tried again next time", got.id, got.reason, got.detail)
        return "transient"
    known = _known(got.id) if got.id else []
    if not known:
        name = quarantine_bytes(got.payload, f"{got.id or 'svarinn'}.bin") if got.payload else None
        meta = {"raw": got.raw_metadata} if got.raw_metadata else {}
        title = (got.raw_metadata or {}).get("tittel") if isinstance(got.raw_metadata, dict) else None
        if isinstance(title, str):
            meta["title"] = title[:300]
        try:
            key = f"svarinn:{got.id or 'no-id-' + uuid.uuid4().hex}:failed"  # no id: nothing to repeat it by
            _refused(InboxSource.SVARINN, f"{got.id or 'svarinn'}.pdf", got.reason,
                     f"{reason_text(got.reason)} {got.detail}".strip(), name, key,
                     svarinn_id=got.id or None, meta=meta)
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
    if not got.id:
        return "refused"
    _tell(source.fail, got.id, f"{got.reason}: {got.detail}"[:1000], True)
    return "refused"


def _take_message(source, message) -> str:
    known = _known(message.id)
    if known:
        # Stored before; the acknowledgement was lost (a crash, the network). Say it again.
        if all(i.source_key and i.source_key.endswith(":failed") for i in known):
            _tell(source.fail, message.id, known[0].reject_reason[:1000], True)
        else:
            _tell(source.acknowledge, message.id)
        return "repeated"
    meta = message_meta(message)
    quarantined: list[str] = []
    try:
        for n, file in enumerate(message.files):
            key = f"svarinn:{message.id}:{n}"
            fields = {"svarinn_id": message.id, "meta": {**meta, "file": file.filename}}
            sha = hashlib.sha256(file.data).hexdigest()
            duplicate = duplicate_of(sha)
            if duplicate is not None:
                quarantined.append(quarantine_bytes(file.data, file.filename))
                _refused(InboxSource.SVARINN, file.filename, "duplicate",
                         f"{reason_text('duplicate')} ({duplicate})", quarantined[-1], key, **fields)
                continue
            try:
                stored = store_upload(io.BytesIO(file.data), file.filename, previews=True)
            except UploadRejected as exc:
                quarantined.append(quarantine_bytes(file.data, file.filename))
                _refused(InboxSource.SVARINN, file.filename, exc.reason, str(exc.message), quarantined[-1], key,
                         **fields)
                continue
            _received(InboxItem(source=InboxSource.SVARINN, status=InboxStatus.NEW, filename=stored.filename,
                                source_key=key, sha256=stored.sha256, page_count=stored.page_count,
                                arrived_at=utcnow(), **fields))
        db.session.commit()
    except Exception:
        db.session.rollback()
        for name in quarantined:
            (_quarantine_dir() / name).unlink(missing_ok=True)
        raise
    _tell(source.acknowledge, message.id)
    return "received"


# --- uploads by hand ----------------------------------------------------------------------------

def receive_upload(actor: User, stream, filename: str) -> InboxItem:
    """Mail that came another way (e-mail): the user sees a refusal at once, nothing is kept then."""
    require(actor, "distribute_mail")
    data = stream.read(int(current_app.config["PPT_MAX_UPLOAD_BYTES"]) + 1)
    duplicate = duplicate_of(hashlib.sha256(data).hexdigest()) if data else None
    if duplicate is not None:
        raise Invalid(f"{reason_text('duplicate')} ({duplicate})", field="file")
    try:
        stored = store_upload(io.BytesIO(data), filename or "dokument.pdf", previews=True)
        item = InboxItem(source=InboxSource.UPLOAD, status=InboxStatus.NEW, filename=stored.filename,
                         sha256=stored.sha256, page_count=stored.page_count, arrived_at=utcnow(),
                         meta={"uploaded_by": actor.username})
        db.session.add(item)
        db.session.flush()
        activity.record("inbox_received", actor=actor, object_type="inbox_item", object_id=item.id,
                        after={"source": "upload", "file": item.filename, "pages": item.page_count})
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return item


def write_demo_mail(pdf: bytes, title: str, sender: str, org_number: str | None = None) -> str:
    """Drop one digital letter into the folder stand-in for SvarInn (demo and tests)."""
    return write_example(Path(current_app.config["PPT_SVARINN_DIR"]), pdf, title=title, sender=sender,
                         org_number=org_number)
