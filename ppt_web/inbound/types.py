"""What an inbound source hands the inbox: checked messages, or failures with a stable reason code."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

# InboundFailure.reason codes.
BAD_METADATA = "bad_metadata"
DECRYPT_FAILED = "decrypt_failed"  # the envelope is damaged or not one we can read: FEILET, sent another way
KEY_MISMATCH = "key_mismatch"  # a whole envelope our private key does not open: ours to fix, left waiting
BAD_ZIP = "bad_zip"
MISSING_FILE = "missing_file"
HASH_MISMATCH = "hash_mismatch"
SIZE_MISMATCH = "size_mismatch"
DOWNLOAD_FAILED = "download_failed"

DEFAULT_MAX_BYTES = 200 * 2**20  # total uncompressed size of one forsendelse


@dataclass(frozen=True)
class InboundFile:
    filename: str  # as in filer[].filnavn
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class InboundMessage:
    id: str  # SvarInn forsendelse id (uuid), the duplicate key
    title: str
    sender_name: str
    sender_org_number: str | None
    sender_address: str  # one line: "adresselinje1, postnummer poststed"
    sent_at: datetime | None  # 'dato', aware UTC
    document_date: date | None  # metadataFraAvleverendeSystem.dokumentetsDato if present
    sender_case_ref: str  # e.g. "2005/648677" from mappeId saksaar/sakssekvensnummer, "" if none
    sender_post_ref: str  # e.g. "2023/23456-17" from journalpostId, "" if none
    sender_handler: str  # metadataFraAvleverendeSystem.saksbehandler or ""
    confidential: bool  # taushetsbelagtPost
    raw: dict  # the forsendelse JSON as received
    files: tuple[InboundFile, ...]


@dataclass(frozen=True)
class InboundFailure:
    id: str  # forsendelse id ("" if the metadata had none, which should not happen)
    reason: str  # one of the codes above
    detail: str  # English, for logs and the FEILET text; never a national id
    permanent: bool  # False only for transient faults (network, 5xx, timeouts): retry next poll
    raw_metadata: dict | None
    payload: bytes | None  # the bytes downloaded (encrypted envelope or zip) if any, for quarantine


class InboundUnavailable(Exception):
    """Listing failed (network, 5xx, or 401 wrong credentials: the message says which)."""


class InboundSource(Protocol):
    def fetch(self) -> Iterator[InboundMessage | InboundFailure]:
        """One pass over what is waiting; each id at most once per pass."""

    def acknowledge(self, message_id: str) -> None:
        """Stored durably: never deliver it again (MOTTATT). Repeating it is fine."""

    def fail(self, message_id: str, detail: str, permanent: bool) -> None:
        """Technical rejection (FEILET): permanent goes back to the sender, transient is retried."""
