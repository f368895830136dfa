"""Small helpers shared by the views: domain errors onto form fields, choices for selects."""
from __future__ import annotations

import secrets

from flask import current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import HiddenField

from .errors import DomainError
from .form_tokens import AlreadyMade

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
