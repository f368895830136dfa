"""Letters written in the app: made from a template, saved as typed, rendered into the post's main document."""
from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from ppt_web.cases import approval, esign, posts
from ppt_web.clients import organisations
from ppt_web.clock import today as oslo_today
from ppt_web.errors import Conflict, Invalid, NotFound
from ppt_web.extensions import db
from ppt_web.files.storage import file_path
from ppt_web.form_tokens import AlreadyMade
from ppt_web.letters import service
from ppt_web.models import ArchiveJob, JournalPost, PostStatus
from ppt_web.models.letters import DocumentTemplate, DocumentTemplateVersion, Letter, TemplateKind

from . import builders
from .conftest import activity_rows, sign_in, user

BODY = ("<h2>Sakkunnig vurdering for {{ klient.namn }}</h2><p>Til {% for m in mottakarar %}{{ m.namn }}"
        "{% if not loop.last %}, {% endif %}{% endfor %}.</p><p>Sak {{ sak.nummer }}.</p>"
        '<p onclick="x()">Skrive av {{ saksbehandlar.namn }}.</p><script>alert(2)</script>')


def template(post_type: str = "U", body: str = BODY, title: str = "Sakkunnig vurdering",
             retired: bool = False) -> DocumentTemplate:
    """A template with its version 1, as the templates screen keeps it."""
    row = DocumentTemplate(name=f"Mal {title}", kind=TemplateKind.EXPERT_ASSESSMENT, post_type=post_type,
                         default_title=title, body=body, version=1)
    db.session.add(row)
    db.session.flush()
    db.session.add(DocumentTemplateVersion(template_id=row.id, number=1, name=row.name, kind=row.kind,
                                         post_type=row.post_type, default_title=title, body=body))
    if retired:
        from ppt_web.clock import utcnow

        row.retired_at = utcnow()
    db.session.commit()
    return row


def case_with_recipients(category: str = "expert_assessment", client=None):
    """A case whose client goes to a school, with a guardian registered on an earlier post."""
    from ppt_web.models import Organisation

    school = db.session.scalar(select(Organisation).where(Organisation.org_number == "974760673")) or \
        organisations.register_organisation(user("konsulent"), name="Ulstein skule", org_number="974760673",
                                            kind="school", address="Skulevegen 1\n6065 Ulsteinvik")
    client = client or builders.client("radgjevar1", organisation_id=school.id)
    case = builders.case("radgjevar1", category=category, client_obj=client)
    data = posts.PostData(post_type="I", title="Tilvising", document_date=oslo_today(), received_on=oslo_today(),
                          correspondents=[posts.CorrespondentData(name="Kari Føresett", address="Heimvegen 2",
                                                                  postal_code="6065", city="Ulsteinvik",
                                                                  national_id=builders.valid_national_id(901))])
    posts.create_post(user("radgjevar1"), case.id, data, posts.Upload(io.BytesIO(builders.make_pdf()), "t.pdf"))
    return case


def new_letter(case, tpl=None, keys=None, actor: str = "radgjevar1", token=None) -> JournalPost:
    tpl = tpl or template()
    choices = service.recipient_choices(user(actor), case)
    keys = [c.key for c in choices] if keys is None else keys
    return service.new_letter(user(actor), case.id, tpl.id, keys, token=token)


def pdf_text(sha256: str) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(file_path(sha256).read_bytes()))
    return len(reader.pages), "\n".join(page.extract_text() or "" for page in reader.pages)


def test_a_new_letter_is_one_draft_post_to_every_chosen_recipient_with_the_merged_clean_text(ctx):
    """The guardian and the school are both recipients of one post; the text is merged and sanitized."""
    case = case_with_recipients()
    choices = service.recipient_choices(user("radgjevar1"), case)
    assert {c.kind for c in choices} == {"guardian", "organisation"}
    assert all(builders.valid_national_id(901) not in c.key for c in choices)
    tpl = template()
    post = new_letter(case, tpl)
    assert post.status == PostStatus.DRAFT and post.post_type.value == "U" and post.title == "Sakkunnig vurdering"
    assert sorted(c.name for c in post.correspondents) == ["Kari Føresett", "Ulstein skule"]
    guardian = next(c for c in post.correspondents if c.name == "Kari Føresett")
    assert guardian.national_id == builders.valid_national_id(901) and guardian.role == "recipient"
    letter = service.letter_of(post)
    assert letter is not None and letter.version == 1
    assert letter.template_version.template_id == tpl.id and letter.template_version.number == 1
    assert case.client.name in letter.body and case.number in letter.body
    assert "Kari Føresett, Ulstein skule" in letter.body
    assert "<script" not in letter.body and "onclick" not in letter.body
    assert post.main_document is not None and letter.rendered_sha256 == post.main_document.sha256
    assert [r.action for r in activity_rows() if r.action.startswith("letter_")] == ["letter_created",
                                                                                      "letter_rendered"]


def test_a_letter_needs_an_active_template_and_a_recipient_for_an_outgoing_post(ctx):
    case = case_with_recipients()
    before = db.session.scalar(select(db.func.count(JournalPost.id)))
    with pytest.raises(Invalid) as refused:
        new_letter(case, template(), keys=[])
    assert refused.value.details["field"] == "recipients"
    with pytest.raises(Invalid):
        new_letter(case, template(retired=True))
    with pytest.raises(Invalid):
        new_letter(case, keys=["g999999"])
    assert db.session.scalar(select(db.func.count(JournalPost.id))) == before
    note = new_letter(case, template(post_type="N", title="Notat"), keys=[])
    assert note.post_type.value == "N" and note.correspondents == []


def test_the_same_form_sent_twice_makes_one_letter(ctx):
    case = case_with_recipients()
    tpl = template()
    first = new_letter(case, tpl, token="brev-token-1")
    with pytest.raises(AlreadyMade) as again:
        new_letter(case, tpl, token="brev-token-1")
    assert again.value.object_id == first.id
    assert db.session.scalar(select(db.func.count(Letter.id))) == 1


def test_a_hostile_client_name_comes_out_as_text_in_the_letter_and_its_pdf(ctx):
    hostile = builders.client("radgjevar1", given_name="<script>alert(1)</script>", family_name="{{ 7*7 }}")
    case = case_with_recipients(client=hostile)
    post = new_letter(case)
    body = service.letter_of(post).body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "{{ 7*7 }}" in body and "49" not in body
    _pages, words = pdf_text(post.main_document.sha256)
    assert "<script>alert(1)</script>" in words and "{{ 7*7 }}" in words


def test_save_takes_the_next_version_and_a_stale_one_is_refused_naming_who_saved(ctx):
    case = case_with_recipients()
    post = new_letter(case)
    case.co_handlers.append(user("radgjevar2"))
    db.session.commit()
    saved = service.save(user("radgjevar1"), post.id, "<p>Første utkast</p><img src=x onerror=alert(1)>", 1)
    assert saved.version == 2 and saved.body == "<p>Første utkast</p>"
    saved = service.save(user("radgjevar2"), post.id, "<p>Andre utkast</p>", 2)
    assert saved.version == 3
    with pytest.raises(Conflict) as stale:
        service.save(user("radgjevar1"), post.id, "<p>Mitt utkast</p>", 2)
    assert user("radgjevar2").full_name in str(stale.value.message)
    letter = db.session.get(Letter, saved.id)
    assert letter.version == 3 and letter.body == "<p>Andre utkast</p>"
    assert service.save(user("radgjevar2"), post.id, "<p>Andre utkast</p>", 3).version == 3  # nothing new


def test_save_is_refused_once_the_letter_waits_for_approval_is_finalized_or_signed(ctx):
    case = case_with_recipients()
    waiting = new_letter(case)
    approval.send_for_approval(user("radgjevar1"), waiting.id, user("leiar").id)
    with pytest.raises(Conflict):
        service.save(user("radgjevar1"), waiting.id, "<p>Endra</p>", 1)
    approval.approve(user("leiar"), waiting.id)
    with pytest.raises(Conflict):
        service.save(user("radgjevar1"), waiting.id, "<p>Endra</p>", 1)

    other = case_with_recipients(category="follow_up")
    signed = new_letter(other)
    esign.sign(user("radgjevar1"), signed.id)
    assert service.letter_of(signed).rendered_version == 1
    with pytest.raises(Conflict) as refused:
        service.save(user("radgjevar1"), signed.id, "<p>Endra</p>", 1)
    assert "signert" in str(refused.value.message)  # the app's language: "Brevet er signert ..."
    assert service.letter_of(signed).body != "<p>Endra</p>"


def test_a_save_that_crosses_a_signature_is_refused(app, ctx, monkeypatch):
    """A save checked "not signed" just before a signature on the main document was committed by another
    request: it is refused, and the letter's text stays what was signed."""
    from sqlalchemy import create_engine

    case = case_with_recipients(category="follow_up")
    post = new_letter(case)
    main = db.session.get(JournalPost, post.id).main_document
    real = service.save_refusal

    def signed_meanwhile(actor, checked):
        refusal = real(actor, checked)
        other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        with other.begin() as conn:
            conn.execute(text("INSERT INTO post_signature (post_id, unsigned_sha256, signed_sha256, signed_by_id, "
                              "signed_at, certificate_subject) VALUES (:p, :s, :s, :u, CURRENT_TIMESTAMP, '')"),
                         {"p": post.id, "s": main.sha256, "u": user("radgjevar1").id})
        other.dispose()
        return refusal

    monkeypatch.setattr(service, "save_refusal", signed_meanwhile)
    with pytest.raises(Conflict):
        service.save(user("radgjevar1"), post.id, "<p>Endra etter signering</p>", 1)
    db.session.rollback()
    assert service.letter_of(db.session.get(JournalPost, post.id)).body != "<p>Endra etter signering</p>"


def test_a_main_document_cannot_be_uploaded_on_a_letter(ctx):
    post = new_letter(case_with_recipients())
    upload = posts.Upload(io.BytesIO(builders.make_pdf()), "anna.pdf")
    with pytest.raises(Invalid) as refused:
        posts.update_post(user("radgjevar1"), post.id, posts.PostData(post_type="U", title=post.title), upload)
    assert refused.value.details["field"] == "main_document"
    attachment = posts.Upload(io.BytesIO(builders.make_pdf()), "vedlegg.pdf")
    posts.update_post(user("radgjevar1"), post.id, posts.PostData(post_type="U", title=post.title,
                                                                  document_date=oslo_today()), None, [attachment])
    assert [d.role for d in db.session.get(JournalPost, post.id).documents] == ["main", "attachment"]


def test_sending_to_approval_renders_the_letter_and_sending_again_renders_the_new_text(ctx):
    case = case_with_recipients()
    post = new_letter(case)
    service.save(user("radgjevar1"), post.id, "<p>Konklusjon: eitt.</p>", 1)
    approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id)
    post = db.session.get(JournalPost, post.id)
    first = post.main_document.sha256
    pages, words = pdf_text(first)
    assert pages >= 1 and "Sakkunnig vurdering" in words and "Konklusjon: eitt." in words
    letter = service.letter_of(post)
    assert letter.rendered_version == 2 and letter.rendered_sha256 == first
    approval.return_for_changes(user("leiar"), post.id, "Skriv konklusjonen tydelegare")
    service.save(user("radgjevar1"), post.id, "<p>Konklusjon: to.</p>", 2)
    approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id)
    post = db.session.get(JournalPost, post.id)
    assert post.main_document.sha256 != first and "Konklusjon: to." in pdf_text(post.main_document.sha256)[1]
    assert len([d for d in post.documents if d.role == "main"]) == 1


def test_the_approver_sees_the_pdf_with_the_title_and_recipients_as_last_edited(ctx):
    """A title and a recipient changed on the post form after the letter's PDF was made are in the PDF
    the approver opens; the PDF does not claim an approval that has not happened."""
    case = case_with_recipients()
    post = new_letter(case)
    made = post.main_document.sha256
    data = posts.PostData(post_type="U", title="Sakkunnig vurdering, ny tittel", document_date=oslo_today(),
                          correspondents=[posts.CorrespondentData(name=c.name, address=c.address,
                                                                  postal_code=c.postal_code, city=c.city,
                                                                  organisation_id=c.organisation_id,
                                                                  national_id=c.national_id or "")
                                          for c in post.correspondents]
                          + [posts.CorrespondentData(name="Hareid skule", address="Skulevegen 9", postal_code="6060",
                                                     city="Hareid")])
    posts.update_post(user("radgjevar1"), post.id, data)
    approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id)
    post = db.session.get(JournalPost, post.id)
    assert post.main_document.sha256 != made
    words = " ".join(pdf_text(post.main_document.sha256)[1].split())
    assert "Sakkunnig vurdering, ny tittel" in words
    assert "Hareid skule Skulevegen 9 6060 Hareid" in words
    assert "Godkjend" not in words


def test_a_new_letterhead_makes_the_draft_pdf_again(ctx):
    from ppt_web.letters import letterhead

    case = case_with_recipients(category="follow_up")
    post = new_letter(case)
    made = post.main_document.sha256
    letterhead.save(user("admin"), name="PPT for Hareid og Ulstein", address="", org_number="", phone="",
                    email="")
    posts.finalize(user("radgjevar1"), post.id)
    post = db.session.get(JournalPost, post.id)
    assert post.main_document.sha256 != made
    assert "PPT for Hareid og Ulstein" in pdf_text(post.main_document.sha256)[1]


def test_the_post_page_says_when_its_main_document_is_older_than_the_letter(client, login_as):
    app = client.application
    with app.app_context():
        post_id = new_letter(case_with_recipients(category="follow_up")).id
    login_as("radgjevar1")
    assert 'id="letter-outdated"' not in client.get(f"/posts/{post_id}").get_data(as_text=True)
    with app.app_context():
        service.save(user("radgjevar1"), post_id, "<p>Ny tekst</p>", 1)
    assert 'id="letter-outdated"' in client.get(f"/posts/{post_id}").get_data(as_text=True)
    with app.app_context():
        posts.finalize(user("radgjevar1"), post_id)
    assert 'id="letter-outdated"' not in client.get(f"/posts/{post_id}").get_data(as_text=True)
    with app.app_context():
        assert "Ny tekst" in pdf_text(db.session.get(JournalPost, post_id).main_document.sha256)[1]


def test_a_finalized_posts_letter_cannot_be_moved_to_another_post_or_deleted(ctx):
    case = case_with_recipients(category="follow_up")
    done = new_letter(case)
    posts.finalize(user("radgjevar1"), done.id)
    draft = new_letter(case)
    letter_id = service.letter_of(db.session.get(JournalPost, done.id)).id
    for statement in ("UPDATE letter SET post_id = :other WHERE id = :id", "DELETE FROM letter WHERE id = :id"):
        with pytest.raises(DBAPIError):
            with db.session.begin_nested():
                db.session.execute(text(statement), {"id": letter_id, "other": draft.id})
        db.session.rollback()
    assert db.session.get(Letter, letter_id).post_id == done.id


def test_a_finalized_letter_never_changes_and_goes_to_the_archive(ctx):
    case = case_with_recipients(category="follow_up")
    post = new_letter(case)
    service.save(user("radgjevar1"), post.id, "<p>Endeleg tekst</p>", 1)
    posts.finalize(user("radgjevar1"), post.id)
    post = db.session.get(JournalPost, post.id)
    letter = service.letter_of(post)
    assert post.status == PostStatus.FINALIZED and letter.rendered_sha256 == post.main_document.sha256
    assert "Endeleg tekst" in pdf_text(post.main_document.sha256)[1]
    assert [j.event for j in db.session.scalars(select(ArchiveJob).where(ArchiveJob.post_id == post.id))] == [
        "post_finalized"]
    with pytest.raises(DBAPIError):
        with db.session.begin_nested():
            db.session.execute(text("UPDATE letter SET body = 'endra' WHERE id = :id"), {"id": letter.id})
    db.session.rollback()
    assert db.session.get(Letter, letter.id).body == "<p>Endeleg tekst</p>"
    with pytest.raises(Conflict):
        service.save(user("radgjevar1"), post.id, "<p>Endra</p>", 2)


def test_an_outsider_gets_404_and_a_logged_refusal_on_every_letter_page(client, login_as):
    with client.application.app_context():
        case = case_with_recipients()
        post = new_letter(case)
        post_id, case_id = post.id, case.id
    login_as("radgjevar2")
    for method, url in (("get", f"/cases/{case_id}/letters/new"), ("post", f"/cases/{case_id}/letters/new"),
                        ("get", f"/posts/{post_id}/letter"), ("post", f"/posts/{post_id}/letter/save"),
                        ("get", f"/posts/{post_id}/letter/preview")):
        with client.application.app_context():
            before = len(activity_rows("not_found"))
        answer = getattr(client, method)(url, data={"body": "<p>x</p>", "version": "1"} if method == "post" else None)
        assert answer.status_code == 404, url
        assert b"Sakkunnig" not in answer.data
        with client.application.app_context():
            assert len(activity_rows("not_found")) == before + 1, url
    with client.application.app_context():
        assert service.letter_of(db.session.get(JournalPost, post_id)).version == 1


def test_the_pages_make_a_letter_save_it_as_htmx_and_preview_it(client, login_as):
    with client.application.app_context():
        case = case_with_recipients()
        tpl = template()
        case_id, tpl_id = case.id, tpl.id
        keys = [c.key for c in service.recipient_choices(user("radgjevar1"), case)]
    login_as("radgjevar1")
    page = client.get(f"/cases/{case_id}")
    assert f'href="/cases/{case_id}/letters/new"'.encode() in page.data
    form = client.get(f"/cases/{case_id}/letters/new")
    assert form.status_code == 200 and b'name="recipients"' in form.data
    refused = client.post(f"/cases/{case_id}/letters/new", data={"template_id": str(tpl_id), "form_token": "t1"})
    assert refused.status_code == 422 and b"recipients-err" in refused.data
    made = client.post(f"/cases/{case_id}/letters/new", data={"template_id": str(tpl_id), "recipients": keys,
                                                               "form_token": "t2"})
    assert made.status_code == 302 and "/letter" in made.headers["Location"]
    again = client.post(f"/cases/{case_id}/letters/new", data={"template_id": str(tpl_id), "recipients": keys,
                                                                "form_token": "t2"})
    assert again.headers["Location"] == made.headers["Location"]
    post_id = int(made.headers["Location"].split("/")[2])
    editor = client.get(f"/posts/{post_id}/letter")
    assert editor.status_code == 200 and b"data-rich-text" in editor.data and b'id="letter-state"' in editor.data
    assert b"quill-2.0.3.js" in editor.data and b'name="version" id="letter-version" value="1"' in editor.data
    hx = {"HX-Request": "true"}
    saved = client.post(f"/posts/{post_id}/letter/save", data={"body": "<p>Hei</p>", "version": "1"}, headers=hx)
    assert saved.status_code == 200 and b'data-state="saved"' in saved.data and b'value="2"' in saved.data
    stale = client.post(f"/posts/{post_id}/letter/save", data={"body": "<p>Gamal</p>", "version": "1"}, headers=hx)
    # The refusal hands back the version the stale page sent, never the newer one it could overwrite with.
    assert stale.status_code == 409 and b'data-state="conflict"' in stale.data and b'value="1"' in stale.data
    preview = client.get(f"/posts/{post_id}/letter/preview")
    assert preview.status_code == 200 and preview.mimetype == "application/pdf" and preview.data.startswith(b"%PDF")
    assert preview.headers["Cache-Control"] == "no-store"
    post_page = client.get(f"/posts/{post_id}")
    assert f'href="/posts/{post_id}/letter"'.encode() in post_page.data


def test_a_post_without_a_letter_leads_back_to_the_post(client, login_as):
    with client.application.app_context():
        plain = builders.post(builders.case("radgjevar1"))
        post_id = plain.id
    login_as("radgjevar1")
    for url in (f"/posts/{post_id}/letter", f"/posts/{post_id}/letter/preview"):
        answer = client.get(url)
        assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/posts/{post_id}")
    with client.application.app_context(), pytest.raises(NotFound):
        service.save(user("radgjevar1"), post_id, "<p>x</p>", 1)


def test_saving_the_text_already_saved_is_no_conflict_whatever_version_came_with_it(ctx):
    """A second flush (blur, hidden tab, the closing page's beacon) of text saved already names nobody."""
    post = new_letter(case_with_recipients())
    first = service.save(user("radgjevar1"), post.id, "<p>Same text</p>", 1)
    assert first.version == 2
    again = service.save(user("radgjevar1"), post.id, "<p>Same text</p><script>x()</script>", 1)
    assert again.version == 2 and again.body == "<p>Same text</p>"
    with pytest.raises(Conflict):
        service.save(user("radgjevar1"), post.id, "<p>Other text</p>", 1)
    assert service.letter_of(db.session.get(JournalPost, post.id)).version == 2


def test_the_preview_of_a_post_no_longer_a_draft_is_its_stored_main_document(ctx, monkeypatch):
    """What was approved is what Preview shows, not a fresh render (the letterhead, say, may have changed)."""
    import hashlib

    post = new_letter(case_with_recipients(category="follow_up"))
    service.save(user("radgjevar1"), post.id, "<p>Sendt tekst</p>", 1)
    posts.finalize(user("radgjevar1"), post.id)
    post = db.session.get(JournalPost, post.id)
    stored = post.main_document.sha256
    draft = new_letter(case_with_recipients(category="follow_up"))
    monkeypatch.setattr(service.pdf, "render", lambda page: b"%PDF- rendered now, with today's letterhead")
    data = service.preview(user("radgjevar1"), post.id)
    assert data is not None and hashlib.sha256(data).hexdigest() == stored
    assert service.preview(user("radgjevar1"), draft.id) == b"%PDF- rendered now, with today's letterhead"


def test_recipients_include_earlier_letters_recipients_and_never_the_client_as_guardian(ctx):
    """Recipients of earlier U posts are offered (a national id only if they had one); the client, registered
    as a correspondent with their own national id, is offered as the client, not as a guardian."""
    case = case_with_recipients()
    outgoing = posts.PostData(post_type="U", title="Brev", document_date=oslo_today(), correspondents=[
        posts.CorrespondentData(name="Helsesjukepleiar Hansen", address="Helsestasjonen"),
        posts.CorrespondentData(name=case.client.name, national_id=case.client.national_id)])
    posts.create_post(user("radgjevar1"), case.id, outgoing, posts.Upload(io.BytesIO(builders.make_pdf()), "u.pdf"))
    note = posts.PostData(post_type="N", title="Notat", document_date=oslo_today(), correspondents=[
        posts.CorrespondentData(name="Intern Kollega")])
    posts.create_post(user("radgjevar1"), case.id, note, posts.Upload(io.BytesIO(builders.make_pdf()), "n.pdf"))
    choices = {c.label: c for c in service.recipient_choices(user("radgjevar1"), case)}
    assert choices["Helsesjukepleiar Hansen"].kind == "recipient"
    assert choices["Helsesjukepleiar Hansen"].data.national_id == ""
    assert choices[case.client.name].kind == "client"
    assert choices["Kari Føresett"].kind == "guardian"
    assert "Intern Kollega" not in choices
    assert all(case.client.national_id not in c.key for c in choices.values())
    made = new_letter(case, keys=[choices["Helsesjukepleiar Hansen"].key])
    assert [(c.name, c.address, c.national_id) for c in made.correspondents] == [
        ("Helsesjukepleiar Hansen", "Helsestasjonen", None)]


def test_the_page_beacon_answers_204_and_leaves_no_message_for_a_later_page(client, login_as):
    """sendBeacon has nobody to read its answer: saved or refused, 204 and nothing flashed into the session."""
    with client.application.app_context():
        post_id = new_letter(case_with_recipients()).id
    login_as("radgjevar1")
    client.get(f"/posts/{post_id}/letter")
    answer = client.post(f"/posts/{post_id}/letter/save?beacon=1", data={"body": "<p>Beacon</p>", "version": "1"})
    assert answer.status_code == 204 and answer.data == b""
    again = client.post(f"/posts/{post_id}/letter/save?beacon=1", data={"body": "<p>Beacon</p>", "version": "1"})
    assert again.status_code == 204
    stale = client.post(f"/posts/{post_id}/letter/save?beacon=1", data={"body": "<p>Stale</p>", "version": "1"})
    assert stale.status_code == 204
    with client.session_transaction() as session:
        assert not session.get("_flashes")
    with client.application.app_context():
        letter = service.letter_of(db.session.get(JournalPost, post_id))
        assert letter.version == 2 and letter.body == "<p>Beacon</p>"
    page = client.get(f"/posts/{post_id}/letter").get_data(as_text=True)
    assert 'class="alert success"' not in page and 'data-state="conflict"' not in page


def test_without_js_a_refused_save_shows_the_editor_again_with_the_text_sent(client, login_as):
    """No redirect that drops the text: the page comes back (409) with it in the field and the reason."""
    with client.application.app_context():
        post_id = new_letter(case_with_recipients()).id
        service.save(user("radgjevar1"), post_id, "<p>Someone else's</p>", 1)
    login_as("radgjevar1")
    refused = client.post(f"/posts/{post_id}/letter/save", data={"body": "<p>Mine, typed offline</p>",
                                                                 "version": "1"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "&lt;p&gt;Mine, typed offline&lt;/p&gt;</textarea>" in page
    assert 'data-state="conflict"' in page and 'id="letter-version" value="1"' in page
    saved = client.post(f"/posts/{post_id}/letter/save", data={"body": "<p>Mine</p>", "version": "2"})
    assert saved.status_code == 302
    with client.application.app_context():
        assert service.letter_of(db.session.get(JournalPost, post_id)).body == "<p>Mine</p>"


def test_an_htmx_save_answer_has_one_vary_header_and_the_status_line(client, login_as):
    with client.application.app_context():
        post_id = new_letter(case_with_recipients()).id
    login_as("radgjevar1")
    answer = client.post(f"/posts/{post_id}/letter/save", data={"body": "<p>Hei</p>", "version": "1"},
                         headers={"HX-Request": "true"})
    assert answer.status_code == 200 and b'id="letter-state"' in answer.data and b'value="2"' in answer.data
    assert [v.strip() for v in ",".join(answer.headers.getlist("Vary")).split(",")].count("HX-Request") == 1


def test_the_letter_page_says_honestly_what_its_buttons_do_and_who_may_edit(client, login_as):
    """The draft's link only opens the post page; a colleague without journal rights is told they may not
    edit (not that the letter is done), and a finished letter's page tells the browser to forget its copy."""
    with client.application.app_context():
        post_id = new_letter(case_with_recipients(category="follow_up")).id
    login_as("radgjevar1")
    page = client.get(f"/posts/{post_id}/letter").get_data(as_text=True)
    assert 'id="letter-to-post"' in page and 'hx-swap="none"' in page and 'data-letter-post="' in page
    assert 'id="letter-restore"' in page and "data-letter-done" not in page
    leader = client.application.test_client()
    assert sign_in(leader, "leiar").status_code == 302
    page = leader.get(f"/posts/{post_id}/letter").get_data(as_text=True)
    assert 'id="letter-locked" data-reason="not-allowed"' in page and "data-letter-done" not in page
    with client.application.app_context():
        posts.finalize(user("radgjevar1"), post_id)
    page = client.get(f"/posts/{post_id}/letter").get_data(as_text=True)
    assert 'id="letter-locked" data-reason="done"' in page and f'data-letter-done="{post_id}"' in page


def test_the_new_letter_page_does_not_precheck_the_client_and_offers_earlier_recipients(client, login_as):
    with client.application.app_context():
        case = case_with_recipients()
        outgoing = posts.PostData(post_type="U", title="Brev", document_date=oslo_today(), correspondents=[
            posts.CorrespondentData(name="Helsesjukepleiar Hansen"),
            posts.CorrespondentData(name=case.client.name, national_id=case.client.national_id)])
        posts.create_post(user("radgjevar1"), case.id, outgoing,
                          posts.Upload(io.BytesIO(builders.make_pdf()), "u.pdf"))
        case_id = case.id
        keys = {c.kind: c.key for c in service.recipient_choices(user("radgjevar1"), case)}
    login_as("radgjevar1")
    page = client.get(f"/cases/{case_id}/letters/new").get_data(as_text=True)
    assert f'value="{keys["guardian"]}" data-kind="guardian" checked' in page
    assert f'value="{keys["client"]}" data-kind="client" >' in page
    assert f'value="{keys["recipient"]}" data-kind="recipient" >' in page
    assert 'id="recipients-hint"' in page and "js/editor.js" in page


def test_the_preview_of_a_sent_letter_whose_stored_file_changed_says_so_and_shows_nothing(ctx):
    """The stored main document is shown only as it was stored (files.paths.read_checked)."""
    from ppt_web.files.storage import StoredFileFault, file_path

    post = new_letter(case_with_recipients(category="follow_up"))
    service.save(user("radgjevar1"), post.id, "<p>Sendt tekst</p>", 1)
    posts.finalize(user("radgjevar1"), post.id)
    path = file_path(db.session.get(JournalPost, post.id).main_document.sha256)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b"\n% endra\n")
    with pytest.raises(StoredFileFault) as refused:
        service.preview(user("radgjevar1"), post.id)
    assert refused.value.status == 409 and not refused.value.missing
