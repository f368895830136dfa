"""National ids, organisation numbers, dates and required fields."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from ppt_web import validation
from ppt_web.errors import Invalid
from ppt_web.generate import national_id, org_number

pytestmark = pytest.mark.one_database  # engine-independent: CI runs it on one database


@pytest.mark.parametrize("number", [national_id(date(2014, 5, 17), 600), national_id(date(1999, 12, 31), 100),
                                    "41018036736"])  # the last one: a D-number (day + 40)
def test_valid_national_ids(number):
    assert validation.national_id(number) == number
    assert validation.national_id(f" {number[:6]} {number[6:]} ") == number
    assert validation.national_id(f"{number[:6]}-{number[6:]}") == number  # as it is often written


@pytest.mark.parametrize("number, word", [
    ("1234567890", "11"), ("123456789012", "11"), ("1501650056a", "siffer"), ("", "påkravd"),
    ("15076500566", "kontrollsiffer"), ("32136500588", "gyldig"),
])
def test_invalid_national_ids(app, number, word):
    with app.test_request_context():
        with pytest.raises(Invalid) as caught:
            validation.national_id(number)
        assert word in str(caught.value.message).lower()
        assert caught.value.details["field"] == "national_id"


def test_d_number_gives_the_right_birth_date():
    assert validation.birth_date("41018036736") == date(1980, 1, 1)


def test_org_numbers(app):
    good = org_number(1234)
    assert validation.org_number(good) == good
    with app.test_request_context():
        for bad in ("12345678", "1234567890", "abcdefghi", good[:-1] + str((int(good[-1]) + 1) % 10)):
            with pytest.raises(Invalid):
                validation.org_number(bad)


def test_future_dates_are_refused(app):
    today = date(2026, 11, 27)
    assert validation.not_in_future(today, "document_date", today) == today
    with app.test_request_context():
        with pytest.raises(Invalid) as caught:
            validation.not_in_future(today + timedelta(days=1), "document_date", today)
        assert caught.value.details["field"] == "document_date"


def test_required_text_trims_and_limits(app):
    assert validation.required_text("  Ei   sak  ", "title") == "Ei sak"
    with app.test_request_context():
        with pytest.raises(Invalid):
            validation.required_text("   ", "title")
        with pytest.raises(Invalid):
            validation.required_text("x" * 301, "title")
