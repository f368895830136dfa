"""Teams carry roles: a member holds the union of own and team roles from their next request, the rules
for giving a role hold for giving it through a team, and the leader manages users and teams."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from ppt_web.admin import service as admin
from ppt_web.errors import Forbidden
from ppt_web.extensions import db
from ppt_web.models import AccessGroup, User

from .conftest import activity_rows, role, sign_in, user


def team(name: str = "Team barnehage") -> AccessGroup:
    return db.session.scalar(select(AccessGroup).where(AccessGroup.name == name))


def fresh(username: str) -> User:
    db.session.expire_all()
    return user(username)


# --- the leader manages users and teams -----------------------------------------------------

def test_leader_opens_every_admin_page_and_its_actions_work(app, login_as):
    client = login_as("leiar")
    with app.app_context():
        target, group = user("radgjevar1").id, team("Team skule").id
        nestleiar = role("nestleiar").id
    for url in ("/admin/users", "/admin/users/new", "/admin/groups", f"/admin/users/{target}/edit", "/admin/roles",
                "/admin/settings", "/admin/archive-settings"):
        assert client.get(url).status_code == 200, url
    made = client.post("/admin/users/new", data={"username": "nina", "full_name": "Nina Ny", "locale": "nn",
                                                 "password": "eit-langt-passord", "roles": [str(nestleiar)]})
    assert made.status_code == 302
    assert client.post(f"/admin/users/{target}/roles", data={"role_id": nestleiar}).status_code == 302
    assert client.post(f"/admin/users/{target}/groups", data={"group_id": group}).status_code == 302
    assert client.post("/admin/groups", data={"name": "Team vaksne", "description": ""}).status_code == 302
    assert client.post(f"/admin/users/{target}/edit", data={"full_name": "Rune R. Rådgjevar", "email": "",
                                                            "locale": "nn", "archive_id": ""}).status_code == 302
    assert client.post(f"/admin/users/{target}/active", data={"active": "0"}).status_code == 302
    with app.app_context():
        nina, rune = user("nina"), user("radgjevar1")
        assert [r.code for r in nina.roles] == ["nestleiar"] and nina.must_change_password
        assert {r.code for r in rune.roles} == {"nestleiar", "pp_radgjevar"}
        assert {g.name for g in rune.groups} == {"Team barnehage", "Team skule"}
        assert rune.full_name == "Rune R. Rådgjevar" and not rune.active
        assert team("Team vaksne") is not None
        actions = {r.action for r in activity_rows() if r.actor_name == "leiar"}
        assert {"user_created", "role_granted", "group_member_added", "group_created", "user_updated",
                "user_deactivated"} <= actions


def test_leader_still_never_changes_her_own_roles(ctx):
    leiar = user("leiar")
    with pytest.raises(Forbidden):
        admin.add_role(leiar, leiar.id, role("admin").id)
    with pytest.raises(Forbidden):  # nor through a team she is in
        admin.add_to_group(user("superbrukar"), leiar.id, team().id)
        admin.add_group_role(leiar, team().id, role("admin").id)
    db.session.rollback()
    assert [r.code for r in fresh("leiar").effective_roles()] == ["leiar"]


# --- team roles within one request cycle ----------------------------------------------------

def _inbox(client) -> int:
    return client.get("/post-registration/").status_code


def test_team_roles_are_granted_and_revoked_at_the_next_request(app, login_as):
    """radgjevar1 (PP-rådgjevar) lacks distribute_mail; Team barnehage carrying Merkantil gives it, and
    leaving the team or the team losing the role takes it away, each from the very next request."""
    client = login_as("radgjevar1")
    assert _inbox(client) == 403
    with app.app_context():
        group_id, merkantil, me = team().id, role("merkantil").id, user("radgjevar1").id
        admin.add_group_role(user("leiar"), group_id, merkantil)
    assert _inbox(client) == 200
    with app.app_context():
        admin.remove_from_group(user("leiar"), me, group_id)
    assert _inbox(client) == 403
    with app.app_context():
        admin.add_to_group(user("leiar"), me, group_id)
    assert _inbox(client) == 200
    with app.app_context():
        admin.remove_group_role(user("leiar"), group_id, merkantil)
    assert _inbox(client) == 403
    with app.app_context():
        granted, revoked = activity_rows("group_role_granted"), activity_rows("group_role_revoked")
        assert len(granted) == 1 and granted[0].after["roles"] == ["merkantil"] and granted[0].before["roles"] == []
        assert len(revoked) == 1 and revoked[0].after["roles"] == [] and revoked[0].detail == "merkantil"
        removed = activity_rows("group_member_removed")[-1]
        assert removed.before["team_roles"] == ["merkantil"] and removed.after["team_roles"] == []
        added = activity_rows("group_member_added")[-1]
        assert added.after["team_roles"] == ["merkantil"] and added.actor_name == "leiar"


def test_groups_page_gives_and_takes_a_teams_role(app, login_as):
    client = login_as("leiar")
    with app.app_context():
        group_id, merkantil = team().id, role("merkantil").id
    page = client.get("/admin/groups").get_data(as_text=True)
    assert f'id="group-role-{group_id}"' in page and f'value="{merkantil}"' in page
    assert client.post(f"/admin/groups/{group_id}/roles", data={"role_id": merkantil}).status_code == 302
    page = client.get("/admin/groups").get_data(as_text=True)
    assert 'data-role="merkantil"' in page
    assert client.post(f"/admin/groups/{group_id}/roles/{merkantil}/remove").status_code == 302
    with app.app_context():
        assert team().roles == []
        assert [r.action for r in activity_rows() if r.action.startswith("group_role")] == [
            "group_role_granted", "group_role_revoked"]


# --- the rules of giving a role hold through teams -----------------------------------------

def test_privileged_roles_go_to_teams_only_from_a_top_role(ctx):
    group_id = team().id
    for code in ("leiar", "superbrukar", "admin"):
        for actor in ("konsulent", "admin"):
            with pytest.raises(Forbidden):
                admin.add_group_role(user(actor), group_id, role(code).id)
    with pytest.raises(Forbidden):  # admin lacks archive_delete, which Konsulent carries
        admin.add_group_role(user("admin"), group_id, role("konsulent").id)
    db.session.rollback()
    assert team().roles == []
    admin.add_group_role(user("konsulent"), group_id, role("merkantil").id)  # an everyday role is fine
    admin.add_group_role(user("superbrukar"), group_id, role("leiar").id)
    assert {r.code for r in team().roles} == {"merkantil", "leiar"}


def test_joining_a_team_follows_the_rules_for_each_of_its_roles(ctx):
    group_id = team().id
    admin.add_group_role(user("superbrukar"), group_id, role("leiar").id)
    with pytest.raises(Forbidden):  # joining is being given Leiar
        admin.add_to_group(user("konsulent"), user("radgjevar2").id, group_id)
    with pytest.raises(Forbidden):  # leaving is losing it
        admin.remove_from_group(user("konsulent"), user("radgjevar1").id, group_id)
    with pytest.raises(Forbidden):  # nor may she join it herself
        admin.add_to_group(user("konsulent"), user("konsulent").id, group_id)
    db.session.rollback()
    assert [m.username for m in team().members] == ["radgjevar1"]
    # A team without roles is joined as before, even by a leader (membership alone gives nothing).
    admin.add_to_group(user("konsulent"), user("leiar").id, team("Team skule").id)
    # A member of a team may not change the team's roles: it would change her own.
    admin.add_to_group(user("superbrukar"), user("konsulent").id, team("Team skule").id)
    with pytest.raises(Forbidden):
        admin.add_group_role(user("konsulent"), team("Team skule").id, role("merkantil").id)
    with pytest.raises(Forbidden):  # and the team has a leader in it now: konsulent may not change her rights
        admin.add_group_role(user("admin"), team("Team skule").id, role("merkantil").id)


def test_a_top_role_held_through_a_team_counts(ctx):
    """radgjevar1 is made leader through Team barnehage: she may then give the leading roles (to others),
    and a konsulent may no longer manage her."""
    admin.add_group_role(user("superbrukar"), team().id, role("leiar").id)
    rune = fresh("radgjevar1")
    assert admin.holds_top_role(rune) and rune.can("approve")
    admin.add_role(rune, user("radgjevar2").id, role("admin").id)
    assert "admin" in {r.code for r in fresh("radgjevar2").roles}
    with pytest.raises(Forbidden):
        admin.update_user(user("konsulent"), rune.id, full_name="X", email="", locale="nn",
                          new_password="konsulent-veit-no")
    with pytest.raises(Forbidden):  # and she cannot edit the matrix row of a role she holds through the team
        admin.set_role_permission(rune, role("leiar").id, "statistics", False)


def test_refusal_through_the_page_is_403_logged_and_changes_nothing(app, login_as):
    client = login_as("konsulent")
    with app.app_context():
        group_id, leiar_role = team().id, role("leiar").id
    page = client.get("/admin/groups").get_data(as_text=True)
    assert f'value="{leiar_role}"' not in page  # the page offers only what she may give
    response = client.post(f"/admin/groups/{group_id}/roles", data={"role_id": leiar_role})
    assert response.status_code == 403
    with app.app_context():
        assert team().roles == []
        assert activity_rows("group_role_granted") == []
        assert activity_rows("access_denied")[-1].actor_name == "konsulent"


# --- where rights come from ----------------------------------------------------------------

def test_user_page_and_profile_show_where_each_right_comes_from(app, login_as):
    with app.app_context():
        group_id = team().id
        admin.add_group_role(user("leiar"), group_id, role("merkantil").id)
        target = user("radgjevar1").id
    page = login_as("leiar").get(f"/admin/users/{target}/edit").get_data(as_text=True)
    own = 'data-source="own" data-role="pp_radgjevar"'
    through = f'data-source="group" data-group="{group_id}" data-role="merkantil"'
    assert 'id="effective-rights"' in page and own in page and through in page
    assert 'data-permission="distribute_mail"' in page  # only Merkantil (through the team) gives it
    row = page.split('data-permission="distribute_mail"')[1].split("</tr>")[0]
    assert through in row and own not in row
    row = page.split('data-permission="journal"')[1].split("</tr>")[0]
    assert through in row and own in row  # both roles give journal
    other = app.test_client()
    assert sign_in(other, "radgjevar1").status_code == 302
    profile = other.get("/profile").get_data(as_text=True)
    assert own in profile and through in profile


# --- the team coordinator approves: naming one is giving approval rights -------------------------------

def test_nobody_below_leiar_or_approve_names_a_coordinator_and_nobody_names_themself(ctx):
    """A coordinator approves the team's posts as if holding approve (cases/approval.py): the consultant
    (manage_groups, no approve) cannot make anyone coordinator, herself least of all; the leader can name
    a member, but not herself; each naming is logged with who now approves."""
    group = team()
    konsulent, leiar = user("konsulent"), user("leiar")
    admin.add_to_group(user("superbrukar"), konsulent.id, group.id)
    admin.add_to_group(user("superbrukar"), leiar.id, group.id)
    for who in (konsulent, leiar):
        with pytest.raises(Forbidden):
            admin.set_coordinator(konsulent, group.id, who.id)
    with pytest.raises(Forbidden):  # not even clearing it: the coordinator would lose approval rights
        admin.set_coordinator(konsulent, group.id, None)
    with pytest.raises(Forbidden):
        admin.set_coordinator(leiar, group.id, leiar.id)
    db.session.rollback()
    assert team().coordinator.username == "radgjevar1"  # as the demo data has it
    admin.set_coordinator(leiar, group.id, konsulent.id)
    assert team().coordinator.username == "konsulent"
    row = activity_rows("group_coordinator_set")[-1]
    assert row.actor_name == "leiar" and row.detail == "approve"
    assert row.before == {"coordinator": "Rune Rådgjevar"} and row.after == {"coordinator": "Kari Konsulent"}


def test_a_deputy_who_approves_may_name_a_coordinator_but_not_one_she_cannot_manage(ctx):
    group = team()
    nils = user("nestleiar")  # approve, no manage_groups: given it for the test
    admin.add_role(user("leiar"), nils.id, role("konsulent").id)
    admin.add_to_group(user("superbrukar"), user("admin").id, group.id)
    with pytest.raises(Forbidden):  # Administrator is a privileged role: only Leiar or Superbrukar manage her
        admin.set_coordinator(fresh("nestleiar"), group.id, user("admin").id)
    db.session.rollback()
    admin.set_coordinator(fresh("nestleiar"), group.id, None)
    assert team().coordinator is None


def test_the_groups_page_offers_the_coordinator_choice_only_to_those_who_may(app, login_as):
    with app.app_context():
        gid, me = team().id, user("leiar").id
        admin.add_to_group(user("superbrukar"), me, gid)
    html = login_as("konsulent").get("/admin/groups").get_data(as_text=True)
    assert f'id="coord-{gid}"' not in html and f'id="coordinator-{gid}"' in html
    leader = app.test_client()
    sign_in(leader, "leiar")
    html = leader.get("/admin/groups").get_data(as_text=True)
    select_ = html[html.index(f'id="coord-{gid}"'):]
    select_ = select_[:select_.index("</select>")]
    assert f'value="{me}"' not in select_  # not herself


# --- two administrators at once: the team's row is locked while its roles or members are checked ----------

def _blocked_then(app, action, change_sql: str, params: dict) -> str:
    """Run `action` while another transaction holds the team's row (as add_to_group and add_group_role do)
    and has changed the team, then commit that change: what `action` decides once it gets the row."""
    from sqlalchemy import text

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite lets one writer at a time: no two checks can pass on each other's snapshot")
        other = db.engine.connect()
        transaction = other.begin()
        other.execute(text("SELECT id FROM access_group WHERE id = :g FOR UPDATE"), params)
        other.execute(text(change_sql), params)
        outcome: dict[str, str] = {}

        def run():
            with app.app_context():
                try:
                    action()
                    outcome["result"] = "done"
                except Forbidden:
                    outcome["result"] = "refused"
                finally:
                    db.session.remove()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(1.0)
        waited = thread.is_alive()
        transaction.commit()
        other.close()
        thread.join(30)
        assert waited, "the action did not wait for the team's row"
        return outcome["result"]


def test_a_role_given_to_a_team_while_the_leader_joins_it_is_checked_against_her(app):
    """The consultant may give Merkantil to a team of handlers, not to a team the leader is in: if the
    leader joins at the same moment, the consultant's action waits and then sees her."""
    with app.app_context():
        group_id, leiar_id, merkantil = team().id, user("leiar").id, role("merkantil").id
    result = _blocked_then(app, lambda: admin.add_group_role(user("konsulent"), group_id, merkantil),
                           "INSERT INTO group_member (group_id, user_id) VALUES (:g, :u)",
                           {"g": group_id, "u": leiar_id})
    assert result == "refused"
    with app.app_context():
        assert [r.code for r in team().roles] == []


def test_joining_a_team_while_it_is_given_a_role_is_checked_against_that_role(app):
    """The consultant may put a handler in a team without roles, not in one carrying Leiar: if the team
    is given Leiar at the same moment, her action waits and then sees it."""
    with app.app_context():
        group_id, rid, leader_role = team().id, user("radgjevar2").id, role("leiar").id
    result = _blocked_then(app, lambda: admin.add_to_group(user("konsulent"), rid, group_id),
                           "INSERT INTO group_role (group_id, role_id) VALUES (:g, :r)",
                           {"g": group_id, "r": leader_role})
    assert result == "refused"
    with app.app_context():
        assert [g.name for g in user("radgjevar2").groups] == ["Team skule"]
