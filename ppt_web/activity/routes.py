"""The activity log page (permission activity_log)."""
from datetime import date

from flask import Blueprint, render_template, request

from ..auth.access import current_actor, permission_required
from ..formtools import id_or_none
from ..i18n import date_problem, parse_day, period_problem
from . import readable, service

bp = Blueprint("activity", __name__, url_prefix="/activity-log")


def _date(name: str) -> date | None:
    return parse_day(request.args.get(name, "")[:20])


def _date_problems() -> dict:
    """Typed dates that name no day, or a period backwards: {field: (message, as typed)}; the page says
    why the date filters nothing and keeps what was typed."""
    problems = {}
    for name in ("date_from", "date_to"):
        typed = request.args.get(name, "")[:20]
        if (problem := date_problem(typed)):
            problems[name] = (problem, typed)
    if (backwards := period_problem(_date("date_from"), _date("date_to"))):
        problems["date_to"] = (backwards, request.args.get("date_to", "")[:20])
    return problems


@bp.route("/")
@permission_required("activity_log", check=service.reader_refusal)
def log():
    flt = service.LogFilter(
        actor=request.args.get("actor", "")[:80],
        action=request.args.get("action", "")[:60],
        object_type=request.args.get("object_type", "")[:40],
        outcome=request.args.get("outcome", "")[:20],
        date_from=_date("date_from"),
        date_to=_date("date_to"),
    )
    page = id_or_none(request.args.get("page")) or 1
    rows = service.search(current_actor(), flt, max(page, 1), 50)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    shown = readable.describe(list(rows.items))
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "activity-rows":
        return render_template("activity/_rows.html", rows=rows, args=args, readable=shown)
    return render_template("activity/log.html", rows=rows, flt=flt, args=args, actions=service.known_actions(),
                           readable=shown, date_problems=_date_problems())
