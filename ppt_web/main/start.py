"""The start page: what waits for the signed-in user, one panel per kind of work they do.

A user sees a panel for each role they act in (several roles, several panels), in this order:
- handler (a handler whose scope is their own cases: journal without search_all; or anyone with work of
  their own: handler/co-handler of an open case, a draft they wrote, a post waiting for their approval):
  open cases, drafts, posts returned for changes, posts waiting for approval, restanser, cases to
  close, unread notifications. A secretary or consultant who journals but handles nothing gets no
  empty "My work" panel;
- leader (approve): approvals waiting, held-back documents to decide, the team's open cases (cases a
  member of the team handles or co-handles, or that carry the team as access group; a leader in no
  team: every handler's open cases, own and co-handled, counted);
- secretary (distribute_mail): the post registration inbox, items in progress and by whom, paper
  originals due for destruction;
- consultant (archive_retry or archive_log): failed and stuck archive jobs, failed dispatches, failed
  jobs only a metadata correction can help.

Each list is one query with a limit and its total, so the page costs a few queries whatever the data.
The handler's lists are walked in their order from an index and stop after the rows shown; a total
whose every row costs a check is counted up to COUNT_CAP ("100+" past it); see _first_counted. The
scope rules of auth/scope.py apply to every list of cases and posts. Nothing here changes anything.

The secretary's and the consultant's lists, the roles line and is_handler's test are statements on
the tables, built once per process, and their rows plain tuples (no ORM object per row): built per
request through the ORM, and made into objects with every column, they cost more than running them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import aliased, joinedload

from .. import runtime_settings
from ..archive.job_messages import CORRECTIONS
from ..auth import scope
from ..cases import hold_back, posts
from ..cases import service as cases
from ..clock import today, utcnow
from ..dispatch import service as dispatch
from ..extensions import db
from ..models import (
    AccessGroup,
    ArchiveJob,
    ArchiveStatus,
    Case,
    CaseStatus,
    Client,
    Dispatch,
    InboxItem,
    JobStatus,
    JournalPost,
    Notification,
    PaperOriginal,
    PostEvent,
    PostStatus,
    Role,
    User,
)
from ..models.base import rare
from ..models.domain import case_cohandler
from ..models.inbox import OPEN_STATUSES, InboxStatus
from ..models.user import group_member, group_role, user_role

SHOWN = 5  # rows per list that links to its full page
OPEN_SHOWN = 10  # rows per list without a page of its own (the heading says "N of M")
TEAM_SHOWN = 10


@dataclass
class Rows:
    """The first rows of a list and how many it has in all."""

    rows: list = field(default_factory=list)
    total: int = 0

    def __bool__(self) -> bool:
        return self.total > 0


def _first(query: Select, limit: int = SHOWN) -> Rows:
    """The query's first rows and its total, in one round trip (COUNT(*) OVER () before the LIMIT)."""
    result = db.session.execute(query.add_columns(func.count().over()).limit(limit)).all()
    if not result:
        return Rows()
    width = len(result[0]) - 1
    rows = [r[0] if width == 1 else tuple(r[:width]) for r in result]
    return Rows(rows, result[0][-1])


# A list whose every row costs a check (its scope, its case) is counted up to COUNT_CAP rows: past that the
# heading says "100+" (of the full page's list, linked). Counting a giant caseload's 40,000 restanser or
# 24,000 drafts to the last one cost more than the rest of the page.
COUNT_CAP = 100


class AtLeast(int):
    """A capped total: more than this many rows. Written "100+" (the heading's badge, "10 of 100+ shown")."""

    def __str__(self) -> str:
        return f"{int(self)}+"

    def __html__(self) -> str:
        return str(self)


def _capped(*parts: Select) -> Any:
    """A scalar subquery: how many rows the SELECTs `parts` (disjoint) have, each counted up to COUNT_CAP + 1
    (see _total). A part ordered as its list is walks the index the list is read from, and stops where
    the list's rows are dense."""
    counts = [select(func.count()).select_from(part.limit(COUNT_CAP + 1).subquery()).scalar_subquery()
              for part in parts]
    total: Any = counts[0]
    for count in counts[1:]:
        total = total + count
    return total


def _total(counted: int) -> int:
    """A count of _capped as the heading shows it: the count, or AtLeast(COUNT_CAP) past the cap."""
    return AtLeast(COUNT_CAP) if counted > COUNT_CAP else counted


def _first_counted(ids: Select, entity: Any, order: tuple, total: Any, options: tuple = (),
                   limit: int = SHOWN) -> Rows:
    """The first objects of a list and its total, in one round trip: `ids` (a SELECT of entity's id with the
    list's conditions) ordered and cut in a subquery, then the objects of those few ids with what the list
    shows of them (`options`), in the same order; the total a scalar subquery of its own (`total`: a count
    an index answers, or _capped's). The first rows are an ordered index walk that stops at `limit`: with
    the total as COUNT(*) OVER () of the same subquery, every matching row was counted and sorted for a few."""
    page = ids.order_by(*order).limit(limit).subquery()
    result = db.session.execute(select(entity, total.label("total")).join(page, page.c.id == entity.id)
                                .options(*options).order_by(*order)).unique().all()
    if not result:
        return Rows()
    return Rows([r[0] for r in result], _total(result[0][1]))


def _in_my_cases(case_id, user_id: int):
    """SQL condition: case_id is a case the user handles or co-handles (any status). Two IN lists, which
    both engines test against a hashed set of the ids, not a probe per case."""
    return or_(case_id.in_(select(Case.id).where(Case.handler_id == user_id)),
               case_id.in_(select(case_cohandler.c.case_id).where(case_cohandler.c.user_id == user_id)))


# The names of the user's active roles, their own and their teams', each once, in the order of
# User.effective_roles: one statement built once, instead of loading the user's roles, teams and the
# teams' roles as objects for one line of text.
_role = Role.__table__
_ROLE_NAMES = (select(_role.c.name).where(
    _role.c.active.is_(True),
    or_(_role.c.id.in_(select(user_role.c.role_id).where(user_role.c.user_id == bindparam("user_id"))),
        _role.c.id.in_(select(group_role.c.role_id)
                       .join(group_member, group_member.c.group_id == group_role.c.group_id)
                       .where(group_member.c.user_id == bindparam("user_id")))))
    .order_by(_role.c.position, _role.c.id))


def _run(statement: Any, params: dict | None = None) -> Any:
    """A statement on the tables run on the session's own connection (its transaction): not through the
    ORM's execute, which costs about as much again as the database on these one-index-lookup statements
    (its compile state, events and result wrapping for rows that are no objects)."""
    return db.session.connection().execute(statement, params)


def role_names(actor: User) -> list[str]:
    """What the start page's roles line names: the actor's effective roles (User.effective_roles)."""
    return list(_run(_ROLE_NAMES, {"user_id": actor.id}).scalars())


def panels(actor: User) -> dict[str, Any]:
    """The panels of the actor's start page, by name, in the order they are shown."""
    out: dict[str, Any] = {}
    if is_handler(actor):
        out["handler"] = handler_panel(actor)
    if actor.can("approve"):
        out["leader"] = leader_panel(actor)
    if actor.can("distribute_mail"):
        out["secretary"] = secretary_panel(actor)
    if actor.can("archive_retry") or actor.can("archive_log"):
        out["consultant"] = consultant_panel(actor)
    return out


def _has_work(approves_elsewhere: bool):
    """is_handler's one statement on the tables, built once (the user's id a parameter): own and co-handled
    apart, each EXISTS one index lookup (together, an OR the planner walked every open case for, on every
    start page of every user). A leader approves in the leader's panel; anyone else's posts waiting for
    their approval are handler's work (a team coordinator asked to approve)."""
    case, post, co = Case.__table__, JournalPost.__table__, case_cohandler
    user: Any = bindparam("user_id")
    work = [exists().where(case.c.status == CaseStatus.OPEN, case.c.handler_id == user),
            select(co.c.case_id).join(case, case.c.id == co.c.case_id)
            .where(co.c.user_id == user, case.c.status == CaseStatus.OPEN).exists(),
            exists().where(post.c.status == PostStatus.DRAFT, post.c.created_by_id == user)]
    if not approves_elsewhere:
        work.append(exists().where(post.c.status == PostStatus.AWAITING_APPROVAL, post.c.approver_id == user))
    return select(or_(*work))


_HAS_WORK = {approves: _has_work(approves) for approves in (False, True)}


def is_handler(actor: User) -> bool:
    """A handler by role (journals, and sees only own and co-handled cases), or anyone who has handler's
    work: an open case they handle or co-handle, a draft they wrote, a post waiting for their approval."""
    if actor.can("journal") and not scope.sees_all(actor):
        return True
    return bool(_run(_HAS_WORK[actor.can("approve")], {"user_id": actor.id}).scalar())


# Handler ---------------------------------------------------------------------------------------


def open_cases(actor: User) -> Rows:
    """My open cases (own and co-handled), oldest first, with their clients."""
    # Own and co-handled apart (a co-handled case I also handle is own): the oldest few of each, merged,
    # and each side counted exactly. Own from the index of (handler, status, opened); the co-handled ones
    # (few) found once, a CTE, for their first few and their count. As one list with an OR, the database
    # sorted and counted every open case of a giant caseload for ten.
    me, co = actor.id, case_cohandler
    own = select(Case.id, Case.opened_on).where(Case.handler_id == me, Case.status == CaseStatus.OPEN)
    co_found = (select(Case.id, Case.opened_on).join(co, co.c.case_id == Case.id)
                .where(co.c.user_id == me, Case.status == CaseStatus.OPEN, Case.handler_id != me).cte())
    co_handled = select(co_found.c.id, co_found.c.opened_on)
    total = (select(func.count()).select_from(own.subquery()).scalar_subquery()
             + select(func.count()).select_from(co_found).scalar_subquery())
    return _first_merged([own.order_by(Case.opened_on, Case.id),
                          co_handled.order_by(co_found.c.opened_on, co_found.c.id)], Case, total,
                         (joinedload(Case.client), joinedload(Case.organisation)), OPEN_SHOWN, capped=False)


# Open cases past which a handler's drafts are taken to be dense among all drafts (drafts, handler_panel).
MANY_CASES = 200


def drafts(actor: User, many_cases: bool = False) -> Rows:
    """Drafts I wrote, or that wait in a case I am responsible for; oldest first. A post held back from
    access that the leader has not released is left out: it waits for the leader, not for me."""
    # The drafts of my cases are all in my scope; those I wrote need the scope. Counted up to COUNT_CAP.
    # With many cases (more open cases than MANY_CASES), my drafts are dense among all: walked in the
    # list's order (the index of status and registration), each one's case looked up as the walk reaches
    # it, until the few shown. With few, such a walk would read every draft and its case: the drafts are
    # found by author and from my cases instead (a few posts each), and sorted. Found so for a giant
    # caseload, its drafts were all sorted and counted for ten.
    me, draft = actor.id, JournalPost.status == PostStatus.DRAFT
    ids = (select(JournalPost.id).join(Case, JournalPost.case_id == Case.id)
           .where(draft, or_(Case.handler_id == me, and_(JournalPost.created_by_id == me, scope.case_clause(actor))),
                  or_(JournalPost.held_back.is_not(True), JournalPost.hold_decision == hold_back.RELEASED)))
    if not many_cases:
        ids = ids.where(JournalPost.id.in_(union_all(
            select(JournalPost.id).where(JournalPost.created_by_id == me, draft),
            select(JournalPost.id).join(Case, JournalPost.case_id == Case.id).where(Case.handler_id == me, draft))))
    return _first_counted(ids, JournalPost, (JournalPost.registered_at, JournalPost.id),
                          _capped(ids.order_by(JournalPost.registered_at, JournalPost.id)),
                          (joinedload(JournalPost.case).joinedload(Case.client),), OPEN_SHOWN)


def returned_to_me(actor: User) -> Rows:
    """Drafts an approver sent back to me with a comment: rows of (post, the return event)."""
    later = aliased(PostEvent)
    last_return = (select(func.max(later.id)).where(later.post_id == JournalPost.id, later.kind == "returned")
                   .scalar_subquery())
    return _first(select(JournalPost, PostEvent).join(PostEvent, PostEvent.post_id == JournalPost.id)
                  .join(Case, JournalPost.case_id == Case.id)
                  .where(JournalPost.status == PostStatus.DRAFT, PostEvent.id == last_return,
                         PostEvent.to_user_id == actor.id, scope.case_clause(actor))
                  .options(joinedload(JournalPost.case), joinedload(PostEvent.actor))
                  .order_by(PostEvent.at, PostEvent.id), OPEN_SHOWN)


def sent_for_approval(actor: User) -> Rows:
    """Posts I sent to approval that still wait for the approver."""
    return _first(select(JournalPost).join(Case, JournalPost.case_id == Case.id)
                  .where(rare(JournalPost.status == PostStatus.AWAITING_APPROVAL),
                         JournalPost.approval_requested_by_id == actor.id, scope.case_clause(actor))
                  .options(joinedload(JournalPost.case), joinedload(JournalPost.approver))
                  .order_by(JournalPost.approval_requested_at, JournalPost.id), OPEN_SHOWN)


def to_approve(actor: User, everyone: bool = False) -> Rows:
    """Posts waiting for my approval, oldest first; everyone=True: every waiting post (a leader who
    sees all, as the approvals page has it)."""
    query = select(JournalPost).where(JournalPost.status == PostStatus.AWAITING_APPROVAL)
    if not everyone:
        query = query.where(JournalPost.approver_id == actor.id)
    return _first(query.options(joinedload(JournalPost.case).joinedload(Case.client),
                                joinedload(JournalPost.approval_requested_by))
                  .order_by(JournalPost.approval_requested_at, JournalPost.id))


def my_outstanding(actor: User) -> Rows:
    """My restanser (own and co-handled cases), the oldest few and the count."""
    if not (actor.can("search_own") or actor.can("search_all")):
        return Rows()
    # The restanseliste's rows for my cases (cases/posts.py, outstanding with handler_id=me) and their
    # count in one statement. My cases are within anyone's scope, so the posts are matched to my cases'
    # ids without looking up each post's case. The list's order is the document's date, else the date
    # received, else the day registered: the posts with a document date (nearly all) walked in that order
    # from the index of 0021, the others (few) sorted, the first few of each merged; sorting all of a
    # giant caseload's 43,000 restanser for five was most of the page. Counted up to COUNT_CAP (the
    # restanseliste, linked, counts them all).
    mine = (*posts.outstanding_posts(), _in_my_cases(JournalPost.case_id, actor.id))
    order = posts.outstanding_order()
    dated = (select(JournalPost.id, JournalPost.document_date.label("day"), JournalPost.registered_at)
             .where(*mine, JournalPost.document_date.is_not(None))
             # written_off_at (NULL here) first: PostgreSQL follows an index's order past "IS NULL" only so
             .order_by(JournalPost.written_off_at, JournalPost.document_date, JournalPost.registered_at,
                       JournalPost.id))
    undated = (select(JournalPost.id, order[0].label("day"), JournalPost.registered_at)
               .where(*mine, rare(JournalPost.document_date.is_(None))).order_by(*order))
    firsts = [part.limit(SHOWN).subquery() for part in (dated, undated)]
    merged = union_all(*(select(f.c.id, f.c.day, f.c.registered_at) for f in firsts)).subquery()
    page = select(merged.c.id).order_by(merged.c.day, merged.c.registered_at, merged.c.id).limit(SHOWN).subquery()
    total = _capped(select(JournalPost.id).where(*mine))
    result = db.session.execute(select(JournalPost, total.label("total")).join(page, page.c.id == JournalPost.id)
                                .options(joinedload(JournalPost.case).joinedload(Case.client),
                                         joinedload(JournalPost.case).joinedload(Case.handler))
                                .order_by(*order)).unique().all()
    return Rows([r[0] for r in result], _total(result[0][1])) if result else Rows()


def to_close(actor: User) -> Rows:
    """My cases the closing worklist names (finished assessments and statements, idle follow-ups): the
    worklist's two lists (cases/service.py, worklist), the finished first; they never share a case
    (different categories)."""
    # Each list as my own cases (the index of handler, status and last activity, walked in the list's
    # order) and the co-handled ones (few), the oldest few of each merged, in one statement; the total
    # counted up to COUNT_CAP, each part walked in the same order. With "mine or co-handled" as an OR,
    # every open case of the category was checked for its posts, a giant caseload's thousands, for five.
    me, co, key = actor.id, case_cohandler, Case.last_activity_at
    # The open cases I co-handle and do not handle, found once; each list's co-handled ones found once
    # from them (a CTE each) for their first few and their count: each is a look-up of the case and of
    # its posts, and their order no index gives.
    co_open = (select(Case.id).join(co, co.c.case_id == Case.id)
               .where(co.c.user_id == me, Case.status == CaseStatus.OPEN, Case.handler_id != me).cte())
    sides = []
    for clauses in cases.worklist_clauses(actor, None):
        co_side = select(Case.id, key).where(Case.id.in_(select(co_open.c.id)), *clauses).cte()
        sides += [select(Case.id, key).where(*clauses, Case.handler_id == me).order_by(key, Case.id),
                  select(co_side.c.id, co_side.c.last_activity_at).order_by(co_side.c.last_activity_at, co_side.c.id)]
    return _first_merged(sides, Case, _capped(*sides), (joinedload(Case.client), joinedload(Case.handler)),
                         parts=(0, 0, 1, 1))


def _first_merged(sides: list, entity: Any, total: Any, options: tuple = (), limit: int = SHOWN,
                  parts: tuple = (), capped: bool = True) -> Rows:
    """The first objects of a list made of disjoint parts and the list's `total`, in one round trip.
    `sides`: SELECTs of entity's id and the list's order column, ordered by it and the id (each an
    ordered index walk that stops early where it can); `parts`: each side's part, the parts shown in
    that order, a part's sides merged; `total`: a scalar subquery (capped: _capped's count)."""
    firsts = [side.add_columns(literal(part).label("part")).limit(limit).subquery()
              for side, part in zip(sides, parts or (0,) * len(sides), strict=True)]
    merged = union_all(*(select(*f.c[:3]) for f in firsts)).subquery()
    key, part = merged.c[1], merged.c[2]
    ids = select(merged.c[0].label("id"), key.label("key"), part.label("part")).order_by(part, key, merged.c[0])
    page = ids.limit(limit).subquery()
    result = db.session.execute(select(entity, total.label("total")).join(page, page.c.id == entity.id)
                                .options(*options).order_by(page.c.part, page.c.key, entity.id)).unique().all()
    if not result:
        return Rows()
    return Rows([r[0] for r in result], _total(result[0][1]) if capped else result[0][1])


def unread_notifications(actor: User) -> Rows:
    return _first(select(Notification).where(Notification.user_id == actor.id, Notification.read_at.is_(None))
                  .order_by(Notification.created_at.desc(), Notification.id.desc()))


def handler_panel(actor: User) -> dict[str, Rows]:
    mine = open_cases(actor)
    panel = {
        "open_cases": mine,
        "drafts": drafts(actor, many_cases=mine.total > MANY_CASES),
        "returned": returned_to_me(actor),
        "sent_for_approval": sent_for_approval(actor),
        "outstanding": my_outstanding(actor),
        "to_close": to_close(actor),
        "notifications": unread_notifications(actor),
    }
    if not actor.can("approve"):  # a team coordinator approves too; a leader has the leader's panel
        panel["to_approve"] = to_approve(actor)
    return panel


# Secretary -------------------------------------------------------------------------------------


def _waiting_clause(item):
    """The inbox's "open" filter on the inbox_item columns `item`: waiting items, and refusals by the
    intake nobody has looked at."""
    return and_(_one_of(item.status, OPEN_STATUSES + (InboxStatus.SYSTEM_REJECTED,)),
                or_(item.status != InboxStatus.SYSTEM_REJECTED, item.rejected_by_id.is_(None)))


def _one_of(column: Any, values: tuple) -> Any:
    """column IN (a few constants), each its own parameter: an "expanding" IN list (column.in_(values)) is
    written out into the statement again on every execution, which cost more than the lookup itself."""
    return column.in_([literal(value, column.type) for value in values])


class Person(NamedTuple):
    username: str
    full_name: str


class TakenItem(NamedTuple):
    """What the secretary's panel shows of an item in progress (no ORM object per row)."""

    id: int
    filename: str
    claimed_by: Person | None
    claimed_at: datetime | None


class DueOriginal(NamedTuple):
    """What the secretary's panel shows of a paper original due for destruction."""

    id: int
    label: Any  # the scanned item's file name, or the original's id when the item is gone
    destroy_by: Any
    storage_place: str


# The secretary's panel's three statements, on the tables and built once: built per request through the
# ORM (and its rows made into objects with every column) they cost more than running them.
_item, _claimer, _paper = InboxItem.__table__, User.__table__.alias("claimer"), PaperOriginal.__table__
_INBOX_COUNTS = (select(_item.c.status, func.count(_item.c.id)).where(_waiting_clause(_item.c))
                 .group_by(_item.c.status))
_IN_PROGRESS = (select(_item.c.id, _item.c.filename, _claimer.c.username, _claimer.c.full_name, _item.c.claimed_at,
                       func.count().over())
                .select_from(_item.outerjoin(_claimer, _claimer.c.id == _item.c.claimed_by_id))
                .where(_one_of(_item.c.status, (InboxStatus.IN_PROGRESS, InboxStatus.CHECKED)),
                       _item.c.claimed_by_id.is_not(None))
                .order_by(_item.c.claimed_at, _item.c.id).limit(SHOWN))
_PAPER_DUE = (select(_paper.c.id, _item.c.id, _item.c.filename, _paper.c.destroy_by, _paper.c.storage_place,
                     func.count().over())
              .select_from(_paper.outerjoin(_item, _item.c.id == _paper.c.item_id))
              .where(_paper.c.destroyed_at.is_(None), _paper.c.destroy_by <= bindparam("today"))
              .order_by(_paper.c.destroy_by, _paper.c.id).limit(SHOWN))


def inbox_by_status() -> list[tuple[str, int]]:
    """Waiting post registration items counted by status, in the order the work goes."""
    counts: dict = dict(_run(_INBOX_COUNTS).all())
    order = (*OPEN_STATUSES, InboxStatus.SYSTEM_REJECTED)
    return [(InboxStatus(s).value, counts[s]) for s in order if counts.get(s)]


def inbox_in_progress() -> Rows:
    """Items someone has taken and not finished, longest taken first, with who has them."""
    rows = _run(_IN_PROGRESS).all()
    return Rows([TakenItem(item_id, filename, Person(username, name) if username is not None else None, at)
                 for item_id, filename, username, name, at, _total in rows], rows[0][-1] if rows else 0)


def paper_due() -> Rows:
    """Paper originals whose keeping time has run out and that are not destroyed yet."""
    rows = _run(_PAPER_DUE, {"today": today()}).all()
    return Rows([DueOriginal(paper_id, filename if item_id is not None else paper_id, destroy_by, place)
                 for paper_id, item_id, filename, destroy_by, place, _total in rows], rows[0][-1] if rows else 0)


def secretary_panel(actor: User) -> dict[str, Any]:
    return {"inbox": inbox_by_status(), "in_progress": inbox_in_progress(), "paper_due": paper_due()}


# Consultant ------------------------------------------------------------------------------------


def stuck_since() -> datetime:
    """Jobs created before this and still Ny or Under arbeid are stuck (the header's alert time)."""
    return utcnow() - timedelta(minutes=int(runtime_settings.value("alerts.archive_minutes")))


class TroubledJob(NamedTuple):
    """What the consultant's panel shows of an archive job (no ORM object per row): the columns the
    Message column is made of (job_messages.shown, correction_url), the post's number or else the case's,
    and the client's name (None: no client)."""

    id: int
    event: str
    case_id: int
    job_status: JobStatus
    created_at: datetime
    message: str
    message_code: str | None
    message_params: dict | None
    number: str
    client_name: str | None


# The consultant's job lists, on the tables and built once (as the secretary's): the job's columns the
# panel shows, its case's number, its post's number (its own case's number and the post's seq) and its
# client's name.
_job, _job_case, _job_post = ArchiveJob.__table__, Case.__table__.alias("job_case"), JournalPost.__table__
_post_case, _job_client = Case.__table__.alias("post_case"), Client.__table__
_JOBS = (select(_job.c.id, _job.c.event, _job.c.case_id, _job.c.job_status, _job.c.created_at, _job.c.message,
                _job.c.message_code, _job.c.message_params, _job_case.c.number, _job_post.c.id, _post_case.c.number,
                _job_post.c.seq, _job_client.c.id, _job_client.c.given_name, _job_client.c.family_name,
                func.count().over())
         .select_from(_job.outerjoin(_job_case, _job_case.c.id == _job.c.case_id)
                      .outerjoin(_job_post, _job_post.c.id == _job.c.post_id)
                      .outerjoin(_post_case, _post_case.c.id == _job_post.c.case_id)
                      .outerjoin(_job_client, _job_client.c.id == _job.c.client_id))
         .where(_job.c.deleted_at.is_(None)).limit(SHOWN))
_FAILED_JOBS = _JOBS.where(_job.c.archive_status == ArchiveStatus.FAILED).order_by(_job.c.id.desc())
_STUCK_JOBS = (_JOBS.where(rare(_one_of(_job.c.job_status, (JobStatus.NEW, JobStatus.IN_PROGRESS))),
                           _job.c.archive_status != ArchiveStatus.FAILED, _job.c.created_at < bindparam("since"))
               .order_by(_job.c.created_at, _job.c.id))
_CORRECTIONS = (_JOBS.where(_job.c.archive_status == ArchiveStatus.FAILED,
                            _job.c.message_code == "unarchivable_text")
                .order_by(_job.c.id.desc()))


def _job_rows(statement, params: dict | None = None) -> Rows:
    rows = _run(statement, params).all()
    return Rows([TroubledJob(job_id, event, case_id, status, created, message, code, params_,
                             f"{post_case}-{seq}" if post_id is not None else case_number,
                             f"{given} {family}" if client_id is not None else None)
                 for (job_id, event, case_id, status, created, message, code, params_, case_number, post_id,
                      post_case, seq, client_id, given, family, _total) in rows],
                rows[0][-1] if rows else 0)


def failed_jobs() -> Rows:
    """Failed archive jobs, newest first (as the archive log puts them on top)."""
    return _job_rows(_FAILED_JOBS)


def stuck_jobs() -> Rows:
    """Jobs still Ny or Under arbeid after the alert time, oldest first."""
    return _job_rows(_STUCK_JOBS, {"since": stuck_since()})


def corrections_asked(actor: User) -> Rows:
    """Failed jobs that only a metadata correction helps: the archive refused their text. This is how a
    correction is asked for today; there is no request from a handler to the consultant."""
    if not actor.can("correct_metadata"):
        return Rows()
    return _job_rows(_CORRECTIONS)


class FailedDispatch(NamedTuple):
    """What the consultant's panel shows of a dispatch SvarUt did not deliver."""

    id: int
    post_id: int
    recipient_name: str
    status: Any
    updated_at: datetime
    message: str


def _dispatch_failures(visible: Any) -> Select:
    """The dispatch failures page's rows (dispatch/service.py, failures) of the cases `visible` lets the
    actor see, as plain columns, the first few and their total in one statement."""
    return (select(Dispatch.id, Dispatch.post_id, Dispatch.recipient_name, Dispatch.status, Dispatch.updated_at,
                   Dispatch.message, func.count().over())
            .join(JournalPost, Dispatch.post_id == JournalPost.id).join(Case, JournalPost.case_id == Case.id)
            .where(dispatch.needs_a_person(), visible)
            .order_by(Dispatch.updated_at.desc(), Dispatch.id.desc()).limit(SHOWN))


# Built once for those who see every case (the consultant); per request for anyone else (their scope).
_DISPATCHES_OF_ALL = _dispatch_failures(true())


def failed_dispatches(actor: User) -> Rows:
    """Letters SvarUt did not deliver and nobody has sent on paper (the dispatch failures page)."""
    if not actor.can("send"):
        return Rows()
    query = _DISPATCHES_OF_ALL if scope.sees_all(actor) else _dispatch_failures(scope.case_clause(actor))
    rows = _run(query).all()
    return Rows([FailedDispatch(*row[:-1]) for row in rows], rows[0][-1] if rows else 0)


def consultant_panel(actor: User) -> dict[str, Any]:
    return {"failed_jobs": failed_jobs(), "stuck_jobs": stuck_jobs(), "failed_dispatches": failed_dispatches(actor),
            "corrections": corrections_asked(actor), "corrections_known": set(CORRECTIONS)}


# Leader ----------------------------------------------------------------------------------------


def my_teams(actor: User) -> list[int]:
    """The teams the actor belongs to or coordinates."""
    member = select(group_member.c.group_id).where(group_member.c.user_id == actor.id)
    return list(db.session.scalars(select(AccessGroup.id).where(
        or_(AccessGroup.id.in_(member), AccessGroup.coordinator_id == actor.id))))


def team_cases(actor: User, teams: list[int]) -> Rows:
    """Open cases of the actor's teams, oldest first: handled or co-handled by a member or the coordinator
    of one of them, or carrying one of them as access group."""
    people = select(group_member.c.user_id).where(group_member.c.group_id.in_(teams)).union(
        select(AccessGroup.coordinator_id).where(AccessGroup.id.in_(teams), AccessGroup.coordinator_id.is_not(None)))
    co = exists().where(case_cohandler.c.case_id == Case.id, case_cohandler.c.user_id.in_(people))
    of_team = or_(Case.access_group_id.in_(teams), Case.handler_id.in_(people), co)
    return _first(select(Case).where(Case.status == CaseStatus.OPEN, of_team, scope.case_clause(actor))
                  .options(joinedload(Case.client), joinedload(Case.handler)).order_by(Case.opened_on, Case.id),
                  TEAM_SHOWN)


def open_cases_by_handler(actor: User) -> list[tuple[User, int, Any]]:
    """Without a team: every handler with open cases, most first (handler, open cases they handle or
    co-handle, oldest opened)."""
    # Per person: the open cases they handle (the index of status, handler and opened, grouped as it is
    # ordered) and those they co-handle and do not handle (the co-handler pairs of the open cases); summed,
    # each case once per person, and only then joined to the few users. As one list of (case, person)
    # pairs counted distinct, every pair was sorted.
    # (The co-handler pairs from an alias: the scope's own EXISTS on case_cohandler must not correlate to them.)
    visible = (Case.status == CaseStatus.OPEN, scope.case_clause(actor))
    co = case_cohandler.alias("pair")
    parts = union_all(select(Case.handler_id.label("user_id"), func.count().label("n"),
                             func.min(Case.opened_on).label("oldest")).where(*visible).group_by(Case.handler_id),
                      select(co.c.user_id, func.count(), func.min(Case.opened_on))
                      .join(Case, Case.id == co.c.case_id).where(*visible, Case.handler_id != co.c.user_id)
                      .group_by(co.c.user_id)).subquery()
    per_user = (select(parts.c.user_id, cast(func.sum(parts.c.n), Integer).label("n"),
                       func.min(parts.c.oldest).label("oldest")).group_by(parts.c.user_id).subquery())
    query = (select(User, per_user.c.n, per_user.c.oldest).join(per_user, per_user.c.user_id == User.id)
             .order_by(per_user.c.n.desc(), User.full_name).limit(50))
    return [(u, n, oldest) for u, n, oldest in db.session.execute(query).all()]


def approval_warn_days() -> int:
    return int(runtime_settings.value("alerts.approval_warn_days"))


def leader_panel(actor: User) -> dict[str, Any]:
    teams = my_teams(actor)
    held = hold_back.waiting(actor, limit=SHOWN)
    return {
        "approvals": to_approve(actor, everyone=scope.sees_all(actor)),
        "held_back": Rows(held, len(held) if len(held) < SHOWN else hold_back.count(actor)),
        "teams": bool(teams),
        "team_cases": team_cases(actor, teams) if teams else Rows(),
        "by_handler": [] if teams else open_cases_by_handler(actor),
        "warn_days": approval_warn_days(),
    }
