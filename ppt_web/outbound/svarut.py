"""SvarUt REST v3 over HTTP (docs/integrations.md, "SvarUt REST v3"): send to a person or an
organisation, find by eksternRef, batch status.

The base URL (PPT_SVARUT_URL) is the service's origin, e.g. https://test.svarut.ks.no; a trailing "/api"
is tolerated and dropped, as KS's specs list their servers as ".../api". Every API call carries a
Maskinporten bearer token (from a TokenProvider) and the Fiks integration's id and password.

Letters to guardians go to /person at sikkerhetsniva HOYESTE with kryptert=true: each file is CMS-enveloped
to SvarUt's own certificate (fetched from /forsendelse/publickey/hent without our credentials, cached a
day). Letters to schools and kindergartens go to /organisasjon at BETYDELIG with taushetsbelagtPost, plain,
with the case's Noark number when known. kunDigitalLevering is never set: a letter must be able to fall
back to post and SvarUt must report when it cannot be delivered.

There is no idempotency key in v3: after an UNKNOWN outcome the caller must lookup(external_ref) before
sending again. The session must not retry POSTs on its own (a plain requests.Session does not).
"""
from __future__ import annotations

import base64
import importlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import requests

from .types import (
    FAILED,
    ORGANISATION,
    PERSON,
    SENT,
    UNKNOWN,
    OutboundUnavailable,
    SendResult,
    Shipment,
    compact_id,
    is_pdf,
    problems,
    scrub,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

log = logging.getLogger(__name__)

AVGIVENDE_SYSTEM = "ppt_web"
SEND_PATHS = {PERSON: "person", ORGANISATION: "organisasjon"}
PUBLIC_KEY_PATH = "/forsendelse/publickey/hent"
STATUS_BATCH = 100
PUBLIC_KEY_TTL = 24 * 3600  # SvarUt may rotate its key; a day-old copy is fetched again
SHORT_TIMEOUT = 60  # lookups, status and the public key: never the 16 minutes a large upload may need
MAX_DETAIL = 600
DEFAULT_PORTS = {"http": 80, "https": 443}


class TokenProvider(Protocol):
    def token(self) -> str:
        """A Maskinporten access token with scope ks:fiks, valid for at least the next call."""


def resolve_token_provider(spec: object, setting_name: str) -> TokenProvider:
    """A setting naming a Maskinporten token provider: "module:attribute" (an object with token(), or a
    factory of one, called here), or the provider itself. RuntimeError saying what is wrong."""
    if not spec:
        raise RuntimeError(f"{setting_name} is not set: a Maskinporten token provider is needed")
    if not isinstance(spec, str):
        found: object = spec
    else:
        module, colon, name = spec.strip().partition(":")
        if not colon or not module or not name:
            raise RuntimeError(f"{setting_name} must be \"module:attribute\", not {spec!r}")
        try:
            found = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise RuntimeError(f"{setting_name} names {spec!r}, which cannot be loaded "
                               f"({type(exc).__name__}: {exc})") from None
        if callable(found) and not hasattr(found, "token"):
            found = found()
    if not callable(getattr(found, "token", None)):
        raise RuntimeError(f"{setting_name} names {spec!r}, which has no token() method")
    return found  # type: ignore[return-value]


class StaticTokenProvider:
    """A token got elsewhere (e.g. from a sidecar that talks to Maskinporten)."""

    def __init__(self, token: str):
        self._token = token

    def token(self) -> str:
        return self._token


class LocalJwtTokenProvider:
    """For tests and the local test server: an RS256 JWT with Maskinporten's claims, signed by a local key.

    Not a Maskinporten token: real SvarUt only takes tokens Digdir signed (docs/integrations.md, "Maskinporten tokens").
    Cached until 30 seconds before it expires.
    """

    def __init__(self, private_key_pem: bytes, org_number: str, scope: str = "ks:fiks", lifetime: int = 120,
                 *, clock: Callable[[], float] = time.time):
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - see _certificate_pem
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey  # noqa: PLC0415

        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, RSAPrivateKey):
            raise ValueError("the token signing key must be an RSA key")
        self._key = key
        self.org_number, self.scope, self.lifetime = org_number, scope, lifetime
        self._clock = clock
        self._cached: tuple[str, int] | None = None  # (token, exp)
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            now = int(self._clock())
            if self._cached and now < self._cached[1] - 30:
                return self._cached[0]
            exp = now + self.lifetime
            claims = {
                "scope": self.scope,
                "consumer": {"authority": "iso6523-actorid-upis", "ID": f"0192:{self.org_number}"},
                "iat": now,
                "exp": exp,
                "jti": str(uuid.uuid4()),
            }
            token = sign_jwt(claims, self._key)
            self._cached = (token, exp)
            return token


def sign_jwt(claims: dict, key: RSAPrivateKey) -> str:
    """Compact JWS, RS256 (RSASSA-PKCS1-v1_5 with SHA-256), as RFC 7515/7518 define it."""
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - see _certificate_pem
    from cryptography.hazmat.primitives.asymmetric import padding  # noqa: PLC0415

    header = {"alg": "RS256", "typ": "JWT"}
    signing_input = f"{_b64url(_json_bytes(header))}.{_b64url(_json_bytes(claims))}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode('ascii')}.{_b64url(signature)}"


def origin(base_url: str) -> str:
    """'https://svarut.ks.no' from the configured base, with or without a trailing '/' or '/api'."""
    base = base_url.strip().rstrip("/")
    if base.endswith("/api"):
        base = base[: -len("/api")].rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"the SvarUt base URL must be http(s)://host, not {base_url!r}")
    return base


def forsendelse_json(shipment: Shipment) -> dict:
    """The v3 PersonForsendelse or OrganisasjonForsendelse for this shipment; optional fields left out when empty."""
    recipient = shipment.recipient
    address = {"adresselinje1": recipient.address_line1}
    if recipient.address_line2:
        address["adresselinje2"] = recipient.address_line2
    if recipient.postal_code:
        address["postnummer"] = recipient.postal_code
    address["poststed"] = recipient.city
    address["landkode"] = recipient.country
    documents = []
    for document in shipment.documents:
        entry: dict = {"filnavn": document.filename, "mimeType": document.mime_type}
        if not is_pdf(document.mime_type):
            entry["skalEkskluderesFraUtskrift"] = True  # only PDFs can be printed; required without kunDigital
        if recipient.kind == ORGANISATION:
            entry["inneholderPersonsensitivInformasjon"] = True  # PPT letters are about a named child
        documents.append(entry)
    forsendelse: dict = {
        "tittel": shipment.title,
        "mottaker": {"navn": recipient.name, "digitalId": compact_id(recipient), "adresse": address},
        "avgivendeSystem": AVGIVENDE_SYSTEM,
    }
    if recipient.kind == PERSON:
        forsendelse["sikkerhetsniva"] = "HOYESTE"
        forsendelse["kryptert"] = True
    else:
        forsendelse["sikkerhetsniva"] = "BETYDELIG"
        forsendelse["taushetsbelagtPost"] = True
        noark = {}
        if shipment.case_year is not None:
            noark["saksaar"] = shipment.case_year
        if shipment.case_sequence is not None:
            noark["sakssekvensnummer"] = shipment.case_sequence
        if noark:
            forsendelse["metadataFraAvleverendeSystem"] = noark
    forsendelse["dokumenter"] = documents
    forsendelse["eksternReferanse"] = shipment.external_ref
    if shipment.correlation_id:
        forsendelse["korrelasjonsid"] = shipment.correlation_id
    return forsendelse


def multipart_body(forsendelse: dict, files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """(body, Content-Type) for a send: part "forsendelse" (application/json) first, then one part per
    (filename, mime type, data) in dokumenter[] order, part filename == filnavn.

    Built by hand so the order and the headers are exactly these. Filenames go raw in UTF-8 inside
    filename="..." as KS's own Jetty-based client sends them; '"', CR and LF would be percent-encoded as
    browsers do, but SvarUt forbids '"' in filnavn and problems() refuses control characters.
    """
    meta = json.dumps(forsendelse, ensure_ascii=False).encode("utf-8")
    while True:
        boundary = f"ppt_web-{secrets.token_hex(16)}"
        marker = boundary.encode("ascii")
        if marker not in meta and not any(marker in data for _, _, data in files):
            break
    chunks = [f"--{boundary}\r\n".encode("ascii"),
              b'Content-Disposition: form-data; name="forsendelse"\r\n',
              b"Content-Type: application/json\r\n\r\n", meta, b"\r\n"]
    for filename, mime_type, data in files:
        chunks += [f"--{boundary}\r\n".encode("ascii"),
                   f'Content-Disposition: form-data; name="dokumenter"; filename="{_quote_param(filename)}"\r\n'
                   .encode(),
                   f"Content-Type: {mime_type}\r\n\r\n".encode(), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


class SvarUtAdapter:
    """One SvarUt konto, reached through one Fiks integration."""

    def __init__(self, base_url: str, konto_id: str, integration_id: str, integration_password: str,
                 token_provider: TokenProvider, *, public_key_pem: bytes | None = None,
                 public_key_url: str | None = None, timeout: float = 16 * 60,
                 session: requests.Session | None = None):
        self.origin = origin(base_url)
        self.konto_id = str(uuid.UUID(str(konto_id)))  # a malformed id is a configuration error: say so now
        self.integration_id = str(integration_id).strip()
        if not self.integration_id or not integration_password:
            raise ValueError("the Fiks integration id and password are both required")
        self.integration_password = integration_password
        self.token_provider = token_provider
        self.public_key_url = public_key_url or self.origin + PUBLIC_KEY_PATH
        self.timeout = timeout
        self.short_timeout = min(timeout, SHORT_TIMEOUT)
        self.session = session or requests.Session()
        self._certificate: tuple[bytes, float] | None = None  # (PEM, fetched at); fixed if given
        if public_key_pem is not None:
            self._certificate = (_certificate_pem(public_key_pem), float("inf"))
        self._lock = threading.Lock()

    # -- send -------------------------------------------------------------------------------------

    def send(self, shipment: Shipment) -> SendResult:
        """POST the shipment. FAILED only when SvarUt (or our own check) refused it; UNKNOWN when it may
        or may not have been stored, so the caller looks it up by eksternRef before trying again."""
        refused = problems(shipment)
        if refused:
            return self._result(shipment, FAILED, None, "not sent, SvarUt would refuse it: " + "; ".join(refused))
        forsendelse = forsendelse_json(shipment)
        try:
            files = self._files(shipment)
        except _NotSent as exc:
            return self._result(shipment, UNKNOWN, None, f"not sent: {exc}")
        body, content_type = multipart_body(forsendelse, files)
        url = f"{self._api()}/v3/kontoer/{self.konto_id}/forsendelser/{SEND_PATHS[shipment.recipient.kind]}"
        try:
            headers = {**self._headers(), "Content-Type": content_type}
        except _NotSent as exc:
            return self._result(shipment, UNKNOWN, None, f"not sent: {exc}")
        try:
            response = self.session.post(url, data=body, headers=headers,
                                         timeout=(min(self.timeout, 30), self.timeout))
        except requests.RequestException as exc:
            return self._result(shipment, UNKNOWN, None,
                                f"no answer from SvarUt ({type(exc).__name__}); it may have been stored: {exc}")
        with response:
            status = response.status_code
            if 200 <= status < 300:
                forsendelse_id = _json_field(response, "id")
                if isinstance(forsendelse_id, str) and forsendelse_id:
                    return self._result(shipment, SENT, forsendelse_id, f"SvarUt took it as {forsendelse_id}")
                return self._result(shipment, UNKNOWN, None, f"SvarUt answered HTTP {status} without an id")
            error = _error_text(response)
            if status in (408, 429) or status >= 500:  # not a verdict on the shipment
                return self._result(shipment, UNKNOWN, None, f"SvarUt answered HTTP {status}: {error}")
            what = {401: "SvarUt refused our token or integration credentials",
                    403: "the integration may not send from this konto"}.get(status, "SvarUt refused the shipment")
            return self._result(shipment, FAILED, None, f"{what} (HTTP {status}): {error}")

    # -- lookup and status ------------------------------------------------------------------------

    def lookup(self, external_ref: str) -> str | None:
        """GET /api/v2/kontoer/{konto}/forsendelser?eksternRef=: the first (oldest) id, or None."""
        url = f"{self._api()}/v2/kontoer/{self.konto_id}/forsendelser"
        payload = self._call("GET", url, "the eksternRef lookup", params={"eksternRef": external_ref})
        ids = payload.get("forsendelseIds") if isinstance(payload, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise OutboundUnavailable("SvarUt answered the eksternRef lookup without a forsendelseIds list")
        if len(ids) > 1:
            log.warning("SvarUt holds %d forsendelser for eksternRef %s: %s", len(ids), external_ref, ", ".join(ids))
        return ids[0] if ids else None

    def statuses(self, forsendelse_ids: list[str]) -> dict[str, str]:
        """POST status/sok in batches of 100; ids SvarUt does not return are left out."""
        wanted = list(dict.fromkeys(forsendelse_ids))
        url = f"{self._api()}/v3/kontoer/{self.konto_id}/forsendelser/status/sok"
        found: dict[str, str] = {}
        for start in range(0, len(wanted), STATUS_BATCH):
            payload = self._call("POST", url, "the status search", json={"id": wanted[start:start + STATUS_BATCH]})
            entries = payload.get("statuser") if isinstance(payload, dict) else None
            if not isinstance(entries, list):
                raise OutboundUnavailable("SvarUt answered the status search without a statuser list")
            for entry in entries:
                if isinstance(entry, dict) and isinstance(entry.get("id"), str) \
                        and isinstance(entry.get("status"), str):
                    found[entry["id"]] = entry["status"]
                else:
                    log.warning("SvarUt status entry without id or status ignored")
        return found

    # -- internals --------------------------------------------------------------------------------

    def _api(self) -> str:
        return self.origin + "/api"

    def _headers(self) -> dict[str, str]:
        try:
            token = self.token_provider.token()
        except Exception as exc:  # noqa: BLE001 - a pluggable provider: whatever it raises, nothing was sent
            raise _NotSent(f"no access token ({type(exc).__name__}: {exc})") from None
        return {"Authorization": f"Bearer {token}", "IntegrasjonId": self.integration_id,
                "IntegrasjonPassord": self.integration_password, "Accept": "application/json"}

    def _call(self, method: str, url: str, what: str, **kwargs) -> object:
        try:
            headers = self._headers()
        except _NotSent as exc:
            raise OutboundUnavailable(f"{what} could not be made: {exc}") from None
        try:
            response = self.session.request(method, url, headers=headers, timeout=self.short_timeout, **kwargs)
        except requests.Timeout:
            raise OutboundUnavailable(f"SvarUt did not answer {what} in time") from None
        except requests.RequestException as exc:
            raise OutboundUnavailable(f"cannot reach SvarUt for {what}: {type(exc).__name__}") from None
        with response:
            status = response.status_code
            if status in (401, 403):
                which = "our token or integration credentials (401)" if status == 401 else \
                    "access to this konto (403)"
                raise OutboundUnavailable(f"SvarUt refused {which} for {what}: {_error_text(response)}")
            if status != 200:
                raise OutboundUnavailable(f"SvarUt answered {what} with HTTP {status}: {_error_text(response)}")
            try:
                return response.json()
            except ValueError:
                raise OutboundUnavailable(f"SvarUt answered {what} with something other than JSON") from None

    def _files(self, shipment: Shipment) -> list[tuple[str, str, bytes]]:
        """(filnavn, mime type, bytes on the wire): CMS-enveloped to SvarUt's certificate for a person."""
        from ..inbound import cms  # noqa: PLC0415 - see _certificate_pem
        if shipment.recipient.kind != PERSON:
            return [(d.filename, d.mime_type, d.data) for d in shipment.documents]
        certificate = self._svarut_certificate()
        try:
            return [(d.filename, d.mime_type, cms.encrypt(d.data, certificate)) for d in shipment.documents]
        except cms.CmsError as exc:
            raise _NotSent(f"cannot encrypt to SvarUt's certificate: {exc}") from None

    def _svarut_certificate(self) -> bytes:
        with self._lock:
            if self._certificate and time.monotonic() - self._certificate[1] < PUBLIC_KEY_TTL:
                return self._certificate[0]
            try:
                response = self.session.get(self.public_key_url, timeout=self.short_timeout)
            except requests.RequestException as exc:
                raise _NotSent(f"cannot fetch SvarUt's public key ({type(exc).__name__})") from None
            with response:
                if response.status_code != 200:
                    raise _NotSent(f"SvarUt's public key answered HTTP {response.status_code}")
                try:
                    certificate = _certificate_pem(response.content)
                except ValueError as exc:
                    raise _NotSent(str(exc)) from None
            self._certificate = (certificate, time.monotonic())
            return certificate

    def _result(self, shipment: Shipment, outcome: str, forsendelse_id: str | None, detail: str) -> SendResult:
        detail = _mask(detail, shipment)[:MAX_DETAIL]
        level = logging.INFO if outcome == SENT else logging.WARNING
        log.log(level, "SvarUt shipment %s: %s %s", shipment.external_ref, outcome, detail)
        return SendResult(outcome, forsendelse_id, detail)


class _NotSent(Exception):
    """Something before the POST failed: nothing reached SvarUt."""


def _certificate_pem(data: bytes) -> bytes:
    """SvarUt's certificate as PEM, from PEM or DER; it must hold an RSA key (CMS key transport)."""
    # cryptography and cms are imported where a key is read or a letter encrypted: the pages that import this
    # module (the dispatch list, the settings) need none of it (~10 MiB of a web worker). The RQ worker has them
    # from its warm-up, before any thread starts.
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey  # noqa: PLC0415

    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            certificate = x509.load_pem_x509_certificate(data)
        else:
            certificate = x509.load_der_x509_certificate(data)
    except ValueError:
        raise ValueError("SvarUt's public key is not an X.509 certificate (PEM or DER)") from None
    if not isinstance(certificate.public_key(), RSAPublicKey):
        raise ValueError("SvarUt's certificate does not hold an RSA key")
    return certificate.public_bytes(serialization.Encoding.PEM)


def _json_field(response: requests.Response, name: str) -> object:
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload.get(name) if isinstance(payload, dict) else None


def _error_text(response: requests.Response) -> str:
    """Fiks ErrorMessage: message and errorId; otherwise the start of the body."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and (payload.get("message") or payload.get("errorId")):
        message = str(payload.get("message") or payload.get("error") or "").strip()
        error_id = payload.get("errorId")
        return f"{message} (errorId {error_id})" if error_id else message
    text = response.text.strip().replace("\n", " ")
    return text[:200] or response.reason or "no details"


def _mask(text: str, shipment: Shipment) -> str:
    """Never the recipient's national id: not as SvarUt may echo it, nor in any other spelling."""
    if shipment.recipient.kind == PERSON:
        for spelling in {str(shipment.recipient.digital_id).strip(), compact_id(shipment.recipient)}:
            if len(spelling) >= 9:  # an id; a stray short value must not mask ordinary numbers
                text = text.replace(spelling, "***********")
    return scrub(text)


def _quote_param(value: str) -> str:
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_bytes(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

