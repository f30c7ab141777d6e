//! Soft delete (SPEC §10 "Deletion"): `DELETE /v1/images/{key}` with
//! `IMAGO_DELETE_GRACE_SECS` > 0 keeps the original and writes a record
//! `.imago/deleted/{key}` (in the bucket, or under the local root in embedded mode) holding when
//! and by which tenant it was deleted and when it is purged. While the record exists every read
//! of the key (image URLs, `/info`, completion) answers `410 image-deleted`;
//! `POST /v1/images/{key}/restore` removes it; the sweep purges what is due.
//!
//! * **No cache can keep a restored image refused**: the record is read whenever the original
//!   is fetched (a source-cache miss: one small `GET` in S3 mode, one `open` embedded) and never
//!   cached, so a restore is seen by every replica at its next fetch. A delete is seen by the
//!   others once they dropped the image from memory (the tombstone, `IMAGO_DELETE_SYNC_MS`).
//! * **Purge order**: the object first, then its `ready` record, then the `deleted` record. A
//!   crash before the first step changes nothing; after it, the `deleted` record is still there,
//!   so reads keep answering `image-deleted`, a restore answers it too (nothing left to bring
//!   back) and the next sweep finishes the removal (each step tolerates what is already gone).
//!   The reverse order could leave an object with a `ready` record and no `deleted` record: a
//!   purged image coming back.
//! * **Fence in time** (Garage 2.5.0 has no conditional writes or deletes): a restore or a
//!   re-upload's completion clears the record only before `purge_at`, and must finish within
//!   [`super::state::Lifecycle::budget`]; the sweep purges only records older than `purge_at` +
//!   budget + [`super::state::CLOCK_SKEW`], after reading the record once more.
//! * Deduplicated bytes are never shared by two tenants (the key is under the tenant's own
//!   directory, [`super::tenancy`]), so one tenant's delete or purge never touches another's
//!   object; within a tenant identical bytes are one object with one record.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::state::CLOCK_SKEW;
use super::{Backend, UploadError, Uploads};

/// Directory of the `deleted` records (bucket root, or local root).
pub const DELETED_DIR: &str = ".imago/deleted";
/// Largest record read.
const RECORD_MAX: u64 = 16 * 1024;

/// A soft-deleted original's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// Unix seconds.
    pub deleted_at: i64,
    /// The tenant whose key deleted it.
    pub by_tenant: String,
    /// Unix seconds: from then on the sweep may purge it, and it can no longer be restored.
    pub purge_at: i64,
}

impl Deleted {
    /// `purge_at` as RFC 3339.
    pub fn purge_at_text(&self) -> String {
        jiff::Timestamp::from_second(self.purge_at)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    }

    /// The refusal of a read (`410 image-deleted`) as of `now`.
    pub fn error(&self, now: i64) -> UploadError {
        if now < self.purge_at {
            UploadError::Deleted(format!("it can be restored until {}", self.purge_at_text()))
        } else {
            UploadError::Deleted(format!("its grace period ended at {}", self.purge_at_text()))
        }
    }
}

/// What one purge pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Originals removed (with their records).
    pub purged: Vec<String>,
    /// Records still in their grace period (or within the fence after it).
    pub waiting: usize,
}

pub fn deleted_key(key: &str) -> String {
    format!("{DELETED_DIR}/{key}")
}

fn join(e: tokio::task::JoinError) -> UploadError {
    UploadError::Storage(format!("record task: {e}"))
}

/// Every file under `dir` (blocking), as paths relative to it.
fn walk(dir: &std::path::Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // a record being written (`.{name}.tmp`)
        }
        let r = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&e.path(), &r, out)?,
            Ok(t) if t.is_file() => out.push(r),
            _ => {}
        }
    }
    Ok(())
}

impl Uploads {
    fn local_record(&self, key: &str) -> PathBuf {
        self.ingest.root().root().join(deleted_key(key))
    }

    /// The `deleted` record of an upload key, if any (never cached: see the module docs).
    pub async fn deleted_record(&self, key: &str) -> Result<Option<Deleted>, UploadError> {
        let body = match &self.backend {
            Backend::S3(b) => b.get_opt(&deleted_key(key), RECORD_MAX).await?.map(|o| o.bytes.to_vec()),
            Backend::Local => {
                let path = self.local_record(key);
                tokio::task::spawn_blocking(move || match std::fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    // A key whose directory is a file here (`a.jpg/b.jpg`) has no record either.
                    Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(None),
                    Err(e) => Err(UploadError::Storage(format!("deleted record: {e}"))),
                })
                .await
                .map_err(join)??
            }
        };
        // A record that does not parse still marks the image deleted (purge due at once).
        Ok(body.map(|b| {
            serde_json::from_slice(&b).unwrap_or(Deleted { deleted_at: 0, by_tenant: String::new(), purge_at: 0 })
        }))
    }

    async fn write_deleted(&self, key: &str, d: &Deleted) -> Result<(), UploadError> {
        let body = serde_json::to_vec(d).map_err(|e| UploadError::Storage(e.to_string()))?;
        match &self.backend {
            Backend::S3(b) => Ok(b.put(&deleted_key(key), "application/json", body).await?),
            Backend::Local => {
                let (root, name) = (self.ingest.root().root().to_path_buf(), deleted_key(key));
                tokio::task::spawn_blocking(move || crate::storage::local::write_atomic(&root, &name, &body))
                    .await
                    .map_err(join)?
                    .map_err(UploadError::from)
            }
        }
    }

    pub(super) async fn remove_deleted(&self, key: &str) -> Result<(), UploadError> {
        match &self.backend {
            Backend::S3(b) => Ok(b.delete(&deleted_key(key)).await?),
            Backend::Local => {
                let path = self.local_record(key);
                tokio::task::spawn_blocking(move || crate::storage::local::remove_file(&path))
                    .await
                    .map_err(join)?
                    .map_err(UploadError::from)
            }
        }
    }

    /// `410 image-deleted` when the upload key has a `deleted` record (other keys: `Ok`).
    pub async fn refuse_deleted(&self, key: &str) -> Result<(), UploadError> {
        if self.settings.api_keys.is_empty() || self.upload_key(key).is_err() {
            return Ok(());
        }
        match self.deleted_record(key).await? {
            Some(d) => Err(d.error(super::unix_now())),
            None => Ok(()),
        }
    }

    /// Soft-deletes the original at an upload key (which must exist) for `tenant`: writes the
    /// record (a second delete keeps the first record, so the grace period is not extended) and
    /// forgets the cached `ready` facts. Returns the record.
    pub async fn soft_delete(&self, key: &str, tenant: &str) -> Result<Deleted, UploadError> {
        let key = self.upload_key(key)?;
        if !self.exists(&key).await? {
            return Err(UploadError::NotFound);
        }
        if let Some(d) = self.deleted_record(&key).await? {
            return Ok(d);
        }
        let now = super::unix_now();
        let grace = self.settings.delete_grace.as_secs() as i64;
        let d = Deleted { deleted_at: now, by_tenant: tenant.to_string(), purge_at: now + grace };
        self.write_deleted(&key, &d).await?;
        self.lifecycle.forget_cached(&key).await;
        Ok(d)
    }

    /// `POST /v1/images/{key}/restore`: removes the `deleted` record of a key still in its grace
    /// period (`404 not-found` without one; `410 image-deleted` once the grace period is over or
    /// the original is gone). Bounded by the completion budget (the purge fence counts on it).
    pub async fn restore(&self, key: &str) -> Result<Deleted, UploadError> {
        let key = self.upload_key(key)?;
        let budget = self.lifecycle.budget;
        tokio::time::timeout(budget, async {
            let d = self.deleted_record(&key).await?.ok_or(UploadError::NotFound)?;
            if super::unix_now() >= d.purge_at || !self.exists(&key).await? {
                return Err(d.error(i64::MAX));
            }
            self.remove_deleted(&key).await?;
            Ok(d)
        })
        .await
        .map_err(|_| UploadError::Storage(format!("the restore took longer than {budget:?}")))?
    }

    /// A new upload of `key` (its bytes received, or its completion passed): clears a soft
    /// delete still in its grace period, like a restore. Past it, `410 image-deleted`: the
    /// purge may be under way; upload again once it is done.
    pub async fn revive(&self, key: &str) -> Result<(), UploadError> {
        let Some(d) = self.deleted_record(key).await? else { return Ok(()) };
        if super::unix_now() >= d.purge_at {
            return Err(d.error(i64::MAX));
        }
        self.remove_deleted(key).await?;
        tracing::info!(key, "a new upload restored a soft-deleted image");
        Ok(())
    }

    /// The keys with a `deleted` record under the upload prefixes (sorted).
    pub async fn deleted_keys(&self) -> Result<Vec<String>, UploadError> {
        let mut out = Vec::new();
        match &self.backend {
            Backend::S3(b) => {
                for p in &self.settings.prefixes {
                    let mut after: Option<String> = None;
                    loop {
                        let page = b.list_page(&format!("{DELETED_DIR}/{p}/"), after.as_deref(), 1000).await?;
                        after = page.objects.last().map(|o| o.key.clone());
                        let n = DELETED_DIR.len() + 1;
                        out.extend(page.objects.into_iter().filter_map(|o| o.key.get(n..).map(str::to_string)));
                        if !page.more || after.is_none() {
                            break;
                        }
                    }
                }
            }
            Backend::Local => {
                let dir = self.ingest.root().root().join(DELETED_DIR);
                out = tokio::task::spawn_blocking(move || {
                    let mut v = Vec::new();
                    walk(&dir, "", &mut v).map(|()| v)
                })
                .await
                .map_err(join)?
                .map_err(|e| UploadError::Storage(format!("deleted records: {e}")))?;
            }
        }
        out.retain(|k| self.upload_key(k).is_ok());
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// One purge pass as of `now`: every original whose record's `purge_at` + budget +
    /// [`CLOCK_SKEW`] has passed is removed — the object, then its `ready` record, then the
    /// `deleted` record (see the module docs for why this order is crash-safe).
    pub async fn purge_at(&self, now: SystemTime) -> Result<Purged, UploadError> {
        let mut done = Purged::default();
        let now = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let fence = (self.lifecycle.budget + CLOCK_SKEW).as_secs() as i64 + 1;
        for key in self.deleted_keys().await? {
            // Read once more: a restore may have removed it since the listing.
            let Some(d) = self.deleted_record(&key).await? else { continue };
            if now < d.purge_at.saturating_add(fence) {
                done.waiting += 1;
                continue;
            }
            let stored_at = self.recent_of(&key).await;
            self.purge_object(&key).await?;
            self.purge_records(&key).await?;
            self.unindex_purged(&key, stored_at).await;
            tracing::info!(key, "purged a deleted image after its grace period");
            let data = serde_json::json!({
                "key": key, "tenant": self.owner_of(&key), "source": self.source_of(&key),
                "deleted_at": d.deleted_at, "purge_at": d.purge_at_text(),
            });
            let fact = format!("{key}\n{}", d.deleted_at);
            if let Err(e) = self.events.enqueue_once(crate::events::EventKind::ImagePurged, &fact, &data).await {
                tracing::error!(key, error = %e, "image.purged not recorded in the webhook outbox");
            }
            done.purged.push(key);
        }
        Ok(done)
    }

    /// Purge step 1: the object (already gone is fine).
    pub async fn purge_object(&self, key: &str) -> Result<(), UploadError> {
        match &self.backend {
            Backend::S3(b) => Ok(b.delete(key).await?),
            Backend::Local => match self.ingest.delete(key).await {
                Err(UploadError::NotFound) => Ok(()),
                r => r,
            },
        }
    }

    /// Purge steps 2 and 3: the `ready` record, then the `deleted` record.
    pub async fn purge_records(&self, key: &str) -> Result<(), UploadError> {
        if let Some(b) = self.bucket() {
            self.forget(b, key).await?;
        }
        self.remove_deleted(key).await
    }

    /// `image.restored` into the outbox (one event id per deletion). A failure is logged.
    pub async fn announce_restored(&self, key: &str, tenant: &str, d: &Deleted) {
        let data = serde_json::json!({ "key": key, "tenant": tenant, "source": self.source_of(key), "deleted_at": d.deleted_at });
        let fact = format!("{key}\n{}", d.deleted_at);
        if let Err(e) = self.events.enqueue_once(crate::events::EventKind::ImageRestored, &fact, &data).await {
            tracing::error!(key, error = %e, "image.restored not recorded in the webhook outbox");
        }
    }

    /// The purge pass's period: a tenth of the grace period, 1 s to 1 h.
    pub fn purge_every(&self) -> Duration {
        (self.settings.delete_grace / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
    }
}

/// Purges due originals every [`Uploads::purge_every`] while the owner of the uploads lives
/// (with uploads on; records left from an earlier grace period are purged too).
pub async fn run_purger<T: Send + Sync + 'static>(owner: std::sync::Weak<T>, uploads: fn(&T) -> &Uploads) {
    let every = match owner.upgrade() {
        Some(o) if !uploads(&o).settings.api_keys.is_empty() => uploads(&o).purge_every(),
        _ => return,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(o) = owner.upgrade() else { return };
        match uploads(&o).purge_at(SystemTime::now()).await {
            Ok(p) if !p.purged.is_empty() => tracing::info!(purged = p.purged.len(), "purged deleted images"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge of deleted images failed"),
        }
    }
}
