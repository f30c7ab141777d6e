//! Every setting with its default and help text, listed once: `imago serve --help` prints it.

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
    Setting { env: "IMAGO_SIGNATURE_SIZE", default: "32", help: "signature bytes before base64 (8-32; truncation)" },
    Setting { env: "IMAGO_ALLOW_INSECURE", default: "false", help: "accept unsigned URLs (signature `insecure`)" },
    Setting {
        env: "IMAGO_ALLOW_SECURITY_OPTIONS",
        default: "false",
        help: "accept the URL options msr, msfs, maf, mafr, mrd (lower limits only; off: 403)",
    },
    Setting {
        env: "IMAGO_DEV_KEYS_FILE",
        default: "./data/dev-keys.toml",
        help: "with no key set: development keys generated/read here (never inside IMAGO_LOCAL_ROOT)",
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
    Setting {
        env: "IMAGO_SOURCE_PROXY",
        default: "(none)",
        help: "egress proxy URL for HTTP(S) sources; HTTP_PROXY & co. are ignored; the proxy then enforces the address policy",
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
    Setting {
        env: "IMAGO_S3_CREDENTIALS",
        default: "static",
        help: "static: IMAGO_S3_ACCESS_KEY_ID + secret; chain: the AWS chain (AWS_ACCESS_KEY_ID/AWS_SESSION_TOKEN, AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, ECS container, EC2 IMDSv2), refreshed before expiry",
    },
    Setting {
        env: "IMAGO_S3_CREDENTIALS_REFRESH_SECS",
        default: "300",
        help: "chain: refresh this long before the credentials expire (at most half their lifetime)",
    },
    Setting {
        env: "IMAGO_S3_CREDENTIALS_RETRY_MS",
        default: "5000",
        help: "chain: after a failed refresh, retry this much later (the old credentials are used until they expire)",
    },
    Setting { env: "IMAGO_S3_PATH_STYLE", default: "true", help: "path-style bucket addressing" },
    Setting { env: "IMAGO_MAX_SRC_BYTES", default: "52428800", help: "largest source file accepted (413 above)" },
    Setting {
        env: "IMAGO_MAX_SRC_MEGAPIXELS",
        default: "60",
        help: "largest source resolution, all frames (422 above), checked before decoding",
    },
    Setting { env: "IMAGO_MAX_OUTPUT_DIMENSION", default: "8192", help: "largest output width or height" },
    Setting {
        env: "IMAGO_MAX_OUTPUT_MEGAPIXELS",
        default: "60",
        help: "largest output, all frames, and largest image held in memory; animations are scaled down to fit, stills get 422",
    },
    Setting { env: "IMAGO_MAX_ANIMATION_FRAMES", default: "200", help: "most frames in an animated source" },
    Setting { env: "IMAGO_MAX_REDIRECTS", default: "3", help: "HTTP source redirects followed (each re-checked)" },
    Setting { env: "IMAGO_FETCH_TIMEOUT_MS", default: "10000", help: "source fetch timeout (504 after)" },
    Setting { env: "IMAGO_TRANSFORM_TIMEOUT_MS", default: "30000", help: "transform timeout (503 after)" },
    Setting { env: "IMAGO_QUEUE_TIMEOUT_MS", default: "10000", help: "longest wait for a worker (503 after)" },
    Setting { env: "IMAGO_WORKERS", default: "number of cores", help: "concurrent transforms" },
    Setting { env: "IMAGO_QUEUE_SIZE", default: "8 x workers", help: "requests admitted beyond the workers (fetching their source or waiting for a worker) before 429" },
    Setting { env: "IMAGO_VIPS_CONCURRENCY", default: "1", help: "libvips threads per image" },
    Setting {
        env: "IMAGO_MEMORY_LIMIT_MB",
        default: "85 % of the cgroup limit",
        help: "shed new transforms with 503 while resident memory is above this; unset: 85 % of the container's cgroup memory limit (v2 memory.max, v1 memory.limit_in_bytes; none found = off), logged at start; 0 = off",
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
    Setting {
        env: "IMAGO_JPEG_PROGRESSIVE",
        default: "false",
        help: "progressive JPEG: ~5% fewer bytes for 4-11% more CPU per render",
    },
    Setting { env: "IMAGO_ENABLE_AVIF", default: "true", help: "negotiate AVIF for clients that accept it" },
    Setting { env: "IMAGO_ENABLE_WEBP", default: "true", help: "negotiate WebP for clients that accept it" },
    Setting {
        env: "IMAGO_JXL_QUALITY",
        default: "70",
        help: "default JPEG XL quality (70 scores as AVIF 60 does, SSIMULACRA2 ~70)",
    },
    Setting { env: "IMAGO_JXL_EFFORT", default: "4", help: "JPEG XL (libjxl) effort 3-9" },
    Setting {
        env: "IMAGO_ENABLE_JXL",
        default: "true",
        help: "negotiate JPEG XL for clients that accept it and AVIF (preferred to AVIF)",
    },
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
    Setting {
        env: "IMAGO_AUTO_QUALITY_TRIALS",
        default: "1",
        help: "most trial encodes (of a ~1/24 sample) q:auto makes per variant",
    },
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
    Setting {
        env: "IMAGO_DEBUG_HEADERS",
        default: "false",
        help: "send X-Imago-Cache, X-Imago-Variant and Server-Timing (cache state: for debugging only)",
    },
    Setting { env: "IMAGO_LOG_FORMAT", default: "auto", help: "json | pretty | auto (pretty on a terminal)" },
    Setting {
        env: "IMAGO_API_KEYS",
        default: "(none: uploads off)",
        help: "API keys for /v1/* (Bearer), comma-separated, 16+ chars each: `key` (tenant default, every scope), \
               `tenant:key`, or `tenant:scope+scope:key` (upload, read-info, delete, analytics, admin, all)",
    },
    Setting {
        env: "IMAGO_PUBLIC_URL",
        default: "http://{IMAGO_BIND}",
        help: "base URL clients reach imago at (upload targets, image_url, info_url); required with uploads on and a wildcard IMAGO_BIND (0.0.0.0, [::])",
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
        help: "tickets per second per quota subject (IMAGO_QUOTA_SCOPE; GCRA; 0 = no limit; 429 rate-limited above); per replica with IMAGO_QUOTA_STORE=memory, for the fleet with a shared store",
    },
    Setting { env: "IMAGO_UPLOAD_BURST", default: "20", help: "tickets a quota subject may take at once (the bucket size)" },
    Setting {
        env: "IMAGO_QUOTA_STORE",
        default: "memory",
        help: "where quotas are counted: memory (in-process: every limit holds per replica) or redis://, rediss://, valkey://, valkeys:// (one Redis/Valkey the fleet shares: limits hold fleet-wide)",
    },
    Setting {
        env: "IMAGO_QUOTA_SCOPE",
        default: "tenant",
        help: "tenant: the keys of a named tenant share its quota (a bare key has its own); key: every API key has its own",
    },
    Setting {
        env: "IMAGO_QUOTA_BYTES_PER_DAY",
        default: "107374182400",
        help: "bytes a quota subject may upload per UTC day (declared at ticket time: content_length, else IMAGO_UPLOAD_MAX_BYTES; embedded uploads refund the difference); 0 = no limit; 429 quota-exceeded above",
    },
    Setting {
        env: "IMAGO_QUOTA_UPLOADS_PER_DAY",
        default: "0",
        help: "tickets a quota subject may take per UTC day (0 = no limit; 429 quota-exceeded above)",
    },
    Setting {
        env: "IMAGO_QUOTA_ON_STORE_ERROR",
        default: "local",
        help: "when the shared store fails or times out: local (count in this replica meanwhile: per-replica limits), open (admit uncounted), closed (503 quota-unavailable); each failure counts in imago_quota_store_errors_total",
    },
    Setting {
        env: "IMAGO_QUOTA_TIMEOUT_MS",
        default: "250",
        help: "connect and response timeout of the shared quota store (1-60000)",
    },
    Setting {
        env: "IMAGO_QUOTA_KEY_PREFIX",
        default: "imago:quota:",
        help: "prefix of imago's keys in the shared store (several fleets on one store)",
    },
    Setting {
        env: "IMAGO_QUOTA_TENANTS",
        default: "(none)",
        help: "per-tenant limits, comma-separated: tenant:rate=50;burst=100;bytes=10000000000;uploads=5000 (a field left out keeps the default)",
    },
    Setting {
        env: "IMAGO_UPLOAD_FSYNC",
        default: "true",
        help: "embedded uploads: fsync file and directory before answering",
    },
    Setting {
        env: "IMAGO_UPLOAD_BODY_TIMEOUT_SECS",
        default: "300",
        help: "longest time to receive a request body of /v1/uploads*, form fields included (408 after)",
    },
    Setting {
        env: "IMAGO_UPLOAD_MAX_BODIES",
        default: "64",
        help: "request bodies of /v1/uploads* received at once (tickets, PUTs, forms; 503 upload-busy above)",
    },
    Setting {
        env: "IMAGO_UPLOAD_REQUIRE_COMPLETE",
        default: "false",
        help: "S3 uploads: reads answer 409 upload-pending until POST /v1/uploads/{id}/complete (false: the first read completes)",
    },
    Setting {
        env: "IMAGO_UPLOAD_PENDING_TTL_SECS",
        default: "86400",
        help: "S3 uploads pending longer are checked by the sweep (removed instead with IMAGO_UPLOAD_REQUIRE_COMPLETE)",
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
        env: "IMAGO_READYZ_CACHE_MS",
        default: "2000",
        help: "/readyz reuses its object-store probe this long (0 = probe on every call); a failed read ends it early",
    },
    Setting {
        env: "IMAGO_LIST_MAX_LIMIT",
        default: "1000",
        help: "largest `limit` of GET /v1/images (1-1000; 400 invalid-request above)",
    },
    Setting {
        env: "IMAGO_METRICS_BIND",
        default: "(none: no metrics listener)",
        help: "listener for /metrics (e.g. 0.0.0.0:9090 behind a NetworkPolicy); the only place metrics are served by default",
    },
    Setting {
        env: "IMAGO_PUBLIC_METRICS",
        default: "false",
        help: "opt-in: also serve /metrics on IMAGO_BIND when IMAGO_METRICS_BIND is not set (keep that port off the internet)",
    },
    Setting {
        env: "IMAGO_CONSOLE",
        default: "auto",
        help: "web console at /console: auto = on only with the embedded store on a loopback IMAGO_BIND (404 elsewhere), true, false; signs in with an API key (docs/uploads.md#console)",
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
    Setting {
        env: "IMAGO_ANALYTICS_RETENTION_DAYS",
        default: "92",
        help: "event files of hours older than this are removed, on disk and in the bucket (0: keep forever)",
    },
    Setting {
        env: "IMAGO_ANALYTICS_MAX_MB",
        default: "10240",
        help: "event files beyond this total are removed, oldest first; the current hour is kept (0: no cap)",
    },
    Setting {
        env: "IMAGO_ANALYTICS_ROLLUP_RETENTION_DAYS",
        default: "400",
        help: "hourly rollups (rollups/ next to the events) of hours older than this are removed (0: keep forever)",
    },
    Setting {
        env: "IMAGO_ANALYTICS_ROLLUP_MAX_MB",
        default: "1024",
        help: "hourly rollups beyond this total are removed, oldest first (0: no cap)",
    },
    Setting {
        env: "IMAGO_WEBHOOK_URLS",
        default: "(none: no events)",
        help: "endpoints sent upload.completed, upload.rejected, image.deleted, image.restored and image.purged (signed POSTs from a durable outbox; trusted operator config)",
    },
    Setting {
        env: "IMAGO_WEBHOOK_SECRETS",
        default: "(required with URLs)",
        help: "HMAC secrets, 16+ chars; each signs (one v1= per secret in Imago-Signature: rotate by adding the new one first)",
    },
    Setting { env: "IMAGO_WEBHOOK_TIMEOUT_MS", default: "5000", help: "one delivery attempt (100-60000)" },
    Setting {
        env: "IMAGO_WEBHOOK_MAX_ATTEMPTS",
        default: "12",
        help: "attempts per event and URL before it is moved to the outbox's dead/ (1-100)",
    },
    Setting {
        env: "IMAGO_WEBHOOK_BACKOFF_MS",
        default: "1000",
        help: "first retry delay; doubles per attempt, at most 1 h (10-3600000)",
    },
    Setting { env: "IMAGO_WEBHOOK_POLL_MS", default: "1000", help: "how often a replica looks for due events (10-60000)" },
    Setting {
        env: "IMAGO_DELETE_GRACE_SECS",
        default: "604800",
        help: "DELETE /v1/images/{key} keeps the original this long (reads answer 410 image-deleted; POST …/restore brings it back), then the sweep purges it (0: hard delete at once)",
    },
    Setting {
        env: "IMAGO_DELETE_SYNC_MS",
        default: "1000",
        help: "how often a replica drops from memory the images other replicas deleted (tombstones in the store; 0: off)",
    },
    Setting {
        env: "IMAGO_PURGE_VARNISH_URLS",
        default: "(none)",
        help: "Varnish edges sent an authenticated BAN by Surrogate-Key when an image is deleted (docker/varnish/default.vcl)",
    },
    Setting {
        env: "IMAGO_PURGE_TOKEN",
        default: "(required with Varnish URLs)",
        help: "X-Imago-Purge-Token the edge's VCL expects (16+ printable chars)",
    },
    Setting {
        env: "IMAGO_WATERMARK_PATH",
        default: "(none)",
        help: "watermark image file for `wm:` (read and decoded at start; one of _PATH/_DATA/_URL; none: `wm:` is ignored, as imgproxy)",
    },
    Setting { env: "IMAGO_WATERMARK_DATA", default: "(none)", help: "watermark image as base64 (decoded at start)" },
    Setting {
        env: "IMAGO_WATERMARK_URL",
        default: "(none)",
        help: "watermark as an imago source (http(s)://, s3://, local:///): fetched through the source layer on first use, kept for the process's life (never refreshed)",
    },
    Setting {
        env: "IMAGO_WATERMARK_OPACITY",
        default: "1",
        help: "0-1, multiplies every `wm:` opacity (imgproxy's IMGPROXY_WATERMARK_OPACITY)",
    },
    Setting {
        env: "IMAGO_FALLBACK_IMAGE_PATH",
        default: "(none)",
        help: "image served, processed with the request's options, when the source is missing, unreachable or undecodable (never for bad signatures or options)",
    },
    Setting { env: "IMAGO_FALLBACK_IMAGE_DATA", default: "(none)", help: "fallback image as base64" },
    Setting {
        env: "IMAGO_FALLBACK_IMAGE_URL",
        default: "(none)",
        help: "fallback image as an imago source: fetched on first use, kept for the process's life",
    },
    Setting {
        env: "IMAGO_FALLBACK_IMAGE_HTTP_CODE",
        default: "200",
        help: "status of a fallback response; 0 = the status of the error it replaces",
    },
    Setting {
        env: "IMAGO_FALLBACK_IMAGE_TTL",
        default: "60",
        help: "Cache-Control max-age (s) of a fallback response, never immutable (0: no-store)",
    },
    Setting {
        env: "IMAGO_SOURCE_URL_ENCRYPTION_KEY",
        default: "(none)",
        help: "hex AES key (16, 24 or 32 bytes) decrypting `/enc/` sources (imgproxy's scheme; SPEC §3.4); a secret, never logged",
    },
];

/// The help text listing every setting.
pub fn settings_help() -> String {
    let mut s = String::from(
        "Settings (defaults < imago.toml given by --config < IMAGO_* environment; TOML keys are the names without IMAGO_, lower-case):\n",
    );
    for st in SETTINGS {
        s.push_str(&format!("  {:<36} {} [default: {}]\n", st.env, st.help, st.default));
    }
    s
}
