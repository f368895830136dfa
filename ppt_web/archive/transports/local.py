"""The built-in archive (the zero-setup default): the reference archive in the instance folder, in-process.

It answers exactly as the reference archive answers over HTTP (the same reply bytes go through the http
transport's interpretation), and adds what it knows beyond the kvittering (the folder's and post's ids
after an update or a write-off, which have no kvittering payload).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from ..message import Message
from ..reference import ReferenceArchive
from .base import OK, SERVER_ERROR, Reply
from .files import read_checked
from .http import interpret, interpret_query


class LocalArchive:
    asynchronous = False

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.archive = ReferenceArchive(self.root)

    def send(self, message: Message, message_id: str) -> Reply:
        files = {f.name: read_checked(f) for f in message.files}
        try:
            answer = self.archive.receive(message.meldingstype, message_id, message.payload, files)
        except (sqlite3.Error, OSError) as exc:  # its database locked or its disk full: try again later, as over http
            return Reply(SERVER_ERROR, f"feil hos arkivet: {type(exc).__name__}")
        reply = interpret(answer.status, answer.payload)
        if reply.kind == OK:
            for part, ids in answer.known.items():
                reply.ids.setdefault(part, ids)
        return reply

    def poll(self, message_id: str) -> Reply | None:
        return None

    def query(self, meldingstype: str, payload: bytes) -> Reply:
        try:
            answer = self.archive.query(meldingstype, payload)
        except (sqlite3.Error, OSError) as exc:
            return Reply(SERVER_ERROR, f"feil hos arkivet: {type(exc).__name__}")
        return interpret_query(meldingstype, answer.status, answer.payload)

    def stored_count(self) -> int:
        """How many messages the archive took (tests)."""
        return self.archive.stored_count()

    def messages_for(self, key: str) -> list[dict]:
        """The messages the archive took that name one external key, oldest first (tests, read-only)."""
        return self.archive.messages_for(key)
