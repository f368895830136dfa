"""A figure's cells as text: on the page (exact, the reader's number format) and in its CSV (UTF-8 with
BOM, semicolons, CRLF, small counts as "<5"), so that both show one table the same way."""
from __future__ import annotations

import csv
import io
import math
import re
from datetime import date

from flask_babel import format_date, format_decimal, get_locale
from flask_babel import gettext as _

from .figures import SMALL, Column, Figure, Period

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


def number_text(value, kind: str) -> str:
    """A value on screen (and in a chart): counts and days whole, minutes and percent with one decimal,
    in the reader's format (a comma in Norwegian)."""
    if value is None:
        return NOTHING
    if kind in ("count", "days"):
        return format_decimal(whole(value), format="#,##0")
    return format_decimal(value, format="#,##0.#")


def cell_text(value, column: Column) -> str:
    """One cell of the on-screen table: exact."""
    if column.kind in ("label", "text"):
        return key_text(value)
    return number_text(value, column.kind)


def _csv_decimal(value: float, comma: bool) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return text.replace(".", ",") if comma else text


def csv_cell(value, column: Column, comma: bool) -> str:
    """One cell of the CSV: a count of 1..4 is "<5" (0 stays 0); decimals with the reader's separator and
    no thousands separator (so a spreadsheet reads a number); no value is an empty cell."""
    if column.kind in ("label", "text"):
        return "" if value is None else key_text(value)
    if value is None:
        return ""
    if column.kind == "count":
        count = whole(value)
        return MASKED if 0 < count < SMALL else str(count)
    if column.kind == "days":
        return str(whole(value))
    return _csv_decimal(float(value), comma)


def exported_columns(figure: Figure) -> list[tuple[int, Column]]:
    """The columns a CSV has: every one but the screen-only ones (a handler's name)."""
    return [(i, c) for i, c in enumerate(figure.columns) if not c.screen_only]


def csv_text(figure: Figure) -> str:
    """The figure's table as CSV text (without the BOM): a header of the column labels, then its rows."""
    comma = str(get_locale() or "nn").split("_")[0] in ("nn", "nb", "no")
    columns = exported_columns(figure)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([str(c.label) for _, c in columns])
    for row in figure.rows:
        writer.writerow([csv_cell(row[i], c, comma) for i, c in columns])
    return out.getvalue()


def csv_bytes(figure: Figure) -> bytes:
    """UTF-8 with a BOM, so Excel in Norwegian opens it with the letters right and the columns split."""
    return ("\ufeff" + csv_text(figure)).encode("utf-8")


def csv_filename(figure: Figure, period: Period) -> str:
    """statistikk-<key>-<first>-<last>.csv: the figure and its period, nothing about a person."""
    key = re.sub(r"[^a-z0-9-]", "", figure.key.lower()) or "figure"
    return f"statistikk-{key}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
