"""The templates the app ships: added once (never again once retired or edited), kept exactly as the editor
and the sanitizer leave them, and each one makes a letter and its PDF for a real case."""
from __future__ import annotations

import html
import io
import re
from datetime import date

import pytest
from pypdf import PdfReader
from sqlalchemy import create_engine, func, select

from ppt_web import generate, launcher
from ppt_web.cases import posts
from ppt_web.clients import organisations
from ppt_web.clients import service as clients
from ppt_web.clock import today, utcnow
from ppt_web.clock import today as oslo_today
from ppt_web.extensions import db
from ppt_web.letters import context, letterhead, merge, shipped
from ppt_web.letters.pdf import LetterPage, render
from ppt_web.letters.sanitize import clean
from ppt_web.models import Case, CaseStatus, Client, DocumentTemplate, DocumentTemplateVersion, TemplateKind
from ppt_web.models.domain import DEFAULT_LEGAL_BASIS, PostType

from . import builders
from .conftest import activity_rows, user

pytestmark = pytest.mark.usefixtures("ctx")

KEYS = [s.shipped_key for s in shipped.SHIPPED]


def _by_key() -> dict[str, DocumentTemplate]:
    return {t.shipped_key or "": t for t in db.session.scalars(select(DocumentTemplate))}


def _text(markup: str) -> str:
    """What a reader sees of some HTML: tags gone, entities read."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def test_the_app_ships_six_templates_in_nynorsk_for_outgoing_letters():
    """The six the issue names, each an outgoing letter with the routine's legal basis and no national id."""
    assert KEYS == ["invitation", "referral_received", "expert_school", "expert_kindergarten", "statement",
                    "closing"]
    kinds = {s.shipped_key: s.kind for s in shipped.SHIPPED}
    assert kinds["expert_school"] == kinds["expert_kindergarten"] == TemplateKind.EXPERT_ASSESSMENT
    assert kinds["invitation"] == TemplateKind.INVITATION and kinds["statement"] == TemplateKind.STATEMENT
    for spec in shipped.SHIPPED:
        assert spec.post_type == PostType.U
        assert spec.legal_basis == DEFAULT_LEGAL_BASIS
        assert spec.show_national_id is False
        assert spec.default_title and "{" not in spec.default_title and "[" not in spec.default_title


def test_ensure_shipped_adds_the_six_with_their_first_version_once():
    """On a new database all six appear with version 1 and an activity row; a second start adds nothing."""
    assert shipped.ensure_shipped() == 6
    rows = _by_key()
    assert sorted(rows) == sorted(KEYS)
    for spec in shipped.SHIPPED:
        template = rows[spec.shipped_key]
        assert (template.name, template.kind, template.post_type, template.default_title, template.legal_basis,
                template.show_national_id, template.body) == (
            spec.name, spec.kind, spec.post_type, spec.default_title, spec.legal_basis, spec.show_national_id,
            spec.body)
        assert template.version == 1 and not template.retired and template.created_by_id is None
        [first] = template.versions
        assert (first.number, first.name, first.kind, first.post_type, first.default_title, first.legal_basis,
                first.show_national_id, first.body, first.created_by_id) == (
            1, template.name, template.kind, template.post_type, template.default_title, template.legal_basis,
            template.show_national_id, template.body, None)
    logged = activity_rows("template_created")
    assert len(logged) == 6 and {r.detail for r in logged} == {"shipped"}

    assert shipped.ensure_shipped() == 0
    assert db.session.scalar(select(func.count()).select_from(DocumentTemplate)) == 6
    assert db.session.scalar(select(func.count()).select_from(DocumentTemplateVersion)) == 6


def test_a_retired_or_edited_shipped_template_is_never_added_again():
    """What the administrator did to a shipped template stays: no fresh copy appears at the next start."""
    shipped.ensure_shipped()
    rows = _by_key()
    rows["closing"].retired_at = utcnow()
    rows["closing"].retired_by_id = user("admin").id
    rows["invitation"].name = "Innkalling (vår eiga)"
    rows["invitation"].body = "<p>Vår eigen tekst.</p>"
    rows["invitation"].version = 2
    db.session.commit()

    assert shipped.ensure_shipped() == 0
    again = _by_key()
    assert len(again) == 6
    assert again["closing"].retired
    assert again["invitation"].name == "Innkalling (vår eiga)" and again["invitation"].body == "<p>Vår eigen tekst.</p>"


def test_a_template_another_process_added_meanwhile_counts_as_present(monkeypatch):
    """Two starts at once: the one that loses the race on the unique key adds nothing and does not fail."""
    assert shipped.ensure_shipped() == 6
    monkeypatch.setattr(shipped, "_present", set)  # as if this process looked before the other committed
    assert shipped.ensure_shipped() == 0
    assert db.session.scalar(select(func.count()).select_from(DocumentTemplate)) == 6
    assert len(activity_rows("template_created")) == 6
    db.session.execute(select(1))  # the session is usable afterwards


@pytest.mark.parametrize("key", KEYS)
def test_a_shipped_body_is_what_the_editor_gets_and_names_only_offered_fields(key):
    """The sanitizer leaves the body exactly as shipped, and the template check accepts it."""
    body = shipped.read_body(key)
    assert body and "\n" not in body
    assert clean(body) == body
    merge.check(body)
    assert "fodselsnummer" not in body and "style=" not in body and "<table" not in body
    assert "{{ klient.namn }}" in body
    assert "Med helsing" not in body  # the letter's closing and signature lines are the PDF layout's


# ----------------------------------------------------------------------------- a real case

def _organisation(name: str, kind: str = "school"):
    return organisations.register_organisation(
        user("konsulent"), name=name, org_number=generate.org_number(len(name) * 7919 + 17), kind=kind,
        address="Skulevegen 4, 6065 Ulsteinvik")


def _guardian_post(case_obj, name: str, n: int):
    """An earlier letter to a guardian registered with a national id: what makes them a guardian in a letter."""
    data = posts.PostData(
        post_type="U", title="Brev til føresette", document_date=oslo_today(), correspondents=[
            posts.CorrespondentData(name=name, national_id=generate.national_id(date(1984, 3, 1 + n), 100 + n),
                                    address="Heimevegen 12", postal_code="6065", city="Ulsteinvik")])
    return posts.create_post(case_obj.handler, case_obj.id, data,
                             posts.Upload(io.BytesIO(builders.make_pdf()), "brev.pdf"))


@pytest.fixture
def school_case():
    org = _organisation("Ulstein skule")
    client_obj = builders.client(organisation_id=org.id, given_name="Synne", family_name="Åsebø",
                                 address="Heimevegen 12", postal_code="6065", city="Ulsteinvik")
    case_obj = builders.case(client_obj=client_obj, title="Sakkunnig vurdering spesialundervisning")
    _guardian_post(case_obj, "Kari Åsebø", 1)
    return case_obj


def _letter(key: str, case_obj) -> tuple[str, LetterPage]:
    """The letter a handler would get from the template in this case: merged, sanitized, and its PDF page."""
    spec = next(s for s in shipped.SHIPPED if s.shipped_key == key)
    recipients = context.guardians(case_obj)
    values = context.context(case_obj.handler, case_obj, recipients, show_national_id=spec.show_national_id,
                             approver=user("leiar"))
    body = clean(merge.merge(spec.body, values))
    page = LetterPage(title=spec.default_title, body=body, case_number=case_obj.number,
                      post_type=spec.post_type.value, day=today(), handler=case_obj.handler.full_name,
                      letterhead=letterhead.current(), recipients=recipients, approver=user("leiar").full_name,
                      legal_basis=spec.legal_basis)
    return body, page


@pytest.mark.one_database  # merging and PDF layout do not depend on the engine
@pytest.mark.parametrize("key", KEYS)
def test_every_shipped_template_makes_a_letter_and_its_pdf(key, school_case):
    """For a client at a school with a guardian on an earlier post: the client's name, the case number and
    the guardian's name are filled in, no merge field is left over, and the PDF renders."""
    body, page = _letter(key, school_case)
    text = _text(body)
    assert "Synne Åsebø" in text
    assert school_case.number in text
    assert "{{" not in body and "{%" not in body and "}}" not in body
    assert school_case.client.national_id not in body
    if key in ("invitation", "expert_school", "expert_kindergarten", "statement"):
        assert "Kari Åsebø" in text
    pdf = render(page)
    assert pdf.startswith(b"%PDF")
    pages_text = " ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Synne" in pages_text


@pytest.mark.one_database
def test_a_generated_client_with_awkward_names_comes_out_as_text_in_every_template():
    """Names with æøå, apostrophes, markup and template syntax are printed as written, never run."""
    generate.generate(1, seed=17, echo=lambda *_: None)
    generated = db.session.scalars(select(Client).order_by(Client.id.desc())).first()
    assert generated is not None
    awkward_given, awkward_family = "Åse-Marie <script>alert(1)</script>", "O'Brien-Ødegård {{ 7*7 }}"
    clients.update_client(user("konsulent"), generated.id, clients.ClientData(
        national_id=generated.national_id, given_name=awkward_given, family_name=awkward_family,
        address=generated.address, postal_code=generated.postal_code, city=generated.city,
        organisation_id=generated.organisation_id, handler_id=generated.handler_id))
    case_obj = db.session.scalars(select(Case).where(Case.client_id == generated.id, Case.status == CaseStatus.OPEN)
                                  .order_by(Case.id)).first() \
        or builders.case(handler=generated.handler.username, client_obj=generated)
    _guardian_post(case_obj, "Per O'Hara <b>fet</b> & co", 2)

    for key in KEYS:
        body, page = _letter(key, case_obj)
        assert "<script" not in body and "<b>" not in body, key
        assert "&lt;script&gt;" in body, key
        text = _text(body)
        assert f"{awkward_given} {awkward_family}" in text, key
        assert "{{ 7*7 }}" in text, key  # printed as written: not worked out to 49
        if key == "invitation":
            assert "Per O'Hara <b>fet</b> & co" in text
    pdf = render(page)
    pages_text = " ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "<script>alert(1)</script>" in pages_text


def test_the_launcher_adds_the_shipped_templates_after_migrating(app, new_database, tmp_path, monkeypatch, capsys):
    """./run.sh on a database without them: the six are there when the app comes up, and said so once."""
    url = new_database()  # migrated, with the demo users, and no templates yet
    monkeypatch.setenv("PPT_DATABASE_URL", url)
    monkeypatch.setenv("PPT_INSTANCE_PATH", str(tmp_path / "launched"))
    monkeypatch.setenv("PPT_REDIS_URL", app.config["PPT_REDIS_URL"])
    monkeypatch.setattr(launcher.logs, "configure", lambda *a, **k: None)  # leave this run's logging alone
    launcher.prepare_database()
    assert "added 6 letter templates" in capsys.readouterr().out
    launcher.prepare_database()
    assert "letter templates" not in capsys.readouterr().out
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            keys = set(conn.scalars(select(DocumentTemplate.shipped_key)))
    finally:
        engine.dispose()
    assert keys == set(KEYS)
