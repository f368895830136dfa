"""The Fiks IO settings: every problem an operator can make is found and named, and good settings work."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ppt_web import config as app_config
from ppt_web.fiksio import settings as fiksio_settings
from ppt_web.outbound.svarut import StaticTokenProvider

pytestmark = pytest.mark.one_database

PROVIDER = StaticTokenProvider("test-token")
OURS, ARCHIVE, INTEGRATION = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())


def provider_factory() -> StaticTokenProvider:
    return PROVIDER


def broken_factory() -> StaticTokenProvider:
    raise KeyError("PPT_TEST_TOKEN_KEY")


NOT_A_PROVIDER = object()


def make_certificate(key, *, days: int = 365, start_days_ago: int = 1) -> bytes:
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PPT Fiks IO test")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=start_days_ago))
                   .not_valid_after(now - timedelta(days=start_days_ago) + timedelta(days=days))
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM)


def pkcs8(key, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Key and certificate files, good and bad, written once for the module."""
    folder = tmp_path_factory.mktemp("fiksio-keys")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    files = {
        "key.pem": pkcs8(key),
        "cert.pem": make_certificate(key),
        "other-cert.pem": make_certificate(other),
        "expired-cert.pem": make_certificate(key, days=30, start_days_ago=60),
        "future-cert.pem": make_certificate(key, start_days_ago=-3),
        "encrypted-key.pem": pkcs8(key, b"hemmeleg"),
        "ec-key.pem": pkcs8(ec.generate_private_key(ec.SECP256R1())),
        "small-key.pem": pkcs8(small),
        "small-cert.pem": make_certificate(small),
        "garbage.pem": b"this is not PEM at all\n",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in files}


def good(keys, **changes) -> dict:
    """The app's defaults with working Fiks IO settings, then the changes (None removes a setting)."""
    cfg = app_config.defaults("/instance")
    cfg.update({
        "PPT_ARCHIVE_BACKEND": "fiksio",
        "PPT_FIKSIO_ACCOUNT_ID": OURS,
        "PPT_FIKSIO_ARCHIVE_ACCOUNT_ID": ARCHIVE,
        "PPT_FIKSIO_PRIVATE_KEY": str(keys["key.pem"]),
        "PPT_FIKSIO_CERTIFICATE": str(keys["cert.pem"]),
        "PPT_FIKSIO_INTEGRATION_ID": INTEGRATION,
        "PPT_FIKSIO_INTEGRATION_PASSWORD": "passord",
        "PPT_FIKSIO_TOKEN_PROVIDER": "tests.test_fiksio_settings:PROVIDER",
    })
    cfg.update(changes)
    return cfg


def only_problem(cfg: dict) -> str:
    found = fiksio_settings.problems(cfg)
    assert len(found) == 1, found
    return found[0]


def test_good_settings_have_no_problem_and_build_settings(keys):
    """Settings read from the config: our account's queue, the key and certificate, and the reply deadline
    (24 h by default) as the lifetime of a sent message."""
    cfg = good(keys, PPT_FIKSIO_API_URL="https://api.fiks.test.ks.no/", PPT_FIKSIO_INTEGRATION_PASSWORD=" passord ")
    assert fiksio_settings.problems(cfg) == []
    settings = fiksio_settings.from_config(cfg)
    assert settings.api_url == "https://api.fiks.test.ks.no"
    assert settings.amqp_url == "amqps://io.fiks.test.ks.no:5671"
    assert settings.account_id == OURS and settings.queue == f"fiksio.konto.{OURS}"
    assert settings.integration_id == INTEGRATION and settings.integration_password == "passord"
    assert settings.private_key_pem == keys["key.pem"].read_bytes()
    assert b"BEGIN CERTIFICATE" in settings.certificate_pem
    assert settings.token_provider is PROVIDER
    assert settings.ttl_ms == 24 * 3600 * 1000
    assert fiksio_settings.from_config(good(keys, PPT_ARCHIVE_REPLY_HOURS=2)).ttl_ms == 2 * 3600 * 1000


def test_nothing_set_names_every_missing_setting(keys):
    cfg = app_config.defaults("/instance")
    found = fiksio_settings.problems(cfg)
    for name in ("PPT_FIKSIO_ACCOUNT_ID", "PPT_FIKSIO_ARCHIVE_ACCOUNT_ID", "PPT_FIKSIO_PRIVATE_KEY",
                 "PPT_FIKSIO_CERTIFICATE", "PPT_FIKSIO_INTEGRATION_ID", "PPT_FIKSIO_INTEGRATION_PASSWORD",
                 "PPT_FIKSIO_TOKEN_PROVIDER"):
        assert sum(f.startswith(name + " is not set") for f in found) == 1, (name, found)
    assert len(found) == 7, found  # the URLs have working defaults (KS's test environment)
    with pytest.raises(fiksio_settings.SettingsError) as refused:
        fiksio_settings.from_config(cfg)
    assert "PPT_FIKSIO_ACCOUNT_ID is not set" in str(refused.value)
    assert not any("ARCHIVE_ACCOUNT" in p for p in refused.value.problems)  # the transport's, not ours


@pytest.mark.parametrize(("setting", "value", "expected"), [
    ("PPT_FIKSIO_ACCOUNT_ID", "123", "PPT_FIKSIO_ACCOUNT_ID is not a UUID: '123'"),
    ("PPT_FIKSIO_ARCHIVE_ACCOUNT_ID", "arkivet", "PPT_FIKSIO_ARCHIVE_ACCOUNT_ID is not a UUID: 'arkivet'"),
    ("PPT_FIKSIO_INTEGRATION_ID", "abc-def", "PPT_FIKSIO_INTEGRATION_ID is not a UUID: 'abc-def'"),
    ("PPT_FIKSIO_ARCHIVE_ACCOUNT_ID", OURS.upper(), "PPT_FIKSIO_ACCOUNT_ID and PPT_FIKSIO_ARCHIVE_ACCOUNT_ID are the "
                                                    "same account"),
    ("PPT_FIKSIO_API_URL", "ftp://api.fiks.test.ks.no", "PPT_FIKSIO_API_URL must be a https:// or http:// URL"),
    ("PPT_FIKSIO_API_URL", "api.fiks.test.ks.no", "PPT_FIKSIO_API_URL must be a https:// or http:// URL"),
    ("PPT_FIKSIO_AMQP_URL", "https://io.fiks.test.ks.no", "PPT_FIKSIO_AMQP_URL must be a amqps:// or amqp:// URL"),
    ("PPT_FIKSIO_AMQP_URL", "amqps://io.fiks.test.ks.no:port", "PPT_FIKSIO_AMQP_URL has a port that is not a "
                                                              "number"),
    ("PPT_FIKSIO_API_URL", "", "PPT_FIKSIO_API_URL is not set"),
    ("PPT_FIKSIO_INTEGRATION_PASSWORD", "   ", "PPT_FIKSIO_INTEGRATION_PASSWORD is not set"),
    ("PPT_ARCHIVE_REPLY_HOURS", 0, "PPT_ARCHIVE_REPLY_HOURS must be a whole number of hours above 0"),
])
def test_each_wrong_value_is_named(keys, setting, value, expected):
    assert only_problem(good(keys, **{setting: value})).startswith(expected)


@pytest.mark.parametrize(("key", "certificate", "expected"), [
    ("missing.pem", "cert.pem", "PPT_FIKSIO_PRIVATE_KEY names '{folder}/missing.pem', which is not a file"),
    ("garbage.pem", "cert.pem", "PPT_FIKSIO_PRIVATE_KEY does not read as a PEM private key"),
    ("cert.pem", "cert.pem", "PPT_FIKSIO_PRIVATE_KEY does not read as a PEM private key"),
    ("encrypted-key.pem", "cert.pem", "PPT_FIKSIO_PRIVATE_KEY is an encrypted key"),
    ("ec-key.pem", "cert.pem", "PPT_FIKSIO_PRIVATE_KEY is not an RSA key"),
    ("small-key.pem", "small-cert.pem", "PPT_FIKSIO_PRIVATE_KEY is an RSA key of 1024 bits"),
    ("key.pem", "missing.pem", "PPT_FIKSIO_CERTIFICATE names '{folder}/missing.pem', which is not a file"),
    ("key.pem", "garbage.pem", "PPT_FIKSIO_CERTIFICATE does not read as a PEM X.509 certificate"),
    ("key.pem", "key.pem", "PPT_FIKSIO_CERTIFICATE does not read as a PEM X.509 certificate"),
    ("key.pem", "other-cert.pem", "PPT_FIKSIO_CERTIFICATE does not hold the public key of PPT_FIKSIO_PRIVATE_KEY"),
    ("key.pem", "expired-cert.pem", "PPT_FIKSIO_CERTIFICATE expired on "),
    ("key.pem", "future-cert.pem", "PPT_FIKSIO_CERTIFICATE is not valid before "),
])
def test_each_key_or_certificate_fault_is_named(keys, key, certificate, expected):
    folder = keys["key.pem"].parent
    cfg = good(keys, PPT_FIKSIO_PRIVATE_KEY=str(folder / key), PPT_FIKSIO_CERTIFICATE=str(folder / certificate))
    assert only_problem(cfg).startswith(expected.format(folder=folder))


def test_a_key_folder_that_cannot_be_read_is_named(keys, tmp_path):
    """A directory where the key file should be: named, not a crash."""
    assert only_problem(good(keys, PPT_FIKSIO_PRIVATE_KEY=str(tmp_path))).endswith("which is not a file")


@pytest.mark.parametrize(("spec", "expected"), [
    ("tests.test_fiksio_settings", "PPT_FIKSIO_TOKEN_PROVIDER must be \"module:attribute\""),
    ("tests.no_such_module:provider", "PPT_FIKSIO_TOKEN_PROVIDER names 'tests.no_such_module:provider', which "
                                      "cannot be loaded (ModuleNotFoundError"),
    ("tests.test_fiksio_settings:nothing", "PPT_FIKSIO_TOKEN_PROVIDER names 'tests.test_fiksio_settings:nothing', "
                                           "which cannot be loaded (AttributeError"),
    ("tests.test_fiksio_settings:NOT_A_PROVIDER", "PPT_FIKSIO_TOKEN_PROVIDER names "
                                                  "'tests.test_fiksio_settings:NOT_A_PROVIDER', which has no token()"),
    ("tests.test_fiksio_settings:broken_factory", "PPT_FIKSIO_TOKEN_PROVIDER names "
                                                  "'tests.test_fiksio_settings:broken_factory', whose factory failed "
                                                  "(KeyError"),
])
def test_a_token_provider_that_does_not_resolve_is_named(keys, spec, expected):
    assert only_problem(good(keys, PPT_FIKSIO_TOKEN_PROVIDER=spec)).startswith(expected)


def test_without_its_own_token_provider_fiks_io_uses_svaruts(keys):
    """The Maskinporten token provider the SvarUt integration uses serves Fiks IO too (a factory is called)."""
    cfg = good(keys, PPT_FIKSIO_TOKEN_PROVIDER=None, PPT_SVARUT_TOKEN_PROVIDER="tests.test_fiksio_settings:"
                                                                             "provider_factory")
    assert fiksio_settings.from_config(cfg).token_provider is PROVIDER
    cfg["PPT_SVARUT_TOKEN_PROVIDER"] = "tests.test_fiksio_settings:gone"
    assert only_problem(cfg).startswith("PPT_SVARUT_TOKEN_PROVIDER names 'tests.test_fiksio_settings:gone'")
    cfg["PPT_SVARUT_TOKEN_PROVIDER"] = None
    assert only_problem(cfg).startswith("PPT_FIKSIO_TOKEN_PROVIDER is not set, nor PPT_SVARUT_TOKEN_PROVIDER")


def test_a_participant_that_only_answers_needs_no_archive_account(keys):
    cfg = good(keys, PPT_FIKSIO_ARCHIVE_ACCOUNT_ID=None)
    assert only_problem(cfg).startswith("PPT_FIKSIO_ARCHIVE_ACCOUNT_ID is not set")
    assert fiksio_settings.problems(cfg, archive_account=False) == []


def test_problems_never_echo_the_password(keys):
    cfg = good(keys, PPT_FIKSIO_INTEGRATION_ID="hemmeleg-passord-ikkje-uuid", PPT_FIKSIO_INTEGRATION_PASSWORD="s3cr3t")
    assert not any("s3cr3t" in p for p in fiksio_settings.problems(cfg))
