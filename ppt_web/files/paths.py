"""Where stored files live: instance/files/ab/cd/<sha256>, named by their content; and their bytes read back
checked against that name."""
from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l

from ..errors import Conflict
from ..logs import os_reason

log = logging.getLogger(__name__)

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def file_path(sha256: str) -> Path:
    """Where the bytes with this digest live; the check keeps a crafted name inside the folder."""
    if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256):
        raise ValueError(f"not a lowercase SHA-256 hex digest: {sha256!r}")
    return Path(current_app.instance_path) / "files" / sha256[:2] / sha256[2:4] / sha256


# What a stored file's bytes are, against the digest that names them.
INTACT, MISSING, CHANGED, UNREADABLE = "intact", "missing", "changed", "unreadable"


class StoredFileFault(Conflict):
    """The bytes a row names are not in the file store as they were stored: missing, changed since, or not
    readable (a disk fault, a restore gone wrong, a hand in the folder). Nothing is sent, signed, shown or
    finalized as that file then; the user is told (409) and the log says which file and why."""

    def __init__(self, sha256: str, state: str, filename: str = "", reason: str = "") -> None:
        if state == MISSING:
            message = _l("The file %(name)s is missing from the file store. Tell the administrative consultant.",
                         name=filename)
        elif state == CHANGED:
            message = _l("The file %(name)s in the file store has changed since it was stored, so it is not used. "
                         "Tell the administrative consultant.", name=filename)
        else:
            message = _l("The file %(name)s in the file store cannot be read. Tell the administrative consultant.",
                         name=filename)
        super().__init__(message)
        self.sha256, self.state, self.filename = sha256, state, filename
        log.error("stored file %s %s", sha256, {MISSING: "is missing", CHANGED: "no longer matches its SHA-256"}
                  .get(state) or f"cannot be read: {reason}")

    @property
    def missing(self) -> bool:
        return self.state == MISSING


def state_of(sha256: str) -> tuple[str, str]:
    """INTACT, MISSING, CHANGED or UNREADABLE (with the OS's words), reading the file in chunks."""
    try:
        with open(file_path(sha256), "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError:
        return MISSING, ""
    except OSError as exc:  # no permission, an I/O error, a folder in its place
        return UNREADABLE, os_reason(exc)
    return (INTACT if digest == sha256 else CHANGED), ""


def read_checked(sha256: str, filename: str = "") -> bytes:
    """The stored bytes with this digest, checked against it (StoredFileFault when they are not as stored)."""
    try:
        data = file_path(sha256).read_bytes()
    except FileNotFoundError:
        raise StoredFileFault(sha256, MISSING, filename) from None
    except OSError as exc:
        raise StoredFileFault(sha256, UNREADABLE, filename, os_reason(exc)) from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise StoredFileFault(sha256, CHANGED, filename)
    return data


def checked_path(sha256: str, filename: str = "") -> Path:
    """The path of the stored bytes with this digest, once they are checked against it (read in chunks, not
    held in memory), for a response that sends the file; StoredFileFault when they are not as stored."""
    state, reason = state_of(sha256)
    if state != INTACT:
        raise StoredFileFault(sha256, state, filename, reason)
    return file_path(sha256)
