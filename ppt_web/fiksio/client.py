"""The HTTP side of Fiks IO: send a message, fetch an account's public key, download a large payload.

Every call carries the three Fiks platform headers (Authorization: Bearer <Maskinporten token>,
IntegrasjonId, IntegrasjonPassord), except the public-key lookup, which KS's clients make without them.
The session must not retry POSTs on its own (a plain requests.Session does not): a send after an
unknown outcome is the caller's decision, with the same klientMeldingId.
"""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import requests

from .settings import CATALOG_PATH, DOKUMENTLAGER_PATH, SEND_PATH, Settings

KEY_CACHE_SECONDS = 600  # as KS's Java client: a rotated key is fetched again within ten minutes
MAX_MESSAGE_BYTES = 5 * 1024 ** 3  # Fiks Arkiv's (and Dokumentlager's) limit for one message
SHORT_TIMEOUT = 30.0  # the catalog: a lookup, never the minutes an upload may take
MAX_SERVER_TEXT = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


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
    def __init__(self, settings: Settings, session: requests.Session | None = None, timeout: float = 60.0, *,
                 key_cache_seconds: float = KEY_CACHE_SECONDS, max_message_bytes: int = MAX_MESSAGE_BYTES,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.session = session or requests.Session()
        self.timeout = timeout
        self.key_cache_seconds = key_cache_seconds
        self.max_message_bytes = max_message_bytes
        self._clock = clock
        self._keys: dict[str, tuple[bytes, float, float]] = {}  # account -> (PEM, fetched at, valid to)
        self._lock = threading.Lock()

    def forked(self) -> FiksIoClient:
        """A client for a forked child (an RQ work horse): the same settings and cached keys, its own
        HTTP connections (a pooled connection must not be shared across processes)."""
        child = FiksIoClient(self.settings, timeout=self.timeout, key_cache_seconds=self.key_cache_seconds,
                             max_message_bytes=self.max_message_bytes, clock=self._clock)
        child._keys = dict(self._keys)
        return child

    # -- the catalog ------------------------------------------------------------------------------

    def public_key(self, account_id: str) -> bytes:
        """The PEM certificate the catalog holds for an account: cached key_cache_seconds, and fetched again
        at once when the cached one has expired (clock: wall time in seconds, injectable for tests)."""
        account = _account(account_id)
        with self._lock:
            cached = self._keys.get(account)
            now = self._clock()
            if cached and now - cached[1] < self.key_cache_seconds and now < cached[2]:
                return cached[0]
        pem, valid_to = self._fetch_key(account)
        with self._lock:
            self._keys[account] = (pem, self._clock(), valid_to)
        return pem

    def _fetch_key(self, account: str) -> tuple[bytes, float]:
        url = f"{self.settings.api_url}{CATALOG_PATH}/kontoer/{account}/offentligNokkel"
        try:
            response = self.session.get(url, headers={"Accept": "application/json"},
                                        timeout=min(self.timeout, SHORT_TIMEOUT))
        except requests.RequestException as exc:
            raise FiksIoError(f"fekk ikkje kontakt med Fiks IO-katalogen for å hente nøkkelen til kontoen "
                              f"{account} ({_kind(exc)})", transient=True) from None
        with response:
            status = response.status_code
            if status == 404:
                raise FiksIoError(f"Fiks IO kjenner ikkje kontoen {account} eller han har ingen offentleg nøkkel",
                                  transient=False)
            if status != 200:
                raise FiksIoError(f"Fiks IO-katalogen svarte HTTP {status} på nøkkelen til kontoen {account}: "
                                  f"{_server_text(response)}", transient=status >= 500 or status in (408, 429))
            try:
                payload = response.json()
            except ValueError:
                payload = None
        nokkel = payload.get("nokkel") if isinstance(payload, dict) else None
        if not isinstance(nokkel, str) or not nokkel.strip():
            raise FiksIoError(f"Fiks IO-katalogen svarte utan nøkkel for kontoen {account}", transient=True)
        # cryptography, asice and cms are imported where a key is read or a message packed: a web worker that
        # only lists the archive log never loads them (~10 MiB); the RQ worker has them from its warm-up.
        from cryptography import x509  # noqa: PLC0415
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey  # noqa: PLC0415

        try:
            certificate = x509.load_pem_x509_certificate(nokkel.encode("utf-8"))
        except ValueError:
            raise FiksIoError(f"den offentlege nøkkelen til kontoen {account} i Fiks IO-katalogen er ikkje "
                              f"eit X.509-sertifikat", transient=False) from None
        if not isinstance(certificate.public_key(), RSAPublicKey):
            raise FiksIoError(f"den offentlege nøkkelen til kontoen {account} er ikkje ein RSA-nøkkel",
                              transient=False)
        return certificate.public_bytes(serialization.Encoding.PEM), certificate.not_valid_after_utc.timestamp()

    # -- send -------------------------------------------------------------------------------------

    def send(self, recipient: str, meldingstype: str, files: Sequence[tuple[str, bytes, str]] | None, *,
             svar_pa: str | None = None, klient_melding_id: str | None = None,
             klient_korrelasjons_id: str | None = None, ttl_ms: int | None = None,
             timeout: float | None = None) -> Sent:
        """Sign the files into an ASiC-E, encrypt it to the recipient's key, post it (multipart: metadata,
        then data). files None or empty: a message without payload (no data part)."""
        mottaker = _account(recipient)
        if not meldingstype:
            raise FiksIoError("meldinga manglar meldingstype", transient=False)
        files = list(files or [])
        size = sum(len(content) for _, content, _ in files)
        self._check_size(size)
        headere = {name: value for name, value in (("klientMeldingId", klient_melding_id),
                                                   ("klientKorrelasjonsId", klient_korrelasjons_id)) if value}
        metadata = {
            "avsenderKontoId": self.settings.account_id,
            "mottakerKontoId": mottaker,
            "meldingType": meldingstype,
            "svarPaMelding": svar_pa,
            "ttl": ttl_ms if ttl_ms is not None else self.settings.ttl_ms,
            "headere": headere,
        }
        data = self._payload(mottaker, files) if files else None
        body, content_type = multipart_body(metadata, data)
        headers = {**self._headers(), "Content-Type": content_type, "Accept": "application/json"}
        try:
            wait = timeout or self.timeout
            response = self.session.post(self.settings.api_url + SEND_PATH, data=body, headers=headers,
                                         timeout=(min(wait, SHORT_TIMEOUT), wait))
        except requests.RequestException as exc:
            maybe = "; meldinga kan ha kome fram" if isinstance(exc, requests.Timeout) else ""
            raise FiksIoError(f"fekk ikkje kontakt med Fiks IO ({_kind(exc)}){maybe}", transient=True) from None
        with response:
            status = response.status_code
            if status in (200, 202):
                try:
                    answer = response.json()
                except ValueError:
                    answer = None
                melding_id = answer.get("meldingId") if isinstance(answer, dict) else None
                try:  # a reply's svar-til names it: a UUID, kept in its canonical form
                    melding_id = str(uuid.UUID(str(melding_id))) if melding_id else ""
                except ValueError:
                    melding_id = ""
                if not melding_id:
                    raise FiksIoError(f"Fiks IO tok imot meldinga (HTTP {status}) men svarte utan gyldig "
                                      f"meldingId", transient=True)
                return Sent(melding_id=melding_id, answer=answer if isinstance(answer, dict) else {})
            raise _refusal(status, _server_text(response), "Fiks IO",
                           f"Fiks IO avviste meldinga til kontoen {mottaker}")

    def _check_size(self, size: int) -> None:
        if size > self.max_message_bytes:
            raise FiksIoError(f"meldinga er for stor for Fiks IO: {_amount(size)}, grensa er "
                              f"{_amount(self.max_message_bytes)}; ho er ikkje send", transient=False)

    def _payload(self, recipient: str, files: list[tuple[str, bytes, str]]) -> bytes:
        from ..inbound import cms  # noqa: PLC0415 - see _fetch_key
        from . import asice  # noqa: PLC0415

        try:
            container = asice.build(files, self.settings.private_key_pem, self.settings.certificate_pem)
        except asice.AsiceError as exc:
            raise FiksIoError(f"kunne ikkje pakke meldinga i ASiC-E: {exc}", transient=False) from None
        certificate = self.public_key(recipient)
        try:
            envelope = cms.encrypt(container, certificate)
        except cms.CmsError as exc:
            raise FiksIoError(f"kunne ikkje kryptere meldinga til nøkkelen til kontoen {recipient}: {exc}",
                              transient=False) from None
        self._check_size(len(envelope))
        return envelope

    # -- Dokumentlager ----------------------------------------------------------------------------

    def download(self, dokumentlager_id: str) -> bytes:
        """A payload Fiks IO kept in Dokumentlager (a message above its inline limit): the encrypted bytes."""
        if not dokumentlager_id or not dokumentlager_id.strip():
            raise FiksIoError("meldinga viser til Dokumentlager utan id", transient=False)
        url = f"{self.settings.api_url}{DOKUMENTLAGER_PATH}/{quote(dokumentlager_id.strip(), safe='')}"
        try:
            response = self.session.get(url, headers=self._headers(), timeout=(min(self.timeout, SHORT_TIMEOUT),
                                                                                self.timeout))
        except requests.RequestException as exc:
            raise FiksIoError(f"fekk ikkje kontakt med Dokumentlager ({_kind(exc)})", transient=True) from None
        with response:
            status = response.status_code
            if status == 200:
                return response.content
            if status == 404:
                raise FiksIoError(f"Dokumentlager har ikkje fila {dokumentlager_id} (ho kan ha gått ut)",
                                  transient=False)
            raise _refusal(status, _server_text(response), "Dokumentlager", "Dokumentlager avviste nedlastinga")

    # -- internals --------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        try:
            token = self.settings.token_provider.token()
        except Exception as exc:  # noqa: BLE001 - a pluggable provider: whatever it raises, nothing was sent
            raise FiksIoError(f"fekk ikkje token frå Maskinporten ({type(exc).__name__}); ingenting er sendt",
                              transient=True) from None
        return {"Authorization": f"Bearer {token}", "IntegrasjonId": self.settings.integration_id,
                "IntegrasjonPassord": self.settings.integration_password}


def multipart_body(metadata: dict, data: bytes | None) -> tuple[bytes, str]:
    """(body, Content-Type) as KS's clients post a message: part `metadata` (application/json, no filename)
    first, then part `data` (the encrypted container, filename a new UUID) when there is a payload."""
    meta = json.dumps(metadata, ensure_ascii=False).encode("utf-8")
    while True:
        boundary = f"ppt_web-{secrets.token_hex(16)}"
        marker = boundary.encode("ascii")
        if marker not in meta and (data is None or marker not in data):
            break
    chunks = [f"--{boundary}\r\n".encode("ascii"),
              b'Content-Disposition: form-data; name="metadata"\r\n',
              b"Content-Type: application/json\r\n\r\n", meta, b"\r\n"]
    if data is not None:
        chunks += [f"--{boundary}\r\n".encode("ascii"),
                   f'Content-Disposition: form-data; name="data"; filename="{uuid.uuid4()}"\r\n'.encode("ascii"),
                   b"Content-Type: application/octet-stream\r\n\r\n", data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _refusal(status: int, text: str, service: str, what: str) -> FiksIoError:
    if status >= 500 or status in (408, 429):
        return FiksIoError(f"{service} svarte HTTP {status} (prøver att seinare): {text}", transient=True)
    if status == 401:
        return FiksIoError(f"Fiks IO godtok ikkje Maskinporten-tokenet eller integrasjonen (id og passord) "
                           f"(HTTP 401): {text}", transient=False)
    if status == 403:
        return FiksIoError(f"integrasjonen har ikkje tilgang til Fiks IO-kontoen, eller Maskinporten-tokenet "
                           f"manglar scope ks:fiks (HTTP 403): {text}", transient=False)
    return FiksIoError(f"{what} (HTTP {status}): {text}", transient=False)


def _account(account_id: str) -> str:
    try:
        return str(uuid.UUID(str(account_id).strip()))
    except ValueError:
        raise FiksIoError(f"{str(account_id)[:60]!r} er ikkje ein gyldig Fiks IO-konto-id", transient=False) from None


def _server_text(response: requests.Response) -> str:
    """A Fiks error body's message and errorId, else the start of the body; one line, trimmed."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and (payload.get("message") or payload.get("errorId") or payload.get("error")):
        message = str(payload.get("message") or payload.get("error") or "").strip()
        error_id = payload.get("errorId")
        text = f"{message} (errorId {error_id})" if error_id else message
    else:
        text = response.text.strip()
    text = _CONTROL.sub(" ", text).strip()
    return text[:MAX_SERVER_TEXT] or response.reason or "utan forklaring"


def _kind(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "tidsavbrot"
    if isinstance(exc, requests.ConnectionError):
        return "ingen tilkopling"
    return type(exc).__name__


def _amount(size: int) -> str:
    if size >= 1024 ** 3:
        return f"{size / 1024 ** 3:.1f} GiB"
    if size >= 1024 ** 2:
        return f"{size / 1024 ** 2:.1f} MiB"
    return f"{size} byte"
