"""The outbound adapters on their own: SvarUtAdapter against a local SvarUt v3, FolderAdapter, tokens, checks.

No app and no database here: the dispatch that uses these adapters is tested elsewhere.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from ppt_web.inbound import cms
from ppt_web.outbound.folder import FolderAdapter
from ppt_web.outbound.svarut import LocalJwtTokenProvider, StaticTokenProvider, SvarUtAdapter, multipart_body, origin
from ppt_web.outbound.types import (
    FAILED,
    SENT,
    STATUS_MAP,
    UNKNOWN,
    OutboundDocument,
    OutboundUnavailable,
    Recipient,
    Shipment,
    map_status,
    problems,
)

from .svarut_server import ALL_STATUSES, RequestError, SvarUtServer, find_ks_svarut, make_token_keys, verify_jwt

pytestmark = pytest.mark.one_database  # engine-independent: CI runs it on one database


KONTO = "5b1c7a1e-0c6f-4c59-9a4b-3f5c1e7d2a10"
OTHER_KONTO = "0f9e8d7c-6b5a-4321-8fed-cba987654321"
INTEGRATION_ID = "8d2f6a0e-2b1c-4e7a-9f3d-6c5b4a392817"
PASSWORD = "integrasjon-passord"
OUR_ORG = "974760673"
FNR = "15108695088"  # valid check digits, not a real person's
D_NUMBER = "55108695071"
SCHOOL_ORG = "123456785"
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture(scope="module")
def token_keys() -> tuple[bytes, bytes]:
    """The key our local 'Maskinporten' signs with, made fresh for this run."""
    return make_token_keys()


@pytest.fixture(scope="module")
def spec_folder() -> Path:
    found = find_ks_svarut()
    if found is None:
        assert not os.environ.get("CI"), "CI lays shared/ beside the checkout"
        pytest.skip("no shared/standards/ks-svarut beside this checkout")
    return found


@pytest.fixture
def server(token_keys, spec_folder):
    with SvarUtServer(token_keys[1], INTEGRATION_ID, PASSWORD, {KONTO}, consumer_org=OUR_ORG) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(token_keys) -> LocalJwtTokenProvider:
    """Shared: loading an RSA private key costs ~50 ms, and its cached token lasts the run."""
    return LocalJwtTokenProvider(token_keys[0], OUR_ORG)


@pytest.fixture
def adapter(server, tokens) -> SvarUtAdapter:
    return SvarUtAdapter(server.url, KONTO, INTEGRATION_ID, PASSWORD, tokens, timeout=5)


def person(**overrides) -> Recipient:
    values = dict(kind="person", name="Kari Nordmann", digital_id=FNR, address_line1="Storgata 1",
                  postal_code="0150", city="Oslo")
    return Recipient(**{**values, **overrides})


def school(**overrides) -> Recipient:
    values = dict(kind="organisation", name="Bakken skule", digital_id=SCHOOL_ORG, address_line1="Skulevegen 2",
                  address_line2="Postboks 7", postal_code="5003", city="Bergen")
    return Recipient(**{**values, **overrides})


def shipment(recipient: Recipient | None = None, documents=None, **overrides) -> Shipment:
    documents = documents if documents is not None else (
        OutboundDocument("Sakkyndig vurdering.pdf", "application/pdf", PDF),
        OutboundDocument("Vedlegg.pdf", "application/pdf", PDF + b"% vedlegg\n"),
    )
    values = dict(external_ref=str(uuid.uuid4()), correlation_id="2024/117", title="Sakkyndig vurdering",
                  recipient=recipient or person(), documents=tuple(documents))
    return Shipment(**{**values, **overrides})


def headers(token: str, konto_password: str = PASSWORD, integration_id: str = INTEGRATION_ID) -> dict:
    return {"Authorization": f"Bearer {token}", "IntegrasjonId": integration_id, "IntegrasjonPassord": konto_password}


def post_raw(server, tokens, forsendelse: dict, files: list[tuple[str, str, bytes]], kind: str = "organisasjon",
             body: bytes | None = None, content_type: str | None = None) -> requests.Response:
    """A send built by the test, for what our adapter would never send."""
    if body is None:
        body, content_type = multipart_body(forsendelse, files)
    return requests.post(f"{server.url}/api/v3/kontoer/{KONTO}/forsendelser/{kind}", data=body, timeout=5,
                         headers={**headers(tokens.token()), "Content-Type": content_type})


def org_forsendelse(**overrides) -> dict:
    """A minimal valid OrganisasjonForsendelse with one PDF named brev.pdf."""
    value = {"tittel": "Brev", "mottaker": {"navn": "Bakken skule", "digitalId": SCHOOL_ORG,
                                            "adresse": {"adresselinje1": "Skulevegen 2", "poststed": "Bergen"}},
             "dokumenter": [{"filnavn": "brev.pdf", "mimeType": "application/pdf"}]}
    value.update(overrides)
    return value


# --- sending -------------------------------------------------------------------------------------

def test_person_letter_goes_encrypted_at_the_highest_level(server, adapter):
    """A guardian's letter: /person, HOYESTE + kryptert, each file enveloped to SvarUt's cert, stored plain."""
    letter = shipment(person(digital_id=D_NUMBER, address_line2="Leilighet H0201"))
    result = adapter.send(letter)
    assert result.outcome == SENT, result
    record = server.shipments[result.forsendelse_id]
    sent = record["json"]
    assert record["type"] == "person"
    assert sent["sikkerhetsniva"] == "HOYESTE" and sent["kryptert"] is True
    assert "kunDigitalLevering" not in sent and "taushetsbelagtPost" not in sent
    assert sent["eksternReferanse"] == letter.external_ref and sent["korrelasjonsid"] == "2024/117"
    assert sent["avgivendeSystem"] == "ppt_web"
    assert sent["mottaker"] == {"navn": "Kari Nordmann", "digitalId": D_NUMBER,
                                "adresse": {"adresselinje1": "Storgata 1", "adresselinje2": "Leilighet H0201",
                                            "postnummer": "0150", "poststed": "Oslo", "landkode": "NO"}}
    assert record["files"] == {d.filename: d.data for d in letter.documents}
    for raw, document in zip(record["raw_files"], letter.documents, strict=True):
        assert raw != document.data and cms.decrypt(raw, server.server_key_pem) == document.data


def test_public_key_is_fetched_once_without_our_credentials(server, adapter):
    """SvarUt's certificate is cached, and the public endpoint never sees our token or password."""
    assert adapter.send(shipment()).outcome == SENT
    assert adapter.send(shipment()).outcome == SENT
    fetches = [r for r in server.requests if r["path"] == "/forsendelse/publickey/hent"]
    assert len(fetches) == 1
    assert not {"Authorization", "IntegrasjonPassord"} & set(fetches[0]["headers"])


def test_given_certificate_is_used_without_fetching(server, tokens):
    """public_key_pem configured: no call to the key URL at all."""
    adapter = SvarUtAdapter(server.url, KONTO, INTEGRATION_ID, PASSWORD, tokens, public_key_pem=server.server_cert_pem,
                            timeout=5)
    assert adapter.send(shipment()).outcome == SENT
    assert not [r for r in server.requests if r["path"] == "/forsendelse/publickey/hent"]


def test_organisation_letter_is_confidential_with_noark_metadata(server, adapter):
    """A school's letter: /organisasjon, BETYDELIG, taushetsbelagtPost, plain files, saksaar/sakssekvensnummer."""
    letter = shipment(school(), case_year=2024, case_sequence=117)
    result = adapter.send(letter)
    assert result.outcome == SENT, result
    record = server.shipments[result.forsendelse_id]
    sent = record["json"]
    assert record["type"] == "organisasjon"
    assert sent["sikkerhetsniva"] == "BETYDELIG" and sent["taushetsbelagtPost"] is True
    assert "kryptert" not in sent and "kunDigitalLevering" not in sent
    assert sent["metadataFraAvleverendeSystem"] == {"saksaar": 2024, "sakssekvensnummer": 117}
    assert sent["mottaker"]["digitalId"] == SCHOOL_ORG
    assert record["raw_files"] == [d.data for d in letter.documents]
    assert not [r for r in server.requests if r["path"] == "/forsendelse/publickey/hent"]


def test_organisation_letter_without_case_number_has_no_noark_block(server, adapter):
    """No case number known: no metadataFraAvleverendeSystem at all (empty objects are not sent)."""
    result = adapter.send(shipment(school()))
    assert "metadataFraAvleverendeSystem" not in server.shipments[result.forsendelse_id]["json"]


def test_non_pdf_is_excluded_from_print_and_names_keep_their_letters(server, adapter):
    """A non-PDF gets skalEkskluderesFraUtskrift (no kunDigital); a UTF-8 file name arrives unchanged."""
    documents = (OutboundDocument("Vurdering – Øyvind Åsen.pdf", "application/pdf", PDF),
                 OutboundDocument("Logg.txt", "text/plain", b"logg"))
    result = adapter.send(shipment(documents=documents))
    assert result.outcome == SENT, result
    record = server.shipments[result.forsendelse_id]
    assert record["json"]["dokumenter"] == [
        {"filnavn": "Vurdering – Øyvind Åsen.pdf", "mimeType": "application/pdf"},
        {"filnavn": "Logg.txt", "mimeType": "text/plain", "skalEkskluderesFraUtskrift": True}]
    assert list(record["files"]) == ["Vurdering – Øyvind Åsen.pdf", "Logg.txt"]


def test_multipart_bytes_are_as_notes_say(server, adapter):
    """Part one is name="forsendelse" with application/json; then one part per document in dokumenter[] order."""
    letter = shipment(school(), documents=[OutboundDocument(f"{n}.pdf", "application/pdf", PDF) for n in "cab"])
    result = adapter.send(letter)
    request = next(r for r in server.requests if r["path"].endswith("/forsendelser/organisasjon"))
    boundary = request["headers"]["Content-Type"].split("boundary=")[1]
    body = request["body"]
    assert body.startswith(f'--{boundary}\r\nContent-Disposition: form-data; name="forsendelse"\r\n'
                           "Content-Type: application/json\r\n\r\n{".encode())
    assert body.endswith(f"--{boundary}--\r\n".encode())
    parts = server.shipments[result.forsendelse_id]["parts"]
    assert [(p["name"], p["filename"], p["content_type"]) for p in parts] == [
        ("forsendelse", None, "application/json"), ("dokumenter", "c.pdf", "application/pdf"),
        ("dokumenter", "a.pdf", "application/pdf"), ("dokumenter", "b.pdf", "application/pdf")]
    positions = [body.index(f'filename="{n}.pdf"'.encode()) for n in "cab"]
    assert positions == sorted(positions)
    for name in ("IntegrasjonId", "IntegrasjonPassord", "Authorization"):
        assert request["headers"][name]


@pytest.mark.parametrize("files, problem", [
    ([("b.pdf", "application/pdf", PDF), ("a.pdf", "application/pdf", PDF)], "rekkefølge"),
    ([("a.pdf", "application/pdf", PDF)], "1 filer, men 2 dokumenter"),
    ([("a.pdf", "application/pdf", PDF), ("b.pdf", "application/pdf", PDF), ("c.pdf", "application/pdf", PDF)],
     "3 filer, men 2 dokumenter"),
])
def test_server_refuses_files_that_do_not_match_dokumenter(server, tokens, files, problem):
    """Count, order and filename are checked against dokumenter[]; nothing is stored."""
    forsendelse = org_forsendelse(dokumenter=[{"filnavn": "a.pdf", "mimeType": "application/pdf"},
                                              {"filnavn": "b.pdf", "mimeType": "application/pdf"}])
    response = post_raw(server, tokens, forsendelse, files)
    assert response.status_code == 400
    assert problem in response.json()["message"] and uuid.UUID(response.json()["errorId"])
    assert not server.shipments


def test_server_refuses_a_body_whose_first_part_is_a_file(server, tokens):
    """The forsendelse part must come first, even when every part is otherwise right."""
    body, content_type = multipart_body(org_forsendelse(), [("brev.pdf", "application/pdf", PDF)])
    boundary = content_type.split("boundary=")[1].encode()
    parts = body.split(b"--" + boundary)
    swapped = b"--" + boundary + parts[2] + b"--" + boundary + parts[1] + b"--" + boundary + parts[3]
    response = post_raw(server, tokens, {}, [], body=swapped, content_type=content_type)
    assert response.status_code == 400 and "forsendelse" in response.json()["message"]


@pytest.mark.parametrize("change, problem", [
    ({"tittel": "x" * 1001}, "forsendelse.tittel: for lang"),
    ({"tittel": ""}, "forsendelse.tittel: for kort"),
    ({"mottaker": None}, "forsendelse.mottaker: skal være object"),
    ({"mottaker": {"navn": "Skule"}}, "forsendelse.mottaker.digitalId: påkrevd"),
    ({"mottaker": {"navn": "S", "digitalId": SCHOOL_ORG, "adresse": {"poststed": "Bergen"}}},
     "adresselinje1: påkrevd"),
    ({"mottaker": {"navn": "S", "digitalId": "123456789"}}, "ikke et gyldig organisasjonsnummer"),
    ({"sikkerhetsniva": "HØG"}, "forsendelse.sikkerhetsniva: ugyldig verdi"),
    ({"sikkerhetsniva": "HOYESTE"}, "HOYESTE krever kryptert"),
    ({"dokumenter": [{"filnavn": "brev.pdf", "mimeType": "text/plain"}]}, "skalEkskluderesFraUtskrift"),
    ({"kanSvareViaEdialog": True}, "kanSvareViaEdialog krever svarSendesTil"),
    ({"lenker": [{"url": "https://example.org", "tekst": f"lenke {n}"} for n in range(6)]}, "høyst 5 elementer"),
    ({"konteringskode": "ppt/1"}, "konteringskode: følger ikke mønsteret"),
    ({"metadataFraAvleverendeSystem": {"saksaar": 24}}, "saksaar"),
    ({"eksternReferanse": "x" * 101}, "eksternReferanse: for lang"),
    ({"eksternRef": "misspelt"}, "forsendelse.eksternRef: ukjent felt"),
    ({"taushetsbelagtPost": "true"}, "taushetsbelagtPost: skal være boolean"),
])
def test_server_validates_against_the_send_spec(server, tokens, change, problem):
    """The schema and the cross-field rules refuse with 400 and an ErrorMessage; nothing is stored."""
    response = post_raw(server, tokens, org_forsendelse(**change), [("brev.pdf", "application/pdf", PDF)])
    assert response.status_code == 400, response.text
    assert problem in response.json()["message"]
    assert not server.shipments


def test_server_refuses_duplicate_filenames_and_forbidden_characters(server, tokens):
    """filnavn must be unique and free of * : " \\ / < > | ?."""
    documents = [{"filnavn": "a.pdf", "mimeType": "application/pdf"}] * 2
    response = post_raw(server, tokens, org_forsendelse(dokumenter=documents),
                        [("a.pdf", "application/pdf", PDF)] * 2)
    assert response.status_code == 400 and "filnavn må være unike" in response.json()["message"]
    forbidden = org_forsendelse(dokumenter=[{"filnavn": "a?.pdf", "mimeType": "application/pdf"}])
    response = post_raw(server, tokens, forbidden, [("a?.pdf", "application/pdf", PDF)])
    assert response.status_code == 400 and "ulovlige tegn" in response.json()["message"]


def test_server_refuses_a_kryptert_file_it_cannot_open(server, tokens):
    """kryptert: true with plain bytes is a 400, not a stored letter of garbage."""
    forsendelse = org_forsendelse(kryptert=True, sikkerhetsniva="HOYESTE")
    response = post_raw(server, tokens, forsendelse, [("brev.pdf", "application/pdf", PDF)])
    assert response.status_code == 400 and "dekrypteres" in response.json()["message"]


# --- auth ----------------------------------------------------------------------------------------

def _expired_token(token_keys) -> str:
    return LocalJwtTokenProvider(token_keys[0], OUR_ORG, clock=lambda: time.time() - 3600).token()


@pytest.mark.parametrize("case", ["no bearer", "not a jwt", "other key", "expired", "wrong scope", "other consumer",
                                  "no integration id", "wrong password", "wrong integration"])
def test_bad_credentials_are_401_with_an_error_id(server, tokens, token_keys, case):
    """Each of the three headers is checked; the answer is a Fiks ErrorMessage with errorId."""
    good = tokens.token()
    sent = headers(good)
    if case == "no bearer":
        del sent["Authorization"]
    elif case == "not a jwt":
        sent["Authorization"] = "Bearer abc.def"
    elif case == "other key":
        sent["Authorization"] = f"Bearer {LocalJwtTokenProvider(make_token_keys()[0], OUR_ORG).token()}"
    elif case == "expired":
        sent["Authorization"] = f"Bearer {_expired_token(token_keys)}"
    elif case == "wrong scope":
        sent["Authorization"] = f"Bearer {LocalJwtTokenProvider(token_keys[0], OUR_ORG, scope='ks:annet').token()}"
    elif case == "other consumer":
        sent["Authorization"] = f"Bearer {LocalJwtTokenProvider(token_keys[0], SCHOOL_ORG).token()}"
    elif case == "no integration id":
        del sent["IntegrasjonId"]
    elif case == "wrong password":
        sent["IntegrasjonPassord"] = "feil"
    elif case == "wrong integration":
        sent["IntegrasjonId"] = str(uuid.uuid4())
    response = requests.post(f"{server.url}/api/v3/kontoer/{KONTO}/forsendelser/status/sok", json={"id": []},
                             headers=sent, timeout=5)
    assert response.status_code == 401
    error = response.json()
    assert error["status"] == 401 and uuid.UUID(error["errorId"]) and error["path"].endswith("/status/sok")
    assert isinstance(error["timestamp"], int)


def test_a_konto_the_integration_may_not_use_is_403(server, tokens):
    """Valid credentials, but a kontoId the integration has no right on."""
    response = requests.get(f"{server.url}/api/v2/kontoer/{OTHER_KONTO}/forsendelser", params={"eksternRef": "x"},
                            headers=headers(tokens.token()), timeout=5)
    assert response.status_code == 403 and uuid.UUID(response.json()["errorId"])


def test_adapter_reports_refused_credentials(server, tokens):
    """send: failed with 401 and the errorId; lookup and statuses: OutboundUnavailable saying 401 or 403."""
    wrong = SvarUtAdapter(server.url, KONTO, INTEGRATION_ID, "feil", tokens, timeout=5)
    result = wrong.send(shipment(school()))
    assert result.outcome == FAILED and result.forsendelse_id is None
    assert "HTTP 401" in result.detail and "errorId" in result.detail
    with pytest.raises(OutboundUnavailable, match="401"):
        wrong.lookup("x")
    other = SvarUtAdapter(server.url, OTHER_KONTO, INTEGRATION_ID, PASSWORD, tokens, timeout=5)
    with pytest.raises(OutboundUnavailable, match="403"):
        other.statuses([str(uuid.uuid4())])
    assert other.send(shipment(school())).outcome == FAILED
    assert not server.shipments


def test_token_provider_failure_sends_nothing(server):
    """A provider that raises: send is unknown (nothing went out), lookup is unavailable."""
    class Broken:
        def token(self) -> str:
            raise ConnectionError("maskinporten is down")

    adapter = SvarUtAdapter(server.url, KONTO, INTEGRATION_ID, PASSWORD, Broken(), timeout=5)
    result = adapter.send(shipment(school()))
    assert result.outcome == UNKNOWN and "no access token" in result.detail
    with pytest.raises(OutboundUnavailable, match="no access token"):
        adapter.lookup("x")
    assert not server.requests


# --- outcomes ------------------------------------------------------------------------------------

def test_a_refusal_is_failed_with_message_and_error_id_but_no_national_id(server, adapter):
    """reject mode: 400 -> failed; SvarUt's text is kept, a national id in it is masked."""
    server.mode = "reject"
    server.reject_message = f"Ugyldig mottaker {FNR} (151086 95088)"
    result = adapter.send(shipment())
    assert result.outcome == FAILED and result.forsendelse_id is None
    assert "HTTP 400" in result.detail and "Ugyldig mottaker" in result.detail and "errorId" in result.detail
    assert FNR not in result.detail and "95088" not in result.detail
    assert not server.shipments


def test_a_server_error_is_unknown_and_nothing_was_stored(server, adapter):
    """500 -> unknown; the lookup before a retry then finds nothing, so resending is right."""
    letter = shipment(school())
    server.mode = "server_error"
    result = adapter.send(letter)
    assert result.outcome == UNKNOWN and "HTTP 500" in result.detail
    with pytest.raises(OutboundUnavailable, match="HTTP 500"):
        adapter.lookup(letter.external_ref)
    server.mode = "ok"
    assert adapter.lookup(letter.external_ref) is None


def test_a_timeout_after_store_is_unknown_and_the_lookup_finds_it(server, tokens):
    """The letter was stored but the answer never came: unknown; lookup(eksternRef) adopts the stored id."""
    impatient = SvarUtAdapter(server.url, KONTO, INTEGRATION_ID, PASSWORD, tokens, timeout=0.3)
    letter = shipment()
    server.mode = "timeout_after_store"
    started = time.monotonic()
    result = impatient.send(letter)
    assert time.monotonic() - started < 1.5
    assert result.outcome == UNKNOWN and result.forsendelse_id is None and "Timeout" in result.detail
    stored = server.by_external_ref(letter.external_ref)
    assert len(stored) == 1
    assert impatient.lookup(letter.external_ref) == stored[0]["id"]


def test_a_dropped_connection_after_store_is_unknown(server, adapter):
    """Stored, then the connection closed without an answer: unknown, and the lookup finds it."""
    letter = shipment(school())
    server.mode = "drop_after_store"
    result = adapter.send(letter)
    assert result.outcome == UNKNOWN
    assert adapter.lookup(letter.external_ref) == server.by_external_ref(letter.external_ref)[0]["id"]


def test_an_unreachable_svarut_is_unknown(tokens):
    """Nothing listening: unknown for both kinds of letter, unavailable for status."""
    adapter = SvarUtAdapter("http://127.0.0.1:9", KONTO, INTEGRATION_ID, PASSWORD, tokens, timeout=2)
    assert adapter.send(shipment(school())).outcome == UNKNOWN
    assert adapter.send(shipment()).outcome == UNKNOWN  # the public key cannot be fetched: nothing sent
    with pytest.raises(OutboundUnavailable):
        adapter.statuses([str(uuid.uuid4())])


def test_an_invalid_shipment_is_failed_without_a_request(server, adapter):
    """problems() runs first: a bad national id never reaches SvarUt, nor the detail."""
    result = adapter.send(shipment(person(digital_id="15108695089")))
    assert result.outcome == FAILED and "national identity number" in result.detail
    assert "15108695089" not in result.detail
    assert not server.requests


# --- lookup and status ---------------------------------------------------------------------------

def test_lookup_of_an_unknown_ref_is_none_and_of_a_known_one_is_its_id(server, adapter):
    """The v2 eksternRef lookup, on the exact spec path."""
    letter = shipment(school())
    assert adapter.lookup(letter.external_ref) is None
    sent = adapter.send(letter)
    assert adapter.lookup(letter.external_ref) == sent.forsendelse_id
    lookups = [r for r in server.requests if r["method"] == "GET" and "eksternRef=" in r["query"]]
    assert all(r["path"] == f"/api/v2/kontoer/{KONTO}/forsendelser" for r in lookups)


def test_statuses_are_fetched_in_batches_of_100(server, adapter):
    """250 ids -> three status/sok calls of at most 100; unknown ids are left out of the answer."""
    first, second = adapter.send(shipment(school())), adapter.send(shipment(school()))
    server.set_status(second.forsendelse_id, "LEST")
    ids = [str(uuid.uuid4()) for _ in range(124)] + [first.forsendelse_id] + \
        [str(uuid.uuid4()) for _ in range(124)] + [second.forsendelse_id]
    found = adapter.statuses(ids)
    assert found == {first.forsendelse_id: "MOTTATT", second.forsendelse_id: "LEST"}
    searches = [json.loads(r["body"])["id"] for r in server.requests if r["path"].endswith("/status/sok")]
    assert [len(batch) for batch in searches] == [100, 100, 50]
    assert adapter.statuses([]) == {}
    assert len([r for r in server.requests if r["path"].endswith("/status/sok")]) == 3


@pytest.mark.parametrize("raw, expected", [
    *[(s, "sent") for s in ("MOTTATT", "AKSEPTERT", "KLAR_FOR_MOTTAK", "SENDT_DIGITALT", "SENDT_SDP", "SENDT_ALTINN",
                            "VARSLET", "SENDT_PRINT", "SENDT_NHN_MOTTAKER")],
    *[(s, "confirmed") for s in ("LEST", "LEVERT_SDP", "LEVERT_ALTINN", "PRINTET", "LEVERT_NHN_MOTTAKER")],
    *[(s, "failed") for s in ("AVVIST", "FEILET_UNDER_MOTTAK", "IKKE_LEVERT")],
    ("MANUELT_HANDTERT", "manual"),
    ("SLETTET", None), ("NY_STATUS_FRA_2027", None), ("", None),
])
def test_map_status_follows_the_notes_table(raw, expected):
    assert map_status(raw) == expected


def test_every_published_status_is_mapped_on_purpose():
    """Both v3 lists (VARSLET and SENDT_/LEVERT_ALTINN) are in the table; only SLETTET means no change."""
    assert set(ALL_STATUSES) == set(STATUS_MAP)
    assert [s for s in ALL_STATUSES if map_status(s) is None] == ["SLETTET"]


def test_statuses_through_the_server_map_as_the_table_says(server, adapter):
    """set_status drives a stored letter through every status, plus one SvarUt may add later."""
    sent = adapter.send(shipment(school()))
    for raw in (*ALL_STATUSES, "NY_STATUS_FRA_2027"):
        server.set_status(sent.forsendelse_id, raw)
        assert adapter.statuses([sent.forsendelse_id]) == {sent.forsendelse_id: raw}
        assert map_status(raw) == STATUS_MAP.get(raw)


def test_hendelser_and_eksternref_metadata_answer(server, adapter, tokens):
    """The v2 diagnostics the server offers beside the adapter's own calls."""
    letter = shipment(school())
    sent = adapter.send(letter)
    server.set_status(sent.forsendelse_id, "AKSEPTERT")
    events = requests.get(f"{server.url}/api/v2/forsendelser/{sent.forsendelse_id}/hendelser",
                          headers=headers(tokens.token()), timeout=5).json()["hendelser"]
    assert [e["hendelse"] for e in events] == ["Forsendelse mottatt", "Status endret til AKSEPTERT"]
    metadata = requests.get(f"{server.url}/api/v2/kontoer/{KONTO}/forsendelser/metadata",
                            params={"eksternRef": letter.external_ref}, headers=headers(tokens.token()),
                            timeout=5).json()["forsendelser"]
    assert [(m["id"], m["avgivendeSystem"]) for m in metadata] == [(sent.forsendelse_id, "ppt_web")]


# --- checks before sending -----------------------------------------------------------------------

@pytest.mark.parametrize("letter, expected", [
    (shipment(title=""), "the title is empty"),
    (shipment(title="x" * 1001), "the title is longer than 1000"),
    (shipment(external_ref=""), "external reference"),
    (shipment(person(kind="guardian")), "person or an organisation"),
    (shipment(person(name="")), "name is empty"),
    (shipment(person(name="n" * 101)), "name is longer than 100"),
    (shipment(person(digital_id="15108695089")), "national identity number"),
    (shipment(person(digital_id=SCHOOL_ORG)), "national identity number"),
    (shipment(school(digital_id="123456789")), "organisation number is not valid"),
    (shipment(school(digital_id=FNR)), "organisation number is not valid"),
    (shipment(person(address_line1="")), "first address line is empty"),
    (shipment(person(city=" ")), "postal town is empty"),
    (shipment(person(postal_code="150")), "four digits"),
    (shipment(person(postal_code="")), "four digits"),
    (shipment(person(country="no")), "ISO 3166"),
    (shipment(documents=()), "there are no documents"),
    (shipment(documents=[OutboundDocument("", "application/pdf", PDF)]), "has no file name"),
    (shipment(documents=[OutboundDocument("x" * 223 + ".pdf", "application/pdf", PDF)]), "longer than 226"),
    (shipment(documents=[OutboundDocument("a/b.pdf", "application/pdf", PDF)]), "does not allow"),
    (shipment(documents=[OutboundDocument('a"b.pdf', "application/pdf", PDF)]), "does not allow"),
    (shipment(documents=[OutboundDocument("a\nb.pdf", "application/pdf", PDF)]), "control character"),
    (shipment(documents=[OutboundDocument("a.pdf", "application/pdf", PDF)] * 2), "more than one document"),
    (shipment(documents=[OutboundDocument("a.pdf", "", PDF)]), "no MIME type"),
    (shipment(documents=[OutboundDocument("a.pdf", "application/pdf\r\nX-Evil: 1", PDF)]), "control character"),
    (shipment(documents=[OutboundDocument("a.pdf", "application/pdf", b"")]), "is empty"),
    (shipment(documents=[OutboundDocument("a.txt", "text/plain", b"x")]), "none of the documents is a PDF"),
    (shipment(school(), case_year=24), "four-digit year"),
])
def test_problems_finds_each_fault_without_the_national_id(letter, expected):
    """Each listed fault has its own message, and none repeats a national id."""
    found = problems(letter)
    assert any(expected in message for message in found), found
    assert not any(FNR in m or "15108695089" in m or "95088" in m for m in found), found


def test_a_good_shipment_has_no_problems():
    """Fødselsnummer, d-nummer, spaced fnr, a foreign organisation address: all fine."""
    assert problems(shipment()) == []
    assert problems(shipment(person(digital_id=D_NUMBER))) == []
    assert problems(shipment(person(digital_id="151086 95088"))) == []  # spaces are compacted away
    assert problems(shipment(school(country="SE", postal_code="111 22"), case_year=2024, case_sequence=1)) == []


def test_a_file_name_holding_a_national_id_is_masked_in_messages():
    """A file name is echoed in messages, but never a national id inside it."""
    documents = [OutboundDocument(f"Vurdering {FNR}?.pdf", "application/pdf", PDF)]
    found = problems(shipment(documents=documents))
    assert found and not any(FNR in m for m in found)


# --- tokens --------------------------------------------------------------------------------------

def test_local_jwt_verifies_with_maskinporten_claims(token_keys):
    """RS256 over header.claims, scope ks:fiks, consumer 0192:<orgnr>, iat/exp/jti."""
    token = LocalJwtTokenProvider(token_keys[0], OUR_ORG).token()
    key = serialization.load_pem_public_key(token_keys[1])
    claims = verify_jwt(token, key, consumer_org=OUR_ORG)
    assert claims["scope"] == "ks:fiks"
    assert claims["consumer"] == {"authority": "iso6523-actorid-upis", "ID": f"0192:{OUR_ORG}"}
    assert claims["exp"] - claims["iat"] == 120 and uuid.UUID(claims["jti"])
    tampered = token.rsplit(".", 1)[0] + "." + token.rsplit(".", 1)[1][::-1]
    with pytest.raises(RequestError, match="signatur|lese"):
        verify_jwt(tampered, key)


def test_local_jwt_is_cached_until_30_seconds_before_expiry(token_keys):
    now = [1_700_000_000.0]
    provider = LocalJwtTokenProvider(token_keys[0], OUR_ORG, lifetime=120, clock=lambda: now[0])
    first = provider.token()
    now[0] += 89
    assert provider.token() == first
    now[0] += 1  # 30 s before exp
    second = provider.token()
    assert second != first
    key = serialization.load_pem_public_key(token_keys[1])
    with pytest.raises(RequestError, match="utløpt"):
        verify_jwt(first, key, now=now[0] + 31)
    assert verify_jwt(second, key, now=now[0] + 119)["exp"] == int(now[0]) + 120


def test_an_expired_token_is_refused_by_the_server(server, token_keys):
    """An expired token is a 401 naming the reason, reported as failed."""
    stale = SvarUtAdapter(server.url, KONTO, INTEGRATION_ID, PASSWORD, StaticTokenProvider(_expired_token(token_keys)),
                          timeout=5)
    result = stale.send(shipment(school()))
    assert result.outcome == FAILED and "401" in result.detail and "utløpt" in result.detail


def test_configuration_is_checked_at_construction(tokens):
    """Bad URL, konto id, missing password or an unreadable certificate fail at start-up, not at the first letter."""
    assert origin("https://test.svarut.ks.no/api/") == origin("https://test.svarut.ks.no") == \
        "https://test.svarut.ks.no"
    with pytest.raises(ValueError):
        SvarUtAdapter("test.svarut.ks.no", KONTO, INTEGRATION_ID, PASSWORD, tokens)
    with pytest.raises(ValueError):
        SvarUtAdapter("https://test.svarut.ks.no", "not-a-uuid", INTEGRATION_ID, PASSWORD, tokens)
    with pytest.raises(ValueError):
        SvarUtAdapter("https://test.svarut.ks.no", KONTO, INTEGRATION_ID, "", tokens)
    with pytest.raises(ValueError):
        SvarUtAdapter("https://test.svarut.ks.no", KONTO, INTEGRATION_ID, PASSWORD, tokens, public_key_pem=b"nope")


# --- the folder adapter --------------------------------------------------------------------------

def test_folder_send_writes_the_v3_json_and_the_files(tmp_path):
    """ut/<ref>/forsendelse.json is the v3 JSON with type, beside the plain documents; nothing temporary is left."""
    adapter = FolderAdapter(tmp_path)
    letter = shipment()
    result = adapter.send(letter)
    assert result == replace(result, outcome=SENT, forsendelse_id=letter.external_ref)
    folder = tmp_path / "ut" / letter.external_ref
    meta = json.loads((folder / "forsendelse.json").read_text(encoding="utf-8"))
    assert meta["type"] == "person" and meta["sikkerhetsniva"] == "HOYESTE" and meta["kryptert"] is True
    assert meta["eksternReferanse"] == letter.external_ref
    assert [d["filnavn"] for d in meta["dokumenter"]] == [d.filename for d in letter.documents]
    for document in letter.documents:
        assert (folder / document.filename).read_bytes() == document.data
    assert sorted(p.name for p in (tmp_path / "ut").iterdir()) == [letter.external_ref]
    organisation = shipment(school(), case_year=2024, case_sequence=9)
    adapter.send(organisation)
    meta = json.loads((tmp_path / "ut" / organisation.external_ref / "forsendelse.json").read_text(encoding="utf-8"))
    assert meta["type"] == "organisasjon" and meta["taushetsbelagtPost"] is True
    assert meta["metadataFraAvleverendeSystem"] == {"saksaar": 2024, "sakssekvensnummer": 9}


def test_folder_json_is_what_the_server_accepts(tmp_path, server, tokens):
    """The folder holds exactly the JSON the http adapter sends (less "type"): the server's validator takes it."""
    letter = shipment(school())
    FolderAdapter(tmp_path).send(letter)
    meta = json.loads((tmp_path / "ut" / letter.external_ref / "forsendelse.json").read_text(encoding="utf-8"))
    kind = meta.pop("type")
    response = post_raw(server, tokens, meta, [(d.filename, d.mime_type, d.data) for d in letter.documents], kind=kind)
    assert response.status_code == 200, response.text


def test_folder_send_is_idempotent(tmp_path):
    """A second send of the same ref is 'sent' with the same id and does not touch the folder."""
    adapter = FolderAdapter(tmp_path)
    letter = shipment()
    first = adapter.send(letter)
    path = tmp_path / "ut" / letter.external_ref / "forsendelse.json"
    before = path.read_bytes()
    again = adapter.send(replace(letter, title="Endra tittel"))
    assert again.outcome == SENT and again.forsendelse_id == first.forsendelse_id
    assert path.read_bytes() == before


def test_folder_send_leaves_nothing_half_written(tmp_path, monkeypatch):
    """A write that fails midway leaves no ut/<ref>/ (so lookup says None) and no temporary folder."""
    adapter = FolderAdapter(tmp_path)
    letter = shipment()
    import ppt_web.outbound.folder as folder_module
    real = folder_module._write_durably
    calls = []

    def failing(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(folder_module, "_write_durably", failing)
    result = adapter.send(letter)
    assert result.outcome == UNKNOWN and "No space left" in result.detail
    assert adapter.lookup(letter.external_ref) is None
    assert list((tmp_path / "ut").iterdir()) == []
    monkeypatch.setattr(folder_module, "_write_durably", real)
    assert adapter.send(letter).outcome == SENT


def test_folder_send_loses_a_race_gracefully(tmp_path, monkeypatch):
    """Another process renames the same ref into place first: ours is 'sent' too, and its temp folder goes."""
    adapter = FolderAdapter(tmp_path)
    letter = shipment()
    import ppt_web.outbound.folder as folder_module
    real = folder_module._fsync_dir

    def other_writer_wins(path):
        if path.name.startswith(".tmp-"):
            winner = tmp_path / "ut" / letter.external_ref
            winner.mkdir()
            (winner / "forsendelse.json").write_text("{}")
        real(path)

    monkeypatch.setattr(folder_module, "_fsync_dir", other_writer_wins)
    result = adapter.send(letter)
    assert result.outcome == SENT and result.forsendelse_id == letter.external_ref
    assert [p.name for p in (tmp_path / "ut").iterdir()] == [letter.external_ref]
    assert (tmp_path / "ut" / letter.external_ref / "forsendelse.json").read_text() == "{}"


def test_folder_lookup_and_statuses(tmp_path):
    """lookup finds written refs; status is LEST (confirmed) unless status/<ref>.json says otherwise."""
    adapter = FolderAdapter(tmp_path)
    delivered, refused = shipment(), shipment(school())
    adapter.send(delivered)
    adapter.send(refused)
    assert adapter.lookup(delivered.external_ref) == delivered.external_ref
    assert adapter.lookup(str(uuid.uuid4())) is None
    assert adapter.lookup("../ut") is None
    (tmp_path / "status").mkdir()
    (tmp_path / "status" / f"{refused.external_ref}.json").write_text('{"status": "AVVIST"}')
    unknown = str(uuid.uuid4())
    found = adapter.statuses([delivered.external_ref, refused.external_ref, unknown])
    assert found == {delivered.external_ref: "LEST", refused.external_ref: "AVVIST"}
    assert map_status(found[delivered.external_ref]) == "confirmed"
    assert map_status(found[refused.external_ref]) == "failed"


def test_folder_refuses_what_it_cannot_hold(tmp_path):
    """An unsafe folder name, a reserved file name, or what SvarUt would refuse: failed, nothing written."""
    adapter = FolderAdapter(tmp_path)
    assert adapter.send(shipment(external_ref="../escape")).outcome == FAILED
    reserved = [OutboundDocument("forsendelse.json", "application/pdf", PDF)]
    assert adapter.send(shipment(documents=reserved)).outcome == FAILED
    assert adapter.send(shipment(person(postal_code="1"))).outcome == FAILED
    assert not (tmp_path / "ut").exists()
