"""The receiving side of Fiks IO: one long-lived AMQP consumer of the account's queue.

A delivery is acknowledged only after the handler returned (its effect committed); a handler that
raises leaves it unacknowledged, and after a pause it goes back to the queue and is handled again.
Deliveries that cannot be read at all (no melding-id, say) are logged and acknowledged: nobody could
ever handle them.
"""
from __future__ import annotations

import contextvars
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from itertools import chain
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ..forking import gate
from ..inbound import cms
from . import asice
from .client import FiksIoClient
from .settings import Settings

log = logging.getLogger(__name__)

PREFETCH = 10
HEARTBEAT = 30  # seconds; the handler runs beside the connection, so a slow one does not miss heartbeats
FIRST_PAUSE, LONGEST_PAUSE = 1.0, 30.0  # back-off, doubling, after a failed connection or handler
MIN_ATTEMPT_INTERVAL = 2.0  # at most one connection attempt per 2 s, as KS's .NET client limits itself
STEP = 0.5  # how often the consumer looks at its stop event while idle
SERVE_EVERY = 1.0  # while a handler runs, how often the connection is served (heartbeats)

# Header names on a delivery, as Fiks IO sets them.
AVSENDER_ID, MELDING_ID, MELDINGSTYPE = "avsender-id", "melding-id", "type"
SVAR_TIL, SVAR_TIL_TYPE, DOKUMENTLAGER_ID = "svar-til", "svar-til-type", "dokumentlager-id"
CUSTOM_PREFIX = "egendefinert-header."
# The client ids, current name first: KS's clients write the custom-header form; KS's web page names
# the first klientmelding-id, and older clients spelt the second klientKorrelasjonId.
KLIENT_MELDING_ID = (CUSTOM_PREFIX + "klientMeldingId", "klientmelding-id")
KLIENT_KORRELASJONS_ID = (CUSTOM_PREFIX + "klientKorrelasjonsId", CUSTOM_PREFIX + "klientKorrelasjonId")


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
    KS's web page names it) are both read.

    The ids Fiks IO assigns (melding-id, avsender-id, svar-til) must be UUIDs, as KS's clients require;
    they come back lower-case, the form Fiks IO's send answer uses."""
    raw = headers or {}
    if not isinstance(raw, dict):
        raise BadDelivery(f"the headers are not a table ({type(raw).__name__})")
    decoded: dict[str, str] = {}
    broken: set[str] = set()
    for name, value in raw.items():
        text = _header_text(value)
        if text is None:
            broken.add(str(name))
            text = bytes(value).decode("utf-8", errors="replace")
        decoded[str(name)] = text

    def required(name: str) -> str:
        if name in broken:
            raise BadDelivery(f"header {name} is not UTF-8")
        value = decoded.get(name, "").strip()
        if not value:
            raise BadDelivery(f"header {name} is missing")
        return value

    def optional(*names: str) -> str | None:
        for name in names:
            value = decoded.get(name, "").strip()
            if value and name not in broken:
                return value
        return None

    melding_id = _uuid(MELDING_ID, required(MELDING_ID))
    avsender_id = _uuid(AVSENDER_ID, required(AVSENDER_ID))
    meldingstype = required(MELDINGSTYPE)
    svar_til = optional(SVAR_TIL)
    return Received(
        melding_id=melding_id,
        meldingstype=meldingstype,
        avsender_id=avsender_id,
        svar_til=_uuid(SVAR_TIL, svar_til) if svar_til else None,
        svar_til_type=optional(SVAR_TIL_TYPE),
        klient_melding_id=optional(*KLIENT_MELDING_ID),
        klient_korrelasjons_id=optional(*KLIENT_KORRELASJONS_ID),
        dokumentlager_id=optional(DOKUMENTLAGER_ID),
        redelivered=bool(redelivered),
        body=bytes(body or b""),
        headers=decoded,
    )


def _header_text(value: object) -> str | None:
    """A header value as text; None for bytes that are not UTF-8."""
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if value is None:
        return ""
    return str(value)


def _uuid(name: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadDelivery(f"header {name} is not a UUID: {_short(value)}") from None


def _short(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def open_payload(received: Received, client: FiksIoClient, private_key_pem: bytes) -> dict[str, bytes]:
    """The payload files of a delivery (downloaded from Dokumentlager if it was kept there, decrypted
    with our key, the ASiC-E checked); {} when it has none. Raises AsiceError / CmsError / FiksIoError."""
    if not received.has_payload:
        return {}
    envelope = client.download(received.dokumentlager_id) if received.dokumentlager_id else received.body
    return asice.read(cms.decrypt(envelope, private_key_pem)).files


class _Lost(Exception):
    """The consumer lost its connection, channel or subscription; the text says why (English, for the log)."""


class Consumer:
    """consume(stop) until stop is set: connect (username the integration id, password the integration
    password, a space and a Maskinporten token), prefetch PREFETCH, consume settings.queue with manual
    acknowledgement, and reconnect with back-off when the connection drops.

    The handler runs on one helper thread of its own (with the context variables, so the Flask app context,
    of the thread that called run), while this thread keeps the connection alive; deliveries are handled
    one at a time, in the order they arrive. A delivery is acknowledged once the handler returned. When the
    handler raises, the delivery is held unacknowledged for a pause (1 s, doubling to 30 s while failures
    go on), then given back to the queue and handled again when it comes back (redelivered).

    Fiks IO counts the deliveries a receiver does not acknowledge: after three, the message goes to a
    dead-letter queue and its sender gets a serverfeil. So a handler whose failure is ours and passing (the
    database down, say) should retry inside itself until it succeeds, and raise only for what retrying
    cannot cure soon; and it must be idempotent, since a delivery whose ack was lost comes again.
    """

    def __init__(self, settings: Settings, handle: Callable[[Received], None], *, name: str = "ppt_web"):
        self.settings, self.handle, self.name = settings, handle, name
        self.connected = threading.Event()  # set while consuming (tests, /readyz)
        self._last_attempt = float("-inf")

    def run(self, stop: threading.Event) -> None:
        queue = self.settings.queue
        _quiet_pika()
        context = contextvars.copy_context()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fiksio-handler")
        failures = 0  # connections in a row that failed or soon dropped
        down: tuple[float, str] | None = None  # since when, and the reason logged, while there is no connection
        try:
            while not stop.is_set():
                pause = min(FIRST_PAUSE * 2 ** (failures - 1), LONGEST_PAUSE) if failures else 0.0
                if not self._wait_for_attempt(stop, pause):
                    break
                connection: BlockingConnection | None = None
                up_since: float | None = None
                try:
                    connection = self._connect()
                    channel = connection.channel()
                    channel.basic_qos(prefetch_count=PREFETCH)
                    deliveries = channel.consume(queue, auto_ack=False, inactivity_timeout=STEP)
                    first = next(deliveries)  # subscribes (a missing or forbidden queue raises here)
                    self.connected.set()
                    if down is None:
                        log.info("Fiks IO: consuming %s at %s", queue, self._where())
                    else:
                        log.info("Fiks IO: consuming %s again, after %.0f s without a connection",
                                 queue, time.monotonic() - down[0])
                    up_since, down = time.monotonic(), None
                    self._consume(connection, channel, chain([first], deliveries), stop,
                                  lambda job: pool.submit(context.run, job))
                except Exception as exc:  # noqa: BLE001  (whatever it was, the consumer must go on)
                    self.connected.clear()
                    reason = self._reason(exc)
                    if down is None:
                        log.warning("Fiks IO: no connection to %s for %s: %s; trying again until it comes back",
                                    self._where(), queue, reason, exc_info=not _expected(exc))
                        down = (time.monotonic(), reason)
                    elif reason != down[1]:  # the same outage: no second warning, but the news
                        log.info("Fiks IO: still no connection to %s: %s", self._where(), reason)
                        down = (down[0], reason)
                    else:
                        log.debug("Fiks IO: still no connection to %s: %s", self._where(), reason)
                    if up_since is not None and time.monotonic() - up_since >= LONGEST_PAUSE:
                        failures = 0  # it had been fine for a while: this outage starts with a short pause
                    failures += 1
                finally:
                    self.connected.clear()
                    if connection is not None:
                        _close(connection)
        finally:
            pool.shutdown(wait=True)
            self.connected.clear()
        log.info("Fiks IO: stopped consuming %s", queue)

    def _consume(self, connection: BlockingConnection, channel: BlockingChannel, deliveries,
                 stop: threading.Event, submit: Callable[[Callable[[], None]], Future]) -> None:
        """Handle deliveries until stop is set (then cancel: what is prefetched goes back to the queue)."""
        failures = 0
        for method, properties, body in deliveries:
            if stop.is_set():
                break
            if method is None:
                continue  # nothing came for a moment: look at stop again
            tag = method.delivery_tag
            try:
                received = parse(properties.headers, body, method.redelivered)
            except BadDelivery as exc:
                melding_id = _header_text((properties.headers or {}).get(MELDING_ID)) or "(none)"
                log.warning("Fiks IO: delivery melding-id %s on %s cannot be read and is dropped: %s",
                            _short(melding_id), self.settings.queue, exc)
                channel.basic_ack(tag)
                continue
            error = self._handle(connection, received, submit)
            if error is None:
                channel.basic_ack(tag)
                failures = 0
                continue
            pause = min(FIRST_PAUSE * 2 ** failures, LONGEST_PAUSE)
            failures += 1
            log.error("Fiks IO: handling melding-id %s (%s) failed; it is handled again in %.0f s",
                      received.melding_id, received.meldingstype, pause, exc_info=error)
            deadline = time.monotonic() + pause
            while not stop.is_set() and time.monotonic() < deadline:
                connection.process_data_events(time_limit=min(STEP, max(deadline - time.monotonic(), 0)))
            channel.basic_nack(tag, requeue=True)
        if channel.is_open:
            channel.cancel()
        if not stop.is_set():
            raise _Lost("RabbitMQ cancelled our subscription (the queue was deleted?)")

    def _handle(self, connection: BlockingConnection, received: Received,
                submit: Callable[[Callable[[], None]], Future]) -> BaseException | None:
        """Run the handler on its thread while this one serves the connection; the exception it raised."""
        future = submit(lambda: self.handle(received))
        try:
            # Wait on the handler, not on the socket (process_data_events would sit out its whole
            # time_limit when no frame comes: ~0.2 s a delivery); serve the connection every second.
            while not wait_for([future], timeout=SERVE_EVERY).done:
                connection.process_data_events(time_limit=0)
        except BaseException:
            wait_for([future])  # its effect may commit; the delivery comes again, unacknowledged
            raise
        return future.exception()

    def _wait_for_attempt(self, stop: threading.Event, pause: float) -> bool:
        """Sleep the back-off, and at least until MIN_ATTEMPT_INTERVAL after the last attempt; False if stopped."""
        wait = max(pause, self._last_attempt + MIN_ATTEMPT_INTERVAL - time.monotonic(), 0.0)
        if stop.wait(wait):
            return False
        self._last_attempt = time.monotonic()
        return True

    def _connect(self) -> BlockingConnection:
        settings = self.settings
        url = urlsplit(settings.amqp_url)
        if url.scheme not in ("amqp", "amqps") or not url.hostname:
            raise _Lost(f"the AMQP address {settings.amqp_url!r} is not amqps://host[:port]")
        try:
            with gate.busy():  # a work horse forked meanwhile would inherit the provider's lock held
                token = settings.token_provider.token()
        except Exception as exc:  # noqa: BLE001  (the provider's own errors vary)
            raise _Lost(f"no Maskinporten token: {exc}") from exc
        ssl_options = None
        if url.scheme == "amqps":
            ssl_options = pika.SSLOptions(ssl.create_default_context(), server_hostname=url.hostname)
        parameters = pika.ConnectionParameters(
            host=url.hostname,
            port=url.port or (5671 if url.scheme == "amqps" else 5672),
            virtual_host=unquote(url.path[1:]) if len(url.path) > 1 else "/",
            credentials=pika.PlainCredentials(settings.integration_id, f"{settings.integration_password} {token}",
                                              erase_on_connect=True),
            ssl_options=ssl_options,
            heartbeat=HEARTBEAT,
            connection_attempts=1,
            socket_timeout=10,
            blocked_connection_timeout=60,
            client_properties={"connection_name": f"ppt_web Fiks IO ({self.name})"},
        )
        return pika.BlockingConnection(parameters)

    def _where(self) -> str:
        url = urlsplit(self.settings.amqp_url)
        return f"{url.hostname}:{url.port or (5671 if url.scheme == 'amqps' else 5672)}"

    def _reason(self, exc: BaseException) -> str:
        """What went wrong, in words an operator can act on."""
        settings = self.settings
        if isinstance(exc, _Lost):
            return str(exc)
        if isinstance(exc, pika.exceptions.ProbableAuthenticationError | pika.exceptions.ProbableAccessDeniedError):
            return (f"RabbitMQ refused the login of integration {settings.integration_id}: check the integration "
                    "id and password and that the Maskinporten token is for scope ks:fiks")
        if isinstance(exc, pika.exceptions.ChannelClosedByBroker):
            if exc.reply_code == 404:
                return f"queue {settings.queue} does not exist: check our Fiks IO account id"
            if exc.reply_code == 403:
                return f"integration {settings.integration_id} may not read queue {settings.queue}"
            return f"RabbitMQ closed the channel ({exc.reply_code} {exc.reply_text})"
        if isinstance(exc, pika.exceptions.ConnectionClosedByBroker):
            return f"RabbitMQ closed the connection ({exc.reply_code} {exc.reply_text})"
        if isinstance(exc, pika.exceptions.AMQPConnectionError) and exc.args:
            inner = exc.args[0]
            return f"cannot connect ({inner!r})" if not isinstance(inner, str) else f"cannot connect ({inner})"
        return f"{type(exc).__name__}: {exc}"


def _quiet_pika() -> None:
    """pika logs each failed connection attempt at ERROR with a traceback; the consumer itself says what
    matters, once per outage. A level an operator set for pika's logger stays."""
    pika_log = logging.getLogger("pika")
    if pika_log.level == logging.NOTSET:
        pika_log.setLevel(logging.CRITICAL)


def _expected(exc: BaseException) -> bool:
    """Connection trouble (no traceback in the log) rather than a fault in our code."""
    return isinstance(exc, _Lost | pika.exceptions.AMQPError | OSError)


def _close(connection: BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except Exception:  # noqa: BLE001  (it is going away anyway)
        log.debug("Fiks IO: closing the connection failed", exc_info=True)
