"""Signing out of the box: with no certificate configured the app makes a local test certificate at start,
signs with it, and every such signature says it is a test signature; a configured certificate replaces it."""
from __future__ import annotations

import hashlib
import io
import logging
import re
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from pypdf import PdfReader
from sqlalchemy import select

from ppt_web import signing_setup
from ppt_web.cases import approval, esign, posts
from ppt_web.clock import today as oslo_today
from ppt_web.errors import Conflict
from ppt_web.extensions import db
from ppt_web.files.storage import file_path
from ppt_web.models import JournalPost, PostSignature, PostStatus
from ppt_web.signing import load_signer, sign_pdf, verify_pdf

from . import builders
from .conftest import activity_rows, user
from .helpers import ROOT, make_test_certificate
from .test_signing import stamp_text

TEST_MARK = "data-test-signature"


def assessment(title: str = "Sakkunnig vurdering", category: str = "expert_assessment") -> JournalPost:
    """A complete outgoing draft to a guardian (an expert assessment goes to approval)."""
    case = builders.case(handler="radgjevar1", category=category)
    data = posts.PostData(post_type="U", title=title, document_date=oslo_today(),
                          correspondents=[posts.CorrespondentData(name="Kari Føresett", address="Skulevegen 1",
                                                                  national_id=builders.valid_national_id(910))])
    return posts.create_post(user("radgjevar1"), case.id, data,
                             posts.Upload(io.BytesIO(builders.make_pdf(2)), "vurdering.pdf"))


def waiting_for_leiar(app) -> int:
    with app.app_context():
        post = assessment()
        approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id)
        return post.id


def cert_of(app) -> x509.Certificate:
    cert = pkcs12.load_key_and_certificates(signing_setup.test_certificate_path(app).read_bytes(), None)[1]
    assert cert is not None
    return cert


def stamp_of_last_signature(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    widgets = [a.get_object() for a in reader.pages[-1]["/Annots"]]
    return stamp_text(widgets[-1])


def configure_real_certificate(app, tmp_path) -> bytes:
    """PPT_SIGNING_P12 set to a certificate from a (test) CA, as an operator would; returns the CA PEM."""
    p12, ca = make_test_certificate("PPT Ulstein kommune", organisation="Ulstein kommune")
    (tmp_path / "service.p12").write_bytes(p12)
    app.config.update(PPT_SIGNING_P12=str(tmp_path / "service.p12"), PPT_SIGNING_PASSWORD="test")
    return ca


def test_a_fresh_start_makes_a_private_test_certificate_and_says_so(app, caplog):
    path = signing_setup.test_certificate_path(app)
    assert path == Path(app.instance_path) / "signing" / "test-signature.p12"
    assert path.is_file()  # made when the app started, before anyone signs
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0  # not readable by others either
    assert [p.name for p in path.parent.iterdir()] == ["test-signature.p12"]  # no temporary files left
    first = path.read_bytes()

    with caplog.at_level(logging.WARNING, logger="ppt_web.signing_setup"):
        signing_setup.init_app(app)  # a second start (another process) keeps the same certificate
    assert path.read_bytes() == first
    [warning] = [r for r in caplog.records if r.name == "ppt_web.signing_setup"]
    assert warning.levelno == logging.WARNING
    assert "PPT_SIGNING_P12" in warning.getMessage() and "test certificate" in warning.getMessage()
    use = signing_setup.credentials(app)
    assert (use.p12, use.password, use.test) == (path, None, True)


def test_the_test_certificate_is_self_signed_for_signing_and_named_as_a_test(app):
    app.config["PPT_LETTERHEAD"] = {"name": "PPT Ulstein og Hareid"}
    cert_bytes = signing_setup.make_test_certificate(signing_setup._organisation(app))
    key, cert, extra = pkcs12.load_key_and_certificates(cert_bytes, None)  # no password
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert cert is not None and extra == []
    assert cert.issuer == cert.subject
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "PPT testsignatur (ikkje gyldig)"
    assert cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == "PPT Ulstein og Hareid (test)"
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    now = datetime.now(UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc > now + timedelta(days=9 * 365)
    app.config["PPT_LETTERHEAD"] = {}
    assert "O=PPT (test)" in subject_of(signing_setup.make_test_certificate(signing_setup._organisation(app)))


def subject_of(p12: bytes) -> str:
    cert = pkcs12.load_key_and_certificates(p12, None)[1]
    assert cert is not None
    return cert.subject.rfc4514_string()


def test_with_no_certificate_configured_the_approver_signs_and_every_page_says_test_signature(app, client, login_as):
    post_id = waiting_for_leiar(app)
    login_as("leiar")
    page = client.get(f"/posts/{post_id}").get_data(as_text=True)
    [checkbox] = re.findall(r'<input[^>]*name="sign"[^>]*>', page)
    assert "checked" not in checkbox  # offered, but a test signature is given on purpose, not by default
    assert TEST_MARK in page  # the approval form warns that the signature will be a test signature

    response = client.post(f"/posts/{post_id}/approve", data={"comment": "", "sign": "y"})
    assert response.status_code == 302

    login_as("radgjevar1")
    page = client.get(f"/posts/{post_id}").get_data(as_text=True)
    signatures = page.split('class="list signatures"')[1].split("</ul>")[0]
    assert signatures.count(TEST_MARK) == 2  # the signature in the list, and the check of the file
    assert "signature-check" in signatures and "PPT testsignatur (ikkje gyldig)" in signatures

    with app.app_context():
        post = db.session.get(JournalPost, post_id)
        assert post.status == PostStatus.FINALIZED
        (row,) = db.session.scalars(select(PostSignature).where(PostSignature.post_id == post_id))
        assert row.signed_by.username == "leiar" and post.main_document.sha256 == row.signed_sha256
        signed = file_path(row.signed_sha256).read_bytes()
        assert signed.startswith(file_path(row.unsigned_sha256).read_bytes())
        (status,) = esign.signature_status(post)
        assert status.test and status.intact and status.valid and not status.trusted
        assert "test certificate" in status.summary
        [event] = [e for e in post.events if e.kind == "signed"]
        assert event.detail.get("test_certificate") is True
        [logged] = activity_rows("post_signed")
        assert logged.after.get("test_certificate") is True
    assert "TESTSIGNATUR: ikkje ei gyldig elektronisk signatur" in stamp_of_last_signature(signed)
    assert "Elektronisk signert av Ingrid Leiar" in stamp_of_last_signature(signed)

    # With the test certificate as trust root the signature is whole and trusted: it is a real signature,
    # only not one anybody else should trust.
    cert = cert_of(app)
    [trusted] = verify_pdf(signed, trust_roots=[cert.public_bytes(Encoding.PEM)])
    assert trusted.intact and trusted.valid and trusted.trusted and trusted.covers_whole_file


def test_the_handler_signs_a_letter_without_any_setup(app, ctx):
    letter = assessment(title="Brev til skulen", category="follow_up")
    esign.sign(user("radgjevar1"), letter.id)
    posts.finalize(user("radgjevar1"), letter.id)
    letter = db.session.get(JournalPost, letter.id)
    [shown] = esign.signatures(letter)
    assert shown.test and shown.signed_by.username == "radgjevar1"
    (status,) = esign.signature_status(letter)
    assert status.test and status.intact and status.valid
    assert status.certificate_sha256 == hashlib.sha256(cert_of(app).public_bytes(Encoding.DER)).hexdigest()


def test_a_configured_certificate_replaces_the_test_one(app, client, login_as, tmp_path):
    assert signing_setup.test_certificate_path(app).is_file()  # made at start; set aside once configured
    ca = configure_real_certificate(app, tmp_path)
    app.config["PPT_SIGNING_TRUST_ROOT"] = str(tmp_path / "ca.pem")
    (tmp_path / "ca.pem").write_bytes(ca)
    post_id = waiting_for_leiar(app)
    login_as("leiar")
    page = client.get(f"/posts/{post_id}").get_data(as_text=True)
    assert 'name="sign"' in page and TEST_MARK not in page
    [checkbox] = re.findall(r'<input[^>]*name="sign"[^>]*>', page)
    assert "checked" in checkbox  # the service's own certificate signs by default
    assert client.post(f"/posts/{post_id}/approve", data={"comment": "", "sign": "y"}).status_code == 302

    page = client.get(f"/posts/{post_id}").get_data(as_text=True)
    assert 'class="list signatures"' in page and TEST_MARK not in page
    assert "PPT Ulstein kommune" in page
    with app.app_context():
        post = db.session.get(JournalPost, post_id)
        (status,) = esign.signature_status(post)
        assert not status.test and status.trusted and "PPT Ulstein kommune" in status.signer_subject
        assert not esign.signatures(post)[0].test
        assert "test_certificate" not in activity_rows("post_signed")[0].after
        signed = file_path(post.main_document.sha256).read_bytes()
    assert "TESTSIGNATUR" not in stamp_of_last_signature(signed)


def test_a_test_signature_is_still_recognised_after_the_test_certificate_is_gone(app, ctx, tmp_path):
    letter = assessment(title="Brev", category="follow_up")
    esign.sign(user("radgjevar1"), letter.id)
    signing_setup.test_certificate_path(app).unlink()  # the instance folder was cleaned
    configure_real_certificate(app, tmp_path)
    letter = db.session.get(JournalPost, letter.id)
    (status,) = esign.signature_status(letter)
    assert status.test  # by the certificate's name, now that the fingerprint is unknown
    assert esign.signatures(letter)[0].test


def test_signatures_are_marked_test_by_fingerprint(tmp_path):
    path = signing_setup.ensure_test_certificate(tmp_path / "signing" / "test-signature.p12", "PPT (test)")
    signer = load_signer(path, None)
    fingerprint = hashlib.sha256(signer.signing_cert.dump()).hexdigest()
    signed = sign_pdf(builders.make_pdf(1), signer, signer_name="Kari", reason="", location="", test=True)
    [marked] = verify_pdf(signed, test_certificates={fingerprint.upper()})
    assert marked.test and marked.certificate_sha256 == fingerprint
    [unmarked] = verify_pdf(signed)
    assert not unmarked.test and unmarked.certificate_sha256 == fingerprint


def test_signing_is_refused_clearly_when_no_test_certificate_can_be_made(app, ctx, caplog):
    folder = signing_setup.test_certificate_path(app).parent
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()
    folder.write_text("not a folder")  # the instance folder cannot hold the certificate
    letter = assessment(title="Brev", category="follow_up")
    unsigned = letter.main_document.sha256
    with pytest.raises(Conflict) as refused:
        esign.sign(user("radgjevar1"), letter.id)
    assert "administrator" in str(refused.value.message)
    db.session.rollback()
    assert db.session.scalar(select(PostSignature)) is None
    assert db.session.get(JournalPost, letter.id).main_document.sha256 == unsigned

    with caplog.at_level(logging.ERROR, logger="ppt_web.signing_setup"):
        signing_setup.init_app(app)  # at start it only says so: the app must still come up
    assert any("PPT_SIGNING_P12" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_a_configured_certificate_that_is_missing_is_reported_at_start(app, caplog, tmp_path):
    app.config["PPT_SIGNING_P12"] = str(tmp_path / "nowhere.p12")
    with caplog.at_level(logging.WARNING, logger="ppt_web.signing_setup"):
        signing_setup.init_app(app)
    [record] = [r for r in caplog.records if r.name == "ppt_web.signing_setup"]
    assert record.levelno == logging.ERROR and "PPT_SIGNING_P12" in record.getMessage()


def test_a_lost_race_uses_the_certificate_that_won(tmp_path, monkeypatch):
    """Another process links its certificate between our check and our link: ours is dropped, theirs used."""
    path = tmp_path / "signing" / "test-signature.p12"
    theirs = signing_setup.make_test_certificate("Dei andre (test)")
    make = signing_setup.make_test_certificate

    def make_while_another_wins(organisation):
        path.write_bytes(theirs)
        return make(organisation)

    monkeypatch.setattr(signing_setup, "make_test_certificate", make_while_another_wins)
    assert signing_setup.ensure_test_certificate(path, "Vi (test)") == path
    assert path.read_bytes() == theirs
    assert [p.name for p in path.parent.iterdir()] == ["test-signature.p12"]


def test_threads_starting_at_once_end_with_one_certificate(tmp_path):
    path = tmp_path / "signing" / "test-signature.p12"
    start = threading.Barrier(8)
    seen: list[bytes] = []

    def one():
        start.wait()
        seen.append(signing_setup.ensure_test_certificate(path, "PPT (test)").read_bytes())

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and len(set(seen)) == 1
    assert load_signer(path, None).signing_cert is not None


RACER = """
import sys, time
from pathlib import Path
from ppt_web import signing_setup
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
path = signing_setup.ensure_test_certificate(Path(sys.argv[1]), "PPT (test)")
import hashlib
print(hashlib.sha256(path.read_bytes()).hexdigest())
"""


@pytest.mark.slow
@pytest.mark.one_database  # no database at all: files and processes
def test_processes_starting_at_once_end_with_one_usable_certificate(tmp_path):
    path = tmp_path / "instance" / "signing" / "test-signature.p12"
    go = tmp_path / "go"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(path), str(go)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True) for _ in range(6)]
    time.sleep(1.5)  # every racer has imported and waits for the start
    go.touch()
    digests = [r.communicate(timeout=60)[0].strip() for r in racers]
    assert all(r.returncode == 0 for r in racers)
    assert len(set(digests)) == 1 and digests[0] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.name for p in path.parent.iterdir()] == ["test-signature.p12"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signer(path, None).signing_cert is not None


def test_a_test_certificate_readable_by_others_is_made_private_again(app, caplog):
    """After a restore that widened its mode, the key is readable by the app's user only again on first use."""
    path = signing_setup.test_certificate_path(app)
    path.chmod(0o644)
    path.parent.chmod(0o755)
    with app.app_context():
        assert signing_setup.credentials().p12 == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "readable by others" in caplog.text
