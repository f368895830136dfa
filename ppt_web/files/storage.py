"""Uploaded PDFs, stored once under instance/files/ab/cd/<sha256> (docs/decisions.md, "Files").

The file is in place and fsynced before the caller commits the row that refers to it, so a
failed transaction can leave an unreferenced file (nothing names it; harmless) but never a row without one.
An upload holds its bytes' folder locked (shared) until its transaction ends, and a failed action's
clean-up takes the lock alone before it looks for a row: so the clean-up never removes bytes that a
concurrent upload of the same file is about to commit.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..extensions import db, on_postgresql, session_in_transaction
from ..logs import os_reason
from ..models.files import StoredFile
from . import preview
from .errors import UploadRejected
from .paths import (
    CHANGED,
    INTACT,
    MISSING,
    UNREADABLE,
    StoredFileFault,
    checked_path,
    file_path,
    read_checked,
    state_of,
)
from .pdfcheck import inspect_pdf

# The names other areas use.
__all__ = ["StoredFileFault", "UploadRejected", "checked_path", "file_path", "read_checked", "store_upload"]

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
MAX_NAME = 120
FALLBACK_NAME = "dokument.pdf"
BIDI_CONTROLS = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                                     "\u200e\u200f\u061c"))
LOCKS_KEY = "ppt_file_locks"  # session.info: the folder locks this transaction's uploads hold, (pid, fd)
DISCARD_WAIT = 30.0  # seconds a clean-up waits for the uploads of its folders; then it leaves the files


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class StoredUpload:
    sha256: str
    size: int
    page_count: int
    filename: str
    new: bool = False  # this transaction made the stored_file row (its bytes go if it rolls back)


def safe_filename(name: str) -> str:
    """A display and download name that cannot climb folders, hide in a dot or reorder text on screen."""
    name = re.split(r"[/\\]", unicodedata.normalize("NFC", name))[-1].translate(BIDI_CONTROLS)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cs"))  # controls, surrogates
    name = " ".join(name.split())
    stem = name[:-4] if name.lower().endswith(".pdf") else name
    stem = stem.lstrip(". ")[: MAX_NAME - 4].rstrip(" .")
    return f"{stem}.pdf" if stem else FALLBACK_NAME


def store_upload(stream: Readable, filename: str, previews: bool = False) -> StoredUpload:
    """Check and keep an uploaded PDF; the row is added, not committed: it joins the caller's transaction.

    With previews, page images are rendered in the same checking child (see preview.py).
    """
    limit = current_app.config.get("PPT_MAX_UPLOAD_BYTES", DEFAULT_MAX_BYTES)
    tmp_dir = Path(current_app.instance_path) / "tmp"  # same file system as files/, so os.replace is atomic
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, suffix=".upload")
    tmp = Path(tmp_name)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    too_large = _l("The file is larger than %(mb)s MB.", mb=f"{limit / 2**20:g}")
                    raise UploadRejected("too_large", too_large)
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise UploadRejected("empty")
        sha256 = digest.hexdigest()
        _hold_until_transaction_ends(sha256)
        known = db.session.get(StoredFile, sha256)
        target = file_path(sha256)
        state = state_of(sha256)[0]
        if known is not None and state == INTACT:
            # These bytes are stored already: nothing to check or write (the temp file goes).
            if previews:
                preview.ensure(sha256)
            return StoredUpload(sha256=sha256, size=size, page_count=known.page_count,
                                filename=safe_filename(filename))
        fsync_path(tmp)
        rendered = preview.scratch() if previews else None
        try:
            page_count = inspect_pdf(tmp, preview_dir=rendered) if known is None or rendered else known.page_count
            if rendered is not None:
                preview.install(rendered, sha256)
        finally:
            if rendered is not None and rendered.exists():
                shutil.rmtree(rendered, ignore_errors=True)
        try:
            _put_in_place(tmp, target, state)
        except OSError as exc:
            if state == MISSING:
                raise
            # It cannot be replaced either (a folder in its place): the user is told, as for one not readable.
            raise StoredFileFault(sha256, UNREADABLE, safe_filename(filename), os_reason(exc)) from None
        new = known is None and _insert_once(sha256=sha256, size=size, page_count=page_count,
                                             content_type="application/pdf")
        return StoredUpload(sha256=sha256, size=size, page_count=page_count, filename=safe_filename(filename),
                            new=new)
    finally:
        tmp.unlink(missing_ok=True)


def _insert_once(**values) -> bool:
    """The stored_file row, unless the same bytes were stored a moment ago by another request (two
    uploads of one letter at once): then theirs is the row, and this one is not an error."""
    insert = postgresql_insert if on_postgresql() else sqlite_insert
    # RETURNING says whether this statement made the row (psycopg reports no rowcount for it).
    made = db.session.execute(insert(StoredFile).values(**values).on_conflict_do_nothing(index_elements=["sha256"])
                              .returning(StoredFile.sha256)).first()
    return made is not None


def fsync_path(path: Path) -> None:
    """Flush a written file (or a folder's entries) to disk before anything refers to it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _put_in_place(tmp: Path, target: Path, state: str) -> None:
    """Rename the fsynced temp file to its digest name, unless the file there already holds these bytes (the
    state paths.state_of found before the check). One found changed or unreadable is replaced: storing the
    right bytes again repairs it. (One found missing may be there by now, put in place by an upload of the
    same bytes at the same moment: replaced by the same bytes.)"""
    if state == INTACT:
        return
    if state in (CHANGED, UNREADABLE):
        log.warning("stored file %s was %s; replaced by an upload of the same bytes", target.name, state)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
    folder = os.open(target.parent, os.O_RDONLY)  # make the rename itself survive a crash
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


# The folder locks this process holds. A lock belongs to the open file, which a forked child shares (an RQ
# work horse forked while a worker thread's upload is open): the child closes its copies at once, or it
# would hold the lock for its whole life after the parent let go.
_held: set[int] = set()
_held_guard = threading.Lock()


def _open_folder_lock(sha256: str) -> int:
    """An open descriptor of the folder the bytes live under (files/ab): what uploads and clean-ups lock."""
    folder = file_path(sha256).parent.parent
    folder.mkdir(parents=True, exist_ok=True)
    with _held_guard:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        _held.add(fd)
    return fd


def _close_folder_lock(fd: int) -> None:
    """Close (and so unlock) a descriptor _open_folder_lock gave, unless a fork closed it already."""
    with _held_guard:
        if fd in _held:
            _held.discard(fd)
            os.close(fd)


def _close_inherited() -> None:
    for fd in _held:
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()
    _held_guard.release()  # taken by the forking thread before the fork


os.register_at_fork(before=_held_guard.acquire, after_in_parent=_held_guard.release,
                    after_in_child=_close_inherited)


def _hold_until_transaction_ends(sha256: str) -> None:
    """Lock the bytes' folder shared until the session's transaction commits or rolls back."""
    session = session_in_transaction()  # whose end releases the lock
    fd = _open_folder_lock(sha256)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits only for a clean-up's check and unlink
    except BaseException:
        _close_folder_lock(fd)
        raise
    session.info.setdefault(LOCKS_KEY, []).append((os.getpid(), fd))


@event.listens_for(Session, "after_transaction_end")
def _release_folder_locks(session: Session, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction, not a savepoint
        for pid, fd in session.info.pop(LOCKS_KEY, ()):
            if pid == os.getpid():  # a session a forked child inherited holds none of them
                _close_folder_lock(fd)


def discard_unreferenced(hashes: list[str]) -> None:
    """After a failed transaction, remove the bytes it stored first and no row names (docs/decisions.md, "Files").

    Each check and removal holds the bytes' folder alone: an upload of the same bytes in another
    transaction holds it until it commits, so its row is seen and its file kept. A clean-up that cannot
    get the locks in DISCARD_WAIT (for all the hashes together) leaves the files (named by nothing, they do
    no harm).
    """
    deadline = time.monotonic() + DISCARD_WAIT
    for sha in hashes:
        fd = _open_folder_lock(sha)
        try:
            if not _lock_alone(fd, deadline):
                log.info("left an unreferenced file for later: its folder stayed busy")
                continue
            db.session.rollback()  # a fresh read: rows committed meanwhile are seen
            if db.session.scalar(select(StoredFile.sha256).where(StoredFile.sha256 == sha)) is None:
                file_path(sha).unlink(missing_ok=True)
                shutil.rmtree(Path(current_app.instance_path) / "previews" / sha[:2] / sha, ignore_errors=True)
            db.session.rollback()
        finally:
            _close_folder_lock(fd)  # releases the lock


def _lock_alone(fd: int, deadline: float) -> bool:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
