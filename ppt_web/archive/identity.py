"""Who and where in the archive's terms: the service's unit and archive part, the case system's name,
and each user's identity in the archive.

settings() is what a message needs besides the case system's own data. Precedence: the module
defaults of archive/message.py, then PPT_ARCHIVE_SETTINGS (instance/config.py), then what the
administrator saved on the archive settings page (the `setting` table, keys in SCREEN_KEYS).
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import Setting, User

# The keys the administrator keeps on screen (the rest stay in instance/config.py).
SCREEN_KEYS = ("fagsystem", "administrativ_enhet", "arkivdel")


def saved() -> dict:
    """What the administrator saved on screen: {key: value} for keys in SCREEN_KEYS that are set."""
    rows = db.session.execute(_SAVED).all()
    return {key.removeprefix("archive."): value for key, value in rows if value not in (None, "")}


# Built once: the worker reads the saved settings for every job it sends alone (building the select
# each time cost about as much as running it).
_SAVED = select(Setting.__table__.c.key, Setting.__table__.c.value).where(
    Setting.__table__.c.key.in_([f"archive.{k}" for k in SCREEN_KEYS]))


def settings() -> dict:
    """The archive settings over the message module's defaults: config first, then the screen."""
    merged = dict(current_app.config.get("PPT_ARCHIVE_SETTINGS") or {})
    merged.update(saved())
    return merged


def user_identity(user: User | None) -> dict | None:
    """A user as the archive knows them: {"navn": full name, "identifikator": archive id or username}."""
    if user is None:
        return None
    return {"navn": user.full_name, "identifikator": (user.archive_id or "").strip() or user.username}
