//! Completing an upload (`POST /v1/uploads/{id}/complete`, SPEC §10 "Completion"): imago checks
//! the stored bytes — magic bytes against the key's type, a decodable header, the pixel and frame
//! limits, the size, and the SHA-256 of a digest key — and records the verdict
//! ([`super::state`]). A non-image in the object store is removed.
//!
//! The check reads as little as it can: a `HEAD`, then a `Range` read of the first
//! [`HEADER_BYTES`] for the magic bytes and the header, and the whole object (bounded by
//! `IMAGO_UPLOAD_MAX_BYTES`) only for a digest key or a header the first bytes do not hold.
//!
//! Events: [`on_completed`] and [`on_rejected`] are the one place each verdict is announced
//! (`upload.completed`, `upload.rejected`); they return the event's facts.

use std::time::{Instant, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::state::{stamp, Facts, Refusal, State};
use super::{check_magic, ImageType, UploadError, Uploads, IMAGE_TYPES};
use crate::storage::{Bucket, ObjectMeta};

/// Bytes read for the magic-byte and header checks.
pub const HEADER_BYTES: u64 = 256 * 1024;

/// The `upload.completed` event's facts.
#[derive(Clone, Debug, Serialize)]
pub struct CompletedEvent {
    pub key: String,
    pub tenant: String,
    pub facts: Facts,
}

/// The `upload.rejected` event's facts.
#[derive(Clone, Debug, Serialize)]
pub struct RejectedEvent {
    pub key: String,
    pub tenant: String,
    pub code: String,
    pub reason: String,
}

/// Event point `upload.completed`: called once by each completion that wrote the `ready` record
/// (concurrent completions of one upload may each call it: at-least-once, under one event id).
pub fn on_completed(key: &str, tenant: &str, facts: &Facts) -> CompletedEvent {
    tracing::info!(key, tenant, width = facts.width, height = facts.height, "upload completed");
    CompletedEvent { key: key.to_string(), tenant: tenant.to_string(), facts: facts.clone() }
}

/// Event point `upload.rejected`: called by each completion that rejected (and removed) the bytes.
pub fn on_rejected(key: &str, tenant: &str, e: &UploadError) -> RejectedEvent {
    tracing::info!(key, tenant, code = e.code(), reason = %e, "upload rejected");
    RejectedEvent { key: key.to_string(), tenant: tenant.to_string(), code: e.code().into(), reason: e.to_string() }
}

/// True for the errors that are a verdict on the bytes (the upload is rejected), not a failure
/// to check them.
pub fn is_verdict(e: &UploadError) -> bool {
    matches!(
        e,
        UploadError::NotAnImage(_)
            | UploadError::ContentTypeMismatch(_)
            | UploadError::ChecksumMismatch
            | UploadError::TooLarge { .. }
            | UploadError::ImageTooLarge(_)
            | UploadError::TooManyFrames(_)
    )
}

/// A completed upload (the `200` answer of the completion call).
#[derive(Clone, Debug, Serialize)]
pub struct Completion {
    pub id: String,
    pub key: String,
    pub state: &'static str,
    #[serde(flatten)]
    pub facts: Facts,
    pub image_url: String,
    pub info_url: String,
}

fn type_of(key: &str) -> Option<&'static ImageType> {
    let ext = key.rsplit_once('.')?.1.to_ascii_lowercase();
    IMAGE_TYPES.iter().find(|t| t.ext == ext || t.alt_ext.contains(&ext.as_str()))
}

/// The digest a `…/sha256/{hex}.{ext}` key declares.
fn declared_digest(key: &str) -> Option<[u8; 32]> {
    let (dir, name) = key.rsplit_once('/')?;
    if !(dir == "sha256" || dir.ends_with("/sha256")) {
        return None;
    }
    hex::decode(name.split_once('.')?.0).ok()?.try_into().ok()
}

impl Uploads {
    /// The id of an upload: `upl_` + the key (base64url) + `.` + a MAC of it, so holding the
    /// ticket is what allows completing it.
    pub fn upload_id(&self, key: &str) -> String {
        let mac = self.grant_key.sign(&self.id_grant(key));
        format!("upl_{}.{}", URL_SAFE_NO_PAD.encode(key), &mac[..22])
    }

    fn id_grant(&self, key: &str) -> super::EmbeddedGrant {
        super::EmbeddedGrant {
            method: super::Method::Post,
            key: format!("complete:{key}"),
            content_type: String::new(),
            max_bytes: 0,
            length: None,
            expires: 0,
            sha256: None,
        }
    }

    /// The key an upload id names, when its MAC verifies (`400 invalid-request` otherwise).
    pub fn key_of_id(&self, id: &str) -> Result<String, UploadError> {
        let bad = || UploadError::InvalidRequest("not an upload id this server issued".into());
        let (k, _) = id.strip_prefix("upl_").and_then(|r| r.split_once('.')).ok_or_else(bad)?;
        let key = String::from_utf8(URL_SAFE_NO_PAD.decode(k).map_err(|_| bad())?).map_err(|_| bad())?;
        let want = self.upload_id(&key);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(want.as_bytes(), id.as_bytes())) {
            return Err(bad());
        }
        self.upload_key(&key)
    }

    /// Completes the upload `key` (an upload key): checks it once and records the verdict; later
    /// calls answer the recorded verdict. Bounded by [`super::state::Lifecycle::budget`].
    pub async fn complete_key(&self, key: &str) -> Result<Completion, UploadError> {
        let budget = self.lifecycle.budget;
        let facts = match tokio::time::timeout(budget, self.complete_inner(key)).await {
            Ok(r) => r?,
            Err(_) => return Err(UploadError::Storage(format!("the completion took longer than {budget:?}"))),
        };
        Ok(Completion {
            id: self.upload_id(key),
            key: key.to_string(),
            state: "ready",
            facts,
            image_url: self.image_url(key)?,
            info_url: format!("{}/v1/images/{key}/info", self.settings.public_url),
        })
    }

    fn tenant_of(&self, key: &str) -> String {
        self.settings
            .prefixes
            .iter()
            .filter_map(|p| key.strip_prefix(p.as_str()).and_then(|r| r.strip_prefix('/')))
            .map(|rest| self.tenancy.owner(rest).to_string())
            .next()
            .unwrap_or_default()
    }

    async fn complete_inner(&self, key: &str) -> Result<Facts, UploadError> {
        let Some(b) = self.bucket() else {
            // Embedded: checked on receipt (which also restores a soft-deleted key); read the
            // header for the facts.
            self.refuse_deleted(key).await?;
            let obj = self.ingest.root().read(key, self.settings.max_bytes).await.map_err(UploadError::from)?;
            let t = type_of(key).ok_or_else(|| UploadError::NotAnImage("known".into()))?;
            let facts = self.check_bytes(t, obj.bytes, String::new(), None).await?;
            self.index_local(key).await?;
            return Ok(facts);
        };
        let started = Instant::now();
        let Some(meta) = b.head(key).await? else {
            return match self.rejected_record(b, key).await? {
                Some(r) => Err(UploadError::Rejected(r.reason)),
                None => Err(UploadError::NotFound),
            };
        };
        if let Some(d) = self.deleted_record(key).await? {
            // Only bytes written after the delete (a new upload of the key) bring it back; the
            // store's Last-Modified (seconds, its clock) must be past the delete by more than the
            // clock skew, so a completion retried after the delete never undoes it.
            let rewritten = meta.last_modified.and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok());
            let after = d.deleted_at + super::state::CLOCK_SKEW.as_secs() as i64;
            if rewritten.is_none_or(|m| (m.as_secs() as i64) <= after) {
                return Err(d.error(super::unix_now()));
            }
            self.revive(key).await?;
        }
        if let Some(f) = self.ready_record(b, key).await? {
            if f.etag == meta.etag {
                return Ok((*f).clone());
            }
        }
        let tenant = self.tenant_of(key);
        let age = meta.last_modified.and_then(|m| SystemTime::now().duration_since(m).ok()).unwrap_or_default();
        let ttl = self.lifecycle.pending_ttl;
        if self.lifecycle.require_complete && age >= ttl {
            return Err(UploadError::PendingExpired(ttl.as_secs()));
        }
        match self.check_object(b, key, &meta).await {
            Ok(mut facts) => {
                // The newest-first index entry goes first: a crash before the `ready` record
                // leaves an entry of a pending upload, which the retried completion rewrites.
                facts.uploaded_at = meta
                    .last_modified
                    .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64);
                if let Some(t) = facts.uploaded_at {
                    self.index_recent(key, t).await?;
                }
                let facts = self.write_ready(b, key, facts).await?;
                // The expiry fence: a completion that ended past the TTL + budget may have
                // raced the sweep; it takes its record back.
                if self.lifecycle.require_complete && age + started.elapsed() >= ttl + self.lifecycle.budget {
                    self.forget(b, key).await?;
                    return Err(UploadError::PendingExpired(ttl.as_secs()));
                }
                self.announce_completed(key, &tenant, &facts).await;
                Ok((*facts).clone())
            }
            Err(e) if is_verdict(&e) => {
                let r = Refusal {
                    etag: meta.etag.clone(),
                    code: e.code().to_string(),
                    reason: e.to_string(),
                    checked_at: stamp(SystemTime::now()),
                };
                self.write_rejected(b, key, &r).await?;
                b.delete(key).await?;
                self.announce_rejected(key, &tenant, &meta.etag, &e).await;
                Err(e)
            }
            // Removed while it was being checked (a racing completion rejected it).
            Err(UploadError::NotFound) => match self.rejected_record(b, key).await? {
                Some(r) => Err(UploadError::Rejected(r.reason)),
                None => Err(UploadError::NotFound),
            },
            Err(e) => Err(e),
        }
    }

    /// The checks of an object in the store.
    async fn check_object(&self, b: &Bucket, key: &str, meta: &ObjectMeta) -> Result<Facts, UploadError> {
        let t = type_of(key).ok_or_else(|| UploadError::NotAnImage("known".into()))?;
        let max = self.settings.max_bytes;
        if meta.size > max {
            return Err(UploadError::TooLarge { limit: max });
        }
        let digest = declared_digest(key);
        let bytes = if digest.is_some() || meta.size <= HEADER_BYTES {
            None
        } else {
            match b.get_prefix(key, HEADER_BYTES).await {
                Ok(Some(o)) => Some(o.bytes),
                Ok(None) => return Err(UploadError::NotFound),
                // A store that ignores `Range` sends it all: read it whole below.
                Err(crate::storage::StorageError::TooLarge { .. }) => None,
                Err(e) => return Err(e.into()),
            }
        };
        let bytes = match bytes {
            Some(b) => b,
            None => b.get_opt(key, max).await?.ok_or(UploadError::NotFound)?.bytes,
        };
        let whole = bytes.len() as u64 >= meta.size;
        let checked = match self.check_bytes(t, bytes, meta.etag.clone(), digest).await {
            Err(UploadError::NotAnImage(_)) if !whole => {
                // The header is further in than the first bytes (metadata first): read it all.
                let all = b.get_opt(key, max).await?.ok_or(UploadError::NotFound)?.bytes;
                self.check_bytes(t, all, meta.etag.clone(), None).await
            }
            r => r,
        };
        checked.map(|f| Facts { bytes: meta.size, ..f })
    }

    /// Magic bytes, digest, header, pixel and frame limits of `bytes` (the whole object, or its
    /// first bytes).
    async fn check_bytes(
        &self,
        t: &'static ImageType,
        bytes: Bytes,
        etag: String,
        digest: Option<[u8; 32]>,
    ) -> Result<Facts, UploadError> {
        check_magic(t, &bytes)?;
        if let Some(d) = digest {
            if Sha256::digest(&bytes)[..] != d[..] {
                return Err(UploadError::ChecksumMismatch);
            }
        }
        let size = bytes.len() as u64;
        let now = stamp(SystemTime::now());
        if t.sniff == "svg" {
            let facts = Facts {
                etag,
                bytes: size,
                format: "svg".into(),
                width: 0,
                height: 0,
                frames: 1,
                checked_at: now,
                uploaded_at: None,
            };
            return Ok(facts);
        }
        let enc = self.lifecycle.enc.clone();
        let probed = tokio::task::spawn_blocking(move || crate::transform::probe(&bytes, &enc))
            .await
            .map_err(|e| UploadError::Storage(format!("check task: {e}")))?;
        let info = probed.map_err(|e| match e {
            crate::transform::TransformError::TooManyPixels { .. } => UploadError::ImageTooLarge(e.to_string()),
            _ => UploadError::NotAnImage(t.mime.trim_start_matches("image/").to_uppercase()),
        })?;
        let limit = self.lifecycle.enc.max_animation_frames;
        if info.pages > limit {
            return Err(UploadError::TooManyFrames(format!("{} frames, the limit is {limit}", info.pages)));
        }
        Ok(Facts {
            etag,
            bytes: size,
            format: t.ext.to_string(),
            width: info.width,
            height: info.height,
            frames: info.pages,
            checked_at: now,
            uploaded_at: None,
        })
    }

    /// Embedded mode: an upload is ready on receipt; this announces it ([`on_completed`], with the
    /// header's facts). Called once per stored upload, off the request path.
    pub async fn announce_receipt(&self, key: &str) {
        match self.complete_inner(key).await {
            Ok(facts) => self.announce_completed(key, &self.tenant_of(key), &facts).await,
            Err(e) => tracing::warn!(key, error = %e, "a received upload's header does not decode"),
        }
    }

    /// Sends these uploads' events to the webhook outbox.
    pub fn with_events(mut self, events: crate::events::Events) -> Self {
        self.events = events;
        self
    }

    /// [`on_completed`] into the outbox, one event id per key and ETag (concurrent completions
    /// of one upload enqueue the same id). An outbox failure is logged, never the answer.
    async fn announce_completed(&self, key: &str, tenant: &str, facts: &Facts) {
        let event = on_completed(key, tenant, facts);
        let fact = format!("{key}\n{}", facts.etag);
        if let Err(e) = self.events.enqueue_once(crate::events::EventKind::UploadCompleted, &fact, &event).await {
            tracing::error!(key, error = %e, "upload.completed not recorded in the webhook outbox");
        }
    }

    /// [`on_rejected`] into the outbox (one event id per key and ETag).
    async fn announce_rejected(&self, key: &str, tenant: &str, etag: &str, e: &UploadError) {
        let event = on_rejected(key, tenant, e);
        let fact = format!("{key}\n{etag}");
        if let Err(err) = self.events.enqueue_once(crate::events::EventKind::UploadRejected, &fact, &event).await {
            tracing::error!(key, error = %err, "upload.rejected not recorded in the webhook outbox");
        }
    }

    /// The state of an upload for its id (`GET`-like view used by the listing and tests).
    pub async fn state_of_id(&self, id: &str) -> Result<State, UploadError> {
        self.state_of(&self.key_of_id(id)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_keys_and_types() {
        let hex = "ab".repeat(32);
        assert_eq!(declared_digest(&format!("u/sha256/{hex}.jpg")), Some([0xab; 32]));
        assert_eq!(declared_digest(&format!("u/acme/sha256/{hex}.png")), Some([0xab; 32]));
        assert_eq!(declared_digest(&format!("u/2030/01/01/{hex}.jpg")), None);
        assert_eq!(declared_digest("u/sha256/zz.jpg"), None);
        assert_eq!(type_of("u/a.JPEG").map(|t| t.mime), Some("image/jpeg"));
        assert!(type_of("u/a.txt").is_none());
    }
}
