"""Odd values typed or sent by hand, each once a 500: dates at the calendar's edges, ids past what an id
column holds, digits of other scripts, a page past any. Each is answered, and nothing is saved."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ppt_web.extensions import db
from ppt_web.models import AccessGroup, ActivityLog, Case, JournalPost
from ppt_web.models.domain import case_cohandler

from . import builders
from .conftest import sign_in, user

HUGE = str(2**63)  # past SQLite's integers (PostgreSQL's 32-bit ids end at 2**31)
pytestmark = pytest.mark.app_config(PROPAGATE_EXCEPTIONS=False)  # a bug is a 500 answer here


def browser(app, username: str):
    """A browser of its own, signed in as the demo user."""
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def test_filter_dates_at_the_calendars_edges_are_no_dates(app):
    leader = browser(app, "leiar")
    for query in ("date_from=0001-01-01", "date_from=01.01.0001", "date_to=9999-12-31", "date_to=31.12.9999"):
        assert leader.get(f"/activity-log/?{query}").status_code == 200, query
    secretary = browser(app, "sekretaer")
    for query in ("from=01.01.0001", "to=31.12.9999", f"page={HUGE}"):
        response = secretary.get(f"/post-registration/paper-originals?view=destroyed&{query}")
        assert response.status_code == 200, query


def _counts() -> tuple:
    return tuple(db.session.scalar(select(func.count()).select_from(table)) for table in
                 (AccessGroup, ActivityLog, case_cohandler, JournalPost))


def test_ids_past_what_a_column_holds_or_in_other_digits_are_refused_with_a_message(app, ctx):
    case = builders.case()
    incoming = builders.finalized_post(case, post_type="I", correspondent="Skule", title="Spørsmål")
    group = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team skule"))
    ids = {"user": user("radgjevar2").id, "group": group.id, "case": case.id, "post": incoming.id}
    before, handler = _counts(), db.session.get(Case, case.id).handler_id
    admin, leader, handler_browser = browser(app, "admin"), browser(app, "leiar"), browser(app, "radgjevar1")
    asked = [(admin, f"/admin/users/{ids['user']}/roles", {"role_id": HUGE}),
             (admin, f"/admin/users/{ids['user']}/roles", {"role_id": str(2**31)}),
             (admin, f"/admin/users/{ids['user']}/groups", {"group_id": HUGE}),
             (leader, f"/admin/groups/{ids['group']}/roles", {"role_id": HUGE}),
             (leader, f"/admin/groups/{ids['group']}/coordinator", {"user_id": HUGE}),
             (leader, f"/admin/groups/{ids['group']}/coordinator", {"user_id": "\u00b2"}),
             (handler_browser, f"/cases/{ids['case']}/cohandlers", {"user_id": HUGE}),
             (handler_browser, f"/cases/{ids['case']}/handler", {"user_id": HUGE}),
             (handler_browser, f"/posts/{ids['post']}/write-off", {"method": "BU", "reply_post_id": HUGE})]
    for who, path, data in asked:
        response = who.post(path, data=data)
        assert response.status_code in (404, 409, 422), (path, data, response.status_code)
    db.session.expire_all()
    assert _counts()[0::2] == before[0::2]  # no group, co-handler or post more (refusals are logged)
    assert db.session.get(Case, case.id).handler_id == handler
    assert db.session.get(AccessGroup, ids["group"]).coordinator_id == group.coordinator_id
