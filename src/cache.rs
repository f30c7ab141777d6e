//! In-memory cache of finished variants (moka, weighted by bytes, with TTL) with request
//! coalescing: concurrent misses for one key run one fetch and one transform.
//!
//! Keys are derived from the *resolved* request (source, options after negotiation, Accept
//! class, Save-Data, pipeline version), never from raw header strings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::negotiate::Negotiated;
use crate::options::Format;
use crate::transform::PIPELINE_VERSION;

/// A finished, cacheable response body and what it is.
#[derive(Debug)]
pub struct Variant {
    pub bytes: Bytes,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub quality: u8,
    pub source_format: &'static str,
    pub source_bytes: u64,
    /// The original bytes were served (they were not larger).
    pub original: bool,
    pub last_modified: SystemTime,
    pub fetch_ms: f64,
    pub transform_ms: f64,
    pub encode_ms: f64,
}

/// How a response was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Hit,
    Miss,
    Coalesced,
    NotModified,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Coalesced => "coalesced",
            Outcome::NotModified => "not_modified",
        }
    }
}

/// A cache key: SHA-256 of the resolved request.
pub type Key = [u8; 32];

#[derive(Serialize)]
struct KeyMaterial<'a> {
    v: u32,
    source: &'a str,
    n: &'a Negotiated,
}

/// The key for a resolved request.
pub fn key(source: &str, n: &Negotiated) -> Key {
    let mut n = n.clone();
    // Vary and the target width are derived from the options; expiry does not change pixels.
    n.vary = Default::default();
    n.options.expires = None;
    let material = serde_json::to_vec(&KeyMaterial { v: PIPELINE_VERSION, source, n: &n }).unwrap_or_default();
    Sha256::digest(&material).into()
}

/// The variant cache.
#[derive(Clone)]
pub struct VariantCache {
    inner: Option<moka::future::Cache<Key, Arc<Variant>>>,
}

impl VariantCache {
    /// `capacity_bytes` 0 disables caching (and coalescing).
    pub fn new(capacity_bytes: u64, ttl: Duration) -> VariantCache {
        if capacity_bytes == 0 {
            return VariantCache { inner: None };
        }
        let c = moka::future::Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|_k: &Key, v: &Arc<Variant>| u32::try_from(v.bytes.len() + 256).unwrap_or(u32::MAX))
            .time_to_live(ttl)
            .build();
        VariantCache { inner: Some(c) }
    }

    /// The cached variant, or the result of `make` (run once for all concurrent callers).
    /// Errors are never cached.
    pub async fn get_or_make<F>(&self, key: Key, make: F) -> Result<(Arc<Variant>, Outcome), Arc<Error>>
    where
        F: std::future::Future<Output = Result<Variant, Error>>,
    {
        let Some(c) = &self.inner else {
            return make.await.map(|v| (Arc::new(v), Outcome::Miss)).map_err(Arc::new);
        };
        if let Some(v) = c.get(&key).await {
            return Ok((v, Outcome::Hit));
        }
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let v = c
            .try_get_with(key, async move {
                flag.store(true, Ordering::SeqCst);
                make.await.map(Arc::new)
            })
            .await?;
        Ok((v, if ran.load(Ordering::SeqCst) { Outcome::Miss } else { Outcome::Coalesced }))
    }

    /// Bytes held (approximate, after pending maintenance).
    pub async fn weighted_size(&self) -> u64 {
        match &self.inner {
            Some(c) => {
                c.run_pending_tasks().await;
                c.weighted_size()
            }
            None => 0,
        }
    }
}

/// A small cache of original bytes (so several sizes of one image fetch it once), coalescing
/// concurrent fetches of one source too.
#[derive(Clone)]
pub struct SourceCache {
    inner: Option<moka::future::Cache<String, crate::source::Fetched>>,
}

impl SourceCache {
    pub fn new(capacity_bytes: u64, ttl: Duration) -> SourceCache {
        if capacity_bytes == 0 {
            return SourceCache { inner: None };
        }
        let c = moka::future::Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|k: &String, v: &crate::source::Fetched| {
                u32::try_from(v.bytes.len() + k.len()).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            .build();
        SourceCache { inner: Some(c) }
    }

    /// The cached bytes for `key`, or the result of `fetch` (once for concurrent callers).
    /// The flag tells whether this call fetched.
    pub async fn get_or_fetch<F>(&self, key: &str, fetch: F) -> Result<(crate::source::Fetched, bool), Arc<Error>>
    where
        F: std::future::Future<Output = Result<crate::source::Fetched, Error>>,
    {
        let Some(c) = &self.inner else {
            return fetch.await.map(|f| (f, true)).map_err(Arc::new);
        };
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let f = c
            .try_get_with(key.to_string(), async move {
                flag.store(true, Ordering::SeqCst);
                fetch.await
            })
            .await?;
        Ok((f, ran.load(Ordering::SeqCst)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(n: usize) -> Variant {
        Variant {
            bytes: Bytes::from(vec![0u8; n]),
            format: Format::Jpeg,
            width: 1,
            height: 1,
            quality: 80,
            source_format: "jpeg",
            source_bytes: 10,
            original: false,
            last_modified: SystemTime::now(),
            fetch_ms: 0.0,
            transform_ms: 0.0,
            encode_ms: 0.0,
        }
    }

    #[tokio::test]
    async fn coalesces_and_hits() {
        let c = VariantCache::new(10_000_000, Duration::from_secs(60));
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (c, runs) = (c.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                c.get_or_make([1; 32], async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(variant(100))
                })
                .await
                .map(|(_, o)| o)
                .map_err(|_| ())
            }));
        }
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap().unwrap());
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Miss).count(), 1);
        let (_, o) = c.get_or_make([1; 32], async { Ok(variant(1)) }).await.unwrap();
        assert_eq!(o, Outcome::Hit);
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_capacity_bounds() {
        let c = VariantCache::new(50_000, Duration::from_secs(60));
        assert!(c.get_or_make([2; 32], async { Err(Error::NotFound) }).await.is_err());
        let (_, o) = c.get_or_make([2; 32], async { Ok(variant(10)) }).await.unwrap();
        assert_eq!(o, Outcome::Miss);
        for i in 0..100u8 {
            let _ = c.get_or_make([i; 32], async { Ok(variant(5_000)) }).await;
        }
        assert!(c.weighted_size().await <= 50_000);
    }
}
