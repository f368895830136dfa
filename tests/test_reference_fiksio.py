"""The reference archive as a Fiks IO participant: what it answers to each kind of message (mottatt, then the
kvittering, resultat or feilmelding, each to the sender and in reply to its melding-id), what it leaves
unanswered, when a delivery must come again, and the settings its command line needs; then the whole chain
on one machine: a real RabbitMQ, the strict Fiks IO test server, the participant consuming its queue."""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest

from ppt_web.archive import replies
from ppt_web.archive.reference import ReferenceArchive
from ppt_web.archive.reference import __main__ as reference_main
from ppt_web.archive.reference import fiksio as participant
from ppt_web.fiksio.amqp import Consumer, Received, open_payload
from ppt_web.fiksio.asice import AsiceError
from ppt_web.fiksio.client import FiksIoClient, FiksIoError, Sent
from ppt_web.fiksio.settings import Settings, SettingsError
from ppt_web.inbound.cms import CmsError
from ppt_web.outbound.svarut import LocalJwtTokenProvider, StaticTokenProvider

from .fiksio_server import FiksIoTestServer
from .svarinn_server import make_key_and_cert
from .svarut_server import RequestError, _public_key, verify_jwt
from .test_reference_archive import folder_xml, hent, post_xml, write_off

pytestmark = pytest.mark.one_database

OPPRETT = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett"
AVSKRIVNING = "no.ks.fiks.arkiv.v1.arkivering.avskrivning.opprett"
MAPPE_HENT = "no.ks.fiks.arkiv.v1.innsyn.mappe.hent"
APP = str(uuid.uuid4())
ARCHIVE = str(uuid.uuid4())


class FakeClient:
    """Stands in for FiksIoClient: records what the participant sends; .fail makes the next send raise."""

    sent: list[dict] = []
    fail: FiksIoError | None = None

    def __init__(self, settings):
        self.settings = settings

    def send(self, recipient, meldingstype, files, *, svar_pa=None, klient_melding_id=None,
             klient_korrelasjons_id=None, ttl_ms=None):
        if FakeClient.fail is not None:
            raise FakeClient.fail
        FakeClient.sent.append({"to": recipient, "type": meldingstype, "files": dict((n, d) for n, d, _ in files or ()),
                                "svar_pa": svar_pa, "klient_melding_id": klient_melding_id,
                                "korrelasjon": klient_korrelasjons_id})
        return Sent(str(uuid.uuid4()))


@pytest.fixture
def handle(tmp_path, monkeypatch):
    """The participant's handler over a fresh archive, with the network replaced: each delivery's body names
    the files open_payload gives (or the error it raises)."""
    FakeClient.sent, FakeClient.fail = [], None
    contents: dict[bytes, object] = {}

    def fake_open(received, client, private_key_pem):
        found = contents[received.body]
        if isinstance(found, Exception):
            raise found
        return dict(found)

    monkeypatch.setattr(participant, "FiksIoClient", FakeClient)
    monkeypatch.setattr(participant, "open_payload", fake_open)
    settings = Settings("http://127.0.0.1:1", "amqp://127.0.0.1:1", ARCHIVE, b"key", b"cert", str(uuid.uuid4()),
                        "pw", StaticTokenProvider("t"))
    handler = participant.handler(tmp_path / "arkiv", settings)

    def deliver(meldingstype: str, files: dict | Exception | None, klient_melding_id: str | None = "new",
                **extra) -> list[dict]:
        body = b""
        if files is not None:
            body = uuid.uuid4().bytes
            contents[body] = files
        received = Received(melding_id=str(uuid.uuid4()), meldingstype=meldingstype, avsender_id=APP, body=body,
                            klient_melding_id=str(uuid.uuid4()) if klient_melding_id == "new" else klient_melding_id,
                            klient_korrelasjons_id="dialog-1", **extra)
        before = len(FakeClient.sent)
        handler(received)
        answers = FakeClient.sent[before:]
        for answer in answers:
            assert (answer["to"], answer["svar_pa"], answer["korrelasjon"]) == (APP, received.melding_id, "dialog-1")
            uuid.UUID(answer["klient_melding_id"])
        return answers

    deliver.archive = ReferenceArchive(tmp_path / "arkiv")  # type: ignore[attr-defined]
    return deliver


def types(answers: list[dict]) -> list[str]:
    return [a["type"].rsplit(".", 1)[-1] for a in answers]


def feil(answer: dict) -> str:
    return replies.parse_feilmelding(answer["files"]["feilmelding.xml"])


def test_a_new_folder_gets_mottatt_then_the_kvittering_with_the_archives_numbers(handle):
    """The sender sees the archive took the message in before it sees the numbers."""
    answers = handle(OPPRETT, {"arkivmelding.xml": folder_xml("sak-1")})
    assert types(answers) == ["mottatt", "kvittering"] and answers[0]["files"] == {}
    numbers = replies.parse_kvittering(answers[1]["files"]["arkivmelding-kvittering.xml"])["mappe"]
    assert numbers["sakssekvensnummer"] == 1 and uuid.UUID(numbers["systemID"])


def test_the_same_klient_melding_id_again_gets_the_same_kvittering_and_is_stored_once(handle):
    message_id = str(uuid.uuid4())
    first = handle(OPPRETT, {"arkivmelding.xml": folder_xml("sak-1")}, message_id)
    again = handle(OPPRETT, {"arkivmelding.xml": folder_xml("sak-1")}, message_id)
    assert types(again) == ["mottatt", "kvittering"] and again[1]["files"] == first[1]["files"]
    assert handle.archive.stored_count() == 1


def test_a_post_with_its_document_is_archived_and_a_write_off_gets_a_kvittering_without_payload(handle):
    pdf = b"%PDF-1.4 fiks io\n%%EOF\n"
    handle(OPPRETT, {"arkivmelding.xml": folder_xml("sak-1")})
    answers = handle(OPPRETT, {"arkivmelding.xml": post_xml("sak-1", "post-1", files=(("brev.pdf", pdf),)),
                               "brev.pdf": pdf})
    assert types(answers) == ["mottatt", "kvittering"]
    assert handle.archive.files_of("post-1")[0]["size"] == len(pdf)
    answers = handle(AVSKRIVNING, {"avskrivning-opprett.xml": write_off("post-1")})
    assert types(answers) == ["mottatt", "kvittering"] and answers[1]["files"] == {}


def test_a_post_for_an_unknown_folder_gets_mottatt_then_ikkefunnet(handle):
    answers = handle(OPPRETT, {"arkivmelding.xml": post_xml("no-such-folder", "post-1")})
    assert types(answers) == ["mottatt", "ikkefunnet"] and "no-such-folder" in feil(answers[1])
    assert handle.archive.stored_count() == 0


def test_a_message_against_the_schema_gets_ugyldigforespoersel_without_mottatt(handle):
    bad = folder_xml("sak-1").replace(b"<tittel>Sak</tittel>", b"")
    answers = handle(OPPRETT, {"arkivmelding.xml": bad})
    assert types(answers) == ["ugyldigforespoersel"] and "skjemaet" in feil(answers[0])
    assert handle.archive.stored_count() == 0


@pytest.mark.parametrize("files, words", [
    (CmsError("the content key does not open with this private key", ours=True), ("dekrypterast", "private key")),
    (AsiceError("the manifest digest of arkivmelding.xml does not match"), ("ASiC-E", "digest")),
    (FiksIoError("Dokumentlager svarte 404", transient=False), ("hentast", "404")),
    ({"annan.xml": b"<x/>"}, ("arkivmelding.xml", "annan.xml")),
    (None, ("innhald",)),
])
def test_a_message_that_will_not_open_gets_ugyldigforespoersel_saying_why(handle, files, words):
    answers = handle(OPPRETT, files)
    assert types(answers) == ["ugyldigforespoersel"]
    assert all(word in feil(answers[0]) for word in words), feil(answers[0])


@pytest.mark.parametrize("meldingstype, klient_melding_id, words", [
    ("no.ks.fiks.arkiv.v1.innsyn.sok", "new", ("tek dette arkivet ikkje imot",)),
    ("no.example.noko.anna", "new", ("tek dette arkivet ikkje imot",)),
    (OPPRETT, None, ("klientMeldingId",)),
    (OPPRETT, "not-a-uuid", ("klientMeldingId",)),
])
def test_a_type_it_does_not_take_or_a_missing_klient_melding_id_is_refused(handle, meldingstype, klient_melding_id,
                                                                          words):
    answers = handle(meldingstype, {"arkivmelding.xml": folder_xml("sak-1")}, klient_melding_id)
    assert types(answers) == ["ugyldigforespoersel"] and all(w in feil(answers[0]) for w in words)
    assert handle.archive.stored_count() == 0


def test_a_query_gets_its_resultat_without_mottatt(handle):
    handle(OPPRETT, {"arkivmelding.xml": folder_xml("sak-1", title="Spurd etter")})
    answers = handle(MAPPE_HENT, {"mappe-hent.xml": hent(MAPPE_HENT, "sak-1")}, None)
    assert [a["type"] for a in answers] == [f"{MAPPE_HENT}.resultat"]
    assert b"Spurd etter" in answers[0]["files"]["mappe.xml"]


@pytest.mark.parametrize("meldingstype", ["no.ks.fiks.kvittering.tidsavbrudd", "no.ks.fiks.kvittering.serverfeil.v1",
                                          replies.UGYLDIGFORESPOERSEL, f"{OPPRETT}.kvittering"])
def test_notices_and_answers_sent_to_the_archive_are_never_answered(handle, meldingstype):
    """Answering an answer could start two participants answering each other for ever."""
    assert handle(meldingstype, None, svar_til=str(uuid.uuid4())) == []


def test_a_send_that_fails_for_now_raises_so_the_delivery_comes_again(handle):
    """Not acknowledged, the message comes again, and the archive's memory answers it the same."""
    message_id = str(uuid.uuid4())
    FakeClient.fail = FiksIoError("fekk ikkje kontakt med Fiks IO", transient=True)
    with pytest.raises(FiksIoError):
        handle(OPPRETT, {"arkivmelding.xml": folder_xml("sak-1")}, message_id)
    FakeClient.fail = None
    assert types(handle(OPPRETT, {"arkivmelding.xml": folder_xml("sak-1")}, message_id)) == ["mottatt", "kvittering"]
    assert handle.archive.stored_count() == 1


def test_a_send_refused_for_good_is_logged_and_the_delivery_acknowledged(handle, caplog):
    FakeClient.fail = FiksIoError("Fiks IO avviste meldinga: mottakaren finst ikkje", transient=False)
    handle(OPPRETT, {"arkivmelding.xml": folder_xml("sak-1")})  # returns: no redelivery loop
    assert "mottakaren finst ikkje" in caplog.text


# --- the command line ---

def test_the_command_line_names_every_fiksio_setting_missing(capsys):
    with pytest.raises(SystemExit):
        reference_main.main(["--dir", "x", "--fiksio"], environ={})
    err = capsys.readouterr().err
    for name in reference_main.FIELDS:
        assert f"PPT_REFERENCE_FIKSIO_{name}" in err, name
    assert "PPT_FIKSIO_" not in err.replace("PPT_REFERENCE_FIKSIO_", "")


def test_the_command_line_builds_the_archive_accounts_settings(tmp_path):
    key_pem, cert_pem = make_key_and_cert("referansearkiv")
    (tmp_path / "key.pem").write_bytes(key_pem)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    environ = {"PPT_REFERENCE_FIKSIO_API_URL": "http://127.0.0.1:9999",
               "PPT_REFERENCE_FIKSIO_AMQP_URL": "amqp://127.0.0.1:5999",
               "PPT_REFERENCE_FIKSIO_ACCOUNT_ID": ARCHIVE,
               "PPT_REFERENCE_FIKSIO_PRIVATE_KEY": str(tmp_path / "key.pem"),
               "PPT_REFERENCE_FIKSIO_CERTIFICATE": str(tmp_path / "cert.pem"),
               "PPT_REFERENCE_FIKSIO_INTEGRATION_ID": str(uuid.uuid4()),
               "PPT_REFERENCE_FIKSIO_INTEGRATION_PASSWORD": "hemmeleg",
               "PPT_REFERENCE_FIKSIO_TOKEN_PROVIDER": "tests.test_reference_fiksio:TOKENS"}
    settings = reference_main.fiksio_settings(environ)
    assert (settings.account_id, settings.queue, settings.private_key_pem) == (ARCHIVE, f"fiksio.konto.{ARCHIVE}",
                                                                              key_pem)
    assert settings.token_provider is TOKENS
    with pytest.raises(SettingsError) as raised:
        reference_main.fiksio_settings({**environ, "PPT_REFERENCE_FIKSIO_ACCOUNT_ID": "konto-1"})
    [problem] = raised.value.problems
    assert problem.startswith("PPT_REFERENCE_FIKSIO_ACCOUNT_ID") and "konto-1" in problem


TOKENS = StaticTokenProvider("test-token")


# --- the whole chain: app -> Fiks IO -> archive -> Fiks IO -> app ---

XML = "application/xml"


@dataclass
class Chain:
    server: FiksIoTestServer
    app: FiksIoClient
    app_settings: Settings
    archive: ReferenceArchive
    archive_account: str
    echoed: list[str]
    got: list[tuple[Received, dict]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def send(self, meldingstype: str, files: list, klient_melding_id: str | None = None,
             client: FiksIoClient | None = None) -> tuple[str, str]:
        """(Fiks IO's melding-id, the klientMeldingId) of a message the app sends the archive."""
        klient_melding_id = klient_melding_id or str(uuid.uuid4())
        sent = (client or self.app).send(self.archive_account, meldingstype, files, klient_melding_id=klient_melding_id,
                                         klient_korrelasjons_id=f"dialog-{klient_melding_id}")
        return sent.melding_id, klient_melding_id

    def answers(self, melding_id: str, count: int, timeout: float = 15.0) -> list[tuple[Received, dict]]:
        """The first count replies to one message, in the order the app's queue gave them."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                found = [(r, f) for r, f in self.got if r.svar_til == melding_id]
                if len(found) >= count or not self.arrived.wait(max(0.0, deadline - time.monotonic())):
                    break
        assert len(found) >= count, f"{len(found)} of {count} replies came; failures: {self.server.failures}"
        return found[:count]


def _allow(node, integration_id: str, password: str, token_key, queue: str) -> None:
    """RabbitMQ takes the integration id with "<integration password> <Maskinporten token>", as Fiks IO does."""
    def check(given: str) -> str | None:
        secret, _, token = given.partition(" ")
        if secret != password:
            return "wrong integration password"
        try:
            verify_jwt(token, token_key)
        except RequestError as exc:
            return f"token refused: {exc.message}"
        return None

    node.allow(integration_id, check, queue=queue)


@pytest.fixture(scope="module")
def chain(rabbitmq_node, tmp_path_factory):
    """Two accounts on the test server (the app's and the archive's); the reference archive serving its own
    queue in a thread; the app reading its queue with the same consumer the app uses."""
    token_key_pem, token_cert_pem = make_key_and_cert("maskinporten-test")
    tokens = LocalJwtTokenProvider(token_key_pem, "974760673")
    amqp_url = f"amqp://127.0.0.1:{rabbitmq_node.port}/%2F"
    server = FiksIoTestServer(rabbitmq_node.url, token_cert_pem)
    server.start()
    settings = {}
    for who in ("app", "archive"):
        key_pem, cert_pem = make_key_and_cert(f"fiksio-{who}")
        account, integration, password = str(uuid.uuid4()), str(uuid.uuid4()), f"passord-{who}"
        server.add_account(account, cert_pem, key_pem, integration, password, name=f"PPT {who}")
        _allow(rabbitmq_node, integration, password, _public_key(token_cert_pem), f"fiksio.konto.{account}")
        settings[who] = Settings(server.url, amqp_url, account, key_pem, cert_pem, integration, password, tokens)
    root = tmp_path_factory.mktemp("fiksio-arkiv")
    stop = threading.Event()
    echoed: list[str] = []
    archive_thread = threading.Thread(target=participant.serve, args=(root, settings["archive"], stop),
                                      kwargs={"echo": echoed.append}, daemon=True, name="reference archive")
    app = FiksIoClient(settings["app"])
    found = Chain(server, app, settings["app"], ReferenceArchive(root), settings["archive"].account_id, echoed)

    def collect(received: Received) -> None:
        files = open_payload(received, app, settings["app"].private_key_pem)
        with found.arrived:
            found.got.append((received, files))
            found.arrived.notify_all()

    app_consumer = Consumer(settings["app"], collect, name="test app")
    app_thread = threading.Thread(target=app_consumer.run, args=(stop,), daemon=True, name="test app")
    archive_thread.start()
    app_thread.start()
    try:
        yield found
    finally:
        stop.set()
        archive_thread.join(10)
        app_thread.join(10)
        server.stop()
    assert not archive_thread.is_alive() and not app_thread.is_alive(), "a consumer did not stop when asked"


def kinds(replies_: list[tuple[Received, dict]]) -> list[str]:
    return [r.meldingstype.rsplit(".", 1)[-1] for r, _ in replies_]


def strictly_fine(chain: Chain) -> None:
    """Every send the test server saw (the participant's answers too) was one Fiks IO would take."""
    assert chain.server.failures == []


@pytest.mark.slow
def test_over_fiks_io_a_new_folder_gets_mottatt_then_the_kvittering_with_the_archives_numbers(chain):
    melding_id, klient_melding_id = chain.send(OPPRETT, [("arkivmelding.xml", folder_xml("fio-sak-1"), XML)])
    answers = chain.answers(melding_id, 2)
    assert kinds(answers) == ["mottatt", "kvittering"]
    (mottatt, nothing), (kvittering, files) = answers
    assert nothing == {} and not mottatt.has_payload
    for reply, _ in answers:
        assert reply.avsender_id == chain.archive_account
        assert reply.klient_korrelasjons_id == f"dialog-{klient_melding_id}"
    numbers = replies.parse_kvittering(files["arkivmelding-kvittering.xml"])["mappe"]
    [stored] = chain.archive.messages_for("fio-sak-1")
    assert stored["klientmelding_id"] == klient_melding_id
    assert {k: numbers[k] for k in ("systemID", "saksaar", "sakssekvensnummer")} == \
        {k: stored["ids"]["mappe"][k] for k in ("systemID", "saksaar", "sakssekvensnummer")}
    assert any(chain.archive_account in line and f"fiksio.konto.{chain.archive_account}" in line
               for line in chain.echoed), chain.echoed
    strictly_fine(chain)


@pytest.mark.slow
def test_over_fiks_io_the_same_klient_melding_id_again_gets_the_same_kvittering_stored_once(chain):
    files = [("arkivmelding.xml", folder_xml("fio-sak-2"), XML)]
    first_id, klient_melding_id = chain.send(OPPRETT, files)
    again_id, _ = chain.send(OPPRETT, files, klient_melding_id)
    first, again = chain.answers(first_id, 2), chain.answers(again_id, 2)
    assert kinds(again) == ["mottatt", "kvittering"]
    assert again[1][1]["arkivmelding-kvittering.xml"] == first[1][1]["arkivmelding-kvittering.xml"]
    assert len(chain.archive.messages_for("fio-sak-2")) == 1
    strictly_fine(chain)


@pytest.mark.slow
def test_over_fiks_io_a_post_and_its_document_are_archived_and_an_unknown_folder_gets_ikkefunnet(chain):
    pdf = b"%PDF-1.4 over Fiks IO\n%%EOF\n"
    folder_id, _ = chain.send(OPPRETT, [("arkivmelding.xml", folder_xml("fio-sak-3"), XML)])
    chain.answers(folder_id, 2)
    post_id, _ = chain.send(OPPRETT, [("arkivmelding.xml", post_xml("fio-sak-3", "fio-post-3",
                                                                    files=(("brev.pdf", pdf),)), XML),
                                      ("brev.pdf", pdf, "application/pdf")])
    missing_id, _ = chain.send(OPPRETT, [("arkivmelding.xml", post_xml("fio-no-such-folder", "fio-post-4"), XML)])
    post = chain.answers(post_id, 2)
    assert kinds(post) == ["mottatt", "kvittering"]
    assert replies.parse_kvittering(post[1][1]["arkivmelding-kvittering.xml"])["registrering"]["journalpostnummer"] == 1
    assert chain.archive.files_of("fio-post-3")[0]["size"] == len(pdf)
    missing = chain.answers(missing_id, 2)
    assert kinds(missing) == ["mottatt", "ikkefunnet"]
    assert "fio-no-such-folder" in replies.parse_feilmelding(missing[1][1]["feilmelding.xml"])
    assert chain.archive.messages_for("fio-post-4") == []
    strictly_fine(chain)


@pytest.mark.slow
def test_over_fiks_io_an_invalid_message_gets_ugyldigforespoersel_with_the_reason(chain):
    invalid = folder_xml("fio-sak-5").replace(b"<tittel>Sak</tittel>", b"")
    melding_id, _ = chain.send(OPPRETT, [("arkivmelding.xml", invalid, XML)])
    [(reply, files)] = chain.answers(melding_id, 1)
    assert reply.meldingstype == replies.UGYLDIGFORESPOERSEL
    assert "tittel" in replies.parse_feilmelding(files["feilmelding.xml"])
    assert chain.archive.messages_for("fio-sak-5") == []
    strictly_fine(chain)


@pytest.mark.slow
def test_over_fiks_io_an_envelope_for_another_key_gets_ugyldigforespoersel(chain):
    """The catalog has a new key for the archive the running archive does not hold (a key change half done):
    the message cannot be opened, and the sender is told so instead of waiting for ever."""
    account = chain.server.accounts[chain.archive_account]
    old = (account.certificate_pem, account.private_key_pem)
    new_key_pem, new_cert_pem = make_key_and_cert("fiksio-archive-new")
    chain.server.replace_certificate(chain.archive_account, new_cert_pem, new_key_pem)
    try:
        melding_id, _ = chain.send(OPPRETT, [("arkivmelding.xml", folder_xml("fio-sak-6"), XML)],
                                   client=FiksIoClient(chain.app_settings))  # no cached key: asks the catalog
    finally:
        chain.server.replace_certificate(chain.archive_account, *old)
    [(reply, files)] = chain.answers(melding_id, 1)
    assert reply.meldingstype == replies.UGYLDIGFORESPOERSEL
    assert "dekrypterast" in replies.parse_feilmelding(files["feilmelding.xml"])
    assert chain.archive.messages_for("fio-sak-6") == []
    strictly_fine(chain)
