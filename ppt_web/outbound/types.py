"""What the dispatch side hands an outbound adapter, what it gets back, and the checks SvarUt would make."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from stdnum.no import fodselsnummer, orgnr

# SendResult.outcome values.
SENT = "sent"  # SvarUt answered {id}
FAILED = "failed"  # refused (4xx or our own checks): never retried automatically
UNKNOWN = "unknown"  # no clear answer (timeout, 5xx, connection reset): look up by eksternRef before any retry

PERSON = "person"  # a guardian: digital_id is a fødselsnummer or d-nummer
ORGANISATION = "organisation"  # a school or kindergarten: digital_id is an organisation number
KINDS = (PERSON, ORGANISATION)

MAX_TITLE = 1000
MAX_NAME = 100
MAX_ADDRESS_LINE = 70
MAX_POSTAL_CODE = 20
MAX_FILENAME = 226
MAX_REFERENCE = 100  # eksternReferanse and korrelasjonsid
MAX_MIME_TYPE = 127
FORBIDDEN_FILENAME_CHARS = '*:"\\/<>|?'
PDF = "application/pdf"

# SvarUt v3 status -> local dispatch status (docs/integrations.md, "SvarUt statuses"). Older v3/v2 lists
# have VARSLET where the newest has SENDT_ALTINN/LEVERT_ALTINN, so both are here. SLETTET (files purged)
# and unknown values: no change. MANUELT_HANDTERT is an end state of its own: someone at SvarUt took the
# letter over by hand, so it may well have reached the recipient; sending it again could deliver it twice.
STATUS_MAP = {
    "MOTTATT": "sent", "AKSEPTERT": "sent", "KLAR_FOR_MOTTAK": "sent", "SENDT_DIGITALT": "sent",
    "SENDT_SDP": "sent", "SENDT_ALTINN": "sent", "VARSLET": "sent", "SENDT_PRINT": "sent",
    "SENDT_NHN_MOTTAKER": "sent",
    "LEST": "confirmed", "LEVERT_SDP": "confirmed", "LEVERT_ALTINN": "confirmed", "PRINTET": "confirmed",
    "LEVERT_NHN_MOTTAKER": "confirmed",
    "AVVIST": "failed", "FEILET_UNDER_MOTTAK": "failed", "IKKE_LEVERT": "failed", "MANUELT_HANDTERT": "manual",
    "SLETTET": None,
}

_NATIONAL_ID = re.compile(r"(?<!\d)\d{6}[\s-]?\d{5}(?!\d)")
_POSTAL_CODE_NO = re.compile(r"\d{4}")
_COUNTRY = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class Recipient:
    kind: str  # PERSON (guardian: digital_id = fødselsnummer/d-nummer) | ORGANISATION (school: digital_id = orgnr)
    name: str
    digital_id: str
    address_line1: str
    postal_code: str
    city: str
    address_line2: str = ""
    country: str = "NO"  # ISO 3166 alpha-2


@dataclass(frozen=True)
class OutboundDocument:
    filename: str
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class Shipment:
    external_ref: str  # our UUID, sent as eksternReferanse; the duplicate key
    correlation_id: str  # e.g. the case number, sent as korrelasjonsid
    title: str
    recipient: Recipient
    documents: tuple[OutboundDocument, ...]
    case_year: int | None = None  # Noark saksaar for organisation shipments, if known
    case_sequence: int | None = None  # Noark sakssekvensnummer


@dataclass(frozen=True)
class SendResult:
    outcome: str  # SENT | FAILED | UNKNOWN
    forsendelse_id: str | None
    detail: str  # for the UI and logs: SvarUt's message and errorId, or the exception; never a national id


class OutboundUnavailable(Exception):
    """A status or lookup call could not be done now (network, 5xx, or 401/403: the message says which)."""


class OutboundAdapter(Protocol):
    def send(self, shipment: Shipment) -> SendResult:
        """Hand one shipment over; never raises for transport faults (those are UNKNOWN)."""

    def lookup(self, external_ref: str) -> str | None:
        """The forsendelse id held for our eksternReferanse, or None; raises OutboundUnavailable."""

    def statuses(self, forsendelse_ids: list[str]) -> dict[str, str]:
        """Raw SvarUt status per id; ids the other side does not know are left out."""


def map_status(raw: str) -> str | None:
    """"sent" | "confirmed" | "failed" | "manual" | None (no change: SLETTET, unknown values); the table of
    docs/integrations.md, "SvarUt statuses"."""
    if not isinstance(raw, str):
        return None
    return STATUS_MAP.get(raw.strip())


def is_pdf(mime_type: str) -> bool:
    return mime_type.split(";")[0].strip().lower() == PDF


def scrub(text: str) -> str:
    """Mask anything shaped like a national id (11 digits, perhaps split 6+5), for details and logs."""
    return _NATIONAL_ID.sub("***********", text)


def compact_id(recipient: Recipient) -> str:
    """The digital id as SvarUt wants it: digits only, without spaces or separators."""
    digital_id = recipient.digital_id if isinstance(recipient.digital_id, str) else ""
    if recipient.kind == ORGANISATION:
        return orgnr.compact(digital_id)
    return fodselsnummer.compact(digital_id)


def problems(shipment: Shipment) -> list[str]:
    """What SvarUt would refuse in this shipment, in English; empty if it may be sent.

    Messages never include the recipient's national id (nor anything shaped like one). Beyond the
    spec's own limits, two checks protect the letter itself: a document must not be empty, and at
    least one must be a PDF, since only PDFs are printed and a letter that falls back to post would
    otherwise arrive as an empty envelope.
    """
    found: list[str] = []
    found += _text_problems("the title", shipment.title, MAX_TITLE)
    if not isinstance(shipment.external_ref, str) or not shipment.external_ref.strip():
        found.append("the external reference (eksternReferanse) is empty")
    elif len(shipment.external_ref) > MAX_REFERENCE:
        found.append(f"the external reference is longer than {MAX_REFERENCE} characters")
    if shipment.correlation_id and len(shipment.correlation_id) > MAX_REFERENCE:
        found.append(f"the correlation id (korrelasjonsid) is longer than {MAX_REFERENCE} characters")
    found += _recipient_problems(shipment.recipient)
    if shipment.recipient.kind == ORGANISATION:
        if shipment.case_year is not None and not (isinstance(shipment.case_year, int)
                                                   and 1000 <= shipment.case_year <= 9999):
            found.append("the case year must be a four-digit year")
        if shipment.case_sequence is not None and not (isinstance(shipment.case_sequence, int)
                                                       and shipment.case_sequence >= 1):
            found.append("the case sequence number must be 1 or more")
    found += _document_problems(shipment.documents)
    return [scrub(message) for message in found]


def _text_problems(what: str, value: str, limit: int, required: bool = True) -> list[str]:
    if not isinstance(value, str) or not value.strip():
        return [f"{what} is empty"] if required else []
    if len(value) > limit:
        return [f"{what} is longer than {limit} characters ({len(value)})"]
    return []


def _recipient_problems(recipient: Recipient) -> list[str]:
    found: list[str] = []
    if recipient.kind not in KINDS:
        return [f"the recipient must be a person or an organisation, not {str(recipient.kind)[:20]!r}"]
    found += _text_problems("the recipient's name", recipient.name, MAX_NAME)
    digital_id = recipient.digital_id if isinstance(recipient.digital_id, str) else ""
    if recipient.kind == PERSON and not fodselsnummer.is_valid(digital_id):
        found.append("the recipient's national identity number (fødselsnummer or d-nummer) is not valid")
    if recipient.kind == ORGANISATION and not orgnr.is_valid(digital_id):
        found.append("the recipient's organisation number is not valid")
    found += _text_problems("the first address line", recipient.address_line1, MAX_ADDRESS_LINE)
    found += _text_problems("the second address line", recipient.address_line2, MAX_ADDRESS_LINE, required=False)
    found += _text_problems("the postal town", recipient.city, MAX_ADDRESS_LINE)
    country = recipient.country if isinstance(recipient.country, str) else ""
    if not _COUNTRY.fullmatch(country):
        found.append("the country must be a two-letter ISO 3166 code in capitals, such as NO")
    postal_code = recipient.postal_code if isinstance(recipient.postal_code, str) else ""
    if country == "NO" and not _POSTAL_CODE_NO.fullmatch(postal_code):
        found.append("the postal code of a Norwegian address must be four digits")
    elif len(postal_code) > MAX_POSTAL_CODE:
        found.append(f"the postal code is longer than {MAX_POSTAL_CODE} characters")
    return found


def _document_problems(documents: tuple[OutboundDocument, ...]) -> list[str]:
    if not documents:
        return ["there are no documents"]
    found: list[str] = []
    seen: set[str] = set()
    for number, document in enumerate(documents, 1):
        name = document.filename if isinstance(document.filename, str) else ""
        label = f"document {number}"
        if not name:
            found.append(f"{label} has no file name")
        elif len(name) > MAX_FILENAME:
            found.append(f"{label}: the file name is longer than {MAX_FILENAME} characters")
        if any(char in FORBIDDEN_FILENAME_CHARS for char in name):
            found.append(f"{label}: the file name {name!r} contains a character SvarUt does not allow "
                         f"(one of {' '.join(FORBIDDEN_FILENAME_CHARS)})")
        if any(ord(char) < 32 or ord(char) == 127 for char in name):
            found.append(f"{label}: the file name contains a control character")
        if name and name in seen:
            found.append(f"{label}: the file name {name!r} is used for more than one document")
        seen.add(name)
        if not isinstance(document.mime_type, str) or not document.mime_type.strip():
            found.append(f"{label} has no MIME type")
        elif len(document.mime_type) > MAX_MIME_TYPE:
            found.append(f"{label}: the MIME type is longer than {MAX_MIME_TYPE} characters")
        elif any(ord(char) < 32 or ord(char) == 127 for char in document.mime_type):
            found.append(f"{label}: the MIME type contains a control character")
        if not document.data:
            found.append(f"{label} is empty (0 bytes)")
    if not any(isinstance(d.mime_type, str) and is_pdf(d.mime_type) for d in documents):
        found.append("none of the documents is a PDF, so a letter sent by post would be empty")
    return found
