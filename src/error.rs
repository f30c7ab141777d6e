//! The one top-level error: every failure maps to an HTTP status, a stable kebab-case `code`
//! and a public message. Module errors keep their sources; only the public part is sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::options::OptionError;
use crate::source::SourceError;
use crate::transform::TransformError;
use crate::url::UrlError;

/// The catalogue of every stable error `code` a client can see, with the statuses it comes with.
/// Each layer's error (`UrlError`, `SignatureError`, `OptionError`, `SourceError`,
/// `TransformError`, `UploadError`) names its codes from this list; `tests/error_codes.rs` checks
/// that every code the source returns is here and that the README's tables say the same.
pub const CODES: &[(&str, &[u16])] = &[
    // The image path.
    ("invalid-url", &[400]),
    ("invalid-source", &[400]),
    ("unknown-option", &[400]),
    ("invalid-option", &[400]),
    ("presets-only", &[400]),
    ("security-options-disabled", &[403]),
    ("bad-request", &[400]),
    ("malformed-request", &[400]),
    ("request-timeout", &[408]),
    ("headers-too-large", &[431]),
    ("invalid-parameter", &[400]),
    ("unauthorized", &[401]),
    ("invalid-signature", &[403]),
    ("source-not-allowed", &[403]),
    ("source-not-found", &[404]),
    ("not-found", &[404]),
    ("method-not-allowed", &[405]),
    ("url-expired", &[410]),
    ("source-too-large", &[413]),
    ("unsupported-format", &[415]),
    ("invalid-image", &[422]),
    ("image-too-large", &[422]),
    ("too-many-frames", &[422]),
    ("output-too-large", &[422]),
    ("busy", &[429]),
    ("internal", &[500]),
    ("encode-failed", &[500]),
    ("upstream-error", &[502]),
    ("overloaded", &[503]),
    ("transform-timeout", &[503]),
    ("storage-unavailable", &[503]),
    ("shutting-down", &[503]),
    ("analytics-unavailable", &[503]),
    ("upstream-timeout", &[504]),
    // Uploads and the API (`/v1/*`).
    ("invalid-request", &[400]),
    ("length-mismatch", &[400]),
    ("incomplete-body", &[400]),
    ("forbidden", &[403]),
    ("upload-expired", &[403]),
    ("upload-timeout", &[408]),
    ("exists", &[409]),
    ("too-large", &[413]),
    ("unsupported-content-type", &[415]),
    ("content-type-mismatch", &[415]),
    ("not-an-image", &[422]),
    ("checksum-mismatch", &[422]),
    ("rate-limited", &[429]),
    ("path-escapes", &[403]),
    ("key-not-allowed", &[403]),
    ("scope-missing", &[403]),
    ("other-tenant", &[403]),
    ("upload-busy", &[503]),
    ("quota-exceeded", &[429]),
    ("quota-unavailable", &[503]),
    ("upload-pending", &[409]),
    ("upload-rejected", &[409]),
    ("upload-pending-expired", &[409]),
    ("image-deleted", &[410]),
    // Encrypted source URLs (`/enc/`).
    ("invalid-encrypted-source", &[400]),
];

/// Every error a request can end in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("invalid signature")]
    InvalidSignature,
    #[error("unsigned URLs are not accepted")]
    InsecureNotAllowed,
    #[error("this URL expired")]
    Expired,
    #[error(transparent)]
    Option(#[from] OptionError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Transform(#[from] TransformError),
    #[error("too many requests are waiting for a worker")]
    Busy { retry_after: u64 },
    #[error("no worker became free in time")]
    Overloaded { retry_after: u64 },
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// actix-http could not parse the request (its bare 400, rewritten by `http::edge`).
    #[error("the request could not be parsed (request line, path or headers are not valid HTTP/1.1 or not UTF-8)")]
    MalformedRequest,
    /// The request head did not arrive within the client request timeout (actix-http's 408).
    #[error("the request head did not arrive in time")]
    RequestTimeout,
    /// The request head is over actix-http's buffer (its 431).
    #[error("the request head is too large")]
    HeadersTooLarge,
    /// A query parameter of the API that cannot be used (e.g. an analytics `from`/`to`).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("internal error")]
    Internal(String),
    #[error(transparent)]
    Upload(#[from] crate::upload::UploadError),
    /// An error shared by coalesced requests (each gets the same status and code).
    #[error("{0}")]
    Shared(std::sync::Arc<Error>),
}

impl Error {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Url(e) => e.code(),
            Error::InvalidSignature => "invalid-signature",
            Error::InsecureNotAllowed => "invalid-signature",
            Error::Expired => "url-expired",
            Error::Option(e) => e.code(),
            Error::Source(e) => e.code(),
            Error::Transform(e) => e.code(),
            Error::Busy { .. } => "busy",
            Error::Overloaded { .. } => "overloaded",
            Error::ShuttingDown => "shutting-down",
            Error::NotFound => "not-found",
            Error::MethodNotAllowed => "method-not-allowed",
            Error::Unauthorized(_) => "unauthorized",
            Error::BadRequest(_) => "bad-request",
            Error::MalformedRequest => "malformed-request",
            Error::RequestTimeout => "request-timeout",
            Error::HeadersTooLarge => "headers-too-large",
            Error::InvalidParameter(_) => "invalid-parameter",
            Error::Internal(_) => "internal",
            Error::Shared(e) => e.code(),
            Error::Upload(e) => e.code(),
        }
    }

    /// The message sent to clients (never internal details).
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "internal error".into(),
            Error::Source(e) => e.public_message(),
            Error::Transform(e) => e.public_message(),
            Error::Shared(e) => e.public_message(),
            Error::Upload(e) => e.public_message(),
            other => other.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Busy { retry_after } | Error::Overloaded { retry_after } => Some(*retry_after),
            Error::ShuttingDown => Some(1),
            Error::Source(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            Error::Transform(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            Error::Shared(e) => e.retry_after(),
            Error::Upload(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl From<crate::signature::SignatureError> for Error {
    fn from(e: crate::signature::SignatureError) -> Error {
        use crate::signature::SignatureError;
        match e {
            SignatureError::Invalid => Error::InvalidSignature,
            SignatureError::InsecureNotAllowed => Error::InsecureNotAllowed,
            SignatureError::Url(u) => Error::Url(u),
        }
    }
}

impl From<crate::transform::Rejected> for Error {
    fn from(r: crate::transform::Rejected) -> Error {
        use crate::transform::Rejected;
        match r {
            Rejected::QueueFull => Error::Busy { retry_after: 1 },
            Rejected::MemoryPressure | Rejected::QueueTimeout => Error::Overloaded { retry_after: 2 },
            Rejected::Failed(e) => Error::Transform(e),
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::Url(_) | Error::BadRequest(_) | Error::MalformedRequest | Error::InvalidParameter(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Error::InvalidSignature | Error::InsecureNotAllowed => StatusCode::FORBIDDEN,
            Error::Expired => StatusCode::GONE,
            Error::Option(e) => StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            Error::Source(e) => e.status(),
            Error::Transform(e) => e.status(),
            Error::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Overloaded { .. } | Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Shared(e) => e.status_code(),
            Error::Upload(e) => e.status(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        json_response(self.status_code(), self.code(), &self.public_message(), self.retry_after())
    }
}

impl Error {
    /// The error for a bare status actix-http answers by itself, before any service runs
    /// (rewritten into JSON by `http::edge`).
    pub fn from_bare_status(status: u16) -> Option<Error> {
        match status {
            400 => Some(Error::MalformedRequest),
            408 => Some(Error::RequestTimeout),
            431 => Some(Error::HeadersTooLarge),
            _ => None,
        }
    }

    /// The error for one actix-web raised itself (an extractor, a payload, a route): 404, 405
    /// and 408 keep their status, any other client error is a 400 `bad-request` naming what the
    /// framework refused, the rest a 500 `internal`.
    pub fn from_framework(status: StatusCode, err: &actix_web::Error) -> Error {
        match status.as_u16() {
            404 => Error::NotFound,
            405 => Error::MethodNotAllowed,
            408 => Error::RequestTimeout,
            s if s < 500 => Error::BadRequest(err.to_string()),
            _ => Error::Internal(err.to_string()),
        }
    }
}

/// A JSON error: `{"code": …, "message": …}`, never cached (every error response of imago).
pub fn json_response(status: StatusCode, code: &str, message: &str, retry_after: Option<u64>) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    b.insert_header((actix_web::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if let Some(r) = retry_after {
        b.insert_header((actix_web::http::header::RETRY_AFTER, r.to_string()));
    }
    b.json(serde_json::json!({ "code": code, "message": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Error::InvalidSignature, 403, "invalid-signature"),
            (Error::Expired, 410, "url-expired"),
            (Error::Busy { retry_after: 1 }, 429, "busy"),
            (Error::Overloaded { retry_after: 1 }, 503, "overloaded"),
            (Error::Internal("secret detail".into()), 500, "internal"),
            (Error::InsecureNotAllowed, 403, "invalid-signature"),
            (Error::Url(UrlError::MissingSignature), 400, "invalid-url"),
            (Error::Url(UrlError::TooLong(9000)), 400, "invalid-url"),
            (Error::Url(UrlError::BadBase64), 400, "invalid-source"),
            (Error::Url(UrlError::BadPercentEncoding), 400, "invalid-source"),
            (Error::Url(UrlError::BadUtf8), 400, "invalid-source"),
            (Error::Url(UrlError::MissingSource), 400, "invalid-source"),
            (Error::Url(UrlError::BadExtension("tiff".into())), 400, "invalid-source"),
            (Error::Option(OptionError::Unknown("zoomx".into())), 400, "unknown-option"),
            (Error::Option(OptionError::SecurityDisabled("msr".into())), 403, "security-options-disabled"),
            (
                Error::Option(OptionError::UnknownPreset { option: "pr".into(), preset: "x".into() }),
                400,
                "invalid-option",
            ),
            (Error::Source(SourceError::Invalid("ftp".into())), 400, "invalid-source"),
            (Error::Source(SourceError::NotAllowed("s3".into())), 403, "source-not-allowed"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status_code().as_u16(), status);
            assert_eq!(e.code(), code);
        }
        for (e, status, code) in [
            (Error::NotFound, 404u16, "not-found"),
            (Error::ShuttingDown, 503, "shutting-down"),
            (Error::Upload(crate::upload::UploadError::Exists), 409, "exists"),
        ] {
            assert_eq!((e.status_code().as_u16(), e.code()), (status, code));
            assert!(CODES.iter().any(|(c, s)| *c == code && s.contains(&status)), "{code} {status}");
        }
        assert!(!Error::Internal("secret detail".into()).public_message().contains("secret"));
    }
}
