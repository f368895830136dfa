"""Helpers shared by the test modules (fixtures live in conftest.py, data builders in builders.py)."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pypdf import PdfWriter

ROOT = Path(__file__).resolve().parent.parent


def worker_env(app) -> dict:
    """The worker process sees the same database, Redis, queue and instance as the test app."""
    return {
        **os.environ,
        "PPT_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "PPT_REDIS_URL": app.config["PPT_REDIS_URL"],
        "PPT_QUEUE_NAME": app.config["PPT_QUEUE_NAME"],
        "PPT_INSTANCE_PATH": app.instance_path,
        "PPT_LOCAL_ARCHIVE_DIR": app.config["PPT_LOCAL_ARCHIVE_DIR"],
        "PPT_SECRET_KEY": "test-secret",
    }


def run_worker_burst(app) -> subprocess.CompletedProcess:
    """`python worker.py --burst` on the test app's queue: runs what is queued, then exits."""
    return subprocess.run([sys.executable, str(ROOT / "worker.py"), "--burst"], env=worker_env(app), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def find_ks_testdata() -> Path | None:
    """KS's vectors live in shared/ beside the checkout (as CI lays it out); the app never reads them."""
    return next((p / "shared" / "standards" / "ks-svarut" for p in Path(__file__).resolve().parents
                 if (p / "shared" / "standards" / "ks-svarut" / "testdata").is_dir()), None)


def pdf_bytes(pages: int, password: str | None = None) -> bytes:
    """A PDF built at test time, so no binary files live in git."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if password:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
THREE_PAGES = pdf_bytes(3)
HALF = THREE_PAGES[: len(THREE_PAGES) // 2]
# Uploads that must be refused, with the message the user gets (the storage and the page tests share it).
REFUSED = {
    "png renamed to .pdf": (PNG, "The file is not a PDF."),
    "text renamed to .pdf": (b"Hello, this is not a PDF at all.\n" * 10, "The file is not a PDF."),
    "first half of a PDF": (HALF, "The PDF is damaged or incomplete."),
    "first half of a PDF with %%EOF added": (HALF + b"\n%%EOF\n", "The PDF is damaged or incomplete."),
    "encrypted": (pdf_bytes(2, password="hemmeleg"),
                  "The PDF is encrypted or password protected. Save it without a password and try again."),
    "no pages": (pdf_bytes(0), "The PDF has no pages."),
    "empty": (b"", "The file is empty."),
}


def make_test_certificate(common_name: str, organisation: str = "Testkommune PPT",
                          passphrase: bytes = b"test") -> tuple[bytes, bytes]:
    """(PKCS#12 bytes, CA certificate PEM) for tests. NOT for real use.

    A self-signed test CA ("<organisation> Test CA") issues an RSA-2048 signing certificate
    for `common_name` (digitalSignature + nonRepudiation), valid from a day ago for two years.
    The PKCS#12 holds the key, the signing certificate and the CA; the PEM is the CA, i.e. the
    trust root to pass to `verify_pdf`.
    """
    now = datetime.now(UTC)
    start, end = now - timedelta(days=1), now + timedelta(days=730)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} Test CA"),
    ])
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    usages = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
              "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    no_usage = dict.fromkeys(usages, False)
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(**{**no_usage, "key_cert_sign": True, "crl_sign": True}), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**{**no_usage, "digital_signature": True, "content_commitment": True}),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    p12 = pkcs12.serialize_key_and_certificates(common_name.encode("utf-8"), key, cert, [ca_cert], encryption)
    return p12, ca_cert.public_bytes(serialization.Encoding.PEM)


def stored_count(archive) -> int:
    """How many messages the built-in archive (LocalArchive) holds."""
    return archive.stored_count()


def elsewhere(app, work, timeout: float = 60):
    """work() in a thread of its own, with its own app context and database session: to the database, another
    worker. Its result, or its exception raised here."""
    done: list = []

    def run() -> None:
        with app.app_context():
            try:
                done.append(work())
            except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread below
                done.append(exc)
            finally:
                from ppt_web.extensions import db

                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout)
    assert done, "the work did not end in time"
    if isinstance(done[0], BaseException):
        raise done[0]
    return done[0]


class Meanwhile:
    """work() in a thread of its own, with its own app context and session (another request), given up to
    `wait` seconds to end before the caller goes on. Where the caller holds a lock the work needs (PostgreSQL's
    row locks), it waits for the caller's commit instead and ends after it: the caller goes on as soon as a
    session of the database waits for a lock. outcome() waits for the work then, and gives ("ok", its result)
    or ("refused", the exception)."""

    def __init__(self, app, work, wait: float = 10.0):
        self._done: list = []

        def run() -> None:
            with app.app_context():
                try:
                    self._done.append(("ok", work()))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller by outcome()
                    self._done.append(("refused", exc))
                finally:
                    from ppt_web.extensions import db

                    db.session.remove()

        self._thread = threading.Thread(target=run)
        self._thread.start()
        deadline = time.monotonic() + wait
        while self._thread.is_alive() and time.monotonic() < deadline and not _waits_for_a_lock(app):
            self._thread.join(0.05)
        self.ended_first = bool(self._done)  # before the caller went on: no lock of the caller's was in its way

    def outcome(self, timeout: float = 60) -> tuple[str, object]:
        self._thread.join(timeout)
        assert self._done, "the work did not end in time"
        return self._done[0]


def _waits_for_a_lock(app) -> bool:
    """Whether a session of the test's PostgreSQL database waits for a lock (never on SQLite)."""
    from sqlalchemy import create_engine, text

    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("postgresql"):
        return False
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                         "AND datname = current_database() AND pid <> pg_backend_pid()")))
    finally:
        engine.dispose()
