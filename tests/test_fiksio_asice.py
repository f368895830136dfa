"""The ASiC-E container a Fiks IO message's files travel in: what we write, and what we accept."""
from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ppt_web.fiksio import asice

from .svarinn_server import make_key_and_cert

pytestmark = pytest.mark.one_database  # engine-independent: CI runs it on one database

FILES = [("arkivmelding.xml", b"<arkivmelding>...</arkivmelding>", "application/xml"),
         ("vedlegg 1.pdf", b"%PDF-1.7\n" + b"x" * 5000, "application/pdf")]


@pytest.fixture(scope="module")
def signer() -> tuple[bytes, bytes]:
    return make_key_and_cert("ppt-fiksio-avsender")


@pytest.fixture(scope="module")
def container(signer) -> bytes:
    return asice.build(FILES, *signer)


def entries(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def rezip(items: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in items:
            archive.writestr(name, data)
    return out.getvalue()


def replaced(data: bytes, name: str, content: bytes) -> bytes:
    return rezip([(n, content if n == name else d) for n, d in entries(data)])


def refused(data: bytes, reason: str, **kwargs) -> None:
    with pytest.raises(asice.AsiceError, match=reason):
        asice.read(data, **kwargs)


def test_round_trip_gives_the_files_in_order_and_the_signer(container, signer):
    """What we build reads back whole, with the certificate that signed it."""
    read = asice.read(container)
    assert list(read.files.items()) == [(name, content) for name, content, _ in FILES]
    assert read.signer_certificate_pem is not None
    assert x509.load_pem_x509_certificate(read.signer_certificate_pem) == x509.load_pem_x509_certificate(signer[1])


def test_layout_is_what_ks_java_client_writes(container):
    """mimetype first and stored, payload, ASiCManifest.xml with SHA-256 digests, a detached CMS signature."""
    with zipfile.ZipFile(io.BytesIO(container)) as archive:
        infos = archive.infolist()
        assert archive.comment == b"mimetype=application/vnd.etsi.asic-e+zip"
        assert infos[0].filename == "mimetype" and infos[0].compress_type == zipfile.ZIP_STORED
        assert archive.read(infos[0]) == b"application/vnd.etsi.asic-e+zip"
        names = [i.filename for i in infos]
        assert names[1:3] == ["arkivmelding.xml", "vedlegg 1.pdf"]
        assert names[3] == "META-INF/ASiCManifest.xml"
        assert re.fullmatch(r"META-INF/signature-[0-9a-f-]{36}\.p7s", names[4])
        manifest = archive.read("META-INF/ASiCManifest.xml").decode()
        signature = archive.read(names[4])
    assert 'xmlns="http://uri.etsi.org/02918/v1.2.1#"' in manifest
    assert f'<SigReference URI="{names[4]}" MimeType="application/x-pkcs7-signature"/>' in manifest
    assert '<DataObjectReference URI="arkivmelding.xml" MimeType="application/xml" Rootfile="true">' in manifest
    assert manifest.count("Rootfile") == 1
    assert manifest.count('Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"') == 2
    digest = base64.b64encode(hashlib.sha256(FILES[1][1]).digest()).decode()
    assert f"<ns2:DigestValue>{digest}</ns2:DigestValue>" in manifest
    signed = cms.ContentInfo.load(signature)["content"]
    assert signed["encap_content_info"]["content"].native is None  # detached
    signer_info = signed["signer_infos"][0]
    assert signer_info["digest_algorithm"]["algorithm"].native == "sha256"
    assert {a["type"].native for a in signer_info["signed_attrs"]} == {
        "content_type", "message_digest", "signing_time", "signing_certificate_v2"}


def test_dotnet_shaped_container_is_read(signer):
    """KS's .NET client: deflated mimetype, asicmanifest.xml, the 2918 namespace, xmldsig#sha256, two signers."""
    key_pem, cert_pem = signer
    payload = b"<arkivmelding/>"
    digest = base64.b64encode(hashlib.sha256(payload).digest()).decode()
    manifest = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<cades:ASiCManifest xmlns:sig="http://www.w3.org/2000/09/xmldsig#" '
                'xmlns:cades="http://uri.etsi.org/2918/v1.2.1#">\n'
                '  <cades:SigReference URI="META-INF/signature.p7s" MimeType="application/x-pkcs7-signature" />\n'
                '  <cades:DataObjectReference URI="arkivmelding.xml" MimeType="application/xml">\n'
                '    <sig:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha256" />\n'
                f'    <sig:DigestValue>{digest}</sig:DigestValue>\n'
                '  </cades:DataObjectReference>\n'
                '</cades:ASiCManifest>').encode()
    key, certificate = asice._signing_key(key_pem, cert_pem)
    info = cms.ContentInfo.load(asice._sign(manifest, key, certificate))
    signed = info["content"]
    signed["signer_infos"] = [signed["signer_infos"][0], signed["signer_infos"][0]]
    signature = cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    data = rezip([("mimetype", asice.MIMETYPE.encode()), ("arkivmelding.xml", payload),
                  ("META-INF/asicmanifest.xml", manifest), ("META-INF/signature.p7s", signature)])
    assert asice.read(data).files == {"arkivmelding.xml": payload}


def test_java_sha1_signature_is_read(signer, container):
    """KS's Java client signs the manifest with SHA1withRSA."""
    items = entries(container)
    manifest = dict(items)["META-INF/ASiCManifest.xml"]
    key, certificate = asice._signing_key(*signer)
    signature_name = next(n for n, _ in items if n.endswith(".p7s"))
    data = replaced(container, signature_name, asice._sign(manifest, key, certificate, digest="sha1"))
    assert list(asice.read(data).files) == ["arkivmelding.xml", "vedlegg 1.pdf"]


def test_mimetype_not_first_is_refused(container):
    items = entries(container)
    refused(rezip(items[1:2] + items[:1] + items[2:]), "first entry of the container is not 'mimetype'")


def test_wrong_mimetype_is_refused(container):
    refused(replaced(container, "mimetype", b"application/zip"), "mimetype entry is not")


def test_changed_file_is_refused(container):
    refused(replaced(container, "arkivmelding.xml", b"<arkivmelding>changed</arkivmelding>"),
            "manifest digest of arkivmelding.xml does not match")


def test_missing_file_is_refused(container):
    refused(rezip([(n, d) for n, d in entries(container) if n != "vedlegg 1.pdf"]),
            "vedlegg 1.pdf is listed in the manifest but missing from the container")


def test_extra_file_is_refused(container):
    items = entries(container)
    refused(rezip(items[:3] + [("smuggled.exe", b"MZ")] + items[3:]), "smuggled.exe is in the container but not")


def test_path_traversal_is_refused(container):
    items = entries(container)
    refused(rezip(items[:3] + [("../../etc/cron.d/x", b"boom")] + items[3:]), "has a folder part")


def test_signature_over_another_manifest_is_refused(container, signer):
    other = asice.build([("arkivmelding.xml", b"<other/>", "application/xml")], *signer)
    other_signature = next(d for n, d in entries(other) if n.endswith(".p7s"))
    name = next(n for n, _ in entries(container) if n.endswith(".p7s"))
    refused(replaced(container, name, other_signature), "the signature is over another manifest")


def test_manifest_changed_after_signing_is_refused(container):
    """Someone swaps a file and fixes its digest in the manifest: the signature no longer fits."""
    items = dict(entries(container))
    new = b"<arkivmelding>forged</arkivmelding>"
    old_digest = base64.b64encode(hashlib.sha256(FILES[0][1]).digest())
    new_digest = base64.b64encode(hashlib.sha256(new).digest())
    manifest = items["META-INF/ASiCManifest.xml"].replace(old_digest, new_digest)
    data = replaced(replaced(container, "arkivmelding.xml", new), "META-INF/ASiCManifest.xml", manifest)
    refused(data, "the signature is over another manifest")


def test_broken_signature_is_refused(container):
    name, signature = next((n, d) for n, d in entries(container) if n.endswith(".p7s"))
    info = cms.ContentInfo.load(signature)
    signer_info = info["content"]["signer_infos"][0]
    value = bytearray(signer_info["signature"].native)
    value[10] ^= 0xFF
    signer_info["signature"] = bytes(value)
    refused(replaced(container, name, info.dump(force=True)), "does not verify with the certificate inside it")


def test_garbage_signature_is_refused(container):
    name = next(n for n, _ in entries(container) if n.endswith(".p7s"))
    refused(replaced(container, name, b"not a signature"), "the signature cannot be read")


def test_unsigned_container_is_refused_unless_allowed(container):
    items = [(n, d) for n, d in entries(container) if not n.endswith(".p7s")]
    manifest = dict(items)["META-INF/ASiCManifest.xml"]
    manifest = re.sub(rb"<SigReference [^>]*/>", b"", manifest)
    data = rezip([(n, manifest if n == "META-INF/ASiCManifest.xml" else d) for n, d in items])
    refused(data, "the container is not signed")
    read = asice.read(data, require_signature=False)
    assert read.signer_certificate_pem is None and list(read.files) == ["arkivmelding.xml", "vedlegg 1.pdf"]


def test_missing_signature_file_is_refused(container):
    refused(rezip([(n, d) for n, d in entries(container) if not n.endswith(".p7s")]), "named in the manifest is missing")


def test_zip_bomb_and_junk_are_refused(container):
    refused(container, "unpacks to more than the limit of 1000 bytes", max_size=1000)
    refused(container, "more than 3 entries", max_entries=3)
    refused(b"PK\x03\x04 not really", "cannot be read as a ZIP")


@pytest.mark.parametrize("name", ["", "META-INF/extra.xml", "mimetype", "a/b.xml", "..", "c:\\x.xml"])
def test_build_refuses_names_that_are_not_plain(signer, name):
    with pytest.raises(asice.AsiceError):
        asice.build([(name, b"x", "text/plain")], *signer)


def test_build_refuses_a_certificate_of_another_key(signer):
    other = make_key_and_cert("someone-else")[1]
    with pytest.raises(asice.AsiceError, match="not the certificate of the signing key"):
        asice.build(FILES, signer[0], other)


def test_substituted_certificate_is_refused(container, signer):
    """A certificate with the signer's issuer and serial number but another key does not pass for it."""
    original = x509.load_pem_x509_certificate(signer[1])
    other_key = serialization.load_pem_private_key(make_key_and_cert("x")[0], password=None)
    forged = (x509.CertificateBuilder().subject_name(original.subject).issuer_name(original.issuer)
              .public_key(other_key.public_key()).serial_number(original.serial_number)
              .not_valid_before(original.not_valid_before_utc).not_valid_after(original.not_valid_after_utc)
              .sign(other_key, hashes.SHA256()))
    name, signature = next((n, d) for n, d in entries(container) if n.endswith(".p7s"))
    info = cms.ContentInfo.load(signature)
    info["content"]["certificates"] = [
        cms.CertificateChoices({"certificate": asn1_x509.Certificate.load(forged.public_bytes(serialization.Encoding.DER))})]
    refused(replaced(container, name, info.dump(force=True)), "signing-certificate attribute names another certificate")
