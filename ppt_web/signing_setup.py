"""Which certificate signs: the service's own (PPT_SIGNING_P12), or else a local test certificate.

Signing works out of the box: with PPT_SIGNING_P12 unset, the app makes a self-signed certificate
once, at its first start, in `instance/signing/test-signature.p12`, and signs with that. Every
signature made with it says so, on the post page and in the stamp in the PDF: it is not a valid
electronic signature. Setting PPT_SIGNING_P12 replaces it (the file is then left alone and unused;
signatures made with it earlier are still recognised as test signatures).

The test certificate:
- an EC P-256 key: made in well under a millisecond, where RSA-2048 takes 20-100 ms, so it is cheap
  enough to make at start in every process that builds the app (web, worker, CLI, each test);
- self-signed, CN "PPT testsignatur (ikkje gyldig)", O "<letterhead name> (test)", key usage
  digitalSignature + nonRepudiation, valid for ten years;
- in a PKCS#12 without a password: a password would have to sit beside the file with the same
  permissions, so it would protect nothing; the folder is 0700 and the file 0600 instead;
- written as a temporary file and linked into place (`os.link`), so processes starting at once all
  end up using the one file that was linked first.

A signature is a test signature when its certificate's SHA-256 fingerprint is that of the test
certificate in the instance folder, or, for a signature whose certificate is not at hand (the
post's list of signatures) or made by an earlier test certificate, when its subject names the
test certificate's common name.
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask, current_app

__all__ = ["TEST_COMMON_NAME", "Credentials", "SetupError", "credentials", "init_app", "is_test_subject",
           "make_test_certificate", "test_certificate_path", "test_fingerprints"]

log = logging.getLogger(__name__)

TEST_COMMON_NAME = "PPT testsignatur (ikkje gyldig)"
TEST_VALID_DAYS = 3653  # ten years
FOLDER = "signing"
FILENAME = "test-signature.p12"


class SetupError(Exception):
    """The test certificate could not be made or read; the message says why (for the log)."""


@dataclass(frozen=True)
class Credentials:
    """The PKCS#12 file to sign with, its password (None: none), and whether it is the test certificate."""

    p12: Path
    password: str | None
    test: bool


def test_certificate_path(app: Flask | None = None) -> Path:
    """Where the test certificate is (or will be): instance/signing/test-signature.p12."""
    return Path((app or current_app).instance_path) / FOLDER / FILENAME


def credentials(app: Flask | None = None) -> Credentials:
    """The configured certificate when PPT_SIGNING_P12 is set; else the test certificate, made if missing.

    Raises SetupError when the test certificate cannot be made (an instance folder that is not writable).
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    configured = app.config.get("PPT_SIGNING_P12")
    if configured:
        return Credentials(Path(configured), app.config.get("PPT_SIGNING_PASSWORD"), False)
    return Credentials(ensure_test_certificate(test_certificate_path(app), _organisation(app)), None, True)


def _organisation(app: Flask) -> str:
    """The letterhead's name from the configuration (the database may not exist yet at start)."""
    name = str((app.config.get("PPT_LETTERHEAD") or {}).get("name") or "").strip()
    return f"{name or 'PPT'} (test)"


_make_lock = threading.Lock()


def ensure_test_certificate(path: Path, organisation: str) -> Path:
    """The test certificate at `path`, made now if there is none. Safe when threads and processes race:
    each writes its own temporary file and links it into place; the first link wins, the others use it."""
    if path.is_file():
        return _private(path)
    with _make_lock:
        if path.is_file():
            return _private(path)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            data = make_test_certificate(organisation)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                try:
                    os.link(tmp, path)  # atomic, and refuses to replace: the first process to get here wins
                except FileExistsError:
                    pass
                except OSError:  # a file system without hard links: create the file itself, exclusively
                    _write_exclusive(path, data)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise SetupError(f"the test signing certificate could not be made in {path.parent}: "
                             f"{exc.strerror or exc}") from None
    return path


def _private(path: Path) -> Path:
    """The key file readable by the app's user only, and its folder too (a restore may have widened them)."""
    for item, mode in ((path, 0o600), (path.parent, 0o700)):
        try:
            if item.stat().st_mode & 0o077:
                os.chmod(item, mode)
                log.warning("the test signing certificate's %s was readable by others; now %o",
                            "file" if item == path else "folder", mode)
        except OSError:
            pass  # not ours to change: signing still works, and the file's owner sees the warning's cause
    return path


def _write_exclusive(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def make_test_certificate(organisation: str = "PPT (test)", now: datetime | None = None) -> bytes:
    """A PKCS#12 (no password) with a new EC P-256 key and its self-signed test certificate."""
    from cryptography import x509  # noqa: PLC0415 - only the process that makes the file needs these
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64]),
        x509.NameAttribute(NameOID.COMMON_NAME, TEST_COMMON_NAME),
    ])
    usage = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                           "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
    usage.update(digital_signature=True, content_commitment=True)  # content_commitment is nonRepudiation
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))  # a clock a little behind still accepts it
        .not_valid_after(now + timedelta(days=TEST_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return pkcs12.serialize_key_and_certificates(b"PPT testsignatur", key, cert, None,
                                                 serialization.NoEncryption())


_fingerprints: dict[tuple, str] = {}


def test_fingerprints(app: Flask | None = None) -> set[str]:
    """SHA-256 fingerprints (hex) of the test certificate in the instance folder; empty when there is none."""
    path = test_certificate_path(app)
    try:
        stat = path.stat()
    except OSError:
        return set()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    found = _fingerprints.get(key)
    if found is None:
        try:
            from cryptography.hazmat.primitives.serialization import Encoding, pkcs12  # noqa: PLC0415

            cert = pkcs12.load_key_and_certificates(path.read_bytes(), None)[1]
        except (OSError, ValueError):
            return set()
        if cert is None:
            return set()
        found = _fingerprints[key] = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    return {found}


def is_test_subject(subject: str | None) -> bool:
    """Whether a certificate subject (as stored or shown) is the test certificate's."""
    return bool(subject) and TEST_COMMON_NAME in str(subject)


def init_app(app: Flask) -> None:
    """At start: with no certificate configured, make the test certificate now and say, once, that
    signatures will be test signatures. Never raises: the app must start (signing then says what is wrong)."""
    configured = app.config.get("PPT_SIGNING_P12")
    if configured:
        if not Path(configured).is_file():
            log.error("PPT_SIGNING_P12 names no file (%s): signing will be refused until it does", configured)
        return
    try:
        path = credentials(app).p12
    except SetupError as exc:
        log.error("Electronic signing will not work: %s. Set PPT_SIGNING_P12 to the service's certificate.", exc)
        return
    log.warning("No signing certificate is configured (PPT_SIGNING_P12): documents are signed with a local "
                "test certificate (%s), and every such signature shows that it is not a valid electronic "
                "signature. Set PPT_SIGNING_P12 and PPT_SIGNING_PASSWORD to the service's certificate.", path)
