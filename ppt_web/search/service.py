"""Live search over clients, cases and journal posts, scoped to what the actor may see.

Words match anywhere: every word of the query must start a word of a post's title, of a case's
number or title, or of a client's name ("spesial" finds "Sakkunnig vurdering spesialundervisning",
"00012" finds case 2024/00012), and a school's or kindergarten's name finds its children and their
cases ("dimna" finds the cases whose client goes to "Dimna skule 3"). The database keeps the word
index itself (migration 0017): FTS5 tables kept by triggers on SQLite, GIN indexes over
to_tsvector('simple', ...) on PostgreSQL; the engines differ only in the helpers below (`_match`,
`_matching_ids`, `_word_rows`, `_walk_condition`). Every other condition is an equality or a prefix
range on an indexed column. Counts stop at COUNT_CAP ("500+"): a common word ("tilvising") matches
tens of thousands of posts after some years, and counting them all on every keystroke grew with the
history.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from math import ceil

from sqlalchemy import and_, column, func, literal_column, or_, select, table, union
from sqlalchemy import text as text_sql
from sqlalchemy.orm import aliased, joinedload
from sqlalchemy.sql.expression import ColumnClause

from ..auth import scope
from ..extensions import db
from ..i18n import labels
from ..models import Case, CaseCategory, CaseStatus, Client, Correspondent, JournalPost, Organisation, User

PER_PAGE = 25
COUNT_CAP = 500


@dataclass
class Listed:
    """A page of one list, as rows (Core, not ORM objects: loading them was most of a search's time),
    with the capped count; pages as Flask-SQLAlchemy's Pagination counts them."""
    items: list
    page: int
    total: int
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return ceil(self.total / self.per_page) if self.total else 0

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def prev_num(self) -> int | None:
        return self.page - 1 if self.has_prev else None

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def next_num(self) -> int | None:
        return self.page + 1 if self.has_next else None


def _run(statement):
    """A Core statement on the session's connection (its transaction), past the ORM's execution path:
    the search only reads columns, and that path was a large part of its Python time."""
    return db.session.connection().execute(statement)


def _count(query) -> int:
    """How many rows match, stopping past COUNT_CAP (shown as "500+")."""
    capped = query.order_by(None).limit(COUNT_CAP + 1).subquery()
    return _run(select(func.count()).select_from(capped)).scalar() or 0


def _page(query, page: int, total: int | None = None) -> Listed:
    """A page of results (rows of `query`, a Core select of columns), with the capped count."""
    items = _run(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return Listed(items, page, _count(query) if total is None else total)


HIGH = "\U0010ffff"


def _prefix(column, text: str):
    return and_(column >= text, column < text + HIGH)


_WORD = re.compile(r"[^\W_]+")
_SIMPLE: ColumnClause = literal_column("'simple'")
# The words table on SQLite (0017), per model.
_WORDS_TABLE = {JournalPost: "journal_post_words", Case: "case_words", Client: "client_words"}
# What is not a letter or a digit in a lower-case title, for SQLite's GLOB (the walk below):
# ASCII, Latin-1 and Latin Extended-A letters, as the word index's tokenizer has them.
_NOT_ALNUM = "[^0-9a-z\u00aa\u00b5\u00ba\u00df-\u00f6\u00f8-\u017f]"


def words(text: str) -> list[str]:
    """The words of a query as the word index splits text: runs of letters and digits, lower case."""
    return _WORD.findall(text.lower())[:8]


def _postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _document(model, row):
    """PostgreSQL: the text searched for a row, exactly as the GIN index of 0017 is built."""
    if model is Case:
        number = func.replace(row.number, literal_column("'/'"), literal_column("' '"))
        return func.to_tsvector(_SIMPLE, number.op("||")(literal_column("' '")).op("||")(row.title_lower))
    text = row.title_lower if model is JournalPost else row.name_lower
    return func.to_tsvector(_SIMPLE, text)


_INDEXED: dict = {}


def _indexed(model) -> tuple:
    """PostgreSQL: (an alias of `model`, its indexed document), made once: a new alias and its columns
    cost more than a millisecond to build, per list and keystroke."""
    if model not in _INDEXED:
        row = aliased(model)
        _INDEXED[model] = (row, _document(model, row))
    return _INDEXED[model]


def _match(tokens: list[str]) -> str:
    """The index's query: every token starts a word."""
    if _postgresql():
        return " & ".join(f"'{t}':*" for t in tokens)
    return " ".join(f'"{t}"*' for t in tokens)


def _matching_ids(model, tokens: list[str]):
    """A subquery of the ids of the rows of `model` where every token starts a word. On PostgreSQL the
    one-letter tokens are tested inside it, on the rows the index found (outside, the planner read
    every post to test them first); on SQLite the caller tests them (the words table has no text)."""
    asked, short = _split(tokens)
    if _postgresql():
        row, document = _indexed(model)
        found = document.op("@@")(func.to_tsquery(_SIMPLE, _match(asked)))
        return select(row.id).where(found, *([_walk_condition(_columns(model, row), short)] if short else []))
    name = _WORDS_TABLE[model]
    return select(literal_column("rowid")).select_from(table(name)).where(
        literal_column(name).op("MATCH")(_match(asked)))


def _columns(model, row=None) -> list:
    """The searched columns of `model` (or of `row`, an alias of it), as the word index has them."""
    row = model if row is None else row
    if model is Client:
        return [row.name_lower]
    return [row.number, row.title_lower] if model is Case else [row.title_lower]


def _split(tokens: list[str]) -> tuple[list[str], list[str]]:
    """(the tokens the index is asked for, one-letter ones tested on its rows): "nora h" asks for
    "nora"; a one-letter prefix alone would read most of the index."""
    long = [t for t in tokens if len(t) > 1] or tokens
    return long, [t for t in tokens if t not in long]


def word_condition(model, text: str):
    """Rows of `model` where every word of `text` starts a word (through the word index)."""
    tokens = words(text)
    if not tokens:
        return model.id == -1
    condition = model.id.in_(_matching_ids(model, tokens))
    short = _split(tokens)[1]
    if short and not _postgresql():
        return and_(condition, _walk_condition(_columns(model), short))
    return condition


def _word_rows(query, model, tokens: list[str]):
    """`query` narrowed to rows where every token starts a word, read from the word index first: on
    SQLite a join the index drives (an IN (subquery) made it collect every match before the first row,
    which for "frå" is a fifth of all posts), on PostgreSQL a semi-join the planner picks."""
    if _postgresql():
        return query.where(model.id.in_(_matching_ids(model, tokens)))
    asked, short = _split(tokens)
    if short:
        query = query.where(_walk_condition(_columns(model), short))
    name = _WORDS_TABLE[model]
    words_table = table(name, column("rowid"))
    return query.join(words_table, words_table.c.rowid == model.id).where(
        literal_column(name).op("MATCH")(_match(asked)))


def _walk_condition(columns, tokens: list[str]):
    """Every token starts a word of one of `columns`, tested row by row with no index: for the walk
    newest first, which stops after a page (the word index answers the same rows; it is what counts)."""
    def starts_a_word(col, token):
        if _postgresql():
            return col.op("~")(f"(^|[^[:alnum:]]){token}")
        return or_(col.op("GLOB")(f"{token}*"), col.op("GLOB")(f"*{_NOT_ALNUM}{token}*"))
    return and_(*[or_(*[starts_a_word(col, t) for col in columns]) for t in tokens])


@dataclass
class Results:
    query: str
    clients: Listed
    cases: Listed
    posts: Listed

    @property
    def empty(self) -> bool:
        return not (self.clients.total or self.cases.total or self.posts.total)

    @staticmethod
    def count_text(result) -> str:
        return f"{COUNT_CAP}+" if result.total > COUNT_CAP else str(result.total)


def _category_matches(text: str) -> list[CaseCategory]:
    shown = labels()["category_labels"]  # translated once per process and language
    return [c for c in CaseCategory if c.value.startswith(text) or shown[c.value].lower().startswith(text)]


def client_condition(text: str):
    """Clients by national id (6 digits or more, a prefix) or by words starting words of the name."""
    digits = text.replace(" ", "")
    if digits.isdigit():
        return _prefix(Client.national_id, digits) if len(digits) >= 6 else Client.id == -1
    return word_condition(Client, text)


def organisation_ids(text: str) -> list[int]:
    """The organisations (schools, kindergartens, other services) whose name has every word of `text`
    starting a word of it ("dimna" finds "Dimna skule 3"). Organisations are a few hundred: the
    names holding the longest word are read and tested here, with no word index."""
    tokens = words(text)
    if not tokens or text.replace(" ", "").isdigit():  # a case number or a national id, not a name
        return []
    longest = max(tokens, key=len)
    rows = _run(select(Organisation.id, Organisation.name_lower)
                .where(Organisation.name_lower.contains(longest, autoescape=True)))
    return [org_id for org_id, name in rows
            if all(any(w.startswith(t) for w in _WORD.findall(name)) for t in tokens)]


def _at_organisations(org_ids: list[int]):
    """Cases of these organisations: the case's own (a system case) or its client's (the child's school)."""
    return or_(Case.organisation_id.in_(org_ids),
               Case.client_id.in_(select(Client.id).where(Client.organisation_id.in_(org_ids))))


def pick_clients(actor: User, query: str, limit: int = 10) -> list[Client]:
    """A short list of clients to choose from (post registration's "which client?")."""
    text = " ".join((query or "").split()).lower()[:100]
    if len(text) < 2:
        return []
    return list(db.session.scalars(select(Client).where(_clients_found(actor, text)[0], scope.client_clause(actor))
                                   .options(joinedload(Client.handler)).order_by(Client.name_lower).limit(limit)))


def _clients_found(actor: User, text: str, org_ids: list[int] | None = None) -> tuple:
    """(the condition to list the clients by, how many match up to the cap): their ids when they are
    few, so that no planner walks every client by name testing each against the word index. With
    `org_ids`, the clients of those organisations (a school's children) are found too."""
    condition = client_condition(text)
    if org_ids:
        condition = or_(condition, Client.organisation_id.in_(org_ids))
    ids = _first_ids(select(Client.id).where(condition, scope.client_clause(actor)))
    return (condition if len(ids) > COUNT_CAP else Client.id.in_(ids)), len(ids)


def _first_ids(query) -> list[int]:
    """The ids a query of ids finds, stopping past COUNT_CAP: the count, and the rows to page through."""
    return list(_run(query.limit(COUNT_CAP + 1)).scalars())


def _first_ids_of(queries: list) -> list[int]:
    """The ids any of `queries` (of ids) finds, each read up to past COUNT_CAP, in one statement."""
    limited = [query.limit(COUNT_CAP + 1).subquery() for query in queries]
    return _first_ids(union(*[select(sub.c.id) for sub in limited]))


_CASE_NUMBER = re.compile(r"\d{4}/\d*")


def search(actor: User, query: str, page: int = 1) -> Results | None:
    text = " ".join((query or "").split()).lower()[:100]
    if len(text) < 2:
        return None
    page = max(page, 1)
    tokens = words(text)
    if _postgresql():
        # The planner guesses a prefix matches a fixed share of the rows and starts parallel workers
        # for the word index's bitmap scan: ~10 ms each time, for what is most often a handful of rows.
        # For this transaction only (the request's).
        db.session.execute(text_sql("SET LOCAL max_parallel_workers_per_gather = 0"))
    # Each list first reads the ids of its matches (up to the cap) from the word index, then a page of
    # rows by those ids: the planners never guess how many rows a word has. Past the cap, a list walks
    # its order's index and tests each row (_walk_condition), which stops after a page.

    # Rows of what the lists show, each list in the order and with the joins of its former ORM query.
    clients_q = (select(Client.id, Client.given_name, Client.family_name, Client.national_id,
                        User.full_name.label("handler_name"))
                 .outerjoin(User, User.id == Client.handler_id).where(scope.client_clause(actor))
                 .order_by(Client.name_lower))
    # A school's or kindergarten's name finds its children and their cases.
    org_ids = organisation_ids(text)
    condition, total = _clients_found(actor, text, org_ids)
    clients = _page(clients_q.where(condition), page, total)

    # A case number's shape ("2026/6") is a prefix of the number: the word index would read every case
    # of the year for "2026".
    by_words = bool(tokens) and not _CASE_NUMBER.fullmatch(text)
    case_conds = [_prefix(Case.number, text)]
    categories = _category_matches(text)
    if categories:
        case_conds.append(Case.category.in_(categories))
    # The users table is small: matching handlers by username or name costs nothing.
    # Read first, so that every condition of the OR is an index lookup (a subquery in it made SQLite
    # read every case, newest first, whenever no handler matched).
    handler_ids = list(_run(select(User.id).where(
        or_(_prefix(User.username, text), _prefix(func.lower(User.full_name), text)))).scalars())
    if handler_ids:
        case_conds.append(Case.handler_id.in_(handler_ids))
    if org_ids:
        case_conds.append(_at_organisations(org_ids))
    for status, names in ((CaseStatus.OPEN, ("open", "open", "opne")),
                          (CaseStatus.CLOSED, ("closed", "avslutta", "avsluttet"))):
        if text in names:
            case_conds.append(Case.status == status)
    cases_q = (select(Case.id, Case.number, Case.title, Case.category, Case.kind, Case.status,
                      User.full_name.label("handler_name"))
               .outerjoin(User, User.id == Case.handler_id).where(scope.case_clause(actor))
               .order_by(Case.opened_on.desc(), Case.id.desc()))
    # Each way a case matches is read on its own, up to the cap, and the ids joined: one OR made
    # SQLite collect every match of every branch ("tilvising" is a word of thousands of titles and
    # the referral category's label) before the first id.
    case_ids = select(Case.id).where(scope.case_clause(actor))
    branches = [case_ids.where(condition) for condition in case_conds]
    if by_words:
        branches.append(_word_rows(case_ids, Case, tokens))
    ids = _first_ids_of(branches)
    if len(ids) > COUNT_CAP:
        # A common word (a fifth of the cases have "frå"): walk the cases newest first, as posts do.
        if by_words:
            case_conds.append(_walk_condition([Case.number, Case.title_lower], tokens))
        cases = _page(cases_q.where(or_(*case_conds)), page, len(ids))
    else:
        cases = _page(cases_q.where(Case.id.in_(ids)), page, len(ids))

    posts_q = (select(JournalPost.id, JournalPost.document_date, JournalPost.post_type, JournalPost.title,
                      JournalPost.registered_after_downtime, JournalPost.case_id, Case.number.label("case_number"),
                      JournalPost.status)
               .join(Case, JournalPost.case_id == Case.id).where(scope.case_clause(actor))
               .order_by(JournalPost.document_date.desc().nulls_last(), JournalPost.id.desc()))
    post_ids = select(JournalPost.id).join(Case, JournalPost.case_id == Case.id).where(scope.case_clause(actor))
    try:
        day = datetime.strptime(text, "%d.%m.%Y").date()
    except ValueError:
        day = None
    if day is not None:
        posts = _page(posts_q.where(or_(word_condition(JournalPost, text), JournalPost.document_date == day)), page)
    elif not tokens:
        posts = _page(posts_q.where(JournalPost.id == -1), page)
    else:
        ids = _first_ids(_word_rows(post_ids, JournalPost, tokens))
        if len(ids) > COUNT_CAP:
            # A common word ("tilvising") matches much of ten years of posts: sorting every match
            # for one page grew with the history. Walk the posts newest first instead (the date
            # index) and test each title, which stops after a page.
            posts = _page(posts_q.where(_walk_condition([JournalPost.title_lower], tokens)), page, len(ids))
        else:
            posts = _page(posts_q.where(JournalPost.id.in_(ids)), page, len(ids))
    posts.items = _with_correspondents(posts.items)
    return Results(query=query, clients=clients, cases=cases, posts=posts)


@dataclass
class PostRow:
    """A journal post as the search lists it: its row and its correspondents' names, joined."""
    id: int
    document_date: object
    post_type: object
    title: str
    registered_after_downtime: bool
    case_id: int
    case_number: str
    status: object
    correspondents: str


def _with_correspondents(rows: list) -> list[PostRow]:
    """The page's posts with their correspondents' names (one statement for the page, in their order)."""
    if not rows:
        return []
    names: dict[int, list[str]] = {}
    for post_id, name in _run(select(Correspondent.post_id, Correspondent.name)
                              .where(Correspondent.post_id.in_([row.id for row in rows]))
                              .order_by(Correspondent.id)):
        names.setdefault(post_id, []).append(name)
    return [PostRow(**row._mapping, correspondents=", ".join(names.get(row.id, ()))) for row in rows]
