"""A PP-rådgjevar sees only their own cases (responsible or co-handler): everything else is 404 and logged."""
from __future__ import annotations

import pytest

from ppt_web.cases import service as cases
from ppt_web.extensions import db

from . import builders
from .conftest import activity_rows, user

HX = {"HX-Request": "true"}


@pytest.fixture
def others(app):
    """50 cases of radgjevar1, each with a client and a post with a document."""
    made = []
    pdf = builders.make_pdf(tag="shared")  # one file for all: checked once, stored once
    with app.app_context():
        for n in range(50):
            case = builders.case("radgjevar1", title=f"Sak {n}")
            post = builders.post(case, title=f"Notat {n}", pdf=pdf)
            made.append({"case": case.id, "client": case.client_id, "post": post.id, "doc": post.documents[0].id})
    return made


def _urls(ids: dict) -> list[tuple[str, str, dict]]:
    return [
        ("GET", f"/cases/{ids['case']}", {}),
        ("GET", f"/clients/{ids['client']}", {}),
        ("GET", f"/clients/{ids['client']}/edit", {}),
        ("GET", f"/posts/{ids['post']}", {}),
        ("GET", f"/posts/{ids['post']}/edit", {}),
        ("GET", f"/documents/{ids['doc']}", {}),
        ("GET", f"/cases/{ids['case']}/posts/new", {}),
        ("POST", f"/posts/{ids['post']}/edit", {"title": "hack"}),
        ("POST", f"/posts/{ids['post']}/finalize", {}),
        ("POST", f"/clients/{ids['client']}/national-id", {}),
        ("POST", f"/cases/{ids['case']}/close", {}),
        ("POST", f"/cases/{ids['case']}/cohandlers", {"user_id": "5"}),
        ("POST", f"/posts/{ids['post']}/write-off", {"method": "TE"}),
    ]


def _requests(others):
    """Every kind of request for the first three; page, htmx partial, edit POST and download for all 50."""
    for n, ids in enumerate(others):
        for method, url, data in _urls(ids):
            if n < 3:
                yield method, url, data, {}
                yield method, url, data, HX
            elif (method == "POST" and url.endswith("/edit")) or url.startswith(("/documents/", "/cases/")) \
                    and method == "GET" and not url.endswith("/new"):
                yield method, url, data, {}
            elif url == f"/clients/{ids['client']}":
                yield method, url, data, HX


def test_another_handlers_things_are_404_and_logged(app, login_as, others):
    client = login_as("radgjevar2")
    asked = 0
    for method, url, data, headers in _requests(others):
        response = client.open(url, method=method, data=data, headers=headers)
        assert response.status_code == 404, (method, url, response.status_code)
        body = response.get_data(as_text=True)
        assert "Sak " not in body and "Notat " not in body and "Nordmann" not in body
        assert b"%PDF" not in response.data
        asked += 1
    with app.app_context():
        denied = activity_rows("not_found")
        assert len(denied) == asked
        assert {r.actor_name for r in denied} == {"radgjevar2"}
        assert {r.object_type for r in denied} >= {"case", "client", "journal_post", "document"}
        # Nothing changed on the way.
        from ppt_web.models import JournalPost, PostStatus

        assert db.session.scalar(db.select(db.func.count()).select_from(JournalPost)
                                 .where(JournalPost.status != PostStatus.DRAFT)) == 0


def test_search_all_users_see_them(app, login_as, others):
    client = login_as("sekretaer")
    for ids in others[:5]:
        for url in (f"/cases/{ids['case']}", f"/clients/{ids['client']}", f"/posts/{ids['post']}",
                    f"/documents/{ids['doc']}"):
            assert client.get(url).status_code == 200, url


def test_co_handler_sees_the_case_and_its_client(app, login_as, others):
    with app.app_context():
        cases.add_cohandler(user("radgjevar1"), others[0]["case"], user("radgjevar2").id)
    client = login_as("radgjevar2")
    assert client.get(f"/cases/{others[0]['case']}").status_code == 200
    assert client.get(f"/clients/{others[0]['client']}").status_code == 200
    assert client.get(f"/documents/{others[0]['doc']}").status_code == 200
    assert client.get(f"/cases/{others[1]['case']}").status_code == 404


def test_handler_sees_own_closed_cases(app, login_as):
    with app.app_context():
        case = builders.case("radgjevar2")
        cases.close_case(user("radgjevar2"), case.id)
        case_id = case.id
    assert login_as("radgjevar2").get(f"/cases/{case_id}").status_code == 200
