"""The start page, notifications and liveness."""
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user

from .. import notify
from ..auth.access import current_actor, public
from . import start
from .health import metrics_refusal, metrics_text, readiness

bp = Blueprint("main", __name__)


@bp.route("/")
def index():
    """The start page: a panel of waiting work per role the user acts in, then the admin tiles."""
    actor = current_actor()
    return render_template("main/index.html", panels=start.panels(actor), roles=start.role_names(actor),
                           shown=start.SHOWN)


@bp.route("/notifications")
def notifications():
    return render_template("main/notifications.html", notifications=notify.latest(current_user.id))


@bp.route("/notifications/<int:notification_id>/open", methods=["POST"])
def open_notification(notification_id: int):
    """Mark one notice read and go where it points (only one's own: another's is 404)."""
    return redirect(notify.mark_read(current_user.id, notification_id) or url_for("main.notifications"))


@bp.route("/notifications/read", methods=["POST"])
def read_all_notifications():
    notify.mark_all_read(current_user.id)
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
    """Prometheus text: counts only. Behind PPT_METRICS_TOKEN (Authorization: Bearer) when it is set,
    for the host itself only when it is not (health.metrics_refusal)."""
    refusal = metrics_refusal(request)
    if refusal == 401:
        return "", 401, {"WWW-Authenticate": "Bearer"}
    if refusal:
        abort(refusal)
    return metrics_text(), 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
