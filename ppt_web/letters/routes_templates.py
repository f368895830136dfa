"""Letter templates and the letterhead (manage_templates)."""
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..errors import Conflict, Invalid
from ..form_tokens import AlreadyMade
from ..formtools import apply_error, form_status, id_or_none
from . import letterhead, merge
from . import templates as service
from .blueprint import bp
from .forms import LetterheadForm, NewTemplateForm, TemplateForm

__all__ = ["bp"]


def _data(form: TemplateForm) -> service.TemplateData:
    return service.TemplateData(name=form.name.data or "", kind=form.kind.data or "",
                                post_type=form.post_type.data or "", default_title=form.default_title.data or "",
                                legal_basis=form.legal_basis.data or "",
                                show_national_id=bool(form.show_national_id.data), body=form.body.data or "")


def _form_page(form: TemplateForm, template=None):
    return render_template("letters/templates_form.html", form=form, template=template,
                           fields=merge.field_names(), kind_labels=service.KIND_LABELS), form_status()


@bp.route("/admin/templates")
@permission_required("manage_templates")
def admin_templates():
    """Where an administrator may look for the templates first."""
    return redirect(url_for("letters.templates"))


@bp.route("/templates")
@permission_required("manage_templates")
def templates():
    return render_template("letters/templates_list.html", templates=service.listing(_actor()),
                           kind_labels=service.KIND_LABELS)


@bp.route("/templates/new", methods=["GET", "POST"])
@permission_required("manage_templates")
def new_template():
    form = NewTemplateForm()
    if request.method == "GET":
        form.legal_basis.data = service.DEFAULT_LEGAL_BASIS
    if form.validate_on_submit():
        try:
            made = service.create(_actor(), _data(form), token=form.form_token.data)
        except AlreadyMade as exc:
            flash(_("This form was sent already. Here is what it made."), "info")
            return redirect(url_for("letters.edit_template", template_id=exc.object_id))
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("Template %(name)s created.", name=made.name), "success")
            return redirect(url_for("letters.edit_template", template_id=made.id))
    return _form_page(form)


@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
@permission_required("manage_templates")
def edit_template(template_id: int):
    template = service.get(_actor(), template_id)
    if request.method == "GET":
        form = TemplateForm(data={"name": template.name, "kind": template.kind.value,
                                  "post_type": template.post_type.value, "default_title": template.default_title,
                                  "legal_basis": template.legal_basis, "show_national_id": template.show_national_id,
                                  "body": template.body, "version": template.version})
    else:
        form = TemplateForm()
    if form.validate_on_submit():
        try:
            saved = service.update(_actor(), template_id, _data(form), id_or_none(form.version.data) or 0)
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("Saved as version %(n)s.", n=saved.version), "success")
            return redirect(url_for("letters.edit_template", template_id=template_id))
    return _form_page(form, template)


@bp.route("/templates/<int:template_id>/copy", methods=["POST"])
@permission_required("manage_templates")
def copy_template(template_id: int):
    made = service.copy(_actor(), template_id)
    flash(_("Template copied as %(name)s.", name=made.name), "success")
    return redirect(url_for("letters.edit_template", template_id=made.id))


@bp.route("/templates/<int:template_id>/retire", methods=["POST"])
@permission_required("manage_templates")
def retire_template(template_id: int):
    try:
        done = service.retire(_actor(), template_id)
    except Invalid as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Template %(name)s retired: no new letters are made from it.", name=done.name), "success")
    return redirect(url_for("letters.templates"))


@bp.route("/templates/<int:template_id>/reinstate", methods=["POST"])
@permission_required("manage_templates")
def reinstate_template(template_id: int):
    try:
        done = service.reinstate(_actor(), template_id)
    except Invalid as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Template %(name)s is in use again.", name=done.name), "success")
    return redirect(url_for("letters.templates"))


@bp.route("/templates/<int:template_id>/versions/<int:number>")
@permission_required("manage_templates")
def template_version(template_id: int, number: int):
    row = service.version(_actor(), template_id, number)
    return render_template("letters/templates_version.html", row=row, template=row.template,
                           kind_labels=service.KIND_LABELS)


@bp.route("/templates/letterhead", methods=["GET", "POST"])
@permission_required("manage_templates")
def letterhead_settings():
    held = letterhead.saved()
    form = LetterheadForm(data=held) if request.method == "GET" else LetterheadForm()
    if form.validate_on_submit():
        upload = request.files.get("logo")
        logo = upload.stream.read(letterhead.MAX_LOGO_BYTES + 1) if upload and upload.filename else None
        try:
            letterhead.save(_actor(), name=form.name.data or "", address=form.address.data or "",
                            org_number=form.org_number.data or "", phone=form.phone.data or "",
                            email=form.email.data or "", logo=logo, remove_logo=bool(form.remove_logo.data))
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("letters.letterhead_settings"))
    return render_template("letters/templates_letterhead.html", form=form, logo=held.get("logo", ""),
                           configured=letterhead.configured()), form_status()
