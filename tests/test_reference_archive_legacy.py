"""The reference archive takes in the folder store the built-in archive used to be (meldingar/<id>/ with
melding.json, the payload, svar.json and kvittering.xml; files under filer/): once, leniently, keeping the
old systemIDs, numbers and replies, and listing what it could not read."""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ppt_web.archive import codes, replies
from ppt_web.archive.message import Message
from ppt_web.archive.reference import ReferenceArchive, legacy
from ppt_web.archive.transports.local import LocalArchive
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob

from .test_reference_archive import (
    AVSKRIVNING,
    OPPDATER,
    OPPRETT,
    PDF,
    counts,
    folder_update,
    folder_xml,
    ok,
    post_xml,
    refused,
    send,
    write_off,
)

pytestmark = pytest.mark.one_database  # engine-independent: CI runs it on one database

YEAR = 2025
NATIONAL_ID = "01017012345"  # a made-up fødselsnummer inside a payload: it must reach no note and no log line


class OldStore:
    """Writes meldingar/ as the folder store did: one folder per message, files by SHA-256, a running
    arkivnummer year/n shared by folders and posts, and the reply it gave (svar.json, kvittering.xml)."""

    def __init__(self, root: Path, year: int = YEAR):
        self.root, self.year = root, year
        self.n = 0
        self.start = datetime(year, 3, 1, 9, 0, tzinfo=UTC)

    def send(self, meldingstype: str, payload: bytes, files: dict[str, bytes] | None = None) -> tuple[str, dict]:
        files = files or {}
        self.n += 1
        message_id = str(uuid.uuid4())
        shas = {}
        for name, data in files.items():
            sha = hashlib.sha256(data).hexdigest()
            stored = self.root / "filer" / sha[:2] / sha
            stored.parent.mkdir(parents=True, exist_ok=True)
            stored.write_bytes(data)
            shas[name] = sha
        ids = {"arkivnummer": f"{self.year}/{self.n:06d}", "mappe": {"systemID": str(uuid.uuid4())},
               "registrering": {"systemID": str(uuid.uuid4()), "journalaar": self.year,
                                "journalsekvensnummer": self.n,
                                "journalpostnummer": self.n,
                                "dokumentbeskrivelser": [{"systemID": str(uuid.uuid4()), "dokumentnummer": i + 1,
                                                          "dokumentobjekter": [str(uuid.uuid4())]}
                                                         for i in range(len(files))]}}
        name = codes.meldingstype_info(meldingstype)["payloadFilnavn"]
        message = Message(meldingstype, name, payload, ())
        receipt = replies.kvittering(meldingstype, message, ids) if meldingstype == OPPRETT else b""
        answer = {**(replies.parse_kvittering(receipt) if receipt else {}), "arkivnummer": ids["arkivnummer"]}
        folder = self.root / "meldingar" / message_id
        folder.mkdir(parents=True)
        (folder / name).write_bytes(payload)
        meta = {"meldingstype": meldingstype, "klientmelding_id": message_id,
                "mottatt": (self.start + timedelta(minutes=self.n)).isoformat(), "ids": answer,
                "noeklar": [], "filer": [{"namn": n, "filnamn": n, "sha256": shas[n], "storleik": len(files[n])}
                                         for n in files]}
        (folder / "melding.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))
        (folder / "kvittering.xml").write_bytes(receipt)
        (folder / "svar.json").write_text(json.dumps({"kind": "ok", "ids": answer}))
        return message_id, answer


def old_archive(root: Path) -> tuple[OldStore, dict]:
    """Two cases: sak-1 with an incoming letter (written off by our reply) and a second incoming letter not
    written off; sak-2 closed after its only post was written off."""
    store = OldStore(root)
    sent = {"sak-1": store.send(OPPRETT, folder_xml("sak-1")),
            "p-1": store.send(OPPRETT, post_xml("sak-1", "p-1", "I", files=(("01-brev.pdf", PDF),)),
                              {"01-brev.pdf": PDF}),
            "p-2": store.send(OPPRETT, post_xml("sak-1", "p-2", "U", parts=(("part-2", "Ulstein skule"),))),
            "p-1-off": store.send(AVSKRIVNING, write_off("p-1")),
            "p-3": store.send(OPPRETT, post_xml("sak-1", "p-3", "I")),
            "sak-2": store.send(OPPRETT, folder_xml("sak-2")),
            "p-4": store.send(OPPRETT, post_xml("sak-2", "p-4", "I")),
            "p-4-off": store.send(AVSKRIVNING, write_off("p-4")),
            "sak-2-closed": store.send(OPPDATER, folder_update("sak-2", "A", closed="2025-03-02"))}
    return store, sent


def rows(arkiv: ReferenceArchive, sql: str, args: tuple = ()) -> list[tuple]:
    with sqlite3.connect(arkiv.store.path) as conn:
        return conn.execute(sql, args).fetchall()


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_old_folders_posts_write_offs_and_documents_are_taken_in_with_their_ids(tmp_path):
    root = tmp_path / "arkiv"
    _, sent = old_archive(root)
    before = tree(root / "meldingar")
    arkiv = ReferenceArchive(root)
    assert counts(arkiv) == {"folder": 2, "post": 4, "correspondent": 4, "write_off": 2, "document": 1,
                             "message": 9}
    # The old arkivnummer becomes the folder's case number and the post's journal number; systemIDs stay.
    assert rows(arkiv, "SELECT noekkel, system_id, saksaar, sakssekvensnummer, saksstatus, avsluttet_dato "
                       "FROM folder ORDER BY id") == [
        ("sak-1", sent["sak-1"][1]["mappe"]["systemID"], YEAR, 1, "B", None),
        ("sak-2", sent["sak-2"][1]["mappe"]["systemID"], YEAR, 6, "A", "2025-03-02")]
    old_post = sent["p-1"][1]["registrering"]
    assert rows(arkiv, "SELECT system_id, journalaar, journalsekvensnummer, journalpostnummer, avskrivningsdato "
                       "FROM post WHERE noekkel = 'p-1'") == [(old_post["systemID"], YEAR, 2, 2, "2026-02-02")]
    assert rows(arkiv, "SELECT system_id, object_system_id, sha256, size FROM document") == [
        (old_post["dokumentbeskrivelser"][0]["systemID"], old_post["dokumentbeskrivelser"][0]["dokumentobjekter"][0],
         hashlib.sha256(PDF).hexdigest(), len(PDF))]
    assert arkiv.store.file_path(hashlib.sha256(PDF).hexdigest()).read_bytes() == PDF
    assert rows(arkiv, "SELECT p.noekkel, w.part_id FROM write_off w JOIN post p ON p.id = w.post_id "
                       "ORDER BY w.id") == [("p-1", "part-1"), ("p-4", "part-1")]
    assert [m["meldingstype"] for m in arkiv.messages_for("p-1")] == [OPPRETT, AVSKRIVNING]
    assert legacy.notes(arkiv.store) == []
    assert tree(root / "meldingar") == before  # the old folders are only read


def test_a_new_post_into_an_old_folder_is_accepted_and_numbered_after_the_old_ones(tmp_path):
    root = tmp_path / "arkiv"
    old_archive(root)
    arkiv = ReferenceArchive(root)
    entry = ok(send(arkiv, OPPRETT, post_xml("sak-1", "p-new", "X", files=(("a.pdf", PDF),)), {"a.pdf": PDF}))
    made = entry["registrering"]
    assert (made["journalaar"], made["journalpostnummer"]) == (datetime.now().year, 6)  # after p-3's old 5
    assert made["registreringsID"] == f"{YEAR}/1-6"
    folder = ok(send(arkiv, OPPRETT, folder_xml("sak-new")))["mappe"]
    assert (folder["saksaar"], folder["sakssekvensnummer"]) != (YEAR, 1)
    refused(send(arkiv, OPPRETT, post_xml("sak-2", "p-late", "X")), 400, "avslutta")  # sak-2 was closed


def test_an_old_folder_closes_once_its_old_post_is_written_off(tmp_path):
    root = tmp_path / "arkiv"
    old_archive(root)
    arkiv = ReferenceArchive(root)
    refused(send(arkiv, OPPDATER, folder_update("sak-1", "A")), 400, "ikkje avskrivne", f"{YEAR}/5")
    ok(send(arkiv, AVSKRIVNING, write_off("p-3")))
    ok(send(arkiv, OPPDATER, folder_update("sak-1", "A")))
    ok(send(arkiv, OPPDATER, folder_update("sak-2", "B")))  # reopening an old closed folder
    assert rows(arkiv, "SELECT noekkel, saksstatus FROM folder ORDER BY id") == [("sak-1", "A"), ("sak-2", "B")]


def test_an_old_klientmelding_id_gets_its_old_reply_and_nothing_more(tmp_path):
    root = tmp_path / "arkiv"
    _, sent = old_archive(root)
    arkiv = ReferenceArchive(root)
    message_id, answer = sent["p-1"]
    stored = (root / "meldingar" / message_id / "kvittering.xml").read_bytes()
    before = counts(arkiv)
    again = send(arkiv, OPPRETT, post_xml("sak-1", "p-1", "I", files=(("01-brev.pdf", PDF),)),
                 {"01-brev.pdf": PDF}, message_id=message_id)
    assert again.status == 200 and again.payload == stored and counts(arkiv) == before
    # Through the built-in transport, as a retried job sees it: the old ids, the old arkivnummer.
    reply = LocalArchive(root).send(Message(OPPDATER, "arkivmelding.xml", folder_update("sak-2", "A"), ()),
                                    sent["sak-2-closed"][0])
    assert reply.kind == "ok" and reply.ids["arkivnummer"] == f"{YEAR}/000009"
    closed_again = LocalArchive(root).send(Message(OPPRETT, "arkivmelding.xml", folder_xml("sak-1"), ()),
                                           sent["sak-1"][0])
    assert closed_again.ids["mappe"]["systemID"] == sent["sak-1"][1]["mappe"]["systemID"]
    assert counts(arkiv) == before


def test_the_import_runs_once(tmp_path):
    root = tmp_path / "arkiv"
    store, _ = old_archive(root)
    first = ReferenceArchive(root)
    assert rows(first, "SELECT found, imported, notes FROM legacy_import") == [(9, 9, 0)]
    store.send(OPPRETT, folder_xml("sak-late"))  # an old process writing after the import: not taken again
    legacy._done.clear()  # as another process would see it
    ReferenceArchive(root)
    assert rows(first, "SELECT count(*) FROM folder") == [(2,)]
    assert rows(first, "SELECT count(*) FROM legacy_import") == [(1,)]


def _open(root: str) -> int:
    return ReferenceArchive(root).stored_count()


def test_processes_opening_at_once_import_once(tmp_path):
    root = tmp_path / "arkiv"
    old_archive(root)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        assert pool.map(_open, [str(root)] * 2) == [9, 9]
    arkiv = ReferenceArchive(root)
    assert counts(arkiv)["folder"] == 2 and counts(arkiv)["message"] == 9


def test_what_cannot_be_read_is_listed_and_the_rest_taken_in(tmp_path, caplog):
    root = tmp_path / "arkiv"
    store, sent = old_archive(root)
    broken, _ = store.send(OPPRETT, folder_xml("sak-8"))
    (root / "meldingar" / broken / "arkivmelding.xml").write_bytes(f"<arkivmelding><tittel>{NATIONAL_ID}".encode())
    no_meta, _ = store.send(OPPRETT, folder_xml("sak-9"))
    (root / "meldingar" / no_meta / "melding.json").unlink()
    gone = b"%PDF-1.4 lost\n"
    lost, _ = store.send(OPPRETT, post_xml("sak-1", "p-9", "I", files=(("09-tapt.pdf", gone),)), {"09-tapt.pdf": gone})
    (root / "filer" / hashlib.sha256(gone).hexdigest()[:2] / hashlib.sha256(gone).hexdigest()).unlink()
    # A folder made closed, a post into it: the old store took them, so does the import (noted).
    store.send(OPPRETT, folder_xml("sak-closed").replace(b"<n5mdk:kode>B</n5mdk:kode>", b"<n5mdk:kode>A</n5mdk:kode>"))
    late, _ = store.send(OPPRETT, post_xml("sak-closed", "p-late", "X"))
    with caplog.at_level(logging.INFO, logger="ppt_web.archive.reference.legacy"):
        arkiv = ReferenceArchive(root)
    notes = {n["klientmelding_id"]: n["note"] for n in legacy.notes(arkiv.store)}
    assert "ikkje gyldig XML" in notes[broken] and "melding.json manglar" in notes[no_meta]
    assert "finst ikkje i filer/" in notes[lost] and "avslutta" in notes[late]
    assert rows(arkiv, "SELECT noekkel FROM post WHERE noekkel IN ('p-9', 'p-late') ORDER BY noekkel") == [
        ("p-9",), ("p-late",)]
    assert rows(arkiv, "SELECT found, imported, notes FROM legacy_import") == [(14, 12, 4)]
    listed = (root / legacy.NOTES_FILE).read_text()
    assert broken in listed and lost in listed
    assert "4 notes" in caplog.text and "took in 12 of 14" in caplog.text
    assert NATIONAL_ID not in listed + caplog.text + json.dumps(legacy.notes(arkiv.store))
    assert (root / "meldingar" / broken).is_dir()  # left where it was


# --- through the app ---

def test_a_post_into_a_case_archived_before_the_upgrade_is_archived(app, ctx, tmp_path):
    """A case the folder store took before the upgrade; after it, the case's next post reaches the archive
    (not ikkefunnet), filed in the old folder."""
    from ppt_web.archive import message as archive_message

    from . import builders
    from .test_reference_archive import _run_jobs

    root = tmp_path / "built-in-archive"
    app.config.update(PPT_ARCHIVE_BACKEND="local", PPT_LOCAL_ARCHIVE_DIR=str(root))
    case = builders.case()
    job = db.session.scalars(select(ArchiveJob)).one()
    built = archive_message.build(job)
    OldStore(root).send(built.meldingstype, built.payload)
    db.session.execute(ArchiveJob.__table__.update().values(job_status="done", archive_status="archived"))
    db.session.commit()
    builders.finalized_post(case, post_type="X", title="Notat")
    _run_jobs()
    post_job = db.session.scalars(select(ArchiveJob).where(ArchiveJob.event == "post_finalized")).one()
    assert post_job.archive_status == "archived", post_job.message
    assert post_job.archive_ref["registrering"]["registreringsID"].startswith(f"{YEAR}/1-")


def test_a_database_used_before_the_import_keeps_its_objects_and_the_old_ones_get_free_numbers(tmp_path):
    """An instance that ran the reference archive before it could import: what it took stays as it is; an
    old number already taken gives way to the next one, noted."""
    root = tmp_path / "arkiv"
    this_year = datetime.now().year
    ok(send(ReferenceArchive(root), OPPRETT, folder_xml("sak-new")))  # number 1, before meldingar/ was there
    message_id, _ = OldStore(root, this_year).send(OPPRETT, folder_xml("sak-old"))  # its old arkivnummer: 1 too
    legacy._done.clear()
    arkiv = ReferenceArchive(root)
    assert rows(arkiv, "SELECT noekkel, saksaar, sakssekvensnummer FROM folder ORDER BY id") == [
        ("sak-new", this_year, 1), ("sak-old", this_year, 2)]
    assert [n["klientmelding_id"] for n in legacy.notes(arkiv.store)] == [message_id]
    assert "alt i bruk" in legacy.notes(arkiv.store)[0]["note"]
