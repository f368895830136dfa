"""What every signed-in page does before and around its own rows: the session cookie opened once per process,
template URLs built once, dates written without strftime, the start page's list headings. Each must give
what the framework would, request after request."""
from __future__ import annotations

import enum
import random
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import render_template_string

from ppt_web import security
from ppt_web.clock import OSLO
from ppt_web.i18n import format_oslo

from .conftest import sign_in


def _opened(app) -> dict:
    return app.session_interface.opened


def test_a_kept_session_cookie_still_runs_out_with_the_session_lifetime(app, client, monkeypatch):
    """The cookie's data is kept once its signature was checked, but its age is checked on every request:
    past the session lifetime it signs no one in, as Flask's own check would refuse it."""
    assert sign_in(client, "konsulent").status_code == 302
    assert client.get("/profile").status_code == 200
    assert client.get("/profile").status_code == 200
    assert _opened(app), "the cookie was kept"
    lifetime = app.permanent_session_lifetime.total_seconds()
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + lifetime + 5)
    response = client.get("/profile")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    monkeypatch.setattr(time, "time", lambda: now - 60)  # signed "in the future": refused as well
    assert client.get("/profile").status_code == 302


def test_a_changed_or_foreign_session_cookie_is_refused_though_the_real_one_was_kept(app, client):
    assert sign_in(client, "konsulent").status_code == 302
    assert client.get("/profile").status_code == 200
    cookie = client.get_cookie("ppt_session")
    assert cookie is not None
    payload, _, signature = cookie.value.rpartition(".")
    forged = f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    other = app.test_client()
    other.set_cookie("ppt_session", forged)
    response = other.get("/profile")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    app.secret_key = "another key"  # a key rotated without a fallback: the kept cookie is not used
    response = client.get("/profile")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_session_with_flashed_messages_is_not_kept_and_its_messages_show_once(app, client):
    """Only plain values are kept: a session holding a list (flashed messages) is opened each time, so a
    message shown once is gone on the next page."""
    assert sign_in(client, "konsulent").status_code == 302
    with client.session_transaction() as session:
        session["_flashes"] = [("info", "Lagra.")]
    assert "Lagra." in client.get("/profile").get_data(as_text=True)
    assert "Lagra." not in client.get("/profile").get_data(as_text=True)
    assert not any("_flashes" in data for _signed_at, data in _opened(app).values())


def test_the_opened_cookies_are_bounded(app, client, monkeypatch):
    monkeypatch.setattr(security, "OPENED_COOKIES", 2)
    for _ in range(3):  # a new sign-in is a new cookie each time
        client.delete_cookie("ppt_session")
        assert sign_in(client, "konsulent").status_code == 302
        assert client.get("/profile").status_code == 200
    assert 1 <= len(_opened(app)) <= 2


class _OldStyle(str, enum.Enum):  # noqa: UP042 - the point: equal to its string, written otherwise
    FAILED = "failed"


class _New(enum.StrEnum):
    FAILED = "failed"


def test_template_urls_are_the_ones_flask_builds_under_each_script_root(app):
    """Kept per process, a template's URL is still the one url_for builds for that request: under another
    script root (an app mounted under a prefix), and for a value equal to a kept one but written otherwise."""
    page = "{{ url_for('archive.log', status=s) }}|{{ url_for('cases.post', post_id=7) }}|" \
           "{{ url_for('static', filename='css/app.css') }}|{{ url_for('archive.log', status=s, _anchor='x') }}"
    for root in ("", "/ppt", ""):
        for value in ("failed", _New.FAILED, _OldStyle.FAILED, "failed"):
            with app.test_request_context("/", base_url=f"http://localhost{root}/"):
                shown = render_template_string(page, s=value)
                expected = "|".join([app.url_for("archive.log", status=value), app.url_for("cases.post", post_id=7),
                                     app.url_for("static", filename="css/app.css"),
                                     app.url_for("archive.log", status=value, _anchor="x")])
                assert shown == expected.replace("&", "&amp;"), (root, value)
                assert shown.startswith(f"{root}/")


@pytest.mark.parametrize("date_only", [False, True])
def test_dates_are_written_as_strftime_writes_them(date_only):
    def by_strftime(value):
        if not isinstance(value, datetime):
            return value.strftime("%d.%m.%Y")
        return value.astimezone(OSLO).strftime("%d.%m.%Y" if date_only else "%d.%m.%Y %H:%M")

    pick = random.Random(20)
    values: list = [datetime(2026, 3, 29, 0, 59, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
                    datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
                    date(999, 1, 1), date(2026, 1, 9)]
    for _ in range(2000):
        moment = datetime(1900, 1, 1, tzinfo=UTC) + timedelta(seconds=pick.randrange(0, 200 * 365 * 86400))
        values += [moment, moment.astimezone(OSLO), moment.date()]
    assert [format_oslo(v, date_only) for v in values] == [by_strftime(v) for v in values]
    assert format_oslo(None, date_only) == ""


def test_the_start_page_list_heading_escapes_and_translates_as_the_macro_did(app):
    """list_head and none_line (web.start_list_head, start_none_line) as the start page's panels call them:
    each value escaped, the link text and the "shown" line in the reader's language."""
    page = ('{% from "main/_start_macros.html" import list_head, none_line %}'
            '{{ list_head("a", title, 12, more_url="/x?a=1&b=2") }}|{{ list_head("b", "T", 12, shown=5) }}|'
            '{{ list_head("c", "T", 3, shown=5) }}|{{ list_head("d", "T", 0, "/y", more_text="<i>") }}|'
            '{{ none_line("e") }}')
    with app.test_request_context("/"):
        shown = render_template_string(page, title="<b>&")
    assert shown == (
        '<h3 id="a-head">&lt;b&gt;&amp; <span class="badge" data-total="12">12</span> <small>'
        '<a href="/x?a=1&amp;b=2" id="a-more">Vis alle</a></small></h3>|'
        '<h3 id="b-head">T <span class="badge" data-total="12">12</span> <small class="muted" id="b-shown" '
        'data-shown="5">5 av 12 vist</small></h3>|'
        '<h3 id="c-head">T <span class="badge" data-total="3">3</span></h3>|'
        '<h3 id="d-head">T <span class="badge" data-total="0">0</span> <small><a href="/y" id="d-more">&lt;i&gt;</a>'
        '</small></h3>|'
        '<p class="muted" id="e-none">Ingen.</p>')


def test_a_string_without_variables_is_written_as_jinja_s_gettext_writes_it(app):
    """`_` in templates (i18n.template_context) gives a string without variables back as it is, unless it holds
    a percent sign: that is formatted as Jinja's newstyle gettext formats every string (%% is one %)."""
    page = '{{ _("Start") }}|{{ _("100%% of <b>") }}|{{ _("%(n)s <i>", n="<b>") }}|{{ _("None.") }}'
    with app.test_request_context("/"):
        shown = render_template_string(page)
    assert shown == "Startside|100% of <b>|&lt;b&gt; <i>|Ingen."
