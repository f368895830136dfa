"""What every transport shares: the reply kinds, the Reply, the Transport interface."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..message import Message

# Reply kinds, mapped to job and archive status by archive.sending.apply_reply.
OK = "ok"  # receipt: Utført / Arkivert
INVALID = "invalid"  # ugyldigforespoersel: Utført / Feil, no automatic retry
NOT_FOUND = "not_found"  # ikkefunnet: Utført / Feil
SERVER_ERROR = "server_error"  # 5xx / serverfeil: retried with backoff
UNREACHABLE = "unreachable"  # timeout, refused connection: retried with backoff
HANDED_OVER = "handed_over"  # asynchronous: written out, the reply comes later
UNSUPPORTED = "unsupported"  # the transport cannot carry this (a query over the folder transport)
TRANSIENT = (SERVER_ERROR, UNREACHABLE)


@dataclass
class Reply:
    kind: str
    text: str = ""
    ids: dict = field(default_factory=dict)
    payload: bytes = b""  # a query's resultat
    transport_id: str = ""  # what the transport calls this send (Fiks IO's melding-id), kept on the job


class Transport(Protocol):
    asynchronous: bool

    def send(self, message: Message, message_id: str) -> Reply:
        """Hand one message over; the same message_id on every retry of one job."""

    def poll(self, message_id: str) -> Reply | None:
        """An asynchronous transport's final reply, if it has come; None while waiting."""

    def query(self, meldingstype: str, payload: bytes) -> Reply:
        """A query message (innsyn ... hent): OK with the resultat in .payload, NOT_FOUND, or another kind."""
