"""Settings the service changes at runtime on the settings page (/admin/settings), over the configuration.

Each setting in REGISTRY has a key (its row in the `setting` table), a label, a kind (text, int with
bounds, bool, choice) and the configuration key whose value applies while no row exists. Code that uses
one of these reads it through value(key), never from app.config directly, so a change on the page is
used from the next request on. Which settings are here and why the others are not: docs/decisions.md,
"Settings changed at runtime".

The saved values are read in one query and kept per process under the header counts' change stamp (the
`setting` table is one of its tables, auth/cache.py): a save on the page, in any process, is used from the
next call on, and a change made past the app (psql) within the counts' lifetime.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .activity import service as activity
from .auth import cache
from .auth.access import require
from .clock import utcnow
from .errors import Invalid, NotFound
from .extensions import db
from .models import Setting, User
from .text import NOT_ARCHIVABLE
from .transaction import transaction

TEXT, INT, BOOL, CHOICE = "text", "int", "bool", "choice"


@dataclass(frozen=True)
class RuntimeSetting:
    key: str
    config_key: str
    label: object  # a lazy string
    kind: str = TEXT
    hint: object = ""
    section: str = "general"
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = 200
    required: bool = True
    choices: tuple[tuple[str, object], ...] = field(default_factory=tuple)

    def parse(self, raw: object) -> object:
        """The typed value of what the form sent, or Invalid saying what is wrong."""
        text = "" if raw is None else str(raw).strip()
        if self.kind == BOOL:
            if text.lower() in ("1", "true", "on", "yes"):
                return True
            if text.lower() in ("0", "false", "off", "no", ""):
                return False
            raise Invalid(_l("Choose yes or no."), field=self.key)
        if self.kind == CHOICE:
            allowed = [code for code, _label in self.choices]
            if text not in allowed:
                raise Invalid(_l("Choose a value from the list."), field=self.key)
            return text
        if self.kind == INT:
            try:
                number = int(text)
            except ValueError:
                raise Invalid(_l("%(label)s must be a whole number.", label=self.label), field=self.key) from None
            if (self.minimum is not None and number < self.minimum) or (
                    self.maximum is not None and number > self.maximum):
                raise Invalid(_l("%(label)s must be between %(low)s and %(high)s.", label=self.label,
                                 low=self.minimum, high=self.maximum), field=self.key)
            return number
        if NOT_ARCHIVABLE.search(text) or any(ch in text for ch in "\t\n\r"):
            raise Invalid(_l("Control characters and line breaks are not allowed here."), field=self.key)
        text = " ".join(text.split())
        if self.required and not text:
            raise Invalid(_l("%(label)s cannot be empty.", label=self.label), field=self.key)
        if len(text) > self.max_length:
            raise Invalid(_l("At most %(n)s characters.", n=self.max_length), field=self.key)
        return text


SECTIONS = {
    "paper": _l("Paper originals"),
    "alerts": _l("Alert thresholds"),
    "letters": _l("Letters and signing"),
}

REGISTRY: dict[str, RuntimeSetting] = {s.key: s for s in (
    RuntimeSetting("paper.storage_place", "PPT_PAPER_STORAGE_PLACE", _l("Where paper originals are kept"),
                   hint=_l("Offered as the storage place when a scanned paper letter is registered."),
                   section="paper", max_length=200),
    RuntimeSetting("paper.keep_months", "PPT_PAPER_KEEP_MONTHS", _l("Months a paper original is kept after scanning"),
                   kind=INT, minimum=3, maximum=120, section="paper",
                   hint=_l("Applies to originals registered from now on.")),
    RuntimeSetting("paper.downtime_keep_months", "PPT_DOWNTIME_PAPER_KEEP_MONTHS",
                   _l("Months a paper original is kept when registered after downtime"),
                   kind=INT, minimum=6, maximum=120, section="paper",
                   hint=_l("Applies to originals registered from now on.")),
    RuntimeSetting("alerts.archive_minutes", "PPT_ARCHIVE_ALERT_MINUTES",
                   _l("Minutes before a stuck or failed archive job is an alert"),
                   kind=INT, minimum=5, maximum=7 * 24 * 60, section="alerts",
                   hint=_l("The archive log's menu entry shows how many jobs have been stuck in progress, or "
                           "failed, for longer than this.")),
    RuntimeSetting("alerts.approval_warn_days", "PPT_APPROVAL_WARN_DAYS",
                   _l("Days before a post waiting for approval is highlighted"),
                   kind=INT, minimum=1, maximum=60, section="alerts"),
    RuntimeSetting("letters.signing_location", "PPT_SIGNING_LOCATION", _l("Place named in electronic signatures"),
                   section="letters", max_length=100, required=False,
                   hint=_l("For example the municipality. Empty: no place is named.")),
)}


def get(key: str) -> RuntimeSetting:
    item = REGISTRY.get(key)
    if item is None:
        raise NotFound(object_type="setting", object_id=key[:60])
    return item


def configured(key: str) -> Any:
    """What the configuration says (instance/config.py, environment, defaults)."""
    return current_app.config.get(get(key).config_key)


def value(key: str) -> Any:
    """The setting in force: the row saved on the settings page if there is one, else the configuration."""
    item = get(key)
    stored = _saved_kept().get(key)
    return stored if stored is not None else current_app.config.get(item.config_key)


def _saved_kept() -> dict[str, object]:
    """saved(), kept per process while the change stamp stays the same and for at most the counts' lifetime
    (one os.stat instead of a query per setting read: a page reads one or two). Read again when this
    session has changes not yet committed, which only it can see."""
    session = db.session
    if session.new or session.dirty or session.deleted or session.info.get("ppt_counts_changed"):
        return saved()
    kept = cache.caches()
    stamp = kept.counts.read()
    entry = current_app.extensions.get("ppt_settings")
    if entry is not None and entry[0] == stamp and time.monotonic() - entry[1] <= kept.count_seconds:
        return entry[2]
    stored = saved()  # read after the stamp: a change committed meanwhile moves it, and is read next time
    current_app.extensions["ppt_settings"] = (stamp, time.monotonic(), stored)
    return stored


def saved() -> dict[str, object]:
    """The values saved on the page, {key: value}, in one query."""
    rows = db.session.execute(select(Setting.key, Setting.value).where(Setting.key.in_(list(REGISTRY)))).all()
    return {key: stored for key, stored in rows if stored is not None}


def overview() -> list[dict]:
    """Every setting with the value in force, where it comes from, and the configuration's value."""
    stored = saved()
    return [{"setting": item, "value": stored.get(key, current_app.config.get(item.config_key)),
             "saved": key in stored, "configured": current_app.config.get(item.config_key)}
            for key, item in REGISTRY.items()]


def _require_edit(actor: User) -> None:
    """Changing a setting needs sysadmin_edit, and sysadmin_view as well: nobody changes what they may not see."""
    require(actor, "sysadmin_view")
    require(actor, "sysadmin_edit")


def change(actor: User, key: str, raw: object) -> object:
    """Save a new value (needs sysadmin_view and sysadmin_edit); one activity-log row with the old and the
    new value. Bad input raises Invalid and changes nothing. Returns the value now in force. Two first
    saves of one key at once: the second finds the first's row and changes it (logged with its value)."""
    _require_edit(actor)
    item = get(key)
    new = item.parse(raw)
    try:
        return _store(actor, key, new)
    except IntegrityError:  # another administrator saved the key's first value at the same moment
        return _store(actor, key, new)


def _store(actor: User, key: str, new: object) -> object:
    with transaction():
        row = db.session.get(Setting, key)
        old = row.value if row is not None and row.value is not None else configured(key)
        if new == old:
            return old
        if row is None:
            db.session.add(Setting(key=key, value=new, updated_at=utcnow(), updated_by_id=actor.id))
        else:
            row.value, row.updated_at, row.updated_by_id = new, utcnow(), actor.id
        activity.record("setting_changed", actor=actor, object_type="setting", object_id=key,
                        before={"value": old}, after={"value": new}, detail=key)
    return new


def reset(actor: User, key: str) -> object:
    """Drop the saved value: the configuration applies again. Logged with the old and the new value."""
    _require_edit(actor)
    get(key)
    row = db.session.get(Setting, key)
    if row is None:
        return configured(key)
    old = row.value
    with transaction():
        db.session.delete(row)
        activity.record("setting_changed", actor=actor, object_type="setting", object_id=key,
                        before={"value": old}, after={"value": configured(key)}, detail=f"{key}:reset")
    return configured(key)
