"""Live search over clients, cases and journal posts, scoped to what the actor may see.

Every condition is an equality or a prefix range on an indexed column. Counts stop at
COUNT_CAP ("500+"): a common word ("tilvising") matches tens of thousands of posts after some
years, and counting them all on every keystroke grew with the history.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import contains_eager, joinedload, lazyload, selectinload

from ..auth import scope
from ..extensions import db
from ..labels import CATEGORY_LABELS
from ..models import Case, CaseCategory, CaseStatus, Client, JournalPost, User

PER_PAGE = 25
COUNT_CAP = 500


def _count(query) -> int:
    """How many rows match, stopping past COUNT_CAP (shown as "500+")."""
    capped = query.options(lazyload("*")).order_by(None).limit(COUNT_CAP + 1).subquery()
    return db.session.scalar(select(func.count()).select_from(capped)) or 0


def _page(query, page: int, total: int | None = None) -> Pagination:
    """A page of results, with the capped count."""
    result = db.paginate(query, page=page, per_page=PER_PAGE, error_out=False, count=False)
    result.total = _count(query) if total is None else total
    return result


HIGH = "\U0010ffff"


def _prefix(column, text: str):
    return and_(column >= text, column < text + HIGH)


@dataclass
class Results:
    query: str
    clients: Pagination
    cases: Pagination
    posts: Pagination

    @property
    def empty(self) -> bool:
        return not (self.clients.total or self.cases.total or self.posts.total)

    @staticmethod
    def count_text(result) -> str:
        return f"{COUNT_CAP}+" if result.total > COUNT_CAP else str(result.total)


def _category_matches(text: str) -> list[CaseCategory]:
    return [c for c in CaseCategory
            if c.value.startswith(text) or str(CATEGORY_LABELS[c.value]).lower().startswith(text)]


def client_condition(text: str):
    """Clients by national id (6 digits or more, a prefix) or by a prefix of the name or family name."""
    digits = text.replace(" ", "")
    if digits.isdigit():
        return _prefix(Client.national_id, digits) if len(digits) >= 6 else Client.id == -1
    return or_(_prefix(Client.name_lower, text), _prefix(Client.family_lower, text))


def pick_clients(actor: User, query: str, limit: int = 10) -> list[Client]:
    """A short list of clients to choose from (post registration's "which client?")."""
    text = " ".join((query or "").split()).lower()[:100]
    if len(text) < 2:
        return []
    return list(db.session.scalars(select(Client).where(client_condition(text), scope.client_clause(actor))
                                   .options(joinedload(Client.handler)).order_by(Client.name_lower).limit(limit)))


def search(actor: User, query: str, page: int = 1) -> Results | None:
    text = " ".join((query or "").split()).lower()[:100]
    if len(text) < 2:
        return None
    page = max(page, 1)

    clients = _page(select(Client).where(client_condition(text), scope.client_clause(actor))
                    .options(joinedload(Client.handler)).order_by(Client.name_lower), page)

    case_conds = [_prefix(Case.number, text), _prefix(Case.title_lower, text)]
    categories = _category_matches(text)
    if categories:
        case_conds.append(Case.category.in_(categories))
    # The users table is small: matching handlers by username or name costs nothing.
    # Read first, so that every condition of the OR is an index lookup (a subquery in it made SQLite
    # read every case, newest first, whenever no handler matched).
    handler_ids = list(db.session.scalars(select(User.id).where(
        or_(_prefix(User.username, text), _prefix(func.lower(User.full_name), text)))))
    if handler_ids:
        case_conds.append(Case.handler_id.in_(handler_ids))
    for status, words in ((CaseStatus.OPEN, ("open", "open", "opne")),
                          (CaseStatus.CLOSED, ("closed", "avslutta", "avsluttet"))):
        if text in words:
            case_conds.append(Case.status == status)
    cases = _page(select(Case).where(or_(*case_conds), scope.case_clause(actor))
                  .options(joinedload(Case.handler)).order_by(Case.opened_on.desc(), Case.id.desc()), page)

    posts_q = (select(JournalPost).join(Case, JournalPost.case_id == Case.id).where(scope.case_clause(actor))
               .options(contains_eager(JournalPost.case), selectinload(JournalPost.correspondents))
               .order_by(JournalPost.document_date.desc().nulls_last(), JournalPost.id.desc()))
    title = _prefix(JournalPost.title_lower, text)
    try:
        day = datetime.strptime(text, "%d.%m.%Y").date()
    except ValueError:
        day = None
    if day is not None:
        posts = _page(posts_q.where(or_(title, JournalPost.document_date == day)), page)
    else:
        total = _count(posts_q.where(title))
        if total > COUNT_CAP:
            # A common word ("tilvising") matches much of ten years of posts: sorting every match
            # for one page grew with the history. Walk the posts newest first instead (the date
            # index) and test each title, which stops after a page; the same prefix in a form no
            # index serves keeps the planner off the title index.
            title = func.substr(JournalPost.title_lower, 1, len(text)) == text
        posts = _page(posts_q.where(title), page, total)
    return Results(query=query, clients=clients, cases=cases, posts=posts)
