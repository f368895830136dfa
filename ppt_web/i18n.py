"""Languages: Nynorsk by default, Bokmål and English per user; catalogs compiled at start."""
from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g
from flask_babel import get_locale, get_translations
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup

from . import labels as source
from .clock import OSLO
from .extensions import babel

SOURCE = Path(__file__).resolve().parent / "translations"


def N_(message: str) -> str:
    """Mark a string for translation where it is defined (Babel extracts N_); it is translated where it
    is shown, in the reader's language (see catalog())."""
    return message


def select_locale() -> str:
    if current_user and current_user.is_authenticated and current_user.locale:
        return current_user.locale
    return "nn"


def catalog():
    """This request's translations, looked up once per request and language: Flask-Babel's
    force_locale() changes the language for a while, so the catalog is kept with its locale."""
    if not g:
        return get_translations()
    locale = get_locale()
    kept = g.get("_ppt_catalog")
    if kept is None or kept[0] is not locale:
        kept = g._ppt_catalog = (locale, get_translations())
    return kept[1]


def template_context() -> dict:
    """For each render: the labels, and `_()` bound to this language's catalog, so that a row of a
    long list does not look the catalog up again for each string. Jinja's own newstyle gettext
    otherwise: Markup when autoescaping, and always a format string."""
    translations = catalog()

    @pass_context
    def gettext(context, string: str, **variables) -> str:
        text = translations.ugettext(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    return {"gettext": gettext, **labels()}


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


def format_oslo(value: datetime | date | None, date_only: bool = False) -> str:
    """UTC in storage, Europe/Oslo on screen, dates as dd.mm.yyyy (docs/decisions.md, "Times and dates")."""
    if value is None:
        return ""
    if not isinstance(value, datetime):
        return value.strftime("%d.%m.%Y")
    local = value.astimezone(OSLO)
    return local.strftime("%d.%m.%Y" if date_only else "%d.%m.%Y %H:%M")
