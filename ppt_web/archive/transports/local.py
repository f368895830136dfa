"""The built-in archive (the zero-setup default): a real, small archive in the instance folder.

It validates each message against the XSD, stores it and its files immutably (files by SHA-256),
assigns archive numbers and answers as the http contract says. The same klientmelding id twice
stores once and answers again with the first reply.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from ...files.storage import fsync_path
from .. import replies
from ..message import Message, MessageInvalid, validate
from .base import INVALID, NOT_FOUND, OK, Reply
from .files import read_checked

KVITTERING_TYPES = {"no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett"}


class LocalArchive:
    asynchronous = False

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _dir(self, message_id: str) -> Path:
        if not _is_uuid(message_id):
            raise ValueError("klientmelding id must be a UUID")
        return self.root / "meldingar" / message_id

    @contextmanager
    def _lock(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def send(self, message: Message, message_id: str) -> Reply:
        target = self._dir(message_id)
        with self._lock():
            if (target / "svar.json").exists():  # stored already: answer again, store nothing
                self._index_message(message, message_id)  # (again: a crash may have come between)
                return self._reply(target)
            try:
                validate(message.meldingstype, message.payload)
            except MessageInvalid as exc:
                return Reply(INVALID, f"arkivet avviste meldinga: {exc}")
            unknown = [key for key in referenced_keys(message.payload) if not self._defined(key)]
            if unknown:  # e.g. a journal post whose saksmappe the archive does not have (yet)
                return Reply(NOT_FOUND, "arkivet fann ikkje det meldinga viser til: " + ", ".join(unknown))
            work = Path(tempfile.mkdtemp(dir=self.root, prefix=".mottak-"))
            try:
                for f in message.files:
                    data = read_checked(f)
                    stored = self.root / "filer" / f.sha256[:2] / f.sha256
                    if not stored.exists():
                        stored.parent.mkdir(parents=True, exist_ok=True)
                        _write(stored, data)
                ids = self._next_ids(message)
                (work / message.payload_name).write_bytes(message.payload)
                meta = {"meldingstype": message.meldingstype, "klientmelding_id": message_id,
                        "mottatt": datetime.now(UTC).isoformat(), "ids": ids,
                        "noeklar": external_keys(message.payload),
                        "filer": [{"namn": f.name, "filnamn": f.filename, "sha256": f.sha256, "storleik": f.size}
                                  for f in message.files]}
                (work / "melding.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))
                receipt = replies.kvittering(message.meldingstype, message, ids) \
                    if message.meldingstype in KVITTERING_TYPES else b""
                (work / "kvittering.xml").write_bytes(receipt)
                # What the sender learns is what the receipt says (as over http), plus our number.
                answer = {**(replies.parse_kvittering(receipt) if receipt else {}), "arkivnummer": ids["arkivnummer"]}
                meta["ids"] = answer
                (work / "melding.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))
                (work / "svar.json").write_text(json.dumps({"kind": OK, "ids": answer}))
                for path in work.iterdir():
                    fsync_path(path)
                self._index_message(message, message_id)  # before the rename: idempotent, and never missing
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(work, target)  # the message appears whole, or not at all
                fsync_path(target.parent)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            return self._reply(target)

    def poll(self, message_id: str) -> Reply | None:
        return None

    def _index_message(self, message: Message, message_id: str) -> None:
        """Find-by-key index (a folder per key, an empty file per message) and the "this archive
        holds it" markers: writing them twice does no harm, and costs the same however many."""
        for key in external_keys(message.payload):
            folder = self._index(key)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / message_id).touch()
        for key in defined_keys(message.payload):
            marker = self._marker(key)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()

    def _index(self, key: str) -> Path:
        return self.root / "noeklar" / hashlib.sha256(key.encode()).hexdigest()

    def _marker(self, key: str) -> Path:
        return self.root / "definert" / hashlib.sha256(key.encode()).hexdigest()

    def _defined(self, key: str) -> bool:
        return self._marker(key).exists()

    def _reply(self, target: Path) -> Reply:
        answer = json.loads((target / "svar.json").read_text())
        return Reply(answer["kind"], ids=answer.get("ids") or {})

    def _next_ids(self, message: Message) -> dict:
        """Archive numbers for what the message holds: a saksmappe and/or a journalpost."""
        counter = self.root / "teljar.json"
        numbers = json.loads(counter.read_text()) if counter.exists() else {"arkivnummer": 0}
        numbers["arkivnummer"] += 1
        _write(counter, json.dumps(numbers).encode())
        year = datetime.now(UTC).year
        n = numbers["arkivnummer"]
        return {
            "arkivnummer": f"{year}/{n:06d}",
            "mappe": {"systemID": str(uuid.uuid4())},
            "registrering": {"systemID": str(uuid.uuid4()), "journalaar": year, "journalsekvensnummer": n,
                             "journalpostnummer": n,
                             "dokumentbeskrivelser": [{"systemID": str(uuid.uuid4()), "dokumentnummer": i + 1,
                                                       "dokumentobjekter": [str(uuid.uuid4())]}
                                                      for i, _ in enumerate(message.files)]},
        }

    def messages_for(self, key: str) -> list[dict]:
        """What the archive holds for one external key (e.g. "case:12"), oldest first, read-only."""
        folder = self._index(key)
        if not folder.is_dir():
            return []
        out = []
        for entry in folder.iterdir():
            meta = self._dir(entry.name) / "melding.json"
            if meta.exists():
                out.append(json.loads(meta.read_text()))
        return sorted(out, key=lambda m: m["mottatt"])


def external_keys(payload: bytes) -> list[str]:
    """The referanseEksternNoekkel keys a message carries (how staff find the archive copy)."""
    try:
        root = etree.fromstring(payload)
    except etree.XMLSyntaxError:
        return []
    keys = root.xpath("//*[local-name()='referanseEksternNoekkel']/*[local-name()='noekkel']/text()")
    return sorted({k.strip() for k in keys if k.strip()})


def defined_keys(payload: bytes) -> list[str]:
    """Keys of the saksmappe or journalpost a message creates."""
    root = etree.fromstring(payload)
    return root.xpath("//*[local-name()='mappe' or local-name()='registrering']/*[local-name()="
                      "'referanseEksternNoekkel']/*[local-name()='noekkel']/text()")


def referenced_keys(payload: bytes) -> list[str]:
    """Keys of things a message refers to (parent folder, the post to update or write off)."""
    root = etree.fromstring(payload)
    found = root.xpath("//*[starts-with(local-name(), 'referanse') and local-name() != 'referanseEksternNoekkel']"
                       "//*[local-name()='noekkel']/text()")
    return sorted({k.strip() for k in found if k.strip()})


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)

