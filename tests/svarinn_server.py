"""A local SvarInn V2 on 127.0.0.1, as docs/integrations.md, "Test servers" describes it, with
switchable faults per item.

Paths are those of svarinn-api-v2.json under /api; downloads are also served at the legacy
/tjenester/svarinn/forsendelse/{id}, which KS's own example nedlastingslenke still uses.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ppt_web.inbound import cms

API = "/api/svarinn/v2/forsendelser"
LEGACY = "/tjenester/svarinn/forsendelse"
PAGE = 200
FAULTS = {"hash_mismatch", "wrong_key", "truncated", "download_error", "bad_metadata"}


def make_key_and_cert(common_name: str = "ppt-mottakersystem") -> tuple[bytes, bytes]:
    """A fresh RSA key and self-signed certificate, as `openssl req -x509 -newkey rsa:2048` gives (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


@lru_cache(maxsize=1)
def _stranger_cert() -> bytes:
    """Someone else's certificate, for the wrong_key fault."""
    return make_key_and_cert("not-us")[1]


@lru_cache(maxsize=64)
def _encrypted(zipped: bytes, cert_pem: bytes) -> bytes:
    """Many identical items (the 205-item test) share one envelope: RSA and AES once."""
    return cms.encrypt(zipped, cert_pem)


def zip_files(files: dict[str, bytes]) -> bytes:
    """A ZIP with fixed timestamps, so equal files give equal bytes (and a cache hit above)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 16, 18, 39, 10)), data,
                             compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def build_metadata(message_id: str, files: dict[str, bytes], **overrides) -> dict:
    """A Forsendelse that validates against svarinn-api-v2.json, with correct hash and size per file."""
    meta = {
        "id": message_id,
        "avsender": {"organisasjonsnummer": "123456789",
                     "postadresse": {"navn": "Testkommune skule", "adresselinje1": "Skulevegen 1",
                                     "postnummer": "0612", "poststed": "Oslo"}},
        "mottaker": {"organisasjonsnummer": "987654321",
                     "postadresse": {"navn": "Testkommune PPT", "adresselinje1": "Rådhusgata 1",
                                     "postnummer": "0150", "poststed": "Oslo"}},
        "tittel": "Tilvising til PPT",
        "dato": "2024-01-16T18:39:11Z",
        "metadataFraAvleverendeSystem": {
            "mappeId": {"saksaar": 2024, "sakssekvensnummer": 1234},
            "journalpostId": {"journalaar": 2024, "journalsekvensnummer": 5678, "journalpostnummer": 3},
            "dokumentetsDato": "2024-01-14T23:00:00Z",
            "saksbehandler": "Kari Nordmann",
        },
        "sikkerhetsniva": "BETYDELIG",
        "taushetsbelagtPost": True,
        "filer": [{"filnavn": name, "mimeType": "application/pdf" if name.endswith(".pdf") else "text/plain",
                   "hash": hashlib.sha256(data).hexdigest(), "storrelse": len(data)}
                  for name, data in files.items()],
        "nedlastingslenke": "",
        "avgivendeSystem": "TEST",
    }
    meta.update(overrides)
    return meta


@dataclass
class _Item:
    meta: dict
    body: bytes
    fault: str | None


class SvarInnServer:
    """One mottakersystem: its Basic-auth user and the certificate its envelopes are encrypted to."""

    def __init__(self, certificate_pem: bytes, username: str = "ppt-mottak", password: str = "test-passord"):
        self.certificate_pem = certificate_pem
        self.username, self.password = username, password
        self.items: dict[str, _Item] = {}  # insertion order is listing order
        self.acknowledged: set[str] = set()
        self.failed: dict[str, dict] = {}  # id -> the last feil sent with FEILET
        self.rerouted: set[str] = set()  # FEILET permanent: SvarUt sends it another way
        self.downloads: Counter[str] = Counter()
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread: threading.Thread | None = None

    def start(self) -> SvarInnServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread:
            self.httpd.shutdown()
            self.thread.join(5)
            self.thread = None
        self.httpd.server_close()

    def __enter__(self) -> SvarInnServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def add(self, meta: dict | None = None, files: dict[str, bytes] | None = None, *, envelope: bytes | None = None,
            fault: str | None = None) -> str:
        """Queue one forsendelse; without meta, metadata is built from files (hash and size correct).

        envelope is served verbatim (KS's BER vectors); otherwise the ZIP of files is encrypted to the
        configured certificate. nedlastingslenke is pointed at this server, keeping its path.
        """
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        files = files if files is not None else {"brev.pdf": b"%PDF-1.4 brev fra skulen\n%%EOF\n"}
        message_id = meta["id"] if meta and "id" in meta else str(uuid.uuid4())
        meta = json.loads(json.dumps(meta)) if meta else build_metadata(message_id, files)
        meta["nedlastingslenke"] = self._link(meta.get("nedlastingslenke"), message_id)
        if envelope is None:
            cert = _stranger_cert() if fault == "wrong_key" else self.certificate_pem
            envelope = _encrypted(zip_files(files), cert)
        if fault == "truncated":
            envelope = envelope[: len(envelope) // 2]
        if fault == "hash_mismatch":
            meta["filer"][0]["hash"] = hashlib.sha256(b"something else").hexdigest()
        if fault == "bad_metadata":
            meta.pop("tittel", None)
        with self.lock:
            self.items[message_id] = _Item(meta, envelope, fault)
        return message_id

    def add_many(self, count: int, files: dict[str, bytes] | None = None) -> list[str]:
        """count items with the same small files: one ZIP, one envelope, fresh ids."""
        return [self.add(files=files) for _ in range(count)]

    def waiting(self) -> list[dict]:
        """What GET /forsendelser lists now: neither acknowledged nor permanently failed, at most 200."""
        with self.lock:
            return [item.meta for message_id, item in self.items.items()
                    if message_id not in self.acknowledged and message_id not in self.rerouted][:PAGE]

    def _link(self, given: str | None, message_id: str) -> str:
        path = urlsplit(given).path if given else ""
        return self.url + (path or f"{API}/{message_id}")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # keep-alive without 40 ms delayed-ACK stalls per request

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._serve("GET")

            def do_PATCH(self):
                self._serve("PATCH")

            def do_POST(self):
                self._serve("POST")

            def _serve(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                with server.lock:
                    server.requests.append((method, path))
                if not server._authorised(self.headers.get("Authorization", "")):
                    return self._json(401, _error(401, "Unauthorized", path),
                                      {"WWW-Authenticate": 'Basic realm="SvarInn"'})
                parts = path.strip("/").split("/")
                if method == "GET" and path.rstrip("/") == API:
                    return self._json(200, server.waiting())
                if method == "GET" and (path.startswith(API + "/") and len(parts) == 5
                                        or path.startswith(LEGACY + "/") and len(parts) == 4):
                    return self._download(parts[-1], path)
                if method == "PATCH" and path.startswith(API + "/") and len(parts) == 6 and parts[5] == "status":
                    return self._status(parts[4], body, path)
                return self._json(404, _error(404, "Not Found", path))

            def _download(self, message_id: str, path: str) -> None:
                with server.lock:
                    item = server.items.get(message_id)
                    if item:
                        server.downloads[message_id] += 1
                if item is None:
                    return self._json(404, _error(404, "Not Found", path))
                if item.fault == "download_error":
                    return self._json(500, _error(500, "Internal Server Error", path))
                self._send(200, item.body, {"Content-Type": "application/zip",
                                            "Content-Disposition": f'attachment; filename="{message_id}.zip"'})

            def _status(self, message_id: str, body: bytes, path: str) -> None:
                with server.lock:
                    known = message_id in server.items
                if not known:
                    return self._json(404, _error(404, "Not Found", path))
                try:
                    update = json.loads(body)
                except ValueError:
                    return self._json(400, _error(400, "Bad Request", path, "body is not JSON"))
                problem = _status_problem(update)
                if problem:
                    return self._json(400, _error(400, "Bad Request", path, problem))
                with server.lock:
                    if update["status"] == "MOTTATT":
                        server.acknowledged.add(message_id)
                    else:
                        server.failed[message_id] = update["feil"]
                        if update["feil"]["permanent"]:
                            server.rerouted.add(message_id)
                self._send(200, b"", {})

            def _json(self, status: int, payload, headers: dict | None = None) -> None:
                self._send(status, json.dumps(payload, ensure_ascii=False).encode(),
                           {"Content-Type": "application/json", **(headers or {})})

            def _send(self, status: int, payload: bytes, headers: dict) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def _authorised(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return given == f"{self.username}:{self.password}"


def _status_problem(update: object) -> str | None:
    """Statusoppdatering as the spec has it; feil (with feilmelding and permanent) is required for FEILET."""
    if not isinstance(update, dict) or update.get("status") not in ("MOTTATT", "FEILET"):
        return "status must be MOTTATT or FEILET"
    if update["status"] == "FEILET":
        feil = update.get("feil")
        if not isinstance(feil, dict):
            return "feil is required when status is FEILET"
        if not isinstance(feil.get("feilmelding"), str) or not isinstance(feil.get("permanent"), bool):
            return "feil needs feilmelding (string) and permanent (boolean)"
    return None


def _error(status: int, error: str, path: str, message: str = "") -> dict:
    """The Fiks ErrorMessage shape."""
    return {"timestamp": datetime.now(UTC).isoformat(), "status": status, "error": error,
            "errorId": str(uuid.uuid4()), "path": path, "originalPath": path, "message": message or error,
            "errorCode": None, "errorJson": None}
