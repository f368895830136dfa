"""Users, roles, permissions, access groups and server-side sign-in sessions."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..extensions import Model, db
from .types import UTCDateTime

role_permission = Table(
    "role_permission",
    db.metadata,
    Column("role_id", ForeignKey("role.id", ondelete="CASCADE"), primary_key=True),
    Column("permission_code", ForeignKey("permission.code", ondelete="CASCADE"), primary_key=True),
)

user_role = Table(
    "user_role",
    db.metadata,
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("role.id", ondelete="CASCADE"), primary_key=True),
)

group_member = Table(
    "group_member",
    db.metadata,
    Column("group_id", ForeignKey("access_group.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
)

# A team carries roles: its members hold them besides their own.
group_role = Table(
    "group_role",
    db.metadata,
    Column("group_id", ForeignKey("access_group.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("role.id", ondelete="CASCADE"), primary_key=True),
)

# sysadmin_edit_all implies sysadmin_edit (docs/decisions.md, "Roles and the permission matrix").
IMPLIED = {"sysadmin_edit_all": ("sysadmin_edit",)}


class Permission(Model):
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Role(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    permissions: Mapped[list[Permission]] = relationship(secondary=role_permission, order_by=Permission.position)

    def permission_codes(self) -> set[str]:
        return {p.code for p in self.permissions}


class AccessGroup(Model):
    """A team: handlers with equal rights, mirroring the service's organisation."""

    __tablename__ = "access_group"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(String(400), default="")
    coordinator_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    coordinator: Mapped[User | None] = relationship(foreign_keys=[coordinator_id])
    roles: Mapped[list[Role]] = relationship(secondary=group_role, order_by=Role.position)
    members: Mapped[list[User]] = relationship(
        secondary=group_member, back_populates="groups", order_by="User.full_name"
    )


class User(UserMixin, Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str] = mapped_column(String(5), default="nn")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when someone else sets the password: the user must choose a new one before doing anything else.
    # Who the person is in the archive (initials or the archive's user id); empty: the username.
    archive_id: Mapped[str] = mapped_column(String(100), default="", server_default="")
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    roles: Mapped[list[Role]] = relationship(secondary=user_role, order_by=Role.position)
    groups: Mapped[list[AccessGroup]] = relationship(
        secondary=group_member, back_populates="members", order_by=AccessGroup.name
    )

    # Set by the user loader: the raw token of the server-side session this request uses.
    if TYPE_CHECKING:  # the type for mypy only: the ORM would take an annotated attribute for a column
        session_token: str | None
    session_token = None

    def get_id(self) -> str | None:
        return self.session_token

    # Flask-Login's UserMixin compares users by get_id(), here the session's token, which is None for every
    # user not signed in on this request: any two of them were equal (`user in case.co_handlers` was true
    # for any co-handler, and list.remove took off the first). One row is one object in a session, so
    # identity, as for every other model.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return bool(self.active)

    def effective_roles(self) -> list[Role]:
        """The active roles the user holds: their own and those of every team they are in, once each."""
        seen: dict[int, Role] = {}
        for role in [*self.roles, *(r for g in self.groups for r in g.roles)]:
            if role.active:
                seen.setdefault(role.id, role)
        return sorted(seen.values(), key=lambda r: (r.position, r.id))

    def permission_codes(self) -> frozenset[str]:
        """Union of the permissions of the user's active roles and their teams' roles, with implied ones."""
        cached = self.__dict__.get("_permission_cache")
        if cached is None:
            codes: set[str] = set()
            for role in self.effective_roles():
                codes |= role.permission_codes()
            for code, implied in IMPLIED.items():
                if code in codes:
                    codes.update(implied)
            cached = frozenset(codes)
            self.__dict__["_permission_cache"] = cached
        return cached

    def forget_permissions(self) -> None:
        self.__dict__.pop("_permission_cache", None)

    def can(self, code: str) -> bool:
        return code in self.permission_codes()


class UserSession(Model):
    """A signed-in browser; revoking it makes a copied cookie worthless."""

    __tablename__ = "user_session"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class LoginThrottle(Model):
    """Failed sign-ins per username (known or not), for the lockout."""

    __tablename__ = "login_throttle"
    username: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
