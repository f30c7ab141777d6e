//! The event buffer between the request path and the writer task, the writer itself, and the
//! request path's serialiser.
//!
//! Cost matters here: an event is written for every image request, including cache hits that
//! take a few microseconds. The request path serialises the event straight into a reused
//! thread-local buffer (hand-written JSON: no allocation, static strings copied unescaped) and
//! appends it, under a short lock, to the buffer of its hour partition. The writer swaps the
//! buffers out, compresses them on a blocking thread and hands the emptied buffers back, so
//! steady state allocates nothing per event.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use tokio::sync::{mpsc, oneshot, Notify};

use super::store::{self, Store};
use super::Flushed;

/// An hour partition key: `YYYY-MM-DDTHH` (the first 13 bytes of `ts`).
pub type PartKey = [u8; 13];

/// Buffered lines of one hour partition.
#[derive(Default)]
pub struct Part {
    pub lines: Vec<u8>,
    pub events: usize,
}

#[derive(Default)]
struct Buffer {
    parts: BTreeMap<PartKey, Part>,
    events: usize,
    closed: bool,
    /// Emptied line buffers handed back by the writer (their capacity is reused).
    spare: Vec<Vec<u8>>,
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

/// What the request path and the writer share.
pub struct Shared {
    buf: Mutex<Buffer>,
    cap: usize,
    flush_events: usize,
    wake: Notify,
    pub ctl: mpsc::UnboundedSender<Ctl>,
    /// Interned once per process.
    pub instance: &'static str,
    pub dropped: IntCounter,
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
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
            buf: Mutex::new(Buffer::default()),
            cap,
            flush_events,
            wake: Notify::new(),
            ctl,
            instance,
            dropped,
        };
        (Arc::new(shared), rx)
    }

    /// Serialises with `write` (into a reused buffer) and appends the line to its partition;
    /// drops and counts it when the buffer is full or closed. Never waits for the writer.
    pub fn push(&self, write: impl FnOnce(&mut Vec<u8>)) {
        SCRATCH.with(|scratch| {
            let Ok(mut line) = scratch.try_borrow_mut() else {
                self.dropped.inc();
                return;
            };
            line.clear();
            write(&mut line);
            line.push(b'\n');
            self.append(&line);
        });
    }

    fn append(&self, line: &[u8]) {
        let key = store::line_partition(line).unwrap_or(*b"1970-01-01T00");
        let wake = {
            let Ok(mut b) = self.buf.lock() else {
                self.dropped.inc();
                return;
            };
            if b.closed || b.events >= self.cap {
                drop(b);
                self.dropped.inc();
                return;
            }
            let b = &mut *b;
            let part = match b.parts.get_mut(&key) {
                Some(p) => p,
                None => {
                    let lines = b.spare.pop().unwrap_or_default();
                    b.parts.entry(key).or_insert(Part { lines, events: 0 })
                }
            };
            part.lines.extend_from_slice(line);
            part.events += 1;
            b.events += 1;
            b.events >= self.flush_events
        };
        if wake {
            self.wake.notify_one();
        }
    }

    /// Takes everything buffered (and, with `close`, refuses events from now on).
    fn take(&self, close: bool) -> BTreeMap<PartKey, Part> {
        match self.buf.lock() {
            Ok(mut b) => {
                b.closed |= close;
                b.events = 0;
                std::mem::take(&mut b.parts)
            }
            Err(_) => BTreeMap::new(),
        }
    }

    /// Returns an emptied line buffer for reuse (a few are kept).
    fn give_back(&self, mut lines: Vec<u8>) {
        lines.clear();
        if let Ok(mut b) = self.buf.lock() {
            if b.spare.len() < 4 {
                b.spare.push(lines);
            }
        }
    }
}

/// The background writer task.
pub struct Writer {
    pub ctl: mpsc::UnboundedReceiver<Ctl>,
    pub shared: Arc<Shared>,
    pub store: Store,
    pub counters: Counters,
    pub every: Duration,
    pub cap: usize,
    /// Events whose write failed, kept for the next flush.
    pub pending: BTreeMap<PartKey, Part>,
    pub pending_events: usize,
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

    /// Writes one file per buffered partition (`attempts` tries each).
    async fn flush(&mut self, attempts: u32, close: bool) -> Flushed {
        let mut parts = std::mem::take(&mut self.pending);
        self.pending_events = 0;
        for (key, fresh) in self.shared.take(close) {
            match parts.get_mut(&key) {
                Some(old) => {
                    old.lines.extend_from_slice(&fresh.lines);
                    old.events += fresh.events;
                    self.shared.give_back(fresh.lines);
                }
                None => {
                    parts.insert(key, fresh);
                }
            }
        }
        let mut out = Flushed::default();
        for (key, part) in parts {
            let n = part.events;
            if n == 0 {
                self.shared.give_back(part.lines);
                continue;
            }
            let name = store::file_name(&store::partition_name(&key), self.shared.instance);
            let encoded = tokio::task::spawn_blocking(move || (store::gzip(&part.lines), part)).await;
            let (body, part) = match encoded {
                Ok((Ok(body), part)) => (body, part),
                Ok((Err(e), part)) => {
                    tracing::warn!(error = %e, "analytics: cannot compress events");
                    self.counters.dropped.inc_by(n as u64);
                    self.shared.give_back(part.lines);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "analytics: compression task failed");
                    self.counters.dropped.inc_by(n as u64);
                    continue;
                }
            };
            let mut result = Err(String::new());
            for i in 0..attempts.max(1) {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(200 * i as u64)).await;
                }
                result = self.store.put(&name, body.clone()).await;
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
                    self.shared.give_back(part.lines);
                }
                Err(e) => {
                    self.counters.failures.inc();
                    tracing::warn!(error = %e, file = %name, events = n, "analytics: write failed, will retry");
                    out.failed += n;
                    self.pending_events += n;
                    self.pending.insert(key, part);
                }
            }
        }
        // What failed stays within the buffer size: the oldest partitions go first.
        while self.pending_events > self.cap {
            let Some((_, part)) = self.pending.pop_first() else { break };
            self.pending_events -= part.events;
            self.counters.dropped.inc_by(part.events as u64);
        }
        self.counters.buffered.set(self.pending_events as i64);
        out
    }
}

/// One request's event as the request path writes it: the fields of [`super::Event`], in the
/// same order, borrowed.
pub struct Line<'a> {
    pub ts: [u8; 24],
    pub instance: &'a str,
    pub request_id: Option<&'a str>,
    pub method: &'a str,
    pub key: Option<&'a str>,
    pub source: Option<&'static str>,
    pub variant: Option<&'a VariantSpec>,
    pub format: Option<&'static str>,
    pub source_format: Option<&'static str>,
    pub negotiated: Option<bool>,
    pub accept: Option<&'static str>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub target_width: Option<u32>,
    pub dpr: Option<f64>,
    pub dpr_bucket: Option<&'static str>,
    pub width_bucket: Option<&'static str>,
    pub save_data: Option<bool>,
    pub device: Option<Device>,
    pub status: u16,
    pub error: Option<&'static str>,
    pub bytes: u64,
    pub source_bytes: Option<u64>,
    pub cache: Option<&'static str>,
    pub latency_ms: f64,
    pub fetch_ms: Option<f64>,
    pub transform_ms: Option<f64>,
    pub encode_ms: Option<f64>,
    pub referrer_host: Option<&'a str>,
}

/// The resolved options of a request (written as `rs:fit/w:300/h:0/dpr:2/f:auto/q:default`).
#[derive(Clone, Copy, Debug)]
pub struct VariantSpec {
    resizing: crate::options::ResizingType,
    width: u32,
    height: u32,
    /// DPR × 100, rounded.
    dpr_centi: u32,
    format: &'static str,
    quality: crate::options::Quality,
}

impl VariantSpec {
    pub fn of(n: &crate::negotiate::Negotiated) -> VariantSpec {
        let o = &n.options;
        VariantSpec {
            resizing: o.resizing_type,
            width: o.width,
            height: o.height,
            dpr_centi: (o.dpr.unwrap_or(1.0) * 100.0).round().clamp(0.0, 1e6) as u32,
            format: match o.format {
                crate::options::FormatChoice::Unset | crate::options::FormatChoice::Auto => "auto",
                crate::options::FormatChoice::Explicit(f) => f.name(),
            },
            quality: o.quality,
        }
    }

    /// Appends the summary (only `[a-z0-9:/.-]`: nothing to escape).
    pub fn write(&self, out: &mut Vec<u8>) {
        use crate::options::Quality;
        out.extend_from_slice(b"rs:");
        // The option's own (kebab-case) name, as serde spells it, without its quotes.
        let mut name = [0u8; 24];
        let mut w = &mut name[..];
        if serde_json::to_writer(&mut w, &self.resizing).is_ok() {
            let len = 24 - w.len();
            out.extend(name[..len].iter().filter(|b| **b != b'"'));
        }
        out.extend_from_slice(b"/w:");
        uint(out, u64::from(self.width));
        out.extend_from_slice(b"/h:");
        uint(out, u64::from(self.height));
        out.extend_from_slice(b"/dpr:");
        uint(out, u64::from(self.dpr_centi / 100));
        if !self.dpr_centi.is_multiple_of(100) {
            let c = self.dpr_centi % 100;
            out.extend_from_slice(&[b'.', b'0' + (c / 10) as u8, b'0' + (c % 10) as u8]);
        }
        out.extend_from_slice(b"/f:");
        out.extend_from_slice(self.format.as_bytes());
        out.extend_from_slice(b"/q:");
        match self.quality {
            Quality::Default => out.extend_from_slice(b"default"),
            Quality::Auto => out.extend_from_slice(b"auto"),
            Quality::Fixed(q) => uint(out, u64::from(q)),
        }
    }
}

/// The device class `dpr{1,2,3}/{width bucket}[/save-data]`.
pub struct Device {
    pub dpr: &'static str,
    pub width: &'static str,
    pub save_data: bool,
}

/// A JSON string (escaped as RFC 8259 requires).
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn uint(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A non-negative number with exactly three decimals (always a JSON float, so readers type the
/// column as DOUBLE); `null` when not finite.
fn millis(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let m = (v.abs() * 1000.0).round().min(9.0e18) as u64;
    if v < 0.0 && m > 0 {
        out.push(b'-');
    }
    uint(out, m / 1000);
    out.push(b'.');
    let f = m % 1000;
    out.extend_from_slice(&[b'0' + (f / 100) as u8, b'0' + (f / 10 % 10) as u8, b'0' + (f % 10) as u8]);
}

fn field(out: &mut Vec<u8>, name: &str) {
    out.push(b',');
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

fn opt_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn opt_uint(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(n) => uint(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

fn opt_bool(out: &mut Vec<u8>, v: Option<bool>) {
    out.extend_from_slice(match v {
        Some(true) => b"true",
        Some(false) => b"false",
        None => b"null",
    });
}

fn opt_millis(out: &mut Vec<u8>, v: Option<f64>) {
    match v {
        Some(x) => millis(out, x),
        None => out.extend_from_slice(b"null"),
    }
}

impl Line<'_> {
    /// Appends the JSON object (no newline).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"ts\":\"");
        out.extend_from_slice(&self.ts);
        out.push(b'"');
        field(out, "instance");
        string(out, self.instance);
        field(out, "request_id");
        opt_str(out, self.request_id);
        field(out, "method");
        string(out, self.method);
        field(out, "key");
        opt_str(out, self.key);
        field(out, "source");
        opt_str(out, self.source);
        field(out, "variant");
        match self.variant {
            Some(v) => {
                out.push(b'"');
                v.write(out);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        field(out, "format");
        opt_str(out, self.format);
        field(out, "source_format");
        opt_str(out, self.source_format);
        field(out, "negotiated");
        opt_bool(out, self.negotiated);
        field(out, "accept");
        opt_str(out, self.accept);
        field(out, "width");
        opt_uint(out, self.width.map(u64::from));
        field(out, "height");
        opt_uint(out, self.height.map(u64::from));
        field(out, "target_width");
        opt_uint(out, self.target_width.map(u64::from));
        field(out, "dpr");
        opt_millis(out, self.dpr);
        field(out, "dpr_bucket");
        opt_str(out, self.dpr_bucket);
        field(out, "width_bucket");
        opt_str(out, self.width_bucket);
        field(out, "save_data");
        opt_bool(out, self.save_data);
        field(out, "device");
        match &self.device {
            Some(d) => {
                out.extend_from_slice(b"\"dpr");
                out.extend_from_slice(d.dpr.as_bytes());
                out.push(b'/');
                out.extend_from_slice(d.width.as_bytes());
                if d.save_data {
                    out.extend_from_slice(b"/save-data");
                }
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        field(out, "status");
        uint(out, u64::from(self.status));
        field(out, "error");
        opt_str(out, self.error);
        field(out, "bytes");
        uint(out, self.bytes);
        field(out, "source_bytes");
        opt_uint(out, self.source_bytes);
        field(out, "cache");
        opt_str(out, self.cache);
        field(out, "latency_ms");
        millis(out, self.latency_ms);
        field(out, "fetch_ms");
        opt_millis(out, self.fetch_ms);
        field(out, "transform_ms");
        opt_millis(out, self.transform_ms);
        field(out, "encode_ms");
        opt_millis(out, self.encode_ms);
        field(out, "referrer_host");
        opt_str(out, self.referrer_host);
        out.push(b'}');
    }
}

/// A time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), without allocating or a calendar library (it
/// runs once per request). Days to civil date after Howard Hinnant's `civil_from_days`; years
/// 0-9999.
pub fn rfc3339_bytes(t: std::time::SystemTime) -> [u8; 24] {
    let ms = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    };
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, v: i64| {
        let mut v = v.clamp(0, 10i64.pow(width as u32) - 1);
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, h);
    put(14, 2, m);
    put(17, 2, s);
    put(20, 3, milli);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::Event;

    const SPEC: VariantSpec = VariantSpec {
        resizing: crate::options::ResizingType::FillDown,
        width: 100,
        height: 0,
        dpr_centi: 225,
        format: "auto",
        quality: crate::options::Quality::Fixed(70),
    };

    fn full() -> Line<'static> {
        Line {
            ts: *b"2025-03-01T22:30:00.123Z",
            instance: "host-1",
            request_id: Some("r\"1\\\u{1}"),
            method: "GET",
            key: Some("a/\u{e9}t\u{e9} \"x\"\n.jpg"),
            source: Some("local"),
            variant: Some(&SPEC),
            format: Some("webp"),
            source_format: Some("jpeg"),
            negotiated: Some(true),
            accept: Some("webp"),
            width: Some(100),
            height: Some(66),
            target_width: Some(200),
            dpr: Some(2.0),
            dpr_bucket: Some("2"),
            width_bucket: Some("le320"),
            save_data: Some(true),
            device: Some(Device { dpr: "2", width: "le320", save_data: true }),
            status: 200,
            error: None,
            bytes: 1234,
            source_bytes: Some(99999),
            cache: Some("miss"),
            latency_ms: 12.3456,
            fetch_ms: Some(1.5),
            transform_ms: Some(0.0004),
            encode_ms: Some(3.0),
            referrer_host: Some("example.com"),
        }
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
        let mut out = Vec::new();
        full().write(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        let ev: Event = serde_json::from_slice(&out).unwrap();
        assert_eq!(ev.key.as_deref(), Some("a/\u{e9}t\u{e9} \"x\"\n.jpg"));
        assert_eq!(ev.request_id.as_deref(), Some("r\"1\\\u{1}"));
        assert_eq!(ev.device.as_deref(), Some("dpr2/le320/save-data"));
        assert_eq!(ev.variant.as_deref(), Some("rs:fill-down/w:100/h:0/dpr:2.25/f:auto/q:70"));
        assert_eq!((ev.dpr, ev.latency_ms, ev.transform_ms), (Some(2.0), 12.346, Some(0.0)));
        assert_eq!(v["dpr"].to_string(), "2.0", "floats stay floats");
        assert_eq!(top_keys(std::str::from_utf8(&out).unwrap()), top_keys(&serde_json::to_string(&ev).unwrap()));
        let mut sorted = keys(&v);
        sorted.sort();
        let mut want = keys(&serde_json::to_value(&ev).unwrap());
        want.sort();
        assert_eq!(sorted, want, "same field set");
        let empty = Line {
            request_id: None,
            key: None,
            source: None,
            variant: None,
            format: None,
            source_format: None,
            negotiated: None,
            accept: None,
            width: None,
            height: None,
            target_width: None,
            dpr: None,
            dpr_bucket: None,
            width_bucket: None,
            save_data: None,
            device: None,
            error: Some("invalid-signature"),
            source_bytes: None,
            cache: None,
            fetch_ms: None,
            transform_ms: None,
            encode_ms: None,
            referrer_host: None,
            ..full()
        };
        let mut out = Vec::new();
        empty.write(&mut out);
        let ev: Event = serde_json::from_slice(&out).unwrap();
        assert_eq!((ev.key, ev.error.as_deref(), ev.dpr), (None, Some("invalid-signature"), None));
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
            s.push(|o| full().write(o));
        }
        assert_eq!(dropped.get(), 3);
        let parts = s.take(true);
        assert_eq!(parts.len(), 1);
        let part = &parts[b"2025-03-01T22"];
        assert_eq!(part.events, 2);
        assert_eq!(part.lines.iter().filter(|b| **b == b'\n').count(), 2);
        s.push(|o| full().write(o));
        assert_eq!(dropped.get(), 4, "closed");
    }
}
