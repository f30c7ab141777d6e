//! Helpers shared by the upload tests (embedded store, Garage, browser).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use imago::config::{List, RawConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::common::{self, TestServer};

pub const API_KEY: &str = "test-api-key-0123456789abcdef";
pub const API_KEY_2: &str = "second-api-key-0123456789abcdef";

/// A server with uploads enabled (two API keys, a generous rate limit) and `tweak` applied.
pub async fn start(files: &[&str], tweak: impl FnOnce(&mut RawConfig)) -> TestServer {
    common::start(files, |r| {
        r.api_keys = List::from_strs(&[API_KEY, API_KEY_2]);
        r.upload_rate_per_sec = 1000.0;
        r.upload_burst = 1000;
        r.upload_fsync = true;
        // Perceptual auto quality runs trial encodes: far too slow for full-size photos in a
        // debug build, and not what these tests are about.
        r.auto_quality = false;
        tweak(r);
    })
    .await
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// `POST /v1/uploads` with `key`; returns the status and JSON body.
pub async fn ticket_with(s: &TestServer, key: &str, body: Value) -> (u16, Value) {
    let r = s.client.post(format!("{}/v1/uploads", s.base)).bearer_auth(key).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn ticket(s: &TestServer, body: Value) -> (u16, Value) {
    ticket_with(s, API_KEY, body).await
}

/// Sends `body` as the ticket says (PUT with its headers, or a POST form with its fields, then
/// the file). `content_type` overrides the PUT header / form file part type.
pub async fn send(
    client: &reqwest::Client,
    t: &Value,
    body: Vec<u8>,
    content_type_override: Option<&str>,
) -> reqwest::Response {
    try_send(client, t, body, content_type_override).await.unwrap()
}

/// [`send`], with a transport error returned (a store that refuses a request may answer and
/// close before it has read the whole body: the client then sees a broken pipe).
pub async fn try_send(
    client: &reqwest::Client,
    t: &Value,
    body: Vec<u8>,
    content_type_override: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let url = t["url"].as_str().unwrap();
    match t["method"].as_str().unwrap() {
        "PUT" => {
            let mut r = client.put(url);
            for (k, v) in t["headers"].as_object().unwrap() {
                let v = v.as_str().unwrap();
                let v = if k.eq_ignore_ascii_case("content-type") { content_type_override.unwrap_or(v) } else { v };
                r = r.header(k.as_str(), v);
            }
            r.body(body).send().await
        }
        "POST" => {
            let fields: Vec<(String, String)> = t["fields"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let v = v.as_str().unwrap().to_string();
                    if k.eq_ignore_ascii_case("content-type") {
                        (k.clone(), content_type_override.map(str::to_string).unwrap_or(v))
                    } else {
                        (k.clone(), v)
                    }
                })
                .collect();
            try_post_form(client, url, &fields, &body).await
        }
        m => panic!("method {m}"),
    }
}

/// A `multipart/form-data` body: `fields` in order, then `file` (named photo.jpg).
pub fn multipart(fields: &[(String, String)], file: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("----imagotest{:016x}", rand::random::<u64>());
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    b.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(file);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

pub async fn post_form(
    client: &reqwest::Client,
    url: &str,
    fields: &[(String, String)],
    file: &[u8],
) -> reqwest::Response {
    try_post_form(client, url, fields, file).await.unwrap()
}

/// [`post_form`], with a transport error returned (see [`try_send`]).
pub async fn try_post_form(
    client: &reqwest::Client,
    url: &str,
    fields: &[(String, String)],
    file: &[u8],
) -> reqwest::Result<reqwest::Response> {
    let (ct, body) = multipart(fields, file);
    client.post(url).header("content-type", ct).body(body).send().await
}

/// Every file under `root` (relative paths, sorted), `.incoming/` included; not the lifecycle
/// records and the listing index under `.imago/` (a completed upload has index entries).
pub fn files(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p == root.join(".imago") {
                    continue;
                }
                if p.is_dir() {
                    walk(&p, root, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
    }
    let mut v = Vec::new();
    walk(root, root, &mut v);
    v.sort();
    v
}

pub fn incoming(root: &Path) -> Vec<String> {
    files(root).into_iter().filter(|f| f.starts_with(".incoming/")).collect()
}

/// Waits (up to 5 s) until `cond` holds.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Host and port of a URL.
pub fn host_port(url: &str) -> (String, String) {
    let u = url::Url::parse(url).unwrap();
    (u.host_str().unwrap().to_string(), format!("{}:{}", u.host_str().unwrap(), u.port_or_known_default().unwrap()))
}

/// Opens a raw HTTP/1.1 request: `method target` with `headers`, then sends `part` of the body
/// and returns the open stream (the caller cuts it off or reads the answer).
pub async fn raw_request(url: &str, method: &str, headers: &[(&str, String)], part: &[u8]) -> tokio::net::TcpStream {
    let u = url::Url::parse(url).unwrap();
    let (_, addr) = host_port(url);
    let target = match u.query() {
        Some(q) => format!("{}?{}", u.path(), q),
        None => u.path().to_string(),
    };
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(part).await.unwrap();
    tcp.flush().await.unwrap();
    tcp
}

/// Reads what the server answered on a raw stream (status line and body, up to 64 KiB or 5 s).
pub async fn raw_answer(tcp: &mut tokio::net::TcpStream) -> String {
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"}") {
                    break;
                }
            }
            Ok(Err(_)) => break,
            Err(_) => {
                if !got.is_empty() {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// S3 settings of the test Garage (from `scripts/garage.sh start`, via scripts/test.sh).
#[derive(Clone, Debug)]
pub struct S3Env {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

impl S3Env {
    /// The settings, or `None` (with the reason printed) when they are not set. Under
    /// `CI=true` a missing setting fails the test instead.
    pub fn get() -> Option<S3Env> {
        let var = |n: &str| std::env::var(format!("IMAGO_TEST_S3_{n}")).ok().filter(|v| !v.is_empty());
        match (var("ENDPOINT"), var("BUCKET"), var("ACCESS_KEY_ID"), var("SECRET_ACCESS_KEY")) {
            (Some(endpoint), Some(bucket), Some(access_key), Some(secret_key)) => Some(S3Env {
                endpoint,
                region: var("REGION").unwrap_or_else(|| "garage".into()),
                bucket,
                access_key,
                secret_key,
            }),
            _ => {
                let msg = "IMAGO_TEST_S3_* is not set: start Garage with `eval \"$(scripts/garage.sh start)\"` (scripts/test.sh does)";
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("{msg}");
                }
                eprintln!("SKIPPED: {msg}");
                None
            }
        }
    }

    /// Points a server's S3 settings at this store.
    pub fn apply(&self, r: &mut RawConfig) {
        r.s3_endpoint = Some(self.endpoint.clone());
        r.s3_region = self.region.clone();
        r.s3_bucket = Some(self.bucket.clone());
        r.s3_access_key_id = Some(self.access_key.clone());
        r.s3_secret_access_key = Some(self.secret_key.clone());
        r.s3_path_style = true;
    }

    fn bucket(&self) -> rusty_s3::Bucket {
        rusty_s3::Bucket::new(
            self.endpoint.parse().unwrap(),
            rusty_s3::UrlStyle::Path,
            self.bucket.clone(),
            self.region.clone(),
        )
        .unwrap()
    }

    fn creds(&self) -> rusty_s3::Credentials {
        rusty_s3::Credentials::new(self.access_key.clone(), self.secret_key.clone())
    }

    /// Keys in the bucket under `prefix`.
    pub async fn list(&self, prefix: &str) -> Vec<String> {
        use rusty_s3::S3Action;
        let (b, c) = (self.bucket(), self.creds());
        let mut keys = Vec::new();
        // Page through: a shared test bucket can hold more than one listing's 1,000 keys.
        let mut token: Option<String> = None;
        loop {
            let mut action = b.list_objects_v2(Some(&c));
            action.with_prefix(prefix);
            if let Some(t) = &token {
                action.with_continuation_token(t.as_str());
            }
            let text = reqwest::get(action.sign(Duration::from_secs(60))).await.unwrap().text().await.unwrap();
            let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&text).unwrap();
            keys.extend(parsed.contents.into_iter().map(|o| o.key));
            match parsed.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        keys.sort();
        keys
    }

    /// Stores an object directly (not through imago).
    pub async fn put(&self, key: &str, body: Vec<u8>) {
        use rusty_s3::S3Action;
        let url = self.bucket().put_object(Some(&self.creds()), key).sign(Duration::from_secs(60));
        let r = reqwest::Client::new().put(url).body(body).send().await.unwrap();
        assert!(r.status().is_success(), "PUT {key}: {}", r.status());
    }

    /// A PUT (signed headers `headers` included): its status and ETag.
    pub async fn put_with(&self, key: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, String) {
        use rusty_s3::S3Action;
        let b = self.bucket();
        let c = self.creds();
        let mut action = b.put_object(Some(&c), key);
        for (k, v) in headers {
            action.headers_mut().insert(k.to_ascii_lowercase(), v.to_string());
        }
        let mut r = reqwest::Client::new().put(action.sign(Duration::from_secs(60))).body(body);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let r = r.send().await.unwrap();
        let etag = r.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        (r.status().as_u16(), etag)
    }

    /// A GET with `If-Match: etag`: its status.
    pub async fn get_if_match(&self, key: &str, etag: &str) -> u16 {
        use rusty_s3::S3Action;
        let url = self.bucket().get_object(Some(&self.creds()), key).sign(Duration::from_secs(60));
        reqwest::Client::new().get(url).header("if-match", etag).send().await.unwrap().status().as_u16()
    }

    /// The bytes of an object.
    pub async fn object(&self, key: &str) -> Option<Vec<u8>> {
        use rusty_s3::S3Action;
        let b = self.bucket();
        let c = self.creds();
        let url = b.get_object(Some(&c), key).sign(Duration::from_secs(60));
        let r = reqwest::get(url).await.unwrap();
        if !r.status().is_success() {
            return None;
        }
        Some(r.bytes().await.unwrap().to_vec())
    }
}

/// PUT `body` to `url` in `chunk`-byte pieces with no Content-Length (chunked transfer encoding).
pub async fn put_chunked(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: &[u8],
    chunk: usize,
) -> reqwest::Response {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(chunk).map(|c| Ok(c.to_vec())).collect();
    client
        .put(url)
        .header("content-type", content_type)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap()
}

/// A unique key prefix for one test (so tests sharing the bucket never see each other).
pub fn unique_prefix(name: &str) -> String {
    format!("t{:08x}-{name}", rand::random::<u32>())
}

pub fn fixture_path(name: &str) -> PathBuf {
    common::fixture_path(name)
}
