"""One whole Fiks IO chain on this machine, for the tests that run it with real processes.

    chain = Chain(rabbitmq_node, folder)   # two accounts (the app's, the archive's), their keys and
                                           # integrations, a Maskinporten stand-in, the strict test server
    app.config.update(chain.app_config())  # the test app sends and reads as the app's account
    chain.start_participant(root)          # the reference archive answering on the archive's queue
    worker = chain.start_worker(app, log)  # a real worker.py (PPT_ARCHIVE_BACKEND=fiksio), its own group
    ...
    chain.close()

RabbitMQ logins work as at Fiks IO: the integration id, with "<integration password> <Maskinporten token>"
as the password; the node's login service checks both. The test server is tests/fiksio_server.py with two
holds a fault test needs (ChainServer). `python -m tests.fiksio_chain consume-until-kvittering` is a
consumer of the app's queue that dies (SIGKILL) right after it has applied the first kvittering, before
its acknowledgement: the settings come from the worker environment (PPT_*).
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pika
import pika.exceptions

from ppt_web.fiksio.settings import QUEUE_PREFIX, Settings
from ppt_web.outbound.svarut import LocalJwtTokenProvider

from .fiksio_server import FiksIoTestServer, Published
from .helpers import ROOT, worker_env
from .svarinn_server import make_key_and_cert
from .svarut_server import RequestError, _public_key, make_token_keys, verify_jwt

ORG = "974760673"  # the municipality's organisation number in the Maskinporten stand-in's tokens
TOKEN_PROVIDER = "tests.svarut_tokens:provider"  # what a worker process loads (PPT_TEST_SVARUT_TOKEN_KEY)
KVITTERING = ".kvittering"
LOCK_KEY = "ppt:fiksio:consumer-lock:"  # the worker's consumer lock (ppt_web/archive/fiksio.py), + account


@dataclass(frozen=True)
class Party:
    """A Fiks IO account with its key pair (files too, as the settings name paths) and its integration."""

    name: str
    account_id: str
    integration_id: str
    password: str
    key_pem: bytes
    certificate_pem: bytes
    key_path: Path
    certificate_path: Path

    @classmethod
    def new(cls, name: str, folder: Path) -> Party:
        key_pem, certificate_pem = make_key_and_cert(f"{name} fiks io")
        key_path, certificate_path = folder / f"{name}.key.pem", folder / f"{name}.cert.pem"
        key_path.write_bytes(key_pem)
        certificate_path.write_bytes(certificate_pem)
        return cls(name, str(uuid.uuid4()), str(uuid.uuid4()), f"{name}-passord-{uuid.uuid4().hex[:8]}", key_pem,
                   certificate_pem, key_path, certificate_path)

    @property
    def queue(self) -> str:
        return QUEUE_PREFIX + self.account_id


class ChainServer(FiksIoTestServer):
    """The strict test server with two holds for the fault tests (neither is part of Fiks IO):

    hold_answers(): a send is taken and published as usual, but its 202 waits until release_answers(),
    so the sender is stuck between the send and learning Fiks IO's message id (`.holding` is set while
    one waits). kvittering_delay: seconds a kvittering waits before it is published, so the sender's
    log shows the mottatt a while before the kvittering."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kvittering_delay = 0.0
        self.holding = threading.Event()
        self._gate: threading.Event | None = None

    def hold_answers(self) -> None:
        self.holding.clear()
        self._gate = threading.Event()

    def release_answers(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    def _send(self, headers, body: bytes) -> tuple[int, dict]:
        answer = super()._send(headers, body)
        gate = self._gate
        if gate is not None:
            self.holding.set()
            gate.wait(120)
        return answer

    def _publish(self, message: Published) -> None:
        if self.kvittering_delay and message.headers.get("type", "").endswith(KVITTERING):
            time.sleep(self.kvittering_delay)
        super()._publish(message)

    def sends_of(self, klient_melding_id: str) -> list[dict]:
        """The accepted sends that carried this klientMeldingId, oldest first."""
        with self.lock:
            return [s for s in self.sent if (s["metadata"].get("headere") or {}).get("klientMeldingId")
                    == klient_melding_id]


class Chain:
    """The parts of one chain that outlive a test: keys, accounts, the test server, RabbitMQ logins."""

    def __init__(self, node, folder: Path):
        self.node = node
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        token_private, token_public = make_token_keys()
        self.token_key_path = self.folder / "maskinporten-stand-in.key.pem"
        self.token_key_path.write_bytes(token_private)
        self.token_public = _public_key(token_public)
        self.app_party = Party.new("ppt", self.folder)
        self.archive_party = Party.new("arkiv", self.folder)
        self.server = ChainServer(node.url, token_public, consumer_org=ORG)
        self.server.start()
        for party in (self.app_party, self.archive_party):
            self.server.add_account(party.account_id, party.certificate_pem, party.key_pem, party.integration_id,
                                    party.password, name=party.name)
            node.allow(party.integration_id, self._login(party), queue=party.queue)
        self._participant: tuple[threading.Thread, threading.Event] | None = None

    @property
    def amqp_url(self) -> str:
        """Fiks IO's broker as the settings name it: the host and port; the login is the integration's."""
        return f"amqp://127.0.0.1:{self.node.port}"

    def _login(self, party: Party) -> Callable[[str], str | None]:
        def check(password: str) -> str | None:
            given, _, token = password.partition(" ")
            if given != party.password:
                return "wrong integration password"
            try:
                verify_jwt(token, self.token_public, consumer_org=ORG)
            except RequestError as exc:
                return f"token: {exc.message}"
            return None
        return check

    def settings(self, party: Party) -> Settings:
        return Settings(api_url=self.server.url, amqp_url=self.amqp_url, account_id=party.account_id,
                        private_key_pem=party.key_pem, certificate_pem=party.certificate_pem,
                        integration_id=party.integration_id, integration_password=party.password,
                        token_provider=LocalJwtTokenProvider(self.token_key_path.read_bytes(), ORG))

    # -- the app -----------------------------------------------------------------------------------

    def app_config(self) -> dict:
        """The test app's settings for PPT_ARCHIVE_BACKEND=fiksio (the token provider as an object: the
        test process has no PPT_* environment)."""
        party = self.app_party
        return {"PPT_ARCHIVE_BACKEND": "fiksio", "PPT_FIKSIO_API_URL": self.server.url,
                "PPT_FIKSIO_AMQP_URL": self.amqp_url, "PPT_FIKSIO_ACCOUNT_ID": party.account_id,
                "PPT_FIKSIO_ARCHIVE_ACCOUNT_ID": self.archive_party.account_id,
                "PPT_FIKSIO_PRIVATE_KEY": str(party.key_path), "PPT_FIKSIO_CERTIFICATE": str(party.certificate_path),
                "PPT_FIKSIO_INTEGRATION_ID": party.integration_id, "PPT_FIKSIO_INTEGRATION_PASSWORD": party.password,
                "PPT_FIKSIO_TOKEN_PROVIDER": LocalJwtTokenProvider(self.token_key_path.read_bytes(), ORG)}

    def worker_env(self, app, **extra) -> dict:
        """A worker process's environment: the test app's database, Redis and queue, and the same Fiks IO
        settings, with the token provider loaded by name."""
        config = {**self.app_config(), "PPT_FIKSIO_TOKEN_PROVIDER": TOKEN_PROVIDER}
        return {**worker_env(app), **{key: str(value) for key, value in config.items()},
                "PPT_TEST_SVARUT_TOKEN_KEY": str(self.token_key_path), "PPT_TEST_SVARUT_ORG": ORG,
                **{key: str(value) for key, value in extra.items()}}

    @staticmethod
    def start_worker(env: dict, log: Path, *args: str) -> subprocess.Popen:
        """worker.py in a process group of its own (its work horses get their own)."""
        with log.open("a") as out:
            return subprocess.Popen([sys.executable, str(ROOT / "worker.py"), *args], env=env, cwd=ROOT,
                                    start_new_session=True, stdout=out, stderr=subprocess.STDOUT)

    @staticmethod
    def stop_worker(worker: subprocess.Popen) -> None:
        """SIGTERM to its group, SIGKILL after 30 s; then any work horse it left (a horse has a group of
        its own, so a stuck one would outlive the test)."""
        horses = _children(worker.pid)
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
        for pid in horses:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @staticmethod
    def start_consumer_script(env: dict, log: Path) -> subprocess.Popen:
        """The consumer that dies after its first kvittering (see the module's docstring)."""
        with log.open("a") as out:
            return subprocess.Popen([sys.executable, "-m", "tests.fiksio_chain", "consume-until-kvittering"],
                                    env=env, cwd=ROOT, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)

    # -- the archive -------------------------------------------------------------------------------

    def start_participant(self, root: Path) -> None:
        """The reference archive as a Fiks IO participant, in a thread of the test process, until
        stop_participant()."""
        from ppt_web.archive.reference.fiksio import serve

        assert self._participant is None, "the participant runs already"
        stop = threading.Event()
        thread = threading.Thread(target=serve, args=(root, self.settings(self.archive_party), stop),
                                  kwargs={"echo": lambda line: None}, daemon=True, name="reference-archive")
        thread.start()
        self._participant = (thread, stop)

    def stop_participant(self) -> None:
        if self._participant is not None:
            thread, stop = self._participant
            stop.set()
            thread.join(20)
            assert not thread.is_alive(), "the reference archive's consumer did not stop"
            self._participant = None

    # -- RabbitMQ as the guest sees it -------------------------------------------------------------

    def _channel_call(self, action):
        connection = pika.BlockingConnection(pika.URLParameters(self.node.url))
        try:
            return action(connection.channel())
        finally:
            connection.close()

    def depth(self, party: Party) -> int:
        """Messages ready in an account's queue (not those delivered and not yet acknowledged)."""
        return self._channel_call(lambda ch: ch.queue_declare(party.queue, passive=True).method.message_count)

    def consumers(self, party: Party) -> int:
        return self._channel_call(lambda ch: ch.queue_declare(party.queue, passive=True).method.consumer_count)

    def purge(self) -> None:
        for party in (self.app_party, self.archive_party):
            self._channel_call(lambda ch, q=party.queue: ch.queue_purge(q))

    def reset(self) -> None:
        """Between tests: both queues empty, the server's records cleared, no hold."""
        self.stop_participant()
        self.server.release_answers()
        self.server.kvittering_delay = 0.0
        self.purge()
        with self.server.lock:
            self.server.sent.clear()
            self.server.published.clear()
            self.server.failures.clear()
            self.server.requests.clear()

    def close(self) -> None:
        self.stop_participant()
        self.server.release_answers()
        self.server.stop()


def _children(pid: int) -> list[int]:
    """The live child processes of pid (Linux /proc; [] elsewhere)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def archive_counts(root: Path) -> dict:
    """What the reference archive holds: messages taken (one per klientMeldingId), and how many times
    each folder and post key and each post's documents are there."""
    conn = sqlite3.connect(Path(root) / "arkiv.sqlite3")
    conn.row_factory = sqlite3.Row
    try:
        return {
            "messages": conn.execute("SELECT count(*) FROM message").fetchone()[0],
            "folders": {r["noekkel"]: dict(r) for r in conn.execute(
                "SELECT noekkel, count(*) n, max(saksaar) y, max(sakssekvensnummer) q FROM folder GROUP BY noekkel")},
            "posts": {r["noekkel"]: dict(r) for r in conn.execute(
                "SELECT noekkel, count(*) n, max(journalpostnummer) jp FROM post GROUP BY noekkel")},
            "documents": {r["noekkel"]: r["n"] for r in conn.execute(
                "SELECT p.noekkel, count(d.id) n FROM post p LEFT JOIN document d ON d.post_id = p.id "
                "GROUP BY p.id")},
        }
    finally:
        conn.close()


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 0.1,
             explain: Callable[[], str] | None = None):
    """check()'s first true value within timeout seconds; else AssertionError naming what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}" + (f"\n{explain()}" if explain else ""))
        time.sleep(every)


def _consume_until_kvittering() -> None:
    """Apply deliveries as the worker's consumer does; right after the first kvittering is applied
    (committed), die before acknowledging it. Each delivery is printed: type, redelivered."""
    from ppt_web import create_app
    from ppt_web.archive.fiksio import app_handler
    from ppt_web.fiksio.amqp import Consumer, Received
    from ppt_web.fiksio.settings import from_config

    app = create_app()
    apply = app_handler(app)

    def handle(received: Received) -> None:
        print(f"delivery {received.meldingstype} redelivered={received.redelivered}", flush=True)
        apply(received)
        if received.meldingstype.endswith(KVITTERING):
            print("applied a kvittering; dying before the ack", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    Consumer(from_config(app.config), handle, name="dies after commit").run(threading.Event())


if __name__ == "__main__":
    if sys.argv[1:] != ["consume-until-kvittering"]:
        raise SystemExit("usage: python -m tests.fiksio_chain consume-until-kvittering")
    _consume_until_kvittering()
