"""A local KS Fiks IO on 127.0.0.1 for the tests: the send API, the catalog's public keys, Dokumentlager
downloads, and delivery to the recipient's RabbitMQ queue with the headers Fiks IO sets.

Strict: a request Fiks IO would not take is answered with the status KS gives (400/401/403/404) and the
reason is appended to `server.failures`, so a test that asserts `server.failures == []` fails with it.
Stricter than Fiks IO in two ways, both to catch our own faults: the encrypted payload is opened with the
recipient's private key and its ASiC-E read strictly (signature required), and unknown metadata fields
are refused (a misspelt field name would otherwise be silently dropped).

Checks on POST /fiks-io/api/v1/send, in the order a request meets them:
- Authorization: Bearer RS256 JWT (scope ks:fiks, not expired, a consumer); then IntegrasjonId and
  IntegrasjonPassord of a registered account's integration: 401.
- multipart/form-data: `metadata` first (application/json, no filename), then optionally `data` (with a
  filename, not empty), nothing else: 400.
- metadata: avsenderKontoId the integration's own account (403 otherwise), mottakerKontoId a known account,
  meldingType a non-empty string, svarPaMelding a uuid or null, ttl whole milliseconds (>= 1000) or null,
  headere an object of strings: 400.
- data: CMS EnvelopedData that opens with the recipient's key, holding a signed ASiC-E: 400.

Test control (outside Fiks IO): add_account(), replace_certificate(), pause()/resume() (the send API
answers 503 meanwhile), publish_notice() (what Fiks IO itself sends: tidsavbrudd, serverfeil),
.sent (accepted sends, opened), .published / messages_to() (what went to a queue), .failures.
With amqp_url None nothing is published to RabbitMQ; .published still records every message.
"""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pika
from cryptography import x509
from pika.adapters.blocking_connection import BlockingChannel

from ppt_web.fiksio import asice
from ppt_web.fiksio.settings import CATALOG_PATH, DOKUMENTLAGER_PATH, QUEUE_PREFIX, SEND_PATH
from ppt_web.inbound import cms

from .svarut_server import (
    UUID_RE,
    RequestError,
    _header_params,
    _public_key,
    error_message,
    parse_multipart,
    verify_jwt,
)

FIKS_IO_ACCOUNT = "00000000-0000-0000-0000-00000000f15c"  # avsender-id on Fiks IO's own notices
FIKS_IO_NAME = "Fiks IO"
TIDSAVBRUDD = "no.ks.fiks.kvittering.tidsavbrudd"
SERVERFEIL = "no.ks.fiks.kvittering.serverfeil.v1"
METADATA_FIELDS = {"avsenderKontoId", "mottakerKontoId", "meldingType", "svarPaMelding", "ttl", "headere"}
INLINE_LIMIT = 5 * 1024 * 1024  # above this Fiks IO keeps the payload in Dokumentlager


@dataclass
class Account:
    account_id: str
    name: str
    certificate_pem: bytes
    private_key_pem: bytes
    integration_id: str
    integration_password: str


@dataclass
class Published:
    queue: str
    headers: dict[str, str]
    body: bytes
    expiration: str | None = None
    melding_id: str = ""
    extra: dict = field(default_factory=dict)


class FiksIoTestServer:
    def __init__(self, amqp_url: str | None, token_public_key_pem: bytes, inline_limit: int = INLINE_LIMIT, *,
                 consumer_org: str | None = None):
        self.amqp_url = amqp_url
        self.token_key = _public_key(token_public_key_pem)
        self.inline_limit = inline_limit
        self.consumer_org = consumer_org
        self.accounts: dict[str, Account] = {}
        self.sent: list[dict] = []  # accepted sends: melding_id, metadata, files, signer_certificate_pem, ...
        self.published: list[Published] = []
        self.failures: list[str] = []
        self.requests: list[dict] = []  # method, path, status
        self.dokumentlager: dict[str, tuple[str, bytes]] = {}  # id -> (recipient account, encrypted bytes)
        self.lock = threading.RLock()
        self._paused = False
        self._amqp_lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> str:
        """Serve in a thread; the base URL (PPT_FIKSIO_API_URL)."""
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()
        return self.url

    def stop(self) -> None:
        if self.thread:
            self.httpd.shutdown()
            self.thread.join(5)
            self.thread = None
        self.httpd.server_close()
        with self._amqp_lock:
            if self._connection is not None and self._connection.is_open:
                try:
                    self._connection.close()
                except pika.exceptions.AMQPError:
                    pass
            self._connection = self._channel = None

    def __enter__(self) -> FiksIoTestServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- test control (not part of Fiks IO) --------------------------------------------------------

    def add_account(self, account_id: str, certificate_pem: bytes, private_key_pem: bytes, integration_id: str,
                    integration_password: str, name: str | None = None) -> None:
        """Register an account (its key pair and its integration); with RabbitMQ, declare its durable queue."""
        account = Account(account_id.lower(), name or f"Konto {account_id[:8]}", certificate_pem, private_key_pem,
                          integration_id.lower(), integration_password)
        with self.lock:
            self.accounts[account.account_id] = account
        if self.amqp_url:
            self._with_channel(lambda channel: channel.queue_declare(QUEUE_PREFIX + account.account_id, durable=True))

    def replace_certificate(self, account_id: str, certificate_pem: bytes, private_key_pem: bytes) -> None:
        """A key rotation: the catalog serves the new certificate, sends must be encrypted to it."""
        with self.lock:
            account = self.accounts[account_id.lower()]
            account.certificate_pem, account.private_key_pem = certificate_pem, private_key_pem

    def pause(self) -> None:
        """The send API answers 503 until resume() (a transient Fiks IO outage)."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def messages_to(self, account_id: str) -> list[Published]:
        """Everything published to an account's queue, oldest first."""
        queue = QUEUE_PREFIX + account_id.lower()
        with self.lock:
            return [p for p in self.published if p.queue == queue]

    def publish_notice(self, recipient: str, meldingstype: str, svar_til: str, svar_til_type: str | None = None,
                       body: bytes = b"", headers: dict[str, str] | None = None) -> str:
        """What Fiks IO itself sends a sender (no.ks.fiks.kvittering.tidsavbrudd with headers only;
        no.ks.fiks.kvittering.serverfeil.v1 with serverfeil_body()); its melding-id."""
        melding_id = str(uuid.uuid4())
        amqp_headers = {"avsender-id": FIKS_IO_ACCOUNT, "avsender-navn": FIKS_IO_NAME, "melding-id": melding_id,
                        "type": meldingstype, "svar-til": svar_til}
        if svar_til_type:
            amqp_headers["svar-til-type"] = svar_til_type
        amqp_headers.update(headers or {})
        self._publish(Published(QUEUE_PREFIX + recipient.lower(), amqp_headers, body, melding_id=melding_id))
        return melding_id

    @staticmethod
    def serverfeil_body(feilmelding: str, correlation_id: str | None = None) -> bytes:
        """The JSON of Fiks IO's serverfeil notice (errorId, feilmelding, correlationId)."""
        return json.dumps({"errorId": str(uuid.uuid4()), "feilmelding": feilmelding,
                           "correlationId": correlation_id}).encode()

    # -- request handling --------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def _serve(self, method: str) -> None:
                path = urlsplit(self.path).path
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    self.close_connection = True
                    return self._answer(*server._refuse(411, "send the body with a Content-Length", method, path))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    status, payload = server._route(method, path, self.headers, body)
                except RequestError as exc:
                    status, payload = server._refuse(exc.status, exc.message, method, path)
                with server.lock:
                    server.requests.append({"method": method, "path": path, "status": status})
                self._answer(status, payload)

            def _answer(self, status: int, payload: dict | bytes) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if isinstance(payload, bytes)
                                 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _refuse(self, status: int, message: str, method: str, path: str) -> tuple[int, dict]:
        if status != 503:
            with self.lock:
                self.failures.append(f"{method} {path}: {status} {message}")
        return status, error_message(status, message, path)

    def _route(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict | bytes]:
        if path == SEND_PATH:
            _method(method, "POST")
            if self._paused:
                raise RequestError(503, "Fiks IO is paused by the test (transient outage)")
            return self._send(headers, body)
        catalog = CATALOG_PATH + "/kontoer/"
        if path.startswith(catalog):
            _method(method, "GET")
            parts = path[len(catalog):].split("/")
            if len(parts) == 2 and parts[1] == "offentligNokkel":
                return 200, self._public_key(parts[0])  # no authentication, as KS's clients call it
            self._authenticate(headers)
            if len(parts) == 1:
                account = self._account(parts[0])
                return 200, {"kontoId": account.account_id, "kontoNavn": account.name,
                             "status": {"gyldigAvsender": True, "gyldigMottaker": True, "melding": None}}
            if len(parts) == 2 and parts[1] == "status":
                self._account(parts[0])
                return 200, {"gyldigAvsender": True, "gyldigMottaker": True, "melding": None}
        if path.startswith(DOKUMENTLAGER_PATH + "/"):
            _method(method, "GET")
            account = self._authenticate(headers)
            with self.lock:
                stored = self.dokumentlager.get(path[len(DOKUMENTLAGER_PATH) + 1:])
            if stored is None:
                raise RequestError(404, "no such dokumentlager-id")
            if stored[0] != account.account_id:
                raise RequestError(403, "the integration's account is not the payload's recipient")
            return 200, stored[1]
        raise RequestError(404, "no such path")

    def _public_key(self, account_id: str) -> dict:
        account = self._account(account_id)
        certificate = x509.load_pem_x509_certificate(account.certificate_pem)
        return {"nokkel": account.certificate_pem.decode("ascii"),
                "validFrom": certificate.not_valid_before_utc.astimezone(UTC).isoformat(),
                "validTo": certificate.not_valid_after_utc.astimezone(UTC).isoformat(),
                "serial": str(certificate.serial_number), "subjectDN": certificate.subject.rfc4514_string(),
                "issuerDN": certificate.issuer.rfc4514_string(), "valid": True, "statusMessage": "Gyldig"}

    def _account(self, account_id: str) -> Account:
        if not UUID_RE.fullmatch(account_id):
            raise RequestError(400, f"kontoId {account_id!r} is not a uuid")
        with self.lock:
            account = self.accounts.get(account_id.lower())
        if account is None:
            raise RequestError(404, f"no account {account_id}")
        return account

    def _authenticate(self, headers) -> Account:
        """The account whose integration the request's three headers name; 401 otherwise."""
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise RequestError(401, "no Maskinporten token (Authorization: Bearer)")
        verify_jwt(token.strip(), self.token_key, consumer_org=self.consumer_org)
        integration_id = (headers.get("IntegrasjonId") or "").lower()
        password = headers.get("IntegrasjonPassord")
        if not integration_id or not password:
            raise RequestError(401, "IntegrasjonId or IntegrasjonPassord is missing")
        with self.lock:
            account = next((a for a in self.accounts.values() if a.integration_id == integration_id), None)
        if account is None or password != account.integration_password:
            raise RequestError(401, "unknown integration or wrong integration password")
        return account

    def _send(self, headers, body: bytes) -> tuple[int, dict]:
        sender = self._authenticate(headers)
        media, params = _header_params(headers.get("Content-Type") or "")
        if media.lower() != "multipart/form-data" or not params.get("boundary"):
            raise RequestError(400, "Content-Type must be multipart/form-data with a boundary")
        parts = parse_multipart(body, params["boundary"])
        if not parts or parts[0]["name"] != "metadata":
            raise RequestError(400, f"the first part must be 'metadata', not {parts[0]['name'] if parts else None!r}")
        metadata_part, rest = parts[0], parts[1:]
        if metadata_part["filename"] is not None:
            raise RequestError(400, "the metadata part must not have a filename")
        if (metadata_part["content_type"] or "").split(";")[0].strip().lower() != "application/json":
            raise RequestError(400, f"the metadata part must be application/json, not {metadata_part['content_type']!r}")
        if len(rest) > 1 or (rest and rest[0]["name"] != "data"):
            raise RequestError(400, "after 'metadata' only one part, 'data', may follow; got "
                               + ", ".join(repr(p["name"]) for p in rest))
        data_part = rest[0] if rest else None
        if data_part is not None and not data_part["filename"]:
            raise RequestError(400, "the data part must have a filename")
        if data_part is not None and not data_part["data"]:
            raise RequestError(400, "the data part is empty (leave it out for a message without payload)")
        metadata = self._metadata(metadata_part["data"])
        if metadata["avsenderKontoId"].lower() != sender.account_id:
            raise RequestError(403, f"avsenderKontoId {metadata['avsenderKontoId']} is not the integration's account")
        recipient = self._recipient(metadata)
        files = signer = None
        if data_part is not None:
            try:
                plain = cms.decrypt(data_part["data"], recipient.private_key_pem)
            except cms.CmsError as exc:
                raise RequestError(400, f"the data does not open with the recipient's key: {exc}") from None
            try:
                container = asice.read(plain, require_signature=True)
            except asice.AsiceError as exc:
                raise RequestError(400, f"the ASiC-E is refused: {exc}") from None
            files, signer = container.files, container.signer_certificate_pem

        melding_id = str(uuid.uuid4())
        custom = metadata.get("headere") or {}
        amqp_headers = {"avsender-id": sender.account_id, "avsender-navn": sender.name, "melding-id": melding_id,
                        "type": metadata["meldingType"]}
        if metadata.get("svarPaMelding"):
            amqp_headers["svar-til"] = metadata["svarPaMelding"]
        for name, value in custom.items():
            amqp_headers[f"egendefinert-header.{name}"] = value
        encrypted = data_part["data"] if data_part is not None else b""
        dokumentlager_id = None
        if len(encrypted) > self.inline_limit:
            dokumentlager_id = str(uuid.uuid4())
            amqp_headers["dokumentlager-id"] = dokumentlager_id
            with self.lock:
                self.dokumentlager[dokumentlager_id] = (recipient.account_id, encrypted)
            inline = b""
        else:
            inline = encrypted
        ttl = metadata.get("ttl")
        try:
            self._publish(Published(QUEUE_PREFIX + recipient.account_id, amqp_headers, inline,
                                    None if ttl is None else str(ttl), melding_id))
        except pika.exceptions.UnroutableError:
            raise RequestError(500, f"the queue {QUEUE_PREFIX}{recipient.account_id} does not exist") from None
        except pika.exceptions.AMQPError as exc:
            raise RequestError(503, f"Fiks IO cannot reach its message broker ({exc!r})") from None
        with self.lock:
            self.sent.append({"melding_id": melding_id, "metadata": metadata, "files": files,
                              "signer_certificate_pem": signer, "encrypted": encrypted,
                              "filename": data_part["filename"] if data_part else None,
                              "dokumentlager_id": dokumentlager_id})
        return 202, {"meldingId": melding_id, "meldingType": metadata["meldingType"],
                     "avsenderKontoId": sender.account_id, "mottakerKontoId": recipient.account_id,
                     "ttl": ttl, "dokumentlagerId": dokumentlager_id, "svarPaMelding": metadata.get("svarPaMelding"),
                     "headere": custom}

    def _recipient(self, metadata: dict) -> Account:
        try:
            return self._account(metadata["mottakerKontoId"])
        except RequestError as exc:
            raise RequestError(400, f"mottakerKontoId: {exc.message}") from None

    def _metadata(self, raw: bytes) -> dict:
        try:
            metadata = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise RequestError(400, "the metadata part is not JSON (UTF-8)") from None
        if not isinstance(metadata, dict):
            raise RequestError(400, "the metadata is not a JSON object")
        found = [f"unknown metadata field {name!r}" for name in metadata if name not in METADATA_FIELDS]
        for name in ("avsenderKontoId", "mottakerKontoId"):
            value = metadata.get(name)
            if not isinstance(value, str) or not UUID_RE.fullmatch(value):
                found.append(f"{name} must be a uuid")
        kind = metadata.get("meldingType")
        if not isinstance(kind, str) or not kind.strip():
            found.append("meldingType must be a non-empty string")
        reply_to = metadata.get("svarPaMelding")
        if reply_to is not None and (not isinstance(reply_to, str) or not UUID_RE.fullmatch(reply_to)):
            found.append("svarPaMelding must be a uuid or null")
        ttl = metadata.get("ttl")
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1000):
            found.append("ttl must be whole milliseconds, at least 1000, or null")
        custom = metadata.get("headere")
        if custom is not None and (not isinstance(custom, dict)
                                   or not all(isinstance(k, str) and k and isinstance(v, str)
                                              for k, v in custom.items())):
            found.append("headere must be an object of strings")
        if found:
            raise RequestError(400, "; ".join(found))
        return metadata

    # -- publishing --------------------------------------------------------------------------------

    def _publish(self, message: Published) -> None:
        """To the queue (persistent, confirmed by RabbitMQ), then recorded in .published."""
        if self.amqp_url:
            properties = pika.BasicProperties(delivery_mode=2, headers=message.headers, expiration=message.expiration)
            self._with_channel(lambda channel: channel.basic_publish("", message.queue, message.body, properties,
                                                                      mandatory=True))
        with self.lock:
            self.published.append(message)

    def _with_channel(self, action) -> None:
        """One connection for the server, opened again if RabbitMQ dropped it (tests restart RabbitMQ)."""
        assert self.amqp_url
        with self._amqp_lock:
            for attempt in (1, 2):
                try:
                    if self._connection is None or not self._connection.is_open or self._channel is None \
                            or not self._channel.is_open:
                        parameters = pika.URLParameters(self.amqp_url)
                        parameters.heartbeat = 0  # idle between tests: no heartbeat for the broker to miss
                        self._connection = pika.BlockingConnection(parameters)
                        self._channel = self._connection.channel()
                        self._channel.confirm_delivery()
                    action(self._channel)
                    return
                except (pika.exceptions.AMQPConnectionError, pika.exceptions.StreamLostError,
                        pika.exceptions.ChannelWrongStateError, pika.exceptions.ConnectionWrongStateError):
                    self._connection = self._channel = None
                    if attempt == 2:
                        raise


def _method(method: str, allowed: str) -> None:
    if method != allowed:
        raise RequestError(405, f"only {allowed}")
