"""Post registration: the inbox, the quality checklist, transfer to a client, split, reject,
and paper originals (docs/decisions.md, "Post registration transfer checklist"). Every rule is here.
"""
from __future__ import annotations

import calendar
import re
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import CursorResult, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from .. import validation
from ..activity import service as activity
from ..auth import scope
from ..auth.access import require
from ..cases import posts
from ..cases.service import CaseData, add_case
from ..clock import utcnow
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..files import preview
from ..files.pdfcheck import split_pdf
from ..files.storage import UploadRejected, file_path, store_upload
from ..i18n import OSLO
from ..models import (
    Case,
    CaseStatus,
    Client,
    Document,
    InboxItem,
    InboxSource,
    InboxStatus,
    Organisation,
    PaperOriginal,
    ScanChecklist,
    User,
)
from ..models.base import rare
from ..models.domain import DEFAULT_LEGAL_BASIS
from ..models.inbox import OPEN_STATUSES
from ..notify import link as notify_link
from ..notify import notify
from ..transaction import transaction
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


def inbox(actor: User, which: str = "open", before_id: int | None = None, limit: int = INBOX_PAGE) -> dict:
    """Newest first, a page at a time: {"items", "next_before"} (the id to pass as before_id for the
    next older page, or None). "open": waiting for someone, including refusals nobody has looked at
    yet. Paged by (arrival time, id), so page 100 of ten years' mail costs what page 1 costs."""
    require(actor, "distribute_mail")
    query = select(InboxItem).order_by(InboxItem.arrived_at.desc(), InboxItem.id.desc()).limit(limit + 1)
    if before_id:
        cursor = db.session.get(InboxItem, before_id)
        if cursor is not None:
            query = query.where(or_(InboxItem.arrived_at < cursor.arrived_at,
                                    and_(InboxItem.arrived_at == cursor.arrived_at, InboxItem.id < cursor.id)))
    if which == "open":
        query = query.where(_open_clause())
    elif which == "transferred":
        query = query.where(InboxItem.status == InboxStatus.TRANSFERRED)
    elif which == "rejected":
        query = query.where(InboxItem.status.in_((InboxStatus.REJECTED, InboxStatus.SYSTEM_REJECTED)))
    items = list(db.session.scalars(query))
    return {"items": items[:limit], "next_before": items[limit - 1].id if len(items) > limit else None}


def _open_clause():
    # One IN on the indexed status (a range of the waiting rows), then the refusal condition: the
    # OR form made SQLite read the whole inbox history, and so did the IN without rare().
    return and_(rare(InboxItem.status.in_(OPEN_STATUSES + (InboxStatus.SYSTEM_REJECTED,))),
                or_(InboxItem.status != InboxStatus.SYSTEM_REJECTED, InboxItem.rejected_by_id.is_(None)))


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


def _transition(item: InboxItem, to: InboxStatus | None, allowed: tuple[InboxStatus, ...], **values) -> None:
    """Change the status with one conditional UPDATE, or refuse: two colleagues at once, one wins.

    The UPDATE also takes the row lock (PostgreSQL) or the write lock (SQLite) for the rest of the
    transaction, so what the caller does next cannot interleave with another change of the item.
    to=None keeps the status (only the lock and the check are wanted).
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
            _transition(item, InboxStatus.IN_PROGRESS, (InboxStatus.NEW,), claimed_by_id=actor.id,
                        claimed_at=utcnow())
        except Conflict:
            return get_item(actor, item_id)  # a colleague opened it a moment earlier
        _log("inbox_claimed", actor, item)
        db.session.commit()
    return item


def take_over(actor: User, item_id: int) -> InboxItem:
    item = get_item(actor, item_id)
    before = item.claimed_by.username if item.claimed_by else None
    to = InboxStatus.IN_PROGRESS if item.status == InboxStatus.NEW else item.status
    _transition(item, to, OPEN_STATUSES, claimed_by_id=actor.id, claimed_at=utcnow())
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
    _transition(item, None, OPEN_STATUSES)
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
    _transition(item, InboxStatus.REJECTED, OPEN_STATUSES, reject_reason=text, rejected_by_id=actor.id,
                rejected_at=utcnow())
    _log("inbox_rejected", actor, item, detail=text[:500])
    db.session.commit()
    return item


def acknowledge_refusal(actor: User, item_id: int) -> InboxItem:
    """A refusal by the intake has been seen and dealt with: it leaves the open list."""
    item = get_item(actor, item_id)
    if item.rejected_by_id is not None:
        raise Conflict(_l("The item is not waiting any more."))
    _transition(item, InboxStatus.SYSTEM_REJECTED, (InboxStatus.SYSTEM_REJECTED,), rejected_by_id=actor.id)
    _log("inbox_refusal_seen", actor, item)
    db.session.commit()
    return item


# --- split ----------------------------------------------------------------------------------------

RANGE = re.compile(r"^\s*(\d{1,4})\s*(?:-\s*(\d{1,4})\s*)?$")


def parse_ranges(text: str, pages: int) -> list[tuple[int, int]]:
    """ "1-2, 3, 4-6" -> [(1, 2), (3, 3), (4, 6)]; every page exactly once, in order, so nothing is lost."""
    parts = [p for p in (text or "").split(",") if p.strip()]
    if len(parts) < 2:
        raise Invalid(_l("Give at least two page ranges, for example 1-2, 3-5."), field="ranges")
    ranges, expected = [], 1
    for part in parts:
        match = RANGE.match(part)
        if not match:
            raise Invalid(_l("Write page ranges like 1-2, 3, 4-6."), field="ranges")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if first != expected or last < first or last > pages:
            raise Invalid(_l("The ranges must follow each other and cover pages 1 to %(pages)s exactly once.",
                             pages=pages), field="ranges")
        ranges.append((first, last))
        expected = last + 1
    if expected != pages + 1:
        raise Invalid(_l("The ranges must follow each other and cover pages 1 to %(pages)s exactly once.",
                         pages=pages), field="ranges")
    return ranges


def split(actor: User, item_id: int, ranges_text: str) -> list[InboxItem]:
    """Divide a scanned batch into documents by page ranges; each part is an inbox item of its own."""
    item = get_item(actor, item_id)
    if not item.is_open or item.sha256 is None:
        raise Conflict(_l("The item is not waiting any more."))
    ranges = parse_ranges(ranges_text, item.page_count or 0)
    scratch = preview.scratch()
    parts: list[InboxItem] = []
    try:
        with transaction() as new_hashes:
            _split_into(actor, item, ranges, scratch, parts, new_hashes)
    except UploadRejected:
        raise Invalid(_l("The page ranges could not be cut from this file."), field="ranges") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return parts


def _split_into(actor: User, item: InboxItem, ranges: list[tuple[int, int]], scratch: Path, parts: list[InboxItem],
                new_hashes: list[str]) -> None:
    """split's work in its transaction: the parts are cut in the checking child and stored as new items."""
    # Claim first: a colleague's transfer or split of the same item now waits or is refused.
    _transition(item, InboxStatus.SPLIT, OPEN_STATUSES)
    assert item.sha256 is not None  # split refuses an item without a file
    files = split_pdf(file_path(item.sha256), ranges, scratch)
    stem = item.filename[:-4] if item.filename.lower().endswith(".pdf") else item.filename
    for (first, last), part_file in zip(ranges, files, strict=True):
        with part_file.open("rb") as stream:
            stored = store_upload(stream, f"{stem} ({first}-{last}).pdf", previews=True)
        new_hashes.append(stored.sha256)
        if stored.page_count != last - first + 1:
            raise Invalid(_l("The page ranges could not be cut from this file."), field="ranges")
        part = InboxItem(source=item.source, status=InboxStatus.NEW, filename=stored.filename,
                         sha256=stored.sha256, page_count=stored.page_count, arrived_at=item.arrived_at,
                         meta=dict(item.meta or {}), parent=item, first_page=first, last_page=last,
                         svarinn_id=item.svarinn_id)
        db.session.add(part)
        parts.append(part)
    db.session.flush()
    _log("inbox_split", actor, item, ranges=[list(r) for r in ranges], parts=[p.id for p in parts])


# --- transfer -------------------------------------------------------------------------------------

@dataclass
class TransferData:
    client_id: int | None = None
    case_id: int | None = None          # or None with new_case_category to open a case on the spot
    new_case_category: str = ""
    new_case_title: str = ""
    title: str = ""
    document_date: date | None = None
    received_on: date | None = None
    sender_name: str = ""
    sender_address: str = ""
    sender_organisation_id: int | None = None
    legal_basis: str = DEFAULT_LEGAL_BASIS
    hold_back: bool = False
    after_downtime: bool = False
    storage_place: str = ""


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def transfer(actor: User, item_id: int, data: TransferData) -> InboxItem:
    """Distribute an item to a client (and case) as an incoming post, finalized at once unless held back.

    One transaction: the post, its document, the archive job (through finalize), the paper
    original, the handler's notification and the item's new status commit together or not at all.
    """
    item = get_item(actor, item_id)
    require(actor, "journal", object_type="inbox_item", object_id=item.id)
    if not item.is_open or item.sha256 is None:
        raise Conflict(_l("The item is not waiting any more."))
    missing = [str(p) for p in item.check_points if p not in item.checked_points]
    if missing:
        raise Invalid(_l("Tick every point of the quality checklist first. Missing: %(points)s.",
                         points=", ".join(missing)), field="checks")
    if not data.client_id:
        raise Invalid(_l("Choose the client."), field="client_id")
    client = scope.client(actor, data.client_id)
    storage_place = " ".join((data.storage_place or "").split())[:200]
    if item.source == InboxSource.SCAN and not storage_place:
        raise Invalid(_l("Say where the paper original is kept."), field="storage_place")
    with transaction():
        # Only one colleague can transfer an item, and only while every point is still ticked: an
        # untick sets the status back to in progress in its own conditional UPDATE.
        _transition(item, InboxStatus.TRANSFERRED, (InboxStatus.CHECKED,), transferred_by_id=actor.id,
                    transferred_at=utcnow())
        case = _target_case(actor, client, data)
        post = posts.add_post(actor, case.id, posts.PostData(
            post_type="I", title=data.title, document_date=data.document_date,
            received_on=data.received_on or item.arrived_at.astimezone(OSLO).date(),
            registered_after_downtime=data.after_downtime, legal_basis=data.legal_basis,
            correspondents=[posts.CorrespondentData(name=data.sender_name, address=data.sender_address,
                                                    organisation_id=data.sender_organisation_id)]))
        document = Document(role="main", position=0, filename=item.filename, sha256=item.sha256)
        post.documents.append(document)
        db.session.flush()
        if data.hold_back:
            post.held_back = True
            missing_fields = posts.missing_for_finalize(post)
            if missing_fields:
                raise Invalid(_l("The post cannot be finalized yet. Missing: %(items)s.",
                                 items=", ".join(missing_fields)))
        else:
            posts.finalize_checked(actor, post.id)
        item.post, item.document = post, document
        if item.source == InboxSource.SCAN:
            _paper_original(item, document, storage_place, data.after_downtime)
        _log("inbox_transferred", actor, item, post=post.id, case=case.id, held_back=data.hold_back)
        _notify_transfer(actor, case, post, data.hold_back)
    return item


def _target_case(actor: User, client: Client, data: TransferData) -> Case:
    if data.case_id:
        case = scope.case(actor, data.case_id)
        if case.client_id != client.id:
            raise Invalid(_l("Choose a case of this client."), field="case_id")
        if case.status != CaseStatus.OPEN:
            raise Invalid(_l("The case is closed. Reopen it to register new posts."), field="case_id")
        return case
    if not data.new_case_category:
        raise Invalid(_l("Choose a case, or the category of a new case."), field="case_id")
    title = data.new_case_title.strip() or client.name
    return add_case(actor, CaseData(kind="person", title=title, category=data.new_case_category,
                                         client_id=client.id))


def _paper_original(item: InboxItem, document: Document, storage_place: str, downtime: bool) -> None:
    cfg = current_app.config
    scanned_on = item.arrived_at.astimezone(OSLO).date()
    months = int(cfg["PPT_DOWNTIME_PAPER_KEEP_MONTHS"] if downtime else cfg["PPT_PAPER_KEEP_MONTHS"])
    db.session.add(PaperOriginal(item=item, document=document, storage_place=storage_place, scanned_on=scanned_on,
                                 downtime_log=downtime, destroy_by=add_months(scanned_on, months)))


def _notify_transfer(actor: User, case: Case, post, held_back: bool) -> None:
    link = notify_link("cases.post", post_id=post.id)
    # The case's handler; the client's responsible handler too when that is someone else who can
    # open the case (a link that answers 404 helps nobody).
    told = [case.handler]
    if case.client and case.client.handler and case.client.handler not in told and \
            scope.may_see(case.client.handler, case):
        told.append(case.client.handler)
    for handler in told:
        if handler.id != actor.id and handler.active:
            notify(handler, _l("New document in %(case)s: %(title)s", case=case.number, title=post.title), link)
    if held_back:
        for leader in _leaders():
            if leader.id != actor.id:
                notify(leader, _l("A document is held back from access and waits for your decision: %(title)s",
                                  title=post.title), link)


def _leaders() -> list[User]:
    users = db.session.scalars(select(User).where(User.active.is_(True)))
    return [u for u in users if u.can("approve") and u.can("search_all")]


def open_cases(actor: User, client: Client) -> list[Case]:
    """The client's open cases the actor may see: where a transferred document can go."""
    return list(db.session.scalars(select(Case).where(
        Case.client_id == client.id, Case.status == CaseStatus.OPEN, scope.case_clause(actor))
        .order_by(Case.opened_on.desc(), Case.id.desc())))


def organisation_by_number(org_number: str) -> Organisation | None:
    """The sender of digital mail in the organisation register, to pre-fill the form."""
    return db.session.scalar(select(Organisation).where(Organisation.org_number == str(org_number)[:9]))


def document_checks(document_id: int) -> list[ScanChecklist]:
    """The checklist kept with a document that came through post registration (who ticked what, when)."""
    item = db.session.scalar(select(InboxItem).where(InboxItem.document_id == document_id))
    return list(item.checks) if item else []


# --- paper originals ------------------------------------------------------------------------------

def paper_originals(actor: User, due_only: bool = True, limit: int = 500) -> list[PaperOriginal]:
    require(actor, "distribute_mail")
    query = select(PaperOriginal).where(PaperOriginal.destroyed_at.is_(None)).order_by(
        PaperOriginal.destroy_by, PaperOriginal.id).limit(limit)
    if due_only:
        query = query.where(PaperOriginal.destroy_by <= validation.today())
    return list(db.session.scalars(query))


def confirm_destroyed(actor: User, original_id: int) -> PaperOriginal:
    """Record that a paper original was destroyed: who and when. Only when it is due."""
    require(actor, "distribute_mail", object_type="paper_original", object_id=original_id)
    original = db.session.get(PaperOriginal, original_id)
    if original is None:
        raise NotFound(object_type="paper_original", object_id=original_id)
    if original.destroyed_at is not None:
        raise Conflict(_l("The destruction is recorded already."))
    if original.destroy_by > validation.today():
        raise Conflict(_l("The paper original must be kept until %(day)s.", day=original.destroy_by.isoformat()))
    original.destroyed_at, original.destroyed_by = utcnow(), actor
    activity.record("paper_destroyed", actor=actor, object_type="paper_original", object_id=original.id,
                    after={"document": original.document_id, "storage_place": original.storage_place,
                           "destroy_by": original.destroy_by.isoformat()})
    db.session.commit()
    return original

