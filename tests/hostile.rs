//! Hostile inputs: a generated corpus (made here, not downloaded) of bombs, truncated and corrupt
//! files, polyglots, SVG, frame floods, extreme aspect ratios, huge metadata; plus SSRF targets
//! and a slow origin. Each gets a clear 4xx (or a correct 200) with a stable code; the process
//! stays up.

mod common;

use std::io::Write;

use common::*;

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    out.extend_from_slice(&h.finalize().to_be_bytes());
}

/// A PNG declaring `w×h` pixels whose compressed data is tiny.
fn png(w: u32, h: u32, rows: usize) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    png_chunk(&mut out, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; w as usize + 1];
    for _ in 0..rows {
        z.write_all(&row).unwrap();
    }
    png_chunk(&mut out, b"IDAT", &z.finish().unwrap());
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A GIF with a `sw×sh` logical screen and `frames` 1×1 frames.
fn gif(sw: u16, sh: u16, frames: usize) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&sw.to_le_bytes());
    g.extend_from_slice(&sh.to_le_bytes());
    g.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2 entries
    g.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    g.extend_from_slice(&[0x21, 0xFF, 0x0B]);
    g.extend_from_slice(b"NETSCAPE2.0");
    g.extend_from_slice(&[3, 1, 0, 0, 0]);
    for i in 0..frames {
        g.extend_from_slice(&[0x21, 0xF9, 4, 0, 1, 0, 0, 0]); // graphic control, 1/100 s
        g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]); // 1×1 at 0,0
        g.extend_from_slice(&[2, 2, (0x44 | (i & 1)) as u8, 0x01, 0]); // LZW min 2, one pixel
    }
    g.push(0x3B);
    g
}

/// A WebP (VP8X) declaring a 16384×16384 canvas around a tiny real frame.
fn webp_bomb(real: &[u8]) -> Vec<u8> {
    // Take the VP8/VP8L chunk of a real small WebP.
    let vp8 = real.windows(4).position(|w| w == b"VP8 " || w == b"VP8L").unwrap();
    let frame = &real[vp8..];
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(b"VP8X");
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&[0, 0, 0, 0]);
    let m = 16383u32.to_le_bytes();
    body.extend_from_slice(&m[..3]);
    body.extend_from_slice(&m[..3]);
    body.extend_from_slice(frame);
    let mut f = b"RIFF".to_vec();
    f.extend_from_slice(&(body.len() as u32).to_le_bytes());
    f.extend(body);
    f
}

/// A JPEG with `n` extra 60 KB APP segments (EXIF-like and ICC-like garbage).
fn jpeg_with_huge_metadata(jpeg: &[u8], n: usize) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for i in 0..n {
        let payload_len = 60_000usize;
        let marker = if i % 2 == 0 { 0xE1 } else { 0xE2 };
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((payload_len + 2) as u16).to_be_bytes());
        let mut payload = if marker == 0xE1 { b"Exif\0\0".to_vec() } else { b"ICC_PROFILE\0\x01\x01".to_vec() };
        payload.resize(payload_len, (i % 251) as u8);
        out.extend_from_slice(&payload);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_hostile_corpus_gets_clear_answers() {
    let s = start(&["orientation/Landscape_1.jpg", "rose_alpha.png"], |c| c.max_animation_frames = 500).await;
    let photo = fixture("orientation/Landscape_1.jpg");
    let small_webp =
        s.get(&s.url("w:16", "local:///orientation/Landscape_1.jpg", Some("webp"))).await.bytes().await.unwrap();
    let small_avif =
        s.get(&s.url("w:64", "local:///orientation/Landscape_1.jpg", Some("avif"))).await.bytes().await.unwrap();
    let small_png = fixture("rose_alpha.png");
    let mut corrupt_header = photo.clone();
    // Zero the frame height/width in the SOF0/SOF2 segment.
    let sof = photo.windows(2).position(|w| w == [0xFF, 0xC0] || w == [0xFF, 0xC2]).unwrap();
    for b in &mut corrupt_header[sof + 5..sof + 9] {
        *b = 0;
    }
    let mut polyglot = photo.clone();
    polyglot.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
    let svg = br#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><script>alert(1)</script><image href="file:///etc/passwd"/><text>&b;</text></svg>"#;
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        ("bomb.png", png(50_000, 50_000, 1), "jpg", 422, "image-too-large"),
        // libwebp refuses a canvas larger than its only frame before anything is allocated.
        ("bomb.webp", webp_bomb(&small_webp), "jpg", 422, "invalid-image"),
        ("trunc.jpg", photo[..photo.len() / 3].to_vec(), "jpg", 422, "invalid-image"),
        ("trunc.png", small_png[..small_png.len() / 2].to_vec(), "png", 422, "invalid-image"),
        ("trunc.webp", small_webp[..small_webp.len() / 2].to_vec(), "png", 422, "invalid-image"),
        ("trunc.avif", small_avif[..small_avif.len() / 2].to_vec(), "png", 422, "invalid-image"),
        ("badsof.jpg", corrupt_header, "jpg", 422, "invalid-image"),
        ("empty.jpg", vec![], "jpg", 415, "unsupported-format"),
        ("one.jpg", vec![0xFF], "jpg", 415, "unsupported-format"),
        ("script.svg", svg.to_vec(), "png", 415, "unsupported-format"),
        ("page.html", b"<html><body>hi</body></html>".to_vec(), "png", 415, "unsupported-format"),
        ("frames.gif", gif(16, 16, 3000), "gif", 422, "too-many-frames"),
        ("tall.png", png(1, 100_000, 100_000), "png", 422, "output-too-large"),
    ];
    for (name, bytes, ext, status, code) in &cases {
        s.put(name, bytes);
        let r = s.get(&s.url("", &format!("local:///{name}"), Some(ext))).await;
        eprintln!("hostile case {name}: {}", r.status());
        assert_error(r, *status, code).await;
    }
    // Correct answers (200) where the file is a real image.
    let ok_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("frames-still.gif", gif(16, 16, 3000), "h:10/f:png"),
        // libvips sizes a GIF by its frames, not the declared 65000×65000 screen: nothing huge is
        // allocated, and the 1×1 image is served.
        ("bomb.gif", gif(65_000, 65_000, 1), "f:png"),
        ("tall-small.png", png(1, 100_000, 100_000), "h:500"),
        ("polyglot.jpg", polyglot, "w:100"),
        ("png-named.jpg", small_png.clone(), "w:100"),
        ("huge-meta.jpg", jpeg_with_huge_metadata(&photo, 40), "w:100"),
    ];
    for (name, bytes, opts) in &ok_cases {
        s.put(name, bytes);
        let r = s.get(&s.url(opts, &format!("local:///{name}"), None)).await;
        assert_eq!(r.status(), 200, "{name}");
        let b = r.bytes().await.unwrap();
        assert!(!contains(&b, b"<script") && !contains(&b, b"ICC_PROFILE\0\x01\x01\x01"), "{name} leaks input bytes");
        image::load_from_memory(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Still up.
    assert_eq!(s.get(&format!("{}/healthz", s.base)).await.status(), 200);
}

/// A tiny HTTP origin on loopback: `/slow` sleeps, `/redirect?to=` redirects, `/img` serves a JPEG.
async fn origin() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let photo = fixture("orientation/Landscape_1.jpg");
    let h = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = l.accept().await else { return };
            let photo = photo.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                if path.starts_with("/slow") {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                } else if let Some(to) = path.strip_prefix("/redirect?to=") {
                    let resp = format!(
                        "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                } else if path.starts_with("/img") {
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", photo.len());
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&photo).await;
                } else {
                    let _ = sock
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                }
            });
        }
    });
    (format!("127.0.0.1:{}", addr.port()), h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_targets_are_refused() {
    let (host, _h) = origin().await;
    let port = host.rsplit(':').next().unwrap().to_string();
    // Default: private networks refused even when the host is allow-listed.
    let s = start(&[], |c| {
        c.allowed_hosts = imago::config::List::from_strs(&[
            "127.0.0.1",
            "localhost",
            "169.254.169.254",
            "[::1]",
            "10.0.0.1",
            "metadata.google.internal",
        ]);
    })
    .await;
    for target in [
        format!("http://{host}/img"),
        format!("http://localhost:{port}/img"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://[::1]:{port}/img"),
        "http://10.0.0.1/x.jpg".to_string(),
        "http://metadata.google.internal/computeMetadata/v1/".to_string(),
        "http://evil.example.com/x.jpg".to_string(),
    ] {
        let r = s.get(&s.url_b64("w:10", &target)).await;
        let st = r.status().as_u16();
        // DNS names that do not resolve here fail upstream (502); everything private is 403.
        if target.contains("metadata.google.internal") {
            assert!(st == 403 || st == 502, "{target}: {st}");
        } else {
            assert_error(r, 403, "source-not-allowed").await;
        }
    }
    // Allowing private networks for a lab origin: the origin works, a redirect to a host that is
    // not on the allow-list is refused, and a slow origin times out with 504.
    let lab = start(&[], |c| {
        c.allowed_hosts = imago::config::List::from_strs(&["127.0.0.1"]);
        c.allow_private_networks = true;
        c.fetch_timeout_ms = 500;
    })
    .await;
    assert_eq!(lab.get(&lab.url_b64("w:10", &format!("http://{host}/img"))).await.status(), 200);
    let redirect = format!("http://{host}/redirect?to=http://localhost:{port}/img");
    assert_error(lab.get(&lab.url_b64("w:10", &redirect)).await, 403, "source-not-allowed").await;
    let meta = format!("http://{host}/redirect?to=http://169.254.169.254/latest/meta-data/");
    assert_error(lab.get(&lab.url_b64("w:10", &meta)).await, 403, "source-not-allowed").await;
    let t = std::time::Instant::now();
    assert_error(lab.get(&lab.url_b64("w:10", &format!("http://{host}/slow"))).await, 504, "upstream-timeout").await;
    assert!(t.elapsed() < std::time::Duration::from_secs(3));
    assert_error(lab.get(&lab.url_b64("w:10", &format!("http://{host}/missing"))).await, 404, "source-not-found").await;
}

mod fuzz {
    use imago::analytics::report::{parse_time, range};
    use imago::options::{parse, Presets};
    use proptest::prelude::*;

    /// Valid inputs of the analytics time parser, to mutate.
    const TIMES: &[&str] = &[
        "2026-12-01T10",
        "2026-12-01 23",
        "2026-12-01",
        "2025-03-01T07:30:00+01:00",
        "2025-03-01T07:30:00.123Z",
        "now",
        "24h",
        "-7d",
        "30m",
        "2w",
        "90s",
    ];

    /// A valid time with one mutation: a byte range replaced, something inserted, or a cut.
    fn mutated_time() -> impl Strategy<Value = String> {
        let piece = prop_oneof!["[0-9]{0,4}", "-[0-9]{1,3}", "[-+:TZ .]{0,3}", "[ -~]{0,6}", ".{0,3}"];
        (proptest::sample::select(TIMES), 0usize..40, 0usize..6, piece, any::<bool>()).prop_map(
            |(seed, at, len, piece, cut)| {
                let chars: Vec<char> = seed.chars().collect();
                let at = at.min(chars.len());
                let end = (at + len).min(chars.len());
                let mut s: String = chars[..at].iter().collect();
                if !cut {
                    s.push_str(&piece);
                    s.extend(&chars[end..]);
                }
                s
            },
        )
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_764_547_200).unwrap()
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_]{1,12}(:[-0-9a-z.]{0,8}){0,5}",
            "(rs|s|w|h|g|c|t|pd|bg|q|fq|f|ex|el|dpr|rot|fl|bl|sh|mb|exp|cb|pr|ar|sm)(:[-0-9a-z.:]{0,12}){0,5}",
            ".{0,20}",
        ]
    }

    // The `from`/`to` parsers of `GET /v1/analytics` and `imago analytics` (issue #15 item 9:
    // `2026-12-01T99` panicked a worker): 20,000 mutated and random strings each.
    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, .. ProptestConfig::default() })]

        #[test]
        fn analytics_times_never_panic(s in prop_oneof![mutated_time(), "[-0-9TZ:+ .a-z]{0,32}", ".{0,24}"]) {
            let _ = parse_time(&s, now());
            let _ = range(Some(&s), None, now());
            let _ = range(None, Some(&s), now());
        }

        #[test]
        fn analytics_ranges_never_panic(from in mutated_time(), to in mutated_time()) {
            let _ = range(Some(&from), Some(&to), now());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, .. ProptestConfig::default() })]

        #[test]
        fn split_never_panics(path in "/[ -~]{0,200}") {
            let _ = imago::url::split(&path);
        }

        #[test]
        fn options_never_panic(segs in proptest::collection::vec(segment(), 0..8), ext in proptest::option::of("[a-z]{0,5}")) {
            let refs: Vec<&str> = segs.iter().map(String::as_str).collect();
            let _ = parse(&refs, ext.as_deref(), &Presets::default());
        }

        #[test]
        fn signature_check_never_panics(sig in "[ -~]{0,64}", rest in "/[ -~]{0,100}") {
            let v = imago_signing::Verifier::new(vec![imago_signing::KeyPair::from_hex("aa", "bb").unwrap()]).unwrap();
            let _ = v.verify(&sig, &rest);
        }

        #[test]
        fn full_pipeline_planning_never_panics(segs in proptest::collection::vec(segment(), 0..6), w in 1u32..20000, h in 1u32..20000) {
            let refs: Vec<&str> = segs.iter().map(String::as_str).collect();
            if let Ok(o) = parse(&refs, None, &Presets::default()) {
                let _ = imago::transform::plan(w, h, &o, 8192);
            }
        }
    }
}
