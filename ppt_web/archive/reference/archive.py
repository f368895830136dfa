"""The reference archive's front door: a message in, the reply out, as an archive receiving Fiks Arkiv V1.

A message is checked against the XSD and code lists, then against what the archive holds (rules.py),
then stored with the reply, in one transaction; the built-in archive takes a worker's batch of messages in
one transaction (receive_many), each as if it came alone. The same klientmelding id again gets the stored
reply and stores nothing. A refused message is not kept: sent again (say, once its folder has arrived), it
is judged again.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from .. import codes, replies
from ..message import Message
from . import legacy, query, rules
from .store import Store

log = logging.getLogger(__name__)
RECEIVES = {rules.OPPRETT, rules.OPPDATER, rules.AVSKRIVNING}
QUERIES = {rules.MAPPE_HENT, rules.REGISTRERING_HENT}
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


@dataclass
class Answer:
    status: int  # the http contract's status: 200, 400, 404, 500
    meldingstype: str  # of the reply
    payload: bytes  # the reply's payload (b"" for a kvittering without one)
    known: dict = field(default_factory=dict)  # more ids the archive can tell (the local transport passes them on)


def plain_utf8(payload: bytes) -> bytes:
    """A payload with a byte order mark (KS's own samples have UTF-16 ones, whatever their declaration
    says) as plain UTF-8 without the declaration; any other payload as it is."""
    for bom, encoding in _BOMS:
        if payload.startswith(bom):
            decoded = payload[len(bom):].decode(encoding)
            if decoded.lstrip().startswith("<?xml"):
                decoded = decoded[decoded.index("?>") + 2:]
            return decoded.encode("utf-8")
    return payload


def _refusal(exc: rules.Refused) -> Answer:
    """The feilmelding for a refusal. An unknown reference is ikkefunnet for every message type, as the
    protocol's sequence diagrams show for opprett, though meldingstyper.json leaves it out of kanSvareMed
    for opprett and avskrivning."""
    return Answer(exc.status, exc.meldingstype, replies.feilmelding(exc.meldingstype, exc.text))


class ReferenceArchive:
    def __init__(self, root: str | Path):
        self.store = Store(root)
        legacy.import_once(self.store)  # the folder store this archive replaced, taken in once

    def receive(self, meldingstype: str, message_id: str, payload: bytes, files: dict[str, bytes]) -> Answer:
        """One message from a case system; the reply the http contract gives it."""
        meldingstype = codes.canonical(meldingstype)
        if meldingstype in QUERIES:
            return self.query(meldingstype, payload)
        return self.receive_many([(meldingstype, message_id, payload, files)])[0]

    def receive_many(self, messages: list[tuple[str, str, bytes, dict[str, bytes]]]) -> list[Answer]:
        """Messages from one case system, taken in their order in ONE transaction (a group commit: one
        fsync and one turn at the write lock for all of them, not one per message); their replies, in
        that order, given only once the transaction is on disk. Each message is judged as if it came
        alone: after the messages before it (a post may name the folder two places up), and a refused
        one leaves nothing behind (it is rolled back to its savepoint) and does not stop the others.
        Checking against the XSD and code lists, and keeping the files, happen before the lock."""
        answers: list[Answer | None] = [None] * len(messages)
        ready: list[tuple[int, str, str, bytes, etree._Element, dict[str, bytes], dict]] = []
        for i, (meldingstype, message_id, payload, files) in enumerate(messages):
            try:
                checked = self._check(codes.canonical(meldingstype), message_id, payload, files)
            except rules.Refused as exc:
                answers[i] = _refusal(exc)
                continue
            if isinstance(checked, Answer):
                answers[i] = checked
            else:
                ready.append((i, *checked))
        if ready:
            with self.store.write() as conn:
                for i, meldingstype, message_id, payload, root, files, stored in ready:
                    conn.execute("SAVEPOINT message")
                    try:
                        answers[i] = self._take(conn, meldingstype, message_id, payload, root, files, stored)
                    except rules.Refused as exc:
                        conn.execute("ROLLBACK TO message")
                        answers[i] = _refusal(exc)
                    except sqlite3.IntegrityError:  # this message against a constraint: serverfeil for it alone
                        log.exception("the reference archive failed on klientmelding-id %s", message_id)
                        conn.execute("ROLLBACK TO message")
                        answers[i] = Answer(500, replies.SERVERFEIL,
                                            replies.feilmelding(replies.SERVERFEIL, "intern feil i arkivet"))
                    conn.execute("RELEASE message")
        return [answer for answer in answers if answer is not None]

    def _check(self, meldingstype: str, message_id: str, payload: bytes, files: dict[str, bytes]
               ) -> Answer | tuple[str, str, bytes, etree._Element, dict[str, bytes], dict]:
        """A message's checks that need no lock: the stored reply if it was taken before, else the message
        ready to take (its payload as plain UTF-8, parsed, its files kept); rules.Refused if it is not valid."""
        if not _is_uuid(message_id):
            raise rules.invalid("X-Klientmelding-Id", "klientmelding-id må vere ein UUID")
        if meldingstype not in RECEIVES:
            raise rules.invalid("X-Meldingstype", f"meldingstypen «{meldingstype[:100]}» tek dette arkivet "
                                                  f"ikkje imot")
        with self.store.read() as conn:
            done = self._answered(conn, message_id)
        if done is not None:
            return done
        payload = plain_utf8(payload)
        found = codes.problems(meldingstype, payload)
        if found:
            raise rules.invalid("/", "meldinga følgjer ikkje skjemaet eller kodelistene: " + codes.summary(found))
        root = etree.fromstring(payload, etree.XMLParser(resolve_entities=False, no_network=True))
        stored = {name: (self.store.keep_file(data), len(data)) for name, data in files.items()} \
            if meldingstype == rules.OPPRETT else {}
        return meldingstype, message_id, payload, root, files, stored

    def _take(self, conn: sqlite3.Connection, meldingstype: str, message_id: str, payload: bytes,
              root: etree._Element, files: dict[str, bytes], stored: dict) -> Answer:
        """A checked message judged against what the archive holds and stored with its reply, inside the
        write transaction."""
        done = self._answered(conn, message_id)  # another process (or this batch) took the same message meanwhile
        if done is not None:
            return done
        if meldingstype == rules.OPPRETT:
            outcome = rules.opprett(conn, root, files, stored)
        elif meldingstype == rules.OPPDATER:
            outcome = rules.oppdater(conn, root, files)
        else:
            outcome = rules.avskrivning(conn, root, files)
        reply_type = f"{meldingstype}.kvittering"
        receipt = replies.kvittering(meldingstype, Message(meldingstype, "", payload, ()), outcome.ids)
        conn.execute("INSERT INTO message (klientmelding_id, meldingstype, mottatt, reply_type, reply, ids, "
                     "noekler, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (message_id, meldingstype, datetime.now(UTC).isoformat(), reply_type, receipt,
                      json.dumps(outcome.known, ensure_ascii=False), json.dumps(outcome.keys, ensure_ascii=False),
                      payload))
        return Answer(200, reply_type, receipt, outcome.known)

    def _answered(self, conn: sqlite3.Connection, message_id: str) -> Answer | None:
        row = conn.execute("SELECT * FROM message WHERE klientmelding_id = ?", (message_id,)).fetchone()
        if row is None:
            return None
        return Answer(200, row["reply_type"], bytes(row["reply"]), json.loads(row["ids"]))

    def query(self, meldingstype: str, payload: bytes) -> Answer:
        """A query message (innsyn): its resultat, or ikkefunnet; nothing is stored."""
        meldingstype = codes.canonical(meldingstype)
        try:
            if meldingstype not in QUERIES:
                raise rules.invalid("X-Meldingstype", f"«{meldingstype[:100]}» er ikkje ei spørjing dette arkivet "
                                                      f"svarar på")
            payload = plain_utf8(payload)
            found = codes.problems(meldingstype, payload)
            if found:
                raise rules.invalid("/", "meldinga følgjer ikkje skjemaet: " + codes.summary(found))
            root = etree.fromstring(payload, etree.XMLParser(resolve_entities=False, no_network=True))
            with self.store.read() as conn:
                result = query.answer(conn, meldingstype, root)
            return Answer(200, f"{meldingstype}.resultat", result)
        except rules.Refused as exc:
            return _refusal(exc)

    # --- for tests and the local view ---

    def stored_count(self) -> int:
        if not self.store.path.exists():
            return 0
        with self.store.read() as conn:
            return int(conn.execute("SELECT count(*) FROM message").fetchone()[0])

    def messages_for(self, key: str) -> list[dict]:
        """The messages the archive took that name one external key (e.g. "case:12"), oldest first."""
        if not self.store.path.exists():
            return []
        with self.store.read() as conn:
            rows = conn.execute("SELECT m.klientmelding_id, m.meldingstype, m.mottatt, m.ids, m.reply FROM message m, "
                                "json_each(m.noekler) k WHERE k.value = ? ORDER BY m.mottatt", (key,)).fetchall()
        out = []
        for row in rows:
            ids = replies.parse_kvittering(bytes(row["reply"])) if row["reply"] else json.loads(row["ids"])
            out.append({"klientmelding_id": row["klientmelding_id"], "meldingstype": row["meldingstype"],
                        "mottatt": row["mottatt"], "ids": ids})
        return out

    def files_of(self, key: str) -> list[dict]:
        """The documents the archive holds for a post's external key: number, file name, SHA-256, size."""
        if not self.store.path.exists():
            return []
        with self.store.read() as conn:
            rows = conn.execute("SELECT d.dokumentnummer, d.filnavn, d.sha256, d.size FROM document d JOIN post p "
                                "ON p.id = d.post_id WHERE p.noekkel = ? ORDER BY d.dokumentnummer", (key,))
            return [dict(r) for r in rows]


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
