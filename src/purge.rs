//! Edge purges: when an image is deleted, every configured Varnish edge is sent
//! `BAN /` with `X-Imago-Ban: img-{id}` and `X-Imago-Purge-Token` (the shipped VCL,
//! `docker/varnish/default.vcl`, accepts it only from its purger ACL with the right token, and
//! bans every object whose `Surrogate-Key` holds the tag: all variants, Accept classes and
//! hints of the image at once). Fastly and Cloudflare purge by the same tags through their APIs
//! (`Surrogate-Key` / `Cache-Tag`; docs/edge-purge.md).

use std::time::Duration;

use crate::config::EventSettings;

/// The purge client and the edges it purges. `Debug` never shows the token.
pub struct Purger {
    client: Option<reqwest::Client>,
    /// `imago_edge_purges_total{result}`.
    counter: Option<prometheus::IntCounterVec>,
    varnish: Vec<url::Url>,
    token: String,
}

/// What purging one image did at one edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeOutcome {
    pub edge: String,
    /// The edge's HTTP status, or the transport error.
    pub result: Result<u16, String>,
}

impl Purger {
    /// Edges are the operator's configuration (trusted, like the object store's endpoint):
    /// private addresses allowed, redirects never followed, environment proxies ignored.
    pub fn new(s: &EventSettings) -> Result<Purger, String> {
        let client = if s.varnish.is_empty() {
            None
        } else {
            Some(
                reqwest::Client::builder()
                    .timeout(s.timeout.min(Duration::from_secs(10)))
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .build()
                    .map_err(|e| format!("purge client: {e}"))?,
            )
        };
        Ok(Purger {
            client,
            counter: None,
            varnish: s.varnish.clone(),
            token: s.purge_token.clone().unwrap_or_default(),
        })
    }

    /// Counts purges in `counter` (label `result`: `ok`, `failed`).
    pub fn with_counter(mut self, counter: prometheus::IntCounterVec) -> Purger {
        self.counter = Some(counter);
        self
    }

    /// Bans `tag` at every Varnish edge, all at once; a failure is logged and reported, never
    /// retried here (the edge copy then lives until its TTL).
    pub async fn purge_tag(&self, tag: &str) -> Vec<PurgeOutcome> {
        let Some(client) = &self.client else { return Vec::new() };
        let sends = self.varnish.iter().map(|edge| async move {
            let r = client
                .request(reqwest::Method::from_bytes(b"BAN").unwrap_or(reqwest::Method::DELETE), edge.clone())
                .header("x-imago-ban", tag)
                .header("x-imago-purge-token", &self.token)
                .send()
                .await;
            let result = match r {
                Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
                Ok(r) => Err(format!("answered {}", r.status().as_u16())),
                Err(e) => Err(e.without_url().to_string()),
            };
            let host = edge.host_str().unwrap_or_default().to_string();
            if let Err(e) = &result {
                tracing::warn!(edge = %host, tag, error = %e, "edge purge failed");
            }
            if let Some(c) = &self.counter {
                c.with_label_values(&[if result.is_ok() { "ok" } else { "failed" }]).inc();
            }
            PurgeOutcome { edge: host, result: result.map_err(|e| e.to_string()) }
        });
        futures_util::future::join_all(sends).await
    }
}

impl std::fmt::Debug for Purger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Purger").field("varnish", &self.varnish.len()).finish()
    }
}

/// Deletions shared by the replicas: `deleted/{unix ms}-{image id hex}` in the outbox's store
/// (body: the source as `key_string` spells it). The replica serving a `DELETE` writes one; every
/// replica reads the directory every `IMAGO_DELETE_SYNC_MS` and drops those images from its
/// memory, so no replica keeps serving (and an edge re-caching) a deleted image until its TTL.
/// Tombstones older than the variant cache's TTL (plus a minute) are removed by whoever sees them.
pub struct Tombstones {
    store: crate::events::Store,
    cache: crate::cache::VariantCache,
    sources: crate::cache::SourceCache,
    keep: Duration,
}

/// Marks a tombstone applied twice in the `seen` set of [`Tombstones::apply`].
const AGAIN: &str = "#again";

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Tombstones {
    pub fn new(
        store: crate::events::Store,
        cache: crate::cache::VariantCache,
        sources: crate::cache::SourceCache,
        cache_ttl: Duration,
    ) -> Tombstones {
        Tombstones { store, cache, sources, keep: cache_ttl + Duration::from_secs(60) }
    }

    /// Records that the image at `source` was deleted.
    pub async fn record(&self, source: &str) -> Result<(), crate::storage::StorageError> {
        let id = crate::cache::image_id(source);
        let name = format!("deleted/{:013}-{}", now_ms(), hex::encode(id));
        self.store.put(&name, source.as_bytes().to_vec()).await
    }

    /// One pass: drops from memory every image tombstoned since `seen` was filled, and removes
    /// expired tombstones. `seen` keeps the names already applied (pruned to those still listed).
    pub async fn apply(&self, seen: &mut std::collections::HashSet<String>) -> usize {
        let names = match self.store.list("deleted").await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "delete sync: cannot list tombstones");
                return 0;
            }
        };
        let expired_before = now_ms().saturating_sub(self.keep.as_millis() as u64);
        let mut applied = 0;
        for name in &names {
            let Some((ms, hex_id)) = name.split_once('-') else { continue };
            let (Ok(ms), Ok(id)) = (ms.parse::<u64>(), hex::decode(hex_id)) else { continue };
            if ms < expired_before {
                let _ = self.store.delete(&format!("deleted/{name}")).await;
                continue;
            }
            let again = format!("{name}{AGAIN}");
            if seen.contains(&again) {
                continue;
            }
            // The original leaves the source cache before the variants leave the variant cache:
            // the other order let a request between the two render the image again from the
            // cached original (and cache that variant for good). A render that was already
            // running may still insert its variant after this pass: the next pass drops the
            // image's variants once more.
            if !seen.contains(name) {
                if let Ok(Some(source)) = self.store.get(&format!("deleted/{name}")).await {
                    self.sources.invalidate(&String::from_utf8_lossy(&source)).await;
                }
            }
            if let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) {
                self.cache.invalidate_image(id);
            }
            if seen.insert(name.clone()) {
                applied += 1;
            } else {
                seen.insert(again);
            }
        }
        seen.retain(|n| {
            let base = n.strip_suffix(AGAIN).unwrap_or(n);
            names.iter().any(|m| m == base)
        });
        applied
    }

    /// Applies tombstones every `every` on the current runtime (or a thread of its own).
    pub fn spawn(self: std::sync::Arc<Self>, every: Duration) -> Result<(), String> {
        let run = async move {
            let mut seen = std::collections::HashSet::new();
            loop {
                tokio::time::sleep(every).await;
                self.apply(&mut seen).await;
            }
        };
        crate::telemetry::spawn_background("imago-delete-sync", run)
    }
}
