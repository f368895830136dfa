"""The Fiks IO consumer against a real RabbitMQ: every reply handled and acknowledged once its handler
returned, a failed one handled again, an unreadable one dropped with a warning, nothing lost when
RabbitMQ restarts, and a prompt stop. Plus the header parsing and payload opening it relies on."""
from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid

import pika
import pytest

from ppt_web.fiksio import amqp, asice
from ppt_web.fiksio.amqp import BadDelivery, Consumer, Received, open_payload, parse
from ppt_web.fiksio.settings import Settings
from ppt_web.inbound import cms
from ppt_web.outbound.svarut import StaticTokenProvider

from .svarinn_server import make_key_and_cert

pytestmark = pytest.mark.one_database  # no database at all

KVITTERING = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett.kvittering"
CALLER = contextvars.ContextVar("caller", default="none")  # stands in for Flask's app context


def fiks_headers(melding_id: str | None = None, **extra: str) -> dict:
    """Headers as Fiks IO sets them on a reply (values as bytes, as RabbitMQ's Java client writes them)."""
    headers = {
        "avsender-id": str(uuid.uuid4()),
        "melding-id": melding_id or str(uuid.uuid4()),
        "type": KVITTERING,
        "svar-til": str(uuid.uuid4()),
        "egendefinert-header.klientMeldingId": str(uuid.uuid4()),
        **extra,
    }
    return {k: v.encode() for k, v in headers.items() if v is not None}


# -- parse and open_payload (no RabbitMQ) ---------------------------------------------------------

def test_parse_reads_fiks_io_headers_as_bytes_or_text():
    """The ids come out as text, UUIDs lower-case; the client ids are read under either name."""
    svar_til = str(uuid.uuid4())
    received = parse({"avsender-id": b"6B3CF5C4-1E36-4C53-8F0E-0D3E9A3C1D11", "melding-id": str(uuid.uuid4()),
                      "type": KVITTERING.encode(), "svar-til": svar_til.upper().encode(),
                      "klientmelding-id": "k-1", "egendefinert-header.klientKorrelasjonId": b"korr",
                      "svar-til-type": b"x", "avsender-navn": "Arkivet"}, b"data", redelivered=True)
    assert received.avsender_id == "6b3cf5c4-1e36-4c53-8f0e-0d3e9a3c1d11"
    assert received.svar_til == svar_til
    assert (received.klient_melding_id, received.klient_korrelasjons_id) == ("k-1", "korr")
    assert received.redelivered and received.has_payload
    assert received.headers["avsender-navn"] == "Arkivet"


def test_parse_prefers_the_names_ks_clients_write():
    received = parse(fiks_headers(**{"egendefinert-header.klientMeldingId": "current", "klientmelding-id": "page",
                                     "egendefinert-header.klientKorrelasjonsId": "new",
                                     "egendefinert-header.klientKorrelasjonId": "old"}), b"")
    assert (received.klient_melding_id, received.klient_korrelasjons_id) == ("current", "new")
    assert not received.has_payload


@pytest.mark.parametrize(("headers", "says"), [
    (fiks_headers(**{"melding-id": ""}), "melding-id is missing"),
    ({k: v for k, v in fiks_headers().items() if k != "avsender-id"}, "avsender-id is missing"),
    ({k: v for k, v in fiks_headers().items() if k != "type"}, "type is missing"),
    (fiks_headers(**{"melding-id": "42"}), "melding-id is not a UUID"),
    (fiks_headers(**{"svar-til": "not-an-id"}), "svar-til is not a UUID"),
    ({**fiks_headers(), "type": b"\xff\xfe"}, "type is not UTF-8"),
    (None, "melding-id is missing"),
])
def test_parse_refuses_a_delivery_without_what_fiks_io_always_sets(headers, says):
    with pytest.raises(BadDelivery, match=says):
        parse(headers, b"")


def test_open_payload_decrypts_the_body_or_the_dokumentlager_copy(monkeypatch):
    """The body, or the download when Fiks IO kept the payload in Dokumentlager, is opened with our key."""
    key, cert = make_key_and_cert("oss")
    monkeypatch.setattr(asice, "read", lambda data, **kw: asice.Container({"zip": data}, None))

    class Client:
        def download(self, dokumentlager_id):
            assert dokumentlager_id == "dl-1"
            return cms.encrypt(b"stored", cert)

    inline = parse(fiks_headers(), cms.encrypt(b"inline", cert))
    kept = parse(fiks_headers(**{"dokumentlager-id": "dl-1"}), b"")
    assert open_payload(inline, Client(), key) == {"zip": b"inline"}  # type: ignore[arg-type]
    assert open_payload(kept, Client(), key) == {"zip": b"stored"}  # type: ignore[arg-type]
    assert open_payload(parse(fiks_headers(), b""), Client(), key) == {}  # type: ignore[arg-type]
    with pytest.raises(cms.CmsError):
        open_payload(parse(fiks_headers(), cms.encrypt(b"x", make_key_and_cert("andre")[1])), Client(), key)  # type: ignore[arg-type]


# -- the consumer against RabbitMQ ----------------------------------------------------------------

class Account:
    """A Fiks IO account's queue on the test node, the integration that may read it, and a consumer."""

    def __init__(self, node, monkeypatch=None):
        self.node = node
        self.id = str(uuid.uuid4())
        self.queue = f"fiksio.konto.{self.id}"
        integration, password, token = str(uuid.uuid4()), "integrasjonspassord", f"token-{uuid.uuid4()}"
        node.allow(integration, f"{password} {token}", queue=self.queue)  # "<password> <Maskinporten token>",
        # and reading its own queue only, as at Fiks IO
        self.settings = Settings(api_url="http://127.0.0.1:9", amqp_url=f"amqp://127.0.0.1:{node.port}",
                                 account_id=self.id, private_key_pem=b"", certificate_pem=b"",
                                 integration_id=integration, integration_password=password,
                                 token_provider=StaticTokenProvider(token))
        with self.channel() as channel:
            channel.queue_declare(self.queue, durable=True)  # as Fiks IO has it ready for the account
        self.handled: list[Received] = []
        self.failures: list[str] = []  # melding ids the handler should fail once
        self.contexts: list[str] = []  # what the handler saw of the context run() was called in
        self.stop = threading.Event()
        self.consumer: Consumer | None = None
        self.thread: threading.Thread | None = None

    def channel(self):
        node = self.node

        class Opened:
            def __enter__(self):
                self.connection = pika.BlockingConnection(pika.URLParameters(node.url))
                channel = self.connection.channel()
                channel.confirm_delivery()
                return channel

            def __exit__(self, *exc):
                self.connection.close()

        return Opened()

    def publish(self, *headers: dict, body: bytes = b"") -> None:
        """As the Fiks IO test server would deliver replies: persistent, into the account's queue."""
        with self.channel() as channel:
            for h in headers:
                channel.basic_publish("", self.queue, body, pika.BasicProperties(headers=h, delivery_mode=2))

    def waiting(self) -> int:
        """Deliveries in the queue not yet acknowledged (once the consumer has stopped)."""
        with self.channel() as channel:
            return channel.queue_declare(self.queue, durable=True, passive=True).method.message_count

    def handle(self, received: Received) -> None:
        self.handled.append(received)
        self.contexts.append(CALLER.get())
        if received.melding_id in self.failures:
            self.failures.remove(received.melding_id)
            raise RuntimeError("the database is away")

    def start(self, handle=None) -> Consumer:
        consumer = self.consumer = Consumer(self.settings, handle or self.handle, name="test")

        def run() -> None:
            CALLER.set("the consumer's caller")
            consumer.run(self.stop)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self.consumer

    def wait_handled(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.handled) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.handled) >= count, f"handled {len(self.handled)} of {count}; refusals {self.node.refusals}"

    def finish(self) -> float:
        """Stop the consumer; how long it took."""
        started = time.monotonic()
        self.stop.set()
        assert self.thread is not None
        self.thread.join(10)
        assert not self.thread.is_alive(), "the consumer did not stop"
        return time.monotonic() - started


@pytest.fixture
def account(rabbitmq_node):
    made = Account(rabbitmq_node)
    yield made
    made.stop.set()
    if made.thread is not None:
        made.thread.join(10)


@pytest.mark.slow
def test_every_delivery_is_handled_once_and_acknowledged(account):
    """Three replies: each reaches the handler once, with Fiks IO's ids (and the context the consumer was
    started in, as a Flask app context would be), and none is left in the queue."""
    replies = [fiks_headers() for _ in range(3)]
    account.publish(*replies, body=b"kryptert")
    consumer = account.start()
    account.wait_handled(3)
    time.sleep(0.3)  # a second delivery of any of them would show now
    assert consumer.connected.is_set()
    account.finish()
    assert [r.melding_id for r in account.handled] == [h["melding-id"].decode() for h in replies]
    assert [r.klient_melding_id for r in account.handled] == [
        h["egendefinert-header.klientMeldingId"].decode() for h in replies]
    assert all(r.body == b"kryptert" and not r.redelivered for r in account.handled)
    assert account.contexts == ["the consumer's caller"] * 3
    assert account.waiting() == 0


@pytest.mark.slow
def test_a_failed_handler_gets_the_delivery_again_and_nothing_is_lost(account, caplog):
    """The handler raises on the first reply once: it is handled again (redelivered) after a pause, then
    acknowledged; the reply behind it is handled too."""
    first, second = fiks_headers(), fiks_headers()
    account.failures.append(first["melding-id"].decode())
    account.publish(first, second)
    with caplog.at_level(logging.ERROR, logger="ppt_web.fiksio.amqp"):
        account.start()
        account.wait_handled(3)
        time.sleep(0.3)
    account.finish()
    ids = [(r.melding_id, r.redelivered) for r in account.handled]
    assert ids[0] == (first["melding-id"].decode(), False)
    assert (first["melding-id"].decode(), True) in ids[1:]
    assert (second["melding-id"].decode(), False) in ids[1:]
    assert len(ids) == 3
    assert any("handled again in 1 s" in r.getMessage() for r in caplog.records)
    assert account.waiting() == 0


@pytest.mark.slow
def test_a_delivery_without_melding_id_is_dropped_with_a_warning(account, caplog):
    """Nobody could ever handle it: it is acknowledged, the handler never sees it, the next one goes on."""
    broken = {k: v for k, v in fiks_headers().items() if k != "melding-id"}
    good = fiks_headers()
    account.publish(broken, good)
    with caplog.at_level(logging.WARNING, logger="ppt_web.fiksio.amqp"):
        account.start()
        account.wait_handled(1)
        time.sleep(0.3)
    account.finish()
    assert [r.melding_id for r in account.handled] == [good["melding-id"].decode()]
    assert any("cannot be read and is dropped: header melding-id is missing" in r.getMessage()
               for r in caplog.records)
    assert account.waiting() == 0


@pytest.mark.slow
def test_the_consumer_comes_back_by_itself_after_rabbitmq_restarts(account, rabbitmq_node, monkeypatch, caplog):
    """RabbitMQ stops while a reply is being handled and two wait: after it is back, the consumer
    reconnects by itself and handles them all; the one whose ack was lost comes again, redelivered."""
    monkeypatch.setattr(amqp, "LONGEST_PAUSE", 2.0)  # retry often: the node is back within seconds
    replies = [fiks_headers() for _ in range(3)]
    account.publish(*replies)
    inside, release = threading.Event(), threading.Event()

    def handle(received: Received) -> None:
        account.handled.append(received)
        if len(account.handled) == 1:
            inside.set()
            release.wait(30)

    with caplog.at_level(logging.INFO, logger="ppt_web.fiksio.amqp"):
        consumer = account.start(handle)
        assert inside.wait(15)
        rabbitmq_node.stop()
        try:  # the node is the whole run's: it comes back whatever this test finds
            release.set()
            deadline = time.monotonic() + 10
            while consumer.connected.is_set() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not consumer.connected.is_set()
        finally:
            rabbitmq_node.start()
        account.wait_handled(4, timeout=30)
        time.sleep(0.3)
    assert consumer.connected.is_set()
    account.finish()
    first = replies[0]["melding-id"].decode()
    assert [(r.melding_id, r.redelivered) for r in account.handled][:2] == [(first, False), (first, True)]
    assert {r.melding_id for r in account.handled} == {h["melding-id"].decode() for h in replies}
    assert len(account.handled) == 4
    messages = [r.getMessage() for r in caplog.records]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "no connection to" in warnings[0]  # once per outage, not per attempt
    assert any("consuming " + account.queue + " again" in m for m in messages)
    assert account.waiting() == 0


@pytest.mark.slow
def test_stop_returns_promptly_and_gives_prefetched_deliveries_back(account):
    """Stopped while idle, it returns within two seconds; a delivery it held goes back to the queue."""
    consumer = account.start()
    deadline = time.monotonic() + 10
    while not consumer.connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert consumer.connected.is_set()
    assert account.finish() < 2
    assert not consumer.connected.is_set()


@pytest.mark.slow
def test_a_refused_login_is_logged_once_with_what_to_check(account, rabbitmq_node, caplog):
    """A wrong integration password: the consumer keeps trying (at most once per 2 s) and says so once."""
    from dataclasses import replace

    account.settings = replace(account.settings, integration_password="feil")
    with caplog.at_level(logging.DEBUG, logger="ppt_web.fiksio.amqp"):
        consumer = account.start()
        started = time.monotonic()

        def refused() -> list:
            return [u for u, _ in rabbitmq_node.refusals if u == account.settings.integration_id]
        while len(refused()) < 2 and time.monotonic() - started < 15:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        took = account.finish()
    assert not consumer.connected.is_set() and took < 2
    assert 2 <= len(refused()) <= 1 + elapsed / 2  # tried again, but at most once per 2 s
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and account.settings.queue in r.getMessage()]  # this consumer's, not a finishing neighbour's
    assert len(warnings) == 1, warnings
    assert f"refused the login of integration {account.settings.integration_id}" in warnings[0], warnings[0]
    assert "integrasjonspassord" not in caplog.text and "feil " not in caplog.text


@pytest.mark.slow
def test_a_missing_queue_is_named_in_the_log(account, caplog):
    """Our account id wrong (no such queue): the log says which queue and what to check."""
    from dataclasses import replace

    account.settings = replace(account.settings, account_id=str(uuid.uuid4()))
    account.node.queues[account.settings.integration_id] = account.settings.queue  # may read it, were it there
    with caplog.at_level(logging.WARNING, logger="ppt_web.fiksio.amqp"):
        consumer = account.start()
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.02)
        account.finish()
    assert not consumer.connected.is_set()
    assert f"queue {account.settings.queue} does not exist: check our Fiks IO account id" in caplog.text


@pytest.mark.slow
def test_another_accounts_queue_is_refused_and_named_in_the_log(account, rabbitmq_node, caplog):
    """Pointed at a queue that is not our account's (a wrong account id that happens to exist): Fiks IO
    lets an integration read its own queue only, and the log says which queue it may not read."""
    from dataclasses import replace

    other = Account(rabbitmq_node)
    account.settings = replace(account.settings, account_id=other.id)
    with caplog.at_level(logging.WARNING, logger="ppt_web.fiksio.amqp"):
        consumer = account.start()
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.02)
        account.finish()
    assert not consumer.connected.is_set()
    assert f"may not read queue {other.queue}" in caplog.text
