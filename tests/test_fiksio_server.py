"""The Fiks IO test server is strict: what KS's clients send is taken, each fault is refused with its reason."""
from __future__ import annotations

import io
import json
import os
import uuid
import zipfile

import pytest
import requests

from ppt_web.fiksio import asice
from ppt_web.fiksio.settings import CATALOG_PATH, DOKUMENTLAGER_PATH, SEND_PATH
from ppt_web.inbound import cms
from ppt_web.outbound.svarut import LocalJwtTokenProvider

from .fiksio_server import TIDSAVBRUDD, FiksIoTestServer
from .svarinn_server import make_key_and_cert
from .svarut_server import make_token_keys

pytestmark = pytest.mark.one_database  # engine-independent: CI runs it on one database

PPT = "7c2a3e50-1d7e-4b7e-9a51-0a0f2b1c3d01"
ARCHIVE = "5f0e9d2c-8b7a-4c6d-9e1f-2a3b4c5d6e02"
PPT_INTEGRATION, ARCHIVE_INTEGRATION = str(uuid.uuid4()), str(uuid.uuid4())
FILES = [("arkivmelding.xml", b"<arkivmelding/>", "application/xml")]
OPPRETT = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett"


@pytest.fixture(scope="module")
def keys():
    token_private, token_public = make_token_keys()
    return {"token": (token_private, token_public), "ppt": make_key_and_cert("ppt"),
            "archive": make_key_and_cert("arkiv")}


@pytest.fixture
def server(keys):
    with FiksIoTestServer(None, keys["token"][1], inline_limit=64 * 1024) as running:
        running.add_account(PPT, keys["ppt"][1], keys["ppt"][0], PPT_INTEGRATION, "ppt-passord", name="PPT")
        running.add_account(ARCHIVE, keys["archive"][1], keys["archive"][0], ARCHIVE_INTEGRATION, "arkiv-passord")
        yield running


def auth(keys, integration=PPT_INTEGRATION, password="ppt-passord", token_key=None) -> dict:
    token = LocalJwtTokenProvider(token_key or keys["token"][0], "974760673").token()
    return {"Authorization": f"Bearer {token}", "IntegrasjonId": integration, "IntegrasjonPassord": password}


def metadata(**changes) -> dict:
    base = {"avsenderKontoId": PPT, "mottakerKontoId": ARCHIVE, "meldingType": OPPRETT, "svarPaMelding": None,
            "ttl": 86_400_000, "headere": {"klientMeldingId": "jobb-17"}}
    base.update(changes)
    return base


def envelope(keys, files=FILES, recipient="archive") -> bytes:
    return cms.encrypt(asice.build(files, *keys["ppt"]), keys[recipient][1])


def post(server, keys, meta: dict | None = None, data: bytes | None = None, *, headers=None, parts=None):
    """A send as KS's clients make it: multipart, metadata (JSON, no filename) first, then data."""
    if parts is None:
        parts = [("metadata", (None, json.dumps(meta or metadata()), "application/json"))]
        if data is not None:
            parts.append(("data", (str(uuid.uuid4()), data, "application/octet-stream")))
    return requests.post(server.url + SEND_PATH, files=parts, headers=headers or auth(keys), timeout=10)


def test_well_formed_send_is_published_with_fiks_io_headers(server, keys):
    answer = post(server, keys, data=envelope(keys))
    assert answer.status_code == 202, server.failures
    body = answer.json()
    assert body["mottakerKontoId"] == ARCHIVE and body["headere"] == {"klientMeldingId": "jobb-17"}
    assert server.sent[0]["files"] == {"arkivmelding.xml": b"<arkivmelding/>"}
    [message] = server.messages_to(ARCHIVE)
    assert message.headers == {"avsender-id": PPT, "avsender-navn": "PPT", "melding-id": body["meldingId"],
                               "type": OPPRETT, "egendefinert-header.klientMeldingId": "jobb-17"}
    assert message.expiration == "86400000" and message.body == server.sent[0]["encrypted"]
    assert server.failures == []


def test_reply_without_payload_carries_svar_til(server, keys):
    original = str(uuid.uuid4())
    reply = metadata(avsenderKontoId=ARCHIVE, mottakerKontoId=PPT, meldingType=OPPRETT + ".mottatt",
                     svarPaMelding=original, ttl=None, headere={})
    answer = post(server, keys, reply, headers=auth(keys, ARCHIVE_INTEGRATION, "arkiv-passord"))
    assert answer.status_code == 202, server.failures
    [message] = server.messages_to(PPT)
    assert message.headers["svar-til"] == original and message.body == b"" and message.expiration is None


@pytest.mark.parametrize("kind, status, reason", [
    ("token of another key", 401, "token har ugyldig signatur"),
    ("wrong password", 401, "wrong integration password"),
    ("no token", 401, "no Maskinporten token"),
])
def test_bad_authentication_is_refused(server, keys, kind, status, reason):
    headers = {"token of another key": lambda: auth(keys, token_key=make_token_keys()[0]),
               "wrong password": lambda: auth(keys, password="gjett"),
               "no token": lambda: {k: v for k, v in auth(keys).items() if k != "Authorization"}}[kind]()
    answer = post(server, keys, data=envelope(keys), headers=headers)
    assert answer.status_code == status
    assert len(server.failures) == 1 and reason in server.failures[0]
    assert server.published == []


def test_parts_in_the_wrong_order_are_refused(server, keys):
    parts = [("data", ("x.bin", envelope(keys), "application/octet-stream")),
             ("metadata", (None, json.dumps(metadata()), "application/json"))]
    assert post(server, keys, parts=parts).status_code == 400
    assert "the first part must be 'metadata'" in server.failures[0]


@pytest.mark.parametrize("changes, status, reason", [
    ({"ttl": "2.00:00:00"}, 400, "ttl must be whole milliseconds"),
    ({"MottakerKontoId": ARCHIVE}, 400, "unknown metadata field 'MottakerKontoId'"),
    ({"svarPaMelding": "jobb-17"}, 400, "svarPaMelding must be a uuid or null"),
    ({"meldingType": ""}, 400, "meldingType must be a non-empty string"),
    ({"headere": {"klientMeldingId": 17}}, 400, "headere must be an object of strings"),
    ({"mottakerKontoId": str(uuid.uuid4())}, 400, "mottakerKontoId: no account"),
    ({"avsenderKontoId": ARCHIVE}, 403, "is not the integration's account"),
])
def test_bad_metadata_is_refused(server, keys, changes, status, reason):
    answer = post(server, keys, metadata(**changes), envelope(keys))
    assert answer.status_code == status
    assert reason in server.failures[0] and server.published == []


def test_envelope_for_another_key_is_refused(server, keys):
    answer = post(server, keys, data=envelope(keys, recipient="ppt"))
    assert answer.status_code == 400
    assert "does not open with the recipient's key" in server.failures[0]


def test_tampered_asice_is_refused(server, keys):
    """The file is changed after signing, the manifest and signature kept."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(asice.build(FILES, *keys["ppt"]))) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            new.writestr(info, b"<arkivmelding>endra</arkivmelding>" if info.filename == "arkivmelding.xml"
                         else old.read(info))
    tampered = out.getvalue()
    answer = post(server, keys, data=cms.encrypt(tampered, keys["archive"][1]))
    assert answer.status_code == 400
    assert "manifest digest of arkivmelding.xml does not match" in server.failures[0]


def test_catalog_serves_the_current_key(server, keys):
    url = f"{server.url}{CATALOG_PATH}/kontoer/{ARCHIVE}/offentligNokkel"
    first = requests.get(url, timeout=10)
    assert first.status_code == 200 and first.json()["nokkel"].encode() == keys["archive"][1]
    assert first.json()["valid"] is True
    new_key, new_cert = make_key_and_cert("arkiv-2")
    server.replace_certificate(ARCHIVE, new_cert, new_key)
    assert requests.get(url, timeout=10).json()["nokkel"].encode() == new_cert
    # a send still encrypted to the old key no longer opens
    assert post(server, keys, data=envelope(keys)).status_code == 400
    missing = requests.get(f"{server.url}{CATALOG_PATH}/kontoer/{uuid.uuid4()}/offentligNokkel", timeout=10)
    assert missing.status_code == 404


def test_large_payload_goes_through_dokumentlager(server, keys):
    big = [("arkivmelding.xml", b"<a/>", "application/xml"), ("scan.pdf", os.urandom(100_000), "application/pdf")]
    answer = post(server, keys, data=envelope(keys, big))
    assert answer.status_code == 202, server.failures
    [message] = server.messages_to(ARCHIVE)
    dokumentlager_id = message.headers["dokumentlager-id"]
    assert message.body == b"" and answer.json()["dokumentlagerId"] == dokumentlager_id
    url = f"{server.url}{DOKUMENTLAGER_PATH}/{dokumentlager_id}"
    download = requests.get(url, headers=auth(keys, ARCHIVE_INTEGRATION, "arkiv-passord"), timeout=10)
    assert download.status_code == 200 and download.content == server.sent[0]["encrypted"]
    assert requests.get(url, headers=auth(keys), timeout=10).status_code == 403  # not the sender's to fetch


def test_pause_answers_503_without_a_failure(server, keys):
    server.pause()
    assert post(server, keys, data=envelope(keys)).status_code == 503
    server.resume()
    assert post(server, keys, data=envelope(keys)).status_code == 202
    assert server.failures == [] and len(server.sent) == 1


def test_notice_from_fiks_io_itself(server):
    original = str(uuid.uuid4())
    melding_id = server.publish_notice(PPT, TIDSAVBRUDD, original, svar_til_type=OPPRETT)
    [notice] = server.messages_to(PPT)
    assert notice.headers["melding-id"] == melding_id and notice.headers["svar-til"] == original
    assert notice.headers["svar-til-type"] == OPPRETT and notice.body == b""
