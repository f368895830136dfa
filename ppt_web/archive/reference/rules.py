"""What the reference archive accepts, and what it does with it: one function per message type, run inside
one transaction of the store. A refusal raises Refused before anything is written (the transaction rolls
back), so a refused message leaves the archive as it was.

The archive assigns its own numbers (saksaar + sakssekvensnummer per year, journalaar +
journalsekvensnummer per year, journalpostnummer per folder) and systemIDs; numbers a sender puts in
the message are ignored. Objects are found by systemID, by the sender's referanseEksternNoekkel
(fagsystem + noekkel), or by the archive's numbers.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from ...clock import OSLO
from .. import codes, replies

OPPRETT = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett"
OPPDATER = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.oppdater"
AVSKRIVNING = "no.ks.fiks.arkiv.v1.arkivering.avskrivning.opprett"
MAPPE_HENT = "no.ks.fiks.arkiv.v1.innsyn.mappe.hent"
REGISTRERING_HENT = "no.ks.fiks.arkiv.v1.innsyn.registrering.hent"
CLOSED_STATUSES = {"A"}  # saksstatus Avsluttet
OPEN_ITEM_TYPES = {"I", "N"}  # journal posts a folder may not be closed with, unless written off
ARCHIVE_USER = "referansearkivet"


class Refused(Exception):
    """The archive will not take the message: HTTP status, feilmelding type and its text (Norwegian)."""

    def __init__(self, status: int, meldingstype: str, text: str):
        super().__init__(text)
        self.status, self.meldingstype, self.text = status, meldingstype, text


def invalid(where: etree._Element | str, text: str) -> Refused:
    path = where if isinstance(where, str) else codes.element_path(where)
    return Refused(400, replies.UGYLDIGFORESPOERSEL, f"{path}: {text}")


def not_found(where: etree._Element | str, text: str) -> Refused:
    path = where if isinstance(where, str) else codes.element_path(where)
    return Refused(404, replies.IKKEFUNNET, f"{path}: {text}")


@dataclass
class Outcome:
    ids: dict  # what the kvittering carries (archive_ids of replies.kvittering)
    known: dict  # what else the archive can tell about the objects concerned (for the local transport)
    keys: list[str]  # the external keys the message names, for finding it again


# --- reading the payload, namespace-blind (the standard's elements have unique local names per level) ---

def local(element: etree._Element) -> str:
    """The element's name without its namespace: cut from the tag ("{ns}name"), not by an etree.QName made per
    call; a message's rules ask this about 430 times (a tenth of the built-in archive's CPU time for a post)."""
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else etree.QName(element).localname


def child(parent: etree._Element | None, name: str) -> etree._Element | None:
    if parent is None:
        return None
    for element in parent:
        if isinstance(element.tag, str) and local(element) == name:
            return element
    return None


def at(parent: etree._Element, name: str) -> etree._Element:
    """The named child, else the parent: where a refusal points."""
    found = child(parent, name)
    return found if found is not None else parent


def children(parent: etree._Element | None, name: str) -> list[etree._Element]:
    if parent is None:
        return []
    return [e for e in parent if isinstance(e.tag, str) and local(e) == name]


def text(parent: etree._Element | None, name: str) -> str | None:
    element = child(parent, name)
    if element is None or element.text is None:
        return None
    return element.text.strip()


def kode(parent: etree._Element | None, name: str) -> str | None:
    return text(child(parent, name), "kode")


def person(element: etree._Element | None) -> str | None:
    """An identifikatorer element (navn, identifikator, initialer, epostadresse) as JSON, or None."""
    if element is None:
        return None
    found = {n: text(element, n) for n in ("navn", "identifikator", "initialer", "epostadresse") if text(element, n)}
    return json.dumps(found, ensure_ascii=False) if found else None


def xsi_type(element: etree._Element) -> str:
    return element.get(f"{{{codes.XSI}}}type", "").split(":")[-1]


def now() -> datetime:
    return datetime.now(OSLO).replace(microsecond=0)


def _key(element: etree._Element | None) -> tuple[str, str] | None:
    key = child(element, "referanseEksternNoekkel")
    if key is None:
        return None
    return text(key, "fagsystem") or "", text(key, "noekkel") or ""


def external_keys(root: etree._Element) -> list[str]:
    found = {(k.text or "").strip() for k in root.iter() if isinstance(k.tag, str) and local(k) == "noekkel"}
    return sorted(k for k in found if k)


# --- finding what a reference names ---

def _one(conn: sqlite3.Connection, sql: str, args: tuple) -> sqlite3.Row | None:
    return conn.execute(sql, args).fetchone()


def _by_identity(conn: sqlite3.Connection, table: str, ref: etree._Element) -> list:
    """What a reference's systemID and external key name in the folder or post table: (how, row) pairs."""
    assert table in ("folder", "post")
    rows = []
    system_id = text(ref, "systemID")
    if system_id:
        rows.append(("systemID " + system_id, _one(conn, f"SELECT * FROM {table} WHERE system_id = ?", (system_id,))))
    key = _key(ref)
    if key:
        rows.append((f"fagsystem «{key[0]}», nøkkel «{key[1]}»",
                     _one(conn, f"SELECT * FROM {table} WHERE fagsystem = ? AND noekkel = ?", key)))
    return rows


def find_folder(conn: sqlite3.Connection, ref: etree._Element) -> sqlite3.Row:
    """A referanseTilMappe / referanseForelderMappe: by systemID, external key, mappeID or saksnummer."""
    rows = _by_identity(conn, "folder", ref)
    mappe_id = text(ref, "mappeID")
    if mappe_id:
        rows.append((f"mappeID {mappe_id}", _one(conn, "SELECT * FROM folder WHERE saksaar || '/' || "
                                                       "sakssekvensnummer = ?", (mappe_id,))))
    saksnummer = child(ref, "saksnummer")
    if saksnummer is not None:
        number = (_int(text(saksnummer, "saksaar")), _int(text(saksnummer, "sakssekvensnummer")))
        rows.append((f"saksnummer {number[0]}/{number[1]}", _one(
            conn, "SELECT * FROM folder WHERE saksaar = ? AND sakssekvensnummer = ?", number)))
    return _the_same(ref, rows, "saksmappa")


def find_post(conn: sqlite3.Connection, ref: etree._Element) -> sqlite3.Row:
    """A referanseTilRegistrering / referanseTilJournalpost: by systemID, external key or the archive's numbers."""
    rows = _by_identity(conn, "post", ref)
    journalnummer = child(ref, "journalnummer")
    if journalnummer is not None:
        number = (_int(text(journalnummer, "journalaar")), _int(text(journalnummer, "journalsekvensnummer")))
        rows.append((f"journalnummer {number[0]}/{number[1]}", _one(
            conn, "SELECT * FROM post WHERE journalaar = ? AND journalsekvensnummer = ?", number)))
    in_case = child(ref, "saksJournalpostnummer")
    if in_case is not None:
        number3 = (_int(text(in_case, "saksaar")), _int(text(in_case, "sakssekvensnummer")),
                   _int(text(in_case, "journalpostnummer")))
        rows.append((f"saksnummer {number3[0]}/{number3[1]}-{number3[2]}", _one(
            conn, "SELECT post.* FROM post JOIN folder ON folder.id = post.folder_id WHERE folder.saksaar = ? "
                  "AND folder.sakssekvensnummer = ? AND post.journalpostnummer = ?", number3)))
    registrerings_id = text(ref, "registreringsID")
    if registrerings_id:
        rows.append((f"registreringsID {registrerings_id}", _one(
            conn, "SELECT post.* FROM post JOIN folder ON folder.id = post.folder_id WHERE folder.saksaar || '/' || "
                  "folder.sakssekvensnummer || '-' || post.journalpostnummer = ?", (registrerings_id,))))
    return _the_same(ref, rows, "journalposten")


def _the_same(ref: etree._Element, rows: list, what: str) -> sqlite3.Row:
    if not rows:
        raise invalid(ref, f"referansen manglar identifikator (systemID eller referanseEksternNoekkel) for {what}")
    for label, row in rows:
        if row is None:
            raise not_found(ref, f"{what} ({label}) finst ikkje i arkivet")
    if len({row["id"] for _, row in rows}) > 1:
        raise invalid(ref, f"identifikatorane i referansen viser til ulike objekt ({what})")
    return rows[0][1]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


# --- numbers and ids ---

def _next(conn: sqlite3.Connection, sql: str, args: tuple) -> int:
    return int(conn.execute(sql, args).fetchone()[0] or 0) + 1


def folder_ids(row: sqlite3.Row, status: str = "Eksisterende") -> dict:
    return {"systemID": row["system_id"], "mappeID": f"{row['saksaar']}/{row['sakssekvensnummer']}",
            "saksaar": row["saksaar"], "sakssekvensnummer": row["sakssekvensnummer"], "saksdato": row["saksdato"],
            "opprettetDato": row["opprettet_dato"], "opprettetEllerEksisterende": status,
            **({"referanseEksternNoekkel": row["noekkel"]} if row["noekkel"] else {})}


def post_ids(conn: sqlite3.Connection, row: sqlite3.Row, status: str = "Eksisterende") -> dict:
    folder = _one(conn, "SELECT * FROM folder WHERE id = ?", (row["folder_id"],))
    ids: dict = {"systemID": row["system_id"], "opprettetDato": row["opprettet_dato"],
                 "opprettetEllerEksisterende": status}
    if row["journalpostnummer"] is not None and folder is not None:
        ids["registreringsID"] = f"{folder['saksaar']}/{folder['sakssekvensnummer']}-{row['journalpostnummer']}"
    if row["registreringstype"] == "journalpost":
        ids.update(journalaar=row["journalaar"], journalsekvensnummer=row["journalsekvensnummer"],
                   journalpostnummer=row["journalpostnummer"])
    documents = conn.execute("SELECT * FROM document WHERE post_id = ? ORDER BY dokumentnummer", (row["id"],))
    ids["dokumentbeskrivelser"] = [
        {"systemID": d["system_id"], "dokumentnummer": d["dokumentnummer"],
         "dokumentobjekter": [d["object_system_id"]] if d["object_system_id"] else []} for d in documents]
    if row["noekkel"]:
        ids["referanseEksternNoekkel"] = row["noekkel"]
    return ids


def _is_closed(folder: sqlite3.Row) -> bool:
    return folder["saksstatus"] in CLOSED_STATUSES or bool(folder["avsluttet_dato"])


# --- files ---

def check_files(root: etree._Element, files: dict[str, bytes]) -> None:
    """antallFiler, referanseDokumentfil and the files that came must agree; sjekksum and filstoerrelse
    must fit the file when the message gives them."""
    count_element = child(root, "antallFiler")
    declared = _int(text(root, "antallFiler")) if count_element is not None else 0
    if declared != len(files):
        raise invalid(count_element if count_element is not None else root,
                      f"meldinga seier {declared} filer, men {len(files)} kom med")
    named = set()
    for obj in root.iter():
        if not isinstance(obj.tag, str) or local(obj) != "dokumentobjekt":
            continue
        reference = child(obj, "referanseDokumentfil")
        name = text(obj, "referanseDokumentfil") or ""
        if name not in files:
            raise invalid(reference if reference is not None else obj,
                          f"fila «{name}» som dokumentobjektet viser til, kom ikkje med meldinga")
        named.add(name)
        data = files[name]
        algorithm = (text(obj, "sjekksumAlgoritme") or "SHA256").replace("-", "").lower()
        checksum = text(obj, "sjekksum")
        if checksum:
            if algorithm not in hashlib.algorithms_available:
                raise invalid(at(obj, "sjekksumAlgoritme"), f"ukjend sjekksumalgoritme «{algorithm}»")
            if hashlib.new(algorithm, data).hexdigest() != checksum.lower():
                raise invalid(at(obj, "sjekksum"),
                              f"sjekksummen stemmer ikkje med fila «{name}» som kom")
        size = text(obj, "filstoerrelse")
        if size is not None and _int(size) != len(data):
            raise invalid(at(obj, "filstoerrelse"),
                          f"filstoerrelse {size} stemmer ikkje med fila «{name}» ({len(data)} byte)")
    extra = sorted(set(files) - named)
    if extra:
        raise invalid(root, "fila «" + "», «".join(extra) + "» kom med, men ingen referanseDokumentfil viser til ho")


# --- arkivmelding.opprett ---

def opprett(conn: sqlite3.Connection, root: etree._Element, files: dict[str, bytes],
            stored: dict[str, tuple[str, int]]) -> Outcome:
    check_files(root, files)
    ids: dict = {}
    mappe = child(root, "mappe")
    new_folder = None
    if mappe is not None:
        ids["mappe"], new_folder = _create_folder(conn, mappe, root)
    entry = child(root, "registrering")
    if entry is not None:
        ids["registrering"] = _create_post(conn, entry, root, stored)
    return Outcome(ids, {}, external_keys(root))


def _create_folder(conn: sqlite3.Connection, mappe: etree._Element, root: etree._Element) -> tuple[dict, int]:
    key = _key(mappe)
    if key:
        existing = _one(conn, "SELECT * FROM folder WHERE fagsystem = ? AND noekkel = ?", key)
        if existing is not None:
            return folder_ids(existing), existing["id"]
    parent = child(mappe, "referanseForeldermappe")
    if parent is not None:
        find_folder(conn, parent)  # it must exist; the reference archive keeps folders flat
    moment = now()
    year = moment.year
    seq = _next(conn, "SELECT max(sakssekvensnummer) FROM folder WHERE saksaar = ?", (year,))
    status = kode(mappe, "saksstatus") or "B"
    closed_on = text(mappe, "avsluttetDato")
    if status in CLOSED_STATUSES and not closed_on:
        closed_on = moment.isoformat()
    row = {
        "system_id": str(uuid.uuid4()), "fagsystem": key[0] if key else None, "noekkel": key[1] if key else None,
        "saksaar": year, "sakssekvensnummer": seq,
        "mappetype": "saksmappe" if xsi_type(mappe) == "saksmappe" else "mappe",
        "tittel": text(mappe, "tittel") or "", "offentlig_tittel": text(mappe, "offentligTittel"),
        "saksdato": text(mappe, "saksdato") or moment.date().isoformat(), "saksstatus": status,
        "avsluttet_dato": closed_on, "avsluttet_av": text(mappe, "avsluttetAv"),
        "saksansvarlig": person(child(mappe, "saksansvarlig")),
        "administrativ_enhet": person(child(mappe, "administrativEnhet")),
        "arkivdel": kode(mappe, "arkivdel"),
        "opprettet_dato": moment.isoformat(), "opprettet_av": text(mappe, "opprettetAv") or text(root, "system")
        or ARCHIVE_USER,
        "xml": etree.tostring(mappe, encoding="UTF-8"),
    }
    cursor = conn.execute(f"INSERT INTO folder ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                          tuple(row.values()))
    created = _one(conn, "SELECT * FROM folder WHERE id = ?", (cursor.lastrowid,))
    assert created is not None
    return folder_ids(created, "Opprettet"), created["id"]


def post_row(root: etree._Element, entry: etree._Element, folder: sqlite3.Row, key: tuple[str, str] | None,
             kind: str, system_id: str, moment: datetime) -> dict:
    """The post table's columns a registrering gives, before its numbers."""
    return {
        "system_id": system_id, "fagsystem": key[0] if key else None, "noekkel": key[1] if key else None,
        "folder_id": folder["id"], "registreringstype": kind,
        "tittel": text(entry, "tittel") or "", "offentlig_tittel": text(entry, "offentligTittel"),
        "arkivdel": kode(entry, "arkivdel"),
        "dokumentets_dato": text(entry, "dokumentetsDato"), "mottatt_dato": text(entry, "mottattDato"),
        "sendt_dato": text(entry, "sendtDato"), "forfallsdato": text(entry, "forfallsdato"),
        "avskrivningsdato": text(entry, "avskrivningsdato"),
        "opprettet_dato": moment.isoformat(),
        "opprettet_av": text(entry, "opprettetAv") or text(root, "system") or ARCHIVE_USER,
        "xml": etree.tostring(entry, encoding="UTF-8"),
    }


def _create_post(conn: sqlite3.Connection, entry: etree._Element, root: etree._Element,
                 stored: dict[str, tuple[str, int]]) -> dict:
    key = _key(entry)
    if key:
        existing = _one(conn, "SELECT * FROM post WHERE fagsystem = ? AND noekkel = ?", key)
        if existing is not None:
            return post_ids(conn, existing)
    parent_ref = child(entry, "referanseForelderMappe")
    if parent_ref is None:  # the standard allows an arkivdel alone; this archive files every post in a folder
        raise invalid(entry, "registreringa manglar referanseForelderMappe: dette arkivet tek berre imot "
                             "registreringar i ei saksmappe")
    folder = find_folder(conn, parent_ref)
    if _is_closed(folder):
        raise invalid(parent_ref, f"saksmappa {folder['saksaar']}/{folder['sakssekvensnummer']} er avslutta "
                                  f"(saksstatus {folder['saksstatus']}); ho tek ikkje imot nye registreringar")
    kind = xsi_type(entry) or "registrering"
    moment = now()
    row = post_row(root, entry, folder, key, kind, str(uuid.uuid4()), moment)
    if kind == "journalpost":
        status = kode(entry, "journalstatus") or "J"
        if status == "E" and not row["sendt_dato"]:
            raise invalid(at(entry, "journalstatus"), "journalstatus E (ekspedert) krev sendtDato")
        row.update(journalaar=moment.year,
                   journalsekvensnummer=_next(conn, "SELECT max(journalsekvensnummer) FROM post WHERE journalaar = ?",
                                              (moment.year,)),
                   journalpostnummer=_next(conn, "SELECT max(journalpostnummer) FROM post WHERE folder_id = ?",
                                           (folder["id"],)),
                   journalposttype=kode(entry, "journalposttype"), journalstatus=status,
                   journaldato=text(entry, "journaldato") or moment.date().isoformat())
    cursor = conn.execute(f"INSERT INTO post ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                          tuple(row.values()))
    post_id = cursor.lastrowid
    assert post_id is not None
    seen: set[str] = set()
    for part in children(entry, "korrespondansepart"):
        part_id = _add_correspondent(conn, post_id, part)
        if part_id in seen:
            raise invalid(at(part, "korrespondansepartID"),
                          f"korrespondansepartID «{part_id}» er brukt to gonger i same journalpost")
        seen.add(part_id)
        for written in children(part, "avskrivning"):
            _write_off(conn, post_id, part_id, written)
    for number, described in enumerate(children(entry, "dokumentbeskrivelse"), start=1):
        _add_document(conn, post_id, number, described, stored, moment)
    created = _one(conn, "SELECT * FROM post WHERE id = ?", (post_id,))
    assert created is not None
    return post_ids(conn, created, "Opprettet")


def _correspondent_values(part: etree._Element) -> dict:
    values = {"korrespondanseparttype": kode(part, "korrespondanseparttype"),
              "navn": text(part, "korrespondansepartNavn"), "organisasjonid": text(part, "organisasjonid"),
              "personid": text(part, "personid"), "postnummer": text(part, "postnummer"),
              "poststed": text(part, "poststed"), "landkode": text(part, "landkode"),
              "epostadresse": text(part, "epostadresse"), "er_skjermet": text(part, "erSkjermet")}
    lines = [(e.text or "").strip() for e in children(part, "postadresse")]
    if lines:
        values["postadresse"] = json.dumps(lines, ensure_ascii=False)
    return values


def _add_correspondent(conn: sqlite3.Connection, post_id: int, part: etree._Element) -> str:
    part_id = text(part, "korrespondansepartID") or str(uuid.uuid4())
    values = {k: v for k, v in _correspondent_values(part).items() if v is not None}
    values.update(post_id=post_id, part_id=part_id)
    if conn.execute("SELECT 1 FROM correspondent WHERE post_id = ? AND part_id = ?", (post_id, part_id)).fetchone():
        raise invalid(at(part, "korrespondansepartID"),
                      f"korrespondansepartID «{part_id}» finst alt på journalposten")
    conn.execute(f"INSERT INTO correspondent ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                 tuple(values.values()))
    return part_id


def _add_document(conn: sqlite3.Connection, post_id: int, number: int, described: etree._Element,
                  stored: dict[str, tuple[str, int]], moment: datetime) -> None:
    obj = child(described, "dokumentobjekt")
    reference = text(obj, "referanseDokumentfil") if obj is not None else None
    sha, size = stored.get(reference or "", (None, None))
    row = {"system_id": str(uuid.uuid4()), "post_id": post_id, "dokumentnummer": number,
           "tittel": text(described, "tittel") or "", "dokumenttype": kode(described, "dokumenttype"),
           "dokumentstatus": kode(described, "dokumentstatus"),
           "tilknyttet_som": kode(described, "tilknyttetRegistreringSom") or "H"}
    if obj is not None:
        row.update(object_system_id=str(uuid.uuid4()), versjonsnummer=_int(text(obj, "versjonsnummer")) or 1,
                   variantformat=kode(obj, "variantformat") or "A", format=kode(obj, "format"),
                   mime_type=text(obj, "mimeType"), filnavn=text(obj, "filnavn"), referanse_dokumentfil=reference,
                   sha256=sha, size=size)
    conn.execute(f"INSERT INTO document ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def _write_off(conn: sqlite3.Connection, post_id: int, part_id: str, written: etree._Element) -> None:
    """One write-off of a post's correspondent: a new one, or the same correspondent's again (it replaces)."""
    reply_ref = child(written, "referanseAvskrivesAvJournalpost")
    reply = find_post(conn, reply_ref) if reply_ref is not None else None
    values = (text(written, "avskrivningsdato") or now().date().isoformat(), kode(written, "avskrivningsmaate") or "",
              person(child(written, "avskrevetAv")) or "{}", reply["id"] if reply is not None else None)
    conn.execute("INSERT INTO write_off (post_id, part_id, avskrivningsdato, avskrivningsmaate, avskrevet_av, "
                 "reply_post_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (post_id, part_id) DO UPDATE SET "
                 "avskrivningsdato = excluded.avskrivningsdato, avskrivningsmaate = excluded.avskrivningsmaate, "
                 "avskrevet_av = excluded.avskrevet_av, reply_post_id = excluded.reply_post_id",
                 (post_id, part_id, *values))
    conn.execute("UPDATE post SET avskrivningsdato = ? WHERE id = ?", (values[0], post_id))


# --- avskrivning.opprett ---

def avskrivning(conn: sqlite3.Connection, root: etree._Element, files: dict[str, bytes]) -> Outcome:
    if files:
        raise invalid(root, f"ei avskriving har ingen filer, men {len(files)} kom med")
    ref = child(root, "referanseTilJournalpost")
    assert ref is not None
    post = find_post(conn, ref)
    part_element = child(root, "korrespondansepartID")
    part_id = text(root, "korrespondansepartID") or ""
    if not conn.execute("SELECT 1 FROM correspondent WHERE post_id = ? AND part_id = ?",
                        (post["id"], part_id)).fetchone():
        raise invalid(part_element if part_element is not None else root,
                      f"journalposten har ingen korrespondansepart med korrespondansepartID «{part_id}»")
    written = child(root, "avskrivning")
    assert written is not None
    _write_off(conn, post["id"], part_id, written)
    return Outcome({}, _known_for_post(conn, post["id"]), external_keys(root))


def _known_for_post(conn: sqlite3.Connection, post_id: int) -> dict:
    post = _one(conn, "SELECT * FROM post WHERE id = ?", (post_id,))
    assert post is not None
    folder = _one(conn, "SELECT * FROM folder WHERE id = ?", (post["folder_id"],))
    assert folder is not None
    return {"mappe": folder_ids(folder), "registrering": post_ids(conn, post)}


# --- arkivmelding.oppdater ---

def oppdater(conn: sqlite3.Connection, root: etree._Element, files: dict[str, bytes]) -> Outcome:
    if files:
        raise invalid(root, f"ei oppdatering har ingen filer, men {len(files)} kom med")
    known: dict = {}
    for update in children(root, "mappeOppdateringer"):
        known["mappe"] = _update_folder(conn, update)
    for update in children(root, "registreringOppdateringer"):
        known.update(_update_post(conn, update))
    for update in children(root, "dokumentbeskrivelseOppdateringer"):
        _update_document(conn, update)
    return Outcome({}, known, external_keys(root))


def folder_changes(update: etree._Element) -> tuple[dict, str | None, str | None]:
    """What a saksmappeOppdatering sets on the folder's columns, its saksstatus and its avsluttetDato
    (the closing itself, with its check of open items, is the caller's)."""
    changes: dict = {}
    for column, tag in (("tittel", "tittel"), ("offentlig_tittel", "offentligTittel"), ("saksdato", "saksdato"),
                        ("avsluttet_av", "avsluttetAv")):
        if text(update, tag) is not None:
            changes[column] = text(update, tag)
    for column, tag in (("saksansvarlig", "saksansvarlig"), ("administrativ_enhet", "administrativEnhet")):
        if child(update, tag) is not None:
            changes[column] = person(child(update, tag))
    if kode(update, "arkivdel"):
        changes["arkivdel"] = kode(update, "arkivdel")
    status = kode(update, "saksstatus")
    if status is not None:
        changes["saksstatus"] = status
    return changes, status, text(update, "avsluttetDato")


def unsettled(conn: sqlite3.Connection, folder_id: int) -> list[sqlite3.Row]:
    """The folder's open items: I and N posts with no write-off (Noark refuses to close over them)."""
    return conn.execute(
        "SELECT journalaar, journalsekvensnummer, journalposttype FROM post WHERE folder_id = ? "
        f"AND journalposttype IN ({', '.join('?' * len(OPEN_ITEM_TYPES))}) AND avskrivningsdato IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM write_off WHERE write_off.post_id = post.id) "
        "AND coalesce(journalstatus, '') != 'U' ORDER BY journalsekvensnummer",
        (folder_id, *sorted(OPEN_ITEM_TYPES))).fetchall()


def _update_folder(conn: sqlite3.Connection, update: etree._Element) -> dict:
    ref = child(update, "referanseTilMappe")
    assert ref is not None
    folder = find_folder(conn, ref)
    changes, status, closed_on = folder_changes(update)
    closing = status in CLOSED_STATUSES or (closed_on is not None and status is None)
    if closing:
        if not _is_closed(folder):
            open_items = unsettled(conn, folder["id"])
            if open_items:
                listed = ", ".join(f"{r['journalaar']}/{r['journalsekvensnummer']} ({r['journalposttype']})"
                                   for r in open_items)
                raise invalid(child(update, "saksstatus") if child(update, "saksstatus") is not None else update,
                              f"saksmappa {folder['saksaar']}/{folder['sakssekvensnummer']} kan ikkje avsluttast: "
                              f"desse journalpostane er ikkje avskrivne: {listed}")
        changes["avsluttet_dato"] = closed_on or folder["avsluttet_dato"] or now().isoformat()
        if "saksstatus" not in changes:
            changes["saksstatus"] = "A"
    elif status is not None:  # reopened (or another open status): no closing date
        changes["avsluttet_dato"] = None
        changes["avsluttet_av"] = None
    if changes:
        conn.execute(f"UPDATE folder SET {', '.join(f'{c} = ?' for c in changes)} WHERE id = ?",
                     (*changes.values(), folder["id"]))
    updated = _one(conn, "SELECT * FROM folder WHERE id = ?", (folder["id"],))
    assert updated is not None
    return folder_ids(updated)


_POST_FIELDS = (("tittel", "tittel"), ("offentlig_tittel", "offentligTittel"), ("journaldato", "journaldato"),
                ("dokumentets_dato", "dokumentetsDato"), ("mottatt_dato", "mottattDato"),
                ("sendt_dato", "sendtDato"), ("forfallsdato", "forfallsdato"),
                ("avskrivningsdato", "avskrivningsdato"))


def _update_post(conn: sqlite3.Connection, update: etree._Element) -> dict:
    ref = child(update, "referanseTilRegistrering")
    assert ref is not None
    post = find_post(conn, ref)
    changes: dict = {column: text(update, tag) for column, tag in _POST_FIELDS if text(update, tag) is not None}
    for column, tag in (("journalposttype", "journalposttype"), ("journalstatus", "journalstatus")):
        if kode(update, tag):
            changes[column] = kode(update, tag)
    if changes.get("journalstatus") == "E" and not (changes.get("sendt_dato") or post["sendt_dato"]):
        raise invalid(at(update, "journalstatus"), "journalstatus E (ekspedert) krev sendtDato")
    moved = child(update, "referanseForelderMappe")
    if moved is not None:
        target = find_folder(conn, moved)
        if target["id"] != post["folder_id"]:
            if _is_closed(target):
                raise invalid(moved, f"saksmappa {target['saksaar']}/{target['sakssekvensnummer']} er avslutta; "
                                     f"ho tek ikkje imot registreringar")
            changes["folder_id"] = target["id"]
            changes["journalpostnummer"] = _next(
                conn, "SELECT max(journalpostnummer) FROM post WHERE folder_id = ?", (target["id"],))
    parts = child(update, "korrespondansepartOppdateringer")
    for changed in children(parts, "oppdatering"):
        part_id = text(changed, "korrespondansepartID") or ""
        _must_have_part(conn, post["id"], part_id, changed)
        values = {k: v for k, v in _correspondent_values(changed).items() if v is not None}
        if values:
            conn.execute(f"UPDATE correspondent SET {', '.join(f'{c} = ?' for c in values)} "
                         "WHERE post_id = ? AND part_id = ?", (*values.values(), post["id"], part_id))
    for removed in children(parts, "slett"):
        part_id = text(removed, "korrespondansepartID") or ""
        _must_have_part(conn, post["id"], part_id, removed)
        conn.execute("DELETE FROM write_off WHERE post_id = ? AND part_id = ?", (post["id"], part_id))
        conn.execute("DELETE FROM correspondent WHERE post_id = ? AND part_id = ?", (post["id"], part_id))
    for added in children(parts, "ny"):
        _add_correspondent(conn, post["id"], added)
    if changes:
        conn.execute(f"UPDATE post SET {', '.join(f'{c} = ?' for c in changes)} WHERE id = ?",
                     (*changes.values(), post["id"]))
    return _known_for_post(conn, post["id"])


def _must_have_part(conn: sqlite3.Connection, post_id: int, part_id: str, where: etree._Element) -> None:
    if not conn.execute("SELECT 1 FROM correspondent WHERE post_id = ? AND part_id = ?",
                        (post_id, part_id)).fetchone():
        raise not_found(at(where, "korrespondansepartID"),
                        f"journalposten har ingen korrespondansepart med korrespondansepartID «{part_id}»")


def _update_document(conn: sqlite3.Connection, update: etree._Element) -> None:
    ref = child(update, "referanseTilDokumentbeskrivelse")
    system_id = text(ref, "systemID") if ref is not None else None
    row = _one(conn, "SELECT * FROM document WHERE system_id = ?", (system_id or "",))
    if row is None:
        raise not_found(ref if ref is not None else update,
                        f"dokumentbeskrivelsen (systemID {system_id}) finst ikkje i arkivet")
    changes = {c: v for c, v in (("tittel", text(update, "tittel")), ("dokumenttype", kode(update, "dokumenttype")),
                                 ("dokumentstatus", kode(update, "dokumentstatus"))) if v}
    if changes:
        conn.execute(f"UPDATE document SET {', '.join(f'{c} = ?' for c in changes)} WHERE id = ?",
                     (*changes.values(), row["id"]))

