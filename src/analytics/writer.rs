//! The writer task: every `IMAGO_ANALYTICS_FLUSH_SECS` (or when the buffer reaches
//! `IMAGO_ANALYTICS_FLUSH_EVENTS`, or on demand) it takes the buffered items
//! ([`super::buffer`]), serialises them into hour partitions ([`super::json`]) and compresses
//! them on a blocking thread, writes one file per partition to the store, and keeps the files
//! whose write failed for the next flush.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use tokio::sync::mpsc;

use super::buffer::Shared;
use super::json::rfc3339_bytes;
use super::record::{Ctl, Event, Flushed, Item, Str, Tally};
use super::store::{self, Store};

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

/// Analytics counters (registered in the server's registry).
#[derive(Clone)]
pub struct Counters {
    pub dropped: IntCounter,
    pub written: IntCounter,
    pub files: IntCounter,
    pub failures: IntCounter,
    pub buffered: IntGauge,
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
                Item::Event(_) | Item::Refused(_) => {
                    scratch.clear();
                    let written = match &item {
                        Item::Event(e) => serde_json::to_writer(&mut scratch, e),
                        Item::Refused(t) => serde_json::to_writer(&mut scratch, &tally_event(t, instance)),
                        Item::Request(_) => Ok(()),
                    };
                    if written.is_err() {
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

/// The line of a [`Tally`]: the minute, the sums, the mean latency and `requests`.
fn tally_event(t: &Tally, instance: &str) -> Event {
    let at = std::time::UNIX_EPOCH + Duration::from_secs(t.minute.saturating_mul(60));
    Event {
        ts: String::from_utf8_lossy(&rfc3339_bytes(at)).into_owned(),
        instance: Str::Owned(instance.to_string()),
        method: Str::Borrowed(t.method),
        status: t.status,
        error: t.error.map(Str::Borrowed),
        bytes: t.bytes,
        latency_ms: t.latency_ms / t.requests.max(1) as f64,
        requests: Some(t.requests),
        ..Event::default()
    }
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
    /// Applied at start and every [`PRUNE_EVERY`].
    pub retention: store::Retention,
    /// The same for the hourly rollups.
    pub rollup_retention: store::Retention,
}

/// How often the writer applies retention (and once at start).
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl Writer {
    pub async fn run(mut self) {
        let mut next = tokio::time::Instant::now() + self.every;
        let mut next_prune = tokio::time::Instant::now();
        let mut next_rollup = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_prune {
                self.prune().await;
                next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
            }
            if tokio::time::Instant::now() >= next_rollup {
                // The hours that closed (every replica tries; the files are the same).
                match super::rollup::catch_up(&self.store, jiff::Timestamp::now(), 3).await {
                    Ok(n) if n > 0 => tracing::info!(hours = n, "analytics: rolled up closed hours"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "analytics: rollup failed, will retry"),
                }
                next_rollup = tokio::time::Instant::now() + super::rollup::CATCH_UP_EVERY;
            }
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

    /// Removes the event files retention no longer keeps (every replica does; removing twice is
    /// harmless).
    async fn prune(&self) {
        match self.store.prune(&self.retention, jiff::Timestamp::now(), store::LIST_PAGE).await {
            Ok(p) if p.files > 0 => {
                tracing::info!(files = p.files, bytes = p.bytes, "analytics: retention removed old event files");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "analytics: retention failed, will retry"),
        }
        match self.store.rollups().prune(&self.rollup_retention, jiff::Timestamp::now(), store::LIST_PAGE).await {
            Ok(p) if p.files > 0 => {
                tracing::info!(files = p.files, bytes = p.bytes, "analytics: retention removed old rollups")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "analytics: rollup retention failed, will retry"),
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
    use crate::analytics::record::fixtures::{full, subject};
    use crate::analytics::record::{Event, Record, SubjectOf};
    use std::sync::atomic::Ordering;

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

    /// `cargo test --release --lib analytics::writer::tests::writer_cost -- --ignored --nocapture`
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
