//! Issue #18: events delivered to webhook URLs from a durable outbox, signed (SPEC §13).
//!
//! * the real binary is killed (SIGKILL) between committing `image.deleted` and delivering it;
//!   after a restart the event still arrives, once, signed;
//! * two outboxes over one store (two replicas) deliver each event exactly once;
//! * failures are retried with backoff, then given up into `dead/`.
//!
//! The receiver is a real HTTP server on loopback that checks every signature with the SDK's
//! `imago_signing::webhook::verify` and counts deliveries per event id (its idempotency key).

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common::*;
use imago::config::EventSettings;
use imago::events::{Outbox, Store};
use imago_signing::webhook;

const SECRET: &str = "whsec-test-0123456789abcdef";

#[derive(Default)]
struct Seen {
    /// Deliveries by event id: (type, attempt header, body).
    by_id: BTreeMap<String, Vec<(String, String, serde_json::Value)>>,
    /// Requests refused so far (the first `fail_first` are answered 500).
    requests: usize,
    bad_signatures: usize,
}

struct Receiver {
    seen: Arc<Mutex<Seen>>,
    url: String,
    handle: actix_web::dev::ServerHandle,
}

/// A webhook receiver on `port` that answers 500 to its first `fail_first` requests.
fn receiver(port: u16, fail_first: usize) -> Receiver {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let server = HttpServer::new(move || {
        let s = s.clone();
        App::new().route(
            "/hook",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let s = s.clone();
                async move {
                    let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                    let mut g = s.lock().unwrap();
                    g.requests += 1;
                    if webhook::verify(&h("imago-signature"), &body, &[SECRET], 300, now as i64).is_err() {
                        g.bad_signatures += 1;
                        return HttpResponse::BadRequest().finish();
                    }
                    if g.requests <= fail_first {
                        return HttpResponse::InternalServerError().finish();
                    }
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(v["id"], h("imago-event-id"));
                    g.by_id.entry(h("imago-event-id")).or_default().push((
                        h("imago-event-type"),
                        h("imago-delivery-attempt"),
                        v,
                    ));
                    HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Receiver { seen, url: format!("http://127.0.0.1:{port}/hook"), handle }
}

async fn wait_until(mut f: impl FnMut() -> bool, secs: u64) -> bool {
    for _ in 0..secs * 20 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

fn pending(root: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(root.join(".outbox/pending")) {
        Ok(d) => {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.')).collect()
        }
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_deleted_survives_a_kill_between_commit_and_delivery() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("images");
    std::fs::create_dir_all(root.join("uploads")).unwrap();
    std::fs::write(root.join("uploads/cat.jpg"), fixture("gps.jpg")).unwrap();
    let hook_port = free_port();
    let api_key = "webhook-api-key-0123456789";
    let imago = |port: u16| {
        Proc(
            Command::new(env!("CARGO_BIN_EXE_imago"))
                .arg("serve")
                .env("IMAGO_BIND", format!("127.0.0.1:{port}"))
                .env("IMAGO_KEY", KEY)
                .env("IMAGO_SALT", SALT)
                .env("IMAGO_API_KEYS", api_key)
                .env("IMAGO_LOCAL_ROOT", &root)
                .env("IMAGO_ANALYTICS", "false")
                .env("IMAGO_WEBHOOK_URLS", format!("http://127.0.0.1:{hook_port}/hook"))
                .env("IMAGO_WEBHOOK_SECRETS", SECRET)
                .env("IMAGO_WEBHOOK_TIMEOUT_MS", "300")
                .env("IMAGO_WEBHOOK_BACKOFF_MS", "100")
                .env("IMAGO_WEBHOOK_POLL_MS", "50")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let port = free_port();
    let mut first = imago(port);
    let base = format!("http://127.0.0.1:{port}");
    let c = reqwest::Client::new();
    assert!(wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), 20).await, "imago did not start");
    let r = c.delete(format!("{base}/v1/images/uploads/cat.jpg")).bearer_auth(api_key).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // Committed before the 204: the receiver is down, so it stays pending.
    let files = pending(&root);
    assert_eq!(files.len(), 1, "{files:?}");
    // Give the outbox time to fail at least once against the closed port (an attempt waits for
    // the part of its lease slot where it fits: at most timeout + 1 s), then kill it.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    assert_eq!(pending(&root), files, "the event must outlive the process");

    let rx = receiver(hook_port, 0);
    let port = free_port();
    let _second = imago(port);
    let seen = rx.seen.clone();
    let t = std::time::Instant::now();
    assert!(wait_until(|| !seen.lock().unwrap().by_id.is_empty(), 30).await, "the event never arrived after a restart");
    println!("delivered {:?} after the restart", t.elapsed());
    // Nothing more arrives, and the outbox is empty.
    assert!(wait_until(|| pending(&root).is_empty(), 10).await, "{:?}", pending(&root));
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let g = seen.lock().unwrap();
        assert_eq!(g.bad_signatures, 0);
        assert_eq!(g.by_id.len(), 1);
        let (id, got) = g.by_id.iter().next().unwrap();
        assert_eq!(got.len(), 1, "delivered {} times", got.len());
        let (kind, attempt, body) = &got[0];
        assert!(id.starts_with("evt_"), "{id}");
        assert_eq!(kind, "image.deleted");
        assert!(attempt.parse::<u32>().unwrap() >= 2, "the first process never tried: attempt {attempt}");
        assert_eq!(body["type"], "image.deleted");
        assert_eq!(body["data"]["key"], "uploads/cat.jpg");
        assert_eq!(body["data"]["tenant"], "default");
        assert_eq!(body["data"]["source"], "local:///uploads/cat.jpg");
    }
    rx.handle.stop(false).await;
}

fn settings(url: &str, max_attempts: u32) -> EventSettings {
    EventSettings {
        urls: vec![url.parse().unwrap()],
        secrets: vec![SECRET.into()],
        timeout: Duration::from_millis(500),
        max_attempts,
        backoff: Duration::from_millis(50),
        poll: Duration::from_millis(20),
        ..EventSettings::default()
    }
}

/// Two replicas over one outbox: each of 20 events reaches the receiver exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_deliver_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let rx = receiver(free_port(), 0);
    let store = Store::Local(dir.path().join(".outbox"));
    let a = Arc::new(Outbox::new(store.clone(), settings(&rx.url, 5)).unwrap());
    let b = Arc::new(Outbox::new(store, settings(&rx.url, 5)).unwrap());
    for i in 0..20 {
        let body = format!(r#"{{"id":"evt_{i}","type":"image.deleted","data":{{}}}}"#);
        a.enqueue(&format!("evt_{i}"), "image.deleted", body.into_bytes()).await.unwrap();
    }
    two_outboxes_drain(a, b, &rx, 20).await;
}

/// A receiver failing twice gets the event on the third attempt; one that never recovers makes
/// the outbox give up after IMAGO_WEBHOOK_MAX_ATTEMPTS and keep the event in `dead/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_backoff_then_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let rx = receiver(free_port(), 2);
    let metrics = imago::metrics::Metrics::new();
    let o = Outbox::new(Store::Local(dir.path().to_path_buf()), settings(&rx.url, 5))
        .unwrap()
        .with_counter(metrics.webhook_deliveries.clone());
    o.enqueue("evt_retry", "upload.completed", br#"{"id":"evt_retry"}"#.to_vec()).await.unwrap();
    let t = std::time::Instant::now();
    while !o.pending().await.unwrap().is_empty() && t.elapsed() < Duration::from_secs(20) {
        o.run_once().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    {
        let g = rx.seen.lock().unwrap();
        assert_eq!(g.requests, 3);
        assert_eq!(g.by_id["evt_retry"].len(), 1);
        assert_eq!(g.by_id["evt_retry"][0].1, "3");
    }
    let count = |r: &str| metrics.webhook_deliveries.with_label_values(&[r]).get();
    assert_eq!((count("failed"), count("delivered"), count("dead")), (2, 1, 0));
    // Backoff: 50 ms then 100 ms between the attempts.
    assert!(t.elapsed() >= Duration::from_millis(150), "{:?}", t.elapsed());

    let dead_dir = tempfile::tempdir().unwrap();
    let down = format!("http://127.0.0.1:{}/hook", free_port());
    let o = Outbox::new(Store::Local(dead_dir.path().to_path_buf()), settings(&down, 2)).unwrap();
    o.enqueue("evt_dead", "upload.rejected", br#"{"id":"evt_dead"}"#.to_vec()).await.unwrap();
    let t = std::time::Instant::now();
    while !o.pending().await.unwrap().is_empty() && t.elapsed() < Duration::from_secs(20) {
        o.run_once().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dead: Vec<_> = std::fs::read_dir(dead_dir.path().join("dead")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dead.len(), 1);
    let d: serde_json::Value = serde_json::from_slice(&std::fs::read(&dead[0]).unwrap()).unwrap();
    assert_eq!((d["id"].as_str(), d["attempts"].as_u64()), (Some("evt_dead"), Some(2)));
    assert!(d["last_error"].as_str().is_some_and(|e| !e.is_empty()));
    rx.handle.stop(false).await;
}

/// S3 mode: the outbox lives in the object store (Garage) under `.imago/outbox/`; a lease is a
/// conditional create (`If-None-Match: *` where the store honours it, else a verified
/// read-back), and two replicas over the bucket deliver each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_outbox_claims_with_conditional_writes() {
    let gdir = tempfile::tempdir().unwrap();
    let Some(garage) = Garage::start(gdir.path()) else {
        assert!(std::env::var("CI").is_err(), "garage is required in CI (scripts/deps.sh test installs it)");
        eprintln!("SKIP: garage not available");
        return;
    };
    let env = &garage.env;
    let cfg = imago::config::S3Config {
        endpoint: env["IMAGO_TEST_S3_ENDPOINT"].parse().unwrap(),
        region: "garage".into(),
        bucket: Some(env["IMAGO_TEST_S3_BUCKET"].clone()),
        allowed_buckets: vec![env["IMAGO_TEST_S3_BUCKET"].clone()],
        credentials: imago::config::S3Credentials::Static {
            access_key_id: env["IMAGO_TEST_S3_ACCESS_KEY_ID"].clone(),
            secret_access_key: env["IMAGO_TEST_S3_SECRET_ACCESS_KEY"].clone(),
        },
        path_style: true,
    };
    let client = imago::storage::S3Client::new(&cfg, Duration::from_secs(5)).unwrap();
    let bucket = client.bucket(&env["IMAGO_TEST_S3_BUCKET"]).unwrap();
    // Garage 2.x ignores If-None-Match on PUT: the outbox then verifies its leases by read-back.
    let first = bucket.put_new("probe/lease", "text/plain", b"a".to_vec()).await.unwrap();
    let second = bucket.put_new("probe/lease", "text/plain", b"b".to_vec()).await.unwrap();
    println!("If-None-Match honoured by this store: {}", first && !second);

    let rx = receiver(free_port(), 0);
    let a = Arc::new(Outbox::new(Store::s3(bucket.clone()), settings(&rx.url, 5)).unwrap());
    let b = Arc::new(Outbox::new(Store::s3(bucket.clone()), settings(&rx.url, 5)).unwrap());
    for i in 0..10 {
        let body = format!(r#"{{"id":"evt_s3_{i}","type":"image.deleted","data":{{}}}}"#);
        a.enqueue(&format!("evt_s3_{i}"), "image.deleted", body.into_bytes()).await.unwrap();
    }
    assert_eq!(bucket.list(".imago/outbox/pending/").await.unwrap().len(), 10);
    two_outboxes_drain(a, b, &rx, 10).await;
}

/// Runs outboxes `a` and `b` (one store) concurrently until nothing is pending: the receiver saw
/// `n` events, each exactly once.
async fn two_outboxes_drain(a: Arc<Outbox>, b: Arc<Outbox>, rx: &Receiver, n: usize) {
    let run = |o: Arc<Outbox>| {
        tokio::spawn(async move {
            for _ in 0..1000 {
                o.run_once().await;
                if o.pending().await.unwrap().is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let (ta, tb) = (run(a.clone()), run(b.clone()));
    ta.await.unwrap();
    tb.await.unwrap();
    assert!(a.pending().await.unwrap().is_empty());
    let g = rx.seen.lock().unwrap();
    assert_eq!(g.by_id.len(), n);
    let twice: Vec<_> = g.by_id.iter().filter(|(_, v)| v.len() != 1).map(|(k, v)| (k.clone(), v.len())).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
}
