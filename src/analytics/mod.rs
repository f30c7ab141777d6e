//! Durable request analytics: one event per image request, written as zstd- (or gzip-)
//! compressed JSON lines to the configured store and read back by `imago analytics` and
//! `GET /v1/analytics`.
//!
//! * The image flow fills a [`Draft`] on its stack; with the response, [`Analytics::emit`] moves
//!   a small [`record::Record`] (numbers, static strings, and the request-memo entry's `Arc`, which
//!   carries the URL's [`Subject`]) into its worker thread's buffer ([`buffer`]). No formatting
//!   happens on the request path. A full (`IMAGO_ANALYTICS_CHANNEL` events) or closed buffer
//!   drops the event and counts it in `imago_analytics_events_dropped_total`: a request never
//!   waits for analytics and never fails because of it.
//! * One background task takes every thread's buffer every `IMAGO_ANALYTICS_FLUSH_SECS`, or as
//!   soon as `IMAGO_ANALYTICS_FLUSH_EVENTS` are buffered, serialises and compresses them on a
//!   blocking thread and writes one file per hour partition touched:
//!   `dt=YYYY-MM-DD/hour=HH/{instance}-{ulid}.jsonl.zst` (`.jsonl.gz` with
//!   `IMAGO_ANALYTICS_COMPRESSION=gzip`) under `IMAGO_ANALYTICS_DIR` (embedded mode, temp file
//!   and rename) or under `analytics/` in the bucket (S3 mode, presigned PUT). Replicas never
//!   write the same name, so any number of them share one store.
//! * A failed write is retried at the next flush under the same name (bounded by
//!   `IMAGO_ANALYTICS_CHANNEL`; the oldest beyond it are dropped and counted).
//! * [`Analytics::flush_and_stop`] (called on SIGTERM after the HTTP drain, see
//!   [`crate::app::AppState::shutdown`]) writes everything still buffered.
//!
//! The file format and example queries are in `docs/analytics.md`.

pub mod buffer;
pub mod cli;
pub mod edge;
pub mod html;
pub mod import;
pub mod json;
pub mod record;
pub mod report;
pub mod rollup;
pub mod store;
pub mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use prometheus::{IntCounter, IntGauge};
use tokio::sync::oneshot;

use crate::cache::{Outcome, Variant};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::negotiate::Negotiated;
use crate::options::FormatChoice;
use buffer::Shared;
use json::rfc3339_bytes;
use record::{Ctl, Item, NegFacts, Out, Record, Tally, VariantSpec};
pub use record::{Event, Flushed, Str, Subject, SubjectOf};
pub use store::Store;
use writer::{Counters, Writer};

pub use crate::config::{s3_mode, AnalyticsSettings as Settings};

/// What the image flow learnt about a request (on its stack), recorded with the response.
#[derive(Default)]
pub struct Draft {
    pub subject: Option<Arc<dyn SubjectOf>>,
    out: Option<Out>,
    timings: Option<[f64; 3]>,
    cache: Option<&'static str>,
    error: Option<&'static str>,
}

impl Draft {
    /// The image flow has a response (a variant, or a 304 without one).
    pub fn outcome(&mut self, v: Option<&Variant>, outcome: Outcome) {
        self.cache = Some(outcome.name());
        if let Some(v) = v {
            self.out = Some(Out {
                format: v.format.name(),
                source_format: v.source_format,
                width: v.width,
                height: v.height,
                source_bytes: v.source_bytes,
            });
            if outcome == Outcome::Miss {
                self.timings = Some([v.fetch_ms, v.transform_ms, v.encode_ms]);
            }
        }
    }

    /// The image flow ended in an error.
    pub fn error(&mut self, code: &'static str) {
        self.error = Some(code);
    }
}

/// The per-URL analytics facts of a negotiated request (kept in the request memo).
pub fn subject(key: Arc<str>, source: &'static str, n: Option<&Negotiated>) -> Subject {
    let neg = n.map(|n| NegFacts {
        variant: VariantSpec::of(n),
        negotiated: matches!(n.options.format, FormatChoice::Auto | FormatChoice::Unset),
        accept: n.accept.name(),
        target_width: n.target_width,
        dpr: n.options.dpr.unwrap_or(1.0),
        save_data: n.save_data,
    });
    Subject::new(key, source, neg)
}

/// The lower-cased host of a `Referer` (a plain `scheme://host[:port]/…` is read directly; anything
/// unusual goes through the URL parser).
fn referrer_host(req: &HttpRequest) -> Option<Box<str>> {
    host_of(req.headers().get(header::REFERER)?.as_bytes())
}

fn host_of(r: &[u8]) -> Option<Box<str>> {
    if let Some(h) = simple_host(r) {
        return std::str::from_utf8(h).ok().map(|h| h.to_ascii_lowercase().into_boxed_str());
    }
    let u = url::Url::parse(std::str::from_utf8(r).ok()?).ok()?;
    let h = u.host_str()?;
    (h.len() <= 253).then(|| h.to_ascii_lowercase().into_boxed_str())
}

/// The host of `http(s)://host[:port][/?#…]` when it is a plain DNS name or IPv4 address
/// (letters, digits, `-`, `.`; no user info, no IPv6, no percent-encoding).
fn simple_host(r: &[u8]) -> Option<&[u8]> {
    let rest = r.strip_prefix(b"https://").or_else(|| r.strip_prefix(b"http://"))?;
    let end = rest.iter().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = match authority.iter().position(|b| *b == b':') {
        Some(i) if authority[i + 1..].iter().all(u8::is_ascii_digit) => &authority[..i],
        Some(_) => return None,
        None => authority,
    };
    let plain = !host.is_empty()
        && host.len() <= 253
        && host.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        && !host.starts_with(b".")
        && !host.ends_with(b".")
        // Numeric last labels are IPv4 forms the URL parser normalises (`0x7f.1`, `127.1`).
        && !host.rsplit(|b| *b == b'.').next().is_some_and(|l| l.first().is_some_and(u8::is_ascii_digit));
    plain.then_some(host)
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

/// The analytics handle in [`crate::app::AppState`] (also holds the metrics listener, stopped
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
    pub fn start(cfg: &Config, metrics: &Metrics, storage: &crate::storage::Storage) -> Result<Analytics, String> {
        let s = cfg.analytics.clone();
        let counters = Counters::register(metrics);
        if !s.enabled {
            return Ok(Analytics::off());
        }
        let store = Store::new(cfg, storage)?;
        let (shared, ctl) = Shared::new(s.channel, s.flush_events, interned_instance_id(), counters.dropped.clone());
        let writer = Writer {
            ctl,
            shared: shared.clone(),
            store,
            counters,
            every: s.flush_every,
            cap: s.channel,
            pending: Vec::new(),
            pending_events: 0,
            spare: Vec::new(),
            codec: s.codec,
            retention: store::Retention { max_age: s.retention_age, max_bytes: s.max_bytes },
            rollup_retention: store::Retention { max_age: s.rollup_retention_age, max_bytes: s.rollup_max_bytes },
        };
        crate::telemetry::spawn_background("imago-analytics", writer.run())?;
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

    /// Records the request's event (without waiting: a full or closed buffer drops and counts
    /// it). The request path only moves numbers and shared pointers; the writer formats.
    pub fn emit(&self, req: &HttpRequest, resp: &HttpResponse, start: Instant, d: Draft) {
        let Some(shared) = &self.shared else { return };
        let method = req.method().clone();
        let bytes = match resp.body().size() {
            BodySize::Sized(n) if method != actix_web::http::Method::HEAD => n,
            _ => 0,
        };
        let status = resp.status().as_u16();
        if (400..500).contains(&status) && d.subject.is_none() {
            // Refused before the URL named an image: counted, without the client's id or referrer.
            let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
            let t = Tally::one(std::time::SystemTime::now(), &method, status, d.error);
            shared.count(Tally { bytes, latency_ms, ..t });
            return;
        }
        let request_id = req.extensions_mut().remove::<crate::telemetry::RequestId>();
        shared.push(Item::Request(Record {
            at: std::time::SystemTime::now(),
            method,
            request_id,
            subject: d.subject,
            out: d.out,
            timings: d.timings,
            status,
            error: d.error,
            bytes,
            cache: d.cache,
            latency_ms: start.elapsed().as_secs_f64() * 1000.0,
            referrer_host: referrer_host(req),
        }));
    }

    /// Queues an event (drops and counts it when the buffer is full or the writer stopped).
    pub fn send(&self, ev: Event) {
        let Some(shared) = &self.shared else { return };
        shared.push(Item::Event(Box::new(ev)));
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
    ulid_now().to_string()
}

pub use crate::telemetry::ulid_now;

/// Now as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    rfc3339_millis(std::time::SystemTime::now())
}

/// A time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339_millis(t: std::time::SystemTime) -> String {
    String::from_utf8_lossy(&rfc3339_bytes(t)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;
    use std::time::Duration;

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
        assert_eq!(bad(|r| r.analytics_retention_days = 36_601), "IMAGO_ANALYTICS_RETENTION_DAYS");
        assert_eq!(bad(|r| r.analytics_max_mb = (1 << 30) + 1), "IMAGO_ANALYTICS_MAX_MB");
        assert_eq!((s.retention_age, s.max_bytes), (Some(Duration::from_secs(92 * 86_400)), Some(10 << 30)));
        let mut r = raw();
        (r.analytics_retention_days, r.analytics_max_mb) = (0, 0);
        let off = Settings::from_raw(&r).unwrap();
        assert_eq!((off.retention_age, off.max_bytes), (None, None), "0 turns each limit off");
        assert_eq!(bad(|r| r.analytics_compression = "lz4".into()), "IMAGO_ANALYTICS_COMPRESSION");
        assert_eq!(Settings::from_raw(&raw()).unwrap().codec, store::Codec::Zstd);
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
    fn referrer_hosts_match_the_url_parser() {
        let by_parser = |r: &str| -> Option<String> {
            let u = url::Url::parse(r).ok()?;
            u.host_str().map(|h| h.to_ascii_lowercase())
        };
        let cases = [
            ("https://Shop.Example.com/p?q=1", true),
            ("http://example.com:8080/x", true),
            ("https://example.com", true),
            ("https://a-b.example.co.uk#frag", true),
            ("https://example.com?x", true),
            ("https://user:pw@evil.example/", false),
            ("https://[::1]:8443/", false),
            ("http://127.0.0.1/", false),
            ("http://0x7f.1/", false),
            ("https://b\u{fc}cher.example/", false),
            ("https://ex%41mple.com/", false),
            ("https://example.com./", false),
            ("https://example.com:http/", false),
            ("ftp://example.com/", false),
        ];
        for (r, fast) in cases {
            assert_eq!(simple_host(r.as_bytes()).is_some(), fast, "{r}: fast path");
            assert_eq!(host_of(r.as_bytes()).map(String::from), by_parser(r), "{r}");
        }
        assert_eq!(host_of(b"not a url"), None);
        // The URL parser reads a missing authority leniently; so do we (the same answer).
        assert_eq!(host_of(b"https:///nohost").map(String::from), by_parser("https:///nohost"));
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
    }
}
