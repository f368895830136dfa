"""Who may grant what: nobody raises themselves, the leading roles come only from the leading roles,
nobody hands out administrative rights they lack, and a password set by someone else must be changed."""
from __future__ import annotations

import pytest

from ppt_web.admin import service as admin
from ppt_web.errors import Forbidden
from ppt_web.extensions import db
from ppt_web.models import Notification

from .conftest import activity_rows, role, sign_in, user

HX = {"HX-Request": "true"}


def _roles(username: str) -> list[str]:
    db.session.expire_all()
    return sorted(r.code for r in user(username).roles)


# --- service layer ------------------------------------------------------------------------

def test_konsulent_cannot_give_itself_superbrukar(ctx):
    konsulent = user("konsulent")
    with pytest.raises(Forbidden):
        admin.add_role(konsulent, konsulent.id, role("superbrukar").id)
    db.session.rollback()
    assert _roles("konsulent") == ["konsulent"]


def test_nobody_changes_their_own_roles(ctx):
    """Not even a holder of Superbrukar, and not even a role they could give others."""
    superbrukar = user("superbrukar")
    for code in ("pp_radgjevar", "leiar"):
        with pytest.raises(Forbidden):
            admin.add_role(superbrukar, superbrukar.id, role(code).id)
    with pytest.raises(Forbidden):
        admin.remove_role(superbrukar, superbrukar.id, role("superbrukar").id)
    db.session.rollback()
    assert _roles("superbrukar") == ["superbrukar"]


def test_admin_cannot_give_itself_or_anyone_leiar(ctx):
    with pytest.raises(Forbidden):
        admin.add_role(user("admin"), user("admin").id, role("leiar").id)
    for code in ("leiar", "superbrukar", "admin"):
        with pytest.raises(Forbidden):
            admin.add_role(user("admin"), user("radgjevar1").id, role(code).id)
        with pytest.raises(Forbidden):
            admin.add_role(user("konsulent"), user("radgjevar1").id, role(code).id)
    db.session.rollback()
    assert _roles("admin") == ["admin"] and _roles("radgjevar1") == ["pp_radgjevar"]


def test_leading_roles_come_from_superbrukar(ctx):
    admin.add_role(user("superbrukar"), user("radgjevar1").id, role("leiar").id)
    admin.remove_role(user("superbrukar"), user("radgjevar1").id, role("leiar").id)
    admin.add_role(user("superbrukar"), user("sekretaer").id, role("admin").id)
    assert _roles("sekretaer") == ["admin", "merkantil"]


def test_no_administrative_rights_one_lacks(ctx):
    """admin lacks archive_delete, so cannot make anyone konsulent; the everyday roles are fine."""
    with pytest.raises(Forbidden):
        admin.add_role(user("admin"), user("radgjevar1").id, role("konsulent").id)
    db.session.rollback()
    admin.add_role(user("admin"), user("radgjevar1").id, role("merkantil").id)
    admin.add_role(user("konsulent"), user("radgjevar2").id, role("nestleiar").id)
    with pytest.raises(Forbidden):  # nor at creation
        admin.create_user(user("konsulent"), username="ny", full_name="Ny Brukar", password="langt-passord",
                          role_ids=[role("pp_radgjevar").id, role("superbrukar").id])
    db.session.rollback()
    assert user("ny") is None


def test_konsulent_cannot_manage_a_leader(ctx):
    leiar_id = user("leiar").id
    konsulent = user("konsulent")
    before = user("leiar").password_hash
    with pytest.raises(Forbidden):
        admin.update_user(konsulent, leiar_id, full_name="Ingrid Leiar", email="", locale="nn",
                          new_password="konsulent-veit-no")
    with pytest.raises(Forbidden):
        admin.set_user_active(konsulent, leiar_id, False)
    with pytest.raises(Forbidden):  # nor take a role from her that konsulent could give
        admin.add_role(konsulent, leiar_id, role("pp_radgjevar").id)
    db.session.rollback()
    assert user("leiar").password_hash == before and user("leiar").active


def test_role_matrix_rules(ctx):
    superbrukar, leiar = user("superbrukar"), user("leiar")
    with pytest.raises(Forbidden):  # a role one holds
        admin.set_role_permission(superbrukar, role("superbrukar").id, "approve", True)
    with pytest.raises(Forbidden):
        admin.set_role_permission(superbrukar, role("superbrukar").id, "archive_log", False)
    with pytest.raises(Forbidden):  # a permission one does not hold
        admin.set_role_permission(superbrukar, role("nestleiar").id, "statistics", True)
    with pytest.raises(Forbidden):  # Leiar holds assign_roles now, but not archive_delete
        admin.set_role_permission(leiar, role("nestleiar").id, "archive_delete", True)
    db.session.rollback()
    assert "statistics" not in role("nestleiar").permission_codes()
    admin.set_role_permission(superbrukar, role("konsulent").id, "archive_delete", False)  # taking is fine
    admin.set_role_permission(leiar, role("nestleiar").id, "statistics", True)
    assert "statistics" in role("nestleiar").permission_codes()


def test_password_reset_by_another_must_be_changed_and_is_announced(ctx):
    target = user("radgjevar1")
    admin.update_user(user("konsulent"), target.id, full_name=target.full_name, email="", locale="nn",
                      new_password="heilt-nytt-passord")
    assert user("radgjevar1").must_change_password
    notices = db.session.scalars(db.select(Notification).where(Notification.user_id == target.id)).all()
    assert len(notices) == 1 and notices[0].link == "/password"
    with pytest.raises(Forbidden):  # one's own password goes through the page for it
        admin.update_user(user("konsulent"), user("konsulent").id, full_name="Kari Konsulent", email="",
                          locale="nn", new_password="eige-nytt-passord")


# --- through the client -------------------------------------------------------------------

def test_refusals_are_403_with_a_reason_logged_and_change_nothing(app, login_as):
    client = login_as("konsulent")
    with app.app_context():
        me, sb, leiar_id = user("konsulent").id, role("superbrukar").id, user("leiar").id
    response = client.post(f"/admin/users/{me}/roles", data={"role_id": sb}, headers=HX)
    assert response.status_code == 403 and response.headers["HX-Retarget"] == "#flash"
    assert "dine eigne roller" in response.get_data(as_text=True)
    page = client.post(f"/admin/users/{leiar_id}/edit",
                       data={"full_name": "Ingrid Leiar", "email": "", "locale": "nn", "new_password": "konsulent-veit-no"})
    assert page.status_code == 403 and "Leiar eller Superbrukar" in page.get_data(as_text=True)
    assert client.get(f"/admin/users/{leiar_id}/edit").status_code == 403
    with app.app_context():
        assert _roles("konsulent") == ["konsulent"]
        denied = activity_rows("access_denied")
        assert len(denied) == 3 and all(r.actor_name == "konsulent" and r.outcome == "denied" for r in denied)
    assert sign_in(app.test_client(), "leiar", "konsulent-veit-no").status_code == 401


def test_pages_offer_only_what_the_actor_may_grant(app, login_as):
    client = login_as("konsulent")
    with app.app_context():
        sb, leiar_role, pp = role("superbrukar").id, role("leiar").id, role("pp_radgjevar").id
        leiar_id, me = user("leiar").id, user("konsulent").id
    form = client.get("/admin/users/new").get_data(as_text=True)
    assert f'value="{pp}"' in form and f'value="{sb}"' not in form and f'value="{leiar_role}"' not in form
    page = client.get("/admin/users").get_data(as_text=True)
    assert f"/admin/users/{leiar_id}/edit" not in page and f"/admin/users/{me}/roles" not in page
    bad = client.post("/admin/users/new", data={"username": "ny", "full_name": "Ny", "password": "langt-passord",
                                                "locale": "nn", "roles": [sb]})
    assert bad.status_code == 422
    with app.app_context():
        assert user("ny") is None


def test_a_reset_password_must_be_changed_before_anything_else(app):
    boss = app.test_client()
    sign_in(boss, "konsulent")
    with app.app_context():
        uid = user("radgjevar1").id
    boss.post(f"/admin/users/{uid}/edit", data={"full_name": "Rune R", "email": "", "locale": "nn",
                                                "new_password": "heilt-nytt-passord"})
    browser = app.test_client()
    signed_in = sign_in(browser, "radgjevar1", "heilt-nytt-passord")
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/password"
    for path in ("/", "/profile", "/cases/worklist", "/notifications", "/search/"):
        response = browser.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/password", path
    assert browser.get("/", headers=HX).headers.get("HX-Redirect") == "/password"
    assert browser.get("/password").status_code == 200
    same = browser.post("/password", data={"current_password": "heilt-nytt-passord",
                                           "new_password": "heilt-nytt-passord", "repeat": "heilt-nytt-passord"})
    assert same.status_code == 422
    done = browser.post("/password", data={"current_password": "heilt-nytt-passord",
                                           "new_password": "mitt-eige-passord", "repeat": "mitt-eige-passord"})
    assert done.status_code == 302
    assert browser.get("/").status_code == 200
    with app.app_context():
        assert not user("radgjevar1").must_change_password
        assert activity_rows("password_changed")[-1].actor_name == "radgjevar1"
    assert sign_in(app.test_client(), "radgjevar1", "mitt-eige-passord").headers["Location"] == "/"


def test_a_new_user_chooses_their_own_password(app, login_as):
    client = login_as("konsulent")
    with app.app_context():
        pp = role("pp_radgjevar").id
    client.post("/admin/users/new", data={"username": "ola", "full_name": "Ola Nordmann",
                                          "password": "langt-passord", "locale": "nn", "roles": [pp]})
    assert sign_in(app.test_client(), "ola", "langt-passord").headers["Location"] == "/password"


def test_guessing_the_current_password_on_the_password_page_meets_the_lockout(app, login_as):
    """A stolen session cannot guess the password past the lockout: a wrong current password counts
    as a failed sign-in for the username, and once locked even the right one is refused."""
    browser = login_as("radgjevar2")
    limit = app.config["PPT_LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        wrong = browser.post("/password", data={"current_password": "gjetting", "new_password": "eit-nytt-passord",
                                                "repeat": "eit-nytt-passord"})
        assert wrong.status_code == 422
    right = browser.post("/password", data={"current_password": "demo-passord", "new_password": "eit-nytt-passord",
                                            "repeat": "eit-nytt-passord"})
    assert right.status_code == 422 and "Prøv igjen seinare" in right.get_data(as_text=True)
    with app.app_context():
        assert len(activity_rows("password_change_failed")) == limit
        assert not activity_rows("password_changed")
    assert sign_in(app.test_client(), "radgjevar2").status_code != 302  # the username is locked for sign-in too
