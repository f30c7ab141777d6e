//! Reading event files back and summarising them: the report behind `imago analytics`,
//! `GET /v1/analytics` and the HTML page.
//!
//! Aggregation streams: memory grows with the number of distinct images (for the top lists and
//! the unique count), not with the number of events. Latency percentiles come from a log-scale
//! histogram with 1 % wide buckets.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::record::Event;
use super::store::{self, Store};

/// Largest event file read (compressed and decompressed).
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// Entries in the top lists.
const TOP: usize = 20;

/// A time range `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Range {
    pub fn hours(&self) -> i64 {
        self.to.duration_since(self.from).as_secs() / 3600
    }
}

/// Parses a time: RFC 3339 (`2025-03-01T10:00:00Z`), a UTC date (`2025-03-01`), a UTC hour
/// (`2025-03-01T10`), `now`, or an age (`30m`, `24h`, `7d`: that long before `now`).
pub fn parse_time(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    let age = s.strip_prefix('-').unwrap_or(s);
    if let Some(unit) = age.chars().last().filter(|c| matches!(c, 's' | 'm' | 'h' | 'd' | 'w')) {
        if let Ok(n) = age[..age.len() - 1].parse::<i64>() {
            let secs = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => 7 * 86_400,
            };
            let d = SignedDuration::from_secs(n.saturating_mul(secs).clamp(0, 100 * 365 * 86_400));
            return now.checked_sub(d).map_err(|e| e.to_string());
        }
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let not_a_time =
        || format!("`{s}` is not a time (RFC 3339, YYYY-MM-DD, YYYY-MM-DDTHH, now, or an age like 24h or 7d)");
    let (date, hour) = match s.split_once(['T', ' ']) {
        Some((d, h)) => (d, h.parse::<i8>().map_err(|_| not_a_time())?),
        None => (s, 0),
    };
    let d: jiff::civil::Date = date.parse().map_err(|_| not_a_time())?;
    // jiff's checked constructor: `Date::at` panics on an hour outside 0-23 (`T99`, `T-1`, `T24`).
    let t = jiff::civil::Time::new(hour, 0, 0, 0).map_err(|_| format!("`{s}`: the hour must be 00 to 23"))?;
    d.to_datetime(t).to_zoned(TimeZone::UTC).map(|z| z.timestamp()).map_err(|e| format!("`{s}`: {e}"))
}

/// The range for optional `from`/`to` (defaults: the 24 hours before `to`, `to` = now).
pub fn range(from: Option<&str>, to: Option<&str>, now: Timestamp) -> Result<Range, String> {
    let to = match to.filter(|s| !s.trim().is_empty()) {
        Some(t) => parse_time(t, now).map_err(|e| format!("to: {e}"))?,
        None => now,
    };
    let from = match from.filter(|s| !s.trim().is_empty()) {
        Some(f) => parse_time(f, now).map_err(|e| format!("from: {e}"))?,
        None => to.checked_sub(SignedDuration::from_hours(24)).map_err(|e| e.to_string())?,
    };
    if from >= to {
        return Err(format!("from ({from}) must be before to ({to})"));
    }
    Ok(Range { from, to })
}

/// Log-scale latency histogram: bucket i holds values in [0.01 ms · 1.01^i, 0.01 ms · 1.01^(i+1)).
///
/// Fixed log buckets rather than a sketch crate: merging two histograms (hourly rollups into a
/// report) is exact addition, the relative error is bounded (1 %) whatever the distribution, the
/// state is a plain list of (bucket, count) rows that SQL engines read, and there is no
/// dependency to keep.
#[derive(Clone, Debug)]
pub(super) struct Histogram {
    pub(super) counts: Vec<u64>,
    pub(super) n: u64,
    pub(super) sum: f64,
}

const H_MIN: f64 = 0.01;
const H_GROWTH: f64 = 1.01;
const H_BUCKETS: usize = 2000;

impl Histogram {
    pub(super) fn new() -> Histogram {
        Histogram { counts: vec![0; H_BUCKETS], n: 0, sum: 0.0 }
    }
    #[cfg(test)]
    fn add(&mut self, ms: f64) {
        self.add_n(ms, 1);
    }

    /// `n` values of `ms`.
    fn add_n(&mut self, ms: f64, n: u64) {
        if !ms.is_finite() || ms < 0.0 {
            return;
        }
        let i = if ms <= H_MIN { 0 } else { ((ms / H_MIN).ln() / H_GROWTH.ln()) as usize };
        self.counts[i.min(H_BUCKETS - 1)] += n;
        self.n += n;
        self.sum += ms * n as f64;
    }
    fn quantile(&self, q: f64) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                // The bucket's geometric middle.
                return Some(H_MIN * H_GROWTH.powf(i as f64 + 0.5));
            }
        }
        None
    }
}

/// Requests and bytes of one image (or referrer).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Top {
    pub key: String,
    pub requests: u64,
    pub bytes: u64,
    /// Of `requests`, those an edge served from its cache (imported edge logs).
    #[serde(default)]
    pub edge_hits: u64,
}

/// One hour of traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Hour {
    /// Start of the hour (RFC 3339 UTC).
    pub hour: String,
    pub requests: u64,
    pub errors: u64,
    pub bytes: u64,
}

/// Latency summary in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub mean: Option<f64>,
}

/// The summary of a range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub generated_at: String,
    /// Where the events were read from.
    pub store: String,
    pub files: u64,
    /// Lines that were not events (corrupt or foreign), skipped.
    pub bad_lines: u64,
    pub requests: u64,
    /// Responses with status 400 or above.
    pub errors: u64,
    pub unique_images: u64,
    pub status: BTreeMap<String, u64>,
    pub top_images_by_requests: Vec<Top>,
    pub top_images_by_bytes: Vec<Top>,
    /// Output format of image responses (304s and errors have none).
    pub formats: BTreeMap<String, u64>,
    pub source_formats: BTreeMap<String, u64>,
    /// Format negotiated from `Accept` vs fixed by the URL.
    pub negotiation: BTreeMap<String, u64>,
    pub devices: BTreeMap<String, u64>,
    pub dpr: BTreeMap<String, u64>,
    pub widths: BTreeMap<String, u64>,
    pub save_data: u64,
    /// `hit`, `miss`, `coalesced`, `not_modified`.
    pub cache: BTreeMap<String, u64>,
    /// hit / (hit + miss + coalesced): responses with a body served from the variant cache.
    pub cache_hit_ratio: Option<f64>,
    /// (hit + coalesced + not_modified) / all cache outcomes: requests that did not transform.
    pub no_transform_ratio: Option<f64>,
    /// Body bytes of all responses.
    pub bytes_served: u64,
    /// Body bytes of successful GET image responses...
    pub image_bytes_served: u64,
    /// ...and the bytes of the originals they were made from.
    pub original_bytes: u64,
    /// original_bytes - image_bytes_served (negative when variants are larger).
    pub bytes_saved: i64,
    /// bytes_saved / original_bytes.
    pub savings_ratio: Option<f64>,
    pub latency_ms: Latency,
    pub top_referrers: Vec<Top>,
    /// Every hour of the range, oldest first.
    pub per_hour: Vec<Hour>,
    /// Views an edge logged (imported with `imago analytics import`), by what it did: `hit`,
    /// `miss`, `pass`, `synth`, `pipe`.
    #[serde(default)]
    pub edge: BTreeMap<String, u64>,
    /// edge hits / edge views.
    #[serde(default)]
    pub edge_hit_ratio: Option<f64>,
    /// Origin events of requests an edge forwarded (same request id as an edge line): counted
    /// once, as the edge's view; their origin facts (`cache`, timings) still count.
    #[serde(default)]
    pub origin_behind_edge: u64,
    /// Variants (the resolved options, or the URL's options for edge views) by requests.
    #[serde(default)]
    pub top_variants: Vec<Top>,
    /// Hours read from their rollup, and hours read from raw events (the current hour, a
    /// partial hour at either end of the range, or a tenant's report).
    #[serde(default)]
    pub rollup_hours: u64,
    #[serde(default)]
    pub raw_hours: u64,
}

/// Which events a report counts (a non-admin key's: its tenant's images).
pub type Filter = std::sync::Arc<dyn Fn(&Event) -> bool + Send + Sync>;

/// Streaming aggregation over events.
pub struct Aggregator {
    pub(super) range: Range,
    filter: Option<Filter>,
    /// Request ids an edge forwarded to the origin (see `Report::origin_behind_edge`).
    pub(super) edge_ids: HashSet<String>,
    pub(super) edge: BTreeMap<String, u64>,
    pub(super) origin_behind_edge: u64,
    pub(super) variants: HashMap<String, (u64, u64, u64)>,
    pub(super) rollup_hours: u64,
    pub(super) raw_hours: u64,
    pub(super) files: u64,
    pub(super) bad_lines: u64,
    pub(super) requests: u64,
    pub(super) errors: u64,
    pub(super) status: BTreeMap<String, u64>,
    pub(super) images: HashMap<String, (u64, u64, u64)>,
    pub(super) referrers: HashMap<String, (u64, u64, u64)>,
    pub(super) formats: BTreeMap<String, u64>,
    pub(super) source_formats: BTreeMap<String, u64>,
    pub(super) negotiation: BTreeMap<String, u64>,
    pub(super) devices: BTreeMap<String, u64>,
    pub(super) dpr: BTreeMap<String, u64>,
    pub(super) widths: BTreeMap<String, u64>,
    pub(super) save_data: u64,
    pub(super) cache: BTreeMap<String, u64>,
    pub(super) bytes_served: u64,
    pub(super) image_bytes: u64,
    pub(super) original_bytes: u64,
    pub(super) latency: Histogram,
    pub(super) per_hour: BTreeMap<i64, Hour>,
}

fn bump(m: &mut BTreeMap<String, u64>, k: &str) {
    bump_by(m, k, 1);
}

fn bump_by(m: &mut BTreeMap<String, u64>, k: &str, n: u64) {
    if let Some(v) = m.get_mut(k) {
        *v += n;
    } else {
        m.insert(k.to_string(), n);
    }
}

fn top(m: &HashMap<String, (u64, u64, u64)>, by_bytes: bool) -> Vec<Top> {
    let mut v: Vec<Top> =
        m.iter().map(|(k, (r, b, h))| Top { key: k.clone(), requests: *r, bytes: *b, edge_hits: *h }).collect();
    if by_bytes {
        v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(b.requests.cmp(&a.requests)).then(a.key.cmp(&b.key)));
    } else {
        v.sort_by(|a, b| b.requests.cmp(&a.requests).then(b.bytes.cmp(&a.bytes)).then(a.key.cmp(&b.key)));
    }
    v.truncate(TOP);
    v
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Aggregator {
    pub fn new(range: Range) -> Aggregator {
        Aggregator {
            range,
            filter: None,
            edge_ids: HashSet::new(),
            edge: BTreeMap::new(),
            origin_behind_edge: 0,
            variants: HashMap::new(),
            rollup_hours: 0,
            raw_hours: 0,
            files: 0,
            bad_lines: 0,
            requests: 0,
            errors: 0,
            status: BTreeMap::new(),
            images: HashMap::new(),
            referrers: HashMap::new(),
            formats: BTreeMap::new(),
            source_formats: BTreeMap::new(),
            negotiation: BTreeMap::new(),
            devices: BTreeMap::new(),
            dpr: BTreeMap::new(),
            widths: BTreeMap::new(),
            save_data: 0,
            cache: BTreeMap::new(),
            bytes_served: 0,
            image_bytes: 0,
            original_bytes: 0,
            latency: Histogram::new(),
            per_hour: BTreeMap::new(),
        }
    }

    /// Adds the events of one (gzip) file; lines outside the range are skipped.
    pub fn add_file(&mut self, gz: &[u8]) -> Result<(), String> {
        let text = store::decode(gz, MAX_FILE_BYTES)?;
        self.files += 1;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Event>(line) {
                Ok(e) => self.add(&e),
                Err(_) => self.bad_lines += 1,
            }
        }
        Ok(())
    }

    /// Adds another aggregate of the same range (one read in parallel).
    pub fn merge(&mut self, o: Aggregator) {
        fn maps(a: &mut BTreeMap<String, u64>, b: BTreeMap<String, u64>) {
            for (k, v) in b {
                *a.entry(k).or_default() += v;
            }
        }
        fn tops(a: &mut HashMap<String, (u64, u64, u64)>, b: HashMap<String, (u64, u64, u64)>) {
            for (k, (r, by, h)) in b {
                let e = a.entry(k).or_default();
                e.0 += r;
                e.1 += by;
                e.2 += h;
            }
        }
        self.files += o.files;
        self.bad_lines += o.bad_lines;
        self.requests += o.requests;
        self.errors += o.errors;
        self.save_data += o.save_data;
        self.bytes_served += o.bytes_served;
        self.image_bytes += o.image_bytes;
        self.original_bytes += o.original_bytes;
        self.origin_behind_edge += o.origin_behind_edge;
        self.rollup_hours += o.rollup_hours;
        self.raw_hours += o.raw_hours;
        for (a, b) in [
            (&mut self.status, o.status),
            (&mut self.formats, o.formats),
            (&mut self.source_formats, o.source_formats),
            (&mut self.negotiation, o.negotiation),
            (&mut self.devices, o.devices),
            (&mut self.dpr, o.dpr),
            (&mut self.widths, o.widths),
            (&mut self.cache, o.cache),
            (&mut self.edge, o.edge),
        ] {
            maps(a, b);
        }
        tops(&mut self.images, o.images);
        tops(&mut self.referrers, o.referrers);
        tops(&mut self.variants, o.variants);
        for (a, b) in self.latency.counts.iter_mut().zip(o.latency.counts) {
            *a += b;
        }
        self.latency.n += o.latency.n;
        self.latency.sum += o.latency.sum;
        for (h, x) in o.per_hour {
            let e = self.per_hour.entry(h).or_default();
            e.requests += x.requests;
            e.errors += x.errors;
            e.bytes += x.bytes;
        }
        self.edge_ids.extend(o.edge_ids);
    }

    /// Counts only the events `filter` keeps.
    pub fn with_filter(mut self, filter: Option<Filter>) -> Aggregator {
        self.filter = filter;
        self
    }

    /// Adds one event (skipped when its time is unreadable or outside the range, or the filter
    /// drops it).
    pub fn add(&mut self, e: &Event) {
        if self.filter.as_ref().is_some_and(|f| !f(e)) {
            return;
        }
        let Ok(ts) = e.ts.parse::<Timestamp>() else {
            self.bad_lines += 1;
            return;
        };
        if ts < self.range.from || ts >= self.range.to {
            return;
        }
        // The origin's event of a request an edge forwarded: the edge's line is the view.
        if e.edge.is_none() && e.request_id.as_ref().is_some_and(|id| self.edge_ids.contains(id)) {
            self.origin_behind_edge += 1;
            if let Some(c) = &e.cache {
                bump(&mut self.cache, c);
            }
            return;
        }
        let edge_hit = u64::from(e.edge.as_deref() == Some("hit"));
        if let Some(h) = &e.edge {
            bump(&mut self.edge, h);
        }
        if let Some(v) = &e.variant {
            let entry = self.variants.entry(v.clone()).or_default();
            entry.0 += 1;
            entry.1 += e.bytes;
            entry.2 += edge_hit;
        }
        // A line of refused requests stands for `requests` of them (older lines have none: 1).
        let n = e.requests.unwrap_or(1);
        self.requests += n;
        let error = e.status >= 400;
        if error {
            self.errors += n;
        }
        bump_by(&mut self.status, &e.status.to_string(), n);
        self.bytes_served += e.bytes;
        if let Some(k) = &e.key {
            let entry = self.images.entry(k.clone()).or_default();
            entry.0 += 1;
            entry.1 += e.bytes;
            entry.2 += edge_hit;
        }
        if let Some(r) = &e.referrer_host {
            let entry = self.referrers.entry(r.clone()).or_default();
            entry.0 += 1;
            entry.1 += e.bytes;
            entry.2 += edge_hit;
        }
        if let Some(f) = &e.format {
            bump(&mut self.formats, f);
        }
        if let Some(f) = &e.source_format {
            bump(&mut self.source_formats, f);
        }
        if let Some(n) = e.negotiated {
            bump(&mut self.negotiation, if n { "negotiated" } else { "explicit" });
        }
        if let Some(d) = &e.device {
            bump(&mut self.devices, d);
        }
        if let Some(d) = &e.dpr_bucket {
            bump(&mut self.dpr, d);
        }
        if let Some(w) = &e.width_bucket {
            bump(&mut self.widths, w);
        }
        if e.save_data == Some(true) {
            self.save_data += 1;
        }
        if let Some(c) = &e.cache {
            bump_by(&mut self.cache, c, n);
        }
        if e.status == 200 && e.method == "GET" {
            if let Some(src) = e.source_bytes {
                self.image_bytes += e.bytes;
                self.original_bytes += src;
            }
        }
        // A count carries the mean latency of its requests.
        self.latency.add_n(e.latency_ms, n);
        let hour = ts.as_second().div_euclid(3600);
        let h = self.per_hour.entry(hour).or_default();
        h.requests += n;
        h.bytes += e.bytes;
        if error {
            h.errors += n;
        }
    }

    /// The report (`store`: where the events came from).
    pub fn finish(self, store: &str) -> Report {
        let c = |k: &str| self.cache.get(k).copied().unwrap_or(0);
        let (hit, miss, coalesced, nm) = (c("hit"), c("miss"), c("coalesced"), c("not_modified"));
        let fmt = |t: Timestamp| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        // Every hour of the range (bounded), so charts show gaps as zeros.
        let first = self.range.from.as_second().div_euclid(3600);
        let last = (self.range.to.as_second() - 1).div_euclid(3600);
        let mut per_hour = Vec::new();
        if last - first <= 24 * 366 * 10 {
            for h in first..=last {
                let mut row = self.per_hour.get(&h).cloned().unwrap_or_default();
                row.hour = Timestamp::from_second(h * 3600).map(fmt).unwrap_or_default();
                per_hour.push(row);
            }
        }
        let saved = self.original_bytes as i64 - self.image_bytes as i64;
        Report {
            from: fmt(self.range.from),
            to: fmt(self.range.to),
            generated_at: fmt(Timestamp::now()),
            store: store.to_string(),
            files: self.files,
            bad_lines: self.bad_lines,
            requests: self.requests,
            errors: self.errors,
            unique_images: self.images.len() as u64,
            status: self.status,
            top_images_by_requests: top(&self.images, false),
            top_images_by_bytes: top(&self.images, true),
            formats: self.formats,
            source_formats: self.source_formats,
            negotiation: self.negotiation,
            devices: self.devices,
            dpr: self.dpr,
            widths: self.widths,
            save_data: self.save_data,
            cache_hit_ratio: ratio(hit, hit + miss + coalesced),
            no_transform_ratio: ratio(hit + coalesced + nm, hit + miss + coalesced + nm),
            cache: self.cache,
            bytes_served: self.bytes_served,
            image_bytes_served: self.image_bytes,
            original_bytes: self.original_bytes,
            bytes_saved: saved,
            savings_ratio: (self.original_bytes > 0).then(|| saved as f64 / self.original_bytes as f64),
            latency_ms: Latency {
                p50: self.latency.quantile(0.50),
                p95: self.latency.quantile(0.95),
                p99: self.latency.quantile(0.99),
                mean: (self.latency.n > 0).then(|| self.latency.sum / self.latency.n as f64),
            },
            top_referrers: top(&self.referrers, false),
            per_hour,
            edge_hit_ratio: ratio(self.edge.get("hit").copied().unwrap_or(0), self.edge.values().sum()),
            edge: self.edge,
            origin_behind_edge: self.origin_behind_edge,
            top_variants: top(&self.variants, false),
            rollup_hours: self.rollup_hours,
            raw_hours: self.raw_hours,
        }
    }
}

/// The report of a range: hourly rollups where they exist (or can be made: closed hours), raw
/// events for the rest (see [`super::rollup::build_report`]).
pub async fn build(store: &Store, range: Range, filter: Option<Filter>) -> Result<Report, String> {
    super::rollup::build_report(store, range, filter, Timestamp::now()).await
}

/// Adds the events of the files `names` (skipping files that vanished or cannot be read).
pub(super) async fn add_files(store: &Store, mut agg: Aggregator, names: Vec<String>) -> Result<Aggregator, String> {
    for name in names {
        let bytes = match store.get(&name, MAX_FILE_BYTES).await {
            Ok(b) => b,
            // A file deleted by retention between list and read.
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "analytics: cannot read an event file");
                continue;
            }
        };
        agg = tokio::task::spawn_blocking(move || {
            if let Err(e) = agg.add_file(&bytes) {
                tracing::warn!(file = %name, error = %e, "analytics: skipping an unreadable event file");
            }
            agg
        })
        .await
        .map_err(|e| e.to_string())?;
    }
    Ok(agg)
}

/// The request ids in the edge's files of forwarded requests (`names`).
pub(super) async fn edge_ids(store: &Store, names: &[String], into: &mut HashSet<String>) {
    for name in names {
        let Ok(bytes) = store.get(name, MAX_FILE_BYTES).await else { continue };
        let Ok(text) = store::decode(&bytes, MAX_FILE_BYTES) else { continue };
        for line in text.lines() {
            if let Ok(e) = serde_json::from_str::<Event>(line) {
                into.extend(e.request_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2025-03-10T12:34:56Z".parse().unwrap()
    }

    #[test]
    fn times_parse() {
        let n = now();
        assert_eq!(parse_time("now", n).unwrap(), n);
        assert_eq!(parse_time("24h", n).unwrap(), "2025-03-09T12:34:56Z".parse::<Timestamp>().unwrap());
        assert_eq!(parse_time("-7d", n).unwrap(), "2025-03-03T12:34:56Z".parse::<Timestamp>().unwrap());
        assert_eq!(parse_time("2025-03-01", n).unwrap(), "2025-03-01T00:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(parse_time("2025-03-01T07", n).unwrap(), "2025-03-01T07:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(
            parse_time("2025-03-01T07:30:00+01:00", n).unwrap(),
            "2025-03-01T06:30:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(parse_time("yesterday", n).is_err());
        let r = range(None, None, n).unwrap();
        assert_eq!(r.hours(), 24);
        assert!(range(Some("2025-03-02"), Some("2025-03-01"), n).is_err());
    }

    fn ev(ts: &str, key: &str, status: u16, bytes: u64, src: Option<u64>, cache: &str, ms: f64) -> Event {
        Event {
            ts: ts.into(),
            method: "GET".into(),
            key: Some(key.into()),
            status,
            bytes,
            source_bytes: src,
            cache: Some(cache.to_string().into()),
            latency_ms: ms,
            format: (status == 200).then(|| "webp".into()),
            ..Default::default()
        }
    }

    #[test]
    fn aggregation() {
        let r = range(Some("2025-03-10T10"), Some("2025-03-10T13"), now()).unwrap();
        let mut a = Aggregator::new(r);
        a.add(&ev("2025-03-10T10:00:00.000Z", "a.jpg", 200, 100, Some(1000), "miss", 50.0));
        for i in 0..8 {
            a.add(&ev(&format!("2025-03-10T11:0{i}:00.000Z"), "a.jpg", 200, 100, Some(1000), "hit", 1.0));
        }
        a.add(&ev("2025-03-10T12:00:00.000Z", "b.jpg", 200, 5000, Some(2000), "hit", 2.0));
        a.add(&ev("2025-03-10T12:59:59.999Z", "c.jpg", 404, 40, None, "miss", 3.0));
        // Outside the range.
        a.add(&ev("2025-03-10T13:00:00.000Z", "a.jpg", 200, 100, Some(1000), "hit", 1.0));
        a.add(&Event { ts: "bad".into(), ..Default::default() });
        let rep = a.finish("test");
        assert_eq!(rep.requests, 11);
        assert_eq!(rep.errors, 1);
        assert_eq!(rep.bad_lines, 1);
        assert_eq!(rep.unique_images, 3);
        assert_eq!(rep.top_images_by_requests[0], Top { key: "a.jpg".into(), requests: 9, bytes: 900, edge_hits: 0 });
        assert_eq!(rep.top_images_by_bytes[0].key, "b.jpg");
        assert_eq!(rep.image_bytes_served, 900 + 5000);
        assert_eq!(rep.original_bytes, 9000 + 2000);
        assert_eq!(rep.bytes_saved, 11000 - 5900);
        assert_eq!(rep.cache["hit"], 9);
        assert!((rep.cache_hit_ratio.unwrap() - 9.0 / 11.0).abs() < 1e-9);
        assert_eq!(rep.per_hour.len(), 3);
        assert_eq!(rep.per_hour[1].hour, "2025-03-10T11:00:00Z");
        assert_eq!(rep.per_hour.iter().map(|h| h.requests).collect::<Vec<_>>(), vec![1, 8, 2]);
        let p50 = rep.latency_ms.p50.unwrap();
        assert!((p50 - 1.0).abs() < 0.02, "{p50}");
        let p95 = rep.latency_ms.p95.unwrap();
        assert!((p95 - 50.0).abs() < 0.6, "{p95}");
        assert_eq!(rep.formats["webp"], 10);
    }

    #[test]
    fn histogram_quantiles_are_within_a_percent() {
        let mut h = Histogram::new();
        for i in 1..=1000 {
            h.add(i as f64);
        }
        for (q, want) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = h.quantile(q).unwrap();
            assert!((got - want).abs() / want < 0.011, "q{q}: {got} vs {want}");
        }
        assert!(Histogram::new().quantile(0.5).is_none());
    }
}
