"""Every main page beside its floor, in one run: how far each page is from "one query and a loop".

    .venv/bin/python bench/floor.py --instance /tmp/big19-sqlite [--requests 50] [--pages archive,start]
    .venv/bin/python bench/floor.py --instance /tmp/big19-sqlite \\
        --database-url 'postgresql+psycopg://ppt@/big?host=/tmp/pg-big19'

The pages, users and data picks are bench/load.py's plan_pages (the archive log failed first and with
a client or a date filter, search of one's own and of all, a heavy client's folder, the approval
queue, the post registration inbox, the start page of a handler, a leader, a secretary and a
consultant, the statistics page for the last full year). Each is timed in-process with Flask's test
client, one thread, signed in as its user, N requests after warm-ups, interleaved with its floor
(page, floor, floor, page, ...) so that the machine's noise hits both.

A page's floor is the same rows the page shows, fetched with SQLAlchemy Core (`conn.execute(select(...))`,
no ORM object) and written by a plain Jinja template: a `{% for %}` loop over the rows writing the same
columns as `<tr><td>` cells, escaped, links as plain strings; no layout, no macro, no url_for, no
translation. It is served by a bare Flask app (bench/load.py's framework, nothing else) on the same
engine, so both sides pay Flask's request cost and the same connection pool. How each floor is made:

- archive log (failed first, client filter, date filter): ONE query, the ids of the failed jobs (up to
  500) and of a page of the rest (50, newest first) as a UNION ALL on archive_job alone, joined then to
  the jobs, their case, post, client and organisation; the filter's conditions as the page writes them
  (the same planner hints). The stored
  message text stands for the message rendered in the reader's language.
- search (own, all): one query per list (clients, cases, journal posts), 25 rows each. The small
  lookups the page does first (schools whose name matches, handlers by name, categories by label) and
  the choice between the word index and the newest-first walk (the page's COUNT_CAP rule) are made
  once before timing; the capped counts in the headings are not fetched. On PostgreSQL the word
  index's matches are a MATERIALIZED CTE inside the one query (as a semi-join the planner walked
  every post by date looking for them).
- client folder: three queries, the client's facts, its cases, its journal posts (correspondents
  joined into one text by a correlated subquery). The page also writes and commits an activity row
  (reading a folder is logged): the floor writes nothing.
- approval queue, inbox: ONE query each (the inbox fetches the page and one row more, as the page).
- start pages and the statistics page: the page's own SELECT statements, captured from one request
  with their parameters, minus the statements the signed-in empty page runs (session, header), and
  replayed as they are with `conn.exec_driver_sql` (one per list, summed), every row written by a
  generic loop of cells. Their rows are what the lists and figures fetch (a count or a grouping is a
  row here), so the row check is "about": it names the difference.

Printed per page: requests, rows on the page (`<tr>`/`<li>` of its lists, without pager and "none"
rows) and rows of the floor, p50/p95 of both, the ratio of the p50s, the goal (<= 2x) and PASS/FAIL,
and the SQL statements per page request. Then the signed-in empty page (/profile) beside the floor
app's empty page and load.py's bare page of the same size: the cost of every request before its lists.

It reads the data and does not migrate it: the database must be at the checkout's newest migration
and hold the demo users (bench/pages.py makes both on a fresh instance). Signing in and the pages
themselves write what they always write (a sign-in, the folder's activity rows).
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

OSLO = ZoneInfo("Europe/Oslo")
GOAL = 2.0
PER_PAGE = 25  # search
ARCHIVE_PAGE = 50
INBOX_PAGE = 100
COUNT_CAP = 500


# -- the floor's own small Flask app ------------------------------------------------------------

def oslo(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(OSLO).strftime("%d.%m.%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return str(value)


def plain(value: Any) -> Any:
    """An enum member's value; anything else as it is."""
    return getattr(value, "value", value)


@dataclass
class Floor:
    """What one floor request runs: statements (Core selects, or (SQL, parameters) to replay) and the
    template that writes their rows; shown(lists) is how many rows the page would show of them."""

    statements: list
    template: str
    shown: Callable[[list], int] = lambda lists: sum(len(rows) for rows in lists)
    note: str = ""
    compiled: Any = None


def floor_app(engine, floors: list[Floor]):
    """A bare Flask app: GET /<n> runs floor n on `engine` and renders its template; GET /empty renders
    an empty template (the framework's own cost)."""
    from flask import Flask, render_template

    app = Flask("floor")
    app.jinja_env.filters["oslo"] = oslo
    app.jinja_env.filters["v"] = plain
    empty = app.jinja_env.from_string("<!doctype html><title>{{ title }}</title><p>{{ title }}</p>")

    @app.route("/<int:n>")
    def run(n: int):
        floor = floors[n]
        if floor.compiled is None:
            floor.compiled = app.jinja_env.from_string(floor.template)
        with engine.connect() as conn:
            lists = [conn.execute(s).all() if not isinstance(s, tuple) else conn.exec_driver_sql(*s).all()
                     for s in floor.statements]
        html = render_template(floor.compiled, lists=lists)
        return html, 200, {"X-Rows": str(floor.shown(lists))}

    @app.route("/empty")
    def nothing():
        return render_template(empty, title="Side")

    return app


# -- the floors -----------------------------------------------------------------------------------

ARCHIVE_TEMPLATE = """<table><tbody>
{% for r in lists[0][:failed_and_page] %}<tr id="job-{{ r.id }}"><td>{{ r.finalized_on | oslo }}</td>\
<td>{{ r.event }}</td><td>{{ r.job_status | v }}</td><td><span class="badge archive-{{ r.archive_status | v }}">\
{{ r.archive_status | v }}</span></td><td>{{ r.message }}{% if r.message_code == 'unarchivable_text' %} \
<a href="/cases/{{ r.case_id }}/correct">Correct it</a>\
{% endif %}</td><td>{% if r.post_id %}<a href="/posts/{{ r.post_id }}">Journal post {{ r.case_number }}-{{ r.seq }}</a>\
{% else %}<a href="/cases/{{ r.case_id }}">Case {{ r.case_number }}</a>{% endif %}\
{% if r.client_id %} · <a href="/clients/{{ r.client_id }}">{{ r.given_name }} {{ r.family_name }}</a>\
{% elif r.organisation %} · {{ r.organisation }}{% endif %}</td>\
<td>{% if r.archive_status | v == 'failed' %}<button hx-post="/archive-log/{{ r.id }}/retry">Retry</button>{% endif %}\
{% if r.job_status | v != 'in_progress' %}<a href="/archive-log/{{ r.id }}/delete">Delete</a>{% endif %}</td></tr>
{% endfor %}</tbody></table>"""


def archive_floor(query: dict[str, str]) -> Floor:
    """The archive log's rows for the query string's filter (client name prefix, event, dates)."""
    from sqlalchemy import and_, literal, or_, select, union_all

    from ppt_web.models import ArchiveJob, ArchiveStatus, Case, Client, JournalPost, Organisation
    from ppt_web.models.base import unindexed

    def clauses(by_failed: bool) -> list:
        col = unindexed if by_failed else (lambda column: column)
        out = [ArchiveJob.deleted_at.is_(None)]
        if query.get("event"):
            out.append(col(ArchiveJob.event) == query["event"])
        if query.get("date_from"):
            out.append(col(ArchiveJob.finalized_on) >= date.fromisoformat(query["date_from"]))
        if query.get("date_to"):
            out.append(col(ArchiveJob.finalized_on) <= date.fromisoformat(query["date_to"]))
        text = query.get("client", "").strip().lower()
        if text:
            ids = select(Client.id).where(or_(and_(Client.name_lower >= text, Client.name_lower < text + "\uffff"),
                                              and_(Client.family_lower >= text, Client.family_lower < text + "\uffff")))
            out.append(col(ArchiveJob.client_id).in_(ids))
        return out

    dated = bool(query.get("date_from") or query.get("date_to"))
    order = (ArchiveJob.finalized_on.desc(), ArchiveJob.id.desc()) if dated else (ArchiveJob.id.desc(),)
    # The ids on archive_job alone (limited), then the rows they name: joined before the limit, SQLite
    # joins and sorts every job of a common family name to keep 50.
    failed = (select(literal(0).label("grp"), ArchiveJob.id)
              .where(*clauses(True), ArchiveJob.archive_status == ArchiveStatus.FAILED)
              .order_by(ArchiveJob.id.desc()).limit(500).subquery())
    rest = (select(literal(1).label("grp"), ArchiveJob.id)
            .where(*clauses(False), ArchiveJob.archive_status != ArchiveStatus.FAILED)
            .order_by(*order).limit(ARCHIVE_PAGE + 1).subquery())
    ids = union_all(select(failed), select(rest)).subquery()
    statement = (select(ids.c.grp, ArchiveJob.id, ArchiveJob.finalized_on, ArchiveJob.event, ArchiveJob.job_status,
                        ArchiveJob.archive_status, ArchiveJob.message, ArchiveJob.message_code, ArchiveJob.case_id,
                        ArchiveJob.post_id, ArchiveJob.client_id, Case.number.label("case_number"), JournalPost.seq,
                        Client.given_name, Client.family_name, Organisation.name.label("organisation"))
                 .select_from(ids).join(ArchiveJob, ArchiveJob.id == ids.c.id)
                 .join(Case, Case.id == ArchiveJob.case_id)
                 .outerjoin(JournalPost, JournalPost.id == ArchiveJob.post_id)
                 .outerjoin(Client, Client.id == ArchiveJob.client_id)
                 .outerjoin(Organisation, Organisation.id == Case.organisation_id)
                 .order_by(ids.c.grp, *order))

    def shown(lists: list) -> int:
        failed_rows = sum(1 for r in lists[0] if r.grp == 0)
        return failed_rows + min(ARCHIVE_PAGE, len(lists[0]) - failed_rows)

    def template() -> str:  # the page shows the failed ones and 50 of the rest (the 51st says "Older")
        return "{% set failed_and_page = lists[0] | selectattr('grp', 'eq', 0) | list | length + " \
            f"{ARCHIVE_PAGE} %}}" + ARCHIVE_TEMPLATE
    return Floor([statement], template(), shown)


def _case_scope(user_id: int, sees_all: bool):
    from sqlalchemy import exists, or_, true

    from ppt_web.models import Case
    from ppt_web.models.domain import case_cohandler

    if sees_all:
        return true()
    co = exists().where(case_cohandler.c.case_id == Case.id, case_cohandler.c.user_id == user_id)
    return or_(Case.handler_id == user_id, co)


def _client_scope(user_id: int, sees_all: bool):
    from sqlalchemy import exists, or_, true

    from ppt_web.models import Case, Client
    from ppt_web.models.domain import case_cohandler

    if sees_all:
        return true()
    co = exists().where(case_cohandler.c.case_id == Case.id, case_cohandler.c.user_id == user_id)
    return or_(Client.handler_id == user_id, exists().where(Case.client_id == Client.id,
                                                            or_(Case.handler_id == user_id, co)))


def _correspondents(dialect: str):
    """The post's correspondents' names as one text (a correlated subquery, no second query)."""
    from sqlalchemy import func, literal, select

    from ppt_web.models import JournalPost
    from ppt_web.models.domain import Correspondent

    joined = func.string_agg(Correspondent.name, literal(", ")) if dialect == "postgresql" else \
        func.group_concat(Correspondent.name, ", ")
    return select(joined).where(Correspondent.post_id == JournalPost.id).scalar_subquery().label("correspondents")


def _post_columns(dialect: str) -> list:
    from ppt_web.models import Case, JournalPost

    return [JournalPost.id, JournalPost.document_date, JournalPost.post_type, JournalPost.title,
            JournalPost.registered_after_downtime, JournalPost.case_id, Case.number.label("case_number"),
            JournalPost.status, _correspondents(dialect)]


POST_ROW = """<tr><td>{{ p.document_date | oslo }}</td><td><abbr title="{{ p.post_type | v }}">{{ p.post_type | v }}\
</abbr></td><td><a href="/posts/{{ p.id }}">{{ p.title or '(no title)' }}</a>{% if p.registered_after_downtime %}<br>\
<small>Registered after downtime</small>{% endif %}</td><td><a href="/cases/{{ p.case_id }}">{{ p.case_number }}</a>\
</td><td>{{ p.correspondents or '' }}</td><td><span class="badge status-{{ p.status | v }}">{{ p.status | v }}</span>\
</td></tr>
"""
CASE_ROW = """<tr><td><a href="/cases/{{ c.id }}">{{ c.number }}</a></td><td>{{ c.title }}</td>\
<td>{{ (c.category or c.kind) | v }}</td><td>{{ c.handler }}</td>\
<td><span class="badge case-{{ c.status | v }}">{{ c.status | v }}</span></td></tr>
"""


def folder_floor(client_id: int, user_id: int, sees_all: bool, dialect: str) -> Floor:
    from sqlalchemy import select

    from ppt_web.models import Case, Client, JournalPost, Organisation, User

    client = (select(Client.id, Client.given_name, Client.family_name, Client.national_id, Client.birth_date,
                     Client.address, Client.postal_code, Client.city, Organisation.name.label("organisation"),
                     User.full_name.label("handler"))
              .outerjoin(Organisation, Organisation.id == Client.organisation_id)
              .outerjoin(User, User.id == Client.handler_id)
              .where(Client.id == client_id, _client_scope(user_id, sees_all)))
    cases = (select(Case.id, Case.number, Case.title, Case.category, Case.kind, Case.status,
                    User.full_name.label("handler"))
             .join(User, User.id == Case.handler_id)
             .where(Case.client_id == client_id, _case_scope(user_id, sees_all)).order_by(Case.opened_on.desc()))
    posts = (select(*_post_columns(dialect)).join(Case, Case.id == JournalPost.case_id)
             .where(Case.client_id == client_id, _case_scope(user_id, sees_all))
             .order_by(JournalPost.document_date.desc().nulls_last(), JournalPost.id.desc()))
    template = """{% for k in lists[0] %}<h1>{{ k.given_name }} {{ k.family_name }}</h1><dl>\
<dd>{{ k.national_id[:6] }} *****</dd><dd>{{ k.birth_date | oslo }}</dd><dd>{{ k.address }} {{ k.postal_code }} \
{{ k.city }}</dd><dd>{{ k.organisation or '—' }}</dd><dd>{{ k.handler or '—' }}</dd></dl>{% endfor %}
<table><tbody>
{% for c in lists[1] %}""" + CASE_ROW + """{% endfor %}</tbody></table>
<table><tbody>
{% for p in lists[2] %}""" + POST_ROW + "{% endfor %}</tbody></table>"
    return Floor([client, cases, posts], template, lambda lists: len(lists[1]) + len(lists[2]),
                 "rows: cases + posts (the client's facts are not a row)")


def approvals_floor() -> Floor:
    from sqlalchemy import select
    from sqlalchemy.orm import aliased

    from ppt_web.models import Case, JournalPost, PostStatus, User

    asker, approver = aliased(User), aliased(User)
    statement = (select(JournalPost.id, Case.number, JournalPost.seq, JournalPost.title,
                        JournalPost.approval_requested_at, asker.full_name.label("asker"),
                        approver.full_name.label("approver"))
                 .join(Case, Case.id == JournalPost.case_id)
                 .outerjoin(asker, asker.id == JournalPost.approval_requested_by_id)
                 .outerjoin(approver, approver.id == JournalPost.approver_id)
                 .where(JournalPost.status == PostStatus.AWAITING_APPROVAL)
                 .order_by(JournalPost.approval_requested_at, JournalPost.id))
    template = """<table><tbody>
{% for r in lists[0] %}<tr data-post="{{ r.id }}"><td>{{ r.approval_requested_at | oslo }}</td>\
<td><a href="/posts/{{ r.id }}">{{ r.number }}-{{ r.seq }} {{ r.title }}</a></td><td>{{ r.asker or '' }}</td>\
<td>{{ r.approver or '' }}</td></tr>
{% endfor %}</tbody></table>"""
    return Floor([statement], template)


def inbox_floor() -> Floor:
    from sqlalchemy import and_, or_, select

    from ppt_web.models import InboxItem, InboxStatus, User
    from ppt_web.models.base import rare
    from ppt_web.models.inbox import OPEN_STATUSES

    open_items = and_(rare(InboxItem.status.in_(OPEN_STATUSES + (InboxStatus.SYSTEM_REJECTED,))),
                      or_(InboxItem.status != InboxStatus.SYSTEM_REJECTED, InboxItem.rejected_by_id.is_(None)))
    statement = (select(InboxItem.id, InboxItem.status, InboxItem.arrived_at, InboxItem.source, InboxItem.filename,
                        InboxItem.meta, InboxItem.page_count, InboxItem.reject_code, InboxItem.reject_reason,
                        User.full_name.label("claimed_by"))
                 .outerjoin(User, User.id == InboxItem.claimed_by_id).where(open_items)
                 .order_by(InboxItem.arrived_at.desc(), InboxItem.id.desc()).limit(INBOX_PAGE + 1))
    template = """<table><tbody>
{% for r in lists[0][:""" + str(INBOX_PAGE) + """] %}{% set meta = r.meta or {} %}<tr class="inbox-{{ r.status | v }}" \
data-item="{{ r.id }}"><td>{{ r.arrived_at | oslo }}</td><td>{{ r.source | v }}</td><td><a href="/post-registration/\
{{ r.id }}">{{ meta.get('title') or r.filename }}</a>{% if meta.get('sender_name') %}<br><small>{{ meta.sender_name }}\
</small>{% endif %}</td><td>{{ r.page_count if r.page_count is not none else '–' }}</td><td><span class="badge">\
{{ r.status | v }}</span>{% if r.claimed_by %} <small>{{ r.claimed_by }}</small>{% endif %}\
{% if r.status | v == 'system_rejected' %}<br><small>{{ r.reject_reason }}</small>{% endif %}</td></tr>
{% endfor %}</tbody></table>"""
    return Floor([statement], template, lambda lists: min(INBOX_PAGE, len(lists[0])))


# search ------------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")
_NOT_ALNUM = "[^0-9a-z\u00aa\u00b5\u00ba\u00df-\u00f6\u00f8-\u017f]"
_CASE_NUMBER = re.compile(r"\d{4}/\d*")
HIGH = "\U0010ffff"


def _index_ids(model, tokens: list[str], dialect: str):
    """The ids of `model`'s rows where every (long) token starts a word, from the word index of 0017."""
    from sqlalchemy import func, literal_column, select, table

    from ppt_web.models import Case, Client, JournalPost

    long = [t for t in tokens if len(t) > 1] or tokens
    if dialect == "postgresql":
        simple = literal_column("'simple'")
        if model is Case:
            number = func.replace(model.number, literal_column("'/'"), literal_column("' '"))
            document = func.to_tsvector(simple, number.op("||")(literal_column("' '")).op("||")(model.title_lower))
        else:
            document = func.to_tsvector(simple, model.title_lower if model is JournalPost else model.name_lower)
        return select(model.id).where(document.op("@@")(func.to_tsquery(simple, " & ".join(f"'{t}':*"
                                                                                            for t in long))))
    name = {JournalPost: "journal_post_words", Case: "case_words", Client: "client_words"}[model]
    return select(literal_column("rowid")).select_from(table(name)).where(
        literal_column(name).op("MATCH")(" ".join(f'"{t}"*' for t in long)))


def _walk(columns: list, tokens: list[str], dialect: str):
    """Every token starts a word of one of `columns`, tested row by row (the newest-first walk)."""
    from sqlalchemy import and_, or_

    def starts(col, token):
        if dialect == "postgresql":
            return col.op("~")(f"(^|[^[:alnum:]]){token}")
        return or_(col.op("GLOB")(f"{token}*"), col.op("GLOB")(f"*{_NOT_ALNUM}{token}*"))
    return and_(*[or_(*[starts(col, t) for col in columns]) for t in tokens])


def _words(model, columns: list, tokens: list[str], dialect: str):
    """The word condition through the index (the one-letter tokens tested on its rows)."""
    from sqlalchemy import and_, select

    long = [t for t in tokens if len(t) > 1] or tokens
    short = [t for t in tokens if t not in long]
    found = _index_ids(model, tokens, dialect)
    if dialect == "postgresql":  # the matches first: as a semi-join the planner walked every post by date
        found = select(found.cte(f"{model.__tablename__}_found").prefix_with("MATERIALIZED").c.id)
    condition = model.id.in_(found)
    return and_(condition, _walk(columns, short, dialect)) if short else condition


def search_floor(conn, q: str, user_id: int, sees_all: bool, dialect: str) -> Floor:
    """The three lists of the search's first page. Looked up here, before timing: the schools matching
    the words, the handlers by name, the categories by label, and how many rows the index finds (past
    COUNT_CAP a list walks newest first, as the page does)."""
    from sqlalchemy import and_, false, func, or_, select, union

    from ppt_web.labels import CATEGORY_LABELS
    from ppt_web.models import Case, CaseCategory, CaseStatus, Client, JournalPost, Organisation, User

    text = " ".join(q.split()).lower()[:100]
    tokens = _WORD.findall(text)[:8]
    digits = text.replace(" ", "")
    orgs: list[int] = []
    if tokens and not digits.isdigit():
        longest = max(tokens, key=len)
        orgs = [i for i, name in conn.execute(select(Organisation.id, Organisation.name_lower).where(
            Organisation.name_lower.contains(longest, autoescape=True)))
            if all(any(w.startswith(t) for w in _WORD.findall(name)) for t in tokens)]

    def capped(statement) -> int:
        return conn.scalar(select(func.count()).select_from(statement.limit(COUNT_CAP + 1).subquery())) or 0

    # clients
    if digits.isdigit():
        c_cond = and_(Client.national_id >= digits, Client.national_id < digits + HIGH) if len(digits) >= 6 \
            else false()
    else:
        c_cond = _words(Client, [Client.name_lower], tokens, dialect)
    if orgs:
        c_cond = or_(c_cond, Client.organisation_id.in_(orgs))
    clients = (select(Client.id, Client.given_name, Client.family_name, Client.national_id,
                      User.full_name.label("handler"))
               .outerjoin(User, User.id == Client.handler_id).where(c_cond, _client_scope(user_id, sees_all))
               .order_by(Client.name_lower).limit(PER_PAGE))
    # cases
    case_conds = [and_(Case.number >= text, Case.number < text + HIGH)]
    categories = [c for c in CaseCategory
                  if c.value.startswith(text) or str(CATEGORY_LABELS[c.value]).lower().startswith(text)]
    if categories:
        case_conds.append(Case.category.in_(categories))
    handlers = list(conn.scalars(select(User.id).where(or_(
        and_(User.username >= text, User.username < text + HIGH),
        and_(func.lower(User.full_name) >= text, func.lower(User.full_name) < text + HIGH)))))
    if handlers:
        case_conds.append(Case.handler_id.in_(handlers))
    if orgs:
        case_conds.append(or_(Case.organisation_id.in_(orgs),
                              Case.client_id.in_(select(Client.id).where(Client.organisation_id.in_(orgs)))))
    for status, names in ((CaseStatus.OPEN, ("open", "opne")), (CaseStatus.CLOSED, ("closed", "avslutta",
                                                                                      "avsluttet"))):
        if text in names:
            case_conds.append(Case.status == status)
    by_words = bool(tokens) and not _CASE_NUMBER.fullmatch(text)
    scope = _case_scope(user_id, sees_all)
    indexed = case_conds + ([_words(Case, [Case.number, Case.title_lower], tokens, dialect)] if by_words else [])
    many = capped(select(Case.id).where(scope, or_(*indexed))) > COUNT_CAP
    walked = case_conds + ([_walk([Case.number, Case.title_lower], tokens, dialect)] if by_words else [])
    if many:
        c_where = or_(*walked)
    elif dialect == "postgresql":  # the matching ids first, each way a case matches on its own index
        branches = union(*[select(Case.id).where(scope, condition) for condition in indexed])
        c_where = Case.id.in_(select(branches.cte("case_ids").prefix_with("MATERIALIZED").c.id))
    else:
        c_where = or_(*indexed)
    cases = (select(Case.id, Case.number, Case.title, Case.category, Case.kind, Case.status,
                    User.full_name.label("handler"))
             .join(User, User.id == Case.handler_id).where(scope, c_where)
             .order_by(Case.opened_on.desc(), Case.id.desc()).limit(PER_PAGE))
    # journal posts
    try:
        day = datetime.strptime(text, "%d.%m.%Y").date()
    except ValueError:
        day = None
    base = select(JournalPost.id).join(Case, Case.id == JournalPost.case_id).where(scope)
    if day is not None:
        p_cond = or_(_words(JournalPost, [JournalPost.title_lower], tokens, dialect), JournalPost.document_date == day)
    elif not tokens:
        p_cond = false()
    elif capped(base.where(_words(JournalPost, [JournalPost.title_lower], tokens, dialect))) > COUNT_CAP:
        p_cond = _walk([JournalPost.title_lower], tokens, dialect)
    else:
        p_cond = _words(JournalPost, [JournalPost.title_lower], tokens, dialect)
    posts = (select(*_post_columns(dialect)).join(Case, Case.id == JournalPost.case_id).where(scope, p_cond)
             .order_by(JournalPost.document_date.desc().nulls_last(), JournalPost.id.desc()).limit(PER_PAGE))
    template = """<div id="search-results">{% if lists[0] %}<h2>Clients</h2><table><tbody>
{% for c in lists[0] %}<tr><td><a href="/clients/{{ c.id }}">{{ c.given_name }} {{ c.family_name }}</a></td>\
<td>{{ c.national_id[:6] }} *****</td><td>{{ c.handler or '' }}</td></tr>{% endfor %}</tbody></table>{% endif %}
{% if lists[1] %}<h2>Cases</h2><table><tbody>
{% for c in lists[1] %}""" + CASE_ROW + """{% endfor %}</tbody></table>{% endif %}
{% if lists[2] %}<h2>Journal posts</h2><table><tbody>
{% for p in lists[2] %}""" + POST_ROW + "{% endfor %}</tbody></table>{% endif %}</div>"
    return Floor([clients, cases, posts], template)


# replayed statements (start pages, statistics) ------------------------------------------------

REPLAY_TEMPLATE = """{% for rows in lists %}<table><tbody>
{% for row in rows %}<tr>{% for value in row %}<td>{{ value | oslo }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% endfor %}"""


def replay_floor(page_statements: list[tuple[str, Any]], empty_statements: set[str]) -> Floor:
    """The page's own SELECTs, without those of the signed-in empty page (who is signed in, the header)."""
    kept = [(sql, params) for sql, params in page_statements
            if sql.lstrip()[:5].upper() in ("SELEC", "WITH ") and sql not in empty_statements]
    return Floor(kept, REPLAY_TEMPLATE, lambda lists: sum(len(rows) for rows in lists if rows and len(rows[0]) > 1),
                 note=f"replay of {len(kept)} statements; rows: of those with more than one column")


# -- making the floors ---------------------------------------------------------------------------

def open_app(instance: str, database_url: str):
    """The app in-process, as this bench drives it: CSRF off, no Redis, no line per request."""
    from ppt_web import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_PATH": instance,
                      "WTF_CSRF_ENABLED": False, "PPT_REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "bench"})
    logging.getLogger("ppt.access").setLevel(logging.WARNING)  # a line per request otherwise
    return app


class PageRunner:
    """The app's pages in-process, signed in as their users, with the SQL statements each request ran; and
    the spec of each page's floor: a picklable tuple that build_floor() turns into a Floor, here or in
    another process (bench/load.py serves the floors under gunicorn)."""

    def __init__(self, app, engine, users: dict[str, tuple[int, bool]]):
        from sqlalchemy import event

        self.app, self.engine, self.users = app, engine, users
        self.captured: list[tuple[str, Any]] = []
        self.browsers: dict = {}
        self.empty_statements: dict[str, set[str]] = {}

        @event.listens_for(engine, "before_cursor_execute")
        def _capture(conn, cursor, statement, parameters, context, executemany):
            self.captured.append((statement, parameters))

    def signed_in(self, username: str):
        from ppt_web.cli import DEMO_PASSWORD

        if username not in self.browsers:
            c = self.app.test_client()
            assert c.post("/login", data={"username": username, "password": DEMO_PASSWORD}).status_code == 302
            self.browsers[username] = c
        return self.browsers[username]

    def page_request(self, page, req) -> tuple[float, str, int]:
        method, path, form, headers = req
        self.captured.clear()
        t0 = time.perf_counter()
        response = self.signed_in(page.user).open(path, method=method, data=form, headers=headers)
        elapsed = time.perf_counter() - t0
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and page.marker in html, (page.name, path, response.status_code)
        return elapsed, html, len(self.captured)

    def empty_page(self, user: str) -> set[str]:
        """The signed-in empty page's statements: what a replayed floor leaves out."""
        if user not in self.empty_statements:
            client = self.signed_in(user)
            client.get("/profile")
            self.captured.clear()
            assert client.get("/profile").status_code == 200
            self.empty_statements[user] = {sql for sql, _ in self.captured}
        return self.empty_statements[user]

    def floor_spec(self, page, req) -> tuple:
        from urllib.parse import parse_qsl, urlsplit

        method, path, form, _headers = req
        user_id, sees_all = self.users[page.user]
        name = page.name.lower()
        if name.startswith("archive log"):
            return ("archive", dict(parse_qsl(urlsplit(path).query)))
        if name.startswith("search"):
            return ("search", form["q"], user_id, sees_all)
        if name.startswith("client folder"):
            return ("folder", int(path.rstrip("/").rsplit("/", 1)[1]), user_id, sees_all)
        if name.startswith("approval"):
            return ("approvals",)
        if name.startswith("post registration inbox"):
            return ("inbox",)
        skip = self.empty_page(page.user)  # start pages, statistics: the page's own statements, replayed
        self.page_request(page, req)
        return ("replay", list(self.captured), skip)


def build_floor(spec: tuple, engine, dialect: str) -> Floor:
    kind, args = spec[0], spec[1:]
    if kind == "archive":
        return archive_floor(args[0])
    if kind == "search":  # its lookups and its choice between the word index and the walk: made here, once
        with engine.connect() as conn:
            return search_floor(conn, args[0], args[1], args[2], dialect)
    if kind == "folder":
        return folder_floor(args[0], args[1], args[2], dialect)
    if kind == "approvals":
        return approvals_floor()
    if kind == "inbox":
        return inbox_floor()
    return replay_floor(args[0], args[1])


def served_app():
    """The floor app for gunicorn (`floor:served_app()`, as bench/load.py runs it): the floors of the specs
    pickled in the file $PPT_FLOOR_SPECS, GET /<n> for the n-th, on the engine of the app's own
    create_app() (PPT_DATABASE_URL, PPT_INSTANCE_PATH from the environment), built in each worker."""
    import pickle

    from ppt_web import create_app
    from ppt_web.extensions import db

    with open(os.environ["PPT_FLOOR_SPECS"], "rb") as f:
        specs = pickle.load(f)
    with create_app().app_context():
        engine = db.engine
    floors = [build_floor(spec, engine, engine.dialect.name) for spec in specs]
    return floor_app(engine, floors)


# -- measuring ------------------------------------------------------------------------------------

LIST_BLOCK = re.compile(r'<tbody\b.*?</tbody>|<ul class="list[^"]*"(?: id="(?!start-tiles")[^"]*")?[^>]*>.*?</ul>',
                        re.S)
ROW = re.compile(r"<(?:tr|li)\b[^>]*>\s*(<td colspan)?")


def visible_rows(html: str) -> int:
    """The rows of the page's lists: <tr>/<li> in its tables' bodies and its lists, without a pager or a
    "none" row (both a single cell spanning the row). Only inside <main> when the page has one."""
    start, end = html.find("<main"), html.rfind("</main>")
    if start >= 0 and end > start:
        html = html[start:end]
    return sum(1 for block in LIST_BLOCK.findall(html) if 'id="start-tiles"' not in block[:80]
               for m in ROW.finditer(block) if not m.group(1))


@dataclass
class Timing:
    page: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    page_rows: list[int] = field(default_factory=list)
    floor_rows: list[int] = field(default_factory=list)


def ms(values: list[float], q: float) -> float:
    from common import pct

    return pct([v * 1000 for v in values], q)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instance", required=True, help="an instance with data (bench/bigdata.py)")
    parser.add_argument("--database-url", default=None, help="default: sqlite:///INSTANCE/ppt.sqlite")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page (and as many floors)")
    parser.add_argument("--budget", type=float, default=30,
                        help="seconds per page (page and floor together): a slow page stops early, after 5 at least")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page and floor first")
    parser.add_argument("--pages", default="", help="comma-separated parts of page names (default: all)")
    parser.add_argument("--statements", action="store_true",
                        help="also print each replayed statement (start pages, statistics) and its rows")
    args = parser.parse_args()

    instance = Path(args.instance).resolve()
    args.instance = str(instance)
    args.database_url = args.database_url or f"sqlite:///{instance / 'ppt.sqlite'}"
    os.environ["PPT_INSTANCE_PATH"] = str(instance)
    os.environ.pop("PPT_DATABASE_URL", None)
    import load
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy import func, select, text

    from ppt_web.cli import DEMO_USERS
    from ppt_web.extensions import db
    from ppt_web.models import ArchiveJob, Case, Client, JournalPost, User

    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    app = open_app(str(instance), args.database_url)
    with app.app_context():
        at = db.session.scalar(text("SELECT version_num FROM alembic_version"))
        users = {u.username: (u.id, u.can("search_all")) for u in db.session.scalars(select(User))}
        missing = [name for name, _, _ in DEMO_USERS if name not in users]
        if at != head or missing:
            print(f"the database is at migration {at} (this checkout: {head}); demo users missing: {missing or 'none'}."
                  " This bench does not migrate or write users: run it on a copy migrated with `flask db upgrade`"
                  " and `flask seed-demo` (or bench/pages.py on the copy).", file=sys.stderr)
            return 2
        counts = {m.__name__: db.session.scalar(select(func.count()).select_from(m))
                  for m in (Client, Case, JournalPost, ArchiveJob)}
        engine = db.engine
    dialect = engine.dialect.name
    started = datetime.now().astimezone()
    print(f"data: {counts} ({dialect}, migration {at}); code: {ROOT}; started {started:%Y-%m-%d %H:%M %Z}")

    runner = PageRunner(app, engine, users)
    captured, signed_in, page_request = runner.captured, runner.signed_in, runner.page_request

    floors: list[Floor] = []
    floors_app = floor_app(engine, floors)
    floor_client = floors_app.test_client()

    def floor_request(n: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        response = floor_client.get(f"/{n}")
        elapsed = time.perf_counter() - t0
        assert response.status_code == 200, (n, response.get_data(as_text=True)[:500])
        return elapsed, int(response.headers["X-Rows"])

    def make_floor(page, req) -> Floor:
        return build_floor(runner.floor_spec(page, req), engine, dialect)

    pages = load.plan_pages(args)
    print(f"\n{'page':40s} {'reqs':>4s} {'rows':>5s} {'floor':>5s} {'p50':>7s} {'p95':>7s} {'fl p50':>7s} "
          f"{'fl p95':>7s} {'ratio':>6s} {'goal':>5s} {'':4s} {'stmts':>5s}")
    results = []
    for page in pages:
        indexes = []
        for req in page.requests:
            floors.append(make_floor(page, req))
            indexes.append(len(floors) - 1)
        for _ in range(args.warmup):
            for i, req in enumerate(page.requests):
                page_request(page, req)
                floor_request(indexes[i])
        timing = Timing()
        budget = time.monotonic() + args.budget
        for n in range(args.requests):
            if n >= 5 and time.monotonic() > budget:
                break
            i = n % len(page.requests)
            req = page.requests[i]
            first_floor = n % 2 == 1
            if first_floor:
                floor_elapsed, floor_rows = floor_request(indexes[i])
            elapsed, html, statements = page_request(page, req)
            if not first_floor:
                floor_elapsed, floor_rows = floor_request(indexes[i])
            timing.page.append(elapsed)
            timing.floor.append(floor_elapsed)
            timing.statements.append(statements)
            if n < len(page.requests):
                timing.page_rows.append(visible_rows(html))
                timing.floor_rows.append(floor_rows)
        p50, p95, f50, f95 = ms(timing.page, .5), ms(timing.page, .95), ms(timing.floor, .5), ms(timing.floor, .95)
        ratio = p50 / f50
        rows, frows = sum(timing.page_rows), sum(timing.floor_rows)
        same = "" if timing.page_rows == timing.floor_rows else \
            f"  rows differ: page {timing.page_rows} floor {timing.floor_rows}"
        note = {f.note for f in floors[indexes[0]:indexes[-1] + 1] if f.note}
        print(f"{page.name:40s} {len(timing.page):4d} {round(rows / len(timing.page_rows)):5d} "
              f"{round(frows / len(timing.floor_rows)):5d} {p50:7.2f} {p95:7.2f} {f50:7.2f} {f95:7.2f} "
              f"{ratio:5.1f}x {GOAL:4.0f}x {'PASS' if ratio <= GOAL else 'FAIL'} "
              f"{statistics.mean(timing.statements):5.1f}{same}{'  (' + '; '.join(sorted(note)) + ')' if note else ''}",
              flush=True)
        results.append((page.name, ratio))
        if args.statements:
            with engine.connect() as conn:
                for statement in floors[indexes[0]].statements:
                    if isinstance(statement, tuple):
                        t0 = time.perf_counter()
                        found = len(conn.exec_driver_sql(*statement).all())
                        spent = (time.perf_counter() - t0) * 1000
                        print(f"      {found:5d} rows {spent:8.2f} ms  {' '.join(statement[0].split())[:140]}")

    # the cost of any signed-in request before its lists
    client = signed_in("radgjevar1")
    bare = load.bare_app().test_client()
    empty, framework, bare_samples, statements, size = [], [], [], [], 0
    for n in range(args.requests + args.warmup):
        captured.clear()
        t0 = time.perf_counter()
        response = client.get("/profile")
        elapsed = time.perf_counter() - t0
        count = len(captured)
        size = len(response.get_data())
        t0 = time.perf_counter()
        floor_client.get("/empty")
        plain_elapsed = time.perf_counter() - t0
        t0 = time.perf_counter()
        bare.get(f"/{size}")
        bare_elapsed = time.perf_counter() - t0
        if n >= args.warmup:
            empty.append(elapsed)
            framework.append(plain_elapsed)
            bare_samples.append(bare_elapsed)
            statements.append(count)
    print(f"\nsigned-in empty page (/profile as radgjevar1, {size} bytes): p50 {ms(empty, .5):.2f} ms, "
          f"p95 {ms(empty, .95):.2f} ms, {statistics.mean(statements):.1f} statements; "
          f"load.py's bare page of that size: p50 {ms(bare_samples, .5):.2f} ms; "
          f"an empty Flask page: p50 {ms(framework, .5):.2f} ms")
    failing = [name for name, ratio in results if ratio > GOAL]
    print(f"{len(results) - len(failing)} of {len(results)} pages within {GOAL:g}x their floor; latencies in ms, "
          f"in-process, one thread; {dialect}; finished {datetime.now().astimezone():%H:%M}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
