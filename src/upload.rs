//! Uploads (SPEC §10): upload tickets, the embedded store's presigned targets, image info and
//! delete.
//!
//! * `POST /v1/uploads` (API key) issues a ticket: the **server** picks the object key
//!   (`{prefix}/{yyyy}/{mm}/{dd}/{ulid}.{ext}`, or `{prefix}/sha256/{hex}.{ext}` when the client
//!   sends the file's digest), so clients can never choose or overwrite a path.
//! * S3 mode (`IMAGO_S3_ENDPOINT` + `IMAGO_S3_BUCKET`): the ticket is a presigned PUT (signed
//!   Content-Type, Content-Length, checksum) or a presigned POST policy; the bytes go straight
//!   to the store ([`crate::storage::Bucket`]).
//! * Embedded mode (the local store, the default): imago hosts the presigned target itself
//!   (`PUT /v1/uploads/{key}?…&signature=…`, `POST /v1/uploads/form`), checks the signature,
//!   expiry, size, type and magic bytes before anything is stored, and commits the file with an
//!   atomic no-replace rename ([`ingest`]).
//!
//! [`Uploads::issue`] is the one ticket code path: the HTTP handler and `imago presign` both call
//! it. Handlers live in [`crate::http`], the embedded writer in [`ingest`], `/info` in [`info`],
//! the refusals in [`error`].

pub mod complete;
pub mod error;
pub mod info;
pub mod ingest;
pub mod recent;
pub mod sign;
pub mod state;
pub mod sweep;
pub mod tags;
pub mod tenancy;
pub mod trash;

pub use error::UploadError;
pub use tenancy::{ListQuery, Listing, Tenancy};

use std::sync::Arc;
use std::time::SystemTime;

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use imago_signing::{Signer, UrlBuilder};
use jiff::Timestamp;
use serde::{Deserialize, Serialize, Serializer};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::{clean_prefix, Config, QuotaScope};
use crate::quota::{Quotas, RateState};
use crate::storage::{Bucket, ObjectSpec, Storage, StorageError};

type HmacSha256 = Hmac<Sha256>;

/// One accepted content type.
#[derive(Debug)]
pub struct ImageType {
    pub mime: &'static str,
    /// Extension used in keys.
    pub ext: &'static str,
    /// Other extensions a filename may carry for this type (kept in the key when given).
    pub alt_ext: &'static [&'static str],
    /// What [`crate::transform::sniff`] says for these bytes (`svg` is checked separately).
    pub sniff: &'static str,
}

/// Every type uploads accept (SVG only with `IMAGO_UPLOAD_ALLOW_SVG`).
pub const IMAGE_TYPES: &[ImageType] = &[
    ImageType { mime: "image/jpeg", ext: "jpg", alt_ext: &["jpeg", "jpe"], sniff: "jpeg" },
    ImageType { mime: "image/png", ext: "png", alt_ext: &[], sniff: "png" },
    ImageType { mime: "image/webp", ext: "webp", alt_ext: &[], sniff: "webp" },
    ImageType { mime: "image/avif", ext: "avif", alt_ext: &[], sniff: "heif" },
    ImageType { mime: "image/heic", ext: "heic", alt_ext: &[], sniff: "heif" },
    ImageType { mime: "image/heif", ext: "heif", alt_ext: &["heic"], sniff: "heif" },
    ImageType { mime: "image/gif", ext: "gif", alt_ext: &[], sniff: "gif" },
    ImageType { mime: "image/jxl", ext: "jxl", alt_ext: &[], sniff: "jxl" },
    ImageType { mime: "image/tiff", ext: "tiff", alt_ext: &["tif"], sniff: "tiff" },
    ImageType { mime: "image/svg+xml", ext: "svg", alt_ext: &[], sniff: "svg" },
];

/// Checks the first bytes of a body against the declared type: `Ok` when they are that kind of
/// image. Runs before anything is stored.
pub fn check_magic(t: &ImageType, head: &[u8]) -> Result<(), UploadError> {
    if t.sniff == "svg" {
        let text = String::from_utf8_lossy(&head[..head.len().min(4096)]).to_ascii_lowercase();
        let t = text.trim_start_matches('\u{feff}').trim_start();
        if (t.starts_with("<?xml") || t.starts_with("<svg") || t.starts_with("<!--")) && text.contains("<svg") {
            return Ok(());
        }
        return Err(UploadError::NotAnImage("SVG".into()));
    }
    match crate::transform::sniff(head) {
        Some(s) if s == t.sniff => Ok(()),
        Some(s) => Err(UploadError::ContentTypeMismatch(format!("{} (the body is {s})", t.mime))),
        None => Err(UploadError::NotAnImage(t.mime.trim_start_matches("image/").to_uppercase())),
    }
}

pub use crate::config::UploadSettings;

impl UploadSettings {
    fn image_type(&self, content_type: &str) -> Result<&'static ImageType, UploadError> {
        let ct = content_type.trim().to_ascii_lowercase();
        IMAGE_TYPES.iter().find(|t| t.mime == ct && (t.sniff != "svg" || self.allow_svg)).ok_or_else(|| {
            let allowed: Vec<&str> =
                IMAGE_TYPES.iter().filter(|t| t.sniff != "svg" || self.allow_svg).map(|t| t.mime).collect();
            UploadError::UnsupportedContentType(content_type.to_string(), allowed.join(", "))
        })
    }
}

/// `POST /v1/uploads` body.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    pub content_type: String,
    #[serde(default)]
    pub content_length: Option<u64>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    /// `PUT` (default) or `POST`.
    #[serde(default)]
    pub method: Option<String>,
}

/// Name/value pairs that serialize as a JSON object in their order (S3 wants the file last,
/// and clients send `fields` in object order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pairs(pub Vec<(String, String)>);

impl Serialize for Pairs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Pairs {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An upload ticket (the `201` body). Its `method`/`url`/`fields`/`headers` are exactly what a
/// browser sends, so it also is a valid return value of Uppy's `getUploadParameters`.
#[derive(Clone, Debug, Serialize)]
pub struct Ticket {
    pub id: String,
    pub key: String,
    pub method: &'static str,
    pub url: String,
    pub fields: Pairs,
    pub headers: Pairs,
    pub expires_at: String,
    pub max_bytes: u64,
    pub source: String,
    pub image_url: String,
    pub info_url: String,
    /// `POST` here (no API key needed: the id is the permission) once the bytes are sent.
    pub complete_url: String,
    pub exists: bool,
}

/// Upload method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Put,
    Post,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Put => "PUT",
            Method::Post => "POST",
        }
    }
}

/// Where uploads go.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded store: imago receives the bytes into the local root.
    Local,
    /// The object store's default bucket: the client sends the bytes there.
    S3(Box<Bucket>),
}

impl Backend {
    pub fn mode(&self) -> &'static str {
        match self {
            Backend::Local => "embedded",
            Backend::S3(_) => "s3",
        }
    }
}

/// The ticket plan: everything decided before any I/O.
#[derive(Clone, Debug)]
pub struct Plan {
    pub id: String,
    pub key: String,
    pub image_type: &'static ImageType,
    pub method: Method,
    pub length: Option<u64>,
    pub max_bytes: u64,
    pub sha256: Option<[u8; 32]>,
    pub disposition: Option<String>,
}

/// What an embedded upload target carries (query string of the PUT, fields of the POST form),
/// all covered by the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddedGrant {
    pub method: Method,
    pub key: String,
    pub content_type: String,
    pub max_bytes: u64,
    pub length: Option<u64>,
    pub expires: i64,
    pub sha256: Option<String>,
}

impl EmbeddedGrant {
    /// The signed string: one field per line, fixed order, versioned.
    fn canonical(&self) -> String {
        format!(
            "imago-upload-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.method.name(),
            self.key,
            self.content_type,
            self.max_bytes,
            self.length.map(|l| l.to_string()).unwrap_or_default(),
            self.expires,
            self.sha256.as_deref().unwrap_or("")
        )
    }

    /// The fields that travel with it, in order (`signature` last).
    pub fn fields(&self, signature: &str) -> Vec<(String, String)> {
        let mut v =
            vec![("ct".to_string(), self.content_type.clone()), ("max".to_string(), self.max_bytes.to_string())];
        if let Some(l) = self.length {
            v.push(("len".into(), l.to_string()));
        }
        if let Some(s) = &self.sha256 {
            v.push(("sha256".into(), s.clone()));
        }
        v.push(("expires".into(), self.expires.to_string()));
        v.push(("signature".into(), signature.to_string()));
        v
    }
}

/// The key that signs embedded upload targets: derived from imago's first URL key pair with a
/// label no image path can equal (image paths start with `/`), so an upload signature is never
/// a valid image URL signature and vice versa.
#[derive(Clone)]
pub struct GrantKey([u8; 32]);

impl std::fmt::Debug for GrantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantKey([redacted])")
    }
}

impl GrantKey {
    pub fn derive(signer: &Signer) -> Result<GrantKey, String> {
        let full = signer.clone().with_signature_size(32).map_err(|e| e.to_string())?;
        let mac = URL_SAFE_NO_PAD.decode(full.sign("imago-upload-grant-key-v1")).map_err(|e| e.to_string())?;
        let arr: [u8; 32] = mac.try_into().map_err(|_| "derived key is not 32 bytes".to_string())?;
        Ok(GrantKey(arr))
    }

    fn mac(&self, g: &EmbeddedGrant) -> [u8; 32] {
        let mut m = match HmacSha256::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts any key length"),
        };
        m.update(g.canonical().as_bytes());
        m.finalize().into_bytes().into()
    }

    pub fn sign(&self, g: &EmbeddedGrant) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(g))
    }

    /// Constant-time check of a signature.
    pub fn verify(&self, g: &EmbeddedGrant, signature: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature.trim_end_matches('=')) else {
            return false;
        };
        let want = self.mac(g);
        given.len() == want.len() && bool::from(want.ct_eq(&given[..]))
    }
}

/// Everything the upload endpoints share (one field of `AppState`).
pub struct Uploads {
    pub settings: UploadSettings,
    pub backend: Backend,
    pub grant_key: GrantKey,
    signer: Signer,
    /// SHA-256 of each API key (compared in constant time).
    keys: crate::auth::ApiKeys,
    /// The tenants of the keys: where each one's uploads live ([`tenancy`]).
    pub tenancy: Tenancy,
    /// Ticket rate and day quotas ([`crate::quota`]).
    pub quotas: Quotas,
    /// The quota subject of each API key (index): `t:{tenant}` for a named tenant's keys with
    /// `IMAGO_QUOTA_SCOPE=tenant`, else `k:` and 16 hex digits of the key's SHA-256.
    subjects: Vec<String>,
    pub ingest: ingest::Ingest,
    /// One permit per request body being received (`IMAGO_UPLOAD_MAX_BODIES`).
    bodies: Arc<tokio::sync::Semaphore>,
    /// Completion settings and the ready cache ([`state`]).
    pub lifecycle: state::Lifecycle,
    /// Where `upload.completed` / `upload.rejected` go ([`Uploads::with_events`]; off by default).
    pub events: crate::events::Events,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads").field("backend", &self.backend).field("api_keys", &self.keys.len()).finish()
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// RFC 6266 `inline` Content-Disposition with an ASCII fallback and the UTF-8 name.
fn content_disposition(name: &str) -> String {
    const ATTR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    let enc = percent_encoding::utf8_percent_encode(name, ATTR);
    format!("inline; filename=\"{ascii}\"; filename*=UTF-8''{enc}")
}

impl Uploads {
    /// Builds the upload state on storage of its own (creates the local root and `.incoming/`
    /// when missing): for tools; the server shares its storage ([`Uploads::with_storage`]).
    pub fn new(cfg: &Config) -> Result<Uploads, String> {
        Uploads::with_storage(cfg, Storage::new(cfg)?)
    }

    /// Builds the upload state on `storage` (creates `.incoming/` when embedded uploads are on).
    pub fn with_storage(cfg: &Config, storage: Storage) -> Result<Uploads, String> {
        let settings = cfg.uploads.clone();
        let backend = match (storage.s3(), &cfg.raw.s3_bucket) {
            (Some(s3), Some(bucket)) => Backend::S3(Box::new(s3.bucket(bucket).map_err(|e| e.to_string())?)),
            _ => Backend::Local,
        };
        let signer = cfg.verifier.signer();
        let grant_key = GrantKey::derive(&signer)?;
        let keys = crate::auth::ApiKeys::new(&settings.api_keys);
        let tenancy = Tenancy::new(&settings.api_keys);
        let quotas = Quotas::new(settings.quota.clone(), settings.ttl)?;
        let subjects = settings
            .api_keys
            .iter()
            .map(|k| match settings.quota.scope {
                QuotaScope::Tenant if k.tenant != crate::config::DEFAULT_TENANT => format!("t:{}", k.tenant),
                _ => format!("k:{}", &hex::encode(<Sha256 as sha2::Digest>::digest(k.key.as_bytes()))[..16]),
            })
            .collect();
        let embedded = matches!(backend, Backend::Local) && !settings.api_keys.is_empty();
        let ingest = ingest::Ingest::new(storage.local().clone(), settings.fsync, settings.body_timeout, embedded)?;
        let bodies = Arc::new(tokio::sync::Semaphore::new(settings.max_bodies));
        let lifecycle = state::Lifecycle::new(cfg);
        let events = crate::events::Events::off();
        Ok(Uploads {
            settings,
            backend,
            grant_key,
            signer,
            keys,
            tenancy,
            quotas,
            subjects,
            ingest,
            bodies,
            lifecycle,
            events,
        })
    }

    /// Which API key (index) the `Authorization: Bearer …` header carries ([`crate::auth`]).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<usize, UploadError> {
        self.keys.check(authorization).map_err(|r| UploadError::Unauthorized(r.message()))
    }

    /// Admits the ticket of `plan` for the caller's quota subject ([`crate::quota`]): one ticket
    /// and its declared bytes (`content_length`, else the ticket's `max_bytes`). `rate` gets the
    /// bucket's state, refused or not (the `RateLimit-*` headers).
    pub async fn admit(
        &self,
        caller: &crate::auth::Caller,
        plan: &Plan,
        rate: &mut RateState,
    ) -> Result<(), UploadError> {
        let subject = self.subjects.get(caller.index).map_or("k:unknown", String::as_str);
        match self.quotas.admit(subject, &caller.tenant, plan.max_bytes, &plan.key).await {
            Ok(s) => {
                *rate = s;
                Ok(())
            }
            Err(e) => {
                if let crate::quota::QuotaError::RateLimited(s) = &e {
                    *rate = *s;
                }
                Err(e.into())
            }
        }
    }

    /// An upload at `key` ended: `stored` new bytes (0 when the key held them already). Its
    /// ticket's declared bytes beyond that go back to the day quota (once per ticket).
    pub async fn settle(&self, key: &str, stored: u64) {
        self.quotas.refund(key, stored).await;
    }

    /// A slot for receiving one request body (held until the answer), or
    /// [`UploadError::Busy`] when `IMAGO_UPLOAD_MAX_BODIES` are taken: nothing is read then.
    pub fn body_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, UploadError> {
        self.bodies.clone().try_acquire_owned().map_err(|_| UploadError::Busy)
    }

    /// The key if it is one uploads could have made: a clean key under one of
    /// `IMAGO_UPLOAD_PREFIXES` whose name ends in an image extension. Only those can be deleted.
    pub fn upload_key(&self, key: &str) -> Result<String, UploadError> {
        let key = match crate::storage::object_key(key) {
            Err(StorageError::Reserved) => return Err(UploadError::NotFound),
            r => r?,
        };
        let prefixed =
            self.settings.prefixes.iter().any(|p| key.strip_prefix(p.as_str()).is_some_and(|r| r.starts_with('/')));
        if !prefixed {
            return Err(UploadError::KeyNotAllowed(format!(
                "the key is not under an upload prefix (IMAGO_UPLOAD_PREFIXES: {})",
                self.settings.prefixes.join(", ")
            )));
        }
        let ext =
            key.rsplit_once('/').map_or(key.as_str(), |(_, n)| n).rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        let image = ext.is_some_and(|e| IMAGE_TYPES.iter().any(|t| t.ext == e || t.alt_ext.contains(&e.as_str())));
        if !image {
            return Err(UploadError::KeyNotAllowed("the key does not name an image file".into()));
        }
        Ok(key)
    }

    /// Deletes the original at an upload key ([`Uploads::upload_key`]) at once (a hard delete,
    /// `IMAGO_DELETE_GRACE_SECS=0`; soft deletes are [`Uploads::soft_delete`]): the local file
    /// (never outside the root) or the object, then its records.
    pub async fn delete(&self, key: &str) -> Result<(), UploadError> {
        let key = self.upload_key(key)?;
        match &self.backend {
            Backend::Local => self.ingest.delete(&key).await?,
            Backend::S3(s) => {
                s.head(&key).await?.ok_or(UploadError::NotFound)?;
                s.delete(&key).await?;
            }
        }
        self.purge_records(&key).await
    }

    /// The proxy source string of a key.
    pub fn source_of(&self, key: &str) -> String {
        match &self.backend {
            Backend::Local => format!("local:///{key}"),
            Backend::S3(s) => format!("s3://{}/{key}", s.name()),
        }
    }

    /// A signed read URL (no options) of a key.
    pub fn image_url(&self, key: &str) -> Result<String, UploadError> {
        let path = UrlBuilder::new()
            .sign(&self.signer, &self.source_of(key))
            .map_err(|e| UploadError::InvalidRequest(e.to_string()))?;
        Ok(format!("{}{}", self.settings.public_url, path))
    }

    /// [`Uploads::plan_for`] tenant `default` (bare keys, `imago presign`).
    pub fn plan(&self, req: &TicketRequest, now: &Timestamp) -> Result<Plan, UploadError> {
        self.plan_for(req, crate::config::DEFAULT_TENANT, now)
    }

    /// Decides the key (in `tenant`'s directory), method and limits of a ticket (pure: no I/O).
    pub fn plan_for(&self, req: &TicketRequest, tenant: &str, now: &Timestamp) -> Result<Plan, UploadError> {
        let s = &self.settings;
        let image_type = s.image_type(&req.content_type)?;
        let prefix = match &req.prefix {
            None => s.prefixes[0].clone(),
            Some(p) => {
                let c = clean_prefix(p)
                    .ok_or_else(|| UploadError::InvalidRequest(format!("prefix `{p}` is not a key prefix")))?;
                if !s.prefixes.contains(&c) {
                    return Err(UploadError::Forbidden(format!(
                        "prefix `{c}` is not allowed (IMAGO_UPLOAD_PREFIXES: {})",
                        s.prefixes.join(", ")
                    )));
                }
                c
            }
        };
        if let Some(l) = req.content_length {
            if l > s.max_bytes {
                return Err(UploadError::TooLarge { limit: s.max_bytes });
            }
            if l == 0 {
                return Err(UploadError::InvalidRequest("content_length must be at least 1".into()));
            }
        }
        let sha256 = match &req.sha256 {
            None => None,
            Some(h) => {
                let bytes = hex::decode(h.trim()).ok().filter(|b| b.len() == 32).ok_or_else(|| {
                    UploadError::InvalidRequest("sha256 must be 64 hex digits (the file's SHA-256)".into())
                })?;
                let mut a = [0u8; 32];
                a.copy_from_slice(&bytes);
                Some(a)
            }
        };
        let method = match req.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None => {
                // Only a POST policy can bound the size of an upload of unknown length to S3.
                if matches!(self.backend, Backend::S3(_)) && req.content_length.is_none() {
                    Method::Post
                } else {
                    Method::Put
                }
            }
            Some("PUT") => Method::Put,
            Some("POST") => Method::Post,
            Some(other) => {
                return Err(UploadError::InvalidRequest(format!("method must be PUT or POST, not `{other}`")))
            }
        };
        if method == Method::Put && matches!(self.backend, Backend::S3(_)) && req.content_length.is_none() {
            return Err(UploadError::InvalidRequest(
                "content_length is required for PUT uploads to the object store (or use method POST)".into(),
            ));
        }
        let mut ext = image_type.ext;
        let mut disposition = None;
        if let Some(name) = &req.filename {
            if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) || name.contains(['/', '\\']) {
                return Err(UploadError::InvalidRequest(
                    "filename must be 1-255 bytes without control characters or slashes".into(),
                ));
            }
            if let Some((_, e)) = name.rsplit_once('.') {
                let e = e.to_ascii_lowercase();
                if let Some(alt) = image_type.alt_ext.iter().find(|a| **a == e) {
                    ext = alt;
                }
            }
            disposition = Some(content_disposition(name));
        }
        let millis = now.as_millisecond().max(0) as u64;
        let ulid = ulid::Ulid::from_parts(millis, rand::random::<u128>());
        let prefix = self.tenancy.root(tenant, &prefix);
        let key = match &sha256 {
            Some(d) => format!("{prefix}/sha256/{}.{ext}", hex::encode(d)),
            None => {
                let day = now.strftime("%Y/%m/%d");
                format!("{prefix}/{day}/{}.{ext}", ulid.to_string().to_ascii_lowercase())
            }
        };
        Ok(Plan {
            id: self.upload_id(&key),
            key,
            image_type,
            method,
            length: req.content_length,
            max_bytes: req.content_length.unwrap_or(s.max_bytes),
            sha256,
            disposition,
        })
    }

    /// Builds the ticket of a plan (pure: no I/O).
    pub fn ticket(&self, plan: &Plan, exists: bool, now: &Timestamp) -> Result<Ticket, UploadError> {
        let s = &self.settings;
        let expires = now.as_second() + s.ttl.as_secs() as i64;
        let (url, fields, headers) = match &self.backend {
            Backend::S3(store) => {
                let spec = ObjectSpec {
                    key: &plan.key,
                    content_type: plan.image_type.mime,
                    length: plan.length,
                    max_bytes: plan.max_bytes,
                    sha256_b64: plan.sha256.map(|d| B64.encode(d)),
                    disposition: plan.disposition.as_deref(),
                    // Digest keys may be rewritten with the same (checksum-verified) bytes.
                    no_overwrite: s.s3_if_none_match && plan.sha256.is_none(),
                };
                match plan.method {
                    Method::Put => {
                        let t = store.presign_put(&spec, s.ttl, now);
                        (t.url.to_string(), Pairs::default(), Pairs(t.headers))
                    }
                    Method::Post => {
                        let t = store.presign_post(&spec, s.ttl, now);
                        (t.url.to_string(), Pairs(t.fields), Pairs::default())
                    }
                }
            }
            Backend::Local => {
                let grant = EmbeddedGrant {
                    method: plan.method,
                    key: plan.key.clone(),
                    content_type: plan.image_type.mime.to_string(),
                    max_bytes: plan.max_bytes,
                    length: plan.length,
                    expires,
                    sha256: plan.sha256.map(hex::encode),
                };
                let sig = self.grant_key.sign(&grant);
                match plan.method {
                    Method::Put => {
                        let mut u = url::Url::parse(&format!("{}/v1/uploads/{}", s.public_url, plan.key))
                            .map_err(|e| UploadError::InvalidRequest(e.to_string()))?;
                        u.query_pairs_mut().extend_pairs(grant.fields(&sig));
                        let headers = Pairs(vec![("Content-Type".into(), grant.content_type.clone())]);
                        (u.to_string(), Pairs::default(), headers)
                    }
                    Method::Post => {
                        let mut f = vec![("key".to_string(), plan.key.clone())];
                        f.extend(grant.fields(&sig).into_iter().map(|(k, v)| match k.as_str() {
                            "ct" => ("Content-Type".to_string(), v),
                            _ => (k, v),
                        }));
                        (format!("{}/v1/uploads/form", s.public_url), Pairs(f), Pairs::default())
                    }
                }
            }
        };
        let expires_at = Timestamp::from_second(expires)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .map_err(|e| UploadError::InvalidRequest(e.to_string()))?;
        Ok(Ticket {
            id: plan.id.clone(),
            key: plan.key.clone(),
            method: plan.method.name(),
            url,
            fields,
            headers,
            expires_at,
            max_bytes: plan.max_bytes,
            source: self.source_of(&plan.key),
            image_url: self.image_url(&plan.key)?,
            info_url: format!("{}/v1/images/{}/info", s.public_url, plan.key),
            complete_url: format!("{}/v1/uploads/{}/complete", s.public_url, plan.id),
            exists,
        })
    }

    /// True when an object exists at `key` (local file or S3 object).
    pub async fn exists(&self, key: &str) -> Result<bool, UploadError> {
        match &self.backend {
            Backend::Local => Ok(self.ingest.stat(key).await?.is_some()),
            Backend::S3(s) => Ok(s.head(key).await?.is_some()),
        }
    }

    /// [`Uploads::issue_for`] tenant `default` (`imago presign`).
    pub async fn issue(&self, req: &TicketRequest, now: &Timestamp) -> Result<Ticket, UploadError> {
        self.issue_for(req, crate::config::DEFAULT_TENANT, now).await
    }

    /// The ticket code path shared by `POST /v1/uploads` and `imago presign`: plan, then (with a
    /// digest) look for an existing object in the tenant's own directory, then sign.
    pub async fn issue_for(&self, req: &TicketRequest, tenant: &str, now: &Timestamp) -> Result<Ticket, UploadError> {
        let plan = self.plan_for(req, tenant, now)?;
        self.issue_plan(&plan, now).await
    }

    /// The I/O half of [`Uploads::issue_for`]: look for an existing object (digest keys), sign.
    /// A ticket answered `exists: true` gives its declared bytes back (nothing is to be sent).
    pub async fn issue_plan(&self, plan: &Plan, now: &Timestamp) -> Result<Ticket, UploadError> {
        // A soft-deleted original is not offered as existing: the upload brings it back.
        let exists =
            plan.sha256.is_some() && self.exists(&plan.key).await? && self.deleted_record(&plan.key).await?.is_none();
        if exists {
            self.settle(&plan.key, 0).await;
        }
        self.ticket(plan, exists, now)
    }
}

/// Shared state handle for handlers.
pub type SharedUploads = Arc<Uploads>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{List, RawConfig};

    fn cfg(tweak: impl FnOnce(&mut RawConfig)) -> Config {
        let dir = std::env::temp_dir().join(format!("imago-upload-unit-{}", rand::random::<u64>()));
        let mut raw = RawConfig {
            key: List::from_strs(&["aa11"]),
            salt: List::from_strs(&["bb22"]),
            api_keys: List::from_strs(&["key-one-0123456789", "key-two-0123456789"]),
            local_root: dir,
            ..Default::default()
        };
        tweak(&mut raw);
        raw.validate(false).unwrap()
    }

    fn uploads(tweak: impl FnOnce(&mut RawConfig)) -> Uploads {
        Uploads::new(&cfg(tweak)).unwrap()
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    #[test]
    fn keys_are_chosen_by_the_server() {
        let u = uploads(|_| {});
        let req = TicketRequest {
            content_type: "image/jpeg".into(),
            filename: Some("../../etc/passwd.jpeg".into()),
            ..Default::default()
        };
        assert!(matches!(u.plan(&req, &now()), Err(UploadError::InvalidRequest(_))));
        let req = TicketRequest {
            content_type: "image/jpeg".into(),
            filename: Some("Cat.JPEG".into()),
            ..Default::default()
        };
        let p = u.plan(&req, &now()).unwrap();
        assert!(p.key.starts_with("uploads/2023/11/14/") && p.key.ends_with(".jpeg"), "{}", p.key);
        assert_ne!(u.plan(&req, &now()).unwrap().key, p.key, "keys are unique");
        let req =
            TicketRequest { content_type: "image/png".into(), sha256: Some("AB".repeat(32)), ..Default::default() };
        assert_eq!(u.plan(&req, &now()).unwrap().key, format!("uploads/sha256/{}.png", "ab".repeat(32)));
    }

    #[test]
    fn refusals_have_codes() {
        let u = uploads(|r| r.upload_prefixes = List::from_strs(&["avatars", "posts/images"]));
        let plan = |r: TicketRequest| u.plan(&r, &now()).map(|p| p.key).map_err(|e| e.code());
        let base = TicketRequest { content_type: "image/webp".into(), ..Default::default() };
        assert_eq!(
            plan(TicketRequest { content_type: "text/html".into(), ..base.clone() }),
            Err("unsupported-content-type")
        );
        assert_eq!(
            plan(TicketRequest { content_type: "image/svg+xml".into(), ..base.clone() }),
            Err("unsupported-content-type")
        );
        assert_eq!(plan(TicketRequest { prefix: Some("other".into()), ..base.clone() }), Err("forbidden"));
        assert_eq!(plan(TicketRequest { prefix: Some("../x".into()), ..base.clone() }), Err("invalid-request"));
        assert!(plan(TicketRequest { prefix: Some("/posts/images/".into()), ..base.clone() })
            .unwrap()
            .starts_with("posts/images/"));
        assert_eq!(plan(TicketRequest { content_length: Some(26 * 1024 * 1024), ..base.clone() }), Err("too-large"));
        assert_eq!(plan(TicketRequest { sha256: Some("xyz".into()), ..base.clone() }), Err("invalid-request"));
        assert_eq!(plan(TicketRequest { method: Some("PATCH".into()), ..base }), Err("invalid-request"));
    }

    #[test]
    fn grants_verify_and_tampering_fails() {
        let u = uploads(|_| {});
        let g = EmbeddedGrant {
            method: Method::Put,
            key: "uploads/a.jpg".into(),
            content_type: "image/jpeg".into(),
            max_bytes: 100,
            length: None,
            expires: 2_000_000_000,
            sha256: None,
        };
        let sig = u.grant_key.sign(&g);
        assert!(u.grant_key.verify(&g, &sig));
        for bad in [
            EmbeddedGrant { max_bytes: 101, ..g.clone() },
            EmbeddedGrant { key: "uploads/b.jpg".into(), ..g.clone() },
            EmbeddedGrant { method: Method::Post, ..g.clone() },
            EmbeddedGrant { content_type: "image/png".into(), ..g.clone() },
            EmbeddedGrant { expires: 2_000_000_001, ..g.clone() },
            EmbeddedGrant { length: Some(100), ..g.clone() },
        ] {
            assert!(!u.grant_key.verify(&bad, &sig), "{bad:?}");
        }
        assert!(!u.grant_key.verify(&g, "short"));
        // The derived key is not the URL key: an image-path signature of the canonical string
        // does not verify.
        assert_ne!(u.signer.sign(&g.canonical()), sig);
    }

    #[tokio::test]
    async fn api_keys_and_rate_limit() {
        let u = uploads(|r| {
            r.upload_rate_per_sec = 1.0;
            r.upload_burst = 2;
        });
        assert_eq!(u.authenticate(Some("Bearer key-two-0123456789")).unwrap(), 1);
        assert_eq!(u.authenticate(Some("bearer key-one-0123456789")).unwrap(), 0);
        for bad in [None, Some("Bearer"), Some("Basic key-one-0123456789"), Some("Bearer key-one-012345678")] {
            assert_eq!(u.authenticate(bad).unwrap_err().code(), "unauthorized");
        }
        let caller = |k: &str| u.authorize(Some(&format!("Bearer {k}")), crate::config::Scope::Upload).unwrap();
        let (one, two) = (caller("key-one-0123456789"), caller("key-two-0123456789"));
        let plan = u.plan(&TicketRequest { content_type: "image/png".into(), ..Default::default() }, &now()).unwrap();
        let mut rate = RateState::default();
        assert!(u.admit(&one, &plan, &mut rate).await.is_ok() && u.admit(&one, &plan, &mut rate).await.is_ok());
        let e = u.admit(&one, &plan, &mut rate).await.unwrap_err();
        assert_eq!((e.code(), e.retry_after()), ("rate-limited", Some(1)));
        assert!(u.admit(&two, &plan, &mut rate).await.is_ok(), "buckets are per key");
    }

    #[test]
    fn embedded_ticket_shapes() {
        let u = uploads(|r| r.public_url = Some("https://img.example.com/".into()));
        let req = TicketRequest { content_type: "image/png".into(), content_length: Some(10), ..Default::default() };
        let t = u.ticket(&u.plan(&req, &now()).unwrap(), false, &now()).unwrap();
        assert_eq!(t.method, "PUT");
        assert!(
            t.url.starts_with(&format!(
                "https://img.example.com/v1/uploads/{}?ct=image%2Fpng&max=10&len=10&expires=1700000900&signature=",
                t.key
            )),
            "{}",
            t.url
        );
        assert_eq!(t.headers.get("content-type"), Some("image/png"));
        assert_eq!(t.expires_at, "2023-11-14T22:28:20Z");
        assert_eq!(t.source, format!("local:///{}", t.key));
        assert!(t.image_url.starts_with("https://img.example.com/"));
        assert_eq!(t.info_url, format!("https://img.example.com/v1/images/{}/info", t.key));
        let req = TicketRequest { method: Some("post".into()), ..req };
        let t = u.ticket(&u.plan(&req, &now()).unwrap(), false, &now()).unwrap();
        assert_eq!(t.url, "https://img.example.com/v1/uploads/form");
        let names: Vec<&str> = t.fields.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["key", "Content-Type", "max", "len", "expires", "signature"]);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["fields"]["key"], t.key.as_str());
        assert_eq!(json["headers"], serde_json::json!({}));
    }

    #[test]
    fn bad_upload_settings_name_the_setting() {
        let base =
            || RawConfig { key: List::from_strs(&["aa11"]), salt: List::from_strs(&["bb22"]), ..Default::default() };
        for (raw, setting) in [
            (RawConfig { api_keys: List::from_strs(&["short"]), ..base() }, "IMAGO_API_KEYS"),
            (RawConfig { upload_prefixes: List::from_strs(&["../x"]), ..base() }, "IMAGO_UPLOAD_PREFIXES"),
            (RawConfig { upload_prefixes: List::from_strs(&[".incoming"]), ..base() }, "IMAGO_UPLOAD_PREFIXES"),
            (RawConfig { upload_ttl_secs: 0, ..base() }, "IMAGO_UPLOAD_TTL_SECS"),
            (RawConfig { upload_max_bytes: 0, ..base() }, "IMAGO_UPLOAD_MAX_BYTES"),
            (RawConfig { upload_rate_per_sec: -1.0, ..base() }, "IMAGO_UPLOAD_RATE_PER_SEC"),
            (RawConfig { upload_burst: 0, ..base() }, "IMAGO_UPLOAD_BURST"),
            (RawConfig { cors_origins: List::from_strs(&["https://a.example/path"]), ..base() }, "IMAGO_CORS_ORIGINS"),
            (RawConfig { public_url: Some("ftp://x".into()), ..base() }, "IMAGO_PUBLIC_URL"),
        ] {
            let e = raw.validate(false).unwrap_err().to_string();
            assert!(e.contains(setting), "{setting}: {e}");
        }
        assert!(RawConfig { cors_origins: List::from_strs(&["https://a.example:8443"]), ..base() }
            .validate(false)
            .is_ok());
    }

    #[test]
    fn magic_bytes() {
        let jpeg = IMAGE_TYPES.iter().find(|t| t.mime == "image/jpeg").unwrap();
        assert!(check_magic(jpeg, &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]).is_ok());
        assert_eq!(check_magic(jpeg, b"\x89PNG\r\n\x1a\n....").unwrap_err().code(), "content-type-mismatch");
        assert_eq!(check_magic(jpeg, b"<html>").unwrap_err().code(), "not-an-image");
        let svg = IMAGE_TYPES.iter().find(|t| t.mime == "image/svg+xml").unwrap();
        assert!(check_magic(svg, b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>").is_ok());
        assert!(check_magic(svg, b"<html><svg>").is_err());
    }

    #[test]
    fn content_disposition_is_safe() {
        assert_eq!(
            content_disposition("My \"cat\" é.jpg"),
            "inline; filename=\"My__cat___.jpg\"; filename*=UTF-8''My%20%22cat%22%20%C3%A9.jpg"
        );
    }
}
