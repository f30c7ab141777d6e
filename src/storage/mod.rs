//! The storage layer: where bytes live. [`Storage`] is built once from the configuration and
//! shared; it holds the local root ([`local`]: the embedded store, `local:///key`) and, when
//! `IMAGO_S3_ENDPOINT` is set, the one object store client ([`s3`]: `s3://bucket/key` sources,
//! S3-mode uploads, analytics event files). Sources, uploads and analytics reach bytes only
//! through this module; no other module signs S3 requests or builds a client for the store.
//!
//! Errors are [`StorageError`]: structured, so each caller keeps its own codes and wording.

pub mod credentials;
pub mod list;
pub mod local;
pub mod s3;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

pub use list::{Listed, Page};
pub use local::{clean_key, object_key, Dirs, LocalRoot, Outcome, TempFile, INCOMING_DIR, OUTBOX_DIR};
pub use s3::{Bucket, ObjectMeta, ObjectSpec, PostTarget, PutTarget, S3Client};

use crate::config::Config;

/// What storage could not do.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key is not a clean relative path ([`clean_key`]).
    #[error("object key {0}")]
    BadKey(&'static str),
    /// The key is under [`INCOMING_DIR`], which only upload temp files use.
    #[error("this key is reserved")]
    Reserved,
    /// The path leaves the local root (through `..` or a symlink).
    #[error("path escapes the store")]
    Escapes,
    #[error("no such object")]
    NotFound,
    /// A different object already exists at the key (no-replace commits).
    #[error("a different object already exists at this key")]
    Exists,
    #[error("the object is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("bucket {name}: {message}")]
    Bucket { name: String, message: String },
    /// The object store got no answer to a request (`timeout`: the client's timeout hit).
    #[error("{message}")]
    Request { message: String, timeout: bool },
    /// The answer's body could not be read.
    #[error("{message}")]
    Body { message: String, timeout: bool },
    /// The object store answered `status` to `op` (`GET`, `HEAD`, `PUT`, `DELETE`, `LIST`).
    #[error("{op} answered {status}")]
    Status { op: &'static str, status: reqwest::StatusCode },
    /// Something that cannot be stored or an answer that cannot be understood.
    #[error("{0}")]
    Invalid(String),
}

impl StorageError {
    /// True when the client's timeout cut a request or its body short.
    pub fn is_timeout(&self) -> bool {
        matches!(self, StorageError::Request { timeout: true, .. } | StorageError::Body { timeout: true, .. })
    }
}

/// A whole object, read.
#[derive(Clone, Debug)]
pub struct Object {
    pub bytes: Bytes,
    pub last_modified: Option<SystemTime>,
}

/// Reads an answer's body, refusing more than `max_bytes` (announced by `Content-Length`, or
/// read). Used for object store GETs and for HTTP origins alike.
pub async fn read_body(resp: reqwest::Response, max_bytes: u64) -> Result<Object, StorageError> {
    if resp.content_length().is_some_and(|l| l > max_bytes) {
        return Err(StorageError::TooLarge { limit: max_bytes });
    }
    let last_modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let mut buf = BytesMut::with_capacity(resp.content_length().unwrap_or(64 * 1024).min(max_bytes) as usize);
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        // `without_url`: a presigned URL (a credential) must never reach an error text or a log.
        let chunk =
            chunk.map_err(|e| StorageError::Body { timeout: e.is_timeout(), message: e.without_url().to_string() })?;
        if (buf.len() + chunk.len()) as u64 > max_bytes {
            return Err(StorageError::TooLarge { limit: max_bytes });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Object { bytes: buf.freeze(), last_modified })
}

/// The shared storage handle (cheap to clone).
#[derive(Clone, Debug)]
pub struct Storage {
    local: LocalRoot,
    s3: Option<S3Client>,
}

impl Storage {
    /// Opens the local root (`IMAGO_LOCAL_ROOT`, created when missing) and, with
    /// `IMAGO_S3_ENDPOINT`, builds the object store client (`IMAGO_FETCH_TIMEOUT_MS` bounds
    /// connecting and each request).
    pub fn new(cfg: &Config) -> Result<Storage, String> {
        let r = &cfg.raw;
        let local = LocalRoot::open(&r.local_root).map_err(|e| format!("IMAGO_LOCAL_ROOT {e}"))?;
        let timeout = Duration::from_millis(r.fetch_timeout_ms);
        let s3 = cfg.s3.as_ref().map(|c| S3Client::new(c, timeout)).transpose()?;
        Ok(Storage { local, s3 })
    }

    /// The local root.
    pub fn local(&self) -> &LocalRoot {
        &self.local
    }

    /// The object store client, when one is configured.
    pub fn s3(&self) -> Option<&S3Client> {
        self.s3.as_ref()
    }

    /// A warning for `/readyz` while chain credentials fail to refresh but are still valid.
    pub fn warning(&self) -> Option<String> {
        self.s3.as_ref().and_then(|s| s.credentials().check().ok().flatten())
    }

    /// Readiness: the local root is a directory, chain credentials have not expired, and the
    /// object store answers (any HTTP answer but a 5xx).
    pub async fn ready(&self) -> Result<(), String> {
        self.local.ready().await?;
        if let Some(s3) = &self.s3 {
            s3.ready().await?;
        }
        Ok(())
    }
}
