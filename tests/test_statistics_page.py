"""The statistics page: who may open it, its form's messages, the CSV of each table (BOM, semicolons,
"<5"), the print view, and the drill-down to the cases that waited longest, scoped."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from ppt_web import clock
from ppt_web.extensions import db
from ppt_web.models import Permission, Role
from ppt_web.statistics import service
from ppt_web.statistics.figures import Chart, Column, Figure, quarter_of

from . import builders
from .conftest import activity_rows, user

HOLDERS = ("leiar", "admin", "konsulent")
OTHERS = ("radgjevar1", "sekretaer")  # a PP-rådgjevar and a merkantil


def _quarter() -> str:
    return quarter_of(clock.today().isoformat()[:7])


def _urls() -> list[str]:
    return ["/statistics/", "/statistics/print", "/statistics/referrals-month.csv",
            f"/statistics/waiting/{_quarter()}"]


def fake_figure() -> Figure:
    """A table with every kind of cell: small counts, a zero, a five, a screen-only name, decimals, None."""
    return Figure("fake", "Fake figure", [Column("month", "Month", "label"), Column("name", "Name", "text", screen_only=True),
                                          Column("count", "Count"), Column("share", "Share", "percent"),
                                          Column("days", "Days", "days")],
                  [("2026-01", "Hemmeleg Handsamar", 3, 12.5, 40.4), ("2026-02", "Hemmeleg Handsamar", 0, None, None),
                   ("2026-03", "Hemmeleg Handsamar", 5, 100.0, 2.5), ("2026-04", "Hemmeleg Handsamar", 1234, 12.34, 7)],
                  Chart("bar", "month", ("count",)), note="A note.")


@pytest.fixture
def fake(monkeypatch):
    """Only the fake figure on the page (its key "fake"), in a section of its own."""
    monkeypatch.setattr(service, "REGISTRY", {"fake": lambda actor, f: fake_figure()})
    monkeypatch.setattr(service, "SECTIONS", (("cases", ("fake",)),))


def _set_language(client, language: str) -> None:
    with client.application.app_context():
        user("leiar").locale = language
        db.session.commit()


@pytest.mark.parametrize("username", HOLDERS)
def test_leader_admin_and_consultant_open_every_statistics_view(app, login_as, username):
    """The page, the print view, a CSV and the drill-down all answer the holders of "statistics"."""
    client = login_as(username)
    for url in _urls():
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("username", OTHERS)
def test_a_pp_adviser_and_a_clerk_get_403_everywhere(app, login_as, username):
    """Without "statistics": 403 on the page, the print view, the CSV and the drill-down, and no menu link."""
    client = login_as(username)
    for url in _urls():
        assert client.get(url).status_code == 403, url
    assert 'href="/statistics/"' not in client.get("/").get_data(as_text=True)


def test_the_menu_links_the_page_for_its_holders(app, login_as):
    """A leader finds Statistics in the main menu."""
    page = login_as("leiar").get("/").get_data(as_text=True)
    assert re.search(r'<nav[^>]*>.*href="/statistics/"', page, re.S)


def test_the_page_shows_every_figure_with_chart_table_and_csv_link(app, login_as):
    """All fourteen figures, in sections, each with an SVG chart, a table and its CSV link; the archive's
    figures say the team filter does not apply."""
    page = login_as("leiar").get("/statistics/").get_data(as_text=True)
    keys = re.findall(r'data-figure="([a-z-]+)"', page)
    assert keys == list(service.REGISTRY)
    for key in keys:
        assert f'href="/statistics/{key}.csv' in page
    assert page.count('role="img"') == len(keys)
    assert len(re.findall(r'data-scope="service"', page)) == 5  # the archive's four and the dispatches
    for section in ("cases", "documents", "approvals", "archive", "dispatches"):
        assert f'id="section-{section}"' in page
    assert " style=" not in page.split("<main", 1)[1] and "<style" not in page


def test_the_page_shows_exact_counts_in_the_readers_number_format(app, login_as, fake):
    """On the page a 3 is 3 (the holder's own view); month keys are month names; a comma in Norwegian."""
    client = login_as("leiar")
    page = client.get("/statistics/").get_data(as_text=True)
    cells = re.findall(r"<td class=\"num\">([^<]*)</td>", page)
    assert cells[:3] == ["3", "12,5", "40"] and "<5" not in page.split("<main", 1)[1].replace("&lt;5", "<5")
    assert "januar 2026" in page and "Hemmeleg Handsamar" in page  # the screen-only name is on screen
    assert "–" in cells  # no value
    _set_language(client, "en")
    page = client.get("/statistics/").get_data(as_text=True)
    assert "January 2026" in page and ">12.5<" in page and ">1,234<" in page


def _csv(response) -> list[list[str]]:
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    text = body.decode("utf-8")[1:]
    assert "\r\n" in text and text.endswith("\r\n")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


def test_the_csv_is_the_table_with_small_counts_masked(app, login_as, fake):
    """BOM, semicolons, CRLF, a header of the labels, the rows; a 3 is "<5", a 0 stays 0, a 5 stays 5; no
    screen-only column; decimals with a comma in Norwegian; a file name with the key and the period."""
    client = login_as("leiar")
    response = client.get("/statistics/fake.csv?period=year&year=2026")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "statistikk-fake-2026-01-01-" in disposition
    rows = _csv(response)
    assert rows[0] == ["Month", "Count", "Share", "Days"]
    assert rows[1] == ["januar 2026", "<5", "12,5", "40"]
    assert rows[2] == ["februar 2026", "0", "", ""]
    assert rows[3] == ["mars 2026", "5", "100", "3"]
    assert rows[4] == ["april 2026", "1234", "12,3", "7"]  # no thousands separator: a spreadsheet reads a number
    assert len(rows) == 5
    assert "Hemmeleg" not in response.get_data(as_text=True)
    with app.app_context():
        logged = activity_rows("statistics_exported")
        assert len(logged) == 1 and logged[0].detail.startswith("fake: 2026-01-01")


def test_the_csv_in_english_has_decimal_points(app, login_as, fake):
    """An English reader's CSV: points and English month names; the masking is the same."""
    client = login_as("leiar")
    _set_language(client, "en")
    rows = _csv(client.get("/statistics/fake.csv?period=month&year=2026&month=1"))
    assert rows[1] == ["January 2026", "<5", "12.5", "40"]


def test_an_unknown_figure_has_no_csv(app, login_as):
    """A key no figure has: 404, and nothing exported is logged."""
    client = login_as("leiar")
    assert client.get("/statistics/no-such-figure.csv").status_code == 404
    with app.app_context():
        assert activity_rows("statistics_exported") == []


@pytest.mark.parametrize(("args", "field"), [
    ("period=decade", "period"),
    ("period=range&from=31.02.2026&to=01.03.2026", "from"),
    ("period=range&from=01.03.2026&to=01.02.2026", "to"),
    ("period=range&from=tomorrow&to=", "from"),
    ("period=year&year=1850", "year"),
    ("period=month&year=2026&month=13", "month"),
    ("period=quarter&year=2026&quarter=9", "quarter"),
    ("threshold=0", "threshold"),
    ("threshold=tre", "threshold"),
    ("threshold=99999999999999999999", "threshold"),
    ("threshold=3651", "threshold"),
    ("team=900001", "team"),
    ("team=abc", "team"),
])
def test_a_bad_choice_gives_a_message_beside_its_field_and_the_default_figures(app, login_as, fake, args, field):
    """Every bad input: 200, a message by the field, the default period (this year so far), never a 500."""
    client = login_as("leiar")
    response = client.get(f"/statistics/?{args}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'data-problem="{field}"' in page and 'id="stats-problems"' in page
    today = clock.today()
    if field not in ("threshold", "team"):
        assert f"01.01.{today.year}–{today:%d.%m.%Y}" in page
    assert client.get(f"/statistics/fake.csv?{args}").status_code == 200
    assert client.get(f"/statistics/print?{args}").status_code == 200


def test_a_good_choice_gives_its_period(app, login_as, fake):
    """A quarter, a month and a range are read as asked (a past period whole, no message)."""
    client = login_as("leiar")
    for args, shown in (("period=quarter&year=2025&quarter=4", "01.10.2025–31.12.2025"),
                        ("period=month&year=2024&month=2", "01.02.2024–29.02.2024"),
                        ("period=range&from=5.3.2025&to=2025-04-07", "05.03.2025–07.04.2025")):
        page = client.get(f"/statistics/?{args}").get_data(as_text=True)
        assert shown in page and "data-problem" not in page, args


def test_the_print_view_has_the_figures_and_no_menu(app, login_as, fake):
    """Laid out for A4 by app.css's print rules: no menu, no form, no CSV links, exact numbers."""
    page = login_as("leiar").get("/statistics/print?period=year&year=2026").get_data(as_text=True)
    assert 'data-figure="fake"' in page and "<nav" not in page and "stats-filters" not in page
    assert ".csv" not in page and "<td class=\"num\">3</td>" in page


def test_the_stylesheet_prints_on_a4(app, client):
    """The print rules: A4 portrait, charts to the width, table rows not split, the menu hidden."""
    css = client.get("/static/css/app.css").get_data(as_text=True)
    assert "@page { size: A4 portrait" in css
    printing = css.split("@media print", 1)[1]
    assert "break-inside: avoid" in printing and "header.top" in printing and "width: 100%" in printing


def _grant_statistics(role_code: str) -> None:
    role = db.session.scalar(select(Role).where(Role.code == role_code))
    role.permissions.append(db.session.get(Permission, "statistics"))
    db.session.commit()


def _waited_case(handler: str, days: int, title: str):
    """An expert assessment case whose referral came `days` ago and whose assessment is finished today."""
    case = builders.case(handler, category="expert_assessment", title=title)
    builders.finalized_post(case, post_type="I", title="Tilvising", correspondent="Skulen",
                            received_on=clock.today() - timedelta(days=days))
    builders.finalized_post(case, post_type="U", title="Sakkunnig vurdering", correspondent="Foreldre")
    return case


def test_the_drill_down_lists_only_the_cases_the_user_may_see(app, login_as, client):
    """A user who searches own cases sees their own case behind the waiting figure, not another's; a holder
    with search_all sees both. A wrong quarter is 404."""
    with app.app_context():
        mine = _waited_case("radgjevar1", 40, "Eigen sak")
        theirs = _waited_case("radgjevar2", 50, "Anna sak")
        mine_id, mine_number, theirs_id = mine.id, mine.number, theirs.id
        _grant_statistics("pp_radgjevar")
    url = f"/statistics/waiting/{_quarter()}?threshold=10"
    login_as("radgjevar1")
    page = client.get(url).get_data(as_text=True)
    assert f'data-case="{mine_id}"' in page and f'data-case="{theirs_id}"' not in page
    assert mine_number in page and "Eigen sak" not in page  # the number, never the title
    assert "Ola" not in page  # no client name
    stats = client.get("/statistics/?threshold=10").get_data(as_text=True)
    assert f'href="/statistics/waiting/{_quarter()}?threshold=10"' in stats  # the figure links its worst quarter
    for bad in ("2026-Q5", "abc", "2026-q1", "0000-Q1"):
        assert client.get(f"/statistics/waiting/{bad}").status_code == 404, bad
    client.post("/logout")
    login_as("leiar")
    page = client.get(url).get_data(as_text=True)
    assert f'data-case="{mine_id}"' in page and f'data-case="{theirs_id}"' in page


def test_no_client_name_or_national_id_in_any_csv_of_a_small_world(app, login_as):
    """Every figure's CSV for this year, on cases, posts, approvals and archive jobs: no client's name,
    national id, case title or handler's name."""
    with app.app_context():
        people = [builders.client("radgjevar1", given_name=f"Xenia{n}", family_name="Zulustad") for n in range(3)]
        secrets = {p.given_name for p in people} | {"Zulustad"} | {p.national_id for p in people}
        for n, person in enumerate(people):
            case = builders.case("radgjevar1" if n % 2 else "radgjevar2", client_obj=person,
                                 category="expert_assessment", title=f"Hemmelegtittel{n}")
            builders.finalized_post(case, post_type="I", title="Tilvising", correspondent=f"Skule {n}",
                                    received_on=clock.today() - timedelta(days=20 * n))
            builders.finalized_post(case, post_type="U", title="Vurdering", correspondent=person.given_name)
        secrets |= {f"Hemmelegtittel{n}" for n in range(3)} | {"Rune Rådgjevar", "Randi Rådgjevar"}
    client = login_as("leiar")
    for key in service.REGISTRY:
        body = client.get(f"/statistics/{key}.csv").get_data(as_text=True)
        for secret in secrets:
            assert secret not in body, (key, secret)
    page = client.get("/statistics/").get_data(as_text=True)
    for secret in secrets - {"Rune Rådgjevar", "Randi Rådgjevar"}:  # handlers' names: the screen-only column
        assert secret not in page, secret


def test_a_csv_computes_only_its_own_figure(app, login_as, monkeypatch):
    """The CSV of one figure does not run the other figures' queries."""
    made = []

    def maker(key):
        def make(actor, f):
            made.append(key)
            return Figure(key, key, [Column("x", "X", "label"), Column("n", "N")], [("a", 1)], None)
        return make

    monkeypatch.setattr(service, "REGISTRY", {key: maker(key) for key in ("one", "two", "three")})
    assert login_as("leiar").get("/statistics/two.csv").status_code == 200
    assert made == ["two"]
