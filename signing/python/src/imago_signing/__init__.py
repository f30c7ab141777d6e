"""Build and sign imago (imgproxy-compatible) image URLs.

See ``signing/SPEC.md`` (imago URL spec v1). Standard library only.
"""
from ._encoding import format_number, percent_encode
from .builder import ImageUrlBuilder
from .errors import ImagoApiError, ImagoError, ImagoOptionError, ImagoParseError, ImagoUploadError
from .options import (
    COMPASS_GRAVITY,
    CONCRETE_FORMATS,
    FORMATS,
    OPTION_TABLE,
    RESIZING_ALGORITHMS,
    RESIZING_TYPES,
    SKIP_FORMATS,
    serialize_option_segments,
    serialize_options,
)
from .parse import OPTION_ALIASES, ParsedPath, parse_option_segment, parse_path
from .encrypt import IV_KEY_LABEL, encrypt_source, encrypted_source_part
from .signer import ImagoSigner, build_path, split_url_path, with_expiry
from .source import encode_source, is_valid_source
from .srcset import LADDER, assemble_srcset, sizes, srcset_widths
from .upload import UploadCompletion, UploadTicket, complete_upload, request_upload, upload_file
from .upload import UploadTicket, delete_image, list_images, request_upload, restore_image, upload_file
from .webhook import (
    DEFAULT_WEBHOOK_TOLERANCE_SECS,
    WEBHOOK_SIGNATURE_HEADER,
    ImagoWebhookError,
    sign_webhook,
    verify_webhook,
)

__version__ = "0.1.0"
SPEC_VERSION = 1

__all__ = [
    "encrypt_source", "encrypted_source_part", "IV_KEY_LABEL",
    "ImagoSigner", "ImageUrlBuilder", "build_path", "split_url_path", "with_expiry",
    "serialize_options", "serialize_option_segments", "encode_source", "is_valid_source",
    "parse_path", "parse_option_segment", "ParsedPath", "OPTION_ALIASES", "OPTION_TABLE",
    "LADDER", "srcset_widths", "assemble_srcset", "sizes",
    "request_upload", "upload_file", "UploadTicket", "complete_upload", "UploadCompletion",
    "request_upload", "upload_file", "UploadTicket", "list_images", "delete_image", "restore_image",
    "verify_webhook", "sign_webhook", "ImagoWebhookError", "WEBHOOK_SIGNATURE_HEADER", "DEFAULT_WEBHOOK_TOLERANCE_SECS",
    "ImagoError", "ImagoOptionError", "ImagoParseError", "ImagoApiError", "ImagoUploadError",
    "format_number", "percent_encode", "COMPASS_GRAVITY", "CONCRETE_FORMATS", "FORMATS", "RESIZING_TYPES", "RESIZING_ALGORITHMS", "SKIP_FORMATS",
    "SPEC_VERSION", "__version__",
]
