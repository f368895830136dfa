"""ASiC-E as KS's Fiks IO clients make it: a zip with `mimetype` first, the payload files, a CAdES
manifest with SHA-256 digests and a CMS signature over the manifest.

Written as KS's current Java client writes it (META-INF/ASiCManifest.xml, namespace
http://uri.etsi.org/02918/v1.2.1#, SHA-256 digests, signature META-INF/signature-<uuid>.p7s, detached
CMS SignedData with the signing certificate). Read in both forms the clients write: the Java one and
the .NET one (META-INF/asicmanifest.xml, namespace http://uri.etsi.org/2918/v1.2.1#, xmldsig#sha256).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MIMETYPE = "application/vnd.etsi.asic-e+zip"


class AsiceError(Exception):
    """The container is not one we accept; the text says what is wrong (English)."""


@dataclass
class Container:
    files: dict[str, bytes]  # the payload files by name, in the container's order
    signer_certificate_pem: bytes | None  # the certificate the signature names (None if not required and absent)


def build(files: Sequence[tuple[str, bytes, str]], private_key_pem: bytes, certificate_pem: bytes) -> bytes:
    """The signed container for (name, content, mime type) files; the first is the root file."""
    raise NotImplementedError


def read(data: bytes, *, require_signature: bool = True) -> Container:
    """The payload files of a container, after checking mimetype, manifest digests and signature;
    AsiceError for anything else."""
    raise NotImplementedError
