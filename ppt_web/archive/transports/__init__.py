"""How archive messages travel: one interface (base.py), four transports: the built-in archive
(local), an HTTP archive, a folder another system reads and answers in, and KS Fiks IO."""
from __future__ import annotations

import functools

from flask import Flask, current_app

from .base import (
    HANDED_OVER,
    INVALID,
    NOT_FOUND,
    OK,
    SERVER_ERROR,
    TRANSIENT,
    UNREACHABLE,
    UNSUPPORTED,
    Reply,
    Transport,
)
from .fiksio import transport_for
from .folder import FolderTransport
from .http import HttpTransport
from .local import LocalArchive

__all__ = ["HANDED_OVER", "INVALID", "NOT_FOUND", "OK", "SERVER_ERROR", "TRANSIENT", "UNREACHABLE", "UNSUPPORTED",
           "Reply", "Transport", "get_transport"]


def get_transport(app: Flask | None = None) -> Transport:
    app = app or current_app
    backend = app.config["PPT_ARCHIVE_BACKEND"]
    if backend == "local":
        return _local(str(app.config["PPT_LOCAL_ARCHIVE_DIR"]))
    if backend == "http":
        if not app.config.get("PPT_ARCHIVE_HTTP_URL"):
            raise RuntimeError("PPT_ARCHIVE_BACKEND=http needs PPT_ARCHIVE_HTTP_URL")
        return _http(app.config["PPT_ARCHIVE_HTTP_URL"], app.config["PPT_ARCHIVE_HTTP_TIMEOUT"])
    if backend == "folder":
        return FolderTransport(app.config["PPT_ARCHIVE_FOLDER"])
    if backend == "fiksio":
        return transport_for(app)
    raise RuntimeError(f"unknown PPT_ARCHIVE_BACKEND {backend!r}: use local, http, folder or fiksio")


# The built-in archive and the http transport hold nothing a fork could share (the archive's connection and
# the http session are each kept per process and thread): one object per setting, not one per message.
@functools.lru_cache(maxsize=8)
def _local(root: str) -> LocalArchive:
    return LocalArchive(root)


@functools.lru_cache(maxsize=8)
def _http(url: str, timeout: float) -> HttpTransport:
    return HttpTransport(url, timeout=timeout)
