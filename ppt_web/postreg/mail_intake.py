"""Digital mail from SvarInn (or its folder stand-in): each message's files into the inbox, then MOTTATT
or FEILET (docs/integrations.md, "SvarInn V2")."""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from collections import Counter
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import queue
from ..activity import service as activity
from ..clock import utcnow
from ..extensions import db
from ..files import pdfcheck
from ..files.storage import UploadRejected, store_upload
from ..inbound.folder import FolderSource
from ..inbound.metadata import NORWAY
from ..inbound.svarinn import SvarInnSource
from ..inbound.types import KEY_MISMATCH, InboundFailure, InboundUnavailable
from ..models import ActivityLog, InboxItem, InboxSource, InboxStatus
from ..notify import holders, link, notify
from .intake import (
    INBOUND_LOCK,
    LOCK_SECONDS,
    MAIL,
    duplicate_of,
    mark_received,
    quarantine_bytes,
    quarantine_dir,
    reason_text,
    record_refusal,
    redis_key,
    replace_unread,
)

log = logging.getLogger(__name__)

# The SvarInn ids that did not decrypt with our key in the last complete pass, for monitoring.
UNDECRYPTABLE = "ppt:{}:svarinn-undecryptable"
# Who is told that mail waits undecrypted: those who receive digital mail and those who keep the setup.
ALERTED = ("distribute_mail", "sysadmin_edit")


def inbound_source():
    """The configured inbound adapter: the folder stand-in (default) or SvarInn V2."""
    cfg = current_app.config
    limit = int(cfg["PPT_MAX_UPLOAD_BYTES"]) * 4
    if cfg["PPT_INBOUND_BACKEND"] == "svarinn":
        key = Path(cfg["PPT_SVARINN_KEY"]).read_bytes()
        return SvarInnSource(cfg["PPT_SVARINN_URL"], cfg["PPT_SVARINN_USER"], cfg["PPT_SVARINN_PASSWORD"], key,
                             max_bytes=limit)
    # A folder still without forsendelse.json is waited for as long as a scan that never completes.
    return FolderSource(Path(cfg["PPT_SVARINN_DIR"]), max_bytes=limit,
                        stray_seconds=float(cfg["PPT_SYNC_INCOMPLETE_SECONDS"]))


def message_meta(message) -> dict:
    """What pre-fills the registration form: sender, title, dates, the sender's own references."""
    return {
        "title": message.title, "sender_name": message.sender_name,
        "sender_org_number": message.sender_org_number, "sender_address": message.sender_address,
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "document_date": message.document_date.isoformat() if message.document_date else None,
        "sender_case_ref": message.sender_case_ref, "sender_post_ref": message.sender_post_ref,
        "sender_handler": message.sender_handler, "confidential": bool(message.confidential),
        **sender_address(message.raw),
    }


def sender_address(raw: object) -> dict:
    """The sender's postadresse as the registration form's fields: street lines, postal code, place,
    country (a two-letter code; a country written out other than Norway is kept as written, for the
    registrar to give its code)."""
    sender = raw.get("avsender") if isinstance(raw, dict) else None
    where = sender.get("postadresse") if isinstance(sender, dict) else None
    if not isinstance(where, dict):
        return {}

    def text(key: str) -> str:
        value = where.get(key)
        return " ".join(value.split())[:300] if isinstance(value, str) else ""

    land = text("land")
    lines = [text(k) for k in ("adresselinje1", "adresselinje2", "adresselinje3") if text(k)]
    return {"sender_street": "\n".join(lines), "sender_postal_code": text("postnummer")[:10],
            "sender_city": text("poststed")[:100], "sender_country": "NO" if land.upper() in NORWAY else land[:60]}


def poll_inbound(source=None) -> Counter:
    """One pass over waiting digital mail: store each item, then acknowledge it (MOTTATT)."""
    counts: Counter = Counter()
    with queue.only_one(redis_key(INBOUND_LOCK)) as conn:
        if conn is None:
            counts["busy"] += 1
            return counts
        try:
            source = source or inbound_source()
            with pdfcheck.batch():
                _poll(source, conn, counts)
        except InboundUnavailable as exc:
            log.warning("inbound mail not fetched: %s", exc)
            counts["unavailable"] += 1
    return counts


def _poll(source, conn, counts: Counter) -> None:
    undecryptable: list[str] = []
    for got in source.fetch():
        conn.expire(redis_key(INBOUND_LOCK), LOCK_SECONDS)
        try:
            if isinstance(got, InboundFailure) and got.reason == KEY_MISMATCH:
                undecryptable.append(got.id)
                counts[_undecryptable(got)] += 1
            elif isinstance(got, InboundFailure):
                counts[_take_failure(source, got)] += 1
            else:
                counts[_take_message(source, got)] += 1
        except Exception:  # noqa: BLE001 - one bad item must not stop the others; it comes again
            db.session.rollback()
            log.exception("inbound item %s not taken; it stays waiting", getattr(got, "id", "?"))
            counts["error"] += 1
    # The whole pass is done: what waits undecrypted now replaces what waited before.
    key = redis_key(UNDECRYPTABLE)
    pipe = conn.pipeline()
    pipe.delete(key)
    if undecryptable:
        pipe.sadd(key, *undecryptable)
    pipe.execute()
    # What the folder stand-in sees but cannot take in, for the inbox's warning (SvarInn itself: nothing).
    replace_unread(conn, MAIL, getattr(source, "unread", []))


def undecryptable_count() -> int:
    """How many SvarInn items our key could not open in the last complete pass (they wait at SvarInn)."""
    return int(queue.connection().scard(redis_key(UNDECRYPTABLE)))


def _undecryptable(got: InboundFailure) -> str:
    """An item our private key does not open: not acknowledged, so SvarInn lists it again and it is taken
    in once the key is fixed; FEILET would make SvarUt send it (and every later one) to print instead.
    The administrators are told once per item, not at every poll."""
    log.warning("inbound item %s cannot be decrypted with our private key; left waiting: %s", got.id or "(no id)",
                got.detail)
    if not got.id or db.session.scalar(select(ActivityLog.id).where(
            ActivityLog.object_type == "svarinn_item", ActivityLog.object_id == got.id,
            ActivityLog.action == "svarinn_undecryptable").limit(1)) is not None:
        return "undecryptable"
    activity.record("svarinn_undecryptable", actor_name="svarinn", object_type="svarinn_item", object_id=got.id,
                    outcome="failed", detail=got.detail[:500])
    text = _l("Digital mail from SvarInn cannot be decrypted with our private key (forsendelse %(id)s). It waits "
              "at SvarInn and is fetched again at every poll: check that PPT_SVARINN_KEY matches the certificate "
              "registered at SvarUt.", id=got.id)
    for user in holders(*ALERTED):
        notify(user, text, link("postreg.inbox") if user.can("distribute_mail") else "")
    db.session.commit()
    return "undecryptable"


def _known(message_id: str) -> list[InboxItem]:
    return list(db.session.scalars(select(InboxItem).where(InboxItem.svarinn_id == message_id)))


def _tell(call, *args) -> bool:
    """Acknowledge or fail at the sender; a failure here only means the item comes again."""
    try:
        call(*args)
        return True
    except Exception as exc:  # noqa: BLE001
        log.warning("could not report inbound item %s: %s", args[0], exc)
        return False


def _take_failure(source, got) -> str:
    if not got.permanent:
        log.info("inbound item %s: %s (%s); tried again next time", got.id, got.reason, got.detail)
        return "transient"
    known = _known(got.id) if got.id else []
    if not known:
        name = quarantine_bytes(got.payload, f"{got.id or 'svarinn'}.bin") if got.payload else None
        meta = {"raw": got.raw_metadata} if got.raw_metadata else {}
        title = (got.raw_metadata or {}).get("tittel") if isinstance(got.raw_metadata, dict) else None
        if isinstance(title, str):
            meta["title"] = title[:300]
        try:
            key = f"svarinn:{got.id or 'no-id-' + uuid.uuid4().hex}:failed"  # no id: nothing to repeat it by
            record_refusal(InboxSource.SVARINN, f"{got.id or 'svarinn'}.pdf", got.reason,
                     f"{reason_text(got.reason)} {got.detail}".strip(), name, key,
                     svarinn_id=got.id or None, meta=meta)
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
    if not got.id:
        return "refused"
    _tell(source.fail, got.id, f"{got.reason}: {got.detail}"[:1000], True)
    return "refused"


def _take_message(source, message) -> str:
    known = _known(message.id)
    if known:
        # Stored before; the acknowledgement was lost (a crash, the network). Say it again.
        if all(i.source_key and i.source_key.endswith(":failed") for i in known):
            _tell(source.fail, message.id, known[0].reject_reason[:1000], True)
        else:
            _tell(source.acknowledge, message.id)
        return "repeated"
    meta = message_meta(message)
    quarantined: list[str] = []
    try:
        for n, file in enumerate(message.files):
            key = f"svarinn:{message.id}:{n}"
            fields = {"svarinn_id": message.id, "meta": {**meta, "file": file.filename}}
            sha = hashlib.sha256(file.data).hexdigest()
            duplicate = duplicate_of(sha)
            if duplicate is not None:
                quarantined.append(quarantine_bytes(file.data, file.filename))
                record_refusal(InboxSource.SVARINN, file.filename, "duplicate",
                         f"{reason_text('duplicate')} ({duplicate})", quarantined[-1], key, **fields)
                continue
            try:
                stored = store_upload(io.BytesIO(file.data), file.filename, previews=True)
            except UploadRejected as exc:
                quarantined.append(quarantine_bytes(file.data, file.filename))
                record_refusal(InboxSource.SVARINN, file.filename, exc.reason, str(exc.message), quarantined[-1], key,
                         **fields)
                continue
            mark_received(InboxItem(source=InboxSource.SVARINN, status=InboxStatus.NEW, filename=stored.filename,
                                source_key=key, sha256=stored.sha256, page_count=stored.page_count,
                                arrived_at=utcnow(), **fields))
        db.session.commit()
    except Exception:
        db.session.rollback()
        for name in quarantined:
            (quarantine_dir() / name).unlink(missing_ok=True)
        raise
    _tell(source.acknowledge, message.id)
    return "received"
