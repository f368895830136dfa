"""Cases: registration, handlers and co-handlers, closing and reopening, the worklist."""
from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext as _ln
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from .. import form_tokens, text, validation
from ..activity import service as activity
from ..archive import outbox
from ..auth import scope
from ..auth.access import refused, require
from ..clock import today, utcnow
from ..errors import Conflict, DomainError, Invalid, raise_if
from ..extensions import changed_rows, db
from ..models import (
    AccessGroup,
    ActivityLog,
    Case,
    CaseCategory,
    CaseKind,
    CaseStatus,
    Client,
    DocumentTemplateVersion,
    JournalPost,
    Letter,
    Organisation,
    PostStatus,
    PostType,
    TemplateKind,
    User,
)
from ..models.domain import LOCKED_STATUSES, OPEN_WORK_STATUSES
from ..transaction import transaction
from . import posts

FOLLOW_UP_IDLE = timedelta(days=183)  # "follow-up cases may stay open up to 6 months"


@dataclass
class CaseData:
    kind: str
    title: str
    category: str | None = None
    client_id: int | None = None
    organisation_id: int | None = None
    handler_id: int | None = None
    access_group_id: int | None = None


def snapshot(case: Case) -> dict:
    return {
        "number": case.number, "kind": case.kind.value, "category": case.category.value if case.category else None,
        "title": case.title, "handler": case.handler.username if case.handler else None,
        "co_handlers": sorted(u.username for u in case.co_handlers),
        "access_group": case.access_group.name if case.access_group else None, "status": case.status.value,
    }


def _log(action: str, actor: User, case: Case, before: dict | None = None, detail: str = "") -> None:
    activity.record(action, actor=actor, object_type="case", object_id=case.id, before=before,
                    after=snapshot(case), detail=detail)


def register_case(actor: User, data: CaseData, token: str | None = None) -> Case:
    """Open a case. register_case may open any; a handler (journal) opens person cases for themselves.
    Once per form token (form_tokens.once)."""
    with transaction():
        return form_tokens.once(actor, token, "case", lambda: add_case(actor, data))


def add_case(actor: User, data: CaseData) -> Case:
    """register_case's work in the caller's transaction (post registration opens a case and files into it)."""
    require(actor, "register_case", "journal")
    try:
        kind = CaseKind(data.kind)
    except ValueError:
        raise Invalid(_l("Choose the kind of case."), field="kind") from None
    if not actor.can("register_case") and (kind != CaseKind.PERSON or (data.handler_id or actor.id) != actor.id):
        require(actor, "register_case")
    case = Case(kind=kind, title=validation.required_text(data.title, "title"), number=f"new-{uuid.uuid4().hex[:16]}",
                opened_on=today(), status=CaseStatus.OPEN)
    case.title_lower = case.title.lower()
    if kind == CaseKind.PERSON:
        if not data.client_id:
            raise Invalid(_l("A person case needs a client."), field="client_id")
        client = scope.client(actor, data.client_id)
        try:
            case.category = CaseCategory(data.category or "")
        except ValueError:
            raise Invalid(_l("Choose the category of the person case."), field="category") from None
        case.client = client
        handler_id = data.handler_id or client.handler_id or actor.id
    elif kind == CaseKind.SYSTEM:
        org = db.session.get(Organisation, data.organisation_id) if data.organisation_id else None
        if org is None:
            raise Invalid(_l("A system case needs an organisation."), field="organisation_id")
        case.organisation = org
        handler_id = data.handler_id or actor.id
    else:
        handler_id = data.handler_id or actor.id
    if not actor.can("register_case"):
        handler_id = actor.id
    case.handler = _active_user(handler_id, "handler_id")
    if data.access_group_id:
        case.access_group = db.session.get(AccessGroup, data.access_group_id)
        if case.access_group is None:
            raise Invalid(_l("Choose an access group from the list."), field="access_group_id")
    db.session.add(case)
    db.session.flush()
    case.number = f"{case.opened_on.year}/{case.id:05d}"
    _log("case_created", actor, case)
    outbox.case_created(case)
    return case


def _active_user(user_id: int | None, field: str) -> User:
    user = db.session.get(User, user_id) if user_id else None
    if user is None or not user.active:
        raise Invalid(_l("Choose an active user."), field=field)
    return user


def _case_for_cohandlers(actor: User, case_id: int) -> Case:
    """add_cohandler, and without search_all only on one's own case (the routine's "eigne saker")."""
    case = scope.case(actor, case_id)
    require(actor, "add_cohandler", object_type="case", object_id=case.id)
    if case.handler_id != actor.id and not scope.sees_all(actor):
        raise Conflict(_l("Only the responsible handler changes the co-handlers of this case."))
    return case


def add_cohandler(actor: User, case_id: int, user_id: int) -> Case:
    """Add a co-handler; without search_all only to one's own case."""
    case = _case_for_cohandlers(actor, case_id)
    user = _active_user(user_id, "user_id")
    if user.id == case.handler_id:
        raise Conflict(_l("The responsible handler is already on the case."))
    if user in case.co_handlers:
        return case
    before = snapshot(case)
    case.co_handlers.append(user)
    _log("case_cohandler_added", actor, case, before, user.username)
    return _handlers_saved(case)


def _handlers_saved(case: Case) -> Case:
    """Commit a change of the case's handler or co-handlers. The same change made first by another request (a
    double click, a second tab) meets the list as it is now (the co-handler there already, or gone): that
    change stands, and this one changes nothing, without an error."""
    case_id = case.id
    try:
        db.session.commit()
    except (IntegrityError, StaleDataError):
        db.session.rollback()
        found = db.session.get(Case, case_id)
        assert found is not None  # cases are never deleted
        return found
    return case


def remove_cohandler(actor: User, case_id: int, user_id: int) -> Case:
    case = _case_for_cohandlers(actor, case_id)
    user = db.session.get(User, user_id)
    if user is None or user not in case.co_handlers:
        return case
    before = snapshot(case)
    case.co_handlers.remove(user)
    _log("case_cohandler_removed", actor, case, before, user.username)
    return _handlers_saved(case)


def change_handler(actor: User, case_id: int, user_id: int) -> Case:
    case = scope.case(actor, case_id)
    require(actor, "change_handler", object_type="case", object_id=case.id)
    user = _active_user(user_id, "user_id")
    if user.id == case.handler_id:
        return case
    before = snapshot(case)
    if user in case.co_handlers:
        case.co_handlers.remove(user)
    case.handler = user
    _log("case_handler_changed", actor, case, before, user.username)
    return _handlers_saved(case)


def open_posts(case: Case) -> list[JournalPost]:
    return [p for p in case.posts if p.status in OPEN_WORK_STATUSES]


# How the open items are written off when a case is closed. TE ("tatt til etterretning": the case's
# work has taken the document into account) is the default: a case is closed because its work is
# done. TO ("tatt til orientering") is for documents that only informed. BU, BE and TLF name a
# particular answer to a particular letter, so they are given post by post, never in bulk.
CLOSING_WRITE_OFF_METHODS = ("TE", "TO")
DEFAULT_CLOSING_WRITE_OFF = "TE"


def _unsettled_query(case_id: int):
    return (select(JournalPost).where(JournalPost.case_id == case_id,
                                      JournalPost.post_type.in_(posts.WRITTEN_OFF_TYPES),
                                      JournalPost.status.in_(LOCKED_STATUSES),
                                      JournalPost.written_off_at.is_(None))
            .order_by(JournalPost.seq))


def unsettled_posts(case: Case) -> list[JournalPost]:
    """Finalized incoming posts and notes for follow-up not yet written off: what closing writes off."""
    return list(db.session.scalars(_unsettled_query(case.id)))


@dataclass
class Closing:
    """What the close action shows before the user confirms."""

    case: Case
    unfinished: list[JournalPost]  # drafts and posts in approval: they block the closing
    unsettled: list[JournalPost]  # written off by the closing


def closing(actor: User, case_id: int) -> Closing:
    """The close action's confirmation: what blocks it and what it will write off."""
    case = scope.case(actor, case_id)
    require(actor, "close_case", object_type="case", object_id=case.id)
    unfinished = list(db.session.scalars(select(JournalPost).where(
        JournalPost.case_id == case.id, JournalPost.status.in_(OPEN_WORK_STATUSES)).order_by(JournalPost.seq)))
    return Closing(case, unfinished, unsettled_posts(case))


def close_case(actor: User, case_id: int, write_off_method: str | None = None,
               expected: Collection[int] | None = None) -> Case:
    """Close a case; refused while any post is a draft or waits for approval (docs/decisions.md, "Closing a case").

    Finalized incoming posts and notes for follow-up that are not written off are written off in the same
    transaction, by the actor and with write_off_method (TE or TO), each as a single write-off is, and
    then the case is closed: the archive gets the write-offs before the closing. Without a method such
    a case is refused, saying how many. expected is the ids of the open items the user was shown: if
    they are not what is open now, nothing is done, so no one writes off a post they never saw."""
    case = scope.case(actor, case_id)
    require(actor, "close_case", object_type="case", object_id=case.id)
    if case.status == CaseStatus.CLOSED:
        raise Conflict(_l("The case is closed already."))
    if write_off_method is not None and write_off_method not in CLOSING_WRITE_OFF_METHODS:
        raise Invalid(_l("Choose how the open posts are written off."), field="write_off_method")
    # The case row's lock first (PostgreSQL: the row; SQLite: the one writer), then the open posts on
    # fresh data: a post registered at the same moment is either committed and seen here, or waits
    # for this close and then finds the case closed (posts._next_seq counts only in an open case).
    db.session.execute(update(Case).where(Case.id == case.id).values(post_seq=Case.post_seq)
                       .execution_options(synchronize_session=False))
    if db.session.scalar(select(Case.status).where(Case.id == case.id)) == CaseStatus.CLOSED:
        db.session.rollback()  # closed by another request while this one waited for the lock
        raise Conflict(_l("The case is closed already."))
    waiting = list(db.session.scalars(select(JournalPost).where(
        JournalPost.case_id == case.id, JournalPost.status.in_(OPEN_WORK_STATUSES)).order_by(JournalPost.seq)))
    if waiting:
        held = str(_l("held back from access: a leader must release it"))
        names = ", ".join(f"{p.number} {p.title or ''}".strip() + (f" ({held})" if posts.held_back_refusal(p) else "")
                          for p in waiting)
        db.session.rollback()
        raise Conflict(_l("The case cannot be closed while these posts are not finalized: %(posts)s.", posts=names))
    # Locked too (PostgreSQL), so a single write-off of one of them waits for this and then finds it done.
    unsettled = list(db.session.scalars(_unsettled_query(case.id).with_for_update()))
    if expected is not None and set(expected) != {p.id for p in unsettled}:
        db.session.rollback()
        raise Conflict(_l("Posts of the case were registered or written off since you looked. Look at the list "
                          "again before you close the case."))
    if unsettled and write_off_method is None:
        names = ", ".join(f"{p.number} {p.title or ''}".strip() for p in unsettled)
        db.session.rollback()
        raise Conflict(_ln("%(num)d post is not written off: %(posts)s. Choose how to write it off when you close "
                           "the case.",
                           "%(num)d posts are not written off: %(posts)s. Choose how to write them off when you "
                           "close the case.", len(unsettled), posts=names))
    if unsettled:  # the write-offs are the actor's: may they write off at all? asked before any is made
        raise_if(refused(actor, "journal", object_type="case", object_id=case.id))
    for post in unsettled:
        raise_if(posts.write_off_refusal(actor, post))
        posts.write_off_post(actor, post, write_off_method or DEFAULT_CLOSING_WRITE_OFF)
    before = snapshot(case)
    _case_changes(case, CaseStatus.OPEN, _l("The case is closed already."), status=CaseStatus.CLOSED,
                  closed_on=today())
    written_off = ", ".join(p.number for p in unsettled)
    _log("case_closed", actor, case, before, detail=f"{write_off_method}: {written_off}" if unsettled else "")
    outbox.case_closed(case)
    db.session.commit()
    return case


def _case_changes(case: Case, expected: CaseStatus, already, **values) -> None:
    """Close or reopen as one conditional UPDATE: of two at once, one makes the archive job, the other
    hears it is done already (docs/decisions.md, "One effect per action")."""
    if changed_rows(update(Case).where(Case.id == case.id, Case.status == expected).values(**values)
                    .execution_options(synchronize_session=False)) != 1:
        db.session.rollback()
        raise Conflict(already)
    db.session.refresh(case)


def reopen_case(actor: User, case_id: int) -> Case:
    case = scope.case(actor, case_id)
    require(actor, "close_case", object_type="case", object_id=case.id)
    if case.status == CaseStatus.OPEN:
        raise Conflict(_l("The case is open already."))
    before = snapshot(case)
    _case_changes(case, CaseStatus.CLOSED, _l("The case is open already."), status=CaseStatus.OPEN, closed_on=None,
                  last_activity_at=utcnow())
    _log("case_reopened", actor, case, before)
    outbox.case_reopened(case)
    db.session.commit()
    return case


def worklist(actor: User, limit: int = 200, handler_id: int | None = None) -> dict[str, list[Case]]:
    """Open cases that should be closed: finished assessments and statements; idle follow-ups.

    "Finished" means an expert assessment or statement case with no unfinished post and a finalized
    (or dispatched) outgoing post that is the assessment or statement itself:
    - a letter written from a template of kind expert_assessment or statement; or
    - an outgoing post with no template kind (an uploaded PDF, or a letter begun without a template)
      that a leader approved: the routine sends the expert assessment to the leader, deputy or team
      coordinator before it goes out, and the app makes every outgoing post of an expert assessment
      case go that way.
    A letter from any other template (an invitation, a plain letter) never makes a case finished,
    approved or not. An uploaded statement that was never approved is not recognised.
    handler_id narrows the lists to the cases that user handles or co-handles (the start page)."""
    finished, idle = worklist_clauses(actor, handler_id)
    base = select(Case).options(joinedload(Case.client), joinedload(Case.handler))
    return {"finished": list(db.session.scalars(base.where(*finished).order_by(Case.last_activity_at).limit(limit))),
            "idle": list(db.session.scalars(base.where(*idle).order_by(Case.last_activity_at).limit(limit)))}


def worklist_count(actor: User, handler_id: int | None = None) -> int:
    """How many cases worklist() names in all (both lists, without its limit)."""
    finished, idle = worklist_clauses(actor, handler_id)
    return db.session.scalar(select(func.count(Case.id)).where(or_(and_(*finished), and_(*idle)))) or 0


def assessment_post_clause():
    """Condition on JournalPost: it is a case's finished expert assessment or statement. An outgoing post,
    finalized or dispatched, that is a letter from an expert assessment or statement template, or, made
    without a template kind, was approved by a leader (an invitation letter is neither). The closing
    worklist and the waiting-time statistics (docs/statistics.md) share it."""
    letter_kind = (select(DocumentTemplateVersion.kind)
                   .join(Letter, Letter.template_version_id == DocumentTemplateVersion.id)
                   .where(Letter.post_id == JournalPost.id).scalar_subquery())
    is_the_assessment = or_(letter_kind.in_((TemplateKind.EXPERT_ASSESSMENT, TemplateKind.STATEMENT)),
                            and_(letter_kind.is_(None), JournalPost.approved_by_id.is_not(None)))
    return and_(JournalPost.post_type == PostType.U,
                JournalPost.status.in_((PostStatus.FINALIZED, PostStatus.DISPATCHED)), is_the_assessment)


def worklist_clauses(actor: User, handler_id: int | None) -> tuple[tuple, tuple]:
    """The conditions on Case of worklist()'s two lists: (finished, idle).

    The finished assessment is a scalar subquery (the first such post's id), which both engines test case by
    case as a list's walk reaches it: as an EXISTS, PostgreSQL made it a join and first read every finalized
    outgoing post of every case (and each one's letter), about 200 ms for a giant caseload. The unfinished
    test names every post type, so that a case's posts are tested from the index of (case, type, status)
    alone, not read one by one."""
    finished_doc = (select(JournalPost.id).where(JournalPost.case_id == Case.id, assessment_post_clause())
                    .limit(1).scalar_subquery())
    unfinished = exists().where(JournalPost.case_id == Case.id, JournalPost.post_type.in_(list(PostType)),
                                JournalPost.status.in_(OPEN_WORK_STATUSES))
    base: tuple = (Case.status == CaseStatus.OPEN, scope.case_clause(actor))
    if handler_id is not None:
        base += (or_(Case.handler_id == handler_id, Case.co_handlers.any(User.id == handler_id)),)
    return ((*base, Case.category.in_((CaseCategory.EXPERT_ASSESSMENT, CaseCategory.STATEMENT)), ~unfinished,
             finished_doc.is_not(None)),
            (*base, Case.category == CaseCategory.FOLLOW_UP, Case.last_activity_at < utcnow() - FOLLOW_UP_IDLE))


def handlers() -> list[User]:
    """Users who can be responsible for cases: active and allowed to journal."""
    users = db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.full_name))
    return [u for u in users if u.can("journal")]


def history(case: Case):
    return list(db.session.scalars(
        select(ActivityLog).where(
            or_(and_(ActivityLog.object_type == "case", ActivityLog.object_id == str(case.id)),
                and_(ActivityLog.object_type == "journal_post",
                     ActivityLog.object_id.in_([str(p.id) for p in case.posts] or ["-"]))),
            ActivityLog.outcome == "ok", ~ActivityLog.action.in_(("document_opened", "post_opened")))
        .order_by(ActivityLog.id.desc()).limit(200)))



CLIENT_CHOICES = 500  # clients the new-case form lists by name (one opened from a folder is added to them)


def clients_for(actor: User) -> list[Client]:
    return list(db.session.scalars(select(Client).where(scope.client_clause(actor)).order_by(Client.name_lower)
                                   .limit(CLIENT_CHOICES)))


def correct_refusal(actor: User, case: Case) -> DomainError | None:
    """Why the actor may not correct the case's archive metadata (None: they may)."""
    return refused(actor, "correct_metadata", object_type="case", object_id=case.id)


def correct_case(actor: User, case_id: int, reason: str, title: str) -> Case:
    """Correct a case's title, as a finalized post's metadata is corrected: a reason, the old and new
    values in the activity log, an update of the folder in the archive. Jobs of the case that failed
    on text the archive cannot carry are started again, since the correction is what they waited for.
    The change is conditional on the title this request read, so two corrections at once never both apply."""
    case = scope.case(actor, case_id)
    raise_if(correct_refusal(actor, case))
    reason = " ".join(text.clean(reason or "").split())
    if not reason:
        raise Invalid(_l("Give the reason for the correction."), field="reason")
    new_title = validation.required_text(text.clean(title or ""), "title")
    before = snapshot(case)
    if new_title == case.title:
        raise Invalid(_l("Nothing was changed."))
    with transaction():
        if not changed_rows(update(Case).where(Case.id == case.id, Case.title == case.title)
                            .values(title=new_title, title_lower=new_title.lower(), last_activity_at=utcnow())
                            .execution_options(synchronize_session=False)):
            raise Conflict(_l("The case was changed meanwhile. Look at it again before you correct it."))
        db.session.refresh(case)
        _log("case_metadata_corrected", actor, case, before, detail=reason)
        outbox.restart_unarchivable(case, actor)
        outbox.case_corrected(case)
    return case
