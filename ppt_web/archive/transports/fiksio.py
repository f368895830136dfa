"""The Fiks IO transport: the message and its documents in a signed ASiC-E, encrypted to the archive
account's key, posted to Fiks IO's send API; the archive's replies come back on our account's queue
and are applied by the worker's consumer (archive/fiksio.py), so poll() has nothing to read.

The job's stable message id goes as klientMeldingId (a resend after an unknown outcome is the same
message to the archive) and as klientKorrelasjonsId (copied by the archive into its replies, so a reply
that overtakes the storing of Fiks IO's message id still finds its job).
"""
from __future__ import annotations

import os
import threading

from flask import Flask

from ...fiksio.client import FiksIoClient, FiksIoError
from ...fiksio.settings import Settings, from_config
from ..message import Message
from .base import HANDED_OVER, INVALID, UNREACHABLE, UNSUPPORTED, Reply
from .files import read_checked

EXTENSION = "ppt_fiksio_transport"
_lock = threading.Lock()


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
        return Reply(HANDED_OVER, "overlevert til Fiks IO, ventar på svar frå arkivet", transport_id=sent.melding_id)

    def poll(self, message_id: str) -> Reply | None:
        return None  # replies arrive on the queue; the sweep only enforces the reply deadline

    def query(self, meldingstype: str, payload: bytes) -> Reply:
        return Reply(UNSUPPORTED, "spørjingar til arkivet over Fiks IO er ikkje støtta")


def transport_for(app: Flask) -> FiksIoTransport:
    """One transport per process (its catalog key cache lives as long as the process), made again in
    a forked child, which must not share the parent's HTTP connections."""
    with _lock:
        cached = app.extensions.get(EXTENSION)
        if cached is None or cached[0] != os.getpid():
            settings = from_config(app.config)
            cached = (os.getpid(), FiksIoTransport(settings, str(app.config["PPT_FIKSIO_ARCHIVE_ACCOUNT_ID"]).strip()))
            app.extensions[EXTENSION] = cached
        return cached[1]
