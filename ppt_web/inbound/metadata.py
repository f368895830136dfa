"""Reading a SvarInn V2 Forsendelse and checking its files, shared by the SvarInn and folder sources.

Only what the inbox needs is required; unknown and malformed optional fields are ignored, since KS
says clients must tolerate new JSON fields.
"""
from __future__ import annotations

import hashlib
import logging
import re
import uuid
from datetime import UTC, date, datetime
from typing import TypeGuard

from ..clock import OSLO
from ..files import zips
from .types import (
    BAD_METADATA,
    DEFAULT_MAX_BYTES,
    HASH_MISMATCH,
    MISSING_FILE,
    SIZE_MISMATCH,
    InboundFailure,
    InboundFile,
    InboundMessage,
)

log = logging.getLogger(__name__)
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
NATIONAL_ID = re.compile(r"(?<!\d)\d{6}\s?\d{5}(?!\d)")
NORWAY = {"", "NO", "NOR", "NORGE", "NOREG", "NORWAY"}


def scrub(text: str) -> str:
    """Details go to logs and back to the sender: mask anything shaped like a national id (11 digits)."""
    return NATIONAL_ID.sub("***********", text)


def failure(meta: object, reason: str, detail: str, *, permanent: bool = True,
            payload: bytes | None = None) -> InboundFailure:
    raw = meta if isinstance(meta, dict) else None
    return InboundFailure(id=message_id(meta), reason=reason, detail=scrub(detail), permanent=permanent,
                          raw_metadata=raw, payload=payload)


def message_id(meta: object) -> str:
    """The forsendelse id if it is a UUID, else "": a malformed one names nothing SvarInn holds, and
    free text in it could be anything (a national id), so it is not passed on to logs."""
    value = meta.get("id") if isinstance(meta, dict) else None
    return value if _is_uuid(value) else ""


def metadata_problem(meta: object) -> str | None:
    """Why this Forsendelse cannot be taken in, or None; checks only the fields the inbox relies on."""
    if not isinstance(meta, dict):
        return "the forsendelse is not a JSON object"
    if not _is_uuid(meta.get("id")):
        return "id is missing or not a UUID"
    if not _text(meta.get("tittel")):
        return "tittel is missing or empty"
    if not _text(_get(meta, "avsender", "postadresse", "navn")):
        return "avsender.postadresse.navn is missing or empty"
    filer = meta.get("filer")
    if not isinstance(filer, list) or not filer:
        return "filer is missing or empty"
    seen: set[str] = set()
    for number, entry in enumerate(filer, 1):
        problem = _file_entry_problem(entry)
        if problem:
            return f"file {number} in filer: {problem}"
        if entry["filnavn"] in seen:
            return f"file {number} in filer: filnavn {entry['filnavn']!r} appears twice"
        seen.add(entry["filnavn"])
    return None


def declared_size(meta: dict) -> int:
    """The sum of filer[].storrelse of metadata that passed metadata_problem."""
    return sum(entry["storrelse"] for entry in meta["filer"])


def parse_message(meta: dict, files: dict[str, bytes]) -> InboundMessage | InboundFailure:
    """The message, if the metadata is usable and every file in filer is present with its hash and size.
    Never raises for what a message holds: metadata it cannot read is this message's refusal (BAD_METADATA),
    not an error that would stop every message behind it in the delivery."""
    try:
        return _parse_message(meta, files)
    except (ValueError, TypeError, OverflowError, KeyError, AttributeError) as exc:
        log.warning("inbound message %s: metadata could not be read (%s)", message_id(meta) or "(no id)",
                    type(exc).__name__)
        return failure(meta, BAD_METADATA, f"the metadata could not be read ({type(exc).__name__})")


def _parse_message(meta: dict, files: dict[str, bytes]) -> InboundMessage | InboundFailure:
    problem = metadata_problem(meta)
    if problem:
        return failure(meta, BAD_METADATA, problem)
    checked = []
    for number, entry in enumerate(meta["filer"], 1):
        name = entry["filnavn"]
        data = files.get(name)
        label = f"file {number} ({name!r})"
        if data is None:
            return failure(meta, MISSING_FILE, f"{label} is named in filer but not in the delivery")
        if len(data) != entry["storrelse"]:
            return failure(meta, SIZE_MISMATCH, f"{label} has {len(data)} bytes, filer says {entry['storrelse']}")
        if hashlib.sha256(data).hexdigest() != entry["hash"].lower():
            return failure(meta, HASH_MISMATCH, f"{label}: its SHA-256 differs from filer[].hash")
        mime_type = entry.get("mimeType")
        checked.append(InboundFile(filename=name, data=data,
                                   mime_type=mime_type if _text(mime_type) else "application/octet-stream"))
    fra = meta.get("metadataFraAvleverendeSystem")
    fra = fra if isinstance(fra, dict) else {}
    sender = meta["avsender"]
    org_number = sender.get("organisasjonsnummer")
    return InboundMessage(
        id=meta["id"],
        title=meta["tittel"].strip(),
        sender_name=sender["postadresse"]["navn"].strip(),
        sender_org_number=org_number.strip() if _text(org_number) else None,
        sender_address=one_line_address(sender["postadresse"]),
        sent_at=_timestamp(meta.get("dato")),
        document_date=_calendar_date(fra.get("dokumentetsDato")),
        sender_case_ref=case_ref(fra.get("mappeId")),
        sender_post_ref=post_ref(fra.get("journalpostId")),
        sender_handler=fra["saksbehandler"].strip() if _text(fra.get("saksbehandler")) else "",
        # Unknown counts as confidential: a PPT inbox errs on the side of protecting the child.
        confidential=meta.get("taushetsbelagtPost") is not False,
        raw=meta,
        files=tuple(checked),
    )


def one_line_address(postadresse: dict) -> str:
    """'Skoleveien 1, 0612 Oslo': the address lines, then postcode and place, then a foreign country."""
    lines = [postadresse.get(k, "").strip() for k in ("adresselinje1", "adresselinje2", "adresselinje3")
             if _text(postadresse.get(k))]
    place = " ".join(postadresse[k].strip() for k in ("postnummer", "poststed") if _text(postadresse.get(k)))
    land = postadresse.get("land")
    country = land.strip() if _text(land) else ""
    parts = lines + ([place] if place else []) + ([country] if country.upper() not in NORWAY else [])
    return ", ".join(parts)


def case_ref(mappe_id: object) -> str:
    """The sender's case number 'saksaar/sakssekvensnummer', as Noark writes it."""
    if not isinstance(mappe_id, dict):
        return ""
    year, sequence = _number(mappe_id.get("saksaar")), _number(mappe_id.get("sakssekvensnummer"))
    return f"{year}/{sequence}" if year is not None and sequence is not None else ""


def post_ref(journalpost_id: object) -> str:
    """The sender's journal post 'journalaar/journalsekvensnummer-journalpostnummer'."""
    if not isinstance(journalpost_id, dict):
        return ""
    year = _number(journalpost_id.get("journalaar"))
    sequence = _number(journalpost_id.get("journalsekvensnummer"))
    number = _number(journalpost_id.get("journalpostnummer"))
    if year is None or sequence is None:
        return ""
    return f"{year}/{sequence}" + (f"-{number}" if number is not None else "")


def safe_filename(name: object) -> bool:
    """A file name that stays inside the folder it is unpacked into: no absolute path, drive or '..'."""
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        return False
    if any(ord(c) < 32 for c in name) or name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return False
    return all(part not in ("", ".", "..") for part in re.split(r"[/\\]", name))


def unzip(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, bytes]:
    """The files of a ZIP by name, refusing one that unpacks to more than max_bytes (a zip bomb)."""
    return zips.unzip(data, max_bytes)


def _file_entry_problem(entry: object) -> str | None:
    if not isinstance(entry, dict):
        return "not a JSON object"
    if not _text(entry.get("filnavn")):
        return "filnavn is missing or empty"
    if not safe_filename(entry["filnavn"]):
        return "filnavn is not a plain file name (absolute, or climbs out with '..')"
    if not isinstance(entry.get("hash"), str) or not SHA256_HEX.fullmatch(entry["hash"]):
        return "hash is missing or not a SHA-256 hex digest"
    size = entry.get("storrelse")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return "storrelse is missing or not a whole number of bytes"
    return None


def _timestamp(value: object) -> datetime | None:
    """ISO 8601 to aware UTC; a time without offset is taken as UTC (SvarUt writes 'Z')."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # .NET's least date with an offset (0001-01-01T00:00:00+01:00): before year 1 in UTC
        return None


def _calendar_date(value: object) -> date | None:
    """The date on the document, as a Norwegian reader sees it: midnight Oslo time sent as 23:00Z is the next day."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    try:
        return parsed.astimezone(OSLO).date() if parsed.tzinfo else parsed.date()
    except OverflowError:  # a day at the calendar's edge in another offset: no day in Oslo
        return None


def _number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():  # not "²"
        return int(value.strip())
    return None


def _get(data: object, *path: str) -> object:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def _is_uuid(value: object) -> TypeGuard[str]:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()  # the canonical 8-4-4-4-12 form only
    except ValueError:
        return False
