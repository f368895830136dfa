"""The start page, notifications and liveness."""
import hmac

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select, update

from ..auth.access import public
from ..clock import utcnow
from ..errors import NotFound
from ..extensions import db
from ..models import Notification
from .health import metrics_text, readiness

bp = Blueprint("main", __name__)


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


@bp.route("/notifications/<int:notification_id>/open", methods=["POST"])
def open_notification(notification_id: int):
    """Mark one notice read and go where it points (only one's own: another's is 404)."""
    row = db.session.get(Notification, notification_id)
    if row is None or row.user_id != current_user.id:
        raise NotFound(object_type="notification", object_id=notification_id)
    if row.read_at is None:
        row.read_at = utcnow()
        db.session.commit()
    return redirect(row.link or url_for("main.notifications"))


@bp.route("/notifications/read", methods=["POST"])
def read_all_notifications():
    db.session.execute(update(Notification).where(Notification.user_id == current_user.id,
                                                  Notification.read_at.is_(None)).values(read_at=utcnow()))
    db.session.commit()
    return redirect(url_for("main.notifications"))


@bp.route("/healthz")
@public
def healthz():
    return {"status": "ok"}


@bp.route("/readyz")
@public
def readyz():
    """For the load balancer: 200 when database, Redis, a worker and the archive answer; else 503."""
    ready, checks = readiness()
    return {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503


@bp.route("/metrics")
@public
def metrics():
    """Prometheus text: counts only. Behind PPT_METRICS_TOKEN (Authorization: Bearer) when it is set."""
    token = current_app.config.get("PPT_METRICS_TOKEN")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if token and not hmac.compare_digest(given.encode(), str(token).encode()):
        abort(401)
    return metrics_text(), 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
