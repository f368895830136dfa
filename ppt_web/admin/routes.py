"""User administration pages; row actions answer htmx with the changed row."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import runtime_settings
from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..errors import Conflict, Forbidden, Invalid, raise_if
from ..formtools import apply_error, id_or_none
from ..web import record_refusal
from . import service
from .forms import ArchiveSettingsForm, GroupForm, UserCreateForm, UserEditForm

bp = Blueprint("admin", __name__, url_prefix="/admin")
# The user's page and the profile page show the effective rights and where each comes from (admin/_rights.html).
bp.add_app_template_global(service.rights_of, "rights_of")
bp.add_app_template_global(service.role_sources, "role_sources_of")
# A runtime setting in force (the settings page's value, else the configuration), for any page that names one.
bp.add_app_template_global(runtime_settings.value, "setting")


@bp.errorhandler(Forbidden)
def refused(exc: Forbidden):
    """A refusal here says why (the role-granting rules), and is logged like any other."""
    record_refusal("access_denied", exc)
    message = str(exc.message) if exc.message else _("You do not have access to this page or action.")
    if request.headers.get("HX-Request"):
        return (render_template("errors/_message.html", message=message), 403,
                {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
    return render_template("errors/error.html", status=403, message=message), 403


@bp.context_processor
def policy():
    """What the pages offer is what the services allow (admin/service.py, role_refusal and manage_refusal)."""
    if not current_user.is_authenticated:
        return {}
    actor = _actor()
    return {
        "may_manage": lambda user: service.manage_refusal(actor, user) is None,
        "may_change_role": lambda user, role: (service.role_refusal(actor, role, user) is None
                                               and service.manage_refusal(actor, user) is None),
        "addable_roles": lambda user, roles: [] if service.manage_refusal(actor, user) is not None else [
            r for r in roles if r.active and r not in user.roles and service.role_refusal(actor, r, user) is None],
        "may_join": lambda user, group: service.membership_refusal(actor, user, group) is None,
        "joinable_groups": lambda user, groups: [g for g in groups if g not in user.groups
                                                 and service.membership_refusal(actor, user, g) is None],
        "may_change_group_role": lambda group, role: service.group_role_refusal(actor, group, role) is None,
        "group_roles_offered": lambda group: service.group_roles_offered(actor, group),
        "may_coordinate": lambda group: service.coordinator_refusal(actor, group, None) is None,
        "coordinators_offered": lambda group: [m for m in group.members
                                               if service.coordinator_refusal(actor, group, m) is None],
    }


def _int_field(name: str) -> int:
    chosen = id_or_none(request.form.get(name))  # bounded: an id past what the column holds is no choice
    if chosen is None:
        raise Invalid(_("Choose a value from the list."))
    return chosen


def _row_or_back(user):
    if request.headers.get("HX-Request"):
        return render_template("admin/_user_row.html", user=user, roles=service.roles(), groups=service.groups())
    return redirect(url_for("admin.users"))


@bp.route("/users")
@permission_required("assign_roles", "manage_groups")
def users():
    return render_template("admin/users.html", users=service.users(), roles=service.roles(),
                           groups=service.groups())


@bp.route("/users/new", methods=["GET", "POST"])
@permission_required("assign_roles")
def new_user():
    form = UserCreateForm()
    form.roles.choices = [(r.id, r.name) for r in service.grantable_roles(_actor())]
    if form.validate_on_submit():
        try:
            user = service.create_user(_actor(), username=form.username.data, full_name=form.full_name.data,
                                       password=form.password.data, email=form.email.data or "",
                                       locale=form.locale.data, role_ids=form.roles.data,
                                       archive_id=form.archive_id.data or "")
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("User %(name)s created.", name=user.username), "success")
            return redirect(url_for("admin.users"))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/user_form.html", form=form, user=None), status


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
@permission_required("assign_roles")
def edit_user(user_id: int):
    user = service.get_user(user_id)
    raise_if(service.manage_refusal(_actor(), user))
    form = UserEditForm(obj=user)
    if user.id == current_user.id:
        del form.new_password  # one's own password is changed on its own page, with the current one
    if form.validate_on_submit():
        try:
            new_password = form.new_password.data if "new_password" in form else ""
            service.update_user(_actor(), user_id, full_name=form.full_name.data, email=form.email.data or "",
                                locale=form.locale.data, new_password=new_password or "",
                                archive_id=form.archive_id.data or "")
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("admin.users"))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/user_form.html", form=form, user=user), status


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@permission_required("assign_roles")
def set_active(user_id: int):
    user = service.set_user_active(_actor(), user_id, request.form.get("active") == "1")
    return _row_or_back(user)


@bp.route("/users/<int:user_id>/roles", methods=["POST"])
@permission_required("assign_roles")
def add_role(user_id: int):
    return _row_or_back(service.add_role(_actor(), user_id, _int_field("role_id")))


@bp.route("/users/<int:user_id>/roles/<int:role_id>/remove", methods=["POST"])
@permission_required("assign_roles")
def remove_role(user_id: int, role_id: int):
    return _row_or_back(service.remove_role(_actor(), user_id, role_id))


@bp.route("/users/<int:user_id>/groups", methods=["POST"])
@permission_required("manage_groups")
def add_group(user_id: int):
    return _row_or_back(service.add_to_group(_actor(), user_id, _int_field("group_id")))


@bp.route("/users/<int:user_id>/groups/<int:group_id>/remove", methods=["POST"])
@permission_required("manage_groups")
def remove_group(user_id: int, group_id: int):
    return _row_or_back(service.remove_from_group(_actor(), user_id, group_id))


@bp.route("/groups", methods=["GET", "POST"])
@permission_required("manage_groups")
def groups():
    form = GroupForm()
    status = 200
    if form.validate_on_submit():
        try:
            group = service.create_group(_actor(), name=form.name.data, description=form.description.data or "")
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("Access group %(name)s created.", name=group.name), "success")
            return redirect(url_for("admin.groups"))
    if request.method == "POST":
        status = 422
    return render_template("admin/groups.html", form=form, groups=service.groups(), roles=service.roles()), status


@bp.route("/groups/<int:group_id>/roles", methods=["POST"])
@permission_required("manage_groups")
def add_group_role(group_id: int):
    group = service.add_group_role(_actor(), group_id, _int_field("role_id"))
    flash(_("%(name)s now carries the role.", name=group.name), "success")
    return redirect(url_for("admin.groups", _anchor=f"group-{group.id}"))


@bp.route("/groups/<int:group_id>/roles/<int:role_id>/remove", methods=["POST"])
@permission_required("manage_groups")
def remove_group_role(group_id: int, role_id: int):
    group = service.remove_group_role(_actor(), group_id, role_id)
    flash(_("The role was taken from %(name)s.", name=group.name), "success")
    return redirect(url_for("admin.groups", _anchor=f"group-{group.id}"))


@bp.route("/groups/<int:group_id>/coordinator", methods=["POST"])
@permission_required("manage_groups")
def set_coordinator(group_id: int):
    raw = request.form.get("user_id", "").strip()
    chosen = id_or_none(raw)
    if raw and chosen is None:
        raise Invalid(_("Choose a value from the list."))
    service.set_coordinator(_actor(), group_id, chosen)
    flash(_("Saved."), "success")
    return redirect(url_for("admin.groups"))


@bp.route("/roles")
@permission_required("sysadmin_view")
def roles():
    return render_template("admin/roles.html", roles=service.roles(), permissions=service.permissions(),
                           can_edit=current_user.can("sysadmin_edit_all"))


@bp.route("/roles/<int:role_id>/permissions/<code>", methods=["POST"])
@permission_required("sysadmin_edit_all")
def set_role_permission(role_id: int, code: str):
    role = service.set_role_permission(_actor(), role_id, code, request.form.get("granted") == "1")
    if request.headers.get("HX-Request"):
        return render_template("admin/_role_cell.html", role=role, code=code, can_edit=True)
    return redirect(url_for("admin.roles"))


def _archive_settings_page(form: ArchiveSettingsForm, status: int = 200):
    return render_template("admin/archive_settings.html", form=form, configured=service.archive_configured(),
                           jobs_exist=service.archive_jobs_exist(), can_edit=current_user.can("sysadmin_edit")), status


@bp.route("/archive-settings")
@permission_required("sysadmin_view")
def archive_settings():
    form = ArchiveSettingsForm(data=service.identity.saved())
    return _archive_settings_page(form)


@bp.route("/archive-settings", methods=["POST"])
@permission_required("sysadmin_edit")
def save_archive_settings():
    form = ArchiveSettingsForm()
    if form.validate_on_submit():
        try:
            service.save_archive_settings(_actor(), fagsystem=form.fagsystem.data or "",
                                          administrativ_enhet=form.administrativ_enhet.data or "",
                                          arkivdel=form.arkivdel.data or "",
                                          confirm_fagsystem=bool(form.confirm_fagsystem.data))
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("admin.archive_settings"))
    return _archive_settings_page(form, 422)


def _settings_page(errors: dict | None = None, entered: dict | None = None, status: int = 200):
    return render_template("admin/settings.html", settings=runtime_settings.overview(),
                           sections=runtime_settings.SECTIONS, archive=service.identity.saved(),
                           archive_configured=service.archive_configured(), errors=errors or {},
                           entered=entered or {}, can_edit=current_user.can("sysadmin_edit")), status


@bp.route("/settings")
@permission_required("sysadmin_view")
def settings():
    return _settings_page()


@bp.route("/settings", methods=["POST"])
@permission_required("sysadmin_edit")
def save_setting():
    key = request.form.get("key", "")
    item = runtime_settings.get(key)
    try:
        if request.form.get("reset") == "1":
            runtime_settings.reset(_actor(), key)
        else:
            runtime_settings.change(_actor(), key, request.form.get("value", ""))
    except Invalid as exc:
        return _settings_page({key: str(exc.message)}, {key: request.form.get("value", "")}, 422)
    flash(_("Saved: %(label)s.", label=item.label), "success")
    return redirect(url_for("admin.settings", _anchor=f"setting-{key.replace('.', '-')}"))
