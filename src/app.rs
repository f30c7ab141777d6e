//! The composition root: builds every service from the [`Config`] once, at start, and stops them
//! in order. It knows no routes (that is `http`); handlers reach the services through
//! [`AppState`], the image flow through [`AppState::flow`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;

use crate::analytics::Analytics;
use crate::auth::ApiKeys;
use crate::cache::{self, VariantCache};
use crate::config::Config;
use crate::image::{Flow, Prepared};
use crate::metrics::Metrics;
use crate::negotiate::NegotiateSettings;
use crate::options::Presets;
use crate::respond::RespondSettings;
use crate::source::Sources;
use crate::storage::Storage;
use crate::transform::{EncodeSettings, Workers};
use crate::upload::Uploads;

/// What [`AppState::image_deleted`] did.
#[derive(Debug)]
pub struct ImageDeleted {
    pub tag: String,
    pub purges: Vec<crate::purge::PurgeOutcome>,
    /// The `image.deleted` event id (none: webhooks off or the outbox failed).
    pub event: Option<String>,
}

/// Everything handlers share.
pub struct AppState {
    pub cfg: Arc<Config>,
    pub presets: Presets,
    pub sources: Sources,
    pub cache: VariantCache,
    pub source_cache: cache::SourceCache,
    /// Verified requests, remembered (see [`cache::RequestMemo`]).
    pub memo: cache::RequestMemo<Prepared>,
    pub workers: Workers,
    pub enc: Arc<EncodeSettings>,
    pub neg: NegotiateSettings,
    pub respond: RespondSettings,
    pub metrics: Metrics,
    pub shutting_down: AtomicBool,
    /// `IMAGO_API_KEYS` for the analytics routes (uploads keep theirs, with the quotas of src/quota/); a
    /// non-admin key's report holds only its tenant's images ([`Uploads::event_of`]).
    pub api_keys: ApiKeys,
    pub uploads: Uploads,
    /// The local root and the object-store client (src/storage/), built once.
    pub storage: Storage,
    /// Request events, and the metrics listener (src/analytics/).
    pub analytics: Analytics,
    /// Webhook events through the durable outbox (src/events/).
    pub events: crate::events::Events,
    /// Edge purges on delete (src/purge.rs).
    pub purger: Arc<crate::purge::Purger>,
    /// Deletions shared with the other replicas (`None`: `IMAGO_DELETE_SYNC_MS=0`).
    pub tombstones: Option<Arc<crate::purge::Tombstones>>,
    /// The watermark and the fallback image (src/auxiliary.rs).
    pub aux: crate::auxiliary::Auxiliary,
}

impl AppState {
    pub fn new(cfg: Config) -> Result<AppState, String> {
        crate::transform::init(cfg.raw.vips_concurrency)?;
        let r = &cfg.raw;
        let enc = EncodeSettings::from_config(r);
        let aux = crate::auxiliary::Auxiliary::new(&cfg.media, &enc)?;
        let metrics = Metrics::new();
        metrics.workers.set(cfg.workers as i64);
        let storage = Storage::new(&cfg)?;
        let sources = Sources::new(&cfg, storage.clone())?;
        let analytics = Analytics::start(&cfg, &metrics, &storage)?;
        let events = crate::events::Events::start(&cfg, &storage, &metrics)?;
        let uploads = Uploads::with_storage(&cfg, storage.clone())?.with_events(events.clone());
        uploads.quotas.register(&metrics.registry)?;
        let purger = Arc::new(crate::purge::Purger::new(&cfg.events)?.with_counter(metrics.edge_purges.clone()));
        let cache = VariantCache::new(r.cache_size_mb * 1024 * 1024, Duration::from_secs(r.cache_ttl_secs));
        let source_cache =
            cache::SourceCache::new(r.source_cache_mb * 1024 * 1024, Duration::from_secs(r.cache_ttl_secs.min(600)));
        let tombstones = match cfg.events.delete_sync {
            Some(every) => {
                let t = Arc::new(crate::purge::Tombstones::new(
                    crate::events::store_for(&cfg, &storage)?,
                    cache.clone(),
                    source_cache.clone(),
                    Duration::from_secs(r.cache_ttl_secs),
                ));
                t.clone().spawn(every)?;
                Some(t)
            }
            None => None,
        };
        Ok(AppState {
            presets: Presets { map: r.presets.clone(), only: r.presets_only },
            sources,
            cache,
            source_cache,
            memo: cache::RequestMemo::new(r.request_memo_entries),
            workers: Workers::new(
                cfg.workers,
                cfg.queue_size,
                Duration::from_millis(r.queue_timeout_ms),
                Duration::from_millis(r.transform_timeout_ms),
            )
            .with_memory_limit(cfg.memory_limit.bytes()),
            enc: Arc::new(enc),
            neg: NegotiateSettings { max_dpr: r.max_dpr, ladder: cfg.width_ladder.clone(), ect: r.ect },
            respond: RespondSettings {
                cache_control: header::HeaderValue::from_str(&r.cache_control)
                    .map_err(|_| "IMAGO_CACHE_CONTROL: not a valid header value".to_string())?,
                debug_headers: r.debug_headers,
            },
            metrics,
            shutting_down: AtomicBool::new(false),
            api_keys: ApiKeys::new(&cfg.uploads.api_keys),
            uploads,
            storage,
            analytics,
            events,
            purger,
            tombstones,
            aux,
            cfg: Arc::new(cfg),
        })
    }

    /// The image flow's view of the services.
    pub fn flow(&self) -> Flow<'_> {
        Flow {
            cfg: &self.cfg,
            presets: &self.presets,
            sources: &self.sources,
            cache: &self.cache,
            source_cache: &self.source_cache,
            memo: &self.memo,
            workers: &self.workers,
            enc: &self.enc,
            neg: &self.neg,
            respond: &self.respond,
            metrics: &self.metrics,
            shutting_down: &self.shutting_down,
            analytics: self.analytics.enabled(),
            uploads: &self.uploads,
            aux: &self.aux,
        }
    }

    /// After `DELETE /v1/images/{key}` removed the original at `key`: its variants leave this
    /// replica's memory and its original the source cache, a tombstone tells the other replicas
    /// to do the same, the edges are purged by the image's tag (and again once the other
    /// replicas have read the tombstone), and `image.deleted` is recorded in the outbox (before
    /// the 204 is sent).
    /// `purge_at`: when a soft-deleted original is purged (`None`: it is gone already).
    pub async fn image_deleted(&self, key: &str, purge_at: Option<&str>) -> ImageDeleted {
        let source = self.uploads.source_of(key);
        let image = cache::image_id(&source);
        // The original first: a request between the two would render the image again from it.
        self.source_cache.invalidate(&source).await;
        self.cache.invalidate_image(image);
        if let Some(t) = &self.tombstones {
            if let Err(e) = t.record(&source).await {
                tracing::error!(error = %e, key, "deletion tombstone not written: other replicas keep the image in memory until its TTL");
            }
        }
        let tag = cache::image_tag(&image);
        let purges = self.purger.purge_tag(&tag).await;
        // Another replica may re-fill an edge from its memory until it has read the tombstone:
        // ban once more after that.
        if let (Some(every), true) = (self.cfg.events.delete_sync, !purges.is_empty()) {
            let (purger, again) = (self.purger.clone(), tag.clone());
            tokio::spawn(async move {
                tokio::time::sleep(every * 2 + Duration::from_secs(1)).await;
                purger.purge_tag(&again).await;
            });
        }
        let tenant = self.uploads.tenant_of_source(&source).map(str::to_string);
        let data = serde_json::json!({ "key": key, "tenant": tenant, "source": source, "image_tag": tag, "purge_at": purge_at });
        let event = match self.events.enqueue(crate::events::EventKind::ImageDeleted, &data).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, key, "image.deleted could not be recorded in the outbox");
                None
            }
        };
        ImageDeleted { tag, purges, event }
    }

    /// After the HTTP drain: writes buffered analytics events and stops the metrics listener.
    pub async fn shutdown(&self) -> crate::analytics::Flushed {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.analytics.shutdown().await
    }
}
