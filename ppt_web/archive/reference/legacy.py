"""Taking in what the built-in archive held before it had a database of its own.

The built-in archive used to be a folder store in the same folder: meldingar/<klientmelding id>/ holding
the payload, melding.json (meldingstype, klientmelding_id, mottatt, ids, noeklar, filer [{namn, filnamn,
sha256, storleik}]), svar.json and kvittering.xml; files under filer/<sha[:2]>/<sha>, where the store
keeps them now too. The first time the archive opens a folder that has meldingar/ and a database that
never took it in, it replays those messages, oldest first, into its tables. Without that, everything the
case system sends about its older cases (a new post, a write-off, a closing) would be ikkefunnet.

It takes in what an archive already accepted, so it refuses nothing: a folder made closed, a post into a
closed folder, a closing with posts not written off are taken as the messages describe them (the last
two are noted). It keeps the systemIDs the old archive gave and its numbers where they are free: the old
arkivnummer (year/running number) becomes the folder's saksaar/sakssekvensnummer and the post's
journalaar/journalsekvensnummer, and the old journalpostnummer stays; the archive's own running numbers
then go on after them. Each message's old reply is kept, so the same klientmelding id sent again gets it.
What it cannot read or place (a payload that is not XML, a melding.json missing, a file not in filer/) is
noted in the table legacy_note and in legacy-import.txt beside the database; the log gets the counts.
The notes carry ids, numbers, element names and hashes, never payload text (payloads hold national ids).
The old folders are only read.

It runs in one transaction opened like every message's (BEGIN IMMEDIATE), holding the old store's lock
file as well: a second process opening the archive meanwhile waits, then finds the marker row.
"""
from __future__ import annotations

import fcntl
import json
import logging
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from ...clock import OSLO
from .. import codes, replies
from ..message import Message
from . import rules
from .rules import child, children, kode, text
from .store import Store

log = logging.getLogger(__name__)

LEGACY_DIR = "meldingar"
NOTES_FILE = "legacy-import.txt"
_OWN_FILES = {"melding.json", "svar.json", "kvittering.xml"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NUMBER = re.compile(r"(\d{4})/(\d+)")

_done: set[str] = set()  # archive folders this process has seen imported (or with nothing to import)
_done_lock = threading.Lock()


class _Skip(Exception):
    """The message cannot be taken in at all; the text says why (no payload text in it)."""


@dataclass
class Legacy:
    """One message of the old store, as read from its folder."""
    message_id: str
    meldingstype: str
    mottatt: datetime
    payload_name: str
    payload: bytes
    ids: dict  # what the old archive answered (svar.json), arkivnummer included
    reply: bytes | None  # kvittering.xml as it was
    files: dict[str, tuple[str | None, int | None]]  # referanseDokumentfil -> (sha256, size)

    @property
    def moment(self) -> datetime:
        return self.mottatt.astimezone(OSLO).replace(microsecond=0)


@dataclass
class Summary:
    found: int = 0
    imported: int = 0
    notes: list[tuple[str, str | None, str]] = field(default_factory=list)  # (klientmelding id, type, note)


def import_once(store: Store) -> Summary | None:
    """Take in meldingar/ if the folder has one and this database never did; None if there was nothing to do."""
    where = str(store.root.resolve())
    if where in _done:
        return None
    legacy = store.root / LEGACY_DIR
    if not legacy.is_dir():
        _done.add(where)
        return None
    if store.path.exists() and _marked(store):
        _done.add(where)
        return None
    with _done_lock, _old_store_lock(store.root), store.write() as conn:
        if conn.execute("SELECT 1 FROM legacy_import").fetchone():  # another process did it meanwhile
            summary = None
        else:
            summary = _Importer(conn, store).run(legacy)
            conn.execute("INSERT INTO legacy_import (id, imported_at, found, imported, notes) VALUES (1, ?, ?, ?, ?)",
                         (datetime.now(UTC).isoformat(), summary.found, summary.imported, len(summary.notes)))
            conn.executemany("INSERT INTO legacy_note (klientmelding_id, meldingstype, note) VALUES (?, ?, ?)",
                             summary.notes)
    _done.add(where)
    if summary is not None:
        _report(store, summary)
    return summary


def notes(store: Store) -> list[dict]:
    """What the import noted, in the order it noted it (empty when there was no import)."""
    if not store.path.exists():
        return []
    with store.read() as conn:
        rows = conn.execute("SELECT klientmelding_id, meldingstype, note FROM legacy_note ORDER BY id").fetchall()
    return [dict(r) for r in rows]


def _marked(store: Store) -> bool:
    with store.read() as conn:
        return conn.execute("SELECT 1 FROM legacy_import").fetchone() is not None


@contextmanager
def _old_store_lock(root: Path) -> Iterator[None]:
    """The lock the folder store's writers took: an old process still running cannot add a message mid-import."""
    with open(root / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _report(store: Store, summary: Summary) -> None:
    lines = [f"Gamle meldingar ({LEGACY_DIR}/) tekne inn i {store.path.name} {datetime.now(UTC).isoformat()}",
             f"Funne: {summary.found}. Tekne inn: {summary.imported}. Merknader: {len(summary.notes)}.", ""]
    lines += [f"{message_id} {meldingstype or '-'}: {note}" for message_id, meldingstype, note in summary.notes]
    try:
        (store.root / NOTES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        log.warning("reference archive: could not write %s: %s", store.root / NOTES_FILE, exc)
    log.info("reference archive %s: took in %d of %d messages of the old folder store (%s/)",
             store.root, summary.imported, summary.found, LEGACY_DIR)
    if summary.notes:
        log.warning("reference archive %s: %d notes from taking in the old folder store; they are listed in %s "
                    "(and the table legacy_note)", store.root, len(summary.notes), store.root / NOTES_FILE)


# --- reading the old store ---

def _read(folder: Path) -> tuple[Legacy | None, list[str]]:
    """One old message folder: the message (None if it cannot be used) and what was odd about it."""
    odd: list[str] = []
    try:
        meta = json.loads((folder / "melding.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError
    except FileNotFoundError:
        return None, ["melding.json manglar; meldinga er ikkje teken inn"]
    except (OSError, ValueError):
        return None, ["melding.json kan ikkje lesast; meldinga er ikkje teken inn"]
    meldingstype = codes.canonical(str(meta.get("meldingstype") or ""))
    if meldingstype not in (rules.OPPRETT, rules.OPPDATER, rules.AVSKRIVNING):
        return None, [f"meldingstypen «{meldingstype[:100]}» kjenner ikkje arkivet; meldinga er ikkje teken inn"]
    try:
        mottatt = datetime.fromisoformat(str(meta["mottatt"]))
        if mottatt.tzinfo is None:
            mottatt = mottatt.replace(tzinfo=UTC)
    except (KeyError, ValueError):
        mottatt = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
        odd.append("melding.json har ikkje mottatt-tidspunkt; tida mappa vart skriven er brukt")
    name = codes.meldingstype_info(meldingstype)["payloadFilnavn"]
    if not (folder / name).is_file():
        others = [p.name for p in folder.iterdir() if p.is_file() and p.name not in _OWN_FILES]
        if len(others) != 1:
            return None, [f"innhaldsfila ({name}) manglar; meldinga er ikkje teken inn"]
        name = others[0]
    try:
        svar = json.loads((folder / "svar.json").read_text(encoding="utf-8"))
        ids = svar.get("ids") if isinstance(svar, dict) else None
    except (OSError, ValueError):
        ids = None
        odd.append("svar.json manglar eller kan ikkje lesast; ids frå melding.json er brukte")
    if not isinstance(ids, dict):
        ids = _part(meta, "ids")
    reply_path = folder / "kvittering.xml"
    files: dict[str, tuple[str | None, int | None]] = {}
    for number, entry in enumerate(meta.get("filer") or [], start=1):
        if not isinstance(entry, dict) or not entry.get("namn"):
            odd.append(f"fil {number} i melding.json manglar namn")
            continue
        sha = str(entry.get("sha256") or "").lower()
        size = entry.get("storleik")
        files[str(entry["namn"])] = (sha if _SHA256.fullmatch(sha) else None, size if isinstance(size, int) else None)
    return Legacy(folder.name, meldingstype, mottatt, name, (folder / name).read_bytes(), ids,
                  reply_path.read_bytes() if reply_path.is_file() else None, files), odd


# --- taking it in ---

class _Importer:
    def __init__(self, conn: sqlite3.Connection, store: Store):
        self.conn, self.store = conn, store
        self.summary = Summary()
        self.current: tuple[str, str | None] = ("", None)

    def note(self, what: str) -> None:
        self.summary.notes.append((*self.current, what))

    def run(self, legacy: Path) -> Summary:
        found: list[Legacy] = []
        for folder in sorted(legacy.iterdir()):
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            self.summary.found += 1
            self.current = (folder.name, None)
            try:
                message, odd = _read(folder)
            except OSError as exc:
                message, odd = None, [f"mappa kan ikkje lesast ({exc.__class__.__name__}); meldinga er ikkje teken inn"]
            for what in odd:
                self.note(what)
            if message is not None:
                found.append(message)
        found.sort(key=lambda m: (m.mottatt, m.message_id))
        for message in found:
            self.current = (message.message_id, message.meldingstype)
            if self.take(message):
                self.summary.imported += 1
        return self.summary

    def take(self, m: Legacy) -> bool:
        conn = self.conn
        if conn.execute("SELECT 1 FROM message WHERE klientmelding_id = ?", (m.message_id,)).fetchone():
            self.note("arkivet har alt teke imot denne klientmelding-id-en på nytt; svaret det gav då, står")
            return False
        try:
            root = etree.fromstring(m.payload, etree.XMLParser(resolve_entities=False, no_network=True))
        except (etree.XMLSyntaxError, ValueError) as exc:
            where = f" (linje {exc.lineno})" if isinstance(exc, etree.XMLSyntaxError) and exc.lineno else ""
            self.note(f"innhaldet ({m.payload_name}) er ikkje gyldig XML{where}; meldinga er ikkje teken inn")
            return False
        conn.execute("SAVEPOINT legacy_message")
        try:
            if m.meldingstype == rules.OPPRETT:
                ids = self.opprett(m, root)
            elif m.meldingstype == rules.OPPDATER:
                ids = self.oppdater(m, root)
            else:
                ids = self.avskrivning(m, root)
            self.keep(m, root, ids)
        except (_Skip, rules.Refused, sqlite3.IntegrityError, LookupError, ValueError, TypeError) as exc:
            conn.execute("ROLLBACK TO legacy_message")
            conn.execute("RELEASE legacy_message")
            reason = str(exc) if isinstance(exc, _Skip | rules.Refused | sqlite3.IntegrityError) \
                else exc.__class__.__name__
            self.note(f"meldinga er ikkje teken inn: {reason}")
            return False
        conn.execute("RELEASE legacy_message")
        return True

    def keep(self, m: Legacy, root: etree._Element, ids: dict) -> None:
        """The message and the reply the old archive gave, for a retry of the same klientmelding id."""
        reply = m.reply or b""
        if m.meldingstype == rules.OPPRETT:
            try:
                replies.parse_kvittering(reply)
            except replies.ReplyInvalid:
                reply = replies.kvittering(m.meldingstype, Message(m.meldingstype, "", m.payload, ()), ids)
                self.note("kvittering.xml mangla eller var ugyldig; ei ny er laga av arkivet sine id-ar")
        answered = m.ids or ids
        self.conn.execute("INSERT INTO message (klientmelding_id, meldingstype, mottatt, reply_type, reply, ids, "
                          "noekler, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          (m.message_id, m.meldingstype, m.mottatt.astimezone(UTC).isoformat(),
                           f"{m.meldingstype}.kvittering", reply, json.dumps(answered, ensure_ascii=False),
                           json.dumps(rules.external_keys(root), ensure_ascii=False), m.payload))

    # --- finding, leniently ---

    def find(self, ref: etree._Element | None, table: str) -> sqlite3.Row | None:
        """What a reference names, as the archive finds it; else by the external key alone (the old store
        matched keys whatever the fagsystem); else None, noted."""
        if ref is None:
            return None
        try:
            return rules.find_folder(self.conn, ref) if table == "folder" else rules.find_post(self.conn, ref)
        except rules.Refused:
            pass
        key = rules._key(ref)
        if key and key[1]:
            rows = self.conn.execute(f"SELECT * FROM {table} WHERE noekkel = ?", (key[1],)).fetchall()
            if len(rows) == 1:
                return rows[0]
        what = "saksmappa" if table == "folder" else "journalposten"
        self.note(f"{codes.element_path(ref)}: {what} ({_describe(ref)}) finst ikkje i arkivet")
        return None

    def _free_id(self, table: str, candidate: object) -> str:
        if isinstance(candidate, str) and _is_uuid(candidate):
            if not self.conn.execute(f"SELECT 1 FROM {table} WHERE system_id = ?", (candidate,)).fetchone():
                return candidate
            self.note(f"systemID {candidate} er alt i bruk i arkivet; ein ny er gitt")
        return str(uuid.uuid4())

    def _free(self, sql: str, args: tuple) -> bool:
        return None not in args and self.conn.execute(sql, args).fetchone() is None

    def _number(self, what: str, taken: str, old: list[tuple[int | None, int | None]], year: int,
                last: str) -> tuple[int, int]:
        """The old archive's number (year, running number) if it gave one and it is free; else the next."""
        given = [number for number in old if None not in number]
        for number in given:
            if self._free(taken, number):
                return number  # type: ignore[return-value]
        fresh = (year, rules._next(self.conn, last, (year,)))
        if given:
            self.note(f"{what} sitt gamle nummer {given[0][0]}/{given[0][1]} er alt i bruk i arkivet; "
                      f"ho har fått {fresh[0]}/{fresh[1]}")
        return fresh

    # --- arkivmelding.opprett ---

    def opprett(self, m: Legacy, root: etree._Element) -> dict:
        ids: dict = {}
        mappe = child(root, "mappe")
        if mappe is not None:
            ids["mappe"] = self.folder(m, mappe, root)
        entry = child(root, "registrering")
        if entry is not None:
            made = self.post(m, entry, root)
            if made is not None:
                ids["registrering"] = made
        return ids

    def folder(self, m: Legacy, mappe: etree._Element, root: etree._Element) -> dict:
        key = rules._key(mappe)
        if key:
            existing = self.conn.execute("SELECT * FROM folder WHERE fagsystem = ? AND noekkel = ?", key).fetchone()
            if existing is not None:
                return rules.folder_ids(existing)
        old = _part(m.ids, "mappe")
        moment = m.moment
        year, seq = self._number("saksmappa", "SELECT 1 FROM folder WHERE saksaar = ? AND sakssekvensnummer = ?",
                                 [(_int(old.get("saksaar")), _int(old.get("sakssekvensnummer"))),
                                  _arkivnummer(m.ids)],
                                 moment.year, "SELECT max(sakssekvensnummer) FROM folder WHERE saksaar = ?")
        status = kode(mappe, "saksstatus") or "B"
        closed_on = text(mappe, "avsluttetDato")
        if status in rules.CLOSED_STATUSES and not closed_on:
            closed_on = moment.isoformat()
        row = {
            "system_id": self._free_id("folder", old.get("systemID")),
            "fagsystem": key[0] if key else None, "noekkel": key[1] if key else None,
            "saksaar": year, "sakssekvensnummer": seq,
            "mappetype": "saksmappe" if rules.xsi_type(mappe) == "saksmappe" else "mappe",
            "tittel": text(mappe, "tittel") or "", "offentlig_tittel": text(mappe, "offentligTittel"),
            "saksdato": text(mappe, "saksdato") or moment.date().isoformat(), "saksstatus": status,
            "avsluttet_dato": closed_on, "avsluttet_av": text(mappe, "avsluttetAv"),
            "saksansvarlig": rules.person(child(mappe, "saksansvarlig")),
            "administrativ_enhet": rules.person(child(mappe, "administrativEnhet")),
            "arkivdel": kode(mappe, "arkivdel"),
            "opprettet_dato": moment.isoformat(),
            "opprettet_av": text(mappe, "opprettetAv") or text(root, "system") or rules.ARCHIVE_USER,
            "xml": etree.tostring(mappe, encoding="UTF-8"),
        }
        created = self._insert("folder", row)
        return rules.folder_ids(created, "Opprettet")

    def post(self, m: Legacy, entry: etree._Element, root: etree._Element) -> dict | None:
        conn = self.conn
        key = rules._key(entry)
        if key:
            existing = conn.execute("SELECT * FROM post WHERE fagsystem = ? AND noekkel = ?", key).fetchone()
            if existing is not None:
                return rules.post_ids(conn, existing)
        parent_ref = child(entry, "referanseForelderMappe")
        folder = self.find(parent_ref, "folder")
        if folder is None:
            self.note("registreringa har inga saksmappe i arkivet og er ikkje teken inn (ho ligg att i "
                      f"{LEGACY_DIR}/)")
            return None
        if rules._is_closed(folder):
            self.note(f"saksmappa {folder['saksaar']}/{folder['sakssekvensnummer']} var avslutta då registreringa "
                      f"kom; ho er teken inn likevel, som det gamle arkivet tok henne")
        old = _part(m.ids, "registrering")
        moment = m.moment
        kind = rules.xsi_type(entry) or "registrering"
        row = rules.post_row(root, entry, folder, key, kind, self._free_id("post", old.get("systemID")), moment)
        if kind == "journalpost":
            year, seq = self._number(
                "journalposten", "SELECT 1 FROM post WHERE journalaar = ? AND journalsekvensnummer = ?",
                [(_int(old.get("journalaar")), _int(old.get("journalsekvensnummer"))), _arkivnummer(m.ids)],
                moment.year, "SELECT max(journalsekvensnummer) FROM post WHERE journalaar = ?")
            number = _int(old.get("journalpostnummer"))
            if not self._free("SELECT 1 FROM post WHERE folder_id = ? AND journalpostnummer = ?",
                              (folder["id"], number)):
                number = rules._next(conn, "SELECT max(journalpostnummer) FROM post WHERE folder_id = ?",
                                     (folder["id"],))
            row.update(journalaar=year, journalsekvensnummer=seq, journalpostnummer=number,
                       journalposttype=kode(entry, "journalposttype"),
                       journalstatus=kode(entry, "journalstatus") or "J",
                       journaldato=text(entry, "journaldato") or moment.date().isoformat())
        post = self._insert("post", row)
        for part in children(entry, "korrespondansepart"):
            part_id = self.correspondent(post["id"], part)
            for written in children(part, "avskrivning"):
                if part_id is not None:
                    self.write_off(m, post["id"], part_id, written)
        old_documents = [d for d in old.get("dokumentbeskrivelser") or [] if isinstance(d, dict)]
        for number, described in enumerate(children(entry, "dokumentbeskrivelse"), start=1):
            self.document(m, post["id"], number, described, old_documents[number - 1]
                          if number <= len(old_documents) else {})
        return rules.post_ids(conn, post, "Opprettet")

    def correspondent(self, post_id: int, part: etree._Element) -> str | None:
        part_id = text(part, "korrespondansepartID") or str(uuid.uuid4())
        if self.conn.execute("SELECT 1 FROM correspondent WHERE post_id = ? AND part_id = ?",
                             (post_id, part_id)).fetchone():
            self.note(f"korrespondansepartID {part_id} står to gonger på same journalpost; den første er teken inn")
            return None
        values = {k: v for k, v in rules._correspondent_values(part).items() if v is not None}
        values.setdefault("korrespondanseparttype", "")
        values.setdefault("navn", "")
        values.update(post_id=post_id, part_id=part_id)
        self.conn.execute(f"INSERT INTO correspondent ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                          tuple(values.values()))
        return part_id

    def document(self, m: Legacy, post_id: int, number: int, described: etree._Element, old: dict) -> None:
        obj = child(described, "dokumentobjekt")
        reference = text(obj, "referanseDokumentfil") if obj is not None else None
        sha, size = m.files.get(reference or "", (None, None))
        if reference and sha is None:
            self.note(f"dokument {number}: melding.json har ingen SHA-256 for fila dokumentobjektet viser til")
        elif sha is not None:
            stored = self.store.file_path(sha)
            if not stored.is_file():
                self.note(f"dokument {number}: fila med SHA-256 {sha} finst ikkje i filer/")
            elif size is not None and stored.stat().st_size != size:
                self.note(f"dokument {number}: fila med SHA-256 {sha} har {stored.stat().st_size} byte, "
                          f"melding.json seier {size}")
        objects = [o for o in old.get("dokumentobjekter") or [] if isinstance(o, str) and _is_uuid(o)]
        row = {"system_id": self._free_id("document", old.get("systemID")), "post_id": post_id,
               "dokumentnummer": number, "tittel": text(described, "tittel") or "",
               "dokumenttype": kode(described, "dokumenttype"), "dokumentstatus": kode(described, "dokumentstatus"),
               "tilknyttet_som": kode(described, "tilknyttetRegistreringSom") or "H"}
        if obj is not None:
            row.update(object_system_id=objects[0] if objects else str(uuid.uuid4()),
                       versjonsnummer=_int(text(obj, "versjonsnummer")) or 1,
                       variantformat=kode(obj, "variantformat") or "A", format=kode(obj, "format"),
                       mime_type=text(obj, "mimeType"), filnavn=text(obj, "filnavn"),
                       referanse_dokumentfil=reference, sha256=sha, size=size)
        self._insert("document", row)

    def write_off(self, m: Legacy, post_id: int, part_id: str, written: etree._Element) -> None:
        reply_ref = child(written, "referanseAvskrivesAvJournalpost")
        reply = self.find(reply_ref, "post") if reply_ref is not None else None
        day = text(written, "avskrivningsdato") or m.moment.date().isoformat()
        self.conn.execute(
            "INSERT INTO write_off (post_id, part_id, avskrivningsdato, avskrivningsmaate, avskrevet_av, "
            "reply_post_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (post_id, part_id) DO UPDATE SET "
            "avskrivningsdato = excluded.avskrivningsdato, avskrivningsmaate = excluded.avskrivningsmaate, "
            "avskrevet_av = excluded.avskrevet_av, reply_post_id = excluded.reply_post_id",
            (post_id, part_id, day, kode(written, "avskrivningsmaate") or "",
             rules.person(child(written, "avskrevetAv")) or "{}", reply["id"] if reply is not None else None))
        self.conn.execute("UPDATE post SET avskrivningsdato = ? WHERE id = ?", (day, post_id))

    def _insert(self, table: str, row: dict) -> sqlite3.Row:
        cursor = self.conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                   tuple(row.values()))
        made = self.conn.execute(f"SELECT * FROM {table} WHERE id = ?", (cursor.lastrowid,)).fetchone()
        assert made is not None
        return made

    # --- avskrivning.opprett ---

    def avskrivning(self, m: Legacy, root: etree._Element) -> dict:
        post = self.find(child(root, "referanseTilJournalpost"), "post")
        written = child(root, "avskrivning")
        if post is None or written is None:
            return {}
        part_id = text(root, "korrespondansepartID") or ""
        if not self.conn.execute("SELECT 1 FROM correspondent WHERE post_id = ? AND part_id = ?",
                                 (post["id"], part_id)).fetchone():
            self.note(f"journalposten har ingen korrespondansepart med korrespondansepartID {part_id}; "
                      f"avskrivinga er teken inn likevel")
        self.write_off(m, post["id"], part_id, written)
        return {}

    # --- arkivmelding.oppdater ---

    def oppdater(self, m: Legacy, root: etree._Element) -> dict:
        for update in children(root, "mappeOppdateringer"):
            self.update_folder(m, update)
        for update in children(root, "registreringOppdateringer"):
            self.update_post(update)
        for update in children(root, "dokumentbeskrivelseOppdateringer"):
            ref = child(update, "referanseTilDokumentbeskrivelse")
            system_id = text(ref, "systemID") if ref is not None else None
            row = self.conn.execute("SELECT id FROM document WHERE system_id = ?", (system_id or "",)).fetchone()
            if row is None:
                self.note(f"dokumentbeskrivelsen (systemID {system_id}) finst ikkje i arkivet; endringa er ikkje gjord")
                continue
            changes = {c: v for c, v in (("tittel", text(update, "tittel")),
                                         ("dokumenttype", kode(update, "dokumenttype")),
                                         ("dokumentstatus", kode(update, "dokumentstatus"))) if v}
            self._update("document", row["id"], changes)
        return {}

    def update_folder(self, m: Legacy, update: etree._Element) -> None:
        folder = self.find(child(update, "referanseTilMappe"), "folder")
        if folder is None:
            return
        changes, status, closed_on = rules.folder_changes(update)
        if status in rules.CLOSED_STATUSES or (closed_on is not None and status is None):
            if not rules._is_closed(folder):
                open_items = len(rules.unsettled(self.conn, folder["id"]))
                if open_items:
                    self.note(f"saksmappa {folder['saksaar']}/{folder['sakssekvensnummer']} vart avslutta med "
                              f"{open_items} journalpost(ar) som ikkje var avskrivne; teken inn som det gamle arkivet "
                              f"tok henne")
            changes["avsluttet_dato"] = closed_on or folder["avsluttet_dato"] or m.moment.isoformat()
            changes.setdefault("saksstatus", "A")
        elif status is not None:
            changes.update(avsluttet_dato=None, avsluttet_av=None)
        self._update("folder", folder["id"], changes)

    def update_post(self, update: etree._Element) -> None:
        post = self.find(child(update, "referanseTilRegistrering"), "post")
        if post is None:
            return
        changes: dict = {column: text(update, tag) for column, tag in rules._POST_FIELDS
                         if text(update, tag) is not None}
        for column, tag in (("journalposttype", "journalposttype"), ("journalstatus", "journalstatus")):
            if kode(update, tag):
                changes[column] = kode(update, tag)
        moved = child(update, "referanseForelderMappe")
        target = self.find(moved, "folder") if moved is not None else None
        if target is not None and target["id"] != post["folder_id"]:
            changes["folder_id"] = target["id"]
            changes["journalpostnummer"] = rules._next(
                self.conn, "SELECT max(journalpostnummer) FROM post WHERE folder_id = ?", (target["id"],))
        parts = child(update, "korrespondansepartOppdateringer")
        for changed in children(parts, "oppdatering"):
            part_id = text(changed, "korrespondansepartID") or ""
            if self._has_part(post["id"], part_id):
                values = {k: v for k, v in rules._correspondent_values(changed).items() if v is not None}
                if values:
                    self.conn.execute(f"UPDATE correspondent SET {', '.join(f'{c} = ?' for c in values)} "
                                      "WHERE post_id = ? AND part_id = ?", (*values.values(), post["id"], part_id))
        for removed in children(parts, "slett"):
            part_id = text(removed, "korrespondansepartID") or ""
            if self._has_part(post["id"], part_id):
                self.conn.execute("DELETE FROM write_off WHERE post_id = ? AND part_id = ?", (post["id"], part_id))
                self.conn.execute("DELETE FROM correspondent WHERE post_id = ? AND part_id = ?", (post["id"], part_id))
        for added in children(parts, "ny"):
            self.correspondent(post["id"], added)
        self._update("post", post["id"], changes)

    def _has_part(self, post_id: int, part_id: str) -> bool:
        if self.conn.execute("SELECT 1 FROM correspondent WHERE post_id = ? AND part_id = ?",
                             (post_id, part_id)).fetchone():
            return True
        self.note(f"journalposten har ingen korrespondansepart med korrespondansepartID {part_id}; "
                  f"endringa av han er ikkje gjord")
        return False

    def _update(self, table: str, row_id: int, changes: dict) -> None:
        if changes:
            self.conn.execute(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in changes)} WHERE id = ?",
                              (*changes.values(), row_id))


def _describe(ref: etree._Element) -> str:
    key = rules._key(ref)
    if key and key[1]:
        return f"nøkkel «{key[1][:100]}»"
    system_id = text(ref, "systemID")
    return f"systemID {system_id[:64]}" if system_id else "utan identifikator"


def _part(ids: dict, name: str) -> dict:
    found = ids.get(name)
    return found if isinstance(found, dict) else {}


def _arkivnummer(ids: dict) -> tuple[int | None, int | None]:
    """The old archive's arkivnummer, year/running number ("2025/000012"), as two numbers."""
    found = _NUMBER.fullmatch(str(ids.get("arkivnummer") or ""))
    return (int(found.group(1)), int(found.group(2))) if found else (None, None)


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
