"""Fiks Arkiv V1 messages for archive jobs: built from the database, validated before anyone sees them.

Pure: reads the domain objects through the job's relationships and the standard's files; sends nothing.
How each event maps to the standard:

- case_created: arkivmelding.opprett with one `mappe` (xsi:type saksmappe).
- post_finalized: arkivmelding.opprett with one `registrering` (xsi:type journalpost) alone, filed in its
  case by `referanseForelderMappe/referanseEksternNoekkel` ("case:<id>"), the key the case was created
  with. Jobs of a case go in order, so the saksmappe is there first; if it is not, the archive answers
  ikkefunnet/ugyldigforespoersel and the job is Feil (docs/decisions.md, "Ordering of jobs within a case").
- case_closed, case_reopened: arkivmelding.oppdater, `mappeOppdateringer` (xsi:type saksmappeOppdatering)
  with saksstatus A (and avsluttetDato) or B.
- metadata_corrected: arkivmelding.oppdater, `registreringOppdateringer` (xsi:type journalpostOppdatering)
  with the corrected title, dates and correspondents.
- post_written_off: avskrivning.opprett (`nyAvskrivning`).
"""
from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import PurePath

from lxml import etree

from .. import text
from ..clock import OSLO, today
from ..extensions import db
from ..models import ArchiveJob, Case, CaseKind, CaseStatus, Client, JournalPost, MetadataCorrection, PostStatus, User
from ..models.archive import AVSKRIVNING, OPPDATER, OPPRETT
from ..models.domain import DEFAULT_LEGAL_BASIS, LOCKED_STATUSES, Correspondent, Document, PostType
from . import codes

_BASE = "https://ks-no.github.io/standarder/fiks-protokoll/fiks-arkiv"
AM = f"{_BASE}/arkivmelding/opprett/v1"
AMO = f"{_BASE}/arkivmelding/oppdater/v1"
AVS = f"{_BASE}/avskrivning/opprett/v1"
MDK = codes.MDK
XSI = codes.XSI

# Archive-local values: every municipality's archive has its own. build(job, settings) overrides any key;
# a dict value is merged key by key. None leaves the optional element out (the archive uses its default).
DEFAULTS: dict = {
    "system": "ppt_web",                         # arkivmelding/system: the sending system
    "fagsystem": "ppt_web",                      # referanseEksternNoekkel/fagsystem: whose keys "case:<id>" are
    "klassifikasjonssystem_person": "FNR",       # klassifikasjonssystemID of person cases; klasseID = national id
    "klassifikasjonssystem_organisasjon": "ORGNR",  # of system cases; klasseID = organisation number
    "tilgangsrestriksjon": "13",                 # skjerming/tilgangsrestriksjon kode (no Fiks code list exists)
    "skjermingshjemmel_mappe": DEFAULT_LEGAL_BASIS,  # legal basis screening the saksmappe (title, part)
    "arkivdel": None,                            # mappe/arkivdel kode
    "administrativ_enhet": None,                 # saksmappe/administrativEnhet/navn
    "mappetype": {},                             # case category ("expert_assessment", ...) or kind -> mappetype kode
    "dokumenttype": {"I": "KORR", "U": "KORR", "N": "NOTAT", "X": "NOTAT", "vedlegg": "VEDLEGG"},
    "format": "PDF",                             # dokumentobjekt/format kode (no Fiks code list exists)
    "landkode": "NO",                            # part/personID/landkode
}

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


def criteria(post: JournalPost) -> bool:
    """Archived only when finalized (or dispatched) and linked to a national id or organisation number."""
    if post.status not in LOCKED_STATUSES:
        return False
    case = post.case
    return bool((case.client and case.client.national_id) or (case.organisation and case.organisation.org_number))


def validate(meldingstype: str, payload: bytes) -> None:
    """Refuse a payload that breaks the message type's XSD or uses a code outside the Fiks code lists."""
    found = codes.problems(meldingstype, payload)
    if found:
        raise MessageInvalid(codes.summary(found), found)


def build(job: ArchiveJob, settings: dict | None = None) -> Message:
    """The message for one archive job; never returns one that does not validate."""
    meldingstype = meldingstype_for(job.event)
    conf = _settings(settings)
    root, files = _BUILDERS[job.event](job, conf)
    payload = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    validate(meldingstype, payload)
    return Message(meldingstype, codes.meldingstype_info(meldingstype)["payloadFilnavn"], payload, tuple(files))


def _settings(settings: dict | None) -> dict:
    merged = dict(DEFAULTS)
    for key, value in (settings or {}).items():
        merged[key] = {**merged[key], **value} if isinstance(merged.get(key), dict) and isinstance(value, dict) \
            else value
    return merged


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


def _person(parent: etree._Element, tag: str, user: User | None) -> etree._Element:
    element = _sub(parent, tag)
    if user is not None:
        _sub(element, "navn", user.full_name, ns=MDK)
        _sub(element, "identifikator", user.username, ns=MDK)
    return element


def _root(ns: str, tag: str) -> etree._Element:
    return etree.Element(f"{{{ns}}}{tag}", nsmap={None: ns, "n5mdk": MDK, "xsi": XSI} | (
        {"am": AM} if ns == AMO else {}))


def case_key(case: Case) -> str:
    return f"case:{case.id}"


def post_key(post: JournalPost) -> str:
    return f"post:{post.id}"


def party_id(post: JournalPost, position: int, conf: dict | None = None) -> str:
    """korrespondansepartID: ours and stable, since avskrivning needs it and no kvittering returns the archive's."""
    fagsystem = (conf or DEFAULTS)["fagsystem"]
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{fagsystem}:post:{post.id}:korrespondansepart:{position}"))


def _midnight(day: date) -> str:
    """xs:dateTime for a calendar date kept in Oslo time."""
    return datetime.combine(day, time(0), OSLO).isoformat()


def _oslo_date(moment: datetime | None) -> date | None:
    return moment.astimezone(OSLO).date() if moment else None


# --- saksmappe ---

def _case_created(job: ArchiveJob, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    root = _root(AM, "arkivmelding")
    _sub(root, "system", conf["system"])
    _sub(root, "antallFiler", 0)
    _saksmappe(root, job.case, conf)
    return root, []


def _saksmappe(parent: etree._Element, case: Case, conf: dict) -> etree._Element:
    mappe = _sub(parent, "mappe", xsi_type="saksmappe")
    _sub(mappe, "tittel", case.title)
    if case.status == CaseStatus.CLOSED and case.closed_on:
        _sub(mappe, "avsluttetDato", _midnight(case.closed_on))
    if conf["arkivdel"]:
        _code(mappe, "arkivdel", conf["arkivdel"])
    if case.kind == CaseKind.PERSON and case.client is not None:
        _part(mappe, case.client, conf)
    _skjerming(mappe, conf["skjermingshjemmel_mappe"], conf)
    _klassifikasjon(mappe, case, conf)
    _key(mappe, "referanseEksternNoekkel", case_key(case), conf)
    mappetype = conf["mappetype"].get(case.category.value if case.category else case.kind.value)
    if mappetype:
        _code(mappe, "mappetype", mappetype)
    number = re.fullmatch(r"(\d{4})/(\d+)", case.number or "")
    if number:
        _sub(mappe, "saksaar", int(number[1]))
        _sub(mappe, "sakssekvensnummer", int(number[2]))
    _sub(mappe, "saksdato", case.opened_on.isoformat())
    if conf["administrativ_enhet"]:
        _sub(_sub(mappe, "administrativEnhet"), "navn", conf["administrativ_enhet"], ns=MDK)
    _person(mappe, "saksansvarlig", case.handler)
    _code(mappe, "saksstatus", "A" if case.status == CaseStatus.CLOSED else "B")
    return mappe


def _part(mappe: etree._Element, client: Client, conf: dict) -> None:
    """The client is the case's party (partRolle K), identified and screened."""
    part = _sub(mappe, "part")
    _sub(part, "partNavn", client.name)
    _code(part, "partRolle", "K")
    person = _sub(part, "personID")
    _sub(person, "landkode", conf["landkode"])
    _sub(person, "identifikator", client.national_id)
    for tag, value in (("postadresse", client.address), ("postnummer", client.postal_code),
                       ("poststed", client.city)):
        if value:
            _sub(part, tag, value)
    _sub(part, "erSkjermet", "true")
    _sub(part, "erPersonnavn", "true")


def _klassifikasjon(mappe: etree._Element, case: Case, conf: dict) -> None:
    """Person cases are classified by national id (a screened klasseID), system cases by organisation number."""
    if case.kind == CaseKind.PERSON and case.client is not None:
        system, klasse, title, screened = (conf["klassifikasjonssystem_person"], case.client.national_id,
                                           case.client.name, True)
    elif case.organisation is not None and case.organisation.org_number:
        system, klasse, title, screened = (conf["klassifikasjonssystem_organisasjon"], case.organisation.org_number,
                                           case.organisation.name, False)
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


def _case_status(job: ArchiveJob, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    """Closing or reopening: saksstatus follows the event, so jobs run in order leave the archive right."""
    case = job.case
    root = _root(AMO, "arkivmeldingOppdatering")
    update = _sub(root, "mappeOppdateringer", xsi_type="saksmappeOppdatering")
    _key(_sub(update, "referanseTilMappe"), "referanseEksternNoekkel", case_key(case), conf, ns=MDK)
    closing = job.event == "case_closed"
    if closing:
        _sub(update, "avsluttetDato", _midnight(case.closed_on if case.status == CaseStatus.CLOSED and case.closed_on
                                                else job.finalized_on or today()))
    _code(update, "saksstatus", "A" if closing else "B")
    return root, []


def _case_corrected(job: ArchiveJob, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    """A corrected case title (saksmappeOppdatering)."""
    case = job.case
    root = _root(AMO, "arkivmeldingOppdatering")
    update = _sub(root, "mappeOppdateringer", xsi_type="saksmappeOppdatering")
    _key(_sub(update, "referanseTilMappe"), "referanseEksternNoekkel", case_key(case), conf, ns=MDK)
    _sub(update, "tittel", case.title)
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

def _post(job: ArchiveJob) -> JournalPost:
    if job.post is None:
        raise MessageInvalid(f"registrering: the {job.event} job has no journal post")
    return job.post


def _post_finalized(job: ArchiveJob, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    post = _post(job)
    if not criteria(post):
        raise MessageInvalid(f"registrering: post {post_key(post)} is not archived: it is not finalized, or its "
                             f"case is linked to no national id or organisation number")
    root = _root(AM, "arkivmelding")
    _sub(root, "system", conf["system"])
    count = _sub(root, "antallFiler")
    files = _journalpost(root, post, conf)
    count.text = str(len(files))
    return root, files


def _documents(post: JournalPost) -> list[Document]:
    """Main document first (dokumentnummer 1), then the attachments in their order."""
    return sorted(post.documents, key=lambda d: (d.role != "main", d.position or 0))


def _journalpost(parent: etree._Element, post: JournalPost, conf: dict) -> list[OutgoingFile]:
    entry = _sub(parent, "registrering", xsi_type="journalpost")
    _key(_sub(entry, "referanseForelderMappe"), "referanseEksternNoekkel", case_key(post.case), conf, ns=MDK)
    if post.exempt:
        _skjerming(entry, post.legal_basis, conf)
    files = [_dokumentbeskrivelse(entry, post, doc, number, conf)
             for number, doc in enumerate(_documents(post), start=1)]
    _sub(entry, "tittel", post.title)
    for position, correspondent in enumerate(post.correspondents, start=1):
        _korrespondansepart(_sub(entry, "korrespondansepart"), post, position, _party(correspondent), conf)
    _key(entry, "referanseEksternNoekkel", post_key(post), conf)
    _sub(entry, "journalpostnummer", post.seq)
    _code(entry, "journalposttype", post.post_type.value)
    _code(entry, "journalstatus", "E" if post.status == PostStatus.DISPATCHED else "F")
    registered = _oslo_date(post.registered_at)
    if registered:
        _sub(entry, "journaldato", registered.isoformat())
    if post.document_date:
        _sub(entry, "dokumentetsDato", post.document_date.isoformat())
    if post.post_type == PostType.I and post.received_on:
        _sub(entry, "mottattDato", _midnight(post.received_on))
    if post.post_type == PostType.U and post.sent_on:
        _sub(entry, "sendtDato", _midnight(post.sent_on))
    _sub(entry, "antallVedlegg", max(len(files) - 1, 0))
    return files


def _file_name(number: int, filename: str) -> str:
    """referanseDokumentfil: unique in the message and plain ASCII, as KS advises."""
    ascii_name = unicodedata.normalize("NFKD", filename.translate(_NORDIC)).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", PurePath(ascii_name).stem).strip("-.")[:60] or "dokument"
    return f"{number:02d}-{stem}.pdf"


def _dokumentbeskrivelse(entry: etree._Element, post: JournalPost, doc: Document, number: int,
                         conf: dict) -> OutgoingFile:
    stored = doc.file
    if stored is None:
        raise MessageInvalid(f"dokumentobjekt: document {number} of {post_key(post)} has no stored file")
    main = doc.role == "main"
    outgoing = OutgoingFile(name=_file_name(number, doc.filename), sha256=doc.sha256, size=stored.size,
                            filename=doc.filename)
    element = _sub(entry, "dokumentbeskrivelse")
    _code(element, "dokumenttype", conf["dokumenttype"][post.post_type.value if main else "vedlegg"])
    _code(element, "dokumentstatus", "F")
    _sub(element, "tittel", post.title if main else (PurePath(doc.filename).stem.strip() or f"Vedlegg {number - 1}"))
    _code(element, "tilknyttetRegistreringSom", "H" if main else "V")
    _sub(element, "dokumentnummer", number)
    obj = _sub(element, "dokumentobjekt")
    _sub(obj, "versjonsnummer", 1)
    _code(obj, "variantformat", "P")
    _code(obj, "format", conf["format"])
    _sub(obj, "mimeType", stored.content_type or "application/pdf")
    _sub(obj, "filnavn", doc.filename)
    _sub(obj, "referanseDokumentfil", outgoing.name)
    _sub(obj, "sjekksum", doc.sha256)
    _sub(obj, "sjekksumAlgoritme", "SHA256")
    _sub(obj, "filstoerrelse", stored.size)
    return outgoing


def _party(correspondent: Correspondent) -> dict:
    return {"name": correspondent.name, "address": correspondent.address, "org_number": correspondent.org_number,
            "national_id": correspondent.national_id,
            "organisation": bool(correspondent.organisation_id or correspondent.organisation)}


def _korrespondansepart(element: etree._Element, post: JournalPost, position: int, party: dict, conf: dict,
                        ns: str | None = None) -> None:
    """Fill a korrespondansepart (opprett) or korrespondansepartOppdatering: the elements used share one order."""
    _sub(element, "korrespondansepartID", party_id(post, position, conf), ns=ns)
    _code(element, "korrespondanseparttype", _CORRESPONDENT_TYPE[post.post_type], ns=ns)
    _sub(element, "korrespondansepartNavn", party["name"], ns=ns)
    if party.get("org_number"):
        _sub(element, "organisasjonid", party["org_number"], ns=ns)
    elif party.get("national_id"):
        _sub(element, "personid", party["national_id"], ns=ns)
    if party.get("address"):
        _sub(element, "postadresse", party["address"], ns=ns)
    # Names of private persons are screened on an exempt post; organisations' names are not.
    private = not (party.get("org_number") or party.get("organisation"))
    _sub(element, "erSkjermet", "true" if post.exempt and private else "false", ns=ns)


# --- updates of a journalpost ---

def _correction(job: ArchiveJob, post: JournalPost) -> MetadataCorrection | None:
    correction_id = job.correction_id or post.correction_id
    return db.session.get(MetadataCorrection, correction_id) if correction_id else None


def _metadata_corrected(job: ArchiveJob, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    """The values of this correction (its `after`), so several corrections sent in order end right."""
    post = _post(job)
    correction = _correction(job, post)
    current = [_party(c) for c in post.correspondents]
    if correction is not None:
        after = correction.after
        names = list(after.get("correspondents", []))
        parties = current if [p["name"] for p in current] == names else [{"name": n} for n in names]
        old_count = len(correction.before.get("correspondents", []))
        title = after.get("title", post.title)
        dates = {k: date.fromisoformat(after[k]) if after.get(k) else None
                 for k in ("document_date", "received_on", "sent_on")}
    else:
        parties, old_count, title = current, len(current), post.title
        dates = {"document_date": post.document_date, "received_on": post.received_on, "sent_on": post.sent_on}

    root = _root(AMO, "arkivmeldingOppdatering")
    update = _sub(root, "registreringOppdateringer", xsi_type="journalpostOppdatering")
    _key(_sub(update, "referanseTilRegistrering"), "referanseEksternNoekkel", post_key(post), conf, ns=MDK)
    _sub(update, "tittel", title)
    if parties or old_count:
        changes = _sub(update, "korrespondansepartOppdateringer")
        for position, party in enumerate(parties[:old_count], start=1):
            _korrespondansepart(_sub(changes, "oppdatering"), post, position, party, conf)
        for position in range(len(parties) + 1, old_count + 1):
            _sub(_sub(changes, "slett"), "korrespondansepartID", party_id(post, position, conf))
        for position, party in enumerate(parties[old_count:], start=old_count + 1):
            _korrespondansepart(_sub(changes, "ny"), post, position, party, conf, ns=AM)  # opprett's type
    if dates["document_date"]:
        _sub(update, "dokumentetsDato", dates["document_date"].isoformat())
    if post.post_type == PostType.I and dates["received_on"]:
        _sub(update, "mottattDato", _midnight(dates["received_on"]))
    if post.post_type == PostType.U and dates["sent_on"]:
        _sub(update, "sendtDato", _midnight(dates["sent_on"]))
    return root, []


# --- avskrivning ---

def _written_off(job: ArchiveJob, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    """nyAvskrivning: the incoming post, its sender (korrespondansepartID 1) and the reply that answered it."""
    post = _post(job)
    if not post.correspondents:
        raise MessageInvalid(f"/nyAvskrivning/korrespondansepartID: {post_key(post)} has no sender to write off")
    root = _root(AVS, "nyAvskrivning")
    avskrivning = _sub(root, "avskrivning")
    when = _oslo_date(post.written_off_at) or job.finalized_on or today()
    _sub(avskrivning, "avskrivningsdato", when.isoformat())
    _person(avskrivning, "avskrevetAv", post.written_off_by)
    _code(avskrivning, "avskrivningsmaate", post.write_off_method)
    if post.write_off_reply is not None:
        _key(_sub(avskrivning, "referanseAvskrivesAvJournalpost"), "referanseEksternNoekkel",
             post_key(post.write_off_reply), conf, ns=MDK)
    _key(_sub(root, "referanseTilJournalpost"), "referanseEksternNoekkel", post_key(post), conf, ns=MDK)
    _sub(root, "korrespondansepartID", party_id(post, 1, conf))
    return root, []


def _expedited(job: ArchiveJob, conf: dict) -> tuple[etree._Element, list[OutgoingFile]]:
    """The letter left us: journalstatus E and sendtDato (journalpostOppdatering)."""
    post = _post(job)
    root = _root(AMO, "arkivmeldingOppdatering")
    update = _sub(root, "registreringOppdateringer", xsi_type="journalpostOppdatering")
    _key(_sub(update, "referanseTilRegistrering"), "referanseEksternNoekkel", post_key(post), conf, ns=MDK)
    _code(update, "journalstatus", "E")
    sent = post.expedited_on or post.sent_on or job.finalized_on
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
