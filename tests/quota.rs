//! Upload quotas across replicas (issue #17), with real parts only: the real binary (three
//! replicas), Debian's `redis-server` (or `valkey-server`) on a free loopback port as the shared
//! quota store, and Varnish with the shipped `docker/varnish/lb.vcl` as the load balancer.
//!
//! * three replicas sharing the store admit the configured fleet rate (rate × seconds + burst,
//!   ±10 %); the same fleet counting in memory admits about three times that;
//! * the store stopped: each `IMAGO_QUOTA_ON_STORE_ERROR` does what it says (`closed` → 503
//!   `quota-unavailable`, `local` → per-replica limits and a metric, `open` → admitted), and the
//!   store started again is used again;
//! * bytes per day hold across replicas (`429 quota-exceeded`, `Retry-After` until UTC midnight),
//!   and an embedded upload gives back what its ticket declared beyond the bytes it stored;
//! * the keys of one tenant share its quota, a bare key has its own, and tickets carry
//!   `RateLimit-*` headers.
//!
//! Without `redis-server`/`valkey-server` or `varnishd` the tests that need them skip with a
//! loud message; under `CI=true` they fail (`scripts/deps.sh test` installs both).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const ACME_1: &str = "acme-key-one-0123456789abcdef";
const ACME_2: &str = "acme-key-two-0123456789abcdef";
const BARE: &str = "bare-key-0123456789abcdef";

fn find(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

/// `redis-server` or `valkey-server`, or a loud skip (a failure under `CI=true`).
fn store_binary() -> Option<PathBuf> {
    let found = find(&["/usr/bin/valkey-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server"]);
    if found.is_none() {
        assert!(std::env::var("CI").is_err(), "redis-server or valkey-server is required in CI (scripts/deps.sh test)");
        eprintln!(
            "SKIP: neither valkey-server nor redis-server is installed (scripts/deps.sh test installs redis-server)"
        );
    }
    found
}

/// The store on 127.0.0.1:`port`, nothing persisted.
async fn start_store(bin: &Path, port: u16, dir: &Path) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let p = Proc(
        Command::new(bin)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the quota store did not start on port {port}");
}

/// One imago replica (the real binary) on 127.0.0.1:`port` with uploads on (two keys of tenant
/// `acme`, one bare key) and `env` on top.
fn replica(port: u16, root: &Path, env: &[(&str, String)]) -> Proc {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imago"));
    c.arg("serve")
        .env("IMAGO_BIND", format!("127.0.0.1:{port}"))
        .env("IMAGO_KEY", KEY)
        .env("IMAGO_SALT", SALT)
        .env("IMAGO_LOCAL_ROOT", root)
        .env("IMAGO_API_KEYS", format!("acme:{ACME_1},acme:{ACME_2},{BARE}"))
        .env("IMAGO_ANALYTICS", "false")
        .env("IMAGO_PUBLIC_METRICS", "true")
        .env("IMAGO_WORKERS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    Proc(c.spawn().unwrap())
}

async fn replicas(n: usize, root: &Path, env: &[(&str, String)]) -> (Vec<Proc>, Vec<String>) {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let procs = ports.iter().map(|p| replica(*p, root, env)).collect();
    let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    for b in &bases {
        assert!(wait_ok(&format!("{b}/healthz")).await, "replica {b} did not start");
    }
    (procs, bases)
}

async fn ticket(c: &reqwest::Client, url: &str, key: &str, body: Value) -> reqwest::Response {
    c.post(url).bearer_auth(key).json(&body).send().await.unwrap()
}

async fn code(r: reqwest::Response) -> (u16, String) {
    let s = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (s, v["code"].as_str().unwrap_or("").to_string())
}

/// A metric's value summed over its series on one replica.
async fn metric(base: &str, name: &str, label: &str) -> f64 {
    let m = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    m.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

const RATE: f64 = 20.0;
const BURST: u64 = 10;
const SECS: f64 = 6.0;

/// Fires tickets of tenant `acme` at the edge for [`SECS`] from four lanes (each request with its
/// own query string, so the shard director spreads them over the replicas as a round-robin
/// Service would); (admitted, refused, seconds from the first to the last request).
async fn fire(edge: &str) -> (u64, u64, f64) {
    let client = reqwest::Client::new();
    let (ok, refused, n) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let start = Instant::now();
    let mut lanes = Vec::new();
    for lane in 0..4 {
        let (c, e, ok, refused, n) = (client.clone(), edge.to_string(), ok.clone(), refused.clone(), n.clone());
        lanes.push(tokio::spawn(async move {
            while start.elapsed().as_secs_f64() < SECS {
                let i = n.fetch_add(1, Ordering::Relaxed);
                let key = if i % 2 == 0 { ACME_1 } else { ACME_2 };
                let url = format!("{e}/v1/uploads?lane={lane}&n={i}");
                let r = ticket(&c, &url, key, json!({"content_type": "image/jpeg", "content_length": 1000})).await;
                match r.status().as_u16() {
                    201 => ok.fetch_add(1, Ordering::Relaxed),
                    429 => refused.fetch_add(1, Ordering::Relaxed),
                    s => panic!("ticket answered {s}: {}", r.text().await.unwrap_or_default()),
                };
            }
            start.elapsed().as_secs_f64()
        }));
    }
    let mut end: f64 = 0.0;
    for l in lanes {
        end = end.max(l.await.unwrap());
    }
    (ok.load(Ordering::Relaxed), refused.load(Ordering::Relaxed), end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_varnish_admit_the_fleet_rate_with_a_shared_store() {
    let Some(store_bin) = store_binary() else { return };
    let Some(varnishd) = find(&["/usr/sbin/varnishd", "/usr/bin/varnishd"]) else {
        assert!(std::env::var("CI").is_err(), "varnishd is required in CI (scripts/deps.sh test installs it)");
        eprintln!("SKIP: varnishd is not installed");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    let store_port = free_port();
    let _store = start_store(&store_bin, store_port, &tmp.path().join("store")).await;
    let shipped = std::fs::read_to_string(fixture_path("../../docker/varnish/lb.vcl")).unwrap();
    let mut results = Vec::new();
    for (arm, store) in [("shared", format!("redis://127.0.0.1:{store_port}/")), ("memory", "memory".to_string())] {
        let env = [
            ("IMAGO_UPLOAD_RATE_PER_SEC", RATE.to_string()),
            ("IMAGO_UPLOAD_BURST", BURST.to_string()),
            ("IMAGO_QUOTA_STORE", store),
        ];
        let (_procs, bases) = replicas(3, &root, &env).await;
        let ports: Vec<&str> = bases.iter().map(|b| b.rsplit(':').next().unwrap()).collect();
        let vcl = shipped
            .replace("\"18081\"", &format!("\"{}\"", ports[0]))
            .replace("\"18082\"", &format!("\"{}\"", ports[1]))
            .replace("\"18083\"", &format!("\"{}\"", ports[2]));
        let dir = tmp.path().join(arm);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("lb.vcl"), vcl).unwrap();
        let edge_port = free_port();
        let _edge = Proc(
            Command::new(&varnishd)
                .args(["-F", "-a", &format!("127.0.0.1:{edge_port}"), "-f"])
                .arg(dir.join("lb.vcl"))
                .arg("-n")
                .arg(dir.join("work"))
                .args(["-s", "malloc,16m"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let edge = format!("http://127.0.0.1:{edge_port}");
        assert!(wait_ok(&format!("{edge}/healthz")).await, "varnish did not start");
        // Let the probes see all three healthy.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (ok, refused, secs) = fire(&edge).await;
        let mut per_replica = Vec::new();
        for b in &bases {
            per_replica.push(metric(b, "imago_upload_tickets_total", "").await as u64);
        }
        let expected = RATE * secs + BURST as f64;
        eprintln!(
            "{arm}: {ok} tickets admitted, {refused} refused in {secs:.2} s (rate × s + burst = {expected:.0}); \
             admitted per replica {per_replica:?}"
        );
        assert!(per_replica.iter().all(|n| *n > 0), "{arm}: the edge did not spread tickets: {per_replica:?}");
        assert!(refused > ok, "{arm}: the client did not fire faster than the fleet admits ({ok} / {refused})");
        results.push((arm, ok as f64 / expected));
    }
    let (shared, memory) = (results[0].1, results[1].1);
    eprintln!("admitted / (rate × s + burst): shared store {shared:.3}, memory {memory:.3}");
    assert!((0.9..=1.1).contains(&shared), "with a shared store the fleet admitted {shared:.3}× the configured rate");
    assert!(memory > 2.5, "counting in memory, three replicas admitted only {memory:.3}× the configured rate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_store_does_what_imago_quota_on_store_error_says() {
    let Some(store_bin) = store_binary() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    let port = free_port();
    let store_dir = tmp.path().join("store");
    let store = start_store(&store_bin, port, &store_dir).await;
    let url = format!("redis://127.0.0.1:{port}/");
    let env = |mode: &str| {
        vec![
            ("IMAGO_UPLOAD_RATE_PER_SEC", "0.1".to_string()),
            ("IMAGO_UPLOAD_BURST", "3".to_string()),
            ("IMAGO_QUOTA_STORE", url.clone()),
            ("IMAGO_QUOTA_TIMEOUT_MS", "200".to_string()),
            ("IMAGO_QUOTA_ON_STORE_ERROR", mode.to_string()),
        ]
    };
    let (_c, closed) = replicas(1, &root, &env("closed")).await;
    let (_l, local) = replicas(1, &root, &env("local")).await;
    let (_o, open) = replicas(1, &root, &env("open")).await;
    let (closed, local, open) = (&closed[0], &local[0], &open[0]);
    let c = reqwest::Client::new();
    let body = || json!({"content_type": "image/png", "content_length": 100});
    // With the store up, the three replicas share tenant acme's burst of 3.
    let mut statuses = Vec::new();
    for b in [closed, local, open, closed] {
        statuses.push(ticket(&c, &format!("{b}/v1/uploads"), ACME_1, body()).await.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 201, 429], "store up: one burst for the fleet");

    drop(store);
    // closed: 503 quota-unavailable, Retry-After: 1, within the timeout.
    let t0 = Instant::now();
    let r = ticket(&c, &format!("{closed}/v1/uploads"), BARE, body()).await;
    let waited = t0.elapsed();
    assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(code(r).await, (503, "quota-unavailable".to_string()));
    assert!(waited < Duration::from_secs(2), "the refusal took {waited:?}");
    // local: this replica's own bucket (burst 3 again), then 429: limited, never unlimited.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(ticket(&c, &format!("{local}/v1/uploads"), ACME_1, body()).await.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 201, 429], "store down, local: per-replica limits");
    assert!(metric(local, "imago_quota_store_errors_total", "action=\"local\"").await >= 4.0);
    // open: admitted uncounted.
    for _ in 0..5 {
        assert_eq!(ticket(&c, &format!("{open}/v1/uploads"), ACME_1, body()).await.status(), 201);
    }
    assert!(metric(open, "imago_quota_store_errors_total", "action=\"open\"").await >= 5.0);
    assert!(metric(closed, "imago_quota_store_errors_total", "action=\"closed\"").await >= 1.0);

    // The store back (empty, on the same port): the closed replica reconnects and counts there.
    let _store = start_store(&store_bin, port, &store_dir).await;
    let mut back = false;
    for _ in 0..40 {
        if ticket(&c, &format!("{closed}/v1/uploads"), BARE, body()).await.status() == 201 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(back, "the closed replica did not use the store again after it came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_per_day_hold_across_replicas_and_unused_declared_bytes_come_back() {
    let Some(store_bin) = store_binary() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    let port = free_port();
    let _store = start_store(&store_bin, port, &tmp.path().join("store")).await;
    let env = [
        ("IMAGO_QUOTA_STORE", format!("redis://127.0.0.1:{port}/")),
        ("IMAGO_UPLOAD_MAX_BYTES", "200000".to_string()),
        ("IMAGO_QUOTA_BYTES_PER_DAY", "300000".to_string()),
    ];
    let (_p, bases) = replicas(2, &root, &env).await;
    let c = reqwest::Client::new();
    // A ticket without content_length declares the largest upload (200000 bytes).
    let r = ticket(&c, &format!("{}/v1/uploads", bases[0]), ACME_1, json!({"content_type": "image/jpeg"})).await;
    assert_eq!(r.status(), 201);
    let t: Value = r.json().await.unwrap();
    // 200000 + 200000 > 300000 on the other replica, with the tenant's other key.
    let r = ticket(&c, &format!("{}/v1/uploads", bases[1]), ACME_2, json!({"content_type": "image/jpeg"})).await;
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "Retry-After {retry}");
    assert_eq!(code(r).await, (429, "quota-exceeded".to_string()));
    // A bare key is its own subject.
    let r = ticket(&c, &format!("{}/v1/uploads", bases[1]), BARE, json!({"content_type": "image/jpeg"})).await;
    assert_eq!(r.status(), 201);
    // The first ticket's upload stores 22054 bytes: the other 177946 come back, once.
    let photo = fixture("copyright.jpg");
    let put = c.put(t["url"].as_str().unwrap()).header("content-type", "image/jpeg").body(photo.clone());
    assert_eq!(put.send().await.unwrap().status(), 201);
    let again = c.put(t["url"].as_str().unwrap()).header("content-type", "image/jpeg").body(photo);
    assert_eq!(again.send().await.unwrap().status(), 200, "same bytes again: no new object, no second refund");
    let r = ticket(&c, &format!("{}/v1/uploads", bases[1]), ACME_2, json!({"content_type": "image/jpeg"})).await;
    assert_eq!(r.status(), 201, "the refund made room for a second 200000-byte ticket");
    // 22054 + 200000 used; 100000 more does not fit.
    let body = json!({"content_type": "image/jpeg", "content_length": 100_000});
    assert_eq!(code(ticket(&c, &format!("{}/v1/uploads", bases[0]), ACME_1, body).await).await.0, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_keys_share_its_quota_and_tickets_tell_the_bucket_state() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    let env = [
        ("IMAGO_UPLOAD_RATE_PER_SEC", "0.1".to_string()),
        ("IMAGO_UPLOAD_BURST", "2".to_string()),
        ("IMAGO_QUOTA_UPLOADS_PER_DAY", "100".to_string()),
    ];
    let (_p, bases) = replicas(1, &root, &env).await;
    let url = format!("{}/v1/uploads", bases[0]);
    let c = reqwest::Client::new();
    let body = || json!({"content_type": "image/png", "content_length": 10});
    let r = ticket(&c, &url, ACME_1, body()).await;
    assert_eq!(r.status(), 201);
    let h = |r: &reqwest::Response, n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(
        (h(&r, "ratelimit-limit"), h(&r, "ratelimit-remaining"), h(&r, "ratelimit-policy")),
        (Some("2".into()), Some("1".into()), Some("2;w=20".into()))
    );
    assert_eq!(ticket(&c, &url, ACME_2, body()).await.status(), 201);
    // acme's two keys rotate together: one bucket.
    let r = ticket(&c, &url, ACME_1, body()).await;
    assert_eq!(h(&r, "ratelimit-remaining").as_deref(), Some("0"));
    let retry: u64 = h(&r, "retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    assert_eq!(code(r).await, (429, "rate-limited".to_string()));
    assert_eq!(code(ticket(&c, &url, ACME_2, body()).await).await.0, 429);
    // The bare key has its own.
    assert_eq!(ticket(&c, &url, BARE, body()).await.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_per_day_and_per_tenant_overrides() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    let env = [
        ("IMAGO_QUOTA_UPLOADS_PER_DAY", "2".to_string()),
        ("IMAGO_QUOTA_TENANTS", "acme:uploads=3;rate=100;burst=100".to_string()),
    ];
    let (_p, bases) = replicas(1, &root, &env).await;
    let url = format!("{}/v1/uploads", bases[0]);
    let c = reqwest::Client::new();
    let body = || json!({"content_type": "image/png", "content_length": 10});
    let mut acme = Vec::new();
    for _ in 0..4 {
        acme.push(code(ticket(&c, &url, ACME_1, body()).await).await.0);
    }
    assert_eq!(acme, [201, 201, 201, 429], "acme's override: 3 uploads a day");
    let mut bare = Vec::new();
    for _ in 0..3 {
        bare.push(code(ticket(&c, &url, BARE, body()).await).await);
    }
    assert_eq!(bare.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [201, 201, 429], "the default: 2 a day");
    assert_eq!(bare[2].1, "quota-exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_store_is_shared_too() {
    let Some(store_bin) = store_binary() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    std::fs::create_dir_all(&dir).unwrap();
    // A self-signed certificate (openssl, as Debian's redis-server is built with TLS); the URL's
    // `#insecure` skips its verification (a test-only setting: imago checks against the web PKI).
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-keyout", "k.pem", "-out", "c.pem"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        assert!(std::env::var("CI").is_err(), "openssl is required in CI");
        eprintln!("SKIP: openssl could not make a certificate");
        return;
    }
    let port = free_port();
    let _store = Proc(
        Command::new(&store_bin)
            .args(["--bind", "127.0.0.1", "--port", "0", "--tls-port", &port.to_string(), "--save", ""])
            .args(["--tls-cert-file", "c.pem", "--tls-key-file", "k.pem", "--tls-auth-clients", "no"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "redis-server with TLS did not start");
    let root = tmp.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    let env = [
        ("IMAGO_QUOTA_STORE", format!("rediss://127.0.0.1:{port}/#insecure")),
        ("IMAGO_QUOTA_ON_STORE_ERROR", "closed".to_string()),
        ("IMAGO_UPLOAD_RATE_PER_SEC", "0.1".to_string()),
        ("IMAGO_UPLOAD_BURST", "2".to_string()),
    ];
    let (_p, bases) = replicas(2, &root, &env).await;
    let c = reqwest::Client::new();
    let mut statuses = Vec::new();
    for b in [&bases[0], &bases[1], &bases[0]] {
        let body = json!({"content_type": "image/png", "content_length": 10});
        statuses.push(ticket(&c, &format!("{b}/v1/uploads"), ACME_1, body).await.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 429], "over TLS (closed on store errors): one burst for both replicas");
}
