"""A local SvarUt REST v3 (plus the v2 helpers) on 127.0.0.1, as docs/integrations.md, "Test servers" describes it.

Spec paths under /api: v3 send (person, organisasjon, print) and status/sok; v2 eksternRef lookup (with and
without the trailing "/" KS's own client sends), eksternRef metadata, and hendelser. SvarUt's encryption
certificate is served at /forsendelse/publickey/hent without credentials, as the real one is.

Checks, in the order a request meets them:
- auth: Bearer RS256 JWT verified with the configured key (scope ks:fiks, exp, consumer if configured), then
  IntegrasjonId/IntegrasjonPassord: 401 Fiks ErrorMessage with an errorId; a konto the integration may not
  use: 403.
- send: multipart; first part "forsendelse"; its JSON against forsendelse-send-api-v3.json (a small
  validator: $ref, type, required, properties, items, enum, min/maxLength, pattern, minimum, min/maxItems,
  uniqueItems; unknown properties are refused too, stricter than the spec, to catch misspelt field names);
  the cross-field rules; file parts matching dokumenter[] in count, order and filename; kryptert files
  decrypted with the server's own key. Stored plain, answered {"id"}.

Test-only control (plain Python, outside the spec): .mode, .set_status(), .shipments, .by_external_ref(),
.requests. Modes: "ok"; "server_error" (every API call answers 500, nothing stored); "reject" (sends answer
400 with .reject_message); "timeout_after_store" (a send is stored, then the answer is held .stall_seconds
and the connection dropped); "drop_after_store" (stored, connection closed at once).
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from stdnum.no import fodselsnummer, orgnr

from ppt_web.inbound import cms

from .svarinn_server import make_key_and_cert

# Every status either published v3 list has (docs/integrations.md, "SvarUt statuses"): VARSLET in the
# older, SENDT_/LEVERT_ALTINN in the newer.
ALL_STATUSES = ("MOTTATT", "AKSEPTERT", "AVVIST", "FEILET_UNDER_MOTTAK", "VARSLET", "SENDT_ALTINN", "LEVERT_ALTINN",
                "LEST", "SENDT_PRINT", "PRINTET", "MANUELT_HANDTERT", "SENDT_DIGITALT", "SENDT_SDP", "LEVERT_SDP",
                "KLAR_FOR_MOTTAK", "IKKE_LEVERT", "SLETTET", "SENDT_NHN_MOTTAKER", "LEVERT_NHN_MOTTAKER")
MODES = {"ok", "server_error", "reject", "timeout_after_store", "drop_after_store"}
SEND_SCHEMAS = {"person": "PersonForsendelse", "organisasjon": "OrganisasjonForsendelse", "print": "PrintForsendelse"}
FILENAME_FORBIDDEN = set('*:"\\/<>|?')
MAX_STATUS_BATCH = 100  # not in the spec; the client batches at 100 and this holds it to that
PUBLIC_KEY_PATH = "/forsendelse/publickey/hent"
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           411: "Length Required", 415: "Unsupported Media Type", 500: "Internal Server Error"}


def find_ks_svarut() -> Path | None:
    """shared/standards/ks-svarut beside the checkout (as CI lays it out); the app never reads it."""
    return next((p / "shared" / "standards" / "ks-svarut" for p in Path(__file__).resolve().parents
                 if (p / "shared" / "standards" / "ks-svarut" / "svarut-v3").is_dir()), None)


def make_token_keys() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) for LocalJwtTokenProvider and SvarUtServer: our stand-in for Maskinporten."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@lru_cache(maxsize=1)
def _server_key_and_cert() -> tuple[bytes, bytes]:
    """SvarUt's encryption key pair; one per test run is enough (RSA key generation is the slow part)."""
    return make_key_and_cert("svarut-test-forsendelse")


@lru_cache(maxsize=4)
def _load_spec(path: str) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class SvarUtServer:
    """One Fiks integration (token key, id, password) and the kontoer it may send from."""

    def __init__(self, token_public_key_pem: bytes, integration_id: str, integration_password: str,
                 konto_ids: set[str], *, consumer_org: str | None = None, spec_dir: Path | None = None):
        folder = spec_dir or find_ks_svarut()
        if folder is None or not (folder / "svarut-v3" / "forsendelse-send-api-v3.json").is_file():
            raise RuntimeError("forsendelse-send-api-v3.json not found (shared/standards/ks-svarut beside the "
                               "checkout); tests that need SvarUtServer should skip without it")
        self.spec = _load_spec(str(folder / "svarut-v3" / "forsendelse-send-api-v3.json"))
        self.token_key = _public_key(token_public_key_pem)
        self.integration_id, self.integration_password = integration_id, integration_password
        self.konto_ids = {str(k).lower() for k in konto_ids}
        self.consumer_org = consumer_org
        self.server_key_pem, self.server_cert_pem = _server_key_and_cert()
        self._mode = "ok"
        self.reject_message = "Forsendelsen ble avvist av testserveren"
        self.stall_seconds = 2.0
        self.shipments: dict[str, dict] = {}  # id -> {id, konto, type, json, files, raw_files, parts, status, ...}
        self.requests: list[dict] = []  # {method, path, query, headers, body}
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> SvarUtServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends a stalled answer at once
        if self.thread:
            self.httpd.shutdown()
            self.thread.join(5)
            self.thread = None
        self.httpd.server_close()

    def __enter__(self) -> SvarUtServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- test control (not part of SvarUt) ---------------------------------------------------------

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"unknown mode {value!r}; one of {sorted(MODES)}")
        self._mode = value

    def set_status(self, forsendelse_id: str, status: str) -> None:
        """Move a stored forsendelse to a status, as SvarUt's delivery channels would; any string is taken,
        so a client can be tested against a status it does not know."""
        with self.lock:
            record = self.shipments[forsendelse_id]
            record["status"] = status
            record["status_changed"] = _now()
            record["events"].append({"tidspunkt": record["status_changed"], "hendelse": f"Status endret til {status}"})

    def by_external_ref(self, ref: str) -> list[dict]:
        """Every stored forsendelse with this eksternReferanse, oldest first (any konto)."""
        with self.lock:
            return [r for r in self.shipments.values() if r["json"].get("eksternReferanse") == ref]

    def verify_token(self, token: str) -> dict:
        """The claims of a valid token; RequestError(401) saying what is wrong otherwise."""
        return verify_jwt(token, self.token_key, consumer_org=self.consumer_org)

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

            def do_PUT(self):
                self._serve("PUT")

            def do_DELETE(self):
                self._serve("DELETE")

            def _serve(self, method: str) -> None:
                split = urlsplit(self.path)
                path = split.path
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    self.close_connection = True
                    return self._error(411, "send the body with a Content-Length", path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server.lock:
                    server.requests.append({"method": method, "path": path, "query": split.query,
                                            "headers": dict(self.headers.items()), "body": body})
                try:
                    outcome = server._route(method, path, parse_qs(split.query), self.headers, body)
                except RequestError as exc:
                    return self._error(exc.status, exc.message, path)
                if outcome == "stall":
                    server._stopping.wait(server.stall_seconds)
                    self.close_connection = True
                    return None
                if outcome == "drop":
                    self.close_connection = True
                    return None
                status, payload, content_type = outcome
                data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
                self._send(status, data, content_type)

            def _error(self, status: int, message: str, path: str) -> None:
                self._send(status, json.dumps(error_message(status, message, path), ensure_ascii=False).encode(),
                           "application/json")

            def _send(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _route(self, method: str, path: str, query: dict, headers, body: bytes):
        if path == PUBLIC_KEY_PATH:
            if method != "GET":
                raise RequestError(405, "only GET")
            return 200, self.server_cert_pem, "application/x-pem-file"
        if not path.startswith("/api/"):
            raise RequestError(404, "no such path")
        self._authenticate(headers)
        if self.mode == "server_error":
            raise RequestError(500, "testserveren feiler med vilje (server_error)")
        parts = path.rstrip("/").split("/")[2:]  # after "", "api"
        # v3 send and status: v3/kontoer/{konto}/forsendelser/{person|organisasjon|print|status/sok}
        if len(parts) >= 5 and parts[0] == "v3" and parts[1] == "kontoer" and parts[3] == "forsendelser":
            konto = self._konto(parts[2])
            rest = "/".join(parts[4:])
            if rest in SEND_SCHEMAS:
                _method(method, "POST")
                return self._send_forsendelse(konto, rest, headers, body)
            if rest == "status/sok":
                _method(method, "POST")
                return 200, self._status_search(konto, body), "application/json"
        if len(parts) >= 4 and parts[0] == "v2" and parts[1] == "kontoer" and parts[3] == "forsendelser":
            konto = self._konto(parts[2])
            ref = _single(query, "eksternRef")
            if len(parts) == 4:
                _method(method, "GET")
                return 200, {"forsendelseIds": [r["id"] for r in self._by_ref(konto, ref)]}, "application/json"
            if len(parts) == 5 and parts[4] == "metadata":
                _method(method, "GET")
                return 200, {"forsendelser": [{"id": r["id"], "dato": r["received"],
                                               "avgivendeSystem": r["json"].get("avgivendeSystem")}
                                              for r in self._by_ref(konto, ref)]}, "application/json"
        if len(parts) == 4 and parts[0] == "v2" and parts[1] == "forsendelser" and parts[3] == "hendelser":
            _method(method, "GET")
            with self.lock:
                record = self.shipments.get(parts[2])
            if record is None or record["konto"] not in self.konto_ids:
                raise RequestError(404, "fant ikke forsendelsen")
            return 200, {"hendelser": list(record["events"])}, "application/json"
        raise RequestError(404, "no such path")

    def _authenticate(self, headers) -> None:
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise RequestError(401, "Mangler Maskinporten-token (Authorization: Bearer)")
        self.verify_token(token.strip())
        integration_id = headers.get("IntegrasjonId")
        password = headers.get("IntegrasjonPassord")
        if not integration_id or not password:
            raise RequestError(401, "Mangler IntegrasjonId eller IntegrasjonPassord")
        if integration_id != self.integration_id or password != self.integration_password:
            raise RequestError(401, "Ugyldig integrasjon eller passord")

    def _konto(self, konto: str) -> str:
        if not UUID_RE.fullmatch(konto):
            raise RequestError(400, "kontoId må være en uuid")
        if konto.lower() not in self.konto_ids:
            raise RequestError(403, "Integrasjonen har ikke tilgang til kontoen")
        return konto.lower()

    def _by_ref(self, konto: str, ref: str) -> list[dict]:
        with self.lock:
            return [r for r in self.shipments.values()
                    if r["konto"] == konto and r["json"].get("eksternReferanse") == ref]

    def _send_forsendelse(self, konto: str, kind: str, headers, body: bytes):
        content_type = headers.get("Content-Type") or ""
        media, params = _header_params(content_type)
        if media.lower() != "multipart/form-data" or not params.get("boundary"):
            raise RequestError(415, "Content-Type må være multipart/form-data med boundary")
        parts = parse_multipart(body, params["boundary"])
        if not parts or parts[0]["name"] != "forsendelse":
            raise RequestError(400, "første del må hete 'forsendelse'")
        try:
            forsendelse = json.loads(parts[0]["data"].decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise RequestError(400, "'forsendelse' er ikke gyldig JSON") from None
        schema_name = SEND_SCHEMAS[kind]
        found = validate(forsendelse, {"$ref": f"#/components/schemas/{schema_name}"}, self.spec, "forsendelse")
        if not found:
            found = rule_problems(forsendelse, kind)
        files = parts[1:]
        if not found:
            found = _file_problems(forsendelse, files)
        if found:
            raise RequestError(400, "; ".join(found))
        if self.mode == "reject":
            raise RequestError(400, self.reject_message)
        plain = []
        for number, part in enumerate(files, 1):
            data = part["data"]
            if forsendelse.get("kryptert"):
                try:
                    data = cms.decrypt(data, self.server_key_pem)
                except cms.CmsError as exc:
                    raise RequestError(400, f"fil {number} kan ikke dekrypteres med SvarUt sin nøkkel: "
                                            f"{exc}") from None
            plain.append((part["filename"], data))
        forsendelse_id = str(uuid.uuid4())
        now = _now()
        record = {
            "id": forsendelse_id, "konto": konto, "type": kind, "json": forsendelse,
            "files": dict(plain), "raw_files": [p["data"] for p in files],
            "parts": [{"name": p["name"], "filename": p["filename"], "content_type": p["content_type"]} for p in parts],
            "status": "MOTTATT", "status_changed": now, "received": now,
            "events": [{"tidspunkt": now, "hendelse": "Forsendelse mottatt"}],
        }
        with self.lock:
            self.shipments[forsendelse_id] = record
        if self.mode == "timeout_after_store":
            return "stall"
        if self.mode == "drop_after_store":
            return "drop"
        return 200, {"id": forsendelse_id}, "application/json"

    def _status_search(self, konto: str, body: bytes) -> dict:
        try:
            request = json.loads(body)
        except ValueError:
            raise RequestError(400, "forespørselen er ikke gyldig JSON") from None
        ids = request.get("id") if isinstance(request, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) and UUID_RE.fullmatch(i) for i in ids):
            raise RequestError(400, "id må være en liste med uuid-er")
        if len(ids) > MAX_STATUS_BATCH:
            raise RequestError(400, f"høyst {MAX_STATUS_BATCH} id-er per søk")
        with self.lock:
            records = [self.shipments.get(i) for i in ids]
        return {"statuser": [{"id": r["id"], "sisteStatusEndring": r["status_changed"], "status": r["status"]}
                             for r in records if r is not None and r["konto"] == konto]}


# -- the token ------------------------------------------------------------------------------------

def verify_jwt(token: str, key: RSAPublicKey, *, scope: str = "ks:fiks", consumer_org: str | None = None,
               now: float | None = None) -> dict:
    """Claims of an RS256 JWT signed by key, with scope, a consumer and an exp in the future; else RequestError."""
    pieces = token.split(".")
    if len(pieces) != 3:
        raise RequestError(401, "token er ikke en JWT")
    try:
        header = json.loads(_b64url_decode(pieces[0]))
        claims = json.loads(_b64url_decode(pieces[1]))
        signature = _b64url_decode(pieces[2])
    except ValueError:
        raise RequestError(401, "token kan ikke leses") from None
    if not isinstance(header, dict) or header.get("alg") != "RS256":
        raise RequestError(401, "token må være signert med RS256")
    try:
        key.verify(signature, f"{pieces[0]}.{pieces[1]}".encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise RequestError(401, "token har ugyldig signatur") from None
    if not isinstance(claims, dict):
        raise RequestError(401, "token har ingen claims")
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= (time.time() if now is None else now):
        raise RequestError(401, "token er utløpt")
    if scope not in str(claims.get("scope", "")).split():
        raise RequestError(401, f"token mangler scope {scope}")
    consumer = claims.get("consumer")
    consumer_id = consumer.get("ID") if isinstance(consumer, dict) else None
    if not isinstance(consumer_id, str) or not re.fullmatch(r"0192:\d{9}", consumer_id):
        raise RequestError(401, "token mangler consumer")
    if consumer_org is not None and consumer_id != f"0192:{consumer_org}":
        raise RequestError(401, "token sin consumer er ikke integrasjonens organisasjon")
    return claims


def _public_key(pem: bytes) -> RSAPublicKey:
    """A PEM public key, or the key in a PEM certificate."""
    if b"CERTIFICATE" in pem:
        key = x509.load_pem_x509_certificate(pem).public_key()
    else:
        key = serialization.load_pem_public_key(pem)
    if not isinstance(key, RSAPublicKey):
        raise ValueError("the token key must be RSA")
    return key


def _b64url_decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- multipart ------------------------------------------------------------------------------------

def parse_multipart(body: bytes, boundary: str) -> list[dict]:
    """Parts as {name, filename, content_type, data}, in order; RequestError(400) on a malformed body."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2:
        raise RequestError(400, "multipart-kroppen har ingen deler")
    parts: list[dict] = []
    closed = False
    for chunk in chunks[1:]:  # chunks[0] is the preamble
        if chunk.startswith(b"--"):
            closed = True
            break
        line_end = chunk.find(b"\r\n")
        if line_end < 0 or chunk[:line_end].strip(b" \t"):
            raise RequestError(400, "ugyldig multipart-skille")
        rest = chunk[line_end + 2:]
        if rest.startswith(b"\r\n"):  # a part without headers
            head, data = b"", rest[2:]
        else:
            head, separator, data = rest.partition(b"\r\n\r\n")
            if not separator:
                raise RequestError(400, "en multipart-del mangler tom linje etter hodene")
        headers: dict[str, str] = {}
        for line in head.split(b"\r\n") if head else []:
            name, colon, value = line.decode("utf-8", errors="replace").partition(":")
            if not colon:
                raise RequestError(400, "ugyldig hode i multipart-del")
            headers[name.strip().lower()] = value.strip()
        disposition, params = _header_params(headers.get("content-disposition", ""))
        if disposition.lower() != "form-data":
            raise RequestError(400, "hver del må ha Content-Disposition: form-data")
        parts.append({"name": params.get("name", ""), "filename": params.get("filename"),
                      "content_type": headers.get("content-type"), "data": data})
    if not closed:
        raise RequestError(400, "multipart-kroppen er ikke avsluttet")
    return parts


def _header_params(value: str) -> tuple[str, dict[str, str]]:
    """'form-data; name="x"; filename*=UTF-8''a%20b' -> ('form-data', {...}); filename* wins (RFC 6266)."""
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for match in re.finditer(r'\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)\s*;?', rest):
        key, raw = match.group(1).lower(), match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if key.endswith("*"):
            charset, _, encoded = raw.partition("''")
            try:
                params[key[:-1]] = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                continue
        elif key not in params:
            params[key] = raw
    return main.strip(), params


# -- validation -----------------------------------------------------------------------------------

def validate(value: object, schema: dict, spec: dict, where: str) -> list[str]:
    """The parts of JSON Schema the send spec uses; unknown object properties are refused."""
    if "$ref" in schema:
        return validate(value, _resolve(schema["$ref"], spec), spec, where)
    kind = schema.get("type")
    if kind and not _is_type(value, kind):
        return [f"{where}: skal være {kind}"]
    found: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: ugyldig verdi {value!r}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            found.append(f"{where}: for kort (minst {schema['minLength']})")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            found.append(f"{where}: for lang (høyst {schema['maxLength']})")
        if schema.get("format") == "uuid" and not UUID_RE.fullmatch(value):
            found.append(f"{where}: skal være en uuid")
        if schema.get("format") == "date-time" and not _is_datetime(value):
            found.append(f"{where}: skal være ISO 8601 dato og tid")
    if "pattern" in schema and isinstance(value, str | int) and not isinstance(value, bool):
        # also on integers (saksaar, journalaar): the spec's intent is four digits
        if not re.search(schema["pattern"], str(value)):
            found.append(f"{where}: følger ikke mønsteret {schema['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            found.append(f"{where}: minst {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            found.append(f"{where}: høyst {schema['maximum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            found.append(f"{where}: minst {schema['minItems']} elementer")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            found.append(f"{where}: høyst {schema['maxItems']} elementer")
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            found.append(f"{where}: elementene må være unike")
        for index, item in enumerate(value):
            found += validate(item, schema.get("items", {}), spec, f"{where}[{index}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                found.append(f"{where}.{name}: påkrevd")
        for name, item in value.items():
            if name not in properties:
                if properties or schema.get("type") == "object":
                    found.append(f"{where}.{name}: ukjent felt")
                continue
            found += validate(item, properties[name], spec, f"{where}.{name}")
    return found


def rule_problems(forsendelse: dict, kind: str) -> list[str]:
    """The rules the schema cannot say (docs/integrations.md, "SvarUt REST v3", and the field
    descriptions in the spec)."""
    found: list[str] = []
    documents = forsendelse.get("dokumenter") or []
    if not documents:
        found.append("forsendelsen må ha minst ett dokument")
    if forsendelse.get("sikkerhetsniva") == "HOYESTE" and not forsendelse.get("kryptert"):
        found.append("sikkerhetsniva HOYESTE krever kryptert: true")
    if kind == "print":
        if any(d.get("mimeType") != "application/pdf" for d in documents):
            found.append("print tar bare application/pdf")
    elif not forsendelse.get("kunDigitalLevering"):
        for number, document in enumerate(documents, 1):
            if document.get("mimeType") != "application/pdf" and not document.get("skalEkskluderesFraUtskrift"):
                found.append(f"dokument {number} er ikke PDF og må ha skalEkskluderesFraUtskrift: true "
                             "(eller kunDigitalLevering)")
    if forsendelse.get("kanSvareViaEdialog"):
        reply_to = forsendelse.get("svarSendesTil")
        if not isinstance(reply_to, dict) or reply_to.get("type") != "ORGANISASJON":
            found.append("kanSvareViaEdialog krever svarSendesTil med type ORGANISASJON")
    if len(forsendelse.get("lenker") or []) > 5:
        found.append("høyst 5 lenker")
    names = [d.get("filnavn") for d in documents]
    if len(set(names)) != len(names):
        found.append("filnavn må være unike")
    for number, name in enumerate(names, 1):
        if isinstance(name, str) and FILENAME_FORBIDDEN & set(name):
            found.append(f"dokument {number}: filnavn har ulovlige tegn")
    signed = [d for d in documents if d.get("skalSigneres")]
    if len(signed) > 1 or any(d.get("mimeType") != "application/pdf" for d in signed):
        found.append("bare ett dokument kan signeres, og det må være PDF")
    if signed and "signering" not in forsendelse:
        found.append("signering er påkrevd når et dokument skal signeres")
    recipient = forsendelse.get("mottaker") or {}
    digital_id = recipient.get("digitalId")
    if kind == "person" and digital_id is not None and not fodselsnummer.is_valid(digital_id):
        found.append("mottaker.digitalId er ikke et gyldig fødselsnummer eller d-nummer")
    if kind == "organisasjon" and digital_id is not None and not orgnr.is_valid(digital_id):
        found.append("mottaker.digitalId er ikke et gyldig organisasjonsnummer")
    return found


def _file_problems(forsendelse: dict, files: list[dict]) -> list[str]:
    expected = [d.get("filnavn") for d in forsendelse.get("dokumenter") or []]
    given = [f["filename"] for f in files]
    if any(name is None for name in given):
        return ["hver fil-del må ha filename"]
    if len(given) != len(expected):
        return [f"{len(given)} filer, men {len(expected)} dokumenter i forsendelsen"]
    return [f"fil {n}: filename {g!r} er ikke filnavn {e!r} (samme rekkefølge som dokumenter)"
            for n, (g, e) in enumerate(zip(given, expected, strict=True), 1) if g != e]


def _resolve(ref: str, spec: dict) -> dict:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref: {ref}")
    node: object = spec
    for key in ref[2:].split("/"):
        node = node[key]  # type: ignore[index]
    return node  # type: ignore[return-value]


def _is_type(value: object, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, {"string": str, "boolean": bool, "object": dict, "array": list}.get(kind, object))


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value


def _method(method: str, allowed: str) -> None:
    if method != allowed:
        raise RequestError(405, f"bare {allowed}")


def _single(query: dict, name: str) -> str:
    values = query.get(name)
    if not values or not values[0]:
        raise RequestError(400, f"{name} er påkrevd")
    return values[0]


def _now() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="milliseconds")


def error_message(status: int, message: str, path: str) -> dict:
    """The Fiks ErrorMessage shape (timestamp in epoch milliseconds, as the v3 specs type it)."""
    return {"timestamp": int(time.time() * 1000), "status": status, "error": REASONS.get(status, "Error"),
            "errorId": str(uuid.uuid4()), "path": path, "originalPath": path, "message": message,
            "errorCode": None, "errorJson": None}
