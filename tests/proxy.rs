//! The signed transform proxy against the real server on loopback, with real photos.

mod common;

use common::*;
use serde_json::Value;

const ORIENT: [&str; 16] = [
    "orientation/Landscape_1.jpg",
    "orientation/Landscape_2.jpg",
    "orientation/Landscape_3.jpg",
    "orientation/Landscape_4.jpg",
    "orientation/Landscape_5.jpg",
    "orientation/Landscape_6.jpg",
    "orientation/Landscape_7.jpg",
    "orientation/Landscape_8.jpg",
    "orientation/Portrait_1.jpg",
    "orientation/Portrait_2.jpg",
    "orientation/Portrait_3.jpg",
    "orientation/Portrait_4.jpg",
    "orientation/Portrait_5.jpg",
    "orientation/Portrait_6.jpg",
    "orientation/Portrait_7.jpg",
    "orientation/Portrait_8.jpg",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_sixteen_exif_orientations_come_out_upright() {
    let s = start(&ORIENT, |_| {}).await;
    for kind in ["Landscape", "Portrait"] {
        let reference = decode(
            &s.get(&s.url("w:300", &format!("local:///orientation/{kind}_1.jpg"), Some("png")))
                .await
                .bytes()
                .await
                .unwrap(),
        );
        let expect = if kind == "Landscape" { (300, 200) } else { (300, 450) };
        assert_eq!(reference.dimensions(), expect);
        for n in 2..=8 {
            let r = s.get(&s.url("w:300", &format!("local:///orientation/{kind}_{n}.jpg"), Some("png"))).await;
            assert_eq!(r.status(), 200);
            let img = decode(&r.bytes().await.unwrap());
            assert_eq!(img.dimensions(), expect, "{kind}_{n} dimensions");
            let d = mean_abs_diff(&img, &reference);
            assert!(d < 6.0, "{kind}_{n} differs from {kind}_1 by {d:.1} (not upright?)");
        }
        // ar:0 leaves the stored orientation: proves the check above can fail.
        let raw = decode(
            &s.get(&s.url("w:300/ar:0", &format!("local:///orientation/{kind}_3.jpg"), Some("png")))
                .await
                .bytes()
                .await
                .unwrap(),
        );
        assert!(mean_abs_diff(&raw, &reference) > 15.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_profiles_convert_to_srgb() {
    let s = start(&["p3.jpg", "adobergb.jpg", "cmyk.jpg", "rgb16.png"], |_| {}).await;
    let refs: Value = serde_json::from_slice(&fixture("reference.json")).unwrap();
    for name in ["p3", "adobergb", "cmyk", "rgb16"] {
        let r = &refs[name];
        let file = r["fixture"].as_str().unwrap();
        let resp = s.get(&s.url("", &format!("local:///{file}"), Some("png"))).await;
        assert_eq!(resp.status(), 200, "{name}");
        let img = decode(&resp.bytes().await.unwrap());
        assert_eq!(
            (img.width() as u64, img.height() as u64),
            (r["width"].as_u64().unwrap(), r["height"].as_u64().unwrap())
        );
        let m = mean_rgb(&img);
        let want: Vec<f64> = r["mean_rgb_reference"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        for c in 0..3 {
            assert!((m[c] - want[c]).abs() < 2.5, "{name} channel {c}: {:.2} vs reference {:.2}", m[c], want[c]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_dimensions_are_exact_for_each_resize_type() {
    let s = start(&["nasa_large.jpg"], |_| {}).await;
    // 5250x3450 source.
    let cases = [
        ("rs:fit:800:800", (800, 526)),
        ("rs:fill:800:800", (800, 800)),
        ("rs:fill:800:800/g:sm", (800, 800)),
        ("rs:fill:300:500/g:nowe", (300, 500)),
        ("rs:fill:300:500/g:fp:0.2:0.8", (300, 500)),
        ("rs:fill-down:800:400", (800, 400)),
        ("rs:force:640:100", (640, 100)),
        ("rs:auto:600:400", (600, 400)),
        ("rs:auto:400:600", (400, 263)),
        ("w:400/h:100", (152, 100)),
        ("w:400/dpr:2", (800, 526)),
        ("w:250/mw:500", (500, 329)),
        ("rs:fit:600:600/ex:1", (600, 600)),
        ("rs:fit:600:600/ex:1:so", (600, 600)),
        ("w:200/pd:10:20", (240, 151)),
        ("c:1000:1000/w:100", (100, 100)),
        ("c:0.5:0.5:sm/w:300", (300, 197)),
        ("w:300/rot:90", (197, 300)),
        ("w:300/fl:1:1/bl:1/sh:1", (300, 197)),
    ];
    for (opts, (w, h)) in cases {
        for ext in ["jpg", "webp"] {
            let r = s.get(&s.url(opts, "local:///nasa_large.jpg", Some(ext))).await;
            assert_eq!(r.status(), 200, "{opts} {ext}");
            let img = decode(&r.bytes().await.unwrap());
            assert_eq!(img.dimensions(), (w, h), "{opts} {ext}");
        }
    }
    let r = s.get(&s.url("rs:fill:320:200", "local:///nasa_large.jpg", Some("avif"))).await;
    assert_eq!(r.headers()["content-type"], "image/avif");
    assert_eq!(avif_dimensions(&r.bytes().await.unwrap()), Some((320, 200)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpha_is_kept_where_the_format_has_it_and_flattened_elsewhere() {
    let s = start(&["rose_alpha.png"], |_| {}).await;
    for ext in ["png", "webp"] {
        let img = decode(&s.get(&s.url("w:200", "local:///rose_alpha.png", Some(ext))).await.bytes().await.unwrap());
        let transparent = img.pixels().filter(|p| p[3] == 0).count();
        let opaque = img.pixels().filter(|p| p[3] == 255).count();
        assert!(transparent > 1000 && opaque > 1000, "{ext}: {transparent} transparent, {opaque} opaque");
    }
    let img =
        decode(&s.get(&s.url("w:200/bg:255:0:0", "local:///rose_alpha.png", Some("jpg"))).await.bytes().await.unwrap());
    assert!(img.pixels().all(|p| p[3] == 255));
    // The corner is transparent in the source: flattened onto the red background.
    let c = img.get_pixel(0, 0);
    assert!(c[0] > 200 && c[1] < 60 && c[2] < 60, "{c:?}");
}

fn gif_frames(b: &[u8]) -> usize {
    use image::AnimationDecoder;
    image::codecs::gif::GifDecoder::new(std::io::Cursor::new(b)).unwrap().into_frames().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn animated_gif_keeps_its_frames() {
    let s = start(&["earth_anim.gif"], |_| {}).await;
    let r = s.get(&s.url("w:100", "local:///earth_anim.gif", Some("gif"))).await;
    assert_eq!(r.status(), 200);
    let b = r.bytes().await.unwrap();
    assert_eq!(gif_frames(&b), 44);
    let first = image::load_from_memory(&b).unwrap();
    assert_eq!((first.width(), first.height()), (100, 100));
    let r = s.get(&s.url("w:100", "local:///earth_anim.gif", Some("webp"))).await;
    let b = r.bytes().await.unwrap();
    assert!(contains(&b, b"ANIM") && contains(&b, b"ANMF"), "animated WebP");
    // A still format takes the first frame.
    let r = s.get(&s.url("w:100", "local:///earth_anim.gif", Some("jpg"))).await;
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (100, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gps_and_exif_are_stripped_in_every_format() {
    let s = start(&["gps.jpg"], |_| {}).await;
    let src = fixture("gps.jpg");
    assert!(contains(&src, b"Exif\0\0") && contains(&src, b"GPS"), "fixture has GPS");
    for ext in ["jpg", "webp", "avif", "png"] {
        let b = s.get(&s.url("w:400", "local:///gps.jpg", Some(ext))).await.bytes().await.unwrap();
        for marker in [&b"Exif"[..], b"EXIF", b"GPS", b"xmpmeta", b"NIKON", b"exif:"] {
            assert!(!contains(&b, marker), "{ext} output still has {:?}", String::from_utf8_lossy(marker));
        }
    }
    // kcr:1 keeps the copyright notice and nothing else.
    let c = start(&["copyright.jpg"], |_| {}).await;
    let b = c.get(&c.url("w:200/kcr:1", "local:///copyright.jpg", Some("jpg"))).await.bytes().await.unwrap();
    assert!(contains(&b, b"(c) 2010 Dave Perrett"), "copyright kept");
    assert!(!contains(&b, b"TestCam") && !contains(&b, b"GPS"), "everything else stripped");
    let b = c.get(&c.url("w:200", "local:///copyright.jpg", Some("jpg"))).await.bytes().await.unwrap();
    assert!(!contains(&b, b"Dave Perrett"), "stripped by default");
    // sm:0 keeps it: the check above can fail.
    let b = s.get(&s.url("w:400/sm:0", "local:///gps.jpg", Some("jpg"))).await.bytes().await.unwrap();
    assert!(contains(&b, b"Exif"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_headers_head_and_304() {
    let s = start(&["orientation/Landscape_1.jpg"], |_| {}).await;
    let url = s.url("w:320", "local:///orientation/Landscape_1.jpg", Some("webp"));
    let r = s.get(&url).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/webp");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-disposition"].to_str().unwrap().starts_with("inline"));
    assert!(h["cache-control"].to_str().unwrap().contains("immutable"));
    assert!(h.contains_key("last-modified"));
    let etag = h["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"'), "strong ETag");
    let body = r.bytes().await.unwrap();
    assert_eq!(h["content-length"].to_str().unwrap().parse::<usize>().unwrap(), body.len());
    // HEAD: same headers, no body.
    let head = s.client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["etag"].to_str().unwrap(), etag);
    assert!(head.bytes().await.unwrap().is_empty());
    // 304 without fetching or transforming.
    std::fs::remove_file(s.root.join("orientation/Landscape_1.jpg")).unwrap();
    let before = s.transforms();
    let r = s.get_with(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), 304);
    assert_eq!(s.transforms(), before);
    // A range request does not break anything.
    let r = s.get_with(&url, &[("range", "bytes=0-10")]).await;
    assert!(r.status() == 200 || r.status() == 206);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_is_reachable() {
    let s = start(&["orientation/Landscape_1.jpg", "earth_anim.gif"], |c| {
        c.max_animation_frames = 10;
    })
    .await;
    s.put("notes.txt", b"hello, not an image");
    let mut trunc = fixture("orientation/Landscape_1.jpg");
    trunc.truncate(30_000);
    s.put("trunc.jpg", &trunc);
    let photo = "local:///orientation/Landscape_1.jpg";
    let good = s.url("w:100", photo, Some("jpg"));
    let path = good.trim_start_matches(&s.base);

    assert_error(s.get(&format!("{}/", s.base)).await, 400, "invalid-url").await;
    let tampered = good.replace("w:100", "w:101");
    assert_error(s.get(&tampered).await, 403, "invalid-signature").await;
    assert_error(
        s.get(&format!("{}/insecure{}", s.base, &path[path[1..].find('/').unwrap() + 1..])).await,
        403,
        "invalid-signature",
    )
    .await;
    assert_error(s.get(&s.url("w:100/exp:1000", photo, None)).await, 410, "url-expired").await;
    assert_error(s.get(&s.url("zoomx:2", photo, None)).await, 400, "unknown-option").await;
    let b = assert_error(s.get(&s.url("w:abc", photo, None)).await, 400, "invalid-option").await;
    assert!(b["message"].as_str().unwrap().contains("`w`"));
    // Plain sources with dot segments are normalised away by HTTP clients; base64 keeps them.
    for evil in ["local:///../etc/passwd", "local:///a/../../etc/passwd", "local:////etc/passwd", "local:///a/./b.jpg"]
    {
        assert_error(s.get(&s.url_b64("w:1", evil)).await, 400, "invalid-source").await;
    }
    // Percent-decoding happens once (plain form only): a doubly encoded `..` is a literal name
    // inside the store.
    assert_error(s.get(&s.url("w:1", "local:///%2e%2e/etc/passwd", None)).await, 404, "source-not-found").await;
    assert_error(s.get(&s.url("w:1", "ftp://example.com/a.jpg", None)).await, 400, "invalid-source").await;
    assert_error(s.get(&s.url("w:1", "local:///missing.jpg", None)).await, 404, "source-not-found").await;
    assert_error(
        s.get(&s.url("w:1", "http://169.254.169.254/latest/meta-data", None)).await,
        403,
        "source-not-allowed",
    )
    .await;
    assert_error(s.get(&s.url("w:1", "s3://bucket/a.jpg", None)).await, 403, "source-not-allowed").await;
    assert_error(s.get(&s.url("w:1", "local:///notes.txt", None)).await, 415, "unsupported-format").await;
    assert_error(s.get(&s.url("w:100", "local:///trunc.jpg", Some("jpg"))).await, 422, "invalid-image").await;
    assert_error(s.get(&s.url("w:100", "local:///earth_anim.gif", Some("gif"))).await, 422, "too-many-frames").await;
    assert_error(s.get(&s.url("w:60000/el:1", photo, None)).await, 422, "output-too-large").await;
    let r = s.client.post(&good).send().await.unwrap();
    assert_error(r, 405, "method-not-allowed").await;
    // The process is still up and serving.
    assert_eq!(s.get(&good).await.status(), 200);

    let small = start(&["orientation/Landscape_1.jpg"], |c| {
        c.max_src_bytes = 1000;
    })
    .await;
    assert_error(small.get(&small.url("w:1", photo, None)).await, 413, "source-too-large").await;
    let tiny = start(&["orientation/Landscape_1.jpg"], |c| {
        c.max_src_megapixels = 1.0;
    })
    .await;
    assert_error(tiny.get(&tiny.url("w:1", photo, None)).await, 422, "image-too-large").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_when_the_queue_is_full() {
    let s = start(&["nasa_large.jpg"], |c| {
        c.workers = 1;
        c.queue_size = 1;
        c.cache_size_mb = 0;
    })
    .await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let url = s.url(&format!("w:{}", 1000 + i), "local:///nasa_large.jpg", Some("webp"));
        let c = s.client.clone();
        tasks.push(tokio::spawn(async move { c.get(&url).send().await.unwrap() }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "1");
            assert_error(r, 429, "busy").await;
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_truncation_insecure_and_presets() {
    let old_key = "aa".repeat(32);
    let old_salt = "bb".repeat(16);
    let s = start(&["orientation/Landscape_1.jpg"], |c| {
        c.key = imago::config::List::from_strs(&[KEY, &old_key]);
        c.salt = imago::config::List::from_strs(&[SALT, &old_salt]);
        c.allow_insecure = true;
        c.presets.insert("thumb".into(), "rs:fill:64:64".into());
    })
    .await;
    let old = imago_signing::Signer::new(imago_signing::KeyPair::from_hex(&old_key, &old_salt).unwrap());
    let path = imago_signing::UrlBuilder::new()
        .width(50)
        .extension("png")
        .sign(&old, "local:///orientation/Landscape_1.jpg")
        .unwrap();
    assert_eq!(s.get(&format!("{}{}", s.base, path)).await.status(), 200);
    let r = s.get(&format!("{}/insecure/pr:thumb/plain/local:///orientation/Landscape_1.jpg@png", s.base)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (64, 64));

    let t = start(&["orientation/Landscape_1.jpg"], |c| c.signature_size = 8).await;
    let signer = imago_signing::Signer::new(imago_signing::KeyPair::from_hex(KEY, SALT).unwrap())
        .with_signature_size(8)
        .unwrap();
    let p = imago_signing::UrlBuilder::new().width(50).sign(&signer, "local:///orientation/Landscape_1.jpg").unwrap();
    assert_eq!(t.get(&format!("{}{}", t.base, p)).await.status(), 200);
    assert_eq!(t.get(&t.url("w:50", "local:///orientation/Landscape_1.jpg", None)).await.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics() {
    let s = start(&["orientation/Landscape_1.jpg"], |_| {}).await;
    assert_eq!(s.get(&format!("{}/healthz", s.base)).await.status(), 200);
    assert_eq!(s.get(&format!("{}/readyz", s.base)).await.status(), 200);
    s.get(&s.url("w:10", "local:///orientation/Landscape_1.jpg", None)).await;
    let m = s.get(&format!("{}/metrics", s.base)).await.text().await.unwrap();
    assert!(m.contains("imago_http_requests_total{route=\"image\",status=\"200\"} 1"), "{m}");
    assert!(m.contains("imago_transforms_total 1"));
}

/// Verified URLs are remembered (the request memo skips HMAC and parsing on repeats), but a
/// remembered URL still expires, and a wrong signature is never answered from the memo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_urls_still_expire_and_tampering_is_still_refused() {
    let s = start(&["orientation/Landscape_1.jpg"], |_| {}).await;
    let photo = "local:///orientation/Landscape_1.jpg";
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 2;
    let u = s.url(&format!("w:100/exp:{exp}"), photo, Some("jpg"));
    for _ in 0..3 {
        let r = s.get(&u).await;
        assert_eq!(r.status(), 200);
        // A cache hit: remembered request, cached variant.
    }
    // Same options, signature altered in its last character: not the remembered path.
    let sig_end = u.trim_start_matches(&s.base)[1..].find('/').unwrap() + 1 + s.base.len();
    let mut tampered = u.clone();
    let last = tampered.as_bytes()[sig_end - 1];
    tampered.replace_range(sig_end - 1..sig_end, if last == b'A' { "B" } else { "A" });
    assert_error(s.get(&tampered).await, 403, "invalid-signature").await;
    while std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() <= exp {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_error(s.get(&u).await, 410, "url-expired").await;
}
