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

import logging
import threading
import time
import unicodedata
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from .. import queue
from ..activity import service as activity
from ..clock import utcnow
from ..extensions import db
from ..files.errors import MESSAGES as FILE_MESSAGES
from ..files.storage import BIDI_CONTROLS, fsync_path, safe_filename
from ..logs import mask_national_ids
from ..models import Document, InboxItem, InboxSource, InboxStatus, JournalPost

log = logging.getLogger(__name__)

# Redis keys, per deployment (PPT_QUEUE_NAME), since several services may share one Redis.
SEEN_KEY = "ppt:{}:sync-seen"          # hash: relative path -> "<size>:<mtime_ns>|<first seen like this>"
SCAN_LOCK = "ppt:{}:intake-scan-lock"
INBOUND_LOCK = "ppt:{}:inbound-poll-lock"
# What an intake sees but cannot take in, for the inbox's warning (see note_unread): a hash per intake,
# name -> "<reason code>|<first seen, epoch seconds>".
UNREAD_KEY = "ppt:{}:unread:{}"
SCANS, MAIL = "scan", "mail"
LOCK_SECONDS = queue.LOCK_SECONDS
SKIPPED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", "~")
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


def quarantine_dir() -> Path:
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
    path = quarantine_dir() / name
    with path.open("xb") as out:
        out.write(data)
    fsync_path(path)
    return name


def quarantine_path(name: str) -> Path | None:
    """The kept file for a row's quarantine_name (names are ours; a crafted one cannot climb out)."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = quarantine_dir() / name
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


def record_refusal(source: InboxSource, filename: str, code: str, detail: str, quarantine_name: str | None,
             source_key: str | None, **fields) -> InboxItem:
    item = InboxItem(source=source, status=InboxStatus.SYSTEM_REJECTED, filename=safe_filename(filename),
                     source_key=source_key, reject_code=code, reject_reason=detail[:2000],
                     quarantine_name=quarantine_name, rejected_at=utcnow(), arrived_at=utcnow(), **fields)
    db.session.add(item)
    db.session.flush()
    activity.record("inbox_refused", actor_name="intake", object_type="inbox_item", object_id=item.id,
                    outcome="refused", after={"source": source.value, "reason": code}, detail=detail[:500])
    return item


def mark_received(item: InboxItem) -> None:
    db.session.add(item)
    db.session.flush()
    activity.record("inbox_received", actor_name="intake", object_type="inbox_item", object_id=item.id,
                    after={"source": item.source.value, "file": item.filename, "pages": item.page_count})


def redis_key(template: str, *more: str) -> str:
    return template.format(current_app.config["PPT_QUEUE_NAME"], *more)


# Why an intake cannot take in what it sees; the inbox shows it until the cause is gone.
UNREAD_REASONS = {
    "no_permission": _l("the service is not allowed to read it"),
    "read_error": _l("reading it failed (the disk or the network share)"),
    "unlistable": _l("a folder the service cannot open"),
    "no_metadata": _l("a folder without forsendelse.json"),
    "not_a_folder": _l("a file straight in inn/, not in a folder of its own with forsendelse.json"),
    "unreadable": _l("its forsendelse.json or a file in it cannot be read"),
}
SHOWN_UNREAD = 20  # names listed in the warning; the count says how many there are


class Unread(NamedTuple):
    name: str
    reason: str
    since: datetime


def unread_code(exc: OSError) -> str:
    return "no_permission" if isinstance(exc, PermissionError) else "read_error"


def shown_name(text: str) -> str:
    """A path or name for a page: no control or direction characters, at most 199 characters."""
    text = unicodedata.normalize("NFC", text).translate(BIDI_CONTROLS)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cs"))
    return text[:199]


def note_unread(conn, which: str, name: str, code: str, detail: str = "") -> None:
    """Keep that `name` cannot be taken in; the log says so once, not at every pass."""
    if conn.hsetnx(redis_key(UNREAD_KEY, which), name, f"{code}|{time.time()}"):
        _log_unread(which, name, code, detail)


def forget_unread(conn, which: str, *names: str) -> None:
    """The names were taken in, became readable or are gone: off the warning."""
    if names and conn.hdel(redis_key(UNREAD_KEY, which), *names):
        _log_taken(which, names)


def _log_unread(which: str, name: str, code: str, detail: str = "") -> None:
    log.warning("%s intake: %s cannot be taken in (%s%s); it stays where it is and is shown in the inbox",
                which, mask_national_ids(name), code, f": {detail}" if detail else "")


def _log_taken(which: str, names) -> None:
    log.info("%s intake: %s no longer waits unread", which, ", ".join(mask_national_ids(n) for n in names))


def replace_unread(conn, which: str, found: list[tuple[str, str]]) -> None:
    """A whole pass's findings replace the last pass's; a name still there keeps its first seen."""
    key = redis_key(UNREAD_KEY, which)
    before = {k.decode(): v.decode() for k, v in conn.hgetall(key).items()}
    now = {name: f"{code}|{before[name].split('|')[-1] if name in before else time.time()}" for name, code in found}
    for name, code in found:
        if name not in before:
            _log_unread(which, name, code)
    gone = set(before) - set(now)
    if gone:
        _log_taken(which, sorted(gone))
    if now == before:
        return
    pipe = conn.pipeline()
    pipe.delete(key)
    if now:
        pipe.hset(key, mapping=now)
    pipe.execute()


def unread() -> dict[str, dict]:
    """For the inbox page: per intake, {"count", "items"} (the oldest SHOWN_UNREAD, as Unread). Empty when
    Redis does not answer: the page is shown without the warning, never a 500."""
    found: dict[str, dict] = {}
    try:
        pipe = queue.connection().pipeline(transaction=False)  # one round trip for both intakes
        for which in (SCANS, MAIL):
            pipe.hgetall(redis_key(UNREAD_KEY, which))
        for which, held in zip((SCANS, MAIL), pipe.execute(), strict=True):
            raw = {_text(k): _text(v) for k, v in held.items()}
            entries = []
            for name, value in raw.items():
                code, _, since = value.partition("|")
                try:
                    when = datetime.fromtimestamp(float(since), UTC)
                except (ValueError, OverflowError, OSError):
                    when = utcnow()
                entries.append(Unread(shown_name(name), str(UNREAD_REASONS.get(code, UNREAD_REASONS["read_error"])),
                                      when))
            if entries:
                entries.sort(key=lambda e: (e.since, e.name))
                found[which] = {"count": len(entries), "items": entries[:SHOWN_UNREAD]}
    except Exception as exc:  # noqa: BLE001 - Redis away: the inbox still shows
        log.warning("the inbox could not read the intakes' unread files: %s", type(exc).__name__)
    return found


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
