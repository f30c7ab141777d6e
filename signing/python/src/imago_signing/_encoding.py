"""Low-level encodings shared by the builder and the parser."""
from __future__ import annotations

import base64
import math
import re
from decimal import Decimal
from typing import Optional, Union
from urllib.parse import quote, unquote_to_bytes

from .errors import ImagoOptionError

Number = Union[int, float]


def is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def format_number(n: Number) -> str:
    """Canonical number formatting (SPEC §5.4): shortest round-trip decimal,
    never exponent notation, no trailing ``.0``, ``-0`` → ``0``."""
    if not is_number(n):
        raise TypeError(f"not a number: {n!r}")
    if isinstance(n, int):
        return str(n)
    if not math.isfinite(n):
        raise ValueError(f"not a finite number: {n!r}")
    if n == 0:
        return "0"
    out = format(Decimal(repr(n)), "f")
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    return out


def format_bool(b: bool) -> str:
    return "t" if b else "f"


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64_RE = re.compile(r"[A-Za-z0-9_-]*")


def b64url_decode(s: str) -> Optional[bytes]:
    """Strict base64url decoding; trailing '=' tolerated. None when malformed."""
    s = s.rstrip("=")
    if not _B64_RE.fullmatch(s) or len(s) % 4 == 1:
        return None
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hex_to_bytes(h: object, what: str) -> bytes:
    if not isinstance(h, str) or not h or len(h) % 2 or not re.fullmatch(r"[0-9a-fA-F]+", h):
        raise ImagoOptionError(what, f"{what} must be a non-empty, even-length hex string")
    return bytes.fromhex(h)


def percent_encode(s: str) -> str:
    """Canonical plain-source percent-encoding (SPEC §3.1)."""
    return quote(s, safe=":/~", encoding="utf-8", errors="strict")


_BAD_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")


def percent_decode(s: str) -> Optional[str]:
    if _BAD_ESCAPE.search(s):
        return None
    try:
        return unquote_to_bytes(s).decode("utf-8")
    except UnicodeDecodeError:
        return None


def utf8_decode(b: bytes) -> Optional[str]:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None
