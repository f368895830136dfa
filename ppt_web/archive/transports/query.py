"""Asking the archive what it holds (innsyn mappe.hent / registrering.hent) and reading its answer.

hent_payload builds the query; read_folder turns a mappe.hent resultat into plain values for a page:
numbers, titles, dates, and codes with the code list's words beside them.
"""
from __future__ import annotations

from datetime import date

from lxml import etree

from .. import codes
from .base import NOT_FOUND, OK, Reply

_BASE = "https://ks-no.github.io/standarder/fiks-protokoll/fiks-arkiv"
MAPPE_HENT = "no.ks.fiks.arkiv.v1.innsyn.mappe.hent"
REGISTRERING_HENT = "no.ks.fiks.arkiv.v1.innsyn.registrering.hent"
_NS = {MAPPE_HENT: (f"{_BASE}/mappe/hent/v1", "mappeHent", "referanseTilMappe"),
       REGISTRERING_HENT: (f"{_BASE}/registrering/hent/v1", "registreringHent", "referanseTilRegistrering")}


def hent_payload(meldingstype: str, system: str, *, system_id: str | None = None,
                 fagsystem: str | None = None, noekkel: str | None = None) -> bytes:
    """A mappe.hent or registrering.hent naming its object by systemID, else by external key."""
    namespace, root_tag, ref_tag = _NS[meldingstype]
    root = etree.Element(f"{{{namespace}}}{root_tag}", nsmap={None: namespace, "n5mdk": codes.MDK})
    etree.SubElement(root, f"{{{namespace}}}system").text = system
    ref = etree.SubElement(root, f"{{{namespace}}}{ref_tag}")
    if system_id:
        etree.SubElement(ref, f"{{{codes.MDK}}}systemID").text = system_id
    else:
        key = etree.SubElement(ref, f"{{{codes.MDK}}}referanseEksternNoekkel")
        etree.SubElement(key, f"{{{codes.MDK}}}fagsystem").text = fagsystem or ""
        etree.SubElement(key, f"{{{codes.MDK}}}noekkel").text = noekkel or ""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _child(parent: etree._Element | None, name: str) -> etree._Element | None:
    if parent is None:
        return None
    return next((e for e in parent if isinstance(e.tag, str) and _local(e) == name), None)


def _all(parent: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if parent is None else [e for e in parent if isinstance(e.tag, str) and _local(e) == name]


def _text(parent: etree._Element | None, name: str) -> str:
    element = _child(parent, name)
    return (element.text or "").strip() if element is not None else ""


def _day(parent: etree._Element | None, name: str) -> date | None:
    """An xs:date or xs:dateTime as the calendar date it names (as written, in the archive's zone)."""
    try:
        return date.fromisoformat(_text(parent, name)[:10])
    except ValueError:
        return None


def _coded(parent: etree._Element | None, name: str) -> dict:
    """{"code", "words"}: the code list's description, else the archive's beskrivelse, else the code."""
    element = _child(parent, name)
    code = _text(element, "kode")
    words = (codes.code_list(name) or {}).get(code) or _text(element, "beskrivelse") or code
    return {"code": code, "words": words}


def _who(parent: etree._Element | None, name: str) -> str:
    element = _child(parent, name)
    return _text(element, "navn") or _text(element, "initialer") or _text(element, "identifikator") \
        or _text(element, "epostadresse")


def read_folder(payload: bytes) -> dict | None:
    """A mappe.hent resultat as plain values; None when it holds no folder."""
    root = etree.fromstring(payload, etree.XMLParser(resolve_entities=False, no_network=True))
    folder = _child(root, "saksmappe")
    if folder is None:
        folder = _child(root, "mappe")
    if folder is None:
        return None
    year, seq = _text(folder, "saksaar"), _text(folder, "sakssekvensnummer")
    number = f"{year}/{seq}" if year and seq else _text(folder, "mappeID")
    return {
        "number": number, "title": _text(folder, "tittel"), "status": _coded(folder, "saksstatus"),
        "saksdato": _day(folder, "saksdato"), "created": _day(folder, "opprettetDato"),
        "closed": _day(folder, "avsluttetDato"), "responsible": _who(folder, "saksansvarlig"),
        "unit": _who(folder, "administrativEnhet"), "system_id": _text(folder, "systemID"),
        "posts": [read_post(entry, number) for entry in _all(folder, "registrering")],
    }


def read_post(entry: etree._Element, folder_number: str = "") -> dict:
    parts = _all(entry, "korrespondansepart")
    names = {_text(p, "korrespondansepartID"): _text(p, "korrespondansepartNavn") for p in parts}
    write_offs = [{"date": _day(w, "avskrivningsdato"), "method": _coded(w, "avskrivningsmaate"),
                   "by": _who(w, "avskrevetAv"), "part": names.get(_text(p, "korrespondansepartID"), "")}
                  for p in parts for w in _all(p, "avskrivning")]
    number = _text(entry, "journalpostnummer")
    return {
        "number": f"{folder_number}-{number}" if folder_number and number else _text(entry, "registreringsID"),
        "journal": f"{_text(entry, 'journalaar')}/{_text(entry, 'journalsekvensnummer')}"
        if _text(entry, "journalaar") else "",
        "type": _coded(entry, "journalposttype"), "status": _coded(entry, "journalstatus"),
        "title": _text(entry, "tittel"), "journaldato": _day(entry, "journaldato"),
        "document_date": _day(entry, "dokumentetsDato"), "received": _day(entry, "mottattDato"),
        "sent": _day(entry, "sendtDato"), "written_off": _day(entry, "avskrivningsdato"),
        "correspondents": [{"name": _text(p, "korrespondansepartNavn"),
                            "role": _coded(p, "korrespondanseparttype")} for p in parts],
        "write_offs": write_offs,
        "documents": [{"number": _text(d, "dokumentnummer"), "title": _text(d, "tittel"),
                       "role": _coded(d, "tilknyttetRegistreringSom"),
                       "filename": _text(_child(d, "dokumentobjekt"), "filnavn")}
                      for d in _all(entry, "dokumentbeskrivelse")],
    }


def folder_view(transport, system: str, *, system_id: str | None, fagsystem: str, noekkel: str) -> dict:
    """What the archive says it holds for one folder: {"folder": dict | None, "reply": Reply | None}.
    A transport that cannot ask gives {"folder": None, "reply": None}."""
    ask = getattr(transport, "query", None)
    if ask is None:
        return {"folder": None, "reply": None}
    reply: Reply = ask(MAPPE_HENT, hent_payload(MAPPE_HENT, system, system_id=system_id, fagsystem=fagsystem,
                                                noekkel=noekkel))
    if reply.kind == NOT_FOUND and system_id:  # the archive may not know that systemID (another archive): the key
        reply = ask(MAPPE_HENT, hent_payload(MAPPE_HENT, system, fagsystem=fagsystem, noekkel=noekkel))
    return {"folder": read_folder(reply.payload) if reply.kind == OK else None, "reply": reply}
