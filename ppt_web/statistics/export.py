"""A figure's cells as text: on the page (exact, the reader's number format) and in its CSV (UTF-8 with
BOM, semicolons, CRLF, small counts as "<5"), so that both show one table the same way."""
from __future__ import annotations

import csv
import io
import math
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from babel.numbers import get_decimal_symbol, get_group_symbol
from flask_babel import format_date, format_decimal, get_locale
from flask_babel import gettext as _

from .figures import SMALL, Column, Figure, Filters

NOTHING = "–"
MASKED = f"<{SMALL}"

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")


def key_text(value, short: bool = False) -> str:
    """A row's naming value as the reader sees it: '2026-03' the month's name and year in their language
    ('mars 2026', short 'mar 26'), '2026-Q1' '1. kv. 2026', '2026-W05' 'week 5, 2026'; anything else as
    it is (labels are translated already)."""
    if value is None:
        return NOTHING
    text = str(value)
    if (found := _MONTH.fullmatch(text)):
        return format_date(date(int(found.group(1)), int(found.group(2)), 1), "LLL yy" if short else "LLLL yyyy")
    if (found := _QUARTER.fullmatch(text)):
        return _("Q%(number)s %(year)s", number=found.group(2), year=found.group(1))
    if (found := _WEEK.fullmatch(text)):
        return _("Week %(week)s, %(year)s", week=int(found.group(2)), year=found.group(1))
    return text


def whole(value: float) -> int:
    """Half up, not to the even number: 2.5 days is 3 days."""
    return math.floor(value + 0.5)


def one_decimal(value: float) -> Decimal:
    """Half up to one decimal (66.75 is 66.8, 58.5 stays 58.5, 496.0 is 496), as the page and the CSV
    both show it."""
    return Decimal(repr(float(value))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@cache
def _separators(locale: str) -> dict[int, str]:
    """The locale's group and decimal signs, as a str.translate table from Python's "," and "."."""
    return {ord(","): get_group_symbol(locale), ord("."): get_decimal_symbol(locale)}


def number_text(value, kind: str) -> str:
    """A value on screen (and in a chart): counts whole; days, minutes and percent with one decimal at most
    (none when it is 0), in the reader's format (a comma in Norwegian). What Babel's "#,##0" and
    "#,##0.#" give, without its pattern parsing per cell (a page has some 800 cells)."""
    if value is None:
        return NOTHING
    if value < 0:  # Babel's minus sign differs by locale; no figure has negative values, but be exact
        return format_decimal(whole(value) if kind == "count" else one_decimal(value),
                              format="#,##0" if kind == "count" else "#,##0.#")
    text = f"{whole(value):,}" if kind == "count" else f"{one_decimal(value):,.1f}".removesuffix(".0")
    return text.translate(_separators(str(get_locale())))


def cell_text(value, column: Column) -> str:
    """One cell of the on-screen table: exact."""
    if column.kind in ("label", "text"):
        return key_text(value)
    return number_text(value, column.kind)


def _csv_decimal(value: float, comma: bool) -> str:
    text = format(one_decimal(value), "f")
    text = text[:-2] if text.endswith(".0") else text
    return text.replace(".", ",") if comma else text


# A spreadsheet runs a cell that begins with one of these as a formula (=HYPERLINK(...) leaks, +cmd runs).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: a leading apostrophe before what would start a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _small(value) -> bool:
    return value is not None and 0 < whole(value) < SMALL


def csv_cell(value, column: Column, comma: bool) -> str:
    """One cell of the CSV: a count of 1..4 is "<5" (0 stays 0); decimals with the reader's separator and
    no thousands separator (so a spreadsheet reads a number), days with one decimal at most as on the page;
    no value is an empty cell; a text that a spreadsheet would run as a formula begins with an apostrophe."""
    if column.kind in ("label", "text"):
        return "" if value is None else _text_cell(key_text(value))
    if value is None:
        return ""
    if column.kind == "count":
        count = whole(value)
        return MASKED if 0 < count < SMALL else str(count)
    return _csv_decimal(float(value), comma)


def hidden_cells(figure: Figure) -> set[tuple[int, int]]:
    """(row, column) cells a CSV writes as hidden, so that no "<5" can be worked out from the rest:
    - with guard_rows, when exactly one row's count in a count column is "<5", the next smallest non-zero
      count of that column (the rows add up to a number shown elsewhere, so one hidden row is a sum away);
    - every derived cell (a total, a share) of a row with a "<5" or a hidden count."""
    counts = [i for i, c in enumerate(figure.columns) if c.kind == "count" and not c.derived and not c.screen_only]
    hidden: set[tuple[int, int]] = set()
    if figure.guard_rows:
        for c in counts:
            small = [r for r, row in enumerate(figure.rows) if _small(row[c])]
            others = [(whole(row[c]), r) for r, row in enumerate(figure.rows)
                      if row[c] is not None and whole(row[c]) >= SMALL]
            if len(small) == 1 and others:
                hidden.add((min(others)[1], c))
    derived = [i for i, c in enumerate(figure.columns) if c.derived]
    for r, row in enumerate(figure.rows):
        if any(_small(row[c]) or (r, c) in hidden for c in counts):
            hidden.update((r, c) for c in derived)
    return hidden


def exported_columns(figure: Figure) -> list[tuple[int, Column]]:
    """The columns a CSV has: every one but the screen-only ones (a handler's name)."""
    return [(i, c) for i, c in enumerate(figure.columns) if not c.screen_only]


def csv_text(figure: Figure) -> str:
    """The figure's table as CSV text (without the BOM): a header of the column labels, then its rows."""
    comma = str(get_locale() or "nn").split("_")[0] in ("nn", "nb", "no")
    columns = exported_columns(figure)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([_text_cell(str(c.label)) for _, c in columns])
    hidden = hidden_cells(figure)
    word = _("hidden")
    for r, row in enumerate(figure.rows):
        writer.writerow([word if (r, i) in hidden else csv_cell(row[i], c, comma) for i, c in columns])
    return out.getvalue()


def csv_bytes(figure: Figure) -> bytes:
    """UTF-8 with a BOM, so Excel in Norwegian opens it with the letters right and the columns split."""
    return ("\ufeff" + csv_text(figure)).encode("utf-8")


def csv_filename(figure: Figure, f: Filters) -> str:
    """statistikk-<key>-<first>-<last>[-team<id>][-over<days>d].csv: the figure, its period, the team (its
    id) and, for the waiting time, the threshold; nothing about a person."""
    key = re.sub(r"[^a-z0-9-]", "", figure.key.lower()) or "figure"
    team = f"-team{f.team_id}" if f.team_id is not None else ""
    over = f"-over{f.threshold_days}d" if figure.key == "waiting" else ""
    return f"statistikk-{key}-{f.period.first.isoformat()}-{f.period.last.isoformat()}{team}{over}.csv"
