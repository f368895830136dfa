"""The shapes every statistic shares, and the SQL pieces their queries are built from.

A statistic is a Figure: a table (columns and rows) and how to draw it (Chart). The page draws the
chart beside the table; the CSV is the table. Counting and bucketing happen in SQL on indexed columns;
only percentiles are taken in Python, over one number per row of the period (figures.percentile).

Times are stored in UTC; a month or a day is Oslo's. Date columns (Case.opened_on, ArchiveJob.finalized_on)
are Oslo days already; datetime columns are cut into Oslo months by month_key().
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, Float, Integer, String, exists
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from ..clock import OSLO
from ..models import Case
from ..models.user import group_member

DEFAULT_THRESHOLD_DAYS = 90  # "waited longer than": three months, the leader may set another
SMALL = 5  # a count of 1..4 in a cell is "<5" in a CSV


@dataclass(frozen=True)
class Period:
    """Days first..last, both included, in Oslo. kind: month | quarter | year | range."""

    first: date
    last: date
    kind: str = "range"

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in UTC: Oslo's midnight before `first` and after `last`."""
        return (datetime.combine(self.first, time(), OSLO).astimezone(UTC),
                datetime.combine(self.last + timedelta(days=1), time(), OSLO).astimezone(UTC))

    def months(self) -> list[str]:
        """Every month the period touches, as 'YYYY-MM' keys (what month_key() gives), in order."""
        keys, year, month = [], self.first.year, self.first.month
        while (year, month) <= (self.last.year, self.last.month):
            keys.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return keys

    def quarters(self) -> list[str]:
        """Every quarter the period touches, as 'YYYY-Qn' keys, in order."""
        return list(dict.fromkeys(quarter_of(m) for m in self.months()))


def quarter_of(month: str) -> str:
    """'2026-11' -> '2026-Q4'."""
    return f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}"


def quarter_days(quarter: str) -> tuple[date, date]:
    """'2026-Q4' -> (01.10.2026, 31.12.2026)."""
    year, number = int(quarter[:4]), int(quarter[-1])
    first = date(year, 3 * number - 2, 1)
    last = date(year + (number == 4), 1 if number == 4 else 3 * number + 1, 1) - timedelta(days=1)
    return first, last


@dataclass(frozen=True)
class Filters:
    """What the page asks for: a period, a team (None: the whole service), the waiting threshold."""

    period: Period
    team_id: int | None = None
    threshold_days: int = DEFAULT_THRESHOLD_DAYS


@dataclass(frozen=True)
class Column:
    """A table column. kind: label (text naming the row) | count | days | minutes | percent | text.
    Counts are the cells a CSV shows as "<5" when 1..4. screen_only: shown on the page, never in a CSV,
    a chart or the print view (a handler's name beside the workload's anonymous label). derived: made
    from the row's other counts (a total, a share): in a CSV row where a count is written "<5", a derived
    cell would give it away by subtraction, so it is written as hidden too."""

    key: str
    label: str
    kind: str = "count"
    screen_only: bool = False
    derived: bool = False


@dataclass(frozen=True)
class Chart:
    """How to draw a figure. kind: bar (one series) | stacked (series stacked per row) | grouped (series
    side by side per row) | line (series as lines over the rows, e.g. months). x: the column naming each
    row; series: the columns drawn; unit: what the value axis counts (shown on the axis). reference:
    a value drawn as a dashed line across the chart with its label (the waiting threshold), or None."""

    kind: str
    x: str
    series: tuple[str, ...]
    unit: str = ""
    reference: float | None = None
    reference_label: str = ""


@dataclass
class Figure:
    """One statistic. key: its slug (the CSV's name, the page's anchor). rows: one tuple per row, in
    columns' order; counts are int, days/minutes/percent float or None (no value). scope: "team" when the
    page's team filter applies, "service" when it is the whole service's (the archive, dispatches).
    note: one or two sentences on what is counted (shown under the title, and the chart's text
    alternative begins with it). links: row index -> URL of the cases behind that row, for those allowed
    to see them (the waiting time's worst numbers). chart_exclude: rows the chart leaves out (the table
    keeps them): a remainder such as "Others" that would dwarf every other bar. guard_rows: the rows add
    up to a number another figure shows (the referrals by school to the referrals per month), so when
    one row's count is written "<5" in a CSV, the next smallest is hidden too."""

    key: str
    title: str
    columns: list[Column]
    rows: list[tuple]
    chart: Chart | None
    note: str = ""
    scope: str = "team"
    links: dict[int, str] = field(default_factory=dict)
    chart_exclude: frozenset[int] = frozenset()
    guard_rows: bool = False

    def column(self, key: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == key)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0..1) as spreadsheets' PERCENTILE.INC computes it: linear between the two
    nearest ranks, so the median of 10 and 20 is 15. None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = p * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def team_clause(team_id: int | None) -> ColumnElement[bool]:
    """Condition on Case: its handler is a member of the team now. A handler who changes team takes
    their cases along, old ones too: the figures answer "how is the work of this team", as it is made up
    today. No team: every case."""
    if team_id is None:
        return Case.id.is_not(None)
    return exists().where(group_member.c.group_id == team_id, group_member.c.user_id == Case.handler_id)


class month_key(FunctionElement):
    """'YYYY-MM' of the Oslo month a UTC datetime column falls in. PostgreSQL converts exactly; SQLite
    adds Oslo's offset at month starts (+2 h from April to October, +1 h otherwise), which is exact for
    months because summer time never begins or ends on a month's first day."""

    type = String()
    inherit_cache = True


@compiles(month_key)
def _month_key_default(element, compiler, **kw):
    col = compiler.process(list(element.clauses)[0], **kw)
    return (f"CASE WHEN strftime('%m', {col}, '+2 hours') BETWEEN '04' AND '10' "
            f"THEN strftime('%Y-%m', {col}, '+2 hours') ELSE strftime('%Y-%m', {col}, '+1 hours') END")


@compiles(month_key, "postgresql")
def _month_key_pg(element, compiler, **kw):
    col = compiler.process(list(element.clauses)[0], **kw)
    return f"to_char(({col}) AT TIME ZONE 'Europe/Oslo', 'YYYY-MM')"


class day_month_key(FunctionElement):
    """'YYYY-MM' of a date column."""

    type = String()
    inherit_cache = True


@compiles(day_month_key)
def _day_month_default(element, compiler, **kw):
    return f"strftime('%Y-%m', {compiler.process(list(element.clauses)[0], **kw)})"


@compiles(day_month_key, "postgresql")
def _day_month_pg(element, compiler, **kw):
    return f"to_char({compiler.process(list(element.clauses)[0], **kw)}, 'YYYY-MM')"


class days_between(FunctionElement):
    """Whole days from the second date column to the first (later - earlier), as an integer."""

    type = Integer()
    inherit_cache = True


@compiles(days_between)
def _days_default(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


@compiles(days_between, "postgresql")
def _days_pg(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"(({later})::date - ({earlier})::date)"


class seconds_between(FunctionElement):
    """Seconds from the second UTC datetime column to the first (later - earlier), as a float."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between)
def _seconds_default(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_pg(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM (({later}) - ({earlier})))"

