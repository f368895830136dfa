"""The receiving side of Fiks IO: one long-lived AMQP consumer of the account's queue.

A delivery is acknowledged only after the handler returned (its effect committed); a handler that
raises leaves it unacknowledged, and it is handled again (after a pause, on a new channel). Deliveries
that cannot be read at all (no melding-id, say) are logged and acknowledged: nobody could ever handle them.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .client import FiksIoClient
from .settings import Settings

PREFETCH = 10


class BadDelivery(Exception):
    pass


@dataclass
class Received:
    melding_id: str
    meldingstype: str
    avsender_id: str
    svar_til: str | None = None
    svar_til_type: str | None = None
    klient_melding_id: str | None = None
    klient_korrelasjons_id: str | None = None
    dokumentlager_id: str | None = None
    redelivered: bool = False
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # every header, decoded

    @property
    def has_payload(self) -> bool:
        return bool(self.dokumentlager_id) or bool(self.body)


def parse(headers: dict | None, body: bytes, redelivered: bool = False) -> Received:
    """A delivery's AMQP headers (values as bytes or str) and body; BadDelivery without the required ones.
    Custom headers: egendefinert-header.klientMeldingId (as KS's clients write) and klientmelding-id (as
    KS's web page names it) are both read."""
    raise NotImplementedError


def open_payload(received: Received, client: FiksIoClient, private_key_pem: bytes) -> dict[str, bytes]:
    """The payload files of a delivery (downloaded from Dokumentlager if it was kept there, decrypted
    with our key, the ASiC-E checked); {} when it has none. Raises AsiceError / CmsError / FiksIoError."""
    raise NotImplementedError


class Consumer:
    """consume(stop) until stop is set: connect (username the integration id, password the integration
    password, a space and a Maskinporten token), prefetch PREFETCH, consume settings.queue with manual
    acknowledgement, and reconnect with back-off when the connection drops."""

    def __init__(self, settings: Settings, handle: Callable[[Received], None], *, name: str = "ppt_web"):
        self.settings, self.handle, self.name = settings, handle, name
        self.connected = threading.Event()  # set while consuming (tests, /readyz)

    def run(self, stop: threading.Event) -> None:
        raise NotImplementedError
