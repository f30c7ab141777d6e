//! Events (`upload.completed`, `upload.rejected`, `image.deleted`) delivered to the configured
//! webhook URLs from a durable outbox ([`outbox`]), signed as SPEC §13 says
//! (`imago_signing::webhook`: `Imago-Signature: t=…,v1=…`).
//!
//! Why the outbox lives in the store: imago replicas are stateless (docs/design.md §1), so an
//! event committed by a replica that dies before delivering must be found by another one, or by
//! the same one after a restart. The object store (S3 mode) is the one durable thing every
//! replica shares; in embedded mode the local root is (one replica). One object per event and
//! URL means enqueueing is one write and delivering one delete, with no shared index to contend
//! on. Delivery is at least once: a receiver deduplicates on the event `id` (also sent as
//! `Imago-Event-Id`).

mod outbox;
mod store;

use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use crate::storage::{Storage, StorageError};

pub use outbox::{Delivery, Outbox};
pub use store::{Store, S3_PREFIX};

/// The kinds of event imago emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// An upload was confirmed complete (`POST /v1/uploads/{id}/complete`).
    UploadCompleted,
    /// An upload was refused on completion (wrong type, size, checksum…).
    UploadRejected,
    /// `DELETE /v1/images/{key}` removed an original.
    ImageDeleted,
    /// `POST /v1/images/{key}/restore` brought a soft-deleted original back.
    ImageRestored,
    /// The sweep removed a soft-deleted original whose grace period had passed.
    ImagePurged,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::UploadCompleted => "upload.completed",
            EventKind::UploadRejected => "upload.rejected",
            EventKind::ImageDeleted => "image.deleted",
            EventKind::ImageRestored => "image.restored",
            EventKind::ImagePurged => "image.purged",
        }
    }
}

/// Failures of the outbox (never shown to API clients: the action the event reports is done).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("outbox storage: {0}")]
    Storage(#[from] StorageError),
    #[error("event encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    created_at: String,
    data: &'a T,
}

/// Where the outbox (and the deletion tombstones) live: the uploads bucket in S3 mode, else
/// `{IMAGO_LOCAL_ROOT}/.outbox`.
pub fn store_for(cfg: &Config, storage: &Storage) -> Result<Store, String> {
    Ok(match (storage.s3(), cfg.s3.as_ref().and_then(|c| c.bucket.as_deref())) {
        (Some(client), Some(bucket)) => Store::s3(client.bucket(bucket).map_err(|e| format!("outbox bucket: {e}"))?),
        _ => Store::Local(storage.local().root().join(crate::storage::OUTBOX_DIR)),
    })
}

/// `evt_` and 26 hex digits of SHA-256(kind, fact): the id of an event that is a fact.
pub fn event_id_of(kind: EventKind, fact: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::new().chain_update(kind.name()).chain_update([0u8]).chain_update(fact).finalize();
    format!("evt_{}", &hex::encode(digest)[..26])
}

/// The event service: enqueue here; a background task per replica delivers.
#[derive(Clone)]
pub struct Events {
    outbox: Option<Arc<Outbox>>,
}

impl Events {
    /// Off (no `IMAGO_WEBHOOK_URLS`): enqueueing does nothing.
    pub fn off() -> Events {
        Events { outbox: None }
    }

    /// The outbox in the object store (S3 mode: the uploads bucket) or under the local root,
    /// and its delivery task.
    pub fn start(cfg: &Config, storage: &Storage, metrics: &crate::metrics::Metrics) -> Result<Events, String> {
        let s = &cfg.events;
        if s.urls.is_empty() {
            return Ok(Events::off());
        }
        let store = store_for(cfg, storage)?;
        let outbox = Arc::new(Outbox::new(store, s.clone())?.with_counter(metrics.webhook_deliveries.clone()));
        outbox.clone().spawn()?;
        Ok(Events { outbox: Some(outbox) })
    }

    pub fn enabled(&self) -> bool {
        self.outbox.is_some()
    }

    /// Records an event durably (one file per webhook URL, written before this returns) and
    /// wakes the delivery task. Returns the event id (`None` when webhooks are off).
    ///
    /// This is the one entry point for every event: the upload confirmation step calls it with
    /// [`EventKind::UploadCompleted`] / [`EventKind::UploadRejected`] and its data object.
    pub async fn enqueue<T: Serialize>(&self, kind: EventKind, data: &T) -> Result<Option<String>, EventError> {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let id = format!("evt_{}", ulid::Ulid::from_parts(millis, rand::random::<u128>()).to_string().to_lowercase());
        self.enqueue_as(kind, id, data).await
    }

    /// [`Events::enqueue`] with an id derived from `kind` and `fact` (e.g. an upload's key and
    /// ETag): the same fact enqueued twice (two replicas completing one upload at once) is one
    /// event id, which the receiver's idempotency check sees once.
    pub async fn enqueue_once<T: Serialize>(
        &self,
        kind: EventKind,
        fact: &str,
        data: &T,
    ) -> Result<Option<String>, EventError> {
        self.enqueue_as(kind, event_id_of(kind, fact), data).await
    }

    async fn enqueue_as<T: Serialize>(
        &self,
        kind: EventKind,
        id: String,
        data: &T,
    ) -> Result<Option<String>, EventError> {
        let Some(outbox) = &self.outbox else { return Ok(None) };
        let created_at = jiff::Timestamp::now().round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default();
        let body = serde_json::to_vec(&Envelope { id: &id, kind: kind.name(), created_at, data })?;
        outbox.enqueue(&id, kind.name(), body).await?;
        Ok(Some(id))
    }

    /// The outbox (tests and the operations endpoints).
    pub fn outbox(&self) -> Option<&Arc<Outbox>> {
        self.outbox.as_ref()
    }
}
