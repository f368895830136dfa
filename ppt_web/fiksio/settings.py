"""What a Fiks IO participant needs, read from the app's config (PPT_FIKSIO_*), and what is wrong with it.

API_PATHS are appended to the API base (PPT_FIKSIO_API_URL, e.g. https://api.fiks.test.ks.no).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..outbound.svarut import TokenProvider

SEND_PATH = "/fiks-io/api/v1/send"
CATALOG_PATH = "/fiks-io/katalog/api/v1"  # + /kontoer/{kontoId}/offentligNokkel
DOKUMENTLAGER_PATH = "/dokumentlager/nedlasting"  # + /{dokumentlagerId}
QUEUE_PREFIX = "fiksio.konto."


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
    private_key_pem: bytes  # PKCS#8 PEM: signs the ASiC-E we send, opens what we receive
    certificate_pem: bytes  # the X.509 certificate of that key (in the ASiC-E signature)
    integration_id: str
    integration_password: str
    token_provider: TokenProvider  # Maskinporten, scope ks:fiks
    ttl_ms: int | None = None  # message lifetime on send; None: Fiks IO's default (7 days)

    @property
    def queue(self) -> str:
        return QUEUE_PREFIX + self.account_id


def problems(config: Mapping) -> list[str]:
    """Everything missing or wrong in the app's PPT_FIKSIO_* settings, each a sentence that names the
    setting (English, for the operator's log and /readyz); [] when they can work."""
    raise NotImplementedError


def from_config(config: Mapping) -> Settings:
    """The app's settings (PPT_FIKSIO_*; the archive account is the transport's, not here); SettingsError
    with every problem when they cannot work."""
    raise NotImplementedError
