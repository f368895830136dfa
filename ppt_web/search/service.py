"""Live search over clients, cases and journal posts, scoped to what the actor may see.

Words match anywhere: every word of the query must start a word of a post's title, of a case's
number or title, or of a client's name ("spesial" finds "Sakkunnig vurdering spesialundervisning",
"00012" finds case 2024/00012), and a school's or kindergarten's name finds its children and their
cases ("dimna" finds the cases whose client goes to "Dimna skule 3"). The database keeps the word
index itself (migration 0017): FTS5 tables kept by triggers on SQLite, GIN indexes over
to_tsvector('simple', ...) on PostgreSQL; the engines differ only in the helpers below (`_match`,
`_pattern_values`, `_matching_ids`, `_word_rows`, `_walk_condition`, `correspondent_names`, the look-ups'
`_PARALLEL_OFF`). Every other condition is an equality or a prefix
range on an indexed column. Counts stop at COUNT_CAP ("500+"): a common word ("tilvising") matches
tens of thousands of posts after some years, and counting them all on every keystroke grew with the
history.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from math import ceil
from typing import cast

from sqlalchemy import (
    BindParameter,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
    union,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import aliased, joinedload
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import ColumnClause, UnaryExpression

from ..auth import scope
from ..extensions import db
from ..i18n import labels
from ..models import Case, CaseCategory, CaseStatus, Client, Correspondent, JournalPost, Organisation, User

PER_PAGE = 25
COUNT_CAP = 500
LAST_PAGE = 100_000  # a page asked for past it is that page (empty): its offset must fit the databases' integers


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


def _run(statement, params: dict | None = None):
    """A Core statement on the session's connection (its transaction), past the ORM's execution path:
    the search only reads columns, and that path was a large part of its Python time."""
    return db.session.connection().execute(statement, params or {})


HIGH = "\U0010ffff"
_WORD = re.compile(r"[^\W_]+")
_SIMPLE: ColumnClause = literal_column("'simple'")
# The words table on SQLite (0017), per model.
_WORDS_TABLE = {JournalPost: "journal_post_words", Case: "case_words", Client: "client_words"}
# What is not a letter or a digit in a lower-case title, for SQLite's GLOB (the walk below):
# ASCII, Latin-1 and Latin Extended-A letters, as the word index's tokenizer has them.
_NOT_ALNUM = "[^0-9a-z\u00aa\u00b5\u00ba\u00df-\u00f6\u00f8-\u017f]"
_CASE_NUMBER = re.compile(r"\d{4}/\d*")
_DAY = re.compile(r"\d{1,2}\. ?\d{1,2}\.\d{4}")  # what strptime's "%d.%m.%Y" may read (it is slow to say no)


def words(text: str) -> list[str]:
    """The words of a query as the word index splits text: runs of letters and digits, lower case."""
    return _WORD.findall(text.lower())[:8]


def _postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


# -- what a query asks, and its values as the statements' parameters ---------------------------------
#
# The statements are made once per shape of query (which conditions it has, how many words; see
# _Shape) and kept per process: building them, with their subqueries and aliases, was most of a
# search's time. Every value of a query (its words, prefixes, a date, the organisations and handlers
# looked up) is a named parameter, given at execution (_values).

@dataclass(frozen=True)
class _Query:
    text: str  # lower case, spaces collapsed
    tokens: tuple[str, ...]  # its words (words())
    asked: tuple[str, ...]  # the words the index is asked for
    short: tuple[str, ...]  # one-letter words tested on the index's rows ("nora h" asks for "nora")
    digits: str  # the text without spaces, when it is only digits (a national id), else ""
    day: object  # a date (dd.mm.yyyy) or None


_HYPHENED_ID = re.compile(r"\d{6}-\d{5}")


def _query(text: str) -> _Query:
    tokens = tuple(words(text))
    asked = tuple(t for t in tokens if len(t) > 1) or tokens
    digits = text.replace(" ", "")
    if _HYPHENED_ID.fullmatch(digits):  # a national id as it is often written: 040413-50364
        digits = digits.replace("-", "")
    day = None
    if _DAY.fullmatch(text):
        try:
            day = datetime.strptime(text, "%d.%m.%Y").date()
        except ValueError:
            pass
    return _Query(text, tokens, asked, tuple(t for t in tokens if t not in asked),
                  digits if digits.isdigit() else "", day)


def _match(tokens, postgresql: bool) -> str:
    """The index's query: every token starts a word."""
    if postgresql:
        return " & ".join(f"'{t}':*" for t in tokens)
    return " ".join(f'"{t}"*' for t in tokens)


def _pattern_values(key: str, tokens, postgresql: bool) -> dict:
    """The patterns of _starts_a_word for each token, as parameters named `key` and its number."""
    values = {}
    for n, token in enumerate(tokens):
        if postgresql:
            values[f"{key}{n}"] = f"(^|[^[:alnum:]]){token}"
        else:
            values[f"{key}{n}a"], values[f"{key}{n}b"] = f"{token}*", f"*{_NOT_ALNUM}{token}*"
    return values


def _values(q: _Query, postgresql: bool) -> dict:
    values = {"match": _match(q.asked, postgresql), "text": q.text, "text_high": q.text + HIGH,
              "digits": q.digits, "digits_high": q.digits + HIGH, "day": q.day, "offset": 0}
    values.update(_pattern_values("s", q.short, postgresql))
    values.update(_pattern_values("w", q.tokens, postgresql))
    return values


def _prefix(column, key: str):
    """`column` starts with the parameter `key` (its `key`_high is the same text and the highest character)."""
    return and_(column >= bindparam(key), column < bindparam(f"{key}_high"))


def _document(model, row):
    """PostgreSQL: the text searched for a row, exactly as the GIN index of 0017 is built."""
    if model is Case:
        number = func.replace(row.number, literal_column("'/'"), literal_column("' '"))
        return func.to_tsvector(_SIMPLE, number.op("||")(literal_column("' '")).op("||")(row.title_lower))
    text = row.title_lower if model is JournalPost else row.name_lower
    return func.to_tsvector(_SIMPLE, text)


_INDEXED: dict = {}


def _indexed(model) -> tuple:
    """PostgreSQL: (an alias of `model`, its indexed document), made once."""
    if model not in _INDEXED:
        row = aliased(model)
        _INDEXED[model] = (row, _document(model, row))
    return _INDEXED[model]


def _columns(model, row=None) -> list:
    """The searched columns of `model` (or of `row`, an alias of it), as the word index has them."""
    row = model if row is None else row
    if model is Client:
        return [row.name_lower]
    return [row.number, row.title_lower] if model is Case else [row.title_lower]


def _walk_condition(columns, key: str, count: int, postgresql: bool):
    """Every token (the parameters `key`0 ... of _pattern_values) starts a word of one of `columns`,
    tested row by row with no index: for the walk newest first, which stops after a page (the word
    index answers the same rows; it is what counts)."""
    def starts_a_word(col, name):
        if postgresql:
            return col.op("~")(bindparam(name))
        return or_(col.op("GLOB")(_unplanned(f"{name}a")), col.op("GLOB")(_unplanned(f"{name}b")))
    return and_(*[or_(*[starts_a_word(col, f"{key}{n}") for col in columns]) for n in range(count)])


def _unplanned(name: str):
    """SQLite: the parameter `name` as a GLOB pattern the planner does not read (`+?`, the same text). A
    pattern that is a bare parameter may serve the LIKE/GLOB index optimisation, so SQLite prepares the
    whole statement again each time it is bound: ~0.2 ms per list statement, most of a small search's SQL
    time. None of these patterns could use an index (each is ORed with one that starts with a wildcard)."""
    return UnaryExpression(bindparam(name), operator=operators.custom_op("+"))


def _matching_ids(model, shape: _Shape):
    """A subquery of the ids of the rows of `model` where every token starts a word. On PostgreSQL the
    one-letter tokens are tested inside it, on the rows the index found (outside, the planner read
    every post to test them first); on SQLite the caller tests them (the words table has no text)."""
    if shape.postgresql:
        row, document = _indexed(model)
        found = document.op("@@")(func.to_tsquery(_SIMPLE, bindparam("match")))
        short = [_walk_condition(_columns(model, row), "s", shape.short, True)] if shape.short else []
        return select(row.id).where(found, *short)
    name = _WORDS_TABLE[model]
    return select(literal_column("rowid")).select_from(table(name)).where(
        literal_column(name).op("MATCH")(bindparam("match")))


def _word_condition(model, shape: _Shape):
    """Rows of `model` where every word of the query starts a word (through the word index)."""
    if not shape.words:
        return model.id == -1
    condition = model.id.in_(_matching_ids(model, shape))
    if shape.short and not shape.postgresql:
        return and_(condition, _walk_condition(_columns(model), "s", shape.short, False))
    return condition


def _word_rows(query, model, shape: _Shape):
    """`query` narrowed to rows where every word starts a word, read from the word index first: on
    SQLite a join the index drives (an IN (subquery) made it collect every match before the first row,
    which for "frå" is a fifth of all posts), on PostgreSQL a semi-join the planner picks."""
    if shape.postgresql:
        return query.where(model.id.in_(_matching_ids(model, shape)))
    if shape.short:
        query = query.where(_walk_condition(_columns(model), "s", shape.short, False))
    name = _WORDS_TABLE[model]
    words_table = table(name, column("rowid"))
    return query.join(words_table, words_table.c.rowid == model.id).where(
        literal_column(name).op("MATCH")(bindparam("match")))


def _client_condition(shape: _Shape):
    """Clients by national id (6 digits or more, a prefix) or by words starting words of the name."""
    if shape.national_id is not None:
        return _prefix(Client.national_id, "digits") if shape.national_id else Client.id == -1
    return _word_condition(Client, shape)


@dataclass(frozen=True)
class _Shape:
    """What makes one search's statements differ from another's (their values aside)."""
    postgresql: bool
    sees_all: bool  # search_all (scope.py's clauses: true); else the actor's id is the parameter `actor_id`
    cap: int  # COUNT_CAP
    words: int  # how many words (0: none)
    short: int  # how many of them are one-letter words tested on the index's rows
    national_id: bool | None  # digits only: a national id prefix (6 digits or more) or nothing; None: words
    by_words: bool  # cases by words too (not for a case number's shape, "2026/6")
    categories: bool
    handlers: bool
    organisations: bool
    status: CaseStatus | None  # "open", "avslutta", ...
    day: bool  # a date: the posts of that day too


def _shape(actor: User, q: _Query, organisations: list, handlers: list, categories: list) -> _Shape:
    status = None
    for value, names in ((CaseStatus.OPEN, ("open", "opne")), (CaseStatus.CLOSED, ("closed", "avslutta", "avsluttet"))):
        if q.text in names:
            status = value
    return _Shape(postgresql=_postgresql(), sees_all=scope.sees_all(actor), cap=COUNT_CAP,
                  words=len(q.tokens), short=len(q.short),
                  national_id=(len(q.digits) >= 6) if q.digits else None,
                  by_words=bool(q.tokens) and not _CASE_NUMBER.fullmatch(q.text),
                  categories=bool(categories), handlers=bool(handlers), organisations=bool(organisations),
                  status=status, day=q.day is not None)


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


_CATEGORY_NAMES: dict[int, tuple[dict, list]] = {}  # per language's labels: (those labels, [(category, names)])


def _category_matches(text: str) -> list[CaseCategory]:
    shown = labels()["category_labels"]  # translated once per process and language
    kept = _CATEGORY_NAMES.get(id(shown))
    if kept is None or kept[0] is not shown:
        kept = _CATEGORY_NAMES[id(shown)] = (shown, [(c, (c.value, shown[c.value].lower())) for c in CaseCategory])
    return [category for category, names in kept[1] if names[0].startswith(text) or names[1].startswith(text)]


def _names_orgs(text: str, tokens) -> bool:
    """Whether the query may name an organisation: words, and not a case number or a national id."""
    compact = text.replace(" ", "")
    return bool(tokens) and not compact.isdigit() and not _HYPHENED_ID.fullmatch(compact)


_ORGANISATIONS: Select = select(literal_column("'o'").label("kind"), Organisation.id, Organisation.name_lower).where(
    Organisation.name_lower.contains(bindparam("longest")))  # a word holds no LIKE wildcard: no escape
_HANDLERS: Select = select(literal_column("'u'").label("kind"), User.id, literal_column("''").label("name_lower")) \
    .where(or_(_prefix(User.username, "text"), _prefix(func.lower(User.full_name), "text")))
# PostgreSQL: the planner guesses a prefix matches a fixed share of the rows and starts parallel workers for
# the word index's bitmap scan: ~10 ms each time, for what is most often a handful of rows. Turned off for
# this transaction only (the request's), by a row of the look-ups (SET LOCAL was a statement of its own).
_PARALLEL_OFF: Select = select(literal_column("'p'").label("kind"), literal_column("0").label("id"),
                               func.set_config("max_parallel_workers_per_gather", "0", True).label("name_lower"))
_LOOKUPS = {(orgs, postgresql): union_all(*([_ORGANISATIONS] if orgs else []), _HANDLERS,
                                          *([_PARALLEL_OFF] if postgresql else []))
            for orgs in (False, True) for postgresql in (False, True)}


def _orgs_named(rows, tokens) -> list[int]:
    """The organisations of `rows` (id, lower-case name) whose name has every token starting a word of it."""
    return [org_id for org_id, name in rows if all(any(w.startswith(t) for w in _WORD.findall(name)) for t in tokens)]


def organisation_ids(text: str) -> list[int]:
    """The organisations (schools, kindergartens, other services) whose name has every word of `text`
    starting a word of it ("dimna" finds "Dimna skule 3"). Organisations are a few hundred: the
    names holding the longest word are read and tested here, with no word index."""
    tokens = words(text)
    if not _names_orgs(text, tokens):  # a case number or a national id, not a name
        return []
    rows = _run(select(_ORGANISATIONS.subquery()), {"longest": max(tokens, key=len)})
    return _orgs_named([(row.id, row.name_lower) for row in rows], tokens)


def _lookups(q: _Query, postgresql: bool) -> tuple[list[int], list[int]]:
    """(the organisations the query names, the handlers whose username or name it starts), in one
    statement: both tables are small, and each is an index lookup or a short scan."""
    orgs = _names_orgs(q.text, q.tokens)
    rows = _run(_LOOKUPS[orgs, postgresql], {"longest": max(q.tokens, key=len) if orgs else "", "text": q.text,
                                             "text_high": q.text + HIGH}).all()
    named = _orgs_named([(r[1], r[2]) for r in rows if r[0] == "o"], q.tokens) if orgs else []
    return named, [r[1] for r in rows if r[0] == "u"]


def _at_organisations():
    """Cases of the organisations (the parameter `orgs`): the case's own (a system case) or its client's
    (the child's school)."""
    orgs = bindparam("orgs", expanding=True)
    return or_(Case.organisation_id.in_(orgs),
               Case.client_id.in_(select(Client.id).where(Client.organisation_id.in_(orgs))))


class ActorParameter:
    """The actor as scope.py's clauses read them, with their id the parameter `actor_id`: one kept statement
    serves every user who sees as much (the id is given at execution, as the query's values are)."""

    def __init__(self, actor: User):
        self.id: BindParameter[int] = bindparam("actor_id", type_=Integer)
        self._actor = actor

    def can(self, code: str) -> bool:
        return self._actor.can(code)


@dataclass
class _Statements:
    clients: object
    client_ids: object
    cases: object
    case_ids: object
    posts: object
    post_ids: object


_STATEMENTS: dict[_Shape, _Statements] = {}
_KEPT = 500  # shapes kept per process (a few dozen in use): past it they are made again


def _statements(shape: _Shape, actor: User) -> _Statements:
    kept = _STATEMENTS.get(shape)
    if kept is None:
        if len(_STATEMENTS) >= _KEPT:
            _STATEMENTS.clear()
        kept = _STATEMENTS[shape] = _build(shape, actor)
    return kept


def _build(shape: _Shape, actor: User) -> _Statements:
    """The three lists' statements for queries of this shape (each list in the order and with the joins
    of its former ORM query), scoped as scope.py scopes the actor (their id a parameter)."""
    placeholder = cast(User, ActorParameter(actor))
    client_scope, case_scope = scope.client_clause(placeholder), scope.case_clause(placeholder)
    # Clients: a school's or kindergarten's name finds its children too.
    clients_q = (select(Client.id, Client.given_name, Client.family_name, Client.national_id,
                        User.full_name.label("handler_name"))
                 .outerjoin(User, User.id == Client.handler_id).where(client_scope)
                 .order_by(Client.name_lower, Client.id))  # the id: ties in a fixed order, page after page
    condition = _client_condition(shape)
    if shape.organisations:
        condition = or_(condition, Client.organisation_id.in_(bindparam("orgs", expanding=True)))
    client_ids = select(Client.id).where(condition, client_scope)

    # Cases. A case number's shape ("2026/6") is a prefix of the number: the word index would read every
    # case of the year for "2026". Handlers are matched first (_lookups), so that every condition of the
    # OR is an index lookup (a subquery in it made SQLite read every case, newest first, whenever no
    # handler matched).
    case_conds = [_prefix(Case.number, "text")]
    if shape.categories:
        case_conds.append(Case.category.in_(bindparam("categories", expanding=True)))
    if shape.handlers:
        case_conds.append(Case.handler_id.in_(bindparam("handlers", expanding=True)))
    if shape.organisations:
        case_conds.append(_at_organisations())
    if shape.status is not None:
        case_conds.append(Case.status == shape.status)
    cases_q = (select(Case.id, Case.number, Case.title, Case.category, Case.kind, Case.status,
                      User.full_name.label("handler_name"))
               .outerjoin(User, User.id == Case.handler_id).where(case_scope)
               .order_by(Case.opened_on.desc(), Case.id.desc()))
    # Each way a case matches is read on its own, up to the cap, and the ids joined: one OR made SQLite
    # collect every match of every branch ("tilvising" is a word of thousands of titles and the
    # referral category's label) before the first id.
    any_case = select(Case.id).where(case_scope)
    branches = [any_case.where(condition) for condition in case_conds]
    if shape.by_words:
        branches.append(_word_rows(any_case, Case, shape))
    limited = [branch.limit(shape.cap + 1).subquery() for branch in branches]
    case_ids = select(union(*[select(sub.c.id) for sub in limited]).subquery().c.id)
    # Past the cap (a fifth of the cases have "frå"): the cases walked newest first, as posts are.
    walked = case_conds + ([_walk_condition([Case.number, Case.title_lower], "w", shape.words, shape.postgresql)]
                           if shape.by_words else [])

    posts_q = (select(JournalPost.id, JournalPost.document_date, JournalPost.post_type, JournalPost.title,
                      JournalPost.registered_after_downtime, JournalPost.case_id, Case.number.label("case_number"),
                      JournalPost.status)
               .join(Case, JournalPost.case_id == Case.id).where(case_scope)
               .order_by(JournalPost.document_date.desc().nulls_last(), JournalPost.id.desc()))
    any_post = select(JournalPost.id).join(Case, JournalPost.case_id == Case.id).where(case_scope)
    if shape.day:
        dated = or_(_word_condition(JournalPost, shape), JournalPost.document_date == bindparam("day"))
        post_ids, past_cap = any_post.where(dated), dated
    elif not shape.words:
        post_ids, past_cap = None, None
    else:
        # A common word ("tilvising") matches much of ten years of posts: sorting every match for one
        # page grew with the history. Past the cap the posts are walked newest first (the date index)
        # and each title tested, which stops after a page.
        post_ids = _word_rows(any_post, JournalPost, shape)
        past_cap = _walk_condition([JournalPost.title_lower], "w", shape.words, shape.postgresql)
    posts = None
    if post_ids is not None:
        listed = _listed_statement(posts_q, JournalPost, post_ids, past_cap, shape.cap).subquery()
        posts = select(listed, correspondent_names(listed.c.id, shape.postgresql))
    return _Statements(clients=_listed_statement(clients_q, Client, client_ids, condition, shape.cap),
                       client_ids=_capped_count(client_ids, shape.cap),
                       cases=_listed_statement(cases_q, Case, case_ids, or_(*walked), shape.cap),
                       case_ids=_capped_count(case_ids, shape.cap),
                       posts=posts, post_ids=None if post_ids is None else _capped_count(post_ids, shape.cap))


def _capped_count(ids_q, cap: int):
    """How many rows match, stopping past the cap (shown as "500+")."""
    return select(func.count()).select_from(ids_q.limit(cap + 1).subquery())


def _listed_statement(rows_q, model, ids_q, past_cap, cap: int):
    """The statement of one list: the ids `ids_q` finds (a select of ids), up to past the cap, their
    count as the column `total`, and a page of `rows_q` (a Core select of columns, in the list's order):
    the rows of those ids or, past the cap, the rows where `past_cap` holds (walked in the list's order,
    which stops after a page). The two pages are one UNION ALL and the count picks one by its LIMIT:
    the other's is 0, which neither engine starts to read (as a WHERE on the count, SQLite tested it on
    every row of the walk). One statement per list, where the ids and then the page were two."""
    found = ids_q.limit(cap + 1).cte(f"{model.__tablename__}_found")
    total = select(func.count()).select_from(found).scalar_subquery()

    def page_of(condition, shown):
        # The page's own LIMIT is a number (with an expression, SQLite's planner expects every row);
        # the count's LIMIT is the one around it.
        rows = rows_q.where(condition).limit(PER_PAGE).offset(bindparam("offset")).subquery()
        return select(select(rows, total.label("total")).limit(case((shown, PER_PAGE), else_=0)).subquery())
    return union_all(page_of(model.id.in_(select(found.c.id)), total <= cap), page_of(past_cap, total > cap))


def correspondent_names(post_id, postgresql: bool):
    """A post's correspondents' names, in the order they were added, as one text ("" for none). SQLite's
    group_concat takes the rows as the post_id index gives them: in rowid (id) order."""
    if postgresql:
        names = func.string_agg(Correspondent.name, aggregate_order_by(literal_column("', '"), Correspondent.id))
    else:
        names = func.group_concat(Correspondent.name, literal_column("', '"))
    found = select(names).where(Correspondent.post_id == post_id).scalar_subquery()
    return func.coalesce(found, literal_column("''")).label("correspondents")


def _listed(statement, count_statement, values: dict, page: int) -> Listed:
    """A page of one list and its capped count (the count's own statement only for a page past the end,
    which has no row to give it and which the pager never offers)."""
    if statement is None:
        return Listed([], page, 0)
    items = _run(statement, values).all()
    if items:
        return Listed(items, page, items[0].total)
    return Listed(items, page, 0 if page == 1 else _run(count_statement, values).scalar() or 0)


def search(actor: User, query: str, page: int = 1) -> Results | None:
    text = " ".join((query or "").split()).lower()[:100]
    if len(text) < 2:
        return None
    page = min(max(page, 1), LAST_PAGE)
    q = _query(text)
    postgresql = _postgresql()
    organisations, handlers = _lookups(q, postgresql)  # on PostgreSQL, without parallel workers from here on
    categories = _category_matches(text)
    shape = _shape(actor, q, organisations, handlers, categories)
    statements = _statements(shape, actor)
    values = _values(q, postgresql) | {"offset": (page - 1) * PER_PAGE, "orgs": organisations, "handlers": handlers,
                                       "categories": categories, "actor_id": actor.id}
    # Each list reads the ids of its matches (up to the cap) from the word index and a page of rows by
    # those ids, in one statement: the planners never guess how many rows a word has. Past the cap, a
    # list walks its order's index and tests each row (_walk_condition), which stops after a page.
    return Results(query=query, clients=_listed(statements.clients, statements.client_ids, values, page),
                   cases=_listed(statements.cases, statements.case_ids, values, page),
                   posts=_listed(statements.posts, statements.post_ids, values, page))


def pick_clients(actor: User, query: str, limit: int = 10) -> list[Client]:
    """A short list of clients to choose from (post registration's "which client?"): their ids first
    when they are few, so that no planner walks every client by name testing each against the word index."""
    text = " ".join((query or "").split()).lower()[:100]
    if len(text) < 2:
        return []
    q = _query(text)
    shape = _shape(actor, q, [], [], [])
    values = _values(q, shape.postgresql)
    condition = _client_condition(shape)
    ids = list(_run(select(Client.id).where(condition, scope.client_clause(actor)).limit(COUNT_CAP + 1), values)
               .scalars())
    if len(ids) <= COUNT_CAP:
        condition = Client.id.in_(ids)
    return list(db.session.scalars(select(Client).where(condition, scope.client_clause(actor))
                                   .options(joinedload(Client.handler)).order_by(Client.name_lower, Client.id)
                                   .limit(limit),
                                   values))
