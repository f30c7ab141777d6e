//! Issue #20 on the real server: the watermark (`wm:`) checked on pixels, the fallback image
//! (status, body, cache headers; never for a bad signature or option) and encrypted `/enc/`
//! sources (SDK round trip, tampered, wrong or missing key).

mod common;

use base64::Engine;
use common::*;
use image::{ImageFormat, Rgba, RgbaImage};
use imago_signing::{SourceCipher, UrlBuilder};

const PHOTO: &str = "orientation/Landscape_1.jpg"; // 1800x1200
const GREY: [u8; 3] = [128, 128, 128];
const RED: [u8; 3] = [255, 0, 0];
const ENC_KEY: &str = "1eb5b0e971ad7f45324c1bb15c947cb207c43152fa5c6c7f35c4f36e0c18e0f1";

fn png(img: &RgbaImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A 200×100 opaque grey image and a 20×10 opaque red watermark.
fn base_and_mark() -> (Vec<u8>, Vec<u8>) {
    let base = RgbaImage::from_pixel(200, 100, Rgba([GREY[0], GREY[1], GREY[2], 255]));
    let mark = RgbaImage::from_pixel(20, 10, Rgba([RED[0], RED[1], RED[2], 255]));
    (png(&base), png(&mark))
}

fn near(img: &RgbaImage, x: u32, y: u32, want: [u8; 3], tol: i32) -> bool {
    let p = img.get_pixel(x, y);
    (0..3).all(|i| (p[i] as i32 - want[i] as i32).abs() <= tol)
}

async fn get_png(s: &TestServer, opts: &str) -> RgbaImage {
    let r = s.get(&s.url(opts, "local:///grey.png", None)).await;
    let status = r.status();
    assert_eq!(status, 200, "{opts}: {}", r.text().await.unwrap_or_default());
    decode(&r.bytes().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermark_placement_opacity_scale_and_replicate_on_pixels() {
    let (base, mark) = base_and_mark();
    let data = base64::engine::general_purpose::STANDARD.encode(&mark);
    let s = start(&[PHOTO], |c| c.watermark_data = Some(data)).await;
    s.put("grey.png", &base);
    // (options, pixels that must be red, pixels that must stay grey)
    type Px = &'static [(u32, u32)];
    let cases: [(&str, Px, Px); 12] = [
        ("wm:1:nowe/f:png", &[(0, 0), (19, 9)], &[(20, 5), (25, 15), (190, 95)]),
        ("wm:1:soea/f:png", &[(180, 90), (199, 99)], &[(179, 95), (5, 5)]),
        // Centre: left = (200 - 20 + 1) / 2 = 90, top = (100 - 10 + 1) / 2 = 45.
        ("wm:1/f:png", &[(90, 45), (109, 54)], &[(89, 50), (110, 50), (100, 44)]),
        ("wm:1:nowe:30:20/f:png", &[(30, 20), (49, 29)], &[(29, 25), (5, 5)]),
        // Fractions of the image: 0.1 × 200 = 20 px from the east edge, 0.1 × 100 = 10 from the top.
        ("wm:1:noea:0.1:0.1/f:png", &[(160, 10), (179, 19)], &[(185, 15), (170, 5)]),
        // Pixel offsets are CSS pixels: × DPR (w:100 at dpr:2 is the 200 px source).
        ("wm:1:nowe:10:10/dpr:2/w:100/f:png", &[(20, 20), (39, 29)], &[(15, 15), (5, 5)]),
        // scale 0.5: fitted into 100×50 (enlarged 5×).
        ("wm:1:nowe:0:0:0.5/f:png", &[(0, 0), (99, 49)], &[(101, 25), (50, 51)]),
        ("wm:1:re/f:png", &[(0, 0), (105, 55), (199, 99)], &[]),
        // Tiles 40×20 with the mark at (10, 5) in each.
        ("wm:1:re:20:10/f:png", &[(10, 5), (29, 14), (50, 25)], &[(2, 2), (35, 10), (45, 22)]),
        // Partly outside (negative offsets): the visible part is blended.
        ("wm:1:nowe:-10:-5/f:png", &[(0, 0), (9, 4)], &[(10, 2), (5, 5)]),
        // Larger than the image (scale 2 fits it into 400×200): it covers everything.
        ("wm:1:ce:0:0:2/f:png", &[(0, 0), (100, 50), (199, 99)], &[]),
        // Opacity 0 is no watermark at all.
        ("wm:0:nowe/f:png", &[], &[(0, 0), (100, 50)]),
    ];
    for (opts, red, grey) in cases {
        let img = get_png(&s, opts).await;
        assert_eq!(img.dimensions(), (200, 100), "{opts}");
        for &(x, y) in red {
            assert!(near(&img, x, y, RED, 2), "{opts}: ({x},{y}) is {:?}, not red", img.get_pixel(x, y));
        }
        for &(x, y) in grey {
            assert!(near(&img, x, y, GREY, 2), "{opts}: ({x},{y}) is {:?}, not grey", img.get_pixel(x, y));
        }
    }
    // Half opacity: half way between grey and red.
    let img = get_png(&s, "wm:0.5/f:png").await;
    assert!(near(&img, 100, 50, [191, 64, 64], 4), "{:?}", img.get_pixel(100, 50));
    // A real photo, JPEG out: the corner is red with the watermark, not without it.
    let r = s.get(&s.url("w:300/wm:1:soea", &format!("local:///{PHOTO}"), None)).await;
    assert_eq!(r.status(), 200);
    let with = decode(&r.bytes().await.unwrap());
    let without = decode(&s.get(&s.url("w:300", &format!("local:///{PHOTO}"), None)).await.bytes().await.unwrap());
    assert_eq!(with.dimensions(), (300, 200));
    assert!(near(&with, 290, 195, RED, 40), "{:?}", with.get_pixel(290, 195));
    assert!(!near(&without, 290, 195, RED, 40), "{:?}", without.get_pixel(290, 195));
    // Outside the mark the photo is the same.
    let a = image::imageops::crop_imm(&with, 0, 0, 250, 150).to_image();
    let b = image::imageops::crop_imm(&without, 0, 0, 250, 150).to_image();
    assert!(mean_abs_diff(&a, &b) < 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermark_server_opacity_and_no_watermark_configured() {
    let (base, mark) = base_and_mark();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wm.png");
    std::fs::write(&path, &mark).unwrap();
    let s = start(&[], |c| {
        c.watermark_path = Some(path.clone());
        c.watermark_opacity = 0.5;
    })
    .await;
    s.put("grey.png", &base);
    let img = get_png(&s, "wm:1/f:png").await;
    assert!(near(&img, 100, 50, [191, 64, 64], 4), "IMAGO_WATERMARK_OPACITY: {:?}", img.get_pixel(100, 50));
    // No watermark configured: `wm` is accepted and ignored, as imgproxy does.
    let s = start(&[], |_| {}).await;
    s.put("grey.png", &base);
    let img = get_png(&s, "wm:1/f:png").await;
    assert!(near(&img, 100, 50, GREY, 0), "{:?}", img.get_pixel(100, 50));
    // A watermark that is not an image refuses the start.
    let mut raw = imago::config::RawConfig {
        watermark_data: Some(base64::engine::general_purpose::STANDARD.encode(b"not an image at all")),
        key: imago::config::List::from_strs(&[KEY]),
        salt: imago::config::List::from_strs(&[SALT]),
        bind: "127.0.0.1:0".into(),
        ..Default::default()
    };
    raw.analytics = false;
    let e = imago::http::start(raw.validate(false).unwrap()).err().unwrap();
    assert!(e.contains("IMAGO_WATERMARK_PATH/_DATA"), "{e}");
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_image_for_missing_unreachable_and_corrupt_sources_only() {
    let s = start(&[PHOTO], |c| {
        c.fallback_image_path = Some(fixture_path("rose_alpha.png"));
        c.allowed_hosts = imago::config::List::from_strs(&["127.0.0.1"]);
        c.allow_private_networks = true;
    })
    .await;
    s.put("corrupt.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 this is not a JPEG after all");
    // A port nothing listens on: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://127.0.0.1:{}/x.jpg", closed.local_addr().unwrap().port());
    drop(closed);
    for (source, reason) in [
        ("local:///missing.jpg", "source-not-found"),
        ("local:///corrupt.jpg", "invalid-image"),
        (dead.as_str(), "upstream-error"),
    ] {
        let r = s.get(&s.url("w:50/f:png", source, None)).await;
        assert_eq!(r.status(), 200, "{source}");
        assert_eq!(header(&r, "fallback-image"), Some("1"), "{source}");
        assert_eq!(header(&r, "imago-fallback-reason"), Some(reason), "{source}");
        assert_eq!(header(&r, "cache-control"), Some("public, max-age=60"), "{source}");
        assert_eq!(header(&r, "content-type"), Some("image/png"), "{source}");
        assert!(header(&r, "etag").is_none() && header(&r, "last-modified").is_none(), "{source}");
        let img = decode(&r.bytes().await.unwrap());
        assert_eq!(img.width(), 50, "{source}: processed with the request's options");
    }
    // Never for a bad signature, a bad option or a disallowed source.
    let url = s.url("w:50/f:png", "local:///missing.jpg", None);
    let r = s.get(&url.replace("/w:50/", "/w:51/")).await;
    assert!(header(&r, "fallback-image").is_none());
    assert_error(r, 403, "invalid-signature").await;
    let r = s.get(&s.url("w:abc", "local:///missing.jpg", None)).await;
    assert!(header(&r, "fallback-image").is_none());
    assert_error(r, 400, "invalid-option").await;
    let r = s.get(&s.url("w:50", "http://example.com/a.jpg", None)).await;
    assert_error(r, 403, "source-not-allowed").await;
    // Once the source exists, the same URL serves it (the fallback was not cached as the image).
    s.put("missing.jpg", &fixture(PHOTO));
    let r = s.get(&url).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "fallback-image").is_none());
    assert!(header(&r, "etag").is_some());
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (50, 33));

    // IMAGO_FALLBACK_IMAGE_HTTP_CODE=0: the error's own status; TTL 0: no-store.
    let s = start(&[], |c| {
        c.fallback_image_data = Some(base64::engine::general_purpose::STANDARD.encode(fixture("rose_alpha.png")));
        c.fallback_image_http_code = 0;
        c.fallback_image_ttl = 0;
    })
    .await;
    let r = s.get(&s.url("w:40/f:webp", "local:///nope.png", None)).await;
    assert_eq!(r.status(), 404);
    assert_eq!(header(&r, "cache-control"), Some("no-store"));
    assert_eq!(header(&r, "content-type"), Some("image/webp"));
    assert_eq!(decode(&r.bytes().await.unwrap()).width(), 40);
    // Without a fallback image the error is answered as before.
    let s = start(&[], |_| {}).await;
    assert_error(s.get(&s.url("w:40", "local:///nope.png", None)).await, 404, "source-not-found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_sources_round_trip_and_refusals() {
    let s = start(&[PHOTO], |c| {
        c.source_url_encryption_key = Some(ENC_KEY.into());
        c.auto_quality = false;
    })
    .await;
    let source = format!("local:///{PHOTO}");
    let cipher = SourceCipher::from_hex(ENC_KEY).unwrap();
    let b = UrlBuilder::new().width(300).extension("png");
    let enc_path = b.clone().encrypt(cipher.clone()).path(&source).unwrap();
    assert!(enc_path.starts_with("/w:300/enc/") && !enc_path.contains("Landscape"), "{enc_path}");
    let r = s.get(&format!("{}{}", s.base, s.signer.signed_path(&enc_path))).await;
    assert_eq!(r.status(), 200);
    let enc_img = decode(&r.bytes().await.unwrap());
    let plain_img = decode(&s.get(&b.url(&s.signer, &s.base, &source).unwrap()).await.bytes().await.unwrap());
    assert_eq!(enc_img, plain_img, "the encrypted URL serves the same image");
    // Chunked like base64.
    let chunked = b.clone().encrypt(cipher.clone()).chunk_size(10).path(&source).unwrap();
    assert_eq!(s.get(&format!("{}{}", s.base, s.signer.signed_path(&chunked))).await.status(), 200);

    // Tampered ciphertext, signed: a clear 400; unsigned: the signature check answers first.
    let (head, tail) = enc_path.split_at(enc_path.len() - 12);
    let flipped = tail.chars().next().map(|c| if c == 'A' { 'B' } else { 'A' }).unwrap();
    let tampered = format!("{head}{flipped}{}", &tail[1..]);
    let r = s.get(&format!("{}{}", s.base, s.signer.signed_path(&tampered))).await;
    let body = assert_error(r, 400, "invalid-encrypted-source").await;
    assert!(!body.to_string().contains("Landscape"));
    let unsigned = s.signer.signed_path(&enc_path).replace(&enc_path, &tampered);
    assert_error(s.get(&format!("{}{unsigned}", s.base)).await, 403, "invalid-signature").await;
    // Another key.
    let other = SourceCipher::from_hex(&"ab".repeat(32)).unwrap();
    let wrong = b.clone().encrypt(other).path(&source).unwrap();
    assert_error(s.get(&format!("{}{}", s.base, s.signer.signed_path(&wrong))).await, 400, "invalid-encrypted-source")
        .await;
    // A server without a key.
    let s2 = start(&[PHOTO], |_| {}).await;
    let body = assert_error(
        s2.get(&format!("{}{}", s2.base, s2.signer.signed_path(&enc_path))).await,
        400,
        "invalid-encrypted-source",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("IMAGO_SOURCE_URL_ENCRYPTION_KEY"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermark_and_fallback_from_source_urls_load_once() {
    let (base, mark) = base_and_mark();
    // Imago sources, fetched through the source layer on first use.
    let s = start(&["earth_anim.gif"], |c| {
        c.watermark_url = Some("local:///aux/wm.png".into());
        c.fallback_image_url = Some("local:///aux/fallback.png".into());
    })
    .await;
    s.put("grey.png", &base);
    // Not there yet: the watermark's own fetch error; no fallback (the request's error stands).
    assert_error(s.get(&s.url("wm:1/f:png", "local:///grey.png", None)).await, 404, "source-not-found").await;
    assert_error(s.get(&s.url("w:10", "local:///missing.png", None)).await, 404, "source-not-found").await;
    s.put("aux/wm.png", &mark);
    s.put("aux/fallback.png", &base);
    let img = get_png(&s, "wm:1:nowe/f:png").await;
    assert!(near(&img, 0, 0, RED, 2), "{:?}", img.get_pixel(0, 0));
    let r = s.get(&s.url("w:10/f:png", "local:///missing.png", None)).await;
    assert_eq!((r.status().as_u16(), header(&r, "fallback-image")), (200, Some("1")));
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (10, 5));
    // Kept for the life of the process: removing the files changes nothing.
    std::fs::remove_file(s.root.join("aux/wm.png")).unwrap();
    std::fs::remove_file(s.root.join("aux/fallback.png")).unwrap();
    let img = get_png(&s, "wm:1:soea/f:png").await;
    assert!(near(&img, 199, 99, RED, 2), "{:?}", img.get_pixel(199, 99));
    let r = s.get(&s.url("w:12/f:png", "local:///missing.png", None)).await;
    assert_eq!(header(&r, "fallback-image"), Some("1"));
    // Animations are served without the watermark (stills only), still animated.
    let r = s.get(&s.url("wm:1/w:100", "local:///earth_anim.gif", Some("gif"))).await;
    assert_eq!(r.status(), 200);
    let gif = r.bytes().await.unwrap();
    let frames = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(gif.to_vec())).unwrap();
    use image::AnimationDecoder;
    assert!(frames.into_frames().count() > 1);
}
