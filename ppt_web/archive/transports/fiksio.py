"""The Fiks IO transport: the message and its documents in a signed ASiC-E, encrypted to the archive
account's key, posted to Fiks IO's send API; the archive's replies come back on our account's queue
and are applied by the worker's consumer (archive/fiksio.py), so poll() has nothing to read.

The job's stable message id goes as klientMeldingId (a resend after an unknown outcome is the same
message to the archive) and as klientKorrelasjonsId (copied by the archive into its replies, so a reply
that overtakes the storing of Fiks IO's message id still finds its job).
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import time
import uuid

from flask import Flask
from redis.exceptions import RedisError

from ...fiksio.client import FiksIoClient, FiksIoError
from ...fiksio.settings import Settings, SettingsError, from_config, problems
from ...queue import connection
from .. import codes, replies
from ..message import Message
from .base import HANDED_OVER, INVALID, UNREACHABLE, UNSUPPORTED, Reply
from .files import read_checked
from .http import interpret, interpret_query

EXTENSION = "ppt_fiksio_transport"
ASKED_KEY = "ppt:fiksio:asked:"  # + a query's klientKorrelasjonsId: a web request waits for the answer
ANSWER_KEY = "ppt:fiksio:answer:"  # + the same: where the consumer puts it
QUERY_SECONDS = 10
ERROR_STATUS = {replies.UGYLDIGFORESPOERSEL: 400, replies.IKKEFUNNET: 404, replies.SERVERFEIL: 500}
_lock = threading.Lock()


def _new_lock() -> None:
    """A forked work horse gets a lock of its own: the worker's consumer thread may have held this one
    at the fork, and the horse's copy would stay locked for good."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock)


class FiksIoTransport:
    asynchronous = True

    def __init__(self, settings: Settings, archive_account: str, client: FiksIoClient | None = None):
        self.settings, self.archive_account = settings, archive_account
        self.client = client or FiksIoClient(settings)

    def send(self, message: Message, message_id: str) -> Reply:
        files = [(message.payload_name, message.payload, "application/xml")]
        files += [(f.name, read_checked(f), "application/pdf") for f in message.files]
        try:
            sent = self.client.send(self.archive_account, message.meldingstype, files,
                                    klient_melding_id=message_id, klient_korrelasjons_id=message_id,
                                    ttl_ms=self.settings.ttl_ms)
        except FiksIoError as exc:
            return Reply(UNREACHABLE if exc.transient else INVALID, exc.text)
        return Reply(HANDED_OVER, "overlevert til Fiks IO, ventar på svar frå arkivet",
                     transport_id=sent.melding_id.lower())  # svar-til comes lower-case

    def poll(self, message_id: str) -> Reply | None:
        return None  # replies arrive on the queue; the sweep only enforces the reply deadline

    def query(self, meldingstype: str, payload: bytes) -> Reply:
        """Ask the archive and wait up to QUERY_SECONDS for its answer, which the worker's consumer
        puts in a Redis box named by the query's klientKorrelasjonsId (opened before the send, so an
        answer faster than the send's own reply is not missed)."""
        name = codes.meldingstype_info(meldingstype)["payloadFilnavn"]
        correlation = str(uuid.uuid4())
        try:
            conn = connection()
            conn.set(ASKED_KEY + correlation, "1", ex=QUERY_SECONDS + 60)
        except RedisError:
            return Reply(UNSUPPORTED, "kan ikkje spørje arkivet utan Redis")
        try:
            self.client.send(self.archive_account, meldingstype, [(name, payload, "application/xml")],
                             klient_melding_id=str(uuid.uuid4()), klient_korrelasjons_id=correlation,
                             ttl_ms=QUERY_SECONDS * 1000 * 6, timeout=QUERY_SECONDS)
            answer = _wait_for(conn, ANSWER_KEY + correlation, QUERY_SECONDS)
        except FiksIoError as exc:
            return Reply(UNREACHABLE if exc.transient else INVALID, exc.text)
        except RedisError:
            return Reply(UNREACHABLE, "fekk ikkje svaret frå arkivet (Redis)")
        finally:
            with contextlib.suppress(RedisError):
                conn.delete(ASKED_KEY + correlation, ANSWER_KEY + correlation)
        if answer is None:
            return Reply(UNREACHABLE, f"arkivet svarte ikkje innan {QUERY_SECONDS} sekund")
        box = json.loads(answer[1])
        kind, body = box["meldingstype"], base64.b64decode(box["payload"])
        if kind.endswith(".resultat"):
            return interpret_query(meldingstype, 200, body)
        return interpret(ERROR_STATUS.get(kind, 500), body)


def _wait_for(conn, key: str, seconds: float):
    """BLPOP in steps below the connection's socket timeout (5 s), which a longer one would run into."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        found = conn.blpop([key], timeout=max(1, min(4, int(left))))
        if found is not None:
            return found
    return None


def asked(correlation: str | None) -> bool:
    """Whether a web request waits for an answer with this klientKorrelasjonsId."""
    if not correlation:
        return False
    try:
        return bool(connection().exists(ASKED_KEY + correlation[:36]))
    except RedisError:
        return False


def answer(correlation: str, meldingstype: str, payload: bytes) -> None:
    """Hand an archive's answer to the web request that waits for it."""
    box = json.dumps({"meldingstype": meldingstype, "payload": base64.b64encode(payload).decode("ascii")})
    conn = connection()
    conn.rpush(ANSWER_KEY + correlation[:36], box)
    conn.expire(ANSWER_KEY + correlation[:36], QUERY_SECONDS + 60)


def transport_for(app: Flask) -> FiksIoTransport:
    """One transport per process: settings read and checked once, the catalog's keys cached. The
    worker makes it before RQ forks its work horses (worker.warm_up), so a horse starts with both and
    only opens its own HTTP connections."""
    with _lock:
        cached = app.extensions.get(EXTENSION)
        if cached is None:
            found = problems(app.config)  # the archive's account too, which from_config leaves to us
            if found:
                raise SettingsError(found)
            archive = str(app.config["PPT_FIKSIO_ARCHIVE_ACCOUNT_ID"]).strip()
            cached = (os.getpid(), FiksIoTransport(from_config(app.config), archive))
        elif cached[0] != os.getpid():
            parent = cached[1]
            cached = (os.getpid(), FiksIoTransport(parent.settings, parent.archive_account, parent.client.forked()))
        app.extensions[EXTENSION] = cached
        return cached[1]
