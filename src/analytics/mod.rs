//! Durable request analytics: one event per image request, written as gzip-compressed JSON lines
//! to the configured store and read back by `imago analytics` and `GET /v1/analytics`.
//!
//! * The request path only fills a small [`Draft`] in the request's extensions and, when the
//!   response is ready, `try_send`s one [`Event`] into a bounded channel. A full (or closed)
//!   channel drops the event and counts it in `imago_analytics_events_dropped_total`: a request
//!   never waits for analytics and never fails because of it.
//! * One background task empties the channel every `IMAGO_ANALYTICS_FLUSH_SECS`, or as soon as
//!   `IMAGO_ANALYTICS_FLUSH_EVENTS` are buffered, and writes one file per hour partition touched:
//!   `dt=YYYY-MM-DD/hour=HH/{instance}-{ulid}.jsonl.gz` under `IMAGO_ANALYTICS_DIR` (embedded
//!   mode, temp file + rename) or under `analytics/` in the bucket (S3 mode, presigned PUT).
//!   Replicas never write the same name, so any number of them share one store.
//! * A failed write keeps its events for the next flush (bounded by `IMAGO_ANALYTICS_CHANNEL`;
//!   the oldest beyond it are dropped and counted).
//! * [`Analytics::flush_and_stop`] (called on SIGTERM after the HTTP drain, see
//!   [`crate::server::AppState::shutdown`]) writes everything still buffered.
//!
//! The file format and example queries are in `docs/analytics.md`.

pub mod cli;
pub mod handlers;
pub mod html;
pub mod report;
pub mod store;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use prometheus::{IntCounter, IntGauge};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::cache::{Outcome, Variant};
use crate::config::{Config, RawConfig};
use crate::metrics::{dpr_bucket, width_bucket, Metrics};
use crate::negotiate::Negotiated;
use crate::options::FormatChoice;
use crate::source::SourceRef;
pub use store::Store;

/// Validated analytics and metrics-listener settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub enabled: bool,
    pub dir: PathBuf,
    pub flush_every: Duration,
    pub flush_events: usize,
    pub channel: usize,
    pub report_max_days: u64,
    pub metrics_bind: Option<SocketAddr>,
}

/// Whether the configuration writes to the bucket (the same rule as uploads).
pub fn s3_mode(r: &RawConfig) -> bool {
    r.s3_endpoint.is_some() && r.s3_bucket.is_some()
}

fn absolute(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    // Resolve symlinks where the path exists; lexical `..` removal elsewhere.
    if let Ok(c) = std::fs::canonicalize(&abs) {
        return c;
    }
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl Settings {
    pub fn from_raw(r: &RawConfig) -> Result<Settings, (&'static str, String)> {
        let metrics_bind = match r.metrics_bind.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(b) => Some(
                b.parse::<SocketAddr>()
                    .map_err(|_| ("IMAGO_METRICS_BIND", format!("`{b}` is not an address like 127.0.0.1:9090")))?,
            ),
        };
        if !(1..=86_400).contains(&r.analytics_flush_secs) {
            return Err(("IMAGO_ANALYTICS_FLUSH_SECS", "must be 1 to 86400".into()));
        }
        if !(1..=1_000_000).contains(&r.analytics_flush_events) {
            return Err(("IMAGO_ANALYTICS_FLUSH_EVENTS", "must be 1 to 1000000".into()));
        }
        if !(1..=16_777_216).contains(&r.analytics_channel) {
            return Err(("IMAGO_ANALYTICS_CHANNEL", "must be 1 to 16777216".into()));
        }
        if !(1..=3_660).contains(&r.analytics_report_max_days) {
            return Err(("IMAGO_ANALYTICS_REPORT_MAX_DAYS", "must be 1 to 3660".into()));
        }
        if r.analytics_dir.as_os_str().is_empty() {
            return Err(("IMAGO_ANALYTICS_DIR", "must not be empty".into()));
        }
        if r.analytics && !s3_mode(r) {
            let (dir, root) = (absolute(&r.analytics_dir), absolute(&r.local_root));
            if dir.starts_with(&root) {
                return Err((
                    "IMAGO_ANALYTICS_DIR",
                    format!(
                        "{} is inside IMAGO_LOCAL_ROOT ({}): events would be readable as images",
                        dir.display(),
                        root.display()
                    ),
                ));
            }
        }
        Ok(Settings {
            enabled: r.analytics,
            dir: r.analytics_dir.clone(),
            flush_every: Duration::from_secs(r.analytics_flush_secs),
            flush_events: r.analytics_flush_events,
            channel: r.analytics_channel,
            report_max_days: r.analytics_report_max_days,
            metrics_bind,
        })
    }
}

/// A string that is usually static (labels, codes): no allocation on the request path.
pub type Str = std::borrow::Cow<'static, str>;

/// One image request, as written to the store (one JSON object per line). Field meanings are
/// documented in `docs/analytics.md`; absent values are `null`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// RFC 3339 UTC with milliseconds, e.g. `2025-11-28T09:15:02.117Z`.
    pub ts: String,
    pub instance: Str,
    pub request_id: Option<String>,
    pub method: Str,
    /// The image key (`SourceRef::key()`): the store key, `bucket/key`, or the origin URL.
    pub key: Option<String>,
    /// `local`, `s3` or `http`.
    pub source: Option<Str>,
    /// The resolved options, e.g. `rs:fit/w:300/h:0/dpr:2/f:auto/q:default`.
    pub variant: Option<String>,
    /// Output format served.
    pub format: Option<Str>,
    pub source_format: Option<Str>,
    /// The format was negotiated from `Accept` (no `f:`/extension in the URL).
    pub negotiated: Option<bool>,
    /// `Accept` class: `avif`, `webp` or `legacy`.
    pub accept: Option<Str>,
    /// Output size in pixels.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Device-pixel width targeted by negotiation (0: the URL has no width).
    pub target_width: Option<u32>,
    /// Device-pixel ratio applied.
    pub dpr: Option<f64>,
    pub dpr_bucket: Option<Str>,
    pub width_bucket: Option<Str>,
    pub save_data: Option<bool>,
    /// `dpr{1,2,3}/{width bucket}`, plus `/save-data`.
    pub device: Option<String>,
    pub status: u16,
    /// Error code of a refused or failed request.
    pub error: Option<Str>,
    /// Body bytes sent (0 for HEAD and 304).
    pub bytes: u64,
    /// Size of the original the response was made from.
    pub source_bytes: Option<u64>,
    /// `hit`, `miss`, `coalesced` or `not_modified`.
    pub cache: Option<Str>,
    pub latency_ms: f64,
    pub fetch_ms: Option<f64>,
    pub transform_ms: Option<f64>,
    pub encode_ms: Option<f64>,
    pub referrer_host: Option<String>,
}

/// [`Event`] as the request path writes it: the same fields in the same order, borrowed.
#[derive(Serialize)]
struct Line<'a> {
    ts: Ts,
    instance: &'a str,
    request_id: Option<&'a str>,
    method: &'a str,
    key: Option<&'a str>,
    source: Option<&'a str>,
    variant: Option<&'a str>,
    format: Option<&'a str>,
    source_format: Option<&'a str>,
    negotiated: Option<bool>,
    accept: Option<&'a str>,
    width: Option<u32>,
    height: Option<u32>,
    target_width: Option<u32>,
    dpr: Option<f64>,
    dpr_bucket: Option<&'a str>,
    width_bucket: Option<&'a str>,
    save_data: Option<bool>,
    device: Option<Device>,
    status: u16,
    error: Option<&'a str>,
    bytes: u64,
    source_bytes: Option<u64>,
    cache: Option<&'a str>,
    latency_ms: f64,
    fetch_ms: Option<f64>,
    transform_ms: Option<f64>,
    encode_ms: Option<f64>,
    referrer_host: Option<&'a str>,
}

/// A timestamp serialised as RFC 3339 UTC with milliseconds, without allocating.
struct Ts([u8; 24]);

impl Ts {
    fn now() -> Ts {
        Ts(rfc3339_bytes(std::time::SystemTime::now()))
    }
}

impl Serialize for Ts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(&self.0).unwrap_or("1970-01-01T00:00:00.000Z"))
    }
}

/// The device class `dpr{1,2,3}/{width bucket}[/save-data]`.
struct Device {
    dpr: &'static str,
    width: &'static str,
    save_data: bool,
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dpr{}/{}{}", self.dpr, self.width, if self.save_data { "/save-data" } else { "" })
    }
}

impl Serialize for Device {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What the image flow learnt about a request, kept in its extensions until the response.
#[derive(Default)]
pub struct Draft {
    key: Option<String>,
    source: Option<&'static str>,
    variant: Option<String>,
    format: Option<&'static str>,
    source_format: Option<&'static str>,
    negotiated: Option<bool>,
    accept: Option<&'static str>,
    width: Option<u32>,
    height: Option<u32>,
    target_width: Option<u32>,
    dpr: Option<f64>,
    save_data: Option<bool>,
    source_bytes: Option<u64>,
    cache: Option<&'static str>,
    fetch_ms: Option<f64>,
    transform_ms: Option<f64>,
    encode_ms: Option<f64>,
    error: Option<&'static str>,
}

/// The resolved options in a short, stable form.
pub fn variant_summary(n: &Negotiated) -> String {
    use std::fmt::Write as _;
    let o = &n.options;
    let mut s = String::with_capacity(64);
    s.push_str("rs:");
    let start = s.len();
    let _ = write!(s, "{:?}", o.resizing_type);
    s[start..].make_ascii_lowercase();
    let _ = write!(s, "/w:{}/h:{}/dpr:", o.width, o.height);
    // Two decimals without float formatting (this runs per request).
    let c = (o.dpr.unwrap_or(1.0) * 100.0).round().clamp(0.0, 1e6) as u32;
    let _ = if c.is_multiple_of(100) { write!(s, "{}", c / 100) } else { write!(s, "{}.{:02}", c / 100, c % 100) };
    s.push_str("/f:");
    s.push_str(match o.format {
        FormatChoice::Unset | FormatChoice::Auto => "auto",
        FormatChoice::Explicit(f) => f.name(),
    });
    s.push_str("/q:");
    match o.quality {
        crate::options::Quality::Default => s.push_str("default"),
        crate::options::Quality::Auto => s.push_str("auto"),
        crate::options::Quality::Fixed(q) => {
            let _ = write!(s, "{q}");
        }
    }
    s
}

fn referrer_host(req: &HttpRequest) -> Option<String> {
    let r = req.headers().get(header::REFERER)?.to_str().ok()?;
    let u = url::Url::parse(r).ok()?;
    let h = u.host_str()?;
    (h.len() <= 253).then(|| h.to_ascii_lowercase())
}

/// Result of a flush.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Events written.
    pub events: usize,
    /// Files written.
    pub files: usize,
    /// Events that could not be written (kept for the next flush, or lost at stop).
    pub failed: usize,
}

enum Ctl {
    Flush(oneshot::Sender<Flushed>),
    Stop(oneshot::Sender<Flushed>),
}

struct Shared {
    /// Serialised events (JSON lines).
    tx: mpsc::Sender<Vec<u8>>,
    ctl: mpsc::UnboundedSender<Ctl>,
    wake: Notify,
    flush_events: usize,
    /// Interned once per process start (see [`instance_id`]).
    instance: &'static str,
    dropped: IntCounter,
}

/// Analytics counters (registered in the server's registry).
#[derive(Clone)]
struct Counters {
    dropped: IntCounter,
    written: IntCounter,
    files: IntCounter,
    failures: IntCounter,
    buffered: IntGauge,
}

impl Counters {
    fn register(m: &Metrics) -> Counters {
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric definition: {e}"));
            // A second registration (several servers sharing one registry) keeps the first.
            let _ = m.registry.register(Box::new(c.clone()));
            c
        };
        let buffered = IntGauge::new("imago_analytics_buffered", "Analytics events waiting to be written")
            .unwrap_or_else(|e| panic!("metric definition: {e}"));
        let _ = m.registry.register(Box::new(buffered.clone()));
        // Series the dashboard plots exist from the start (at 0), not from their first event.
        for reason in ["queue_full", "queue_timeout"] {
            let _ = m.shed.with_label_values(&[reason]);
        }
        Counters {
            dropped: counter(
                "imago_analytics_events_dropped_total",
                "Analytics events dropped: buffer full, or not written after retries",
            ),
            written: counter("imago_analytics_events_written_total", "Analytics events written to the store"),
            files: counter("imago_analytics_files_written_total", "Analytics files written to the store"),
            failures: counter("imago_analytics_write_failures_total", "Analytics file writes that failed"),
            buffered,
        }
    }
}

/// The analytics handle in [`crate::server::AppState`] (also holds the metrics listener, stopped
/// last at shutdown).
pub struct Analytics {
    shared: Option<Arc<Shared>>,
    stopped: AtomicBool,
    metrics_server: Mutex<Option<actix_web::dev::ServerHandle>>,
}

/// [`instance_id`] as a `&'static str`, computed once per process.
fn interned_instance_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(instance_id).as_str()
}

/// The machine's host name (the pod name in Kubernetes), reduced to `[A-Za-z0-9._-]`.
pub fn instance_id() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and we stop at the first NUL or the end.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let raw = if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let clean: String =
        raw.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).take(63).collect();
    if clean.is_empty() {
        "imago".into()
    } else {
        clean
    }
}

impl Analytics {
    /// An analytics handle that records nothing.
    pub fn off() -> Analytics {
        Analytics { shared: None, stopped: AtomicBool::new(false), metrics_server: Mutex::new(None) }
    }

    /// Starts the writer task (on the current Tokio runtime, or on a thread of its own outside
    /// one) when analytics are on.
    pub fn start(cfg: &Config, metrics: &Metrics, store_client: &reqwest::Client) -> Result<Analytics, String> {
        let s = Settings::from_raw(&cfg.raw).map_err(|(k, m)| format!("{k}: {m}"))?;
        let counters = Counters::register(metrics);
        if !s.enabled {
            return Ok(Analytics::off());
        }
        let store = Store::from_config(cfg, Some(store_client.clone()))?;
        let (tx, rx) = mpsc::channel(s.channel);
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            tx,
            ctl,
            wake: Notify::new(),
            flush_events: s.flush_events,
            instance: interned_instance_id(),
            dropped: counters.dropped.clone(),
        });
        let writer = Writer {
            rx,
            ctl: ctl_rx,
            shared: shared.clone(),
            store,
            counters,
            every: s.flush_every,
            cap: s.channel,
            pending: BTreeMap::new(),
            pending_events: 0,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(writer.run());
            }
            Err(_) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("analytics runtime: {e}"))?;
                std::thread::Builder::new()
                    .name("imago-analytics".into())
                    .spawn(move || rt.block_on(writer.run()))
                    .map_err(|e| format!("analytics thread: {e}"))?;
            }
        }
        Ok(Analytics { shared: Some(shared), stopped: AtomicBool::new(false), metrics_server: Mutex::new(None) })
    }

    /// Whether events are recorded.
    pub fn enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// Remembers the metrics listener so that [`Analytics::shutdown`] stops it.
    pub fn set_metrics_server(&self, h: actix_web::dev::ServerHandle) {
        if let Ok(mut g) = self.metrics_server.lock() {
            *g = Some(h);
        }
    }

    fn with_draft(&self, req: &HttpRequest, f: impl FnOnce(&mut Draft)) {
        if self.shared.is_none() {
            return;
        }
        let mut ext = req.extensions_mut();
        if let Some(d) = ext.get_mut::<Draft>() {
            f(d);
        } else {
            let mut d = Draft::default();
            f(&mut d);
            ext.insert(d);
        }
    }

    /// The image flow parsed the source.
    pub fn note_source(&self, req: &HttpRequest, src: &SourceRef) {
        self.with_draft(req, |d| {
            d.key = Some(src.key());
            d.source = Some(src.kind());
        });
    }

    /// The image flow resolved the options against the request's hints.
    pub fn note_negotiated(&self, req: &HttpRequest, n: &Negotiated) {
        self.with_draft(req, |d| {
            d.variant = Some(variant_summary(n));
            d.negotiated = Some(matches!(n.options.format, FormatChoice::Auto | FormatChoice::Unset));
            d.accept = Some(n.accept.name());
            d.target_width = Some(n.target_width);
            d.dpr = Some(n.options.dpr.unwrap_or(1.0));
            d.save_data = Some(n.save_data);
        });
    }

    /// The image flow has a response (a variant, or a 304 without one).
    pub fn note_outcome(&self, req: &HttpRequest, v: Option<&Variant>, outcome: Outcome) {
        self.with_draft(req, |d| {
            d.cache = Some(outcome.name());
            if let Some(v) = v {
                d.format = Some(v.format.name());
                d.source_format = Some(v.source_format);
                d.width = Some(v.width);
                d.height = Some(v.height);
                d.source_bytes = Some(v.source_bytes);
                if outcome == Outcome::Miss {
                    d.fetch_ms = Some(v.fetch_ms);
                    d.transform_ms = Some(v.transform_ms);
                    d.encode_ms = Some(v.encode_ms);
                }
            }
        });
    }

    /// The image flow ended in an error.
    pub fn note_error(&self, req: &HttpRequest, code: &'static str) {
        self.with_draft(req, |d| d.error = Some(code));
    }

    /// Builds the request's event, serialised (one JSON line, borrowing everything: no copies
    /// of the fields), and hands it to the writer without waiting.
    pub fn emit(&self, req: &HttpRequest, resp: &HttpResponse, start: Instant) {
        let Some(shared) = &self.shared else { return };
        let d = req.extensions_mut().remove::<Draft>().unwrap_or_default();
        let head = req.method() == actix_web::http::Method::HEAD;
        let bytes = match resp.body().size() {
            BodySize::Sized(n) if !head => n,
            _ => 0,
        };
        let dpr_b = d.dpr.map(|x| dpr_bucket(Some(x)));
        let width_b = d.target_width.map(width_bucket);
        let device = match (dpr_b, width_b) {
            (Some(dpr), Some(width)) => Some(Device { dpr, width, save_data: d.save_data == Some(true) }),
            _ => None,
        };
        let referrer = referrer_host(req);
        let ext = req.extensions();
        let line = Line {
            ts: Ts::now(),
            instance: shared.instance,
            request_id: ext.get::<crate::telemetry::RequestId>().map(|r| r.0.as_str()),
            method: req.method().as_str(),
            key: d.key.as_deref(),
            source: d.source,
            variant: d.variant.as_deref(),
            format: d.format,
            source_format: d.source_format,
            negotiated: d.negotiated,
            accept: d.accept,
            width: d.width,
            height: d.height,
            target_width: d.target_width,
            dpr: d.dpr,
            dpr_bucket: dpr_b,
            width_bucket: width_b,
            save_data: d.save_data,
            device,
            status: resp.status().as_u16(),
            error: d.error,
            bytes,
            source_bytes: d.source_bytes,
            cache: d.cache,
            latency_ms: micros(start.elapsed().as_secs_f64() * 1000.0),
            fetch_ms: d.fetch_ms.map(micros),
            transform_ms: d.transform_ms.map(micros),
            encode_ms: d.encode_ms.map(micros),
            referrer_host: referrer.as_deref(),
        };
        let mut buf = Vec::with_capacity(768);
        let ok = serde_json::to_writer(&mut buf, &line).is_ok();
        drop(ext);
        if !ok {
            shared.dropped.inc();
            return;
        }
        buf.push(b'\n');
        self.send_line(buf);
    }

    /// Queues an event (drops and counts it when the buffer is full or the writer stopped).
    pub fn send(&self, ev: Event) {
        let Some(shared) = &self.shared else { return };
        match serde_json::to_vec(&ev) {
            Ok(mut buf) => {
                buf.push(b'\n');
                self.send_line(buf);
            }
            Err(_) => shared.dropped.inc(),
        }
    }

    fn send_line(&self, line: Vec<u8>) {
        let Some(shared) = &self.shared else { return };
        if shared.tx.try_send(line).is_err() {
            shared.dropped.inc();
            return;
        }
        let buffered = shared.tx.max_capacity() - shared.tx.capacity();
        if buffered >= shared.flush_events {
            shared.wake.notify_one();
        }
    }

    async fn control(&self, make: impl FnOnce(oneshot::Sender<Flushed>) -> Ctl) -> Flushed {
        let Some(shared) = &self.shared else { return Flushed::default() };
        let (tx, rx) = oneshot::channel();
        if shared.ctl.send(make(tx)).is_err() {
            return Flushed::default();
        }
        rx.await.unwrap_or_default()
    }

    /// Writes what is buffered now.
    pub async fn flush(&self) -> Flushed {
        self.control(Ctl::Flush).await
    }

    /// Writes what is buffered and stops the writer; later events are dropped and counted.
    /// Idempotent.
    pub async fn flush_and_stop(&self) -> Flushed {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return Flushed::default();
        }
        self.control(Ctl::Stop).await
    }

    /// Flushes and stops the writer, then stops the metrics listener.
    pub async fn shutdown(&self) -> Flushed {
        let f = self.flush_and_stop().await;
        let h = self.metrics_server.lock().ok().and_then(|mut g| g.take());
        if let Some(h) = h {
            h.stop(true).await;
        }
        f
    }
}

/// A new ULID (time-ordered, 80 random bits) as its 26-character string.
pub fn new_ulid() -> String {
    let ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    ulid::Ulid::from_parts(ms, rand::random::<u128>()).to_string()
}

/// Milliseconds rounded to microseconds (shorter lines, no false precision).
fn micros(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Now as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    rfc3339_millis(std::time::SystemTime::now())
}

/// A time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339_millis(t: std::time::SystemTime) -> String {
    String::from_utf8_lossy(&rfc3339_bytes(t)).into_owned()
}

/// [`rfc3339_millis`] without allocating or a calendar library (it runs once per request). Days
/// to civil date after Howard Hinnant's `civil_from_days`; years 0-9999.
fn rfc3339_bytes(t: std::time::SystemTime) -> [u8; 24] {
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

/// Buffered lines of one hour partition.
#[derive(Default)]
struct Part {
    lines: Vec<u8>,
    events: usize,
}

struct Writer {
    rx: mpsc::Receiver<Vec<u8>>,
    ctl: mpsc::UnboundedReceiver<Ctl>,
    shared: Arc<Shared>,
    store: Store,
    counters: Counters,
    every: Duration,
    cap: usize,
    /// Lines taken from the channel and not yet written, by partition (`YYYY-MM-DDTHH`): events
    /// arrive in time order, so this is almost always one entry.
    pending: BTreeMap<[u8; 13], Part>,
    pending_events: usize,
}

impl Writer {
    async fn run(mut self) {
        let mut next = tokio::time::Instant::now() + self.every;
        loop {
            let reply = tokio::select! {
                _ = tokio::time::sleep_until(next) => None,
                _ = self.shared.wake.notified() => None,
                c = self.ctl.recv() => match c {
                    Some(c) => Some(c),
                    // Every handle is gone: write what is left and end.
                    None => {
                        self.rx.close();
                        self.flush(3).await;
                        return;
                    }
                },
            };
            match reply {
                None => {
                    self.flush(1).await;
                }
                Some(Ctl::Flush(tx)) => {
                    let f = self.flush(1).await;
                    let _ = tx.send(f);
                }
                Some(Ctl::Stop(tx)) => {
                    // Refuse new events, then write everything already queued.
                    self.rx.close();
                    let f = self.flush(3).await;
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

    /// Moves the channel's lines into the partition buffers.
    fn drain(&mut self) {
        while let Ok(line) = self.rx.try_recv() {
            let key = store::line_partition(&line).unwrap_or(*b"1970-01-01T00");
            let part = self.pending.entry(key).or_default();
            part.lines.extend_from_slice(&line);
            part.events += 1;
            self.pending_events += 1;
        }
    }

    /// Drains the channel and writes one file per pending partition (`attempts` tries each).
    async fn flush(&mut self, attempts: u32) -> Flushed {
        self.drain();
        let mut out = Flushed::default();
        if self.pending_events == 0 {
            return out;
        }
        let parts = std::mem::take(&mut self.pending);
        self.pending_events = 0;
        for (key, part) in parts {
            let n = part.events;
            let name = store::file_name(&store::partition_name(&key), self.shared.instance);
            let encoded = tokio::task::spawn_blocking(move || store::gzip(&part.lines).map(|b| (b, part))).await;
            let (body, part) = match encoded {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "analytics: cannot compress events");
                    self.counters.dropped.inc_by(n as u64);
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
                }
                Err(e) => {
                    self.counters.failures.inc();
                    tracing::warn!(error = %e, file = %name, events = n, "analytics: write failed, will retry");
                    out.failed += n;
                    // Kept for the next flush (lines drained meanwhile append after these).
                    let kept = self.pending.entry(key).or_default();
                    let mut lines = part.lines;
                    lines.extend_from_slice(&kept.lines);
                    kept.lines = lines;
                    kept.events += n;
                    self.pending_events += n;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawConfig {
        RawConfig {
            local_root: "/srv/imago/images".into(),
            analytics_dir: "/srv/imago/analytics".into(),
            ..Default::default()
        }
    }

    #[test]
    fn settings_are_checked() {
        let s = Settings::from_raw(&raw()).unwrap();
        assert_eq!(s.flush_every, Duration::from_secs(60));
        assert!(s.enabled && s.metrics_bind.is_none());
        let bad = |f: fn(&mut RawConfig)| {
            let mut r = raw();
            f(&mut r);
            Settings::from_raw(&r).unwrap_err().0
        };
        assert_eq!(bad(|r| r.analytics_flush_secs = 0), "IMAGO_ANALYTICS_FLUSH_SECS");
        assert_eq!(bad(|r| r.analytics_flush_events = 0), "IMAGO_ANALYTICS_FLUSH_EVENTS");
        assert_eq!(bad(|r| r.analytics_channel = 0), "IMAGO_ANALYTICS_CHANNEL");
        assert_eq!(bad(|r| r.analytics_report_max_days = 0), "IMAGO_ANALYTICS_REPORT_MAX_DAYS");
        assert_eq!(bad(|r| r.metrics_bind = Some("nope".into())), "IMAGO_METRICS_BIND");
        assert_eq!(bad(|r| r.analytics_dir = "/srv/imago/images/analytics".into()), "IMAGO_ANALYTICS_DIR");
        assert_eq!(bad(|r| r.analytics_dir = "/srv/imago/images/x/../stats".into()), "IMAGO_ANALYTICS_DIR");
        // Inside the image root is fine when events go to the bucket, or analytics are off.
        let mut r = raw();
        r.analytics_dir = "/srv/imago/images/analytics".into();
        r.analytics = false;
        assert!(Settings::from_raw(&r).is_ok());
        let mut r = raw();
        r.metrics_bind = Some("127.0.0.1:9090".into());
        assert_eq!(Settings::from_raw(&r).unwrap().metrics_bind.unwrap().port(), 9090);
    }

    #[test]
    fn request_lines_are_events() {
        let full = Line {
            ts: Ts(*b"2025-03-01T22:30:00.123Z"),
            instance: "host-1",
            request_id: Some("r\"1"),
            method: "GET",
            key: Some("a/\u{e9}t\u{e9}.jpg"),
            source: Some("local"),
            variant: Some("rs:fit/w:100/h:0/dpr:2/f:auto/q:default"),
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
            latency_ms: 12.345,
            fetch_ms: Some(1.5),
            transform_ms: Some(7.25),
            encode_ms: Some(3.0),
            referrer_host: Some("example.com"),
        };
        let text = serde_json::to_string(&full).unwrap();
        let ev: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(ev.device.as_deref(), Some("dpr2/le320/save-data"));
        assert_eq!(ev.ts, "2025-03-01T22:30:00.123Z");
        assert_eq!(serde_json::to_string(&ev).unwrap(), text, "same fields, same order");
        let empty = Line {
            ts: Ts(*b"2025-03-01T22:30:00.123Z"),
            instance: "h",
            request_id: None,
            method: "HEAD",
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
            status: 403,
            error: Some("invalid-signature"),
            bytes: 0,
            source_bytes: None,
            cache: None,
            latency_ms: 0.5,
            fetch_ms: None,
            transform_ms: None,
            encode_ms: None,
            referrer_host: None,
        };
        let text = serde_json::to_string(&empty).unwrap();
        let ev: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&ev).unwrap(), text);
    }

    #[test]
    fn instance_ids_are_file_name_safe() {
        let id = instance_id();
        assert!(!id.is_empty() && id.len() <= 63);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')), "{id}");
    }

    #[test]
    fn timestamps_are_rfc3339_millis() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
        assert!(t.parse::<jiff::Timestamp>().is_ok());
        // Agrees with jiff across leap years, centuries and the epoch.
        for ms in [0i64, 951_782_400_123, 1_709_164_799_999, 4_107_542_400_000, 1_764_322_135_001, 86_399_999] {
            let st = std::time::UNIX_EPOCH + Duration::from_millis(ms as u64);
            let want = jiff::Timestamp::from_millisecond(ms).unwrap().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            assert_eq!(rfc3339_millis(st), want, "{ms}");
        }
        let mut ms = 0i64;
        while ms < 5_000_000_000_000 {
            let st = std::time::UNIX_EPOCH + Duration::from_millis(ms as u64);
            let want = jiff::Timestamp::from_millisecond(ms).unwrap().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            assert_eq!(rfc3339_millis(st), want, "{ms}");
            ms += 7_777_777_777;
        }
    }
}
