"""Sign-in required everywhere by default, server-side sessions, and security headers."""
from __future__ import annotations

from flask import Flask, current_app, has_request_context, redirect, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import lazy_gettext as _l
from flask_login import current_user

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
        if is_public(request.endpoint):
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if current_user.must_change_password and request.endpoint not in PASSWORD_CHANGE_ENDPOINTS:
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
        h = response.headers
        if "attachment" in h.get("Content-Disposition", ""):
            h.setdefault("Content-Security-Policy", DOWNLOAD_CSP)  # opened anyway: nothing in it may run
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("X-Frame-Options", "DENY")
        h.add("Vary", "HX-Request")
        if request.endpoint != "static":
            h.setdefault("Cache-Control", "no-store")
        return response

    app.session_interface = SessionInterface()


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or (has_request_context() and request.is_secure)
