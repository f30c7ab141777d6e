//! Durable request events: one per image request, written as gzip JSON lines in hour partitions,
//! read back by an independent reader (DuckDB), never lost on a graceful shutdown, dropped and
//! counted (never waited for) when the buffer is full; the report API and page; the CLI and the
//! SIGTERM path of the real binary; S3 mode against Garage.

mod analytics_support;
mod common;
mod uploads_common;

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use analytics_support::*;
use common::{start, TestServer};
use imago::config::List;
use serde_json::Value;

const IMG: &str = "gps.jpg";
const IMG2: &str = "adobergb.jpg";

fn quiet(c: &mut imago::RawConfig) {
    c.auto_quality = false;
    // Only explicit flushes (and shutdown) write: the tests decide when files appear.
    c.analytics_flush_secs = 3600;
    c.analytics_flush_events = 1_000_000;
}

async fn metrics_text(s: &TestServer) -> String {
    s.get(&format!("{}/metrics", s.base)).await.text().await.unwrap()
}

/// `GET /v1/analytics{query}` with the API key, as JSON.
async fn report(s: &TestServer, query: &str) -> Value {
    let r = s.client.get(format!("{}/v1/analytics{query}", s.base)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn by_id(events: &[Value]) -> HashMap<String, Value> {
    events.iter().map(|e| (e["request_id"].as_str().unwrap_or_default().to_string(), e.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_image_request_becomes_one_event_that_duckdb_reads_back() {
    let s = start(&[IMG, IMG2], quiet).await;
    let dir = s.state.cfg.raw.analytics_dir.clone();
    let u = s.url("w:100", &format!("local:///{IMG}"), None);
    let webp = ("accept", "image/webp,image/*");

    let r1 = s.get_with(&u, &[webp, ("x-request-id", "r1"), ("referer", "https://Shop.Example.com/p?q=1")]).await;
    assert_eq!(r1.status(), 200);
    assert_eq!(r1.headers()["x-request-id"], "r1");
    let etag = r1.headers()["etag"].to_str().unwrap().to_string();
    let b1 = r1.bytes().await.unwrap().len() as u64;
    let r2 = s.get_with(&u, &[webp, ("x-request-id", "r2")]).await;
    assert_eq!(r2.status(), 200);
    let r3 = s.get_with(&u, &[webp, ("x-request-id", "r3"), ("if-none-match", &etag)]).await;
    assert_eq!(r3.status(), 304);
    let r4 = s.get_with(&u, &[webp, ("x-request-id", "r4"), ("sec-ch-dpr", "2")]).await;
    assert_eq!(r4.status(), 200);
    let b4 = r4.bytes().await.unwrap().len() as u64;
    let png = s.url("w:100", &format!("local:///{IMG2}"), Some("png"));
    assert_eq!(s.get_with(&png, &[webp, ("x-request-id", "r5")]).await.status(), 200);
    let missing = s.url("w:100", "local:///nope.jpg", None);
    assert_eq!(s.get_with(&missing, &[("x-request-id", "r6")]).await.status(), 404);
    let forged = format!("{}/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/w:100/plain/local:///{IMG}", s.base);
    assert_eq!(s.get_with(&forged, &[("x-request-id", "r7")]).await.status(), 403);
    let head = s.client.head(&u).header("accept", "image/webp").header("x-request-id", "r8").send().await.unwrap();
    assert_eq!(head.status(), 200);
    let r9 = s.get_with(&u, &[webp, ("x-request-id", "r9"), ("save-data", "on")]).await;
    assert_eq!(r9.status(), 200);
    // Not image requests: no events.
    assert_eq!(s.get(&format!("{}/healthz", s.base)).await.status(), 200);
    assert_eq!(s.get(&format!("{}/metrics", s.base)).await.status(), 200);

    assert!(files(&dir).is_empty(), "nothing is written before a flush: {:?}", files(&dir));
    let f = s.state.analytics.flush().await;
    assert_eq!((f.events, f.failed), (9, 0), "{f:?}");
    let names = files(&dir);
    assert_eq!(names.len(), f.files, "{names:?}");
    for n in &names {
        assert!(n.starts_with("dt=") && n.contains("/hour=") && n.ends_with(".jsonl.zst"), "{n}");
        assert!(!n.contains(".tmp"), "no temp file left: {n}");
    }
    assert_eq!(sample(&metrics_text(&s).await, "imago_analytics_events_written_total"), 9.0);

    // Our own decoder first, then DuckDB's.
    let ours = by_id(&read_events(&dir));
    assert_eq!(ours.len(), 9, "{ours:?}");
    let e = &ours["r1"];
    assert_eq!(e["key"], IMG);
    assert_eq!(e["source"], "local");
    assert_eq!(e["status"], 200);
    assert_eq!(e["cache"], "miss");
    assert_eq!(e["format"], "webp");
    assert_eq!(e["source_format"], "jpeg");
    assert_eq!(e["negotiated"], true);
    assert_eq!(e["accept"], "webp");
    assert_eq!(e["width"], 100);
    assert_eq!(e["dpr"], 1.0);
    assert_eq!(e["device"], "dpr1/le320");
    assert_eq!(e["bytes"], b1);
    assert_eq!(e["source_bytes"], common::fixture(IMG).len() as u64);
    assert_eq!(e["referrer_host"], "shop.example.com");
    assert_eq!(e["variant"], "rs:fit/w:100/h:0/dpr:1/f:auto/q:default");
    assert!(e["fetch_ms"].as_f64().is_some() && e["encode_ms"].as_f64().is_some(), "{e}");
    assert!(e["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(ours["r2"]["cache"], "hit");
    assert!(ours["r2"]["fetch_ms"].is_null(), "no fetch on a hit");
    assert_eq!((ours["r3"]["status"].as_u64(), ours["r3"]["cache"].as_str()), (Some(304), Some("not_modified")));
    assert_eq!(ours["r3"]["bytes"], 0);
    assert_eq!(ours["r4"]["dpr"], 2.0);
    assert_eq!(ours["r4"]["target_width"], 200);
    assert_eq!(ours["r4"]["width"], 200);
    assert_eq!(ours["r4"]["device"], "dpr2/le320");
    assert_eq!(ours["r4"]["bytes"], b4);
    assert_eq!((ours["r5"]["format"].as_str(), ours["r5"]["negotiated"].as_bool()), (Some("png"), Some(false)));
    assert_eq!((ours["r6"]["status"].as_u64(), ours["r6"]["error"].as_str()), (Some(404), Some("source-not-found")));
    assert_eq!(ours["r6"]["key"], "nope.jpg");
    // Issue #15 item 8: a refused request is counted (per minute, status and code) without the
    // client's id, so its line has no `request_id` (it was `r7`).
    assert!(!ours.contains_key("r7"), "a refused request keeps no client-chosen id");
    let r7 = &ours[""];
    assert_eq!((r7["status"].as_u64(), r7["error"].as_str()), (Some(403), Some("invalid-signature")));
    assert!(r7["key"].is_null(), "an unsigned request names no image");
    assert_eq!(r7["requests"], 1, "{r7}");
    assert_eq!((ours["r8"]["method"].as_str(), ours["r8"]["bytes"].as_u64()), (Some("HEAD"), Some(0)));
    assert_eq!(ours["r9"]["save_data"], true);
    assert_eq!(ours["r9"]["device"], "dpr1/le320/save-data");

    let Some(py) = python() else { return };
    let dir_s = dir.to_str().unwrap();
    let rows = run_py(&py, "events.py", &[dir_s], "");
    let duck = by_id(rows.as_array().unwrap());
    assert_eq!(duck.len(), 9, "DuckDB read {rows}");
    for (id, e) in &ours {
        let d = &duck[id];
        for k in ["key", "status", "cache", "format", "bytes", "source_bytes", "device", "method", "error", "dpr"] {
            assert_eq!(d[k], e[k], "{id}.{k}: DuckDB {d} vs ours {e}");
        }
        // The timestamp parses as a TIMESTAMP and the hive partition columns match it.
        let ts = e["ts"].as_str().unwrap();
        assert_eq!(d["ts_text"].as_str().unwrap(), ts, "{id}");
        assert_eq!(d["dt"].as_str().unwrap(), &ts[..10]);
        assert_eq!(d["hour"].as_str().unwrap(), &ts[11..13]);
    }
    let sum = run_py(&py, "events.py", &[dir_s, "--summary"], "");
    assert_eq!(sum["requests"], 9);
    assert_eq!(sum["unique_images"], 3, "{sum}");
    assert_eq!(sum["cache"]["miss"], 4, "{sum}");
    assert_eq!(sum["formats"]["png"], 1, "{sum}");
}

/// `IMAGO_ANALYTICS_COMPRESSION=gzip` writes `.jsonl.gz`; a store holding files of both codecs
/// (a fleet changing the setting) is read whole by the report API and by DuckDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_zstd_files_are_read_together() {
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("analytics");
    let gz = start(&[IMG], |c| {
        quiet(c);
        c.analytics_dir = dir.clone();
        c.analytics_compression = "gzip".into();
    })
    .await;
    let zs = start(&[IMG], |c| {
        quiet(c);
        c.analytics_dir = dir.clone();
        c.api_keys = List::from_strs(&[API_KEY]);
    })
    .await;
    for (s, n, id) in [(&gz, 2, "gz"), (&zs, 3, "zs")] {
        let u = s.url("w:60", &format!("local:///{IMG}"), None);
        for i in 0..n {
            let rid = format!("{id}-{i}");
            assert_eq!(s.get_with(&u, &[("x-request-id", rid.as_str())]).await.status(), 200);
        }
        assert_eq!(s.state.analytics.flush().await.events, n);
    }
    let names = files(&dir);
    assert_eq!(names.iter().filter(|n| n.ends_with(".jsonl.gz")).count(), 1, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.ends_with(".jsonl.zst")).count(), 1, "{names:?}");
    let ours = by_id(&read_events(&dir));
    assert_eq!(ours.len(), 5, "{ours:?}");
    assert_eq!((ours["gz-0"]["cache"].as_str(), ours["zs-2"]["cache"].as_str()), (Some("miss"), Some("hit")));
    let rep = report(&zs, "").await;
    assert_eq!(rep["requests"], 5, "{rep}");
    let Some(py) = python() else { return };
    let rows = run_py(&py, "events.py", &[dir.to_str().unwrap()], "");
    assert_eq!(by_id(rows.as_array().unwrap()).len(), 5, "DuckDB read {rows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_writes_every_buffered_event() {
    let s = start(&[IMG, IMG2], quiet).await;
    let dir = s.state.cfg.raw.analytics_dir.clone();
    let urls = [
        s.url("w:64", &format!("local:///{IMG}"), None),
        s.url("w:96", &format!("local:///{IMG2}"), None),
        s.url("w:128", &format!("local:///{IMG}"), Some("jpg")),
    ];
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (client, url, done) = (s.client.clone(), urls[i % urls.len()].clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let r = client.get(&url).header("x-request-id", format!("g{i}")).send().await.map(|r| r.status().as_u16());
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            r
        }));
    }
    // Stop while requests are in flight (once the first has been answered): the drain finishes
    // them, then the flush writes them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while done.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no request was answered");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    s.handle.stop(true).await;
    let mut answered = 0;
    for t in tasks {
        if let Ok(Ok(status)) = t.await {
            assert!(status == 200 || status == 503, "{status}");
            answered += 1;
        }
    }
    assert!(answered > 0);
    assert!(files(&dir).is_empty(), "nothing written before the shutdown flush");
    let f = s.state.shutdown().await;
    assert_eq!(f.failed, 0);
    let events = read_events(&dir);
    assert_eq!(events.len(), answered, "one event per answered request, none lost: {f:?}");
    assert_eq!(f.events, answered);
    let outcomes: Vec<&str> = events.iter().filter_map(|e| e["cache"].as_str()).collect();
    assert!(outcomes.contains(&"miss"), "{outcomes:?}");
    // After the stop, events are refused without waiting, and counted.
    let before = sample(&s.state.metrics.render(), "imago_analytics_events_dropped_total");
    s.state.analytics.send(imago::analytics::Event::default());
    assert_eq!(sample(&s.state.metrics.render(), "imago_analytics_events_dropped_total"), before + 1.0);
    assert_eq!(s.state.shutdown().await, imago::analytics::Flushed::default(), "idempotent");
}

async fn timed_gets(s: &TestServer, url: &str, n: usize) -> Vec<Duration> {
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(10), s.get(url))
            .await
            .expect("a request never waits for analytics");
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        v.push(t.elapsed());
    }
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_drops_and_counts_without_slowing_requests() {
    let full = start(&[IMG], |c| {
        quiet(c);
        c.analytics_channel = 3;
    })
    .await;
    let off = start(&[IMG], |c| {
        quiet(c);
        c.analytics = false;
    })
    .await;
    let src = format!("local:///{IMG}");
    let (uf, uo) = (full.url("w:80", &src, None), off.url("w:80", &src, None));
    // Warm both caches (one event buffered on `full`).
    timed_gets(&full, &uf, 1).await;
    timed_gets(&off, &uo, 1).await;
    // Nothing drains the buffer (no flush is due): 2 more fit, the other 38 are dropped.
    let lat_full = timed_gets(&full, &uf, 40).await;
    let lat_off = timed_gets(&off, &uo, 40).await;
    let text = metrics_text(&full).await;
    assert_eq!(sample(&text, "imago_analytics_events_dropped_total"), 38.0, "{text}");
    assert_eq!(sample(&metrics_text(&off).await, "imago_analytics_events_dropped_total"), 0.0);
    let (mf, mo) = (lat_full[20], lat_off[20]);
    assert!(mf <= mo * 3 + Duration::from_millis(5), "median with a full buffer {mf:?} vs analytics off {mo:?}");
    let f = full.state.shutdown().await;
    assert_eq!(f.events, 3, "what fitted is written");
    assert_eq!(read_events(&full.state.cfg.raw.analytics_dir).len(), 3);
    assert!(files(&off.state.cfg.raw.analytics_dir).is_empty(), "analytics off writes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flush_threshold_writes_without_waiting_for_the_timer() {
    let s = start(&[IMG], |c| {
        quiet(c);
        c.analytics_flush_events = 5;
    })
    .await;
    let dir = s.state.cfg.raw.analytics_dir.clone();
    let u = s.url("w:50", &format!("local:///{IMG}"), None);
    for _ in 0..5 {
        assert_eq!(s.get(&u).await.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while read_events(&dir).len() < 5 {
        assert!(Instant::now() < deadline, "5 events did not trigger a write: {:?}", files(&dir));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files(&dir).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_api_needs_a_key_and_summarises_the_events() {
    let s = start(&[IMG, IMG2], |c| {
        quiet(c);
        c.api_keys = List::from_strs(&[API_KEY]);
    })
    .await;
    let webp = ("accept", "image/webp");
    let u1 = s.url("w:100", &format!("local:///{IMG}"), None);
    let u2 = s.url("w:100", &format!("local:///{IMG2}"), None);
    for (u, n) in [(&u1, 3), (&u2, 1)] {
        for _ in 0..n {
            assert_eq!(s.get_with(u, &[webp, ("referer", "https://blog.example.org/")]).await.status(), 200);
        }
    }
    assert_eq!(s.get(&s.url("w:100", "local:///gone.jpg", None)).await.status(), 404);
    s.state.analytics.flush().await;

    let api = format!("{}/v1/analytics", s.base);
    let r = s.get(&api).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = s.client.get(&api).bearer_auth("wrong-key-0123456789").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s.client.get(&api).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let rep: Value = r.json().await.unwrap();
    assert_eq!(rep["requests"], 5, "{rep}");
    assert_eq!(rep["errors"], 1);
    assert_eq!(rep["unique_images"], 3);
    assert_eq!(rep["top_images_by_requests"][0]["key"], IMG);
    assert_eq!(rep["top_images_by_requests"][0]["requests"], 3);
    assert_eq!(rep["formats"]["webp"], 4);
    assert_eq!(rep["cache"]["miss"], 2);
    assert_eq!(rep["cache"]["hit"], 2);
    assert_eq!(rep["cache_hit_ratio"], 0.5);
    assert_eq!(rep["top_referrers"][0]["key"], "blog.example.org");
    let originals = 3 * common::fixture(IMG).len() as i64 + common::fixture(IMG2).len() as i64;
    assert_eq!(rep["original_bytes"], originals);
    assert!(rep["bytes_saved"].as_i64().unwrap() > 0 && rep["savings_ratio"].as_f64().unwrap() > 0.5, "{rep}");
    assert!(rep["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    let n_hours = rep["per_hour"].as_array().unwrap().len();
    assert!((24..=25).contains(&n_hours), "every hour of the default 24 h range: {n_hours}");
    let hours: u64 = rep["per_hour"].as_array().unwrap().iter().map(|h| h["requests"].as_u64().unwrap()).sum();
    assert_eq!(hours, 5);

    let get = |q: &str| s.client.get(format!("{api}?{q}")).bearer_auth(API_KEY).send();
    let old: Value = get("from=2001-01-01&to=2001-01-02").await.unwrap().json().await.unwrap();
    assert_eq!(old["requests"], 0);
    assert_eq!(get("from=400d").await.unwrap().status(), 400, "over IMAGO_ANALYTICS_REPORT_MAX_DAYS");
    assert_eq!(get("from=yesterday").await.unwrap().status(), 400);
    assert_eq!(get("from=2025-01-02&to=2025-01-01").await.unwrap().status(), 400);
    assert_eq!(s.client.post(&api).bearer_auth(API_KEY).send().await.unwrap().status(), 405);

    let page = s.client.get(format!("{api}/report?from=2h")).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<svg") && html.contains("id=\"chart-requests\"") && !html.contains("<script"));
    assert!(html.contains(IMG));
    assert_eq!(s.get(&format!("{api}/report")).await.status(), 401);
    // The analytics routes are counted.
    let text = metrics_text(&s).await;
    assert!(sample(&text, "imago_http_requests_total{route=\"analytics\",status=\"200\"}") >= 3.0, "{text}");

    // Without IMAGO_API_KEYS the API is closed.
    let closed = start(&[], quiet).await;
    let r = closed.client.get(format!("{}/v1/analytics", closed.base)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

/// `imago serve` as a process: JSON logs with request ids, SIGTERM flushes the events, then
/// `imago analytics --json --html` reads them and the page renders in Chromium.
#[test]
fn the_binary_flushes_on_sigterm_and_the_cli_reports() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::copy(common::fixture_path(IMG), images.join(IMG)).unwrap();
    std::fs::copy(common::fixture_path(IMG2), images.join(IMG2)).unwrap();
    let analytics = dir.path().join("analytics");
    let env = |c: &mut Command| {
        c.env("IMAGO_KEY", common::KEY)
            .env("IMAGO_SALT", common::SALT)
            .env("IMAGO_LOCAL_ROOT", &images)
            .env("IMAGO_ANALYTICS_DIR", &analytics)
            .env("IMAGO_DEV_KEYS_FILE", dir.path().join("dev.toml"))
            .env_remove("IMAGO_CONFIG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    };
    let mut serve = Command::new(env!("CARGO_BIN_EXE_imago"));
    serve
        .arg("serve")
        .env("IMAGO_BIND", "127.0.0.1:0")
        .env("IMAGO_LOG_FORMAT", "json")
        .env("IMAGO_AUTO_QUALITY", "false")
        .env("IMAGO_WORKERS", "2")
        .env("IMAGO_ANALYTICS_FLUSH_SECS", "3600")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    env(&mut serve);
    let mut child = serve.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut logs: Vec<String> = Vec::new();
    let addr = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("imago serve logs `listening`");
        logs.push(line.clone());
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["message"] == "listening" {
                break v["addr"].as_str().unwrap().to_string();
            }
        }
    };
    let signer = imago_signing::Signer::new(imago_signing::KeyPair::from_hex(common::KEY, common::SALT).unwrap());
    let url = |opts: &str, src: &str| {
        let mut b = imago_signing::UrlBuilder::new().encoding(imago_signing::builder::SourceEncoding::Plain);
        for o in opts.split('/') {
            let mut p = o.split(':');
            b = b.option(p.next().unwrap(), p).unwrap();
        }
        format!("http://{addr}{}", b.sign(&signer, src).unwrap())
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    rt.block_on(async {
        let get = |u: String, id: &'static str| {
            let c = client.clone();
            async move { c.get(u).header("accept", "image/webp").header("x-request-id", id).send().await.unwrap() }
        };
        for (i, id) in ["c1", "c2", "c3"].into_iter().enumerate() {
            let r = get(url("w:120", &format!("local:///{IMG}")), id).await;
            assert_eq!(r.status(), 200, "request {i}");
            assert_eq!(r.headers()["x-request-id"], id);
        }
        assert_eq!(get(url("w:60/dpr:2", &format!("local:///{IMG2}")), "c4").await.status(), 200);
        assert_eq!(get(url("w:60", "local:///absent.jpg"), "cli-404").await.status(), 404);
        let generated = client.get(format!("http://{addr}/healthz")).send().await.unwrap();
        assert_eq!(generated.headers()["x-request-id"].len(), 26, "a ULID when the client sends none");
    });
    assert!(std::fs::read_dir(&analytics).map(|d| d.count()).unwrap_or(0) == 0, "nothing written before SIGTERM");
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "imago did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    reader.join().unwrap();
    logs.extend(rx.try_iter());
    // Structured logs: the refused request's log line carries its request id (in its span list).
    let refused = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "image request refused")
        .unwrap_or_else(|| panic!("no `image request refused` line in {logs:#?}"));
    assert!(refused.to_string().contains("\"request_id\":\"cli-404\""), "{refused}");
    assert_eq!(refused["code"], "source-not-found");
    let flushed = logs.iter().find(|l| l.contains("analytics flushed")).expect("a flush log line");
    assert!(flushed.contains("\"events\":5"), "{flushed}");
    assert_eq!(read_events(&analytics).len(), 5);

    let html = dir.path().join("report.html");
    let mut cli = Command::new(env!("CARGO_BIN_EXE_imago"));
    cli.args(["analytics", "--from", "2h", "--json", "--html"]).arg(&html);
    env(&mut cli);
    let out = cli.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep["requests"], 5, "{rep}");
    assert_eq!(rep["unique_images"], 3);
    assert_eq!(rep["dpr"]["2"], 1, "{rep}");
    assert_eq!(rep["top_images_by_requests"][0]["key"], IMG);
    let mut text = Command::new(env!("CARGO_BIN_EXE_imago"));
    text.args(["analytics", "--from", "2h"]);
    env(&mut text);
    let out = text.output().unwrap();
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && t.contains("requests        5") && t.contains(IMG), "{t}");
    let mut bad = Command::new(env!("CARGO_BIN_EXE_imago"));
    bad.args(["analytics", "--from", "not-a-time"]);
    env(&mut bad);
    assert_eq!(bad.output().unwrap().status.code(), Some(2));

    check_page_renders(&html);
}

/// The HTML report renders in headless Chromium: a screenshot with real content, charts as SVG
/// in the DOM.
fn check_page_renders(html: &Path) {
    let Some(bin) = chromium() else { return };
    let (png, dom) = render_page(&bin, html, (1200, 1800));
    let img = image::load_from_memory(&png).expect("the screenshot is a PNG").to_rgb8();
    assert_eq!(img.dimensions(), (1200, 1800));
    let total = (img.width() * img.height()) as usize;
    let non_white = img.pixels().filter(|p| p.0.iter().any(|c| *c < 235)).count();
    assert!(non_white * 10 > total, "mostly blank screenshot: {non_white} of {total} pixels drawn");
    // The request bars' colour (#3b6ea8) is on screen: the charts were drawn, not just text.
    let bars = img
        .pixels()
        .filter(|p| p.0[0].abs_diff(0x3b) < 12 && p.0[1].abs_diff(0x6e) < 12 && p.0[2].abs_diff(0xa8) < 12)
        .count();
    assert!(bars > 500, "chart bars visible: {bars} pixels");
    assert!(dom.matches("<svg").count() >= 8, "charts are SVG in the DOM");
    for id in ["chart-requests", "chart-formats", "chart-dpr", "chart-savings"] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "{id} in the DOM");
    }
    assert!(dom.matches("class=\"bar\"").count() >= 6, "bars in the charts");
}

/// S3 mode: event files go to the bucket under `analytics/`, and the API reads them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_mode_writes_events_to_the_bucket() {
    let Some(env) = uploads_common::S3Env::get() else { return };
    let s = start(&[IMG], |c| {
        quiet(c);
        env.apply(c);
        c.api_keys = List::from_strs(&[API_KEY]);
    })
    .await;
    let before = env.list("analytics/").await;
    let u = s.url("w:70", &format!("local:///{IMG}"), None);
    let ids = ["s3-a", "s3-b", "s3-c"];
    for id in ids {
        let id_owned = format!("{id}-{}", std::process::id());
        assert_eq!(s.get_with(&u, &[("x-request-id", id_owned.as_str())]).await.status(), 200);
    }
    let f = s.state.analytics.flush().await;
    assert_eq!((f.events, f.failed), (3, 0), "{f:?}");
    let after = env.list("analytics/").await;
    let new: Vec<&String> = after.iter().filter(|k| !before.contains(k)).collect();
    assert_eq!(new.len(), f.files, "{new:?}");
    let mut seen = Vec::new();
    for k in &new {
        assert!(k.starts_with("analytics/dt=") && k.contains("/hour=") && k.ends_with(".jsonl.zst"), "{k}");
        let body = env.object(k).await.unwrap();
        let text = imago::analytics::store::decode(&body, 1 << 20).unwrap();
        for l in text.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            seen.push(v["request_id"].as_str().unwrap().to_string());
        }
    }
    for id in ids {
        assert!(seen.iter().any(|s| s.starts_with(id)), "{id} in {seen:?}");
    }
    let rep = report(&s, "?from=1h").await;
    assert!(rep["requests"].as_u64().unwrap() >= 3, "{rep}");
    assert!(rep["store"].as_str().unwrap().starts_with("s3://"), "{rep}");
    s.state.shutdown().await;
}

/// Issue #15 item 9: an hour out of range (`T99`, `T-1`, `T24`) in `from`/`to` panicked the worker
/// (an empty reply); now a 400 `invalid-parameter` JSON error, on both routes, and the server
/// goes on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_report_times_are_a_400_not_a_panic() {
    let s = start(&[IMG], |c| {
        quiet(c);
        c.api_keys = List::from_strs(&[API_KEY]);
    })
    .await;
    for route in ["/v1/analytics", "/v1/analytics/report"] {
        for q in [
            "from=2026-12-01T99",
            "from=2026-12-01T-1",
            "from=2026-12-01T23&to=2026-12-01T24",
            "to=2026-12-01T99",
            "from=2026-13-01",
            "from=2026-02-30T10",
            "from=T10",
            "from=9999999999999999999999d",
            "from=2h&from=1h",
        ] {
            let r = s.client.get(format!("{}{route}?{q}", s.base)).bearer_auth(API_KEY).send().await;
            let r = r.unwrap_or_else(|e| panic!("{route}?{q}: no answer ({e})"));
            assert_eq!(r.status(), 400, "{route}?{q}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], "invalid-parameter", "{route}?{q}: {body}");
            let msg = body["message"].as_str().unwrap();
            assert!(msg.contains("from") || msg.contains("to"), "{route}?{q}: the message names the parameter: {msg}");
        }
    }
    // The range limit is the same kind of error.
    let r = s.client.get(format!("{}/v1/analytics?from=400d", s.base)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid-parameter");
    assert_eq!(report(&s, "?from=2026-12-01T23&to=2026-12-02").await["requests"], 0, "still answering");
}

/// `imago analytics --from 2026-12-01T99` (and `T-1`, `--to …T24`) exits 2 with a message naming
/// the option, instead of panicking.
#[test]
fn the_cli_refuses_bad_times_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    for args in [
        &["--from", "2026-12-01T99"][..],
        &["--from", "2026-12-01T-1"],
        &["--from", "2026-12-01T23", "--to", "2026-12-01T24"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_imago"))
            .arg("analytics")
            .args(args)
            .env("IMAGO_LOCAL_ROOT", &images)
            .env("IMAGO_ANALYTICS_DIR", dir.path().join("analytics"))
            .env("IMAGO_DEV_KEYS_FILE", dir.path().join("dev.toml"))
            .env_remove("IMAGO_CONFIG")
            .env_remove("IMAGO_KEY")
            .env_remove("IMAGO_SALT")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        let opt = if args.len() == 4 { "to" } else { "from" };
        assert!(err.starts_with(&format!("imago: {opt}: ")) && err.contains("hour"), "{args:?}: {err}");
    }
}

/// Issue #15 item 8: refused requests (a 4xx before the URL named an image: a bad or missing
/// signature, a malformed URL, bad options, an expired link) are counted per minute, status and
/// code by the writer instead of stored one by one with the client's `X-Request-Id` and referrer.
/// 5,000 unsigned requests with a 128-character id and a 253-character referrer host wrote 1.9 MB
/// before; now a few hundred bytes, and the report still counts every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_counted_not_stored_one_by_one() {
    use futures_util::StreamExt;
    let s = start(&[IMG], |c| {
        quiet(c);
        c.api_keys = List::from_strs(&[API_KEY]);
    })
    .await;
    let dir = s.state.cfg.raw.analytics_dir.clone();
    const N: usize = 5_000;
    // Distinct, random-looking ids and referrer hosts, as a client filling the store would send.
    let noise = |seed: u64, len: usize| -> String {
        const ABC: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ABC[(x % 36) as usize] as char
            })
            .collect()
    };
    let t = Instant::now();
    let statuses: Vec<u16> = futures_util::stream::iter(0..N as u64)
        .map(|i| {
            let (client, base) = (s.client.clone(), s.base.clone());
            let id = noise(i, 128);
            let n = noise(i + 1_000_000, 250);
            let host = format!("{}.{}.{}.{}", &n[..63], &n[63..126], &n[126..189], &n[189..250]);
            async move {
                assert_eq!(host.len(), 253);
                let forged = format!("{base}/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/w:{i}/plain/local:///{IMG}");
                let r = client.get(forged).header("x-request-id", id).header("referer", format!("https://{host}/p"));
                r.send().await.unwrap().status().as_u16()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let took = t.elapsed();
    assert!(statuses.iter().all(|s| *s == 403), "every request is refused");
    // A signed request still gets its own event, with its id.
    let u = s.url("w:100", &format!("local:///{IMG}"), None);
    assert_eq!(s.get_with(&u, &[("x-request-id", "signed-1")]).await.status(), 200);
    let f = s.state.analytics.flush().await;
    assert_eq!(f.failed, 0, "{f:?}");
    let bytes: u64 = walk(&dir).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    eprintln!("{N} refused requests in {took:?}: {bytes} bytes in {} file(s)", files(&dir).len());
    assert!(bytes <= 4096, "{N} refused requests wrote {bytes} bytes");
    let events = read_events(&dir);
    assert!(events.len() <= 4, "one line per minute, status and code, plus the signed one: {}", events.len());
    let ids: Vec<&Value> = events.iter().filter(|e| !e["request_id"].is_null()).map(|e| &e["request_id"]).collect();
    assert_eq!(ids, vec!["signed-1"], "no client-chosen id of a refused request is kept");
    assert!(events.iter().all(|e| e["referrer_host"].is_null()), "nor its referrer: {events:?}");
    let signed: Vec<&Value> = events.iter().filter(|e| e["request_id"] == "signed-1").collect();
    assert_eq!(signed.len(), 1, "{events:?}");
    let counted: u64 = events.iter().filter(|e| e["status"] == 403).map(|e| e["requests"].as_u64().unwrap()).sum();
    assert_eq!(counted, N as u64);
    assert!(events.iter().filter(|e| e["status"] == 403).all(|e| e["error"] == "invalid-signature"), "{events:?}");

    let rep = report(&s, "?from=1h").await;
    assert_eq!(rep["requests"], N as u64 + 1, "{rep}");
    assert_eq!(rep["errors"], N as u64);
    assert_eq!(rep["status"]["403"], N as u64);
    assert_eq!(rep["status"]["200"], 1);
    let hours: u64 = rep["per_hour"].as_array().unwrap().iter().map(|h| h["errors"].as_u64().unwrap()).sum();
    assert_eq!(hours, N as u64);
    assert_eq!(rep["top_referrers"].as_array().unwrap().len(), 0, "{rep}");
}

/// Issue #15 item 8: nothing ever expired. With the default retention (92 days) an event file of
/// an hour long gone is removed when the writer starts (and hourly after), its emptied partition
/// directories with it; this hour's file stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_event_files_are_removed_by_default() {
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("analytics");
    let line = imago::analytics::Event { ts: "2020-01-01T00:00:00.000Z".into(), status: 200, ..Default::default() };
    let body = imago::analytics::store::encode(&[line], imago::analytics::store::Codec::Zstd).unwrap();
    let old = dir.join("dt=2020-01-01/hour=00/old-01aaaaaaaaaaaaaaaaaaaaaaaa.jsonl.zst");
    let now = imago::analytics::now_rfc3339();
    let current = dir.join(format!("dt={}/hour={}/now-01aaaaaaaaaaaaaaaaaaaaaaaa.jsonl.zst", &now[..10], &now[11..13]));
    for p in [&old, &current] {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, &body).unwrap();
    }
    let _s = start(&[], |c| {
        quiet(c);
        c.analytics_dir = dir.clone();
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    // The emptied partition directories go too.
    while old.exists() || dir.join("dt=2020-01-01").exists() {
        assert!(Instant::now() < deadline, "an event file from 2020 is still there: {:?}", files(&dir));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(current.exists(), "this hour's file stays");
}

/// Retention by age and by total size, the same in both stores: files of hours that ended more
/// than the age ago go; over the size cap the oldest go first; the current hour is never removed
/// (not even over the cap); S3 listings are followed page by page (pages of 2 keys here).
async fn retention_applies(store: &imago::analytics::Store, page: usize) {
    use imago::analytics::store::Retention;
    let now: jiff::Timestamp = "2026-03-10T12:30:00Z".parse().unwrap();
    let files = [
        ("dt=2026-03-01/hour=05/a-01.jsonl.zst", 100),
        ("dt=2026-03-08/hour=11/b-01.jsonl.zst", 100), // ended 2 days 30 min ago
        ("dt=2026-03-08/hour=13/c-01.jsonl.gz", 100),  // ended 1 day 22.5 h ago
        ("dt=2026-03-09/hour=00/d-01.jsonl.zst", 100),
        ("dt=2026-03-09/hour=00/d-02.jsonl.zst", 100),
        ("dt=2026-03-10/hour=11/e-01.jsonl.zst", 100),
        ("dt=2026-03-10/hour=12/f-01.jsonl.zst", 1000), // the current hour
    ];
    for (name, size) in files {
        store.put(name, vec![b'x'; size]).await.unwrap();
    }
    let names = |inv: Vec<(String, u64)>| {
        let mut v: Vec<String> = inv.into_iter().map(|(n, _)| n).collect();
        v.sort();
        v
    };
    assert_eq!(names(store.inventory(page).await.unwrap()).len(), 7);
    let two_days = Some(Duration::from_secs(2 * 86_400));
    // Age removes a and b; then 1,500 bytes remain over the 1,250 cap: c (oldest), then d-01.
    let p = store.prune(&Retention { max_age: two_days, max_bytes: Some(1250) }, now, page).await.unwrap();
    assert_eq!((p.files, p.bytes), (4, 400), "{p:?}");
    assert_eq!(
        names(store.inventory(page).await.unwrap()),
        [
            "dt=2026-03-09/hour=00/d-02.jsonl.zst",
            "dt=2026-03-10/hour=11/e-01.jsonl.zst",
            "dt=2026-03-10/hour=12/f-01.jsonl.zst"
        ]
    );
    // A cap below the current hour's own size removes everything else, never the current hour.
    let p = store.prune(&Retention { max_age: None, max_bytes: Some(10) }, now, page).await.unwrap();
    assert_eq!(p.files, 2, "{p:?}");
    assert_eq!(names(store.inventory(page).await.unwrap()), ["dt=2026-03-10/hour=12/f-01.jsonl.zst"]);
    // No limits: nothing to do.
    let none = Retention { max_age: None, max_bytes: None };
    assert_eq!(store.prune(&none, now, page).await.unwrap().files, 0);
}

#[tokio::test]
async fn retention_by_age_and_size_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = imago::analytics::Store::Local { dir: dir.path().to_path_buf() };
    // Foreign and temporary files are left alone.
    std::fs::create_dir_all(dir.path().join("dt=2026-03-01/hour=05")).unwrap();
    std::fs::write(dir.path().join("dt=2026-03-01/hour=05/.a-00.jsonl.zst.tmp"), b"partial").unwrap();
    std::fs::write(dir.path().join("README"), b"mine").unwrap();
    retention_applies(&store, 2).await;
    assert!(
        dir.path().join("README").exists() && dir.path().join("dt=2026-03-01/hour=05/.a-00.jsonl.zst.tmp").exists()
    );
    assert!(!dir.path().join("dt=2026-03-09").exists(), "emptied partitions are removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_age_and_size_in_the_bucket() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(garage) = common::Garage::start(&tmp.path().join("garage")) else {
        assert!(std::env::var("CI").is_err(), "garage is required in CI (scripts/deps.sh test installs it)");
        eprintln!("SKIP: garage not available");
        return;
    };
    let env = &garage.env;
    let raw = imago::RawConfig {
        key: List::from_strs(&[common::KEY]),
        salt: List::from_strs(&[common::SALT]),
        local_root: tmp.path().join("images"),
        dev_keys_file: tmp.path().join("dev.toml"),
        s3_endpoint: Some(env["IMAGO_TEST_S3_ENDPOINT"].clone()),
        s3_region: "garage".into(),
        s3_bucket: Some(env["IMAGO_TEST_S3_BUCKET"].clone()),
        s3_access_key_id: Some(env["IMAGO_TEST_S3_ACCESS_KEY_ID"].clone()),
        s3_secret_access_key: Some(env["IMAGO_TEST_S3_SECRET_ACCESS_KEY"].clone()),
        s3_path_style: true,
        ..imago::RawConfig::default()
    };
    let cfg = raw.validate(false).unwrap();
    let store = imago::analytics::Store::from_config(&cfg).unwrap();
    assert!(store.describe().starts_with("s3://"), "{store:?}");
    retention_applies(&store, 2).await;
}
