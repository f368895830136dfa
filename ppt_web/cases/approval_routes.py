"""Approval and signing of outgoing posts (docs/decisions.md, "Approval and signing")."""
from flask import flash, render_template, url_for
from flask_babel import gettext as _

from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..errors import Conflict, Invalid
from ..formtools import go
from ..links import id_prefix
from . import approval, esign
from .blueprint import bp
from .forms import (
    ApprovalDecisionForm,
    ApprovalRequestForm,
)


def _back_to_post(post_id: int, call, success: str, then: str | None = None):
    """Run a post action; a refusal is shown on the post page instead of an error page."""
    try:
        call()
    except (Invalid, Conflict) as exc:
        flash(str(exc.message), "error")
        return go(url_for("cases.post", post_id=post_id))
    flash(success, "success")
    return go(then or url_for("cases.post", post_id=post_id))


@bp.route("/posts/<int:post_id>/send-to-approval", methods=["POST"])
@permission_required("journal")
def send_for_approval(post_id: int):
    form = ApprovalRequestForm()
    form.validate_on_submit()
    return _back_to_post(post_id, lambda: approval.send_for_approval(_actor(), post_id, form.approver_id.data,
                                                                    form.comment.data or ""),
                         _("Sent to approval. The post is locked until it comes back."))


@bp.route("/posts/<int:post_id>/approve", methods=["POST"])
@permission_required("approve", "journal")  # a team coordinator approves as a handler (the service decides)
def approve(post_id: int):
    form = ApprovalDecisionForm()
    form.validate_on_submit()
    # Back to the queue: a team coordinator sees the post only while it waits for them.
    return _back_to_post(post_id, lambda: approval.approve(_actor(), post_id, form.comment.data or "",
                                                           sign=bool(form.sign.data)),
                         _("Approved and finalized."), then=url_for("cases.approvals"))


@bp.route("/posts/<int:post_id>/return", methods=["POST"])
@permission_required("approve", "journal")
def return_for_changes(post_id: int):
    form = ApprovalDecisionForm()
    form.validate_on_submit()
    return _back_to_post(post_id, lambda: approval.return_for_changes(_actor(), post_id, form.comment.data or ""),
                         _("Returned to the handler with your comment."), then=url_for("cases.approvals"))


@bp.route("/posts/<int:post_id>/sign", methods=["POST"])
@permission_required("esign")
def sign(post_id: int):
    return _back_to_post(post_id, lambda: esign.sign(_actor(), post_id), _("The document is signed."))


@bp.route("/approvals")
@permission_required("approve", "journal")
def approvals():
    return render_template("cases/approvals.html", waiting=approval.queue(_actor()),
                           post_href=id_prefix("cases.post", "post_id"))
