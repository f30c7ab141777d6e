//! Hourly rollups: one small file per closed hour, `rollups/dt=YYYY-MM-DD/hour=HH/rollup.json.zst`
//! next to the raw events (same directory or bucket prefix), holding the hour's aggregates as
//! JSON lines (one row per dimension value: `total`, `status`, `image`, `variant`, `format`,
//! `source_format`, `negotiation`, `device`, `dpr`, `width`, `cache`, `edge`, `referrer`, and
//! `latency` histogram buckets). SQL engines read them directly (docs/analytics.md); reports
//! merge them and read raw events only for hours without one (the current hour, the partial hours
//! at either end of a range, an hour closed less than [`GRACE_SECS`] ago, or a tenant's report,
//! which must filter event by event).
//!
//! A rollup is made when an hour closes (the writer task checks every [`CATCH_UP_EVERY`]), or by
//! the first report that needs it. Whoever writes raw events into a closed hour (the edge log
//! importer, a late retry) removes the rollups that hour feeds, and the next report remakes them.
//! Edge hits and origin misses are told apart by request id: an origin event whose
//! `request_id` is on an edge line that went to the origin (`miss`, `pass`, `pipe`; those lines
//! are in the edge's `-fwd-` files of the same or the previous hour) is not a second view.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::report::{self, Aggregator, Filter, Range, Report};
use super::store::{self, Store, ROLLUP_FILE};

/// An hour is rolled up this long after it ends (edge logs and the origin's last flush land
/// first; later writes into it remove its rollup).
pub const GRACE_SECS: i64 = 600;
/// How often the writer task rolls up the hours that closed.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(300);
/// Most rollups read at once by a report.
const READ_LANES: usize = 4;
/// Largest rollup file read.
const MAX_ROLLUP_BYTES: u64 = 256 * 1024 * 1024;

fn zero(n: &u64) -> bool {
    *n == 0
}

fn zero_f(n: &f64) -> bool {
    *n == 0.0
}

/// One row of a rollup (see the module docs and docs/analytics.md for the columns of each `dim`).
/// Zero counts are left out of the file (SQL reads them as NULL, which `sum` skips). Read rows
/// borrow their strings from the file's text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Row<'a> {
    /// Start of the hour, RFC 3339 UTC.
    #[serde(borrow)]
    pub hour: Cow<'a, str>,
    #[serde(borrow)]
    pub dim: Cow<'a, str>,
    /// The dimension's value (absent on the `total` row; the bucket index on `latency` rows).
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub value: Option<Cow<'a, str>>,
    pub requests: u64,
    #[serde(skip_serializing_if = "zero")]
    pub bytes: u64,
    #[serde(skip_serializing_if = "zero")]
    pub edge_hits: u64,
    #[serde(skip_serializing_if = "zero")]
    pub errors: u64,
    #[serde(skip_serializing_if = "zero")]
    pub image_bytes: u64,
    #[serde(skip_serializing_if = "zero")]
    pub original_bytes: u64,
    #[serde(skip_serializing_if = "zero")]
    pub save_data: u64,
    #[serde(skip_serializing_if = "zero_f")]
    pub latency_sum_ms: f64,
    #[serde(skip_serializing_if = "zero")]
    pub files: u64,
    #[serde(skip_serializing_if = "zero")]
    pub bad_lines: u64,
    #[serde(skip_serializing_if = "zero")]
    pub origin_behind_edge: u64,
}

/// Whether an event file holds an edge's forwarded requests (`~edge-{name}-fwd-…`).
pub fn is_forwarded(name: &str) -> bool {
    name.rsplit('/').next().is_some_and(|f| f.starts_with("~edge-") && f.contains("-fwd-"))
}

fn hour_start(h: i64) -> Timestamp {
    Timestamp::from_second(h * 3600).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn hour_text(h: i64) -> String {
    hour_start(h).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `dt=…/hour=…/rollup.json.zst` of hour `h` (hours since the epoch).
pub fn name_of(h: i64) -> String {
    let p = store::partition_of(&hour_text(h)).unwrap_or_default();
    format!("{p}/{ROLLUP_FILE}")
}

/// The rows of an aggregate of one hour.
pub fn rows_of(a: &Aggregator, h: i64) -> Vec<Row<'static>> {
    let hour = hour_text(h);
    let row = |dim: &'static str, value: Option<String>, requests: u64| Row {
        hour: Cow::Owned(hour.clone()),
        dim: Cow::Borrowed(dim),
        value: value.map(Cow::Owned),
        requests,
        ..Row::default()
    };
    let mut out = vec![Row {
        errors: a.errors,
        bytes: a.bytes_served,
        edge_hits: a.edge.get("hit").copied().unwrap_or(0),
        image_bytes: a.image_bytes,
        original_bytes: a.original_bytes,
        save_data: a.save_data,
        latency_sum_ms: a.latency.sum,
        files: a.files,
        bad_lines: a.bad_lines,
        origin_behind_edge: a.origin_behind_edge,
        ..row("total", None, a.requests)
    }];
    let maps = [
        ("status", &a.status),
        ("format", &a.formats),
        ("source_format", &a.source_formats),
        ("negotiation", &a.negotiation),
        ("device", &a.devices),
        ("dpr", &a.dpr),
        ("width", &a.widths),
        ("cache", &a.cache),
        ("edge", &a.edge),
    ];
    for (dim, m) in maps {
        out.extend(m.iter().map(|(k, v)| row(dim, Some(k.clone()), *v)));
    }
    for (dim, m) in [("image", &a.images), ("referrer", &a.referrers), ("variant", &a.variants)] {
        let mut keys: Vec<_> = m.iter().collect();
        keys.sort();
        out.extend(keys.into_iter().map(|(k, (r, b, e))| Row {
            bytes: *b,
            edge_hits: *e,
            ..row(dim, Some(k.clone()), *r)
        }));
    }
    for (i, c) in a.latency.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        out.push(row("latency", Some(i.to_string()), *c));
    }
    out
}

fn add_to(m: &mut std::collections::HashMap<String, (u64, u64, u64)>, r: &Row) {
    let Some(k) = r.value.as_deref() else { return };
    // Looked up by the borrowed key: a String is made only for a new one.
    let e = match m.get_mut(k) {
        Some(e) => e,
        None => m.entry(k.to_string()).or_default(),
    };
    e.0 += r.requests;
    e.1 += r.bytes;
    e.2 += r.edge_hits;
}

/// Adds a rollup's rows to a report's aggregate.
pub fn add_rows(a: &mut Aggregator, rows: &[Row]) {
    for r in rows {
        let v = r.value.as_deref().unwrap_or("");
        let count = |m: &mut std::collections::BTreeMap<String, u64>| match m.get_mut(v) {
            Some(n) => *n += r.requests,
            None => {
                m.insert(v.to_string(), r.requests);
            }
        };
        match r.dim.as_ref() {
            "total" => {
                a.requests += r.requests;
                a.errors += r.errors;
                a.bytes_served += r.bytes;
                a.image_bytes += r.image_bytes;
                a.original_bytes += r.original_bytes;
                a.save_data += r.save_data;
                a.latency.sum += r.latency_sum_ms;
                a.files += r.files;
                a.bad_lines += r.bad_lines;
                a.origin_behind_edge += r.origin_behind_edge;
                if let Ok(t) = r.hour.parse::<Timestamp>() {
                    let h = a.per_hour.entry(t.as_second().div_euclid(3600)).or_default();
                    h.requests += r.requests;
                    h.errors += r.errors;
                    h.bytes += r.bytes;
                }
            }
            "status" => count(&mut a.status),
            "format" => count(&mut a.formats),
            "source_format" => count(&mut a.source_formats),
            "negotiation" => count(&mut a.negotiation),
            "device" => count(&mut a.devices),
            "dpr" => count(&mut a.dpr),
            "width" => count(&mut a.widths),
            "cache" => count(&mut a.cache),
            "edge" => count(&mut a.edge),
            "image" => add_to(&mut a.images, r),
            "referrer" => add_to(&mut a.referrers, r),
            "variant" => add_to(&mut a.variants, r),
            "latency" => {
                if let Some(i) = v.parse::<usize>().ok().filter(|i| *i < a.latency.counts.len()) {
                    a.latency.counts[i] += r.requests;
                    a.latency.n += r.requests;
                }
            }
            _ => {}
        }
    }
}

/// Compressed JSON lines of `rows`.
pub fn encode(rows: &[Row]) -> Result<Vec<u8>, String> {
    let mut lines = Vec::with_capacity(rows.len() * 200);
    for r in rows {
        serde_json::to_writer(&mut lines, r).map_err(|e| e.to_string())?;
        lines.push(b'\n');
    }
    let mut enc = store::Encoder::new(store::Codec::Zstd)?;
    enc.write(&lines)?;
    enc.finish()
}

/// Adds the rows of a rollup file's text, one line at a time (a line that is not a row is
/// skipped and counted in `bad_lines`, as in event files).
pub fn add_text(a: &mut Aggregator, text: &str) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Row>(line) {
            Ok(row) => add_rows(a, std::slice::from_ref(&row)),
            Err(_) => a.bad_lines += 1,
        }
    }
}

/// Adds the rollup of hour `h` to `a` (decompressed, parsed and merged on a blocking thread).
/// `Err` when the file cannot be read or is not zstd (then `a` is unchanged).
pub async fn read_into(store: &Store, h: i64, a: Aggregator) -> (Aggregator, Result<(), String>) {
    let bytes = match store.rollups().get(&name_of(h), MAX_ROLLUP_BYTES).await {
        Ok(b) => b,
        Err(e) => return (a, Err(e)),
    };
    let range = a.range;
    let done = tokio::task::spawn_blocking(move || {
        let mut a = a;
        match store::decode(&bytes, MAX_ROLLUP_BYTES) {
            Ok(text) => {
                add_text(&mut a, &text);
                (a, Ok(()))
            }
            Err(e) => (a, Err(e)),
        }
    })
    .await;
    done.unwrap_or_else(|e| (Aggregator::new(range), Err(e.to_string())))
}

/// Reads the rollup of hour `h`.
pub async fn read(store: &Store, h: i64) -> Result<Vec<Row<'static>>, String> {
    let bytes = store.rollups().get(&name_of(h), MAX_ROLLUP_BYTES).await?;
    let text = store::decode(&bytes, MAX_ROLLUP_BYTES)?;
    let owned = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let r: Row = serde_json::from_str(l).map_err(|e| e.to_string())?;
            Ok(Row { hour: owned(r.hour), dim: owned(r.dim), value: r.value.map(owned), ..r })
        })
        .collect()
}

/// The hours in `[from, to)` that have a rollup.
pub async fn rolled_up(store: &Store, from: Timestamp, to: Timestamp) -> Result<BTreeSet<i64>, String> {
    let names = store.rollups().list(from, to).await?;
    Ok(names
        .iter()
        .filter(|n| n.ends_with(ROLLUP_FILE))
        .filter_map(|n| {
            let mut p = n.split('/');
            let day = p.next()?.strip_prefix("dt=")?;
            let hour = p.next()?.strip_prefix("hour=")?;
            let t: Timestamp = format!("{day}T{hour}:00:00Z").parse().ok()?;
            Some(t.as_second().div_euclid(3600))
        })
        .collect())
}

/// The events of hours `[first, last]` (whole hours, clipped to `range` by the aggregator),
/// with the edge's forwarded request ids of those hours and of the hour before.
async fn add_raw(store: &Store, mut a: Aggregator, first: i64, last: i64) -> Result<Aggregator, String> {
    let names = store.list(hour_start(first), hour_start(last + 1)).await?;
    let before = store.list(hour_start(first - 1), hour_start(first)).await?;
    let fwd: Vec<String> = before.into_iter().chain(names.iter().cloned()).filter(|n| is_forwarded(n)).collect();
    report::edge_ids(store, &fwd, &mut a.edge_ids).await;
    report::add_files(store, a, names).await
}

/// The aggregate of hour `h` from its raw events (`None`: the hour has no event file).
pub async fn aggregate_hour(store: &Store, h: i64) -> Result<Option<Aggregator>, String> {
    if store.list(hour_start(h), hour_start(h + 1)).await?.is_empty() {
        return Ok(None);
    }
    let a = Aggregator::new(Range { from: hour_start(h), to: hour_start(h + 1) });
    add_raw(store, a, h, h).await.map(Some)
}

/// Makes and writes the rollup of hour `h`; returns its rows (`None`: no events that hour).
pub async fn make(store: &Store, h: i64) -> Result<Option<Vec<Row<'static>>>, String> {
    let Some(a) = aggregate_hour(store, h).await? else { return Ok(None) };
    let rows = rows_of(&a, h);
    let body = encode(&rows)?;
    store.rollups().put(&name_of(h), body).await?;
    Ok(Some(rows))
}

/// Rolls up the closed hours of the last `hours` hours that have events and no rollup.
pub async fn catch_up(store: &Store, now: Timestamp, hours: i64) -> Result<usize, String> {
    let last = (now.as_second() - GRACE_SECS).div_euclid(3600) - 1;
    let first = last - hours + 1;
    let have = rolled_up(store, hour_start(first), hour_start(last + 1)).await?;
    let mut made = 0;
    for h in (first..=last).filter(|h| !have.contains(h)) {
        if make(store, h).await?.is_some() {
            made += 1;
        }
    }
    Ok(made)
}

/// Removes the rollups fed by new raw events of hours `hours` (each hour's and the next's: the
/// next hour's origin events are matched against this hour's edge lines).
pub async fn invalidate(store: &Store, hours: &BTreeSet<i64>) -> Result<(), String> {
    let doomed: BTreeSet<i64> = hours.iter().flat_map(|h| [*h, h + 1]).collect();
    for h in doomed {
        store.rollups().remove(&name_of(h)).await?;
    }
    Ok(())
}

/// The report of `range` at `now`: rollups for the whole, closed hours (made when missing),
/// raw events for the others. A tenant's report (`filter`) reads raw events throughout.
pub async fn build_report(
    store: &Store,
    range: Range,
    filter: Option<Filter>,
    now: Timestamp,
) -> Result<Report, String> {
    let first = range.from.as_second().div_euclid(3600);
    let last = (range.to.as_second() - 1).div_euclid(3600);
    let tenant = filter.is_some();
    let mut a = Aggregator::new(range).with_filter(filter);
    let mut raw: Vec<i64> = Vec::new();
    if tenant {
        raw.extend(first..=last);
    } else {
        let have = rolled_up(store, hour_start(first), hour_start(last + 1)).await?;
        let mut to_read: Vec<i64> = Vec::new();
        for h in first..=last {
            let whole = h * 3600 >= range.from.as_second() && (h + 1) * 3600 <= range.to.as_second();
            let closed = (h + 1) * 3600 <= now.as_second() - GRACE_SECS;
            if !(whole && closed) {
                raw.push(h);
                continue;
            }
            if have.contains(&h) {
                to_read.push(h);
                continue;
            }
            let rows = {
                match aggregate_hour(store, h).await? {
                    None => None,
                    Some(ha) => {
                        let rows = rows_of(&ha, h);
                        // A reader without write access still answers (from memory).
                        match encode(&rows) {
                            Ok(body) => {
                                if let Err(e) = store.rollups().put(&name_of(h), body).await {
                                    tracing::warn!(hour = h, error = %e, "analytics: cannot write a rollup");
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "analytics: cannot encode a rollup"),
                        }
                        Some(rows)
                    }
                }
            };
            if let Some(rows) = rows {
                add_rows(&mut a, &rows);
                a.rollup_hours += 1;
            }
        }
        // The existing rollups, in parallel lanes (each decompresses and parses on a blocking
        // thread), merged; one that cannot be read is remade.
        let lanes = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, READ_LANES);
        let per_lane = to_read.len().div_ceil(lanes).max(1);
        let mut tasks = Vec::new();
        for chunk in to_read.chunks(per_lane) {
            let (store, chunk) = (store.clone(), chunk.to_vec());
            tasks.push(tokio::spawn(async move {
                let mut part = Aggregator::new(range);
                let mut failed = Vec::new();
                for h in chunk {
                    let (back, read) = read_into(&store, h, part).await;
                    part = back;
                    match read {
                        Ok(()) => part.rollup_hours += 1,
                        Err(e) => failed.push((h, e)),
                    }
                }
                (part, failed)
            }));
        }
        for t in tasks {
            let (part, failed) = t.await.map_err(|e| e.to_string())?;
            a.merge(part);
            for (h, e) in failed {
                tracing::warn!(hour = h, error = %e, "analytics: unreadable rollup, remaking it");
                if let Some(rows) = make(store, h).await? {
                    add_rows(&mut a, &rows);
                    a.rollup_hours += 1;
                }
            }
        }
    }
    // Contiguous runs of raw hours: one listing each.
    let mut i = 0;
    while i < raw.len() {
        let mut j = i;
        while j + 1 < raw.len() && raw[j + 1] == raw[j] + 1 {
            j += 1;
        }
        a.raw_hours += (j - i + 1) as u64;
        a = add_raw(store, a, raw[i], raw[j]).await?;
        i = j + 1;
    }
    Ok(a.finish(&store.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::record::Event;

    fn ev(ts: &str, key: &str, edge: Option<&'static str>, id: Option<&str>, cache: Option<&'static str>) -> Event {
        Event {
            ts: ts.into(),
            method: "GET".into(),
            status: 200,
            bytes: 100,
            latency_ms: 2.0,
            key: Some(key.into()),
            format: Some("webp".into()),
            variant: Some("w:100".into()),
            request_id: id.map(String::from),
            edge: edge.map(Into::into),
            cache: cache.map(Into::into),
            ..Event::default()
        }
    }

    #[test]
    fn rows_round_trip_into_the_same_report() {
        let h = Timestamp::from_second(1_740_866_400).unwrap().as_second() / 3600;
        let range = Range { from: hour_start(h), to: hour_start(h + 1) };
        let mut direct = Aggregator::new(range);
        direct.edge_ids.insert("e2".into());
        let events = [
            ev("2025-03-01T22:00:01.000Z", "a.jpg", Some("hit"), Some("e1"), None),
            ev("2025-03-01T22:00:02.000Z", "a.jpg", Some("miss"), Some("e2"), None),
            ev("2025-03-01T22:00:02.100Z", "a.jpg", None, Some("e2"), Some("miss")),
            ev("2025-03-01T22:10:00.000Z", "b.jpg", None, Some("direct"), Some("hit")),
        ];
        for e in &events {
            direct.add(e);
        }
        let rows = rows_of(&direct, h);
        let body = encode(&rows).unwrap();
        let text = store::decode(&body, 1 << 20).unwrap();
        let back: Vec<Row> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(back, rows);
        let mut merged = Aggregator::new(range);
        add_rows(&mut merged, &back);
        let mut streamed = Aggregator::new(range);
        add_text(&mut streamed, &format!("{text}not a row\n"));
        let mut streamed = streamed.finish("s");
        assert_eq!(streamed.bad_lines, 1);
        streamed.bad_lines = 0;
        streamed.generated_at.clear();
        let (mut want, mut got) = (direct.finish("s"), merged.finish("s"));
        // Three views (the origin's event of the edge miss is not a second one).
        assert_eq!((want.requests, want.origin_behind_edge), (3, 1));
        assert_eq!(want.top_images_by_requests[0].requests, 2);
        assert_eq!(want.top_images_by_requests[0].edge_hits, 1);
        assert_eq!(want.edge_hit_ratio, Some(0.5));
        assert_eq!(want.cache.get("miss"), Some(&1), "origin facts still count");
        want.generated_at.clear();
        got.generated_at.clear();
        assert_eq!(got, want);
        assert_eq!(streamed, want);
        // Zero counts are left out of the file.
        assert!(!text.contains("\"errors\":0"), "{text}");
    }

    #[test]
    fn forwarded_files_are_told_by_name() {
        assert!(is_forwarded("dt=2025-03-01/hour=22/~edge-varnish-fwd-0a1b.jsonl.zst"));
        assert!(!is_forwarded("dt=2025-03-01/hour=22/~edge-varnish-own-0a1b.jsonl.zst"));
        assert!(!is_forwarded("dt=2025-03-01/hour=22/host-fwd-1.jsonl.zst"));
        assert_eq!(name_of(1_740_866_400 / 3600), "dt=2025-03-01/hour=22/rollup.json.zst");
    }
}
