"""An activity-log row as a reader sees it: the object by its name, not its id, and the detail with labels
instead of stored codes (a role's code, a setting's key, an ISO timestamp). One query per kind of object
on the page, never one per row."""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select

from .. import runtime_settings
from ..extensions import db
from ..i18n import format_oslo, history_detail, labels, role_name
from ..models import AccessGroup, ActivityLog, Role, User

# Rows whose detail is a role's code.
ROLE_DETAIL = ("role_granted", "role_revoked", "group_role_granted", "group_role_revoked")
_BACKUP = re.compile(r"backup made (\S+), (\d+) files")


def setting_label(key: str) -> str:
    if key == "archive":
        return labels()["menu_labels"].get("admin.archive_settings", key)
    item = runtime_settings.REGISTRY.get(key)
    return str(item.label) if item is not None else key


def _ids(rows: Iterable[ActivityLog], kind: str) -> set[int]:
    found = {r.object_id for r in rows if r.object_type == kind and r.object_id and r.object_id.isdigit()}
    return {int(id_) for id_ in found if int(id_) < 2**31}


def object_names(rows: list[ActivityLog]) -> dict[tuple[str, str], str]:
    """{(object_type, object_id): name} for the users, access groups and roles and settings on the page."""
    names: dict[tuple[str, str], str] = {}
    for kind, model, column in (("user", User, User.full_name), ("access_group", AccessGroup, AccessGroup.name),
                                ("role", Role, Role.name)):
        ids = _ids(rows, kind)
        if ids:
            for id_, name in db.session.execute(select(model.id, column).where(model.id.in_(ids))):
                names[(kind, str(id_))] = name
    for row in rows:
        if row.object_type == "setting" and row.object_id:
            names[("setting", row.object_id)] = setting_label(row.object_id)
    return names


def detail(row: ActivityLog) -> str:
    """The row's detail for the reader."""
    text = (row.detail or "").strip()
    if not text:
        return ""
    if row.action in ROLE_DETAIL:
        return role_name(text)
    if row.action == "setting_changed":
        key, _sep, how = text.partition(":")
        label = setting_label(key)
        return _("%(label)s: back to the configuration's value", label=label) if how == "reset" else label
    if row.action == "group_coordinator_set" and text == "approve":
        return _("Approves the team's posts: %(right)s", right=labels()["permission_labels"]["approve"])
    if row.action == "backup_restored" and (found := _BACKUP.fullmatch(text)):
        made, files = found.groups()
        return _("Backup made %(when)s, %(n)s files", when=_when(made), n=files)
    return history_detail(row.action, text)


def _when(iso: str) -> str:
    try:
        return format_oslo(datetime.fromisoformat(iso))
    except ValueError:
        return iso


def describe(rows: list[ActivityLog]) -> dict[int, dict]:
    """{row id: {"object": the object's name or "#id", "detail": text}} for a page of rows."""
    names = object_names(rows)
    return {row.id: {"object": names.get((row.object_type or "", row.object_id or ""))
                     or (f"#{row.object_id}" if row.object_id else ""),
                     "detail": detail(row)} for row in rows}
