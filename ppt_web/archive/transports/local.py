"""The built-in archive (the zero-setup default): the reference archive in the instance folder, in-process.

It answers exactly as the reference archive answers over HTTP (the same reply bytes go through the http
transport's interpretation), and adds what it knows beyond the kvittering (the folder's and post's ids
after an update or a write-off, which have no kvittering payload).
"""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from ..message import Message
from ..reference import Answer, ReferenceArchive
from .base import OK, SERVER_ERROR, Reply
from .files import FileMissing, read_checked
from .http import interpret, interpret_query

log = logging.getLogger(__name__)


def _reply(answer: Answer) -> Reply:
    """The archive's answer read as the http transport reads it, with what else the archive knows (the
    folder's and post's ids after an update or a write-off, which have no kvittering payload)."""
    reply = interpret(answer.status, answer.payload)
    if reply.kind == OK:
        for part, ids in answer.known.items():
            reply.ids.setdefault(part, ids)
    return reply


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
        return _reply(answer)

    def send_many(self, messages: list[tuple[Message, str]]) -> list[Reply | Exception]:
        """Several messages (each with its message id), taken by the archive in one transaction: one fsync
        for all of them. Their replies in order, as send() would give each; where send() would raise (a stored
        file gone or changed: FileMissing), the exception is that message's answer and the others go on.
        Should the batch fail for a reason of one message (a fault in the archive's own code), each is sent
        again on its own, so the others do not share its fate."""
        results: list[Reply | Exception | None] = [None] * len(messages)
        received, slots = [], []
        for i, (message, message_id) in enumerate(messages):
            try:
                files = {f.name: read_checked(f) for f in message.files}
            except FileMissing as exc:
                results[i] = exc
                continue
            received.append((message.meldingstype, message_id, message.payload, files))
            slots.append(i)
        answers: list[Answer] | list[Reply] | list[Reply | Exception]
        try:
            answers = self.archive.receive_many(received) if received else []
        except (sqlite3.Error, OSError) as exc:  # the archive's database or disk: all of them again later
            answers = [Reply(SERVER_ERROR, f"feil hos arkivet: {type(exc).__name__}") for _ in received]
        except Exception:  # noqa: BLE001 - one message broke the archive: nothing of the batch was kept
            log.warning("the built-in archive failed on a batch of %d messages; sending them one by one",
                        len(received), exc_info=True)
            answers = [self._send_alone(*messages[i]) for i in slots]
        for i, answer in zip(slots, answers, strict=True):
            results[i] = answer if isinstance(answer, (Reply, Exception)) else _reply(answer)
        return [result for result in results if result is not None]

    def _send_alone(self, message: Message, message_id: str) -> Reply | Exception:
        try:
            return self.send(message, message_id)
        except Exception as exc:  # noqa: BLE001 - this message's own fault, given as its answer
            return exc

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
