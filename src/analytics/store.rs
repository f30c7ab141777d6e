//! Where event files live: a local directory (embedded mode) or the bucket under `analytics/`
//! (S3 mode), with the same relative layout `dt=YYYY-MM-DD/hour=HH/{instance}-{ulid}.jsonl.zst`
//! (`.jsonl.gz` with `IMAGO_ANALYTICS_COMPRESSION=gzip`; readers take both).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::record::Event;
use crate::config::Config;
use crate::storage::{local, Bucket, S3Client, Storage, StorageError};

/// Key prefix of event files in the bucket.
pub const S3_PREFIX: &str = "analytics/";
/// Extensions of event files (zstd, gzip).
pub use crate::config::CODEC_EXTS as EXTS;

/// Whether a file name is an event file or an hourly rollup (temp files start with a dot and
/// end in `.tmp`).
pub fn is_event_file(name: &str) -> bool {
    EXTS.iter().any(|e| name.ends_with(e)) || name.ends_with(ROLLUP_FILE)
}

/// The directory (S3: the prefix under `analytics/`) of the hourly rollups.
pub const ROLLUP_DIR: &str = "rollups";
/// The name of an hour's rollup file (in `rollups/dt=…/hour=…/`).
pub const ROLLUP_FILE: &str = "rollup.json.zst";

pub use crate::config::Codec;

/// zstd's fast mode `--fast=3`: on event lines ~40 % less CPU than level 1 (and than gzip's
/// fastest level), files ~25 % smaller than gzip's (measured by `writer::tests::writer_cost`).
pub const ZSTD_LEVEL: i32 = -3;

/// A streaming compressor for one file.
pub enum Encoder {
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
}

impl Encoder {
    pub fn new(codec: Codec) -> Result<Encoder, String> {
        Ok(match codec {
            Codec::Zstd => {
                Encoder::Zstd(zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL).map_err(|e| e.to_string())?)
            }
            Codec::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())),
        })
    }

    /// Compresses a chunk. Write large chunks: many small writes are slow (flate2 zeroes the
    /// output vector's spare capacity on every call).
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), String> {
        match self {
            Encoder::Zstd(e) => e.write_all(chunk),
            Encoder::Gzip(e) => e.write_all(chunk),
        }
        .map_err(|e| e.to_string())
    }

    /// The complete file.
    pub fn finish(self) -> Result<Vec<u8>, String> {
        match self {
            Encoder::Zstd(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
        }
        .map_err(|e| e.to_string())
    }
}

/// The `Content-Type` of an event file, from its name.
fn content_type(name: &str) -> &'static str {
    if name.ends_with(".gz") {
        "application/gzip"
    } else {
        "application/zstd"
    }
}

/// An event file store.
#[derive(Clone)]
pub enum Store {
    Local {
        dir: PathBuf,
    },
    /// `prefix`: [`S3_PREFIX`], or `analytics/rollups/` for the rollups.
    S3 {
        bucket: Bucket,
        prefix: String,
    },
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The hour partition (`dt=YYYY-MM-DD/hour=HH`) of an RFC 3339 UTC timestamp.
pub fn partition_of(ts: &str) -> Option<String> {
    let key: &[u8; 13] = ts.as_bytes().get(..13)?.try_into().ok()?;
    is_hour_key(key).then(|| format!("dt={}/hour={}", &ts[..10], &ts[11..13]))
}

/// `YYYY-MM-DD?HH` with digits where digits belong.
fn is_hour_key(k: &[u8; 13]) -> bool {
    k.iter().enumerate().all(|(i, b)| match i {
        4 | 7 => *b == b'-',
        10 => true,
        _ => b.is_ascii_digit(),
    })
}

/// A new file name in `partition` for `instance` (ULIDs sort by creation time).
pub fn file_name(partition: &str, instance: &str, codec: Codec) -> String {
    format!("{partition}/{instance}-{}{}", super::new_ulid().to_ascii_lowercase(), codec.ext())
}

/// JSON lines, compressed with `codec` (one file body).
pub fn encode(events: &[Event], codec: Codec) -> Result<Vec<u8>, String> {
    let mut lines = Vec::with_capacity(events.len() * 640);
    for e in events {
        serde_json::to_writer(&mut lines, e).map_err(|e| e.to_string())?;
        lines.push(b'\n');
    }
    let mut enc = Encoder::new(codec)?;
    enc.write(&lines)?;
    enc.finish()
}

/// The hour (`YYYY-MM-DDTHH`) of a serialised event: every line starts `{"ts":"…`.
pub fn line_partition(line: &[u8]) -> Option<[u8; 13]> {
    let rest = line.strip_prefix(b"{\"ts\":\"")?;
    let key: [u8; 13] = rest.get(..13)?.try_into().ok()?;
    is_hour_key(&key).then_some(key)
}

/// `YYYY-MM-DDTHH` → `dt=YYYY-MM-DD/hour=HH`.
pub fn partition_name(key: &[u8; 13]) -> String {
    let k = String::from_utf8_lossy(key);
    partition_of(&k).unwrap_or_else(|| "dt=1970-01-01/hour=00".into())
}

/// Decompresses a file, zstd or gzip by its magic bytes (several frames or members too, as
/// `cat a.zst b.zst` makes), to at most `limit` bytes of text.
pub fn decode(bytes: &[u8], limit: u64) -> Result<String, String> {
    let mut out = String::new();
    if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(bytes)
            .map_err(|e| format!("not zstd JSON lines: {e}"))?
            .take(limit)
            .read_to_string(&mut out)
            .map_err(|e| format!("not zstd JSON lines: {e}"))?;
    } else {
        flate2::read::MultiGzDecoder::new(bytes)
            .take(limit)
            .read_to_string(&mut out)
            .map_err(|e| format!("not gzip or zstd JSON lines: {e}"))?;
    }
    Ok(out)
}

/// Hour partitions overlapping `[from, to)`, as `(dt=…, hour=…)` names grouped by day.
pub fn partitions(from: Timestamp, to: Timestamp) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if to <= from {
        return out;
    }
    let z = from.to_zoned(TimeZone::UTC);
    let Ok(mut h) = z.round(jiff::ZonedRound::new().smallest(jiff::Unit::Hour).mode(jiff::RoundMode::Trunc)) else {
        return out;
    };
    // Bounded: at most ten years of hours.
    for _ in 0..(24 * 366 * 10) {
        if h.timestamp() >= to {
            break;
        }
        out.entry(format!("dt={}", h.strftime("%Y-%m-%d"))).or_default().push(format!("hour={}", h.strftime("%H")));
        h = match h.checked_add(1.hour()) {
            Ok(n) => n,
            Err(_) => break,
        };
    }
    out
}

/// An object store error as the message of `what` (`PUT analytics/…`, `list analytics/dt=…/`).
fn s3_err(what: &str, e: StorageError) -> String {
    match e {
        StorageError::Status { status, .. } => format!("{what}: the store answered {status}"),
        other => format!("{what}: {other}"),
    }
}

impl Store {
    /// The store for a configuration: the bucket (on the shared object store client) in S3
    /// mode, else `IMAGO_ANALYTICS_DIR`.
    pub fn new(cfg: &Config, storage: &Storage) -> Result<Store, String> {
        Store::build(cfg, storage.s3().cloned())
    }

    /// [`Store::new`] with an object store client of its own (`imago analytics`: timeout
    /// `IMAGO_FETCH_TIMEOUT_MS`, at least 1 s; no local root is opened).
    pub fn from_config(cfg: &Config) -> Result<Store, String> {
        let timeout = Duration::from_millis(cfg.raw.fetch_timeout_ms.max(1000));
        let s3 = match (&cfg.s3, &cfg.raw.s3_bucket) {
            (Some(s3), Some(_)) => Some(S3Client::new(s3, timeout)?),
            _ => None,
        };
        Store::build(cfg, s3)
    }

    fn build(cfg: &Config, s3: Option<S3Client>) -> Result<Store, String> {
        match (s3, &cfg.raw.s3_bucket) {
            (Some(s3), Some(name)) => {
                let bucket = s3.bucket(name).map_err(|e| format!("analytics {e}"))?;
                Ok(Store::S3 { bucket, prefix: S3_PREFIX.into() })
            }
            _ => Ok(Store::Local { dir: cfg.raw.analytics_dir.clone() }),
        }
    }

    /// The store of the hourly rollups: `rollups/` under the same directory or prefix, with the
    /// same `dt=…/hour=…/` layout.
    pub fn rollups(&self) -> Store {
        match self {
            Store::Local { dir } => Store::Local { dir: dir.join(ROLLUP_DIR) },
            Store::S3 { bucket, prefix } => {
                Store::S3 { bucket: bucket.clone(), prefix: format!("{prefix}{ROLLUP_DIR}/") }
            }
        }
    }

    /// Removes one file (a file already gone is fine).
    pub async fn remove(&self, name: &str) -> Result<(), String> {
        if name.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(format!("bad file name {name}"));
        }
        match self {
            Store::Local { dir } => {
                let p = dir.join(name);
                tokio::task::spawn_blocking(move || match local::remove_file(&p) {
                    Ok(()) | Err(StorageError::NotFound) => Ok(()),
                    Err(e) => Err(e.to_string()),
                })
                .await
                .map_err(|e| e.to_string())?
            }
            Store::S3 { bucket, prefix } => {
                let key = format!("{prefix}{name}");
                bucket.delete(&key).await.map_err(|e| s3_err(&format!("DELETE {key}"), e))
            }
        }
    }

    /// Where files go, for messages.
    pub fn describe(&self) -> String {
        match self {
            Store::Local { dir } => dir.display().to_string(),
            Store::S3 { bucket, prefix } => format!("s3://{}/{prefix}", bucket.name()),
        }
    }

    /// Writes one file atomically (readers never see a partial file).
    pub async fn put(&self, name: &str, body: Vec<u8>) -> Result<(), String> {
        match self {
            Store::Local { dir } => {
                let (dir, name) = (dir.clone(), name.to_string());
                tokio::task::spawn_blocking(move || local::write_atomic(&dir, &name, &body).map_err(|e| e.to_string()))
                    .await
                    .map_err(|e| e.to_string())?
            }
            Store::S3 { bucket, prefix } => {
                let key = format!("{prefix}{name}");
                bucket.put(&key, content_type(name), body).await.map_err(|e| s3_err(&format!("PUT {key}"), e))
            }
        }
    }

    /// Relative names of the files in the hour partitions overlapping `[from, to)`, sorted.
    pub async fn list(&self, from: Timestamp, to: Timestamp) -> Result<Vec<String>, String> {
        let parts = partitions(from, to);
        match self {
            Store::Local { dir } => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || list_local(&dir, &parts)).await.map_err(|e| e.to_string())?
            }
            Store::S3 { bucket, prefix } => {
                let mut out = Vec::new();
                for (day, hours) in &parts {
                    let day_prefix = format!("{prefix}{day}/");
                    let keys = bucket.list(&day_prefix).await.map_err(|e| s3_err(&format!("list {day_prefix}"), e))?;
                    for key in keys {
                        let Some(rel) = key.strip_prefix(prefix.as_str()) else { continue };
                        let hour_ok = rel.split('/').nth(1).is_some_and(|h| hours.iter().any(|x| x == h));
                        if hour_ok && is_event_file(rel) {
                            out.push(rel.to_string());
                        }
                    }
                }
                out.sort();
                Ok(out)
            }
        }
    }

    /// Reads one file (at most `limit` bytes).
    pub async fn get(&self, name: &str, limit: u64) -> Result<Vec<u8>, String> {
        if name.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(format!("bad file name {name}"));
        }
        match self {
            Store::Local { dir } => {
                let p = dir.join(name);
                tokio::task::spawn_blocking(move || local::read_file(&p, limit).map_err(|e| e.to_string()))
                    .await
                    .map_err(|e| e.to_string())?
            }
            Store::S3 { bucket, prefix } => {
                let key = format!("{prefix}{name}");
                match bucket.get(&key, limit).await {
                    Ok(o) => Ok(o.bytes.to_vec()),
                    Err(StorageError::TooLarge { limit }) => Err(format!("{key} is larger than {limit} bytes")),
                    Err(e) => Err(s3_err(&format!("GET {key}"), e)),
                }
            }
        }
    }
}

/// How long and how much event files are kept (`IMAGO_ANALYTICS_RETENTION_DAYS`,
/// `IMAGO_ANALYTICS_MAX_MB`; `None`: no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
}

/// What one retention pass removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub files: usize,
    pub bytes: u64,
}

/// Keys per listing page in S3 mode (the S3 maximum).
pub const LIST_PAGE: usize = 1000;

/// The start of the hour partition a relative name (`dt=YYYY-MM-DD/hour=HH/…`) is in.
fn partition_start(name: &str) -> Option<Timestamp> {
    let mut parts = name.split('/');
    let day = parts.next()?.strip_prefix("dt=")?;
    let hour = parts.next()?.strip_prefix("hour=")?;
    let ts = format!("{day}T{hour}:00:00Z");
    (hour.len() == 2).then(|| ts.parse().ok()).flatten()
}

/// The event files (`(name, bytes)`) that retention removes at `now`: every file of an hour
/// that ended more than `max_age` ago; then, while the rest is over `max_bytes`, the oldest
/// first (by hour, then name: names sort by creation time). Files of the current hour (or
/// later) are never removed, nor names that are not event files in an hour partition.
pub fn expired(files: &[(String, u64)], r: &Retention, now: Timestamp) -> Vec<String> {
    let current = now.as_second().div_euclid(3600) * 3600;
    let mut kept: Vec<(Timestamp, &str, u64)> = Vec::new();
    let mut out = Vec::new();
    let mut total = 0u64;
    for (name, size) in files {
        let Some(start) = partition_start(name).filter(|_| is_event_file(name)) else { continue };
        if start.as_second() >= current {
            total = total.saturating_add(*size);
            continue;
        }
        let end = start.as_second() + 3600;
        let too_old = r.max_age.is_some_and(|a| end <= now.as_second().saturating_sub(a.as_secs() as i64));
        if too_old {
            out.push(name.clone());
        } else {
            total = total.saturating_add(*size);
            kept.push((start, name, *size));
        }
    }
    if let Some(cap) = r.max_bytes {
        kept.sort();
        for (_, name, size) in kept {
            if total <= cap {
                break;
            }
            total -= size;
            out.push(name.to_string());
        }
    }
    out
}

impl Store {
    /// Every event file in an hour partition, with its size (S3: listed in pages of `page` keys).
    pub async fn inventory(&self, page: usize) -> Result<Vec<(String, u64)>, String> {
        match self {
            Store::Local { dir } => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || inventory_local(&dir)).await.map_err(|e| e.to_string())?
            }
            Store::S3 { bucket, prefix } => {
                let keys =
                    bucket.list_sized(prefix, Some(page)).await.map_err(|e| s3_err(&format!("list {prefix}"), e))?;
                Ok(keys
                    .into_iter()
                    .filter_map(|(k, size)| Some((k.strip_prefix(prefix.as_str())?.to_string(), size)))
                    .filter(|(k, _)| partition_start(k).is_some() && is_event_file(k))
                    .collect())
            }
        }
    }

    /// Applies `r` at `now`: removes what [`expired`] names (and, on disk, the partitions'
    /// directories it empties).
    pub async fn prune(&self, r: &Retention, now: Timestamp, page: usize) -> Result<Pruned, String> {
        if r.max_age.is_none() && r.max_bytes.is_none() {
            return Ok(Pruned::default());
        }
        let files = self.inventory(page).await?;
        let doomed = expired(&files, r, now);
        let sizes: BTreeMap<&str, u64> = files.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        let mut out = Pruned::default();
        for name in &doomed {
            match self {
                Store::Local { dir } => {
                    let path = dir.join(name);
                    tokio::task::spawn_blocking(move || {
                        local::remove_file(&path)?;
                        let hour = path.parent().map(Path::to_path_buf);
                        if let Some(h) = hour {
                            local::remove_empty_dir(&h);
                            if let Some(day) = h.parent() {
                                local::remove_empty_dir(day);
                            }
                        }
                        Ok::<_, StorageError>(())
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                }
                Store::S3 { bucket, prefix } => {
                    let key = format!("{prefix}{name}");
                    bucket.delete(&key).await.map_err(|e| s3_err(&format!("DELETE {key}"), e))?;
                }
            }
            out.files += 1;
            out.bytes += sizes.get(name.as_str()).copied().unwrap_or(0);
        }
        Ok(out)
    }
}

fn inventory_local(dir: &Path) -> Result<Vec<(String, u64)>, String> {
    let mut out = Vec::new();
    for day in local::list_dir(dir).map_err(|e| e.to_string())? {
        if !day.starts_with("dt=") {
            continue;
        }
        for hour in local::list_dir(&dir.join(&day)).map_err(|e| e.to_string())? {
            if !hour.starts_with("hour=") {
                continue;
            }
            for (name, size) in local::list_files(&dir.join(&day).join(&hour)).map_err(|e| e.to_string())? {
                let rel = format!("{day}/{hour}/{name}");
                if is_event_file(&name) && !name.starts_with('.') && partition_start(&rel).is_some() {
                    out.push((rel, size));
                }
            }
        }
    }
    Ok(out)
}

fn list_local(dir: &Path, parts: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (day, hours) in parts {
        for hour in hours {
            for name in local::list_dir(&dir.join(day).join(hour)).map_err(|e| e.to_string())? {
                if is_event_file(&name) && !name.starts_with('.') {
                    out.push(format!("{day}/{hour}/{name}"));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_the_range() {
        let from: Timestamp = "2025-03-01T22:30:00Z".parse().unwrap();
        let to: Timestamp = "2025-03-02T01:00:00Z".parse().unwrap();
        let p = partitions(from, to);
        assert_eq!(p.len(), 2);
        assert_eq!(p["dt=2025-03-01"], vec!["hour=22", "hour=23"]);
        assert_eq!(p["dt=2025-03-02"], vec!["hour=00"]);
        assert!(partitions(to, from).is_empty());
        assert_eq!(partition_of("2025-03-01T22:30:00.000Z").as_deref(), Some("dt=2025-03-01/hour=22"));
        assert_eq!(partition_of("garbage"), None);
        assert_eq!(line_partition(b"{\"ts\":\"2025-03-01T22:30:00.000Z\",\"x\":1}"), Some(*b"2025-03-01T22"));
        assert_eq!(line_partition(b"{\"x\":1}"), None);
        assert_eq!(partition_name(b"2025-03-01T22"), "dt=2025-03-01/hour=22");
    }

    #[test]
    fn encode_decode_round_trip() {
        let e = Event {
            ts: "2025-03-01T22:30:00.000Z".into(),
            status: 200,
            key: Some("a/b.jpg".into()),
            ..Default::default()
        };
        for (codec, magic) in [(Codec::Gzip, &[0x1f, 0x8b][..]), (Codec::Zstd, &[0x28, 0xb5, 0x2f, 0xfd][..])] {
            let mut bytes = encode(&[e.clone(), e.clone()], codec).unwrap();
            assert!(bytes.starts_with(magic), "{codec:?} magic");
            // Concatenated files (`cat a b`) read as one.
            bytes.extend(encode(std::slice::from_ref(&e), codec).unwrap());
            let text = decode(&bytes, 1 << 20).unwrap();
            let lines: Vec<Event> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            assert_eq!(lines, vec![e.clone(), e.clone(), e.clone()], "{codec:?}");
            assert_eq!(decode(&bytes, 10).unwrap().len(), 10, "{codec:?}: bounded");
        }
        assert!(decode(b"not gzip", 100).is_err());
        assert!(decode(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0], 100).is_err(), "a broken zstd frame");
        assert_eq!(Codec::parse(" ZSTD "), Some(Codec::Zstd));
        assert_eq!(Codec::parse("gz"), Some(Codec::Gzip));
        assert_eq!(Codec::parse("lz4"), None);
        assert_eq!((content_type("a.jsonl.gz"), content_type("a.jsonl.zst")), ("application/gzip", "application/zstd"));
        assert!(is_event_file("a.jsonl.zst") && is_event_file("a.jsonl.gz") && !is_event_file(".a.jsonl.zst.tmp"));
    }

    #[tokio::test]
    async fn local_store_writes_atomically_and_lists_by_hour() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::Local { dir: dir.path().to_path_buf() };
        let name = file_name("dt=2025-03-01/hour=22", "host-1", Codec::Zstd);
        assert!(name.starts_with("dt=2025-03-01/hour=22/host-1-") && name.ends_with(".jsonl.zst"), "{name}");
        s.put(&name, b"x".to_vec()).await.unwrap();
        // Files of either codec are listed.
        let gz = file_name("dt=2025-03-02/hour=05", "host-1", Codec::Gzip);
        assert!(gz.ends_with(".jsonl.gz"), "{gz}");
        s.put(&gz, b"y".to_vec()).await.unwrap();
        let from: Timestamp = "2025-03-01T22:59:00Z".parse().unwrap();
        let to: Timestamp = "2025-03-02T05:00:00Z".parse().unwrap();
        assert_eq!(s.list(from, to).await.unwrap(), vec![name.clone()]);
        let to: Timestamp = "2025-03-02T05:00:01Z".parse().unwrap();
        assert_eq!(s.list(from, to).await.unwrap().len(), 2);
        assert_eq!(s.get(&name, 10).await.unwrap(), b"x");
        assert!(s.get("../etc/passwd", 10).await.is_err());
        let leftovers: Vec<_> = walk(dir.path()).into_iter().filter(|p| p.ends_with(".tmp")).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    fn walk(p: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(p).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path.display().to_string());
            }
        }
        out
    }
}
