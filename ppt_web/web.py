"""Error pages, domain-error mapping and what every template can see."""
from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from flask import Flask, current_app, g, has_request_context, render_template, request, session
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, generate_csrf
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from . import clock
from .activity import service as activity
from .archive import job_messages
from .archive.log import alerts
from .auth import cache
from .cases.approval import waiting_count as approvals_waiting
from .dispatch.service import failed_count
from .errors import DomainError, Forbidden, NotFound
from .extensions import db
from .formtools import MAX_ID
from .i18n import N_, template_context
from .labels import MENU_LABELS
from .models import Notification, User
from .postreg.service import waiting_count

log = logging.getLogger(__name__)


class BoundedInt(IntegerConverter):
    """<int:...> in URLs, but only values an id column can hold (INTEGER: 32 bits on PostgreSQL)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def _error_page(status: int, message: str):
    if request.headers.get("HX-Request"):
        # Show the message in the page's status area instead of inside the element that asked.
        headers = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"}
        return render_template("errors/_message.html", message=message), status, headers
    return render_template("errors/error.html", status=status, message=message), status


def record_refusal(action: str, exc: DomainError) -> None:
    """A denied access is a row in the activity log, whatever else the request did."""
    activity.record_refusal(
        action,
        object_type=getattr(exc, "object_type", None) or "url",
        object_id=getattr(exc, "object_id", None) if getattr(exc, "object_type", None) else request.path[:64],
        detail=f"{request.method} {request.endpoint}"
        + (f" needs {exc.permission}" if isinstance(exc, Forbidden) else ""),
    )


def may_open(user: User, endpoint: str) -> bool:
    """Whether the user holds one of the permissions the view itself requires, and passes its further
    check (permission_required)."""
    view = current_app.view_functions[endpoint]
    codes = getattr(view, "_ppt_permissions", ())
    check = getattr(view, "_ppt_check", None)
    return (not codes or any(user.can(code) for code in codes)) and (check is None or check(user) is None)


def menu(user: User) -> list[str]:
    """The menu's pages the user may open, in order (labels.MENU_LABELS): built from the views' own
    permissions, so the menu never shows a page that answers 403 and never hides one that does not."""
    return [endpoint for endpoint in MENU_LABELS if may_open(user, endpoint)]


def header_counts(user: User) -> dict:
    """The header's counts for a user: kept per process for cache.COUNT_SECONDS, and read again at
    once after a change to their tables was committed by any process (auth/cache.py)."""
    counts: dict = {"unread_notifications": db.session.scalar(
        select(func.count()).select_from(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None)))}
    if user.can("archive_log"):
        counts["archive_alerts"] = alerts()
    if user.can("distribute_mail"):
        counts["inbox_waiting"] = waiting_count()
    if user.can("approve") or user.can("journal"):  # a team coordinator approves too
        counts["approvals_waiting"] = approvals_waiting(user)
    if user.can("send"):
        counts["dispatch_failures"] = failed_count(user)
    return counts


# The header's counts (header_counts()) as the header shows them: archive_alerts by its total only.
HEADER_COUNTS = ("unread_notifications", "inbox_waiting", "approvals_waiting", "dispatch_failures")


def _csrf_field() -> str | None:
    """Flask-WTF's session key for the CSRF token when its signed tokens do not expire (WTF_CSRF_TIME_LIMIT
    None, config.py), else None: a kept signature would then run out."""
    config = current_app.config
    if config.get("WTF_CSRF_TIME_LIMIT", 3600) is not None or not cache.caches().layout_on:
        return None
    return config.get("WTF_CSRF_FIELD_NAME") or "csrf_token"


def seed_csrf_token() -> None:
    """The signed CSRF token of this session, as signed the first time in this process, is this request's
    token (Flask-WTF's g value, used by csrf_token() and every form): Flask-WTF would sign the session's
    token again on each page, a different string each second. Without a time limit an earlier signature
    of the same session token is exactly as valid, so nothing is weaker; a page costs one signature less
    and the header's HTML can be kept (layout_header)."""
    field = _csrf_field()
    if field is None or request.endpoint == "static":
        return
    raw = session.get(field)
    signed = cache.caches().csrf_tokens.get(raw) if isinstance(raw, str) else None
    if signed is not None:
        setattr(g, field, signed)


def csrf_token() -> str:
    """Flask-WTF's csrf_token() for templates; a session's first signed token is kept (seed_csrf_token).
    Asked for twice a page (the layout's header and its htmx headers): the second time this request's
    token as given the first (Flask-WTF's own keeps it for the request as well)."""
    signed = g.get("_ppt_csrf_token")
    if signed is not None:
        return signed
    signed = g._ppt_csrf_token = generate_csrf()
    field = _csrf_field()
    if field is not None:
        raw = session.get(field)
        kept = cache.caches()
        if isinstance(raw, str) and raw not in kept.csrf_tokens:
            kept.keep_csrf_token(raw, signed)
    return signed


@pass_context
def layout_header(context: Context) -> Markup:
    """The signed-in header (templates/_header.html): its HTML is kept per process under everything it
    shows (the language, the user's name, roles and permissions, the menu, each count, the CSRF token),
    so a page made again with the same values shows the same header without rendering it; any change of
    one of them is a new key, seen at the next request. A partial without the menu (an htmx request that
    renders a whole page) is rendered as it is."""
    kept = cache.caches()
    if "menu" not in context or not kept.layout_on:
        return Markup(context.environment.get_template("_header.html").render(context.get_all()))
    user = current_user._get_current_object()
    alerts = context.get("archive_alerts")
    key = (str(get_locale()), request.script_root, user.id, user.full_name, user.permission_codes(),
           tuple(context["menu"]), tuple(context.get("header_roles") or ()),
           tuple(context.get(name) for name in HEADER_COUNTS), alerts.get("total") if alerts else None,
           csrf_token())
    html = kept.layout.get(key)
    if html is None:
        html = Markup(context.environment.get_template("_header.html").render(context.get_all()))
        kept.keep_layout(key, html)
    return html


# The start page's list headings (templates/main/_start_macros.html exports these two as list_head and
# none_line): written here rather than as Jinja macros, whose call (its arguments matched by name, its
# output joined and made Markup) cost more than the rows of a short list; the same HTML, escaped alike.
SHOW_ALL = N_("Show all")
SHOWN_OF = N_("%(shown)s of %(total)s shown")
NONE_YET = N_("None.")


@pass_context
def start_list_head(context: Context, id: str, title: Any, total: Any, more_url: Any = None, more_text: Any = None,
                    shown: Any = None) -> Markup:
    """The heading of one list on the start page: its title, its total, and a link to the full list; a list
    without a page of its own says how many of the total it shows (shown: the rows shown)."""
    gettext = context.resolve("_")
    html = Markup('<h3 id="%s-head">%s <span class="badge" data-total="%s">%s</span>') % (id, title, total, total)
    if more_url:
        html += Markup(' <small><a href="%s" id="%s-more">%s</a></small>') % (
            more_url, id, more_text or context.call(gettext, SHOW_ALL))
    elif shown is not None and total > shown:
        html += Markup(' <small class="muted" id="%s-shown" data-shown="%s">%s</small>') % (
            id, shown, context.call(gettext, SHOWN_OF, shown=shown, total=total))
    return html + Markup("</h3>")


@pass_context
def start_none_line(context: Context, id: str) -> Markup:
    """An empty list's line on the start page."""
    return Markup('<p class="muted" id="%s-none">%s</p>') % (id, context.call(context.resolve("_"), NONE_YET))


URLS_KEPT = 5000  # template URLs kept per process (kept_url_for); past it the cache starts again
_PLAIN_VALUES = (str, int)


def kept_url_for(app: Flask):
    """url_for for the templates: a URL built once per process for each endpoint and its values (plain
    strings and integers, and StrEnum members, which are equal to their string and written as it; not the
    (str, Enum) ones, equal to their string but written otherwise; nothing with an underscore option
    such as _external, nothing relative to a blueprint) under the request's script root. The app's URL
    rules are fixed once it runs and none has a host, a subdomain or URL defaults (init_app checks), so the
    same call gives the same URL; building it again cost a few microseconds per link (a page of list rows
    has dozens)."""
    urls: dict[tuple, str] = {}
    build = app.url_for

    def url_for(endpoint: str, **values: Any) -> str:
        if endpoint[:1] == "." or not has_request_context() or \
                not all((type(v) in _PLAIN_VALUES or isinstance(v, StrEnum)) and k[:1] != "_"
                        for k, v in values.items()):
            return build(endpoint, **values)
        key = (request.script_root, endpoint, *values.items())
        url = urls.get(key)
        if url is None:
            url = build(endpoint, **values)
            if len(urls) >= URLS_KEPT:
                urls.clear()
            urls[key] = url
        return url

    return url_for


NUL_REFUSED = N_("The request held a character that cannot be used (a NUL character). Remove it and try again.")


def refuse_nul_characters():
    """A NUL character in the address's values or a form's fields (typed or pasted, or sent on purpose) is
    refused as a bad request before anything looks it up or signs in with it: PostgreSQL's text cannot hold
    one, and the lookup failed as a 500. Not the sign-in's `next`: it is only ever compared with a local path
    (one with a NUL is not one, and the user goes to the start page), so a damaged link still signs in."""
    values = [(key, value) for key, value in request.args.items(multi=True) if key != "next"]
    if request.method != "GET" and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        values += request.form.items(multi=True)
    if any("\x00" in key or "\x00" in value for key, value in values):
        return _error_page(400, _(NUL_REFUSED))
    return None


def init_app(app: Flask) -> None:
    # Right after the request's log fields (logs.init_app put them first), ahead of the CSRF check and sign-in.
    app.before_request_funcs.setdefault(None, []).insert(1, refuse_nul_characters)
    app.jinja_env.globals["csrf_token"] = csrf_token  # in place of Flask-WTF's (csrf.init_app ran before)
    if not (any(app.url_default_functions.values()) or app.url_map.host_matching or app.subdomain_matching):
        app.jinja_env.globals["url_for"] = kept_url_for(app)
    app.jinja_env.globals["layout_header"] = layout_header
    app.jinja_env.globals["may_open"] = may_open  # a page the user may open, as the menu decides
    app.jinja_env.globals["start_list_head"] = start_list_head
    app.jinja_env.globals["start_none_line"] = start_none_line
    app.before_request(seed_csrf_token)
    app.jinja_env.globals["archive_message"] = job_messages.shown  # the Message column, in the reader's language
    app.jinja_env.globals["correction_url"] = job_messages.correction_url  # what a failed job waits for
    @app.errorhandler(Forbidden)
    def forbidden(exc: Forbidden):
        record_refusal("access_denied", exc)
        # A refusal that says why (the role matrix's rules, a leader's own roles) says it; else the general words.
        return _error_page(403, str(exc.message) if exc.message
                           else _("You do not have access to this page or action."))

    @app.errorhandler(NotFound)
    def not_found_domain(exc: NotFound):
        record_refusal("not_found", exc)
        return _error_page(404, _("We could not find what you asked for."))

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        db.session.rollback()
        return _error_page(exc.status, str(exc.message))

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return _error_page(400, _("The form has expired or was not sent from this app. Reload the page and try again."))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            403: _("You do not have access to this page or action."),
            404: _("We could not find what you asked for."),
            405: _("That action is not possible here."),
            413: _("The upload is too large."),
        }
        code = exc.code or 500
        return _error_page(code, messages.get(code, _("The request could not be handled.")))

    @app.errorhandler(Exception)
    def server_error(exc: Exception):
        if app.config.get("PROPAGATE_EXCEPTIONS"):
            raise exc  # tests see the real error
        log.exception("unhandled error on %s %s", request.method, request.endpoint)
        db.session.rollback()
        return _error_page(500, _("Something went wrong on our side. Nothing was saved. Try again, or tell the "
                                  "administrative consultant."))

    @app.context_processor
    def header_context():
        if not current_user.is_authenticated:
            return {}
        if request.headers.get("HX-Request") and not request.headers.get("HX-Boosted"):
            return {}  # a partial (live search, the 2 s polls) has no menu: skip its counts
        user = current_user._get_current_object()
        kept = cache.caches()
        key = (user.id, user.permission_codes())
        counts = kept.header_counts(key)
        if counts is None:
            stamp = kept.counts.read()  # before the queries: a change committed meanwhile is seen next time
            counts = header_counts(user)
            kept.keep_counts(key, stamp, counts)
        entries = kept.menus.get(key[1])
        if entries is None:
            entries = kept.menus[key[1]] = tuple(menu(user))
        context = {**counts, "menu": list(entries), "header_roles": cache.role_names(user)}
        if "approvals_waiting" in counts and not counts["approvals_waiting"] and not user.can("approve"):
            context["menu"].remove("cases.approvals")  # a coordinator sees it while something waits
        return context

    @app.context_processor
    def today():
        return {"today": clock.today()}

    @app.context_processor
    def translations():
        return template_context()
