"""The activity log: rows for each action, append-only below the app, and its page."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from ppt_web.activity import service as activity
from ppt_web.extensions import db
from ppt_web.models import ActivityLog

from .conftest import activity_rows, sign_in


def test_rows_cannot_be_updated_or_deleted_even_by_raw_sql(ctx):
    """The triggers are the floor: a hand-written query cannot rewrite history."""
    activity.record("sign_in", actor_name="x")
    db.session.commit()
    with pytest.raises(DatabaseError):
        db.session.execute(text("UPDATE activity_log SET action = 'nothing'"))
    db.session.rollback()
    with pytest.raises(DatabaseError):
        db.session.execute(text("DELETE FROM activity_log"))
    db.session.rollback()
    assert [r.action for r in activity_rows()][-1] == "sign_in"


def test_orm_changes_to_a_row_fail_too(ctx):
    activity.record("sign_in", actor_name="x")
    db.session.commit()
    row = db.session.scalars(db.select(ActivityLog)).first()
    row.action = "forged"
    with pytest.raises(DatabaseError):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.scalars(db.select(ActivityLog)).first())
    with pytest.raises(DatabaseError):
        db.session.commit()


def test_each_kind_of_event_leaves_a_row(app, client):
    """Sign-in, failure, sign-out, admin changes and denials all end up in the log."""
    sign_in(client, "konsulent", "feil-passord")
    sign_in(client, "konsulent")
    client.post("/admin/groups", data={"name": "Team Nord"})
    client.post("/logout")
    sign_in(client, "radgjevar1")
    client.get("/activity-log/")
    with app.app_context():
        actions = [r.action for r in activity_rows() if r.actor_name != "cli"]  # cli: the demo seed
    assert actions == ["sign_in_failed", "sign_in", "group_created", "sign_out", "sign_in", "access_denied"]


def test_page_filters_and_pages(app, login_as):
    client = login_as("leiar")
    with app.app_context():
        for i in range(120):
            activity.record("sign_in_failed", actor_name=f"user{i % 3}", outcome="failed")
        db.session.commit()
    page = client.get("/activity-log/").get_data(as_text=True)
    assert "Side 1 av 3" in page or "Page 1 of 3" in page
    filtered = client.get("/activity-log/?actor=user1", headers={"HX-Request": "true", "HX-Target": "activity-rows"})
    html = filtered.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="activity-rows">')
    assert "40 " in html and "user0" not in html
    assert client.get("/activity-log/?page=3&outcome=failed").status_code == 200
    assert client.get("/activity-log/?page=99&date_from=not-a-date").status_code == 200


def test_page_needs_activity_log(app, login_as):
    client = login_as("nestleiar")
    assert client.get("/activity-log/").status_code == 403


def test_a_role_given_the_log_before_the_matrix_rule_does_not_open_it_without_search_all(app, login_as):
    """A handler's role that got activity_log before the role matrix required search_all with it (here
    written straight into the table) keeps the cell, not the page: the log shows every client's history.
    Refused with a reason and a row of its own, in the service too; the start page offers no link."""
    from ppt_web.errors import Forbidden
    from ppt_web.models import Role
    from ppt_web.models.user import role_permission

    from .conftest import user
    with app.app_context():
        handler_role = db.session.scalars(db.select(Role).where(Role.code == "pp_radgjevar")).one()
        db.session.execute(role_permission.insert().values(role_id=handler_role.id, permission_code="activity_log"))
        db.session.commit()
        assert user("radgjevar1").can("activity_log") and not user("radgjevar1").can("search_all")
        with pytest.raises(Forbidden):
            activity.search(user("radgjevar1"), activity.LogFilter(), 1, 50)
    client = login_as("radgjevar1")
    with app.app_context():
        before = len(activity_rows())
    page = client.get("/activity-log/")
    assert page.status_code == 403 and "Aktivitetsloggen viser historikken" in page.get_data(as_text=True)
    assert 'href="/activity-log/"' not in client.get("/").get_data(as_text=True)
    with app.app_context():
        denied = activity_rows()[before:]
        assert [r.action for r in denied] == ["access_denied"] and denied[0].actor_name
    assert login_as("leiar").get("/activity-log/").status_code == 200
