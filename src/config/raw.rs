//! The raw settings as the layers give them (defaults < `imago.toml` < `IMAGO_*`): secrets and
//! lists as strings, checked and typed by [`super::RawConfig::validate`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use figment::providers::{Env, Serialized};
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A list of strings, given as a comma-separated string (env vars) or a TOML array of strings.
/// Numbers and booleans are refused, never converted (`key = 00112233` unquoted in `imago.toml`
/// is an error, not the key `112233`), and the error does not quote the value: it may be a secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct List(Vec<String>);

/// A list of numbers ([`List`] that also takes TOML numbers): `IMAGO_WIDTH_LADDER`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NumList(Vec<String>);

const NOT_A_STRING: &str =
    "expected a string in quotes: numbers and booleans are not converted for this setting (the value is not shown)";
const NOT_A_LIST: &str = "expected a string in quotes or an array of strings: numbers and booleans are not \
     converted for this setting (the value is not shown)";

/// Reads a string or an array of strings; with `numbers`, numbers too (as their decimal text).
struct Items {
    numbers: bool,
}

impl<'de> Visitor<'de> for Items {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string or an array of strings")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.numbers.then(|| vec![v.to_string()]).ok_or_else(|| E::custom(NOT_A_LIST))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.numbers.then(|| vec![v.to_string()]).ok_or_else(|| E::custom(NOT_A_LIST))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.numbers.then(|| vec![v.to_string()]).ok_or_else(|| E::custom(NOT_A_LIST))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(NOT_A_LIST))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(Items { numbers: self.numbers })? {
            out.extend(item);
        }
        Ok(out)
    }
}

impl<'de> de::DeserializeSeed<'de> for Items {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Items { numbers: false }).map(List)
    }
}

impl<'de> Deserialize<'de> for NumList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Items { numbers: true }).map(NumList)
    }
}

fn split(items: &[String]) -> Vec<String> {
    items.iter().flat_map(|s| s.split(',')).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

impl List {
    /// The entries, comma-separated strings split, trimmed, empty ones dropped.
    pub fn strings(&self) -> Vec<String> {
        split(&self.0)
    }
    pub fn from_strs(v: &[&str]) -> Self {
        List(v.iter().map(|s| s.to_string()).collect())
    }
}

impl NumList {
    /// The entries as text, split like [`List::strings`].
    pub fn strings(&self) -> Vec<String> {
        split(&self.0)
    }
    pub fn from_strs(v: &[&str]) -> Self {
        NumList(v.iter().map(|s| s.to_string()).collect())
    }
}

/// An optional secret string: like `Option<String>`, but a TOML number or boolean is refused
/// without quoting it.
fn opt_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Secret;
    impl<'de> Visitor<'de> for Secret {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Secret)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom(NOT_A_STRING))
        }
    }
    d.deserialize_option(Secret)
}

/// The `IMAGO_*` environment layer, values kept as the strings they are. figment's own `Env`
/// guesses a type from the text of every variable before it knows the setting (`00112233` became
/// the number 112233, `0011` the number 11, `1e5` the float 100000, `true` a boolean), which
/// rewrote numeric-looking keys, salts, prefixes, bucket names and paths, or refused them. Here a
/// value is parsed only for settings whose default is a number, a boolean or a table
/// (`IMAGO_PRESETS`), exactly as before; every other setting gets the string.
/// Numeric settings whose default is "unset" (so the default names no type): parsed like numbers.
pub const OPTIONAL_NUMBERS: &[&str] = &["memory_limit_mb"];

pub struct StringEnv {
    env: Env,
    typed: Dict,
}

impl StringEnv {
    pub fn new(defaults: &Serialized<RawConfig>) -> Result<StringEnv, Box<figment::Error>> {
        let typed = defaults.data().map_err(Box::new)?.remove(&Profile::Default).unwrap_or_default();
        Ok(StringEnv { env: Env::prefixed("IMAGO_").ignore(&["config"]), typed })
    }
}

impl Provider for StringEnv {
    fn metadata(&self) -> Metadata {
        self.env.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, text) in self.env.iter() {
            let key = key.as_str().to_string();
            let value = match self.typed.get(&key) {
                _ if OPTIONAL_NUMBERS.contains(&key.as_str()) => {
                    text.parse::<Value>().unwrap_or_else(|never| match never {})
                }
                Some(Value::Num(..) | Value::Bool(..) | Value::Dict(..)) => {
                    text.parse::<Value>().unwrap_or_else(|never| match never {})
                }
                _ => Value::from(text),
            };
            dict.insert(key, value);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Raw settings as read from the layers (strings for secrets and lists). Its `Debug` is the
/// redacted form ([`RawConfig::redacted`]), so `?config` in a log line never shows a secret.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    pub bind: String,
    pub key: List,
    pub salt: List,
    pub key_file: Option<PathBuf>,
    pub salt_file: Option<PathBuf>,
    pub signature_size: usize,
    pub allow_insecure: bool,
    /// Accept imgproxy's per-URL security options (they can only lower the limits).
    pub allow_security_options: bool,
    pub dev_keys_file: PathBuf,
    pub local_root: PathBuf,
    pub allowed_hosts: List,
    pub allow_private_networks: bool,
    /// An explicit egress proxy for HTTP(S) sources (the environment's proxies are ignored).
    pub source_proxy: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_bucket: Option<String>,
    pub s3_allowed_buckets: List,
    #[serde(deserialize_with = "opt_secret")]
    pub s3_access_key_id: Option<String>,
    #[serde(deserialize_with = "opt_secret")]
    pub s3_secret_access_key: Option<String>,
    pub s3_secret_access_key_file: Option<PathBuf>,
    pub s3_path_style: bool,
    /// `static` (IMAGO_S3_ACCESS_KEY_ID/SECRET) or `chain` (the standard AWS credential chain).
    pub s3_credentials: String,
    /// Chain credentials are refreshed this long before they expire (at most half their life).
    pub s3_credentials_refresh_secs: u64,
    /// After a failed refresh, the next attempt comes this much later.
    pub s3_credentials_retry_ms: u64,
    pub max_src_bytes: u64,
    pub max_src_megapixels: f64,
    pub max_output_dimension: u32,
    pub max_output_megapixels: f64,
    pub max_animation_frames: u32,
    pub max_redirects: usize,
    pub fetch_timeout_ms: u64,
    pub transform_timeout_ms: u64,
    pub queue_timeout_ms: u64,
    pub workers: usize,
    pub queue_size: usize,
    pub vips_concurrency: i32,
    /// None: derived from the cgroup (`container::MemoryLimit`); 0: off.
    pub memory_limit_mb: Option<u64>,
    pub cache_size_mb: u64,
    pub cache_ttl_secs: u64,
    pub source_cache_mb: u64,
    pub request_memo_entries: u64,
    pub cache_control: String,
    pub presets: BTreeMap<String, String>,
    pub presets_only: bool,
    pub jpeg_quality: u8,
    pub webp_quality: u8,
    pub avif_quality: u8,
    pub png_quality: u8,
    pub gif_quality: u8,
    pub avif_effort: u8,
    pub webp_effort: u8,
    pub jpeg_progressive: bool,
    pub enable_avif: bool,
    pub enable_webp: bool,
    pub jxl_quality: u8,
    pub jxl_effort: u8,
    pub enable_jxl: bool,
    pub auto_quality: bool,
    pub auto_quality_target: f64,
    pub auto_quality_trials: u8,
    pub save_data_quality_step: u8,
    pub ect: bool,
    pub max_dpr: f64,
    pub width_ladder: NumList,
    pub debug_headers: bool,
    pub log_format: String,
    // Uploads (src/upload.rs).
    pub api_keys: List,
    pub public_url: Option<String>,
    pub upload_prefixes: List,
    pub upload_max_bytes: u64,
    pub upload_ttl_secs: u64,
    pub upload_allow_svg: bool,
    pub upload_rate_per_sec: f64,
    pub upload_burst: u32,
    pub upload_fsync: bool,
    pub upload_body_timeout_secs: u64,
    pub upload_max_bodies: usize,
    pub upload_s3_if_none_match: bool,
    /// Reads of an upload wait for its completion (`POST /v1/uploads/{id}/complete`).
    pub upload_require_complete: bool,
    /// How long an object-store upload may stay pending.
    pub upload_pending_ttl_secs: u64,
    /// `DELETE /v1/images/{key}` keeps the original this long, restorable (0: hard delete).
    pub delete_grace_secs: u64,
    pub cors_origins: List,
    pub info_max_age_secs: u64,
    pub list_max_limit: usize,
    // Upload quotas (src/quota/; src/config/quota.rs).
    pub quota_store: String,
    pub quota_scope: String,
    pub quota_bytes_per_day: u64,
    pub quota_uploads_per_day: u64,
    pub quota_on_store_error: String,
    pub quota_timeout_ms: u64,
    pub quota_key_prefix: String,
    pub quota_tenants: List,
    // Observability and analytics (src/telemetry.rs, src/analytics/).
    pub metrics_bind: Option<String>,
    /// Also serve `/metrics` on the public listener (off: only on `metrics_bind`).
    pub public_metrics: bool,
    /// The web console at `/console`: `auto` (embedded store on loopback), `true`, `false`.
    pub console: String,
    /// How long `/readyz` reuses its storage probe (0: probe on every call).
    pub readyz_cache_ms: u64,
    pub analytics: bool,
    pub analytics_dir: PathBuf,
    pub analytics_flush_secs: u64,
    pub analytics_flush_events: usize,
    pub analytics_channel: usize,
    pub analytics_compression: String,
    pub analytics_report_max_days: u64,
    pub analytics_retention_days: u64,
    pub analytics_max_mb: u64,
    pub analytics_rollup_retention_days: u64,
    pub analytics_rollup_max_mb: u64,
    // Events and edge purges (src/events/, src/purge.rs).
    pub webhook_urls: List,
    pub webhook_secrets: List,
    pub webhook_timeout_ms: u64,
    pub webhook_max_attempts: u32,
    pub webhook_backoff_ms: u64,
    pub webhook_poll_ms: u64,
    pub delete_sync_ms: u64,
    pub purge_varnish_urls: List,
    #[serde(deserialize_with = "opt_secret")]
    pub purge_token: Option<String>,
    // Watermark, fallback image, encrypted sources (src/config/media.rs; imgproxy's names).
    pub watermark_path: Option<PathBuf>,
    pub watermark_url: Option<String>,
    pub watermark_data: Option<String>,
    pub watermark_opacity: f64,
    pub fallback_image_path: Option<PathBuf>,
    pub fallback_image_url: Option<String>,
    pub fallback_image_data: Option<String>,
    pub fallback_image_http_code: u16,
    pub fallback_image_ttl: u64,
    #[serde(deserialize_with = "opt_secret")]
    pub source_url_encryption_key: Option<String>,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            bind: "127.0.0.1:8080".into(),
            key: List::default(),
            salt: List::default(),
            key_file: None,
            salt_file: None,
            signature_size: 32,
            allow_insecure: false,
            allow_security_options: false,
            dev_keys_file: "./data/dev-keys.toml".into(),
            local_root: "./data/images".into(),
            allowed_hosts: List::default(),
            allow_private_networks: false,
            source_proxy: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_bucket: None,
            s3_allowed_buckets: List::default(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_secret_access_key_file: None,
            s3_path_style: true,
            s3_credentials: "static".into(),
            s3_credentials_refresh_secs: 300,
            s3_credentials_retry_ms: 5000,
            max_src_bytes: 50 * 1024 * 1024,
            max_src_megapixels: 60.0,
            max_output_dimension: 8192,
            max_output_megapixels: 60.0,
            max_animation_frames: 200,
            max_redirects: 3,
            fetch_timeout_ms: 10_000,
            transform_timeout_ms: 30_000,
            queue_timeout_ms: 10_000,
            workers: 0,
            queue_size: 0,
            vips_concurrency: 1,
            memory_limit_mb: None,
            cache_size_mb: 256,
            cache_ttl_secs: 3600,
            source_cache_mb: 64,
            request_memo_entries: 16_384,
            cache_control: "public, max-age=31536000, s-maxage=31536000, immutable".into(),
            presets: BTreeMap::new(),
            presets_only: false,
            jpeg_quality: 80,
            webp_quality: 78,
            avif_quality: 60,
            png_quality: 100,
            gif_quality: 100,
            avif_effort: 2,
            webp_effort: 4,
            jpeg_progressive: false,
            enable_avif: true,
            enable_webp: true,
            jxl_quality: 70,
            jxl_effort: 4,
            enable_jxl: true,
            auto_quality: true,
            auto_quality_target: 70.0,
            auto_quality_trials: 1,
            save_data_quality_step: 15,
            ect: true,
            max_dpr: 3.0,
            width_ladder: NumList::from_strs(&[
                "16", "32", "48", "64", "96", "128", "256", "384", "640", "750", "828", "1080", "1200", "1920", "2048",
                "3840",
            ]),
            debug_headers: false,
            log_format: "auto".into(),
            api_keys: List::default(),
            public_url: None,
            upload_prefixes: List::from_strs(&["uploads"]),
            upload_max_bytes: 25 * 1024 * 1024,
            upload_ttl_secs: 900,
            upload_allow_svg: false,
            upload_rate_per_sec: 10.0,
            upload_burst: 20,
            upload_fsync: true,
            upload_body_timeout_secs: 300,
            upload_max_bodies: 64,
            upload_s3_if_none_match: true,
            upload_require_complete: false,
            upload_pending_ttl_secs: 86_400,
            delete_grace_secs: 604_800,
            cors_origins: List::from_strs(&["*"]),
            info_max_age_secs: 300,
            list_max_limit: 1000,
            quota_store: "memory".into(),
            quota_scope: "tenant".into(),
            quota_bytes_per_day: 100 * 1024 * 1024 * 1024,
            quota_uploads_per_day: 0,
            quota_on_store_error: "local".into(),
            quota_timeout_ms: 250,
            quota_key_prefix: "imago:quota:".into(),
            quota_tenants: List::default(),
            metrics_bind: None,
            public_metrics: false,
            console: "auto".into(),
            readyz_cache_ms: 2000,
            analytics: true,
            analytics_dir: "./data/analytics".into(),
            analytics_flush_secs: 60,
            analytics_flush_events: 32_768,
            analytics_channel: 131_072,
            analytics_compression: "zstd".into(),
            analytics_report_max_days: 92,
            analytics_retention_days: 92,
            analytics_max_mb: 10_240,
            analytics_rollup_retention_days: 400,
            analytics_rollup_max_mb: 1024,
            webhook_urls: List::default(),
            webhook_secrets: List::default(),
            webhook_timeout_ms: 5000,
            webhook_max_attempts: 12,
            webhook_backoff_ms: 1000,
            webhook_poll_ms: 1000,
            delete_sync_ms: 1000,
            purge_varnish_urls: List::default(),
            purge_token: None,
            watermark_path: None,
            watermark_url: None,
            watermark_data: None,
            watermark_opacity: 1.0,
            fallback_image_path: None,
            fallback_image_url: None,
            fallback_image_data: None,
            fallback_image_http_code: 200,
            fallback_image_ttl: 60,
            source_url_encryption_key: None,
        }
    }
}
