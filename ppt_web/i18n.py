"""Languages: Nynorsk by default, Bokmål and English per user; catalogs compiled at start."""
from __future__ import annotations

import os
import re
from datetime import date, datetime
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g
from flask_babel import get_locale, get_translations
from flask_babel import gettext as _
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup
from sqlalchemy import select

from . import labels as source
from .clock import OSLO
from .extensions import babel, db
from .models import Role

SOURCE = Path(__file__).resolve().parent / "translations"


def N_(message: str) -> str:
    """Mark a string for translation where it is defined (Babel extracts N_); it is translated where it
    is shown, in the reader's language (see catalog())."""
    return message


def select_locale() -> Locale:
    """The user's language, else Nynorsk: as a Locale made once per process (Flask-Babel takes it as it is;
    a code would be parsed again on every request)."""
    user = current_user._get_current_object()
    code = (user.locale if user is not None and user.is_authenticated else None) or "nn"
    locale = _locales.get(code)
    if locale is None:
        locale = _locales[code] = Locale.parse(code)
    return locale


_locales: dict[str, Locale] = {}


def catalog():
    """This request's translations, looked up once per request and language: Flask-Babel's
    force_locale() changes the language for a while, so the catalog is kept with its locale."""
    if not g:
        return get_translations()
    locale = get_locale()
    kept = g.get("_ppt_catalog")
    if kept is None or kept[0] is not locale:
        # Per process as well, by the Locale object (select_locale gives one per language): Flask-Babel
        # keeps the catalogs per process and language too, but finds them again on each request.
        kept = _catalogs.get(id(locale))
        if kept is None or kept[0] is not locale:
            if len(_catalogs) > 64:  # force_locale() makes a new Locale each time: start again
                _catalogs.clear()
            kept = _catalogs[id(locale)] = (locale, get_translations())
        g._ppt_catalog = kept
    return kept[1]


_catalogs: dict[int, tuple[object, object]] = {}


def template_context() -> dict:
    """For each render: the labels, and `_()` bound to this language's catalog, so that a row of a
    long list does not look the catalog up again for each string. Jinja's own newstyle gettext
    otherwise: Markup when autoescaping, and always a format string. Made once per catalog (a language)
    and process: nothing in it depends on the request (Flask copies it into each render's context)."""
    translations = catalog()
    kept = _contexts.get(id(translations))
    if kept is not None and kept[0] is translations:
        return kept[1]

    @pass_context
    def gettext(context, string: str, **variables) -> str:
        text = translations.ugettext(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        if not variables and "%" not in text:
            return text  # what `text % {}` gives, without making it again (most strings of a page)
        return text % variables

    if len(_contexts) > 64:  # many apps in one process (tests): start again
        _contexts.clear()
    # `_` bound here too: Jinja's own `_` (the i18n extension's alias) would look `gettext` up in the
    # context and call it through the context on every string.
    made = {"gettext": gettext, "_": gettext, **labels()}
    _contexts[id(translations)] = (translations, made)
    return made


_contexts: dict[int, tuple[object, dict]] = {}
_labels: dict[str, dict] = {}


def labels() -> dict:
    """The screen names of labels.py (`*_LABELS`, lowercased), translated: once per process and
    language, since the catalogs do not change while the app runs."""
    key = str(get_locale())
    if key not in _labels:
        _labels[key] = {name.lower(): {code: str(text) for code, text in value.items()}
                        for name, value in vars(source).items() if name.endswith("_LABELS")}
    return _labels[key]


def compile_catalogs(target: Path) -> None:
    """Compile each .po into target/<lang>/LC_MESSAGES/messages.mo when the .po is newer.

    Compiled catalogs are build output: they live in the instance folder, not in git.
    """
    for po in SOURCE.glob("*/LC_MESSAGES/messages.po"):
        mo = target / po.relative_to(SOURCE).with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as src:
            catalog = read_po(src, locale=po.parts[-3])
        tmp = mo.with_name(f"messages.{os.getpid()}.tmp")
        with tmp.open("wb") as out:
            write_mo(out, catalog)
        tmp.replace(mo)


def init_app(app: Flask) -> None:
    target = Path(app.instance_path) / "translations"
    compile_catalogs(target)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)

    babel.init_app(app, locale_selector=select_locale, timezone_selector=lambda: "Europe/Oslo")
    # Templates translate through catalog(): Flask-Babel's own lookup per string (the locale, its
    # name, the cache) was half the time of a 100-row archive log page.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # added by jinja2.ext.i18n
        gettext=lambda s: catalog().ugettext(s),
        ngettext=lambda s, p, n: catalog().ungettext(s, p, n),
        pgettext=lambda c, s: catalog().upgettext(c, s),
        npgettext=lambda c, s, p, n: catalog().unpgettext(c, s, p, n),
        newstyle=True)
    app.jinja_env.filters["oslo"] = format_oslo
    app.jinja_env.filters["oslo_date"] = lambda value: format_oslo(value, date_only=True)
    app.jinja_env.globals["date_pattern"] = DATE_PATTERN
    app.jinja_env.globals["changes"] = changes
    app.jinja_env.globals["history_detail"] = history_detail


def format_oslo(value: datetime | date | None, date_only: bool = False) -> str:
    """UTC in storage, Europe/Oslo on screen, dates as dd.mm.yyyy (docs/decisions.md, "Times and dates")."""
    if value is None:
        return ""
    # Written out rather than with strftime (twice as slow, on every date of a list), the same text: the
    # year unpadded as strftime's %Y on Linux, the rest two digits.
    if not isinstance(value, datetime):
        return f"{value.day:02d}.{value.month:02d}.{value.year}"
    local = value.astimezone(OSLO)
    if date_only:
        return f"{local.day:02d}.{local.month:02d}.{local.year}"
    return f"{local.day:02d}.{local.month:02d}.{local.year} {local.hour:02d}:{local.minute:02d}"


# Dates are typed as they are shown, dd.mm.yyyy (a day and month of one digit too), whatever the browser's
# language: a type=date input would follow the browser's. An ISO date (yyyy-mm-dd) is read as well.
_DAY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
DATE_PATTERN = r"\s*(\d{1,2}\.\d{1,2}\.\d{4}|\d{4}-\d{1,2}-\d{1,2})\s*"


# The years a typed date may have: no date of this service lies outside them, and at the calendar's edges
# (year 1, year 9999) a day's start in Oslo time, or the day after, falls outside what a datetime holds.
YEARS = range(1000, 3000)


def parse_day(text: str | None) -> date | None:
    """A typed date (dd.mm.yyyy, d.m.yyyy or yyyy-mm-dd) as a date; None when it names no real day (or a year
    outside YEARS)."""
    text = (text or "").strip()
    if (found := _DAY.fullmatch(text)):
        day, month, year = (int(x) for x in found.groups())
    elif (found := _ISO.fullmatch(text)):
        year, month, day = (int(x) for x in found.groups())
    else:
        return None
    if year not in YEARS:
        return None
    try:
        return date(year, month, day)
    except ValueError:  # 31.02.2026
        return None


def date_problem(text: str | None) -> str | None:
    """What is wrong with a typed date, for the message beside the field; None when it is empty or a day."""
    text = (text or "").strip()
    if not text or parse_day(text) is not None:
        return None
    if _DAY.fullmatch(text) or _ISO.fullmatch(text):  # the form is right, the day does not exist
        return _("%(text)s is not a date.", text=text)
    return _("Write the date as dd.mm.yyyy, for example 24.12.2026.")


def period_problem(date_from: date | None, date_to: date | None) -> str | None:
    """A period whose first day comes after its last: the message; None when it is a period (or open)."""
    if date_from is not None and date_to is not None and date_from > date_to:
        return _("The first date is after the last.")
    return None


# A history row's values (cases/service.py and cases/posts.py snapshot(), a metadata correction) as a
# reader sees them: labels for codes, dates as dd.mm.yyyy, lists as text, never a key or a Python list.
_CODED = {"kind": "kind_labels", "category": "category_labels", "hold_decision": "hold_decision_labels",
          "permissions": "permission_labels"}
_DATES = ("document_date", "received_on", "sent_on", "destroy_by")
_ROLES = ("roles", "team_roles")  # a user's or a team's roles, kept by their codes (admin/service.py)
NOTHING = "–"


def shown(key: str, value) -> str:
    """One value of a history row, as text for the reader."""
    if value is None or value == "" or value == []:
        return NOTHING
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, list | tuple):
        return ", ".join(shown(key, item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{field_label(k)}: {shown(k, v)}" for k, v in value.items())
    names = labels()
    text = str(value)
    if key in _DATES:
        day = parse_day(text)
        return format_oslo(day) if day else text
    if key == "documents":
        role, colon, filename = text.partition(":")
        return f"{names['document_role_labels'].get(role, role)}: {filename}" if colon else text
    if key == "status":
        return names["post_status_labels"].get(text) or names["case_status_labels"].get(text) or text
    if key == "type":
        label = names["post_type_labels"].get(text)
        return f"{text} – {label}" if label else text
    if key in _CODED:
        return names[_CODED[key]].get(text, text)
    if key in _ROLES:
        return role_name(text)
    return text


def role_name(code: str) -> str:
    """A role's name by its code, from the roles read once per request (a handful of rows)."""
    kept = g.get("_ppt_role_names") if g else None
    if kept is None:
        kept = dict(db.session.execute(select(Role.code, Role.name)).all())
        if g:
            g._ppt_role_names = kept
    return kept.get(code, code)


def field_label(key: str) -> str:
    return labels()["field_labels"].get(key) or key.replace("_", " ").capitalize()


def changes(before: dict | None, after: dict | None, made: bool = False) -> list[dict]:
    """What a change did, field by field: [{"key", "label", "old", "new"}] for each value that differs. A
    row with only before (a deleted post) lists what was there, with new empty; with only after (a thing
    made), the values it was made with when made is true, else nothing. The correspondents' details are
    listed only when the names stayed the same (an address changed), not twice."""
    before, after = before or {}, after or {}
    if not before:
        return [{"key": key, "label": field_label(key), "old": "", "new": shown(key, value)}
                for key, value in after.items() if made and shown(key, value) != NOTHING]
    keys = list(dict.fromkeys([*before, *after]))
    if after and before.get("correspondents") != after.get("correspondents"):
        keys = [k for k in keys if k != "correspondent_details"]
    return [{"key": key, "label": field_label(key), "old": shown(key, before.get(key)),
             "new": shown(key, after.get(key)) if after else ""}
            for key in keys if (before.get(key) != after.get(key) if after else shown(key, before.get(key)) != NOTHING)]


def history_detail(action: str, detail: str | None) -> str:
    """An activity row's detail as text for the reader: a write-off method with its meaning."""
    text = (detail or "").strip()
    if action in ("case_closed", "post_written_off") and text:
        method, sep, rest = text.partition(":" if action == "case_closed" else " ")
        label = labels()["write_off_labels"].get(method.strip())
        if label:
            return f"{method.strip()} – {label}" + (f": {rest.strip()}" if rest.strip() else "")
    return text
