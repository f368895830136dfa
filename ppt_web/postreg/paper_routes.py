"""Paper originals: the list of those due for destruction, and the confirmation that one was destroyed."""
from flask import flash, render_template, request, url_for
from flask_babel import gettext as _

from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..errors import DomainError
from ..formtools import go
from . import paper
from .blueprint import bp


@bp.route("/paper-originals")
@permission_required("distribute_mail")
def paper_originals():
    due_only = request.args.get("all") != "1"
    rows = paper.paper_originals(_actor(), due_only=due_only)
    return render_template("postreg/paper.html", rows=rows, due_only=due_only)


@bp.route("/paper-originals/<int:original_id>/destroyed", methods=["POST"])
@permission_required("distribute_mail")
def paper_destroyed(original_id: int):
    try:
        paper.confirm_destroyed(_actor(), original_id)
    except DomainError as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Destruction recorded."), "success")
    return go(url_for("postreg.paper_originals"))
