"""Sign-in, lockout and server-side sessions."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ..activity import service as activity
from ..clock import utcnow
from ..errors import DomainError, Invalid
from ..extensions import db
from ..logs import mask_national_ids
from ..models import AccessGroup, LoginThrottle, Role, User, UserSession
from . import cache
from .passwords import MIN_LENGTH, hash_password, verify_password


class SignInRefused(DomainError):
    status = 401


BAD_CREDENTIALS = _l("Wrong username or password.")
LOCKED_OUT = _l("Too many failed sign-ins for this username. Try again later.")
CLIENT_LOCKED = _l("Too many failed sign-ins from your network address. Try again later.")
DEACTIVATED = _l("This user has been deactivated. Ask the administrative consultant.")
# The throttle row of a client address (a username never holds ":").
CLIENT_PREFIX = "client:"


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_username(username: str) -> str:
    return (username or "").strip().lower()[:80]


def sign_in(username: str, password: str, client_ip: str = "") -> tuple[User, str]:
    """Check a username and password; return the user and a new session token, or refuse.

    The attempt is counted before the password is checked (docs/decisions.md, "Sign-in throttles"):
    against the username, and against the client's address when there is one. A username or address
    that is locked, or whose attempts in the window have reached the limit, is refused at once."""
    name = normalise_username(username)
    keys = _throttle_keys(name, client_ip)
    refused = _reserve(keys)
    if refused is not None:
        _refuse_locked(name, refused)

    user = db.session.scalar(select(User).where(User.username == name)) if name else None
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active:
        _lock_if_used_up(keys)
        if user is not None and ok:
            activity.record("sign_in_refused", actor=user, object_type="user", object_id=user.id,
                            outcome="refused", detail="deactivated")
            db.session.commit()
            raise SignInRefused(DEACTIVATED)
        activity.record("sign_in_failed", actor=user, actor_name=mask_national_ids(name), object_type="user",
                        object_id=user.id if user else None, outcome="failed")
        db.session.commit()
        raise SignInRefused(BAD_CREDENTIALS)

    refused = _clear_on_success(keys)
    if refused is not None:  # a parallel wrong guess set a lock while this password was checked
        db.session.rollback()
        _refuse_locked(name, refused)
    token = secrets.token_urlsafe(32)
    created_at = utcnow()
    db.session.add(UserSession(token_hash=_hash_token(token), user_id=user.id, created_at=created_at))
    activity.record("sign_in", actor=user, object_type="user", object_id=user.id)
    db.session.commit()
    user.session_token = token
    _keep_new_session(token, user, created_at)
    return user, token


def _keep_new_session(token: str, user: User, created_at: datetime) -> None:
    """The new session's user, kept at once (the next request need not read it): read after the commit,
    under the change stamp as it was before the reads."""
    kept = cache.caches()
    stamp = kept.auth.read()
    db.session.refresh(user)
    user.forget_permissions()
    for group in user.groups:
        for role in group.roles:
            role.permission_codes()
    kept.keep_signed_in(token, stamp, user, created_at)


def _throttle_keys(name: str, client_ip: str) -> list[tuple[str, int, str]]:
    """(row key, limit, kind) for the attempt. The client's row comes first: every transaction that
    takes both rows takes them in this order, so two attempts never wait for each other in a cycle.
    A typed name with ":" (never a username) gets a prefix, so it cannot name a client's row."""
    config = current_app.config
    keys = []
    if client_ip:
        keys.append((f"{CLIENT_PREFIX}{client_ip}"[:80], int(config["PPT_LOGIN_CLIENT_MAX_FAILURES"]), "client"))
    if name:
        keys.append((name if ":" not in name else f"user:{name}"[:80], int(config["PPT_LOGIN_MAX_FAILURES"]),
                     "username"))
    return keys


def _locked(throttle: LoginThrottle | None, now: datetime) -> bool:
    return throttle is not None and throttle.locked_until is not None and throttle.locked_until > now


def _refuse_locked(name: str, kind: str):
    activity.record("sign_in_client_locked" if kind == "client" else "sign_in_locked",
                    actor_name=mask_national_ids(name), object_type="user", outcome="refused")
    db.session.commit()
    raise SignInRefused(CLIENT_LOCKED if kind == "client" else LOCKED_OUT)


def _reserve(keys: list[tuple[str, int, str]]) -> str | None:
    """Count one attempt against every key, in a transaction of its own that is committed before the
    password is checked; or, if a key is locked or its attempts in the window have reached the
    limit, count nothing and return that key's kind. Each row is read on fresh data under its lock,
    so attempts sent at once (several web workers) are each counted and at most the limit get through."""
    window = timedelta(seconds=current_app.config["PPT_LOGIN_LOCKOUT_SECONDS"])
    for _attempt in range(5):
        db.session.rollback()  # end any read transaction: count on what is committed now
        now = utcnow()
        try:
            for key, limit, kind in keys:
                # The no-op UPDATE takes the write lock (SQLite); FOR UPDATE takes the row's lock
                # (PostgreSQL: a row committed after the UPDATE looked is locked here too). Both are
                # held until this transaction ends, so the count is read and written by one attempt at a time.
                db.session.execute(update(LoginThrottle).where(LoginThrottle.username == key)
                                   .values(failures=LoginThrottle.failures))
                throttle = db.session.get(LoginThrottle, key, populate_existing=True, with_for_update=True)
                if throttle is None:
                    throttle = LoginThrottle(username=key, failures=0, first_failure_at=now)
                    db.session.add(throttle)
                    db.session.flush()  # a parallel first attempt made the row just now: IntegrityError
                elif _locked(throttle, now):
                    db.session.rollback()
                    return kind
                elif throttle.first_failure_at < now - window or throttle.locked_until is not None:
                    # An old streak, or a lockout that has run out: start counting again.
                    throttle.failures, throttle.first_failure_at, throttle.locked_until = 0, now, None
                elif throttle.failures >= limit:  # the last allowed attempts are being checked now
                    db.session.rollback()
                    return kind
                throttle.failures += 1
            db.session.commit()
            return None
        except IntegrityError:
            continue
    raise RuntimeError("could not count a sign-in attempt")


def _lock_if_used_up(keys: list[tuple[str, int, str]]) -> None:
    """A refused password: lock each key whose attempts have reached its limit. Part of the
    transaction that records the refusal."""
    db.session.rollback()
    until = utcnow() + timedelta(seconds=current_app.config["PPT_LOGIN_LOCKOUT_SECONDS"])
    for key, limit, _kind in keys:
        db.session.execute(update(LoginThrottle)
                           .where(LoginThrottle.username == key, LoginThrottle.failures >= limit,
                                  LoginThrottle.locked_until.is_(None))
                           .values(locked_until=until).execution_options(synchronize_session=False))


def _clear_on_success(keys: list[tuple[str, int, str]]) -> str | None:
    """A right password: the username's count starts again, and this attempt no longer counts against
    the client. Returns the kind of a key that a parallel attempt locked meanwhile (then the sign-in
    is refused), else None. Part of the sign-in's transaction."""
    db.session.rollback()
    now = utcnow()
    for key, _limit, kind in keys:
        if kind == "client":
            db.session.execute(update(LoginThrottle)
                               .where(LoginThrottle.username == key, LoginThrottle.failures > 0)
                               .values(failures=LoginThrottle.failures - 1)
                               .execution_options(synchronize_session=False))
        else:
            db.session.execute(delete(LoginThrottle)
                               .where(LoginThrottle.username == key,
                                      or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now))
                               .execution_options(synchronize_session=False))
    by_key = {key: kind for key, _limit, kind in keys}
    locked = db.session.scalar(select(LoginThrottle.username)
                               .where(LoginThrottle.username.in_(list(by_key)), LoginThrottle.locked_until > now)
                               .limit(1)) if by_key else None
    return by_key[locked] if locked is not None else None


def load_session_user(token: str) -> User | None:
    """The user behind a session token, if the session is live and the user active.

    This runs on every request: the session's user is kept per process (auth/cache.py) and read again
    only when a change to the users' tables was committed (by any process) or the entry is older than
    cache.USER_SECONDS; the session's age is checked on every request."""
    if not token:
        return None
    kept = cache.caches()
    max_age = timedelta(hours=current_app.config.get("PPT_SESSION_HOURS", 12))
    entry = kept.signed_in(token)
    if entry is not None:
        if entry.session_created_at < utcnow() - max_age:
            kept.forget(token)
            return None
        user = cache.user_from(entry, db.session)
        user.session_token = token
        return user
    stamp = kept.auth.read()  # before the query: a change committed after it is seen on the next request
    # One query for the session, its user, roles and permissions, and their teams' roles in one more.
    row = db.session.get(UserSession, _hash_token(token), options=[
        joinedload(UserSession.user).joinedload(User.roles).joinedload(Role.permissions),
        joinedload(UserSession.user).selectinload(User.groups).selectinload(AccessGroup.roles)
        .selectinload(Role.permissions)])
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    if row.created_at < utcnow() - max_age:
        return None
    user = row.user
    user.session_token = token
    kept.keep_signed_in(token, stamp, user, row.created_at)
    return user


def sign_out(user: User) -> None:
    """Revoke the server-side session, so the old cookie no longer signs anyone in."""
    if user.session_token:
        row = db.session.get(UserSession, _hash_token(user.session_token))
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
        cache.caches().forget(user.session_token)
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


def change_password(user: User, current_password: str, new_password: str) -> None:
    """The user's own new password, given the current one. It clears a password change that an
    administrator required, and ends the user's other sessions."""
    # A wrong current password counts as a failed sign-in for the username, so a stolen session
    # cannot be used to guess the password past the lockout.
    keys = _throttle_keys(user.username, "")
    if _reserve(keys) is not None:
        raise Invalid(LOCKED_OUT, field="current_password")
    if not verify_password(user.password_hash, current_password or ""):
        _lock_if_used_up(keys)
        activity.record("password_change_failed", actor=user, object_type="user", object_id=user.id,
                        outcome="failed")
        db.session.commit()
        raise Invalid(_l("The current password is wrong."), field="current_password")
    if _clear_on_success(keys) is not None:
        db.session.rollback()
        raise Invalid(LOCKED_OUT, field="current_password")
    if len(new_password or "") < MIN_LENGTH:
        raise Invalid(_l("The password must have at least %(n)s characters.", n=MIN_LENGTH), field="new_password")
    if verify_password(user.password_hash, new_password):
        raise Invalid(_l("Choose a password other than the current one."), field="new_password")
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    keep = _hash_token(user.session_token) if user.session_token else None
    for row in db.session.scalars(select(UserSession).where(
            UserSession.user_id == user.id, UserSession.revoked_at.is_(None), UserSession.token_hash != keep)):
        row.revoked_at = utcnow()
    activity.record("password_changed", actor=user, object_type="user", object_id=user.id)
    db.session.commit()
