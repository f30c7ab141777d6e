//! A real CDN edge in front of imago: Debian's Varnish on loopback with the VCL shipped in
//! `docker/varnish/default.vcl`. A repeated request is served by the edge with no second origin
//! hit, and Chrome-like and Safari-like `Accept` headers get their own correct variants.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// The varnishd process and its working directory (removed after the process is stopped).
struct Varnish(Child, #[allow(dead_code)] tempfile::TempDir);
impl Drop for Varnish {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_varnish(origin_port: u16) -> Option<(Varnish, String)> {
    let varnishd = ["/usr/sbin/varnishd", "/usr/bin/varnishd"].into_iter().find(|p| std::path::Path::new(p).exists());
    let Some(varnishd) = varnishd else {
        assert!(std::env::var("CI").is_err(), "varnishd is required in CI (scripts/deps.sh test installs it)");
        eprintln!("SKIP: varnishd not installed");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let vcl = std::fs::read_to_string(fixture_path("../../docker/varnish/default.vcl")).unwrap();
    let vcl = vcl
        .replace(".host = \"imago\";", ".host = \"127.0.0.1\";")
        .replace(".port = \"8080\";", &format!(".port = \"{origin_port}\";"));
    let vcl_path = dir.path().join("test.vcl");
    std::fs::write(&vcl_path, vcl).unwrap();
    let port = free_port();
    let child = Command::new(varnishd)
        .args(["-F", "-a", &format!("127.0.0.1:{port}"), "-f"])
        .arg(&vcl_path)
        .arg("-n")
        .arg(dir.path().join("work"))
        .args(["-s", "malloc,64m", "-p", "vcc_allow_inline_c=off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some((Varnish(child, dir), format!("http://127.0.0.1:{port}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn varnish_serves_repeats_and_keeps_accept_variants_apart() {
    let s = start(&["nasa_large.jpg"], |c| c.auto_quality = false).await;
    let origin_port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    let Some((_varnish, edge)) = start_varnish(origin_port) else { return };
    let client = reqwest::Client::new();
    // Wait for the edge and its health probe.
    let path = s.url("w:320", "local:///nasa_large.jpg", None).trim_start_matches(&s.base).to_string();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{edge}/healthz")).send().await {
            if r.status() == 200 {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "varnish did not come up");
    let origin_hits = || s.state.metrics.http_requests.with_label_values(&["image", "200"]).get();
    let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    let chrome2 = "image/avif,image/webp,*/*";
    let safari = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";
    let get = |accept: &'static str| {
        let (c, u) = (client.clone(), format!("{edge}{path}"));
        async move {
            let r = c.get(u).header("accept", accept).send().await.unwrap();
            let ct = r.headers()["content-type"].to_str().unwrap().to_string();
            let xc = r.headers().get("x-cache").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            let status = r.status().as_u16();
            (status, ct, xc, r.bytes().await.unwrap())
        }
    };
    let a = get(chrome).await;
    assert_eq!((a.0, a.1.as_str(), a.2.as_str()), (200, "image/avif", "MISS"));
    let hits = origin_hits();
    let b = get(chrome).await;
    assert_eq!((b.1.as_str(), b.2.as_str()), ("image/avif", "HIT"));
    assert_eq!(b.3, a.3);
    assert_eq!(origin_hits(), hits, "the repeat reached the origin");
    // Another AVIF-capable Accept string normalises to the same class: still a hit.
    let c = get(chrome2).await;
    assert_eq!((c.1.as_str(), c.2.as_str()), ("image/avif", "HIT"));
    // Safari gets its own variant (WebP), then a hit on repeat.
    let d = get(safari).await;
    assert_eq!((d.1.as_str(), d.2.as_str()), ("image/webp", "MISS"));
    let e = get(safari).await;
    assert_eq!((e.1.as_str(), e.2.as_str()), ("image/webp", "HIT"));
    assert_eq!(origin_hits(), hits + 1);
    assert_eq!(s.transforms(), 2);
}

/// Issue #16: the edge's normalisation of the hint headers (DPR, Width, Viewport-Width) maps
/// every request to a value the origin resolves exactly as it resolves the raw request: for
/// random hints, the response through Varnish is the variant (ETag) the origin gives the raw
/// headers. So the edge changes no bytes and keeps a few objects per URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn varnish_hint_normalisation_matches_the_origin() {
    let s = start(&["nasa_large.jpg"], |c| c.auto_quality = false).await;
    let origin_port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    let Some((_varnish, edge)) = start_varnish(origin_port) else { return };
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if client.get(format!("{edge}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "varnish did not come up");
    let url = s.url("w:400", "local:///nasa_large.jpg", Some("jpg"));
    let path = url.trim_start_matches(&s.base).to_string();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut below = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let etag = |r: &reqwest::Response| r.headers().get("etag").map(|v| v.to_str().unwrap().to_string());
    let (mut mismatches, mut misses) = (Vec::new(), 0);
    for _ in 0..60 {
        let mut h: Vec<(&str, String)> = Vec::new();
        if below(5) > 0 {
            let dpr = format!("{:.3}", 0.5 + below(3500) as f64 / 1000.0);
            h.push((if below(2) == 0 { "sec-ch-dpr" } else { "dpr" }, dpr));
        }
        if below(3) == 0 {
            h.push((if below(2) == 0 { "sec-ch-width" } else { "width" }, (1 + below(5000)).to_string()));
        }
        if below(3) > 0 {
            let vw = if below(4) == 0 { format!("{}.5", below(2000)) } else { (1 + below(2000)).to_string() };
            h.push((if below(2) == 0 { "sec-ch-viewport-width" } else { "viewport-width" }, vw));
        }
        let send = |base: &str| {
            let mut r = client.get(format!("{base}{path}"));
            for (k, v) in &h {
                r = r.header(*k, v.as_str());
            }
            r.send()
        };
        let at_edge = send(&edge).await.unwrap();
        let at_origin = send(&s.base).await.unwrap();
        assert_eq!((at_edge.status().as_u16(), at_origin.status().as_u16()), (200, 200), "{h:?}");
        misses += usize::from(at_edge.headers().get("x-cache").is_some_and(|v| v == "MISS"));
        if etag(&at_edge) != etag(&at_origin) {
            mismatches.push(format!(
                "{h:?}: edge {} / origin {}",
                at_edge.headers()["x-imago-variant"].to_str().unwrap(),
                at_origin.headers()["x-imago-variant"].to_str().unwrap()
            ));
        }
    }
    println!("60 random hint sets: {misses} edge misses");
    assert!(mismatches.is_empty(), "edge and origin disagree:\n{}", mismatches.join("\n"));
}
