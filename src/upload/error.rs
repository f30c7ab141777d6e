//! Why an upload request was refused: [`UploadError`], each with a stable code (SPEC §10), its
//! status and its public message.

use actix_web::http::StatusCode;

use crate::storage::StorageError;

/// Why an upload request was refused. Each has a stable code (SPEC §10).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("the upload is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("unsupported content type `{0}` (allowed: {1})")]
    UnsupportedContentType(String, String),
    #[error("Content-Type must be `{0}`, as in the ticket")]
    ContentTypeMismatch(String),
    #[error("the body is not a {0} image")]
    NotAnImage(String),
    #[error("too many upload tickets for this API key: retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// A day quota (`IMAGO_QUOTA_BYTES_PER_DAY`, `IMAGO_QUOTA_UPLOADS_PER_DAY`) is used up.
    #[error("the daily upload {what} quota is used up: it resets in {retry_after} s (UTC midnight)")]
    QuotaExceeded { what: &'static str, retry_after: u64 },
    /// The shared quota store failed and `IMAGO_QUOTA_ON_STORE_ERROR=closed`.
    #[error("the quota store is unavailable: retry in 1 s")]
    QuotaUnavailable,
    #[error("this upload ticket expired")]
    Expired,
    #[error("invalid upload signature")]
    InvalidSignature,
    #[error("a different object already exists at this key")]
    Exists,
    #[error("the body does not match the ticket's sha256")]
    ChecksumMismatch,
    #[error("the body has {got} bytes, the ticket says {expected}")]
    LengthMismatch { expected: u64, got: u64 },
    #[error("the upload body ended early")]
    Incomplete,
    #[error("the upload body did not arrive within {0} s")]
    Timeout(u64),
    #[error("no image at this key")]
    NotFound,
    /// The key's path leads out of the local store (a symlinked directory).
    #[error("the key's directory is outside the store")]
    Escapes,
    /// Not an upload key: outside `IMAGO_UPLOAD_PREFIXES` or not an image file name.
    #[error("not an upload key: {0}")]
    KeyNotAllowed(String),
    /// The API key lacks the scope the request needs (`IMAGO_API_KEYS`).
    #[error("this API key does not have the `{0}` scope")]
    ScopeMissing(&'static str),
    /// The key (or listing) is another tenant's: refused before any storage lookup, so the
    /// answer says nothing about whether it exists.
    #[error("the key belongs to another tenant")]
    OtherTenant,
    /// `IMAGO_UPLOAD_MAX_BODIES` request bodies are being received already.
    #[error("too many request bodies are being received: retry in 1 s")]
    Busy,
    /// The upload has not been checked yet (`IMAGO_UPLOAD_REQUIRE_COMPLETE`): complete it first.
    #[error("this upload is pending: complete it (POST /v1/uploads/{{id}}/complete) before reading it")]
    Pending,
    /// The upload was checked and refused (and removed); the reason is its first answer's.
    #[error("this upload was rejected: {0}")]
    Rejected(String),
    /// The upload stayed pending past `IMAGO_UPLOAD_PENDING_TTL_SECS`: it is (being) removed.
    #[error("this upload was not completed within {0} s and expired")]
    PendingExpired(u64),
    /// The image's header says more pixels than `IMAGO_MAX_SRC_MEGAPIXELS` (upload checks).
    #[error("this image was deleted: {0}")]
    Deleted(String),
    #[error("the image is too large: {0}")]
    ImageTooLarge(String),
    /// More frames than `IMAGO_MAX_ANIMATION_FRAMES` (upload checks).
    #[error("the image has too many frames: {0}")]
    TooManyFrames(String),
    #[error("storage failed: {0}")]
    Storage(String),
}

impl UploadError {
    pub fn status(&self) -> StatusCode {
        match self {
            UploadError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            UploadError::InvalidRequest(_) | UploadError::LengthMismatch { .. } | UploadError::Incomplete => {
                StatusCode::BAD_REQUEST
            }
            UploadError::Forbidden(_)
            | UploadError::Expired
            | UploadError::InvalidSignature
            | UploadError::Escapes
            | UploadError::KeyNotAllowed(_)
            | UploadError::ScopeMissing(_)
            | UploadError::OtherTenant => StatusCode::FORBIDDEN,
            UploadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UploadError::Deleted(_) => StatusCode::GONE,
            UploadError::UnsupportedContentType(..) | UploadError::ContentTypeMismatch(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            UploadError::NotAnImage(_)
            | UploadError::ChecksumMismatch
            | UploadError::ImageTooLarge(_)
            | UploadError::TooManyFrames(_) => StatusCode::UNPROCESSABLE_ENTITY,
            UploadError::Pending | UploadError::Rejected(_) | UploadError::PendingExpired(_) => StatusCode::CONFLICT,
            UploadError::RateLimited { .. } | UploadError::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            UploadError::Exists => StatusCode::CONFLICT,
            UploadError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            UploadError::NotFound => StatusCode::NOT_FOUND,
            UploadError::Storage(_) | UploadError::Busy | UploadError::QuotaUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            UploadError::Unauthorized(_) => "unauthorized",
            UploadError::InvalidRequest(_) => "invalid-request",
            UploadError::Forbidden(_) => "forbidden",
            UploadError::TooLarge { .. } => "too-large",
            UploadError::UnsupportedContentType(..) => "unsupported-content-type",
            UploadError::ContentTypeMismatch(_) => "content-type-mismatch",
            UploadError::NotAnImage(_) => "not-an-image",
            UploadError::RateLimited { .. } => "rate-limited",
            UploadError::QuotaExceeded { .. } => "quota-exceeded",
            UploadError::QuotaUnavailable => "quota-unavailable",
            UploadError::Expired => "upload-expired",
            UploadError::InvalidSignature => "invalid-signature",
            UploadError::Exists => "exists",
            UploadError::ChecksumMismatch => "checksum-mismatch",
            UploadError::LengthMismatch { .. } => "length-mismatch",
            UploadError::Incomplete => "incomplete-body",
            UploadError::Timeout(_) => "upload-timeout",
            UploadError::NotFound => "not-found",
            UploadError::Escapes => "path-escapes",
            UploadError::KeyNotAllowed(_) => "key-not-allowed",
            UploadError::ScopeMissing(_) => "scope-missing",
            UploadError::OtherTenant => "other-tenant",
            UploadError::Busy => "upload-busy",
            UploadError::Pending => "upload-pending",
            UploadError::Rejected(_) => "upload-rejected",
            UploadError::PendingExpired(_) => "upload-pending-expired",
            UploadError::Deleted(_) => "image-deleted",
            UploadError::ImageTooLarge(_) => "image-too-large",
            UploadError::TooManyFrames(_) => "too-many-frames",
            UploadError::Storage(_) => "storage-unavailable",
        }
    }

    pub fn public_message(&self) -> String {
        match self {
            UploadError::Storage(_) => "storage is unavailable".into(),
            other => other.to_string(),
        }
    }

    pub fn retry_after(&self) -> Option<u64> {
        match self {
            UploadError::RateLimited { retry_after } | UploadError::QuotaExceeded { retry_after, .. } => {
                Some(*retry_after)
            }
            UploadError::Storage(_) | UploadError::Busy | UploadError::QuotaUnavailable => Some(1),
            _ => None,
        }
    }
}

impl From<crate::quota::QuotaError> for UploadError {
    fn from(e: crate::quota::QuotaError) -> UploadError {
        use crate::quota::QuotaError;
        match e {
            QuotaError::RateLimited(s) => UploadError::RateLimited { retry_after: s.reset.max(1) },
            QuotaError::Exceeded { what, retry_after } => UploadError::QuotaExceeded { what, retry_after },
            QuotaError::Unavailable => UploadError::QuotaUnavailable,
        }
    }
}

/// Storage errors as upload errors, with the codes and wording uploads have always had.
impl From<StorageError> for UploadError {
    fn from(e: StorageError) -> UploadError {
        match e {
            StorageError::BadKey(_) => UploadError::InvalidRequest(crate::source::SourceError::from(e).to_string()),
            StorageError::Reserved => UploadError::InvalidRequest("this key is reserved".into()),
            StorageError::Escapes => UploadError::Escapes,
            StorageError::NotFound => UploadError::NotFound,
            StorageError::Exists => UploadError::Exists,
            StorageError::Invalid(m) => UploadError::InvalidRequest(m),
            StorageError::Io { source, .. } => UploadError::Storage(source.to_string()),
            StorageError::Status { status, .. } if !status.is_server_error() => {
                UploadError::Storage(format!("object store refused: {e}"))
            }
            other => UploadError::Storage(format!("object store: {other}")),
        }
    }
}
