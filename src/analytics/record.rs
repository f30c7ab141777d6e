//! The record types of analytics: what the request path records ([`Record`], with the per-URL
//! [`Subject`] the request memo holds), what the buffer holds ([`Item`]), the event as written
//! to and read from the store ([`Event`]), and the writer's control messages ([`Ctl`]).
//! Everything else in `analytics` builds on these: the buffer ([`super::buffer`]) moves them,
//! the JSON writer ([`super::json`]) serialises them, the writer task ([`super::writer`])
//! stores them.

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// A string that is usually static (labels, codes): no allocation on the request path.
pub type Str = std::borrow::Cow<'static, str>;

/// One image request, as written to the store (one JSON object per line). Field meanings are
/// documented in `docs/analytics.md`; absent values are `null`. Fields the response decides
/// come first, then the variant's, then those of the URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// RFC 3339 UTC with milliseconds, e.g. `2025-11-28T09:15:02.117Z`.
    pub ts: String,
    pub instance: Str,
    pub request_id: Option<String>,
    pub method: Str,
    pub status: u16,
    /// Error code of a refused or failed request.
    pub error: Option<Str>,
    /// `hit`, `miss`, `coalesced` or `not_modified`.
    pub cache: Option<Str>,
    /// Body bytes sent (0 for HEAD and 304).
    pub bytes: u64,
    pub latency_ms: f64,
    pub fetch_ms: Option<f64>,
    pub transform_ms: Option<f64>,
    pub encode_ms: Option<f64>,
    pub referrer_host: Option<String>,
    /// Output format served.
    pub format: Option<Str>,
    pub source_format: Option<Str>,
    /// Output size in pixels.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Size of the original the response was made from.
    pub source_bytes: Option<u64>,
    /// The image key (`SourceRef::key()`): the store key, `bucket/key`, or the origin URL.
    pub key: Option<String>,
    /// `local`, `s3` or `http`.
    pub source: Option<Str>,
    /// The resolved options, e.g. `rs:fit/w:300/h:0/dpr:2/f:auto/q:default`.
    pub variant: Option<String>,
    /// The format was negotiated from `Accept` (no `f:`/extension in the URL).
    pub negotiated: Option<bool>,
    /// `Accept` class: `avif`, `webp` or `legacy`.
    pub accept: Option<Str>,
    /// Device-pixel width targeted by negotiation (0: the URL has no width).
    pub target_width: Option<u32>,
    /// Device-pixel ratio applied.
    pub dpr: Option<f64>,
    pub dpr_bucket: Option<Str>,
    pub width_bucket: Option<Str>,
    pub save_data: Option<bool>,
    /// `dpr{1,2,3}/{width bucket}`, plus `/save-data`.
    pub device: Option<String>,
    /// Requests this line stands for: 1 for a request's own event; for refused requests (a 4xx
    /// before the URL named an image) the count of one minute, status, code and method, whose
    /// `ts` is the minute, `bytes` the sum and `latency_ms` the mean. Absent (`null`) in files
    /// written before it existed: count those lines as 1.
    pub requests: Option<u64>,
    /// Set on lines imported from an edge's log (`imago analytics import`): what the edge did,
    /// `hit` (served from its cache), `miss` or `pass` (forwarded to the origin, whose own event
    /// shares `request_id`), `synth`, `pipe`. Absent on the origin's own events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge: Option<Str>,
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

/// A request to the writer task: write what is buffered, or write it and stop.
pub enum Ctl {
    Flush(oneshot::Sender<Flushed>),
    Stop(oneshot::Sender<Flushed>),
}

/// The resolved options of a request (written as `rs:fit/w:300/h:0/dpr:2/f:auto/q:default`).
#[derive(Clone, Copy, Debug)]
pub struct VariantSpec {
    pub(super) resizing: crate::options::ResizingType,
    pub(super) width: u32,
    pub(super) height: u32,
    /// DPR × 100, rounded.
    pub(super) dpr_centi: u32,
    pub(super) format: &'static str,
    pub(super) quality: crate::options::Quality,
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
    pub(super) json: OnceLock<Box<[u8]>>,
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

/// Requests refused before their URL named an image (a bad or missing signature, a malformed
/// URL, bad options, an expired link: a 4xx without a [`Subject`]), counted together per minute,
/// method, status and code instead of one event each with the client's id and referrer: a
/// client can send those at will, so they must not grow the store per request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tally {
    /// Minutes since the Unix epoch.
    pub minute: u64,
    /// `GET`, `HEAD`, or `OTHER`.
    pub method: &'static str,
    pub status: u16,
    pub error: Option<&'static str>,
    pub requests: u64,
    /// Body bytes sent, summed.
    pub bytes: u64,
    /// Latencies summed (the line carries the mean).
    pub latency_ms: f64,
}

impl Tally {
    /// One refused request.
    pub fn one(at: SystemTime, method: &actix_web::http::Method, status: u16, error: Option<&'static str>) -> Tally {
        use actix_web::http::Method;
        let minute = at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() / 60).unwrap_or(0);
        let method = match *method {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            _ => "OTHER",
        };
        Tally { minute, method, status, error, requests: 1, bytes: 0, latency_ms: 0.0 }
    }

    /// Adds `o` when it counts the same minute, method, status and code.
    pub fn merge(&mut self, o: &Tally) -> bool {
        let same = (self.minute, self.method, self.status, self.error) == (o.minute, o.method, o.status, o.error);
        if same {
            self.requests += o.requests;
            self.bytes += o.bytes;
            self.latency_ms += o.latency_ms;
        }
        same
    }
}

/// What the buffer holds: a request's record, a ready event (`Analytics::send`), or the count of
/// refused requests (added by the buffer when the writer takes it).
// The record is the common case and must not allocate; a ready event is rare.
#[allow(clippy::large_enum_variant)]
pub enum Item {
    Request(Record),
    Event(Box<Event>),
    Refused(Tally),
}

/// Records for the unit tests of the buffer, the JSON writer and the writer task.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;
    use std::time::Duration;

    pub(in crate::analytics) const SPEC: VariantSpec = VariantSpec {
        resizing: crate::options::ResizingType::FillDown,
        width: 100,
        height: 0,
        dpr_centi: 225,
        format: "auto",
        quality: crate::options::Quality::Fixed(70),
    };

    pub(in crate::analytics) fn subject() -> Arc<Subject> {
        let neg =
            NegFacts { variant: SPEC, negotiated: true, accept: "webp", target_width: 200, dpr: 2.0, save_data: true };
        Arc::new(Subject::new("a/\u{e9}t\u{e9} \"x\"\n.jpg".into(), "local", Some(neg)))
    }

    pub(in crate::analytics) fn full() -> Record {
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
}
