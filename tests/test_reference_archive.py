"""The reference archive: its own numbers, idempotency, the refusals a Noark archive makes (each with a
feilmelding body naming the fault), state changed by updates, query messages, KS's sample messages,
the HTTP server through the http transport, and several writers at once."""
from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from ppt_web.archive import codes, replies
from ppt_web.archive.message import Message
from ppt_web.archive.reference import ReferenceArchive
from ppt_web.archive.transports import query as archive_query
from ppt_web.archive.transports.http import HttpTransport, interpret
from ppt_web.clock import today as oslo_today
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob

from .archive_server import ReferenceServer

SAMPLES = Path(__file__).parent / "data" / "fiks-arkiv-samples"
_BASE = "https://ks-no.github.io/standarder/fiks-protokoll/fiks-arkiv"
AM, AMO, AVS, MDK = (f"{_BASE}/arkivmelding/opprett/v1", f"{_BASE}/arkivmelding/oppdater/v1",
                     f"{_BASE}/avskrivning/opprett/v1", codes.MDK)
OPPRETT = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett"
OPPDATER = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.oppdater"
AVSKRIVNING = "no.ks.fiks.arkiv.v1.arkivering.avskrivning.opprett"
MAPPE_HENT = "no.ks.fiks.arkiv.v1.innsyn.mappe.hent"
REGISTRERING_HENT = "no.ks.fiks.arkiv.v1.innsyn.registrering.hent"
NS = f'xmlns:xsi="{codes.XSI}" xmlns:n5mdk="{MDK}"'
FAG = "testsystem"
PDF = b"%PDF-1.4 reference archive test\n%%EOF\n"


def key(noekkel: str, tag: str = "referanseEksternNoekkel", fagsystem: str = FAG) -> str:
    return (f"<{tag}><n5mdk:fagsystem>{fagsystem}</n5mdk:fagsystem><n5mdk:noekkel>{noekkel}</n5mdk:noekkel>"
            f"</{tag}>")


def ref(noekkel: str, tag: str) -> str:
    return f"<{tag}>{key(noekkel, 'n5mdk:referanseEksternNoekkel')}</{tag}>"


def folder_xml(noekkel: str, title: str = "Sak") -> bytes:
    """A saksmappe carrying numbers of its own (1999/777), which the archive must ignore."""
    return (f'<arkivmelding xmlns="{AM}" {NS}><system>test</system><antallFiler>0</antallFiler>'
            f'<mappe xsi:type="saksmappe"><tittel>{title}</tittel>{key(noekkel)}<saksaar>1999</saksaar>'
            f'<sakssekvensnummer>777</sakssekvensnummer><saksdato>2026-01-05</saksdato>'
            f'<saksansvarlig><n5mdk:navn>Rådgjevar Ein</n5mdk:navn></saksansvarlig>'
            f'<saksstatus><n5mdk:kode>B</n5mdk:kode></saksstatus></mappe></arkivmelding>').encode()


def post_xml(folder: str, noekkel: str, post_type: str = "I", files: tuple = (), count: int | None = None,
             parts: tuple = (("part-1", "Ulstein skule"),), checksum: str | None = "auto", size: int | None = None,
             status: str = "F") -> bytes:
    documents = ""
    for number, (name, data) in enumerate(files, start=1):
        digest = hashlib.sha256(data).hexdigest() if checksum == "auto" else checksum
        documents += (f"<dokumentbeskrivelse><dokumenttype><n5mdk:kode>KORR</n5mdk:kode></dokumenttype>"
                      f"<dokumentstatus><n5mdk:kode>F</n5mdk:kode></dokumentstatus><tittel>Dokument {number}</tittel>"
                      f"<tilknyttetRegistreringSom><n5mdk:kode>{'H' if number == 1 else 'V'}</n5mdk:kode>"
                      f"</tilknyttetRegistreringSom><dokumentnummer>{number + 40}</dokumentnummer><dokumentobjekt>"
                      f"<versjonsnummer>1</versjonsnummer><variantformat><n5mdk:kode>P</n5mdk:kode></variantformat>"
                      f"<format><n5mdk:kode>PDF</n5mdk:kode></format><filnavn>brev {number}.pdf</filnavn>"
                      f"<referanseDokumentfil>{name}</referanseDokumentfil>"
                      + (f"<sjekksum>{digest}</sjekksum><sjekksumAlgoritme>SHA256</sjekksumAlgoritme>" if digest
                         else "")
                      + f"<filstoerrelse>{len(data) if size is None else size}</filstoerrelse>"
                      f"</dokumentobjekt></dokumentbeskrivelse>")
    correspondents = "".join(
        f"<korrespondansepart><korrespondansepartID>{pid}</korrespondansepartID><korrespondanseparttype>"
        f"<n5mdk:kode>{'EA' if post_type == 'I' else 'EM' if post_type == 'U' else 'IM'}</n5mdk:kode>"
        f"</korrespondanseparttype><korrespondansepartNavn>{name}</korrespondansepartNavn>"
        f"<postadresse>Skulevegen 1</postadresse><postnummer>6065</postnummer><poststed>Ulsteinvik</poststed>"
        f"</korrespondansepart>" for pid, name in parts)
    sent = "<sendtDato>2026-02-01T00:00:00+01:00</sendtDato>" if status == "E" else ""
    return (f'<arkivmelding xmlns="{AM}" {NS}><system>test</system>'
            f'<antallFiler>{len(files) if count is None else count}</antallFiler>'
            f'<registrering xsi:type="journalpost">{ref(folder, "referanseForelderMappe")}{documents}'
            f'<tittel>Brev {noekkel}</tittel>{correspondents}{key(noekkel)}<journalpostnummer>99</journalpostnummer>'
            f'<journalposttype><n5mdk:kode>{post_type}</n5mdk:kode></journalposttype>'
            f'<journalstatus><n5mdk:kode>{status}</n5mdk:kode></journalstatus>'
            f'<dokumentetsDato>2026-01-20</dokumentetsDato>{sent}</registrering></arkivmelding>').encode()


def folder_update(noekkel: str, status: str | None = None, closed: str | None = None, title: str | None = None,
                  reference: str | None = None) -> bytes:
    reference = reference or ref(noekkel, "referanseTilMappe")
    return (f'<arkivmeldingOppdatering xmlns="{AMO}" {NS}><mappeOppdateringer xsi:type="saksmappeOppdatering">'
            f'{reference}' + (f"<tittel>{title}</tittel>" if title else "")
            + (f"<avsluttetDato>{closed}</avsluttetDato>" if closed else "")
            + (f"<saksstatus><n5mdk:kode>{status}</n5mdk:kode></saksstatus>" if status else "")
            + "</mappeOppdateringer></arkivmeldingOppdatering>").encode()


def post_update(noekkel: str, body: str) -> bytes:
    return (f'<arkivmeldingOppdatering xmlns="{AMO}" xmlns:am="{AM}" {NS}><registreringOppdateringer '
            f'xsi:type="journalpostOppdatering">{ref(noekkel, "referanseTilRegistrering")}{body}'
            f'</registreringOppdateringer></arkivmeldingOppdatering>').encode()


def write_off(noekkel: str, part: str = "part-1", reference: str | None = None) -> bytes:
    return (f'<nyAvskrivning xmlns="{AVS}" {NS}><avskrivning><avskrivningsdato>2026-02-02</avskrivningsdato>'
            f'<avskrevetAv><n5mdk:navn>Rådgjevar Ein</n5mdk:navn></avskrevetAv><avskrivningsmaate>'
            f'<n5mdk:kode>TE</n5mdk:kode></avskrivningsmaate></avskrivning>'
            f'{reference or ref(noekkel, "referanseTilJournalpost")}'
            f'<korrespondansepartID>{part}</korrespondansepartID></nyAvskrivning>').encode()


def hent(meldingstype: str, noekkel: str | None = None, system_id: str | None = None) -> bytes:
    return archive_query.hent_payload(meldingstype, "test", system_id=system_id, fagsystem=FAG, noekkel=noekkel)


@pytest.fixture
def arkiv(tmp_path) -> ReferenceArchive:
    return ReferenceArchive(tmp_path / "arkiv")


def send(arkiv: ReferenceArchive, meldingstype: str, payload: bytes, files: dict | None = None,
         message_id: str | None = None):
    answer = arkiv.receive(meldingstype, message_id or str(uuid.uuid4()), payload, files or {})
    assert codes.problems(answer.meldingstype, answer.payload) == [] if answer.payload else True
    return answer


def ok(answer) -> dict:
    assert answer.status == 200, answer.payload.decode()
    return replies.parse_kvittering(answer.payload) if answer.payload else {}


def refused(answer, status: int, *words: str) -> str:
    """The refusal's status and feilmelding; its text names the fault."""
    assert answer.status == status, answer.payload.decode()
    text = replies.parse_feilmelding(answer.payload)
    for word in words:
        assert word in text, text
    return text


def counts(arkiv: ReferenceArchive) -> dict:
    with sqlite3.connect(arkiv.store.path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("folder", "post", "correspondent", "write_off", "document", "message")}


def folder_and_post(arkiv, folder="sak-1", post="post-1", post_type="I") -> tuple[dict, dict]:
    made = ok(send(arkiv, OPPRETT, folder_xml(folder)))["mappe"]
    entry = ok(send(arkiv, OPPRETT, post_xml(folder, post, post_type)))["registrering"]
    return made, entry


# --- numbers and idempotency ---

def test_the_archive_assigns_its_own_numbers_and_ignores_the_senders(arkiv):
    year = oslo_today().year
    first = ok(send(arkiv, OPPRETT, folder_xml("sak-1")))["mappe"]
    second = ok(send(arkiv, OPPRETT, folder_xml("sak-2")))["mappe"]
    assert (first["saksaar"], first["sakssekvensnummer"], second["sakssekvensnummer"]) == (year, 1, 2)
    assert first["opprettetEllerEksisterende"] == "Opprettet" and first["referanseEksternNoekkel"] == "sak-1"
    posts = [ok(send(arkiv, OPPRETT, post_xml(f, f"{f}-p{n}", files=(("a.pdf", PDF),)), {"a.pdf": PDF}))[
        "registrering"]
             for f in ("sak-1", "sak-2") for n in (1, 2)]
    assert [(p["journalaar"], p["journalsekvensnummer"], p["journalpostnummer"]) for p in posts] == [
        (year, 1, 1), (year, 2, 2), (year, 3, 1), (year, 4, 2)]  # journalpostnummer runs per folder, not 99
    assert posts[0]["registreringsID"] == f"{year}/1-1"
    assert posts[0]["dokumentbeskrivelser"][0]["dokumentnummer"] == 1  # not the sender's 41
    uuid.UUID(posts[0]["systemID"])


def test_the_same_message_id_gets_the_same_reply_and_stores_once(arkiv):
    message_id = str(uuid.uuid4())
    first = send(arkiv, OPPRETT, folder_xml("sak-1"), message_id=message_id)
    again = send(arkiv, OPPRETT, folder_xml("sak-1"), message_id=message_id)
    assert again.payload == first.payload and counts(arkiv)["message"] == 1 and counts(arkiv)["folder"] == 1


def test_a_known_external_key_is_answered_with_the_existing_object(arkiv):
    made, entry = folder_and_post(arkiv)
    again = ok(send(arkiv, OPPRETT, folder_xml("sak-1", title="Anna tittel")))["mappe"]
    assert again["opprettetEllerEksisterende"] == "Eksisterende"
    assert {k: again[k] for k in ("systemID", "saksaar", "sakssekvensnummer")} == \
        {k: made[k] for k in ("systemID", "saksaar", "sakssekvensnummer")}
    post_again = ok(send(arkiv, OPPRETT, post_xml("sak-1", "post-1")))["registrering"]
    assert post_again["opprettetEllerEksisterende"] == "Eksisterende"
    assert (post_again["systemID"], post_again["journalpostnummer"]) == (entry["systemID"], entry["journalpostnummer"])
    assert counts(arkiv)["folder"] == 1 and counts(arkiv)["post"] == 1


def test_the_same_key_from_another_fagsystem_is_another_folder(arkiv):
    ok(send(arkiv, OPPRETT, folder_xml("sak-1")))
    other = folder_xml("sak-1").replace(f">{FAG}<".encode(), b">anna-system<")
    assert ok(send(arkiv, OPPRETT, other))["mappe"]["opprettetEllerEksisterende"] == "Opprettet"


# --- refusals: each names the fault, and nothing is stored ---

def test_unknown_references_are_ikkefunnet(arkiv):
    ok(send(arkiv, OPPRETT, folder_xml("sak-1")))
    before = counts(arkiv)
    refused(send(arkiv, OPPRETT, post_xml("sak-x", "post-1")), 404, "referanseForelderMappe", "sak-x")
    refused(send(arkiv, OPPDATER, folder_update("sak-x", "A")), 404, "referanseTilMappe", "sak-x")
    refused(send(arkiv, OPPDATER, post_update("post-x", "<tittel>Ny</tittel>")), 404, "referanseTilRegistrering")
    refused(send(arkiv, AVSKRIVNING, write_off("post-x")), 404, "referanseTilJournalpost", "post-x")
    by_system_id = f"<referanseTilMappe><n5mdk:systemID>{uuid.uuid4()}</n5mdk:systemID></referanseTilMappe>"
    refused(send(arkiv, OPPDATER, folder_update("", "A", reference=by_system_id)), 404, "systemID")
    assert counts(arkiv) == before


def test_a_post_into_a_closed_folder_is_refused_and_accepted_after_reopening(arkiv):
    ok(send(arkiv, OPPRETT, folder_xml("sak-1")))
    ok(send(arkiv, OPPDATER, folder_update("sak-1", "A", closed="2026-03-01T00:00:00+01:00")))
    before = counts(arkiv)
    refused(send(arkiv, OPPRETT, post_xml("sak-1", "post-1", "X")), 400, "referanseForelderMappe", "avslutta")
    assert counts(arkiv) == before
    ok(send(arkiv, OPPDATER, folder_update("sak-1", "B")))
    with sqlite3.connect(arkiv.store.path) as conn:
        assert conn.execute("SELECT saksstatus, avsluttet_dato FROM folder").fetchone() == ("B", None)
    assert ok(send(arkiv, OPPRETT, post_xml("sak-1", "post-1", "X")))["registrering"]["journalpostnummer"] == 1


def test_closing_with_open_items_is_refused_until_they_are_written_off(arkiv):
    ok(send(arkiv, OPPRETT, folder_xml("sak-1")))
    ok(send(arkiv, OPPRETT, post_xml("sak-1", "inn", "I")))
    ok(send(arkiv, OPPRETT, post_xml("sak-1", "notat", "N", parts=(("intern", "Rådgjevar"),))))
    ok(send(arkiv, OPPRETT, post_xml("sak-1", "ut", "U")))  # outgoing: not an open item
    text = refused(send(arkiv, OPPDATER, folder_update("sak-1", "A")), 400, "saksstatus", "ikkje avskrivne")
    assert "(I)" in text and "(N)" in text and "(U)" not in text
    ok(send(arkiv, AVSKRIVNING, write_off("inn")))
    refused(send(arkiv, OPPDATER, folder_update("sak-1", "A")), 400, "(N)")
    ok(send(arkiv, AVSKRIVNING, write_off("notat", part="intern")))
    ok(send(arkiv, OPPDATER, folder_update("sak-1", "A")))
    with sqlite3.connect(arkiv.store.path) as conn:
        status, closed = conn.execute("SELECT saksstatus, avsluttet_dato FROM folder").fetchone()
    assert status == "A" and closed


def test_write_off_of_a_correspondent_the_post_does_not_have_is_refused(arkiv):
    folder_and_post(arkiv)
    refused(send(arkiv, AVSKRIVNING, write_off("post-1", part="nokon-andre")), 400, "korrespondansepartID",
            "nokon-andre")
    assert counts(arkiv)["write_off"] == 0
    ok(send(arkiv, AVSKRIVNING, write_off("post-1")))
    ok(send(arkiv, AVSKRIVNING, write_off("post-1")))  # again: the write-off is changed, not doubled
    assert counts(arkiv)["write_off"] == 1


@pytest.mark.parametrize("payload, files, words", [
    (post_xml("sak-1", "p", files=(("a.pdf", PDF),)), {}, ["antallFiler", "1 filer", "0 kom"]),
    (post_xml("sak-1", "p", files=(("a.pdf", PDF),)), {"b.pdf": PDF}, ["referanseDokumentfil", "a.pdf"]),
    (post_xml("sak-1", "p", files=(("a.pdf", PDF),), count=2), {"a.pdf": PDF, "b.pdf": PDF},
     ["b.pdf", "ingen referanseDokumentfil"]),
    (post_xml("sak-1", "p", files=(("a.pdf", PDF),), checksum="0" * 64), {"a.pdf": PDF}, ["sjekksum", "a.pdf"]),
    (post_xml("sak-1", "p", files=(("a.pdf", PDF),), size=3), {"a.pdf": PDF}, ["filstoerrelse", "3"]),
    (post_xml("sak-1", "p", files=(("a.pdf", PDF),)), {"a.pdf": PDF + b"x"}, ["sjekksum"]),
])
def test_file_faults_are_refused(arkiv, payload, files, words):
    ok(send(arkiv, OPPRETT, folder_xml("sak-1")))
    before = counts(arkiv)
    refused(send(arkiv, OPPRETT, payload, files), 400, *words)
    assert counts(arkiv) == before


def test_a_file_without_checksum_or_size_is_taken_as_it_comes(arkiv):
    ok(send(arkiv, OPPRETT, folder_xml("sak-1")))
    payload = post_xml("sak-1", "p", files=(("a.pdf", PDF),), checksum=None).replace(
        f"<filstoerrelse>{len(PDF)}</filstoerrelse>".encode(), b"")
    ok(send(arkiv, OPPRETT, payload, {"a.pdf": PDF}))
    sha = hashlib.sha256(PDF).hexdigest()
    assert arkiv.store.file_path(sha).read_bytes() == PDF


def test_messages_failing_the_xsd_or_code_lists_are_refused(arkiv):
    bad_code = folder_xml("sak-1").replace(b"<n5mdk:kode>B</n5mdk:kode>", b"<n5mdk:kode>Q</n5mdk:kode>")
    refused(send(arkiv, OPPRETT, bad_code), 400, "saksstatus", "'Q'")
    refused(send(arkiv, OPPRETT, folder_xml("sak-1").replace(b"<tittel>Sak</tittel>", b"")), 400, "tittel")
    refused(send(arkiv, OPPRETT, b"not xml"), 400, "well-formed")
    refused(send(arkiv, "no.ks.fiks.arkiv.v1.arkivering.dokumentobjekt.opprett", b"<x/>"), 400, "Meldingstype")
    refused(arkiv.receive(OPPRETT, "not-a-uuid", folder_xml("sak-1"), {}), 400, "Klientmelding")
    assert counts(arkiv)["message"] == 0


def test_expedition_needs_a_sent_date(arkiv):
    folder_and_post(arkiv, post="ut", post_type="U")
    code = "<journalstatus><n5mdk:kode>E</n5mdk:kode></journalstatus>"
    refused(send(arkiv, OPPDATER, post_update("ut", code)), 400, "journalstatus", "sendtDato")
    ok(send(arkiv, OPPDATER, post_update("ut", code + "<sendtDato>2026-02-03T00:00:00+01:00</sendtDato>")))
    with sqlite3.connect(arkiv.store.path) as conn:
        assert conn.execute("SELECT journalstatus, sendt_dato FROM post").fetchone() == (
            "E", "2026-02-03T00:00:00+01:00")


# --- updates change the state ---

def test_updates_change_title_and_correspondents(arkiv):
    folder_and_post(arkiv)
    ok(send(arkiv, OPPDATER, folder_update("sak-1", title="Ny tittel")))
    changes = ("<tittel>Retta brev</tittel><korrespondansepartOppdateringer><oppdatering><korrespondansepartID>"
               "part-1</korrespondansepartID><korrespondansepartNavn>Ulstein ungdomsskule</korrespondansepartNavn>"
               "</oppdatering><ny><am:korrespondansepartID>part-2</am:korrespondansepartID><am:korrespondanseparttype>"
               "<n5mdk:kode>EA</n5mdk:kode></am:korrespondanseparttype><am:korrespondansepartNavn>Foreldre"
               "</am:korrespondansepartNavn></ny></korrespondansepartOppdateringer>")
    ok(send(arkiv, OPPDATER, post_update("post-1", changes)))
    refused(send(arkiv, OPPDATER, post_update("post-1", "<korrespondansepartOppdateringer><slett>"
                                              "<korrespondansepartID>ingen</korrespondansepartID></slett>"
                                              "</korrespondansepartOppdateringer>")), 404, "ingen")
    ok(send(arkiv, OPPDATER, post_update("post-1", "<korrespondansepartOppdateringer><slett><korrespondansepartID>"
                                         "part-2</korrespondansepartID></slett></korrespondansepartOppdateringer>")))
    with sqlite3.connect(arkiv.store.path) as conn:
        assert conn.execute("SELECT tittel FROM folder").fetchone() == ("Ny tittel",)
        assert conn.execute("SELECT tittel FROM post").fetchone() == ("Retta brev",)
        assert conn.execute("SELECT part_id, navn FROM correspondent").fetchall() == [
            ("part-1", "Ulstein ungdomsskule")]


def test_an_update_answers_with_the_ids_the_archive_knows(arkiv):
    made, entry = folder_and_post(arkiv)
    answer = send(arkiv, AVSKRIVNING, write_off("post-1"))
    assert ok(answer) == {}  # V1: no kvittering payload for a write-off
    assert answer.known["registrering"]["systemID"] == entry["systemID"]
    assert answer.known["mappe"]["sakssekvensnummer"] == made["sakssekvensnummer"]


# --- query messages ---

def test_query_messages_answer_what_the_archive_holds_and_store_nothing(arkiv):
    made, entry = folder_and_post(arkiv)
    ok(send(arkiv, AVSKRIVNING, write_off("post-1")))
    before = counts(arkiv)
    for payload in (hent(MAPPE_HENT, "sak-1"), hent(MAPPE_HENT, system_id=made["systemID"])):
        answer = arkiv.query(MAPPE_HENT, payload)
        assert answer.status == 200 and codes.problems(f"{MAPPE_HENT}.resultat", answer.payload) == []
        folder = archive_query.read_folder(answer.payload)
        assert folder["number"] == f"{made['saksaar']}/{made['sakssekvensnummer']}"
        assert folder["status"] == {"code": "B", "words": "Under behandling"}
        assert folder["responsible"] == "Rådgjevar Ein"
        (post,) = folder["posts"]
        assert post["number"] == f"{folder['number']}-1" and post["type"]["words"] == "Inngående dokument"
        assert post["write_offs"][0]["method"]["words"] == "Tatt til etteretning"
    answer = arkiv.query(REGISTRERING_HENT, hent(REGISTRERING_HENT, "post-1"))
    assert answer.status == 200 and codes.problems(f"{REGISTRERING_HENT}.resultat", answer.payload) == []
    assert entry["systemID"].encode() in answer.payload
    refused(arkiv.query(MAPPE_HENT, hent(MAPPE_HENT, "sak-x")), 404, "sak-x")
    refused(arkiv.receive(REGISTRERING_HENT, str(uuid.uuid4()), hent(REGISTRERING_HENT, "post-x"), {}), 404)
    assert counts(arkiv) == before


# --- KS's sample messages ---

def _sample(name: str) -> bytes:
    return (SAMPLES / name / "arkivmelding.xml").read_bytes()


def test_the_published_samples_are_accepted_and_the_replies_validate(arkiv):
    folder = ok(send(arkiv, OPPRETT, _sample("NySaksmappeN1")))["mappe"]
    assert folder["saksaar"] == oslo_today().year and folder["sakssekvensnummer"] == 1
    # NyJournalpostN1 files into a folder by its systemID: give the one it names to a folder of ours.
    with sqlite3.connect(arkiv.store.path) as conn:
        conn.execute("UPDATE folder SET system_id = '22f05e04-37c4-4051-8b3a-853c8eac4b33'")
    pdf = (SAMPLES / "NyJournalpostN1" / "Attachments" / "rekvisisjon.pdf").read_bytes()
    post = ok(send(arkiv, OPPRETT, _sample("NyJournalpostN1"), {"rekvisisjon.pdf": pdf}))["registrering"]
    assert post["journalpostnummer"] == 1 and post["journalposttype"] == "X"
    # NyAvskrivningN1 writes off that post (same external key) for a correspondent id of its own.
    with sqlite3.connect(arkiv.store.path) as conn:
        conn.execute("UPDATE correspondent SET part_id = 'en-korrespondansepart-id' WHERE id = "
                     "(SELECT min(id) FROM correspondent)")
    ok(send(arkiv, AVSKRIVNING, _sample("NyAvskrivningN1")))
    # OppdaterMappeStatusN1 closes the folder keyed "nøkkel-til-saksmappe".
    ok(send(arkiv, OPPRETT, _sample("NySaksmappeN1").replace(b"45d947ed-8455-46e2-a04f-ee18da433fe0",
                                                             "nøkkel-til-saksmappe".encode())))
    ok(send(arkiv, OPPDATER, _sample("OppdaterMappeStatusN1")))
    with sqlite3.connect(arkiv.store.path) as conn:
        assert conn.execute("SELECT saksstatus FROM folder WHERE noekkel = 'nøkkel-til-saksmappe'").fetchone() == ("A",)
        assert conn.execute("SELECT count(*) FROM write_off").fetchone() == (1,)


# --- several writers at once ---

def _send_folders(root: str, prefix: str, count: int) -> list[int]:
    arkiv = ReferenceArchive(root)
    numbers = []
    for n in range(count):
        answer = arkiv.receive(OPPRETT, str(uuid.uuid4()), folder_xml(f"{prefix}-{n}"), {})
        numbers.append(replies.parse_kvittering(answer.payload)["mappe"]["sakssekvensnummer"])
    return numbers


def test_threads_sending_at_once_get_unique_numbers(tmp_path):
    root = str(tmp_path / "arkiv")
    results: dict[str, list[int]] = {}
    threads = [threading.Thread(target=lambda p=p: results.__setitem__(p, _send_folders(root, p, 15)))
               for p in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    numbers = sorted(n for found in results.values() for n in found)
    assert numbers == list(range(1, 46))


def test_processes_sending_at_once_get_unique_numbers(tmp_path):
    root = str(tmp_path / "arkiv")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        found = pool.starmap(_send_folders, [(root, "x", 10), (root, "y", 10)])
    assert sorted(found[0] + found[1]) == list(range(1, 21))


def _first_use(root: str, barrier, results, read_first: bool) -> None:
    from ppt_web.archive.reference.store import Store

    barrier.wait()
    try:
        store = Store(root)
        if read_first:
            with store.read() as conn:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        with store.write() as conn:
            conn.execute("SELECT 1")
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - the test reports it
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_archive_at_once_all_get_in(tmp_path):
    """Two workers' first messages to an archive made a moment ago: turning the new file to WAL needs it
    alone, and SQLite answered the second process "database is locked" at once, without waiting (about
    one start in eight, four processes): its message was answered as a busy archive."""
    context = multiprocessing.get_context("fork")
    for attempt in range(40):
        root = str(tmp_path / f"arkiv-{attempt}")
        barrier, results = context.Barrier(4), context.Queue()
        processes = [context.Process(target=_first_use, args=(root, barrier, results, n % 2 == 1)) for n in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        assert [results.get(timeout=5) for _ in processes] == ["ok"] * 4, f"start {attempt}"


# --- over HTTP, through the http transport ---

def test_the_http_server_speaks_the_http_transports_contract(tmp_path):
    with ReferenceServer(tmp_path / "arkiv") as server:
        transport = HttpTransport(server.url, timeout=5)
        folder = transport.send(Message(OPPRETT, "arkivmelding.xml", folder_xml("sak-1"), ()), str(uuid.uuid4()))
        assert folder.kind == "ok" and folder.ids["mappe"]["sakssekvensnummer"] == 1
        post = transport.send(Message(OPPRETT, "arkivmelding.xml", post_xml("sak-1", "p-1", "I"), ()),
                              str(uuid.uuid4()))
        assert post.kind == "ok" and post.ids["registrering"]["journalpostnummer"] == 1
        closing = transport.send(Message(OPPDATER, "arkivmelding.xml", folder_update("sak-1", "A"), ()),
                                 str(uuid.uuid4()))
        assert closing.kind == "invalid" and closing.text.startswith("arkivet avviste meldinga: ")
        assert "ikkje avskrivne" in closing.text
        missing = transport.send(Message(OPPDATER, "arkivmelding.xml", folder_update("sak-x", "B"), ()),
                                 str(uuid.uuid4()))
        assert missing.kind == "not_found" and missing.text.startswith("arkivet fann ikkje")
        unknown_post = transport.send(Message(AVSKRIVNING, "avskrivning-opprett.xml", write_off("p-x"), ()),
                                      str(uuid.uuid4()))
        assert unknown_post.kind == "not_found" and "p-x" in unknown_post.text
        asked = transport.query(MAPPE_HENT, hent(MAPPE_HENT, "sak-1"))
        assert asked.kind == "ok" and archive_query.read_folder(asked.payload)["posts"][0]["title"] == "Brev p-1"
        assert transport.query(MAPPE_HENT, hent(MAPPE_HENT, "sak-x")).kind == "not_found"
        import requests

        response = requests.post(server.url, files=[("x.xml", ("x.xml", b"<x/>"))],
                                 headers={"X-Meldingstype": OPPRETT, "X-Klientmelding-Id": str(uuid.uuid4())})
        assert response.status_code == 400 and "arkivmelding.xml" in replies.parse_feilmelding(response.content)
        assert interpret(response.status_code, response.content).kind == "invalid"


# --- through the app ---

def _run_jobs() -> None:
    from ppt_web.archive import sending

    for _ in range(6):
        pending = list(db.session.scalars(select(ArchiveJob.id).where(ArchiveJob.job_status == "new")
                                          .order_by(ArchiveJob.id)))
        if not pending:
            return
        for job_id in pending:
            db.session.execute(ArchiveJob.__table__.update().where(ArchiveJob.id == job_id)
                               .values(next_attempt_at=None))
            db.session.commit()
            sending.process(job_id, "test")


def test_the_app_against_the_reference_archive_over_http(app, ctx, tmp_path):
    """The worker sends to the reference archive over HTTP; the archive's numbers come back; a refusal
    shows on the job as failed (Feil) with the archive's own text."""
    from ppt_web.archive.conventions import DEFAULTS

    from . import builders

    with ReferenceServer(tmp_path / "arkiv") as server:
        app.config.update(PPT_ARCHIVE_BACKEND="http", PPT_ARCHIVE_HTTP_URL=server.url, PPT_ARCHIVE_HTTP_TIMEOUT=5)
        case = builders.case()
        _run_jobs()
        case_job = db.session.scalars(select(ArchiveJob)).one()
        assert case_job.archive_status == "archived", case_job.message
        assert case_job.archive_ref["mappe"]["sakssekvensnummer"] == 1
        # Someone closes the folder in the archive itself; our next post is refused there.
        fagsystem = (app.config.get("PPT_ARCHIVE_SETTINGS") or {}).get("fagsystem") or DEFAULTS["fagsystem"]
        closing = folder_update("", "A", reference=f"<referanseTilMappe>{key(f'case:{case.id}', 'n5mdk:referanseEksternNoekkel', fagsystem)}</referanseTilMappe>")
        assert ReferenceArchive(tmp_path / "arkiv").receive(OPPDATER, str(uuid.uuid4()), closing, {}).status == 200
        builders.finalized_post(case, post_type="X", title="Notat")
        _run_jobs()
        post_job = db.session.scalars(select(ArchiveJob).where(ArchiveJob.event == "post_finalized")).one()
        assert (post_job.job_status, post_job.archive_status) == ("done", "failed")
        assert "arkivet avviste meldinga" in post_job.message and "avslutta" in post_job.message


def test_the_case_page_shows_the_archives_own_view(app, ctx, login_as):
    from . import builders

    case = builders.case()
    post = builders.finalized_post(case, post_type="I", correspondent="Ulstein skule", title="Tilvising")
    _run_jobs()
    page = login_as("konsulent").get(f"/archive-log/case/{case.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="archive-folder"' in html and "Under behandling" in html and "Inngående dokument" in html
    assert f"{oslo_today().year}/1-1" in html and post.title in html
    assert "{" not in html.split('id="archive-view"')[1].split("</section>")[0]  # no raw dicts or lists


def test_samples_are_vendored_with_their_licence():
    assert (SAMPLES / "LICENSE").is_file()
    for name in ("NySaksmappeN1", "NyJournalpostN1", "OppdaterMappeStatusN1", "NyAvskrivningN1"):
        assert (SAMPLES / name / "arkivmelding.xml").is_file() and (SAMPLES / name / "testInformation.json").is_file()
    assert (SAMPLES / "NyJournalpostN1" / "Attachments" / "rekvisisjon.pdf").read_bytes().startswith(b"%PDF")
