"""Dispatch a post, retry a failed dispatch, and the dispatch failures list."""
from flask import Blueprint, flash, render_template, url_for
from flask_babel import gettext as _

from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..errors import Conflict, Invalid
from ..formtools import go
from . import service

bp = Blueprint("dispatch", __name__, url_prefix="/dispatch")


@bp.route("/posts/<int:post_id>", methods=["POST"])
@permission_required("send")
def dispatch_post(post_id: int):
    try:
        rows = service.request_dispatch(_actor(), post_id)
    except (Invalid, Conflict) as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Dispatch started to %(n)s recipient(s).", n=len(rows)), "success")
    return go(url_for("cases.post", post_id=post_id))


@bp.route("/<int:dispatch_id>/retry", methods=["POST"])
@permission_required("send")
def retry(dispatch_id: int):
    again = None
    try:
        again = service.retry(_actor(), dispatch_id)
    except (Invalid, Conflict) as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("The dispatch is tried again."), "success")
    return go(url_for("cases.post", post_id=again.post_id) if again else url_for("dispatch.failures"))


@bp.route("/failures")
@permission_required("send")
def failures():
    return render_template("dispatch/failures.html", rows=service.failures(_actor()))
