"""The HTTP side of Fiks IO: send a message, fetch an account's public key, download a large payload.

Every call carries the three Fiks platform headers (Authorization: Bearer <Maskinporten token>,
IntegrasjonId, IntegrasjonPassord), except the public-key lookup, which KS's clients make without them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import requests

from .settings import Settings

KEY_CACHE_SECONDS = 600  # as KS's Java client: a rotated key is fetched again within ten minutes


class FiksIoError(Exception):
    """A call that did not succeed. transient: worth trying again later (5xx, timeout, no connection);
    otherwise the text says what to fix (Nynorsk, shown on the archive log)."""

    def __init__(self, text: str, transient: bool):
        super().__init__(text)
        self.text, self.transient = text, transient


@dataclass
class Sent:
    melding_id: str  # Fiks IO's id for this send: a reply's svar-til
    answer: dict = field(default_factory=dict)  # the send API's JSON answer


class FiksIoClient:
    def __init__(self, settings: Settings, session: requests.Session | None = None, timeout: float = 60.0):
        self.settings = settings
        self.session = session or requests.Session()
        self.timeout = timeout

    def public_key(self, account_id: str) -> bytes:
        """The PEM certificate the catalog holds for an account (cached KEY_CACHE_SECONDS)."""
        raise NotImplementedError

    def send(self, recipient: str, meldingstype: str, files: Sequence[tuple[str, bytes, str]] | None, *,
             svar_pa: str | None = None, klient_melding_id: str | None = None,
             klient_korrelasjons_id: str | None = None, ttl_ms: int | None = None) -> Sent:
        """Sign the files into an ASiC-E, encrypt it to the recipient's key, post it (multipart: metadata,
        then data). files None or empty: a message without payload (no data part)."""
        raise NotImplementedError

    def download(self, dokumentlager_id: str) -> bytes:
        """A payload Fiks IO kept in Dokumentlager (a message above its inline limit): the encrypted bytes."""
        raise NotImplementedError
