"""The statistics page: figures for a period and team as charts beside their tables, each table's CSV,
a print view for A4, and the cases behind a quarter's waiting time."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from .. import clock
from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..i18n import date_problem, parse_day, period_problem
from . import charts, export, service
from .figures import DEFAULT_THRESHOLD_DAYS, Figure, Filters, Period

bp = Blueprint("statistics", __name__, url_prefix="/statistics")

KINDS = ("month", "quarter", "year", "range")
MAX_THRESHOLD = 3650
FIRST_YEAR = 1990
MAX_RANGE_YEARS = 20


@dataclass
class Query:
    """What the form asked for, as typed (to show it again), the filters it gives, and what was wrong
    with it ({field: message}); a wrong period or team falls back to the default and says so."""

    filters: Filters
    typed: dict[str, str]
    problems: dict[str, str] = field(default_factory=dict)

    def args(self) -> dict[str, str]:
        """The query string that asks for these filters again (the CSV, print and drill-down links)."""
        return {k: v for k, v in self.typed.items() if v}


def default_period(today: date) -> Period:
    """The current year so far."""
    return Period(date(today.year, 1, 1), today, "year")


_DIGITS = re.compile(r"[0-9]{1,9}")


def _int(text: str) -> int | None:
    """A whole number written with the digits 0-9 only (str.isdigit takes "²" and "①", which int() refuses)."""
    text = text.strip()
    return int(text) if _DIGITS.fullmatch(text) else None


def _years_later(day: date, years: int) -> date:
    """The same day `years` later (29 February: 1 March when that year has none)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def _period(typed: dict[str, str], today: date, problems: dict[str, str]) -> Period:
    kind = typed["period"] or "year"
    if kind not in KINDS:
        problems["period"] = _("Choose a month, a quarter, a year or a period from and to.")
        return default_period(today)
    if kind == "range":
        return _range(typed, today, problems)
    year = _int(typed["year"]) if typed["year"] else today.year
    if year is None or not FIRST_YEAR <= year <= today.year:
        problems["year"] = _("Choose a year from %(first)s to %(last)s.", first=FIRST_YEAR, last=today.year)
        return default_period(today)
    if kind == "year":
        first, last = date(year, 1, 1), date(year, 12, 31)
    elif kind == "quarter":
        number = _int(typed["quarter"] or str((today.month + 2) // 3))
        if number is None or not 1 <= number <= 4:
            problems["quarter"] = _("Choose a quarter from 1 to 4.")
            return default_period(today)
        first = date(year, 3 * number - 2, 1)
        last = date(year + (number == 4), 1 if number == 4 else 3 * number + 1, 1) - timedelta(days=1)
    else:
        number = _int(typed["month"] or str(today.month))
        if number is None or not 1 <= number <= 12:
            problems["month"] = _("Choose a month from 1 to 12.")
            return default_period(today)
        first = date(year, number, 1)
        last = date(year + (number == 12), 1 if number == 12 else number + 1, 1) - timedelta(days=1)
    if first > today:
        problems[kind] = _("The period has not begun yet.")
        return default_period(today)
    return Period(first, min(last, today), kind)


def _range(typed: dict[str, str], today: date, problems: dict[str, str]) -> Period:
    for name in ("from", "to"):
        problem = date_problem(typed[name]) or (None if typed[name] else _("Write a date."))
        if problem:
            problems[name] = problem
    if problems:
        return default_period(today)
    first, last = parse_day(typed["from"]), parse_day(typed["to"])
    assert first is not None and last is not None
    backwards = period_problem(first, last)
    if backwards:
        problems["to"] = backwards
    elif first.year < FIRST_YEAR or first > today:
        problems["from"] = _("Choose a first day from %(first)s until today.", first=f"01.01.{FIRST_YEAR}")
    elif last >= _years_later(first, MAX_RANGE_YEARS):
        problems["to"] = _("Choose a period of at most %(years)s years.", years=MAX_RANGE_YEARS)
    if problems:
        return default_period(today)
    return Period(first, min(last, today), "range")


def read_query() -> Query:
    """The page's form from the query string: every wrong field a message, and its default instead."""
    names = ("period", "year", "month", "quarter", "from", "to", "team", "threshold")
    typed = {name: request.args.get(name, "")[:20].strip() for name in names}
    problems: dict[str, str] = {}
    today = clock.today()
    period = _period(typed, today, problems)
    team_id = None
    if typed["team"]:
        team_id = _int(typed["team"])
        if team_id is None or team_id not in dict(service.teams()):
            problems["team"] = _("There is no such team. The figures are for the whole service.")
            team_id = None
    threshold = DEFAULT_THRESHOLD_DAYS
    if typed["threshold"]:
        number = _int(typed["threshold"])
        if number is None or not 1 <= number <= MAX_THRESHOLD:
            problems["threshold"] = _("Write a whole number of days from 1 to %(most)s.", most=MAX_THRESHOLD)
        else:
            threshold = number
    return Query(Filters(period, team_id, threshold), typed, problems)


@dataclass
class Shown:
    """A figure ready for the page: its chart, its table's cells as text, and the CSV link's arguments."""

    figure: Figure
    chart: str
    header: list[str]
    cells: list[list[str]]
    kinds: list[str]


def shown(figure: Figure, printing: bool = False) -> Shown:
    """On paper the screen-only columns (a handler's name) are left out: paper leaves the screen."""
    if printing and any(c.screen_only for c in figure.columns):
        keep = [i for i, c in enumerate(figure.columns) if not c.screen_only]
        figure = replace(figure, columns=[figure.columns[i] for i in keep],
                         rows=[tuple(row[i] for i in keep) for row in figure.rows])
    return Shown(figure, charts.render(figure), [str(c.label) for c in figure.columns],
                 [[export.cell_text(value, column) for value, column in zip(row, figure.columns, strict=True)]
                  for row in figure.rows],
                 [c.kind for c in figure.columns])


def waiting_url(quarter: str, query: Query) -> str:
    """The cases behind a quarter, asked with the whole query (period, team, threshold), so the way back
    lands on the same period. The query's own "quarter" (the period's) goes in the query string beside
    the path's quarter (the row's), which url_for cannot take twice."""
    args = query.args()
    return url_for("statistics.waiting_cases", quarter=quarter) + ("?" + urlencode(args) if args else "")


def _with_links(figure: Figure, query: Query) -> Figure:
    """The waiting figure's links, rebuilt from its rows' quarters with the whole query."""
    if not figure.links:
        return figure
    return replace(figure, links={i: waiting_url(str(figure.rows[i][0]), query) for i in figure.links
                                  if 0 <= i < len(figure.rows)})


def _to_the_page(query: Query) -> BaseResponse:
    """Back to the page with the same arguments, where the query's messages show."""
    args = query.args()
    return redirect(url_for("statistics.index") + ("?" + urlencode(args) if args else ""))


def _context(query: Query, printing: bool = False) -> dict:
    found = {f.key: shown(_with_links(f, query), printing) for f in service.figures(_actor(), query.filters)}
    sections = [(name, [found[key] for key in keys if key in found]) for name, keys in service.SECTIONS]
    teams = service.teams()
    team_name = dict(teams).get(query.filters.team_id) if query.filters.team_id else None
    return {"query": query, "sections": sections, "teams": teams, "team_name": team_name,
            "period": query.filters.period, "kinds": KINDS, "today": clock.today(),
            "default_threshold": DEFAULT_THRESHOLD_DAYS,
            "month_names": {n: format_date(date(2000, n, 1), "LLLL") for n in range(1, 13)}}


@bp.route("/")
@permission_required("statistics")
def index():
    return render_template("statistics/index.html", **_context(read_query()))


@bp.route("/print")
@permission_required("statistics")
def print_view():
    query = read_query()
    if query.problems:
        return _to_the_page(query)
    return render_template("statistics/print.html", **_context(query, printing=True))


@bp.route("/<key>.csv")
@permission_required("statistics")
def csv(key: str):
    query = read_query()
    if query.problems and service.known(key[:40]):
        # the default period's numbers under the name of what was asked: the page says what is wrong
        return _to_the_page(query)
    found = service.figure(_actor(), key[:40], query.filters)
    if found is None:
        abort(404)
    service.record_export(_actor(), found.key, query.filters)
    filename = export.csv_filename(found, query.filters)
    return Response(export.csv_bytes(found), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/waiting/<quarter>")
@permission_required("statistics")
def waiting_cases(quarter: str):
    query = read_query()
    rows = service.waiting_cases(_actor(), quarter[:10], query.filters)
    team_id = query.filters.team_id
    return render_template("statistics/waiting.html", rows=rows, quarter=quarter[:10], problems=query.problems,
                           quarter_text=export.key_text(quarter[:10]), query=query,
                           threshold=query.filters.threshold_days,
                           team_name=dict(service.teams()).get(team_id) if team_id else None)
