"""User administration: users, roles, access groups and the role matrix.

Each function is one user action: it checks the actor's permission, changes the rows,
writes the activity-log row and commits.
"""
from __future__ import annotations

import re

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from .. import notify
from ..activity import service as activity
from ..archive import identity
from ..archive.conventions import DEFAULTS as MESSAGE_DEFAULTS
from ..auth.access import require
from ..auth.passwords import MIN_LENGTH, hash_password
from ..auth.service import normalise_username, revoke_all_sessions
from ..clock import utcnow
from ..errors import Conflict, Forbidden, Invalid, NotFound, raise_if
from ..extensions import db
from ..models import AccessGroup, ArchiveJob, Permission, Role, Setting, User
from ..models.user import IMPLIED
from ..text import NOT_ARCHIVABLE
from ..transaction import transaction

LOCALES = ("nn", "nb", "en")
PERMISSION_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")

# Who may grant what (docs/decisions.md, "Who may grant what").
# Roles that only a holder of Leiar or Superbrukar gives or takes: the leading roles and Administrator.
PRIVILEGED_ROLES = frozenset({"admin", "leiar", "superbrukar"})
TOP_ROLES = frozenset({"leiar", "superbrukar"})
# Permissions that administer the system and who may do what. Below Leiar and Superbrukar nobody
# gives or takes a role carrying one of these that they lack, nor manages a user who holds one.
ADMINISTRATIVE = frozenset({
    "assign_roles", "manage_templates", "manage_groups", "sysadmin_view", "sysadmin_edit", "sysadmin_edit_all",
    "manage_orgs", "activity_log", "archive_log", "archive_retry", "archive_delete",
})


def holds_top_role(actor: User) -> bool:
    """Whether the actor holds Leiar or Superbrukar, as their own role or through a team."""
    return any(r.code in TOP_ROLES for r in actor.effective_roles())


def _with_implied(codes: set[str]) -> set[str]:
    for code, implied in IMPLIED.items():
        if code in codes:
            codes |= set(implied)
    return codes


def role_refusal(actor: User, role: Role, target: User | None = None) -> Forbidden | None:
    """Why the actor may not give or take `role` (to or from `target`), or None if they may."""
    if target is not None and target.id == actor.id:
        return Forbidden("assign_roles", _l("You cannot change your own roles."), object_type="user",
                         object_id=target.id)
    if holds_top_role(actor):
        return None
    if role.code in PRIVILEGED_ROLES:
        return Forbidden("assign_roles", _l("Only a holder of Leiar or Superbrukar can give or take the role "
                                            "%(name)s.", name=role.name), object_type="role", object_id=role.id)
    if (_with_implied(role.permission_codes()) & ADMINISTRATIVE) - actor.permission_codes():
        return Forbidden("assign_roles", _l("You cannot give or take the role %(name)s: it carries rights you do "
                                            "not have yourself.", name=role.name), object_type="role",
                         object_id=role.id)
    return None


def manage_refusal(actor: User, target: User) -> Forbidden | None:
    """Why the actor may not edit, set the password of, deactivate or change the roles of `target`."""
    if target.id == actor.id or holds_top_role(actor):
        return None
    beyond = (target.permission_codes() & ADMINISTRATIVE) - actor.permission_codes()
    if beyond or any(r.code in PRIVILEGED_ROLES for r in target.effective_roles()):
        return Forbidden("assign_roles", _l("Only a holder of Leiar or Superbrukar, or someone who holds all "
                                            "their rights, can change %(name)s.", name=target.full_name),
                         object_type="user", object_id=target.id)
    return None


def matrix_refusal(actor: User, role: Role, code: str, granted: bool) -> Forbidden | None:
    """Why the actor may not change this cell of the role matrix, or None if they may."""
    if any(r.id == role.id for r in actor.effective_roles()):
        return Forbidden("sysadmin_edit_all", _l("You cannot change the permissions of a role you hold."),
                         object_type="role", object_id=role.id)
    if role.code in PRIVILEGED_ROLES and not holds_top_role(actor):
        return Forbidden("sysadmin_edit_all", _l("Only a holder of Leiar or Superbrukar can change the role "
                                                 "%(name)s.", name=role.name), object_type="role", object_id=role.id)
    if granted and not actor.can(code):
        return Forbidden("sysadmin_edit_all", _l("You cannot give a permission you do not hold yourself."),
                         object_type="role", object_id=role.id)
    # The activity log shows every client's history (names, titles, what changed): only for a role that may
    # see every client, so no one reads there what their own scope hides.
    if granted and code == "activity_log" and "search_all" not in role.permission_codes():
        return Forbidden("sysadmin_edit_all", _l("The activity log shows every client's history: a role that "
                                                 "reads it must also be allowed to search all cases and clients."),
                         object_type="role", object_id=role.id)
    if not granted and code == "search_all" and "activity_log" in role.permission_codes():
        return Forbidden("sysadmin_edit_all", _l("This role reads the activity log, which shows every client's "
                                                 "history: take that permission away first."),
                         object_type="role", object_id=role.id)
    return None


def grantable_roles(actor: User, target: User | None = None) -> list[Role]:
    """The active roles the actor may give (to `target`): what the forms offer."""
    if target is not None and manage_refusal(actor, target) is not None:
        return []
    return [r for r in roles() if r.active and role_refusal(actor, r, target) is None]


def _snapshot(user: User) -> dict:
    return {
        "username": user.username,
        "full_name": user.full_name,
        "email": user.email,
        "locale": user.locale,
        "archive_id": user.archive_id or "",
        "active": user.active,
        "roles": sorted(r.code for r in user.roles),
        "groups": sorted(g.name for g in user.groups),
        "team_roles": sorted({r.code for g in user.groups for r in g.roles if r.active}),
    }


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(object_type="user", object_id=user_id)
    return user


def get_role(role_id: int) -> Role:
    role = db.session.get(Role, role_id)
    if role is None:
        raise NotFound(object_type="role", object_id=role_id)
    return role


def get_group(group_id: int) -> AccessGroup:
    group = db.session.get(AccessGroup, group_id)
    if group is None:
        raise NotFound(object_type="access_group", object_id=group_id)
    return group


def _check_password(password: str) -> None:
    if len(password or "") < MIN_LENGTH:
        raise Invalid(_l("The password must have at least %(n)s characters.", n=MIN_LENGTH), field="password")


ARCHIVE_ID = re.compile(r"\S{1,100}")


def _archive_id(value: str | None, user: User | None = None) -> str:
    """A user's identity in the archive (initials or the archive's user id): one word of at most 100
    characters, no one else's; empty means the username is used."""
    text = (value or "").strip()
    if not text:
        return ""
    if NOT_ARCHIVABLE.search(text) or not ARCHIVE_ID.fullmatch(text):
        raise Invalid(_l("The identity in the archive is one word of at most 100 characters, without spaces."),
                      field="archive_id")
    taken = select(User.username).where(func.lower(User.archive_id) == text.lower())
    if user is not None and user.id is not None:
        taken = taken.where(User.id != user.id)
    other = db.session.scalar(taken.limit(1))
    if other is not None:
        raise Conflict(_l("%(name)s has this identity in the archive already.", name=other), field="archive_id")
    return text


def _new_user(username: str, full_name: str, password: str, email: str = "", locale: str = "nn") -> User:
    name = normalise_username(username)
    if not name or not name.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise Invalid(_l("Usernames use letters, digits, dot, dash and underscore."), field="username")
    if not (full_name or "").strip():
        raise Invalid(_l("Full name is required."), field="full_name")
    if locale not in LOCALES:
        raise Invalid(_l("Unknown language."), field="locale")
    if db.session.scalar(select(func.count()).select_from(User).where(User.username == name)):
        raise Conflict(_l("The username %(name)s is taken.", name=name), field="username")
    user = User(username=name, full_name=full_name.strip(), email=(email or "").strip(),
                password_hash=hash_password(password), locale=locale, active=True)
    db.session.add(user)
    return user


def create_user(actor: User, *, username: str, full_name: str, password: str,
                email: str = "", locale: str = "nn", role_ids: list[int] | None = None, archive_id: str = "") -> User:
    """Create a staff user with an initial password and optional roles."""
    require(actor, "assign_roles")
    for role_id in role_ids or []:
        raise_if(role_refusal(actor, get_role(role_id)))
    _check_password(password)
    archive_id = _archive_id(archive_id)
    user = _new_user(username, full_name, password, email, locale)
    user.archive_id = archive_id
    user.must_change_password = True  # the one who set it knows it
    for role_id in role_ids or []:
        _grant(user, get_role(role_id))
    db.session.flush()
    activity.record("user_created", actor=actor, object_type="user", object_id=user.id, after=_snapshot(user))
    db.session.commit()
    return user


def create_user_unchecked(*, username: str, full_name: str, password: str, role_codes: list[str],
                          email: str = "") -> User:
    """For the CLI (create-admin, seed-demo): no signed-in actor exists yet."""
    _check_password(password)
    user = _new_user(username, full_name, password, email)
    for code in role_codes:
        role = db.session.scalar(select(Role).where(Role.code == code))
        if role is None:
            raise Invalid(_l("Unknown role %(code)s.", code=code))
        _grant(user, role)
    db.session.flush()
    activity.record("user_created", actor_name="cli", object_type="user", object_id=user.id, after=_snapshot(user))
    db.session.commit()
    return user


def update_user(actor: User, user_id: int, *, full_name: str, email: str, locale: str,
                new_password: str = "", archive_id: str | None = None) -> User:
    """Edit a user's name, e-mail, language and (optionally) set a new password. A password set for
    someone else must be changed at their next sign-in, and they are told."""
    require(actor, "assign_roles")
    user = get_user(user_id)
    raise_if(manage_refusal(actor, user))
    if new_password and user.id == actor.id:
        raise Forbidden("assign_roles", _l("Change your own password on the page for it, with your current "
                                           "password."), object_type="user", object_id=user.id)
    before = _snapshot(user)
    if not (full_name or "").strip():
        raise Invalid(_l("Full name is required."), field="full_name")
    if locale not in LOCALES:
        raise Invalid(_l("Unknown language."), field="locale")
    if archive_id is not None:  # None: left as it is
        user.archive_id = _archive_id(archive_id, user)
    user.full_name, user.email, user.locale = full_name.strip(), (email or "").strip(), locale
    detail = ""
    if new_password:
        _check_password(new_password)
        user.password_hash = hash_password(new_password)
        user.must_change_password = True
        revoke_all_sessions(user)
        notify.notify(user, _l("%(name)s set a new password for you. Choose your own when you next sign in.",
                               name=actor.full_name), link=notify.link("auth.change_password"))
        detail = "password_reset"
    activity.record("user_updated", actor=actor, object_type="user", object_id=user.id,
                    before=before, after=_snapshot(user), detail=detail)
    db.session.commit()
    return user


def set_user_active(actor: User, user_id: int, active: bool) -> User:
    """Deactivate (signs the user out everywhere) or reactivate a user."""
    require(actor, "assign_roles")
    user = get_user(user_id)
    if user.id == actor.id and not active:
        raise Conflict(_l("You cannot deactivate yourself."))
    raise_if(manage_refusal(actor, user))
    if user.active == active:
        return user
    before = _snapshot(user)
    user.active = active
    user.deactivated_at = None if active else utcnow()
    if not active:
        revoke_all_sessions(user)
    activity.record("user_activated" if active else "user_deactivated", actor=actor, object_type="user",
                    object_id=user.id, before=before, after=_snapshot(user))
    db.session.commit()
    return user


def _grant(user: User, role: Role) -> None:
    if not role.active:
        raise Conflict(_l("The role %(name)s is not active and cannot be assigned.", name=role.name))
    if role not in user.roles:
        user.roles.append(role)
        user.forget_permissions()


def add_role(actor: User, user_id: int, role_id: int) -> User:
    """Give a user a role (only active roles can be given; see role_refusal for who may give which)."""
    require(actor, "assign_roles")
    user, role = get_user(user_id), get_role(role_id)
    raise_if(role_refusal(actor, role, user) or manage_refusal(actor, user))
    before = _snapshot(user)
    if role in user.roles:
        return user
    _grant(user, role)
    activity.record("role_granted", actor=actor, object_type="user", object_id=user.id,
                    before=before, after=_snapshot(user), detail=role.code)
    db.session.commit()
    return user


def remove_role(actor: User, user_id: int, role_id: int) -> User:
    """Take a role from a user."""
    require(actor, "assign_roles")
    user, role = get_user(user_id), get_role(role_id)
    raise_if(role_refusal(actor, role, user) or manage_refusal(actor, user))
    if role not in user.roles:
        return user
    before = _snapshot(user)
    user.roles.remove(role)
    user.forget_permissions()
    activity.record("role_revoked", actor=actor, object_type="user", object_id=user.id,
                    before=before, after=_snapshot(user), detail=role.code)
    db.session.commit()
    return user


def create_group(actor: User, *, name: str, description: str = "") -> AccessGroup:
    """Create an access group (team)."""
    require(actor, "manage_groups")
    name = (name or "").strip()
    if not name:
        raise Invalid(_l("Name is required."), field="name")
    if db.session.scalar(select(func.count()).select_from(AccessGroup)
                         .where(func.lower(AccessGroup.name) == name.lower())):
        raise Conflict(_l("An access group named %(name)s exists already.", name=name), field="name")
    group = AccessGroup(name=name, description=(description or "").strip())
    db.session.add(group)
    db.session.flush()
    activity.record("group_created", actor=actor, object_type="access_group", object_id=group.id,
                    after={"name": group.name, "description": group.description})
    db.session.commit()
    return group


def membership_refusal(actor: User, user: User, group: AccessGroup) -> Forbidden | None:
    """Why the actor may not put `user` into `group` or take them out, or None if they may. Joining a team
    that carries roles is being given those roles (and leaving it, losing them): the rules for giving a
    role to a person hold for each of them."""
    for role in group.roles:
        if role.active:
            refusal = role_refusal(actor, role, user) or manage_refusal(actor, user)
            if refusal is not None:
                return refusal
    return None


def group_role_refusal(actor: User, group: AccessGroup, role: Role) -> Forbidden | None:
    """Why the actor may not give `role` to `group` or take it from it, or None if they may: the rules for
    giving the role to each member (so never to a team one is in), and for the role itself."""
    refusal = role_refusal(actor, role)
    for member in group.members:
        refusal = refusal or role_refusal(actor, role, member) or manage_refusal(actor, member)
    return refusal


def _forget(users: list[User]) -> None:
    for user in users:
        user.forget_permissions()


def _lock_group(group: AccessGroup, *others: User) -> None:
    """Lock the team's row until the commit and read its roles and members afresh. Giving a team a role and
    putting someone in it each check the other's side (the new member against the team's roles, the role
    against the members): without the lock two such actions at once would each pass on what the other had
    not yet committed (PostgreSQL; SQLite lets one writer at a time anyway)."""
    db.session.refresh(group, with_for_update=True)
    db.session.expire(group, ["roles", "members"])
    for user in others:
        db.session.expire(user, ["groups", "roles"])


def add_to_group(actor: User, user_id: int, group_id: int) -> User:
    """Put a user in a team; they hold the team's roles from their next request."""
    require(actor, "manage_groups")
    user, group = get_user(user_id), get_group(group_id)
    with transaction():
        _lock_group(group, user)
        if group in user.groups:
            return user
        raise_if(membership_refusal(actor, user, group))
        before = _snapshot(user)
        user.groups.append(group)
        user.forget_permissions()
        activity.record("group_member_added", actor=actor, object_type="user", object_id=user.id,
                        before=before, after=_snapshot(user), detail=group.name)
    return user


def remove_from_group(actor: User, user_id: int, group_id: int) -> User:
    """Take a user out of a team; the team's roles leave with them at their next request."""
    require(actor, "manage_groups")
    user, group = get_user(user_id), get_group(group_id)
    with transaction():
        _lock_group(group, user)
        if group not in user.groups:
            return user
        raise_if(membership_refusal(actor, user, group))
        before = _snapshot(user)
        user.groups.remove(group)
        user.forget_permissions()
        if group.coordinator_id == user.id:
            group.coordinator_id = None
        activity.record("group_member_removed", actor=actor, object_type="user", object_id=user.id,
                        before=before, after=_snapshot(user), detail=group.name)
    return user


def _group_snapshot(group: AccessGroup) -> dict:
    return {"name": group.name, "roles": sorted(r.code for r in group.roles),
            "members": sorted(m.username for m in group.members)}


def add_group_role(actor: User, group_id: int, role_id: int) -> AccessGroup:
    """Let a team carry a role: every member holds it from their next request (see group_role_refusal)."""
    require(actor, "manage_groups")
    group, role = get_group(group_id), get_role(role_id)
    with transaction():
        _lock_group(group)
        raise_if(group_role_refusal(actor, group, role))
        if role in group.roles:
            return group
        if not role.active:
            raise Conflict(_l("The role %(name)s is not active and cannot be assigned.", name=role.name))
        before = _group_snapshot(group)
        group.roles.append(role)
        _forget(group.members)
        activity.record("group_role_granted", actor=actor, object_type="access_group", object_id=group.id,
                        before=before, after=_group_snapshot(group), detail=role.code)
    return group


def remove_group_role(actor: User, group_id: int, role_id: int) -> AccessGroup:
    """Take a role from a team: its members lose it (unless they hold it otherwise) at their next request."""
    require(actor, "manage_groups")
    group, role = get_group(group_id), get_role(role_id)
    with transaction():
        _lock_group(group)
        raise_if(group_role_refusal(actor, group, role))
        if role not in group.roles:
            return group
        before = _group_snapshot(group)
        group.roles.remove(role)
        _forget(group.members)
        activity.record("group_role_revoked", actor=actor, object_type="access_group", object_id=group.id,
                        before=before, after=_group_snapshot(group), detail=role.code)
    return group


def group_roles_offered(actor: User, group: AccessGroup) -> list[Role]:
    """The active roles the actor may give this team that it does not carry yet: what the page offers."""
    return [r for r in roles() if r.active and r not in group.roles and group_role_refusal(actor, group, r) is None]


def rights_of(user: User) -> list[dict]:
    """The user's effective permissions, each with where it comes from: [{"code", "sources": [{"role",
    "group"}]}] in the matrix's order; "group" is None for the user's own role."""
    sources: list[tuple[Role, AccessGroup | None]] = [(r, None) for r in user.roles if r.active]
    sources += [(r, g) for g in user.groups for r in g.roles if r.active]
    found: dict[str, list[dict]] = {}
    for role, group in sources:
        codes = _with_implied(set(role.permission_codes()))
        for code in codes:
            found.setdefault(code, []).append({"role": role, "group": group})
    order = {p.code: i for i, p in enumerate(permissions())}
    return [{"code": code, "sources": found[code]} for code in sorted(found, key=lambda c: (order.get(c, 999), c))]


def role_sources(user: User) -> list[dict]:
    """The user's active roles, each with where it comes from: [{"role", "own": bool, "groups": [...]}]."""
    rows: dict[int, dict] = {}
    for role in user.roles:
        if role.active:
            rows.setdefault(role.id, {"role": role, "own": False, "groups": []})["own"] = True
    for group in user.groups:
        for role in group.roles:
            if role.active:
                rows.setdefault(role.id, {"role": role, "own": False, "groups": []})["groups"].append(group)
    return sorted(rows.values(), key=lambda row: (row["role"].position, row["role"].id))


def coordinator_refusal(actor: User, group: AccessGroup, user: User | None) -> Forbidden | None:
    """Why the actor may not make `user` the team's coordinator (None: clear it), or None if they may. A
    coordinator approves the team's posts as if holding approve (cases/approval.py), so naming one is
    giving approval rights: nobody names themself, the actor holds Leiar or Superbrukar or approves
    themself, and may manage both the one named and the one who stops being coordinator."""
    if user is not None and user.id == actor.id:
        return Forbidden("manage_groups", _l("You cannot make yourself team coordinator."),
                         object_type="access_group", object_id=group.id)
    if not (holds_top_role(actor) or actor.can("approve")):
        return Forbidden("manage_groups", _l("A team coordinator approves the team's posts: only a holder of "
                                             "Leiar or Superbrukar, or someone who approves, names one."),
                         object_type="access_group", object_id=group.id)
    for person in (user, group.coordinator):
        if person is not None and person.id != actor.id:
            refusal = manage_refusal(actor, person)
            if refusal is not None:
                return refusal
    return None


def set_coordinator(actor: User, group_id: int, user_id: int | None) -> AccessGroup:
    """Designate the team coordinator (a member of the group) or clear it (see coordinator_refusal). Logged
    as a grant: the coordinator approves the team's posts."""
    require(actor, "manage_groups")
    group = get_group(group_id)
    user = get_user(user_id) if user_id else None
    if (user.id if user else None) == group.coordinator_id:
        return group
    raise_if(coordinator_refusal(actor, group, user))
    previous = group.coordinator
    if user is not None and group not in user.groups:
        raise Conflict(_l("The team coordinator must be a member of the group."))
    with transaction():
        group.coordinator_id = user.id if user else None
        db.session.flush()
        db.session.refresh(group)
        activity.record("group_coordinator_set", actor=actor, object_type="access_group", object_id=group.id,
                        before={"coordinator": previous.full_name if previous else None},
                        after={"coordinator": user.full_name if user else None},
                        detail="approve")
    return group


def set_role_permission(actor: User, role_id: int, code: str, granted: bool) -> Role:
    """Change one cell of the role matrix (needs sysadmin_edit_all; see matrix_refusal)."""
    require(actor, "sysadmin_edit_all")
    role = get_role(role_id)
    # A code from the URL: only what a permission code can look like is looked up (PostgreSQL refuses a NUL).
    permission = db.session.get(Permission, code) if PERMISSION_CODE.fullmatch(code) else None
    if permission is None:
        raise NotFound(object_type="permission", object_id=code)
    raise_if(matrix_refusal(actor, role, code, granted))
    before = sorted(role.permission_codes())
    if granted and permission not in role.permissions:
        role.permissions.append(permission)
    elif not granted and permission in role.permissions:
        role.permissions.remove(permission)
    else:
        return role
    activity.record("role_permission_changed", actor=actor, object_type="role", object_id=role.id,
                    before={"permissions": before}, after={"permissions": sorted(role.permission_codes())},
                    detail=f"{role.code}:{code}:{'on' if granted else 'off'}")
    db.session.commit()
    return role


def users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.active.desc(), User.full_name).options(
        selectinload(User.roles).selectinload(Role.permissions),
        selectinload(User.groups).selectinload(AccessGroup.roles).selectinload(Role.permissions))))


def roles() -> list[Role]:
    return list(db.session.scalars(select(Role).order_by(Role.position)))


def groups() -> list[AccessGroup]:
    return list(db.session.scalars(select(AccessGroup).order_by(AccessGroup.name).options(
        selectinload(AccessGroup.roles).selectinload(Role.permissions),
        selectinload(AccessGroup.members).selectinload(User.roles).selectinload(Role.permissions),
        selectinload(AccessGroup.members).selectinload(User.groups).selectinload(AccessGroup.roles),
        selectinload(AccessGroup.coordinator).selectinload(User.roles).selectinload(Role.permissions))))


def permissions() -> list[Permission]:
    return list(db.session.scalars(select(Permission).order_by(Permission.position)))


# --- the archive settings page: the service's unit and archive part, and the case system's name ---

# key -> most characters; arkivdel is a code (ARKIVDEL_CODE), the others are names.
ARCHIVE_SETTING_LENGTHS = {"fagsystem": 100, "administrativ_enhet": 200, "arkivdel": 20}
ARKIVDEL_CODE = re.compile(r"[0-9A-Za-zÆØÅæøå_.\-]{1,20}")


def archive_configured() -> dict:
    """What applies where the screen has no value: instance/config.py over the message module's defaults."""
    configured = {key: MESSAGE_DEFAULTS.get(key) for key in identity.SCREEN_KEYS}
    configured.update({key: value for key, value in (current_app.config.get("PPT_ARCHIVE_SETTINGS") or {}).items()
                       if key in identity.SCREEN_KEYS})
    return {key: value or "" for key, value in configured.items()}


def archive_jobs_exist() -> bool:
    """Whether any archive job was ever made: from then on the archive may hold objects under the
    case system's name, and a new name cuts them off."""
    return db.session.scalar(select(ArchiveJob.id).limit(1)) is not None


def _archive_setting(key: str, value: str | None) -> str:
    text = (value or "").strip()
    if NOT_ARCHIVABLE.search(text) or any(ch in text for ch in "\t\n\r"):
        raise Invalid(_l("Control characters and line breaks are not allowed here."), field=key)
    text = " ".join(text.split())
    limit = ARCHIVE_SETTING_LENGTHS[key]
    if len(text) > limit:
        raise Invalid(_l("At most %(n)s characters.", n=limit), field=key)
    if key == "arkivdel" and text and not ARKIVDEL_CODE.fullmatch(text):
        raise Invalid(_l("The archive part is a short code: letters, digits, dot, dash and underscore, "
                         "no spaces."), field=key)
    return text


def save_archive_settings(actor: User, *, fagsystem: str, administrativ_enhet: str, arkivdel: str,
                          confirm_fagsystem: bool = False) -> dict:
    """Keep the archive settings of the screen (an empty field falls back to the configuration). Once
    archive jobs exist, a new case system name must be confirmed: the archive knows the earlier
    folders and posts by the old one. Returns what the screen now holds."""
    require(actor, "sysadmin_edit")
    wanted = {"fagsystem": _archive_setting("fagsystem", fagsystem),
              "administrativ_enhet": _archive_setting("administrativ_enhet", administrativ_enhet),
              "arkivdel": _archive_setting("arkivdel", arkivdel)}
    before = identity.saved()
    after = {key: value for key, value in wanted.items() if value}
    if after == before:
        return after
    old_name = before.get("fagsystem") or archive_configured()["fagsystem"]
    renamed = old_name != (after.get("fagsystem") or archive_configured()["fagsystem"])
    if renamed and archive_jobs_exist() and not confirm_fagsystem:
        raise Conflict(_l("The archive already has folders and posts from this system under the name "
                          "%(name)s. Confirm the change of name, or keep it.",
                          name=old_name), field="confirm_fagsystem")
    now = utcnow()
    for key in identity.SCREEN_KEYS:
        row = db.session.get(Setting, f"archive.{key}")
        if key not in after:
            if row is not None:
                db.session.delete(row)
        elif row is None:
            db.session.add(Setting(key=f"archive.{key}", value=after[key], updated_at=now, updated_by_id=actor.id))
        elif row.value != after[key]:
            row.value, row.updated_at, row.updated_by_id = after[key], now, actor.id
    activity.record("archive_settings_changed", actor=actor, object_type="setting", object_id="archive",
                    before=before, after=after, detail="fagsystem_renamed" if renamed else "")
    try:
        db.session.commit()
    except IntegrityError:  # another administrator saved the first values at the same moment
        db.session.rollback()
        raise Conflict(_l("The settings were changed meanwhile. Open the page again.")) from None
    return after
