"""The http transport: one POST per job to a Fiks Arkiv endpoint (docs/decisions.md, "Archive transport contracts")."""
from __future__ import annotations

import os
import threading
import uuid

import requests

from .. import codes, replies
from ..message import Message
from .base import INVALID, NOT_FOUND, OK, SERVER_ERROR, UNREACHABLE, Reply
from .files import read_checked

_held = threading.local()


def session() -> requests.Session:
    """This process's and thread's HTTP session: its connection to the archive kept open between messages
    (keep-alive; a new TCP connection per message cost the worker and the archive). Never used across a
    fork: a work horse makes its own."""
    held = getattr(_held, "session", None)
    if held is None or held[0] != os.getpid():
        held = (os.getpid(), requests.Session())
        _held.session = held
    return held[1]


class HttpTransport:
    asynchronous = False

    def __init__(self, url: str, timeout: float = 30.0):
        self.url, self.timeout = url, timeout

    def send(self, message: Message, message_id: str) -> Reply:
        parts = [(message.payload_name, (message.payload_name, message.payload, "application/xml"))]
        for f in message.files:
            parts.append((f.name, (f.filename, read_checked(f), "application/pdf")))
        headers = {"X-Meldingstype": message.meldingstype, "X-Klientmelding-Id": message_id}
        try:
            response = session().post(self.url, files=parts, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            return Reply(UNREACHABLE, "arkivet svarte ikkje innan tida (tidsavbrot)")
        except requests.ConnectionError:
            return Reply(UNREACHABLE, "fekk ikkje kontakt med arkivet")
        return interpret(response.status_code, response.content)

    def poll(self, message_id: str) -> Reply | None:
        return None

    def query(self, meldingstype: str, payload: bytes) -> Reply:
        """A query message: the same POST with only the payload part; a new klientmelding id each time."""
        name = codes.meldingstype_info(meldingstype)["payloadFilnavn"]
        headers = {"X-Meldingstype": meldingstype, "X-Klientmelding-Id": str(uuid.uuid4())}
        try:
            response = session().post(self.url, files=[(name, (name, payload, "application/xml"))], headers=headers,
                                     timeout=self.timeout)
        except requests.Timeout:
            return Reply(UNREACHABLE, "arkivet svarte ikkje innan tida (tidsavbrot)")
        except requests.ConnectionError:
            return Reply(UNREACHABLE, "fekk ikkje kontakt med arkivet")
        return interpret_query(meldingstype, response.status_code, response.content)


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
