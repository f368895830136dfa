"""What a search costs the database, and that the statements it keeps per process never mix up whose
search they are: one statement per list (its rows and its capped count together) and one for the
look-ups (schools and handlers), the same for every user, scoped by the user's own id."""
from __future__ import annotations

from sqlalchemy import event, text

from ppt_web.extensions import db
from ppt_web.search import service as search

from . import builders
from .conftest import user


def _statements_of(actor, text: str) -> tuple[search.Results | None, list[str]]:
    seen: list[str] = []

    def _seen(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", _seen)
    try:
        found = search.search(actor, text)
    finally:
        event.remove(db.engine, "before_cursor_execute", _seen)
    return found, seen


def test_a_search_is_one_statement_per_list_and_one_for_the_look_ups(ctx):
    case = builders.case("radgjevar1", title="Sakkunnig vurdering",
                         client_obj=builders.client("radgjevar1", given_name="Sakkunna", family_name="Vik"))
    builders.post(case, title="Sakkunnig vurdering", correspondent="Kari")
    for who in ("radgjevar1", "konsulent"):
        actor = user(who)
        _statements_of(actor, "sakkunn")  # the first search of its kind makes its statements (and loads roles)
        found, statements = _statements_of(actor, "sakkunn")
        assert found is not None and (found.clients.total, found.cases.total, found.posts.total) == (1, 1, 1)
        assert found.posts.items[0].correspondents == "Kari"
        assert len(statements) == 4, statements  # look-ups, clients, cases, posts (each with its count)
        if db.engine.dialect.name == "postgresql":  # no parallel workers for the lists (set by the look-ups)
            assert db.session.execute(text("SHOW max_parallel_workers_per_gather")).scalar() == "0"


def test_the_kept_statements_show_each_user_their_own_cases_only(ctx):
    """The statements are made once per kind of query and kept: the next user's search is still theirs."""
    mine = builders.case("radgjevar1", title="Lesevanskar",
                         client_obj=builders.client("radgjevar1", given_name="Lesja", family_name="Vik"))
    theirs = builders.case("radgjevar2", title="Lesekurs",
                           client_obj=builders.client("radgjevar2", given_name="Lesja", family_name="Berg"))
    builders.post(mine, title="Lesetest")
    builders.post(theirs, title="Lesetest")
    for who, case in (("radgjevar1", mine), ("radgjevar2", theirs), ("radgjevar1", mine)):
        found = search.search(user(who), "lese")
        assert [c.id for c in found.cases.items] == [case.id], who
        assert [p.case_id for p in found.posts.items] == [case.id], who
        assert [c.id for c in search.search(user(who), "lesja").clients.items] == [case.client_id], who
    assert {c.id for c in search.search(user("konsulent"), "lese").cases.items} == {mine.id, theirs.id}


def test_a_page_past_the_end_is_empty_and_keeps_the_count(ctx):
    for n in range(27):
        builders.client("radgjevar1", given_name=f"Pia{n:02d}", family_name="Forbi")
    found = search.search(user("konsulent"), "forbi", page=3)
    assert found.clients.items == [] and found.clients.total == 27 and found.clients.pages == 2
    assert len(search.search(user("konsulent"), "forbi", page=2).clients.items) == 2


def test_clients_of_one_name_page_in_a_fixed_order(ctx):
    """Clients who share a name come in the order they were registered, on every page: ordered by the name
    alone, PostgreSQL gave ties in the order of their rows on disk, which an update changes, so paging over
    them could show a client twice and skip another."""
    twins = [builders.client("radgjevar1", given_name="Tvilling", family_name="Likenamn") for _ in range(30)]
    for twin in twins[:10]:  # rewritten rows: on PostgreSQL they move to the end of the table
        db.session.execute(text("UPDATE client SET name_lower = name_lower WHERE id = :id"), {"id": twin.id})
    db.session.commit()
    seen = []
    for page in (1, 2):
        found = search.search(user("konsulent"), "tvilling likenamn", page=page)
        assert found is not None and found.clients.total == 30
        seen += [c.id for c in found.clients.items]
    assert seen == sorted(t.id for t in twins)


def test_no_search_statement_gives_sqlite_a_bare_glob_pattern(ctx):
    """SQLite: a GLOB pattern that is a bare parameter (`GLOB ?`) may serve its LIKE/GLOB index optimisation,
    so SQLite prepares the whole statement again each time the parameter is bound: about 0.2 ms per list of
    every search, more than a small list's own reading. The walks' patterns are `+?` (the same text, which
    the planner leaves alone), and the rows are the same."""
    if db.engine.dialect.name != "sqlite":
        return  # PostgreSQL matches with ~, its statements prepared by the server as usual
    case = builders.case("radgjevar1", title="Sakkunnig vurdering",
                         client_obj=builders.client("radgjevar1", given_name="Nora", family_name="Haugen"))
    builders.post(case, title="Sakkunnig vurdering")
    for text_ in ("sakkunn", "nora h", "vurdering sakk"):
        found, statements = _statements_of(user("konsulent"), text_)
        assert found is not None and found.cases.total + found.clients.total >= 1, text_
        assert any("GLOB" in s for s in statements), text_  # the walks are in the statements
        assert not [s for s in statements if "GLOB ?" in " ".join(s.split())], text_
