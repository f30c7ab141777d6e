//! Typed configuration: defaults < `imago.toml` (`--config`) < `IMAGO_*` environment variables.
//!
//! Every setting is listed once in [`SETTINGS`], which `imago serve --help` prints, so the help
//! text and the code cannot drift apart. Secrets are never printed: [`Config::redacted`] is what
//! gets logged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
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
    #[error("{0}")]
    Keys(#[from] imago_signing::KeyError),
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting, message: message.into() }
}

/// A list given either as a TOML array or as a comma-separated string (env vars).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum List {
    #[default]
    Empty,
    Many(Vec<ListItem>),
    One(ListItem),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ListItem {
    Int(i64),
    Float(f64),
    Str(String),
}

impl ListItem {
    fn to_str(&self) -> String {
        match self {
            ListItem::Int(i) => i.to_string(),
            ListItem::Float(f) => f.to_string(),
            ListItem::Str(s) => s.clone(),
        }
    }
}

impl List {
    pub fn strings(&self) -> Vec<String> {
        let raw: Vec<String> = match self {
            List::Empty => vec![],
            List::One(s) => vec![s.to_str()],
            List::Many(v) => v.iter().map(ListItem::to_str).collect(),
        };
        raw.iter().flat_map(|s| s.split(',')).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    }
    pub fn from_strs(v: &[&str]) -> Self {
        List::Many(v.iter().map(|s| ListItem::Str(s.to_string())).collect())
    }
}

/// Raw settings as read from the layers (strings for secrets and lists).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    pub bind: String,
    pub key: List,
    pub salt: List,
    pub key_file: Option<PathBuf>,
    pub salt_file: Option<PathBuf>,
    pub signature_size: usize,
    pub allow_insecure: bool,
    pub dev_keys_file: PathBuf,
    pub local_root: PathBuf,
    pub allowed_hosts: List,
    pub allow_private_networks: bool,
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_bucket: Option<String>,
    pub s3_allowed_buckets: List,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    pub s3_secret_access_key_file: Option<PathBuf>,
    pub s3_path_style: bool,
    pub max_src_bytes: u64,
    pub max_src_megapixels: f64,
    pub max_output_dimension: u32,
    pub max_animation_frames: u32,
    pub max_redirects: usize,
    pub fetch_timeout_ms: u64,
    pub transform_timeout_ms: u64,
    pub queue_timeout_ms: u64,
    pub workers: usize,
    pub queue_size: usize,
    pub vips_concurrency: i32,
    pub memory_limit_mb: u64,
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
    pub enable_avif: bool,
    pub enable_webp: bool,
    pub auto_quality: bool,
    pub auto_quality_target: f64,
    pub auto_quality_trials: u8,
    pub save_data_quality_step: u8,
    pub ect: bool,
    pub max_dpr: f64,
    pub width_ladder: List,
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
    pub upload_s3_if_none_match: bool,
    pub cors_origins: List,
    pub info_max_age_secs: u64,
    // Observability and analytics (src/telemetry.rs, src/analytics/).
    pub metrics_bind: Option<String>,
    pub analytics: bool,
    pub analytics_dir: PathBuf,
    pub analytics_flush_secs: u64,
    pub analytics_flush_events: usize,
    pub analytics_channel: usize,
    pub analytics_compression: String,
    pub analytics_report_max_days: u64,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            bind: "127.0.0.1:8080".into(),
            key: List::Empty,
            salt: List::Empty,
            key_file: None,
            salt_file: None,
            signature_size: 32,
            allow_insecure: false,
            dev_keys_file: "./data/dev-keys.toml".into(),
            local_root: "./data/images".into(),
            allowed_hosts: List::Empty,
            allow_private_networks: false,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_bucket: None,
            s3_allowed_buckets: List::Empty,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_secret_access_key_file: None,
            s3_path_style: true,
            max_src_bytes: 50 * 1024 * 1024,
            max_src_megapixels: 60.0,
            max_output_dimension: 8192,
            max_animation_frames: 200,
            max_redirects: 3,
            fetch_timeout_ms: 10_000,
            transform_timeout_ms: 30_000,
            queue_timeout_ms: 10_000,
            workers: 0,
            queue_size: 0,
            vips_concurrency: 1,
            memory_limit_mb: 0,
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
            enable_avif: true,
            enable_webp: true,
            auto_quality: true,
            auto_quality_target: 70.0,
            auto_quality_trials: 4,
            save_data_quality_step: 15,
            ect: true,
            max_dpr: 3.0,
            width_ladder: List::from_strs(&[
                "16", "32", "48", "64", "96", "128", "256", "384", "640", "750", "828", "1080", "1200", "1920", "2048",
                "3840",
            ]),
            debug_headers: true,
            log_format: "auto".into(),
            api_keys: List::Empty,
            public_url: None,
            upload_prefixes: List::from_strs(&["uploads"]),
            upload_max_bytes: 25 * 1024 * 1024,
            upload_ttl_secs: 900,
            upload_allow_svg: false,
            upload_rate_per_sec: 10.0,
            upload_burst: 20,
            upload_fsync: true,
            upload_body_timeout_secs: 300,
            upload_s3_if_none_match: true,
            cors_origins: List::from_strs(&["*"]),
            info_max_age_secs: 300,
            metrics_bind: None,
            analytics: true,
            analytics_dir: "./data/analytics".into(),
            analytics_flush_secs: 60,
            analytics_flush_events: 32_768,
            analytics_channel: 131_072,
            analytics_compression: "zstd".into(),
            analytics_report_max_days: 92,
        }
    }
}

/// One documented setting (for `--help`, README and design doc).
pub struct Setting {
    pub env: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// Every setting, in the order `imago serve --help` lists them. The TOML key is the env name
/// without `IMAGO_`, lower-cased.
pub const SETTINGS: &[Setting] = &[
    Setting { env: "IMAGO_BIND", default: "127.0.0.1:8080", help: "address to listen on" },
    Setting {
        env: "IMAGO_KEY",
        default: "(none)",
        help: "hex HMAC key(s), comma-separated for rotation (first signs)",
    },
    Setting { env: "IMAGO_SALT", default: "(none)", help: "hex salt(s), paired one to one with IMAGO_KEY" },
    Setting { env: "IMAGO_KEY_FILE", default: "(none)", help: "file holding IMAGO_KEY (e.g. a mounted secret)" },
    Setting { env: "IMAGO_SALT_FILE", default: "(none)", help: "file holding IMAGO_SALT" },
    Setting { env: "IMAGO_SIGNATURE_SIZE", default: "32", help: "signature bytes before base64 (1-32; truncation)" },
    Setting { env: "IMAGO_ALLOW_INSECURE", default: "false", help: "accept unsigned URLs (signature `insecure`)" },
    Setting {
        env: "IMAGO_DEV_KEYS_FILE",
        default: "./data/dev-keys.toml",
        help: "with no key set: development keys generated/read here",
    },
    Setting {
        env: "IMAGO_LOCAL_ROOT",
        default: "./data/images",
        help: "embedded store root; local:///a/b.jpg is a/b.jpg under it",
    },
    Setting {
        env: "IMAGO_ALLOWED_HOSTS",
        default: "(none)",
        help: "HTTP(S) origin hosts allowed as sources (`*.example.com` ok)",
    },
    Setting {
        env: "IMAGO_ALLOW_PRIVATE_NETWORKS",
        default: "false",
        help: "let HTTP sources resolve to loopback/private/link-local",
    },
    Setting { env: "IMAGO_S3_ENDPOINT", default: "(none)", help: "S3 API endpoint URL (enables s3:// sources)" },
    Setting { env: "IMAGO_S3_REGION", default: "us-east-1", help: "S3 region (Garage: `garage`)" },
    Setting { env: "IMAGO_S3_BUCKET", default: "(none)", help: "default bucket (uploads, analytics)" },
    Setting {
        env: "IMAGO_S3_ALLOWED_BUCKETS",
        default: "(the default bucket)",
        help: "buckets readable through s3:// sources",
    },
    Setting { env: "IMAGO_S3_ACCESS_KEY_ID", default: "(none)", help: "S3 access key id" },
    Setting {
        env: "IMAGO_S3_SECRET_ACCESS_KEY",
        default: "(none)",
        help: "S3 secret key (or IMAGO_S3_SECRET_ACCESS_KEY_FILE)",
    },
    Setting { env: "IMAGO_S3_PATH_STYLE", default: "true", help: "path-style bucket addressing" },
    Setting { env: "IMAGO_MAX_SRC_BYTES", default: "52428800", help: "largest source file accepted (413 above)" },
    Setting {
        env: "IMAGO_MAX_SRC_MEGAPIXELS",
        default: "60",
        help: "largest source resolution, all frames (422 above), checked before decoding",
    },
    Setting { env: "IMAGO_MAX_OUTPUT_DIMENSION", default: "8192", help: "largest output width or height" },
    Setting { env: "IMAGO_MAX_ANIMATION_FRAMES", default: "200", help: "most frames in an animated source" },
    Setting { env: "IMAGO_MAX_REDIRECTS", default: "3", help: "HTTP source redirects followed (each re-checked)" },
    Setting { env: "IMAGO_FETCH_TIMEOUT_MS", default: "10000", help: "source fetch timeout (504 after)" },
    Setting { env: "IMAGO_TRANSFORM_TIMEOUT_MS", default: "30000", help: "transform timeout (503 after)" },
    Setting { env: "IMAGO_QUEUE_TIMEOUT_MS", default: "10000", help: "longest wait for a worker (503 after)" },
    Setting { env: "IMAGO_WORKERS", default: "number of cores", help: "concurrent transforms" },
    Setting { env: "IMAGO_QUEUE_SIZE", default: "8 x workers", help: "transforms waiting for a worker before 429" },
    Setting { env: "IMAGO_VIPS_CONCURRENCY", default: "1", help: "libvips threads per image" },
    Setting {
        env: "IMAGO_MEMORY_LIMIT_MB",
        default: "0 (off)",
        help: "shed new transforms with 503 while resident memory is above this",
    },
    Setting { env: "IMAGO_CACHE_SIZE_MB", default: "256", help: "in-memory cache of finished variants (0 = off)" },
    Setting {
        env: "IMAGO_REQUEST_MEMO_ENTRIES",
        default: "16384",
        help: "verified URLs remembered with their negotiation and cache key, so hits skip HMAC and parsing (0 = off)",
    },
    Setting { env: "IMAGO_CACHE_TTL_SECS", default: "3600", help: "in-memory cache time to live" },
    Setting {
        env: "IMAGO_SOURCE_CACHE_MB",
        default: "64",
        help: "in-memory cache of original bytes, so one original is fetched once for all its sizes (0 = off)",
    },
    Setting {
        env: "IMAGO_CACHE_CONTROL",
        default: "public, max-age=31536000, s-maxage=31536000, immutable",
        help: "Cache-Control of signed variants",
    },
    Setting { env: "IMAGO_PRESETS", default: "(none)", help: "TOML table [presets] name = \"rs:fill:300:300/q:70\"" },
    Setting { env: "IMAGO_PRESETS_ONLY", default: "false", help: "only `pr:`/preset options are accepted" },
    Setting { env: "IMAGO_JPEG_QUALITY", default: "80", help: "default JPEG quality" },
    Setting { env: "IMAGO_WEBP_QUALITY", default: "78", help: "default WebP quality" },
    Setting { env: "IMAGO_AVIF_QUALITY", default: "60", help: "default AVIF quality" },
    Setting { env: "IMAGO_PNG_QUALITY", default: "100", help: "PNG quality (below 100: lossy palette)" },
    Setting { env: "IMAGO_GIF_QUALITY", default: "100", help: "GIF quality" },
    Setting { env: "IMAGO_AVIF_EFFORT", default: "2", help: "AVIF (aom) effort 0-9; 4 is ~4x slower than 2" },
    Setting { env: "IMAGO_WEBP_EFFORT", default: "4", help: "WebP effort 0-6" },
    Setting { env: "IMAGO_ENABLE_AVIF", default: "true", help: "negotiate AVIF for clients that accept it" },
    Setting { env: "IMAGO_ENABLE_WEBP", default: "true", help: "negotiate WebP for clients that accept it" },
    Setting {
        env: "IMAGO_AUTO_QUALITY",
        default: "true",
        help: "perceptual auto quality (q:auto) by default with f:auto",
    },
    Setting {
        env: "IMAGO_AUTO_QUALITY_TARGET",
        default: "70",
        help: "SSIMULACRA2 score q:auto aims for (Save-Data: 10 lower)",
    },
    Setting { env: "IMAGO_AUTO_QUALITY_TRIALS", default: "4", help: "most trial encodes q:auto makes per variant" },
    Setting {
        env: "IMAGO_SAVE_DATA_QUALITY_STEP",
        default: "15",
        help: "quality lowered for Save-Data: on / slow ECT",
    },
    Setting {
        env: "IMAGO_ECT",
        default: "true",
        help: "ECT: 2g / slow-2g counts as Save-Data: on; quality-negotiated responses then vary on ECT",
    },
    Setting { env: "IMAGO_MAX_DPR", default: "3", help: "cap on the DPR client hint" },
    Setting { env: "IMAGO_WIDTH_LADDER", default: "16,32,...,3840", help: "widths hint-derived targets snap up to" },
    Setting { env: "IMAGO_DEBUG_HEADERS", default: "true", help: "send X-Imago-* and Server-Timing headers" },
    Setting { env: "IMAGO_LOG_FORMAT", default: "auto", help: "json | pretty | auto (pretty on a terminal)" },
    Setting {
        env: "IMAGO_API_KEYS",
        default: "(none: uploads off)",
        help: "API keys for /v1/uploads and /v1/images (Bearer), comma-separated for rotation, 16+ chars",
    },
    Setting {
        env: "IMAGO_PUBLIC_URL",
        default: "http://{IMAGO_BIND}",
        help: "base URL clients reach imago at (upload targets, image_url, info_url)",
    },
    Setting {
        env: "IMAGO_UPLOAD_PREFIXES",
        default: "uploads",
        help: "key prefixes a ticket may ask for; the first is the default",
    },
    Setting { env: "IMAGO_UPLOAD_MAX_BYTES", default: "26214400", help: "largest upload (413 above)" },
    Setting { env: "IMAGO_UPLOAD_TTL_SECS", default: "900", help: "upload ticket lifetime (1-604800)" },
    Setting { env: "IMAGO_UPLOAD_ALLOW_SVG", default: "false", help: "accept image/svg+xml uploads" },
    Setting {
        env: "IMAGO_UPLOAD_RATE_PER_SEC",
        default: "10",
        help: "tickets per second per API key (token bucket; 0 = no limit; 429 above)",
    },
    Setting { env: "IMAGO_UPLOAD_BURST", default: "20", help: "token bucket size per API key" },
    Setting {
        env: "IMAGO_UPLOAD_FSYNC",
        default: "true",
        help: "embedded uploads: fsync file and directory before answering",
    },
    Setting {
        env: "IMAGO_UPLOAD_BODY_TIMEOUT_SECS",
        default: "300",
        help: "embedded uploads: longest time to receive a body (408 after)",
    },
    Setting {
        env: "IMAGO_UPLOAD_S3_IF_NONE_MATCH",
        default: "true",
        help: "S3 PUT tickets sign If-None-Match: * (stores that honour it refuse overwrites)",
    },
    Setting {
        env: "IMAGO_CORS_ORIGINS",
        default: "*",
        help: "origins allowed to upload from browsers (embedded targets), comma-separated",
    },
    Setting { env: "IMAGO_INFO_MAX_AGE_SECS", default: "300", help: "Cache-Control max-age of /v1/images/{key}/info" },
    Setting {
        env: "IMAGO_METRICS_BIND",
        default: "(none: /metrics on IMAGO_BIND)",
        help: "separate listener for /metrics (e.g. 0.0.0.0:9090); /metrics then leaves IMAGO_BIND",
    },
    Setting { env: "IMAGO_ANALYTICS", default: "true", help: "write one event per image request (docs/analytics.md)" },
    Setting {
        env: "IMAGO_ANALYTICS_DIR",
        default: "./data/analytics",
        help: "embedded mode: event files here (outside IMAGO_LOCAL_ROOT); S3 mode: the bucket's analytics/",
    },
    Setting { env: "IMAGO_ANALYTICS_FLUSH_SECS", default: "60", help: "write buffered events at least this often" },
    Setting { env: "IMAGO_ANALYTICS_FLUSH_EVENTS", default: "32768", help: "write as soon as this many are buffered" },
    Setting {
        env: "IMAGO_ANALYTICS_CHANNEL",
        default: "131072",
        help: "events buffered in memory; beyond it events are dropped and counted, never waited for",
    },
    Setting {
        env: "IMAGO_ANALYTICS_COMPRESSION",
        default: "zstd",
        help: "event files: zstd (.jsonl.zst, least CPU) or gzip (.jsonl.gz, for readers without zstd, e.g. BigQuery)",
    },
    Setting {
        env: "IMAGO_ANALYTICS_REPORT_MAX_DAYS",
        default: "92",
        help: "longest from..to range GET /v1/analytics reads",
    },
];

/// The help text listing every setting.
pub fn settings_help() -> String {
    let mut s = String::from(
        "Settings (defaults < imago.toml given by --config < IMAGO_* environment; TOML keys are the names without IMAGO_, lower-case):\n",
    );
    for st in SETTINGS {
        s.push_str(&format!("  {:<32} {} [default: {}]\n", st.env, st.help, st.default));
    }
    s
}

/// S3 connection settings.
#[derive(Clone)]
pub struct S3Config {
    pub endpoint: url::Url,
    pub region: String,
    pub bucket: Option<String>,
    pub allowed_buckets: Vec<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub path_style: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint.as_str())
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("allowed_buckets", &self.allowed_buckets)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .finish()
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
}

fn read_secret_file(setting: &'static str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|source| ConfigError::File {
        setting,
        path: path.to_path_buf(),
        source,
    })
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
        let mut fig = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(p) = toml {
            if !p.exists() {
                return Err(invalid("--config", format!("{} does not exist", p.display())));
            }
            fig = fig.merge(Toml::file(p));
        }
        fig = fig.merge(Env::prefixed("IMAGO_").ignore(&["config"]));
        fig.extract().map_err(|e| ConfigError::Figment(Box::new(e)))
    }

    /// What may be logged: secrets replaced.
    pub fn redacted(&self) -> RawConfig {
        let mut r = self.clone();
        let red = |l: &List| if l.strings().is_empty() { List::Empty } else { List::from_strs(&["[redacted]"]) };
        r.key = red(&r.key);
        r.salt = red(&r.salt);
        r.api_keys = red(&r.api_keys);
        if r.s3_secret_access_key.is_some() {
            r.s3_secret_access_key = Some("[redacted]".into());
        }
        r
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
        let mut dev_keys = false;
        if keys.is_empty() && salts.is_empty() {
            let (k, s) = dev_keys_load(&self.dev_keys_file, create_dev_keys)?;
            keys = k;
            salts = s;
            dev_keys = true;
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
        ] {
            if !(1..=100).contains(&q) {
                return Err(invalid(name, "quality must be 1-100"));
            }
        }
        if self.avif_effort > 9 {
            return Err(invalid("IMAGO_AVIF_EFFORT", "must be 0-9"));
        }
        if self.webp_effort > 6 {
            return Err(invalid("IMAGO_WEBP_EFFORT", "must be 0-6"));
        }
        if self.max_src_bytes == 0 || self.max_src_megapixels <= 0.0 || self.max_output_dimension == 0 {
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
        crate::upload::UploadSettings::from_raw(&self).map_err(|(s, m)| invalid(s, m))?;
        crate::analytics::Settings::from_raw(&self).map_err(|(s, m)| invalid(s, m))?;
        let allowed_hosts = self.allowed_hosts.strings().into_iter().map(|h| h.to_ascii_lowercase()).collect();
        let s3 = match &self.s3_endpoint {
            None => None,
            Some(ep) => {
                let endpoint = url::Url::parse(ep).map_err(|e| invalid("IMAGO_S3_ENDPOINT", e.to_string()))?;
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
                    access_key_id: access,
                    secret_access_key: secret,
                    path_style: self.s3_path_style,
                })
            }
        };
        Ok(Config { raw: self, bind, verifier, dev_keys, workers, queue_size, width_ladder, allowed_hosts, s3 })
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
        assert_eq!(List::One(ListItem::Str("a, b,,c".into())).strings(), vec!["a", "b", "c"]);
        assert_eq!(List::Many(vec![ListItem::Int(16), ListItem::Str("32".into())]).strings(), vec!["16", "32"]);
    }

    #[test]
    fn invalid_settings_are_named() {
        let e = RawConfig { bind: "nope".into(), ..with_keys() }.validate(false).unwrap_err();
        assert!(e.to_string().contains("IMAGO_BIND"), "{e}");
        let e = RawConfig { jpeg_quality: 0, ..with_keys() }.validate(false).unwrap_err();
        assert!(e.to_string().contains("IMAGO_JPEG_QUALITY"), "{e}");
        let e = RawConfig { key: List::from_strs(&["zz"]), ..with_keys() }.validate(false).unwrap_err();
        assert!(e.to_string().contains("hex"), "{e}");
        let e = RawConfig { width_ladder: List::from_strs(&["10,x"]), ..with_keys() }.validate(false).unwrap_err();
        assert!(e.to_string().contains("IMAGO_WIDTH_LADDER"), "{e}");
        let e =
            RawConfig { s3_endpoint: Some("http://127.0.0.1:3900".into()), ..with_keys() }.validate(false).unwrap_err();
        assert!(e.to_string().contains("IMAGO_S3"), "{e}");
    }

    #[test]
    fn redaction_hides_secrets() {
        let r = RawConfig { s3_secret_access_key: Some("topsecret".into()), ..with_keys() }.redacted();
        let text = format!("{r:?}");
        assert!(!text.contains("aa11") && !text.contains("bb22") && !text.contains("topsecret"), "{text}");
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
