"""PAdES signing and signature checks (ppt_web.signing), with certificates made at test time."""
from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ContentStream

from ppt_web.files.pdfchild import check
from ppt_web.generate import text_pdf
from ppt_web.signing import (
    SignatureStatus,
    SigningError,
    load_signer,
    sign_pdf,
    verify_pdf,
)

from .helpers import make_test_certificate

pytestmark = pytest.mark.one_database  # engine-independent: CI runs it on one database


SIGNER_NAME = "Kari Nordmann-Ødegård"


def pypdf_pdf(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def kari(tmp_path_factory):
    """(signer, CA PEM, p12 path) for a test certificate issued to Kari Nordmann."""
    p12, ca_pem = make_test_certificate("Kari Nordmann", passphrase=b"hemmeleg")
    path = tmp_path_factory.mktemp("certs") / "kari.p12"
    path.write_bytes(p12)
    return load_signer(path, "hemmeleg"), ca_pem, path


@pytest.fixture(scope="module")
def ola(tmp_path_factory):
    p12, ca_pem = make_test_certificate("Ola Hansen", organisation="Andre kommune")
    path = tmp_path_factory.mktemp("certs") / "ola.p12"
    path.write_bytes(p12)
    return load_signer(path, "test"), ca_pem, path


def sign(pdf: bytes, signer, name: str = SIGNER_NAME, **kwargs) -> bytes:
    return sign_pdf(pdf, signer, signer_name=name, reason="Vedtak om spesialundervisning",
                    location="Ulstein kommune", **kwargs)


def stamp_text(annot) -> str:
    """The strings shown by a widget's normal appearance (Tj/TJ operands, decoded)."""
    stream = annot["/AP"]["/N"].get_object()
    parts = []

    def collect(xobject):
        content = ContentStream(xobject, None)
        for operands, operator in content.operations:
            if operator == b"Tj":
                parts.append(str(operands[0]))
            elif operator == b"TJ":
                parts.extend(str(o) for o in operands[0] if isinstance(o, str))
        for sub in (xobject.get("/Resources", {}).get("/XObject", {}) or {}).values():
            collect(sub.get_object())

    collect(stream)
    return "\n".join(parts)


@pytest.mark.parametrize("make", [lambda: pypdf_pdf(2), lambda: text_pdf("Sakkunnig vurdering", 3)],
                         ids=["pypdf", "text_pdf"])
def test_sign_keeps_original_and_verifies(kari, make, tmp_path):
    signer, ca_pem, _ = kari
    original = make()
    pages = len(PdfReader(io.BytesIO(original)).pages)

    signed = sign(original, signer)

    assert signed.startswith(original) and len(signed) > len(original)
    [status] = verify_pdf(signed)
    assert isinstance(status, SignatureStatus)
    assert status.signed and status.intact and status.valid and status.covers_whole_file
    assert not status.trusted  # no trust roots given: nothing is trusted
    assert "Kari Nordmann" in status.signer_subject
    assert status.signed_at is not None
    assert abs(status.signed_at - datetime.now(UTC)) < timedelta(minutes=2)
    assert "intact" in status.summary and "not from a trusted issuer" in status.summary

    [trusted] = verify_pdf(signed, trust_roots=[ca_pem])
    assert trusted.trusted and trusted.intact and trusted.valid and trusted.covers_whole_file

    # the app's own upload check still accepts it, with the same page count
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    assert check(path) == {"ok": True, "pages": pages}


def test_visible_stamp_on_last_page_names_signer_and_time(kari):
    signer, _, _ = kari
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    signed = sign(text_pdf("Brev", 2), signer, when=when)

    reader = PdfReader(io.BytesIO(signed))
    assert not reader.pages[0].get("/Annots")
    widgets = [a.get_object() for a in reader.pages[-1]["/Annots"]]
    [widget] = [w for w in widgets if w.get("/FT") == "/Sig" or w.get("/Parent", {}).get("/FT") == "/Sig"]
    x1, y1, x2, y2 = (float(v) for v in widget["/Rect"])
    assert x2 - x1 > 100 and y2 - y1 > 20  # visible, not a zero-size field
    assert y1 < 842 / 4  # near the bottom of the page

    text = stamp_text(widget)
    assert f"Elektronisk signert av {SIGNER_NAME}" in text
    oslo = when.astimezone(ZoneInfo("Europe/Oslo"))
    assert oslo.strftime("%d.%m.%Y kl. %H:%M:%S") in text
    assert "Kari Nordmann, Testkommune PPT" in text  # the certificate

    sig = widget["/V"].get_object()
    assert sig["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES
    assert sig["/Name"] == SIGNER_NAME and sig["/Reason"] == "Vedtak om spesialundervisning"
    [status] = verify_pdf(signed)
    assert status.signed_at == when


def test_second_signer_gives_two_intact_signatures(kari, ola, tmp_path):
    first = sign(pypdf_pdf(), kari[0])
    both = sign(first, ola[0], name="Ola Hansen")
    assert both.startswith(first)

    statuses = verify_pdf(both, trust_roots=[kari[1], ola[1]])
    assert [("Kari Nordmann" in s.signer_subject, "Ola Hansen" in s.signer_subject) for s in statuses] == [
        (True, False), (False, True)]
    assert all(s.intact and s.valid and s.trusted for s in statuses)
    assert [s.covers_whole_file for s in statuses] == [False, True]
    assert "only further signatures" in statuses[0].summary

    # only Kari's CA given: Ola's signature is intact but not trusted
    assert [s.trusted for s in verify_pdf(both, trust_roots=[kari[1]])] == [True, False]

    # the two stamps do not overlap
    reader = PdfReader(io.BytesIO(both))
    rects = [[float(v) for v in a.get_object()["/Rect"]] for a in reader.pages[-1]["/Annots"]]
    assert len(rects) == 2 and (rects[0][2] <= rects[1][0] or rects[1][2] <= rects[0][0]
                                or rects[0][3] <= rects[1][1] or rects[1][3] <= rects[0][1])
    path = tmp_path / "both.pdf"
    path.write_bytes(both)
    assert check(path) == {"ok": True, "pages": 1}


def test_changed_byte_in_signed_range_breaks_signature(kari):
    signed = sign(text_pdf("Brev", 2), kari[0])
    assert signed.count(b"(Side 1 av 2)") == 1
    tampered = signed.replace(b"(Side 1 av 2)", b"(Side 9 av 2)")

    [status] = verify_pdf(tampered, trust_roots=[kari[1]])
    assert status.signed and not status.intact
    assert "altered" in status.summary


def test_update_appended_after_signing_is_reported(kari):
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    signed = sign(text_pdf("Brev", 1), kari[0])
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    writer.add_stream_to_page(0, writer.add_object(generic.StreamObject(
        stream_data=b"BT /F1 30 Tf 72 400 Td (ENDRA) Tj ET")))
    out = io.BytesIO()
    writer.write(out)
    changed = out.getvalue()
    assert changed.startswith(signed)

    [status] = verify_pdf(changed, trust_roots=[kari[1]])
    assert status.intact and status.valid  # the signed revision itself is untouched
    assert not status.covers_whole_file
    assert "changed after this signature" in status.summary

    [junk] = verify_pdf(signed + b"\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", trust_roots=[kari[1]])
    assert not junk.covers_whole_file


def test_unsigned_pdf_has_no_signatures():
    assert verify_pdf(pypdf_pdf()) == []
    assert verify_pdf(text_pdf("Usignert")) == []


def test_not_a_pdf_is_refused(kari):
    with pytest.raises(SigningError, match="not a PDF"):
        sign(b"GIF89a not a pdf at all", kari[0])
    with pytest.raises(SigningError, match="not a PDF"):
        verify_pdf(b"hello")
    with pytest.raises(SigningError):
        sign(b"%PDF-1.4\ngarbage\n%%EOF\n", kari[0])


def test_encrypted_pdf_is_refused(kari):
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt("passord", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(SigningError, match="encrypted"):
        sign(out.getvalue(), kari[0])


def test_load_signer_errors_and_cache(kari, tmp_path):
    _, _, path = kari
    with pytest.raises(SigningError, match="wrong password"):
        load_signer(path, "feil")
    with pytest.raises(SigningError, match="not found"):
        load_signer(tmp_path / "missing.p12", "test")
    not_p12 = tmp_path / "not.p12"
    not_p12.write_bytes(b"this is not pkcs12")
    with pytest.raises(SigningError):
        load_signer(not_p12, "test")

    copy = tmp_path / "copy.p12"
    copy.write_bytes(path.read_bytes())
    first = load_signer(copy, "hemmeleg")
    assert load_signer(str(copy), "hemmeleg") is first  # cached
    p12, _ = make_test_certificate("Ny Person", passphrase=b"hemmeleg")
    copy.write_bytes(p12)
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    replaced = load_signer(copy, "hemmeleg")
    assert replaced is not first
    assert "Ny Person" in replaced.signing_cert.subject.human_friendly


def test_expired_certificate_is_refused(kari):
    with pytest.raises(SigningError, match="not valid at the signing time"):
        sign(pypdf_pdf(), kari[0], when=datetime.now(UTC) - timedelta(days=30))


def test_test_certificate_shape():
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

    p12, ca_pem = make_test_certificate("Test Testesen", passphrase=b"pw")
    key, cert, extra = pkcs12.load_key_and_certificates(p12, b"pw")
    ca = x509.load_pem_x509_certificate(ca_pem)
    assert key.key_size == 2048
    assert cert.issuer == ca.subject and [c.subject for c in extra] == [ca.subject]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    now = datetime.now(UTC)
    assert cert.not_valid_before_utc < now - timedelta(hours=23)
    assert cert.not_valid_after_utc > now + timedelta(days=700)
