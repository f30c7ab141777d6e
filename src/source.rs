//! Fetching originals: `local:///key` (the embedded store), `s3://bucket/key` (any S3 API store,
//! SigV4 presigned by `rusty-s3`) and allow-listed `http(s)://` origins (reqwest, with every
//! resolved address and every redirect checked against private/loopback/link-local ranges).

use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::http::StatusCode;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::config::{Config, S3Config};

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid source: {0}")]
    Invalid(String),
    #[error("source not allowed: {0}")]
    NotAllowed(String),
    #[error("source not found")]
    NotFound,
    #[error("the source is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the origin did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the origin failed: {0}")]
    Upstream(String),
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
}

impl SourceError {
    pub fn status(&self) -> StatusCode {
        match self {
            SourceError::Invalid(_) => StatusCode::BAD_REQUEST,
            SourceError::NotAllowed(_) => StatusCode::FORBIDDEN,
            SourceError::NotFound => StatusCode::NOT_FOUND,
            SourceError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            SourceError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            SourceError::Upstream(_) => StatusCode::BAD_GATEWAY,
            SourceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            SourceError::Invalid(_) => "invalid-source",
            SourceError::NotAllowed(_) => "source-not-allowed",
            SourceError::NotFound => "source-not-found",
            SourceError::TooLarge { .. } => "source-too-large",
            SourceError::Timeout(_) => "upstream-timeout",
            SourceError::Upstream(_) => "upstream-error",
            SourceError::Unavailable(_) => "storage-unavailable",
        }
    }
    pub fn public_message(&self) -> String {
        match self {
            SourceError::Upstream(_) => "the origin failed".into(),
            SourceError::Unavailable(_) => "storage is unavailable".into(),
            other => other.to_string(),
        }
    }
}

/// A parsed source reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceRef {
    /// A clean relative path under the local root.
    Local(String),
    S3 {
        bucket: String,
        key: String,
    },
    Http(url::Url),
}

impl SourceRef {
    /// A short kind label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceRef::Local(_) => "local",
            SourceRef::S3 { .. } => "s3",
            SourceRef::Http(_) => "http",
        }
    }
    /// A unique string for this source (cache key).
    pub fn key_string(&self) -> String {
        match self {
            SourceRef::Local(k) => format!("local:///{k}"),
            SourceRef::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
            SourceRef::Http(u) => u.to_string(),
        }
    }

    /// The image key used in analytics (never in metric labels).
    pub fn key(&self) -> String {
        match self {
            SourceRef::Local(k) => k.clone(),
            SourceRef::S3 { bucket, key } => format!("{bucket}/{key}"),
            SourceRef::Http(u) => u.to_string(),
        }
    }
}

/// Checks that a store key is a clean relative path: no `..`, no `.`, no empty segments, no
/// backslashes or NUL. Applied to local and S3 keys alike.
pub fn clean_key(key: &str) -> Result<String, SourceError> {
    let bad = |why: &str| SourceError::Invalid(format!("object key {why}"));
    if key.is_empty() {
        return Err(bad("is empty"));
    }
    if key.len() > 1024 {
        return Err(bad("is too long"));
    }
    if key.contains(['\\', '\0']) || key.chars().any(char::is_control) {
        return Err(bad("contains a forbidden character"));
    }
    for seg in key.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(bad("must be a relative path without empty, `.` or `..` segments"));
        }
    }
    Ok(key.to_string())
}

/// Parses a source string.
pub fn parse(src: &str) -> Result<SourceRef, SourceError> {
    if let Some(rest) = src.strip_prefix("local://") {
        let key = rest.strip_prefix('/').ok_or_else(|| SourceError::Invalid("use local:///path/to/image".into()))?;
        return Ok(SourceRef::Local(clean_key(key)?));
    }
    if let Some(rest) = src.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').ok_or_else(|| SourceError::Invalid("use s3://bucket/key".into()))?;
        if bucket.is_empty() {
            return Err(SourceError::Invalid("empty bucket".into()));
        }
        return Ok(SourceRef::S3 { bucket: bucket.to_string(), key: clean_key(key)? });
    }
    if src.starts_with("http://") || src.starts_with("https://") {
        let u = url::Url::parse(src).map_err(|e| SourceError::Invalid(format!("bad URL: {e}")))?;
        if u.host_str().is_none() || !u.username().is_empty() || u.password().is_some() {
            return Err(SourceError::Invalid("URL needs a host and no credentials".into()));
        }
        return Ok(SourceRef::Http(u));
    }
    Err(SourceError::Invalid("sources are local:///…, s3://bucket/key or http(s)://…".into()))
}

/// True for addresses that are publicly routable (not loopback, private, link-local, CGNAT,
/// multicast, documentation, unspecified or otherwise special).
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xC0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xFE) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // NAT64 well-known prefix embeds an IPv4 address.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let v4 = std::net::Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return is_public_ip(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || s[0..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

/// The error a blocked address surfaces as inside reqwest's error chain.
#[derive(Debug)]
struct Blocked(String);
impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "blocked: {}", self.0)
    }
}
impl std::error::Error for Blocked {}

/// A resolver that drops non-public addresses, so every connection (including after redirects)
/// is checked, and DNS names pointing at private ranges are refused.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ok: Vec<SocketAddr> = addrs.into_iter().filter(|a| allow || is_public_ip(a.ip())).collect();
            if ok.is_empty() {
                return Err(Box::new(Blocked(format!("{host} resolves to no public address")))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

fn host_allowed(allowed: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    allowed.iter().any(|a| {
        if let Some(suffix) = a.strip_prefix("*.") {
            host.ends_with(&format!(".{suffix}"))
        } else {
            *a == host
        }
    })
}

/// Checks an HTTP(S) URL's host against the allow-list and, for IP literals, the address rules.
fn check_url(u: &url::Url, allowed: &[String], allow_private: bool) -> Result<(), String> {
    let host = u.host_str().ok_or("no host")?;
    if !host_allowed(allowed, host) {
        return Err(format!("host {host} is not on the allow-list"));
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if !allow_private && !is_public_ip(ip) {
            return Err(format!("{ip} is not a public address"));
        }
    }
    Ok(())
}

/// What was fetched.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub bytes: Bytes,
    pub last_modified: Option<SystemTime>,
}

/// The source fetcher, shared by all requests.
#[derive(Clone)]
pub struct Sources {
    local_root: PathBuf,
    http: reqwest::Client,
    store: reqwest::Client,
    s3: Option<Arc<S3>>,
    allowed_hosts: Arc<Vec<String>>,
    allow_private: bool,
    max_bytes: u64,
    timeout: Duration,
}

struct S3 {
    cfg: S3Config,
    creds: Credentials,
}

impl S3 {
    fn bucket(&self, name: &str) -> Result<Bucket, SourceError> {
        let style = if self.cfg.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        Bucket::new(self.cfg.endpoint.clone(), style, name.to_string(), self.cfg.region.clone())
            .map_err(|e| SourceError::Invalid(format!("bucket {name}: {e}")))
    }
}

impl Sources {
    pub fn new(cfg: &Config) -> Result<Sources, String> {
        let r = &cfg.raw;
        std::fs::create_dir_all(&r.local_root)
            .map_err(|e| format!("IMAGO_LOCAL_ROOT {}: {e}", r.local_root.display()))?;
        let local_root = std::fs::canonicalize(&r.local_root)
            .map_err(|e| format!("IMAGO_LOCAL_ROOT {}: {e}", r.local_root.display()))?;
        let timeout = Duration::from_millis(r.fetch_timeout_ms);
        let allowed_hosts = Arc::new(cfg.allowed_hosts.clone());
        let (ah, ap, max_redirects) = (allowed_hosts.clone(), r.allow_private_networks, r.max_redirects);
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(Blocked("too many redirects".into()));
            }
            match check_url(attempt.url(), &ah, ap) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(Blocked(format!("redirect refused: {e}"))),
            }
        });
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private: r.allow_private_networks }))
            .redirect(policy)
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("imago/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        // The object store is configured by the operator, so it may live on a private network.
        let store = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| e.to_string())?;
        let s3 = cfg.s3.clone().map(|c| {
            let creds = Credentials::new(c.access_key_id.clone(), c.secret_access_key.clone());
            Arc::new(S3 { cfg: c, creds })
        });
        Ok(Sources {
            local_root,
            http,
            store,
            s3,
            allowed_hosts,
            allow_private: r.allow_private_networks,
            max_bytes: r.max_src_bytes,
            timeout,
        })
    }

    /// The canonical local root.
    pub fn local_root(&self) -> &Path {
        &self.local_root
    }

    /// The reqwest client for the object store (uploads reuse it).
    pub fn store_client(&self) -> &reqwest::Client {
        &self.store
    }

    /// Refuses sources this server may not read (before any I/O).
    pub fn authorize(&self, src: &SourceRef) -> Result<(), SourceError> {
        match src {
            SourceRef::Local(_) => Ok(()),
            SourceRef::S3 { bucket, .. } => {
                let s3 =
                    self.s3.as_ref().ok_or_else(|| SourceError::NotAllowed("no object store is configured".into()))?;
                if !s3.cfg.allowed_buckets.iter().any(|b| b == bucket) {
                    return Err(SourceError::NotAllowed(format!("bucket {bucket} is not allowed")));
                }
                Ok(())
            }
            SourceRef::Http(u) => {
                check_url(u, &self.allowed_hosts, self.allow_private).map_err(SourceError::NotAllowed)
            }
        }
    }

    /// A path under the local root for `key`, refusing anything that escapes it (also through
    /// symlinks).
    pub fn local_path(&self, key: &str) -> Result<PathBuf, SourceError> {
        let key = clean_key(key)?;
        // Upload temp files are never readable.
        if key.split('/').next() == Some(crate::upload::INCOMING_DIR) {
            return Err(SourceError::NotFound);
        }
        let p = self.local_root.join(&key);
        if p.components().any(|c| matches!(c, Component::ParentDir)) || !p.starts_with(&self.local_root) {
            return Err(SourceError::NotAllowed("path escapes the store".into()));
        }
        Ok(p)
    }

    pub async fn fetch(&self, src: &SourceRef) -> Result<Fetched, SourceError> {
        self.authorize(src)?;
        match src {
            SourceRef::Local(key) => self.fetch_local(key).await,
            SourceRef::S3 { bucket, key } => self.fetch_s3(bucket, key).await,
            SourceRef::Http(u) => self.fetch_http(u.clone()).await,
        }
    }

    async fn fetch_local(&self, key: &str) -> Result<Fetched, SourceError> {
        let p = self.local_path(key)?;
        let real = match tokio::fs::canonicalize(&p).await {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SourceError::NotFound),
            Err(e) => return Err(SourceError::Unavailable(e.to_string())),
        };
        if !real.starts_with(&self.local_root) {
            return Err(SourceError::NotAllowed("path escapes the store".into()));
        }
        let meta = tokio::fs::metadata(&real).await.map_err(|e| SourceError::Unavailable(e.to_string()))?;
        if !meta.is_file() {
            return Err(SourceError::NotFound);
        }
        if meta.len() > self.max_bytes {
            return Err(SourceError::TooLarge { limit: self.max_bytes });
        }
        let bytes = tokio::fs::read(&real).await.map_err(|e| SourceError::Unavailable(e.to_string()))?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(SourceError::TooLarge { limit: self.max_bytes });
        }
        Ok(Fetched { bytes: Bytes::from(bytes), last_modified: meta.modified().ok() })
    }

    /// A presigned URL for an S3 action on `bucket` (also used by uploads).
    pub fn s3_presign_get(&self, bucket: &str, key: &str, ttl: Duration) -> Result<url::Url, SourceError> {
        let s3 = self.s3.as_ref().ok_or_else(|| SourceError::NotAllowed("no object store is configured".into()))?;
        let b = s3.bucket(bucket)?;
        Ok(b.get_object(Some(&s3.creds), key).sign(ttl))
    }

    async fn fetch_s3(&self, bucket: &str, key: &str) -> Result<Fetched, SourceError> {
        let url = self.s3_presign_get(bucket, key, Duration::from_secs(300))?;
        let resp = self.store.get(url).send().await.map_err(|e| self.map_store_err(e))?;
        match resp.status() {
            s if s.is_success() => {}
            reqwest::StatusCode::NOT_FOUND => return Err(SourceError::NotFound),
            s if s.is_server_error() => return Err(SourceError::Unavailable(format!("object store answered {s}"))),
            s => return Err(SourceError::Upstream(format!("object store answered {s}"))),
        }
        self.read_body(resp).await
    }

    fn map_store_err(&self, e: reqwest::Error) -> SourceError {
        if e.is_timeout() {
            SourceError::Timeout(self.timeout)
        } else {
            SourceError::Unavailable(e.to_string())
        }
    }

    async fn fetch_http(&self, u: url::Url) -> Result<Fetched, SourceError> {
        let resp = match self.http.get(u).send().await {
            Ok(r) => r,
            Err(e) => {
                let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
                while let Some(s) = src {
                    if let Some(b) = s.downcast_ref::<Blocked>() {
                        return Err(SourceError::NotAllowed(b.0.clone()));
                    }
                    src = s.source();
                }
                if e.is_timeout() {
                    return Err(SourceError::Timeout(self.timeout));
                }
                return Err(SourceError::Upstream(e.to_string()));
            }
        };
        match resp.status() {
            s if s.is_success() => {}
            reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::GONE => return Err(SourceError::NotFound),
            s => return Err(SourceError::Upstream(format!("origin answered {s}"))),
        }
        self.read_body(resp).await
    }

    async fn read_body(&self, resp: reqwest::Response) -> Result<Fetched, SourceError> {
        if resp.content_length().is_some_and(|l| l > self.max_bytes) {
            return Err(SourceError::TooLarge { limit: self.max_bytes });
        }
        let last_modified = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let mut buf = BytesMut::with_capacity(resp.content_length().unwrap_or(64 * 1024).min(self.max_bytes) as usize);
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                if e.is_timeout() {
                    SourceError::Timeout(self.timeout)
                } else {
                    SourceError::Upstream(e.to_string())
                }
            })?;
            if (buf.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(SourceError::TooLarge { limit: self.max_bytes });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Fetched { bytes: buf.freeze(), last_modified })
    }

    /// Readiness: the local root is a directory, and the object store answers (any HTTP answer).
    pub async fn ready(&self) -> Result<(), String> {
        let meta = tokio::fs::metadata(&self.local_root).await.map_err(|e| format!("local store: {e}"))?;
        if !meta.is_dir() {
            return Err("local store is not a directory".into());
        }
        if let Some(s3) = &self.s3 {
            if let Some(bucket) = s3.cfg.bucket.as_deref().or(s3.cfg.allowed_buckets.first().map(String::as_str)) {
                let b = s3.bucket(bucket).map_err(|e| e.to_string())?;
                let url = b.head_bucket(Some(&s3.creds)).sign(Duration::from_secs(60));
                let r = self
                    .store
                    .head(url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .map_err(|e| format!("object store: {e}"))?;
                if r.status().is_server_error() {
                    return Err(format!("object store answered {}", r.status()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_sources() {
        assert_eq!(parse("local:///a/b.jpg").unwrap(), SourceRef::Local("a/b.jpg".into()));
        assert_eq!(parse("s3://bk/x/y.png").unwrap(), SourceRef::S3 { bucket: "bk".into(), key: "x/y.png".into() });
        assert!(matches!(parse("https://example.com/a.jpg").unwrap(), SourceRef::Http(_)));
        for bad in [
            "local:///../../etc/passwd",
            "local:///a/../../b",
            "local:///./a",
            "local:///a//b",
            "local://a.jpg",
            "local:///",
            "local:///a\\..\\b",
            "s3://bk",
            "s3:///key",
            "s3://bk/../x",
            "ftp://x/y",
            "file:///etc/passwd",
            "http://user:pw@example.com/a.jpg",
            "/etc/passwd",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn public_ip_rules() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn allow_list() {
        let allowed = vec!["images.example.com".to_string(), "*.cdn.example.org".to_string()];
        assert!(host_allowed(&allowed, "images.example.com"));
        assert!(host_allowed(&allowed, "a.cdn.example.org"));
        assert!(!host_allowed(&allowed, "cdn.example.org"));
        assert!(!host_allowed(&allowed, "evil.com"));
        let u = url::Url::parse("http://127.0.0.1/x").unwrap();
        assert!(check_url(&u, &["127.0.0.1".into()], false).is_err());
        assert!(check_url(&u, &["127.0.0.1".into()], true).is_ok());
    }
}
