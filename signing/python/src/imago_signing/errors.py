"""Exception hierarchy (SPEC §8, §11)."""
from __future__ import annotations

from typing import Optional

__all__ = [
    "ImagoError",
    "ImagoOptionError",
    "ImagoParseError",
    "ImagoApiError",
    "ImagoUploadError",
    "URL_ERROR_STATUS",
]

URL_ERROR_STATUS = {
    "invalid-option": 400,
    "unknown-option": 400,
    "invalid-source": 400,
    "invalid-signature": 403,
    "url-expired": 410,
}


class ImagoError(Exception):
    """Base class of every error raised by imago_signing."""


class ImagoOptionError(ImagoError, ValueError):
    """A builder input failed validation. ``option`` is the JSON key (e.g. ``"width"``);
    the message names the exact sub-path (e.g. ``resize.width``)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


class ImagoParseError(ImagoError, ValueError):
    """Raised by :func:`parse_path`; mirrors the server's error answer."""

    def __init__(self, code: str, message: str, option: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = URL_ERROR_STATUS[code]
        self.option = option


class ImagoApiError(ImagoError):
    """A JSON ``{code, message}`` error answered by the imago HTTP API."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ImagoUploadError(ImagoError):
    """Uploading the file itself failed (network error or non-2xx from storage)."""

    def __init__(self, message: str, status: int, attempts: int) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
