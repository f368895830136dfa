"""ASiC-E as KS's Fiks IO clients make it: a zip with `mimetype` first, the payload files, a CAdES
manifest with SHA-256 digests and a CMS signature over the manifest.

Written as KS's current Java client writes it (META-INF/ASiCManifest.xml, namespace
http://uri.etsi.org/02918/v1.2.1#, SHA-256 digests, signature META-INF/signature-<uuid>.p7s, detached
CMS SignedData with the signing certificate). Read in both forms the clients write: the Java one and
the .NET one (META-INF/asicmanifest.xml, namespace http://uri.etsi.org/2918/v1.2.1#, xmldsig#sha256).

Only the signature's integrity is checked here (the manifest is what the certificate inside it signed);
whether that certificate is the sender's is for the caller to decide (signer_certificate_pem).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import unquote
from xml.sax.saxutils import quoteattr

from asn1crypto import algos, cms, pem, tsp, x509
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from lxml import etree

from ..files import zips

MIMETYPE = "application/vnd.etsi.asic-e+zip"
MANIFEST_NAME = "META-INF/ASiCManifest.xml"
OASIS_MANIFEST_NAME = "META-INF/manifest.xml"
SIGNATURE_MIMETYPE = "application/x-pkcs7-signature"
ASIC_NS = "http://uri.etsi.org/02918/v1.2.1#"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
OASIS_NS = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
SHA256_URI = "http://www.w3.org/2001/04/xmlenc#sha256"
# The manifest's namespace as the Java client (and an older ETSI version) and the .NET client write it.
MANIFEST_NAMESPACES = {ASIC_NS, "http://uri.etsi.org/02918/v1.1.1#", "http://uri.etsi.org/2918/v1.2.1#"}
# Digest method URIs (hashlib names): the Java client writes xmlenc#sha256, the .NET one xmldsig#sha256.
DIGEST_URIS = {
    SHA256_URI: "sha256",
    "http://www.w3.org/2000/09/xmldsig#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
}
CMS_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512}
SIGNING_CERTIFICATE_V2 = tsp.SetOfSigningCertificatesV2  # importing tsp registers the CAdES attribute
MAX_TOTAL_SIZE = 5 * 1024 ** 3  # Fiks IO's own upper limit for a message (Dokumentlager's)
MAX_ENTRIES = 10_000


class AsiceError(Exception):
    """The container is not one we accept; the text says what is wrong (English)."""


@dataclass
class Container:
    files: dict[str, bytes]  # the payload files by name, in the container's order
    signer_certificate_pem: bytes | None  # the certificate the signature names (None if not required and absent)


# --------------------------------------------------------------------------- writing

def build(files: Sequence[tuple[str, bytes, str]], private_key_pem: bytes, certificate_pem: bytes) -> bytes:
    """The signed container for (name, content, mime type) files; the first is the root file."""
    if not files:
        raise AsiceError("a container needs at least one file")
    seen: set[str] = set()
    for name, content, mime_type in files:
        problem = name_problem(name)
        if problem:
            raise AsiceError(problem)
        if name.casefold() in seen:
            raise AsiceError(f"the file name {name!r} is given twice")
        seen.add(name.casefold())
        if not isinstance(content, bytes | bytearray):
            raise AsiceError(f"the content of {name!r} is not bytes")
        if not isinstance(mime_type, str) or not mime_type.strip():
            raise AsiceError(f"{name!r} has no MIME type")
    key, certificate = _signing_key(private_key_pem, certificate_pem)
    signature_name = f"META-INF/signature-{uuid.uuid4()}.p7s"
    manifest = _manifest(files, signature_name)
    signature = _sign(manifest, key, certificate)

    out = io.BytesIO()
    stamp = datetime.now().timetuple()[:6]
    with zipfile.ZipFile(out, "w") as archive:
        archive.comment = f"mimetype={MIMETYPE}".encode("ascii")
        archive.writestr(zipfile.ZipInfo("mimetype", stamp), MIMETYPE.encode("ascii"), zipfile.ZIP_STORED)
        for name, content, _mime in files:
            archive.writestr(zipfile.ZipInfo(name, stamp), bytes(content), zipfile.ZIP_DEFLATED)
        archive.writestr(zipfile.ZipInfo(MANIFEST_NAME, stamp), manifest, zipfile.ZIP_DEFLATED)
        archive.writestr(zipfile.ZipInfo(signature_name, stamp), signature, zipfile.ZIP_DEFLATED)
        archive.writestr(zipfile.ZipInfo(OASIS_MANIFEST_NAME, stamp), _oasis_manifest(files), zipfile.ZIP_DEFLATED)
    return out.getvalue()


def name_problem(name: object) -> str | None:
    """Why a payload file name cannot go in a container (None when it can): a plain file name only."""
    if not isinstance(name, str) or not name.strip():
        return "a file name is empty"
    if name == "mimetype" or name.upper().startswith("META-INF"):
        return f"the file name {name!r} is reserved for the container itself"
    if "/" in name or "\\" in name:
        return f"the file name {name!r} has a folder part; only plain file names are accepted"
    if name in (".", "..") or any(ord(c) < 32 for c in name):
        return f"the file name {name!r} is not a plain file name"
    return None


def _manifest(files: Sequence[tuple[str, bytes, str]], signature_name: str) -> bytes:
    references = []
    for number, (name, content, mime_type) in enumerate(files):
        digest = base64.b64encode(hashlib.sha256(content).digest()).decode("ascii")
        root = ' Rootfile="true"' if number == 0 else ""
        references.append(
            f"<DataObjectReference URI={quoteattr(name)} MimeType={quoteattr(mime_type)}{root}>"
            f'<ns2:DigestMethod Algorithm="{SHA256_URI}"/><ns2:DigestValue>{digest}</ns2:DigestValue>'
            "</DataObjectReference>")
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<ASiCManifest xmlns="{ASIC_NS}" xmlns:ns2="{DSIG_NS}">'
            f'<SigReference URI={quoteattr(signature_name)} MimeType="{SIGNATURE_MIMETYPE}"/>'
            + "".join(references) + "</ASiCManifest>").encode("utf-8")


def _oasis_manifest(files: Sequence[tuple[str, bytes, str]]) -> bytes:
    """The OpenDocument manifest KS's Java client adds beside the ASiC one; readers do not need it."""
    entries = "".join(f"<manifest:file-entry manifest:full-path={quoteattr(name)} "
                      f"manifest:media-type={quoteattr(mime)}/>" for name, _content, mime in files)
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<manifest:manifest xmlns:manifest="{OASIS_NS}">'
            f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{MIMETYPE}"/>'
            + entries + "</manifest:manifest>").encode("utf-8")


@lru_cache(maxsize=4)
def _signing_key(private_key_pem: bytes, certificate_pem: bytes) -> tuple[RSAPrivateKey, x509.Certificate]:
    """Cached: loading checks the RSA key (~60 ms), once per key instead of once per message."""
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise AsiceError(f"the signing key cannot be read (PEM, unencrypted): {exc}") from None
    try:
        loaded = cx509.load_pem_x509_certificate(certificate_pem)
    except ValueError as exc:
        raise AsiceError(f"the signing certificate cannot be read (PEM): {exc}") from None
    if not isinstance(key, RSAPrivateKey):
        raise AsiceError("the signing key is not an RSA key")
    if loaded.public_key() != key.public_key():
        raise AsiceError("the signing certificate is not the certificate of the signing key")
    return key, x509.Certificate.load(loaded.public_bytes(serialization.Encoding.DER))


def _sign(manifest: bytes, key: RSAPrivateKey, certificate: x509.Certificate, digest: str = "sha256") -> bytes:
    """Detached CMS SignedData over the manifest, CAdES-BES: SHA-256 with RSA (PKCS#1 v1.5).
    (digest "sha1" makes what KS's Java client signs with, for tests of the reader.)

    What depends only on the certificate is encoded once (_certificate_parts) and put in as unparsed
    bytes: asn1crypto deep-copies a parsed value placed in a new structure (~20 ms a signature)."""
    der, issuer_der, serial, signing_certificate = _certificate_parts(certificate.dump())
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": datetime.now(UTC)})]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.new(digest, manifest).digest()]}),
        cms.CMSAttribute.load(signing_certificate),
    ]
    # DER orders a SET OF by the encodings; verifiers re-encode the attributes before checking.
    signed_attrs = cms.CMSAttributes.load(b"\x31" + _der_length(sum(len(a.dump()) for a in attributes))
                                          + b"".join(sorted(a.dump() for a in attributes)))
    signature = key.sign(signed_attrs.dump(), padding.PKCS1v15(), CMS_HASHES[digest]())
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": x509.Name.load(issuer_der), "serial_number": serial})}),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": digest}),
        "signed_attrs": signed_attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": f"{digest}_rsa"}),
        "signature": signature,
    })
    signed = cms.SignedData({
        "version": "v1",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest})],
        "encap_content_info": {"content_type": "data"},
        "certificates": [cms.CertificateChoices.load(der)],
        "signer_infos": [signer],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


@lru_cache(maxsize=8)
def _certificate_parts(der: bytes) -> tuple[bytes, bytes, int, bytes]:
    """The certificate, its issuer, serial and signing-certificate-v2 attribute, encoded once."""
    certificate = x509.Certificate.load(der)
    issuer_der = certificate["tbs_certificate"]["issuer"].dump()
    attribute = cms.CMSAttribute({"type": "signing_certificate_v2", "values": [{
        "certs": [{"cert_hash": hashlib.sha256(der).digest(),
                   "issuer_serial": {"issuer": [x509.GeneralName({"directory_name": x509.Name.load(issuer_der)})],
                                     "serial_number": certificate.serial_number}}]}]})
    return der, issuer_der, certificate.serial_number, attribute.dump()


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


# --------------------------------------------------------------------------- reading

def read(data: bytes, *, require_signature: bool = True, max_size: int = MAX_TOTAL_SIZE,
         max_entries: int = MAX_ENTRIES) -> Container:
    """The payload files of a container, after checking mimetype, manifest digests and signature;
    AsiceError for anything else."""
    entries = _unzip(data, max_size, max_entries)
    names = list(entries)
    if not names or names[0] != "mimetype":
        raise AsiceError("the first entry of the container is not 'mimetype'")
    if entries["mimetype"] != MIMETYPE.encode("ascii"):
        raise AsiceError(f"the mimetype entry is not {MIMETYPE!r}")
    manifests = [n for n in names if n.casefold() == MANIFEST_NAME.casefold()]
    if not manifests:
        raise AsiceError("the container has no META-INF/ASiCManifest.xml")
    if len(manifests) > 1:
        raise AsiceError("the container has more than one ASiC manifest")
    manifest_bytes = entries[manifests[0]]
    signature_uri, references = _read_manifest(manifest_bytes)

    payload = [n for n in names[1:] if not n.upper().startswith("META-INF/")]
    for name in payload:
        problem = name_problem(name)
        if problem:
            raise AsiceError(problem)
    listed: set[str] = set()
    for uri, (hash_name, declared) in references.items():
        name = uri if uri in entries else unquote(uri)
        if name not in payload:
            raise AsiceError(f"{_shown(uri)} is listed in the manifest but missing from the container")
        if hashlib.new(hash_name, entries[name]).digest() != declared:
            raise AsiceError(f"manifest digest of {name} does not match")
        listed.add(name)
    unlisted = [n for n in payload if n not in listed]
    if unlisted:
        raise AsiceError(f"{_shown(unlisted[0])} is in the container but not in the manifest")

    certificate_pem = None
    if signature_uri is None:
        if require_signature:
            raise AsiceError("the container is not signed (the manifest has no SigReference)")
    else:
        signature = entries.get(signature_uri, entries.get(unquote(signature_uri)))
        if signature is None:
            raise AsiceError(f"the signature {_shown(signature_uri)} named in the manifest is missing")
        certificate_pem = verify_signature(signature, manifest_bytes)
    return Container(files={n: entries[n] for n in payload}, signer_certificate_pem=certificate_pem)


def _shown(name: str) -> str:
    """A name from the sender, safe for one log line: control characters escaped, length capped."""
    if len(name) > 200:
        name = name[:200] + "..."
    return repr(name)[1:-1] if any(ord(c) < 32 or c == "\x7f" for c in name) else name


def _unzip(data: bytes, max_size: int, max_entries: int) -> dict[str, bytes]:
    """Every file entry by name, in the zip's order; sizes capped (a zip bomb is refused unread)."""
    try:
        return zips.unzip(data, max_size, max_entries=max_entries, what="the container")
    except zips.ZipRefused as exc:
        raise AsiceError(str(exc)) from None


def _read_manifest(data: bytes) -> tuple[str | None, dict[str, tuple[str, bytes]]]:
    """The signature's URI and {URI: (hashlib name, declared digest)} of every DataObjectReference."""
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise AsiceError(f"the manifest is not well-formed XML ({exc})") from None
    namespace, local = _split(root.tag)
    if local != "ASiCManifest" or namespace not in MANIFEST_NAMESPACES:
        raise AsiceError(f"the manifest's root is not ASiCManifest in {ASIC_NS} (found {root.tag})")
    signature_uris = [el.get("URI") for el in root if _split(el.tag) == (namespace, "SigReference")]
    if len(signature_uris) > 1:
        raise AsiceError("the manifest has more than one SigReference")
    if signature_uris and not signature_uris[0]:
        raise AsiceError("the manifest's SigReference has no URI")
    references: dict[str, tuple[str, bytes]] = {}
    for element in root:
        if _split(element.tag) != (namespace, "DataObjectReference"):
            continue
        uri = element.get("URI")
        if not uri:
            raise AsiceError("a DataObjectReference in the manifest has no URI")
        if uri in references:
            raise AsiceError(f"{_shown(uri)} is listed twice in the manifest")
        method = _child(element, "DigestMethod", namespace)
        value = _child(element, "DigestValue", namespace)
        if method is None or value is None:
            raise AsiceError(f"the manifest gives no DigestMethod and DigestValue for {_shown(uri)}")
        algorithm = (method.get("Algorithm") or "").strip()
        if algorithm not in DIGEST_URIS:
            raise AsiceError(f"the manifest's digest method for {_shown(uri)} is not supported ({algorithm[:100]!r})")
        try:
            declared = base64.b64decode(re.sub(r"\s+", "", value.text or ""), validate=True)
        except (binascii.Error, ValueError):
            raise AsiceError(f"the manifest's digest value for {_shown(uri)} is not base64") from None
        references[uri] = (DIGEST_URIS[algorithm], declared)
    if not references:
        raise AsiceError("the manifest lists no files")
    return (signature_uris[0] if signature_uris else None), references


def _split(tag: object) -> tuple[str, str]:
    if not isinstance(tag, str):
        return "", ""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _child(element, local: str, manifest_namespace: str):
    """The xmldsig child (the schema's form), or one in the manifest's own namespace (seen in the wild)."""
    for child in element:
        if _split(child.tag) in ((DSIG_NS, local), (manifest_namespace, local)):
            return child
    return None


def verify_signature(signature: bytes, manifest: bytes) -> bytes:
    """The PEM certificate of a CMS SignedData that signs these manifest bytes; AsiceError otherwise.
    Every SignerInfo must verify (KS's .NET client writes two, both by the same key)."""
    try:
        info = cms.ContentInfo.load(signature, strict=True)
        if info["content_type"].native != "signed_data":
            raise AsiceError(f"the signature is not CMS SignedData but {info['content_type'].native!r}")
        signed = info["content"]
        attached = signed["encap_content_info"]["content"].native
        # The bytes as received, taken before any field is read: reading a field with a DEFAULT marks
        # asn1crypto's value changed, and dump() would then encode it anew (slowly, and perhaps not
        # byte for byte as it was signed).
        certificates = [(c.chosen, c.chosen.dump()) for c in signed["certificates"] if c.name == "certificate"]
        signer_infos = [(s, s["signed_attrs"].dump()) for s in signed["signer_infos"]]
    except AsiceError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise AsiceError(f"the signature cannot be read ({exc})") from None
    if attached is not None and attached != manifest:
        raise AsiceError("the signature is over another manifest")
    if not signer_infos:
        raise AsiceError("the signature has no signer")
    signers = [_verify_signer(signer, raw_attrs, certificates, manifest) for signer, raw_attrs in signer_infos]
    return pem.armor("CERTIFICATE", signers[0])


def _verify_signer(signer: cms.SignerInfo, raw_attrs: bytes, certificates: list[tuple[x509.Certificate, bytes]],
                   manifest: bytes) -> bytes:
    """The DER of the signer's certificate, once its signature over the manifest verifies."""
    try:
        sid = signer["sid"]
        found = _signer_certificate(sid, certificates)
        digest_name = signer["digest_algorithm"]["algorithm"].native
        signature_name = signer["signature_algorithm"]["algorithm"].native
        signed_attrs = signer["signed_attrs"]
        value = signer["signature"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise AsiceError(f"the signature's signer cannot be read ({exc})") from None
    if found is None:
        raise AsiceError("the signature does not include its signing certificate")
    certificate_der = found[1]
    if digest_name not in CMS_HASHES:
        raise AsiceError(f"the signature's digest algorithm {digest_name!r} is not supported")
    if signature_name != "rsassa_pkcs1v15" and not signature_name.endswith("_rsa"):
        raise AsiceError(f"the signature algorithm {signature_name!r} is not supported (RSA PKCS#1 v1.5 only)")
    digest = hashes.Hash(CMS_HASHES[digest_name]())
    digest.update(manifest)
    manifest_digest = digest.finalize()
    if not raw_attrs or len(signed_attrs) == 0:
        signed_bytes = manifest  # no attributes: the signature is over the content itself
    else:
        attributes = {a["type"].native: a["values"] for a in signed_attrs}
        digests = attributes.get("message_digest")
        if digests is None or len(digests) != 1:
            raise AsiceError("the signature has no message-digest attribute")
        if digests[0].native != manifest_digest:
            raise AsiceError("the signature is over another manifest")
        content_types = attributes.get("content_type")
        if content_types is not None and content_types[0].native != "data":
            raise AsiceError("the signature's content-type attribute is not data")
        signing_certificates = attributes.get("signing_certificate_v2")
        if signing_certificates is not None:
            _check_signing_certificate(signing_certificates, certificate_der)
        signed_bytes = b"\x31" + raw_attrs[1:]  # signed as a universal SET OF, not the [0] it is stored as
    public_key = cx509.load_der_x509_certificate(certificate_der).public_key()
    if not isinstance(public_key, RSAPublicKey):
        raise AsiceError("the signing certificate does not hold an RSA key")
    try:
        public_key.verify(value, signed_bytes, padding.PKCS1v15(), CMS_HASHES[digest_name]())
    except InvalidSignature:
        raise AsiceError("the signature does not verify with the certificate inside it") from None
    return certificate_der


def _check_signing_certificate(values, certificate_der: bytes) -> None:
    """CAdES binds the signature to its certificate by hash: another certificate with the same issuer
    and serial number does not pass."""
    try:
        first = values[0]["certs"][0]
        algorithm = first["hash_algorithm"]["algorithm"].native
        declared = first["cert_hash"].native
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise AsiceError(f"the signature's signing-certificate attribute cannot be read ({exc})") from None
    if algorithm not in CMS_HASHES:
        raise AsiceError(f"the signing-certificate attribute's hash {algorithm!r} is not supported")
    if hashlib.new(algorithm, certificate_der).digest() != declared:
        raise AsiceError("the signature's signing-certificate attribute names another certificate")


def _signer_certificate(sid: cms.SignerIdentifier, certificates: list[tuple[x509.Certificate, bytes]]
                        ) -> tuple[x509.Certificate, bytes] | None:
    if sid.name == "issuer_and_serial_number":
        issuer, serial = sid.chosen["issuer"], sid.chosen["serial_number"].native
        return next((c for c in certificates if c[0].issuer == issuer and c[0].serial_number == serial), None)
    key_id = sid.chosen.native
    return next((c for c in certificates if c[0].key_identifier == key_id), None)
