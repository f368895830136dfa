"""Paper originals: those due for destruction, the confirmation that one was destroyed, and the register
of destroyed originals (who destroyed what, when)."""
from datetime import date

from flask import flash, render_template, request, url_for
from flask_babel import gettext as _

from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..errors import DomainError
from ..formtools import go, id_or_none
from ..i18n import date_problem, parse_day, period_problem
from . import paper
from .blueprint import bp


def _day(name: str) -> tuple[date | None, str, str | None]:
    """A day typed as dd.mm.yyyy (or yyyy-mm-dd): (the day or None, the text as typed, what is wrong)."""
    raw = request.args.get(name, "").strip()[:20]
    return parse_day(raw), raw, date_problem(raw)


@bp.route("/paper-originals")
@permission_required("distribute_mail")
def paper_originals():
    view = request.args.get("view", "")
    if view == "destroyed":
        (date_from, typed_from, bad_from), (date_to, typed_to, bad_to) = _day("from"), _day("to")
        for problem in (bad_from, bad_to, period_problem(date_from, date_to)):
            if problem:
                flash(problem, "error")
        page = id_or_none(request.args.get("page")) or 1  # bounded: a page past any is empty, not an error
        register = paper.destroyed_register(_actor(), date_from, date_to, page)
        period = {k: v for k, v in (("from", typed_from), ("to", typed_to)) if v}
        return render_template("postreg/paper.html", view="destroyed", register=register, period=period,
                               rows=[], due_only=False)
    due_only = request.args.get("all") != "1"
    rows = paper.paper_originals(_actor(), due_only=due_only)
    return render_template("postreg/paper.html", view="kept", rows=rows, due_only=due_only)


@bp.route("/paper-originals/<int:original_id>/destroyed", methods=["POST"])
@permission_required("distribute_mail")
def paper_destroyed(original_id: int):
    try:
        paper.confirm_destroyed(_actor(), original_id, confirmed=request.form.get("confirm") == "1")
    except DomainError as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Destruction recorded."), "success")
    return go(url_for("postreg.paper_originals", all=request.form.get("all") or None))
