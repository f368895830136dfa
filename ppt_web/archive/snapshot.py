"""What an archive job's message needs, as it was when the change happened.

outbox._add calls take() in the transaction of the change and stores the result in
archive_job.snapshot; message.build() reads nothing else. So the jobs of a case, sent in order,
replay its history: a folder is created open, the posts go into it, the closing is an update of
its own, whenever the worker gets to them and however often a job is tried again.

A snapshot is plain JSON (strings, numbers, booleans, ISO dates, lists and dicts):

- "settings": the archive settings of that moment (conventions.DEFAULTS, then PPT_ARCHIVE_SETTINGS,
  then what the administrator saved on screen).
- "case": the folder: title, kind, category, opened_on, status and closed_on as of the event, the
  client (name, national id, structured address), the organisation, the handler as the archive
  knows them (identity.user_identity).
- "post" (post events): title, type, journalstatus, dates, screening, correspondents with their
  korrespondansepartID and structured address, documents with checksum and size.
- "correction" (metadata_corrected): the corrected values, and the korrespondansepartIDs the
  archive held before, so the update says which of them it changes, deletes or adds.
- "write_off" (post_written_off): date, method, who, the reply's key and the sender's
  korrespondansepartID as the archive was given it.
- "expedition" (post_expedited): the day the letter left.

korrespondansepartID: a correspondent's archive_party_id when it has one, else an id derived from
the case system's name, the post and the correspondent's position (conventions.party_id). It cannot be
written onto the row at this point: a finalized post's correspondents are immutable (database
triggers). The id is recorded in the snapshot, and later messages about the post (a correction, the
write-off) take the ids from the latest snapshot that sent the post's correspondents, so they always
name an id the archive was given.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select

from .. import addresses, text
from ..clock import OSLO, today
from ..extensions import db
from ..models import ArchiveJob, Case, CaseStatus, Client, JournalPost, MetadataCorrection, PostStatus
from ..models.domain import Correspondent, Document, PostType
from . import identity
from .conventions import case_key, criteria, merged_settings, party_id, post_key

VERSION = 1
POST_EVENTS = ("post_finalized", "metadata_corrected", "post_written_off", "post_expedited")
# The events whose message sends the post's correspondents (and so their korrespondansepartIDs).
PARTY_EVENTS = ("post_finalized", "metadata_corrected")


def take(event: str, case: Case, post: JournalPost | None = None, correction: MetadataCorrection | None = None,
         *, job: ArchiveJob | None = None, settings: dict | None = None) -> dict:
    """The snapshot of one archive event. `job` is given when a job without a snapshot (older than
    snapshots) is built late: the ids its post's earlier jobs sent are looked up before it, and its
    own date stands in where the event's date is gone. `settings` (PPT_ARCHIVE_SETTINGS as passed to
    build) replace the configured ones; the administrator's saved values still win."""
    conf = merged_settings({**settings, **identity.saved()} if settings is not None else identity.settings())
    snap: dict = {"v": VERSION, "event": event, "settings": conf,
                  "case": _case(event, case, job)}
    if post is not None:
        snap["post"] = _post(post, conf)
    if event == "metadata_corrected" and post is not None:
        snap["correction"] = _correction(post, correction, conf, job)
    if event == "post_written_off" and post is not None:
        snap["write_off"] = _write_off(post, conf, job)
    if event == "post_expedited" and post is not None:
        sent = post.expedited_on or post.sent_on or (job.finalized_on if job is not None else None) or today()
        snap["expedition"] = {"sent_on": sent.isoformat()}
    return snap


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _oslo_date(moment: datetime | None) -> str | None:
    return moment.astimezone(OSLO).date().isoformat() if moment else None


def _case(event: str, case: Case, job: ArchiveJob | None) -> dict:
    """The folder as of the event: created open, closed by its own job, open again when reopened."""
    if event == "case_created" or event == "case_reopened":
        closed_on = None  # a folder is created open; a closing is a later job of its own
    elif event == "case_closed":
        closed_on = (case.closed_on if case.status == CaseStatus.CLOSED and case.closed_on
                     else (job.finalized_on if job is not None else None) or today())
    else:
        closed_on = case.closed_on if case.status == CaseStatus.CLOSED else None
    handler = getattr(case, "handler", None)
    return {
        "id": case.id, "key": case_key(case), "number": case.number, "title": case.title,
        "kind": case.kind.value, "category": case.category.value if case.category else None,
        "opened_on": _iso(case.opened_on), "status": "closed" if closed_on else "open",
        "closed_on": _iso(closed_on),
        "client": _client(case.client) if case.client is not None else None,
        "organisation": ({"name": case.organisation.name, "org_number": case.organisation.org_number or None}
                         if case.organisation is not None else None),
        "handler": identity.user_identity(handler),
    }


def _address(found: addresses.Address | None) -> dict | None:
    if found is None:
        return None
    return {"lines": list(found.lines), "postal_code": found.postal_code, "city": found.city,
            "country": found.country or "NO"}


def _client(client: Client) -> dict:
    return {"name": client.name, "national_id": client.national_id,
            "address": _address(addresses.structured(client.address or "", client.postal_code or "",
                                                     client.city or ""))}


def _party(correspondent: Correspondent, party: str) -> dict:
    return {"id": party, "name": correspondent.name, "org_number": correspondent.org_number or None,
            "national_id": correspondent.national_id or None,
            "organisation": bool(correspondent.organisation_id or correspondent.organisation),
            "address": _address(addresses.of_correspondent(correspondent))}


def _parties(post: JournalPost, conf: dict) -> list[dict]:
    parties = [_party(c, c.archive_party_id or party_id(post, position, conf))
               for position, c in enumerate(post.correspondents, start=1)]
    return parties or _internal(post, conf)


def _internal(post: JournalPost, conf: dict) -> list[dict]:
    """A note for follow-up (N) that names no recipient: the case's handler is its internal recipient
    (IM), so that the archive holds a party to write the note off for (an avskrivning names one)."""
    who = identity.user_identity(getattr(post.case, "handler", None))
    if post.post_type != PostType.N or not who:
        return []
    return [{"id": party_id(post, 1, conf), "name": who["navn"], "org_number": None, "national_id": None,
             "organisation": False, "address": None, "internal": who}]


def _document(doc: Document) -> dict:
    stored = doc.file
    return {"filename": doc.filename, "sha256": doc.sha256, "role": doc.role, "position": doc.position or 0,
            "stored": stored is not None, "size": stored.size if stored is not None else None,
            "content_type": (stored.content_type if stored is not None else None) or "application/pdf"}


def journalstatus(post: JournalPost) -> str:
    """E (ekspedert) once the letter has left us, else F (ferdigstilt)."""
    sent = post.expedited_on or post.sent_on  # an archive refuses E without sendtDato
    return "E" if (post.status == PostStatus.DISPATCHED or post.expedited_on) and sent else "F"


def _post(post: JournalPost, conf: dict) -> dict:
    return {
        "id": post.id, "key": post_key(post), "seq": post.seq, "type": post.post_type.value, "title": post.title,
        "archived": criteria(post), "journalstatus": journalstatus(post),
        "registered_on": _oslo_date(post.registered_at), "document_date": _iso(post.document_date),
        "received_on": _iso(post.received_on), "sent_on": _iso(post.sent_on),
        "expedited_on": _iso(post.expedited_on), "exempt": bool(post.exempt), "legal_basis": post.legal_basis,
        "correspondents": _parties(post, conf),
        "documents": [_document(d) for d in sorted(post.documents, key=lambda d: (d.role != "main",
                                                                                 d.position or 0))],
    }


def sent_parties(snap: dict) -> list[dict] | None:
    """The correspondents (with their ids) a snapshot's message gave the archive, or None if it sends none."""
    if snap.get("event") == "post_finalized":
        return (snap.get("post") or {}).get("correspondents")
    if snap.get("event") == "metadata_corrected":
        return (snap.get("correction") or {}).get("correspondents")
    return None


def _known_ids(post: JournalPost, job: ArchiveJob | None) -> list[str] | None:
    """The korrespondansepartIDs the archive holds for the post: those of the latest earlier job that
    sent its correspondents and kept a snapshot; None when there is no such job."""
    query = (select(ArchiveJob.snapshot).where(ArchiveJob.post_id == post.id, ArchiveJob.event.in_(PARTY_EVENTS),
                                               ArchiveJob.deleted_at.is_(None), ArchiveJob.snapshot.is_not(None))
             .order_by(ArchiveJob.id.desc()))
    if job is not None and job.id is not None:
        query = query.where(ArchiveJob.id < job.id)
    for snap in db.session.scalars(query.limit(5)):
        parties = sent_parties(snap or {})
        if parties is not None:
            return [p["id"] for p in parties]
    return None


def _correction(post: JournalPost, correction: MetadataCorrection | None, conf: dict,
                job: ArchiveJob | None) -> dict:
    """This correction's values. Taken with the change, they are the post's own; a job older than
    snapshots built late, after a later correction, keeps its correction's `after` (names only)."""
    if correction is None and post.correction_id:
        correction = db.session.get(MetadataCorrection, post.correction_id)
    current = correction is None or post.correction_id == correction.id
    if current:
        parties: list[dict] = [_party(c, c.archive_party_id or "") for c in post.correspondents] \
            or _internal(post, conf)
        values = {"title": post.title, "document_date": _iso(post.document_date),
                  "received_on": _iso(post.received_on), "sent_on": _iso(post.sent_on)}
    else:
        after = correction.after if correction is not None else {}
        names = list(after.get("correspondents", []))
        live = [_party(c, c.archive_party_id or "") for c in post.correspondents]
        parties = live if [p["name"] for p in live] == names else [
            {"id": "", "name": n, "org_number": None, "national_id": None, "organisation": False, "address": None}
            for n in names]
        parties = parties or _internal(post, conf)
        values = {"title": after.get("title", post.title),
                  **{k: after.get(k) for k in ("document_date", "received_on", "sent_on")}}
    known = _known_ids(post, job)
    if known is None:  # sent before snapshots existed: the ids derived from the positions
        count = len(correction.before.get("correspondents", [])) if correction is not None else len(parties)
        known = [party_id(post, position, conf) for position in range(1, count + 1)]
    for position, party in enumerate(parties, start=1):
        # A correspondent in a place the archive knows keeps that place's id; the rest are new.
        party["id"] = known[position - 1] if position <= len(known) else (party.get("id")
                                                                          or party_id(post, position, conf))
    return {"id": correction.id if correction is not None else None, **values, "correspondents": parties,
            "previous_ids": known}


def _write_off(post: JournalPost, conf: dict, job: ArchiveJob | None) -> dict:
    known = _known_ids(post, job)
    if known is None:
        known = [p["id"] for p in _parties(post, conf)]
    written = post.written_off_at.astimezone(OSLO).date() if post.written_off_at else None
    written = written or (job.finalized_on if job is not None else None) or today()
    reply = post.write_off_reply
    return {"date": written.isoformat(), "method": post.write_off_method,
            "by": identity.user_identity(post.written_off_by),
            "reply_key": post_key(reply) if reply is not None else None,
            # The sender of an incoming post (its first correspondent); a note's internal recipient.
            "party_id": known[0] if known else None}


def cleaned(value):
    """The snapshot with every text cleaned of what the archive cannot carry (text.clean)."""
    if isinstance(value, str):
        return text.clean(value)
    if isinstance(value, list):
        return [cleaned(v) for v in value]
    if isinstance(value, dict):
        return {k: cleaned(v) for k, v in value.items()}
    return value
