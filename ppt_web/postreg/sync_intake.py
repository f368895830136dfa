"""The scanners' sync folder: a file is read once it has settled, stored, put in the inbox, then removed
(docs/decisions.md, "Sync folder and inbox intake"). What it never reads (hidden and temporary files,
links, pipes) stays where it is and is reported in the inbox as skipped, once (_note_skipped). What it
cannot read (no permission, an I/O error, a folder it cannot open) stays too, and the inbox warns of it
for as long as it stays unread (intake.note_unread)."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import queue
from ..clock import utcnow
from ..extensions import db
from ..files import pdfcheck
from ..files.storage import UploadRejected, store_upload
from ..inbound.folder import QUIET_NAMES as WINDOWS_NAMES  # what Windows leaves in a shared folder
from ..logs import mask_national_ids, os_reason
from ..models import InboxItem, InboxSource, InboxStatus
from .intake import (
    LOCK_SECONDS,
    SCAN_LOCK,
    SCANS,
    SEEN_KEY,
    SKIPPED_SUFFIXES,
    STOPPING,
    UNREAD_KEY,
    WAITABLE,
    duplicate_of,
    forget_unread,
    mark_received,
    note_unread,
    quarantine_bytes,
    quarantine_dir,
    reason_text,
    record_refusal,
    redis_key,
    shown_name,
    unread_code,
)

log = logging.getLogger(__name__)


def sync_root() -> Path:
    root = Path(current_app.config["PPT_SYNC_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    return root


# What the intake never reads, and the reason the inbox shows for it (once per file: see _note_skipped).
SKIP_HIDDEN, SKIP_TEMP, SKIP_LINK, SKIP_SPECIAL = "skipped_hidden", "skipped_temp", "skipped_link", "skipped_special"
SKIP_REASONS = {
    SKIP_HIDDEN: _l("Skipped: a hidden file or folder (its name starts with a dot), so it was not read. "
                    "Rename it, or move the file out of the folder, to have it read."),
    SKIP_TEMP: _l("Skipped: a temporary file (a name ending in .tmp, .part or the like) that has not changed "
                  "for a while. The scanner may have stopped before it was done; scan the document again."),
    SKIP_LINK: _l("Skipped: a link. Links are never followed; put the file itself in the folder."),
    SKIP_SPECIAL: _l("Skipped: not a regular file (a pipe, socket or device), so it was not read."),
}
# A hidden or temporary file may still be written (a scanner writes .part, then renames it): news only
# once it has stayed unchanged for PPT_SYNC_INCOMPLETE_SECONDS. A link or a pipe is news at once.
SETTLING = (SKIP_HIDDEN, SKIP_TEMP)
# What Windows and macOS leave in any folder they show, and sync tools' own folders: never news.
QUIET_NAMES = (*WINDOWS_NAMES, ".ds_store", ".stfolder", ".stversions", ".stignore")
SKIP_FIELD = "skip:"  # prefix of a skipped path's entry in the SEEN_KEY hash


class ScanUnreadable(Exception):
    """The file is there but cannot be read (permissions, an I/O error): it stays, and the inbox says so."""

    def __init__(self, exc: OSError):
        super().__init__(os_reason(exc))
        self.code = unread_code(exc)


def _walk(root: Path, unlistable: list[OSError] | None = None) -> Iterator[tuple[Path, str | None]]:
    """Regular files under root, oldest folders first, as (path, None); what is never read as
    (path, reason): hidden names, scanners' temp files, links and anything not a regular file.
    Hidden folders and links to folders are not entered. A folder that cannot be listed goes to
    unlistable (os.walk would pass over it without a word). A name that cannot be looked at (gone since
    it was listed, or in a folder the service may list but not enter) comes as a file, (path, None): the
    stat that follows says why it cannot be read; a folder so is tried, and goes to unlistable."""
    for folder, dirs, files in os.walk(root, onerror=unlistable.append if unlistable is not None else None):
        entered = []
        for name in sorted(dirs):
            path = Path(folder) / name
            if name.lower() in QUIET_NAMES:
                continue
            mode = _mode(path)
            if mode is None:
                entered.append(name)  # tried: one that cannot be opened goes to unlistable
            elif stat.S_ISLNK(mode):
                yield path, SKIP_LINK  # never follow a link out of the folder
            elif name.startswith("."):
                yield path, SKIP_HIDDEN
            else:
                entered.append(name)
        dirs[:] = entered
        for name in sorted(files):
            path = Path(folder) / name
            if name.lower() in QUIET_NAMES:
                continue
            mode = _mode(path)
            if mode is None:
                yield path, None
            elif stat.S_ISLNK(mode):
                yield path, SKIP_LINK
            elif not stat.S_ISREG(mode):
                yield path, SKIP_SPECIAL
            elif name.startswith("."):
                yield path, SKIP_HIDDEN
            elif name.lower().endswith(SKIPPED_SUFFIXES):
                yield path, SKIP_TEMP
            else:
                yield path, None


def _mode(path: Path) -> int | None:
    """The entry's own mode (a link's, not its target's); None when it cannot be looked at."""
    try:
        return path.lstat().st_mode
    except OSError:
        return None


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
                    note_unread(conn, SCANS, entry[1], unread_code(exc), os_reason(exc))
                    counts["unreadable"] += 1
            with ThreadPoolExecutor(threads, thread_name_prefix="intake") as pool:
                for result in pool.map(lambda share: _import_in_context(app, conn, share), shares):
                    counts.update(result)
        gone = set(seen) - present
        if gone:
            conn.hdel(redis_key(SEEN_KEY), *gone)
        unread_gone = {k.decode() for k in conn.hkeys(redis_key(UNREAD_KEY, SCANS))} - present
        forget_unread(conn, SCANS, *sorted(unread_gone))
    return counts


def _settled(root: Path, conn, seen: dict, present: set, counts: Counter) -> list[tuple[Path, str, os.stat_result]]:
    """Files unchanged for PPT_SYNC_SETTLE_SECONDS; new or changed ones are noted for the next pass."""
    settle = float(current_app.config["PPT_SYNC_SETTLE_SECONDS"])
    ready = []
    unlistable: list[OSError] = []
    for path, skipped in _walk(root, unlistable):
        rel = _display_path(path.relative_to(root))
        if skipped:
            try:
                _note_skipped(path, rel, skipped, conn, seen, present)
            except Exception:  # noqa: BLE001 - telling about a skipped file never stops the intake
                db.session.rollback()
                log.exception("could not report %s, skipped in the sync folder", mask_national_ids(rel))
            counts["skipped"] += 1
            continue
        present.add(rel)
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            note_unread(conn, SCANS, rel, unread_code(exc), os_reason(exc))
            counts["unreadable"] += 1
            continue
        if not stat.S_ISREG(st.st_mode):
            continue  # became a link or no file since _walk looked (or it could not look then): the next pass says
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
    for error in unlistable:
        folder = Path(error.filename or root)
        rel = _display_path(folder.relative_to(root)) + "/" if folder != root else "/"
        present.add(rel)
        note_unread(conn, SCANS, rel, "unlistable", os_reason(error))
        counts["unreadable"] += 1
    return ready


def _note_skipped(path: Path, rel: str, reason: str, conn, seen: dict, present: set) -> None:
    """Report a file the intake does not read in the inbox and the log, once for as long as it stays.

    Its SEEN_KEY entry holds "<inode>|<signature>|<unchanged since>|<present since>|<reported>". The
    row's key names the path, the reason and when the file appeared, so the same file is one row
    however often it changes, and a file taken away and put back (or replaced) is reported again.
    (After Redis loses the entries, a file still there is reported once more.)
    """
    field = SKIP_FIELD + rel
    present.add(field)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    signature = f"{st.st_size}:{st.st_mtime_ns}" if reason in SETTLING else "-"
    now = time.time()
    previous = seen.get(field, "").split("|")
    if len(previous) != 5 or previous[0] != str(st.st_ino):
        conn.hset(redis_key(SEEN_KEY), field, f"{st.st_ino}|{signature}|{now}|{now}|")
        return
    _, was, unchanged_since, present_since, reported = previous
    if reported:
        return
    if was != signature:
        conn.hset(redis_key(SEEN_KEY), field, f"{st.st_ino}|{signature}|{now}|{present_since}|")
        return
    wait = current_app.config["PPT_SYNC_INCOMPLETE_SECONDS" if reason in SETTLING else "PPT_SYNC_SETTLE_SECONDS"]
    if now - float(unchanged_since) < float(wait):
        return
    key = f"skip:{hashlib.sha256(rel.encode()).hexdigest()}:{reason}:{present_since}"
    shown = shown_name(rel) + ("/" if path.is_dir() else "")  # a folder, or a link to one
    try:
        item = record_refusal(InboxSource.SCAN, shown, reason, str(SKIP_REASONS[reason]), None, key,
                              meta={"path": rel, "skipped": reason})
        item.filename = shown  # the name as it is in the folder (record_refusal's would end in .pdf)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # reported already (the entry was lost meanwhile)
    else:
        log.warning("sync folder: %s skipped (%s), left where it is; shown in the inbox",
                    mask_national_ids(rel), reason)
    conn.hset(redis_key(SEEN_KEY), field, f"{st.st_ino}|{was}|{unchanged_since}|{present_since}|1")


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
            except ScanUnreadable as exc:  # tried again at every pass (its SEEN_KEY entry stays), told once
                db.session.rollback()
                note_unread(conn, SCANS, rel, exc.code, str(exc))
                outcome = "unreadable"
            except Exception:  # noqa: BLE001 - even the refusal failed (disk full): the file stays, next pass
                db.session.rollback()
                log.exception("could not take %s from the sync folder; it stays there", mask_national_ids(rel))
                outcome = "error"
            counts[outcome] += 1
            if outcome in ("imported", "refused", "finished", "waiting"):  # it could be read
                forget_unread(conn, SCANS, rel)
            if outcome not in ("waiting", "unreadable"):
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
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ScanUnreadable(exc) from None


def _readable_sha256(path: Path) -> str | None:
    """The file's SHA-256, None if it is gone; ScanUnreadable if it is there but cannot be read."""
    try:
        return _sha256(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ScanUnreadable(exc) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _kept_copy_sha(quarantine_name: str | None) -> str | None:
    """The SHA-256 of a refused file's copy in quarantine (None: none kept, or unreadable)."""
    if not quarantine_name:
        return None
    try:
        return _sha256(quarantine_dir() / quarantine_name)
    except OSError:
        return None


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
    found = db.session.execute(select(InboxItem.sha256, InboxItem.quarantine_name)
                               .where(InboxItem.source_key == key)).first()
    sha = None
    if found is not None:
        sha = _readable_sha256(path)
        if sha is None:
            return "finished"
        if sha in (found.sha256, _kept_copy_sha(found.quarantine_name)):
            _remove_source(path, signature)  # committed before a crash; only the clean-up was left
            return "finished"
        # Other bytes under the same path, size and time (a scanner without a clock writes 1980-01-01; a
        # copy keeps the time): a file of its own, never removed unread.
        key = f"{key}:{sha[:32]}"
        if db.session.scalar(select(InboxItem.id).where(InboxItem.source_key == key)) is not None:
            _remove_source(path, signature)
            return "finished"
    young = time.time() - st.st_mtime < float(current_app.config["PPT_SYNC_INCOMPLETE_SECONDS"])
    if young and not _looks_complete(path):
        return "waiting"
    sha = sha or _readable_sha256(path)  # (read once: a file whose key was known is hashed above)
    if sha is None:
        return "waiting"
    try:
        duplicate = duplicate_of(sha)
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
    except ScanUnreadable:
        raise
    except Exception:  # noqa: BLE001 - disk full, database away: keep the file, try again
        db.session.rollback()
        log.exception("could not import %s from the sync folder; it stays there and is tried again", rel)
        return "error"
    _remove_source(path, signature)
    return "imported"


def _refuse_scan(path: Path, rel: str, key: str, signature: tuple[int, int], code: str, detail: str) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ScanUnreadable(exc) from None
    name = quarantine_bytes(data, path.name)
    try:
        record_refusal(InboxSource.SCAN, path.name, code, detail, name, key, meta={"path": rel})
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        (quarantine_dir() / name).unlink(missing_ok=True)
        return "finished"
    _remove_source(path, signature)
    return "refused"
