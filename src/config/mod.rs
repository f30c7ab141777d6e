//! Typed configuration: defaults < `imago.toml` (`--config`) < `IMAGO_*` environment variables.
//!
//! Every setting is listed once in [`SETTINGS`], which `imago serve --help` prints, so the help
//! text and the code cannot drift apart. Secrets are never printed: [`Config::redacted`] is what
//! gets logged.

mod console;
mod container;
mod events;
mod help;
mod media;
mod quota;
mod raw;
mod sections;
#[cfg(test)]
mod string_tests;
mod tenants;

pub use console::console_enabled;
pub use container::{cgroup_memory_limit, CgroupLimit, MemoryLimit, CGROUP_ROOT, CGROUP_SHARE_PERCENT};
pub use events::{EventSettings, MAX_BACKOFF};
pub use help::{settings_help, Setting, SETTINGS};
pub use media::{AuxSource, MediaSettings};
pub use quota::{redact_url, OnStoreError, QuotaLimits, QuotaScope, QuotaSettings, QuotaStore};
pub use raw::{List, NumList, RawConfig};
pub use sections::{clean_prefix, s3_mode, AnalyticsSettings, Codec, UploadSettings, CODEC_EXTS};
pub use tenants::{valid_tenant, ApiKeySpec, Scope, Scopes, DEFAULT_TENANT};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use imago_signing::{KeyPair, Verifier};
use serde::{Deserialize, Serialize};

/// A configuration error, reported at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Figment(#[from] Box<figment::Error>),
    #[error("{setting}: {message}")]
    Invalid { setting: &'static str, message: String },
    #[error("{setting}: cannot read {path}: {source}")]
    File { setting: &'static str, path: PathBuf, source: std::io::Error },
    #[error("IMAGO_KEY/IMAGO_SALT: {0}")]
    Keys(#[from] imago_signing::KeyError),
}

/// The shortest signature accepted (`IMAGO_SIGNATURE_SIZE`, bytes): 64 bits.
pub const MIN_SIGNATURE_SIZE: usize = 8;

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting, message: message.into() }
}

/// S3 connection settings.
#[derive(Clone, Debug)]
pub struct S3Config {
    pub endpoint: url::Url,
    pub region: String,
    pub bucket: Option<String>,
    pub allowed_buckets: Vec<String>,
    pub credentials: S3Credentials,
    pub path_style: bool,
}

/// Where the S3 client's credentials come from (`IMAGO_S3_CREDENTIALS`).
#[derive(Clone)]
pub enum S3Credentials {
    /// `IMAGO_S3_ACCESS_KEY_ID` and the secret (or its file), used as they are.
    Static { access_key_id: String, secret_access_key: String },
    /// The standard AWS chain (src/storage/credentials.rs), refreshed ahead of expiry.
    Chain(ChainSettings),
}

/// Refresh settings of chain credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainSettings {
    /// Refresh this long before expiry (`IMAGO_S3_CREDENTIALS_REFRESH_SECS`; at most half the
    /// credentials' lifetime).
    pub refresh_before: std::time::Duration,
    /// Retry a failed refresh this much later (`IMAGO_S3_CREDENTIALS_RETRY_MS`).
    pub retry: std::time::Duration,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            S3Credentials::Static { access_key_id, .. } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"[redacted]")
                .finish(),
            S3Credentials::Chain(c) => f.debug_tuple("Chain").field(c).finish(),
        }
    }
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub raw: RawConfig,
    pub bind: SocketAddr,
    pub verifier: Verifier,
    pub dev_keys: bool,
    pub workers: usize,
    pub queue_size: usize,
    pub width_ladder: Vec<u32>,
    pub allowed_hosts: Vec<String>,
    pub s3: Option<S3Config>,
    /// Upload settings (tickets, embedded uploads), typed and checked.
    pub uploads: UploadSettings,
    /// Analytics and metrics-listener settings, typed and checked.
    pub analytics: AnalyticsSettings,
    /// Webhooks (the event outbox) and edge purges, typed and checked.
    pub events: EventSettings,
    /// RSS above which new transforms are shed (`IMAGO_MEMORY_LIMIT_MB`, else from the cgroup).
    pub memory_limit: MemoryLimit,
    /// Whether `/console` is served (`IMAGO_CONSOLE`, [`console_enabled`]).
    pub console: bool,
    /// Watermark, fallback image and the `/enc/` source key, typed and checked.
    pub media: MediaSettings,
}

fn read_secret_file(setting: &'static str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|source| ConfigError::File {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

/// `scheme://user:pass@host/…` → `scheme://[redacted]@host/…`; anything else unchanged.
pub(crate) fn without_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let authority_end = url[scheme_end..].find(['/', '?', '#']).map_or(url.len(), |i| scheme_end + i);
    match url[scheme_end..authority_end].rfind('@') {
        Some(at) => format!("{}[redacted]{}", &url[..scheme_end], &url[scheme_end + at..]),
        None => url.to_string(),
    }
}

impl std::fmt::Debug for RawConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_string(&self.redacted()) {
            Ok(json) => write!(f, "RawConfig {json}"),
            Err(_) => f.write_str("RawConfig { .. }"),
        }
    }
}

/// Dev keys file contents.
#[derive(Serialize, Deserialize)]
struct DevKeys {
    key: String,
    salt: String,
}

impl RawConfig {
    /// Reads the layers: defaults, then the TOML file (if any), then `IMAGO_*` env vars.
    pub fn load(toml: Option<&Path>) -> Result<RawConfig, ConfigError> {
        let defaults = Serialized::defaults(RawConfig::default());
        let env = raw::StringEnv::new(&defaults).map_err(ConfigError::Figment)?;
        let mut fig = Figment::from(defaults);
        if let Some(p) = toml {
            if !p.exists() {
                return Err(invalid("--config", format!("{} does not exist", p.display())));
            }
            fig = fig.merge(Toml::file(p));
        }
        fig = fig.merge(env);
        fig.extract().map_err(|e| ConfigError::Figment(Box::new(e)))
    }

    /// What may be logged: secrets replaced.
    pub fn redacted(&self) -> RawConfig {
        let mut r = self.clone();
        let red = |l: &List| if l.strings().is_empty() { List::default() } else { List::from_strs(&["[redacted]"]) };
        r.key = red(&r.key);
        r.salt = red(&r.salt);
        r.api_keys = red(&r.api_keys);
        if r.s3_secret_access_key.is_some() {
            r.s3_secret_access_key = Some("[redacted]".into());
        }
        // Credentials written into a URL (`https://user:pass@host/`) are secrets too.
        for url in [&mut r.s3_endpoint, &mut r.public_url, &mut r.source_proxy].into_iter().flatten() {
            *url = without_userinfo(url);
        }
        r.quota_store = redact_url(&r.quota_store);
        r.webhook_secrets = red(&r.webhook_secrets);
        if r.purge_token.is_some() {
            r.purge_token = Some("[redacted]".into());
        }
        if r.source_url_encryption_key.is_some() {
            r.source_url_encryption_key = Some("[redacted]".into());
        }
        // Not secret, but long: the size is enough in a log line.
        for data in [&mut r.watermark_data, &mut r.fallback_image_data].into_iter().flatten() {
            *data = format!("[{} base64 characters]", data.len());
        }
        for url in [&mut r.watermark_url, &mut r.fallback_image_url].into_iter().flatten() {
            *url = without_userinfo(url);
        }
        // Webhook paths and queries often carry a token: only the origin is logged.
        let urls: Vec<String> = r
            .webhook_urls
            .strings()
            .iter()
            .map(|u| match url::Url::parse(u) {
                Ok(p) => format!("{}/[redacted]", p.origin().ascii_serialization()),
                Err(_) => "[redacted]".to_string(),
            })
            .collect();
        r.webhook_urls = List::from_strs(&urls.iter().map(String::as_str).collect::<Vec<_>>());
        r
    }

    /// The S3 credentials (`IMAGO_S3_CREDENTIALS`): static keys, required and used as they are,
    /// or the AWS chain, which takes no static key (one source of credentials, never a silent
    /// fallback from one to the other).
    fn s3_credentials_settings(&self) -> Result<S3Credentials, ConfigError> {
        match self.s3_credentials.trim() {
            "static" => {
                let secret = match (&self.s3_secret_access_key, &self.s3_secret_access_key_file) {
                    (_, Some(p)) => read_secret_file("IMAGO_S3_SECRET_ACCESS_KEY_FILE", p)?,
                    (Some(s), None) => s.clone(),
                    (None, None) => {
                        return Err(invalid("IMAGO_S3_SECRET_ACCESS_KEY", "required with IMAGO_S3_ENDPOINT"))
                    }
                };
                let access = self
                    .s3_access_key_id
                    .clone()
                    .ok_or_else(|| invalid("IMAGO_S3_ACCESS_KEY_ID", "required with IMAGO_S3_ENDPOINT"))?;
                Ok(S3Credentials::Static { access_key_id: access, secret_access_key: secret })
            }
            "chain" => {
                if self.s3_access_key_id.is_some()
                    || self.s3_secret_access_key.is_some()
                    || self.s3_secret_access_key_file.is_some()
                {
                    return Err(invalid(
                        "IMAGO_S3_CREDENTIALS",
                        "chain takes credentials from the AWS chain: unset IMAGO_S3_ACCESS_KEY_ID, IMAGO_S3_SECRET_ACCESS_KEY and IMAGO_S3_SECRET_ACCESS_KEY_FILE",
                    ));
                }
                if !(1..=43_200).contains(&self.s3_credentials_refresh_secs) {
                    return Err(invalid("IMAGO_S3_CREDENTIALS_REFRESH_SECS", "must be 1 to 43200"));
                }
                if !(100..=600_000).contains(&self.s3_credentials_retry_ms) {
                    return Err(invalid("IMAGO_S3_CREDENTIALS_RETRY_MS", "must be 100 to 600000"));
                }
                Ok(S3Credentials::Chain(ChainSettings {
                    refresh_before: std::time::Duration::from_secs(self.s3_credentials_refresh_secs),
                    retry: std::time::Duration::from_millis(self.s3_credentials_retry_ms),
                }))
            }
            _ => Err(invalid("IMAGO_S3_CREDENTIALS", "must be `static` or `chain`")),
        }
    }

    /// Files holding secrets must not be inside `IMAGO_LOCAL_ROOT`, where `local:///` reads and
    /// the images API (info, delete) reach: the development keys file when it is used, and the
    /// `*_FILE` settings.
    fn check_secret_files(&self, dev_keys: bool) -> Result<(), ConfigError> {
        let files = [
            ("IMAGO_DEV_KEYS_FILE", dev_keys.then_some(&self.dev_keys_file)),
            ("IMAGO_KEY_FILE", self.key_file.as_ref()),
            ("IMAGO_SALT_FILE", self.salt_file.as_ref()),
            ("IMAGO_S3_SECRET_ACCESS_KEY_FILE", self.s3_secret_access_key_file.as_ref()),
        ];
        let root = sections::absolute(&self.local_root);
        for (setting, path) in files {
            let Some(path) = path else { continue };
            let abs = sections::absolute(path);
            if abs.starts_with(&root) {
                return Err(invalid(
                    setting,
                    format!(
                        "{} is inside IMAGO_LOCAL_ROOT ({}): the server could serve or delete it; keep secrets outside the image root",
                        abs.display(),
                        root.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Validates and resolves the settings. `create_dev_keys`: generate development keys when
    /// none are configured (the server does; `imago sign` only reads them).
    pub fn validate(self, create_dev_keys: bool) -> Result<Config, ConfigError> {
        let bind: SocketAddr = self
            .bind
            .parse()
            .map_err(|_| invalid("IMAGO_BIND", format!("`{}` is not an address like 127.0.0.1:8080", self.bind)))?;
        let mut keys = self.key.strings().join(",");
        let mut salts = self.salt.strings().join(",");
        if let Some(p) = &self.key_file {
            keys = read_secret_file("IMAGO_KEY_FILE", p)?;
        }
        if let Some(p) = &self.salt_file {
            salts = read_secret_file("IMAGO_SALT_FILE", p)?;
        }
        if !(MIN_SIGNATURE_SIZE..=imago_signing::FULL_SIGNATURE_SIZE).contains(&self.signature_size) {
            return Err(invalid(
                "IMAGO_SIGNATURE_SIZE",
                format!(
                    "must be {MIN_SIGNATURE_SIZE} to 32 bytes, got {}: shorter signatures can be guessed (one in 2^(8 x size) tries)",
                    self.signature_size
                ),
            ));
        }
        let dev_keys = keys.is_empty() && salts.is_empty();
        self.check_secret_files(dev_keys)?;
        if dev_keys {
            (keys, salts) = dev_keys_load(&self.dev_keys_file, create_dev_keys)?;
        }
        let pairs = KeyPair::parse_lists(&keys, &salts)?;
        let verifier = Verifier::new(pairs)?.with_signature_size(self.signature_size)?;
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let workers = if self.workers == 0 { cores } else { self.workers };
        let queue_size = if self.queue_size == 0 { workers * 8 } else { self.queue_size };
        let mut width_ladder = Vec::new();
        for w in self.width_ladder.strings() {
            let v: u32 =
                w.parse().map_err(|_| invalid("IMAGO_WIDTH_LADDER", format!("`{w}` is not a width in pixels")))?;
            if v == 0 || v > self.max_output_dimension {
                return Err(invalid("IMAGO_WIDTH_LADDER", format!("{v} is outside 1..=IMAGO_MAX_OUTPUT_DIMENSION")));
            }
            width_ladder.push(v);
        }
        width_ladder.sort_unstable();
        width_ladder.dedup();
        if !(1.0..=10.0).contains(&self.max_dpr) {
            return Err(invalid("IMAGO_MAX_DPR", "must be between 1 and 10"));
        }
        for (name, q) in [
            ("IMAGO_JPEG_QUALITY", self.jpeg_quality),
            ("IMAGO_WEBP_QUALITY", self.webp_quality),
            ("IMAGO_AVIF_QUALITY", self.avif_quality),
            ("IMAGO_PNG_QUALITY", self.png_quality),
            ("IMAGO_GIF_QUALITY", self.gif_quality),
            ("IMAGO_JXL_QUALITY", self.jxl_quality),
        ] {
            if !(1..=100).contains(&q) {
                return Err(invalid(name, "quality must be 1-100"));
            }
        }
        if self.avif_effort > 9 {
            return Err(invalid("IMAGO_AVIF_EFFORT", "must be 0-9"));
        }
        // libvips 8.14's jxlsave takes 3-9; below that it warns and silently uses its default (7).
        if !(3..=9).contains(&self.jxl_effort) {
            return Err(invalid("IMAGO_JXL_EFFORT", "must be 3-9"));
        }
        if self.webp_effort > 6 {
            return Err(invalid("IMAGO_WEBP_EFFORT", "must be 0-6"));
        }
        if self.max_src_bytes == 0
            || self.max_src_megapixels <= 0.0
            || self.max_output_dimension == 0
            || self.max_output_megapixels.is_nan()
            || self.max_output_megapixels <= 0.0
        {
            return Err(invalid("IMAGO_MAX_*", "limits must be positive"));
        }
        if !(10.0..=95.0).contains(&self.auto_quality_target) {
            return Err(invalid("IMAGO_AUTO_QUALITY_TARGET", "must be between 10 and 95"));
        }
        if !(1..=8).contains(&self.auto_quality_trials) {
            return Err(invalid("IMAGO_AUTO_QUALITY_TRIALS", "must be 1-8"));
        }
        if !(1..=64).contains(&self.vips_concurrency) {
            return Err(invalid("IMAGO_VIPS_CONCURRENCY", "must be 1-64"));
        }
        if !["auto", "json", "pretty"].contains(&self.log_format.as_str()) {
            return Err(invalid("IMAGO_LOG_FORMAT", "must be json, pretty or auto"));
        }
        for (name, opts) in &self.presets {
            if name.is_empty() || name.contains([':', '/']) {
                return Err(invalid("IMAGO_PRESETS", format!("bad preset name `{name}`")));
            }
            if opts.is_empty() {
                return Err(invalid("IMAGO_PRESETS", format!("preset `{name}` is empty")));
            }
        }
        let uploads = UploadSettings::from_raw(&self).map_err(|(s, m)| invalid(s, m))?;
        container::check_public_url(&bind, self.public_url.as_deref(), !uploads.api_keys.is_empty())
            .map_err(|m| invalid("IMAGO_PUBLIC_URL", m))?;
        let memory_limit = MemoryLimit::detect(self.memory_limit_mb);
        let analytics = AnalyticsSettings::from_raw(&self).map_err(|(s, m)| invalid(s, m))?;
        let events = EventSettings::from_raw(&self).map_err(|(s, m)| invalid(s, m))?;
        let media = MediaSettings::from_raw(&self).map_err(|(s, m)| invalid(s, m))?;
        let allowed_hosts = self.allowed_hosts.strings().into_iter().map(|h| h.to_ascii_lowercase()).collect();
        let s3 = match &self.s3_endpoint {
            None => None,
            Some(ep) => {
                let endpoint = url::Url::parse(ep).map_err(|e| invalid("IMAGO_S3_ENDPOINT", e.to_string()))?;
                let credentials = self.s3_credentials_settings()?;
                let mut allowed_buckets = self.s3_allowed_buckets.strings();
                if let Some(b) = &self.s3_bucket {
                    if !allowed_buckets.contains(b) {
                        allowed_buckets.push(b.clone());
                    }
                }
                Some(S3Config {
                    endpoint,
                    region: self.s3_region.clone(),
                    bucket: self.s3_bucket.clone(),
                    allowed_buckets,
                    credentials,
                    path_style: self.s3_path_style,
                })
            }
        };
        let console = console_enabled(&self.console, &bind, s3.as_ref().is_some_and(|s| s.bucket.is_some()))
            .map_err(|m| invalid("IMAGO_CONSOLE", m))?;
        Ok(Config {
            console,
            raw: self,
            bind,
            verifier,
            dev_keys,
            workers,
            queue_size,
            width_ladder,
            allowed_hosts,
            s3,
            uploads,
            analytics,
            events,
            memory_limit,
            media,
        })
    }
}

/// Reads development keys, generating them once when `create` is set.
fn dev_keys_load(path: &Path, create: bool) -> Result<(String, String), ConfigError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let k: DevKeys = toml_parse(&text).map_err(|e| invalid("IMAGO_DEV_KEYS_FILE", e))?;
        return Ok((k.key, k.salt));
    }
    if !create {
        return Err(invalid(
            "IMAGO_KEY",
            format!(
                "no key configured and no development keys at {} (run `imago serve` once, or set IMAGO_KEY/IMAGO_SALT)",
                path.display()
            ),
        ));
    }
    use rand::RngCore;
    let mut k = [0u8; 32];
    let mut s = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut k);
    rand::thread_rng().fill_bytes(&mut s);
    let keys = DevKeys { key: hex::encode(k), salt: hex::encode(s) };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ConfigError::File {
            setting: "IMAGO_DEV_KEYS_FILE",
            path: dir.into(),
            source,
        })?;
    }
    let text = format!(
        "# Development keys generated by `imago serve` (no IMAGO_KEY was set). Not for production.\nkey = \"{}\"\nsalt = \"{}\"\n",
        keys.key, keys.salt
    );
    write_private(path, &text).map_err(|source| ConfigError::File {
        setting: "IMAGO_DEV_KEYS_FILE",
        path: path.into(),
        source,
    })?;
    Ok((keys.key, keys.salt))
}

fn toml_parse(text: &str) -> Result<DevKeys, String> {
    Figment::from(Toml::string(text)).extract().map_err(|e| e.to_string())
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(0o600);
    let mut f = o.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_keys() -> RawConfig {
        RawConfig { key: List::from_strs(&["aa11"]), salt: List::from_strs(&["bb22"]), ..Default::default() }
    }

    #[test]
    fn defaults_validate() {
        let c = with_keys().validate(false).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert!(c.workers >= 1);
        assert_eq!(c.queue_size, c.workers * 8);
        assert_eq!(c.width_ladder.first(), Some(&16));
        assert_eq!(c.width_ladder.last(), Some(&3840));
        assert!(!c.dev_keys);
    }

    #[test]
    fn list_accepts_commas_and_arrays() {
        assert_eq!(List::from_strs(&["a, b,,c"]).strings(), vec!["a", "b", "c"]);
        assert_eq!(NumList::from_strs(&["16", "32,48"]).strings(), vec!["16", "32", "48"]);
    }

    #[test]
    fn invalid_settings_are_named() {
        let e = RawConfig { bind: "nope".into(), ..with_keys() }.validate(false).unwrap_err();
        assert!(e.to_string().contains("IMAGO_BIND"), "{e}");
        let e = RawConfig { jpeg_quality: 0, ..with_keys() }.validate(false).unwrap_err();
        assert!(e.to_string().contains("IMAGO_JPEG_QUALITY"), "{e}");
        let e = RawConfig { key: List::from_strs(&["zz"]), ..with_keys() }.validate(false).unwrap_err();
        assert!(e.to_string().contains("hex"), "{e}");
        let e = RawConfig { width_ladder: NumList::from_strs(&["10,x"]), ..with_keys() }.validate(false).unwrap_err();
        assert!(e.to_string().contains("IMAGO_WIDTH_LADDER"), "{e}");
        let e =
            RawConfig { s3_endpoint: Some("http://127.0.0.1:3900".into()), ..with_keys() }.validate(false).unwrap_err();
        assert!(e.to_string().contains("IMAGO_S3"), "{e}");
    }

    #[test]
    fn s3_credentials_static_or_chain() {
        let ep = || RawConfig { s3_endpoint: Some("http://127.0.0.1:3900".into()), ..with_keys() };
        // Static keys, as before: required and used as given.
        let c = RawConfig { s3_access_key_id: Some("AK".into()), s3_secret_access_key: Some("SK".into()), ..ep() }
            .validate(false)
            .unwrap();
        assert!(
            matches!(&c.s3.unwrap().credentials, S3Credentials::Static { access_key_id, .. } if access_key_id == "AK")
        );
        // The chain takes no key (one source, no silent fallback), and its refresh settings.
        let c = RawConfig { s3_credentials: "chain".into(), ..ep() }.validate(false).unwrap();
        let S3Credentials::Chain(chain) = c.s3.unwrap().credentials else { panic!("not the chain") };
        assert_eq!(chain.refresh_before, std::time::Duration::from_secs(300));
        assert_eq!(chain.retry, std::time::Duration::from_millis(5000));
        let e = RawConfig { s3_credentials: "chain".into(), s3_access_key_id: Some("AK".into()), ..ep() }
            .validate(false)
            .unwrap_err();
        assert!(e.to_string().contains("IMAGO_S3_CREDENTIALS"), "{e}");
        let e = RawConfig { s3_credentials: "irsa".into(), ..ep() }.validate(false).unwrap_err();
        assert!(e.to_string().contains("`static` or `chain`"), "{e}");
        let e = RawConfig { s3_credentials: "chain".into(), s3_credentials_refresh_secs: 0, ..ep() }
            .validate(false)
            .unwrap_err();
        assert!(e.to_string().contains("IMAGO_S3_CREDENTIALS_REFRESH_SECS"), "{e}");
        let e = RawConfig { s3_credentials: "chain".into(), s3_credentials_retry_ms: 10, ..ep() }
            .validate(false)
            .unwrap_err();
        assert!(e.to_string().contains("IMAGO_S3_CREDENTIALS_RETRY_MS"), "{e}");
        let secret =
            RawConfig { s3_access_key_id: Some("AK".into()), s3_secret_access_key: Some("SK-secret".into()), ..ep() };
        let s3 = format!("{:?}", secret.validate(false).unwrap().s3);
        assert!(s3.contains("AK") && !s3.contains("SK-secret"), "{s3}");
    }

    #[test]
    fn redaction_hides_secrets() {
        let r = RawConfig { s3_secret_access_key: Some("topsecret".into()), ..with_keys() }.redacted();
        let text = format!("{r:?}");
        assert!(!text.contains("aa11") && !text.contains("bb22") && !text.contains("topsecret"), "{text}");
    }

    #[test]
    fn debug_of_the_settings_never_shows_a_secret() {
        let raw = RawConfig {
            s3_secret_access_key: Some("topsecret".into()),
            s3_endpoint: Some("https://AKID:s3pass@s3.example.com:9000/x?y=1".into()),
            public_url: Some("https://cdn.example.com".into()),
            source_proxy: Some("http://proxyuser:proxypass@10.0.0.1:3128".into()),
            source_url_encryption_key: Some("5ec0de".repeat(10) + "5ec0"),
            watermark_url: Some("https://wmuser:wmpass@cdn.example.com/wm.png".into()),
            ..with_keys()
        };
        let config = format!("{:?}", with_keys().validate(false).unwrap());
        assert!(!config.contains("aa11") && !config.contains("bb22"), "{config}");
        let media = RawConfig {
            source_url_encryption_key: raw.source_url_encryption_key.clone(),
            watermark_url: raw.watermark_url.clone(),
            ..with_keys()
        };
        let config = format!("{:?}", media.validate(false).unwrap());
        assert!(!config.contains("5ec0de") && !config.contains("wmpass"), "{config}");
        for text in [format!("{raw:?}"), format!("{:?}", raw.redacted())] {
            for secret in ["aa11", "bb22", "topsecret", "s3pass", "AKID:", "proxypass", "5ec0de", "wmpass"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            assert!(text.contains("https://[redacted]@s3.example.com:9000/x?y=1"), "{text}");
            assert!(text.contains("https://cdn.example.com"), "{text}");
        }
        assert_eq!(without_userinfo("http://h/p@q"), "http://h/p@q");
        assert_eq!(without_userinfo("not a url"), "not a url");
    }

    #[test]
    fn redaction_hides_webhook_secrets_and_the_purge_token() {
        let r = RawConfig {
            webhook_urls: List::from_strs(&["https://hooks.example/imago?token=abc123"]),
            webhook_secrets: List::from_strs(&["whsec-old-0123456789", "whsec-new-0123456789"]),
            purge_token: Some("purge-token-0123456789".into()),
            ..with_keys()
        }
        .redacted();
        let text = format!("{r:?}");
        assert!(!text.contains("whsec-") && !text.contains("purge-token-0123") && !text.contains("abc123"), "{text}");
        assert!(text.contains("hooks.example"), "{text}");
    }

    #[test]
    fn dev_keys_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/dev-keys.toml");
        let raw = RawConfig { dev_keys_file: path.clone(), ..Default::default() };
        assert!(raw.clone().validate(false).is_err(), "sign must not create keys");
        let a = raw.clone().validate(true).unwrap();
        assert!(a.dev_keys);
        let b = raw.validate(false).unwrap();
        assert_eq!(a.verifier.signer().sign("/x"), b.verifier.signer().sign("/x"));
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn layers_env_over_toml_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("imago.toml");
        std::fs::write(&p, "jpeg_quality = 70\nwebp_quality = 71\n[presets]\nthumb = \"rs:fill:100:100\"\n").unwrap();
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("IMAGO_WEBP_QUALITY", "72");
            jail.set_env("IMAGO_WIDTH_LADDER", "100,200");
            let r = RawConfig::load(Some(&p)).unwrap();
            assert_eq!(r.jpeg_quality, 70);
            assert_eq!(r.webp_quality, 72);
            assert_eq!(r.avif_quality, 60);
            assert_eq!(r.presets.get("thumb").map(String::as_str), Some("rs:fill:100:100"));
            assert_eq!(r.width_ladder.strings(), vec!["100", "200"]);
            Ok(())
        });
    }
}
