//! The object store's credentials (`IMAGO_S3_CREDENTIALS`).
//!
//! * `static`: `IMAGO_S3_ACCESS_KEY_ID` and the secret, used as they are, forever.
//! * `chain`: the standard AWS credential chain, through Apache OpenDAL's `reqsign` providers
//!   (`reqsign-aws-core`), over a reqwest client of imago's own. One source is chosen at start
//!   from the environment, in the AWS SDKs' order, and used from then on (a broken web identity
//!   never falls back silently to the node's instance role):
//!   1. `env`: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
//!   2. `web-identity`: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`),
//!      `AssumeRoleWithWebIdentity` at STS: `AWS_ENDPOINT_URL_STS` when set, else the regional
//!      endpoint of `AWS_REGION` (`AWS_STS_REGIONAL_ENDPOINTS=legacy`: the global one);
//!   3. `ecs`: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI` (+
//!      `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`);
//!   4. `imds`: EC2 instance metadata (IMDSv2), unless `AWS_EC2_METADATA_DISABLED=true`.
//!
//! Chain credentials are fetched once before the server starts (none: start-up fails, naming the
//! source and why), then refreshed by a background thread `IMAGO_S3_CREDENTIALS_REFRESH_SECS`
//! before they expire (at most half their lifetime before). Requests never wait for STS: they
//! sign with the current credentials. A failed refresh keeps the current credentials until they
//! expire and is retried every `IMAGO_S3_CREDENTIALS_RETRY_MS`; it shows in `/readyz` (a
//! warning while the credentials are valid, not ready once they expired) and in
//! `imago_s3_credential_refreshes_total{outcome="error"}`. Secrets never reach a log line, an
//! error text or `Debug` output.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqsign_aws_core::{
    AssumeRoleWithWebIdentityCredentialProvider, Credential, ECSCredentialProvider, EnvCredentialProvider,
    IMDSv2CredentialProvider,
};
use reqsign_core::{Context, Env, ProvideCredential};

use crate::config::{ChainSettings, S3Credentials};

/// Largest answer read from STS or a metadata endpoint.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;
/// The shortest wait between two refreshes.
const MIN_WAIT: Duration = Duration::from_secs(1);

/// Which provider of the chain gives the credentials.
#[derive(Debug)]
enum Source {
    Env(EnvCredentialProvider),
    WebIdentity(AssumeRoleWithWebIdentityCredentialProvider),
    Ecs(ECSCredentialProvider),
    Imds(IMDSv2CredentialProvider),
}

impl Source {
    /// The source the environment names (see the module documentation for the order).
    fn select(env: &HashMap<String, String>) -> Result<Source, String> {
        let set = |k: &str| env.get(k).is_some_and(|v| !v.trim().is_empty());
        match (set("AWS_ACCESS_KEY_ID"), set("AWS_SECRET_ACCESS_KEY")) {
            (true, true) => return Ok(Source::Env(EnvCredentialProvider::new())),
            (true, false) | (false, true) => {
                return Err("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together".into())
            }
            (false, false) => {}
        }
        match (set("AWS_WEB_IDENTITY_TOKEN_FILE"), set("AWS_ROLE_ARN")) {
            (true, true) => {
                let mut p = AssumeRoleWithWebIdentityCredentialProvider::new();
                let legacy = env.get("AWS_STS_REGIONAL_ENDPOINTS").is_some_and(|v| v == "legacy");
                if set("AWS_REGION") && !legacy {
                    p = p.with_regional_sts_endpoint();
                }
                return Ok(Source::WebIdentity(p));
            }
            (true, false) | (false, true) => {
                return Err("AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN must be set together".into())
            }
            (false, false) => {}
        }
        if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || set("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            return Ok(Source::Ecs(ECSCredentialProvider::new()));
        }
        if env.get("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err("no credentials in the environment (AWS_ACCESS_KEY_ID, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_CONTAINER_CREDENTIALS_*) and AWS_EC2_METADATA_DISABLED=true".into());
        }
        Ok(Source::Imds(IMDSv2CredentialProvider::new()))
    }

    fn name(&self) -> &'static str {
        match self {
            Source::Env(_) => "env",
            Source::WebIdentity(_) => "web-identity",
            Source::Ecs(_) => "ecs",
            Source::Imds(_) => "imds",
        }
    }

    async fn provide(&self, ctx: &Context) -> reqsign_core::Result<Option<Credential>> {
        match self {
            Source::Env(p) => p.provide_credential(ctx).await,
            Source::WebIdentity(p) => p.provide_credential(ctx).await,
            Source::Ecs(p) => p.provide_credential(ctx).await,
            Source::Imds(p) => p.provide_credential(ctx).await,
        }
    }
}

/// An error's message and its sources' (reqsign keeps role ARNs and endpoints in its context,
/// which is not printed; STS answers have the token redacted; HTTP errors carry no URL).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// True for the AWS STS hosts (global, regional, China).
fn is_sts_host(host: &str) -> bool {
    host.starts_with("sts.") && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
}

/// The chain's HTTP clients (imago's reqwest, rustls): STS requests go to `AWS_ENDPOINT_URL_STS`
/// when it is set (reqsign only knows AWS's hosts), through the environment's proxies like the
/// object store's; metadata endpoints (ECS, IMDS: link-local or loopback) never use a proxy.
#[derive(Debug)]
struct Transport {
    sts_http: reqwest::Client,
    direct: reqwest::Client,
    sts: Option<url::Url>,
}

impl reqsign_core::HttpSend for Transport {
    async fn http_send(&self, req: http::Request<Bytes>) -> reqsign_core::Result<http::Response<Bytes>> {
        let (parts, body) = req.into_parts();
        let mut url = url::Url::parse(&parts.uri.to_string())
            .map_err(|e| reqsign_core::Error::request_invalid("credential request URL").with_source(e))?;
        let to_sts = url.host_str().is_some_and(is_sts_host);
        if let (true, Some(sts)) = (to_sts, &self.sts) {
            url = sts.clone();
        }
        let http = if to_sts { &self.sts_http } else { &self.direct };
        let resp = http
            .request(parts.method, url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| reqsign_core::Error::unexpected("no answer").with_source(e.without_url()))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let got = super::read_body(resp, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| reqsign_core::Error::unexpected("answer not read").with_source(e))?;
        let mut out = http::Response::new(got.bytes);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

/// Reads the web identity token and the container authorization token files.
#[derive(Debug)]
struct Files;

impl reqsign_core::FileRead for Files {
    async fn file_read(&self, path: &str) -> reqsign_core::Result<Vec<u8>> {
        tokio::fs::read(path).await.map_err(|e| reqsign_core::Error::config_invalid("file not read").with_source(e))
    }
}

/// The credentials in use.
struct Current {
    creds: Arc<rusty_s3::Credentials>,
    fetched: SystemTime,
    expires: Option<SystemTime>,
}

/// What `/readyz` and `/metrics` show about chain credentials (no secrets).
#[derive(Clone, Debug, Default)]
pub struct CredentialStatus {
    /// `env`, `web-identity`, `ecs` or `imds`.
    pub source: &'static str,
    /// Successful fetches (the first one included) and failed ones.
    pub refreshes: u64,
    pub failures: u64,
    /// When the credentials in use expire (`None`: they do not).
    pub expires: Option<SystemTime>,
    /// Why the last attempt failed, while no later one succeeded.
    pub last_error: Option<String>,
}

/// The chain: its source, the credentials in use and the refresh bookkeeping.
struct Chain {
    source: Source,
    ctx: Context,
    settings: ChainSettings,
    current: RwLock<Current>,
    last_error: Mutex<Option<String>>,
    refreshes: AtomicU64,
    failures: AtomicU64,
}

impl Chain {
    /// One fetch from the source.
    async fn fetch(source: &Source, ctx: &Context) -> Result<Current, String> {
        match source.provide(ctx).await {
            Ok(Some(c)) => {
                let creds = match c.session_token.filter(|t| !t.is_empty()) {
                    Some(t) => rusty_s3::Credentials::new_with_token(c.access_key_id, c.secret_access_key, t),
                    None => rusty_s3::Credentials::new(c.access_key_id, c.secret_access_key),
                };
                Ok(Current {
                    creds: Arc::new(creds),
                    fetched: SystemTime::now(),
                    expires: c.expires_in.map(|t| t.as_system_time()),
                })
            }
            Ok(None) => Err("the source gave no credentials".into()),
            Err(e) => Err(describe(&e)),
        }
    }

    /// Fetches new credentials; on failure the current ones stay. Returns the wait until the
    /// next attempt (`None`: the credentials do not expire, nothing more to do).
    async fn refresh(&self) -> Option<Duration> {
        match Chain::fetch(&self.source, &self.ctx).await {
            Ok(next) => {
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut e) = self.last_error.lock() {
                    *e = None;
                }
                let wait = next.expires.map(|x| refresh_wait(SystemTime::now(), next.fetched, x, self.settings));
                tracing::info!(
                    source = self.source.name(),
                    expires_in_secs = next.expires.map(|x| secs_until(x, SystemTime::now())),
                    "s3 credentials refreshed"
                );
                if let Ok(mut c) = self.current.write() {
                    *c = next;
                }
                wait
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = self.source.name(), error = %e, "s3 credentials: refresh failed; the current ones stay until they expire");
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(e);
                }
                Some(self.settings.retry.max(Duration::from_millis(100)))
            }
        }
    }
}

/// Seconds from `now` until `t` (negative once past).
fn secs_until(t: SystemTime, now: SystemTime) -> i64 {
    match t.duration_since(now) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// How long to wait before refreshing credentials fetched at `fetched` that expire at `expires`:
/// until `refresh_before` ahead of expiry, or half their lifetime ahead when they live shorter
/// than twice that; at least a second.
pub fn refresh_wait(now: SystemTime, fetched: SystemTime, expires: SystemTime, s: ChainSettings) -> Duration {
    let life = expires.duration_since(fetched).unwrap_or_default();
    let ahead = s.refresh_before.min(life / 2);
    let at = expires.checked_sub(ahead).unwrap_or(expires);
    at.duration_since(now).unwrap_or_default().max(MIN_WAIT)
}

/// The S3 client's credentials: static, or the chain with its refresher.
pub struct Credentials(Kind);

enum Kind {
    Static(Arc<rusty_s3::Credentials>),
    Chain {
        chain: Arc<Chain>,
        /// Dropped with the client: the refresher thread then ends.
        _stop: tokio::sync::oneshot::Sender<()>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kind::Static(_) => f.write_str("Credentials(static)"),
            Kind::Chain { chain, .. } => write!(f, "Credentials(chain: {})", chain.source.name()),
        }
    }
}

/// A current-thread runtime for the chain's own thread (the server's runtimes are not used:
/// fetching never depends on which runtime, if any, builds the client).
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

impl Credentials {
    /// The credentials `cfg` names; the chain reads the process environment. `timeout` bounds
    /// each request to STS or a metadata endpoint.
    pub fn new(cfg: &S3Credentials, timeout: Duration) -> Result<Credentials, String> {
        Credentials::with_env(cfg, timeout, reqsign_core::OsEnv)
    }

    /// [`Credentials::new`] with the environment `env` (tests give a fixed one).
    pub fn with_env(cfg: &S3Credentials, timeout: Duration, env: impl Env) -> Result<Credentials, String> {
        let settings = match cfg {
            S3Credentials::Static { access_key_id, secret_access_key } => {
                let c = rusty_s3::Credentials::new(access_key_id.clone(), secret_access_key.clone());
                return Ok(Credentials(Kind::Static(Arc::new(c))));
            }
            S3Credentials::Chain(s) => *s,
        };
        let vars = env.vars();
        let source = Source::select(&vars).map_err(|e| format!("IMAGO_S3_CREDENTIALS=chain: {e}"))?;
        let sts = match vars.get("AWS_ENDPOINT_URL_STS").map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(url::Url::parse(v).map_err(|e| format!("AWS_ENDPOINT_URL_STS: {e}"))?),
        };
        // No pooling: the fetches are minutes apart and run on more than one runtime.
        let client = |proxies: bool| {
            let b = reqwest::Client::builder();
            let b = if proxies { b } else { b.no_proxy() };
            b.connect_timeout(timeout)
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| e.to_string())
        };
        let transport = Transport { sts_http: client(true)?, direct: client(false)?, sts };
        let ctx = Context::new().with_env(env).with_http_send(transport).with_file_read(Files);
        let name = source.name();
        // The first fetch, before anything is served, on a thread of its own (this may be
        // called inside a runtime or outside any).
        let first = std::thread::scope(|s| {
            s.spawn(|| runtime()?.block_on(Chain::fetch(&source, &ctx)))
                .join()
                .unwrap_or_else(|_| Err("the credential fetch panicked".into()))
        })
        .map_err(|e| format!("IMAGO_S3_CREDENTIALS=chain: no s3 credentials from {name}: {e}"))?;
        tracing::info!(
            source = name,
            expires_in_secs = first.expires.map(|x| secs_until(x, SystemTime::now())),
            "s3 credentials loaded"
        );
        let wait = first.expires.map(|x| refresh_wait(SystemTime::now(), first.fetched, x, settings));
        let chain = Arc::new(Chain {
            source,
            ctx,
            settings,
            current: RwLock::new(first),
            last_error: Mutex::new(None),
            refreshes: AtomicU64::new(1),
            failures: AtomicU64::new(0),
        });
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        if let Some(first_wait) = wait {
            let rt = runtime()?;
            let c = chain.clone();
            std::thread::Builder::new()
                .name("imago-s3-credentials".into())
                .spawn(move || {
                    rt.block_on(async move {
                        let mut wait = first_wait;
                        loop {
                            tokio::select! {
                                _ = tokio::time::sleep(wait) => {}
                                _ = &mut stopped => return,
                            }
                            match c.refresh().await {
                                Some(w) => wait = w,
                                None => return,
                            }
                        }
                    })
                })
                .map_err(|e| format!("the s3 credentials thread: {e}"))?;
        }
        Ok(Credentials(Kind::Chain { chain, _stop: stop }))
    }

    /// The credentials to sign with now (chain: the latest fetched, even when a refresh failed).
    pub fn current(&self) -> Arc<rusty_s3::Credentials> {
        match &self.0 {
            Kind::Static(c) => c.clone(),
            Kind::Chain { chain, .. } => match chain.current.read() {
                Ok(c) => c.creds.clone(),
                Err(poisoned) => poisoned.into_inner().creds.clone(),
            },
        }
    }

    /// The chain's state (`None` for static keys).
    pub fn status(&self) -> Option<CredentialStatus> {
        let Kind::Chain { chain, .. } = &self.0 else { return None };
        let expires = match chain.current.read() {
            Ok(c) => c.expires,
            Err(poisoned) => poisoned.into_inner().expires,
        };
        Some(CredentialStatus {
            source: chain.source.name(),
            refreshes: chain.refreshes.load(Ordering::Relaxed),
            failures: chain.failures.load(Ordering::Relaxed),
            expires,
            last_error: chain.last_error.lock().ok().and_then(|e| e.clone()),
        })
    }

    /// `Err` once chain credentials expired (every signed request is refused then), `Ok(Some)`
    /// with a warning while refreshing fails but the credentials are still valid.
    pub fn check(&self) -> Result<Option<String>, String> {
        let Some(st) = self.status() else { return Ok(None) };
        let why = st.last_error.as_deref().map(|e| format!(": refresh failed: {e}")).unwrap_or_default();
        match st.expires.map(|x| secs_until(x, SystemTime::now())) {
            Some(left) if left <= 0 => Err(format!("s3 credentials ({}) expired {}s ago{why}", st.source, -left)),
            Some(left) if st.last_error.is_some() => {
                Ok(Some(format!("s3 credentials ({}) expire in {left}s{why}", st.source)))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> reqsign_core::StaticEnv {
        reqsign_core::StaticEnv {
            home_dir: None,
            envs: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        env(pairs).envs
    }

    const CHAIN: ChainSettings =
        ChainSettings { refresh_before: Duration::from_secs(300), retry: Duration::from_secs(5) };

    #[test]
    fn the_environment_selects_one_source_in_the_sdk_order() {
        let pick = |p: &[(&str, &str)]| Source::select(&vars(p)).map(|s| s.name());
        let keys = [("AWS_ACCESS_KEY_ID", "AK"), ("AWS_SECRET_ACCESS_KEY", "SK")];
        let wi = [("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"), ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r")];
        assert_eq!(pick(&[keys[0], keys[1], wi[0], wi[1]]), Ok("env"));
        assert_eq!(pick(&wi), Ok("web-identity"));
        assert_eq!(pick(&[wi[0], wi[1], ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/x")]), Ok("web-identity"));
        assert_eq!(pick(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/c")]), Ok("ecs"));
        assert_eq!(pick(&[]), Ok("imds"));
        assert!(pick(&[("AWS_EC2_METADATA_DISABLED", "true")]).unwrap_err().contains("no credentials"));
        assert!(pick(&[keys[0]]).unwrap_err().contains("together"));
        assert!(pick(&[wi[0]]).unwrap_err().contains("AWS_ROLE_ARN"));
    }

    #[test]
    fn refresh_comes_ahead_of_expiry() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let s = |n| t0 + Duration::from_secs(n);
        // An hour-long credential: refreshed 5 minutes before it expires.
        assert_eq!(refresh_wait(t0, t0, s(3600), CHAIN), Duration::from_secs(3300));
        // A 20 s one: at half its life, not at once.
        assert_eq!(refresh_wait(t0, t0, s(20), CHAIN), Duration::from_secs(10));
        // Already due: a second, never a busy loop.
        assert_eq!(refresh_wait(s(100), t0, s(20), CHAIN), MIN_WAIT);
    }

    /// The env source with a session token: the token is kept and signed into presigned URLs
    /// (`X-Amz-Security-Token`), the secret never shows in `Debug`.
    #[test]
    fn env_credentials_carry_the_session_token() {
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret-value"),
            ("AWS_SESSION_TOKEN", "env-session-token"),
        ]);
        let c = Credentials::with_env(&S3Credentials::Chain(CHAIN), Duration::from_secs(1), e).unwrap();
        let cur = c.current();
        assert_eq!((cur.key(), cur.token()), ("AKIDENV", Some("env-session-token")));
        let st = c.status().unwrap();
        assert_eq!((st.source, st.refreshes, st.failures, st.expires), ("env", 1, 0, None));
        assert_eq!(c.check(), Ok(None));
        let bucket = rusty_s3::Bucket::new(
            "http://127.0.0.1:3900".parse().unwrap(),
            rusty_s3::UrlStyle::Path,
            "b".to_string(),
            "garage".to_string(),
        )
        .unwrap();
        use rusty_s3::S3Action;
        let url = bucket.get_object(Some(&cur), "k.jpg").sign(Duration::from_secs(60));
        let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q.get("X-Amz-Security-Token").map(String::as_str), Some("env-session-token"));
        let dbg = format!("{c:?} {:?}", c.status());
        assert!(!dbg.contains("env-secret-value") && !dbg.contains("env-session-token"), "{dbg}");
    }

    #[test]
    fn a_missing_source_fails_at_start_and_names_it() {
        let e =
            env(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token"), ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r")]);
        let err = Credentials::with_env(&S3Credentials::Chain(CHAIN), Duration::from_secs(1), e).unwrap_err();
        assert!(err.contains("web-identity"), "{err}");
    }
}
