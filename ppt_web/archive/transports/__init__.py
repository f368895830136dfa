"""How archive messages travel: one interface, three transports (SPEC §10)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from flask import Flask, current_app

from ..message import Message

# Reply kinds, mapped to job and archive status by archive.sending.apply_reply.
OK = "ok"  # receipt: Utført / Arkivert
INVALID = "invalid"  # ugyldigforespoersel: Utført / Feil, no automatic retry
NOT_FOUND = "not_found"  # ikkefunnet: Utført / Feil
SERVER_ERROR = "server_error"  # 5xx / serverfeil: retried with backoff
UNREACHABLE = "unreachable"  # timeout, refused connection: retried with backoff
HANDED_OVER = "handed_over"  # asynchronous: written out, the reply comes later
TRANSIENT = (SERVER_ERROR, UNREACHABLE)


@dataclass
class Reply:
    kind: str
    text: str = ""
    ids: dict = field(default_factory=dict)


class Transport(Protocol):
    asynchronous: bool

    def send(self, message: Message, message_id: str) -> Reply:
        """Hand one message over; the same message_id on every retry of one job."""

    def poll(self, message_id: str) -> Reply | None:
        """An asynchronous transport's final reply, if it has come; None while waiting."""


def get_transport(app: Flask | None = None) -> Transport:
    app = app or current_app
    backend = app.config["PPT_ARCHIVE_BACKEND"]
    if backend == "local":
        from .local import LocalArchive

        return LocalArchive(app.config["PPT_LOCAL_ARCHIVE_DIR"])
    if backend == "http":
        from .http import HttpTransport

        if not app.config.get("PPT_ARCHIVE_HTTP_URL"):
            raise RuntimeError("PPT_ARCHIVE_BACKEND=http needs PPT_ARCHIVE_HTTP_URL")
        return HttpTransport(app.config["PPT_ARCHIVE_HTTP_URL"], timeout=app.config["PPT_ARCHIVE_HTTP_TIMEOUT"])
    if backend == "folder":
        from .folder import FolderTransport

        return FolderTransport(app.config["PPT_ARCHIVE_FOLDER"])
    raise RuntimeError(f"unknown PPT_ARCHIVE_BACKEND {backend!r}: use local, http or folder")
