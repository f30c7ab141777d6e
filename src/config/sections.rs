//! Typed, checked sections of the configuration that their services take as they are: uploads
//! and analytics (with the metrics listener). Errors name the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::RawConfig;

/// File name endings of analytics event files, by [`Codec`].
pub const CODEC_EXTS: [&str; 2] = [".jsonl.zst", ".jsonl.gz"];

/// How event files are compressed (`IMAGO_ANALYTICS_COMPRESSION`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Codec {
    /// Zstandard in its fast mode (`analytics::store::ZSTD_LEVEL`): less CPU than gzip's fastest level and
    /// smaller files. DuckDB, ClickHouse, Spark, Trino/Athena and Snowflake read it.
    #[default]
    Zstd,
    /// gzip (fastest level), for readers without zstd (BigQuery loads, older Hive setups).
    Gzip,
}

impl Codec {
    pub fn parse(s: &str) -> Option<Codec> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zstd" | "zst" => Some(Codec::Zstd),
            "gzip" | "gz" => Some(Codec::Gzip),
            _ => None,
        }
    }

    pub fn ext(self) -> &'static str {
        match self {
            Codec::Zstd => CODEC_EXTS[0],
            Codec::Gzip => CODEC_EXTS[1],
        }
    }
}

/// Upload settings, validated once at start-up.
#[derive(Clone, Debug)]
pub struct UploadSettings {
    /// `IMAGO_API_KEYS`, parsed ([`super::ApiKeySpec`]).
    pub api_keys: Vec<super::ApiKeySpec>,
    pub public_url: String,
    pub prefixes: Vec<String>,
    pub max_bytes: u64,
    pub ttl: Duration,
    pub allow_svg: bool,
    pub rate_per_sec: f64,
    pub burst: u32,
    pub fsync: bool,
    pub body_timeout: Duration,
    pub max_bodies: usize,
    pub cors_origins: Vec<String>,
    pub info_max_age: u64,
    pub s3_if_none_match: bool,
    /// Largest `limit` of `GET /v1/images`.
    pub list_max_limit: usize,
    /// Ticket rate and daily quotas ([`super::QuotaSettings`]).
    pub quota: super::QuotaSettings,
    /// Reads of a pending upload answer `409 upload-pending` instead of completing it.
    pub require_complete: bool,
    /// How long an object-store upload may stay pending (the sweep's age).
    pub pending_ttl: Duration,
    /// How long a deleted original stays restorable before the sweep purges it (zero: `DELETE`
    /// removes it at once).
    pub delete_grace: Duration,
}

/// A key prefix in its one accepted form (no slashes at the ends), or None when it is not one.
pub fn clean_prefix(p: &str) -> Option<String> {
    let p = p.trim().trim_matches('/');
    let ok = !p.is_empty()
        && p.len() <= 200
        && p.split('/').all(|s| {
            !s.is_empty()
                && !s.starts_with('.')
                && s != "sha256"
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        });
    ok.then(|| p.to_string())
}

impl UploadSettings {
    /// Reads and checks the upload settings; errors name the setting.
    pub fn from_raw(r: &RawConfig) -> Result<UploadSettings, (&'static str, String)> {
        let api_keys = r
            .api_keys
            .strings()
            .iter()
            .map(|e| super::ApiKeySpec::parse(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ("IMAGO_API_KEYS", e))?;
        let public_url = match &r.public_url {
            Some(u) => {
                let parsed =
                    url::Url::parse(u).map_err(|e| ("IMAGO_PUBLIC_URL", format!("`{u}` is not a URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
                    return Err(("IMAGO_PUBLIC_URL", "must be an http(s) URL without a query".into()));
                }
                u.trim_end_matches('/').to_string()
            }
            None => format!("http://{}", r.bind),
        };
        let mut prefixes = Vec::new();
        for p in r.upload_prefixes.strings() {
            let c = clean_prefix(&p).ok_or((
                "IMAGO_UPLOAD_PREFIXES",
                format!("`{p}` is not a key prefix (segments of A-Z a-z 0-9 - _ ., not starting with `.`)"),
            ))?;
            if !prefixes.contains(&c) {
                prefixes.push(c);
            }
        }
        if prefixes.is_empty() {
            return Err(("IMAGO_UPLOAD_PREFIXES", "at least one prefix is needed".into()));
        }
        // A tenant's keys live under `{prefix}/{tenant}/`: that must not be another prefix.
        for t in api_keys.iter().map(|k| &k.tenant).filter(|t| *t != super::DEFAULT_TENANT) {
            for p in &prefixes {
                let dir = format!("{p}/{t}");
                if prefixes.iter().any(|q| *q == dir || q.starts_with(&format!("{dir}/"))) {
                    return Err(("IMAGO_UPLOAD_PREFIXES", format!("{dir} is tenant {t}'s directory")));
                }
            }
        }
        if !(1..=1000).contains(&r.list_max_limit) {
            return Err(("IMAGO_LIST_MAX_LIMIT", "must be 1 to 1000 (one object-store listing page)".into()));
        }
        if r.upload_max_bytes == 0 {
            return Err(("IMAGO_UPLOAD_MAX_BYTES", "must be positive".into()));
        }
        if !(1..=7 * 24 * 3600).contains(&r.upload_ttl_secs) {
            return Err(("IMAGO_UPLOAD_TTL_SECS", "must be 1 to 604800 (S3's presign limit)".into()));
        }
        if !r.upload_rate_per_sec.is_finite() || r.upload_rate_per_sec < 0.0 {
            return Err(("IMAGO_UPLOAD_RATE_PER_SEC", "must be 0 (no limit) or positive".into()));
        }
        if r.upload_burst == 0 {
            return Err(("IMAGO_UPLOAD_BURST", "must be at least 1".into()));
        }
        if r.upload_body_timeout_secs == 0 {
            return Err(("IMAGO_UPLOAD_BODY_TIMEOUT_SECS", "must be positive".into()));
        }
        if !(1..=tokio::sync::Semaphore::MAX_PERMITS).contains(&r.upload_max_bodies) {
            return Err(("IMAGO_UPLOAD_MAX_BODIES", "must be at least 1".into()));
        }
        if !(1..=365 * 24 * 3600).contains(&r.upload_pending_ttl_secs) {
            return Err(("IMAGO_UPLOAD_PENDING_TTL_SECS", "must be 1 to 31536000".into()));
        }
        if r.delete_grace_secs > 365 * 24 * 3600 {
            return Err(("IMAGO_DELETE_GRACE_SECS", "must be 0 to 31536000".into()));
        }
        let cors_origins = r.cors_origins.strings();
        for o in &cors_origins {
            if o != "*" && url::Url::parse(o).map(|u| u.origin().ascii_serialization() != *o).unwrap_or(true) {
                return Err((
                    "IMAGO_CORS_ORIGINS",
                    format!("`{o}` is not an origin like https://app.example.com (or `*`)"),
                ));
            }
        }
        Ok(UploadSettings {
            api_keys,
            public_url,
            prefixes,
            max_bytes: r.upload_max_bytes,
            ttl: Duration::from_secs(r.upload_ttl_secs),
            allow_svg: r.upload_allow_svg,
            rate_per_sec: r.upload_rate_per_sec,
            burst: r.upload_burst,
            fsync: r.upload_fsync,
            body_timeout: Duration::from_secs(r.upload_body_timeout_secs),
            max_bodies: r.upload_max_bodies,
            cors_origins,
            info_max_age: r.info_max_age_secs,
            s3_if_none_match: r.upload_s3_if_none_match,
            list_max_limit: r.list_max_limit,
            quota: super::QuotaSettings::from_raw(r)?,
            require_complete: r.upload_require_complete,
            pending_ttl: Duration::from_secs(r.upload_pending_ttl_secs),
            delete_grace: Duration::from_secs(r.delete_grace_secs),
        })
    }
}

/// Validated analytics and metrics-listener settings.
#[derive(Clone, Debug)]
pub struct AnalyticsSettings {
    pub enabled: bool,
    pub dir: PathBuf,
    pub flush_every: Duration,
    pub flush_events: usize,
    pub channel: usize,
    pub report_max_days: u64,
    /// Event files older than this (by hour partition) are removed (`None`: kept forever).
    pub retention_age: Option<Duration>,
    /// Beyond this many bytes of event files the oldest are removed (`None`: no cap).
    pub max_bytes: Option<u64>,
    /// The same two limits for the hourly rollups.
    pub rollup_retention_age: Option<Duration>,
    pub rollup_max_bytes: Option<u64>,
    pub metrics_bind: Option<SocketAddr>,
    pub codec: Codec,
}

/// Whether the configuration writes to the bucket (the same rule as uploads).
pub fn s3_mode(r: &RawConfig) -> bool {
    r.s3_endpoint.is_some() && r.s3_bucket.is_some()
}

/// `p` made absolute, with `..` removed and symlinks resolved as far as the path exists (a path
/// that does not exist yet, under a directory reached through a link, resolves to the real place).
pub(super) fn absolute(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
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
    let (mut base, mut rest) = (out.clone(), Vec::new());
    while !base.exists() {
        match base.file_name() {
            Some(name) => rest.push(name.to_owned()),
            None => return out,
        }
        base.pop();
    }
    match std::fs::canonicalize(&base) {
        Ok(mut real) => {
            real.extend(rest.iter().rev());
            real
        }
        Err(_) => out,
    }
}

impl AnalyticsSettings {
    pub fn from_raw(r: &RawConfig) -> Result<AnalyticsSettings, (&'static str, String)> {
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
        if r.analytics_retention_days > 36_600 {
            return Err(("IMAGO_ANALYTICS_RETENTION_DAYS", "must be 0 (keep forever) to 36600".into()));
        }
        if r.analytics_max_mb > 1 << 30 {
            return Err(("IMAGO_ANALYTICS_MAX_MB", "must be 0 (no cap) to 1073741824".into()));
        }
        if r.analytics_rollup_retention_days > 36_600 {
            return Err(("IMAGO_ANALYTICS_ROLLUP_RETENTION_DAYS", "must be 0 (keep forever) to 36600".into()));
        }
        if r.analytics_rollup_max_mb > 1 << 30 {
            return Err(("IMAGO_ANALYTICS_ROLLUP_MAX_MB", "must be 0 (no cap) to 1073741824".into()));
        }
        let codec = Codec::parse(&r.analytics_compression)
            .ok_or(("IMAGO_ANALYTICS_COMPRESSION", format!("`{}` is not zstd or gzip", r.analytics_compression)))?;
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
        Ok(AnalyticsSettings {
            enabled: r.analytics,
            dir: r.analytics_dir.clone(),
            flush_every: Duration::from_secs(r.analytics_flush_secs),
            flush_events: r.analytics_flush_events,
            channel: r.analytics_channel,
            report_max_days: r.analytics_report_max_days,
            retention_age: (r.analytics_retention_days > 0)
                .then(|| Duration::from_secs(r.analytics_retention_days * 86_400)),
            max_bytes: (r.analytics_max_mb > 0).then_some(r.analytics_max_mb << 20),
            rollup_retention_age: (r.analytics_rollup_retention_days > 0)
                .then(|| Duration::from_secs(r.analytics_rollup_retention_days * 86_400)),
            rollup_max_bytes: (r.analytics_rollup_max_mb > 0).then_some(r.analytics_rollup_max_mb << 20),
            metrics_bind,
            codec,
        })
    }
}
