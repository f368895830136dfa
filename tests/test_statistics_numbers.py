"""The statistics' numbers are written as Babel writes them in the reader's language (a space between
thousands and a decimal comma in Norwegian), whatever shortcut the page takes to write 800 of them."""
from __future__ import annotations

import pytest
from flask_babel import force_locale, format_decimal

from ppt_web.statistics.export import number_text, one_decimal, whole

pytestmark = pytest.mark.one_database  # no database involved

VALUES = [0, 1, 4, 999, 1000, 1079, 123456, 1234567, 0.04, 0.05, 0.1, 2.5, 58.5, 66.75, 496.0, 1234.56,
          99999.95, -3, -2.25]


@pytest.mark.parametrize("locale", ["nn", "nb", "en"])
def test_numbers_are_written_as_babel_writes_them(app, locale):
    with app.test_request_context(), force_locale(locale):
        for value in VALUES:
            assert number_text(value, "count") == format_decimal(whole(value), format="#,##0")
            for kind in ("days", "minutes", "percent"):
                assert number_text(value, kind) == format_decimal(one_decimal(value), format="#,##0.#")
        if locale == "nn":
            assert number_text(1079, "count") == "1\u00a0079" and number_text(58.5, "days") == "58,5"
