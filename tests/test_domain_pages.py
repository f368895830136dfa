"""The registration flow through the pages: client, case, post with PDF, finalize, locked."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from ppt_web.clock import today as oslo_today
from ppt_web.extensions import db
from ppt_web.models import Client, JournalPost, PostStatus

from . import builders
from .conftest import activity_rows

HX = {"HX-Request": "true"}


def test_handler_registers_client_case_and_finalizes_a_note(app, login_as):
    client = login_as("radgjevar1")
    nid = builders.valid_national_id(3)
    response = client.post("/clients/new", data={"national_id": nid, "given_name": "Kari", "family_name": "Nordmann",
                                                  "address": "Skulevegen 1", "postal_code": "6065", "city": "Ulsteinvik",
                                                  "organisation_id": "", "handler_id": ""})
    assert response.status_code == 302, response.get_data(as_text=True)
    folder_url = response.headers["Location"]
    assert nid not in folder_url
    page = client.get(folder_url).get_data(as_text=True)
    assert "Kari Nordmann" in page and nid not in page and nid[:6] in page
    with app.app_context():
        client_id = db.session.scalar(db.select(Client.id))
    response = client.post("/cases/new", data={"kind": "person", "category": "referral", "title": "Tilvising frå skule",
                                                "client_id": client_id, "handler_id": "", "organisation_id": "",
                                                "access_group_id": ""})
    assert response.status_code == 302, response.get_data(as_text=True)
    case_url = response.headers["Location"]
    assert "Tilvising frå skule" in client.get(case_url).get_data(as_text=True)
    case_id = int(case_url.rsplit("/", 1)[1])
    form = {"post_type": "N", "title": "Samtale med føresette", "document_date": oslo_today().isoformat(),
            "legal_basis": "Offl. § 13 jf. fvl. § 13, 1. ledd nr. 1",
            "main_document": (io.BytesIO(builders.make_pdf(2)), "samtale.pdf")}
    response = client.post(f"/cases/{case_id}/posts/new", data=form, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    post_url = response.headers["Location"]
    page = client.get(post_url).get_data(as_text=True)
    assert "samtale.pdf" in page and "2 sider" in page
    post_id = int(post_url.rsplit("/", 1)[1])
    assert client.post(f"/posts/{post_id}/finalize").status_code == 302
    page = client.get(post_url).get_data(as_text=True)
    assert "Ferdigstilt" in page
    with app.app_context():
        post = db.session.get(JournalPost, post_id)
        assert post.status == PostStatus.FINALIZED and post.finalized_by.username == "radgjevar1"
        doc_id = post.documents[0].id
    pdf = client.get(f"/documents/{doc_id}")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    assert pdf.headers["Content-Type"] == "application/pdf" and pdf.headers["Cache-Control"] == "no-store"
    assert pdf.headers["Content-Disposition"].startswith("inline;") and "samtale.pdf" in pdf.headers["Content-Disposition"]
    # Locked: the edit page refuses, with a clear message.
    assert client.post(f"/posts/{post_id}/edit", data={"title": "Ny"}).status_code == 409
    with app.app_context():
        actions = [r.action for r in activity_rows() if r.actor_name == "radgjevar1"]
    for action in ("client_created", "client_folder_opened", "case_created", "post_created", "post_finalized",
                   "document_opened"):
        assert action in actions


def test_every_new_page_renders(app, login_as):
    with app.app_context():
        case = builders.case("radgjevar1")
        post = builders.post(case, post_type="I", correspondent="Skulen", title="Tilvising")
        case_id, post_id, client_id = case.id, post.id, case.client_id
    client = login_as("konsulent")
    for url in ("/search/", "/clients/new", f"/clients/{client_id}", f"/clients/{client_id}/edit", "/organisations",
                "/cases/new", f"/cases/{case_id}", "/cases/worklist", f"/cases/{case_id}/posts/new",
                f"/posts/{post_id}", f"/posts/{post_id}/edit", "/posts/outstanding", "/posts/outstanding?all=1"):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        html = response.get_data(as_text=True)
        assert "style=" not in html and "<script>" not in html, url


def test_inline_validation_returns_the_field_with_its_error(login_as):
    client = login_as("radgjevar1")
    response = client.post("/posts/validate/document_date", data={"document_date": "2999-01-01", "title": "x"},
                           headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<div class="field invalid"')
    assert "framtida" in html
    ok = client.post("/posts/validate/title", data={"title": "Godt"}, headers=HX).get_data(as_text=True)
    assert 'class="field"' in ok and "error" not in ok


from .helpers import REFUSED  # noqa: E402  (the corpus is shared with the storage tests)

HOSTILE_NAMES = ["../../x.pdf", "a\x00b.pdf", "x" * 300 + ".pdf", "\u202eexe.pdf"]


@pytest.mark.parametrize("data", [v[0] for v in REFUSED.values()], ids=list(REFUSED))
def test_bad_upload_through_the_page_gives_a_message_and_leaves_nothing(app, login_as, data):
    client = login_as("radgjevar1")
    with app.app_context():
        case_id = builders.case("radgjevar1").id
    form = {"post_type": "N", "title": "Skanna brev", "document_date": oslo_today().isoformat(),
            "main_document": (io.BytesIO(data), "brev.pdf")}
    response = client.post(f"/cases/{case_id}/posts/new", data=form, content_type="multipart/form-data",
                           headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'class="alert error"' in html
    assert "PDF" in html or "tom" in html
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(JournalPost)) == 0
    files = Path(app.instance_path) / "files"
    assert not files.exists() or not [p for p in files.rglob("*") if p.is_file()]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=["traversal", "nul", "300 chars", "rtl override"])
def test_hostile_file_names_are_stored_safely(app, login_as, name):
    client = login_as("radgjevar1")
    with app.app_context():
        case_id = builders.case("radgjevar1").id
    form = {"post_type": "N", "title": "Brev", "document_date": oslo_today().isoformat(),
            "main_document": (io.BytesIO(builders.make_pdf()), name)}
    response = client.post(f"/cases/{case_id}/posts/new", data=form, content_type="multipart/form-data")
    assert response.status_code == 302
    with app.app_context():
        doc = db.session.scalars(db.select(JournalPost)).one().documents[0]
        assert "/" not in doc.filename and "\x00" not in doc.filename and "\u202e" not in doc.filename
        assert len(doc.filename) <= 120 and doc.filename.endswith(".pdf")
        doc_id = doc.id
    header = client.get(f"/documents/{doc_id}").headers["Content-Disposition"]
    assert ".." not in header.split("filename")[1][:4] and "\u202e" not in header


def test_ids_beyond_any_database_integer_are_404(login_as):
    client = login_as("konsulent")
    # 2147483648 is one past PostgreSQL's INTEGER: a 404 there too, not a database error.
    for url in ("/cases/99999999999999999999", "/posts/99999999999999999999", "/clients/99999999999999999999",
                "/documents/99999999999999999999", "/cases/9223372036854775807", "/cases/2147483648"):
        assert client.get(url).status_code == 404, url
    # Paging cursors in query strings: a number past any id is ignored (the first page), not an error.
    for url in ("/archive-log/?before=2147483648", "/archive-log/?before=99999999999999999999",
                "/activity-log/?page=99999999999999999999"):
        assert client.get(url).status_code == 200, url
    assert client.post("/cases/new", data={"kind": "person", "title": "x", "client_id": "99999999999999999999",
                                           "category": "referral"}).status_code == 422


def test_client_edit_page_does_not_show_the_full_national_id(app, login_as):
    with app.app_context():
        client_obj = builders.client("radgjevar1", given_name="Kai")
        nid, client_id = client_obj.national_id, client_obj.id
    client = login_as("radgjevar1")
    html = client.get(f"/clients/{client_id}/edit").get_data(as_text=True)
    assert nid not in html and nid[:6] in html
    response = client.post(f"/clients/{client_id}/edit", data={"national_id": "", "given_name": "Kai",
                                                                "family_name": "Nordmann", "handler_id": ""})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Client, client_id).national_id == nid


def _selected(html: str, name: str) -> list[tuple[str, str]]:
    """The options of the select `name` that are chosen: (value, label)."""
    import re

    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None, name
    options = re.findall(r'<option([^>]*)>([^<]*)</option>', select.group(1))
    return [(re.search(r'value="([^"]*)"', attrs).group(1), label) for attrs, label in options  # type: ignore[union-attr]
            if re.search(r'\bselected\b', attrs)]


def test_a_client_past_the_listed_ones_is_offered_when_a_case_is_opened_from_its_folder(app, login_as, monkeypatch):
    """The new-case form lists the first clients by name; opened from a folder of one after them (most of them,
    with ten years of clients) it offered "(none)", and the secretary could not register the case."""
    from ppt_web.cases import service as cases

    with app.app_context():
        builders.client("radgjevar1", given_name="Aase")
        late = builders.client("radgjevar1", given_name="Øystein")
        late_id = late.id
    monkeypatch.setattr(cases, "CLIENT_CHOICES", 1)
    html = login_as("sekretaer").get(f"/cases/new?client_id={late_id}").get_data(as_text=True)
    assert [value for value, _label in _selected(html, "client_id")] == [str(late_id)]


def test_a_deactivated_handler_is_not_replaced_silently_when_a_client_is_edited(app, login_as):
    """The handler list holds active users only: a client whose handler was deactivated showed none chosen, so
    the browser sent the first (the administrator), and fixing an address changed the handler. The handler is
    shown chosen, marked, and the save asks for another."""
    from ppt_web.models import User

    with app.app_context():
        client_obj = builders.client("radgjevar2", given_name="Kai")
        client_id = client_obj.id
        handler = db.session.scalar(db.select(User).where(User.username == "radgjevar2"))
        handler.active = False
        db.session.commit()
        handler_id = handler.id
    browser = login_as("sekretaer")
    html = browser.get(f"/clients/{client_id}/edit").get_data(as_text=True)
    assert _selected(html, "handler_id") == [(str(handler_id), "Randi Rådgjevar (deaktivert: vel ein annan)")]
    refused = browser.post(f"/clients/{client_id}/edit", data={
        "national_id": "", "given_name": "Kai", "family_name": "Nordmann", "address": "Ny veg 2",
        "handler_id": str(handler_id)})
    assert refused.status_code == 422
    with app.app_context():
        kept = db.session.get(Client, client_id)
        assert kept.handler_id == handler_id and kept.address != "Ny veg 2"
