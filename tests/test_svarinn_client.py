"""The inbound sources on their own: CMS against KS's vectors, SvarInnSource against a local SvarInn V2, FolderSource.

No app and no database here: the inbox that uses these sources is tested elsewhere.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import uuid
import zipfile
from datetime import UTC, date, datetime

import pytest
import requests

from ppt_web.files.zips import ZipRefused
from ppt_web.inbound import cms
from ppt_web.inbound.folder import FolderSource, write_example
from ppt_web.inbound.metadata import parse_message, unzip
from ppt_web.inbound.svarinn import SvarInnSource, origin
from ppt_web.inbound.types import InboundFailure, InboundMessage, InboundUnavailable

from .helpers import find_ks_testdata
from .svarinn_server import API, SvarInnServer, build_metadata, make_key_and_cert, zip_files

USER, PASSWORD = "ppt-mottak", "test-passord"


pytestmark = pytest.mark.one_database  # engine-independent: CI runs it on one database


@pytest.fixture(scope="module")
def ks():
    """The ks-svarut folder: spec and testdata."""
    found = find_ks_testdata()
    if found is None:
        assert not os.environ.get("CI"), "CI lays shared/ beside the checkout"
        pytest.skip("no shared/standards/ks-svarut beside this checkout")
    return found


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    """Our mottakersystem key pair, made fresh for this run."""
    return make_key_and_cert()


@pytest.fixture
def server(keys):
    with SvarInnServer(keys[1], USER, PASSWORD) as running:
        yield running


@pytest.fixture
def source(server, keys) -> SvarInnSource:
    return SvarInnSource(server.url, USER, PASSWORD, keys[0], timeout=5)


def messages(results) -> list[InboundMessage]:
    results = list(results)
    assert all(isinstance(r, InboundMessage) for r in results), results
    return results


def only_failure(results) -> InboundFailure:
    results = list(results)
    assert len(results) == 1 and isinstance(results[0], InboundFailure), results
    return results[0]


# --- CMS ---------------------------------------------------------------------------------------

def test_ks_ber_vector_opens_to_the_published_zip(ks):
    """dokumenter.crypt is indefinite-length BER from BouncyCastle; it must give dokumenter.zip byte for byte."""
    data = ks / "testdata"
    opened = cms.decrypt((data / "dokumenter.crypt").read_bytes(), (data / "sp-key.pem").read_bytes())
    assert opened == (data / "dokumenter.zip").read_bytes()


def test_ks_small_vector_is_small_pdf(ks):
    """small.crypt holds small.pdf itself, not a ZIP."""
    data = ks / "testdata"
    opened = cms.decrypt((data / "small.crypt").read_bytes(), (data / "sp-key.pem").read_bytes())
    assert opened == (data / "small.pdf").read_bytes()


@pytest.mark.parametrize("size", [0, 1, 15, 16, 100_000])
def test_encrypt_then_decrypt_round_trip(keys, size):
    """Every padding case, including empty content."""
    data = os.urandom(size)
    envelope = cms.encrypt(data, keys[1])
    assert envelope[0] == 0x30 and envelope[1] != 0x80  # DER: definite length
    assert cms.decrypt(envelope, keys[0]) == data


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl on this machine")
def test_a_damaged_envelope_our_oaep_key_opened_is_the_senders_fault(keys):
    """OAEP unwraps only with the right key, so bad content after it is the sender's envelope (FEILET),
    not our key setup (left waiting with an alert)."""
    envelope = bytearray(cms.encrypt(b"x" * 100, keys[1]))
    envelope[-1] ^= 0xFF  # the last cipher block: its padding no longer checks
    with pytest.raises(cms.CmsError) as refused:
        cms.decrypt(bytes(envelope), keys[0])
    assert not refused.value.ours


def test_openssl_opens_our_envelope(keys, tmp_path):
    """encrypt() makes what `openssl cms -encrypt` with OAEP-SHA-256 makes, so openssl opens it."""
    (tmp_path / "key.pem").write_bytes(keys[0])
    (tmp_path / "in.der").write_bytes(cms.encrypt(b"hei fra PPT", keys[1]))
    done = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-binary", "-inkey",
                           str(tmp_path / "key.pem"), "-in", str(tmp_path / "in.der")], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"hei fra PPT"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl on this machine")
@pytest.mark.parametrize("options, opens", [
    (["-aes-128-cbc"], True),  # rsaEncryption (PKCS#1 v1.5) key transport, the openssl default
    (["-aes-192-cbc", "-stream"], True),  # streamed: BER with indefinite lengths
    (["-des3"], False),
    (["-aes-256-gcm"], False),  # AuthEnvelopedData
])
def test_other_algorithms_from_openssl(keys, tmp_path, options, opens):
    """rsaEncryption and every AES-CBC key size open; other ciphers are a clear CmsError."""
    (tmp_path / "cert.pem").write_bytes(keys[1])
    (tmp_path / "in.bin").write_bytes(b"x" * 3000)
    done = subprocess.run(["openssl", "cms", "-encrypt", "-binary", *options, "-outform", "DER",
                           "-in", str(tmp_path / "in.bin"), str(tmp_path / "cert.pem")], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    if opens:
        assert cms.decrypt(done.stdout, keys[0]) == b"x" * 3000
    else:
        with pytest.raises(cms.CmsError):
            cms.decrypt(done.stdout, keys[0])


def test_wrong_key_is_cms_error(keys):
    other_key, _ = make_key_and_cert("someone-else")
    with pytest.raises(cms.CmsError, match="does not open with this private key") as refused:
        cms.decrypt(cms.encrypt(b"data", keys[1]), other_key)
    assert refused.value.ours  # our key setup, not the sender's letter


def test_truncated_envelope_is_cms_error(keys, ks):
    """Cut anywhere, DER or KS's BER, the envelope is refused rather than half-decrypted."""
    ours = cms.encrypt(b"a" * 5000, keys[1])
    theirs = (ks / "testdata" / "dokumenter.crypt").read_bytes()
    for envelope, key in ((ours, keys[0]), (theirs, (ks / "testdata" / "sp-key.pem").read_bytes())):
        for cut in (1, 40, len(envelope) // 2, len(envelope) - 2):
            with pytest.raises(cms.CmsError) as refused:
                cms.decrypt(envelope[:cut], key)
            assert not refused.value.ours, cut  # a damaged envelope is not a key problem


def test_not_an_envelope_is_cms_error(keys):
    for junk in (b"", b"PK\x03\x04 a zip, not encrypted", b"\x30\x03\x02\x01\x00"):
        with pytest.raises(cms.CmsError) as refused:
            cms.decrypt(junk, keys[0])
        assert not refused.value.ours
    with pytest.raises(cms.CmsError, match="private key") as refused:
        cms.decrypt(cms.encrypt(b"x", keys[1]), keys[1])  # a certificate where the key should be
    assert refused.value.ours


# --- metadata and ZIP --------------------------------------------------------------------------

def test_climbing_or_absolute_filenames_are_bad_metadata():
    for name in ("../x.pdf", "/etc/passwd", "a/../../x", "C:\\x.pdf", "..\\x.pdf", ""):
        meta = build_metadata(str(uuid.uuid4()), {name: b"x"})
        result = parse_message(meta, {name: b"x"})
        assert isinstance(result, InboundFailure) and result.reason == "bad_metadata", name


def test_unknown_fields_are_ignored_and_missing_required_ones_are_not():
    """KS may add fields; the ones the inbox relies on must be there."""
    files = {"a.pdf": b"%PDF"}
    meta = build_metadata(str(uuid.uuid4()), files, nyttFelt={"x": 1}, dato="not a date")
    message = parse_message(meta, files)
    assert isinstance(message, InboundMessage) and message.sent_at is None
    assert parse_message({**meta, "taushetsbelagtPost": False}, files).confidential is False
    unmarked = {k: v for k, v in meta.items() if k != "taushetsbelagtPost"}
    assert parse_message(unmarked, files).confidential is True  # unknown: treated as confidential
    for broken in ({"id": "not-a-uuid"}, {"tittel": "  "}, {"avsender": {"postadresse": {}}}, {"filer": []},
                   {"filer": [{"filnavn": "a.pdf", "hash": "abc", "storrelse": 4}]}):
        result = parse_message({**meta, **broken}, files)
        assert isinstance(result, InboundFailure) and result.reason == "bad_metadata", broken
        assert result.permanent


def test_detail_never_carries_a_national_id():
    """A file name may hold a fødselsnummer; the detail goes to logs and back to the sender."""
    meta = build_metadata(str(uuid.uuid4()), {"vedtak 01017012345.pdf": b"x"})
    result = parse_message(meta, {})
    assert result.reason == "missing_file"
    assert "01017012345" not in result.detail and "vedtak" in result.detail


def test_zip_bomb_is_refused():
    """Size from the ZIP directory and bytes actually inflated both count against the limit."""
    bomb = zip_files({"zeros.bin": bytes(1_000_000)})
    assert len(bomb) < 10_000
    with pytest.raises(ZipRefused, match="limit"):
        unzip(bomb, max_bytes=100_000)
    assert unzip(bomb, max_bytes=1_000_000) == {"zeros.bin": bytes(1_000_000)}
    with pytest.raises(ZipRefused):
        unzip(b"PK\x05\x06 not really a zip")


# --- SvarInnSource against the local SvarInn V2 ---------------------------------------------------

def test_a_forsendelse_arrives_with_its_metadata(server, source):
    """Sender, title, dates and the sender's references come through; files are checked and in order."""
    files = {"tilvising.pdf": b"%PDF-1.4 tilvising", "vedlegg.txt": b"hei"}
    sent = server.add(files=files)
    [message] = messages(source.fetch())
    assert message.id == sent
    assert message.title == "Tilvising til PPT"
    assert (message.sender_name, message.sender_org_number) == ("Testkommune skule", "123456789")
    assert message.sender_address == "Skulevegen 1, 0612 Oslo"
    assert message.sent_at == datetime(2024, 1, 16, 18, 39, 11, tzinfo=UTC)
    assert message.document_date == date(2024, 1, 15)  # midnight in Oslo, sent as 23:00Z the day before
    assert (message.sender_case_ref, message.sender_post_ref) == ("2024/1234", "2024/5678-3")
    assert message.sender_handler == "Kari Nordmann"
    assert message.confidential is True
    assert [(f.filename, f.mime_type, f.data) for f in message.files] == [
        ("tilvising.pdf", "application/pdf", files["tilvising.pdf"]), ("vedlegg.txt", "text/plain", b"hei")]
    assert message.raw["id"] == sent


def test_listed_items_have_every_field_the_spec_requires(server, ks):
    """The test server lists what svarinn-api-v2.json's Forsendelse schema requires (types and enums too)."""
    spec = json.loads((ks / "svarinn-v2" / "svarinn-api-v2.json").read_text())
    server.add(files={"a.pdf": b"%PDF-1.4"})
    response = requests.get(server.url + API, auth=(USER, PASSWORD), timeout=5)
    assert response.status_code == 200
    listed = response.json()
    schema = spec["paths"]["/svarinn/v2/forsendelser"]["get"]["responses"]["default"]["content"][
        "application/json"]["schema"]
    assert _schema_problems(listed, schema, spec) == []


def test_more_than_one_page_is_fetched_in_one_pass(server, source):
    """205 waiting, 200 per page: the caller acknowledges as it goes and gets all 205, each once."""
    sent = set(server.add_many(205))
    seen = []
    for result in source.fetch():
        assert isinstance(result, InboundMessage)
        seen.append(result.id)
        source.acknowledge(result.id)
    assert len(seen) == 205 and set(seen) == sent
    assert set(server.downloads.values()) == {1}
    assert server.requests.count(("GET", API)) == 3  # 200, then 5, then an empty page
    assert server.waiting() == []


def test_a_pass_ends_when_nothing_is_acknowledged(server, source):
    """Items kept waiting (not acknowledged) are handed out once per pass, not in a loop."""
    server.add_many(3)
    assert len(messages(source.fetch())) == 3
    assert server.requests.count(("GET", API)) == 2
    assert len(messages(source.fetch())) == 3  # the next poll sees them again


def test_acknowledge_removes_it_and_may_be_repeated(server, source):
    sent = server.add()
    [message] = messages(source.fetch())
    source.acknowledge(message.id)
    source.acknowledge(message.id)  # a crash between commit and PATCH makes the caller do this
    assert server.acknowledged == {sent}
    assert list(source.fetch()) == []


def test_permanent_failure_is_feilet_with_its_reason(server, source):
    sent = server.add(fault="hash_mismatch")
    result = only_failure(source.fetch())
    assert (result.id, result.reason, result.permanent) == (sent, "hash_mismatch", True)
    assert result.payload and result.raw_metadata["id"] == sent  # the envelope, kept for quarantine
    source.fail(result.id, result.detail, result.permanent)
    assert server.failed[sent] == {"feilmelding": result.detail, "permanent": True}
    assert sent in server.rerouted
    assert list(source.fetch()) == []


def test_transient_failure_leaves_it_waiting(server, source):
    sent = server.add()
    source.fail(sent, "disken er full", permanent=False)
    assert server.failed[sent] == {"feilmelding": "disken er full", "permanent": False}
    assert [m.id for m in messages(source.fetch())] == [sent]


@pytest.mark.parametrize("fault, reason, permanent", [
    ("hash_mismatch", "hash_mismatch", True),
    ("wrong_key", "key_mismatch", False),  # ours to fix: left waiting, not sent to print
    ("truncated", "decrypt_failed", True),
    ("download_error", "download_failed", False),
    ("bad_metadata", "bad_metadata", True),
])
def test_faults_become_failures(server, source, fault, reason, permanent):
    sent = server.add(fault=fault)
    result = only_failure(source.fetch())
    assert (result.id, result.reason, result.permanent) == (sent, reason, permanent)
    if fault == "bad_metadata":
        assert server.downloads[sent] == 0  # refused on its metadata, nothing downloaded


def test_missing_download_is_transient(server, source):
    """A 404 on nedlastingslenke is odd (log it), but not a reason to send the letter elsewhere."""
    files = {"a.pdf": b"%PDF"}
    message_id = str(uuid.uuid4())
    server.add(build_metadata(message_id, files, nedlastingslenke=f"{API}/{uuid.uuid4()}"), files)
    result = only_failure(source.fetch())
    assert (result.id, result.reason, result.permanent) == (message_id, "download_failed", False)
    assert "404" in result.detail


def test_size_mismatch_missing_file_and_bad_zip(server, source, keys):
    files = {"a.pdf": b"%PDF-1.4 abc"}
    short = build_metadata(str(uuid.uuid4()), files)
    short["filer"][0]["storrelse"] = 3
    server.add(short, files)
    extra = build_metadata(str(uuid.uuid4()), {**files, "b.pdf": b"%PDF"})
    server.add(extra, files)
    server.add(build_metadata(str(uuid.uuid4()), files), envelope=cms.encrypt(b"not a zip", keys[1]))
    assert [(r.reason, r.permanent) for r in source.fetch()] == [
        ("size_mismatch", True), ("missing_file", True), ("bad_zip", True)]


def test_zip_over_the_limit_is_bad_zip(server, keys):
    """The limit counts unpacked bytes; the metadata may understate them."""
    files = {"big.bin": bytes(300_000)}
    meta = build_metadata(str(uuid.uuid4()), {"big.bin": b"small"})
    server.add(meta, files)
    small_source = SvarInnSource(server.url, USER, PASSWORD, keys[0], timeout=5, max_bytes=100_000)
    assert only_failure(small_source.fetch()).reason == "bad_zip"


def test_wrong_credentials_are_unavailable(server, keys):
    server.add()
    wrong = SvarInnSource(server.url, USER, "feil-passord", keys[0], timeout=5)
    with pytest.raises(InboundUnavailable, match=r"refused the credentials \(401\)"):
        list(wrong.fetch())


def test_an_unusable_key_is_refused_at_start(server):
    """A wrong PPT_SVARINN_KEY shows at start-up, not as a FEILET on every letter."""
    with pytest.raises(cms.CmsError, match="private key"):
        SvarInnSource(server.url, USER, PASSWORD, b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")


def test_unreachable_service_is_unavailable(keys):
    server = SvarInnServer(keys[1], USER, PASSWORD)
    url = server.url
    server.stop()  # never started: the port is closed again
    with pytest.raises(InboundUnavailable):
        list(SvarInnSource(url, USER, PASSWORD, keys[0], timeout=2).fetch())


def test_base_url_may_end_in_api_or_slash(server, keys):
    """PPT_SVARINN_URL is the origin; KS's spec lists servers as .../api, so that is tolerated."""
    assert origin("https://test.svarut.ks.no/api/") == origin("https://test.svarut.ks.no/") == \
        "https://test.svarut.ks.no"
    server.add()
    assert len(messages(SvarInnSource(server.url + "/api/", USER, PASSWORD, keys[0], timeout=5).fetch())) == 1
    with pytest.raises(ValueError):
        origin("test.svarut.ks.no")


def test_credentials_go_only_to_the_configured_host(server, source):
    """nedlastingslenke is followed verbatim, but a link to another host gets no password."""
    server.add()
    item = server.waiting()[0]
    item["nedlastingslenke"] = "https://elsewhere.example/api/svarinn/v2/forsendelser/" + item["id"]
    result = only_failure(source.fetch())
    assert (result.reason, result.permanent) == ("download_failed", False)
    assert server.downloads[item["id"]] == 0


def test_legacy_download_path_is_followed(server, source):
    """KS's own example still points at /tjenester/svarinn/forsendelse/{id}."""
    files = {"a.pdf": b"%PDF-1.4"}
    message_id = str(uuid.uuid4())
    server.add(build_metadata(message_id, files,
                              nedlastingslenke=f"https://svarut.ks.no/tjenester/svarinn/forsendelse/{message_id}"),
               files)
    assert [m.id for m in messages(source.fetch())] == [message_id]
    assert ("GET", f"/tjenester/svarinn/forsendelse/{message_id}") in server.requests


def test_ks_example_with_its_ber_envelope(server, ks):
    """KS's example Forsendelse and dokumenter.crypt, served verbatim, open with sp-key.pem."""
    data = ks / "testdata"
    [meta] = json.loads((data / "svarinn-v2-forsendelse.example.json").read_text())
    server.add(meta, envelope=(data / "dokumenter.crypt").read_bytes())
    ks_source = SvarInnSource(server.url, USER, PASSWORD, (data / "sp-key.pem").read_bytes(), timeout=5)
    [message] = messages(ks_source.fetch())
    assert message.id == "f11f5cba-68ad-422f-ad2c-922cd6060f46"
    assert message.title == "Henvisning til PPT"
    assert (message.sender_name, message.sender_org_number) == ("Testkommune skole", "123456789")
    assert message.sender_address == "Skoleveien 1, 0612 Oslo"
    assert message.sent_at == datetime(2024, 1, 16, 18, 39, 11, tzinfo=UTC)
    assert message.document_date is None
    assert (message.sender_case_ref, message.sender_post_ref) == ("2005/648677", "2023/23456-17")
    assert message.confidential is True
    by_name = {f.filename: f for f in message.files}
    assert by_name["small.pdf"].data == (data / "small.pdf").read_bytes()
    assert by_name["text.txt"].mime_type == "text/plain" and len(by_name["text.txt"].data) == 11
    ks_source.acknowledge(message.id)
    assert server.acknowledged == {message.id}


def test_server_status_semantics(server):
    """PATCH as the spec and NOTES §3 say: FEILET needs feil, unknown ids are 404, bad auth 401."""
    sent = server.add()
    status = f"{server.url}{API}/{sent}/status"
    assert requests.patch(status, json={"status": "FEILET"}, auth=(USER, PASSWORD), timeout=5).status_code == 400
    assert requests.patch(status, json={"status": "LEST"}, auth=(USER, PASSWORD), timeout=5).status_code == 400
    assert requests.patch(f"{server.url}{API}/{uuid.uuid4()}/status", json={"status": "MOTTATT"},
                          auth=(USER, PASSWORD), timeout=5).status_code == 404
    assert requests.patch(status, json={"status": "MOTTATT"}, auth=(USER, "x"), timeout=5).status_code == 401
    for _ in range(2):
        assert requests.patch(status, json={"status": "MOTTATT"}, auth=(USER, PASSWORD), timeout=5).ok
    download = requests.get(f"{server.url}{API}/{sent}", auth=(USER, PASSWORD), timeout=5)
    assert download.headers["Content-Type"] == "application/zip"
    assert download.headers["Content-Disposition"].startswith("attachment; filename=")
    assert requests.get(f"{server.url}{API}/{uuid.uuid4()}", auth=(USER, PASSWORD), timeout=5).status_code == 404


# --- FolderSource ------------------------------------------------------------------------------

def test_folder_example_is_fetched_and_acknowledged(tmp_path):
    pdf = b"%PDF-1.4 skanna brev"
    sent = write_example(tmp_path, pdf, title="Tilvising", sender="Nordby skule", org_number="974123456")
    source = FolderSource(tmp_path)
    [message] = messages(source.fetch())
    assert (message.id, message.title, message.sender_name, message.sender_org_number) == (
        sent, "Tilvising", "Nordby skule", "974123456")
    assert [(f.filename, f.data) for f in message.files] == [("dokument.pdf", pdf)]
    source.acknowledge(sent)
    source.acknowledge(sent)
    assert not (tmp_path / "inn" / sent).exists()
    assert (tmp_path / "mottatt" / sent / "forsendelse.json").is_file()
    assert list(source.fetch()) == []


def test_folder_without_forsendelse_json_is_not_ready(tmp_path):
    """Writers put files first and forsendelse.json last; dot-folders are work in progress too."""
    (tmp_path / "inn" / "halvferdig").mkdir(parents=True)
    (tmp_path / "inn" / "halvferdig" / "dokument.pdf").write_bytes(b"%PDF")
    hidden = write_example(tmp_path, b"%PDF", title="t", sender="s", org_number=None)
    os.replace(tmp_path / "inn" / hidden, tmp_path / "inn" / f".{hidden}")
    assert list(FolderSource(tmp_path).fetch()) == []
    assert list(FolderSource(tmp_path / "finst-ikkje").fetch()) == []


def test_folder_hash_mismatch_fails_into_feilet(tmp_path):
    sent = write_example(tmp_path, b"%PDF-1.4 original", title="t", sender="s", org_number=None)
    (tmp_path / "inn" / sent / "dokument.pdf").write_bytes(b"%PDF-1.4 endra!!!")  # same size, other bytes
    source = FolderSource(tmp_path)
    result = only_failure(source.fetch())
    assert (result.id, result.reason, result.permanent) == (sent, "hash_mismatch", True)
    source.fail(result.id, result.detail, result.permanent)
    feil = json.loads((tmp_path / "feilet" / sent / "feil.json").read_text())
    assert feil["feilmelding"] == result.detail and feil["permanent"] is True
    assert list(source.fetch()) == []


def test_folder_transient_failure_stays_in_inn(tmp_path):
    sent = write_example(tmp_path, b"%PDF", title="t", sender="s", org_number=None)
    source = FolderSource(tmp_path)
    list(source.fetch())
    source.fail(sent, "disken er full", permanent=False)
    assert json.loads((tmp_path / "inn" / sent / "feil.json").read_text())["permanent"] is False
    assert [m.id for m in messages(source.fetch())] == [sent]


def test_folder_duplicate_id_is_yielded_and_moved_on_acknowledge(tmp_path):
    """The same id in two folders: the caller sees it twice, acknowledges twice, both leave inn/."""
    sent = write_example(tmp_path, b"%PDF", title="t", sender="s", org_number=None)
    shutil.copytree(tmp_path / "inn" / sent, tmp_path / "inn" / "kopi")
    source = FolderSource(tmp_path)
    ids = []
    for message in source.fetch():
        ids.append(message.id)
        source.acknowledge(message.id)
    assert ids == [sent, sent]
    assert sorted(p.name for p in (tmp_path / "mottatt").iterdir()) == sorted([sent, "kopi"])
    assert list((tmp_path / "inn").iterdir()) == []


def test_folder_unreadable_json_is_set_aside(tmp_path):
    """No id can address it later, so it goes to feilet/ at once."""
    (tmp_path / "inn" / "rot").mkdir(parents=True)
    (tmp_path / "inn" / "rot" / "forsendelse.json").write_text("{not json")
    result = only_failure(FolderSource(tmp_path).fetch())
    assert (result.id, result.reason, result.permanent) == ("", "bad_metadata", True)
    assert (tmp_path / "feilet" / "rot" / "feil.json").is_file()


def test_folder_with_an_id_that_is_no_uuid_is_set_aside(tmp_path):
    """An id that is not a UUID names nothing and may hold free text; it is never handed on."""
    sent = write_example(tmp_path, b"%PDF", title="t", sender="s", org_number=None)
    path = tmp_path / "inn" / sent / "forsendelse.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "id": "01017012345"}))
    result = only_failure(FolderSource(tmp_path).fetch())
    assert (result.id, result.reason) == ("", "bad_metadata")
    assert (tmp_path / "feilet" / sent / "feil.json").is_file()


def test_folder_files_must_stay_inside_their_folder(tmp_path):
    """A symlink (or a '..' name) must not make the inbox read files from elsewhere."""
    secret = tmp_path / "hemmeleg.txt"
    secret.write_bytes(b"%PDF")
    sent = write_example(tmp_path, b"%PDF", title="t", sender="s", org_number=None)
    (tmp_path / "inn" / sent / "dokument.pdf").unlink()
    (tmp_path / "inn" / sent / "dokument.pdf").symlink_to(secret)
    result = only_failure(FolderSource(tmp_path).fetch())
    assert (result.reason, result.permanent) == ("bad_metadata", True)


def test_folder_missing_file_and_size_checked_before_reading(tmp_path):
    first = write_example(tmp_path, b"%PDF-1.4", title="t", sender="s", org_number=None)
    (tmp_path / "inn" / first / "dokument.pdf").unlink()
    second = write_example(tmp_path, b"%PDF-1.4", title="t", sender="s", org_number=None)
    (tmp_path / "inn" / second / "dokument.pdf").write_bytes(b"%PDF-1.4 and more")
    reasons = {r.id: r.reason for r in FolderSource(tmp_path).fetch()}
    assert reasons == {first: "missing_file", second: "size_mismatch"}


# --- a small reader of the spec's schema, since jsonschema is not installed ----------------------

TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict}


def _schema_problems(value, schema: dict, spec: dict, where: str = "$") -> list[str]:
    """required arrays, types and enums of an OpenAPI 3.0 schema, following $ref."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    kind = schema.get("type")
    if kind and (not isinstance(value, TYPES[kind]) or (kind == "integer" and isinstance(value, bool))):
        return [f"{where}: not {kind}"]
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if kind == "string" and schema.get("format") == "uuid":
        try:
            uuid.UUID(value)
        except ValueError:
            problems.append(f"{where}: not a uuid")
    if kind == "array":
        for i, element in enumerate(value):
            problems += _schema_problems(element, schema["items"], spec, f"{where}[{i}]")
    if kind == "object":
        problems += [f"{where}: missing {name}" for name in schema.get("required", []) if name not in value]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                problems += _schema_problems(value[name], sub, spec, f"{where}.{name}")
    return problems


def test_schema_reader_catches_a_missing_required_field(ks):
    """The reader above would notice a listing without tittel or with a bad sikkerhetsniva."""
    spec = json.loads((ks / "svarinn-v2" / "svarinn-api-v2.json").read_text())
    meta = build_metadata(str(uuid.uuid4()), {"a.pdf": b"x"}, sikkerhetsniva="HOY")
    del meta["tittel"]
    problems = _schema_problems(meta, {"$ref": "#/components/schemas/Forsendelse"}, spec)
    assert "$: missing tittel" in problems and any("sikkerhetsniva" in p for p in problems)


def test_zip_names_written_without_the_utf8_flag():
    """Some writers store UTF-8 names without saying so; 'vedtak-æøå.pdf' must still match filer."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo("vedtak-æøå.pdf")
        archive.writestr(info, b"x")
    raw = bytearray(out.getvalue())
    for flag_at in _header_offsets(raw):  # clear bit 11 (UTF-8) in the local and central headers
        raw[flag_at] &= ~0x08
    assert unzip(bytes(raw)) == {"vedtak-æøå.pdf": b"x"}


def _header_offsets(raw: bytearray) -> list[int]:
    """Offsets of the high byte of the general-purpose flag in every local and central ZIP header."""
    offsets = []
    for signature, flag_offset in ((b"PK\x03\x04", 7), (b"PK\x01\x02", 9)):
        start = raw.find(signature)
        while start != -1:
            offsets.append(start + flag_offset)
            start = raw.find(signature, start + 1)
    return offsets
