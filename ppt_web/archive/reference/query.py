"""The reference archive's answers to the query messages (innsyn mappe.hent, registrering.hent): what it
holds, as the arkivstruktur of the resultat XSDs. A query changes nothing and is not kept."""
from __future__ import annotations

import json
import sqlite3

from lxml import etree

from .. import codes
from .rules import MAPPE_HENT, REGISTRERING_HENT, child, find_folder, find_post, invalid

_BASE = "https://ks-no.github.io/standarder/fiks-protokoll/fiks-arkiv"
AS = f"{_BASE}/arkivstruktur/v1"
MDK = codes.MDK
XSI = codes.XSI
RESULTAT_NS = {MAPPE_HENT: f"{_BASE}/mappe/hent/resultat/v1",
               REGISTRERING_HENT: f"{_BASE}/registrering/hent/resultat/v1"}


def _sub(parent: etree._Element, tag: str, value: object = None, ns: str = AS) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ns}}}{tag}")
    if value is not None:
        element.text = str(value)
    return element


def _opt(parent: etree._Element, tag: str, value: object) -> None:
    if value is not None and value != "":
        _sub(parent, tag, value)


def _code(parent: etree._Element, tag: str, value: str) -> None:
    element = _sub(parent, tag)
    _sub(element, "kode", value, ns=MDK)
    described = (codes.code_list(tag) or {}).get(value)
    if described:
        _sub(element, "beskrivelse", described, ns=MDK)


def _person(parent: etree._Element, tag: str, stored: str | None) -> None:
    element = _sub(parent, tag)
    values = json.loads(stored) if stored else {}
    for name in ("navn", "identifikator", "initialer", "epostadresse"):
        if values.get(name):
            _sub(element, name, values[name], ns=MDK)


def _key(parent: etree._Element, row: sqlite3.Row) -> None:
    if row["noekkel"]:
        key = _sub(parent, "referanseEksternNoekkel")
        _sub(key, "fagsystem", row["fagsystem"], ns=MDK)
        _sub(key, "noekkel", row["noekkel"], ns=MDK)


def _system_ref(parent: etree._Element, tag: str, system_id: str) -> None:
    _sub(_sub(parent, tag), "systemID", system_id, ns=MDK)


def answer(conn: sqlite3.Connection, meldingstype: str, root: etree._Element) -> bytes:
    """The resultat payload; Refused (ikkefunnet) when the reference names nothing the archive holds."""
    out = etree.Element(f"{{{RESULTAT_NS[meldingstype]}}}{'mappe' if meldingstype == MAPPE_HENT else 'registrering'}"
                        "HentResultat", nsmap={None: RESULTAT_NS[meldingstype], "as": AS, "n5mdk": MDK, "xsi": XSI})
    if meldingstype == MAPPE_HENT:
        ref = child(root, "referanseTilMappe")
        if ref is None:
            raise invalid(root, "referanseTilMappe manglar")
        _folder(conn, out, find_folder(conn, ref))
    else:
        ref = child(root, "referanseTilRegistrering")
        if ref is None:
            raise invalid(root, "referanseTilRegistrering manglar")
        post = find_post(conn, ref)
        folder = conn.execute("SELECT * FROM folder WHERE id = ?", (post["folder_id"],)).fetchone()
        _post(conn, out, post, folder, tag="journalpost" if post["registreringstype"] == "journalpost"
              else "registrering", ns=RESULTAT_NS[meldingstype])
    return etree.tostring(out, xml_declaration=True, encoding="UTF-8")


def _folder(conn: sqlite3.Connection, parent: etree._Element, folder: sqlite3.Row) -> None:
    ns = etree.QName(parent).namespace
    saksmappe = folder["mappetype"] == "saksmappe"
    element = etree.SubElement(parent, f"{{{ns}}}{'saksmappe' if saksmappe else 'mappe'}")
    _sub(element, "systemID", folder["system_id"])
    _sub(element, "mappeID", f"{folder['saksaar']}/{folder['sakssekvensnummer']}")
    _sub(element, "tittel", folder["tittel"])
    _opt(element, "offentligTittel", folder["offentlig_tittel"])
    _sub(element, "opprettetDato", folder["opprettet_dato"])
    _sub(element, "opprettetAv", folder["opprettet_av"])
    _opt(element, "avsluttetDato", folder["avsluttet_dato"])
    _opt(element, "avsluttetAv", folder["avsluttet_av"])
    if folder["arkivdel"]:
        _code(element, "arkivdel", folder["arkivdel"])
    _key(element, folder)
    for post in conn.execute("SELECT * FROM post WHERE folder_id = ? ORDER BY coalesce(journalpostnummer, 0), id",
                             (folder["id"],)):
        _post(conn, element, post, folder, tag="registrering", ns=AS)
    if saksmappe:
        _sub(element, "saksaar", folder["saksaar"])
        _sub(element, "sakssekvensnummer", folder["sakssekvensnummer"])
        _sub(element, "saksdato", folder["saksdato"])
        _person(element, "administrativEnhet", folder["administrativ_enhet"])
        _person(element, "saksansvarlig", folder["saksansvarlig"])
        _code(element, "saksstatus", folder["saksstatus"])


def _post(conn: sqlite3.Connection, parent: etree._Element, post: sqlite3.Row, folder: sqlite3.Row, tag: str,
          ns: str) -> None:
    journalpost = post["registreringstype"] == "journalpost"
    element = etree.SubElement(parent, f"{{{ns}}}{tag}")
    if journalpost and tag == "registrering":
        element.set(f"{{{XSI}}}type", "as:journalpost")
    _sub(element, "systemID", post["system_id"])
    _sub(element, "opprettetDato", post["opprettet_dato"])
    _sub(element, "opprettetAv", post["opprettet_av"])
    _system_ref(element, "referanseForelderMappe", folder["system_id"])  # (the standard: this or arkivdel)
    for document in conn.execute("SELECT * FROM document WHERE post_id = ? ORDER BY dokumentnummer", (post["id"],)):
        _document(element, document, post)
    if post["journalpostnummer"] is not None:
        _sub(element, "registreringsID", f"{folder['saksaar']}/{folder['sakssekvensnummer']}-"
                                         f"{post['journalpostnummer']}")
    _sub(element, "tittel", post["tittel"])
    _opt(element, "offentligTittel", post["offentlig_tittel"])
    for part in conn.execute("SELECT * FROM correspondent WHERE post_id = ? ORDER BY id", (post["id"],)):
        _correspondent(conn, element, part)
    _key(element, post)
    if journalpost:
        _sub(element, "journalaar", post["journalaar"])
        _sub(element, "journalsekvensnummer", post["journalsekvensnummer"])
        _sub(element, "journalpostnummer", post["journalpostnummer"])
        _code(element, "journalposttype", post["journalposttype"])
        _code(element, "journalstatus", post["journalstatus"])
        _sub(element, "journaldato", post["journaldato"])
        for column, name in (("dokumentets_dato", "dokumentetsDato"), ("mottatt_dato", "mottattDato"),
                             ("sendt_dato", "sendtDato"), ("forfallsdato", "forfallsdato")):
            _opt(element, name, post[column])
        _opt(element, "avskrivningsdato", post["avskrivningsdato"])


def _correspondent(conn: sqlite3.Connection, parent: etree._Element, part: sqlite3.Row) -> None:
    element = _sub(parent, "korrespondansepart")
    _sub(element, "korrespondansepartID", part["part_id"])
    _code(element, "korrespondanseparttype", part["korrespondanseparttype"])
    _sub(element, "korrespondansepartNavn", part["navn"])
    _opt(element, "organisasjonid", part["organisasjonid"])
    _opt(element, "personid", part["personid"])
    for line in json.loads(part["postadresse"]) if part["postadresse"] else []:
        _sub(element, "postadresse", line)
    for column in ("postnummer", "poststed", "landkode", "epostadresse"):
        _opt(element, column, part[column])
    _opt(element, "erSkjermet", part["er_skjermet"])
    for written in conn.execute("SELECT w.*, p.system_id AS reply_system_id FROM write_off w LEFT JOIN post p "
                                "ON p.id = w.reply_post_id WHERE w.post_id = ? AND w.part_id = ?",
                                (part["post_id"], part["part_id"])):
        avskrivning = _sub(element, "avskrivning")
        _sub(avskrivning, "avskrivningsdato", written["avskrivningsdato"])
        _person(avskrivning, "avskrevetAv", written["avskrevet_av"])
        _code(avskrivning, "avskrivningsmaate", written["avskrivningsmaate"])
        if written["reply_system_id"]:
            _system_ref(avskrivning, "referanseAvskrivesAvJournalpost", written["reply_system_id"])


def _document(parent: etree._Element, document: sqlite3.Row, post: sqlite3.Row) -> None:
    element = _sub(parent, "dokumentbeskrivelse")
    _sub(element, "systemID", document["system_id"])
    _code(element, "dokumenttype", document["dokumenttype"] or "DOKUMENT")
    _code(element, "dokumentstatus", document["dokumentstatus"] or "F")
    _sub(element, "tittel", document["tittel"])
    _sub(element, "opprettetDato", post["opprettet_dato"])
    _sub(element, "opprettetAv", post["opprettet_av"])
    _code(element, "tilknyttetRegistreringSom", document["tilknyttet_som"])
    _sub(element, "dokumentnummer", document["dokumentnummer"])
    _sub(element, "tilknyttetDato", post["opprettet_dato"])
    _sub(element, "tilknyttetAv", post["opprettet_av"])
    if document["object_system_id"]:
        obj = _sub(element, "dokumentobjekt")
        _sub(obj, "systemID", document["object_system_id"])
        _sub(obj, "versjonsnummer", document["versjonsnummer"] or 1)
        _code(obj, "variantformat", document["variantformat"] or "A")
        _sub(obj, "filnavn", document["filnavn"] or document["referanse_dokumentfil"])
        _code(obj, "format", document["format"] or "UKJENT")
        _opt(obj, "mimeType", document["mime_type"])
        _sub(obj, "opprettetDato", post["opprettet_dato"])
        _sub(obj, "opprettetAv", post["opprettet_av"])
        _sub(obj, "referanseDokumentfil", document["referanse_dokumentfil"])
        _sub(obj, "sjekksum", document["sha256"])
        _sub(obj, "sjekksumAlgoritme", "SHA256")
        _sub(obj, "filstoerrelse", document["size"])
