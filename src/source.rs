//! Fetching originals: `local:///key` (the embedded store) and `s3://bucket/key` (any S3 API
//! store) through [`crate::storage`], and allow-listed `http(s)://` origins (reqwest, with every
//! resolved address and every redirect checked against private/loopback/link-local ranges).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::StatusCode;
use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::Config;
use crate::storage::{Object, Storage, StorageError};

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

/// Storage errors as source errors (a fetch maps timeouts to the fetch timeout first).
impl From<StorageError> for SourceError {
    fn from(e: StorageError) -> SourceError {
        match e {
            StorageError::BadKey(_) | StorageError::Bucket { .. } => SourceError::Invalid(e.to_string()),
            StorageError::Reserved | StorageError::NotFound => SourceError::NotFound,
            StorageError::Escapes => SourceError::NotAllowed(e.to_string()),
            StorageError::TooLarge { limit } => SourceError::TooLarge { limit },
            StorageError::Io { source, .. } => SourceError::Unavailable(source.to_string()),
            StorageError::Status { status, .. } if status == reqwest::StatusCode::NOT_FOUND => SourceError::NotFound,
            StorageError::Status { status, .. } if status.is_server_error() => {
                SourceError::Unavailable(format!("object store answered {status}"))
            }
            StorageError::Status { status, .. } => SourceError::Upstream(format!("object store answered {status}")),
            StorageError::Request { message, .. } => SourceError::Unavailable(message),
            StorageError::Body { message, .. } | StorageError::Invalid(message) => SourceError::Upstream(message),
            StorageError::Exists => SourceError::Upstream(e.to_string()),
        }
    }
}

/// Parses a source string.
pub fn parse(src: &str) -> Result<SourceRef, SourceError> {
    if let Some(rest) = src.strip_prefix("local://") {
        let key = rest.strip_prefix('/').ok_or_else(|| SourceError::Invalid("use local:///path/to/image".into()))?;
        return Ok(SourceRef::Local(crate::storage::clean_key(key)?));
    }
    if let Some(rest) = src.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').ok_or_else(|| SourceError::Invalid("use s3://bucket/key".into()))?;
        if bucket.is_empty() {
            return Err(SourceError::Invalid("empty bucket".into()));
        }
        return Ok(SourceRef::S3 { bucket: bucket.to_string(), key: crate::storage::clean_key(key)? });
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
                // 6to4 relay anycast (deprecated)
                || (o[0] == 192 && o[1] == 88 && o[2] == 99)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let v4 = |hi: u16, lo: u16| IpAddr::V4(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8));
            // Addresses that carry an IPv4 address are judged by it: IPv4-mapped ::ffff:0:0/96,
            // IPv4-translated ::ffff:0:0:0/96 (SIIT), the NAT64 well-known prefix 64:ff9b::/96,
            // and 6to4 2002::/16 (the IPv4 address in bits 16..48).
            if let Some(mapped) = v6.to_ipv4_mapped() {
                return is_public_ip(IpAddr::V4(mapped));
            }
            if s[0..6] == [0, 0, 0, 0, 0xffff, 0] || s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public_ip(v4(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return is_public_ip(v4(s[1], s[2]));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // IPv4-compatible ::a.b.c.d (deprecated) and the rest of ::/96
                || s[0..6] == [0, 0, 0, 0, 0, 0]
                // local-use NAT64 64:ff9b:1::/48 (RFC 8215): the network's own translator
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
                // discard-only 100::/64
                || s[0..4] == [0x100, 0, 0, 0]
                // 2001::/23, IETF protocol assignments: Teredo 2001::/32 (tunnels to an IPv4
                // address), benchmarking, ORCHID, …; and documentation 2001:db8::/32
                || (s[0] == 0x2001 && s[1] < 0x200)
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                // documentation 3fff::/20 (RFC 9637), SRv6 SIDs 5f00::/16 (RFC 9602)
                || (s[0] == 0x3fff && s[1] < 0x1000)
                || s[0] == 0x5f00
                // unique local fc00::/7, link-local fe80::/10, site-local fec0::/10
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0)
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
    storage: Storage,
    http: reqwest::Client,
    allowed_hosts: Arc<Vec<String>>,
    allow_private: bool,
    max_bytes: u64,
    timeout: Duration,
    ready: Arc<ReadyProbe>,
}

/// `/readyz`'s storage probe, reused for `ttl` (one probe at a time: concurrent calls wait for it
/// and share its answer), so unauthenticated probes cannot turn into a HEAD each on the store.
struct ReadyProbe {
    ttl: Duration,
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
    /// Set when a read saw the store fail: the next call probes again.
    stale: AtomicBool,
}

impl From<Object> for Fetched {
    fn from(o: Object) -> Fetched {
        Fetched { bytes: o.bytes, last_modified: o.last_modified }
    }
}

impl Sources {
    /// The fetcher for `cfg`, reading `local://` and `s3://` sources from `storage`.
    pub fn new(cfg: &Config, storage: Storage) -> Result<Sources, String> {
        let r = &cfg.raw;
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
        // The environment's proxy variables (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY) are ignored: a
        // proxy resolves and connects by itself, so the guarded resolver would never be asked.
        // An egress proxy is an explicit setting, and the address policy then lives in it.
        let builder = match r.source_proxy.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            None => reqwest::Client::builder().no_proxy(),
            Some(p) => reqwest::Client::builder()
                .proxy(reqwest::Proxy::all(p).map_err(|e| format!("IMAGO_SOURCE_PROXY: {e}"))?),
        };
        let http = builder
            .dns_resolver(Arc::new(GuardedResolver { allow_private: r.allow_private_networks }))
            .redirect(policy)
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("imago/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Sources {
            storage,
            http,
            allowed_hosts,
            allow_private: r.allow_private_networks,
            max_bytes: r.max_src_bytes,
            timeout,
            ready: Arc::new(ReadyProbe {
                ttl: Duration::from_millis(r.readyz_cache_ms),
                last: tokio::sync::Mutex::new(None),
                stale: AtomicBool::new(false),
            }),
        })
    }

    /// Refuses sources this server may not read (before any I/O).
    pub fn authorize(&self, src: &SourceRef) -> Result<(), SourceError> {
        match src {
            SourceRef::Local(_) => Ok(()),
            SourceRef::S3 { bucket, .. } => {
                let s3 =
                    self.storage.s3().ok_or_else(|| SourceError::NotAllowed("no object store is configured".into()))?;
                if !s3.config().allowed_buckets.iter().any(|b| b == bucket) {
                    return Err(SourceError::NotAllowed(format!("bucket {bucket} is not allowed")));
                }
                Ok(())
            }
            SourceRef::Http(u) => {
                check_url(u, &self.allowed_hosts, self.allow_private).map_err(SourceError::NotAllowed)
            }
        }
    }

    pub async fn fetch(&self, src: &SourceRef) -> Result<Fetched, SourceError> {
        self.authorize(src)?;
        let object = match src {
            SourceRef::Local(key) => self.storage.local().read(key, self.max_bytes).await,
            SourceRef::S3 { bucket, key } => match self.storage.s3() {
                Some(s3) => async { s3.bucket(bucket)?.get(key, self.max_bytes).await }.await,
                None => return Err(SourceError::NotAllowed("no object store is configured".into())),
            },
            SourceRef::Http(u) => return self.fetch_http(u.clone()).await,
        };
        object.map(Fetched::from).map_err(|e| self.storage_err(e))
    }

    /// A storage error as a source error: a timeout is the fetch timeout.
    fn storage_err(&self, e: StorageError) -> SourceError {
        let e = if e.is_timeout() { SourceError::Timeout(self.timeout) } else { SourceError::from(e) };
        if matches!(e, SourceError::Timeout(_) | SourceError::Unavailable(_)) {
            self.ready.stale.store(true, Ordering::Relaxed);
        }
        e
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
        crate::storage::read_body(resp, self.max_bytes).await.map(Fetched::from).map_err(|e| self.storage_err(e))
    }

    /// Readiness: the local root is a directory, and the object store answers (any HTTP answer).
    /// The answer is reused for `IMAGO_READYZ_CACHE_MS`, or until a read sees the store fail.
    pub async fn ready(&self) -> Result<(), String> {
        let p = &self.ready;
        if p.ttl.is_zero() {
            return self.storage.ready().await;
        }
        let mut last = p.last.lock().await;
        let stale = p.stale.swap(false, Ordering::Relaxed);
        if let Some((at, answer)) = last.as_ref() {
            if !stale && at.elapsed() < p.ttl {
                return answer.clone();
            }
        }
        let answer = self.storage.ready().await;
        *last = Some((Instant::now(), answer.clone()));
        answer
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

    /// Addresses that embed an IPv4 address (or tunnel to one), as a table: (address, public?).
    #[test]
    fn embedded_and_tunnelled_ipv4_table() {
        let table: &[(&str, bool)] = &[
            // IPv4-mapped ::ffff:a.b.c.d
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:8.8.8.8", true),
            // IPv4-compatible ::a.b.c.d (deprecated): never public
            ("::10.0.0.1", false),
            ("::127.0.0.1", false),
            ("::8.8.8.8", false),
            // IPv4-translated ::ffff:0:a.b.c.d (SIIT, RFC 2765)
            ("::ffff:0:127.0.0.1", false),
            ("::ffff:0:10.1.2.3", false),
            ("::ffff:0:169.254.169.254", false),
            // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052)
            ("64:ff9b::10.0.0.1", false),
            ("64:ff9b::127.0.0.1", false),
            ("64:ff9b::8.8.8.8", true),
            // Local-use NAT64 64:ff9b:1::/48 (RFC 8215): the network's own translator
            ("64:ff9b:1::a00:1", false),
            ("64:ff9b:1:abcd::808:808", false),
            // 6to4 2002::/16 (RFC 3056) with the IPv4 address in bits 16..48
            ("2002:7f00:1::1", false),
            ("2002:a00:1::1", false),
            ("2002:a9fe:a9fe::1", false),
            ("2002:c0a8:101::1", false),
            ("2002:808:808::1", true),
            // Teredo 2001::/32 (RFC 4380) and the rest of 2001::/23 (IETF protocol assignments)
            ("2001:0:4136:e378:8000:63bf:f5ff:fffe", false),
            ("2001:0:7f00:1::1", false),
            ("2001:2::1", false),
            // Documentation (2001:db8::/32, 3fff::/20), discard-only 100::/64, SRv6 5f00::/16
            ("2001:db8::1", false),
            ("3fff::1", false),
            ("100::1", false),
            ("5f00::1", false),
            // Ordinary global unicast
            ("2606:4700:4700::1111", true),
            ("2a00:1450:4001:80b::200e", true),
            ("2001:4860:4860::8888", true),
        ];
        let wrong: Vec<String> = table
            .iter()
            .filter(|(ip, public)| is_public_ip(ip.parse().unwrap()) != *public)
            .map(|(ip, public)| format!("{ip} should be {}", if *public { "public" } else { "refused" }))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
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
