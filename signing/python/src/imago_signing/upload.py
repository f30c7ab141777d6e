"""Upload-ticket client (SPEC §10), standard library only."""
from __future__ import annotations

import json
import os
import re
import time
import uuid
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Union

from .errors import ImagoApiError, ImagoOptionError, ImagoUploadError

__all__ = ["UploadTicket", "UploadCompletion", "request_upload", "upload_file", "complete_upload", "list_images", "delete_image", "restore_image"]


@dataclass(frozen=True)
class UploadTicket:
    id: str
    key: str
    method: str
    url: str
    source: str
    image_url: str
    exists: bool
    fields: Dict[str, str] = field(default_factory=dict)
    headers: Dict[str, str] = field(default_factory=dict)
    expires_at: str = ""
    max_bytes: int = 0
    info_url: str = ""
    #: ``POST`` here once the bytes are sent (SPEC §10 Completion); empty from servers before it.
    complete_url: str = ""
    #: The full JSON answer (including fields unknown to this SDK version).
    raw: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, o: Any, status: int = 502) -> "UploadTicket":
        ok = (
            isinstance(o, dict)
            and all(isinstance(o.get(k), str) for k in ("id", "key", "url", "source", "image_url"))
            and o.get("method") in ("PUT", "POST")
            and isinstance(o.get("exists"), bool)
        )
        if not ok:
            raise ImagoApiError(status, "invalid-response", "upload ticket response is missing required fields")
        return cls(
            id=o["id"], key=o["key"], method=o["method"], url=o["url"], source=o["source"],
            image_url=o["image_url"], exists=o["exists"], fields=dict(o.get("fields") or {}),
            headers=dict(o.get("headers") or {}), expires_at=o.get("expires_at") or "",
            max_bytes=int(o.get("max_bytes") or 0), info_url=o.get("info_url") or "",
            complete_url=o.get("complete_url") or "", raw=dict(o),
        )


@dataclass(frozen=True)
class UploadCompletion:
    """The facts imago checked about a completed upload (SPEC §10 Completion)."""

    id: str
    key: str
    state: str
    bytes: int
    format: str
    #: Upright dimensions (0 for SVG).
    width: int
    height: int
    frames: int
    image_url: str
    etag: str = ""
    checked_at: str = ""
    info_url: str = ""

    @classmethod
    def from_json(cls, o: Any, status: int = 502) -> "UploadCompletion":
        if not (isinstance(o, dict) and o.get("state") == "ready" and isinstance(o.get("key"), str)):
            raise ImagoApiError(status, "invalid-response", "completion response is missing required fields")
        return cls(
            id=str(o.get("id") or ""), key=o["key"], state=o["state"], bytes=int(o.get("bytes") or 0),
            format=str(o.get("format") or ""), width=int(o.get("width") or 0), height=int(o.get("height") or 0),
            frames=int(o.get("frames") or 0), image_url=str(o.get("image_url") or ""), etag=str(o.get("etag") or ""),
            checked_at=str(o.get("checked_at") or ""), info_url=str(o.get("info_url") or ""),
        )


def complete_upload(
    ticket: UploadTicket, *, api_key: Optional[str] = None, base_url: Optional[str] = None, timeout: float = 30.0
) -> UploadCompletion:
    """``POST {ticket.complete_url}``: imago checks the uploaded bytes (idempotent, safe to retry).

    Raises :class:`ImagoApiError` with the check's code for a rejected upload (``not-an-image``, …
    then ``upload-rejected``). ``api_key`` is optional (the ticket's id is the permission);
    ``base_url`` is needed only for tickets without ``complete_url``.
    """
    url = ticket.complete_url
    if not url:
        if not isinstance(base_url, str) or not re.match(r"https?://", base_url):
            raise ImagoOptionError("base_url", "the ticket has no complete_url: pass base_url")
        url = base_url.rstrip("/") + "/v1/uploads/" + urllib.parse.quote(ticket.id, safe="") + "/complete"
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(url, data=b"", method="POST", headers=headers)
    status, j = _call_json(req, timeout, "completion response is not JSON")
    return UploadCompletion.from_json(j, status)


def _validate(body: Mapping[str, Any]) -> None:
    if not isinstance(body, Mapping):
        raise ImagoOptionError("body", "upload request must be a mapping")
    ct = body.get("content_type")
    if not isinstance(ct, str) or not re.fullmatch(r"[\w.+-]+/[\w.+-]+", ct, re.ASCII):
        raise ImagoOptionError("content_type", "content_type must be a MIME type like image/jpeg")
    cl = body.get("content_length")
    if cl is not None and (isinstance(cl, bool) or not isinstance(cl, int) or cl < 0):
        raise ImagoOptionError("content_length", "content_length must be a non-negative integer")
    sha = body.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise ImagoOptionError("sha256", "sha256 must be 64 lower-case hex digits")
    for k in ("filename", "prefix"):
        if body.get(k) is not None and not isinstance(body.get(k), str):
            raise ImagoOptionError(k, f"{k} must be a string")
    if body.get("method") is not None and body.get("method") not in ("PUT", "POST"):
        raise ImagoOptionError("method", "method must be PUT or POST")


def _api_error(status: int, raw: bytes, reason: str) -> ImagoApiError:
    text = raw.decode("utf-8", "replace")
    try:
        j = json.loads(text)
    except ValueError:
        j = None
    code = j.get("code") if isinstance(j, dict) and isinstance(j.get("code"), str) else f"http-{status}"
    msg = j.get("message") if isinstance(j, dict) and isinstance(j.get("message"), str) else (text or reason or f"HTTP {status}")
    return ImagoApiError(status, code, msg)


def request_upload(base_url: str, api_key: str, body: Mapping[str, Any], *, timeout: float = 30.0) -> UploadTicket:
    """``POST {base_url}/v1/uploads`` → :class:`UploadTicket`; raises :class:`ImagoApiError` on non-2xx."""
    if not isinstance(base_url, str) or not re.match(r"https?://", base_url):
        raise ImagoOptionError("base_url", "base_url must be an http(s) URL")
    if not isinstance(api_key, str) or not api_key:
        raise ImagoOptionError("api_key", "api_key is required")
    _validate(body)
    data = json.dumps({k: v for k, v in body.items() if v is not None}).encode("utf-8")
    req = urllib.request.Request(
        base_url.rstrip("/") + "/v1/uploads", data=data, method="POST",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", "Accept": "application/json"},
    )
    status, j = _call_json(req, timeout, "upload ticket response is not JSON")
    return UploadTicket.from_json(j, status)


def _multipart(fields: Mapping[str, str], data: bytes, filename: str, content_type: str) -> tuple:
    boundary = "----imago" + uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode("utf-8"))
    safe = filename.replace('"', "%22").replace("\r", "").replace("\n", "")
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode("utf-8") + data + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def upload_file(ticket: UploadTicket, data: Union[bytes, bytearray, str, "os.PathLike[str]"], *,
                filename: Optional[str] = None, content_type: str = "application/octet-stream",
                retries: int = 2, retry_delay: float = 0.5, timeout: float = 60.0,
                sleep: Callable[[float], None] = time.sleep) -> UploadTicket:
    """Upload ``data`` (bytes or a file path) with a ticket. Retries network errors and 5xx
    (``retry_delay`` doubled each time), never 4xx. Returns the ticket."""
    if ticket.exists:
        return ticket
    if isinstance(data, (bytes, bytearray)):
        payload = bytes(data)
    else:
        with open(os.fspath(data), "rb") as fh:
            payload = fh.read()
        filename = filename or os.path.basename(os.fspath(data))
    if ticket.max_bytes and len(payload) > ticket.max_bytes:
        raise ImagoUploadError(f"file is {len(payload)} bytes, ticket allows {ticket.max_bytes}", 413, 0)
    if ticket.method == "PUT":
        body, headers = payload, dict(ticket.headers)
    else:
        ct = ticket.headers.get("Content-Type") or content_type
        body, mct = _multipart(ticket.fields, payload, filename or "upload", ct)
        headers = {"Content-Type": mct}
    attempt = 0
    while True:
        attempt += 1
        req = urllib.request.Request(ticket.url, data=body, method=ticket.method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:  # noqa: S310 - ticket URL from the server
                res.read()
            return ticket
        except urllib.error.HTTPError as e:
            err = ImagoUploadError(f"upload failed with HTTP {e.code}", e.code, attempt)
            retryable = e.code >= 500
        except (urllib.error.URLError, OSError) as e:
            err = ImagoUploadError(f"network error during upload: {e}", 0, attempt)
            retryable = True
        if not retryable or attempt > retries:
            raise err
        sleep(retry_delay * 2 ** (attempt - 1))


def _check(base_url: str, api_key: str) -> str:
    if not isinstance(base_url, str) or not re.match(r"https?://", base_url):
        raise ImagoOptionError("base_url", "base_url must be an http(s) URL")
    if not isinstance(api_key, str) or not api_key:
        raise ImagoOptionError("api_key", "api_key is required")
    return base_url.rstrip("/")


def _call(req: urllib.request.Request, timeout: float) -> tuple:
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:  # noqa: S310 - caller-provided API URL
            return res.status, res.read()
    except urllib.error.HTTPError as e:
        raise _api_error(e.code, e.read() or b"", e.reason if isinstance(e.reason, str) else "") from None


def _call_json(req: urllib.request.Request, timeout: float, not_json: str) -> tuple:
    """``(status, parsed JSON)`` of a 2xx answer; ``ImagoApiError`` otherwise or when it is not JSON."""
    status, raw = _call(req, timeout)
    try:
        return status, json.loads(raw.decode("utf-8"))
    except ValueError:
        raise ImagoApiError(status, "invalid-response", not_json) from None


def list_images(base_url: str, api_key: str, *, prefix: Optional[str] = None, cursor: Optional[str] = None,
                limit: Optional[int] = None, tenant: Optional[str] = None, order: Optional[str] = None,
                timeout: float = 30.0) -> Dict[str, Any]:
    """``GET {base_url}/v1/images`` (SPEC §10, listing): one page of the key's tenant's images,
    ``{"items": [{key, tenant, bytes, last_modified, image_url, info_url, state}], "next_cursor": str | None}``.
    ``order``: ``"newest"`` (the server's default: completed uploads, newest first) or ``"key"``
    (every object in key order, pending and rejected uploads too).
    Pass ``next_cursor`` back as ``cursor``; ``None`` ends the listing."""
    base = _check(base_url, api_key)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ImagoOptionError("limit", "limit must be a positive integer")
    if order is not None and order not in ("newest", "key"):
        raise ImagoOptionError("order", 'order must be "newest" or "key"')
    q = {k: v for k, v in (("prefix", prefix), ("cursor", cursor), ("limit", limit), ("tenant", tenant), ("order", order))
         if v is not None}
    url = base + "/v1/images" + ("?" + urllib.parse.urlencode(q) if q else "")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"})
    status, j = _call_json(req, timeout, "listing response is not JSON")
    if not isinstance(j, dict) or not isinstance(j.get("items"), list):
        raise ImagoApiError(status, "invalid-response", "listing response has no items")
    nc = j.get("next_cursor")
    return {"items": j["items"], "next_cursor": nc if isinstance(nc, str) else None}


def delete_image(base_url: str, api_key: str, key: str, *, timeout: float = 30.0) -> None:
    """``DELETE {base_url}/v1/images/{key}``: removes the original (imago then drops its variants,
    purges the edges and emits ``image.deleted``). Raises :class:`ImagoApiError` unless 204."""
    base = _check(base_url, api_key)
    if not isinstance(key, str) or not key or key.startswith("/"):
        raise ImagoOptionError("key", "key must be a non-empty relative key")
    url = base + "/v1/images/" + urllib.parse.quote(key, safe="/")
    req = urllib.request.Request(url, method="DELETE", headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"})
    _call(req, timeout)


def restore_image(base_url: str, api_key: str, key: str, *, timeout: float = 30.0) -> None:
    """``POST {base_url}/v1/images/{key}/restore``: brings back an image deleted less than
    ``IMAGO_DELETE_GRACE_SECS`` ago (``DELETE`` is a soft delete). Raises :class:`ImagoApiError`
    unless 200 (``image-deleted`` 410 after the grace period, ``not-found`` without a deletion)."""
    base = _check(base_url, api_key)
    if not isinstance(key, str) or not key or key.startswith("/"):
        raise ImagoOptionError("key", "key must be a non-empty relative key")
    url = base + "/v1/images/" + urllib.parse.quote(key, safe="/") + "/restore"
    req = urllib.request.Request(url, data=b"", method="POST",
                                 headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"})
    _call(req, timeout)
