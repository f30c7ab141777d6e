//! Crash safety of embedded uploads (issue 7): the real `imago serve` process is killed with
//! SIGKILL in the middle of an upload and restarted on the same data directory. Nothing partial
//! may ever be visible at the upload's key, completed uploads must be intact byte for byte, the
//! temp file the crash left in `.incoming/` must be swept, and the key must be uploadable again.

mod common;
mod uploads_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{decode, fixture, KEY, SALT};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use uploads_common::{files, incoming, raw_request, API_KEY};

/// The body timeout of every server here: it bounds how long a crash's temp file may stay in
/// `.incoming/` (swept when older than this, at start and every this often).
const BODY_TIMEOUT_SECS: u64 = 5;

/// `imago serve` as a child process on a data directory that outlives it.
struct Imago {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Imago {
    /// Starts the binary on a fresh port with the embedded store at `{data}/images`.
    async fn start(data: &Path) -> Imago {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = data.join(format!("imago-{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_imago"))
            .arg("serve")
            .env("IMAGO_BIND", format!("127.0.0.1:{port}"))
            .env("IMAGO_KEY", KEY)
            .env("IMAGO_SALT", SALT)
            .env("IMAGO_LOCAL_ROOT", data.join("images"))
            .env("IMAGO_DEV_KEYS_FILE", data.join("dev-keys.toml"))
            .env("IMAGO_ANALYTICS_DIR", data.join("analytics"))
            .env("IMAGO_API_KEYS", API_KEY)
            .env("IMAGO_UPLOAD_FSYNC", "true")
            .env("IMAGO_UPLOAD_RATE_PER_SEC", "0")
            .env("IMAGO_UPLOAD_BODY_TIMEOUT_SECS", BODY_TIMEOUT_SECS.to_string())
            .env("IMAGO_WORKERS", "2")
            .env("IMAGO_AUTO_QUALITY", "false")
            .env("IMAGO_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env_remove("IMAGO_CONFIG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Imago { child, base: format!("http://127.0.0.1:{port}"), log };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", s.base)).send().await {
                if r.status() == 200 {
                    return s;
                }
            }
            if let Some(st) = s.child.try_wait().unwrap() {
                panic!("imago exited ({st}) before answering:\n{}", s.log_text());
            }
            assert!(Instant::now() < deadline, "imago did not start:\n{}", s.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL (no signal handler, no drain, no destructor runs) and reap.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// `url` (a ticket's, possibly from an earlier process on another port) on this server.
    fn here(&self, url: &str) -> String {
        let u = url::Url::parse(url).unwrap();
        let mut out = format!("{}{}", self.base, u.path());
        if let Some(q) = u.query() {
            out.push('?');
            out.push_str(q);
        }
        out
    }

    async fn ticket(&self, content_length: usize) -> Value {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/uploads", self.base))
            .bearer_auth(API_KEY)
            .json(&json!({"content_type": "image/jpeg", "content_length": content_length}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    /// PUTs `body` as ticket `t` says; returns the status.
    async fn put(&self, t: &Value, body: &[u8]) -> u16 {
        reqwest::Client::new()
            .put(self.here(t["url"].as_str().unwrap()))
            .header("content-type", "image/jpeg")
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// `GET /v1/images/{key}/info`: status and JSON.
    async fn info(&self, key: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(format!("{}/v1/images/{key}/info", self.base))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A 400 px wide WebP variant of `local:///{key}`, decoded.
    async fn variant(&self, key: &str) -> image::RgbaImage {
        let signer = imago_signing::Signer::new(imago_signing::KeyPair::from_hex(KEY, SALT).unwrap());
        let path = imago_signing::UrlBuilder::new()
            .width(400)
            .extension("webp")
            .sign(&signer, &format!("local:///{key}"))
            .unwrap();
        let r = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        decode(&r.bytes().await.unwrap())
    }
}

/// Opens the ticket's PUT on a raw socket and sends `part` of `body` (announcing all of it).
async fn start_put(s: &Imago, t: &Value, body: &[u8], part: usize) -> tokio::net::TcpStream {
    let headers = [("Content-Type", "image/jpeg".to_string()), ("Content-Length", body.len().to_string())];
    raw_request(&s.here(t["url"].as_str().unwrap()), "PUT", &headers, &body[..part]).await
}

/// Waits (up to `secs`) until `cond` holds.
async fn within(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sizes of the temp files in `.incoming/`.
fn temp_sizes(root: &Path) -> Vec<u64> {
    incoming(root).iter().map(|f| std::fs::metadata(root.join(f)).map(|m| m.len()).unwrap_or(0)).collect()
}

fn jpeg_dimensions(b: &[u8]) -> (u32, u32) {
    image::load_from_memory(b).map(|i| (i.width(), i.height())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_leaves_no_partial_object_and_the_key_can_be_uploaded_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    let photo = fixture("phone12mp.jpg"); // 2.4 MB: streamed to a temp file (> 1 MiB)
    let earlier = fixture("orientation/Landscape_5.jpg");
    assert!(photo.len() > 2 * imago::upload::ingest::SPILL);

    let s = Imago::start(dir.path()).await;
    // A completed upload before the crash.
    let done = s.ticket(earlier.len()).await;
    assert_eq!(s.put(&done, &earlier).await, 201);
    let done_key = done["key"].as_str().unwrap().to_string();

    // The upload that the crash interrupts: 1.5 MB of 2.4 MB sent, the connection kept open.
    let t = s.ticket(photo.len()).await;
    let key = t["key"].as_str().unwrap().to_string();
    let mut tcp = start_put(&s, &t, &photo, photo.len() * 5 / 8).await;
    // The server has started writing the temp file (it spills after the first 1 MiB).
    within(10, "the temp file in .incoming/ holds the first MiB", || {
        temp_sizes(&root).iter().any(|&n| n >= imago::upload::ingest::SPILL as u64)
    })
    .await;
    assert!(!root.join(&key).exists());
    s.kill();
    let _ = tcp.shutdown().await;
    drop(tcp);

    // After the crash: nothing at the key; the partial bytes are only in `.incoming/`, which
    // reads cannot reach.
    assert!(!root.join(&key).exists(), "a partial object became visible");
    let left = incoming(&root);
    assert_eq!(left.len(), 1, "the crash left its temp file: {left:?}");
    assert!(std::fs::metadata(root.join(&left[0])).unwrap().len() < photo.len() as u64);
    assert_eq!(std::fs::read(root.join(&done_key)).unwrap(), earlier, "a completed upload changed");

    // Restart on the same directory at once (the usual crash-restart): the store is consistent.
    let s = Imago::start(dir.path()).await;
    assert_eq!(s.info(&key).await.0, 404, "the interrupted upload is not an image");
    let (status, info) = s.info(&done_key).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["bytes"], earlier.len());
    assert_eq!(std::fs::read(root.join(&done_key)).unwrap(), earlier, "a completed upload changed");
    let (w, h) = jpeg_dimensions(&earlier);
    assert_eq!((info["stored_width"].as_u64(), info["stored_height"].as_u64()), (Some(w.into()), Some(h.into())));
    // The crash's temp file is swept once it is older than the body timeout (the server keeps
    // sweeping while it runs, so a quick restart does not keep it forever).
    within(4 * BODY_TIMEOUT_SECS + 5, "the crash's temp file is swept", || incoming(&root).is_empty()).await;
    // The sweeper removes the file, then logs: wait for the line rather than race it.
    within(5, "the sweep is logged", || s.log_text().contains("removed stale upload temp files")).await;

    // The same ticket (still valid; its URL is re-pointed at the new port) uploads the photo.
    assert_eq!(s.put(&t, &photo).await, 201);
    assert_eq!(std::fs::read(root.join(&key)).unwrap(), photo);
    let (status, info) = s.info(&key).await;
    assert_eq!(status, 200, "{info}");
    let (w, h) = jpeg_dimensions(&photo);
    assert_eq!((info["stored_width"].as_u64(), info["stored_height"].as_u64()), (Some(w.into()), Some(h.into())));
    assert_eq!(info["bytes"], photo.len());
    // And the proxy serves it: the variant has the photo's (upright) aspect ratio.
    let (uw, uh) = (info["width"].as_u64().unwrap() as f64, info["height"].as_u64().unwrap() as f64);
    let v = s.variant(&key).await;
    assert_eq!(v.width(), 400);
    assert!((v.height() as f64 - 400.0 * uh / uw).abs() <= 1.0, "{}x{} from {uw}x{uh}", v.width(), v.height());
    let mut want = vec![done_key.clone(), key.clone()];
    want.sort();
    let stored: Vec<String> = files(&root).into_iter().filter(|f| !f.starts_with(".incoming/")).collect();
    assert_eq!(stored, want, "exactly the two uploads");
    s.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_right_after_the_last_byte_leaves_nothing_or_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    let photo = fixture("phone12mp.jpg");
    let small = fixture("orientation/Portrait_7.jpg"); // buffered in memory, written at the end
    assert!(small.len() < imago::upload::ingest::SPILL);
    let mut keys: Vec<(String, Value, &[u8])> = Vec::new();
    // Kill at several points after the body is complete: before the server has read it all,
    // while it writes/fsyncs the rest, around the rename, and after the answer.
    for (i, delay_ms) in [0u64, 1, 3, 6, 10, 20, 40, 80].into_iter().enumerate() {
        let body: &[u8] = if i % 3 == 2 { &small } else { &photo };
        let s = Imago::start(dir.path()).await;
        let t = s.ticket(body.len()).await;
        let key = t["key"].as_str().unwrap().to_string();
        let tcp = start_put(&s, &t, body, body.len()).await;
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        s.kill();
        drop(tcp);
        // Either nothing or every byte, whatever the moment of the kill.
        if let Ok(stored) = std::fs::read(root.join(&key)) {
            assert!(stored == body, "kill after {delay_ms} ms: {} of {} bytes visible", stored.len(), body.len());
        }
        keys.push((key, t, body));
    }

    // After a restart every key is either absent (404, uploadable again with its ticket) or the
    // complete, correct file.
    let s = Imago::start(dir.path()).await;
    let (mut complete, mut absent) = (0, 0);
    for (key, t, body) in &keys {
        match std::fs::read(root.join(key)) {
            Ok(stored) => {
                assert!(&stored == body, "{key}: {} of {} bytes", stored.len(), body.len());
                let (status, info) = s.info(key).await;
                assert_eq!(status, 200, "{info}");
                assert_eq!(info["bytes"], body.len());
                // A retry of the same bytes is recognised as already stored.
                assert_eq!(s.put(t, body).await, 200);
                complete += 1;
            }
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
                assert_eq!(s.info(key).await.0, 404);
                assert_eq!(s.put(t, body).await, 201);
                assert_eq!(&std::fs::read(root.join(key)).unwrap(), body);
                absent += 1;
            }
        }
        let (w, h) = jpeg_dimensions(body);
        let (_, info) = s.info(key).await;
        assert_eq!((info["stored_width"].as_u64(), info["stored_height"].as_u64()), (Some(w.into()), Some(h.into())));
    }
    eprintln!("kills right after the body: {complete} stored completely, {absent} not stored");
    within(4 * BODY_TIMEOUT_SECS + 5, "every temp file is swept", || incoming(&root).is_empty()).await;
    let stored: Vec<String> = files(&root).into_iter().filter(|f| !f.starts_with(".incoming/")).collect();
    assert_eq!(stored.len(), keys.len(), "{stored:?}");
    s.kill();
}
