//! A real CDN edge in front of imago: Debian's Varnish on loopback with the VCL shipped in
//! `docker/varnish/default.vcl`. A repeated request is served by the edge with no second origin
//! hit, and Chrome-like and Safari-like `Accept` headers get their own correct variants. Upload
//! tickets point at the edge (`IMAGO_PUBLIC_URL`), and what they return works through it.

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

/// The token the edge's VCL expects on BAN requests (varnishd's environment) and imago sends.
const PURGE_TOKEN: &str = "edge-purge-token-0123456789";

fn start_varnish(origin_port: u16) -> Option<(Varnish, String)> {
    start_varnish_on(origin_port, free_port())
}

/// Varnish with default.vcl on 127.0.0.1:`port`, in front of the origin on `origin_port`.
fn start_varnish_on(origin_port: u16, port: u16) -> Option<(Varnish, String)> {
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
    let child = Command::new(varnishd)
        .env("IMAGO_PURGE_TOKEN", PURGE_TOKEN)
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
    // Issue #20: Chromium with JPEG XL (and Safari 17) is a fourth class: its own variant, JPEG
    // XL, a hit for either browser's Accept; Chrome's AVIF variant is still a hit.
    let chromium_jxl = "image/jxl,image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    let safari17 = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,\
                    image/svg+xml,image/*;q=0.8,*/*;q=0.5";
    let f = get(chromium_jxl).await;
    assert_eq!((f.1.as_str(), f.2.as_str()), ("image/jxl", "MISS"));
    let g = get(safari17).await;
    assert_eq!((g.1.as_str(), g.2.as_str()), ("image/jxl", "HIT"));
    assert_eq!(g.3, f.3);
    let h = get(chrome).await;
    assert_eq!((h.1.as_str(), h.2.as_str()), ("image/avif", "HIT"));
    // `; q=0` with a space refuses AVIF at the edge as at the origin (it used to be kept as AVIF).
    let i = get("image/avif; q=0,image/webp").await;
    assert_eq!((i.1.as_str(), i.2.as_str()), ("image/webp", "HIT"));
    assert_eq!(origin_hits(), hits + 2);
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

async fn wait_status(url: &str, want: u16) -> bool {
    let c = reqwest::Client::new();
    for _ in 0..150 {
        if let Ok(r) = c.get(url).timeout(Duration::from_millis(500)).send().await {
            if r.status().as_u16() == want {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Issue #17: the real binary behind the shipped default.vcl, as the compose stack runs it. A
/// container binds a wildcard address; without IMAGO_PUBLIC_URL every ticket pointed at
/// http://0.0.0.0:8080, so imago now refuses to start that way. With the public URL set to the
/// edge, the ticket's upload URL, image_url and info_url all work through Varnish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_ticket_urls_work_through_the_edge() {
    let tmp = tempfile::tempdir().unwrap();
    let api_key = "edge-api-key-0123456789";
    let imago = |bind: String, public_url: Option<String>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_imago"));
        c.arg("serve")
            .env("IMAGO_BIND", bind)
            .env("IMAGO_KEY", KEY)
            .env("IMAGO_SALT", SALT)
            .env("IMAGO_API_KEYS", api_key)
            .env("IMAGO_LOCAL_ROOT", tmp.path().join("images"))
            .env("IMAGO_ANALYTICS", "false")
            .env("IMAGO_AUTO_QUALITY", "false")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(u) = public_url {
            c.env("IMAGO_PUBLIC_URL", u);
        }
        c.spawn().unwrap()
    };

    // Uploads on, wildcard bind, no public URL: refused at start, naming the setting.
    let mut refused = imago(format!("0.0.0.0:{}", free_port()), None);
    let mut exited = None;
    for _ in 0..100 {
        if let Some(st) = refused.try_wait().unwrap() {
            exited = Some(st);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if exited.is_none() {
        let _ = refused.kill();
    }
    let out = refused.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        exited.is_some_and(|s| !s.success()) && stderr.contains("IMAGO_PUBLIC_URL"),
        "imago must refuse to start with uploads on, a wildcard bind and no IMAGO_PUBLIC_URL: {exited:?} {stderr}"
    );

    let (origin_port, edge_port) = (free_port(), free_port());
    let edge = format!("http://127.0.0.1:{edge_port}");
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _origin = Kill(imago(format!("127.0.0.1:{origin_port}"), Some(edge.clone())));
    assert!(wait_status(&format!("http://127.0.0.1:{origin_port}/healthz"), 200).await, "imago did not start");
    let Some((_varnish, edge_url)) = start_varnish_on(origin_port, edge_port) else { return };
    assert_eq!(edge_url, edge);
    assert!(wait_status(&format!("{edge}/healthz"), 200).await, "varnish did not come up");

    let client = reqwest::Client::new();
    let photo = fixture("p3.jpg");
    let r = client
        .post(format!("{edge}/v1/uploads"))
        .bearer_auth(api_key)
        .json(&serde_json::json!({"content_type": "image/jpeg", "content_length": photo.len()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "ticket through the edge");
    let ticket: serde_json::Value = r.json().await.unwrap();
    for field in ["url", "image_url", "info_url"] {
        let u = ticket[field].as_str().unwrap_or_default();
        assert!(u.starts_with(&format!("{edge}/")), "{field} should point at the edge: {ticket}");
    }
    let mut put = client.put(ticket["url"].as_str().unwrap()).body(photo.clone());
    if let Some(h) = ticket["headers"].as_object() {
        for (k, v) in h {
            put = put.header(k.as_str(), v.as_str().unwrap());
        }
    }
    let r = put.send().await.unwrap();
    assert!(r.status().is_success(), "upload through the edge: {}", r.status());

    // The image URL the ticket returned, fetched through Varnish: the image, then an edge hit.
    let image_url = ticket["image_url"].as_str().unwrap();
    let first = client.get(image_url).send().await.unwrap();
    assert_eq!(first.status(), 200, "{image_url}");
    let first_bytes = first.bytes().await.unwrap();
    assert!(decode(&first_bytes).width() > 0);
    let second = client.get(image_url).send().await.unwrap();
    assert_eq!(second.headers().get("x-cache").map(|v| v.to_str().unwrap()), Some("HIT"));
    assert_eq!(second.bytes().await.unwrap(), first_bytes);
    let info = client.get(ticket["info_url"].as_str().unwrap()).bearer_auth(api_key).send().await.unwrap();
    assert_eq!(info.status(), 200, "info_url through the edge");
}

async fn edge_ready(edge: &str) -> bool {
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("{edge}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Issue #18: deletion reaches the edge. Every variant carries `Surrogate-Key` / `Cache-Tag`
/// (the image's tag, from the signed URL's source, and its tenant's). Three variants of one image
/// and one of another are cached by the real Varnish; `DELETE /v1/images/{key}` then bans the
/// first image's variants at the edge (an authenticated `BAN` the shipped VCL accepts) and drops
/// them from imago's memory: none is served any more, by the edge or by the origin, while the
/// other image's variant is still an edge hit. A `BAN` without the token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_purges_every_variant_at_the_edge_and_in_memory() {
    let edge_port = free_port();
    let key = "acme:acme-delete-key-0123456789";
    let photo = fixture("nasa_large.jpg");
    let s = start(&[], |c| {
        c.auto_quality = false;
        c.api_keys = imago::config::List::from_strs(&[key]);
        c.purge_varnish_urls = imago::config::List::from_strs(&[&format!("http://127.0.0.1:{edge_port}/")]);
        c.purge_token = Some(PURGE_TOKEN.into());
    })
    .await;
    s.put("uploads/acme/a.jpg", &photo);
    s.put("uploads/acme/b.jpg", &photo);
    let origin_port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    let Some((_varnish, edge)) = start_varnish_on(origin_port, edge_port) else { return };
    assert!(edge_ready(&edge).await, "varnish did not come up");
    let client = reqwest::Client::new();
    let path = |opts: &str, src: &str| s.url(opts, src, Some("jpg")).trim_start_matches(&s.base).to_string();
    let a: Vec<String> = ["w:120", "w:240", "w:360"].iter().map(|o| path(o, "local:///uploads/acme/a.jpg")).collect();
    let b = path("w:120", "local:///uploads/acme/b.jpg");
    let get = |url: String| {
        let c = client.clone();
        async move {
            let r = c.get(url).send().await.unwrap();
            let xc = r.headers().get("x-cache").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            (r.status().as_u16(), xc)
        }
    };
    // The origin tags each variant with the image and the tenant.
    let direct = s.get(&format!("{}{}", s.base, a[0])).await;
    let sk = direct.headers()["surrogate-key"].to_str().unwrap().to_string();
    let ct = direct.headers()["cache-tag"].to_str().unwrap().to_string();
    let tag = sk.split(' ').next().unwrap().to_string();
    assert!(tag.starts_with("img-") && tag.len() == 36, "{sk}");
    assert_eq!(sk, format!("{tag} tenant-acme"));
    assert_eq!(ct, format!("{tag},tenant-acme"));
    let other = s.get(&format!("{}{}", s.base, b)).await;
    assert_ne!(other.headers()["surrogate-key"], direct.headers()["surrogate-key"]);
    for u in a.iter().chain([&b]) {
        let first = get(format!("{edge}{u}")).await;
        assert_eq!(first.0, 200, "{u}");
        let again = client.get(format!("{edge}{u}")).send().await.unwrap();
        assert_eq!(again.headers()["x-cache"], "HIT", "{u}");
        // Tags are for the edge, not for clients.
        assert!(again.headers().get("surrogate-key").is_none() && again.headers().get("cache-tag").is_none());
    }
    // The VCL accepts BAN only with the token.
    for token in [None, Some("wrong-token-0123456789")] {
        let mut r = client
            .request(reqwest::Method::from_bytes(b"BAN").unwrap(), format!("{edge}/"))
            .header("x-imago-ban", &tag);
        if let Some(t) = token {
            r = r.header("x-imago-purge-token", t);
        }
        assert_eq!(r.send().await.unwrap().status(), 403, "{token:?}");
    }
    assert_eq!(get(format!("{edge}{}", a[0])).await, (200, "HIT".to_string()), "a refused BAN purged");

    let t = std::time::Instant::now();
    let del = client
        .delete(format!("{}/v1/images/uploads/acme/a.jpg", s.base))
        .bearer_auth("acme-delete-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    println!("DELETE with memory invalidation and one Varnish BAN: {:?}", t.elapsed());
    assert_eq!(s.state.metrics.edge_purges.with_label_values(&["ok"]).get(), 1);
    for u in &a {
        let (status, xc) = get(format!("{edge}{u}")).await;
        assert_eq!((status, xc.as_str()), (404, "MISS"), "{u}: still served by the edge after DELETE");
        let direct = s.get(&format!("{}{u}", s.base)).await;
        assert_eq!(direct.status(), 404, "{u}: still served from imago's memory after DELETE");
    }
    assert_eq!(get(format!("{edge}{b}")).await, (200, "HIT".to_string()), "the other image was purged too");
}
