"""What a Fiks IO participant needs, read from the app's config (PPT_FIKSIO_*), and what is wrong with it.

API_PATHS are appended to the API base (PPT_FIKSIO_API_URL, e.g. https://api.fiks.test.ks.no).
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..outbound.svarut import TokenProvider, resolve_token_provider

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

SEND_PATH = "/fiks-io/api/v1/send"
CATALOG_PATH = "/fiks-io/katalog/api/v1"  # + /kontoer/{kontoId}/offentligNokkel
DOKUMENTLAGER_PATH = "/dokumentlager/nedlasting"  # + /{dokumentlagerId}
QUEUE_PREFIX = "fiksio.konto."
MIN_KEY_BITS = 2048


class SettingsError(Exception):
    """The settings cannot work; .problems lists each thing missing or wrong, one sentence each."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    api_url: str  # base, without a trailing slash
    amqp_url: str  # amqps://io.fiks.test.ks.no:5671 (or amqp://127.0.0.1:port in tests)
    account_id: str  # our own Fiks IO account (kontoId): the sender, and the queue we consume
    private_key_pem: bytes = field(repr=False)  # PKCS#8 PEM: signs the ASiC-E we send, opens what we receive
    certificate_pem: bytes  # the X.509 certificate of that key (in the ASiC-E signature)
    integration_id: str
    integration_password: str = field(repr=False)
    token_provider: TokenProvider = field(repr=False)  # Maskinporten, scope ks:fiks
    ttl_ms: int | None = None  # message lifetime on send; None: Fiks IO's default (7 days)

    @property
    def queue(self) -> str:
        return QUEUE_PREFIX + self.account_id


def problems(config: Mapping, *, archive_account: bool = True, now: datetime | None = None) -> list[str]:
    """Everything missing or wrong in the app's PPT_FIKSIO_* settings, each a sentence that names the
    setting (English, for the operator's log and /readyz); [] when they can work.

    archive_account=False leaves PPT_FIKSIO_ARCHIVE_ACCOUNT_ID out (a participant that only answers)."""
    return _Reader(config, now).read(archive_account)[0]


def from_config(config: Mapping) -> Settings:
    """The app's settings (PPT_FIKSIO_*; the archive account is the transport's, not here); SettingsError
    with every problem when they cannot work."""
    found, settings = _Reader(config, None).read(archive_account=False)
    if found or settings is None:
        raise SettingsError(found or ["the Fiks IO settings cannot be read"])
    return settings


def ttl_ms(config: Mapping) -> int | None:
    """A sent message's lifetime: the archive's reply deadline (PPT_ARCHIVE_REPLY_HOURS) in milliseconds,
    so a message the archive has not taken by then expires at Fiks IO too."""
    hours = config.get("PPT_ARCHIVE_REPLY_HOURS")
    try:
        value = int(hours) if hours not in (None, "") else 0
    except (TypeError, ValueError):
        return None
    return value * 3600 * 1000 if value > 0 else None


class _Reader:
    """Reads each setting once, noting what is wrong; builds Settings when nothing is."""

    def __init__(self, config: Mapping, now: datetime | None):
        self.config = config
        self.now = now or datetime.now(UTC)
        self.problems: list[str] = []

    def read(self, archive_account: bool) -> tuple[list[str], Settings | None]:
        api_url = self._url("PPT_FIKSIO_API_URL", ("https", "http"), "the Fiks IO API's base, e.g. "
                            "https://api.fiks.test.ks.no")
        amqp_url = self._url("PPT_FIKSIO_AMQP_URL", ("amqps", "amqp"), "the Fiks IO message broker, e.g. "
                             "amqps://io.fiks.test.ks.no:5671")
        account = self._uuid("PPT_FIKSIO_ACCOUNT_ID", "our Fiks IO account id")
        if archive_account:
            archive = self._uuid("PPT_FIKSIO_ARCHIVE_ACCOUNT_ID", "the archive's Fiks IO account id")
            if account and archive and account == archive:
                self.problems.append("PPT_FIKSIO_ACCOUNT_ID and PPT_FIKSIO_ARCHIVE_ACCOUNT_ID are the same account: "
                                     "ours must be our own, the archive's the one its vendor gave")
        integration_id = self._uuid("PPT_FIKSIO_INTEGRATION_ID", "the Fiks integration's id")
        password = str(self.config.get("PPT_FIKSIO_INTEGRATION_PASSWORD") or "").strip()
        if not password:
            self.problems.append("PPT_FIKSIO_INTEGRATION_PASSWORD is not set (the Fiks integration's password)")
        key_pem, key = self._private_key()
        certificate_pem = self._certificate(key)
        provider = self._token_provider()
        self._reply_hours()
        if self.problems:
            return self.problems, None
        assert api_url and amqp_url and account and integration_id and key_pem and certificate_pem and provider
        return [], Settings(api_url=api_url, amqp_url=amqp_url, account_id=account, private_key_pem=key_pem,
                            certificate_pem=certificate_pem, integration_id=integration_id,
                            integration_password=password, token_provider=provider,
                            ttl_ms=ttl_ms(self.config))

    def _value(self, name: str) -> str:
        value = self.config.get(name)
        return value.strip() if isinstance(value, str) else ("" if value is None else str(value).strip())

    def _url(self, name: str, schemes: tuple[str, ...], what: str) -> str | None:
        value = self._value(name)
        if not value:
            self.problems.append(f"{name} is not set ({what})")
            return None
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            self.problems.append(f"{name} must be a {' or '.join(s + '://' for s in schemes)} URL "
                                 f"with a host, not {value!r}")
            return None
        try:
            parts.port  # noqa: B018 - a port that is not a number raises here
        except ValueError:
            self.problems.append(f"{name} has a port that is not a number: {value!r}")
            return None
        return value.rstrip("/")

    def _uuid(self, name: str, what: str) -> str | None:
        value = self._value(name)
        if not value:
            self.problems.append(f"{name} is not set ({what}, from KS Fiks Forvaltning)")
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError:
            self.problems.append(f"{name} is not a UUID: {value[:60]!r}")
            return None

    def _file(self, name: str, what: str) -> bytes | None:
        value = self._value(name)
        if not value:
            self.problems.append(f"{name} is not set (the path of {what})")
            return None
        path = Path(value)
        if not path.is_file():
            self.problems.append(f"{name} names {value!r}, which is not a file")
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            self.problems.append(f"{name} names {value!r}, which cannot be read ({exc.strerror or exc})")
            return None

    def _private_key(self) -> tuple[bytes | None, RSAPrivateKey | None]:
        # cryptography is imported where a key or certificate is read: the archive log's pages import this
        # module for the account's settings and need none of it (~10 MiB of a web worker).
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey  # noqa: PLC0415

        name = "PPT_FIKSIO_PRIVATE_KEY"
        data = self._file(name, "our private key, PKCS#8 PEM")
        if data is None:
            return None, None
        if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data:
            self.problems.append(f"{name} is an encrypted key: it must be unencrypted PKCS#8 PEM "
                                 f"(openssl pkcs8 -topk8 -nocrypt)")
            return None, None
        try:
            key = _load_key(data)
        except (ValueError, TypeError):
            self.problems.append(f"{name} does not read as a PEM private key (unencrypted PKCS#8 expected)")
            return None, None
        if not isinstance(key, RSAPrivateKey):
            self.problems.append(f"{name} is not an RSA key (Fiks IO encrypts to RSA keys)")
            return None, None
        if key.key_size < MIN_KEY_BITS:
            self.problems.append(f"{name} is an RSA key of {key.key_size} bits; at least {MIN_KEY_BITS} are needed")
            return None, None
        return data, key

    def _certificate(self, key: RSAPrivateKey | None) -> bytes | None:
        from cryptography import x509  # noqa: PLC0415 - see _private_key
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

        name = "PPT_FIKSIO_CERTIFICATE"
        data = self._file(name, "the X.509 certificate of our key, PEM")
        if data is None:
            return None
        try:
            certificate = x509.load_pem_x509_certificate(data)
        except ValueError:
            self.problems.append(f"{name} does not read as a PEM X.509 certificate")
            return None
        ok = True
        if key is not None and certificate.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
                key.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo):
            self.problems.append(f"{name} does not hold the public key of PPT_FIKSIO_PRIVATE_KEY")
            ok = False
        if certificate.not_valid_after_utc <= self.now:
            self.problems.append(f"{name} expired on {certificate.not_valid_after_utc:%Y-%m-%d}: make a new one "
                                 f"and upload it to the Fiks IO account")
            ok = False
        elif certificate.not_valid_before_utc > self.now:
            self.problems.append(f"{name} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
            ok = False
        return certificate.public_bytes(serialization.Encoding.PEM) if ok else None

    def _token_provider(self) -> TokenProvider | None:
        name = "PPT_FIKSIO_TOKEN_PROVIDER"
        spec = self.config.get(name)
        if not spec:
            if not self.config.get("PPT_SVARUT_TOKEN_PROVIDER"):
                self.problems.append(f"{name} is not set, nor PPT_SVARUT_TOKEN_PROVIDER: Fiks IO needs a "
                                     f"Maskinporten token provider (scope ks:fiks)")
                return None
            name, spec = "PPT_SVARUT_TOKEN_PROVIDER", self.config.get("PPT_SVARUT_TOKEN_PROVIDER")
        try:
            return resolve_token_provider(spec, name)
        except RuntimeError as exc:
            self.problems.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - a factory of the operator's: whatever it raises is the reason
            self.problems.append(f"{name} names {spec!r}, whose factory failed ({type(exc).__name__}: {exc})")
        return None

    def _reply_hours(self) -> None:
        hours = self.config.get("PPT_ARCHIVE_REPLY_HOURS")
        if hours in (None, ""):
            return
        try:
            if int(hours) > 0:
                return
        except (TypeError, ValueError):
            pass
        self.problems.append(f"PPT_ARCHIVE_REPLY_HOURS must be a whole number of hours above 0, not {hours!r} "
                             f"(it is also the lifetime of a message at Fiks IO)")


@lru_cache(maxsize=8)
def _load_key(data: bytes) -> object:
    """Cached: loading checks the RSA key (tens of ms), and /readyz reads it on every call."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - see _Reader._private_key

    return serialization.load_pem_private_key(data, password=None)

