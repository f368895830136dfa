"""Fiks Arkiv V1 messages for archive jobs: built from the job's snapshot, validated before anyone sees them.

Pure: reads the job's snapshot (archive/snapshot.py: the case, post and settings as they were at the
event) and the standard's files; no database, sends nothing. A job older than snapshots is built
from a snapshot taken when it is built. How each event maps to the standard:

- case_created: arkivmelding.opprett with one `mappe` (xsi:type saksmappe), always open (saksstatus B):
  a closing is a later update of its own.
- post_finalized: arkivmelding.opprett with one `registrering` (xsi:type journalpost) alone, filed in its
  case by `referanseForelderMappe/referanseEksternNoekkel` ("case:<id>"), the key the case was created
  with. Jobs of a case go in order, so the saksmappe is there first; if it is not, the archive answers
  ikkefunnet/ugyldigforespoersel and the job is Feil (docs/decisions.md, "Ordering of jobs within a case").
- case_closed, case_reopened: arkivmelding.oppdater, `mappeOppdateringer` (xsi:type saksmappeOppdatering)
  with saksstatus A (and the avsluttetDato of that closing) or B.
- metadata_corrected, case_corrected: arkivmelding.oppdater (journalpostOppdatering with the corrected
  title, dates and correspondents; saksmappeOppdatering with the corrected title).
- post_expedited: arkivmelding.oppdater, journalstatus E and sendtDato.
- post_written_off: avskrivning.opprett (`nyAvskrivning`).

The archive assigns saksaar, sakssekvensnummer and journalpostnummer: none of them is sent. Folders and
posts are ours by `referanseEksternNoekkel` (fagsystem + "case:<id>" / "post:<id>"); the case system's
own number goes in `beskrivelse`, for the people who look a folder up in both systems.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import PurePath

from lxml import etree

from .. import text
from ..clock import OSLO
from ..extensions import db
from ..models import ArchiveJob, CaseKind, JournalPost, MetadataCorrection
from ..models.archive import AVSKRIVNING, OPPDATER, OPPRETT
from ..models.domain import PostType
from . import codes, snapshot
from .conventions import FROZEN_SETTINGS, merged_settings

_BASE = "https://ks-no.github.io/standarder/fiks-protokoll/fiks-arkiv"
AM = f"{_BASE}/arkivmelding/opprett/v1"
AMO = f"{_BASE}/arkivmelding/oppdater/v1"
AVS = f"{_BASE}/avskrivning/opprett/v1"
MDK = codes.MDK
XSI = codes.XSI

EVENTS = {
    "case_created": OPPRETT,
    "case_closed": OPPDATER,
    "case_reopened": OPPDATER,
    "post_finalized": OPPRETT,
    "metadata_corrected": OPPDATER,
    "post_written_off": AVSKRIVNING,
    "case_corrected": OPPDATER,
    "post_expedited": OPPDATER,
}


_NORDIC = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "Æ": "AE", "Ø": "O", "Å": "A"})
_CORRESPONDENT_TYPE = {PostType.I: "EA", PostType.U: "EM", PostType.N: "IM", PostType.X: "IM"}


@dataclass(frozen=True)
class OutgoingFile:
    name: str  # referanseDokumentfil, and the multipart part name
    sha256: str
    size: int
    filename: str


@dataclass(frozen=True)
class Message:
    meldingstype: str
    payload_name: str
    payload: bytes
    files: tuple[OutgoingFile, ...]


class MessageInvalid(Exception):
    """A message that the standard would refuse; its text names the element and the fault, for the log."""

    def __init__(self, text: str, problems: list[str] | None = None):
        super().__init__(text)
        self.problems = problems or [text]


class TextNotArchivable(MessageInvalid):
    """A text value holds a character XML cannot carry: only a correction of the object helps."""


def meldingstype_for(event: str) -> str:
    """The Fiks Arkiv message type that carries an archive event."""
    try:
        return EVENTS[event]
    except KeyError:
        raise MessageInvalid(f"event: {event!r} is not an archive event") from None


def validate(meldingstype: str, payload: bytes) -> None:
    """Refuse a payload that breaks the message type's XSD or uses a code outside the Fiks code lists."""
    found = codes.problems(meldingstype, payload)
    if found:
        raise MessageInvalid(codes.summary(found), found)


def build(job: ArchiveJob, settings: dict | None = None, current: dict | None = None) -> Message:
    """The message for one archive job, from its snapshot alone; never returns one that does not validate.

    settings (PPT_ARCHIVE_SETTINGS) fill what a snapshot lacks. current (identity.settings() at send
    time) wins over the snapshot's settings except for the names the archive knows our objects by
    (FROZEN_SETTINGS): so a job refused for a wrong arkivdel or unit goes right once the setting is
    corrected, and a renamed fagsystem never orphans what was sent before. A job older than snapshots
    has none: it is built from a snapshot taken now, of the objects as they are (the only case that
    reads the database)."""
    meldingstype = meldingstype_for(job.event)
    snap = job.snapshot if job.snapshot is not None else _late_snapshot(job, settings)
    conf = {**merged_settings(settings), **(snap.get("settings") or {}),
            **{k: v for k, v in (current or {}).items() if k not in FROZEN_SETTINGS}}
    root, files = _BUILDERS[job.event](snap, conf)
    payload = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    validate(meldingstype, payload)
    return Message(meldingstype, codes.meldingstype_info(meldingstype)["payloadFilnavn"], payload, tuple(files))


def _late_snapshot(job: ArchiveJob, settings: dict | None) -> dict:
    if job.event in snapshot.POST_EVENTS and job.post is None:
        raise MessageInvalid(f"registrering: the {job.event} job has no journal post")
    correction = db.session.get(MetadataCorrection, job.correction_id) if job.correction_id else None
    return snapshot.take(job.event, job.case, job.post, correction, job=job, settings=settings)


# --- element helpers: lxml does the escaping; a character XML cannot carry becomes MessageInvalid ---

def _sub(parent: etree._Element, tag: str, text: object = None, ns: str | None = None,
         xsi_type: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ns or etree.QName(parent).namespace}}}{tag}")
    if xsi_type:
        element.set(f"{{{XSI}}}type", xsi_type)
    if text is not None:
        try:
            element.text = str(text)
        except ValueError:
            raise TextNotArchivable(f"{codes.element_path(element)}: the text holds a character that XML cannot "
                                    f"carry (a control character); correct it in the case system") from None
    return element


def _code(parent: etree._Element, tag: str, value: str | None, ns: str | None = None) -> etree._Element:
    """A kode element; the description comes from the code list where there is one."""
    element = _sub(parent, tag, ns=ns)
    _sub(element, "kode", value or "", ns=MDK)
    described = (codes.code_list(tag) or {}).get(value or "")
    if described:
        _sub(element, "beskrivelse", described, ns=MDK)
    return element


def _key(parent: etree._Element, tag: str, noekkel: str, conf: dict, ns: str | None = None) -> etree._Element:
    """An eksternNoekkel: our own id, which the archive keeps so it can find the object again."""
    element = _sub(parent, tag, ns=ns)
    _sub(element, "fagsystem", conf["fagsystem"], ns=MDK)
    _sub(element, "noekkel", noekkel, ns=MDK)
    return element


def _person(parent: etree._Element, tag: str, who: dict | None, ns: str | None = None) -> etree._Element:
    """A user as the archive knows them: name, and the archive's id of the user (else the username)."""
    element = _sub(parent, tag, ns=ns)
    if who:
        _sub(element, "navn", who["navn"], ns=MDK)
        _sub(element, "identifikator", who["identifikator"], ns=MDK)
    return element


def _address(parent: etree._Element, address: dict | None, ns: str | None = None) -> None:
    """postadresse (one per street line), postnummer, poststed, landkode: in that order in every type using them."""
    if not address:
        return
    for line in address.get("lines") or []:
        _sub(parent, "postadresse", line, ns=ns)
    if address.get("postal_code"):
        _sub(parent, "postnummer", address["postal_code"], ns=ns)
    if address.get("city"):
        _sub(parent, "poststed", address["city"], ns=ns)
    if address.get("country"):
        _code(parent, "landkode", address["country"], ns=ns)


def _root(ns: str, tag: str) -> etree._Element:
    return etree.Element(f"{{{ns}}}{tag}", nsmap={None: ns, "n5mdk": MDK, "xsi": XSI} | (
        {"am": AM} if ns == AMO else {}))


def _midnight(day: date | str) -> str:
    """xs:dateTime for a calendar date kept in Oslo time."""
    return datetime.combine(date.fromisoformat(day) if isinstance(day, str) else day, time(0), OSLO).isoformat()


def _own_number(kind: str, number: str | None, conf: dict) -> str | None:
    """The case system's own number, for people: in `beskrivelse`, never in the archive's number fields
    (saksaar, sakssekvensnummer, journalpostnummer), which the archive assigns."""
    return f"{kind} i {conf['fagsystem']}: {number}" if number else None


# --- saksmappe ---

def _case_created(snap: dict, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    root = _root(AM, "arkivmelding")
    _sub(root, "system", conf["system"])
    _sub(root, "antallFiler", 0)
    _saksmappe(root, snap["case"], conf)
    return root, []


def _saksmappe(parent: etree._Element, case: dict, conf: dict) -> etree._Element:
    """The folder as the snapshot has it: created open (closing is a later update of its own)."""
    mappe = _sub(parent, "mappe", xsi_type="saksmappe")
    _sub(mappe, "tittel", case["title"])
    own = _own_number("Saksnummer", case.get("number"), conf)
    if own:
        _sub(mappe, "beskrivelse", own)
    if case.get("status") == "closed" and case.get("closed_on"):
        _sub(mappe, "avsluttetDato", _midnight(case["closed_on"]))
    if conf["arkivdel"]:
        _code(mappe, "arkivdel", conf["arkivdel"])
    if case["kind"] == CaseKind.PERSON.value and case.get("client"):
        _part(mappe, case["client"], conf)
    _skjerming(mappe, conf["skjermingshjemmel_mappe"], conf)
    _klassifikasjon(mappe, case, conf)
    _key(mappe, "referanseEksternNoekkel", case["key"], conf)
    mappetype = conf["mappetype"].get(case.get("category") or case["kind"])
    if mappetype:
        _code(mappe, "mappetype", mappetype)
    if case.get("opened_on"):
        _sub(mappe, "saksdato", case["opened_on"])
    if conf["administrativ_enhet"]:
        _sub(_sub(mappe, "administrativEnhet"), "navn", conf["administrativ_enhet"], ns=MDK)
    _person(mappe, "saksansvarlig", case.get("handler"))
    _code(mappe, "saksstatus", "A" if case.get("status") == "closed" else "B")
    return mappe


def _part(mappe: etree._Element, client: dict, conf: dict) -> None:
    """The client is the case's party (partRolle K), identified and screened."""
    part = _sub(mappe, "part")
    _sub(part, "partNavn", client["name"])
    _code(part, "partRolle", "K")
    person = _sub(part, "personID")
    _sub(person, "landkode", conf["landkode"])
    _sub(person, "identifikator", client["national_id"])
    _address(part, client.get("address"))
    _sub(part, "erSkjermet", "true")
    _sub(part, "erPersonnavn", "true")


def _klassifikasjon(mappe: etree._Element, case: dict, conf: dict) -> None:
    """Person cases are classified by national id (a screened klasseID), system cases by organisation number."""
    client, organisation = case.get("client"), case.get("organisation")
    if case["kind"] == CaseKind.PERSON.value and client:
        system, klasse, title, screened = (conf["klassifikasjonssystem_person"], client["national_id"],
                                           client["name"], True)
    elif organisation and organisation.get("org_number"):
        system, klasse, title, screened = (conf["klassifikasjonssystem_organisasjon"], organisation["org_number"],
                                           organisation["name"], False)
    else:
        return
    element = _sub(mappe, "klassifikasjon")
    _sub(element, "klassifikasjonssystemID", system)
    _sub(element, "klasseID", klasse)
    _sub(element, "tittel", title)
    _sub(element, "erSkjermet", "true" if screened else "false")


def _skjerming(parent: etree._Element, legal_basis: str, conf: dict) -> None:
    skjerming = _sub(parent, "skjerming")
    _code(skjerming, "tilgangsrestriksjon", conf["tilgangsrestriksjon"])
    _sub(skjerming, "skjermingshjemmel", legal_basis)


def _mappe_update(case: dict, conf: dict) -> tuple[etree._Element, etree._Element]:
    root = _root(AMO, "arkivmeldingOppdatering")
    update = _sub(root, "mappeOppdateringer", xsi_type="saksmappeOppdatering")
    _key(_sub(update, "referanseTilMappe"), "referanseEksternNoekkel", case["key"], conf, ns=MDK)
    return root, update


def _case_status(snap: dict, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    """Closing or reopening: the status and closing date of that event, so jobs run in order leave the archive right."""
    case = snap["case"]
    root, update = _mappe_update(case, conf)
    closing = case.get("status") == "closed"
    if closing:
        _sub(update, "avsluttetDato", _midnight(case["closed_on"]))
    _code(update, "saksstatus", "A" if closing else "B")
    return root, []


def _case_corrected(snap: dict, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    """A corrected case title (saksmappeOppdatering)."""
    root, update = _mappe_update(snap["case"], conf)
    _sub(update, "tittel", snap["case"]["title"])
    return root, []


def unarchivable_in(job: ArchiveJob) -> list[tuple[str, int]]:
    """(kind, id) of each object behind the job's message whose text the archive cannot carry: the
    case, its client or organisation, the post, its correspondents and documents, the users named."""
    case = job.case
    post = db.session.get(JournalPost, job.post_id) if job.post_id else None
    rows: list[tuple[str, object]] = [("case", case), ("client", case.client), ("organisation", case.organisation),
                                      ("user", case.handler)]
    if post is not None:
        rows += [("post", post), *(("post", c) for c in post.correspondents),
                 *(("post", d) for d in post.documents),
                 *(("user", u) for u in (post.created_by, post.finalized_by, post.written_off_by) if u)]
    found: list[tuple[str, int]] = []
    for kind, row in rows:
        if row is not None and text.unarchivable([row]):
            where = (kind, post.id if kind == "post" and post else row.id)  # type: ignore[attr-defined]
            if where not in found:
                found.append(where)
    return found


# --- journalpost ---

def _post(snap: dict, event: str) -> dict:
    if not snap.get("post"):
        raise MessageInvalid(f"registrering: the {event} job has no journal post")
    return snap["post"]


def _post_finalized(snap: dict, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    post = _post(snap, "post_finalized")
    if not post.get("archived"):
        raise MessageInvalid(f"registrering: post {post['key']} is not archived: it is not finalized, or its "
                             f"case is linked to no national id or organisation number")
    root = _root(AM, "arkivmelding")
    _sub(root, "system", conf["system"])
    count = _sub(root, "antallFiler")
    files = _journalpost(root, snap["case"], post, conf)
    count.text = str(len(files))
    return root, files


def _journalpost(parent: etree._Element, case: dict, post: dict, conf: dict) -> list[OutgoingFile]:
    entry = _sub(parent, "registrering", xsi_type="journalpost")
    _key(_sub(entry, "referanseForelderMappe"), "referanseEksternNoekkel", case["key"], conf, ns=MDK)
    if post["exempt"]:
        _skjerming(entry, post["legal_basis"], conf)
    # The snapshot keeps the documents in their order: main document first (dokumentnummer 1).
    files = [_dokumentbeskrivelse(entry, post, doc, number, conf)
             for number, doc in enumerate(post["documents"], start=1)]
    _sub(entry, "tittel", post["title"])
    own = _own_number("Journalpostnummer", f"{case['number']}-{post['seq']}" if case.get("number") else None, conf)
    if own:
        _sub(entry, "beskrivelse", own)
    for party in post["correspondents"]:
        _korrespondansepart(_sub(entry, "korrespondansepart"), post, party, conf)
    _key(entry, "referanseEksternNoekkel", post["key"], conf)
    _code(entry, "journalposttype", post["type"])
    _code(entry, "journalstatus", post.get("journalstatus") or "F")
    if post.get("registered_on"):
        _sub(entry, "journaldato", post["registered_on"])
    if post.get("document_date"):
        _sub(entry, "dokumentetsDato", post["document_date"])
    if post["type"] == PostType.I.value and post.get("received_on"):
        _sub(entry, "mottattDato", _midnight(post["received_on"]))
    sent = post.get("expedited_on") or post.get("sent_on")
    if post["type"] == PostType.U.value and sent:
        _sub(entry, "sendtDato", _midnight(sent))
    _sub(entry, "antallVedlegg", max(len(files) - 1, 0))
    return files


def _file_name(number: int, filename: str) -> str:
    """referanseDokumentfil: unique in the message and plain ASCII, as KS advises."""
    ascii_name = unicodedata.normalize("NFKD", filename.translate(_NORDIC)).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", PurePath(ascii_name).stem).strip("-.")[:60] or "dokument"
    return f"{number:02d}-{stem}.pdf"


def _dokumentbeskrivelse(entry: etree._Element, post: dict, doc: dict, number: int, conf: dict) -> OutgoingFile:
    if not doc.get("stored"):
        raise MessageInvalid(f"dokumentobjekt: document {number} of {post['key']} has no stored file")
    main = doc["role"] == "main"
    outgoing = OutgoingFile(name=_file_name(number, doc["filename"]), sha256=doc["sha256"], size=doc["size"],
                            filename=doc["filename"])
    element = _sub(entry, "dokumentbeskrivelse")
    _code(element, "dokumenttype", conf["dokumenttype"][post["type"] if main else "vedlegg"])
    _code(element, "dokumentstatus", "F")
    _sub(element, "tittel", post["title"] if main
         else (PurePath(doc["filename"]).stem.strip() or f"Vedlegg {number - 1}"))
    _code(element, "tilknyttetRegistreringSom", "H" if main else "V")
    _sub(element, "dokumentnummer", number)
    obj = _sub(element, "dokumentobjekt")
    _sub(obj, "versjonsnummer", 1)
    _code(obj, "variantformat", "P")
    _code(obj, "format", conf["format"])
    _sub(obj, "mimeType", doc.get("content_type") or "application/pdf")
    _sub(obj, "filnavn", doc["filename"])
    _sub(obj, "referanseDokumentfil", outgoing.name)
    _sub(obj, "sjekksum", doc["sha256"])
    _sub(obj, "sjekksumAlgoritme", "SHA256")
    _sub(obj, "filstoerrelse", doc["size"])
    return outgoing


def _korrespondansepart(element: etree._Element, post: dict, party: dict, conf: dict,
                        ns: str | None = None) -> None:
    """Fill a korrespondansepart (opprett) or korrespondansepartOppdatering: the elements used share one order."""
    _sub(element, "korrespondansepartID", party["id"], ns=ns)
    _code(element, "korrespondanseparttype", _CORRESPONDENT_TYPE[PostType(post["type"])], ns=ns)
    _sub(element, "korrespondansepartNavn", party["name"], ns=ns)
    if party.get("org_number"):
        _sub(element, "organisasjonid", party["org_number"], ns=ns)
    elif party.get("national_id"):
        _sub(element, "personid", party["national_id"], ns=ns)
    _address(element, party.get("address"), ns=ns)
    internal = party.get("internal")
    if internal:  # the case's handler, as internal recipient of a note
        if conf["administrativ_enhet"]:
            _sub(_sub(element, "administrativEnhet", ns=ns), "navn", conf["administrativ_enhet"], ns=MDK)
        _person(element, "saksbehandler", internal, ns=ns)
    # Names of private persons are screened on an exempt post; organisations' and staff's names are not.
    private = not (party.get("org_number") or party.get("organisation") or internal)
    _sub(element, "erSkjermet", "true" if post["exempt"] and private else "false", ns=ns)


# --- updates of a journalpost ---

def _registrering_update(post: dict, conf: dict) -> tuple[etree._Element, etree._Element]:
    root = _root(AMO, "arkivmeldingOppdatering")
    update = _sub(root, "registreringOppdateringer", xsi_type="journalpostOppdatering")
    _key(_sub(update, "referanseTilRegistrering"), "referanseEksternNoekkel", post["key"], conf, ns=MDK)
    return root, update


def _metadata_corrected(snap: dict, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    """The values of this correction, so several corrections sent in order end right. A correspondent
    in a place the archive holds is updated under that place's id; places beyond the new list are
    deleted; new places are added."""
    post = _post(snap, "metadata_corrected")
    correction = snap.get("correction") or {}
    parties = correction.get("correspondents") or []
    known = correction.get("previous_ids") or []
    root, update = _registrering_update(post, conf)
    _sub(update, "tittel", correction.get("title") or post["title"])
    if parties or known:
        changes = _sub(update, "korrespondansepartOppdateringer")
        for party in parties[:len(known)]:
            _korrespondansepart(_sub(changes, "oppdatering"), post, party, conf)
        for gone in known[len(parties):]:
            _sub(_sub(changes, "slett"), "korrespondansepartID", gone)
        for party in parties[len(known):]:
            _korrespondansepart(_sub(changes, "ny"), post, party, conf, ns=AM)  # opprett's type
    if correction.get("document_date"):
        _sub(update, "dokumentetsDato", correction["document_date"])
    if post["type"] == PostType.I.value and correction.get("received_on"):
        _sub(update, "mottattDato", _midnight(correction["received_on"]))
    if post["type"] == PostType.U.value and correction.get("sent_on"):
        _sub(update, "sendtDato", _midnight(correction["sent_on"]))
    return root, []


# --- avskrivning ---

def _written_off(snap: dict, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    """nyAvskrivning: the incoming post, its sender (by the korrespondansepartID the archive was given)
    and the reply that answered it."""
    post = _post(snap, "post_written_off")
    written = snap.get("write_off") or {}
    if not written.get("party_id"):
        raise MessageInvalid(f"/nyAvskrivning/korrespondansepartID: {post['key']} has no sender to write off")
    root = _root(AVS, "nyAvskrivning")
    avskrivning = _sub(root, "avskrivning")
    _sub(avskrivning, "avskrivningsdato", written["date"])
    _person(avskrivning, "avskrevetAv", written.get("by"))
    _code(avskrivning, "avskrivningsmaate", written.get("method"))
    if written.get("reply_key"):
        _key(_sub(avskrivning, "referanseAvskrivesAvJournalpost"), "referanseEksternNoekkel", written["reply_key"],
             conf, ns=MDK)
    _key(_sub(root, "referanseTilJournalpost"), "referanseEksternNoekkel", post["key"], conf, ns=MDK)
    _sub(root, "korrespondansepartID", written["party_id"])
    return root, []


def _expedited(snap: dict, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    """The letter left us: journalstatus E and sendtDato (journalpostOppdatering)."""
    post = _post(snap, "post_expedited")
    root, update = _registrering_update(post, conf)
    _code(update, "journalstatus", "E")
    sent = (snap.get("expedition") or {}).get("sent_on")
    if sent:
        _sub(update, "sendtDato", _midnight(sent))
    return root, []


_BUILDERS = {
    "case_created": _case_created,
    "case_closed": _case_status,
    "case_reopened": _case_status,
    "post_finalized": _post_finalized,
    "metadata_corrected": _metadata_corrected,
    "post_written_off": _written_off,
    "case_corrected": _case_corrected,
    "post_expedited": _expedited,
}
