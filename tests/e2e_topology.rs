//! A real multi-instance topology on loopback: two imago replicas sharing one Garage, with
//! Varnish (`docker/varnish/lb.vcl`) in front as edge and load balancer. A variant is served from
//! the edge on the second request with no origin hit; killing one replica under a bounded load
//! produces no client-visible errors (the edge retries the other); an upload through one replica
//! is readable through the other (nothing is kept in an instance).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_ok(url: &str) -> bool {
    let c = reqwest::Client::new();
    for _ in 0..150 {
        if let Ok(r) = c.get(url).timeout(Duration::from_millis(500)).send().await {
            if r.status() == 200 {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn origin_image_hits(base: &str) -> u64 {
    let m = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    m.lines()
        .filter(|l| l.starts_with("imago_http_requests_total{") && l.contains("route=\"image\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_varnish_share_nothing_and_survive_a_kill() {
    let varnishd = ["/usr/sbin/varnishd", "/usr/bin/varnishd"].into_iter().find(|p| std::path::Path::new(p).exists());
    let tmp = tempfile::tempdir().unwrap();
    let gdir = tmp.path().join("garage");
    let (Some(varnishd), Some(garage)) = (varnishd, Garage::start(&gdir)) else {
        assert!(std::env::var("CI").is_err(), "varnish and garage are required in CI (scripts/deps.sh test)");
        eprintln!("SKIP: varnishd or garage not available");
        return;
    };
    let env: std::collections::HashMap<String, String> =
        garage.env.iter().map(|(k, v)| (k.replace("IMAGO_TEST_", "IMAGO_"), v.clone())).collect();

    let ports = [free_port(), free_port()];
    let api_key = "e2e-api-key-0123456789";
    let mut replicas = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imago"));
        cmd.arg("serve")
            .env("IMAGO_BIND", format!("127.0.0.1:{port}"))
            .env("IMAGO_KEY", KEY)
            .env("IMAGO_SALT", SALT)
            .env("IMAGO_API_KEYS", api_key)
            .env("IMAGO_LOCAL_ROOT", tmp.path().join(format!("local{i}")))
            .env("IMAGO_ANALYTICS_DIR", tmp.path().join(format!("analytics{i}")))
            .env("IMAGO_WORKERS", "2")
            .env("IMAGO_QUEUE_SIZE", "256")
            .env("IMAGO_QUEUE_TIMEOUT_MS", "30000")
            .env("IMAGO_AUTO_QUALITY", "false")
            .env("IMAGO_PUBLIC_METRICS", "true")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        replicas.push(Some(Proc(cmd.spawn().unwrap())));
    }
    let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    for b in &bases {
        assert!(wait_ok(&format!("{b}/healthz")).await, "replica {b} did not start");
    }

    // Edge: lb.vcl with the replicas' ports.
    let vcl = std::fs::read_to_string(fixture_path("../../docker/varnish/lb.vcl"))
        .unwrap()
        .replace("\"18081\"", &format!("\"{}\"", ports[0]))
        .replace("\"18082\"", &format!("\"{}\"", ports[1]));
    std::fs::write(tmp.path().join("lb.vcl"), vcl).unwrap();
    let edge_port = free_port();
    let _varnish = Proc(
        Command::new(varnishd)
            .args(["-F", "-a", &format!("127.0.0.1:{edge_port}"), "-f"])
            .arg(tmp.path().join("lb.vcl"))
            .arg("-n")
            .arg(tmp.path().join("varnish"))
            .args(["-s", "malloc,64m"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let edge = format!("http://127.0.0.1:{edge_port}");
    assert!(wait_ok(&format!("{edge}/healthz")).await, "varnish did not start");
    let client = reqwest::Client::new();

    // Upload through replica 0 (presigned PUT straight to Garage).
    let photo = fixture("nasa_large.jpg");
    let ticket: serde_json::Value = client
        .post(format!("{}/v1/uploads", bases[0]))
        .bearer_auth(api_key)
        .json(&serde_json::json!({"content_type": "image/jpeg", "content_length": photo.len()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut put = client.put(ticket["url"].as_str().unwrap()).body(photo.clone());
    if let Some(h) = ticket["headers"].as_object() {
        for (k, v) in h {
            put = put.header(k.as_str(), v.as_str().unwrap());
        }
    }
    let r = put.send().await.unwrap();
    assert!(r.status().is_success(), "upload: {}", r.status());
    let source = ticket["source"].as_str().unwrap().to_string();
    assert!(source.starts_with("s3://"), "{source}");

    // Readable through replica 1.
    let signer = imago_signing::Signer::new(imago_signing::KeyPair::from_hex(KEY, SALT).unwrap());
    let path = |w: u32, cb: &str| {
        imago_signing::UrlBuilder::new()
            .width(w)
            .option("cb", [cb])
            .unwrap()
            .extension("webp")
            .sign(&signer, &source)
            .unwrap()
    };
    let r = client.get(format!("{}{}", bases[1], path(300, "direct"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(decode(&r.bytes().await.unwrap()).width(), 300);

    // Served from the edge on the second request, with no origin hit.
    let p = path(320, "edge");
    let first = client.get(format!("{edge}{p}")).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let hits = origin_image_hits(&bases[0]).await + origin_image_hits(&bases[1]).await;
    let second = client.get(format!("{edge}{p}")).send().await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers().get("x-cache").map(|v| v.to_str().unwrap()), Some("HIT"));
    assert_eq!(origin_image_hits(&bases[0]).await + origin_image_hits(&bases[1]).await, hits);

    // Kill replica 0 under a bounded load through the edge: no client-visible errors.
    let mut tasks = Vec::new();
    for i in 0..30u32 {
        let (c, u) = (client.clone(), format!("{edge}{}", path(40 + i, "load")));
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150 * i as u64)).await;
            c.get(u).send().await.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    replicas[0].take();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(statuses.iter().all(|s| s == &Ok(200)), "{statuses:?}");
}
