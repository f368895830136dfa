"""Forms speak the user's language: WTForms' own messages through our catalog, dates typed and shown as
dd.mm.yyyy whatever the browser's language."""
from __future__ import annotations

import importlib
import importlib.resources
import pkgutil
from datetime import date

import flask_wtf
import pytest
import wtforms
from babel.support import NullTranslations
from flask_babel import force_locale
from werkzeug.datastructures import MultiDict

import ppt_web
from ppt_web import formtools, i18n
from ppt_web.clock import today as oslo_today
from ppt_web.extensions import db
from ppt_web.models import JournalPost

from . import builders
from .conftest import user

ENGLISH_BROWSER = {"Accept-Language": "en-US,en;q=0.9"}
REQUIRED = "This field is required."


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _app_forms(base):
    for module in pkgutil.walk_packages(ppt_web.__path__, "ppt_web."):
        if ".reference." not in module.name and not module.name.endswith(("launcher", "pdfchild")):
            importlib.import_module(module.name)
    return [c for c in _subclasses(base) if c.__module__.startswith("ppt_web.")]


def test_every_form_of_the_app_gets_its_messages_from_our_catalog():
    """A form made on Flask-WTF's class directly would answer "This field is required." in English."""
    forms = _app_forms(flask_wtf.FlaskForm)
    assert len(forms) > 20
    astray = [f"{c.__module__}.{c.__name__}" for c in forms if not issubclass(c, formtools.FlaskForm)]
    assert astray == [], "derive these from ppt_web.formtools.FlaskForm"
    subforms = [c for c in _app_forms(wtforms.Form) if not issubclass(c, flask_wtf.FlaskForm)]
    astray = [f"{c.__module__}.{c.__name__}" for c in subforms if not issubclass(c, formtools.SubForm)]
    assert astray == [], "derive these from ppt_web.formtools.SubForm"


def test_a_required_field_speaks_nynorsk_to_a_nynorsk_user_in_an_english_browser(app, login_as):
    """The user's locale decides, not the browser's Accept-Language."""
    client = login_as("radgjevar1")
    response = client.post("/cases/new", data={"kind": "person", "category": "referral", "title": ""},
                           headers=ENGLISH_BROWSER)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="title-err"' in html
    assert REQUIRED not in html and "Dette feltet må fyllast ut." in html


def test_an_english_user_gets_wtforms_messages_in_english(app, login_as):
    with app.app_context():
        user("radgjevar1").locale = "en"
        db.session.commit()
    client = login_as("radgjevar1")
    html = client.post("/cases/new", data={"kind": "person", "title": ""}).get_data(as_text=True)
    assert REQUIRED in html


class _Shouting(NullTranslations):
    """A catalog that tells its translations apart: every WTForms message comes back marked."""

    def ugettext(self, message):
        return f"«{message}»" if message in formtools.WTFORMS_MESSAGES else message

    def ungettext(self, singular, plural, n):
        return f"«{singular if n == 1 else plural}»"


def test_wtforms_messages_and_plurals_are_looked_up_in_the_users_catalog(app, monkeypatch):
    """Also the plural ones (Length) and those of a form inside a form (a correspondent's fields)."""
    monkeypatch.setattr(i18n, "catalog", lambda: _Shouting())
    from ppt_web.cases.forms import CaseForm, PostForm

    with app.test_request_context(method="POST"):
        form = CaseForm(formdata=MultiDict({"title": "x" * 301}))
        form.validate()
        assert form.title.errors == ["«Field cannot be longer than 300 characters.»"]
        form = PostForm(formdata=MultiDict({"correspondents-0-postal_code": "1" * 11}))
        form.validate()
        assert form.correspondents[0].postal_code.errors == ["«Field cannot be longer than 10 characters.»"]


def test_the_listed_wtforms_messages_are_the_libraries_own():
    """WTFORMS_MESSAGES is for extraction: a message WTForms no longer writes would never be looked up."""
    pot = (importlib.resources.files("wtforms") / "locale" / "wtforms.pot").read_text()
    for message in formtools.WTFORMS_MESSAGES:
        assert f'msgid "{message}"' in pot, message
    for singular, plural in formtools.WTFORMS_PLURALS:
        assert f'msgid "{singular}"' in pot and f'msgid_plural "{plural}"' in pot


@pytest.mark.parametrize("typed, day", [
    ("24.12.2026", date(2026, 12, 24)), ("5.1.2026", date(2026, 1, 5)), (" 05.01.2026 ", date(2026, 1, 5)),
    ("2026-12-24", date(2026, 12, 24))])
def test_a_date_is_read_as_dd_mm_yyyy(app, typed, day):
    from ppt_web.postreg.forms import TransferForm

    with app.test_request_context(method="POST", headers=ENGLISH_BROWSER):
        form = TransferForm(formdata=MultiDict({"document_date": typed}))
        form.validate()
        assert form.document_date.data == day and form.document_date.errors == []


@pytest.mark.parametrize("typed", ["12/24/2026", "24.12.26", "i går"])
def test_a_date_in_another_form_is_refused_with_the_format(app, typed):
    from ppt_web.postreg.forms import TransferForm

    with app.test_request_context(method="POST"), force_locale("en"):
        form = TransferForm(formdata=MultiDict({"document_date": typed}))
        assert not form.validate()
        assert form.document_date.errors == ["Write the date as dd.mm.yyyy, for example 24.12.2026."]


@pytest.mark.parametrize("typed", ["31.02.2026", "29.2.2027", "2026-13-01", "00.01.2026"])
def test_a_date_in_the_right_form_that_names_no_day_says_so(app, typed):
    """The format was right: telling the user to write dd.mm.yyyy would not help."""
    from ppt_web.postreg.forms import TransferForm

    with app.test_request_context(method="POST"), force_locale("en"):
        form = TransferForm(formdata=MultiDict({"document_date": typed}))
        assert not form.validate()
        assert form.document_date.errors == [f"{typed} is not a date."]


def _draft(app) -> int:
    with app.app_context():
        return builders.post(builders.case(), title="Notat").id


def test_a_post_form_shows_and_takes_dates_as_dd_mm_yyyy_in_an_english_browser(app, login_as):
    post_id = _draft(app)
    client = login_as("radgjevar1")
    page = client.get(f"/posts/{post_id}/edit", headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert 'type="date"' not in page
    field = page[page.index('id="document_date"') - 200:page.index('id="document_date"') + 400]
    assert 'type="text"' in field and 'inputmode="numeric"' in field
    today = oslo_today()
    assert f'value="{today.strftime("%d.%m.%Y")}"' in page  # the builder's document date, as dd.mm.yyyy
    response = client.post(f"/posts/{post_id}/edit", data={"post_type": "N", "title": "Notat",
                                                         "document_date": "5.1.2026"}, headers=ENGLISH_BROWSER)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(JournalPost, post_id).document_date == date(2026, 1, 5)


def test_a_wrong_date_on_the_page_gives_a_message_and_changes_nothing(app, login_as):
    post_id = _draft(app)
    with app.app_context():
        user("radgjevar1").locale = "en"
        db.session.commit()
        before = db.session.get(JournalPost, post_id).document_date
    client = login_as("radgjevar1")
    response = client.post(f"/posts/{post_id}/edit", data={"post_type": "N", "title": "Notat",
                                                         "document_date": "31.02.2026"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="document_date-err"' in html and "31.02.2026 is not a date." in html
    assert 'value="31.02.2026"' in html  # what was typed stays, to be put right
    assert "Not a valid date value." not in html
    with app.app_context():
        assert db.session.get(JournalPost, post_id).document_date == before


def test_a_wrong_date_speaks_the_nynorsk_users_language(app, login_as):
    """Depends on the Nynorsk catalog: the message must not be the English source."""
    post_id = _draft(app)
    client = login_as("radgjevar1")
    response = client.post(f"/posts/{post_id}/edit", data={"post_type": "N", "title": "Notat",
                                                         "document_date": "31.02.2026"}, headers=ENGLISH_BROWSER)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="document_date-err"' in html
    assert "Write the date as" not in html and "Not a valid date value." not in html
    assert "is not a date." not in html  # "%(text)s is not a date." in Nynorsk


def test_the_activity_log_filters_by_dates_typed_as_dd_mm_yyyy(app, login_as):
    client = login_as("konsulent")
    page = client.get("/activity-log/?date_from=01.01.2001&date_to=31.12.2001", headers=ENGLISH_BROWSER)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'type="date"' not in html
    assert 'value="01.01.2001"' in html and 'value="31.12.2001"' in html
    assert "<tbody>" in html and 'colspan="6"' in html  # "No rows match."
    bad = client.get("/activity-log/?date_from=31.02.2026")
    assert bad.status_code == 200


@pytest.mark.parametrize("log", ["/activity-log/", "/archive-log/"])
def test_a_date_filter_that_names_no_day_says_so_and_keeps_what_was_typed(app, login_as, log):
    with app.app_context():
        user("konsulent").locale = "en"
        db.session.commit()
    client = login_as("konsulent")
    for query, field, message in (("date_from=31.02.2026", "date_from", "31.02.2026 is not a date."),
                                  ("date_to=abc", "date_to", "Write the date as dd.mm.yyyy"),
                                  ("date_from=02.01.2026&date_to=01.01.2026", "date_to",
                                   "The first date is after the last.")):
        page = client.get(f"{log}?{query}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200, query
        assert f'id="{field}-problem"' in html and message in html, query
        typed = query.split(f"{field}=")[1].split("&")[0]
        assert f'value="{typed}"' in html, query  # kept, to be put right
    good = client.get(f"{log}?date_from=01.01.2026&date_to=31.12.2026").get_data(as_text=True)
    assert "-problem" not in good


def test_the_day_a_letter_went_on_paper_is_typed_as_dd_mm_yyyy(app, login_as):
    from ppt_web.clock import today

    from .test_expedition import fresh, letter

    with app.app_context():
        post_id = letter().id
    client = login_as("radgjevar1")
    page = client.get(f"/posts/{post_id}").get_data(as_text=True)
    assert 'id="paper-sent-on"' in page and f'value="{today().strftime("%d.%m.%Y")}"' in page
    response = client.post(f"/posts/{post_id}/sent-on-paper", data={"sent_on": today().strftime("%d.%m.%Y")})
    assert response.status_code == 302
    with app.app_context():
        assert fresh(db.session.get(JournalPost, post_id)).expedited_on == today()
