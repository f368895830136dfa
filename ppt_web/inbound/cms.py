"""CMS EnvelopedData as SvarInn uses it: RSA key transport (OAEP or PKCS#1 v1.5) and AES-CBC content.

KS streams its envelopes as BER with indefinite lengths (BouncyCastle), which `cryptography`'s own
PKCS#7 decryptor refuses. So asn1crypto parses (it reads BER and DER alike) and `cryptography`
only does the two primitive steps: unwrapping the content key and AES-CBC.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache

from asn1crypto import algos, cms, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

AES_KEY_BYTES = {"aes128_cbc": 16, "aes192_cbc": 24, "aes256_cbc": 32}
OAEP_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512}


NOT_OUR_KEY = "the content key does not open with this private key"


class CmsError(Exception):
    """The envelope cannot be opened: not EnvelopedData, unsupported algorithm, wrong key or damaged.

    ours is True when the envelope is whole but does not open with our private key: almost always our
    own key setup (a wrong, old or unreadable key), which every letter would then fail on alike."""

    def __init__(self, message: str, ours: bool = False):
        super().__init__(message)
        self.ours = ours


def decrypt(envelope: bytes, private_key_pem: bytes) -> bytes:
    """The plaintext inside a CMS EnvelopedData (BER or DER) addressed to this RSA key."""
    key = _private_key(private_key_pem)
    enveloped = _enveloped_data(envelope)
    try:
        recipients = list(enveloped["recipient_infos"])
        content_info = enveloped["encrypted_content_info"]
        algorithm = content_info["content_encryption_algorithm"]
        ciphertext = content_info["encrypted_content"].native
        cipher_name = algorithm["algorithm"].native
        iv = algorithm["parameters"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise CmsError(f"the envelope is damaged or truncated ({exc})") from None
    if cipher_name not in AES_KEY_BYTES:
        raise CmsError(f"unsupported content encryption {cipher_name!r}: only AES-CBC (128/192/256) is accepted")
    if ciphertext is None:
        raise CmsError("the envelope carries no encrypted content (detached content is not supported)")
    if not isinstance(iv, bytes) or len(iv) != 16:
        raise CmsError("the AES-CBC parameters hold no 16-byte IV")
    content_key, proven = _unwrap_content_key(recipients, key)
    # OAEP unwraps only with the right key: what fails after it is the sender's envelope. PKCS#1 v1.5
    # may hand back random bytes for a wrong key (implicit rejection), so then it may still be ours.
    if len(content_key) != AES_KEY_BYTES[cipher_name]:
        raise CmsError("the unwrapped content key has the wrong length: wrong private key or damaged envelope",
                       ours=not proven)
    return _aes_cbc_decrypt(content_key, iv, ciphertext, ours=not proven)


def encrypt(data: bytes, certificate_pem: bytes) -> bytes:
    """DER EnvelopedData for the certificate's RSA key, as SvarUt makes it: OAEP-SHA-256 and AES-256-CBC.

    Used by the test server and tests; the same structure `openssl cms -encrypt -aes-256-cbc` with
    OAEP/SHA-256/MGF1-SHA-256 key options produces.
    """
    try:
        loaded = cx509.load_pem_x509_certificate(certificate_pem)
        # Unparsed bytes, not a parsed certificate's issuer: asn1crypto deep-copies a parsed value
        # placed in a new structure.
        issuer = x509.Name.load(loaded.issuer.public_bytes())
        serial_number = loaded.serial_number
        public_key = loaded.public_key()
    except ValueError as exc:
        raise CmsError(f"the recipient certificate cannot be read ({exc})") from None
    if not isinstance(public_key, RSAPublicKey):
        raise CmsError("the recipient certificate does not hold an RSA key")
    content_key, iv = os.urandom(32), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    wrapped = public_key.encrypt(content_key, _oaep(hashes.SHA256))
    recipient = cms.KeyTransRecipientInfo({
        "version": "v0",
        "rid": cms.RecipientIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": issuer, "serial_number": serial_number})}),
        "key_encryption_algorithm": cms.KeyEncryptionAlgorithm.load(_oaep_sha256()),
        "encrypted_key": wrapped,
    })
    enveloped = cms.EnvelopedData({
        "version": "v0",
        "recipient_infos": [cms.RecipientInfo({"ktri": recipient})],
        "encrypted_content_info": {
            "content_type": "data",
            "content_encryption_algorithm": {"algorithm": "aes256_cbc", "parameters": iv},
            "encrypted_content": ciphertext,
        },
    })
    return cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump()


@lru_cache(maxsize=1)
def _oaep_sha256() -> bytes:
    """RSAES-OAEP with SHA-256 and MGF1-SHA-256, encoded once: asn1crypto builds it slowly (~6 ms)."""
    return cms.KeyEncryptionAlgorithm({"algorithm": "rsaes_oaep", "parameters": algos.RSAESOAEPParams({
        "hash_algorithm": {"algorithm": "sha256", "parameters": None},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256", "parameters": None}},
    })}).dump()


def check_private_key(private_key_pem: bytes) -> None:
    """Raise CmsError at start-up if the configured key cannot open anything, not at the first letter."""
    _private_key(private_key_pem)


@lru_cache(maxsize=4)
def _private_key(private_key_pem: bytes) -> RSAPrivateKey:
    """Cached: loading checks the RSA key, which costs ~60 ms, once per key instead of once per letter."""
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CmsError(f"the private key cannot be read (PEM, unencrypted): {exc}", ours=True) from None
    if not isinstance(key, RSAPrivateKey):
        raise CmsError("the private key is not an RSA key", ours=True)
    return key


def _enveloped_data(envelope: bytes) -> cms.EnvelopedData:
    """Parse the outer structure; strict loading finds a cut-off envelope by its lengths (or missing EOC)."""
    if not envelope:
        raise CmsError("the envelope is empty")
    try:
        info = cms.ContentInfo.load(envelope, strict=True)
        content_type = info["content_type"].native
        if content_type != "enveloped_data":
            raise CmsError(f"not CMS EnvelopedData but {content_type!r}")
        enveloped = info["content"]
    except CmsError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise CmsError(f"the envelope is damaged or truncated ({exc})") from None
    return enveloped


def _unwrap_content_key(recipients: list, key: RSAPrivateKey) -> tuple[bytes, bool]:
    """Try each key-transport recipient with our key: without the certificate we cannot match on rid.
    The content key, and whether the unwrap proves the key is ours (OAEP)."""
    reasons = []
    for recipient in recipients:
        if recipient.name != "ktri":
            reasons.append(f"recipient type {recipient.name!r} is not supported")
            continue
        info = recipient.chosen
        scheme: rsa_padding.AsymmetricPadding
        try:
            algorithm = info["key_encryption_algorithm"]
            name = algorithm["algorithm"].native
            wrapped = info["encrypted_key"].native
            if name == "rsaes_oaep":
                scheme = _oaep_from_params(algorithm["parameters"])
            elif name == "rsaes_pkcs1v15":
                scheme = rsa_padding.PKCS1v15()
            else:
                reasons.append(f"key encryption {name!r} is not supported")
                continue
        except (ValueError, TypeError, KeyError) as exc:
            reasons.append(f"unreadable recipient info ({exc})")
            continue
        try:
            return key.decrypt(wrapped, scheme), isinstance(scheme, rsa_padding.OAEP)
        except ValueError:
            reasons.append(NOT_OUR_KEY)
    if not reasons:
        raise CmsError("the envelope has no recipients")
    # Ours when some recipient info was read and our key just did not open it.
    raise CmsError("cannot unwrap the content key: " + "; ".join(dict.fromkeys(reasons)),
                   ours=any(reason == NOT_OUR_KEY for reason in reasons))


def _oaep_from_params(params: algos.RSAESOAEPParams) -> rsa_padding.OAEP:
    """RSAES-OAEP-params with their DER defaults (SHA-1, MGF1-SHA-1, empty label) when absent."""
    digest = params["hash_algorithm"]["algorithm"].native
    mgf = params["mask_gen_algorithm"]
    if mgf["algorithm"].native != "mgf1":
        raise ValueError(f"mask generation {mgf['algorithm'].native!r} is not MGF1")
    mgf_digest = mgf["parameters"]["algorithm"].native
    label = params["p_source_algorithm"]["parameters"].native
    if label:
        raise ValueError("an OAEP label is not supported")
    if digest not in OAEP_HASHES or mgf_digest not in OAEP_HASHES:
        raise ValueError(f"OAEP with {digest}/MGF1-{mgf_digest} is not supported")
    return rsa_padding.OAEP(mgf=rsa_padding.MGF1(OAEP_HASHES[mgf_digest]()), algorithm=OAEP_HASHES[digest](),
                            label=None)


def _oaep(digest: Callable[[], hashes.HashAlgorithm]) -> rsa_padding.OAEP:
    return rsa_padding.OAEP(mgf=rsa_padding.MGF1(digest()), algorithm=digest(), label=None)


def _aes_cbc_decrypt(content_key: bytes, iv: bytes, ciphertext: bytes, ours: bool = True) -> bytes:
    if not ciphertext or len(ciphertext) % 16:
        raise CmsError("the encrypted content is not a whole number of AES blocks: truncated or damaged")
    decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise CmsError("the decrypted content has bad padding: wrong private key or damaged envelope",
                       ours=ours) from None
