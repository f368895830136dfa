"""The service's letterhead: name, address, organisation number, phone, e-mail and logo.

What the administrator saved on the letterhead screen (settings rows "letterhead.<key>") wins over
the configuration's PPT_LETTERHEAD (a dict with the same keys), which is the install's default.
The logo is kept as a data: URI of a PNG the app re-encoded itself, so a letter's PDF needs no file
and no network to show it.
"""
from __future__ import annotations

import base64
import hashlib
import io
import re
import warnings

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import validation
from ..activity import service as activity
from ..auth.access import require
from ..clock import utcnow
from ..errors import Conflict, Invalid
from ..extensions import db
from ..models import Setting, User
from ..text import NOT_ARCHIVABLE
from ..transaction import transaction

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


# ----------------------------------------------------------------------------- the letterhead screen

LENGTHS = {"name": 200, "address": 500, "org_number": 9, "phone": 40, "email": 200}
MAX_LOGO_BYTES = 512 * 1024
MAX_LOGO_WIDTH = 600  # px; a letterhead logo is printed a few centimetres wide
MAX_LOGO_PIXELS = 40_000_000  # larger pictures are refused before they are decoded
PHONE = re.compile(r"\+?[0-9 ()\-.]{3,40}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _line(value: str | None, key: str) -> str:
    text = (value or "").strip()
    if NOT_ARCHIVABLE.search(text) or any(ch in text for ch in "\t\n\r"):
        raise Invalid(_l("Control characters and line breaks are not allowed here."), field=key)
    text = " ".join(text.split())
    if len(text) > LENGTHS[key]:
        raise Invalid(_l("At most %(n)s characters.", n=LENGTHS[key]), field=key)
    return text


def _address(value: str | None) -> str:
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n")
    if NOT_ARCHIVABLE.search(text) or "\t" in text:
        raise Invalid(_l("Control characters are not allowed here."), field="address")
    text = "\n".join(" ".join(line.split()) for line in text.split("\n") if line.strip())
    if len(text) > LENGTHS["address"]:
        raise Invalid(_l("At most %(n)s characters.", n=LENGTHS["address"]), field="address")
    return text


def logo_data_uri(data: bytes) -> str:
    """An uploaded PNG or JPEG, re-encoded by the app as a PNG at most MAX_LOGO_WIDTH wide, as a data:
    URI. Anything else (another format, a broken or huge picture) is refused on the logo field."""
    if len(data) > MAX_LOGO_BYTES:
        raise Invalid(_l("The logo may be at most %(n)s KB.", n=MAX_LOGO_BYTES // 1024), field="logo")
    from PIL import Image, ImageOps  # noqa: PLC0415 - only when a logo is uploaded (Pillow: ~2.4 MiB of a worker)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
            if opened.width * opened.height > MAX_LOGO_PIXELS:
                raise Invalid(_l("The logo has too many pixels."), field="logo")
            opened.load()
            picture: Image.Image = ImageOps.exif_transpose(opened)
    except Invalid:
        raise
    except Exception:  # noqa: BLE001 - whatever Pillow cannot read is not a logo we can use
        raise Invalid(_l("The logo must be a PNG or JPEG picture."), field="logo") from None
    if picture.mode not in ("RGB", "RGBA", "L", "LA"):
        picture = picture.convert("RGBA" if "A" in picture.getbands() or "transparency" in picture.info
                                  else "RGB")
    if picture.width > MAX_LOGO_WIDTH:
        height = max(1, round(picture.height * MAX_LOGO_WIDTH / picture.width))
        picture = picture.resize((MAX_LOGO_WIDTH, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _logged(values: dict[str, str]) -> dict[str, str]:
    """The letterhead for the activity log: the logo by a digest, not its picture."""
    out = {k: v for k, v in values.items() if k != "logo"}
    if values.get("logo"):
        out["logo"] = "sha256:" + hashlib.sha256(values["logo"].encode()).hexdigest()[:16]
    return out


def save(actor: User, *, name: str, address: str, org_number: str, phone: str, email: str,
         logo: bytes | None = None, remove_logo: bool = False) -> dict[str, str]:
    """Keep the letterhead screen's values (an empty field falls back to the configuration). A new logo
    replaces the old one; remove_logo takes it away. Nothing is kept unless every field is right.
    Returns what the screen now holds."""
    require(actor, "manage_templates")
    wanted = {"name": _line(name, "name"), "address": _address(address),
              "org_number": validation.org_number(org_number, field="org_number") if (org_number or "").strip()
              else "",
              "phone": _line(phone, "phone"), "email": _line(email, "email")}
    if wanted["phone"] and not PHONE.fullmatch(wanted["phone"]):
        raise Invalid(_l("A phone number has digits, spaces and + - ( ) only."), field="phone")
    if wanted["email"] and not EMAIL.fullmatch(wanted["email"]):
        raise Invalid(_l("This is not an e-mail address."), field="email")
    new_logo = logo_data_uri(logo) if logo else None
    try:
        with transaction():
            before = saved()
            if new_logo:
                wanted["logo"] = new_logo
            elif not remove_logo:
                wanted["logo"] = before.get("logo", "")
            after = {key: value for key, value in wanted.items() if value}
            if after == before:
                return after
            now = utcnow()
            for key in KEYS:
                row = db.session.get(Setting, PREFIX + key)
                if key not in after:
                    if row is not None:
                        db.session.delete(row)
                elif row is None:
                    db.session.add(Setting(key=PREFIX + key, value=after[key], updated_at=now,
                                           updated_by_id=actor.id))
                elif row.value != after[key]:
                    row.value, row.updated_at, row.updated_by_id = after[key], now, actor.id
            activity.record("letterhead_changed", actor=actor, object_type="setting", object_id="letterhead",
                            before=_logged(before), after=_logged(after))
    except IntegrityError:  # another administrator saved the first values at the same moment
        raise Conflict(_l("The letterhead was changed meanwhile. Open the page again.")) from None
    return after
