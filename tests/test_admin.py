"""User administration: through the service (rules) and through the client (pages, htmx rows)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from ppt_web.admin import service as admin
from ppt_web.errors import Conflict, Forbidden, Invalid
from ppt_web.extensions import db
from ppt_web.models import AccessGroup, User

from .conftest import activity_rows, role, sign_in, user

HX = {"HX-Request": "true"}


# --- service layer: the rules hold without the UI ---------------------------------------

def test_create_user_needs_assign_roles(ctx):
    with pytest.raises(Forbidden):
        admin.create_user(user("radgjevar1"), username="ny", full_name="Ny Brukar", password="langt-passord")
    assert user("ny") is None


def test_create_user_validates_and_changes_nothing_on_error(ctx):
    konsulent = user("konsulent")
    with pytest.raises(Invalid):
        admin.create_user(konsulent, username="ny", full_name="Ny", password="kort")
    with pytest.raises(Conflict):
        admin.create_user(konsulent, username="Leiar", full_name="Dup", password="langt-passord")
    with pytest.raises(Invalid):
        admin.create_user(konsulent, username="bad name!", full_name="X", password="langt-passord")
    db.session.rollback()
    assert db.session.scalar(select(db.func.count()).select_from(User)) == 8


def test_create_user_with_roles_is_logged_with_after_values(ctx):
    made = admin.create_user(user("konsulent"), username="Tone.T", full_name="Tone Test",
                             password="langt-passord", role_ids=[role("pp_radgjevar").id])
    assert made.username == "tone.t" and made.can("journal")
    row = activity_rows("user_created")[-1]
    assert row.actor_name == "konsulent" and row.after["roles"] == ["pp_radgjevar"]


def test_role_changes_are_logged_with_before_and_after(ctx):
    konsulent = user("konsulent")
    target = user("radgjevar1").id
    admin.add_role(konsulent, target, role("nestleiar").id)
    admin.remove_role(konsulent, target, role("nestleiar").id)
    granted, revoked = activity_rows("role_granted")[-1], activity_rows("role_revoked")[-1]
    assert granted.before["roles"] == ["pp_radgjevar"] and granted.after["roles"] == ["nestleiar", "pp_radgjevar"]
    assert revoked.after["roles"] == ["pp_radgjevar"]


def test_groups_need_manage_groups(ctx):
    with pytest.raises(Forbidden):  # a handler does not manage teams
        admin.create_group(user("radgjevar1"), name="Team X")
    admin.create_group(user("leiar"), name="Team Y")  # the leader does (the routine makes her responsible)
    group = admin.create_group(user("superbrukar"), name="Team X", description="Ungdomsskule")
    admin.add_to_group(user("konsulent"), user("radgjevar2").id, group.id)
    admin.set_coordinator(user("leiar"), group.id, user("radgjevar2").id)  # naming one gives approval rights
    assert db.session.get(AccessGroup, group.id).coordinator.username == "radgjevar2"
    with pytest.raises(Conflict):  # coordinator must be a member
        admin.set_coordinator(user("leiar"), group.id, user("radgjevar1").id)
    admin.remove_from_group(user("konsulent"), user("radgjevar2").id, group.id)
    assert db.session.get(AccessGroup, group.id).coordinator is None
    actions = [r.action for r in activity_rows()]
    for action in ("group_created", "group_member_added", "group_coordinator_set", "group_member_removed"):
        assert action in actions


def test_cannot_lock_yourself_out(ctx):
    konsulent = user("konsulent")
    with pytest.raises(Forbidden):  # nobody changes their own roles
        admin.remove_role(konsulent, konsulent.id, role("konsulent").id)
    with pytest.raises(Conflict):
        admin.set_user_active(konsulent, konsulent.id, False)
    assert [r.code for r in user("konsulent").roles] == ["konsulent"]


def test_role_matrix_only_with_sysadmin_edit_all(ctx):
    with pytest.raises(Forbidden):  # konsulent may view, not edit
        admin.set_role_permission(user("konsulent"), role("nestleiar").id, "statistics", True)
    admin.set_role_permission(user("leiar"), role("nestleiar").id, "statistics", True)
    assert "statistics" in role("nestleiar").permission_codes()
    assert activity_rows("role_permission_changed")[-1].after["permissions"].count("statistics") == 1


def test_the_activity_log_is_only_for_roles_that_see_every_client(ctx):
    """It shows every client's history: a role without search_all is not given it, and a role that reads it
    keeps search_all. Nothing changes on a refusal."""
    with pytest.raises(Forbidden, match="Aktivitetsloggen|aktivitetsloggen"):
        admin.set_role_permission(user("leiar"), role("pp_radgjevar").id, "activity_log", True)
    with pytest.raises(Forbidden, match="Aktivitetsloggen|aktivitetsloggen"):
        admin.set_role_permission(user("leiar"), role("merkantil").id, "search_all", False)
    db.session.rollback()
    assert "activity_log" not in role("pp_radgjevar").permission_codes()
    assert {"activity_log", "search_all"} <= role("merkantil").permission_codes()
    admin.set_role_permission(user("leiar"), role("nestleiar").id, "activity_log", True)  # it has search_all
    assert "activity_log" in role("nestleiar").permission_codes()


def test_a_refused_cell_of_the_role_matrix_says_why(app, login_as):
    with app.app_context():
        role_id = role("pp_radgjevar").id
    page = login_as("leiar").post(f"/admin/roles/{role_id}/permissions/activity_log", data={"granted": "1"},
                                  headers={"HX-Request": "true"})
    assert page.status_code == 403 and "Aktivitetsloggen viser historikken" in page.get_data(as_text=True)


def test_password_reset_ends_the_users_sessions(app):
    victim = app.test_client()
    sign_in(victim, "radgjevar1")
    with app.app_context():
        admin.update_user(user("konsulent"), user("radgjevar1").id, full_name="Rune R", email="",
                          locale="nb", new_password="heilt-nytt-passord")
    assert victim.get("/").status_code == 302
    assert sign_in(app.test_client(), "radgjevar1", "heilt-nytt-passord").status_code == 302


# --- through the client ----------------------------------------------------------------

def test_users_page_lists_everyone_with_roles(login_as):
    page = login_as("konsulent").get("/admin/users").get_data(as_text=True)
    for name in ("Ingrid Leiar", "Rune Rådgjevar", "Sunniva Superbrukar"):
        assert name in page
    assert "PP-rådgjevar" in page


def test_add_role_htmx_returns_only_the_changed_row(app, login_as):
    client = login_as("konsulent")
    with app.app_context():
        uid, rid = user("radgjevar2").id, role("nestleiar").id
    response = client.post(f"/admin/users/{uid}/roles", data={"role_id": rid}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="user-{uid}"') and "<html" not in html
    assert "Nestleiar" in html
    removed = client.post(f"/admin/users/{uid}/roles/{rid}/remove", headers=HX).get_data(as_text=True)
    assert "Nestleiar</li>" not in removed.replace("\n", "").replace(" ", "")
    assert response.headers.get("Vary", "").find("HX-Request") >= 0


def test_inactive_role_via_htmx_shows_a_message_and_changes_nothing(app, login_as):
    client = login_as("konsulent")
    with app.app_context():
        uid, rid = user("radgjevar2").id, role("psykolog").id
    response = client.post(f"/admin/users/{uid}/roles", data={"role_id": rid}, headers=HX)
    assert response.status_code == 409
    assert response.headers["HX-Retarget"] == "#flash"
    with app.app_context():
        assert [r.code for r in user("radgjevar2").roles] == ["pp_radgjevar"]


def test_bad_role_id_is_a_clear_422(app, login_as):
    client = login_as("konsulent")
    with app.app_context():
        uid = user("radgjevar2").id
    assert client.post(f"/admin/users/{uid}/roles", data={"role_id": "abc"}, headers=HX).status_code == 422
    assert client.post(f"/admin/users/{uid}/roles", data={"role_id": "9999"}, headers=HX).status_code == 404
    assert client.post("/admin/users/9999/roles", data={"role_id": "1"}, headers=HX).status_code == 404


def test_create_user_form_shows_errors_and_then_creates(app, login_as):
    client = login_as("konsulent")
    bad = client.post("/admin/users/new", data={"username": "leiar", "full_name": "X", "password": "langt-passord",
                                                 "locale": "nn"})
    assert bad.status_code == 422 and 'class="error"' in bad.get_data(as_text=True)
    with app.app_context():
        rid = role("merkantil").id
    good = client.post("/admin/users/new", data={"username": "ola", "full_name": "Ola Nordmann",
                                                  "password": "langt-passord", "locale": "nb", "roles": [rid]})
    assert good.status_code == 302
    with app.app_context():
        assert user("ola").roles[0].code == "merkantil" and user("ola").locale == "nb"


def test_edit_user_form(app, login_as):
    client = login_as("admin")
    with app.app_context():
        uid = user("sekretaer").id
    assert client.get(f"/admin/users/{uid}/edit").status_code == 200
    response = client.post(f"/admin/users/{uid}/edit", data={"full_name": "Siri S", "email": "siri@example.no",
                                                              "locale": "en", "new_password": ""})
    assert response.status_code == 302
    with app.app_context():
        assert user("sekretaer").full_name == "Siri S" and user("sekretaer").email == "siri@example.no"


def test_groups_page_creates_and_sets_coordinator(app, login_as):
    client = login_as("konsulent")
    assert client.post("/admin/groups", data={"name": "Team Vaksen"}).status_code == 302
    assert client.post("/admin/groups", data={"name": "team vaksen"}).status_code == 422
    with app.app_context():
        group = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team Vaksen"))
        gid, uid = group.id, user("radgjevar2").id
    client.post(f"/admin/users/{uid}/groups", data={"group_id": gid}, headers=HX)
    assert client.post(f"/admin/groups/{gid}/coordinator", data={"user_id": uid}).status_code == 403  # no approve
    leader = app.test_client()
    sign_in(leader, "leiar")
    assert leader.post(f"/admin/groups/{gid}/coordinator", data={"user_id": uid}).status_code == 302
    with app.app_context():
        assert db.session.get(AccessGroup, gid).coordinator_id == uid


# --- one's own user page, and the users list without JavaScript ------------------------------------

@pytest.mark.parametrize("username", ["leiar", "konsulent", "admin"])
def test_ones_own_user_page_opens_without_the_password_field_and_links_to_the_password_page(app, login_as,
                                                                                             username):
    client = login_as(username)
    with app.app_context():
        me = user(username).id
    page = client.get(f"/admin/users/{me}/edit")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'name="new_password"' not in html and 'id="own-password"' in html and 'href="/password"' in html
    saved = client.post(f"/admin/users/{me}/edit", data={"full_name": "Eg Sjølv", "email": "", "locale": "nn",
                                                         "archive_id": ""})
    assert saved.status_code == 302
    with app.app_context():
        assert user(username).full_name == "Eg Sjølv"


def _form_around(html: str, action: str) -> str:
    """The <form> whose action is `action`."""
    at = html.index(f'action="{action}"')
    start = html.rindex("<form", 0, at)
    return html[start:html.index("</form>", at)]


def test_the_remove_buttons_on_the_users_list_are_forms_that_work_without_javascript(app, login_as):
    with app.app_context():
        target, group = user("radgjevar1"), db.session.scalar(select(AccessGroup).where(
            AccessGroup.name == "Team barnehage"))
        admin.add_role(user("leiar"), target.id, role("nestleiar").id)
        uid, gid, rid = target.id, group.id, role("nestleiar").id
    client = login_as("leiar")
    html = client.get("/admin/users").get_data(as_text=True)
    for action in (f"/admin/users/{uid}/roles/{rid}/remove", f"/admin/users/{uid}/groups/{gid}/remove"):
        form = _form_around(html, action)
        assert 'method="post"' in form and 'name="csrf_token"' in form and 'type="submit"' in form, form
    # A plain form post (no htmx): done, and back to the list.
    assert client.post(f"/admin/users/{uid}/roles/{rid}/remove").status_code == 302
    assert client.post(f"/admin/users/{uid}/groups/{gid}/remove").status_code == 302
    with app.app_context():
        rune = user("radgjevar1")
        assert [r.code for r in rune.roles] == ["pp_radgjevar"] and rune.groups == []


def test_the_users_list_shows_roles_held_through_a_team_marked_with_the_team(app, login_as):
    with app.app_context():
        group = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team barnehage"))
        admin.add_group_role(user("leiar"), group.id, role("merkantil").id)
        uid, gid = user("radgjevar1").id, group.id
    html = login_as("leiar").get("/admin/users").get_data(as_text=True)
    row = html[html.index(f'id="user-{uid}"'):]
    row = row[:row.index("</tr>")]
    assert f'data-source="group" data-group="{gid}" data-role="merkantil"' in row
    assert "Team barnehage" in row[row.index('data-role="merkantil"'):]
    other = html[html.index(f'id="user-{_id(app, "radgjevar2")}"'):]
    assert 'data-role="merkantil"' not in other[:other.index("</tr>")]


def _id(app, username: str) -> int:
    with app.app_context():
        return user(username).id


def test_role_matrix_view_and_edit(app, login_as):
    leiar = login_as("leiar")
    page = leiar.get("/admin/roles").get_data(as_text=True)
    assert "archive_delete" in page and "hx-post" in page
    with app.app_context():
        rid = role("nestleiar").id
    cell = leiar.post(f"/admin/roles/{rid}/permissions/statistics", data={"granted": "1"}, headers=HX)
    assert cell.status_code == 200 and 'class="cell on"' in cell.get_data(as_text=True)


def test_role_matrix_read_only_for_sysadmin_view(app, client):
    sign_in(client, "konsulent")
    page = client.get("/admin/roles").get_data(as_text=True)
    assert "archive_delete" in page and "hx-post" not in page
    with app.app_context():
        rid = role("nestleiar").id
    assert client.post(f"/admin/roles/{rid}/permissions/statistics", data={"granted": "1"}).status_code == 403
    with app.app_context():
        assert "statistics" not in role("nestleiar").permission_codes()
        assert activity_rows("access_denied")[-1].actor_name == "konsulent"


# --- a user's identity in the archive ------------------------------------------------------------------

def test_archive_id_is_validated_unique_and_logged(ctx):
    """Initials or the archive's user id: one word, no one else's; a change is logged like other user changes."""
    from ppt_web.archive.identity import user_identity

    konsulent, target = user("konsulent"), user("radgjevar1")
    assert user_identity(target)["identifikator"] == "radgjevar1"  # empty: the username
    admin.update_user(konsulent, target.id, full_name=target.full_name, email="", locale="nn", archive_id=" RR ")
    assert user("radgjevar1").archive_id == "RR" and user_identity(user("radgjevar1"))["identifikator"] == "RR"
    row = activity_rows("user_updated")[-1]
    assert row.before["archive_id"] == "" and row.after["archive_id"] == "RR"
    for bad in ("R R", "RR\x07", "x" * 101):
        with pytest.raises(Invalid) as refused:
            admin.update_user(konsulent, target.id, full_name=target.full_name, email="", locale="nn", archive_id=bad)
        assert refused.value.details["field"] == "archive_id"
        db.session.rollback()
    with pytest.raises(Conflict):  # another user's, in any case
        admin.create_user(konsulent, username="ny", full_name="Ny Brukar", password="langt-passord", archive_id="rr")
    db.session.rollback()
    assert user("ny") is None and user("radgjevar1").archive_id == "RR"
    made = admin.create_user(konsulent, username="ny", full_name="Ny Brukar", password="langt-passord",
                             archive_id="NB")
    assert made.archive_id == "NB" and activity_rows("user_created")[-1].after["archive_id"] == "NB"
    admin.update_user(konsulent, target.id, full_name=target.full_name, email="", locale="nn", archive_id="")
    assert user("radgjevar1").archive_id == ""


def test_archive_id_through_the_user_pages(app, login_as):
    client = login_as("admin")
    with app.app_context():
        uid = user("sekretaer").id
    assert 'name="archive_id"' in client.get(f"/admin/users/{uid}/edit").get_data(as_text=True)
    bad = client.post(f"/admin/users/{uid}/edit", data={"full_name": "Siri Sekretær", "locale": "nn",
                                                         "archive_id": "S S"})
    assert bad.status_code == 422 and 'id="archive_id-err"' in bad.get_data(as_text=True)
    good = client.post(f"/admin/users/{uid}/edit", data={"full_name": "Siri Sekretær", "locale": "nn",
                                                          "archive_id": "SISE"})
    assert good.status_code == 302
    assert "SISE" in client.get("/admin/users").get_data(as_text=True)
