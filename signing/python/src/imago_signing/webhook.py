"""Webhook signatures (SPEC §13): ``Imago-Signature: t={unix seconds},v1={hex},…`` where each
``v1`` is ``hex(HMAC-SHA256(secret, "{t}.{raw body}"))`` for one of imago's secrets."""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Optional, Sequence, Union

from .errors import ImagoError

__all__ = ["WEBHOOK_SIGNATURE_HEADER", "DEFAULT_WEBHOOK_TOLERANCE_SECS", "ImagoWebhookError", "sign_webhook", "verify_webhook"]

WEBHOOK_SIGNATURE_HEADER = "Imago-Signature"
DEFAULT_WEBHOOK_TOLERANCE_SECS = 300


class ImagoWebhookError(ImagoError):
    """A webhook request to refuse. ``code``: ``malformed-header``, ``signature-mismatch``,
    ``timestamp-outside-tolerance`` or ``no-secret``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _bytes(body: Union[str, bytes, bytearray]) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _secrets(secrets: Union[str, Sequence[str]]) -> Sequence[str]:
    return [secrets] if isinstance(secrets, str) else list(secrets)


def _mac(secret: str, t: int, body: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), f"{t}.".encode("ascii") + body, hashlib.sha256).digest()


def sign_webhook(secrets: Union[str, Sequence[str]], timestamp: int, body: Union[str, bytes, bytearray]) -> str:
    """The ``Imago-Signature`` value imago sends for ``body`` at ``timestamp`` (one ``v1`` per secret)."""
    data = _bytes(body)
    return f"t={timestamp}" + "".join(f",v1={_mac(s, timestamp, data).hex()}" for s in _secrets(secrets))


def verify_webhook(header: Optional[str], body: Union[str, bytes, bytearray], secrets: Union[str, Sequence[str]], *,
                   tolerance: int = DEFAULT_WEBHOOK_TOLERANCE_SECS, now: Optional[int] = None) -> int:
    """Check a delivery: ``header`` is the ``Imago-Signature`` value, ``body`` the raw request body
    as received. One ``v1`` must match one of ``secrets`` (several during a rotation) and ``t``
    must be within ``tolerance`` seconds of ``now``. Returns ``t``; raises
    :class:`ImagoWebhookError`. Deduplicate on the event ``id``: delivery is at least once."""
    keys = _secrets(secrets)
    if not keys:
        raise ImagoWebhookError("no-secret", "no webhook secret configured")
    t: Optional[int] = None
    sigs = []
    for raw in (header or "").split(","):
        part = raw.strip()
        if "=" not in part:
            raise ImagoWebhookError("malformed-header", "malformed Imago-Signature header")
        k, v = part.split("=", 1)
        if k == "t":
            if t is not None or not re.fullmatch(r"[0-9]{1,15}", v, re.ASCII):
                raise ImagoWebhookError("malformed-header", "malformed Imago-Signature header")
            t = int(v)
        elif k == "v1" and re.fullmatch(r"[0-9a-f]{64}", v, re.ASCII):
            sigs.append(bytes.fromhex(v))
    if t is None or not sigs:
        raise ImagoWebhookError("malformed-header", "malformed Imago-Signature header")
    data = _bytes(body)
    ok = False
    for s in keys:
        want = _mac(s, t, data)
        for got in sigs:
            ok = hmac.compare_digest(want, got) or ok
    if not ok:
        raise ImagoWebhookError("signature-mismatch", "no signature matches")
    if abs((int(time.time()) if now is None else now) - t) > tolerance:
        raise ImagoWebhookError("timestamp-outside-tolerance", "timestamp outside the tolerance")
    return t
