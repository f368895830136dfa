"""PAdES signatures on outgoing PDFs, and checking the signatures in a PDF (pyHanko).

`sign_pdf` adds one approval signature in a new visible field at the bottom of the last page,
as an incremental update: the bytes given in are an exact prefix of the bytes returned, so the
unsigned original the app keeps is byte-for-byte the signed revision. `verify_pdf` reports on
every signature in a file without touching the network: trust comes only from the roots passed
in (nothing is trusted without them), and revocation is not checked.

The key and certificate come from a PKCS#12 file (`load_signer`). A signature made with a test
certificate (ppt_web/signing_setup.py) says so in its stamp (`test=True`), and `verify_pdf` marks the
signatures whose certificate is one of the test certificates it is given.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import io
import threading
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext

from .clock import OSLO

__all__ = ["SignatureStatus", "SigningError", "load_signer", "sign_pdf", "verify_pdf"]

WINDOW = 1024  # %PDF- must be in the first 1024 bytes (as in files/pdfchild.py)
FIELD_PREFIX = "PPT-signatur-"
STAMP_TEXT = "Elektronisk signert av %(signer)s\n%(ts)s\nSertifikat: %(cert)s"
STAMP_STYLE = TextStampStyle(stamp_text=STAMP_TEXT, timestamp_format="%d.%m.%Y kl. %H:%M:%S %Z", border_width=1)
# A signature made with a test certificate says so in the PDF itself, first, where the eye starts.
TEST_STAMP_LINE = "TESTSIGNATUR: ikkje ei gyldig elektronisk signatur"
TEST_STAMP_STYLE = TextStampStyle(stamp_text=f"{TEST_STAMP_LINE}\n{STAMP_TEXT}",
                                  timestamp_format=STAMP_STYLE.timestamp_format, border_width=1)
# Stamp geometry in points: two boxes side by side along the bottom margin, further rows above.
MARGIN, GAP, BOX_WIDTH, BOX_HEIGHT = 36, 8, 250, 54
# Signing certificates in the wild carry one or both of these; either is enough.
KEY_USAGE = KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False)


class SigningError(Exception):
    """Signing or checking could not be done; the message says why, in plain English."""


# --------------------------------------------------------------------------- loading the key

_signers: dict[tuple, Signer] = {}
_signers_lock = threading.Lock()


def load_signer(p12_path: str | Path, passphrase: str | None) -> Signer:
    """The signer (key + certificate chain) in a PKCS#12 (.p12/.pfx) file.

    Cached per (path, modification time, size, passphrase digest): a replaced file is read again.
    Raises SigningError for a missing file, a wrong passphrase or a file without a key.
    """
    path = Path(p12_path)
    try:
        stat = path.stat()
    except OSError:
        raise SigningError(f"Signing certificate file not found: {path}") from None
    secret = None if passphrase is None else passphrase.encode("utf-8")
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size,
           hashlib.sha256(secret).hexdigest() if secret is not None else None)
    with _signers_lock:
        cached = _signers.get(key)
    if cached is not None:
        return cached
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SigningError(f"Signing certificate file could not be read: {path} ({e.strerror})") from None
    try:
        # load_pkcs12_data rather than load_pkcs12: the latter logs and returns None on every failure.
        signer = signers.SimpleSigner.load_pkcs12_data(data, other_certs=(), passphrase=secret)
    except Exception:  # noqa: BLE001 - whatever pyHanko or cryptography raise: the file does not open
        raise SigningError(f"Could not open the signing certificate {path.name}: wrong password, "
                           "or not a PKCS#12 (.p12/.pfx) file with a private key") from None
    if signer.signing_cert is None or signer.signing_key is None:
        raise SigningError(f"The signing certificate file {path.name} holds no certificate with a private key")
    with _signers_lock:
        for old in [k for k in _signers if k[0] == key[0]]:
            del _signers[old]  # one entry per file: an old version is never needed again
        _signers[key] = signer
    return signer


# --------------------------------------------------------------------------- signing

class _TimedPdfSigner(signers.PdfSigner):
    """PdfSigner with a fixed signing time (CMS signing-time, /M and the visible stamp agree)."""

    def __init__(self, *args, when: datetime, **kwargs):
        super().__init__(*args, **kwargs)
        self._when = when

    def init_signing_session(self, pdf_out, existing_fields_only=False):
        session = super().init_signing_session(pdf_out, existing_fields_only=existing_fields_only)
        session.system_time = self._when
        return session


def _printable(text: str) -> str:
    """Text the stamp's standard font (WinAnsi, written as PDFDocEncoding) shows correctly.

    Latin-1 letters (æ, ø, å, é, ü ...) are kept; others lose their accents or become '?'.
    """
    out = []
    for ch in " ".join(text.split()):
        if " " <= ch <= "~" or "\u00a0" <= ch <= "\u00ff":
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and all(" " <= c <= "~" or "\u00a0" <= c <= "\u00ff" for c in base) else "?")
    return "".join(out)


def _cert_label(cert: asn1_x509.Certificate) -> str:
    """'CN, O' of a certificate subject, for the visible stamp."""
    subject = cert.subject.native
    parts = [subject.get("common_name"), subject.get("organization_name")]
    parts = [", ".join(p) if isinstance(p, list) else p for p in parts if p]
    return ", ".join(parts) or cert.subject.human_friendly


def _page_box(page) -> tuple[float, float, float, float]:
    """The visible box of a page: /CropBox or /MediaBox, inherited through the page tree."""
    for key in ("/CropBox", "/MediaBox"):
        node = page
        while node is not None:
            if key in node:
                x1, y1, x2, y2 = (float(v) for v in node[key])
                return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)
            parent = node.get("/Parent")
            node = parent.get_object() if parent is not None else None
    return 0.0, 0.0, 595.0, 842.0  # A4 when the file says nothing


def _stamp_box(page_box, index: int) -> tuple[int, int, int, int]:
    """Rectangle for the index-th signature stamp on a page (0 = first, bottom left)."""
    x1, y1, x2, y2 = page_box
    width = max(60.0, min(BOX_WIDTH, (x2 - x1 - 2 * MARGIN - GAP) / 2))
    height = BOX_HEIGHT
    margin = min(MARGIN, max(0.0, (x2 - x1 - width) / 2))
    row, col = divmod(index, 2)
    left = x1 + margin + col * (width + GAP)
    bottom = y1 + min(margin, max(0.0, (y2 - y1 - height) / 2)) + row * (height + GAP)
    return round(left), round(bottom), round(left + width), round(bottom + height)


def _open_for_signing(pdf: bytes) -> IncrementalPdfFileWriter:
    if not isinstance(pdf, (bytes, bytearray, memoryview)):
        raise SigningError("Expected the PDF file as bytes")
    pdf = bytes(pdf)
    if b"%PDF-" not in pdf[:WINDOW]:
        raise SigningError("The file is not a PDF")
    if b"%%EOF" not in pdf[-WINDOW:]:
        raise SigningError("The PDF is incomplete (no end-of-file marker)")
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    except Exception as e:  # noqa: BLE001 - any parser error means an unreadable PDF
        raise SigningError(f"The PDF could not be read: {e}") from None
    if writer.prev.encrypted:
        raise SigningError("The PDF is encrypted or password-protected and cannot be signed")
    return writer


def _outside_event_loop(func):
    """pyHanko's synchronous calls use asyncio.run(), which refuses to start inside a running event
    loop (a thread that also drives an async library). Then the call runs in a thread of its own."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return func(*args, **kwargs)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="signing") as pool:
            return pool.submit(func, *args, **kwargs).result()

    return wrapper


@_outside_event_loop
def sign_pdf(pdf: bytes, signer: Signer, *, signer_name: str, reason: str, location: str,
             when: datetime | None = None, test: bool = False) -> bytes:
    """The PDF with one more PAdES signature (sha256), visible at the bottom of the last page.

    `signer_name` (the app user's full name) is shown in the stamp and recorded as /Name;
    the stamp also names the certificate. `when` (default: now; naive means UTC) is the
    signing time in the signature and, in Oslo time, in the stamp. `test` (a test certificate) adds
    a first line to the stamp saying it is not a valid signature. The result starts with the
    exact bytes of `pdf`. Raises SigningError for non-PDF, damaged or encrypted input, an
    expired certificate, or a document whose certification signature forbids changes.
    """
    writer = _open_for_signing(pdf)
    if when is None:
        when = datetime.now(UTC)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(OSLO)

    cert = signer.signing_cert
    assert cert is not None, "load_signer returns only signers with a certificate"
    validity = cert["tbs_certificate"]["validity"]
    not_before, not_after = validity["not_before"].native, validity["not_after"].native
    if not not_before <= when <= not_after:
        raise SigningError(f"The signing certificate is not valid at the signing time "
                           f"(valid {not_before:%Y-%m-%d} to {not_after:%Y-%m-%d})")

    try:
        reader = writer.prev
        pages = int(reader.root["/Pages"].get("/Count", 0))
        if pages < 1:
            raise SigningError("The PDF has no pages")
        existing = [name for name, _value, _ref in fields.enumerate_sig_fields(reader)]
        number = len(existing) + 1
        while f"{FIELD_PREFIX}{number}" in existing:
            number += 1
        field_name = f"{FIELD_PREFIX}{number}"
        page_ref, _resources = writer.find_page_for_modification(-1)
        on_last_page = sum(1 for _n, _v, ref in fields.enumerate_sig_fields(reader)
                           if _on_page(ref, page_ref))
        box = _stamp_box(_page_box(page_ref.get_object()), on_last_page)

        meta = signers.PdfSignatureMetadata(
            field_name=field_name, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
            reason=reason or None, location=location or None, name=signer_name or None,
        )
        pdf_signer = _TimedPdfSigner(
            meta, signer, when=when, stamp_style=TEST_STAMP_STYLE if test else STAMP_STYLE,
            new_field_spec=fields.SigFieldSpec(sig_field_name=field_name, on_page=-1, box=box),
        )
        out = pdf_signer.sign_pdf(writer, appearance_text_params={
            "signer": _printable(signer_name or _cert_label(cert)),
            "cert": _printable(_cert_label(cert)),
        })
    except SigningError:
        raise
    except Exception as e:  # noqa: BLE001 - pyHanko's own SigningError, PdfReadError, layout errors ...
        raise SigningError(f"The PDF could not be signed: {e}") from None
    signed = out.getvalue()
    if not signed.startswith(bytes(pdf)):  # never expected: pyHanko appends an incremental update
        raise SigningError("Signing changed the original bytes of the PDF")
    return signed


def _on_page(field_ref, page_ref) -> bool:
    """Whether a signature field's widget sits on the given page (/P, when the file records it)."""
    try:
        field = field_ref.get_object()
        widgets = [field] + [k.get_object() for k in field.get("/Kids", [])]
        return any(getattr(w.get_value_as_reference("/P"), "idnum", None) == page_ref.idnum
                   for w in widgets if "/P" in w)
    except Exception:  # noqa: BLE001 - a damaged field is not on the page
        return False


# --------------------------------------------------------------------------- checking

@dataclass(frozen=True)
class SignatureStatus:
    signed: bool
    signer_subject: str  # the certificate subject, e.g. "Common Name: Kari Nordmann, Organization: ..."
    signed_at: datetime | None  # time stamp authority time if present, else the signer's claimed time
    intact: bool  # the signed byte range hashes to the signed digest
    valid: bool  # the cryptographic signature over it checks out
    trusted: bool  # the certificate chains to one of the trust roots given
    covers_whole_file: bool  # nothing was appended after this signature
    summary: str  # one English sentence or two for people
    certificate_sha256: str = ""  # SHA-256 fingerprint (hex) of the signer's certificate, "" if unreadable
    test: bool = False  # the certificate is one of the test certificates given to verify_pdf


def _trust_roots(roots: list[bytes] | None) -> list[asn1_x509.Certificate]:
    certs: list[asn1_x509.Certificate] = []
    for data in roots or []:
        try:
            if asn1_pem.detect(data):
                certs.extend(asn1_x509.Certificate.load(der) for _t, _h, der in asn1_pem.unarmor(data, multiple=True))
            else:
                certs.append(asn1_x509.Certificate.load(data))
        except Exception:  # noqa: BLE001 - any parser error means not a certificate
            raise SigningError("A trust root is not a PEM or DER X.509 certificate") from None
    return certs


@_outside_event_loop
def verify_pdf(pdf: bytes, trust_roots: list[bytes] | None = None,
               test_certificates: Collection[str] = ()) -> list[SignatureStatus]:
    """The status of each signature in the PDF, oldest first; [] for an unsigned PDF.

    Offline: no OCSP/CRL fetching. Only certificates chaining to `trust_roots` (PEM or DER)
    count as trusted; with none given nothing is trusted. A signature whose certificate's SHA-256
    fingerprint (hex) is in `test_certificates` is marked `test`. Raises SigningError only for input
    that is not a readable PDF (or is encrypted); a broken signature gives a status, not an error.
    """
    if not isinstance(pdf, (bytes, bytearray, memoryview)) or b"%PDF-" not in bytes(pdf[:WINDOW]):
        raise SigningError("The file is not a PDF")
    roots = _trust_roots(trust_roots)
    try:
        reader = PdfFileReader(io.BytesIO(bytes(pdf)), strict=False)
    except Exception as e:  # noqa: BLE001 - any parser error means an unreadable PDF
        raise SigningError(f"The PDF could not be read: {e}") from None
    if reader.encrypted:
        raise SigningError("The PDF is encrypted; its signatures cannot be checked")
    try:
        embedded = list(reader.embedded_regular_signatures)
    except Exception as e:  # noqa: BLE001 - any parser error means unreadable signatures
        raise SigningError(f"The signatures in the PDF could not be read: {e}") from None
    results = []
    for sig in embedded:
        results.append(_status(sig, roots, {f.lower() for f in test_certificates}))
    return results


def _status(sig, roots, test_certificates: set[str]) -> SignatureStatus:
    try:
        subject = sig.signer_cert.subject.human_friendly
        label = _cert_label(sig.signer_cert)
        fingerprint = hashlib.sha256(sig.signer_cert.dump()).hexdigest()
    except Exception:  # noqa: BLE001 - an unreadable certificate: a status without a name
        subject = label = fingerprint = ""
    test = bool(fingerprint) and fingerprint in test_certificates
    try:
        context = ValidationContext(trust_roots=roots, allow_fetching=False)
        status = validate_pdf_signature(sig, signer_validation_context=context, key_usage_settings=KEY_USAGE)
    except Exception as e:  # noqa: BLE001 - a broken signature gives a status, not an error
        return SignatureStatus(True, subject, None, False, False, False, False,
                               f"The signature could not be checked: {e}", fingerprint, test)
    signed_at = status.signer_reported_dt
    tst = getattr(status, "timestamp_validity", None)
    if tst is not None and tst.intact and tst.valid:
        signed_at = tst.timestamp
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    return SignatureStatus(
        signed=True,
        signer_subject=subject,
        signed_at=signed_at,
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        covers_whole_file=whole,
        summary=_summary(status, label, signed_at, whole, test),
        certificate_sha256=fingerprint,
        test=test,
    )


def _summary(status, label: str, signed_at: datetime | None, whole: bool, test: bool = False) -> str:
    when = f" on {signed_at.astimezone(OSLO):%d.%m.%Y %H:%M %Z}" if signed_at else ""
    who = label or "an unknown signer"
    if not status.intact:
        return f"Signed by {who}{when}, but the signed content has been altered: the signature is broken."
    if not status.valid:
        return f"Signed by {who}{when}, but the signature does not verify: it is broken."
    parts = [f"Signed by {who}{when}; the signature is intact."]
    if whole:
        parts.append("Nothing has been changed since.")
    else:
        level = status.modification_level
        name = getattr(level, "name", None)
        if name in ("LTA_UPDATES", "FORM_FILLING") and status.docmdp_ok is not False:
            parts.append("Later additions are only further signatures or validation data.")
        elif name == "ANNOTATIONS" and status.docmdp_ok is not False:
            parts.append("Annotations were added after signing; the signed content is unchanged.")
        else:
            parts.append("The document was changed after this signature: the signed version is an "
                         "earlier revision of the file.")
    if test:
        parts.append("It was made with a test certificate: it is not a valid electronic signature.")
    elif status.trusted:
        parts.append("The certificate is trusted.")
    else:
        parts.append("The certificate is not from a trusted issuer.")
    return " ".join(parts)
