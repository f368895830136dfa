"""Clients, client folders and organisations."""
from flask import Blueprint, flash, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import scope
from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..cases import service as cases
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..form_tokens import AlreadyMade
from ..formtools import apply_error, choices, form_status, go, handler_label, keep_offered, to_what_was_made
from ..labels import ORG_KIND_LABELS
from ..links import id_prefix
from ..models import Organisation, OrgKind
from . import organisations as orgs
from . import service
from .forms import ClientForm, OrganisationForm

bp = Blueprint("clients", __name__)


def _client_form(form: ClientForm) -> ClientForm:
    schools = orgs.organisations((OrgKind.SCHOOL, OrgKind.KINDERGARTEN))
    form.organisation_id.choices = choices(schools)
    form.handler_id.choices = choices(cases.handlers(), lambda u: u.full_name, empty=None)
    if not current_user.can("register_case"):
        form.handler_id.choices = [(current_user.id, current_user.full_name)]
    return form


def _data(form: ClientForm) -> service.ClientData:
    return service.ClientData(
        national_id=form.national_id.data or "", given_name=form.given_name.data or "",
        family_name=form.family_name.data or "", address=form.address.data or "",
        postal_code=form.postal_code.data or "", city=form.city.data or "",
        organisation_id=form.organisation_id.data, handler_id=form.handler_id.data)


@bp.route("/clients/new", methods=["GET", "POST"])
@permission_required("register_case", "journal")
def new_client():
    form = _client_form(ClientForm())
    if request.method == "GET":
        form.handler_id.data = current_user.id
    if form.validate_on_submit():
        try:
            client = service.register_client(_actor(), _data(form), token=form.form_token.data)
        except AlreadyMade as made:
            return to_what_was_made(made)
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("Client %(name)s registered.", name=client.name), "success")
            return go(url_for("clients.folder", client_id=client.id))
    return render_template("clients/form.html", form=form, client=None), form_status()


@bp.route("/clients/<int:client_id>")
@permission_required("search_own", "search_all")
def folder(client_id: int):
    client, client_cases, posts = service.open_folder(_actor(), client_id)
    return render_template("clients/folder.html", client=client, cases=client_cases, posts=posts,
                           post_href=id_prefix("cases.post", "post_id"), case_href=id_prefix("cases.case", "case_id"))


@bp.route("/clients/<int:client_id>/edit", methods=["GET", "POST"])
@permission_required("register_case", "journal")
def edit_client(client_id: int):
    client = scope.client(_actor(), client_id)
    form = _client_form(ClientForm(obj=client))
    if request.method == "GET":
        form.national_id.data = ""  # shown only through the logged "Vis"; type a new one to change it
        if client.handler is not None and current_user.can("register_case"):
            keep_offered(form.handler_id, client.handler, handler_label(client.handler))
        if client.organisation is not None:
            keep_offered(form.organisation_id, client.organisation, client.organisation.name)
    if form.validate_on_submit():
        try:
            service.update_client(_actor(), client_id, _data(form))
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("Saved."), "success")
            return go(url_for("clients.folder", client_id=client_id))
    return render_template("clients/form.html", form=form, client=client), form_status()


@bp.route("/clients/<int:client_id>/national-id", methods=["POST"])
@permission_required("search_own", "search_all")
def reveal_national_id(client_id: int):
    number = service.reveal_national_id(_actor(), client_id)
    return render_template("clients/_national_id.html", number=number)


def _org_form(form: OrganisationForm, org: Organisation | None = None) -> OrganisationForm:
    form.kind.choices = [(k.value, ORG_KIND_LABELS[k.value]) for k in OrgKind]
    form.parent_id.choices = choices([o for o in orgs.organisations() if org is None or o.id != org.id])
    return form


@bp.route("/organisations", methods=["GET", "POST"])
@permission_required("search_own", "search_all")
def organisations():
    form = _org_form(OrganisationForm())
    if form.validate_on_submit():
        try:
            org = orgs.register_organisation(_actor(), name=form.name.data, org_number=form.org_number.data or "",
                                                kind=form.kind.data, parent_id=form.parent_id.data,
                                                address=form.address.data or "", token=form.form_token.data)
        except AlreadyMade as made:
            return to_what_was_made(made)
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("Organisation %(name)s registered.", name=org.name), "success")
            return go(url_for("clients.organisations"))
    return render_template("clients/organisations.html", form=form, orgs=orgs.organisations()), form_status()


@bp.route("/organisations/<int:org_id>/edit", methods=["GET", "POST"])
@permission_required("manage_orgs")
def edit_organisation(org_id: int):
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise NotFound(object_type="organisation", object_id=org_id)
    form = _org_form(OrganisationForm(obj=org), org)
    if request.method == "GET":
        form.kind.data = org.kind.value
    if form.validate_on_submit():
        try:
            orgs.update_organisation(_actor(), org_id, name=form.name.data, org_number=form.org_number.data or "",
                                        kind=form.kind.data, parent_id=form.parent_id.data,
                                        address=form.address.data or "")
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("Saved."), "success")
            return go(url_for("clients.organisations"))
    return render_template("clients/organisation_form.html", form=form, org=org), form_status()
