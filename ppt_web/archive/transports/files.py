"""Reading the stored bytes of an outgoing file, checked against its SHA-256 on the way out."""
from __future__ import annotations

import hashlib

from ...files.storage import file_path
from ..message import OutgoingFile


class FileMissing(Exception):
    pass


def read_checked(f: OutgoingFile) -> bytes:
    path = file_path(f.sha256)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileMissing(f"fila {f.filename} manglar i fillageret") from None
    if hashlib.sha256(data).hexdigest() != f.sha256:
        raise FileMissing(f"fila {f.filename} har endra innhald (sjekksum stemmer ikkje)")
    return data
