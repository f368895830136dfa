"""Letter templates and the letterhead: who may manage them, kept versions, copy/retire/reinstate, what a save
refuses (unknown fields, sandbox escapes, stale forms), and the letterhead screen; through the services and pages."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from ppt_web.errors import Conflict, Forbidden, Invalid, NotFound
from ppt_web.extensions import db
from ppt_web.letters import letterhead
from ppt_web.letters import templates as tpl
from ppt_web.models import DocumentTemplate, DocumentTemplateVersion, Letter, Setting

from . import builders
from .conftest import activity_rows, user

BODY = "<p>Til {{ klient.namn }}</p><p>{% if eining.namn %}Skule: {{ eining.namn }}{% endif %}</p>"


def data(**changes) -> tpl.TemplateData:
    values = {"name": "Innkalling til møte", "kind": "invitation", "post_type": "U",
              "default_title": "Innkalling", "legal_basis": "Offl. § 13", "show_national_id": False, "body": BODY}
    return tpl.TemplateData(**{**values, **changes})


def template_count() -> int:
    return db.session.scalar(select(func.count()).select_from(DocumentTemplate))


def version_count() -> int:
    return db.session.scalar(select(func.count()).select_from(DocumentTemplateVersion))


def png(width: int, height: int, noise: bool = False) -> bytes:
    picture = Image.effect_noise((width, height), 80).convert("RGB") if noise else Image.new("RGB", (width, height),
                                                                                              "navy")
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


# ------------------------------------------------------------------------------------------ the service


def test_each_save_is_a_kept_version_and_old_versions_stay_readable(ctx):
    """Version 1 at creation, one more per save that changes something; every version keeps all its fields."""
    admin = user("admin")
    made = tpl.create(admin, data())
    assert made.version == 1 and [v.number for v in made.versions] == [1]
    tpl.update(admin, made.id, data(body="<p>Kjære {{ klient.fornamn }}</p>", default_title="Ny tittel"), 1)
    tpl.update(admin, made.id, data(body="<p>Kjære {{ klient.fornamn }}</p>", default_title="Ny tittel",
                                    post_type="N", kind="note"), 2)
    assert made.version == 3 and version_count() == 3
    first = tpl.version(admin, made.id, 1)
    assert first.body == BODY and first.default_title == "Innkalling" and first.post_type.value == "U"
    second = tpl.version(admin, made.id, 2)
    assert second.body == "<p>Kjære {{ klient.fornamn }}</p>" and second.kind.value == "invitation"
    assert tpl.version(admin, made.id, 3).kind.value == "note"
    with pytest.raises(NotFound):
        tpl.version(admin, made.id, 4)
    assert [r.action for r in activity_rows() if r.action.startswith("template_")] == [
        "template_created", "template_changed", "template_changed"]
    assert "version 3" in activity_rows("template_changed")[-1].detail


def test_a_letter_made_from_version_1_keeps_its_text_when_the_template_is_edited(ctx):
    admin = user("admin")
    made = tpl.create(admin, data())
    first = made.versions[0]
    post = builders.post(builders.case(category="follow_up"), post_type="N", with_pdf=False, title="Brev")
    letter = Letter(post_id=post.id, template_version_id=first.id, body="<p>Til Ola</p>")
    db.session.add(letter)
    db.session.commit()
    tpl.update(admin, made.id, data(body="<p>Heilt ny tekst til {{ klient.namn }}</p>"), 1)
    db.session.expire_all()
    letter = db.session.get(Letter, letter.id)
    assert letter.body == "<p>Til Ola</p>"
    assert letter.template_version.number == 1 and letter.template_version.body == BODY
    assert db.session.get(DocumentTemplate, made.id).body == "<p>Heilt ny tekst til {{ klient.namn }}</p>"


def test_nothing_changed_is_refused_and_makes_no_version(ctx):
    made = tpl.create(user("admin"), data())
    with pytest.raises(Invalid):
        tpl.update(user("admin"), made.id, data(), 1)
    assert version_count() == 1 and db.session.get(DocumentTemplate, made.id).version == 1


def test_a_save_on_a_stale_form_is_a_conflict_naming_who_saved_meanwhile(ctx):
    made = tpl.create(user("admin"), data())
    tpl.update(user("superbrukar"), made.id, data(name="Innkalling (ny)"), 1)
    with pytest.raises(Conflict) as refused:
        tpl.update(user("admin"), made.id, data(default_title="Mi endring"), 1)
    assert "Sunniva Superbrukar" in str(refused.value.message)
    db.session.rollback()
    current = db.session.get(DocumentTemplate, made.id)
    assert current.version == 2 and current.default_title == "Innkalling" and version_count() == 2


def test_copy_starts_at_version_1_and_retire_hides_it_from_new_letters(ctx):
    admin = user("admin")
    source = tpl.create(admin, data())
    tpl.update(admin, source.id, data(body="<p>Versjon 2 {{ sak.nummer }}</p>"), 1)
    copied = tpl.copy(admin, source.id)
    assert copied.name == "Kopi av Innkalling til møte" and copied.version == 1 and copied.shipped_key is None
    assert copied.body == "<p>Versjon 2 {{ sak.nummer }}</p>" and [v.number for v in copied.versions] == [1]
    assert {t.id for t in tpl.active()} == {source.id, copied.id}
    tpl.retire(admin, source.id)
    assert [t.id for t in tpl.active()] == [copied.id]
    assert [t.id for t in tpl.listing(admin)] == [copied.id, source.id]  # retired last
    with pytest.raises(Invalid):
        tpl.retire(admin, source.id)
    db.session.rollback()
    tpl.reinstate(admin, source.id)
    assert {t.id for t in tpl.active()} == {source.id, copied.id}
    assert [r.action for r in activity_rows() if r.action in ("template_copied", "template_retired",
                                                               "template_reinstated")] == [
        "template_copied", "template_retired", "template_reinstated"]


@pytest.mark.parametrize("username", ["radgjevar1", "nestleiar", "sekretaer"])
def test_every_write_and_read_needs_manage_templates(ctx, username):
    made = tpl.create(user("admin"), data())
    actor = user(username)
    for call in (lambda: tpl.create(actor, data(name="Anna")), lambda: tpl.update(actor, made.id, data(name="B"), 1),
                 lambda: tpl.copy(actor, made.id), lambda: tpl.retire(actor, made.id),
                 lambda: tpl.listing(actor), lambda: tpl.get(actor, made.id), lambda: tpl.version(actor, made.id, 1),
                 lambda: letterhead.save(actor, name="X", address="", org_number="", phone="", email="")):
        with pytest.raises(Forbidden):
            call()
        db.session.rollback()
    assert template_count() == 1 and version_count() == 1 and not letterhead.saved()
    assert [t.id for t in tpl.active()] == [made.id]  # choosing a template needs no manage_templates


def test_an_unknown_field_is_refused_at_save_naming_it_and_nothing_is_kept(ctx):
    admin = user("admin")
    with pytest.raises(Invalid) as refused:
        tpl.create(admin, data(body="<p>{{ klient.skonummer }}</p>"))
    assert refused.value.details["field"] == "body" and "klient.skonummer" in str(refused.value.message)
    db.session.rollback()
    assert template_count() == 0 and version_count() == 0 and not activity_rows("template_created")
    made = tpl.create(admin, data())
    with pytest.raises(Invalid) as refused:
        tpl.update(admin, made.id, data(body="<p>{{ foresett.namn }}</p>"), 1)
    assert "foresett" in str(refused.value.message)
    db.session.rollback()
    assert db.session.get(DocumentTemplate, made.id).body == BODY and version_count() == 1


@pytest.mark.parametrize("body", [
    "{{ ''.__class__ }}",
    "{{ klient.__class__ }}",
    "{% include 'base.html' %}",
    "{{ klient.namn|safe }}",
    "{{ klient.namn.__class__.__mro__ }}",
    "{% set x = 1 %}",
    "{{ sak.nummer.upper() }}",
    "{% for c in ''.__class__.__subclasses__() %}{{ c }}{% endfor %}",
])
def test_sandbox_escapes_are_refused_at_save(ctx, body):
    with pytest.raises(Invalid) as refused:
        tpl.create(user("admin"), data(body=f"<p>{body}</p>"))
    assert refused.value.details["field"] == "body"
    db.session.rollback()
    assert template_count() == 0


def test_the_body_is_sanitized_before_it_is_kept(ctx):
    made = tpl.create(user("admin"), data(body='<p onclick="x()" style="color:white">Hei {{ klient.namn }}</p>'
                                                '<script>alert(1)</script><img src="https://spy.example/x.png">'))
    assert made.body == "<p>Hei {{ klient.namn }}</p>"
    assert made.versions[0].body == made.body


@pytest.mark.parametrize("changes, field", [
    ({"name": "x" * 201}, "name"),
    ({"name": "Innkalling\x07"}, "name"),
    ({"name": "Inn\nkalling"}, "name"),
    ({"name": "   "}, "name"),
    ({"default_title": "t" * 301}, "default_title"),
    ({"default_title": "Tittel\x00"}, "default_title"),
    ({"legal_basis": "l" * 201}, "legal_basis"),
    ({"post_type": "I"}, "post_type"),
    ({"post_type": "X"}, "post_type"),
    ({"kind": "poem"}, "kind"),
])
def test_bad_fields_are_refused_on_their_field_and_nothing_is_kept(ctx, changes, field):
    with pytest.raises(Invalid) as refused:
        tpl.create(user("admin"), data(**changes))
    assert refused.value.details["field"] == field
    db.session.rollback()
    assert template_count() == 0 and version_count() == 0


@pytest.mark.parametrize("statement", ["UPDATE document_template_version SET body = 'endra'",
                                       "DELETE FROM document_template_version"])
def test_the_database_refuses_to_change_or_delete_a_template_version(ctx, statement):
    tpl.create(user("admin"), data())
    with pytest.raises(DBAPIError):
        db.session.execute(text(statement))
        db.session.flush()
    db.session.rollback()
    assert db.session.scalar(select(DocumentTemplateVersion.body)) == BODY


# ------------------------------------------------------------------------------------------ the pages


def test_a_handler_is_refused_the_template_pages(app, login_as):
    client = login_as("radgjevar1")
    for method, url in (("GET", "/templates"), ("GET", "/admin/templates"), ("GET", "/templates/new"),
                        ("POST", "/templates/new"), ("GET", "/templates/letterhead"),
                        ("POST", "/templates/letterhead")):
        assert client.open(url, method=method, data={"name": "X"}).status_code == 403, url
    assert b'href="/templates"' not in client.get("/").data  # not in the menu either
    with app.app_context():
        assert template_count() == 0 and len(activity_rows("access_denied")) == 6


def test_the_administrator_creates_edits_copies_and_retires_through_the_pages(app, login_as):
    client = login_as("admin")
    assert b'href="/templates"' in client.get("/").data  # the menu's Templates link
    moved = client.get("/admin/templates")
    assert moved.status_code == 302 and moved.headers["Location"].endswith("/templates")
    page = client.get("/templates/new")
    assert page.status_code == 200 and b"data-rich-text" in page.data and b'id="merge-fields"' in page.data
    assert b"klient.namn" in page.data and b"kontor.orgnr" in page.data
    form = {"name": "Stadfesting av tilvising", "kind": "letter", "post_type": "U", "default_title": "Stadfesting",
            "legal_basis": "Offl. § 13", "body": BODY, "form_token": "token-1"}
    made = client.post("/templates/new", data=form)
    assert made.status_code == 302
    again = client.post("/templates/new", data=form)  # the same form sent twice makes one template
    assert again.status_code == 302 and again.headers["Location"] == made.headers["Location"]
    with app.app_context():
        template_id = db.session.scalar(select(DocumentTemplate.id))
        assert template_count() == 1
    edit_url = f"/templates/{template_id}"
    assert made.headers["Location"].endswith(edit_url)
    assert client.get(edit_url).status_code == 200
    saved = client.post(edit_url, data={**form, "body": "<p>Ny {{ sak.tittel }}</p>", "version": "1"})
    assert saved.status_code == 302
    page = client.get(edit_url)
    assert b'id="version-1"' in page.data and b'id="version-2"' in page.data
    old = client.get(f"{edit_url}/versions/1")
    assert old.status_code == 200 and b'id="old-version"' in old.data and b"klient.namn" in old.data
    assert client.get(f"{edit_url}/versions/3").status_code == 404
    stale = client.post(edit_url, data={**form, "body": "<p>Mi</p>", "version": "1"})
    assert stale.status_code == 422 and b'class="alert error"' in stale.data
    assert b"&lt;p&gt;Mi&lt;/p&gt;" in stale.data  # what the user wrote is still in the form
    unknown = client.post(edit_url, data={**form, "body": "<p>{{ klient.hemmeleg }}</p>", "version": "2"})
    assert unknown.status_code == 422 and b"klient.hemmeleg" in unknown.data and b'id="body-err"' in unknown.data
    long_name = client.post(edit_url, data={**form, "name": "n" * 201, "version": "2"})
    assert long_name.status_code == 422 and b'id="name-err"' in long_name.data
    with app.app_context():
        assert version_count() == 2
    copied = client.post(f"{edit_url}/copy")
    assert copied.status_code == 302
    assert client.post(f"{edit_url}/retire").status_code == 302
    listing = client.get("/templates")
    assert f'id="template-{template_id}" data-retired="yes"'.encode() in listing.data
    assert client.post(f"{edit_url}/reinstate").status_code == 302
    with app.app_context():
        assert [t.name for t in tpl.active()] == ["Kopi av Stadfesting av tilvising", "Stadfesting av tilvising"]
    assert client.get("/templates/900001").status_code == 404
    assert client.post("/templates/900001/copy").status_code == 404


# ------------------------------------------------------------------------------------------ the letterhead

LETTERHEAD = {"name": "PP-tenesta for Ulstein", "address": "Postboks 1\n6065 Ulsteinvik", "org_number": "974760673",
              "phone": "+47 70 01 00 00", "email": "ppt@example.no"}


def test_the_letterhead_is_saved_with_a_re_encoded_logo_and_wins_over_the_configuration(ctx):
    saved = letterhead.save(user("admin"), **LETTERHEAD, logo=png(1200, 300))
    now = letterhead.current()
    assert {k: now[k] for k in LETTERHEAD} == LETTERHEAD
    assert now["logo"].startswith("data:image/png;base64,") and saved["logo"] == now["logo"]
    picture = Image.open(io.BytesIO(base64.b64decode(now["logo"].split(",", 1)[1])))
    assert picture.format == "PNG" and picture.size == (600, 150)
    row = activity_rows("letterhead_changed")[-1]
    assert row.after["name"] == LETTERHEAD["name"] and row.after["logo"].startswith("sha256:")
    letterhead.save(user("admin"), **{**LETTERHEAD, "phone": ""})  # the logo is kept unless removed
    assert letterhead.current()["logo"] == now["logo"] and "phone" not in letterhead.saved()
    letterhead.save(user("admin"), **{**LETTERHEAD, "phone": ""})
    assert len(activity_rows("letterhead_changed")) == 2  # nothing changed, nothing logged
    letterhead.save(user("admin"), **LETTERHEAD, remove_logo=True)
    assert "logo" not in letterhead.saved()


@pytest.mark.parametrize("changes, logo, field", [
    ({"org_number": "974760674"}, None, "org_number"),
    ({"org_number": "12345"}, None, "org_number"),
    ({"name": "PPT\x07"}, None, "name"),
    ({"email": "ikkje ei adresse"}, None, "email"),
    ({"phone": "ring meg"}, None, "phone"),
    ({}, b"%PDF-1.7 not a picture", "logo"),
    ({}, b"GIF89a" + b"\x00" * 100, "logo"),
    ({}, None, "logo"),  # too big: made in the test
])
def test_bad_letterhead_values_are_refused_on_their_field_and_nothing_changes(ctx, changes, logo, field):
    letterhead.save(user("admin"), **LETTERHEAD)
    before = letterhead.saved()
    if field == "logo" and logo is None:
        logo = png(900, 900, noise=True)
        assert len(logo) > letterhead.MAX_LOGO_BYTES
    with pytest.raises(Invalid) as refused:
        letterhead.save(user("admin"), **{**LETTERHEAD, **changes}, logo=logo)
    assert refused.value.details["field"] == field
    db.session.rollback()
    assert letterhead.saved() == before and len(activity_rows("letterhead_changed")) == 1


def test_the_letterhead_page_saves_and_shows_errors_on_the_field(app, login_as):
    client = login_as("admin")
    page = client.get("/templates/letterhead")
    assert page.status_code == 200 and b'enctype="multipart/form-data"' in page.data
    bad = client.post("/templates/letterhead", data={**LETTERHEAD, "logo": (io.BytesIO(b"not a picture"), "logo.png")},
                      content_type="multipart/form-data")
    assert bad.status_code == 422 and b'id="logo-err"' in bad.data
    wrong_number = client.post("/templates/letterhead", data={**LETTERHEAD, "org_number": "974760674"})
    assert wrong_number.status_code == 422 and b'id="org_number-err"' in wrong_number.data
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Setting)
                                 .where(Setting.key.like("letterhead.%"))) == 0
    good = client.post("/templates/letterhead", data={**LETTERHEAD, "logo": (io.BytesIO(png(40, 20)), "logo.png")},
                       content_type="multipart/form-data")
    assert good.status_code == 302
    shown = client.get("/templates/letterhead")
    assert b'id="current-logo"' in shown.data and b"974760673" in shown.data
    with app.app_context():
        assert letterhead.current()["name"] == LETTERHEAD["name"]
