"""The start page, notifications and liveness."""
from flask import render_template
from flask_login import current_user
from sqlalchemy import select

from ..auth.access import public
from ..extensions import db
from ..models import Notification
from . import bp


@bp.route("/")
def index():
    return render_template("main/index.html")


@bp.route("/notifications")
def notifications():
    rows = db.session.scalars(
        select(Notification).where(Notification.user_id == current_user.id)
        .order_by(Notification.created_at.desc()).limit(100)
    )
    return render_template("main/notifications.html", notifications=list(rows))


@bp.route("/healthz")
@public
def healthz():
    return {"status": "ok"}
