//! A real multi-instance topology on loopback: two imago replicas sharing one Garage, with
//! Varnish (`docker/varnish/lb.vcl`) in front as edge and load balancer. A variant is served from
//! the edge on the second request with no origin hit; killing one replica under a bounded load
//! produces no client-visible errors (the edge retries the other); an upload through one replica
//! is readable through the other (nothing is kept in an instance). Three replicas behind lb.vcl's
//! shard director: a Zipf replay hits the fleet's memory caches far more often when requests are
//! routed by a consistent hash of the URL than when they land on a random replica, and a replica
//! that goes down does not fail its share of the URLs.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

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
        .replace("\"18082\"", &format!("\"{}\"", ports[1]))
        // lb.vcl names three replicas; this topology has two (the third entry is the second again).
        .replace("\"18083\"", &format!("\"{}\"", ports[1]));
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

/// Fleet-wide image responses from the replicas' origin memory caches: (hits, all).
async fn fleet_cache(bases: &[String]) -> (u64, u64) {
    let (mut hits, mut all) = (0.0, 0.0);
    for b in bases {
        let m = reqwest::get(format!("{b}/metrics")).await.unwrap().text().await.unwrap();
        for l in m.lines().filter(|l| l.starts_with("imago_image_responses_total{")) {
            let v: f64 = l.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
            all += v;
            if l.contains("cache=\"hit\"") {
                hits += v;
            }
        }
    }
    (hits as u64, all as u64)
}

/// Requests each replica counted as route "other" (`imago_http_requests_total`).
async fn upload_route_counts(bases: &[String]) -> Vec<u64> {
    let mut out = Vec::new();
    for b in bases {
        let m = reqwest::get(format!("{b}/metrics")).await.unwrap().text().await.unwrap();
        let n: f64 = m
            .lines()
            .filter(|l| l.starts_with("imago_http_requests_total{") && l.contains("route=\"other\""))
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .sum();
        out.push(n as u64);
    }
    out
}

/// One imago replica (the real binary) on 127.0.0.1:`port` with the test key, a small variant
/// cache and `Cache-Control: no-store`, so Varnish keeps nothing (hit-for-miss) and every request
/// reaches an origin: what is measured is the origins' own memory caches.
fn replica(port: u16, root: &std::path::Path) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_imago"))
            .arg("serve")
            .env("IMAGO_BIND", format!("127.0.0.1:{port}"))
            .env("IMAGO_KEY", KEY)
            .env("IMAGO_SALT", SALT)
            .env("IMAGO_LOCAL_ROOT", root)
            .env("IMAGO_ANALYTICS", "false")
            .env("IMAGO_CACHE_SIZE_MB", "1")
            .env("IMAGO_CACHE_CONTROL", "no-store")
            // The fleet's hit ratio is read from each replica's /metrics on its one port.
            .env("IMAGO_PUBLIC_METRICS", "true")
            .env("IMAGO_WORKERS", "1")
            .env("IMAGO_AUTO_QUALITY", "false")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// varnishd with `vcl` (lb.vcl, templated) on a free loopback port.
fn varnish(varnishd: &str, dir: &std::path::Path, vcl: &str) -> (Proc, String) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("lb.vcl"), vcl).unwrap();
    let port = free_port();
    let p = Proc(
        Command::new(varnishd)
            .args(["-F", "-a", &format!("127.0.0.1:{port}"), "-f"])
            .arg(dir.join("lb.vcl"))
            .arg("-n")
            .arg(dir.join("work"))
            .args(["-s", "malloc,16m"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    (p, format!("http://127.0.0.1:{port}"))
}

/// Request i of a deterministic Zipf(1.0) replay over `n` URLs: an index in 0..n.
fn zipf_draws(n: usize, count: usize, seed: u64) -> Vec<usize> {
    let weights: Vec<f64> = (1..=n).map(|r| 1.0 / r as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(n);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    let mut x = seed;
    (0..count)
        .map(|_| {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let u = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
            cdf.partition_point(|c| *c < u).min(n - 1)
        })
        .collect()
}

const URLS: usize = 400;
const REPLAY: usize = 2400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_routing_multiplies_the_fleet_memory_cache_and_survives_a_replica_down() {
    let Some(varnishd) =
        ["/usr/sbin/varnishd", "/usr/bin/varnishd"].into_iter().find(|p| std::path::Path::new(p).exists())
    else {
        assert!(std::env::var("CI").is_err(), "varnishd is required in CI (scripts/deps.sh test installs it)");
        eprintln!("SKIP: varnishd not installed");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(fixture_path("p3.jpg"), root.join("p3.jpg")).unwrap();
    let signer = imago_signing::Signer::new(imago_signing::KeyPair::from_hex(KEY, SALT).unwrap());
    // 400 distinct variants (widths 100..=499) of one photo, a few KB each: more than three 1 MB
    // caches hold together, far more than one does.
    let paths: Vec<String> = (0..URLS)
        .map(|i| {
            imago_signing::UrlBuilder::new()
                .width(100 + i as u32)
                .extension("jpg")
                .sign(&signer, "local:///p3.jpg")
                .unwrap()
        })
        .collect();
    let draws = zipf_draws(URLS, REPLAY, 0x9E37_79B9_7F4A_7C15);
    let shipped = std::fs::read_to_string(fixture_path("../../docker/varnish/lb.vcl")).unwrap();

    // Two arms, each with three fresh replicas: lb.vcl as shipped, and the same VCL with the
    // shard key replaced by a per-request random one (what a plain Service / round robin does).
    let mut ratios = Vec::new();
    let mut kept = None;
    for (arm, hashed) in [("random", false), ("hashed", true)] {
        let ports = [free_port(), free_port(), free_port()];
        let replicas: Vec<Option<Proc>> = ports.iter().map(|p| Some(replica(*p, &root))).collect();
        let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
        for b in &bases {
            assert!(wait_ok(&format!("{b}/healthz")).await, "replica {b} did not start");
        }
        let mut vcl = shipped
            .replace("\"18081\"", &format!("\"{}\"", ports[0]))
            .replace("\"18082\"", &format!("\"{}\"", ports[1]))
            .replace("\"18083\"", &format!("\"{}\"", ports[2]));
        if !hashed {
            vcl = vcl.replace("by=URL", "by=KEY, key=imago_shard.key(bereq.xid)");
        }
        let (edge_proc, edge) = varnish(varnishd, &tmp.path().join(arm), &vcl);
        assert!(wait_ok(&format!("{edge}/healthz")).await, "varnish did not start");
        // Let the probes see all three healthy.
        tokio::time::sleep(Duration::from_secs(2)).await;

        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        let mut per_replica = Vec::new();
        // Three clients at once, each a third of the replay in order.
        let mut tasks = Vec::new();
        for lane in 0..3 {
            let (c, e) = (client.clone(), edge.clone());
            let urls: Vec<String> = draws.iter().skip(lane).step_by(3).map(|i| format!("{e}{}", paths[*i])).collect();
            tasks.push(tokio::spawn(async move {
                let mut bad = Vec::new();
                for u in urls {
                    let r = c.get(&u).send().await.unwrap();
                    let cache = r.headers().get("x-cache").map(|v| v.to_str().unwrap().to_string());
                    if r.status() != 200 || cache.as_deref() != Some("MISS") {
                        bad.push((u, r.status().as_u16(), cache));
                    }
                    r.bytes().await.unwrap();
                }
                bad
            }));
        }
        for t in tasks {
            let bad = t.await.unwrap();
            assert!(bad.is_empty(), "{arm}: {:?}", &bad[..bad.len().min(5)]);
        }
        let elapsed = started.elapsed();
        let (hits, all) = fleet_cache(&bases).await;
        for b in &bases {
            per_replica.push(fleet_cache(std::slice::from_ref(b)).await.1);
        }
        // Varnish kept nothing: every request reached exactly one origin.
        assert_eq!(all, REPLAY as u64, "{arm}: origin responses {per_replica:?}");
        assert!(per_replica.iter().all(|n| *n as usize > REPLAY / 6), "{arm}: unbalanced {per_replica:?}");
        let ratio = hits as f64 / all as f64;
        eprintln!(
            "{arm}: fleet memory hit ratio {ratio:.3} ({hits}/{all}), per replica {per_replica:?}, {:.1} s",
            elapsed.as_secs_f64()
        );
        ratios.push(ratio);
        if hashed {
            // Writes to one URL (as every `POST /v1/uploads` is) are spread over the replicas
            // instead of hashed to one of them (these replicas have no uploads, so the probe
            // POSTs an image path: a 405 each replica counts as route "other").
            let before: Vec<u64> = upload_route_counts(&bases).await;
            for _ in 0..30 {
                client
                    .post(format!("{edge}/probe/post/spread"))
                    .body("{}")
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
            }
            let after = upload_route_counts(&bases).await;
            let posts: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
            assert_eq!(posts.iter().sum::<u64>(), 30, "every POST reaches one replica: {posts:?}");
            assert!(posts.iter().all(|n| *n >= 3), "POSTs of one URL should be spread: {posts:?}");
        }
        if hashed {
            kept = Some((replicas, bases, edge_proc, edge, tmp.path().join(arm)));
        }
    }
    let (random, hashed) = (ratios[0], ratios[1]);
    // Measured on the 2-core build machine: random 0.663, hashed 0.834, i.e. half the misses
    // (transforms): 399 instead of 809 of 2,400.
    assert!(
        hashed >= random + 0.1 && (1.0 - hashed) <= 0.65 * (1.0 - random),
        "consistent hashing should multiply the fleet's memory cache: hashed {hashed:.3} vs random {random:.3}"
    );

    // A replica goes down: its share of the URLs is served by the others, at once (the failed
    // fetch is retried on the next replica on the ring) and after the probe marks it sick (the
    // director skips it).
    let (mut replicas, bases, _edge_proc, edge, dir) = kept.unwrap();
    replicas[1].take();
    let client = reqwest::Client::new();
    let before = fleet_cache(&[bases[0].clone(), bases[2].clone()]).await.1;
    let mut served = 0;
    for round in 0..2 {
        for p in paths.iter().take(90) {
            let r = client.get(format!("{edge}{p}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "round {round}: {p}");
            served += 1;
        }
        if round == 0 {
            // Probe: interval 1 s, window 3, threshold 2.
            tokio::time::sleep(Duration::from_secs(4)).await;
            let out = Command::new("varnishadm").arg("-n").arg(dir.join("work")).args(["backend.list"]).output();
            if let Ok(out) = out {
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                let line = text.lines().find(|l| l.contains("imago2")).unwrap_or_default().to_string();
                assert!(line.contains("sick"), "the probe should mark imago2 sick: {text}");
            }
        }
    }
    assert_eq!(fleet_cache(&[bases[0].clone(), bases[2].clone()]).await.1 - before, served);
}
