"""Writing and reading the activity log. Rows are only ever added."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import has_request_context, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from ..clock import OSLO
from ..errors import Forbidden
from ..extensions import db
from ..models import ActivityLog, User


def record(
    action: str,
    *,
    actor: User | None = None,
    actor_name: str | None = None,
    object_type: str | None = None,
    object_id=None,
    outcome: str = "ok",
    before: dict | None = None,
    after: dict | None = None,
    detail: str = "",
) -> ActivityLog:
    """Add a row to the caller's transaction; the caller commits it with its change."""
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    row = ActivityLog(
        actor_id=actor.id if actor is not None else None,
        actor_name=(actor_name if actor_name is not None else (actor.username if actor else ""))[:80],
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id)[:64],  # a refused URL's value may be longer
        outcome=outcome,
        before=before,
        after=after,
        detail=detail,
        remote_addr=(request.remote_addr or "") if has_request_context() else "",
    )
    db.session.add(row)
    return row


@dataclass
class LogFilter:
    actor: str = ""
    action: str = ""
    object_type: str = ""
    outcome: str = ""
    date_from: date | None = None
    date_to: date | None = None


def _oslo_midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time.min, OSLO)


def reader_refusal(actor: User) -> Forbidden | None:
    """Why the actor may not read the log, or None. It shows every client's history (names, titles, what
    changed), so it is read only by a user who may also see every client: the role matrix gives
    activity_log only to a role that has search_all, and a role given it before that rule keeps the cell
    but not the page."""
    if not actor.can("activity_log"):
        return Forbidden("activity_log")
    if not actor.can("search_all"):
        return Forbidden("search_all", _l("The activity log shows every client's history: reading it also needs "
                                          "the right to search all cases and clients."))
    return None


def search(actor: User, flt: LogFilter, page: int, per_page: int):
    """A page of log rows, newest first, matching the filter (dates are Oslo days), for a reader the log
    is for (reader_refusal)."""
    if (refusal := reader_refusal(actor)) is not None:
        raise refusal
    query = select(ActivityLog).order_by(ActivityLog.id.desc())
    if flt.actor:
        query = query.where(func.lower(ActivityLog.actor_name) == flt.actor.strip().lower())
    if flt.action:
        query = query.where(ActivityLog.action == flt.action)
    if flt.object_type:
        query = query.where(ActivityLog.object_type == flt.object_type)
    if flt.outcome:
        query = query.where(ActivityLog.outcome == flt.outcome)
    if flt.date_from:
        query = query.where(ActivityLog.at >= _oslo_midnight_utc(flt.date_from))
    if flt.date_to:
        query = query.where(ActivityLog.at < _oslo_midnight_utc(flt.date_to + timedelta(days=1)))
    return db.paginate(query, page=page, per_page=per_page, error_out=False, count=True)


def known_actions() -> list[str]:
    return list(db.session.scalars(select(ActivityLog.action).distinct().order_by(ActivityLog.action)))


def record_refusal(action: str, object_type: str, object_id, detail: str, actor: User | None = None) -> None:
    """A refused request (403, or 404 for what the user may not see): whatever the request had changed is
    rolled back, and the refusal is a committed row of its own (by actor, else the signed-in user)."""
    db.session.rollback()
    record(action, actor=actor, object_type=object_type, object_id=object_id, outcome="denied", detail=detail)
    db.session.commit()
