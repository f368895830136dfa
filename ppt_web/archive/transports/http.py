"""The http transport: one POST per job to a Fiks Arkiv endpoint (docs/decisions.md, "Archive transport contracts")."""
from __future__ import annotations

import os
import threading
import uuid

import requests.utils
import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError
from urllib3.filepost import encode_multipart_formdata

from .. import codes, replies
from ..message import Message
from .base import INVALID, NOT_FOUND, OK, SERVER_ERROR, UNREACHABLE, Reply
from .files import read_checked

_held = threading.local()
USER_AGENT = "ppt_web"  # requests sent its own; an archive's log should still name who sends


class Pools:
    """This process's and thread's connections to the archive, kept open between messages (keep-alive; a new
    TCP connection per message cost the worker and the archive). urllib3 directly, not a requests session:
    requests looked up the proxy and CA settings in the environment on every message, most of a send's CPU.
    They are looked up once per archive URL here, the way requests reads them (HTTP(S)_PROXY, NO_PROXY,
    REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, else certifi's bundle)."""

    def __init__(self) -> None:
        self.by_url: dict[str, urllib3.PoolManager] = {}

    def for_url(self, url: str) -> urllib3.PoolManager:
        pool = self.by_url.get(url)
        if pool is None:
            ca = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                  or requests.utils.DEFAULT_CA_BUNDLE_PATH)
            proxies = requests.utils.get_environ_proxies(url)
            proxy = proxies.get(url.split(":", 1)[0].lower()) or proxies.get("all")
            pool = urllib3.ProxyManager(proxy, ca_certs=ca) if proxy else urllib3.PoolManager(ca_certs=ca)
            self.by_url[url] = pool
        return pool


def session() -> Pools:
    """This process's and thread's connection pools. Never used across a fork: a work horse makes its own
    (two processes on one socket mix their bytes)."""
    held = getattr(_held, "pools", None)
    if held is None or held[0] != os.getpid():
        held = (os.getpid(), Pools())
        _held.pools = held
    return held[1]


def post(url: str, parts: list[tuple[str, tuple[str, bytes, str]]], headers: dict[str, str],
         timeout: float) -> tuple[int, bytes] | Reply:
    """POST the parts as multipart/form-data (the encoder requests used: same part headers, boundary format):
    (status, body), or the UNREACHABLE reply for a timeout or a connection that failed. Not retried and no
    redirect followed: the job's own retries decide when to try again."""
    body, content_type = encode_multipart_formdata(parts)
    try:
        response = session().for_url(url).request(
            "POST", url, body=body, headers={**headers, "Content-Type": content_type, "User-Agent": USER_AGENT},
            timeout=timeout, retries=False, redirect=False)
    except NewConnectionError:  # (a subclass of urllib3's connect timeout: refused, no route, unknown host)
        return Reply(UNREACHABLE, "fekk ikkje kontakt med arkivet")
    except TimeoutError:
        return Reply(UNREACHABLE, "arkivet svarte ikkje innan tida (tidsavbrot)")
    except HTTPError:  # reset, closed mid-answer, TLS or proxy failure
        return Reply(UNREACHABLE, "fekk ikkje kontakt med arkivet")
    return response.status, response.data


class HttpTransport:
    asynchronous = False

    def __init__(self, url: str, timeout: float = 30.0):
        self.url, self.timeout = url, timeout

    def send(self, message: Message, message_id: str) -> Reply:
        parts = [(message.payload_name, (message.payload_name, message.payload, "application/xml"))]
        for f in message.files:
            parts.append((f.name, (f.filename, read_checked(f), "application/pdf")))
        headers = {"X-Meldingstype": message.meldingstype, "X-Klientmelding-Id": message_id}
        answer = post(self.url, parts, headers, self.timeout)
        return answer if isinstance(answer, Reply) else interpret(*answer)

    def poll(self, message_id: str) -> Reply | None:
        return None

    def query(self, meldingstype: str, payload: bytes) -> Reply:
        """A query message: the same POST with only the payload part; a new klientmelding id each time."""
        name = codes.meldingstype_info(meldingstype)["payloadFilnavn"]
        headers = {"X-Meldingstype": meldingstype, "X-Klientmelding-Id": str(uuid.uuid4())}
        answer = post(self.url, [(name, (name, payload, "application/xml"))], headers, self.timeout)
        return answer if isinstance(answer, Reply) else interpret_query(meldingstype, *answer)


def interpret(status: int, body: bytes) -> Reply:
    """HTTP status to reply kind (docs/decisions.md, "Archive reply mapping"), with the reply's own text."""
    try:
        if status == 200:
            return Reply(OK, ids=replies.parse_kvittering(body) if body.strip() else {})
        if status == 400:
            return Reply(INVALID, "arkivet avviste meldinga: " + replies.parse_feilmelding(body))
        if status == 404:
            return Reply(NOT_FOUND, "arkivet fann ikkje det meldinga viser til: " + replies.parse_feilmelding(body))
        if status >= 500:
            text = replies.parse_feilmelding(body) if body.strip() else f"HTTP {status}"
            return Reply(SERVER_ERROR, f"feil hos arkivet: {text}")
    except replies.ReplyInvalid as exc:
        if status >= 500:
            return Reply(SERVER_ERROR, f"feil hos arkivet (HTTP {status})")
        return Reply(INVALID, f"uventa svar frå arkivet (HTTP {status}): {exc}")
    return Reply(INVALID, f"uventa svar frå arkivet (HTTP {status})")


def interpret_query(meldingstype: str, status: int, body: bytes) -> Reply:
    """A query's reply: OK with a resultat that validates against its XSD, else what the error says."""
    if status != 200:
        return interpret(status, body)
    found = codes.problems(f"{codes.canonical(meldingstype)}.resultat", body)
    if found:
        return Reply(INVALID, f"uventa svar frå arkivet: {codes.summary(found)}")
    return Reply(OK, payload=body)
