"""A stored file is used only as it was stored: its bytes are checked against their SHA-256 wherever the app
sends, signs or shows them. Before, only the archive's way out checked: a file changed on disk (a disk fault,
a restore gone wrong, a hand in the folder) went to the recipients by SvarUt, was shown as the document and
was signed, without a word."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ppt_web.cases import approval, esign, posts
from ppt_web.clock import today as oslo_today
from ppt_web.dispatch import service as dispatch
from ppt_web.extensions import db
from ppt_web.files.storage import StoredFileFault, file_path
from ppt_web.models import ArchiveJob, Dispatch, DispatchStatus, JournalPost, PostStatus
from ppt_web.outbound.folder import FolderAdapter
from ppt_web.postreg import split, upload

from . import builders
from .conftest import user

CHANGED = "har endra seg sidan ho vart lagra"
MISSING = "manglar i fillageret"


def outgoing_letter(name: str = "brev.pdf") -> JournalPost:
    case = builders.case(category="follow_up")
    post = posts.create_post(user("radgjevar1"), case.id, posts.PostData(
        post_type="U", title="Brev til heimen", document_date=oslo_today(), correspondents=[posts.CorrespondentData(
            name="Kari Føresett", address="Heimvegen 3, 6065 Ulsteinvik", national_id=builders.valid_national_id(907))]),
        posts.Upload(io.BytesIO(builders.make_pdf(tag=name)), name))
    posts.finalize(user("radgjevar1"), post.id)
    return db.session.get(JournalPost, post.id)


def change_on_disk(sha256: str, to: bytes | None = None) -> Path:
    """The stored bytes changed in place: to other bytes, or by a line appended after the end."""
    path = file_path(sha256)
    path.chmod(0o644)
    path.write_bytes(to if to is not None else path.read_bytes().replace(b"%%EOF", b"%%EOF\n% endra\n"))
    return path


def test_a_letter_whose_file_changed_on_disk_is_not_sent_and_the_failure_says_why(app, ctx):
    post = outgoing_letter()
    (row,) = dispatch.request_dispatch(user("radgjevar1"), post.id)
    change_on_disk(post.main_document.sha256)
    adapter = FolderAdapter(Path(app.config["PPT_SVARUT_DIR"]))
    assert dispatch.process(row.id, adapter) == "failed"  # at once: trying again would send the same wrong bytes
    db.session.expire_all()
    row = db.session.get(Dispatch, row.id)
    assert row.status == DispatchStatus.FAILED and not row.outcome_unknown
    assert CHANGED in row.message and "brev.pdf" in row.message
    assert not (Path(app.config["PPT_SVARUT_DIR"]) / "ut").exists() or \
        not any((Path(app.config["PPT_SVARUT_DIR"]) / "ut").iterdir())  # nothing went out


def test_a_dispatch_is_refused_at_once_when_a_file_is_missing_or_changed(ctx):
    for harm in ("changed", "missing"):
        post = outgoing_letter(f"{harm}.pdf")
        path = file_path(post.main_document.sha256)
        if harm == "changed":
            change_on_disk(post.main_document.sha256)
        else:
            path.unlink()
        with pytest.raises(StoredFileFault) as refused:
            dispatch.request_dispatch(user("radgjevar1"), post.id)
        assert refused.value.status == 409 and refused.value.missing == (harm == "missing")
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Dispatch).where(Dispatch.post_id == post.id)) == 0


def test_a_changed_or_missing_document_is_not_shown_as_the_document(app, login_as):
    with app.app_context():
        post = outgoing_letter("vis.pdf")
        document_id, sha256 = post.main_document.id, post.main_document.sha256
        db.session.remove()
    web = login_as("radgjevar1")
    assert web.get(f"/documents/{document_id}").status_code == 200
    with app.app_context():
        path = change_on_disk(sha256)
    shown = web.get(f"/documents/{document_id}")
    assert shown.status_code == 409 and not shown.data.startswith(b"%PDF")
    assert CHANGED in shown.get_data(as_text=True) and "vis.pdf" in shown.get_data(as_text=True)
    path.unlink()
    gone = web.get(f"/documents/{document_id}")
    assert gone.status_code == 409 and MISSING in gone.get_data(as_text=True)


def test_a_changed_scan_is_not_shown_nor_split(app, login_as):
    with app.app_context():
        item = upload.receive_upload(user("sekretaer"), io.BytesIO(builders.make_pdf(4, tag="skann")), "skann.pdf")
        db.session.commit()
        item_id, sha256 = item.id, item.sha256
        change_on_disk(sha256)
        with pytest.raises(StoredFileFault):
            split.split(user("sekretaer"), item_id, "1-2, 3-4")
        db.session.rollback()
        db.session.remove()
    shown = login_as("sekretaer").get(f"/post-registration/{item_id}/file")
    assert shown.status_code == 409 and CHANGED in shown.get_data(as_text=True)


def test_a_changed_main_document_is_not_signed(ctx):
    draft = builders.post(builders.case(category="follow_up"), post_type="U", title="Til signering",
                          correspondent="Kari Føresett")
    sha256 = draft.main_document.sha256
    change_on_disk(sha256)
    with pytest.raises(StoredFileFault):
        esign.sign(user("radgjevar1"), draft.id)
    db.session.rollback()
    post = db.session.get(JournalPost, draft.id)
    assert post.main_document.sha256 == sha256 and esign.signatures(post) == []


def test_a_signed_letter_whose_file_changed_on_disk_shows_the_signature_as_not_verifying(app, login_as):
    """Even a change after the signed byte range (bytes appended at the end), which a check of the signature
    alone may pass: the post page says in red that the signature does not verify, not "replaced"."""
    with app.app_context():
        draft = builders.post(builders.case(category="follow_up"), post_type="U", title="Signert brev",
                              correspondent="Kari Føresett")
        esign.sign(user("radgjevar1"), draft.id)
        post = db.session.get(JournalPost, draft.id)
        post_id, sha256 = post.id, post.main_document.sha256
        db.session.remove()
    web = login_as("radgjevar1")
    assert "Signaturen er gyldig" in web.get(f"/posts/{post_id}").get_data(as_text=True)
    with app.app_context():
        change_on_disk(sha256)
    html = web.get(f"/posts/{post_id}").get_data(as_text=True)
    assert 'class="error signature-check"' in html and "Signaturen er IKKJE gyldig" in html
    assert "bytt ut etter at det vart signert" not in html


def test_storing_the_same_bytes_again_repairs_a_changed_file_and_no_page_image_is_made_of_wrong_bytes(
        app, login_as):
    """Page images are made from checked bytes only (they are made again when missing, as after a restore),
    and an upload of the bytes a changed file should hold puts them back ("put the file back, then retry")."""
    original = builders.make_pdf(2, tag="reparert")
    with app.app_context():
        item = upload.receive_upload(user("sekretaer"), io.BytesIO(original), "skann.pdf")
        db.session.commit()
        item_id, sha256 = item.id, item.sha256
        shutil.rmtree(Path(app.instance_path) / "previews" / sha256[:2] / sha256)  # as after a restore
        change_on_disk(sha256, to=builders.make_pdf(3, tag="ein annan"))  # another letter, a good PDF
        db.session.remove()
    web = login_as("sekretaer")
    assert web.get(f"/post-registration/{item_id}/pages/1.jpg").status_code != 200
    assert not (Path(app.instance_path) / "previews" / sha256[:2] / sha256).exists()
    with app.app_context():  # the same letter filed by hand as a post's document
        again = builders.post(builders.case(), pdf=original)
        assert again.main_document.sha256 == sha256 and file_path(sha256).read_bytes() == original
        db.session.remove()
    assert web.get(f"/post-registration/{item_id}/file").status_code == 200
    assert web.get(f"/post-registration/{item_id}/pages/1.jpg").status_code == 200


def test_a_post_whose_file_changed_on_disk_is_not_finalized_nor_approved(ctx):
    """Finalizing records the stored file as the post's for good: not one that no longer is what was stored."""
    draft = builders.post(builders.case(category="follow_up"), post_type="N", title="Notat")
    change_on_disk(draft.main_document.sha256)
    with pytest.raises(StoredFileFault):
        posts.finalize(user("radgjevar1"), draft.id)
    db.session.rollback()
    assessment = builders.post(builders.case(), post_type="U", title="Sakkunnig vurdering",
                               correspondent="Kari Føresett")
    approval.send_for_approval(user("radgjevar1"), assessment.id, user("leiar").id)
    change_on_disk(assessment.main_document.sha256)
    with pytest.raises(StoredFileFault):
        approval.approve(user("leiar"), assessment.id)  # without signing too
    db.session.rollback()
    assert db.session.get(JournalPost, draft.id).status == PostStatus.DRAFT
    assert db.session.get(JournalPost, assessment.id).status == PostStatus.AWAITING_APPROVAL
    assert db.session.scalar(select(func.count()).select_from(ArchiveJob).where(
        ArchiveJob.post_id.in_([draft.id, assessment.id]))) == 0


def test_a_stored_file_that_cannot_be_read_is_a_clear_refusal_not_an_error_page(app, login_as):
    """No permission, an I/O error, a folder where the file should be: a 409 that names the file, as for a
    missing or changed one (it was a 500, and finalizing, a re-upload and page images failed with it)."""
    with app.app_context():
        draft = builders.post(builders.case(category="follow_up"), post_type="N", title="Uleseleg")
        post_id, document_id, sha256 = draft.id, draft.main_document.id, draft.main_document.sha256
        original = file_path(sha256).read_bytes()
        file_path(sha256).unlink()
        file_path(sha256).mkdir()  # read as a file, a folder fails as an unreadable one does (also for root)
        with pytest.raises(StoredFileFault) as refused:
            posts.finalize(user("radgjevar1"), post_id)
        assert refused.value.state == "unreadable" and refused.value.status == 409
        db.session.rollback()
        with pytest.raises(StoredFileFault):  # the same bytes stored again cannot take the folder's place
            builders.post(builders.case(), pdf=original)
        db.session.rollback()
        db.session.remove()
    web = login_as("radgjevar1")
    shown = web.get(f"/documents/{document_id}")
    assert shown.status_code == 409 and "kan ikkje lesast" in shown.get_data(as_text=True)
    finalize = web.post(f"/posts/{post_id}/finalize", follow_redirects=True)
    assert finalize.status_code != 500 and "kan ikkje lesast" in finalize.get_data(as_text=True)


def test_storing_the_same_bytes_again_replaces_an_unreadable_file_and_a_concurrent_upload_is_no_fault(
        ctx, monkeypatch, caplog):
    from ppt_web.files import paths, storage

    pdf = builders.make_pdf(tag="to gonger")
    first = builders.post(builders.case(), pdf=pdf)
    sha256 = first.main_document.sha256
    real_open = open

    def no_permission(file, *args, **kwargs):  # as for a file restored by root with mode 600
        if str(file) == str(file_path(sha256)):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(paths, "open", no_permission, raising=False)
        assert paths.state_of(sha256)[0] == "unreadable"
        builders.post(builders.case(), pdf=pdf)  # stored again: replaces it
    assert paths.state_of(sha256)[0] == "intact"
    assert "was unreadable; replaced by an upload of the same bytes" in caplog.text
    caplog.clear()

    other = builders.make_pdf(tag="samstundes")
    real_state_of = storage.state_of

    def while_another_upload_puts_them_in_place(digest):  # found missing; in place a moment later
        found = real_state_of(digest)
        file_path(digest).parent.mkdir(parents=True, exist_ok=True)
        file_path(digest).write_bytes(other)
        return found

    monkeypatch.setattr(storage, "state_of", while_another_upload_puts_them_in_place)
    made = builders.post(builders.case(), pdf=other)
    assert file_path(made.main_document.sha256).read_bytes() == other
    assert "replaced" not in caplog.text and "stored file" not in caplog.text
