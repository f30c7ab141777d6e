"""Source encoding (SPEC §3)."""
from __future__ import annotations

import re
from typing import Optional

from ._encoding import b64url_encode, percent_encode
from .errors import ImagoOptionError
from .options import CONCRETE_FORMATS

__all__ = ["SOURCE_RE", "is_valid_source", "encode_source"]

SOURCE_RE = re.compile(r"(?:local:///.+|s3://[^/]+/.+|https?://[^/?#]+.*)", re.S)


def is_valid_source(source: object) -> bool:
    return isinstance(source, str) and SOURCE_RE.fullmatch(source) is not None


def encode_source(source: str, *, encoding: str = "base64", extension: Optional[str] = None,
                  chunk_size: Optional[int] = None) -> str:
    """The source part of a path (without the leading '/')."""
    if not is_valid_source(source):
        raise ImagoOptionError("source", f"source must be local:///…, s3://bucket/key or http(s)://host/…, got {source!r}")
    if extension is not None and extension not in CONCRETE_FORMATS:
        raise ImagoOptionError("extension", f"extension must be one of {', '.join(CONCRETE_FORMATS)}")
    if encoding == "plain":
        if chunk_size is not None:
            raise ImagoOptionError("chunk_size", "chunk_size only applies to base64 sources")
        return f"plain/{percent_encode(source)}" + (f"@{extension}" if extension else "")
    if encoding == "encrypted":
        raise ImagoOptionError("encoding", "encrypted sources are built by ImagoSigner with source_encryption_key")
    if encoding != "base64":
        raise ImagoOptionError("encoding", 'encoding must be "plain", "base64" or "encrypted"')
    enc = b64url_encode(source.encode("utf-8"))
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ImagoOptionError("chunk_size", "chunk_size must be a positive integer")
        enc = "/".join(enc[i:i + chunk_size] for i in range(0, len(enc), chunk_size))
    return enc + (f".{extension}" if extension else "")
