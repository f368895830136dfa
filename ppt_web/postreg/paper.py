"""Paper originals of scanned mail: where they are kept, when they are destroyed, and the confirmation."""
from __future__ import annotations

import calendar
from datetime import date

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..activity import service as activity
from ..auth.access import require
from ..clock import OSLO, today, utcnow
from ..errors import Conflict, NotFound
from ..extensions import db
from ..models import (
    Document,
    InboxItem,
    PaperOriginal,
    User,
)


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))




def record_original(item: InboxItem, document: Document, storage_place: str, downtime: bool) -> None:
    cfg = current_app.config
    scanned_on = item.arrived_at.astimezone(OSLO).date()
    months = int(cfg["PPT_DOWNTIME_PAPER_KEEP_MONTHS"] if downtime else cfg["PPT_PAPER_KEEP_MONTHS"])
    db.session.add(PaperOriginal(item=item, document=document, storage_place=storage_place, scanned_on=scanned_on,
                                 downtime_log=downtime, destroy_by=add_months(scanned_on, months)))





def paper_originals(actor: User, due_only: bool = True, limit: int = 500) -> list[PaperOriginal]:
    require(actor, "distribute_mail")
    query = select(PaperOriginal).where(PaperOriginal.destroyed_at.is_(None)).order_by(
        PaperOriginal.destroy_by, PaperOriginal.id).limit(limit)
    if due_only:
        query = query.where(PaperOriginal.destroy_by <= today())
    return list(db.session.scalars(query))


def confirm_destroyed(actor: User, original_id: int) -> PaperOriginal:
    """Record that a paper original was destroyed: who and when. Only when it is due."""
    require(actor, "distribute_mail", object_type="paper_original", object_id=original_id)
    original = db.session.get(PaperOriginal, original_id)
    if original is None:
        raise NotFound(object_type="paper_original", object_id=original_id)
    if original.destroyed_at is not None:
        raise Conflict(_l("The destruction is recorded already."))
    if original.destroy_by > today():
        raise Conflict(_l("The paper original must be kept until %(day)s.", day=original.destroy_by.isoformat()))
    original.destroyed_at, original.destroyed_by = utcnow(), actor
    activity.record("paper_destroyed", actor=actor, object_type="paper_original", object_id=original.id,
                    after={"document": original.document_id, "storage_place": original.storage_place,
                           "destroy_by": original.destroy_by.isoformat()})
    db.session.commit()
    return original
