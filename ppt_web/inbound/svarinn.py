"""SvarInn V2 over HTTP (docs/integrations.md, "SvarInn V2"): list, download each CMS-encrypted ZIP,
check it, then MOTTATT or FEILET.

The base URL (PPT_SVARINN_URL) is the service's origin, e.g. https://test.svarut.ks.no. KS's spec
lists its servers as ".../api", so a trailing "/api" (and any trailing "/") is tolerated and dropped.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import quote, urljoin, urlsplit

import requests

from ..files.zips import ZipRefused
from . import cms
from .metadata import declared_size, failure, message_id, metadata_problem, parse_message, scrub, unzip
from .types import (
    BAD_METADATA,
    BAD_ZIP,
    DECRYPT_FAILED,
    DEFAULT_MAX_BYTES,
    DOWNLOAD_FAILED,
    KEY_MISMATCH,
    InboundFailure,
    InboundMessage,
    InboundUnavailable,
)

log = logging.getLogger(__name__)

LIST_PATH = "/api/svarinn/v2/forsendelser"
CHUNK = 1024 * 1024
ENVELOPE_OVERHEAD = 1024 * 1024  # CMS headers and padding on top of the ZIP
MAX_FEILMELDING = 1000
DEFAULT_PORTS = {"http": 80, "https": 443}


class _DownloadFailed(Exception):
    def __init__(self, detail: str, permanent: bool = False):
        super().__init__(detail)
        self.detail, self.permanent = detail, permanent


def origin(base_url: str) -> str:
    """'https://svarut.ks.no' from the configured base, with or without a trailing '/' or '/api'."""
    base = base_url.strip().rstrip("/")
    if base.endswith("/api"):
        base = base[: -len("/api")].rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"the SvarInn base URL must be http(s)://host, not {base_url!r}")
    return base


class SvarInnSource:
    """The mottakersystem's view of SvarInn V2: HTTP Basic auth, and our private key for the envelopes."""

    def __init__(self, base_url: str, username: str, password: str, private_key_pem: bytes, timeout: float = 60,
                 max_bytes: int = DEFAULT_MAX_BYTES, session: requests.Session | None = None):
        cms.check_private_key(private_key_pem)
        self.origin = origin(base_url)
        self.auth = (username, password)
        self.private_key_pem = private_key_pem
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.session = session or requests.Session()

    def fetch(self) -> Iterator[InboundMessage | InboundFailure]:
        """Page through the waiting list until it is empty or repeats itself.

        SvarInn lists at most 200 items and keeps listing an item until it is acknowledged, so a page of
        only ids already handed out in this pass (transient failures, ones the caller kept) ends the pass.
        """
        seen: set[str] = set()
        while True:
            fresh = [item for item in self._list() if _item_key(item) not in seen]
            if not fresh:
                return
            for item in fresh:
                key = _item_key(item)
                if key in seen:  # the same id twice on one page
                    continue
                seen.add(key)
                yield self._receive(item)

    def acknowledge(self, message_id: str) -> None:
        """MOTTATT. Raises InboundUnavailable if SvarInn did not take it; the item then comes again."""
        self._patch_status(message_id, {"status": "MOTTATT"})

    def fail(self, message_id: str, detail: str, permanent: bool) -> None:
        """FEILET: permanent makes SvarUt send it another way; transient leaves it waiting for us."""
        feilmelding = scrub(detail).strip()[:MAX_FEILMELDING] or "technical failure on receipt"
        self._patch_status(message_id, {"status": "FEILET",
                                        "feil": {"feilmelding": feilmelding, "permanent": bool(permanent)}})

    def _list(self) -> list:
        try:
            response = self.session.get(self.origin + LIST_PATH, auth=self.auth, timeout=self.timeout,
                                        headers={"Accept": "application/json"})
        except requests.Timeout:
            raise InboundUnavailable("SvarInn did not answer the listing in time") from None
        except requests.RequestException as exc:
            raise InboundUnavailable(f"cannot reach SvarInn: {type(exc).__name__}") from None
        with response:
            if response.status_code == 401:
                raise InboundUnavailable("SvarInn refused the credentials (401)")
            if response.status_code != 200:
                raise InboundUnavailable(f"SvarInn answered the listing with HTTP {response.status_code}")
            try:
                items = response.json()
            except ValueError:
                raise InboundUnavailable("SvarInn answered the listing with something other than JSON") from None
        if not isinstance(items, list):
            raise InboundUnavailable("SvarInn answered the listing with JSON that is not a list")
        return items

    def _receive(self, item: object) -> InboundMessage | InboundFailure:
        """Everything for one listed item; a failure carries the downloaded envelope for quarantine."""
        problem = metadata_problem(item)
        if problem:
            return self._failed(failure(item, BAD_METADATA, problem))
        assert isinstance(item, dict)  # metadata_problem refuses anything else
        if declared_size(item) > self.max_bytes:
            return self._failed(failure(item, BAD_METADATA,
                                        f"the files total {declared_size(item)} bytes, over the limit of "
                                        f"{self.max_bytes}"))
        try:
            envelope = self._download(self._download_url(item))
        except _DownloadFailed as exc:
            return self._failed(failure(item, DOWNLOAD_FAILED, exc.detail, permanent=exc.permanent))
        try:
            zipped = cms.decrypt(envelope, self.private_key_pem)
        except cms.CmsError as exc:
            if exc.ours:
                # Our key setup, not the sender: left unacknowledged (SvarInn lists it again) rather than
                # FEILET, which would send every letter to print until the key is fixed.
                return self._failed(failure(item, KEY_MISMATCH, f"cannot decrypt: {exc}", permanent=False))
            return self._failed(failure(item, DECRYPT_FAILED, f"cannot decrypt: {exc}", payload=envelope))
        try:
            files = unzip(zipped, self.max_bytes)
        except ZipRefused as exc:
            return self._failed(failure(item, BAD_ZIP, str(exc), payload=envelope))
        result = parse_message(item, files)
        if isinstance(result, InboundFailure):
            return self._failed(replace(result, payload=envelope))
        return result

    def _download_url(self, item: dict) -> str:
        """nedlastingslenke verbatim (it may be the legacy path), but our password goes only to our origin."""
        link = item.get("nedlastingslenke")
        if not isinstance(link, str) or not link.strip():
            return f"{self.origin}{LIST_PATH}/{quote(item['id'])}"
        url = urljoin(self.origin + "/", link.strip())
        if not _same_origin(url, self.origin):
            raise _DownloadFailed("nedlastingslenke points to another host than the configured SvarInn URL; "
                                  "credentials are not sent there")
        return url

    def _download(self, url: str) -> bytes:
        """The envelope, streamed and capped: a ZIP over the limit is refused before it fills memory."""
        cap = self.max_bytes + ENVELOPE_OVERHEAD
        try:
            with self.session.get(url, auth=self.auth, timeout=self.timeout, stream=True) as response:
                if response.status_code == 404:
                    raise _DownloadFailed("SvarInn has no download at nedlastingslenke (404)")
                if response.status_code != 200:
                    raise _DownloadFailed(f"the download answered HTTP {response.status_code}")
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > cap:
                    raise _DownloadFailed(f"the download is {length} bytes, over the limit of {cap}", permanent=True)
                chunks, total = [], 0
                for chunk in response.iter_content(CHUNK):
                    total += len(chunk)
                    if total > cap:
                        raise _DownloadFailed(f"the download is over the limit of {cap} bytes", permanent=True)
                    chunks.append(chunk)
        except requests.Timeout:
            raise _DownloadFailed("the download timed out") from None
        except requests.RequestException as exc:
            raise _DownloadFailed(f"the download broke off ({type(exc).__name__})") from None
        return b"".join(chunks)

    def _patch_status(self, message_id: str, body: dict) -> None:
        url = f"{self.origin}{LIST_PATH}/{quote(message_id, safe='')}/status"
        try:
            response = self.session.patch(url, json=body, auth=self.auth, timeout=self.timeout)
        except requests.RequestException as exc:
            raise InboundUnavailable(f"cannot reach SvarInn to set {body['status']} on {message_id}: "
                                     f"{type(exc).__name__}") from None
        with response:
            if response.status_code == 401:
                raise InboundUnavailable("SvarInn refused the credentials (401)")
            if not 200 <= response.status_code < 300:
                raise InboundUnavailable(f"SvarInn did not take {body['status']} for {message_id}: "
                                         f"HTTP {response.status_code}")
        log.info("SvarInn forsendelse %s: status %s sent", message_id, body["status"])

    def _failed(self, result: InboundFailure) -> InboundFailure:
        """Log ids and reason codes only; details are scrubbed of anything shaped like a national id."""
        level = logging.WARNING if not result.permanent else logging.INFO
        log.log(level, "SvarInn forsendelse %s not taken in (%s, %s): %s", result.id or "(no id)", result.reason,
                "permanent" if result.permanent else "will retry", result.detail)
        return result


def _item_key(item: object) -> str:
    """What makes an item 'the same' within one pass; one without an id counts by its whole content."""
    found = message_id(item)
    return found if found else f"no-id:{item!r}"


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    if a.scheme != b.scheme or (a.hostname or "").lower() != (b.hostname or "").lower():
        return False
    return (a.port or DEFAULT_PORTS.get(a.scheme)) == (b.port or DEFAULT_PORTS.get(b.scheme))
