"""The zero-setup outbound adapter (PPT_OUTBOUND_BACKEND=folder): each letter becomes a folder to hand over.

Layout under root:
  ut/<external_ref>/forsendelse.json  the v3 PersonForsendelse/OrganisasjonForsendelse JSON the SvarUt adapter
                                      would send, plus "type": "person" | "organisasjon" (the endpoint)
  ut/<external_ref>/<filnavn>         each document, unencrypted, named as in dokumenter[]
  status/<external_ref>.json          optional, written by whoever takes the letters: {"status": "<SvarUt status>"}

A folder is written under a temporary dot-name in ut/ (files fsynced) and renamed into place, so a folder
ut/<ref>/ without a leading dot is always complete; readers skip dot-names (a crash mid-write leaves a
.tmp- folder, which may be deleted). The forsendelse id is the
external_ref. Sending a ref whose folder exists already is the same shipment again: nothing is written and
the answer is "sent" with the same id (the duplicate check SvarUt does through eksternRef lookup).

"kryptert" and "sikkerhetsniva" in forsendelse.json say how the letter must travel on, not how it lies
here: the folder holds plain files, on the same disk as the app's own documents. A relay that forwards to
SvarUt must encrypt person letters to SvarUt's certificate, as the SvarUt adapter does.

Status: the folder is the recipient system's hand-over point, so a completely written folder counts as
delivered and reads as "LEST" (-> confirmed) unless status/<ref>.json says otherwise, e.g. "AVVIST" or
"IKKE_LEVERT" (-> failed) or "SENDT_PRINT" (-> sent, still on its way). The reader must leave ut/<ref>/ in
place (copy, do not move): the folder is the proof of hand-over that lookup() relies on.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path

from ..logs import os_reason
from .svarut import forsendelse_json
from .types import FAILED, PERSON, SENT, UNKNOWN, OutboundUnavailable, SendResult, Shipment, problems, scrub

log = logging.getLogger(__name__)

METADATA_NAME = "forsendelse.json"
DELIVERED = "LEST"
SAFE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_NAME_BYTES = 255  # one path component on common file systems
TYPES = {PERSON: "person"}  # everything else: "organisasjon"


class FolderAdapter:
    """Writes root/ut/<ref>/; reads root/status/<ref>.json."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.outbox = self.root / "ut"
        self.status_dir = self.root / "status"

    def send(self, shipment: Shipment) -> SendResult:
        """Write the folder atomically; an existing folder for this ref is the same shipment, already sent."""
        refused = problems(shipment) + _folder_problems(shipment)
        if refused:
            return SendResult(FAILED, None, scrub("not written, it would be refused: " + "; ".join(refused)))
        ref = shipment.external_ref
        final = self.outbox / ref
        if final.is_dir():
            return SendResult(SENT, ref, "already in the outbound folder")
        temporary = self.outbox / f".tmp-{ref}-{uuid.uuid4().hex[:8]}"
        try:
            temporary.mkdir(parents=True)
            for document in shipment.documents:
                _write_durably(temporary / document.filename, document.data)
            meta = {"type": TYPES.get(shipment.recipient.kind, "organisasjon"), **forsendelse_json(shipment)}
            _write_durably(temporary / METADATA_NAME, json.dumps(meta, ensure_ascii=False, indent=2).encode())
            _fsync_dir(temporary)
            try:
                os.rename(temporary, final)
            except OSError:
                if final.is_dir():  # another process wrote the same ref first: same shipment
                    shutil.rmtree(temporary, ignore_errors=True)
                    return SendResult(SENT, ref, "already in the outbound folder")
                raise
            _fsync_dir(self.outbox)
        except OSError as exc:
            shutil.rmtree(temporary, ignore_errors=True)
            return SendResult(UNKNOWN, None, f"cannot write the outbound folder: {os_reason(exc)}")
        log.info("outbound folder: shipment %s written", ref)
        return SendResult(SENT, ref, "written to the outbound folder")

    def lookup(self, external_ref: str) -> str | None:
        """The ref itself if its folder is complete (renamed into place), else None."""
        if not isinstance(external_ref, str) or not SAFE_REF.fullmatch(external_ref):
            return None
        try:
            return external_ref if (self.outbox / external_ref).is_dir() else None
        except OSError as exc:
            raise OutboundUnavailable(f"cannot read the outbound folder: {os_reason(exc)}") from None

    def statuses(self, forsendelse_ids: list[str]) -> dict[str, str]:
        """A status file's status if there is a readable one, else LEST for a written folder; unknown ids left out."""
        found: dict[str, str] = {}
        for forsendelse_id in dict.fromkeys(forsendelse_ids):
            if not isinstance(forsendelse_id, str) or not SAFE_REF.fullmatch(forsendelse_id):
                continue
            try:
                written = (self.outbox / forsendelse_id / METADATA_NAME).is_file()
                reported = self._reported(forsendelse_id)
            except OSError as exc:
                raise OutboundUnavailable(f"cannot read the outbound folder: {os_reason(exc)}") from None
            if reported is not None:
                found[forsendelse_id] = reported
            elif written:
                found[forsendelse_id] = DELIVERED
        return found

    def _reported(self, forsendelse_id: str) -> str | None:
        path = self.status_dir / f"{forsendelse_id}.json"
        try:
            payload = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError:
            log.warning("outbound status file for %s is not JSON; ignored", forsendelse_id)
            return None
        status = payload.get("status") if isinstance(payload, dict) else None
        if not isinstance(status, str) or not status.strip():
            log.warning("outbound status file for %s has no status; ignored", forsendelse_id)
            return None
        return status.strip()


def _folder_problems(shipment: Shipment) -> list[str]:
    """What SvarUt would take but a folder cannot hold: unsafe folder or file names."""
    found = []
    if isinstance(shipment.external_ref, str) and shipment.external_ref \
            and not SAFE_REF.fullmatch(shipment.external_ref):
        found.append("the external reference must be letters, digits, '.', '_' or '-' to name a folder")
    for number, document in enumerate(shipment.documents, 1):
        name = document.filename if isinstance(document.filename, str) else ""
        if name.lower() == METADATA_NAME or name in (".", ".."):
            found.append(f"document {number}: the file name {name!r} is reserved in the outbound folder")
        elif len(name.encode("utf-8")) > MAX_NAME_BYTES:
            found.append(f"document {number}: the file name is longer than {MAX_NAME_BYTES} bytes in UTF-8")
    return found


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "xb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename or a new entry durable; not every platform can open a directory."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
