"""Signing (SPEC §6), path building and the ImagoSigner facade."""
from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._encoding import b64url_encode, hex_to_bytes, is_number
from .errors import ImagoOptionError
from .options import serialize_option_segments
from .source import encode_source
from .srcset import assemble_srcset, srcset_widths

if TYPE_CHECKING:  # pragma: no cover
    from .builder import ImageUrlBuilder

__all__ = ["ImagoSigner", "build_path", "with_expiry", "split_url_path", "KeyPair"]

KeyPair = Union[Tuple[str, str], Mapping[str, str]]
Expires = Union[int, float, datetime]


def with_expiry(options: Optional[Mapping[str, Any]], expires: Optional[Expires] = None,
                expires_in: Optional[float] = None, now: Optional[float] = None) -> Optional[Dict[str, Any]]:
    """Merge ``expires`` (unix seconds or datetime) / ``expires_in`` (seconds) into the options."""
    if expires is not None and expires_in is not None:
        raise ImagoOptionError("expires", "give expires or expires_in, not both")
    exp: Optional[Any] = None
    if isinstance(expires, datetime):
        exp = math.floor(expires.timestamp())
    elif expires is not None:
        exp = expires
    elif expires_in is not None:
        if not is_number(expires_in) or not (0 < expires_in < float("inf")):
            raise ImagoOptionError("expires", "expires_in must be a positive number of seconds")
        exp = math.floor((time.time() if now is None else now) + expires_in)
    if exp is None:
        return None if options is None else dict(options)
    out = dict(options or {})
    out["expires"] = exp
    return out


def build_path(source: str, options: Optional[Mapping[str, Any]] = None, *, encoding: str = "base64",
               extension: Optional[str] = None, chunk_size: Optional[int] = None,
               expires: Optional[Expires] = None, expires_in: Optional[float] = None) -> str:
    """Unsigned path: ``/`` + canonical options + ``/`` + source part."""
    segs = serialize_option_segments(with_expiry(options, expires, expires_in))
    segs.append(encode_source(source, encoding=encoding, extension=extension, chunk_size=chunk_size))
    return "/" + "/".join(segs)


def split_url_path(url_path: str) -> Optional[Tuple[str, str]]:
    """Split ``/{signature}/{path}`` into ``(signature, path)``."""
    m = re.fullmatch(r"/([^/]*)(/.*)", url_path, re.S) if isinstance(url_path, str) else None
    return (m.group(1), m.group(2)) if m else None


def _pair(p: KeyPair, i: int) -> Tuple[bytes, bytes]:
    if isinstance(p, Mapping):
        k, s = p.get("key"), p.get("salt")
    else:
        try:
            k, s = p
        except (TypeError, ValueError):
            raise ImagoOptionError("pairs", f"pairs[{i}] must be (key, salt) or {{key, salt}}") from None
    return hex_to_bytes(k, f"pairs[{i}].key"), hex_to_bytes(s, f"pairs[{i}].salt")


class ImagoSigner:
    """Signs imago URLs.

    >>> signer = ImagoSigner("736563726574", "68656c6c6f", base_url="https://img.example.com")
    >>> signer.url("local:///cat.jpg", {"width": 300}, encoding="plain")  # doctest: +ELLIPSIS
    'https://img.example.com/.../w:300/plain/local:///cat.jpg'
    """

    def __init__(self, key: Optional[str] = None, salt: Optional[str] = None, *,
                 pairs: Optional[Sequence[KeyPair]] = None, signature_size: int = 32,
                 base_url: str = "", insecure: bool = False,
                 source_encryption_key: Optional[str] = None) -> None:
        if pairs is not None:
            if key is not None or salt is not None:
                raise ImagoOptionError("pairs", "give either key/salt or pairs, not both")
            if not isinstance(pairs, (list, tuple)) or not pairs:
                raise ImagoOptionError("pairs", "pairs must be a non-empty sequence")
            raw: List[KeyPair] = list(pairs)
        elif key is not None or salt is not None:
            raw = [(key, salt)]  # type: ignore[list-item]
        else:
            raw = []
        if not raw and not insecure:
            raise ImagoOptionError("key", "a key and salt (or pairs, or insecure=True) are required")
        if raw and insecure:
            raise ImagoOptionError("insecure", "insecure cannot be combined with keys")
        if isinstance(signature_size, bool) or not isinstance(signature_size, int) or not 1 <= signature_size <= 32:
            raise ImagoOptionError("signature_size", "signature_size must be an integer 1–32")
        self.pairs: List[Tuple[bytes, bytes]] = [_pair(p, i) for i, p in enumerate(raw)]
        self.signature_size = signature_size
        self.base_url = (base_url or "").rstrip("/")
        self.insecure = insecure
        #: hex key of the server's IMAGO_SOURCE_URL_ENCRYPTION_KEY: ``encoding="encrypted"`` builds
        #: ``/enc/…`` sources (SPEC §3.4; needs the optional ``cryptography`` package).
        self.source_encryption_key = source_encryption_key

    def _sign_with(self, index: int, path: str) -> str:
        key, salt = self.pairs[index]
        mac = hmac.new(key, salt + path.encode("utf-8"), hashlib.sha256).digest()
        return b64url_encode(mac[: self.signature_size])

    def sign(self, path: str) -> str:
        """Signature for ``path`` (everything after the signature segment, leading '/')."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise ImagoOptionError("path", "path must start with '/'")
        if self.insecure:
            return "insecure"
        return self._sign_with(0, path)

    def sign_path(self, path: str) -> str:
        """``/{signature}{path}``"""
        return f"/{self.sign(path)}{path}"

    def path(self, source: str, options: Optional[Mapping[str, Any]] = None, **path_opts: Any) -> str:
        """Signed path. ``path_opts``: encoding, extension, chunk_size, expires, expires_in."""
        if path_opts.get("encoding") == "encrypted":
            from .encrypt import encrypted_source_part

            if self.source_encryption_key is None:
                raise ImagoOptionError("source_encryption_key", 'encoding "encrypted" needs source_encryption_key')
            opts = dict(path_opts)
            opts.pop("encoding")
            ext, chunk = opts.pop("extension", None), opts.pop("chunk_size", None)
            segs = serialize_option_segments(with_expiry(options, opts.pop("expires", None), opts.pop("expires_in", None)))
            if opts:
                raise ImagoOptionError(next(iter(opts)), f"unknown path option {next(iter(opts))!r}")
            segs.append(encrypted_source_part(source, self.source_encryption_key, extension=ext, chunk_size=chunk))
            return self.sign_path("/" + "/".join(segs))
        return self.sign_path(build_path(source, options, **path_opts))

    def url(self, source: str, options: Optional[Mapping[str, Any]] = None, **path_opts: Any) -> str:
        """Full signed URL (``base_url`` + signed path)."""
        return self.base_url + self.path(source, options, **path_opts)

    def image(self, source: str, **path_opts: Any) -> "ImageUrlBuilder":
        """Fluent, immutable builder bound to this signer."""
        from .builder import ImageUrlBuilder

        return ImageUrlBuilder(self, source, {}, path_opts)

    def srcset_entries(self, source: str, options: Optional[Mapping[str, Any]] = None, *,
                       max_width: Optional[float] = None, widths: Optional[Sequence[int]] = None,
                       expires: Optional[Expires] = None, expires_in: Optional[float] = None,
                       **path_opts: Any) -> List[Tuple[int, str]]:
        """``[(width, url), …]`` on the width ladder, each with ``w:{W}`` and ``dpr:1`` (SPEC §9)."""
        ws = srcset_widths(max_width, widths)
        base = with_expiry(options, expires, expires_in) or {}
        # ``dpr: 1``: a ``w`` descriptor is already in device pixels, so no DPR hint may multiply it.
        return [(w, self.url(source, {**base, "width": w, "dpr": 1}, **path_opts)) for w in ws]

    def srcset(self, source: str, options: Optional[Mapping[str, Any]] = None, **kw: Any) -> str:
        """``srcset`` attribute value: ``"{url} 16w, {url} 32w, …"``."""
        return assemble_srcset(self.srcset_entries(source, options, **kw))

    def verify(self, url_path: str, *, allow_insecure: bool = False) -> bool:
        """True when ``url_path`` (``/{signature}/…``) is signed by any configured pair."""
        parts = split_url_path(url_path)
        if parts is None:
            return False
        sig, path = parts
        if sig == "insecure":
            return allow_insecure or self.insecure
        ok = False
        for i in range(len(self.pairs)):
            if hmac.compare_digest(sig.encode("utf-8"), self._sign_with(i, path).encode("ascii")):
                ok = True
        return ok
