"""Security headers, error pages, expired sessions under htmx, languages."""
from __future__ import annotations

import subprocess
import sys

import pytest
from babel.messages.pofile import read_po

from ppt_web.admin import service as admin
from ppt_web.i18n import SOURCE

from .conftest import ROOT, sign_in, user


def test_security_headers_on_every_page(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"


def test_session_cookie_flags(app, client):
    response = sign_in(client, "leiar")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = app.test_client().post("/login", data={"username": "leiar", "password": "demo-passord"},
                         base_url="https://localhost")
    assert "Secure" in secure.headers["Set-Cookie"]


def test_no_inline_script_or_style_in_pages(login_as):
    """The CSP forbids inline code: the pages must not need it."""
    client = login_as("konsulent")
    for url in ("/", "/admin/users", "/admin/groups", "/admin/roles", "/activity-log/", "/profile"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>" not in html and "style=" not in html and " onclick=" not in html, url
        assert "hx-on" not in html, url


def test_friendly_404_without_trace(login_as):
    response = login_as("leiar").get("/no/such/page")
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and "Traceback" not in html
    assert "Fann ikkje" in html or "finn ikkje" in html.lower() or "fann" in html.lower()


@pytest.mark.app_config(PROPAGATE_EXCEPTIONS=False)
def test_friendly_500_in_nynorsk(app, client):
    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    sign_in(client, "leiar")

    response = client.get("/boom")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internals" not in html and "Traceback" not in html
    assert "Noko gjekk gale" in html or "gjekk gale" in html


def test_expired_session_under_htmx_redirects_the_whole_page(app):
    browser = app.test_client()
    sign_in(browser, "konsulent")
    with app.app_context():
        admin.set_user_active(user("superbrukar"), user("konsulent").id, False)
    response = browser.post("/admin/users/1/roles", data={"role_id": 1}, headers={"HX-Request": "true"})
    assert response.status_code == 401 and response.headers["HX-Redirect"] == "/login"
    assert b"<form" not in response.data


def test_nynorsk_by_default_and_bokmal_or_english_per_user(app, login_as):
    assert "Logg inn" in app.test_client().get("/login").get_data(as_text=True)
    client = login_as("radgjevar1")
    assert "Varsel" in client.get("/").get_data(as_text=True)
    client.post("/profile", data={"locale": "en"})
    assert "Notifications" in client.get("/").get_data(as_text=True)
    client.post("/profile", data={"locale": "nb"})
    assert "Velkommen" in client.get("/").get_data(as_text=True)


def test_each_user_reads_labels_and_texts_in_their_own_language(app):
    """Translations are looked up once per request and labels once per language (i18n.catalog,
    i18n.labels): one user's English never reaches another's Nynorsk page in the same process,
    and force_locale (the notification mails) renders its own language inside a request."""
    english, nynorsk = app.test_client(), app.test_client()
    sign_in(english, "konsulent")
    english.post("/profile", data={"locale": "en"})
    sign_in(nynorsk, "leiar")
    for _ in range(2):  # each language served from the caches the other just filled
        en = english.get("/archive-log/").get_data(as_text=True)
        nn = nynorsk.get("/archive-log/").get_data(as_text=True)
        assert "In progress" in en and "Archive log" in en and "Under arbeid" not in en
        assert "Under arbeid" in nn and "In progress" not in nn
    from flask import render_template_string
    from flask_babel import force_locale

    page = '{{ _("In progress") }} / {{ job_status_labels.done }}'
    with app.test_request_context():
        assert render_template_string(page) == "Under arbeid / Utført"
        with force_locale("en"):
            assert render_template_string(page) == "In progress / Done"
        assert render_template_string(page) == "Under arbeid / Utført"


def test_every_string_is_translated_to_nynorsk_and_bokmal(tmp_path):
    """A new user-facing string without nn and nb translations fails the build."""
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
                    "-k", "_l", "-k", "lazy_gettext", "-o", str(pot), "--no-location", "."],
                   cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as f:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    for lang in ("nn", "nb"):
        with (SOURCE / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
            catalog = read_po(f)
        done = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog
                if m.id and (all(m.string) if isinstance(m.string, tuple) else m.string) and not m.fuzzy}
        assert sorted(wanted - done) == [], lang


@pytest.mark.parametrize("proxies, secure", [(0, False), (1, True)])
def test_https_behind_a_trusted_proxy_gives_a_secure_session_cookie_and_a_spoofed_header_does_not(
        app, proxies, secure):
    """Behind nginx (PPT_TRUSTED_PROXIES=1) the proxy's X-Forwarded-Proto: https makes the session
    cookie Secure; with no proxy trusted, a client sending that header changes nothing."""
    from ppt_web import create_app

    other = create_app({**app.config, "PPT_TRUSTED_PROXIES": proxies})
    response = other.test_client().post("/login", data={"username": "konsulent", "password": "demo-passord"},
                                         headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.1.2.3"})
    assert response.status_code == 302
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("ppt_session="))
    assert ("Secure" in cookie) == secure


@pytest.mark.app_config(PROPAGATE_EXCEPTIONS=False)
def test_a_nul_character_in_a_field_or_the_address_is_refused_with_a_message(app, client, login_as):
    """PostgreSQL's text cannot hold a NUL character: a search, a filter or a sign-in that carried one was a
    500. Now it is refused with a message in the user's language, before anything looks it up."""
    said = "Førespurnaden hadde eit teikn som ikkje kan brukast (eit NUL-teikn)"
    refused = client.post("/login", data={"username": "konsu\x00lent", "password": "x"})
    assert refused.status_code == 400 and said in refused.get_data(as_text=True)
    consultant = login_as("konsulent")
    for response in (consultant.post("/search/", data={"q": "An\x00na"}),
                     consultant.get("/archive-log/?client=An%00na"),
                     consultant.get("/archive-log/?status%00=failed")):
        assert response.status_code == 400 and said in response.get_data(as_text=True)
    admin_browser = login_as("admin")
    response = admin_browser.get("/activity-log/?actor=ko%00n")
    assert response.status_code == 400 and said in response.get_data(as_text=True)
    assert consultant.post("/search/", data={"q": "Anna"}).status_code == 200  # the same without it


def test_the_login_as_fixture_switches_user_on_a_client_signed_in_already(login_as):
    """/login sends a signed-in browser on as who it is; the fixture starts the client anew, or a test that
    signs in a second user would go on as the first (eleven tests did, unnoticed)."""
    from flask_login import current_user

    seen = []
    for username in ("radgjevar2", "konsulent"):
        client = login_as(username)
        with client:
            client.get("/")
            seen.append(current_user.username)
    assert seen == ["radgjevar2", "konsulent"]
