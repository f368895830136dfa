"""Sign-in, sign-out and the user's own language choice."""
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..errors import Invalid
from ..formtools import apply_error
from . import service
from .access import public
from .forms import PasswordForm, ProfileForm, SignInForm

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: one leading "/", no scheme or host, no backslash and no control
    characters (browsers drop tabs and newlines, so "/%09/evil" would become "//evil"); else the start page."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("main.index")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = SignInForm()
    error = None
    if form.validate_on_submit():
        try:
            user, _token = service.sign_in(form.username.data, form.password.data,
                                           client_ip=request.remote_addr or "")
        except service.SignInRefused as refused:
            error = str(refused.message)
        else:
            session.clear()
            login_user(user)
            if user.must_change_password:
                return redirect(url_for("auth.change_password"))
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        error = _("Fill in both username and password.")
    status = 401 if error else 200
    return render_template("auth/login.html", form=form, error=error), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    service.sign_out(current_user._get_current_object())
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    form = ProfileForm(obj=current_user)
    if form.validate_on_submit():
        service.set_language(current_user._get_current_object(), form.locale.data)
        flash(_("Saved."), "success")
        return redirect(url_for("auth.profile"))
    return render_template("auth/profile.html", form=form)


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    """The user's own new password; the only page open while an administrator requires one."""
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            service.change_password(current_user._get_current_object(), form.current_password.data,
                                    form.new_password.data)
        except Invalid as exc:
            apply_error(form, exc)
        else:
            flash(_("Your password is changed."), "success")
            return redirect(url_for("main.index"))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form), status
