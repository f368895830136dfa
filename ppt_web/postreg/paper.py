"""Paper originals of scanned mail: where they are kept, when they are destroyed, and the confirmation."""
from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta

from flask_babel import lazy_gettext as _l
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from .. import runtime_settings
from ..activity import service as activity
from ..auth.access import require
from ..clock import OSLO, today, utcnow
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..models import (
    Document,
    InboxItem,
    JournalPost,
    PaperOriginal,
    User,
)
from ..transaction import transaction


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))




def record_original(item: InboxItem, document: Document, storage_place: str, downtime: bool) -> None:
    """The paper original of scanned mail filed on a post. Mail filed again (its first post deleted as
    misregistered) has its record already: it names the new post's document; kept paper is where the
    secretary says now, and kept at least as long as either filing says; destroyed paper stays destroyed."""
    scanned_on = item.arrived_at.astimezone(OSLO).date()
    months = int(runtime_settings.value("paper.downtime_keep_months" if downtime else "paper.keep_months"))
    destroy_by = add_months(scanned_on, months)
    kept = db.session.scalar(select(PaperOriginal).where(PaperOriginal.item_id == item.id))
    if kept is None:
        db.session.add(PaperOriginal(item=item, document=document, storage_place=storage_place,
                                     scanned_on=scanned_on, downtime_log=downtime, destroy_by=destroy_by))
        return
    kept.document = document
    if kept.destroyed_at is None:
        kept.storage_place, kept.downtime_log = storage_place, kept.downtime_log or downtime
        kept.destroy_by = max(kept.destroy_by, destroy_by)





PER_PAGE = 50


def _shown():
    """What a row shows: the post (its number needs the case) and who destroyed it, loaded with the list."""
    return (selectinload(PaperOriginal.document).joinedload(Document.post).joinedload(JournalPost.case),
            joinedload(PaperOriginal.destroyed_by))


def paper_originals(actor: User, due_only: bool = True, limit: int = 500) -> list[PaperOriginal]:
    require(actor, "distribute_mail")
    query = select(PaperOriginal).where(PaperOriginal.destroyed_at.is_(None)).order_by(
        PaperOriginal.destroy_by, PaperOriginal.id).options(*_shown()).limit(limit)
    if due_only:
        query = query.where(PaperOriginal.destroy_by <= today())
    return list(db.session.scalars(query))


def destroyed_register(actor: User, date_from: date | None = None, date_to: date | None = None,
                       page: int = 1) -> Pagination:
    """The register of destroyed originals, newest destruction first: what, who and when. `date_from` and
    `date_to` (days in Europe/Oslo, both included) narrow it to a period; a page at a time."""
    require(actor, "distribute_mail")
    query = select(PaperOriginal).where(PaperOriginal.destroyed_at.is_not(None))
    if date_from is not None:
        query = query.where(PaperOriginal.destroyed_at >= datetime.combine(date_from, time(0), OSLO))
    if date_to is not None:
        query = query.where(PaperOriginal.destroyed_at < datetime.combine(date_to + timedelta(days=1), time(0), OSLO))
    query = query.options(*_shown()).order_by(PaperOriginal.destroyed_at.desc(), PaperOriginal.id.desc())
    return db.paginate(query, page=max(page, 1), per_page=PER_PAGE, error_out=False)


def confirm_destroyed(actor: User, original_id: int, confirmed: bool = True) -> PaperOriginal:
    """Record that a paper original was destroyed: who and when. Only when it is due, and only when the
    person confirms that the paper is destroyed (the page's checkbox: `confirmed`)."""
    require(actor, "distribute_mail", object_type="paper_original", object_id=original_id)
    with transaction():
        original = db.session.get(PaperOriginal, original_id)
        if original is None:
            raise NotFound(object_type="paper_original", object_id=original_id)
        if original.destroyed_at is not None:
            raise Conflict(_l("The destruction is recorded already."))
        if original.destroy_by > today():
            raise Conflict(_l("The paper original must be kept until %(day)s.",
                              day=original.destroy_by.strftime("%d.%m.%Y")))
        if not confirmed:
            raise Invalid(_l("Tick the box to confirm that the paper original is destroyed."))
        original.destroyed_at, original.destroyed_by = utcnow(), actor
        activity.record("paper_destroyed", actor=actor, object_type="paper_original", object_id=original.id,
                        after={"document": original.document_id, "storage_place": original.storage_place,
                               "destroy_by": original.destroy_by.isoformat()})
    return original
