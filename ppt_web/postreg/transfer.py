"""Transfer (Overfør til klientmappe): a checked inbox item becomes a finalized incoming post in a client's case."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from .. import addresses
from ..auth import scope
from ..auth.access import require
from ..cases import posts
from ..cases.service import CaseData, add_case
from ..clock import OSLO, utcnow
from ..errors import Conflict, Invalid
from ..extensions import db
from ..models import (
    Case,
    CaseStatus,
    Client,
    Document,
    InboxItem,
    InboxSource,
    InboxStatus,
    Organisation,
    User,
)
from ..models.domain import DEFAULT_LEGAL_BASIS
from ..notify import link as notify_link
from ..notify import notify
from ..transaction import transaction
from . import paper, service
from .inbox import log_item as _log
from .service import get_item


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
    sender_address: str = ""  # street lines, one per line
    sender_postal_code: str = ""
    sender_city: str = ""
    sender_country: str = "NO"
    sender_organisation_id: int | None = None
    legal_basis: str = DEFAULT_LEGAL_BASIS
    hold_back: bool = False
    after_downtime: bool = False
    storage_place: str = ""


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
    sender = addresses.checked(data.sender_address, data.sender_postal_code, data.sender_city, data.sender_country,
                               prefix="sender_")
    if item.source == InboxSource.SCAN and not storage_place:
        raise Invalid(_l("Say where the paper original is kept."), field="storage_place")
    with transaction():
        # Only one colleague can transfer an item, and only while every point is still ticked: an
        # untick sets the status back to in progress in its own conditional UPDATE.
        service.transition(item, InboxStatus.TRANSFERRED, (InboxStatus.CHECKED,), transferred_by_id=actor.id,
                    transferred_at=utcnow())
        case = _target_case(actor, client, data)
        post = posts.add_post(actor, case.id, posts.PostData(
            post_type="I", title=data.title, document_date=data.document_date,
            received_on=data.received_on or item.arrived_at.astimezone(OSLO).date(),
            registered_after_downtime=data.after_downtime, legal_basis=data.legal_basis,
            correspondents=[posts.CorrespondentData(
                name=data.sender_name, organisation_id=data.sender_organisation_id,
                address="\n".join(sender.lines) if sender else "", postal_code=sender.postal_code if sender else "",
                city=sender.city if sender else "", country=sender.country if sender else "NO")]))
        # Mail whose held-back post was deleted as misregistered is held back again: the leader decides.
        data.hold_back = data.hold_back or item.hold_back_required
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
            paper.record_original(item, document, storage_place, data.after_downtime)
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
                                  title=post.title), notify_link("cases.hold_back_decision", post_id=post.id))


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
