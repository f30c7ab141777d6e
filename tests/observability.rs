//! Prometheus metrics after known requests (parsed by prometheus_client's text parser), the
//! separate metrics listener, the Grafana dashboard's metric names, request ids.

mod analytics_support;
mod common;

use std::collections::BTreeSet;

use analytics_support::*;
use common::{start, TestServer};
use imago::config::List;
use serde_json::{json, Value};

const IMG: &str = "gps.jpg";

/// Parsed exposition: (sample name, labels) → value, via prometheus_client.
struct Parsed {
    families: serde_json::Map<String, Value>,
    samples: Vec<(String, serde_json::Map<String, Value>, f64)>,
}

impl Parsed {
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v)))
            .map(|s| s.2)
            .sum()
    }
    fn names(&self) -> BTreeSet<String> {
        self.samples.iter().map(|s| s.0.clone()).collect()
    }
}

fn parse(py: &std::path::Path, text: &str) -> Parsed {
    let v = run_py(py, "metrics.py", &[], text);
    let samples = v["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s[0].as_str().unwrap().to_string(), s[1].as_object().unwrap().clone(), s[2].as_f64().unwrap()))
        .collect();
    Parsed { families: v["families"].as_object().unwrap().clone(), samples }
}

async fn exposition(s: &TestServer) -> String {
    let r = s.get(&format!("{}/metrics", s.base)).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_known_requests_and_parse_with_a_real_parser() {
    let Some(py) = python() else { return };
    let s = start(&[IMG], |c| {
        c.auto_quality = false;
        c.api_keys = List::from_strs(&[API_KEY]);
    })
    .await;
    let before = parse(&py, &exposition(&s).await);
    let u = s.url("w:100", &format!("local:///{IMG}"), None);
    let webp = ("accept", "image/webp");
    let r1 = s.get_with(&u, &[webp, ("sec-ch-dpr", "2")]).await;
    assert_eq!(r1.status(), 200);
    let etag = r1.headers()["etag"].to_str().unwrap().to_string();
    let b1 = r1.bytes().await.unwrap().len() as f64;
    let r2 = s.get_with(&u, &[webp, ("sec-ch-dpr", "2")]).await;
    assert_eq!(r2.status(), 200);
    let b2 = r2.bytes().await.unwrap().len() as f64;
    assert_eq!(s.get_with(&u, &[webp, ("sec-ch-dpr", "2"), ("if-none-match", &etag)]).await.status(), 304);
    let explicit = s.url("w:100", &format!("local:///{IMG}"), Some("jpg"));
    assert_eq!(s.get_with(&explicit, &[("save-data", "on")]).await.status(), 200);
    assert_eq!(s.get(&s.url("w:100", "local:///missing.jpg", None)).await.status(), 404);
    assert_eq!(s.get(&format!("{}/healthz", s.base)).await.status(), 200);
    assert_eq!(s.get(&format!("{}/readyz", s.base)).await.status(), 200);
    assert_eq!(s.client.post(&u).send().await.unwrap().status(), 405);
    // Upload counters (the uploads handlers count these).
    let t = s
        .client
        .post(format!("{}/v1/uploads", s.base))
        .bearer_auth(API_KEY)
        .json(&json!({"content_type": "image/jpeg"}));
    assert!(t.send().await.unwrap().status().is_success());
    let t = s.client.post(format!("{}/v1/uploads", s.base)).json(&json!({"content_type": "image/jpeg"}));
    assert_eq!(t.send().await.unwrap().status(), 401);

    let text = exposition(&s).await;
    let after = parse(&py, &text);
    let d = |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    let req = "imago_http_requests_total";
    assert_eq!(d(req, &[("route", "image"), ("status", "200")]), 3.0);
    assert_eq!(d(req, &[("route", "image"), ("status", "304")]), 1.0);
    assert_eq!(d(req, &[("route", "image"), ("status", "404")]), 1.0);
    assert_eq!(d(req, &[("route", "healthz"), ("status", "200")]), 1.0);
    assert_eq!(d(req, &[("route", "readyz"), ("status", "200")]), 1.0);
    assert_eq!(d(req, &[("route", "other"), ("status", "405")]), 1.0);
    assert_eq!(d(req, &[("route", "metrics"), ("status", "200")]), 1.0, "the first scrape is counted");
    assert_eq!(d(req, &[("route", "upload_ticket")]), 2.0);
    let img = "imago_image_responses_total";
    assert_eq!(d(img, &[("cache", "miss")]), 2.0);
    assert_eq!(d(img, &[("cache", "hit")]), 1.0);
    assert_eq!(d(img, &[("cache", "not_modified"), ("output_format", "none")]), 1.0);
    assert_eq!(d(img, &[("output_format", "webp"), ("source_format", "jpeg"), ("negotiated", "true")]), 2.0);
    assert_eq!(d(img, &[("output_format", "jpeg"), ("negotiated", "false"), ("save_data", "true")]), 1.0);
    assert_eq!(d(img, &[("dpr", "2"), ("width_bucket", "le320")]), 3.0, "w:100 at DPR 2 = 200 device px");
    let src = common::fixture(IMG).len() as f64;
    assert_eq!(d("imago_source_bytes_total", &[]), src, "one fetch for both variants (source cache)");
    let served = d("imago_bytes_served_total", &[]);
    assert!(served >= b1 + b2, "{served} vs {b1} + {b2} + the jpeg");
    let saved = d("imago_bytes_saved_total", &[]);
    assert!((saved - (3.0 * src - served)).abs() < 1.0, "saved {saved}, served {served}, source {src}");
    for h in ["imago_fetch_seconds", "imago_transform_seconds", "imago_encode_seconds"] {
        assert_eq!(after.families[h], "histogram", "{h}");
        assert_eq!(d(&format!("{h}_count"), &[]), if h == "imago_fetch_seconds" { 1.0 } else { 2.0 }, "{h}");
    }
    assert_eq!(d("imago_request_seconds_count", &[("route", "image")]), 5.0);
    assert_eq!(d("imago_upload_tickets_total", &[("mode", "embedded")]), 1.0);
    assert_eq!(d("imago_upload_refusals_total", &[("reason", "unauthorized")]), 1.0);
    assert!(
        after.families.contains_key("imago_worker_queue_depth")
            && after.families.contains_key("imago_worker_in_flight")
    );
    assert_eq!(after.sum("imago_workers", &[]), 2.0);

    // No image key ever becomes a label value.
    for (_, labels, _) in &after.samples {
        for v in labels.values() {
            assert!(!v.as_str().unwrap_or("").contains(".jpg"), "high-cardinality label {labels:?}");
        }
    }

    // Every metric the Grafana dashboard queries is exported.
    let dash = std::fs::read_to_string(root().join("docker/grafana/dashboards/imago.json")).unwrap();
    let mut wanted = BTreeSet::new();
    for (i, _) in dash.match_indices("imago_") {
        let name: String = dash[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        wanted.insert(name);
    }
    assert!(wanted.len() >= 15, "{wanted:?}");
    let names = after.names();
    let missing: Vec<&String> = wanted.iter().filter(|n| !names.contains(*n)).collect();
    assert!(missing.is_empty(), "dashboard metrics not exported: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_serves_metrics_and_the_main_port_does_not() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    std::fs::copy(common::fixture_path(IMG), dir.path().join("images").join(IMG)).unwrap();
    let raw = imago::RawConfig {
        bind: "127.0.0.1:0".into(),
        metrics_bind: Some("127.0.0.1:0".into()),
        key: List::from_strs(&[common::KEY]),
        salt: List::from_strs(&[common::SALT]),
        local_root: dir.path().join("images"),
        analytics_dir: dir.path().join("analytics"),
        dev_keys_file: dir.path().join("dev.toml"),
        workers: 1,
        auto_quality: false,
        ..Default::default()
    };
    let running = imago::http::start(raw.validate(false).unwrap()).unwrap();
    let (addr, maddr) = (running.addr, running.metrics_addr.expect("a metrics listener"));
    assert_ne!(addr, maddr);
    let state = running.state.clone();
    let handle = running.server.handle();
    tokio::spawn(running.server);
    let c = reqwest::Client::new();
    let main = c.get(format!("http://{addr}/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 404, "/metrics leaves the public port");
    let signer = imago_signing::Signer::new(imago_signing::KeyPair::from_hex(common::KEY, common::SALT).unwrap());
    let path = imago_signing::UrlBuilder::new().width(50).sign(&signer, &format!("local:///{IMG}")).unwrap();
    assert_eq!(c.get(format!("http://{addr}{path}")).send().await.unwrap().status(), 200);
    let m = c.get(format!("http://{maddr}/metrics")).send().await.unwrap();
    assert_eq!(m.status(), 200);
    assert!(m.headers().contains_key("x-request-id"));
    let text = m.text().await.unwrap();
    assert_eq!(sample(&text, "imago_http_requests_total{route=\"image\",status=\"200\"}"), 1.0, "{text}");
    assert_eq!(sample(&text, "imago_http_requests_total{route=\"metrics\",status=\"404\"}"), 1.0, "{text}");
    assert_eq!(c.get(format!("http://{maddr}/healthz")).send().await.unwrap().status(), 404, "only /metrics there");
    if let Some(py) = python() {
        let p = parse(&py, &text);
        assert!(p.families.contains_key("imago_analytics_events_dropped"), "{:?}", p.families.keys());
    }
    // Shutdown stops the metrics listener too (after the drain and the flush).
    handle.stop(true).await;
    state.shutdown().await;
    let after = c.get(format!("http://{maddr}/metrics")).send().await;
    assert!(after.is_err(), "the metrics listener is stopped: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_or_generated() {
    let s = start(&[IMG], |c| c.auto_quality = false).await;
    let id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_string();
    let r = s.get_with(&format!("{}/healthz", s.base), &[("x-request-id", "abc-123")]).await;
    assert_eq!(id(&r), "abc-123");
    let a = id(&s.get(&format!("{}/healthz", s.base)).await);
    let b = id(&s.get(&format!("{}/nope", s.base)).await);
    assert_eq!((a.len(), b.len()), (26, 26), "ULIDs: {a} {b}");
    assert_ne!(a, b);
    let r =
        s.get_with(&s.url("w:40", &format!("local:///{IMG}"), None), &[("x-request-id", "bad id with spaces")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(id(&r).len(), 26, "an unsafe id is replaced");
    let r = s.get_with(&format!("{}/nope", s.base), &[("x-request-id", &"x".repeat(200))]).await;
    assert_eq!(id(&r).len(), 26, "an overlong id is replaced");
}
