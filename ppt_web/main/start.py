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

Each list is one query with a limit (the total counted in the same query by a window function), so
the page costs a few queries whatever the data. The scope rules of auth/scope.py apply to every list
of cases and posts. Nothing here changes anything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select, union_all
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
    InboxItem,
    JobStatus,
    JournalPost,
    Notification,
    PaperOriginal,
    PostEvent,
    PostStatus,
    User,
)
from ..models.base import rare, unindexed
from ..models.domain import case_cohandler
from ..models.inbox import OPEN_STATUSES, InboxStatus
from ..models.user import group_member

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


def _first_by_id(ids: Select, entity: Any, order: tuple, options: tuple = (), limit: int = SHOWN) -> Rows:
    """The first objects of a list and its total, in one round trip: `ids` (a SELECT of entity's id with
    the list's conditions) ordered, cut and counted (COUNT(*) OVER ()) in a subquery, then the objects of
    those few ids with what the list shows of them (`options`), in the same order. Counted with the
    objects and their joined rows instead, the database carried every row's wide columns to count them:
    a handler with ten thousand open cases paid for ten thousand cases and clients to show ten."""
    page = ids.add_columns(func.count().over().label("total")).order_by(*order).limit(limit).subquery()
    result = db.session.execute(select(entity, page.c.total).join(page, page.c.id == entity.id)
                                .options(*options).order_by(*order)).unique().all()
    if not result:
        return Rows()
    return Rows([r[0] for r in result], result[0][1])


def _handles(user_id: int):
    """SQL condition on Case: the user is its handler or a co-handler. The co-handled cases as an IN list
    of ids (not an EXISTS per case), so that both sides of the OR are index lookups: the handler index
    and the co-handler's rows, instead of a walk through every case of the status."""
    return or_(Case.handler_id == user_id,
               Case.id.in_(select(case_cohandler.c.case_id).where(case_cohandler.c.user_id == user_id)))


def _in_my_cases(case_id, user_id: int):
    """SQL condition: case_id is a case the user handles or co-handles (any status). Two IN lists, which
    both engines test against a hashed set of the ids, not a probe per case."""
    return or_(case_id.in_(select(Case.id).where(Case.handler_id == user_id)),
               case_id.in_(select(case_cohandler.c.case_id).where(case_cohandler.c.user_id == user_id)))


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


def is_handler(actor: User) -> bool:
    """A handler by role (journals, and sees only own and co-handled cases), or anyone who has handler's
    work: an open case they handle or co-handle, a draft they wrote, a post waiting for their approval."""
    if actor.can("journal") and not scope.sees_all(actor):
        return True
    # Own and co-handled apart: each EXISTS is one index lookup (together, an OR the planner walked
    # every open case for, on every start page of every user).
    work = [exists().where(Case.status == CaseStatus.OPEN, Case.handler_id == actor.id),
            select(case_cohandler.c.case_id).join(Case, Case.id == case_cohandler.c.case_id)
            .where(case_cohandler.c.user_id == actor.id, Case.status == CaseStatus.OPEN).exists(),
            exists().where(JournalPost.status == PostStatus.DRAFT, JournalPost.created_by_id == actor.id)]
    if not actor.can("approve"):  # a team coordinator asked to approve; a leader approves in the leader's panel
        work.append(exists().where(JournalPost.status == PostStatus.AWAITING_APPROVAL,
                                   JournalPost.approver_id == actor.id))
    return bool(db.session.scalar(select(or_(*work))))


# Handler ---------------------------------------------------------------------------------------


def open_cases(actor: User) -> Rows:
    """My open cases (own and co-handled), oldest first, with their clients."""
    return _first_by_id(select(Case.id).where(Case.status == CaseStatus.OPEN, _handles(actor.id)), Case,
                        (Case.opened_on, Case.id), (joinedload(Case.client), joinedload(Case.organisation)),
                        OPEN_SHOWN)


def drafts(actor: User) -> Rows:
    """Drafts I wrote, or that wait in a case I am responsible for; oldest first. A post held back from
    access that the leader has not released is left out: it waits for the leader, not for me."""
    # "I wrote it or I am responsible for its case" as two index lookups: the drafts I wrote (by author),
    # and the drafts of my cases found from the few drafts (by status; as an OR, or from my cases'
    # side, the database read every post of every case I handle).
    mine = select(JournalPost.id).where(JournalPost.created_by_id == actor.id, JournalPost.status == PostStatus.DRAFT)
    of_my_cases = (select(JournalPost.id).join(Case, JournalPost.case_id == Case.id)
                   .where(rare(JournalPost.status == PostStatus.DRAFT), unindexed(Case.handler_id) == actor.id))
    ids = (select(JournalPost.id).join(Case, JournalPost.case_id == Case.id)
           .where(JournalPost.id.in_(union_all(mine, of_my_cases)), JournalPost.status == PostStatus.DRAFT,
                  scope.case_clause(actor),
                  or_(JournalPost.held_back.is_not(True), JournalPost.hold_decision == hold_back.RELEASED)))
    return _first_by_id(ids, JournalPost, (JournalPost.registered_at, JournalPost.id),
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
                  .where(JournalPost.status == PostStatus.AWAITING_APPROVAL,
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
    # count in one statement. My cases are within anyone's scope, so the posts (from the index of 0020
    # alone) are matched to my cases' ids without looking up each post's case: that was most of the
    # page for a handler with 40,000 restanser.
    ids = select(JournalPost.id).where(*posts.outstanding_posts(), _in_my_cases(JournalPost.case_id, actor.id))
    return _first_by_id(ids, JournalPost, posts.outstanding_order(),
                        (joinedload(JournalPost.case).joinedload(Case.client),
                         joinedload(JournalPost.case).joinedload(Case.handler)))


def to_close(actor: User) -> Rows:
    """My cases the closing worklist names (finished assessments and statements, idle follow-ups): the
    worklist's two lists (cases/service.py, worklist), each counted in its own statement; they never
    share a case (different categories), so the total is their sum."""
    finished, idle = cases.worklist_clauses(actor, actor.id)
    order = (Case.last_activity_at, Case.id)
    options = (joinedload(Case.client), joinedload(Case.handler))
    lists = [_first_by_id(select(Case.id).where(*clauses), Case, order, options) for clauses in (finished, idle)]
    return Rows((lists[0].rows + lists[1].rows)[:SHOWN], lists[0].total + lists[1].total)


def unread_notifications(actor: User) -> Rows:
    return _first(select(Notification).where(Notification.user_id == actor.id, Notification.read_at.is_(None))
                  .order_by(Notification.created_at.desc(), Notification.id.desc()))


def handler_panel(actor: User) -> dict[str, Rows]:
    panel = {
        "open_cases": open_cases(actor),
        "drafts": drafts(actor),
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


def _waiting_clause():
    """The inbox's "open" filter: waiting items, and refusals by the intake nobody has looked at."""
    return and_(InboxItem.status.in_(OPEN_STATUSES + (InboxStatus.SYSTEM_REJECTED,)),
                or_(InboxItem.status != InboxStatus.SYSTEM_REJECTED, InboxItem.rejected_by_id.is_(None)))


def inbox_by_status() -> list[tuple[str, int]]:
    """Waiting post registration items counted by status, in the order the work goes."""
    counts = dict(db.session.execute(select(InboxItem.status, func.count(InboxItem.id))
                                     .where(_waiting_clause()).group_by(InboxItem.status)).all())
    order = (*OPEN_STATUSES, InboxStatus.SYSTEM_REJECTED)
    return [(InboxStatus(s).value, counts[s]) for s in order if counts.get(s)]


def inbox_in_progress() -> Rows:
    """Items someone has taken and not finished, longest taken first, with who has them."""
    return _first(select(InboxItem).where(InboxItem.status.in_((InboxStatus.IN_PROGRESS, InboxStatus.CHECKED)),
                                          InboxItem.claimed_by_id.is_not(None))
                  .options(joinedload(InboxItem.claimed_by)).order_by(InboxItem.claimed_at, InboxItem.id))


def paper_due() -> Rows:
    """Paper originals whose keeping time has run out and that are not destroyed yet."""
    return _first(select(PaperOriginal).where(PaperOriginal.destroyed_at.is_(None), PaperOriginal.destroy_by <= today())
                  .options(joinedload(PaperOriginal.item)).order_by(PaperOriginal.destroy_by, PaperOriginal.id))


def secretary_panel(actor: User) -> dict[str, Any]:
    return {"inbox": inbox_by_status(), "in_progress": inbox_in_progress(), "paper_due": paper_due()}


# Consultant ------------------------------------------------------------------------------------


def stuck_since() -> datetime:
    """Jobs created before this and still Ny or Under arbeid are stuck (the header's alert time)."""
    return utcnow() - timedelta(minutes=int(runtime_settings.value("alerts.archive_minutes")))


def _jobs() -> Select:
    return select(ArchiveJob).where(ArchiveJob.deleted_at.is_(None)).options(
        joinedload(ArchiveJob.case), joinedload(ArchiveJob.client), joinedload(ArchiveJob.post))


def failed_jobs() -> Rows:
    """Failed archive jobs, newest first (as the archive log puts them on top)."""
    return _first(_jobs().where(ArchiveJob.archive_status == ArchiveStatus.FAILED).order_by(ArchiveJob.id.desc()))


def stuck_jobs() -> Rows:
    """Jobs still Ny or Under arbeid after the alert time, oldest first."""
    return _first(_jobs().where(rare(ArchiveJob.job_status.in_((JobStatus.NEW, JobStatus.IN_PROGRESS))),
                                ArchiveJob.archive_status != ArchiveStatus.FAILED,
                                ArchiveJob.created_at < stuck_since())
                  .order_by(ArchiveJob.created_at, ArchiveJob.id))


def corrections_asked(actor: User) -> Rows:
    """Failed jobs that only a metadata correction helps: the archive refused their text. This is how a
    correction is asked for today; there is no request from a handler to the consultant."""
    if not actor.can("correct_metadata"):
        return Rows()
    return _first(_jobs().where(ArchiveJob.archive_status == ArchiveStatus.FAILED,
                                ArchiveJob.message_code == "unarchivable_text")
                  .order_by(ArchiveJob.id.desc()))


def failed_dispatches(actor: User) -> Rows:
    """Letters SvarUt did not deliver and nobody has sent on paper (the dispatch failures page)."""
    if not actor.can("send"):
        return Rows()
    rows = dispatch.failures(actor, limit=SHOWN)
    return Rows(rows, len(rows) if len(rows) < SHOWN else dispatch.failed_count(actor))


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
    # The (case, person, opened) pairs of the open cases the actor may see, counted per person, and only
    # then joined to the few users: joined first, every pair looked its case up again.
    # (The co-handler pairs from an alias: the scope's own EXISTS on case_cohandler must not correlate to them.)
    visible = (Case.status == CaseStatus.OPEN, scope.case_clause(actor))
    co = case_cohandler.alias("pair")
    pairs = union_all(select(Case.id.label("case_id"), Case.handler_id.label("user_id"), Case.opened_on)
                      .where(*visible),
                      select(co.c.case_id, co.c.user_id, Case.opened_on)
                      .join(Case, Case.id == co.c.case_id).where(*visible)).subquery()
    per_user = (select(pairs.c.user_id, func.count(func.distinct(pairs.c.case_id)).label("n"),
                       func.min(pairs.c.opened_on).label("oldest")).group_by(pairs.c.user_id).subquery())
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
