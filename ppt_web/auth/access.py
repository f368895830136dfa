"""The one permission check used by views and services alike."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask_login import current_user

from ..errors import Forbidden
from ..models import User

PUBLIC_ATTR = "_ppt_public"


def refused(actor: User | None, *codes: str, object_type: str | None = None, object_id=None) -> Forbidden | None:
    """The Forbidden to raise unless the actor holds at least one of the permission codes; None if they do."""
    if not isinstance(actor, User) or not actor.active or not any(actor.can(c) for c in codes):
        return Forbidden(" | ".join(codes), object_type=object_type, object_id=object_id)
    return None


def require(actor: User | None, *codes: str, object_type: str | None = None, object_id=None) -> None:
    """Raise Forbidden unless the actor holds at least one of the permission codes."""
    refusal = refused(actor, *codes, object_type=object_type, object_id=object_id)
    if refusal is not None:
        raise refusal


def permission_required(*codes: str, check: Callable[[User], Forbidden | None] | None = None):
    """Guard a view by permission code(s); any one of them is enough. check: a further rule of the service
    (the user -> why not, or None), asked after the codes; the menu asks both (web.may_open)."""

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            require(current_user, *codes)
            if check is not None and (refusal := check(current_actor())) is not None:
                raise refusal
            return view(*args, **kwargs)

        wrapped._ppt_permissions = codes
        wrapped._ppt_check = check
        return wrapped

    return decorate


def current_actor() -> User:
    """The signed-in user as the services take it (the object, not Flask-Login's proxy)."""
    return current_user._get_current_object()


def public(view):
    """Mark a view as reachable without sign-in (sign-in page, health)."""
    setattr(view, PUBLIC_ATTR, True)
    return view
