//! Why a transform failed, and how each failure reads over HTTP.

use std::time::Duration;

use actix_web::http::StatusCode;

/// Why a transform failed.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("unsupported source format: {0}")]
    Unsupported(String),
    #[error("the image cannot be decoded: {0}")]
    Undecodable(String),
    #[error("the image has {megapixels:.1} megapixels, more than the limit of {limit}")]
    TooManyPixels { megapixels: f64, limit: f64 },
    #[error("the image has {frames} frames, more than the limit of {limit}")]
    TooManyFrames { frames: u32, limit: u32 },
    #[error("the output would be {width}x{height}, larger than the limit of {limit}")]
    OutputTooLarge { width: u64, height: u64, limit: u32 },
    #[error("the transform would hold {width}x{height} pixels, more than the limit of {limit} megapixels")]
    TooManyOutputPixels { width: u32, height: u32, limit: f64 },
    #[error("the transform took longer than {0:?}")]
    Timeout(Duration),
    #[error("encoding failed: {0}")]
    Encode(String),
    #[error("transform worker failed: {0}")]
    Internal(String),
}

impl TransformError {
    pub fn status(&self) -> StatusCode {
        match self {
            TransformError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TransformError::Undecodable(_)
            | TransformError::TooManyPixels { .. }
            | TransformError::TooManyFrames { .. }
            | TransformError::OutputTooLarge { .. }
            | TransformError::TooManyOutputPixels { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            TransformError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            TransformError::Encode(_) | TransformError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            TransformError::Unsupported(_) => "unsupported-format",
            TransformError::Undecodable(_) => "invalid-image",
            TransformError::TooManyPixels { .. } => "image-too-large",
            TransformError::TooManyFrames { .. } => "too-many-frames",
            TransformError::OutputTooLarge { .. } | TransformError::TooManyOutputPixels { .. } => "output-too-large",
            TransformError::Timeout(_) => "transform-timeout",
            TransformError::Encode(_) => "encode-failed",
            TransformError::Internal(_) => "internal",
        }
    }
    pub fn public_message(&self) -> String {
        match self {
            // libvips' messages can carry internal detail: keep them in logs only.
            TransformError::Undecodable(_) => "the image cannot be decoded".into(),
            TransformError::Encode(_) | TransformError::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}
