"""Reading the stored bytes of an outgoing file, checked against its SHA-256 on the way out."""
from __future__ import annotations

from ...files.paths import UNREADABLE
from ...files.storage import StoredFileFault
from ...files.storage import read_checked as read_stored
from ..message import OutgoingFile


class FileMissing(Exception):
    pass


def read_checked(f: OutgoingFile) -> bytes:
    """The file's stored bytes; FileMissing (the archive log's words) when they are gone or changed."""
    try:
        return read_stored(f.sha256, f.filename)
    except StoredFileFault as fault:
        if fault.missing:
            raise FileMissing(f"fila {f.filename} manglar i fillageret") from None
        if fault.state == UNREADABLE:
            raise FileMissing(f"fila {f.filename} kan ikkje lesast i fillageret") from None
        raise FileMissing(f"fila {f.filename} har endra innhald (sjekksum stemmer ikkje)") from None
