"""Sign-in required everywhere by default, server-side sessions, and security headers."""
from __future__ import annotations

import time
from typing import Any

from flask import Flask, Request, current_app, has_request_context, redirect, request, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from itsdangerous import BadSignature

from .auth import cache
from .auth.access import PUBLIC_ATTR
from .auth.service import load_session_user
from .extensions import login_manager

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Files sent as downloads (refused intake files). Inline PDFs keep "frame-ancestors 'self'" only: a sandbox
# or default-src 'none' stops the browsers' own PDF viewers (docs/decisions.md, "What the upload check refuses").
DOWNLOAD_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"

# Set on every response that does not set them itself (security.init_app, headers).
DEFAULT_HEADERS = (("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                   ("Referrer-Policy", "same-origin"), ("X-Frame-Options", "DENY"))

# What a user whose password must be changed may still open.
PASSWORD_CHANGE_ENDPOINTS = frozenset({"auth.change_password", "auth.logout"})


def is_public(endpoint: str | None) -> bool:
    if endpoint is None or endpoint == "static":
        return True
    view = current_app.view_functions.get(endpoint)
    return bool(getattr(view, PUBLIC_ATTR, False))


def init_app(app: Flask) -> None:
    cache.init_app(app)
    login_manager.session_protection = "basic"
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Sign in to continue.")
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(token: str):
        return load_session_user(token)

    @login_manager.unauthorized_handler
    def unauthorized():
        target = url_for("auth.login", next=request.full_path.rstrip("?")
                         if request.method == "GET" and not request.headers.get("HX-Request") else None)
        if request.headers.get("HX-Request"):
            # Never swap a sign-in form into a table row: send the whole page there.
            response = current_app.response_class(status=401)
            response.headers["HX-Redirect"] = url_for("auth.login")
            return response
        return redirect(target)

    @app.before_request
    def require_sign_in():
        """Every route needs a signed-in user unless its view is marked @public."""
        endpoint = request.endpoint
        if is_public(endpoint):
            return None
        user = current_user._get_current_object()  # loads the user (once a request); then the object itself
        if not user.is_authenticated:
            return login_manager.unauthorized()
        if user.must_change_password and endpoint not in PASSWORD_CHANGE_ENDPOINTS:
            # A password someone else set: nothing but choosing a new one (or signing out) until then.
            target = url_for("auth.change_password")
            if request.headers.get("HX-Request"):
                response = current_app.response_class(status=403)
                response.headers["HX-Redirect"] = target
                return response
            return redirect(target)
        return None

    @app.after_request
    def headers(response):
        """The security headers a response does not set itself (one pass over its headers, not one per
        header: setdefault looks through them all each time)."""
        h = response.headers
        present = {key.lower() for key, _value in h.items()}
        if "content-security-policy" not in present and "attachment" in h.get("Content-Disposition", ""):
            h.add("Content-Security-Policy", DOWNLOAD_CSP)  # opened anyway: nothing in it may run
            present.add("content-security-policy")
        for key, value in DEFAULT_HEADERS:
            if key.lower() not in present:
                h.add(key, value)
        h.add("Vary", "HX-Request")
        if request.endpoint != "static" and "cache-control" not in present:
            h.add("Cache-Control", "no-store")
        return response

    app.session_interface = SessionInterface()


# Session cookies whose signature was checked, kept per process (SessionInterface.open_session).
OPENED_COOKIES = 2000


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over https.

    A cookie is opened (its signature checked and its data decoded) once per process: the same cookie
    string under the same keys always opens to the same data, so the data is kept with the time it was
    signed, and the cookie's age is checked on every request as Flask does (older than the session's
    lifetime, or signed in the future: an empty session). Only data of plain values is kept (the usual
    session: the session token, the CSRF token, Flask-Login's marks); a cookie with a list or a dict in
    it (flashed messages) is opened each time. Opening it was about a tenth of a small page."""

    def __init__(self) -> None:
        self.opened: dict[tuple, tuple[int, dict[str, Any]]] = {}

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        val = request.cookies.get(self.get_cookie_name(app))
        if not val or not app.secret_key:
            return super().open_session(app, request)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()), val)
        kept = self.opened.get(key)
        if kept is not None:
            age = int(time.time()) - kept[0]
            return self.session_class(kept[1] if 0 <= age <= max_age else None)
        serializer = self.get_signing_serializer(app)
        assert serializer is not None  # a secret key is set
        try:
            data, signed_at = serializer.loads(val, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(data, dict) and all(type(v) in _PLAIN for v in data.values()):
            if len(self.opened) >= OPENED_COOKIES:
                self.opened.clear()
            self.opened[key] = (int(signed_at.timestamp()), dict(data))
        return self.session_class(data)

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or (has_request_context() and request.is_secure)


_PLAIN = frozenset({str, int, float, bool, type(None)})
