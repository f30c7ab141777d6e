//! The event buffer between the request path and the writer task, the writer itself, and the
//! serialiser.
//!
//! Cost matters here: an event is recorded for every image request, including cache hits that
//! take a few microseconds of CPU. The request path therefore does no formatting at all: it
//! moves a small [`Record`] (numbers, static strings and one `Arc` to the per-URL [`Subject`]
//! that the request memo already holds) into a buffer owned by its own thread (a [`Shard`]:
//! its lock is only ever contended by the writer swapping it out). The writer takes every
//! shard's buffer in O(1) per shard, turns the records into JSON lines on a blocking thread
//! (the per-URL fields are serialised once per [`Subject`] and copied afterwards), compresses
//! them and hands the emptied buffers back, so steady state allocates nothing per event.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use prometheus::{IntCounter, IntGauge};
use tokio::sync::{mpsc, oneshot, Notify};

use super::json::{rfc3339_bytes, subject_fields, VariantSpec};
use super::store::{self, Store};
use super::{Event, Flushed};

/// An hour partition key: `YYYY-MM-DDTHH` (the first 13 bytes of `ts`).
pub type PartKey = [u8; 13];

/// One hour partition's events, compressed: the body of one file.
pub struct Encoded {
    pub key: PartKey,
    /// Chosen at the first attempt and kept for retries, so a write that succeeded without
    /// our knowing is overwritten rather than duplicated.
    pub name: Option<String>,
    pub body: Vec<u8>,
    pub events: usize,
}

pub enum Ctl {
    Flush(oneshot::Sender<Flushed>),
    Stop(oneshot::Sender<Flushed>),
}

/// Analytics counters (registered in the server's registry).
#[derive(Clone)]
pub struct Counters {
    pub dropped: IntCounter,
    pub written: IntCounter,
    pub files: IntCounter,
    pub failures: IntCounter,
    pub buffered: IntGauge,
}

/// Whatever holds a request's [`Subject`] (the request-memo entry, so that a cache hit's record
/// takes the `Arc` the hit already holds instead of copying anything).
pub trait SubjectOf: Send + Sync {
    fn subject(&self) -> &Subject;
}

impl SubjectOf for Subject {
    fn subject(&self) -> &Subject {
        self
    }
}

/// What a request's URL resolved to, for its events: made once per request-memo entry,
/// serialised once by the writer.
pub struct Subject {
    /// The image key (`SourceRef::key()`).
    pub key: Arc<str>,
    /// `local`, `s3` or `http`.
    pub source: &'static str,
    /// Absent when the request failed before negotiation (e.g. a source not allow-listed).
    pub neg: Option<NegFacts>,
    json: OnceLock<Box<[u8]>>,
}

/// The negotiated facts of a [`Subject`].
#[derive(Clone, Copy, Debug)]
pub struct NegFacts {
    pub variant: VariantSpec,
    /// The format was negotiated from `Accept` (no `f:`/extension in the URL).
    pub negotiated: bool,
    pub accept: &'static str,
    pub target_width: u32,
    pub dpr: f64,
    pub save_data: bool,
}

impl Subject {
    pub fn new(key: Arc<str>, source: &'static str, neg: Option<NegFacts>) -> Subject {
        Subject { key, source, neg, json: OnceLock::new() }
    }

    /// `,"key":…,"device":…` (the per-URL fields of a line), made on first use.
    pub(super) fn json(&self) -> &[u8] {
        self.json.get_or_init(|| {
            let mut out = Vec::with_capacity(256);
            subject_fields(&mut out, Some(self));
            out.into_boxed_slice()
        })
    }
}

/// What a response was made from (copied from the cached variant: the record must not keep
/// the variant's bytes alive).
#[derive(Clone, Copy, Debug)]
pub struct Out {
    pub format: &'static str,
    pub source_format: &'static str,
    pub width: u32,
    pub height: u32,
    pub source_bytes: u64,
}

/// One image request, as the request path records it.
pub struct Record {
    pub at: SystemTime,
    pub method: actix_web::http::Method,
    pub request_id: Option<crate::telemetry::RequestId>,
    pub subject: Option<Arc<dyn SubjectOf>>,
    pub out: Option<Out>,
    /// fetch, transform and encode milliseconds (a miss only).
    pub timings: Option<[f64; 3]>,
    pub status: u16,
    pub error: Option<&'static str>,
    /// Body bytes sent (0 for HEAD and 304).
    pub bytes: u64,
    pub cache: Option<&'static str>,
    pub latency_ms: f64,
    pub referrer_host: Option<Box<str>>,
}

/// What the buffer holds: a request's record, or a ready event (`Analytics::send`).
// The record is the common case and must not allocate; a ready event is rare.
#[allow(clippy::large_enum_variant)]
pub enum Item {
    Request(Record),
    Event(Box<Event>),
}

/// One thread's buffer.
#[derive(Default)]
struct Shard {
    items: Mutex<ShardItems>,
}

#[derive(Default)]
struct ShardItems {
    items: Vec<Item>,
    /// Room this shard has reserved in [`Shared::reserved`] and not used yet.
    budget: usize,
}

/// What the request path and the writer share.
pub struct Shared {
    /// Tells this buffer's shards apart in a thread's list (several servers may share a process).
    id: usize,
    shards: Mutex<Vec<Arc<Shard>>>,
    /// Items buffered in all shards plus the shards' unused budgets (at most `cap`). Shards
    /// reserve room in blocks of [`Shared::block`] events, so this shared counter is written
    /// once per block, not once per request.
    reserved: AtomicUsize,
    block: usize,
    closed: AtomicBool,
    cap: usize,
    flush_events: usize,
    wake: Notify,
    pub ctl: mpsc::UnboundedSender<Ctl>,
    /// Interned once per process.
    pub instance: &'static str,
    pub dropped: IntCounter,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

enum Pushed {
    Kept,
    /// Kept, and the buffer reached `flush_events`: wake the writer.
    KeptAndDue,
    Dropped,
}

thread_local! {
    /// This thread's shard of each live [`Shared`], by id.
    static SHARDS: RefCell<Vec<(usize, Arc<Shard>)>> = const { RefCell::new(Vec::new()) };
}

impl Shared {
    pub fn new(
        cap: usize,
        flush_events: usize,
        instance: &'static str,
        dropped: IntCounter,
    ) -> (Arc<Shared>, mpsc::UnboundedReceiver<Ctl>) {
        let (ctl, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::new(Vec::new()),
            reserved: AtomicUsize::new(0),
            // Exact (one at a time) for small limits, as tests and tiny deployments set them.
            block: (cap.min(flush_events) / 64).clamp(1, 64),
            closed: AtomicBool::new(false),
            cap,
            flush_events,
            wake: Notify::new(),
            ctl,
            instance,
            dropped,
        };
        (Arc::new(shared), rx)
    }

    /// Buffers an item in this thread's shard; drops and counts it when the buffer is full or
    /// closed. Never waits for the writer.
    pub fn push(&self, item: Item) {
        match self.push_local(item) {
            Pushed::Kept => {}
            Pushed::KeptAndDue => self.wake.notify_one(),
            Pushed::Dropped => self.dropped.inc(),
        }
    }

    /// Reserves up to a block of room; whether the flush threshold was crossed by it.
    fn reserve(&self) -> Option<(usize, bool)> {
        let mut got = 0;
        let before = self
            .reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                got = self.block.min(self.cap.saturating_sub(r));
                (got > 0).then_some(r + got)
            })
            .ok()?;
        // Items not yet taken, counting reserved room (early by at most a block per shard).
        Some((got, before < self.flush_events && before + got >= self.flush_events))
    }

    fn push_local(&self, item: Item) -> Pushed {
        SHARDS.with(|list| {
            let Ok(mut list) = list.try_borrow_mut() else { return Pushed::Dropped };
            let i = match list.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    // Forget the shards of buffers that are gone (only this thread holds them).
                    list.retain(|(_, s)| Arc::strong_count(s) > 1);
                    let shard = Arc::new(Shard::default());
                    match self.shards.lock() {
                        Ok(mut all) => all.push(shard.clone()),
                        Err(_) => return Pushed::Dropped,
                    }
                    list.push((self.id, shard));
                    list.len() - 1
                }
            };
            let Ok(mut shard) = list[i].1.items.lock() else { return Pushed::Dropped };
            // Checked under the shard's lock: `take(close)` sets the flag before it takes the
            // shard, so an item is either taken by that last flush or refused here.
            if self.closed.load(Ordering::SeqCst) {
                return Pushed::Dropped;
            }
            let mut due = false;
            if shard.budget == 0 {
                match self.reserve() {
                    Some((got, crossed)) => {
                        shard.budget = got;
                        due = crossed;
                    }
                    None => return Pushed::Dropped,
                }
            }
            shard.budget -= 1;
            shard.items.push(item);
            if due {
                Pushed::KeptAndDue
            } else {
                Pushed::Kept
            }
        })
    }

    /// Takes every shard's items (and, with `close`, refuses items from now on), swapping in
    /// the emptied buffers of `spare`.
    fn take(&self, close: bool, spare: &mut Vec<Vec<Item>>) -> Vec<Vec<Item>> {
        if close {
            self.closed.store(true, Ordering::SeqCst);
        }
        let shards = match self.shards.lock() {
            Ok(all) => all.clone(),
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        for s in shards {
            let Ok(mut shard) = s.items.lock() else { continue };
            if close {
                // A closed buffer takes nothing more: give the unused room back too.
                self.reserved.fetch_sub(std::mem::take(&mut shard.budget), Ordering::Relaxed);
            }
            if shard.items.is_empty() {
                continue;
            }
            let mut full = spare.pop().unwrap_or_default();
            std::mem::swap(&mut shard.items, &mut full);
            drop(shard);
            self.reserved.fetch_sub(full.len(), Ordering::Relaxed);
            out.push(full);
        }
        out
    }
}

/// Lines are compressed in chunks of this size, so they stay in the CPU's cache between being
/// written and being compressed.
const CHUNK: usize = 128 * 1024;

/// A partition being encoded.
struct PartEncoder {
    enc: store::Encoder,
    chunk: Vec<u8>,
    events: usize,
}

impl PartEncoder {
    fn drain_chunk(&mut self) -> Result<(), String> {
        let r = self.enc.write(&self.chunk);
        self.chunk.clear();
        r
    }
}

/// Serialises taken items into hour partitions and compresses each (one file body per
/// partition), emptying the item buffers for reuse. A partition that fails to encode is
/// returned as an error with its event count.
fn encode(batches: &mut [Vec<Item>], instance: &str, codec: store::Codec) -> Vec<Result<Encoded, (String, usize)>> {
    let mut parts: BTreeMap<PartKey, Result<PartEncoder, (String, usize)>> = BTreeMap::new();
    let mut scratch = Vec::new();
    for batch in batches.iter_mut() {
        for item in batch.drain(..) {
            let (key, ts) = match &item {
                Item::Request(r) => {
                    let ts = rfc3339_bytes(r.at);
                    (hour_key(&ts), Some(ts))
                }
                Item::Event(e) => {
                    scratch.clear();
                    if serde_json::to_writer(&mut scratch, e).is_err() {
                        continue;
                    }
                    scratch.push(b'\n');
                    (store::line_partition(&scratch).unwrap_or(*b"1970-01-01T00"), None)
                }
            };
            let part = parts.entry(key).or_insert_with(|| {
                store::Encoder::new(codec)
                    .map(|enc| PartEncoder { enc, chunk: Vec::with_capacity(CHUNK + 4096), events: 0 })
                    .map_err(|e| (e, 0))
            });
            let p = match part {
                Ok(p) => p,
                Err((_, n)) => {
                    *n += 1;
                    continue;
                }
            };
            match (&item, ts) {
                // Written straight into the partition's chunk.
                (Item::Request(r), Some(ts)) => {
                    r.write(&mut p.chunk, instance, &ts);
                    p.chunk.push(b'\n');
                }
                _ => p.chunk.extend_from_slice(&scratch),
            }
            p.events += 1;
            if p.chunk.len() >= CHUNK {
                if let Err(e) = p.drain_chunk() {
                    *part = Err((e, p.events));
                }
            }
        }
    }
    parts
        .into_iter()
        .map(|(key, part)| {
            let mut p = part?;
            p.drain_chunk().map_err(|e| (e.clone(), p.events))?;
            let events = p.events;
            let body = p.enc.finish().map_err(|e| (e, events))?;
            Ok(Encoded { key, name: None, body, events })
        })
        .collect()
}

fn hour_key(ts: &[u8; 24]) -> PartKey {
    let mut k = [0u8; 13];
    k.copy_from_slice(&ts[..13]);
    k
}

/// The background writer task.
pub struct Writer {
    pub ctl: mpsc::UnboundedReceiver<Ctl>,
    pub shared: Arc<Shared>,
    pub store: Store,
    pub counters: Counters,
    pub every: Duration,
    pub cap: usize,
    /// Files whose write failed, retried at the next flush (oldest first).
    pub pending: Vec<Encoded>,
    pub pending_events: usize,
    /// Emptied shard buffers, swapped back in at the next flush.
    pub spare: Vec<Vec<Item>>,
    pub codec: store::Codec,
}

impl Writer {
    pub async fn run(mut self) {
        let mut next = tokio::time::Instant::now() + self.every;
        loop {
            let reply = tokio::select! {
                _ = tokio::time::sleep_until(next) => None,
                _ = self.shared.wake.notified() => None,
                c = self.ctl.recv() => match c {
                    Some(c) => Some(c),
                    // Every handle is gone: write what is left and end.
                    None => {
                        self.flush(3, true).await;
                        return;
                    }
                },
            };
            match reply {
                None => {
                    self.flush(1, false).await;
                }
                Some(Ctl::Flush(tx)) => {
                    let f = self.flush(1, false).await;
                    let _ = tx.send(f);
                }
                Some(Ctl::Stop(tx)) => {
                    // Refuse new events, then write everything already buffered.
                    let f = self.flush(3, true).await;
                    if f.failed > 0 {
                        self.counters.dropped.inc_by(f.failed as u64);
                        tracing::warn!(events = f.failed, "analytics events lost at shutdown: the store refused them");
                    }
                    let _ = tx.send(f);
                    return;
                }
            }
            next = tokio::time::Instant::now() + self.every;
        }
    }

    /// Writes one file per buffered partition (`attempts` tries each), after the files that
    /// failed before.
    async fn flush(&mut self, attempts: u32, close: bool) -> Flushed {
        let mut batches = self.shared.take(close, &mut self.spare);
        let (instance, codec) = (self.shared.instance, self.codec);
        // Serialising and compressing are CPU work: off the runtime's threads.
        let encoded = if batches.is_empty() {
            Vec::new()
        } else {
            match tokio::task::spawn_blocking(move || (encode(&mut batches, instance, codec), batches)).await {
                Ok((encoded, batches)) => {
                    self.spare = batches;
                    encoded
                }
                Err(e) => {
                    tracing::warn!(error = %e, "analytics: encoding task failed");
                    Vec::new()
                }
            }
        };
        let mut files = std::mem::take(&mut self.pending);
        self.pending_events = 0;
        for e in encoded {
            match e {
                Ok(f) => files.push(f),
                Err((e, n)) => {
                    tracing::warn!(error = %e, events = n, "analytics: cannot compress events");
                    self.counters.dropped.inc_by(n as u64);
                }
            }
        }
        let mut out = Flushed::default();
        for mut f in files {
            let n = f.events;
            let name = f
                .name
                .get_or_insert_with(|| {
                    store::file_name(&store::partition_name(&f.key), self.shared.instance, self.codec)
                })
                .clone();
            let mut result = Err(String::new());
            for i in 0..attempts.max(1) {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(200 * i as u64)).await;
                }
                result = self.store.put(&name, f.body.clone()).await;
                if result.is_ok() {
                    break;
                }
            }
            match result {
                Ok(()) => {
                    out.events += n;
                    out.files += 1;
                    self.counters.written.inc_by(n as u64);
                    self.counters.files.inc();
                }
                Err(e) => {
                    self.counters.failures.inc();
                    tracing::warn!(error = %e, file = %name, events = n, "analytics: write failed, will retry");
                    out.failed += n;
                    self.pending_events += n;
                    self.pending.push(f);
                }
            }
        }
        // What failed stays within the buffer size: the oldest files go first.
        while self.pending_events > self.cap && !self.pending.is_empty() {
            let f = self.pending.remove(0);
            self.pending_events -= f.events;
            self.counters.dropped.inc_by(f.events as u64);
        }
        self.counters.buffered.set(self.pending_events as i64);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::json::{millis, uint};
    use crate::analytics::Event;

    const SPEC: VariantSpec = VariantSpec {
        resizing: crate::options::ResizingType::FillDown,
        width: 100,
        height: 0,
        dpr_centi: 225,
        format: "auto",
        quality: crate::options::Quality::Fixed(70),
    };

    fn subject() -> Arc<Subject> {
        let neg =
            NegFacts { variant: SPEC, negotiated: true, accept: "webp", target_width: 200, dpr: 2.0, save_data: true };
        Arc::new(Subject::new("a/\u{e9}t\u{e9} \"x\"\n.jpg".into(), "local", Some(neg)))
    }

    fn full() -> Record {
        Record {
            at: std::time::UNIX_EPOCH + Duration::from_millis(1_740_868_200_123),
            method: actix_web::http::Method::GET,
            request_id: Some(crate::telemetry::RequestId::Given("r\"1\\\u{1}".into())),
            subject: Some(subject()),
            out: Some(Out { format: "webp", source_format: "jpeg", width: 100, height: 66, source_bytes: 99_999 }),
            timings: Some([1.5, 0.0004, 3.0]),
            status: 200,
            error: None,
            bytes: 1234,
            cache: Some("miss"),
            latency_ms: 12.3456,
            referrer_host: Some("example.com".into()),
        }
    }

    fn line(r: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        r.write(&mut out, "host-1", &rfc3339_bytes(r.at));
        out
    }

    /// The top-level keys of a JSON object, in order.
    fn top_keys(json: &str) -> Vec<String> {
        let (mut depth, mut in_str, mut esc) = (0, false, false);
        let (mut cur, mut last, mut out) = (String::new(), None::<String>, Vec::new());
        for c in json.chars() {
            if in_str {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    in_str = false;
                    last = Some(std::mem::take(&mut cur));
                    continue;
                }
                cur.push(c);
                continue;
            }
            match c {
                '"' => in_str = true,
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                ':' if depth == 1 => out.extend(last.take()),
                _ => {}
            }
            if c != '"' && !c.is_whitespace() && c != ':' {
                last = None;
            }
        }
        out
    }

    fn keys(v: &serde_json::Value) -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn lines_are_events_with_the_same_fields_in_order() {
        let out = line(&full());
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        let ev: Event = serde_json::from_slice(&out).unwrap();
        assert_eq!(ev.ts, "2025-03-01T22:30:00.123Z");
        assert_eq!(ev.instance, "host-1");
        assert_eq!(ev.key.as_deref(), Some("a/\u{e9}t\u{e9} \"x\"\n.jpg"));
        assert_eq!(ev.request_id.as_deref(), Some("r\"1\\\u{1}"));
        assert_eq!(ev.device.as_deref(), Some("dpr2/le320/save-data"));
        assert_eq!((ev.dpr_bucket.as_deref(), ev.width_bucket.as_deref()), (Some("2"), Some("le320")));
        assert_eq!(ev.variant.as_deref(), Some("rs:fill-down/w:100/h:0/dpr:2.25/f:auto/q:70"));
        assert_eq!((ev.dpr, ev.latency_ms, ev.transform_ms), (Some(2.0), 12.346, Some(0.0)));
        assert_eq!((ev.width, ev.height, ev.source_bytes, ev.bytes), (Some(100), Some(66), Some(99_999), 1234));
        assert_eq!((ev.format.as_deref(), ev.cache.as_deref()), (Some("webp"), Some("miss")));
        assert_eq!(ev.referrer_host.as_deref(), Some("example.com"));
        assert_eq!(v["dpr"].to_string(), "2.0", "floats stay floats");
        assert_eq!(top_keys(std::str::from_utf8(&out).unwrap()), top_keys(&serde_json::to_string(&ev).unwrap()));
        let mut sorted = keys(&v);
        sorted.sort();
        let mut want = keys(&serde_json::to_value(&ev).unwrap());
        want.sort();
        assert_eq!(sorted, want, "same field set");
        // The subject's fields are serialised once and reused.
        let r = full();
        let (a, b) = (line(&r), line(&r));
        assert_eq!(a, b);
        assert!(r.subject.as_ref().unwrap().subject().json.get().is_some());

        let empty = Record {
            request_id: None,
            subject: None,
            out: None,
            timings: None,
            error: Some("invalid-signature"),
            cache: None,
            referrer_host: None,
            ..full()
        };
        let ev: Event = serde_json::from_slice(&line(&empty)).unwrap();
        assert_eq!((ev.key, ev.error.as_deref(), ev.dpr, ev.fetch_ms), (None, Some("invalid-signature"), None, None));
        let source_only = Record { subject: Some(Arc::new(Subject::new("k.jpg".into(), "http", None))), ..empty };
        let ev: Event = serde_json::from_slice(&line(&source_only)).unwrap();
        assert_eq!(
            (ev.key.as_deref(), ev.source.as_deref(), ev.variant.clone()),
            (Some("k.jpg"), Some("http"), None::<String>)
        );
        assert_eq!(
            top_keys(std::str::from_utf8(&line(&source_only)).unwrap()),
            top_keys(&serde_json::to_string(&ev).unwrap())
        );
    }

    #[test]
    fn numbers() {
        let mut o = Vec::new();
        uint(&mut o, 0);
        o.push(b' ');
        uint(&mut o, u64::MAX);
        o.push(b' ');
        millis(&mut o, 0.0);
        o.push(b' ');
        millis(&mut o, 1234.5678);
        o.push(b' ');
        millis(&mut o, f64::NAN);
        assert_eq!(String::from_utf8(o).unwrap(), "0 18446744073709551615 0.000 1234.568 null");
    }

    #[test]
    fn timestamps_match_jiff() {
        let mut ms = 0i64;
        while ms < 5_000_000_000_000 {
            let st = std::time::UNIX_EPOCH + Duration::from_millis(ms as u64);
            let want = jiff::Timestamp::from_millisecond(ms).unwrap().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            assert_eq!(std::str::from_utf8(&rfc3339_bytes(st)).unwrap(), want, "{ms}");
            ms += 7_777_777_777;
        }
        for ms in [0i64, 951_782_400_123, 1_709_164_799_999, 4_107_542_400_000, 86_399_999] {
            let st = std::time::UNIX_EPOCH + Duration::from_millis(ms as u64);
            let want = jiff::Timestamp::from_millisecond(ms).unwrap().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            assert_eq!(std::str::from_utf8(&rfc3339_bytes(st)).unwrap(), want, "{ms}");
        }
    }

    #[test]
    fn a_full_buffer_drops_and_counts() {
        let dropped = IntCounter::new("d", "d").unwrap();
        let (s, _rx) = Shared::new(2, 100, "h", dropped.clone());
        for _ in 0..5 {
            s.push(Item::Request(full()));
        }
        assert_eq!(dropped.get(), 3);
        let mut batches = s.take(true, &mut Vec::new());
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 2);
        assert_eq!(s.reserved.load(Ordering::Relaxed), 0);
        let files = encode(&mut batches, "h", store::Codec::Zstd);
        assert!(batches.iter().all(Vec::is_empty), "emptied for reuse");
        assert_eq!(files.len(), 1);
        let f = files.into_iter().next().unwrap().unwrap();
        assert_eq!((&f.key, f.events), (b"2025-03-01T22", 2));
        let text = store::decode(&f.body, 1 << 20).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().all(|l| serde_json::from_str::<Event>(l).is_ok()));
        s.push(Item::Request(full()));
        assert_eq!(dropped.get(), 4, "closed");
    }

    #[test]
    fn every_thread_buffers_apart_and_the_writer_takes_all() {
        let dropped = IntCounter::new("d", "d").unwrap();
        let (s, _rx) = Shared::new(100_000, 1_000_000, "h", dropped.clone());
        let (other, _rx2) = Shared::new(10, 1_000_000, "h", dropped.clone());
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for i in 0..1_000 {
                        s.push(Item::Request(full()));
                        if i % 100 == 0 {
                            other.push(Item::Event(Box::default()));
                        }
                    }
                });
            }
            // The writer takes while the threads push: nothing is lost or taken twice.
            let mut got = 0;
            for _ in 0..50 {
                got += s.take(false, &mut Vec::new()).iter().map(Vec::len).sum::<usize>();
                std::thread::yield_now();
            }
            std::hint::black_box(got);
        });
        assert_eq!(dropped.get(), 30, "the second buffer holds 10 of 40");
        assert_eq!(s.shards.lock().unwrap().len(), 4, "one shard per thread");
        assert_eq!(other.take(true, &mut Vec::new()).iter().map(Vec::len).sum::<usize>(), 10);
    }

    #[test]
    fn items_taken_concurrently_are_counted_once() {
        let dropped = IntCounter::new("d", "d").unwrap();
        let (s, _rx) = Shared::new(1_000_000, 1_000_000, "h", dropped.clone());
        let total = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    for _ in 0..5_000 {
                        s.push(Item::Event(Box::default()));
                    }
                });
            }
            scope.spawn(|| {
                for _ in 0..200 {
                    let n: usize = s.take(false, &mut Vec::new()).iter().map(Vec::len).sum();
                    total.fetch_add(n, Ordering::Relaxed);
                }
            });
        });
        let rest: usize = s.take(true, &mut Vec::new()).iter().map(Vec::len).sum();
        assert_eq!(total.load(Ordering::Relaxed) + rest, 15_000);
        assert_eq!((dropped.get(), s.reserved.load(Ordering::Relaxed)), (0, 0));
    }

    #[test]
    fn encoding_splits_hours_and_streams_large_partitions() {
        let hour = |h: u64, i: u64| std::time::UNIX_EPOCH + Duration::from_secs(1_740_866_400 + h * 3600 + i);
        for codec in [store::Codec::Zstd, store::Codec::Gzip] {
            let mut batch = Vec::new();
            // Enough lines for several chunks in the first hour, a few in the next; and a ready event.
            for i in 0..600 {
                batch.push(Item::Request(Record { at: hour(u64::from(i >= 550), i), ..full() }));
            }
            let ev = Event { ts: "2025-03-01T23:59:59.000Z".into(), status: 204, ..Default::default() };
            batch.push(Item::Event(Box::new(ev)));
            let files: Vec<Encoded> =
                encode(&mut [batch], "h", codec).into_iter().collect::<Result<_, _>>().map_err(|e| e.0).unwrap();
            let got: Vec<(&[u8], usize)> = files.iter().map(|f| (&f.key[..], f.events)).collect();
            assert_eq!(got, vec![(&b"2025-03-01T22"[..], 550), (&b"2025-03-01T23"[..], 51)], "{codec:?}");
            let text = store::decode(&files[0].body, 1 << 30).unwrap();
            assert!(text.len() > 2 * CHUNK, "several chunks: {}", text.len());
            let evs: Vec<Event> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            assert_eq!(evs.len(), 550);
            assert!(evs.iter().all(|e| e.ts.starts_with("2025-03-01T22:")));
            let last = store::decode(&files[1].body, 1 << 30).unwrap();
            assert_eq!(last.lines().filter(|l| l.contains("\"status\":204")).count(), 1);
        }
    }

    /// `cargo test --release --lib analytics::sink::tests::push_cost -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn push_cost() {
        let n = 1_000_000;
        let dropped = IntCounter::new("d", "d").unwrap();
        let (s, _rx) = Shared::new(usize::MAX, usize::MAX, "h", dropped);
        let subject: Arc<dyn SubjectOf> = subject();
        let stop = AtomicBool::new(false);
        println!("Item is {} bytes", std::mem::size_of::<Item>());
        std::thread::scope(|scope| {
            let mut workers = Vec::new();
            for _ in 0..2 {
                let (s, subject) = (&s, subject.clone());
                workers.push(scope.spawn(move || {
                    let t = std::time::Instant::now();
                    for _ in 0..n {
                        s.push(Item::Request(Record {
                            at: std::time::SystemTime::now(),
                            method: actix_web::http::Method::GET,
                            request_id: Some(crate::telemetry::RequestId::Made(ulid::Ulid(7))),
                            subject: Some(subject.clone()),
                            out: None,
                            timings: None,
                            status: 200,
                            error: None,
                            bytes: 1000,
                            cache: Some("hit"),
                            latency_ms: 0.5,
                            referrer_host: None,
                        }));
                    }
                    t.elapsed().as_secs_f64() * 1e9 / n as f64
                }));
            }
            scope.spawn(|| {
                let mut spare = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                    for mut b in s.take(false, &mut spare) {
                        b.clear();
                        spare.push(b);
                    }
                }
            });
            let per: Vec<f64> = workers.into_iter().map(|w| w.join().unwrap()).collect();
            stop.store(true, Ordering::Relaxed);
            println!("push: {per:.0?} ns per event (threads at once, a writer taking every 20 ms)");
        });
    }

    /// `cargo test --release --lib analytics::sink::tests::writer_cost -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn writer_cost() {
        let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
        let subject: Arc<dyn SubjectOf> = subject();
        let now = std::time::SystemTime::now();
        let mut batches = vec![Vec::with_capacity(n)];
        let mut best = [f64::MAX; 3];
        let mut size = 0;
        // As the writer runs: buffers reused from one round to the next; the best of 10 rounds.
        for _ in 0..10 {
            for (c, codec) in [store::Codec::Zstd, store::Codec::Gzip].into_iter().enumerate() {
                for i in 0..n {
                    batches[0].push(Item::Request(Record {
                        at: now + Duration::from_micros(i as u64 * 15),
                        subject: Some(subject.clone()),
                        request_id: Some(crate::telemetry::RequestId::Made(crate::analytics::ulid_now())),
                        latency_ms: 0.01 * (i % 1000) as f64,
                        timings: None,
                        ..full()
                    }));
                }
                if c == 0 {
                    // The serialiser alone, into a reused chunk.
                    let t = std::time::Instant::now();
                    let mut chunk = Vec::with_capacity(CHUNK + 4096);
                    for item in &batches[0] {
                        if let Item::Request(r) = item {
                            r.write(&mut chunk, "host-1", &rfc3339_bytes(r.at));
                            chunk.push(b'\n');
                            if chunk.len() >= CHUNK {
                                chunk.clear();
                            }
                        }
                    }
                    best[2] = best[2].min(t.elapsed().as_secs_f64());
                }
                let t = std::time::Instant::now();
                let files = encode(&mut batches, "host-1", codec);
                best[c] = best[c].min(t.elapsed().as_secs_f64());
                if c == 0 {
                    size = files.iter().flatten().map(|f| f.body.len()).sum::<usize>();
                }
            }
        }
        let per = |s: f64| s * 1e9 / n as f64;
        println!(
            "per event: serialise {:.0} ns; serialise + zstd {:.0} ns ({:.1} B/event), serialise + gzip {:.0} ns",
            per(best[2]),
            per(best[0]),
            size as f64 / n as f64,
            per(best[1])
        );
    }
}
