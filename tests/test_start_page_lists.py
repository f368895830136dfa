"""The handler's and the leader's start page lists against their definitions, on a data set with every
kind of row each list has to tell apart (own and co-handled, a case both, other people's drafts, held-back
drafts, closed cases); and the totals past COUNT_CAP, which the heading writes as "100+"."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from ppt_web.cases import posts
from ppt_web.cases import service as cases
from ppt_web.cases.service import FOLLOW_UP_IDLE
from ppt_web.clock import today, utcnow
from ppt_web.extensions import db
from ppt_web.main import start
from ppt_web.models import Case, JournalPost, User
from ppt_web.models.domain import case_cohandler

from . import builders
from .conftest import user
from .test_start_pages import build_world


def _more_work() -> None:
    """More of radgjevar1's work than any list shows, in every kind the lists tell apart."""
    me, other = user("radgjevar1"), user("radgjevar2")
    for n in range(14):
        own = builders.case("radgjevar1", "follow_up" if n % 3 else "statement", title=f"Eigen {n}")
        theirs = builders.case("radgjevar2", "expert_assessment" if n % 2 else "follow_up", title=f"Deira {n}")
        if n % 2:
            cases.add_cohandler(other, theirs.id, me.id)
        builders.post(own, title=f"Utkast {n}")
        if n % 4 == 0:  # a colleague's draft in my case
            cases.add_cohandler(me, own.id, other.id)
            builders.post(own, actor="radgjevar2", title=f"Kollega sitt utkast {n}")
        builders.post(theirs, actor="radgjevar2", title=f"Utkast deira {n}")
        if n % 2:
            builders.post(theirs, actor="radgjevar1", title=f"Mitt utkast i deira {n}")
        builders.finalized_post(own if n % 2 else theirs, post_type="I", title=f"Tilvising {n}", correspondent="Skule",
                                document_date=today() - timedelta(days=n))
        for case, days in ((own, n), (theirs, 2 * n)):
            row = db.session.get_one(Case, case.id)
            row.opened_on = today() - timedelta(days=days + 50)
            if row.category == "follow_up" and n % 2:
                row.last_activity_at = utcnow() - FOLLOW_UP_IDLE - timedelta(days=n + 1)
    # Restanser without a document date: ordered by the date received, else the day registered.
    undated_case = builders.case("radgjevar1", "other", title="Udaterte")
    for n, received in enumerate((today() - timedelta(days=400), None, today() - timedelta(days=3))):
        undated = builders.post(undated_case, post_type="I", title=f"Udatert {n}", correspondent="Skule")
        post = db.session.get_one(JournalPost, undated.id)
        post.document_date, post.received_on = None, received
        if received is None:
            post.registered_at = utcnow() - timedelta(days=200)
        db.session.commit()  # a draft: finalizing wants a document date
    # A case radgjevar1 handles and is also a co-handler of (the handler changed): counted once.
    both = builders.case("radgjevar1", "other", title="Begge")
    db.session.execute(insert(case_cohandler).values(case_id=both.id, user_id=me.id))
    held = builders.post(both, title="Halde unna utkast")
    db.session.get_one(JournalPost, held.id).held_back = True
    db.session.commit()


def _draft_ids(actor: User) -> list[int]:
    """Drafts I wrote in a case I may see, or that wait in a case I handle; not held back unreleased."""
    mine = {c.id for c in db.session.scalars(select(Case).where(Case.handler_id == actor.id))}
    seen = mine | {c.id for c in db.session.scalars(select(Case)) if actor in c.co_handlers}
    rows = [p for p in db.session.scalars(select(JournalPost).where(JournalPost.status == "draft"))
            if (p.case_id in mine or (p.created_by_id == actor.id and p.case_id in seen))
            and not (p.held_back and p.hold_decision != "released")]
    return [p.id for p in sorted(rows, key=lambda p: (p.registered_at, p.id))]


def _open_case_ids(actor: User) -> list[int]:
    rows = [c for c in db.session.scalars(select(Case).where(Case.status == "open"))
            if c.handler_id == actor.id or actor in c.co_handlers]
    return [c.id for c in sorted(rows, key=lambda c: (c.opened_on, c.id))]


@pytest.fixture
def big(ctx, monkeypatch):
    monkeypatch.setattr(start, "COUNT_CAP", 1000)  # exact totals, to compare with the definitions
    build_world()
    _more_work()


def test_the_handlers_lists_are_their_definitions_rows_and_totals(big):
    me = user("radgjevar1")
    panel = start.panels(me)["handler"]
    opened = _open_case_ids(me)
    assert [c.id for c in panel["open_cases"].rows] == opened[:start.OPEN_SHOWN]
    assert panel["open_cases"].total == len(opened) > start.OPEN_SHOWN
    drafts = _draft_ids(me)
    for many_cases in (False, True):  # found from my cases, or walked in order (a giant caseload)
        found = start.drafts(me, many_cases=many_cases)
        assert [p.id for p in found.rows] == drafts[:start.OPEN_SHOWN]
        assert found.total == len(drafts) > start.OPEN_SHOWN
    assert [p.id for p in panel["drafts"].rows] == drafts[:start.OPEN_SHOWN]
    outstanding = posts.outstanding(me, handler_id=me.id)
    assert {p.title for p in outstanding[:2]} == {"Udatert 0", "Udatert 1"}
    assert [p.id for p in panel["outstanding"].rows] == [p.id for p in outstanding[:start.SHOWN]]
    assert panel["outstanding"].total == len(outstanding) == posts.outstanding_count(me, me.id) > start.SHOWN
    worklist = cases.worklist(me, handler_id=me.id, limit=1000)
    listed = worklist["finished"] + worklist["idle"]
    assert [c.id for c in panel["to_close"].rows] == [c.id for c in listed[:start.SHOWN]]
    assert panel["to_close"].total == len(listed) == cases.worklist_count(me, me.id) > start.SHOWN


def test_the_leaders_open_cases_by_handler_count_each_case_once_per_person(big):
    per_person: dict[int, set[int]] = {}
    for c in db.session.scalars(select(Case).where(Case.status == "open")):
        for person in {c.handler_id} | {u.id for u in c.co_handlers}:
            per_person.setdefault(person, set()).add(c.id)
    rows = start.panels(user("leiar"))["leader"]["by_handler"]
    expected = sorted(((db.session.get(User, p), len(ids), min(db.session.get(Case, i).opened_on for i in ids))
                       for p, ids in per_person.items()), key=lambda r: (-r[1], r[0].full_name))
    assert [(u.id, n, oldest) for u, n, oldest in rows] == [(u.id, n, oldest) for u, n, oldest in expected]
    assert all(isinstance(n, int) for _u, n, _o in rows)


def test_totals_past_the_cap_say_more_than_the_cap(app, client, login_as, monkeypatch):
    with app.app_context():
        build_world()
        _more_work()
        me = user("radgjevar1")
        monkeypatch.setattr(start, "COUNT_CAP", 3)
        panel = start.panels(me)["handler"]
        assert panel["drafts"].total == 3 and str(panel["drafts"].total) == "3+"
        assert str(panel["outstanding"].total) == str(panel["to_close"].total) == "3+"
        assert panel["open_cases"].total == len(_open_case_ids(me))  # counted exactly, whatever the cap
        monkeypatch.setattr(start, "COUNT_CAP", 12)
        assert len(_draft_ids(me)) > 12 and str(start.drafts(me).total) == "12+"
    login_as("radgjevar1")
    html = client.get("/").get_data(as_text=True)
    assert '<span class="badge" data-total="12+">12+</span>' in html
    assert re.search(r'id="drafts-shown" data-shown="10">10 \w+ 12\+ \w+</small>', html)
