"""The handler's start page costs the same statements whatever its lists hold: each list's rows and
its total come in one statement (the module docstring of main/start.py), also when a list has more
than it shows; and its totals count every row, not the rows shown."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event

from ppt_web.cases.service import FOLLOW_UP_IDLE
from ppt_web.clock import today, utcnow
from ppt_web.extensions import db
from ppt_web.main import start
from ppt_web.models import Case

from . import builders
from .conftest import user


def _statements(app, web) -> tuple[list[str], str]:
    """The statements of a start page request after one that filled the process's caches (the header's
    counts, the settings) since the data changed."""
    seen: list[str] = []

    def _count(conn, cursor, statement, *args):
        seen.append(" ".join(statement.split())[:120])

    web.get("/")

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", _count)
        try:
            html = web.get("/").get_data(as_text=True)
        finally:
            event.remove(db.engine, "before_cursor_execute", _count)
    return seen, html


def _total(html: str, list_id: str) -> int:
    found = re.search(rf'<h3 id="{list_id}-head">.*?data-total="(\d+)"', html, re.S)
    assert found, list_id
    return int(found.group(1))


def _world(n: int) -> None:
    """n of each: open cases with a draft, restanser, idle follow-ups to close (radgjevar1's)."""
    for i in range(n):
        case = builders.case("radgjevar1", "other", title=f"Sak {i}")
        builders.post(case, post_type="N", title=f"Utkast {i}", with_pdf=False)
        builders.finalized_post(case, post_type="I", title=f"Tilvising {i}", correspondent="Skule",
                                document_date=today() - timedelta(days=i + 1))
        idle = builders.case("radgjevar1", "follow_up", title=f"Oppfølging {i}")
        db.session.get(Case, idle.id).last_activity_at = utcnow() - FOLLOW_UP_IDLE - timedelta(days=1)
    db.session.commit()


def test_the_handlers_start_page_runs_as_many_statements_when_its_lists_are_cut(app, login_as):
    with app.app_context():
        _world(1)
    web = login_as("radgjevar1")
    few, html = _statements(app, web)
    assert _total(html, "outstanding") == 1 and _total(html, "to-close") == 1
    with app.app_context():
        _world(start.OPEN_SHOWN + 2)  # past every list's limit: each shows some and counts all
    many, html = _statements(app, web)
    n = start.OPEN_SHOWN + 3
    assert (_total(html, "open-cases"), _total(html, "drafts"), _total(html, "outstanding"),
            _total(html, "to-close")) == (2 * n, n, n, n)
    assert len(many) == len(few), (few, many)


def test_the_restanser_and_drafts_of_the_start_page_are_the_handlers_own(app, ctx):
    """Another handler's restanser and drafts are not counted; a co-handled case's restanser are."""
    from ppt_web.cases import service as cases

    mine = builders.case("radgjevar1", "other", title="Eiga")
    theirs = builders.case("radgjevar2", "other", title="Annan")
    shared = builders.case("radgjevar2", "other", title="Delt")
    cases.add_cohandler(user("radgjevar2"), shared.id, user("radgjevar1").id)
    for case in (mine, theirs, shared):
        builders.finalized_post(case, post_type="I", title="Tilvising", correspondent="Skule")
        builders.post(case, post_type="N", title="Utkast", with_pdf=False)
    panel = start.panels(user("radgjevar1"))["handler"]
    assert sorted(p.case_id for p in panel["outstanding"].rows) == sorted([mine.id, shared.id])
    assert panel["outstanding"].total == 2
    # Drafts: the ones I wrote or that wait in a case I am responsible for (not a co-handled case's).
    assert [p.case_id for p in panel["drafts"].rows] == [mine.id] and panel["drafts"].total == 1


def test_a_leader_who_sees_only_own_cases_counts_every_handler_of_those_cases(ctx):
    """Open cases by handler for a leader without search_all (and in no team): the cases they may see,
    each counted for its handler and every co-handler."""
    from sqlalchemy import select

    from ppt_web.models import Permission
    from ppt_web.models.domain import case_cohandler

    from .conftest import role

    shared = builders.case("radgjevar1", "other", title="Delt med leiar")
    for name in ("leiar", "radgjevar2"):
        db.session.execute(case_cohandler.insert().values(case_id=shared.id, user_id=user(name).id))
    builders.case("radgjevar2", "other", title="Ikkje leiar si")  # not the leader's to see
    search_all = db.session.scalar(select(Permission).where(Permission.code == "search_all"))
    leader_role = role("leiar")
    leader_role.permissions.remove(search_all)
    db.session.commit()
    leader = user("leiar")
    assert leader.can("approve") and not leader.can("search_all") and not start.my_teams(leader)
    rows = start.panels(leader)["leader"]["by_handler"]
    assert sorted((u.username, n) for u, n, _ in rows) == [("leiar", 1), ("radgjevar1", 1), ("radgjevar2", 1)]
