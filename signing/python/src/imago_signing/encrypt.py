"""Encrypted source URLs (``/enc/…``, SPEC §3.4): imgproxy's AES-CBC scheme.

The SDK is standard library only, and the standard library has no AES: encryption uses the
``cryptography`` package, an *optional* dependency (``pip install imago-signing[encrypt]``)
imported only when an encrypted URL is built. Everything else keeps working without it.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Optional

from ._encoding import b64url_encode, hex_to_bytes
from .errors import ImagoOptionError

__all__ = ["IV_KEY_LABEL", "encrypt_source", "encrypted_source_part"]

#: K_iv = HMAC-SHA256(key, label); IV = HMAC-SHA256(K_iv, source)[:16] (SPEC §3.4).
IV_KEY_LABEL = b"imago source-url IV"


def encrypt_source(source: str, key_hex: str, iv: Optional[bytes] = None) -> bytes:
    """``IV ‖ AES-CBC(PKCS#7(source))``; the IV is derived from the source unless given."""
    try:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImagoOptionError(
            "source_encryption_key",
            "encrypted sources need the optional `cryptography` package: pip install imago-signing[encrypt]",
        ) from e
    key = hex_to_bytes(key_hex, "source_encryption_key")
    if len(key) not in (16, 24, 32):
        raise ImagoOptionError("source_encryption_key", "the source encryption key must be 16, 24 or 32 bytes (hex)")
    data = source.encode("utf-8")
    if iv is None:
        iv_key = hmac.new(key, IV_KEY_LABEL, hashlib.sha256).digest()
        iv = hmac.new(iv_key, data, hashlib.sha256).digest()[:16]
    elif len(iv) != 16:
        raise ImagoOptionError("iv", "the IV must be 16 bytes")
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv + enc.update(padded) + enc.finalize()


def encrypted_source_part(source: str, key_hex: str, *, extension: Optional[str] = None,
                          chunk_size: Optional[int] = None, iv: Optional[bytes] = None) -> str:
    """The source part ``enc/{base64url(IV ‖ ciphertext)}[.ext]`` (no leading '/')."""
    from .options import CONCRETE_FORMATS
    from .source import is_valid_source

    if not is_valid_source(source):
        raise ImagoOptionError("source", f"source must be local:///…, s3://bucket/key or http(s)://host/…, got {source!r}")
    if extension is not None and extension not in CONCRETE_FORMATS:
        raise ImagoOptionError("extension", f"extension must be one of {', '.join(CONCRETE_FORMATS)}")
    enc = b64url_encode(encrypt_source(source, key_hex, iv))
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ImagoOptionError("chunk_size", "chunk_size must be a positive integer")
        enc = "/".join(enc[i:i + chunk_size] for i in range(0, len(enc), chunk_size))
    return "enc/" + enc + (f".{extension}" if extension else "")
