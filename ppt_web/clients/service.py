"""Clients and organisations: registration, changes and the client folder."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple, cast

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from .. import form_tokens, validation
from ..activity import service as activity
from ..archive import outbox
from ..auth import scope
from ..auth.access import require
from ..errors import Conflict, Invalid, NotFound
from ..extensions import commit_keeping_loaded, db
from ..models import (
    Case,
    CaseCategory,
    CaseKind,
    CaseStatus,
    Client,
    JournalPost,
    Organisation,
    PostStatus,
    PostType,
    User,
)
from ..models.domain import client_name, masked_national_id
from ..search import service as search
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


def _unique_national_id(actor: User, number: str, except_id: int | None = None) -> None:
    """Refuse a national id another client has. The refusal tells the actor that the number is a client's,
    which the uniqueness cannot hide; when that client is outside what the actor may see, the refusal is
    logged as a look-up of it (committed, as a 404 is: a handler cannot probe numbers unseen)."""
    query = select(Client.id).where(Client.national_id == number)
    if except_id:
        query = query.where(Client.id != except_id)
    existing = db.session.scalar(query.limit(1))
    if existing is None:
        return
    if db.session.scalar(select(Client.id).where(Client.id == existing, scope.client_clause(actor))) is None:
        activity.record_refusal("not_found", "client", existing,
                                "a national identity number typed that belongs to a client outside the user's cases",
                                actor=actor)
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
    _unique_national_id(actor, number)
    client = Client(national_id=number, birth_date=validation.birth_date(number))
    if not actor.can("register_case"):
        data.handler_id = actor.id  # a handler registers clients for themselves
    _apply(client, data, actor)
    db.session.add(client)
    try:
        db.session.flush()
    except IntegrityError:  # registered by someone else a moment ago
        db.session.rollback()
        _unique_national_id(actor, number)
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
        _unique_national_id(actor, number, client.id)
        client.national_id, client.birth_date = number, validation.birth_date(number)
    if not actor.can("register_case"):
        data.handler_id = client.handler_id
    _apply(client, data, actor)
    activity.record("client_updated", actor=actor, object_type="client", object_id=client.id,
                    before=before, after=_snapshot(client))
    try:
        db.session.flush()  # the text cleaned (ppt_web/text.py) before the jobs that failed on it go again
    except IntegrityError:  # the new national id registered for another client a moment ago
        db.session.rollback()
        _unique_national_id(actor, number, client_id)
        raise
    outbox.restart_unarchivable(list(db.session.scalars(select(Case).where(Case.client_id == client.id))), actor)
    db.session.commit()
    return client


class FolderClient(NamedTuple):
    """The client's facts as the folder shows them (one row, with their school's and handler's names)."""

    id: int
    given_name: str
    family_name: str
    national_id: str
    birth_date: date
    address: str
    postal_code: str
    city: str
    organisation_name: str | None
    handler_name: str | None

    @property
    def name(self) -> str:
        return client_name(self.given_name, self.family_name)

    @property
    def masked_id(self) -> str:
        return masked_national_id(self.national_id)


class FolderCase(NamedTuple):
    """A case as the folder's list of cases shows it."""

    id: int
    number: str
    title: str
    category: CaseCategory | None
    kind: CaseKind
    status: CaseStatus
    handler_name: str | None


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


# The folder's statements, made once per process (building them was a good part of a folder's time): the
# client's and the actor's ids are parameters, the scope's clauses made on search.ActorParameter.
_FOLDER_STATEMENTS: dict[tuple[bool, str], tuple] = {}


def _folder_statements(actor: User) -> tuple:
    """(the client's facts, its cases, their posts) for an actor who sees all or only their own."""
    key = (scope.sees_all(actor), db.session.get_bind().dialect.name)
    kept = _FOLDER_STATEMENTS.get(key)
    if kept is None:
        placeholder = cast(User, search.ActorParameter(actor))
        facts = (select(Client.id, Client.given_name, Client.family_name, Client.national_id, Client.birth_date,
                        Client.address, Client.postal_code, Client.city, Organisation.name, User.full_name)
                 .outerjoin(Organisation, Organisation.id == Client.organisation_id)
                 .outerjoin(User, User.id == Client.handler_id)
                 .where(Client.id == bindparam("client_id"), scope.client_clause(placeholder)))
        cases = (select(Case.id, Case.number, Case.title, Case.category, Case.kind, Case.status, User.full_name)
                 .outerjoin(User, User.id == Case.handler_id)
                 .where(Case.client_id == bindparam("client_id"), scope.case_clause(placeholder))
                 .order_by(Case.opened_on.desc(), Case.id.desc()))  # the id: cases of one day in a fixed order
        kept = _FOLDER_STATEMENTS[key] = (facts, cases, _posts_statement(key[1] == "postgresql"))
    return kept


def _posts_statement(postgresql: bool):
    """The posts of the cases `case_ids` (an expanding parameter), newest document first, with their case
    numbers and their correspondents' names (search's subquery: in the order they were added)."""
    return (select(JournalPost.id, JournalPost.document_date, JournalPost.post_type, JournalPost.title,
                   JournalPost.registered_after_downtime, JournalPost.case_id, Case.number, JournalPost.status,
                   search.correspondent_names(JournalPost.id, postgresql))
            .join(Case, JournalPost.case_id == Case.id)
            .where(JournalPost.case_id.in_(bindparam("case_ids", expanding=True)))
            .order_by(JournalPost.document_date.desc().nulls_last(), JournalPost.id.desc()))


def open_folder(actor: User, client_id: int) -> tuple[FolderClient, list[FolderCase], list[FolderPost]]:
    """The client folder: reading it is logged, as health-grade personal data. Rows, not ORM objects
    (loading them was most of the folder's time), read on the session's connection after the log row is
    committed."""
    facts, cases_q, posts_q = _folder_statements(actor)
    values = {"client_id": client_id, "actor_id": actor.id}
    row = db.session.connection().execute(facts, values).first()
    if row is None:
        raise NotFound(object_type="client", object_id=client_id)  # as scope.client
    activity.record("client_folder_opened", actor=actor, object_type="client", object_id=client_id)
    commit_keeping_loaded()
    connection = db.session.connection()
    cases = [FolderCase(*case) for case in connection.execute(cases_q, values)]
    posts = [FolderPost(*post) for post in connection.execute(posts_q, {"case_ids": [c.id for c in cases]})] \
        if cases else []
    return FolderClient(*row), cases, posts




def folder_posts(case_ids: list[int]) -> list[FolderPost]:
    """The posts of these cases, newest document first, as rows: one query, their correspondents' names
    joined in it."""
    if not case_ids:
        return []
    statement = _posts_statement(db.session.get_bind().dialect.name == "postgresql")
    return [FolderPost(*row) for row in db.session.connection().execute(statement, {"case_ids": case_ids})]


def reveal_national_id(actor: User, client_id: int) -> str:
    """Show the full number to someone who may see the client; logged."""
    client = scope.client(actor, client_id)
    activity.record("national_id_shown", actor=actor, object_type="client", object_id=client.id)
    db.session.commit()
    return client.national_id
