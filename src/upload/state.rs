//! Where an upload's lifecycle state lives (SPEC §10 "Completion"): `pending` → `ready` or
//! `rejected`; a `ready` upload changes only by `DELETE`.
//!
//! **Embedded mode** has no pending state: imago sees the bytes and commits them only after its
//! checks (magic bytes, checksum), with an atomic rename; a completion call re-reads the header
//! and answers its facts.
//!
//! **S3 mode** keeps "no database": the state is in the bucket, as small records beside the
//! uploads. An object at an upload key is *pending* until a record says otherwise:
//!
//! * `.imago/ready/{key}` — JSON facts (ETag, size, format, dimensions, frames) of the checked
//!   bytes;
//! * `.imago/rejected/{key}` — the code and reason (the object itself is removed).
//!
//! Garage 2.5.0 (the store the tests start) ignores `If-None-Match` and `If-Match` on `PutObject`
//! (`tests/uploads_confirm.rs::garage_ignores_conditional_puts` proves it), so the records are
//! never read-modify-written and need no compare-and-swap:
//!
//! * every record is written whole by one `PUT` (an object appears whole or not at all: nothing
//!   half-written after a crash), and only ever *added* for a verdict that is a pure function of
//!   the object's bytes. Concurrent completions of one upload (and the sweep, which completes the
//!   same way) compute the same verdict from the same bytes and write the same record: there is
//!   no update to lose;
//! * the one decision that is not a function of the bytes — expiring a pending upload with
//!   `IMAGO_UPLOAD_REQUIRE_COMPLETE` — is fenced in time: a completion is refused once the upload
//!   is older than `IMAGO_UPLOAD_PENDING_TTL_SECS` and must finish within [`Lifecycle::budget`]
//!   (else it removes its own record and answers `409 upload-pending-expired`), while the sweep
//!   removes an upload only when it is older than the TTL + budget + [`CLOCK_SKEW`], after
//!   reading once more that no `ready` record exists. The replicas' clocks must agree within
//!   [`CLOCK_SKEW`].
//!
//! Ready records are cached in memory (a ready upload never changes back), so serving an upload
//! costs one small `GET` the first time per process and nothing after.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::{stream, StreamExt};
use serde::{Deserialize, Serialize};

use super::{Backend, UploadError, Uploads};
use crate::storage::Bucket;

/// Directory of the `ready` records (bucket root).
pub const READY_DIR: &str = ".imago/ready";
/// Directory of the `rejected` records (bucket root).
pub const REJECTED_DIR: &str = ".imago/rejected";
/// Largest state record read.
const RECORD_MAX: u64 = 16 * 1024;
/// How far the replicas' clocks may disagree for the pending-expiry fence.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5);
/// Ready records remembered per process.
const READY_CACHE: u64 = 100_000;

/// What the checks found about a ready upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The store's ETag of the checked bytes (empty in embedded mode).
    pub etag: String,
    pub bytes: u64,
    pub format: String,
    /// Upright dimensions (0 for SVG, which is stored but never decoded).
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub checked_at: String,
    /// When the checked bytes were stored (the store's `Last-Modified`, Unix seconds): the time
    /// of the upload's newest-first index entry ([`super::recent`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<i64>,
}

/// A rejected upload's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub etag: String,
    pub code: String,
    pub reason: String,
    pub checked_at: String,
}

/// An upload's lifecycle state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Ready(Arc<Facts>),
    Pending,
    Rejected(Refusal),
    /// Nothing at the key (never uploaded, deleted, or expired).
    Missing,
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Ready(_) => "ready",
            State::Pending => "pending",
            State::Rejected(_) => "rejected",
            State::Missing => "missing",
        }
    }
}

/// The completion settings and the ready cache (one field of [`Uploads`]).
#[derive(Debug)]
pub struct Lifecycle {
    pub require_complete: bool,
    pub pending_ttl: Duration,
    /// Longest a completion may take (every store request is bounded by
    /// `IMAGO_FETCH_TIMEOUT_MS`; a completion makes at most six).
    pub budget: Duration,
    /// Header limits of the checks (`IMAGO_MAX_SRC_MEGAPIXELS`, `IMAGO_MAX_ANIMATION_FRAMES`).
    pub enc: Arc<crate::transform::EncodeSettings>,
    ready: moka::future::Cache<String, Arc<Facts>>,
}

impl Lifecycle {
    pub fn new(cfg: &crate::config::Config) -> Lifecycle {
        Lifecycle {
            require_complete: cfg.uploads.require_complete,
            pending_ttl: cfg.uploads.pending_ttl,
            budget: Duration::from_millis(cfg.raw.fetch_timeout_ms.saturating_mul(6)),
            enc: Arc::new(crate::transform::EncodeSettings::from_config(&cfg.raw)),
            ready: moka::future::Cache::new(READY_CACHE),
        }
    }

    /// Drops a key's cached `ready` facts (a soft delete keeps the record for a restore).
    pub async fn forget_cached(&self, key: &str) {
        self.ready.invalidate(key).await;
    }

    /// Age past which the sweep may remove a pending upload (`IMAGO_UPLOAD_REQUIRE_COMPLETE`).
    pub fn expiry_fence(&self) -> Duration {
        self.pending_ttl + self.budget + CLOCK_SKEW
    }
}

/// The record keys of an upload key.
pub fn ready_key(key: &str) -> String {
    format!("{READY_DIR}/{key}")
}

pub fn rejected_key(key: &str) -> String {
    format!("{REJECTED_DIR}/{key}")
}

/// Now as RFC 3339 (seconds).
pub fn stamp(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

async fn record<T: serde::de::DeserializeOwned>(b: &Bucket, key: &str) -> Result<Option<T>, UploadError> {
    match b.get_opt(key, RECORD_MAX).await? {
        // A record that does not parse (written by hand, or by a future version) counts as none.
        Some(o) => Ok(serde_json::from_slice(&o.bytes).ok()),
        None => Ok(None),
    }
}

impl Uploads {
    /// The upload bucket, when uploads go to the object store.
    pub(super) fn bucket(&self) -> Option<&Bucket> {
        match &self.backend {
            Backend::S3(b) => Some(b),
            Backend::Local => None,
        }
    }

    /// The cached ready facts of a key.
    pub(super) async fn cached_ready(&self, key: &str) -> Option<Arc<Facts>> {
        self.lifecycle.ready.get(key).await
    }

    pub(super) async fn ready_record(&self, b: &Bucket, key: &str) -> Result<Option<Arc<Facts>>, UploadError> {
        if let Some(f) = self.cached_ready(key).await {
            return Ok(Some(f));
        }
        let f: Option<Arc<Facts>> = record::<Facts>(b, &ready_key(key)).await?.map(Arc::new);
        if let Some(f) = &f {
            self.lifecycle.ready.insert(key.to_string(), f.clone()).await;
        }
        Ok(f)
    }

    pub(super) async fn rejected_record(&self, b: &Bucket, key: &str) -> Result<Option<Refusal>, UploadError> {
        record(b, &rejected_key(key)).await
    }

    /// The state of an upload key in the object store (embedded keys are `ready` or `missing`).
    pub async fn state_of(&self, key: &str) -> Result<State, UploadError> {
        let Some(b) = self.bucket() else {
            return Ok(match self.ingest.stat(key).await? {
                Some(_) => State::Ready(Arc::new(Facts {
                    etag: String::new(),
                    bytes: 0,
                    format: String::new(),
                    width: 0,
                    height: 0,
                    frames: 0,
                    checked_at: String::new(),
                    uploaded_at: None,
                })),
                None => State::Missing,
            });
        };
        if let Some(f) = self.ready_record(b, key).await? {
            return Ok(State::Ready(f));
        }
        if let Some(r) = self.rejected_record(b, key).await? {
            return Ok(State::Rejected(r));
        }
        Ok(if b.head(key).await?.is_some() { State::Pending } else { State::Missing })
    }

    pub(super) async fn write_ready(&self, b: &Bucket, key: &str, facts: Facts) -> Result<Arc<Facts>, UploadError> {
        let body = serde_json::to_vec(&facts).map_err(|e| UploadError::Storage(e.to_string()))?;
        b.put(&ready_key(key), "application/json", body).await?;
        let f = Arc::new(facts);
        self.lifecycle.ready.insert(key.to_string(), f.clone()).await;
        Ok(f)
    }

    pub(super) async fn write_rejected(&self, b: &Bucket, key: &str, r: &Refusal) -> Result<(), UploadError> {
        let body = serde_json::to_vec(r).map_err(|e| UploadError::Storage(e.to_string()))?;
        Ok(b.put(&rejected_key(key), "application/json", body).await?)
    }

    /// Forgets an upload's records (after `DELETE`, or a fenced-out completion).
    pub(super) async fn forget(&self, b: &Bucket, key: &str) -> Result<(), UploadError> {
        self.lifecycle.ready.invalidate(key).await;
        b.delete(&ready_key(key)).await?;
        self.lifecycle.ready.invalidate(key).await;
        Ok(())
    }

    /// Whether the proxy may read `s3://{bucket}/{key}`: always, unless it is an upload key of
    /// the upload bucket that is soft-deleted (`410 image-deleted`, read at every fetch:
    /// [`super::trash`]) or not `ready`. A `pending` one is completed here (its first read
    /// checks it) unless `IMAGO_UPLOAD_REQUIRE_COMPLETE` is set (`409 upload-pending`); a
    /// `rejected` one is `409 upload-rejected`. Ready keys are cached, so this is free after the
    /// first read.
    /// Without API keys (uploads off) nothing is gated: the bucket's objects are served as before.
    pub async fn gate(&self, bucket: &str, key: &str) -> Result<(), UploadError> {
        let Some(b) = self.bucket() else { return Ok(()) };
        if self.settings.api_keys.is_empty() {
            return Ok(());
        }
        if b.name() != bucket || self.upload_key(key).is_err() {
            return Ok(());
        }
        self.refuse_deleted(key).await?;
        if self.cached_ready(key).await.is_some() {
            return Ok(());
        }
        match self.state_of(key).await? {
            State::Ready(_) | State::Missing => Ok(()),
            State::Rejected(r) => Err(UploadError::Rejected(r.reason)),
            State::Pending if self.lifecycle.require_complete => Err(UploadError::Pending),
            State::Pending => match self.complete_key(key).await {
                Ok(_) => Ok(()),
                Err(e) if super::complete::is_verdict(&e) => Err(UploadError::Rejected(e.to_string())),
                Err(e) => Err(e),
            },
        }
    }

    /// The state of each listed item (S3 mode: one small read per item not cached as ready,
    /// 16 at a time; embedded uploads are always `ready`).
    pub(super) async fn fill_states(&self, items: &mut [super::tenancy::Item]) -> Result<(), UploadError> {
        let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
        let deleted: Vec<Result<Option<super::trash::Deleted>, UploadError>> =
            stream::iter(keys).map(|k| async move { self.deleted_record(&k).await }).buffered(16).collect().await;
        for (item, d) in items.iter_mut().zip(deleted) {
            if let Some(d) = d? {
                item.state = "deleted";
                item.purge_at = Some(d.purge_at_text());
            }
        }
        if self.bucket().is_none() {
            return Ok(());
        }
        // A deleted item's lifecycle state is not read (it stays `deleted`).
        let keys: Vec<Option<String>> = items.iter().map(|i| (i.state != "deleted").then(|| i.key.clone())).collect();
        let states: Vec<Result<Option<State>, UploadError>> = stream::iter(keys)
            .map(|k| async move {
                match k {
                    Some(k) => self.state_of(&k).await.map(Some),
                    None => Ok(None),
                }
            })
            .buffered(16)
            .collect()
            .await;
        for (item, st) in items.iter_mut().zip(states) {
            if let Some(st) = st? {
                item.state = st.name();
            }
        }
        Ok(())
    }
}
