"""The zero-setup inbound source: SvarInn V2 Forsendelse JSON and plain files in folders.

Layout under root: inn/<any-name>/forsendelse.json (one Forsendelse object, the API's JSON shape;
nedlastingslenke may be absent) with the files named in filer[].filnavn beside it, unencrypted.
A writer puts the files first and forsendelse.json last, by rename, so a folder without it is still
being written. Acknowledged items move to mottatt/, permanently failed ones to feilet/ with feil.json.
What is never taken in as it lies (a folder still without forsendelse.json once nothing in it has changed
for stray_seconds, a file put straight in inn/, a folder that cannot be read) is listed in `unread` after
each fetch, for the inbox to show; it is left where it is.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from ..logs import os_reason
from .metadata import declared_size, failure, message_id, metadata_problem, parse_message, scrub
from .types import (
    BAD_METADATA,
    DEFAULT_MAX_BYTES,
    DOWNLOAD_FAILED,
    SIZE_MISMATCH,
    InboundFailure,
    InboundMessage,
    InboundUnavailable,
)

log = logging.getLogger(__name__)

METADATA_NAME = "forsendelse.json"
FAILURE_NAME = "feil.json"
# What Windows puts in a folder browsed over a share (and makes again when removed): not an item, no warning.
QUIET_NAMES = ("desktop.ini", "thumbs.db")


class FolderSource:
    """Reads root/inn/; acknowledge and fail move an item's folder, so each is handled once."""

    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES, stray_seconds: float = 300):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.stray_seconds = stray_seconds
        self._folders: dict[str, list[Path]] = {}  # id -> folders handed out by the last fetch
        # (name in inn/, reason) of what the last complete fetch could not take in: "no_metadata",
        # "not_a_folder" or "unreadable". Names that are not UTF-8 keep their bytes as \xNN.
        self.unread: list[tuple[str, str]] = []

    def fetch(self) -> Iterator[InboundMessage | InboundFailure]:
        """Every ready folder once, oldest first. A second folder with a known id is yielded too:
        the caller sees the repeated id and acknowledges it, which moves it out of inn/."""
        self._folders = {}
        unread: list[tuple[str, str]] = []
        for folder in self._ready_folders(unread):
            if not os.path.lexists(folder / METADATA_NAME):
                continue  # handled meanwhile (another process moved it)
            result = self._read(folder)
            if isinstance(result, InboundFailure) and result.reason == DOWNLOAD_FAILED and not result.permanent:
                unread.append((_shown(folder.name), "unreadable"))  # a file in it: tried at every fetch
            if result.id:
                self._folders.setdefault(result.id, []).append(folder)
            elif isinstance(result, InboundFailure) and result.permanent:  # nothing could ever address it by id
                # (a message always has one): set it aside now
                self._set_aside(folder, result.detail)
            yield result
        self.unread = unread

    def acknowledge(self, message_id: str) -> None:
        """Move the item's folder(s) to mottatt/; an id already moved is fine."""
        for folder in self._take(message_id):
            _move(folder, self.root / "mottatt")

    def fail(self, message_id: str, detail: str, permanent: bool) -> None:
        """Permanent: move to feilet/ with feil.json. Transient: feil.json in place, retried next fetch
        (as SvarInn keeps an item after FEILET with permanent false)."""
        for folder in self._take(message_id):
            if permanent:
                folder = _move(folder, self.root / "feilet")
            _write_failure(folder, message_id, detail, permanent)

    def _ready_folders(self, unread: list[tuple[str, str]] | None = None) -> list[Path]:
        """The folders with forsendelse.json, oldest first; what never will be read as it lies goes to unread."""
        inbox = self.root / "inn"
        try:
            entries = [p for p in inbox.iterdir() if not p.name.startswith(".") and p.name.lower() not in QUIET_NAMES]
        except FileNotFoundError:
            return []  # nothing has been delivered yet
        except OSError as exc:
            raise InboundUnavailable(f"cannot read the inbound folder: {os_reason(exc)}") from None
        ready = []
        for entry in entries:
            if not entry.is_dir():
                if unread is not None and self._stale(entry):
                    unread.append((_shown(entry.name), "not_a_folder"))
                continue
            try:
                ready.append((os.stat(entry / METADATA_NAME).st_mtime, entry.name, entry))
            except FileNotFoundError:
                if unread is not None and self._stale(entry):  # still being written, or never finished
                    unread.append((_shown(entry.name), "no_metadata"))
            except OSError:
                ready.append((0.0, entry.name, entry))  # unreadable: _read reports it
        return [folder for _, _, folder in sorted(ready)]

    def _stale(self, path: Path) -> bool:
        """Nothing in it (a folder's own entries) has changed for stray_seconds; True if it cannot be read."""
        try:
            newest = path.lstat().st_mtime
            if path.is_dir():
                for inside in path.iterdir():
                    newest = max(newest, inside.lstat().st_mtime)
        except FileNotFoundError:
            return False  # moved meanwhile
        except OSError:
            return True
        return time.time() - newest >= self.stray_seconds

    def _read(self, folder: Path) -> InboundMessage | InboundFailure:
        try:
            meta = json.loads((folder / METADATA_NAME).read_bytes())
        except OSError as exc:
            return failure(None, DOWNLOAD_FAILED, f"cannot read {METADATA_NAME}: {os_reason(exc)}", permanent=False)
        except ValueError as exc:
            return failure(None, BAD_METADATA, f"{METADATA_NAME} is not valid JSON ({exc})")
        if isinstance(meta, list) and len(meta) == 1:
            meta = meta[0]  # one item copied straight from the listing
        problem = metadata_problem(meta)
        if problem:
            return failure(meta, BAD_METADATA, problem)
        if declared_size(meta) > self.max_bytes:
            return failure(meta, BAD_METADATA,
                           f"the files total {declared_size(meta)} bytes, over the limit of {self.max_bytes}")
        files: dict[str, bytes] = {}
        inside = folder.resolve()
        for number, entry in enumerate(meta["filer"], 1):
            path = folder / entry["filnavn"]
            try:
                if not path.resolve().is_relative_to(inside):
                    return failure(meta, BAD_METADATA, f"file {number} points outside its folder")
                if not path.is_file():
                    continue  # parse_message reports it as missing
                size = path.stat().st_size
                if size != entry["storrelse"]:  # checked before reading, so a huge file is never read
                    return failure(meta, SIZE_MISMATCH,
                                   f"file {number} ({entry['filnavn']!r}) has {size} bytes, "
                                   f"filer says {entry['storrelse']}")
                files[entry["filnavn"]] = path.read_bytes()
            except OSError as exc:
                return failure(meta, DOWNLOAD_FAILED, f"cannot read file {number}: {os_reason(exc)}",
                               permanent=False)
        return parse_message(meta, files)

    def _take(self, message_id: str) -> list[Path]:
        """The folders of this id handed out by the last fetch, or found by a scan after a restart."""
        folders = self._folders.pop(message_id, None)
        if folders is None:
            folders = [f for f in self._ready_folders() if _folder_id(f) == message_id]
        return [f for f in folders if f.is_dir()]

    def _set_aside(self, folder: Path, detail: str) -> None:
        try:
            _write_failure(_move(folder, self.root / "feilet"), "", detail, True)
        except OSError as exc:
            log.warning("inbound folder %s could not be moved to feilet/: %s", folder.name, os_reason(exc))


def write_example(root: Path, pdf: bytes, *, title: str, sender: str, org_number: str | None) -> str:
    """Drop one well-formed item into root/inn/ as a writer should: files first, forsendelse.json last."""
    message_id = str(uuid.uuid4())
    folder = Path(root) / "inn" / message_id
    folder.mkdir(parents=True)
    filename = "dokument.pdf"
    _write_durably(folder / filename, pdf)
    avsender: dict = {"postadresse": {"navn": sender}}
    if org_number:
        avsender["organisasjonsnummer"] = org_number
    meta = {
        "id": message_id,
        "avsender": avsender,
        "mottaker": {"postadresse": {"navn": "PPT"}},
        "tittel": title,
        "dato": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sikkerhetsniva": "BETYDELIG",
        "taushetsbelagtPost": True,
        "filer": [{"filnavn": filename, "mimeType": "application/pdf", "hash": hashlib.sha256(pdf).hexdigest(),
                   "storrelse": len(pdf)}],
    }
    temporary = folder / f".{METADATA_NAME}.tmp"
    _write_durably(temporary, json.dumps(meta, ensure_ascii=False, indent=2).encode())
    os.replace(temporary, folder / METADATA_NAME)
    return message_id


def _folder_id(folder: Path) -> str:
    try:
        return message_id(json.loads((folder / METADATA_NAME).read_bytes()))
    except (OSError, ValueError):
        return ""


def _move(folder: Path, target: Path) -> Path:
    """os.replace into target/, under a fresh name if that name is taken (a duplicate moved earlier)."""
    target.mkdir(parents=True, exist_ok=True)
    destination, n = target / folder.name, 2
    while destination.exists():
        destination, n = target / f"{folder.name}-{n}", n + 1
    os.replace(folder, destination)
    return destination


def _write_failure(folder: Path, message_id: str, detail: str, permanent: bool) -> None:
    record = {"id": message_id, "feilmelding": scrub(detail), "permanent": permanent,
              "tidspunkt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    temporary = folder / f".{FAILURE_NAME}.tmp"
    _write_durably(temporary, json.dumps(record, ensure_ascii=False, indent=2).encode())
    os.replace(temporary, folder / FAILURE_NAME)


def _shown(name: str) -> str:
    """A name in inn/ as text; one that is not UTF-8 keeps its bytes as \\xNN."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
