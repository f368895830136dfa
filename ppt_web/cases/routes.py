"""Cases: register, open, co-handlers, handler, close and reopen, the worklist."""
from flask import flash, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from ..auth import scope
from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..clients import organisations
from ..errors import Conflict, Invalid
from ..extensions import db
from ..form_tokens import AlreadyMade
from ..formtools import (
    apply_error,
    choices,
    form_status,
    go,
    handler_label,
    id_or_none,
    keep_offered,
    to_what_was_made,
)
from ..labels import CATEGORY_LABELS, KIND_LABELS
from ..models import AccessGroup, CaseCategory, CaseKind, CaseStatus
from . import service
from .blueprint import bp
from .forms import (
    CaseCorrectionForm,
    CaseForm,
)


def _case_form(form: CaseForm) -> CaseForm:
    form.kind.choices = [(k.value, KIND_LABELS[k.value]) for k in CaseKind]
    form.category.choices = [("", "")] + [(c.value, CATEGORY_LABELS[c.value]) for c in CaseCategory]
    form.client_id.choices = choices(service.clients_for(_actor()), lambda c: f"{c.name} ({c.birth_date:%d.%m.%Y})")
    form.organisation_id.choices = choices(organisations.organisations())
    form.handler_id.choices = choices(service.handlers(), lambda u: u.full_name, empty=None)
    if not current_user.can("register_case"):
        form.kind.choices = [(CaseKind.PERSON.value, KIND_LABELS["person"])]
        form.handler_id.choices = [(current_user.id, current_user.full_name)]
    form.access_group_id.choices = choices(db.session.scalars(select(AccessGroup).order_by(AccessGroup.name)))
    return form


@bp.route("/cases/new", methods=["GET", "POST"])
@permission_required("register_case", "journal")
def new_case():
    form = _case_form(CaseForm())
    if request.method == "GET":
        form.client_id.data = id_or_none(request.args.get("client_id"))
        form.handler_id.data = current_user.id
        if form.client_id.data:
            client = scope.client(_actor(), form.client_id.data)
            keep_offered(form.client_id, client, f"{client.name} ({client.birth_date:%d.%m.%Y})")
            form.handler_id.data = client.handler_id or current_user.id
            if client.handler is not None and current_user.can("register_case"):
                keep_offered(form.handler_id, client.handler, handler_label(client.handler))
    if form.validate_on_submit():
        data = service.CaseData(kind=form.kind.data, title=form.title.data, category=form.category.data or None,
                                client_id=form.client_id.data, organisation_id=form.organisation_id.data,
                                handler_id=form.handler_id.data, access_group_id=form.access_group_id.data)
        try:
            case = service.register_case(_actor(), data, token=form.form_token.data)
        except AlreadyMade as made:
            return to_what_was_made(made)
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("Case %(number)s registered.", number=case.number), "success")
            return go(url_for("cases.case", case_id=case.id))
    return render_template("cases/new.html", form=form), form_status()


@bp.route("/cases/<int:case_id>")
@permission_required("search_own", "search_all")
def case(case_id: int):
    found = scope.case(_actor(), case_id)
    return render_template("cases/case.html", case=found, history=service.history(found),
                           handlers=service.handlers())


@bp.route("/cases/<int:case_id>/cohandlers", methods=["POST"])
@permission_required("add_cohandler")
def add_cohandler(case_id: int):
    service.add_cohandler(_actor(), case_id, id_or_none(request.form.get("user_id")) or 0)
    return go(url_for("cases.case", case_id=case_id))


@bp.route("/cases/<int:case_id>/cohandlers/<int:user_id>/remove", methods=["POST"])
@permission_required("add_cohandler")
def remove_cohandler(case_id: int, user_id: int):
    service.remove_cohandler(_actor(), case_id, user_id)
    return go(url_for("cases.case", case_id=case_id))


@bp.route("/cases/<int:case_id>/handler", methods=["POST"])
@permission_required("change_handler")
def change_handler(case_id: int):
    service.change_handler(_actor(), case_id, id_or_none(request.form.get("user_id")) or 0)
    flash(_("Saved."), "success")
    return go(url_for("cases.case", case_id=case_id))


@bp.route("/cases/<int:case_id>/close", methods=["GET", "POST"])
@permission_required("close_case")
def close_case(case_id: int):
    """GET: what closing will do (posts that block it, posts it writes off, how), to confirm; in the
    case page with htmx, a page of its own without. POST: close, writing off the open posts."""
    error, status = None, 200
    if request.method == "POST":
        method = request.form.get("write_off_method") or None
        seen = request.form.get("seen")
        expected = None if seen is None else [i for v in seen.split(",") if (i := id_or_none(v))]
        try:
            service.close_case(_actor(), case_id, method, expected)
        except (Invalid, Conflict) as exc:
            error, status = str(exc.message), exc.status
        else:
            flash(_("The case is closed."), "success")
            if method and expected:  # the service wrote off exactly the posts the page showed
                flash(ngettext("%(num)d post was written off.", "%(num)d posts were written off.", len(expected)),
                      "success")
            return go(url_for("cases.case", case_id=case_id))
    found = service.closing(_actor(), case_id)
    if found.case.status == CaseStatus.CLOSED and status == 200:
        return go(url_for("cases.case", case_id=case_id))
    chosen = request.form.get("write_off_method") or service.DEFAULT_CLOSING_WRITE_OFF
    template = "cases/_close.html" if request.headers.get("HX-Request") else "cases/close.html"
    return render_template(template, closing=found, error=error, chosen=chosen,
                           methods=service.CLOSING_WRITE_OFF_METHODS), status


@bp.route("/cases/<int:case_id>/reopen", methods=["POST"])
@permission_required("close_case")
def reopen_case(case_id: int):
    service.reopen_case(_actor(), case_id)
    flash(_("The case is open again."), "success")
    return go(url_for("cases.case", case_id=case_id))


@bp.route("/cases/<int:case_id>/correct", methods=["GET", "POST"])
@permission_required("correct_metadata")
def correct_case(case_id: int):
    found = scope.case(_actor(), case_id)
    form = CaseCorrectionForm()
    if request.method == "GET":
        form.title.data = found.title
    if form.validate_on_submit():
        try:
            service.correct_case(_actor(), case_id, form.reason.data, form.title.data)
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("The case title is corrected. Old and new title are on the case's history."), "success")
            return go(url_for("cases.case", case_id=case_id))
    return render_template("cases/correct_case.html", form=form, case=found), form_status()


@bp.route("/cases/worklist")
@permission_required("search_own", "search_all")
def worklist():
    return render_template("cases/worklist.html", lists=service.worklist(_actor()))
