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
use crate::negotiate::{AcceptClass, HintClass, Negotiated};
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
    /// The image it was made from ([`image_id`]): a delete drops every variant of it.
    pub image: ImageId,
    pub last_modified: SystemTime,
    pub fetch_ms: f64,
    pub transform_ms: f64,
    pub encode_ms: f64,
    /// `Content-Disposition` and `Last-Modified`, built on the first response and reused by hits.
    pub header_values:
        std::sync::OnceLock<(actix_web::http::header::HeaderValue, actix_web::http::header::HeaderValue)>,
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

/// Which image a variant belongs to: the first 16 bytes of the SHA-256 of the source as
/// [`crate::source::SourceRef::key_string`] spells it (`local:///a/b.jpg`, `s3://bucket/key`).
pub type ImageId = [u8; 16];

/// The [`ImageId`] of a source (as `key_string` spells it).
pub fn image_id(source: &str) -> ImageId {
    let d = Sha256::digest(source.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id
}

/// The edge tag of an image (`Surrogate-Key` / `Cache-Tag` member): `img-{32 hex}`.
pub fn image_tag(id: &ImageId) -> String {
    format!("img-{}", hex::encode(id))
}

#[derive(Serialize)]
struct KeyMaterial<'a> {
    v: u32,
    source: &'a str,
    n: &'a Negotiated,
}

/// The key for a resolved request: the options after negotiation carry the resolved device-pixel
/// geometry (the DPR as resolved from [`crate::negotiate::HintClass`], or `target / w`), never a
/// raw hint value, so hint values that resolve alike share one key and one ETag.
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
            .support_invalidation_closures()
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

    /// The cached variant, if any (no coalescing: the hit path).
    pub async fn get(&self, key: &Key) -> Option<Arc<Variant>> {
        self.inner.as_ref()?.get(key).await
    }

    /// Drops every cached variant of `image` (they stop being served at once; a render of it
    /// already under way when this runs may still be cached afterwards).
    pub fn invalidate_image(&self, image: ImageId) {
        if let Some(c) = &self.inner {
            if let Err(e) = c.invalidate_entries_if(move |_, v| v.image == image) {
                tracing::warn!(error = %e, "variant cache: cannot invalidate an image");
            }
        }
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

/// What a request's memo entry is keyed by: its raw path and the header classes negotiation read
/// (the hints as resolved, so raw values that resolve alike share one entry).
#[derive(Clone, Debug, PartialEq)]
pub struct MemoId {
    pub path: Box<str>,
    pub accept: AcceptClass,
    pub hints: HintClass,
}

/// The front of the request flow, remembered: for a raw path that passed the signature check and
/// parsed, and one Accept class and set of hints, whatever the flow derived from them (options,
/// negotiation, cache key, ETag). A repeated request (a cache hit, most of the traffic) then skips
/// HMAC verification, option parsing, negotiation and key hashing. Only successes are remembered;
/// per-request checks (`exp:`) still run on every request. Entries are looked up by a keyed hash
/// and confirmed by comparing the full [`MemoId`], so a hash collision is a miss, never a wrong
/// answer.
pub struct RequestMemo<T> {
    inner: Option<moka::future::Cache<u64, Arc<(MemoId, T)>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl<T: Send + Sync + 'static> RequestMemo<T> {
    /// At most `entries` requests remembered (0 disables the memo).
    pub fn new(entries: u64) -> RequestMemo<T> {
        let inner = (entries > 0).then(|| moka::future::Cache::builder().max_capacity(entries).build());
        RequestMemo { inner, hasher: Default::default() }
    }

    fn hash(&self, path: &str, accept: AcceptClass, h: &HintClass) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one((path, accept, h.dpr.to_bits(), h.bound, h.width_sent, h.save_data))
    }

    /// The remembered entry for exactly this path, Accept class and hints.
    pub async fn get(&self, path: &str, accept: AcceptClass, hints: &HintClass) -> Option<Arc<(MemoId, T)>> {
        let c = self.inner.as_ref()?;
        let e = c.get(&self.hash(path, accept, hints)).await?;
        (&*e.0.path == path && e.0.accept == accept && e.0.hints == *hints).then_some(e)
    }

    /// Remembers `value` for `id` (replacing whatever had the same hash) and returns it shared.
    pub async fn insert(&self, id: MemoId, value: T) -> Arc<(MemoId, T)> {
        let h = self.hash(&id.path, id.accept, &id.hints);
        let e = Arc::new((id, value));
        if let Some(c) = &self.inner {
            c.insert(h, e.clone()).await;
        }
        e
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

    /// Forgets the original at `key` (a deleted image).
    pub async fn invalidate(&self, key: &str) {
        if let Some(c) = &self.inner {
            c.invalidate(key).await;
        }
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

    fn id(path: &str, accept: AcceptClass, dpr: Option<f64>) -> MemoId {
        MemoId { path: path.into(), accept, hints: HintClass { dpr: dpr.unwrap_or(1.0), ..HintClass::default() } }
    }

    #[tokio::test]
    async fn memo_answers_only_the_exact_request() {
        let m: RequestMemo<u32> = RequestMemo::new(100);
        m.insert(id("/sig/w:100/plain/a.jpg", AcceptClass::Avif, Some(2.0)), 7).await;
        let hints = |dpr: Option<f64>| HintClass { dpr: dpr.unwrap_or(1.0), ..HintClass::default() };
        let got = m.get("/sig/w:100/plain/a.jpg", AcceptClass::Avif, &hints(Some(2.0))).await;
        assert_eq!(got.map(|e| e.1), Some(7));
        // Another path, Accept class or hint is another request.
        assert!(m.get("/sig/w:100/plain/b.jpg", AcceptClass::Avif, &hints(Some(2.0))).await.is_none());
        assert!(m.get("/sig/w:100/plain/a.jpg", AcceptClass::Webp, &hints(Some(2.0))).await.is_none());
        assert!(m.get("/sig/w:100/plain/a.jpg", AcceptClass::Avif, &hints(Some(3.0))).await.is_none());
        assert!(m.get("/sig/w:100/plain/a.jpg", AcceptClass::Avif, &hints(None)).await.is_none());
    }

    #[tokio::test]
    async fn memo_confirms_the_full_id_behind_the_hash() {
        // An entry stored under the hash of one request but holding another's id (what a hash
        // collision would look like) is a miss, never a wrong answer.
        let m: RequestMemo<u32> = RequestMemo::new(100);
        let h = m.hash("/a", AcceptClass::Legacy, &HintClass::default());
        if let Some(c) = &m.inner {
            c.insert(h, Arc::new((id("/b", AcceptClass::Legacy, None), 1))).await;
        }
        assert!(m.get("/a", AcceptClass::Legacy, &HintClass::default()).await.is_none());
        assert_eq!(m.get("/b", AcceptClass::Legacy, &HintClass::default()).await.map(|e| e.1), None);
    }

    #[tokio::test]
    async fn memo_is_keyed_on_resolved_hints() {
        // Issue #16: 100 distinct DPR values for one URL share the 5 entries of their resolved
        // DPRs instead of evicting other URLs' entries.
        use crate::negotiate::{Hints, NegotiateSettings};
        let s = NegotiateSettings { max_dpr: 3.0, ladder: vec![16, 640, 1200, 3840], ect: true };
        let m: RequestMemo<u32> = RequestMemo::new(1000);
        for i in 0..100 {
            let h = Hints { dpr: Some(1.0 + 2.0 * f64::from(i) / 99.0), ..Hints::default() }.class(&s);
            if m.get("/a", AcceptClass::Avif, &h).await.is_none() {
                m.insert(MemoId { path: "/a".into(), accept: AcceptClass::Avif, hints: h }, i).await;
            }
        }
        let c = m.inner.as_ref().unwrap();
        c.run_pending_tasks().await;
        assert_eq!(c.entry_count(), 5);
    }

    #[tokio::test]
    async fn memo_off_remembers_nothing_and_stays_bounded() {
        let off: RequestMemo<u32> = RequestMemo::new(0);
        let e = off.insert(id("/a", AcceptClass::Legacy, None), 1).await;
        assert_eq!(e.1, 1);
        assert!(off.get("/a", AcceptClass::Legacy, &HintClass::default()).await.is_none());
        let small: RequestMemo<u32> = RequestMemo::new(50);
        for i in 0..2000 {
            small.insert(id(&format!("/p{i}"), AcceptClass::Legacy, None), i).await;
        }
        let c = small.inner.as_ref().unwrap();
        c.run_pending_tasks().await;
        assert!(c.entry_count() <= 50, "{} entries", c.entry_count());
    }

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
            image: [0; 16],
            last_modified: SystemTime::now(),
            fetch_ms: 0.0,
            transform_ms: 0.0,
            encode_ms: 0.0,
            header_values: Default::default(),
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
    async fn invalidating_an_image_drops_all_its_variants_only() {
        let c = VariantCache::new(10_000_000, Duration::from_secs(60));
        let (a, b) = (image_id("local:///uploads/a.jpg"), image_id("local:///uploads/b.jpg"));
        assert_ne!(a, b);
        for (i, img) in [(1u8, a), (2, a), (3, a), (4, b)] {
            let _ = c.get_or_make([i; 32], async move { Ok(Variant { image: img, ..variant(10) }) }).await;
        }
        c.invalidate_image(a);
        for i in 1..=3u8 {
            assert!(c.get(&[i; 32]).await.is_none(), "variant {i} of the deleted image");
        }
        assert!(c.get(&[4; 32]).await.is_some());
        assert_eq!(image_tag(&a).len(), 36);
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
