"""The archive side's replies (Fiks Arkiv V1): built by the local archive, parsed by every transport.

The local archive answers "exactly as the http contract says", so it builds its replies here and every
transport reads them with the same parsers; both directions are checked against the KS XSDs.

archive_ids, the ids an archive assigned (all optional except the systemIDs, which are UUIDs):
    {"mappe": {"systemID", "mappeID", "saksaar", "sakssekvensnummer", "opprettetDato",
               "opprettetEllerEksisterende"},
     "registrering": {"systemID", "registreringsID", "journalaar", "journalsekvensnummer", "journalpostnummer",
                      "opprettetDato", "opprettetEllerEksisterende",
                      "dokumentbeskrivelser": [{"dokumentnummer", "systemID", "dokumentobjekter": [systemID]}]}}
parse_kvittering returns the same shape, plus what the kvittering echoes (referanseEksternNoekkel as the
noekkel, saksdato, journalposttype, journalstatus) and {"feilet": text} for a mappeFeilet/registreringFeilet.
"""
from __future__ import annotations

import re
import uuid

from lxml import etree

from . import codes
from .message import AM, MDK, XSI, Message

_BASE = "https://ks-no.github.io/standarder/fiks-protokoll/fiks-arkiv"
KVITTERING = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett.kvittering"
UGYLDIGFORESPOERSEL = "no.ks.fiks.arkiv.v1.feilmelding.ugyldigforespoersel"
IKKEFUNNET = "no.ks.fiks.arkiv.v1.feilmelding.ikkefunnet"
SERVERFEIL = "no.ks.fiks.arkiv.v1.feilmelding.serverfeil"
KV = f"{_BASE}/arkivmelding/opprett/kvittering/v1"
FEIL = f"{_BASE}/feil/feilmelding/v1"
_ERRORS = {f"{_BASE}/feil/{name}/v1": (f"no.ks.fiks.arkiv.v1.feilmelding.{name}", name)
           for name in ("ugyldigforespoersel", "ikkefunnet", "serverfeil")}
_INTS = {"saksaar", "sakssekvensnummer", "journalaar", "journalsekvensnummer", "journalpostnummer", "dokumentnummer",
         "versjonsnummer"}
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class ReplyInvalid(Exception):
    """A reply that is not what the standard says it is; the text says what is wrong."""


def _check(meldingstype: str, payload: bytes) -> None:
    found = codes.problems(meldingstype, payload)
    if found:
        raise ReplyInvalid(f"{codes.canonical(meldingstype)}: {codes.summary(found)}")


def _sub(parent: etree._Element, tag: str, text: object = None, ns: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ns or etree.QName(parent).namespace}}}{tag}")
    if text is not None:
        element.text = str(text)
    return element


def _copy_key(parent: etree._Element, sent: etree._Element) -> None:
    """Echo the sender's referanseEksternNoekkel, so the sender knows which of its objects got the ids."""
    key = sent.find(f"{{{AM}}}referanseEksternNoekkel")
    if key is not None:
        element = _sub(parent, "referanseEksternNoekkel")
        for tag in ("fagsystem", "noekkel"):
            _sub(element, tag, key.findtext(f"{{{MDK}}}{tag}"), ns=MDK)


def _copy_code(parent: etree._Element, sent: etree._Element, tag: str) -> None:
    code = sent.find(f"{{{AM}}}{tag}")
    if code is not None:
        element = _sub(parent, tag)
        for child in code:
            _sub(element, etree.QName(child).localname, child.text, ns=MDK)


def kvittering(meldingstype: str, message: Message, archive_ids: dict) -> bytes:
    """The kvittering payload for a message the archive stored; b"" where the type's kvittering has none."""
    if not codes.meldingstype_info(f"{codes.canonical(meldingstype)}.kvittering")["harPayload"]:
        return b""
    sent = etree.fromstring(message.payload)
    root = etree.Element(f"{{{KV}}}arkivmeldingKvittering", nsmap={None: KV, "n5mdk": MDK, "xsi": XSI})
    mappe = sent.find(f"{{{AM}}}mappe")
    if mappe is not None:
        _mappe_kvittering(root, mappe, archive_ids.get("mappe") or {})
    entry = sent.find(f"{{{AM}}}registrering")
    if entry is not None:
        _registrering_kvittering(root, entry, archive_ids.get("registrering") or {})
    payload = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    _check(KVITTERING, payload)
    return payload


def _mappe_kvittering(root: etree._Element, sent: etree._Element, ids: dict) -> None:
    saksmappe = sent.get(f"{{{XSI}}}type", "").split(":")[-1] == "saksmappe"
    element = _sub(root, "mappeKvittering")
    if saksmappe:
        element.set(f"{{{XSI}}}type", "saksmappeKvittering")
    _sub(element, "systemID", ids.get("systemID"))
    for tag in ("mappeID", "opprettetDato"):
        if ids.get(tag) is not None:
            _sub(element, tag, ids[tag])
    _copy_key(element, sent)
    _sub(element, "opprettetEllerEksisterende", ids.get("opprettetEllerEksisterende", "Opprettet"))
    if saksmappe:
        for tag in ("saksaar", "sakssekvensnummer", "saksdato"):  # the archive's numbers, never the sender's
            value = ids.get(tag, sent.findtext(f"{{{AM}}}{tag}") if tag == "saksdato" else None)
            if value is not None:
                _sub(element, tag, value)


def _registrering_kvittering(root: etree._Element, sent: etree._Element, ids: dict) -> None:
    journalpost = sent.get(f"{{{XSI}}}type", "").split(":")[-1] == "journalpost"
    element = _sub(root, "registreringKvittering")
    if journalpost:
        element.set(f"{{{XSI}}}type", "journalpostKvittering")
    _sub(element, "systemID", ids.get("systemID"))
    if ids.get("opprettetDato") is not None:
        _sub(element, "opprettetDato", ids["opprettetDato"])
    for described in ids.get("dokumentbeskrivelser", []):
        document = _sub(element, "dokumentbeskrivelseKvittering")
        _sub(document, "systemID", described.get("systemID"))
        if described.get("dokumentnummer") is not None:
            _sub(document, "dokumentnummer", described["dokumentnummer"])
        for object_id in described.get("dokumentobjekter", []):
            _sub(_sub(document, "dokumentobjekt"), "systemID", object_id)
    if ids.get("registreringsID") is not None:
        _sub(element, "registreringsID", ids["registreringsID"])
    _copy_key(element, sent)
    _sub(element, "opprettetEllerEksisterende", ids.get("opprettetEllerEksisterende", "Opprettet"))
    if journalpost:
        for tag in ("journalaar", "journalsekvensnummer", "journalpostnummer"):
            value = ids.get(tag)  # the archive's numbers only: a sender's own are never echoed
            if value is not None:
                _sub(element, tag, value)
        _copy_code(element, sent, "journalposttype")
        _copy_code(element, sent, "journalstatus")


def feilmelding(meldingstype: str, text: str, feil_id: str | None = None) -> bytes:
    namespace, name = next((ns, n) for ns, (t, n) in _ERRORS.items() if t == meldingstype)
    root = etree.Element(f"{{{namespace}}}{name}", nsmap={None: namespace, "feil": FEIL})
    _sub(root, "feilId", feil_id or str(uuid.uuid4()), ns=FEIL)
    _sub(root, "feilmelding", _NOT_XML.sub("\ufffd", text or name), ns=FEIL)
    payload = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    _check(meldingstype, payload)
    return payload


def _parse(payload: bytes) -> etree._Element:
    try:
        return etree.fromstring(payload, etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, ValueError) as e:
        raise ReplyInvalid(f"the reply is not well-formed XML: {e}") from None


def _fields(element: etree._Element) -> dict:
    found: dict = {}
    for child in element:
        name = etree.QName(child).localname
        if name == "dokumentbeskrivelseKvittering":
            found.setdefault("dokumentbeskrivelser", []).append(_fields(child))
        elif name == "dokumentobjekt":
            found.setdefault("dokumentobjekter", []).append(child.findtext(f"{{{KV}}}systemID"))
        elif name == "referanseEksternNoekkel":
            found[name] = child.findtext(f"{{{MDK}}}noekkel")
        elif child.find(f"{{{MDK}}}kode") is not None:
            found[name] = child.findtext(f"{{{MDK}}}kode")
        elif len(child) == 0:
            found[name] = int(child.text) if name in _INTS else child.text
    return found


def parse_kvittering(payload: bytes) -> dict:
    """The ids the archive assigned, from an arkivmelding.opprett.kvittering; ReplyInvalid for anything else."""
    root = _parse(payload)
    _check(KVITTERING, payload)
    result: dict = {}
    for kind in ("mappe", "registrering"):
        ok = root.find(f"{{{KV}}}{kind}Kvittering")
        failed = root.find(f"{{{KV}}}{kind}Feilet")
        if ok is not None:
            result[kind] = _fields(ok)
        elif failed is not None:
            result[kind] = {"feilet": failed.findtext(f"{{{FEIL}}}feilmelding"),
                            "feilId": failed.findtext(f"{{{FEIL}}}feilId")}
    return result


def parse_feilmelding(payload: bytes) -> str:
    """The human text of an ugyldigforespoersel, ikkefunnet or serverfeil reply; ReplyInvalid for anything else."""
    root = _parse(payload)
    namespace = etree.QName(root).namespace
    if namespace not in _ERRORS:
        raise ReplyInvalid(f"/{etree.QName(root).localname}: not a Fiks Arkiv feilmelding ({namespace})")
    _check(_ERRORS[namespace][0], payload)
    return root.findtext(f"{{{FEIL}}}feilmelding") or ""
