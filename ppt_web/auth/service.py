"""Sign-in, lockout and server-side sessions."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ..activity import service as activity
from ..clock import utcnow
from ..errors import DomainError
from ..extensions import db
from ..models import LoginThrottle, Role, User, UserSession
from .passwords import verify_password


class SignInRefused(DomainError):
    status = 401


BAD_CREDENTIALS = _l("Wrong username or password.")
LOCKED_OUT = _l("Too many failed sign-ins for this username. Try again later.")
DEACTIVATED = _l("This user has been deactivated. Ask the administrative consultant.")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_username(username: str) -> str:
    return (username or "").strip().lower()[:80]


def sign_in(username: str, password: str) -> tuple[User, str]:
    """Check a username and password; return the user and a new session token, or refuse."""
    name = normalise_username(username)
    now = utcnow()
    throttle = db.session.get(LoginThrottle, name) if name else None
    if _locked(throttle, now):
        verify_password(None, password)  # same cost as a real attempt
        _refuse_locked(name)

    user = db.session.scalar(select(User).where(User.username == name)) if name else None
    ok = verify_password(user.password_hash if user else None, password)
    if not ok:
        if name:
            _count_failure(name, now)
        activity.record("sign_in_failed", actor=user, actor_name=name, object_type="user",
                        object_id=user.id if user else None, outcome="failed")
        db.session.commit()
        raise SignInRefused(BAD_CREDENTIALS)
    assert user is not None  # verify_password refuses a missing user
    if not user.active:
        activity.record("sign_in_refused", actor=user, object_type="user", object_id=user.id,
                        outcome="refused", detail="deactivated")
        db.session.commit()
        raise SignInRefused(DEACTIVATED)

    if throttle is not None:
        db.session.execute(delete(LoginThrottle).where(LoginThrottle.username == name))
    token = secrets.token_urlsafe(32)
    db.session.add(UserSession(token_hash=_hash_token(token), user_id=user.id, created_at=now))
    activity.record("sign_in", actor=user, object_type="user", object_id=user.id)
    db.session.commit()
    user.session_token = token
    return user, token


def _locked(throttle: LoginThrottle | None, now: datetime) -> bool:
    return throttle is not None and throttle.locked_until is not None and throttle.locked_until > now


def _refuse_locked(name: str):
    activity.record("sign_in_locked", actor_name=name, object_type="user", outcome="refused")
    db.session.commit()
    raise SignInRefused(LOCKED_OUT)


def _count_failure(name: str, now: datetime) -> None:
    """Count one wrong password for `name`, on fresh data under a lock, so that guesses sent at once
    (several web workers) are each counted and none is lost to another's write. A guess that meets
    a lockout set meanwhile is refused as locked."""
    window = timedelta(seconds=current_app.config["PPT_LOGIN_LOCKOUT_SECONDS"])
    for _attempt in range(5):
        db.session.rollback()  # end the read transaction: count on what is committed now
        try:
            # The no-op UPDATE takes the row's lock (PostgreSQL) or the write lock (SQLite) before
            # the count is read; it is held until this attempt commits.
            db.session.execute(update(LoginThrottle).where(LoginThrottle.username == name)
                               .values(failures=LoginThrottle.failures))
            throttle = db.session.get(LoginThrottle, name, populate_existing=True)
            if _locked(throttle, now):
                _refuse_locked(name)
            if throttle is None:
                throttle = LoginThrottle(username=name, failures=0, first_failure_at=now)
                db.session.add(throttle)
            elif throttle.first_failure_at < now - window or throttle.locked_until:
                # An old streak, or a lockout that has run out: start counting again.
                throttle.failures, throttle.first_failure_at, throttle.locked_until = 0, now, None
            throttle.failures += 1
            if throttle.failures >= current_app.config["PPT_LOGIN_MAX_FAILURES"]:
                throttle.locked_until = now + window
            db.session.flush()
            return
        except IntegrityError:  # a parallel first failure made the row just now: count on that one
            continue
    raise RuntimeError("could not count a failed sign-in")


def load_session_user(token: str) -> User | None:
    """The user behind a session token, if the session is live and the user active."""
    if not token:
        return None
    # One query for the session, its user, roles and permissions: this runs on every request.
    row = db.session.get(UserSession, _hash_token(token), options=[
        joinedload(UserSession.user).joinedload(User.roles).joinedload(Role.permissions)])
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    max_age = timedelta(hours=current_app.config.get("PPT_SESSION_HOURS", 12))
    if row.created_at < utcnow() - max_age:
        return None
    user = row.user
    user.session_token = token
    return user


def sign_out(user: User) -> None:
    """Revoke the server-side session, so the old cookie no longer signs anyone in."""
    if user.session_token:
        row = db.session.get(UserSession, _hash_token(user.session_token))
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
    activity.record("sign_out", actor=user, object_type="user", object_id=user.id)
    db.session.commit()


def revoke_all_sessions(user: User) -> None:
    """Part of the caller's transaction: end every session of a user (deactivation)."""
    for row in db.session.scalars(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    ):
        row.revoked_at = utcnow()


def set_language(user: User, locale: str) -> None:
    """The user's own choice of language for the screens (logged: it changes what they are shown)."""
    before = {"locale": user.locale}
    user.locale = locale
    activity.record("user_language_changed", object_type="user", object_id=user.id,
                    before=before, after={"locale": user.locale})
    db.session.commit()
