"""The reference archive's own database: one SQLite file in its folder, never the case system's database.

Several worker processes may send at once: each message (or a worker's batch of messages, one savepoint
each) is one transaction opened with BEGIN IMMEDIATE, so SQLite lets one writer in at a time and the running
numbers taken inside it are unique. Files are kept beside it by their SHA-256 (written before the
transaction; writing one twice does no harm).

A transaction costs one fsync: the WAL's, at its commit (synchronous FULL), so a reply is only given for a
message that is on disk; a crash before it leaves the transaction out whole (the WAL's checksums), and
the numbers it took are free again, never given twice. Each thread keeps its connection open between
messages: opening one per message cost three opens, and closing the last one checkpointed the WAL into
the database and deleted it (three more fsyncs) every time. A connection is never used across a fork
(a work horse opens its own), and one whose file was removed is opened again.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS folder (
    id INTEGER PRIMARY KEY,
    system_id TEXT NOT NULL UNIQUE,
    fagsystem TEXT, noekkel TEXT,
    saksaar INTEGER NOT NULL, sakssekvensnummer INTEGER NOT NULL,
    mappetype TEXT NOT NULL,            -- saksmappe | mappe
    tittel TEXT NOT NULL, offentlig_tittel TEXT,
    saksdato TEXT NOT NULL, saksstatus TEXT NOT NULL,
    avsluttet_dato TEXT, avsluttet_av TEXT,
    saksansvarlig TEXT, administrativ_enhet TEXT,   -- JSON: navn, identifikator, initialer, epostadresse
    arkivdel TEXT,
    opprettet_dato TEXT NOT NULL, opprettet_av TEXT NOT NULL,
    xml BLOB NOT NULL,
    UNIQUE (fagsystem, noekkel),
    UNIQUE (saksaar, sakssekvensnummer)
);
CREATE TABLE IF NOT EXISTS post (
    id INTEGER PRIMARY KEY,
    system_id TEXT NOT NULL UNIQUE,
    fagsystem TEXT, noekkel TEXT,
    folder_id INTEGER NOT NULL REFERENCES folder(id),
    registreringstype TEXT NOT NULL,    -- journalpost | arkivnotat | registrering
    journalaar INTEGER, journalsekvensnummer INTEGER, journalpostnummer INTEGER,
    journalposttype TEXT, journalstatus TEXT,
    journaldato TEXT, dokumentets_dato TEXT, mottatt_dato TEXT, sendt_dato TEXT, forfallsdato TEXT,
    avskrivningsdato TEXT,
    tittel TEXT NOT NULL, offentlig_tittel TEXT,
    arkivdel TEXT,
    opprettet_dato TEXT NOT NULL, opprettet_av TEXT NOT NULL,
    xml BLOB NOT NULL,
    UNIQUE (fagsystem, noekkel),
    UNIQUE (journalaar, journalsekvensnummer),
    UNIQUE (folder_id, journalpostnummer)
);
CREATE TABLE IF NOT EXISTS correspondent (
    id INTEGER PRIMARY KEY,
    post_id INTEGER NOT NULL REFERENCES post(id),
    part_id TEXT NOT NULL,              -- korrespondansepartID
    korrespondanseparttype TEXT NOT NULL,
    navn TEXT NOT NULL,
    organisasjonid TEXT, personid TEXT,
    postadresse TEXT,                   -- JSON list of lines
    postnummer TEXT, poststed TEXT, landkode TEXT, epostadresse TEXT,
    er_skjermet TEXT,
    UNIQUE (post_id, part_id)
);
CREATE TABLE IF NOT EXISTS write_off (
    id INTEGER PRIMARY KEY,
    post_id INTEGER NOT NULL REFERENCES post(id),
    part_id TEXT NOT NULL,
    avskrivningsdato TEXT NOT NULL,
    avskrivningsmaate TEXT NOT NULL,
    avskrevet_av TEXT NOT NULL,         -- JSON: navn, identifikator, initialer, epostadresse
    reply_post_id INTEGER REFERENCES post(id),
    UNIQUE (post_id, part_id)
);
CREATE TABLE IF NOT EXISTS document (
    id INTEGER PRIMARY KEY,
    system_id TEXT NOT NULL UNIQUE,
    post_id INTEGER NOT NULL REFERENCES post(id),
    dokumentnummer INTEGER NOT NULL,
    tittel TEXT NOT NULL,
    dokumenttype TEXT, dokumentstatus TEXT, tilknyttet_som TEXT NOT NULL,
    object_system_id TEXT, versjonsnummer INTEGER, variantformat TEXT, format TEXT, mime_type TEXT,
    filnavn TEXT, referanse_dokumentfil TEXT, sha256 TEXT, size INTEGER,
    UNIQUE (post_id, dokumentnummer)
);
CREATE TABLE IF NOT EXISTS message (
    klientmelding_id TEXT PRIMARY KEY,
    meldingstype TEXT NOT NULL,
    mottatt TEXT NOT NULL,
    reply_type TEXT NOT NULL,
    reply BLOB NOT NULL,
    ids TEXT NOT NULL,                  -- JSON: what the reply says, and what else the archive knows
    noekler TEXT NOT NULL,              -- JSON list of the external keys the message names
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS legacy_import (  -- one row once the old folder store (meldingar/) was taken in
    id INTEGER PRIMARY KEY CHECK (id = 1),
    imported_at TEXT NOT NULL,
    found INTEGER NOT NULL, imported INTEGER NOT NULL, notes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS legacy_note (    -- what that import could not read or had to take as it was
    id INTEGER PRIMARY KEY,
    klientmelding_id TEXT NOT NULL,         -- the message's folder name under meldingar/
    meldingstype TEXT,
    note TEXT NOT NULL                      -- ids, numbers, element paths and hashes only, never payload text
);
"""


WRITE_WAIT_SECONDS = 60  # how long a writer waits for another's transaction (SQLite's busy_timeout too)
_prepared: set[str] = set()  # database files this process has set up (schema, WAL): once, not per message
_prepare_lock = threading.Lock()
_open = threading.local()  # this thread's connections: {path: (pid, inode, connection)}


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


class Store:
    """The database file and the file store under one folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.path = self.root / "arkiv.sqlite3"

    def _connection(self) -> sqlite3.Connection:
        """This thread's open connection to the file, opened (again) when there is none in this process or
        the file it was opened on is gone."""
        conns: dict = getattr(_open, "conns", None) or {}
        _open.conns = conns
        key = str(self.path)
        held = conns.get(key)
        inode = _inode(self.path)
        if held is not None and held[0] == os.getpid() and held[1] == inode:
            return held[2]
        if held is not None and held[0] == os.getpid():
            held[2].close()  # the file was removed (tests, a reset): this one points at the old one
        conn = self._connect()  # a connection inherited over a fork is left alone: the parent's
        conns[key] = (os.getpid(), _inode(self.path), conn)
        return conn

    def close(self) -> None:
        """Close this thread's connection (tests that remove the folder; it is opened again when needed)."""
        held = (getattr(_open, "conns", None) or {}).pop(str(self.path), None)
        if held is not None and held[0] == os.getpid():
            held[2].close()

    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()  # (removed and made again: set it up again)
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 60000")
        key = str(self.path.resolve())
        if fresh or key not in _prepared:
            with _prepare_lock, self._setup_lock():
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(SCHEMA)
                _prepared.add(key)
        return conn

    @contextmanager
    def _setup_lock(self) -> Iterator[None]:
        """One process at a time sets the file up. Turning a new file to WAL needs it alone, and SQLite
        answers "database is locked" at once, without its busy wait, to a second process doing the same:
        two workers' first messages to a new archive were answered as a busy archive."""
        with open(self.root / "arkiv.setup.lock", "a+b") as held:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # released when the file is closed
            yield

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, the single writer's lock taken at its start: committed whole, or not at all.

        Writers queue on a file lock (flock) first, tried again every few milliseconds. SQLite's own wait
        for its lock is a sleep and try again of up to 100 ms a sleep, so under a steady stream of batches a
        waiting writer (the one message a user just finalized) could lose the race again and again for
        seconds. Either wait ends after WRITE_WAIT_SECONDS with an error (the sender answers it as a busy
        archive: try again later). SQLite's lock still keeps writers apart (a lock file removed with
        the folder queues nobody until it is made again, and changes nothing else)."""
        conn = self._connection()
        with self._writers_lock():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _writers_lock(self) -> Iterator[None]:
        """The exclusive lock on the lock file beside the database, by this thread's own open file (a lock
        is held per open file: one shared by threads, or inherited over a fork, would not keep them apart)."""
        files: dict = getattr(_open, "locks", None) or {}
        _open.locks = files
        key = str(self.path)
        held = files.get(key)
        if held is None or held[0] != os.getpid():
            self.root.mkdir(parents=True, exist_ok=True)
            held = (os.getpid(), open(self.root / "arkiv.lock", "a+b"))  # noqa: SIM115 - kept open per thread
            files[key] = held
        fd, pause, deadline = held[1].fileno(), 0.0005, time.monotonic() + WRITE_WAIT_SECONDS
        while True:  # short waits (a few ms at most), and as long as SQLite's own busy timeout in all
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:  # a writer hung while holding it: answered as a busy archive
                    raise sqlite3.OperationalError("the archive's write lock was held too long") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.005)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Reads, each statement its own snapshot (autocommit): no transaction is left open between messages."""
        conn = self._connection()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def file_path(self, sha256: str) -> Path:
        return self.root / "filer" / sha256[:2] / sha256

    def keep_file(self, data: bytes) -> str:
        """Store a file by its content's SHA-256 (once), durably; the hash."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.file_path(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{digest}.{os.getpid()}.tmp")
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        return digest
