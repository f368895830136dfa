"""The service's letterhead: name, address, organisation number, phone, e-mail and logo.

What the administrator saved on the letterhead screen (settings rows "letterhead.<key>") wins over
the configuration's PPT_LETTERHEAD (a dict with the same keys), which is the install's default.
The logo is kept as a data: URI of a PNG the app re-encoded itself, so a letter's PDF needs no file
and no network to show it.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import Setting

KEYS = ("name", "address", "org_number", "phone", "email", "logo")
PREFIX = "letterhead."


def saved() -> dict[str, str]:
    """What the screen holds (keys with a value only)."""
    rows = db.session.execute(select(Setting.key, Setting.value).where(
        Setting.key.in_([PREFIX + k for k in KEYS]))).all()
    return {key[len(PREFIX):]: str(value) for key, value in rows if value}


def configured() -> dict[str, str]:
    """What the configuration says, for keys the screen leaves empty."""
    cfg = current_app.config.get("PPT_LETTERHEAD") or {}
    return {k: str(cfg.get(k) or "") for k in KEYS}


def current() -> dict[str, str]:
    """The letterhead as letters use it now: every key, "" where nothing is set."""
    return {**configured(), **saved()}
