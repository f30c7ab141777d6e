//! The one S3 client: every request to the object store (any S3 API store) is SigV4 presigned
//! by `rusty-s3` and sent by one reqwest client, built once from [`S3Config`]. [`Bucket`] is a
//! cheap per-bucket handle: `s3://bucket/key` sources name their bucket, uploads and analytics
//! use `IMAGO_S3_BUCKET`.
//!
//! Requests: `GET` (bounded body), `HEAD`, `PUT`, `DELETE`, `LIST` (v2, all pages), the
//! readiness `HEAD` of the bucket, and presigned `GET`/`PUT` URLs and `POST` forms for clients.
//! Credentials come from [`super::credentials`] (static keys, or the AWS chain refreshed ahead of
//! expiry); a session token is signed into every request and URL (`X-Amz-Security-Token`, a
//! query parameter of presigned URLs, signed by `rusty-s3`; a field and a condition of POST
//! policies).
//! Presigned `POST` forms carry a SigV4 policy (AWS's documented browser-upload algorithm, with
//! `hmac`/`sha2`: no crate does it). In upload tickets the bytes never pass through imago: the
//! browser sends them to the store, which checks the signature, the size and the checksum.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use rusty_s3::{Credentials, S3Action, UrlStyle};

use super::credentials;
use sha2::Sha256;

use super::{read_body, Listed, Object, Page, StorageError};
use crate::config::S3Config;

type HmacSha256 = Hmac<Sha256>;

/// How long the presigned URLs of imago's own requests are valid.
const GET_TTL: Duration = Duration::from_secs(300);
const PUT_TTL: Duration = Duration::from_secs(300);
const LIST_TTL: Duration = Duration::from_secs(300);
const HEAD_TTL: Duration = Duration::from_secs(60);
const DELETE_TTL: Duration = Duration::from_secs(60);
/// The readiness probe's own, short, timeout.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// One object to be uploaded, as the ticket describes it.
#[derive(Clone, Debug)]
pub struct ObjectSpec<'a> {
    pub key: &'a str,
    pub content_type: &'a str,
    /// Exact length, when the ticket request declared one (signed as `Content-Length`).
    pub length: Option<u64>,
    /// Largest accepted length (`content-length-range` upper bound for POST).
    pub max_bytes: u64,
    /// Base64 SHA-256 of the body (`x-amz-checksum-sha256`).
    pub sha256_b64: Option<String>,
    /// `Content-Disposition` stored with the object.
    pub disposition: Option<&'a str>,
    /// Sign `If-None-Match: *` (stores that honour it refuse to overwrite an existing key).
    pub no_overwrite: bool,
}

/// A presigned PUT: the URL and every header the client must send with exactly these values.
#[derive(Clone, Debug)]
pub struct PutTarget {
    pub url: url::Url,
    /// Headers for the client (Content-Length is signed too but set by every HTTP client itself).
    pub headers: Vec<(String, String)>,
}

/// A presigned POST form: the URL and the fields to send before the file.
#[derive(Clone, Debug)]
pub struct PostTarget {
    pub url: url::Url,
    pub fields: Vec<(String, String)>,
}

/// What a HEAD told about an object.
#[derive(Clone, Debug)]
pub struct ObjectMeta {
    pub size: u64,
    pub etag: String,
    pub last_modified: Option<SystemTime>,
}

/// The object store client (cheap to clone: one connection pool).
#[derive(Clone)]
pub struct S3Client(Arc<Inner>);

struct Inner {
    cfg: S3Config,
    creds: credentials::Credentials,
    http: reqwest::Client,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client").field("cfg", &self.0.cfg).field("creds", &self.0.creds).finish()
    }
}

/// `YYYYMMDD` and `YYYYMMDDTHHMMSSZ` of a time (UTC).
fn amz_dates(t: &Timestamp) -> (String, String) {
    (t.strftime("%Y%m%d").to_string(), t.strftime("%Y%m%dT%H%M%SZ").to_string())
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut m = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts any key length"),
    };
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// The SigV4 signing key: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), "s3"), "aws4_request")`.
pub fn signing_key(secret: &str, yyyymmdd: &str, region: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), yyyymmdd.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, b"s3");
    hmac(&k, b"aws4_request")
}

/// Builds and signs a POST policy (AWS "Browser-based uploads using POST, Signature Version 4"):
/// the policy is base64 JSON, its signature `hex(HMAC(signing key, base64 policy))`.
pub fn sign_post_policy(
    bucket: &str,
    creds: &Credentials,
    region: &str,
    spec: &ObjectSpec<'_>,
    ttl: Duration,
    now: &Timestamp,
) -> Vec<(String, String)> {
    let (day, amz_date) = amz_dates(now);
    let credential = format!("{}/{day}/{region}/s3/aws4_request", creds.key());
    let expiration = now
        .checked_add(jiff::SignedDuration::from_secs(ttl.as_secs() as i64))
        .unwrap_or(*now)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (min, max) = match spec.length {
        Some(l) => (l, l),
        None => (1, spec.max_bytes),
    };
    let mut conditions = vec![
        serde_json::json!({ "bucket": bucket }),
        serde_json::json!(["eq", "$key", spec.key]),
        serde_json::json!(["eq", "$Content-Type", spec.content_type]),
        serde_json::json!(["content-length-range", min, max]),
    ];
    let mut fields: Vec<(String, String)> =
        vec![("key".into(), spec.key.into()), ("Content-Type".into(), spec.content_type.into())];
    if let Some(d) = spec.disposition {
        conditions.push(serde_json::json!(["eq", "$Content-Disposition", d]));
        fields.push(("Content-Disposition".into(), d.into()));
    }
    if let Some(sum) = &spec.sha256_b64 {
        conditions.push(serde_json::json!({ "x-amz-checksum-algorithm": "SHA256" }));
        conditions.push(serde_json::json!({ "x-amz-checksum-sha256": sum }));
        fields.push(("x-amz-checksum-algorithm".into(), "SHA256".into()));
        fields.push(("x-amz-checksum-sha256".into(), sum.clone()));
    }
    conditions.push(serde_json::json!({ "x-amz-algorithm": "AWS4-HMAC-SHA256" }));
    conditions.push(serde_json::json!({ "x-amz-credential": credential }));
    conditions.push(serde_json::json!({ "x-amz-date": amz_date }));
    // Temporary credentials: the session token is a field, covered by the policy.
    let token = creds.token().filter(|t| !t.is_empty());
    if let Some(t) = token {
        conditions.push(serde_json::json!({ "x-amz-security-token": t }));
    }
    let policy = serde_json::json!({ "expiration": expiration, "conditions": conditions });
    let policy_b64 = B64.encode(policy.to_string());
    let signature = hex::encode(hmac(&signing_key(creds.secret(), &day, region), policy_b64.as_bytes()));
    fields.push(("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()));
    fields.push(("x-amz-credential".into(), credential));
    fields.push(("x-amz-date".into(), amz_date));
    if let Some(t) = token {
        fields.push(("x-amz-security-token".into(), t.to_string()));
    }
    fields.push(("policy".into(), policy_b64));
    fields.push(("x-amz-signature".into(), signature));
    fields
}

/// A request that got no answer.
/// `without_url`: the request URL is presigned (a credential valid for minutes), so it never goes
/// into an error text, a log line or `/readyz`.
fn request_err(e: reqwest::Error) -> StorageError {
    StorageError::Request { timeout: e.is_timeout(), message: e.without_url().to_string() }
}

impl S3Client {
    /// The client for `cfg`; `timeout` bounds connecting and each whole request. Chain
    /// credentials are fetched here, before anything is served: none is an error.
    pub fn new(cfg: &S3Config, timeout: Duration) -> Result<S3Client, String> {
        let creds = credentials::Credentials::new(&cfg.credentials, timeout)?;
        S3Client::with_credentials(cfg, timeout, creds)
    }

    /// [`S3Client::new`] with credentials built by the caller.
    pub fn with_credentials(
        cfg: &S3Config,
        timeout: Duration,
        creds: credentials::Credentials,
    ) -> Result<S3Client, String> {
        // The object store is configured by the operator, so it may live on a private network.
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(S3Client(Arc::new(Inner { cfg: cfg.clone(), creds, http })))
    }

    /// The connection settings (buckets included).
    pub fn config(&self) -> &S3Config {
        &self.0.cfg
    }

    /// The credentials (their state for `/readyz` and `/metrics`).
    pub fn credentials(&self) -> &credentials::Credentials {
        &self.0.creds
    }

    /// A handle on bucket `name` (no I/O).
    pub fn bucket(&self, name: &str) -> Result<Bucket, StorageError> {
        let cfg = &self.0.cfg;
        let style = if cfg.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let bucket = rusty_s3::Bucket::new(cfg.endpoint.clone(), style, name.to_string(), cfg.region.clone())
            .map_err(|e| StorageError::Bucket { name: name.to_string(), message: e.to_string() })?;
        Ok(Bucket { client: self.clone(), bucket })
    }

    /// Readiness: chain credentials have not expired, and a `HEAD` of the default bucket (or the
    /// first allowed one) gets any answer but a 5xx within 2 s.
    pub async fn ready(&self) -> Result<(), String> {
        self.0.creds.check()?;
        let cfg = &self.0.cfg;
        let Some(name) = cfg.bucket.as_deref().or(cfg.allowed_buckets.first().map(String::as_str)) else {
            return Ok(());
        };
        // The wording of source errors, as before the storage layer.
        let b = self.bucket(name).map_err(|e| format!("invalid source: {e}"))?;
        let url = b.bucket.head_bucket(Some(&self.0.creds.current())).sign(HEAD_TTL);
        let r = self
            .0
            .http
            .head(url)
            .timeout(READY_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("object store: {}", e.without_url()))?;
        if r.status().is_server_error() {
            return Err(format!("object store answered {}", r.status()));
        }
        Ok(())
    }
}

/// One bucket of the object store.
#[derive(Clone)]
pub struct Bucket {
    client: S3Client,
    bucket: rusty_s3::Bucket,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("bucket", &self.bucket.name())
            .field("region", &self.client.0.cfg.region)
            .finish()
    }
}

impl Bucket {
    pub fn name(&self) -> &str {
        self.bucket.name()
    }

    /// The credentials to sign with now.
    fn creds(&self) -> Arc<Credentials> {
        self.client.0.creds.current()
    }

    fn http(&self) -> &reqwest::Client {
        &self.client.0.http
    }

    /// A presigned PUT of `spec` valid for `ttl` from `now`.
    pub fn presign_put(&self, spec: &ObjectSpec<'_>, ttl: Duration, now: &Timestamp) -> PutTarget {
        let creds = self.creds();
        let mut action = self.bucket.put_object(Some(&creds), spec.key);
        let mut headers = vec![("Content-Type".to_string(), spec.content_type.to_string())];
        let len = spec.length.map(|l| l.to_string());
        {
            let h = action.headers_mut();
            h.insert("content-type", spec.content_type.to_string());
            if let Some(l) = &len {
                h.insert("content-length", l.clone());
            }
            if let Some(d) = spec.disposition {
                h.insert("content-disposition", d.to_string());
                headers.push(("Content-Disposition".into(), d.into()));
            }
            if let Some(sum) = &spec.sha256_b64 {
                h.insert("x-amz-checksum-sha256", sum.clone());
                headers.push(("x-amz-checksum-sha256".into(), sum.clone()));
            }
            if spec.no_overwrite {
                h.insert("if-none-match", "*");
                headers.push(("If-None-Match".into(), "*".into()));
            }
        }
        PutTarget { url: action.sign_with_time(ttl, now), headers }
    }

    /// A presigned POST form for `spec` valid for `ttl` from `now`.
    pub fn presign_post(&self, spec: &ObjectSpec<'_>, ttl: Duration, now: &Timestamp) -> PostTarget {
        let fields = sign_post_policy(self.bucket.name(), &self.creds(), &self.client.0.cfg.region, spec, ttl, now);
        PostTarget { url: self.bucket.base_url().clone(), fields }
    }

    /// A presigned GET valid for `ttl`.
    pub fn presign_get(&self, key: &str, ttl: Duration) -> url::Url {
        self.bucket.get_object(Some(&self.creds()), key).sign(ttl)
    }

    /// The object, refused as [`StorageError::TooLarge`] past `max_bytes` (announced or read).
    /// Any answer but a 2xx is [`StorageError::Status`].
    pub async fn get(&self, key: &str, max_bytes: u64) -> Result<Object, StorageError> {
        let url = self.presign_get(key, GET_TTL);
        let resp = self.http().get(url).send().await.map_err(request_err)?;
        if !resp.status().is_success() {
            return Err(StorageError::Status { op: "GET", status: resp.status() });
        }
        read_body(resp, max_bytes).await
    }

    /// The object's first `n` bytes (a `Range` read; the whole object when smaller), or `None`
    /// when there is none.
    pub async fn get_prefix(&self, key: &str, n: u64) -> Result<Option<Object>, StorageError> {
        let url = self.presign_get(key, GET_TTL);
        let range = format!("bytes=0-{}", n.saturating_sub(1));
        let resp = self.http().get(url).header("range", range).send().await.map_err(request_err)?;
        match resp.status() {
            s if s.is_success() => Ok(Some(read_body(resp, n).await?)),
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            s => Err(StorageError::Status { op: "GET", status: s }),
        }
    }

    /// A whole small object, or `None` when there is none.
    pub async fn get_opt(&self, key: &str, max_bytes: u64) -> Result<Option<Object>, StorageError> {
        match self.get(key, max_bytes).await {
            Ok(o) => Ok(Some(o)),
            Err(StorageError::Status { status: reqwest::StatusCode::NOT_FOUND, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object's size and ETag, or `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let url = self.bucket.head_object(Some(&self.creds()), key).sign(HEAD_TTL);
        let resp = self.http().head(url).send().await.map_err(request_err)?;
        match resp.status() {
            s if s.is_success() => {}
            reqwest::StatusCode::NOT_FOUND => return Ok(None),
            s => return Err(StorageError::Status { op: "HEAD", status: s }),
        }
        let h = resp.headers();
        let size = h
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let etag = h.get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let last_modified = h
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        Ok(Some(ObjectMeta { size, etag, last_modified }))
    }

    /// Stores `body` at `key`.
    pub async fn put(&self, key: &str, content_type: &str, body: Vec<u8>) -> Result<(), StorageError> {
        let url = self.bucket.put_object(Some(&self.creds()), key).sign(PUT_TTL);
        let resp =
            self.http().put(url).header("content-type", content_type).body(body).send().await.map_err(request_err)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(StorageError::Status { op: "PUT", status: resp.status() })
        }
    }

    /// Stores `body` at `key` only if no object is there (`If-None-Match: *`): `false` when one
    /// is (412, or 409 for a concurrent conditional write). Stores that ignore the header
    /// overwrite (the outbox documents what that costs: a possible second delivery).
    pub async fn put_new(&self, key: &str, content_type: &str, body: Vec<u8>) -> Result<bool, StorageError> {
        let creds = self.creds();
        let mut action = self.bucket.put_object(Some(&creds), key);
        action.headers_mut().insert("if-none-match", "*");
        let url = action.sign(PUT_TTL);
        let resp = self
            .http()
            .put(url)
            .header("content-type", content_type)
            .header("if-none-match", "*")
            .body(body)
            .send()
            .await
            .map_err(request_err)?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            reqwest::StatusCode::PRECONDITION_FAILED | reqwest::StatusCode::CONFLICT => Ok(false),
            s => Err(StorageError::Status { op: "PUT", status: s }),
        }
    }

    /// Deletes the object (S3 answers 204 whether or not it existed; a 404 is fine too).
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let url = self.bucket.delete_object(Some(&self.creds()), key).sign(DELETE_TTL);
        let resp = self.http().delete(url).send().await.map_err(request_err)?;
        match resp.status() {
            s if s.is_success() || s == reqwest::StatusCode::NOT_FOUND => Ok(()),
            s => Err(StorageError::Status { op: "DELETE", status: s }),
        }
    }

    /// One `ListObjectsV2` page: up to `max` (≤ 1000) objects under `prefix` after the key
    /// `after`, in key order.
    pub async fn list_page(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Page, StorageError> {
        let creds = self.creds();
        let mut action = self.bucket.list_objects_v2(Some(&creds));
        action.with_prefix(prefix);
        action.with_max_keys(max.clamp(1, 1000));
        if let Some(a) = after {
            action.with_start_after(a);
        }
        let resp = self.http().get(action.sign(LIST_TTL)).send().await.map_err(request_err)?;
        if !resp.status().is_success() {
            return Err(StorageError::Status { op: "LIST", status: resp.status() });
        }
        let text = resp
            .text()
            .await
            .map_err(|e| StorageError::Body { timeout: e.is_timeout(), message: e.without_url().to_string() })?;
        let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&text)
            .map_err(|e| StorageError::Invalid(e.to_string()))?;
        let objects = parsed
            .contents
            .into_iter()
            .map(|c| Listed {
                size: c.size.unwrap_or(0),
                last_modified: c.last_modified.and_then(|t| t.parse::<Timestamp>().ok()).map(SystemTime::from),
                key: c.key,
            })
            .collect();
        Ok(Page { objects, more: parsed.next_continuation_token.is_some_and(|t| !t.is_empty()) })
    }

    /// Every key under `prefix` (`ListObjectsV2`, following continuation tokens), in the
    /// store's order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(self.list_sized(prefix, None).await?.into_iter().map(|(k, _)| k).collect())
    }

    /// Every key under `prefix` with its size, in the store's order, asking for pages of at most
    /// `page` keys (the store's default, 1,000, without) and following continuation tokens.
    pub async fn list_sized(&self, prefix: &str, page: Option<usize>) -> Result<Vec<(String, u64)>, StorageError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let creds = self.creds();
            let mut action = self.bucket.list_objects_v2(Some(&creds));
            action.with_prefix(prefix);
            if let Some(n) = page {
                action.with_max_keys(n);
            }
            if let Some(t) = &token {
                action.with_continuation_token(t.as_str());
            }
            let url = action.sign(LIST_TTL);
            let resp = self.http().get(url).send().await.map_err(request_err)?;
            if !resp.status().is_success() {
                return Err(StorageError::Status { op: "LIST", status: resp.status() });
            }
            let text = resp
                .text()
                .await
                .map_err(|e| StorageError::Body { timeout: e.is_timeout(), message: e.without_url().to_string() })?;
            let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&text)
                .map_err(|e| StorageError::Invalid(e.to_string()))?;
            out.extend(parsed.contents.into_iter().map(|c| (c.key, c.size.unwrap_or(0))));
            match parsed.next_continuation_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example for browser POST uploads with SigV4: the signing key derivation
    /// and the policy signature are checked against it.
    #[test]
    fn aws_signing_key_example() {
        // From "Examples: Signature Calculations in AWS Signature Version 4" (IAM docs):
        // secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam.
        let k = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20120215");
        let k = hmac(&k, b"us-east-1");
        let k = hmac(&k, b"iam");
        let k = hmac(&k, b"aws4_request");
        assert_eq!(hex::encode(k), "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
    }

    #[test]
    fn aws_post_policy_example() {
        // S3 docs, "Example: Browser-Based Upload using HTTP POST (Using AWS Signature Version 4)":
        // the base64 policy below signed with the example secret on 20151229 in us-east-1.
        let policy = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
        let key = signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20151229", "us-east-1");
        assert_eq!(
            hex::encode(hmac(&key, policy.as_bytes())),
            "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"
        );
    }

    #[test]
    fn post_policy_pins_key_type_size_and_checksum() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let spec = ObjectSpec {
            key: "uploads/2023/11/14/x.jpg",
            content_type: "image/jpeg",
            length: None,
            max_bytes: 1000,
            sha256_b64: Some("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=".into()),
            disposition: None,
            no_overwrite: false,
        };
        let fields =
            sign_post_policy("bk", &Credentials::new("AK", "SK"), "garage", &spec, Duration::from_secs(900), &now);
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
        let policy: serde_json::Value = serde_json::from_slice(&B64.decode(get("policy")).unwrap()).unwrap();
        assert_eq!(policy["expiration"], "2023-11-14T22:28:20Z");
        let c = policy["conditions"].to_string();
        for want in [
            r#"["eq","$key","uploads/2023/11/14/x.jpg"]"#,
            r#"["eq","$Content-Type","image/jpeg"]"#,
            r#"["content-length-range",1,1000]"#,
            r#"{"x-amz-checksum-sha256":"n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="}"#,
            r#"{"x-amz-credential":"AK/20231114/garage/s3/aws4_request"}"#,
        ] {
            assert!(c.contains(want), "{want} missing from {c}");
        }
        assert_eq!(get("x-amz-date"), "20231114T221320Z");
        assert_eq!(fields.last().unwrap().0, "x-amz-signature");
    }
}
