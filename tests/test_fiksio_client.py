"""The Fiks IO HTTP client against the strict test server: what it sends, what it caches, how it fails."""
from __future__ import annotations

import os
import socket
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ppt_web.fiksio import asice
from ppt_web.fiksio.client import FiksIoClient, FiksIoError
from ppt_web.fiksio.settings import Settings
from ppt_web.inbound import cms
from ppt_web.outbound.svarut import LocalJwtTokenProvider

from .fiksio_server import FiksIoTestServer

pytestmark = pytest.mark.one_database

OPPRETT = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett"


class Party:
    """An account with its key pair and integration, as Fiks Forvaltning would set it up."""

    def __init__(self, name: str):
        self.account_id, self.integration_id = str(uuid.uuid4()), str(uuid.uuid4())
        self.password = f"passord-{name}"
        self.key_pem, self.certificate_pem = key_pair(name)


def key_pair(name: str, *, days: int = 365) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
                   .sign(key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            certificate.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope="module")
def parties():
    token_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token_pem = token_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    return {"token_pem": token_pem, "token_public": token_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "app": Party("ppt_web"), "archive": Party("arkivet"), "rotated": key_pair("arkivet, ny nøkkel")}


@pytest.fixture
def server(parties):
    """The test server without RabbitMQ: what it would publish is recorded."""
    with FiksIoTestServer(None, parties["token_public"], inline_limit=64 * 1024) as fiks:
        for party in (parties["app"], parties["archive"]):
            fiks.add_account(party.account_id, party.certificate_pem, party.key_pem, party.integration_id,
                             party.password)
        yield fiks


def settings_for(party: Party, api_url: str, token_pem: bytes, **changes) -> Settings:
    settings = Settings(api_url=api_url, amqp_url="amqp://127.0.0.1:1", account_id=party.account_id,
                        private_key_pem=party.key_pem, certificate_pem=party.certificate_pem,
                        integration_id=party.integration_id, integration_password=party.password,
                        token_provider=LocalJwtTokenProvider(token_pem, "974760673"), ttl_ms=24 * 3600 * 1000)
    return replace(settings, **changes)


@pytest.fixture
def client(server, parties) -> FiksIoClient:
    return FiksIoClient(settings_for(parties["app"], server.url, parties["token_pem"]))


def test_a_message_arrives_signed_encrypted_and_in_the_layout_ks_clients_use(server, client, parties):
    """metadata first (JSON, no filename), then data (a UUID filename): the archive's key opens it, our
    signature is on it, and klientMeldingId travels in headere to the archive's queue."""
    archive, app = parties["archive"], parties["app"]
    files = [("arkivmelding.xml", b"<arkivmelding/>", "application/xml"),
             ("brev.pdf", b"%PDF-1.7 test", "application/pdf")]
    message_id = str(uuid.uuid4())
    sent = client.send(archive.account_id, OPPRETT, files, klient_melding_id=message_id)

    assert server.failures == []
    [accepted] = server.sent
    assert sent.melding_id == accepted["melding_id"] and sent.answer["meldingId"] == sent.melding_id
    assert accepted["metadata"] == {"avsenderKontoId": app.account_id, "mottakerKontoId": archive.account_id,
                                    "meldingType": OPPRETT, "svarPaMelding": None, "ttl": 24 * 3600 * 1000,
                                    "headere": {"klientMeldingId": message_id}}
    assert uuid.UUID(accepted["filename"])
    assert accepted["files"] == {name: content for name, content, _ in files}
    assert accepted["signer_certificate_pem"].strip() == app.certificate_pem.strip()
    # What reaches the queue is the envelope itself: only the archive's key opens it.
    opened = asice.read(cms.decrypt(accepted["encrypted"], archive.key_pem))
    assert list(opened.files) == ["arkivmelding.xml", "brev.pdf"]
    with pytest.raises(cms.CmsError):
        cms.decrypt(accepted["encrypted"], app.key_pem)
    [published] = server.messages_to(archive.account_id)
    assert published.headers["egendefinert-header.klientMeldingId"] == message_id
    assert published.headers["avsender-id"] == app.account_id and published.headers["type"] == OPPRETT


def test_a_reply_without_payload_has_no_data_part_and_carries_svar_pa(server, client, parties):
    archive = parties["archive"]
    original, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    client.send(archive.account_id, OPPRETT + ".mottatt", None, svar_pa=original,
                klient_korrelasjons_id=correlation, ttl_ms=60_000)
    assert server.failures == []
    [accepted] = server.sent
    assert accepted["files"] is None and accepted["filename"] is None
    assert accepted["metadata"]["svarPaMelding"] == original and accepted["metadata"]["ttl"] == 60_000
    assert accepted["metadata"]["headere"] == {"klientKorrelasjonsId": correlation}
    [published] = server.messages_to(archive.account_id)
    assert published.headers["svar-til"] == original and published.body == b""


def test_the_public_key_is_cached_and_fetched_again_after_a_rotation(server, parties):
    """Within the cache time the catalog is asked once; after it, the rotated key is fetched and used."""
    now = [1_000_000.0]
    archive = parties["archive"]
    client = FiksIoClient(settings_for(parties["app"], server.url, parties["token_pem"]), clock=lambda: now[0])
    first = client.public_key(archive.account_id)
    assert first.strip() == archive.certificate_pem.strip()
    client.send(archive.account_id, OPPRETT, [("arkivmelding.xml", b"<a/>", "application/xml")])
    assert sum(r["path"].endswith("/offentligNokkel") for r in server.requests) == 1

    new_key, new_certificate = parties["rotated"]
    server.replace_certificate(archive.account_id, new_certificate, new_key)
    now[0] += 599
    assert client.public_key(archive.account_id) == first  # still the cached one
    now[0] += 2
    assert client.public_key(archive.account_id).strip() == new_certificate.strip()
    client.send(archive.account_id, OPPRETT, [("arkivmelding.xml", b"<b/>", "application/xml")])
    assert server.failures == []  # the second send opened with the new key
    assert sum(r["path"].endswith("/offentligNokkel") for r in server.requests) == 2


def test_an_expired_cached_key_is_fetched_again_at_once(server, parties):
    now = [datetime.now(UTC).timestamp()]
    archive = parties["archive"]
    client = FiksIoClient(settings_for(parties["app"], server.url, parties["token_pem"]), clock=lambda: now[0])
    client.public_key(archive.account_id)
    now[0] += 366 * 24 * 3600  # past the certificate's validTo, though the cache time is long gone too
    client.key_cache_seconds = 10 ** 9
    client.public_key(archive.account_id)
    assert sum(r["path"].endswith("/offentligNokkel") for r in server.requests) == 2


def test_an_unknown_account_has_no_key(client):
    stranger = str(uuid.uuid4())
    with pytest.raises(FiksIoError) as refused:
        client.public_key(stranger)
    assert not refused.value.transient
    assert refused.value.text == f"Fiks IO kjenner ikkje kontoen {stranger} eller han har ingen offentleg nøkkel"


def test_a_wrong_integration_password_is_401_not_retried_and_says_so(server, parties):
    client = FiksIoClient(settings_for(parties["app"], server.url, parties["token_pem"],
                                       integration_password="feil"))
    with pytest.raises(FiksIoError) as refused:
        client.send(parties["archive"].account_id, OPPRETT, None)
    assert not refused.value.transient
    assert "Maskinporten-tokenet eller integrasjonen" in refused.value.text and "HTTP 401" in refused.value.text
    assert "wrong integration password" in refused.value.text  # the server's own reason


def test_a_token_from_another_issuer_is_401(server, parties):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    client = FiksIoClient(settings_for(parties["app"], server.url, other))
    with pytest.raises(FiksIoError) as refused:
        client.send(parties["archive"].account_id, OPPRETT, None)
    assert not refused.value.transient and "HTTP 401" in refused.value.text


def test_sending_from_an_account_the_integration_does_not_own_is_403(server, parties):
    client = FiksIoClient(settings_for(parties["app"], server.url, parties["token_pem"],
                                       account_id=parties["archive"].account_id))
    with pytest.raises(FiksIoError) as refused:
        client.send(parties["app"].account_id, OPPRETT, None)
    assert not refused.value.transient
    assert refused.value.text.startswith("integrasjonen har ikkje tilgang til Fiks IO-kontoen")


def test_a_refused_message_is_400_not_retried_with_the_servers_reason(server, client):
    """A recipient Fiks IO does not know (no payload, so no key lookup first): the server's text, trimmed."""
    stranger = str(uuid.uuid4())
    with pytest.raises(FiksIoError) as refused:
        client.send(stranger, OPPRETT, None)
    assert not refused.value.transient
    assert refused.value.text.startswith(f"Fiks IO avviste meldinga til kontoen {stranger} (HTTP 400): "
                                         f"mottakerKontoId: no account {stranger} (errorId ")
    assert len(refused.value.text) < 500


def test_fiks_io_unavailable_is_503_and_retried(server, client, parties):
    server.pause()
    with pytest.raises(FiksIoError) as refused:
        client.send(parties["archive"].account_id, OPPRETT, [("arkivmelding.xml", b"<a/>", "application/xml")])
    assert refused.value.transient and "HTTP 503" in refused.value.text
    server.resume()
    client.send(parties["archive"].account_id, OPPRETT, [("arkivmelding.xml", b"<a/>", "application/xml")])
    assert len(server.sent) == 1 and server.failures == []


def test_no_connection_and_no_answer_are_retried(parties):
    """A refused connection (nothing listens) and a server that never answers: both worth another try."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = FiksIoClient(settings_for(parties["app"], f"http://127.0.0.1:{port}", parties["token_pem"]))
    with pytest.raises(FiksIoError) as refused:
        client.send(parties["archive"].account_id, OPPRETT, None)
    assert refused.value.transient and refused.value.text == "fekk ikkje kontakt med Fiks IO (ingen tilkopling)"
    with pytest.raises(FiksIoError) as refused:
        client.public_key(parties["archive"].account_id)
    assert refused.value.transient and "Fiks IO-katalogen" in refused.value.text

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # connects, never answers
        client = FiksIoClient(settings_for(parties["app"], f"http://127.0.0.1:{silent.getsockname()[1]}",
                                           parties["token_pem"]), timeout=0.3)
        with pytest.raises(FiksIoError) as refused:
            client.send(parties["archive"].account_id, OPPRETT, None)
    assert refused.value.transient
    assert refused.value.text == "fekk ikkje kontakt med Fiks IO (tidsavbrot); meldinga kan ha kome fram"


def test_a_message_above_the_limit_is_refused_before_anything_is_sent(server, parties):
    client = FiksIoClient(settings_for(parties["app"], server.url, parties["token_pem"]), max_message_bytes=1000)
    with pytest.raises(FiksIoError) as refused:
        client.send(parties["archive"].account_id, OPPRETT, [("arkivmelding.xml", b"<a/>", "application/xml"),
                                                             ("stor.pdf", b"x" * 2000, "application/pdf")])
    assert not refused.value.transient
    assert refused.value.text == "meldinga er for stor for Fiks IO: 2004 byte, grensa er 1000 byte; ho er ikkje send"
    assert server.requests == []


def test_a_token_provider_that_fails_sends_nothing_and_is_retried(server, parties):
    class Down:
        def token(self) -> str:
            raise ConnectionError("maskinporten is down")

    client = FiksIoClient(settings_for(parties["app"], server.url, parties["token_pem"], token_provider=Down()))
    with pytest.raises(FiksIoError) as refused:
        client.send(parties["archive"].account_id, OPPRETT, [("arkivmelding.xml", b"<a/>", "application/xml")])
    assert refused.value.transient and "Maskinporten" in refused.value.text
    assert server.sent == []


def test_a_large_payload_is_downloaded_from_dokumentlager_by_its_recipient(server, client, parties):
    """Above the inline limit the delivery carries only a dokumentlager-id; the recipient downloads it."""
    archive = parties["archive"]
    big = os.urandom(256 * 1024)  # does not compress below the inline limit
    client.send(archive.account_id, OPPRETT, [("arkivmelding.xml", b"<a/>", "application/xml"),
                                              ("stor.pdf", big, "application/pdf")])
    [published] = server.messages_to(archive.account_id)
    assert published.body == b"" and published.headers["dokumentlager-id"]
    recipient = FiksIoClient(settings_for(archive, server.url, parties["token_pem"]))
    encrypted = recipient.download(published.headers["dokumentlager-id"])
    assert asice.read(cms.decrypt(encrypted, archive.key_pem)).files["stor.pdf"] == big
    with pytest.raises(FiksIoError) as refused:
        recipient.download(str(uuid.uuid4()))
    assert not refused.value.transient and refused.value.text.startswith("Dokumentlager har ikkje fila")
