//! The raw settings as the layers give them (defaults < `imago.toml` < `IMAGO_*`): secrets and
//! lists as strings, checked and typed by [`super::RawConfig::validate`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    pub upload_max_bodies: usize,
    pub upload_s3_if_none_match: bool,
    pub cors_origins: List,
    pub info_max_age_secs: u64,
    pub list_max_limit: usize,
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
            upload_max_bodies: 64,
            upload_s3_if_none_match: true,
            cors_origins: List::from_strs(&["*"]),
            info_max_age_secs: 300,
            list_max_limit: 1000,
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
