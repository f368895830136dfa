"""Post registration: the inbox, the quality checklist, transfer to a client, split, reject,
and paper originals (docs/decisions.md, "Post registration transfer checklist"). Every rule is here.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, cast

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, CursorResult, Select, and_, func, or_, select, update
from sqlalchemy import case as sql_case
from sqlalchemy.exc import IntegrityError

from .. import validation
from ..auth import scope
from ..auth.access import require
from ..clock import utcnow
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..models import (
    InboxItem,
    InboxSource,
    InboxStatus,
    ScanChecklist,
    User,
)
from ..models.base import rare
from ..models.inbox import OPEN_STATUSES
from .inbox import log_item as _log

CHECK_LABELS = {
    1: _l("All received documents are scanned and archived."),
    2: _l("All pages of each document are present."),
    3: _l("The scan is legible and of good enough quality."),
    4: _l("The archived document and the registered data agree (document date, title, sender)."),
}

FILTERS = ("open", "transferred", "rejected", "all")


def get_item(actor: User, item_id: int) -> InboxItem:
    require(actor, "distribute_mail", object_type="inbox_item", object_id=item_id)
    item = db.session.get(InboxItem, item_id)
    if item is None:
        raise NotFound(object_type="inbox_item", object_id=item_id)
    return item


INBOX_PAGE = 100
_item = InboxItem.__table__  # the inbox's conditions on the table's columns (see inbox_query)


def inbox(actor: User, which: str = "open", before_id: int | None = None, limit: int = INBOX_PAGE) -> dict:
    """Newest first, a page at a time: {"items", "next_before"} (the id to pass as before_id for the
    next older page, or None). "open": waiting for someone, including refusals nobody has looked at
    yet. Paged by (arrival time, id), so page 100 of ten years' mail costs what page 1 costs."""
    require(actor, "distribute_mail")
    return inbox_page(list(db.session.scalars(inbox_query(select(InboxItem), which, before_id, limit))), limit)


def inbox_query(query: Select, which: str, before_id: int | None, limit: int) -> Select:
    """The inbox's filter, order and paging on a select of items (whole items, or the list's columns).
    On the table's columns: a select of columns stays a Core one (no ORM result path for its rows)."""
    query = query.order_by(_item.c.arrived_at.desc(), _item.c.id.desc()).limit(limit + 1)
    if before_id:
        cursor = db.session.execute(select(_item.c.arrived_at, _item.c.id).where(_item.c.id == before_id)).first()
        if cursor is not None:
            query = query.where(or_(_item.c.arrived_at < cursor.arrived_at,
                                    and_(_item.c.arrived_at == cursor.arrived_at, _item.c.id < cursor.id)))
    if which == "open":
        query = query.where(_open_clause())
    elif which == "transferred":
        query = query.where(_item.c.status == InboxStatus.TRANSFERRED)
    elif which == "rejected":
        query = query.where(_item.c.status.in_((InboxStatus.REJECTED, InboxStatus.SYSTEM_REJECTED)))
    return query


def inbox_page(items: list, limit: int) -> dict:
    """One page of the rows inbox_query fetched (one more than the page, to know if another follows)."""
    return {"items": items[:limit], "next_before": items[limit - 1].id if len(items) > limit else None}


class InboxRow(NamedTuple):
    """What the inbox list shows of an item (read-only: no ORM object per row)."""

    id: int
    source: InboxSource
    status: InboxStatus
    arrived_at: datetime
    filename: str
    page_count: int | None
    meta: dict | None
    reject_code: str | None
    reject_reason: str
    claimed_by: str | None  # the full name of who has it, None when nobody
    title: str  # what the row's link says: the title digital mail came with, else the file name
    sender_name: str | None  # the sender digital mail names, if any


# The list's columns, built once (with the alias of the user table, it cost more to build than to run).
_claimer = User.__table__.alias("claimer")
_ROWS = (select(_item.c.id, _item.c.source, _item.c.status, _item.c.arrived_at, _item.c.filename, _item.c.page_count,
                _item.c.meta, _item.c.reject_code, _item.c.reject_reason, _claimer.c.full_name)
         .select_from(_item.outerjoin(_claimer, _item.c.claimed_by_id == _claimer.c.id)))


def _inbox_row(row: Any) -> InboxRow:
    meta = row.meta or {}
    return InboxRow._make((*row, meta.get("title") or row.filename, meta.get("sender_name")))


def inbox_rows(actor: User, which: str = "open", before_id: int | None = None, limit: int | None = None) -> dict:
    """The page of inbox() (the same filters, order, paging and access rule)
    as rows shaped for the list, in one query: {"items", "next_before"}."""
    require(actor, "distribute_mail")
    limit = limit or INBOX_PAGE
    query = None if before_id else _FIRST_PAGES.get((which, limit))  # the newest page: the one that polls
    rows = db.session.execute(query if query is not None else inbox_query(_ROWS, which, before_id, limit))
    return inbox_page([_inbox_row(row) for row in rows], limit)


def _open_clause():
    # One IN on the indexed status (a range of the waiting rows), then the refusal condition: the
    # OR form made SQLite read the whole inbox history, and so did the IN without rare().
    return and_(rare(_item.c.status.in_(OPEN_STATUSES + (InboxStatus.SYSTEM_REJECTED,))),
                or_(_item.c.status != InboxStatus.SYSTEM_REJECTED, _item.c.rejected_by_id.is_(None)))


# Each filter's newest page, built once: the live inbox asks for it every two seconds per open tab.
_FIRST_PAGES = {(which, INBOX_PAGE): inbox_query(_ROWS, which, None, INBOX_PAGE) for which in FILTERS}


def item_for_reading(actor: User, item_id: int) -> InboxItem:
    """An item whose file or page images are read. Once transferred, the document's own access rules
    apply (scope, 404 and a log row otherwise); the PDF itself is logged by the caller."""
    item = get_item(actor, item_id)
    if item.document_id is not None:
        scope.document(actor, item.document_id)
    return item


def log_file_opened(actor: User, item: InboxItem) -> None:
    _log("inbox_file_opened", actor, item)
    db.session.commit()


def waiting_count() -> int:
    """Items waiting for someone, for the menu: the inbox's open filter, counted on the status index."""
    return db.session.scalar(select(func.count(InboxItem.id)).where(_open_clause())) or 0


def transition(item: InboxItem, to: InboxStatus | ColumnElement | None, allowed: tuple[InboxStatus, ...],
               **values) -> None:
    """Change the status with one conditional UPDATE, or refuse: two colleagues at once, one wins.

    The UPDATE also takes the row lock (PostgreSQL) or the write lock (SQLite) for the rest of the
    transaction, so what the caller does next cannot interleave with another change of the item.
    to=None keeps the status (only the lock and the check are wanted); an SQL expression sets it from the row.
    """
    changed = cast(CursorResult[Any], db.session.execute(
        update(InboxItem).where(InboxItem.id == item.id, InboxItem.status.in_(allowed))
        .values(status=InboxItem.status if to is None else to, **values)))
    if changed.rowcount != 1:
        db.session.rollback()
        raise Conflict(_l("The item is not waiting any more."))
    db.session.refresh(item)


def open_item(actor: User, item_id: int) -> InboxItem:
    """Open an item; a new one becomes "in progress" by the actor, so colleagues see who has it."""
    item = get_item(actor, item_id)
    if item.status == InboxStatus.NEW:
        try:
            transition(item, InboxStatus.IN_PROGRESS, (InboxStatus.NEW,), claimed_by_id=actor.id,
                        claimed_at=utcnow())
        except Conflict:
            return get_item(actor, item_id)  # a colleague opened it a moment earlier
        _log("inbox_claimed", actor, item)
        db.session.commit()
    return item


def take_over(actor: User, item_id: int) -> InboxItem:
    item = get_item(actor, item_id)
    before = item.claimed_by.username if item.claimed_by else None
    # A new item becomes "in progress"; any other keeps its status as it is then, not as read above (a
    # colleague's last tick committed meanwhile made it "checked", and must stay so).
    to = sql_case((InboxItem.status == InboxStatus.NEW, InboxStatus.IN_PROGRESS), else_=InboxItem.status)
    transition(item, to, OPEN_STATUSES, claimed_by_id=actor.id, claimed_at=utcnow())
    _log("inbox_claimed", actor, item, detail=f"from {before}" if before else "")
    db.session.commit()
    return item


def set_check(actor: User, item_id: int, point: int, checked: bool) -> InboxItem:
    """Tick or untick one point of the checklist; who and when are kept, and logged."""
    item = get_item(actor, item_id)
    if point not in item.check_points:
        raise Invalid(_l("That check does not apply to this item."), field="point")
    # Lock the item first (it must still be open), then change the checks, then set the status from
    # the checks as they are now: a colleague's tick committed meanwhile is counted.
    transition(item, None, OPEN_STATUSES)
    if item.claimed_by_id is None:
        item.claimed_by_id, item.claimed_at = actor.id, utcnow()
    existing = db.session.scalar(select(ScanChecklist).where(ScanChecklist.item_id == item.id,
                                                             ScanChecklist.point == point))
    if checked == (existing is not None):
        db.session.rollback()
        return get_item(actor, item_id)
    if checked:
        db.session.add(ScanChecklist(item_id=item.id, point=point, checked_by=actor, checked_at=utcnow()))
    else:
        db.session.delete(existing)
    db.session.flush()
    db.session.expire(item, ["checks"])
    item.status = InboxStatus.CHECKED if item.all_checked else InboxStatus.IN_PROGRESS
    _log("inbox_checked" if checked else "inbox_unchecked", actor, item, point=point)
    try:
        db.session.commit()
    except IntegrityError:  # the same point ticked by two people at once: it is ticked
        db.session.rollback()
    return get_item(actor, item_id)


def reject(actor: User, item_id: int, reason: str) -> InboxItem:
    """Not ours, or not mail to keep: kept with the reason, never deleted."""
    item = get_item(actor, item_id)
    text = validation.required_text(reason, "reason")[:2000]
    transition(item, InboxStatus.REJECTED, OPEN_STATUSES, reject_reason=text, rejected_by_id=actor.id,
                rejected_at=utcnow())
    _log("inbox_rejected", actor, item, detail=text[:500])
    db.session.commit()
    return item


def acknowledge_refusal(actor: User, item_id: int) -> InboxItem:
    """A refusal by the intake has been seen and dealt with: it leaves the open list."""
    item = get_item(actor, item_id)
    if item.rejected_by_id is not None:
        raise Conflict(_l("The item is not waiting any more."))
    transition(item, InboxStatus.SYSTEM_REJECTED, (InboxStatus.SYSTEM_REJECTED,), rejected_by_id=actor.id)
    _log("inbox_refusal_seen", actor, item)
    db.session.commit()
    return item


def document_checks(document_id: int) -> list[ScanChecklist]:
    """The checklist kept with a document that came through post registration (who ticked what, when)."""
    item = db.session.scalar(select(InboxItem).where(InboxItem.document_id == document_id))
    return list(item.checks) if item else []
