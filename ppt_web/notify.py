"""Notifications: a row for the header count and list, and optionally an e-mail (PPT_SMTP_HOST) that
says only that there is something to read.

The row joins the caller's transaction, so a notice exists exactly when the change it tells of
does. Its text is rendered in the service's default language: notices are read by people who
may use another language than the one who caused them.
"""
from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from .clock import utcnow
from .errors import NotFound
from .extensions import db
from .models import Notification, User
from .queue import Job, enqueue_after_commit

log = logging.getLogger(__name__)


def link(endpoint: str, **values) -> str:
    """The path of a page for a notice; works in jobs and the CLI too, where url_for has no request."""
    return current_app.url_map.bind("localhost").build(endpoint, values)


def notify(user: User, text, link: str = "") -> Notification:
    """Tell a user about something; text may be a lazy string (rendered in the default language)."""
    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "nn")):
        rendered = str(text)
    # Only a path inside the app: "//host" or "/\\host" would send a click elsewhere.
    inside = link.startswith("/") and not link.startswith(("//", "/\\"))
    row = Notification(user_id=user.id, text=rendered[:400], link=link[:400] if inside else "")
    db.session.add(row)
    if current_app.config.get("PPT_SMTP_HOST") and user.email:
        db.session.flush()
        enqueue_after_commit(Job.SEND_NOTIFICATION_MAIL, row.id)
    return row


def holders(*permissions: str) -> list[User]:
    """The active users holding any of these permissions (an office has tens of users, not thousands)."""
    return [user for user in db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.id))
            if any(user.can(code) for code in permissions)]


def send_mail(notification_id: int) -> str:
    """E-mail one notification: the text and a link, never the document itself."""
    row = db.session.get(Notification, notification_id)
    user = db.session.get(User, row.user_id) if row else None
    if row is None or user is None or not user.email:
        return "nothing to send"
    cfg = current_app.config
    message = EmailMessage()
    message["From"] = cfg["PPT_MAIL_FROM"]
    message["To"] = user.email
    # The notice's text may name a child (a case or document title): it stays in the app. The mail
    # only says there is something, with a link that asks for sign-in.
    with force_locale(cfg.get("BABEL_DEFAULT_LOCALE", "nn")):
        message["Subject"] = str(_l("New notification in the PPT app"))
        message.set_content(str(_l("You have a new notification. Sign in to read it:")) +
                            f"\n{cfg['PPT_BASE_URL'].rstrip('/')}{row.link or '/notifications'}\n")
    with smtplib.SMTP(cfg["PPT_SMTP_HOST"], int(cfg["PPT_SMTP_PORT"]), timeout=30) as smtp:
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls()
            smtp.ehlo()
        smtp.send_message(message)
    return "sent"


def latest(user_id: int, limit: int = 100) -> list[Notification]:
    """A user's newest notices, for the notifications page."""
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user_id)
                                   .order_by(Notification.created_at.desc()).limit(limit)))


def mark_read(user_id: int, notification_id: int) -> str:
    """Mark one of the user's own notices read; returns its link. Another's notice is 404."""
    row = db.session.get(Notification, notification_id)
    if row is None or row.user_id != user_id:
        raise NotFound(object_type="notification", object_id=notification_id)
    if row.read_at is None:
        row.read_at = utcnow()
        db.session.commit()
    return row.link


def mark_all_read(user_id: int) -> None:
    db.session.execute(update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
                       .values(read_at=utcnow()))
    db.session.commit()
