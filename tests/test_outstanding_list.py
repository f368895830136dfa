"""The restanseliste: oldest incoming document first, client and case shown, own and co-handled cases
for a handler, everyone's with a handler filter for search_all, never a case out of scope."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from ppt_web.cases import posts
from ppt_web.cases import service as cases
from ppt_web.clock import today, utcnow
from ppt_web.extensions import db
from ppt_web.models import JournalPost

from . import builders
from .conftest import user


def incoming(case, title: str, document_days: int | None = None, received_days: int | None = None) -> int:
    """An incoming post with its document date and received date so many days ago (None: not given)."""
    data = posts.PostData(post_type="I", title=title,
                          document_date=today() - timedelta(days=document_days) if document_days is not None else None,
                          received_on=today() - timedelta(days=received_days) if received_days is not None else None,
                          correspondents=[posts.CorrespondentData(name="Skule")])
    return posts.create_post(user(case.handler.username), case.id, data,
                             posts.Upload(io.BytesIO(builders.make_pdf()), "inn.pdf")).id


@pytest.fixture
def world(ctx):
    anna = builders.client("radgjevar1", given_name="Anna", family_name="Berg")
    bjorn = builders.client("radgjevar2", given_name="Bjørn", family_name="Dahl")
    own = builders.case("radgjevar1", client_obj=anna, title="Eigen")
    co = builders.case("radgjevar2", client_obj=bjorn, title="Med")
    cases.add_cohandler(user("radgjevar2"), co.id, user("radgjevar1").id)
    other = builders.case("radgjevar2", title="Annan")
    ids = {
        "own_10": incoming(own, "Eigen, dokument 10 dagar", document_days=10),
        "co_15_received": incoming(co, "Med, berre mottatt 15 dagar", received_days=15),
        "own_5": incoming(own, "Eigen, dokument 5 dagar, mottatt 1", document_days=5, received_days=1),
        "other_12": incoming(other, "Annan, dokument 12 dagar", document_days=12),
        "own_undated": incoming(own, "Eigen, utan dato"),
    }
    # No dates: its registration counts, 40 days ago, the oldest. The others were registered in
    # another order than their dates: the list must not follow registration.
    db.session.execute(update(JournalPost).where(JournalPost.id == ids["own_undated"])
                       .values(registered_at=utcnow() - timedelta(days=40)))
    db.session.commit()
    builders.post(own, post_type="N", title="Notat")  # not incoming: never a restanse
    written_off = builders.finalized_post(own, post_type="I", title="Avskriven", correspondent="Skule")
    posts.write_off(user("radgjevar1"), written_off.id, "TE")
    return ids


def test_oldest_document_first_by_document_date_then_received_then_registration(world):
    leader = [p.id for p in posts.outstanding(user("leiar"))]
    w = world
    assert leader == [w["own_undated"], w["co_15_received"], w["other_12"], w["own_10"], w["own_5"]]


def test_a_handler_sees_own_and_co_handled_cases_only(world):
    w = world
    assert [p.id for p in posts.outstanding(user("radgjevar1"))] == \
        [w["own_undated"], w["co_15_received"], w["own_10"], w["own_5"]]
    assert posts.outstanding_count(user("radgjevar1")) == 4
    assert [p.id for p in posts.outstanding(user("radgjevar2"))] == [w["co_15_received"], w["other_12"]]


def test_a_handler_filter_cannot_widen_a_handlers_scope(world):
    """radgjevar1 asking for radgjevar2's list gets only the case they share."""
    assert [p.id for p in posts.outstanding(user("radgjevar1"), user("radgjevar2").id)] == [world["co_15_received"]]


def test_search_all_with_a_handler_filter_shows_that_handlers_own_and_co_handled(world):
    w = world
    leader = user("leiar")
    assert [p.id for p in posts.outstanding(leader, user("radgjevar2").id)] == [w["co_15_received"], w["other_12"]]
    assert [p.id for p in posts.outstanding(leader, user("radgjevar1").id)] == \
        [w["own_undated"], w["co_15_received"], w["own_10"], w["own_5"]]
    assert posts.outstanding_count(leader) == 5 and posts.outstanding_count(leader, user("radgjevar2").id) == 2


def rows(html: str) -> list[int]:
    table = html.split('id="outstanding"', 1)[1].split("</table>", 1)[0]
    return [int(x) for x in re.findall(r'data-post="(\d+)"', table)]


@pytest.mark.parametrize("username", ["sekretaer", "leiar", "konsulent"])
def test_the_office_sees_everyones_restanser_by_default(app, client, login_as, username):
    with app.app_context():
        own = builders.case("radgjevar1", title="Eigen")
        other = builders.case("radgjevar2", title="Annan")
        expected = [incoming(other, "Eldst", document_days=9), incoming(own, "Nyast", document_days=2)]
    login_as(username)
    response = client.get("/posts/outstanding")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert rows(html) == expected
    assert 'id="outstanding-handler"' in html  # the handler filter


def test_the_page_shows_client_and_case_and_filters_by_handler(app, client, login_as):
    with app.app_context():
        anna = builders.client("radgjevar1", given_name="Anna", family_name="Berg")
        own = builders.case("radgjevar1", client_obj=anna, title="Eigen")
        other = builders.case("radgjevar2", title="Annan")
        mine = incoming(own, "Min", document_days=3)
        theirs = incoming(other, "Deira", document_days=4)
        number, r1 = own.number, user("radgjevar1").id
    login_as("leiar")
    html = client.get(f"/posts/outstanding?handler={r1}").get_data(as_text=True)
    assert rows(html) == [mine] and "Anna Berg" in html and number in html
    assert f'<option value="{r1}" selected>' in html
    assert rows(client.get("/posts/outstanding").get_data(as_text=True)) == [theirs, mine]
    for junk in ("abc", "-1", "99999999999999999999", "0"):  # never a 500: an unusable filter is no filter
        assert rows(client.get(f"/posts/outstanding?handler={junk}").get_data(as_text=True)) == [theirs, mine]


def test_a_handler_gets_no_filter_and_cannot_use_one(app, client, login_as):
    with app.app_context():
        own = builders.case("radgjevar1", title="Eigen")
        other = builders.case("radgjevar2", title="Annan")
        mine = incoming(own, "Min", document_days=3)
        incoming(other, "Deira", document_days=4)
        r2 = user("radgjevar2").id
    login_as("radgjevar1")
    html = client.get(f"/posts/outstanding?handler={r2}").get_data(as_text=True)
    assert rows(html) == [mine] and 'id="outstanding-handler"' not in html


def test_the_list_is_bounded_and_says_how_many_there_are(app, client, login_as, monkeypatch):
    from ppt_web.cases import post_routes

    monkeypatch.setattr(post_routes, "OUTSTANDING_SHOWN", 2)
    with app.app_context():
        own = builders.case("radgjevar1", title="Eigen")
        made = [incoming(own, f"Post {n}", document_days=10 - n) for n in range(3)]
    login_as("radgjevar1")
    html = client.get("/posts/outstanding").get_data(as_text=True)
    assert rows(html) == made[:2]
    assert 'data-shown="2" data-total="3"' in html


def test_a_held_back_post_is_marked_as_the_leaders_to_decide(app, client, login_as):
    with app.app_context():
        own = builders.case("radgjevar1", title="Eigen")
        held = incoming(own, "Halde unna", document_days=3)
        plain = incoming(own, "Vanleg", document_days=2)
        db.session.get(JournalPost, held).held_back = True
        db.session.commit()
    for username in ("radgjevar1", "leiar"):
        login_as(username)
        html = client.get("/posts/outstanding").get_data(as_text=True)
        assert rows(html) == [held, plain]
        assert f'data-held="{held}"' in html and f'data-held="{plain}"' not in html


def test_the_handler_filter_offers_only_those_who_handle_an_open_case(app, client, login_as):
    with app.app_context():
        co = builders.case("radgjevar2", title="Med")
        cases.add_cohandler(user("radgjevar2"), co.id, user("radgjevar1").id)
        closed = builders.case("konsulent", title="Lukka") if user("konsulent").can("journal") else None
        if closed is not None:
            cases.close_case(user("konsulent"), closed.id)
        offered_ids = {user("radgjevar1").id, user("radgjevar2").id}
        never = {user("sekretaer").id, user("leiar").id, user("konsulent").id}
    login_as("leiar")
    html = client.get("/posts/outstanding").get_data(as_text=True)
    options = {int(v) for v in re.findall(r'<option value="(\d+)"', html)}
    assert options == offered_ids and not options & never
