"""Domain errors raised by services; the web layer maps them to status codes."""
from __future__ import annotations


class DomainError(Exception):
    """A refused action with a message for the user (already translated or lazy)."""

    status = 422

    def __init__(self, message: str = "", **details):
        super().__init__(message)
        self.message = message
        self.details = details


def raise_if(refusal: DomainError | None) -> None:
    """Raise a refusal computed by a guard (a function that says why an action is not allowed, or None).
    The same guard tells the page which actions to offer, so a page never offers what a service refuses."""
    if refusal is not None:
        raise refusal


class Invalid(DomainError):
    status = 422


class Conflict(DomainError):
    status = 409


class NotFound(DomainError):
    """Missing, or not the actor's to see: both answer 404 (docs/decisions.md, "Access scope")."""

    status = 404

    def __init__(self, message: str = "", object_type: str | None = None, object_id=None, **details):
        super().__init__(message, **details)
        self.object_type = object_type
        self.object_id = object_id


class Forbidden(DomainError):
    status = 403

    def __init__(self, permission: str, message: str = "", object_type: str | None = None, object_id=None):
        super().__init__(message)
        self.permission = permission
        self.object_type = object_type
        self.object_id = object_id
