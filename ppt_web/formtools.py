"""Small helpers shared by the views: domain errors onto form fields, choices for selects."""
from __future__ import annotations

from flask import current_app, redirect, request
from flask_babel import gettext as _

from .errors import DomainError

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


def go(url: str):
    """Redirect; htmx requests get HX-Redirect so the whole page moves."""
    if request.headers.get("HX-Request"):
        response = current_app.response_class(status=204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)
