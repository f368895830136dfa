"""Small helpers shared by the views: the forms' base classes (their messages in the user's language),
the date field, domain errors onto form fields, choices for selects."""
from __future__ import annotations

import secrets

import flask_wtf
import wtforms
from flask import current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import HiddenField
from wtforms.widgets import TextInput

from . import i18n
from .errors import DomainError
from .form_tokens import AlreadyMade
from .i18n import DATE_PATTERN, N_, date_problem, parse_day


class _Catalog:
    """WTForms' own messages ("This field is required.") looked up in the app's catalog, in the language
    of whoever reads the page (their profile's, not the browser's). WTForms ships no Nynorsk, so its
    messages are msgids of our catalog, listed in WTFORMS_MESSAGES below for extraction."""

    def gettext(self, string: str) -> str:
        return i18n.catalog().ugettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return i18n.catalog().ungettext(singular, plural, n)


CATALOG = _Catalog()


class _TranslatedMeta:
    def get_translations(self, form):
        return CATALOG


class FlaskForm(flask_wtf.FlaskForm):
    """Every form of the app: Flask-WTF's, its validation messages in the user's language."""

    Meta = _TranslatedMeta


class SubForm(wtforms.Form):
    """A form inside a form (FormField), its messages in the user's language too."""

    Meta = _TranslatedMeta


def _ln(singular: str, plural: str) -> tuple[str, str]:
    """Marks a plural message for extraction (the README's pybabel command knows _ln:1,2)."""
    return singular, plural


# WTForms' messages (Flask-WTF's FileRequired uses the first), so that pybabel extract puts them in our
# catalog: it does not read the libraries. The texts must stay exactly as the libraries write them.
WTFORMS_MESSAGES = (
    N_("This field is required."),
    N_("Invalid input."),
    N_("Invalid email address."),
    N_("Invalid URL."),
    N_("Invalid UUID."),
    N_("Invalid IP address."),
    N_("Invalid Mac address."),
    N_("Field must be equal to %(other_name)s."),
    N_("Field must be between %(min)d and %(max)d characters long."),
    N_("Number must be at least %(min)s."),
    N_("Number must be at most %(max)s."),
    N_("Number must be between %(min)s and %(max)s."),
    N_("Date must be at least %(min)s."),
    N_("Date must be at most %(max)s."),
    N_("Date must be between %(min)s and %(max)s."),
    N_("Invalid value, must be one of: %(values)s."),
    N_("Invalid value, can't be any of: %(values)s."),
    N_("This field cannot be edited."),
    N_("This field is disabled and cannot have a value."),
    N_("Invalid CSRF Token."),
    N_("CSRF token missing."),
    N_("CSRF failed."),
    N_("CSRF token expired."),
    N_("Invalid Choice: could not coerce."),
    N_("Choices cannot be None."),
    N_("Not a valid choice."),
    N_("Invalid choice(s): one or more data inputs could not be coerced."),
    N_("Not a valid datetime value."),
    N_("Not a valid date value."),
    N_("Not a valid time value."),
    N_("Not a valid week value."),
    N_("Not a valid integer value."),
    N_("Not a valid decimal value."),
    N_("Not a valid float value."),
)
WTFORMS_PLURALS = (
    _ln("Field must be at least %(min)d character long.", "Field must be at least %(min)d characters long."),
    _ln("Field cannot be longer than %(max)d character.", "Field cannot be longer than %(max)d characters."),
    _ln("Field must be exactly %(max)d character long.", "Field must be exactly %(max)d characters long."),
    _ln("'%(value)s' is not a valid choice for this field.", "'%(value)s' are not valid choices for this field."),
)


class DateField(wtforms.DateField):
    """A date typed and shown as dd.mm.yyyy in a text input (parse_day); empty is no date (add Optional()
    or DataRequired() as the field needs)."""

    widget = TextInput()

    def __init__(self, label=None, validators=None, **kwargs):
        render_kw = {"inputmode": "numeric", "autocomplete": "off", "size": 10, "pattern": DATE_PATTERN,
                     "placeholder": _l("dd.mm.yyyy"), "title": _l("Date as dd.mm.yyyy"),
                     **(kwargs.pop("render_kw", None) or {})}
        super().__init__(label, validators, format="%d.%m.%Y", render_kw=render_kw, **kwargs)

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        text = " ".join(valuelist).strip()
        if not text:
            self.data = None
            return
        self.data = parse_day(text)
        if self.data is None:
            raise ValueError(date_problem(text))

# The largest id an id column holds (INTEGER: 32 bits on PostgreSQL). URLs and forms stop there.
MAX_ID = 2**31 - 1


def id_or_none(value) -> int | None:
    """A chosen id from a form or a query string, or None: anything that is not a plausible id (not
    a number, 0, past what an id column holds) counts as no choice, never as a database error."""
    if value in (None, "", "None"):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_ID else None


def apply_error(form, exc: DomainError) -> None:
    """Show a service's refusal next to the field it names, else above the form."""
    name = exc.details.get("field")
    target = getattr(form, name, None) if name else None
    if target is not None:
        target.errors = list(target.errors) + [str(exc.message)]
    else:
        form.form_errors.append(str(exc.message))


def choices(items, label=lambda x: x.name, empty: str | None = "") -> list[tuple]:
    out = [("", empty if empty else _("(none)"))] if empty is not None else []
    return out + [(item.id, label(item)) for item in items]


def keep_offered(field, current, label: str) -> None:
    """A select shown with a value its choices lack (a handler deactivated since, a client past the first
    500 by name, a school that is no longer one) offers that value too, chosen: a browser would otherwise
    send the first choice, and a save of anything else on the form would change it silently."""
    if current is None or current.id in {value for value, _label in field.choices}:
        return
    field.choices = [*field.choices, (current.id, label)]


def handler_label(user) -> str:
    """A handler as a select offers them: a deactivated one (still on a client or case) says so."""
    return user.full_name if user.active else _("%(name)s (deactivated: choose another)", name=user.full_name)


def form_status() -> int:
    """An invalid POST answers 422 (htmx swaps it; docs/decisions.md, "Forms answer 422"); a GET 200."""
    return 422 if request.method == "POST" else 200


def new_form_token() -> str:
    return secrets.token_urlsafe(32)


class OnceForm(FlaskForm):
    """A create form: its hidden token, made when the form is shown, lets the service make the object
    once however often the form is sent (form_tokens.once; docs/decisions.md, "One effect per action")."""

    form_token = HiddenField(default=new_form_token)


# Where the object a create form made is shown, by form_tokens kind.
MADE_AT = {
    "journal_post": lambda made_id: url_for("cases.post", post_id=made_id),
    "case": lambda made_id: url_for("cases.case", case_id=made_id),
    "client": lambda made_id: url_for("clients.folder", client_id=made_id),
    "organisation": lambda made_id: url_for("clients.organisations"),
    "inbox_item": lambda made_id: url_for("postreg.item", item_id=made_id),
}


def to_what_was_made(made: AlreadyMade):
    """A create form sent again: to what its first sending made, and say so."""
    flash(_("This form was sent already. Here is what it made."), "info")
    return go(MADE_AT[made.kind](made.object_id))


def go(url: str):
    """Redirect; htmx requests get HX-Redirect so the whole page moves."""
    if request.headers.get("HX-Request"):
        response = current_app.response_class(status=204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)
