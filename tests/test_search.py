"""Live search: scoped to the actor, paged, and national ids travel in POST bodies only."""
from __future__ import annotations

from datetime import date, timedelta

from ppt_web.search import service as search

from . import builders
from .conftest import user

HX = {"HX-Request": "true"}


def test_search_scoping(ctx):
    mine = builders.case("radgjevar1", title="Lesevanskar", client_obj=builders.client("radgjevar1", given_name="Siv"))
    theirs = builders.case("radgjevar2", title="Lesekurs", client_obj=builders.client("radgjevar2", given_name="Sindre"))
    assert {c.id for c in search.search(user("radgjevar1"), "lese").cases.items} == {mine.id}
    assert {c.id for c in search.search(user("leiar"), "lese").cases.items} == {mine.id, theirs.id}
    assert [c.given_name for c in search.search(user("radgjevar1"), "si").clients.items] == ["Siv"]
    assert search.search(user("radgjevar2"), mine.client.national_id).clients.total == 0
    assert search.search(user("konsulent"), mine.client.national_id).clients.items[0].id == mine.client_id
    assert search.search(user("konsulent"), mine.number).cases.items[0].id == mine.id
    assert search.search(user("konsulent"), "x") is None  # too short to search


def test_search_by_category_status_handler_and_post_date(ctx):
    case = builders.case("radgjevar1", category="statement", title="Uttale til barnehage")
    post = builders.post(case, title="Observasjon")
    assert case.id in [c.id for c in search.search(user("leiar"), "uttale").cases.items]
    assert case.id in [c.id for c in search.search(user("leiar"), "radgjevar1").cases.items]
    assert case.id in [c.id for c in search.search(user("leiar"), "open").cases.items]
    day = post.document_date.strftime("%d.%m.%Y")
    assert post.id in [p.id for p in search.search(user("leiar"), day).posts.items]
    assert post.id in [p.id for p in search.search(user("leiar"), "obs").posts.items]


def test_results_are_paged(ctx):
    for n in range(30):
        builders.client("radgjevar1", given_name=f"Pia{n:02d}", family_name="Paging")
    first = search.search(user("konsulent"), "paging")
    assert first.clients.total == 30 and len(first.clients.items) == 25 and first.clients.pages == 2
    assert len(search.search(user("konsulent"), "paging", page=2).clients.items) == 5


def test_search_page_posts_the_query_never_in_the_url(app, login_as):
    with app.app_context():
        nid = builders.client("radgjevar1", given_name="Mia").national_id
    client = login_as("konsulent")
    page = client.get("/search/").get_data(as_text=True)
    assert 'method="post"' in page and 'hx-post="/search/"' in page and "hx-push-url" not in page
    response = client.post("/search/", data={"q": nid}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Mia" in html and nid not in html
    assert html.lstrip().startswith('<div id="search-results"')
    assert client.get(f"/search/?q={nid}").status_code == 200  # a GET with a query is ignored...
    assert "Mia" not in client.get(f"/search/?q={nid}").get_data(as_text=True)  # ...and searches nothing


def test_a_common_word_shows_a_capped_count_and_still_pages(ctx, monkeypatch):
    """Years of "Tilvising" posts: the count stops past the cap and says so ("N+"), the pages still work."""
    monkeypatch.setattr(search, "COUNT_CAP", 26)
    for n in range(30):
        builders.client("radgjevar1", given_name=f"Pia{n:02d}", family_name="Mange")
    first = search.search(user("konsulent"), "mange")
    assert first.count_text(first.clients) == "26+" and len(first.clients.items) == 25
    assert len(search.search(user("konsulent"), "mange", page=2).clients.items) == 5
    few = search.search(user("konsulent"), "pia0")
    assert few.count_text(few.clients) == "10"


def test_a_common_word_in_post_titles_finds_the_same_posts_newest_first(ctx, monkeypatch):
    """Past the cap, search walks the posts newest first instead of sorting every match: the same
    posts, in the same order (document date, then newest registered), within the same scope."""
    mine = builders.case("radgjevar1", title="Eigen sak")
    theirs = builders.case("radgjevar2", title="Annan sak")
    made = [builders.post(mine if n % 2 else theirs, title=f"Tilvising {n}",
                          document_date=date(2020, 1, 1) + timedelta(days=n % 3)) for n in range(8)]
    builders.post(mine, title="Svar på tilvising")  # the word, but not at the start of the title
    builders.post(mine, title="Tilvisning")  # a different word

    def found(who: str, cap: int) -> tuple[list[int], str]:
        monkeypatch.setattr(search, "COUNT_CAP", cap)
        result = search.search(user(who), "tilvising")
        return [p.id for p in result.posts.items], result.count_text(result.posts)

    newest_first = sorted(made, key=lambda p: (p.document_date, p.id), reverse=True)
    everyone = [p.id for p in newest_first]
    own = [p.id for p in newest_first if p.case_id == mine.id]
    assert found("konsulent", 500) == (everyone, "8")
    assert found("konsulent", 3) == (everyone, "3+")
    assert found("radgjevar1", 500) == (own, "4")
    assert found("radgjevar1", 2) == (own, "2+")
