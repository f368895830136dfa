"""Clients and organisations: registration, changes and the client folder."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from .. import form_tokens, validation
from ..activity import service as activity
from ..archive import outbox
from ..auth import scope
from ..auth.access import require
from ..errors import Conflict, Invalid
from ..extensions import db
from ..models import Case, Client, Correspondent, JournalPost, PostStatus, PostType, User
from ..transaction import transaction
from . import organisations


@dataclass
class ClientData:
    national_id: str
    given_name: str
    family_name: str
    address: str = ""
    postal_code: str = ""
    city: str = ""
    organisation_id: int | None = None
    handler_id: int | None = None


def _snapshot(client: Client) -> dict:
    """What the activity log keeps: never the national id itself."""
    return {
        "national_id": client.masked_id,
        "name": client.name,
        "address": " ".join(x for x in (client.address, client.postal_code, client.city) if x),
        "organisation": client.organisation.name if client.organisation else None,
        "handler": client.handler.username if client.handler else None,
    }


def _handler(handler_id: int | None, actor: User) -> User:
    handler = db.session.get(User, handler_id) if handler_id else actor
    if handler is None or not handler.active:
        raise Invalid(_l("Choose an active case handler."), field="handler_id")
    return handler


def _apply(client: Client, data: ClientData, actor: User) -> None:
    client.given_name = validation.required_text(data.given_name, "given_name", 120)
    client.family_name = validation.required_text(data.family_name, "family_name", 120)
    client.name_lower = f"{client.given_name} {client.family_name}".lower()
    client.family_lower = client.family_name.lower()
    client.address = " ".join((data.address or "").split())[:300]
    client.postal_code = "".join((data.postal_code or "").split())[:10]
    client.city = " ".join((data.city or "").split())[:100]
    client.organisation = organisations.get_organisation(data.organisation_id)
    client.handler = _handler(data.handler_id, actor)


def _unique_national_id(number: str, except_id: int | None = None) -> None:
    query = select(func.count()).select_from(Client).where(Client.national_id == number)
    if except_id:
        query = query.where(Client.id != except_id)
    if db.session.scalar(query):
        raise Conflict(_l("A client with this national identity number is registered already. "
                          "Search for the client, or ask the administrative consultant."), field="national_id")


def register_client(actor: User, data: ClientData, token: str | None = None) -> Client:
    """Register a client; handlers register their own, registrars anyone's (see note in README).
    Once per form token (form_tokens.once)."""
    with transaction():
        return form_tokens.once(actor, token, "client", lambda: _add_client(actor, data))


def _add_client(actor: User, data: ClientData) -> Client:
    require(actor, "register_case", "journal")
    number = validation.national_id(data.national_id)
    _unique_national_id(number)
    client = Client(national_id=number, birth_date=validation.birth_date(number))
    if not actor.can("register_case"):
        data.handler_id = actor.id  # a handler registers clients for themselves
    _apply(client, data, actor)
    db.session.add(client)
    try:
        db.session.flush()
    except IntegrityError:  # registered by someone else a moment ago
        db.session.rollback()
        _unique_national_id(number)
        raise
    activity.record("client_created", actor=actor, object_type="client", object_id=client.id, after=_snapshot(client))
    return client


def update_client(actor: User, client_id: int, data: ClientData) -> Client:
    """Change a client's details; the national id only with register_case."""
    client = scope.client(actor, client_id)
    require(actor, "register_case", "journal")
    before = _snapshot(client)
    typed = (data.national_id or "").strip()
    number = validation.national_id(typed) if typed else client.national_id  # empty: unchanged
    if number != client.national_id:
        require(actor, "register_case", object_type="client", object_id=client.id)
        _unique_national_id(number, client.id)
        client.national_id, client.birth_date = number, validation.birth_date(number)
    if not actor.can("register_case"):
        data.handler_id = client.handler_id
    _apply(client, data, actor)
    activity.record("client_updated", actor=actor, object_type="client", object_id=client.id,
                    before=before, after=_snapshot(client))
    db.session.flush()  # the text cleaned (ppt_web/text.py) before the jobs that failed on it go again
    outbox.restart_unarchivable(list(db.session.scalars(select(Case).where(Case.client_id == client.id))), actor)
    db.session.commit()
    return client


class FolderPost(NamedTuple):
    """A journal post as the client folder's list shows it (read-only: no ORM object per row)."""

    id: int
    document_date: date | None
    post_type: PostType
    title: str
    registered_after_downtime: bool
    case_id: int
    case_number: str
    status: PostStatus
    correspondents: str  # their names, in the order they were added, joined by ", "


def open_folder(actor: User, client_id: int) -> tuple[Client, list[Case], list[FolderPost]]:
    """The client folder: reading it is logged, as health-grade personal data."""
    client = scope.client(actor, client_id)
    # Log (and commit) first: a commit after loading would expire every case, and the template would
    # then reload each one by one.
    activity.record("client_folder_opened", actor=actor, object_type="client", object_id=client.id)
    db.session.commit()
    # The commit expired the client: load it again with what the folder shows of it, in one query.
    client = db.session.scalars(select(Client).where(Client.id == client_id).execution_options(populate_existing=True)
                                .options(joinedload(Client.organisation), joinedload(Client.handler))).one()
    cases = list(db.session.scalars(
        select(Case).where(Case.client_id == client.id, scope.case_clause(actor))
        .options(joinedload(Case.handler)).order_by(Case.opened_on.desc())
    ))
    return client, cases, folder_posts([c.id for c in cases])


def folder_posts(case_ids: list[int]) -> list[FolderPost]:
    """The posts of these cases, newest document first, as rows: one query for the posts with their
    case numbers, one for their correspondents' names."""
    if not case_ids:
        return []
    rows = db.session.execute(
        select(JournalPost.id, JournalPost.document_date, JournalPost.post_type, JournalPost.title,
               JournalPost.registered_after_downtime, JournalPost.case_id, Case.number, JournalPost.status)
        .join(Case, JournalPost.case_id == Case.id).where(JournalPost.case_id.in_(case_ids))
        .order_by(JournalPost.document_date.desc().nulls_last(), JournalPost.id.desc())).all()
    names: dict[int, list[str]] = {}
    for post_id, name in db.session.execute(
            select(Correspondent.post_id, Correspondent.name).join(JournalPost, Correspondent.post_id == JournalPost.id)
            .where(JournalPost.case_id.in_(case_ids)).order_by(Correspondent.id)):
        names.setdefault(post_id, []).append(name)
    return [FolderPost(*row, ", ".join(names.get(row[0], ()))) for row in rows]


def reveal_national_id(actor: User, client_id: int) -> str:
    """Show the full number to someone who may see the client; logged."""
    client = scope.client(actor, client_id)
    activity.record("national_id_shown", actor=actor, object_type="client", object_id=client.id)
    db.session.commit()
    return client.national_id
