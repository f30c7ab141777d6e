//! URLs built by the official `@imgproxy/imgproxy-node` package (run with `node` from
//! `signing/js/node_modules`) with our key and salt are served by imago with the expected output
//! size and format, for the options both support. `signing/test.sh --prepare` (run by
//! `make test` / `scripts/test.sh` before `cargo test`) installs the package; when
//! `node_modules` is absent the test prints why and passes without checking anything.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use imago_signing::{Options, SourceEncoding, UrlBuilder};
use serde_json::{json, Value};

const PHOTO: &str = "orientation/Landscape_1.jpg"; // 1800x1200, EXIF orientation 1
const SOURCE: &str = "local:///orientation/Landscape_1.jpg";

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("signing/js")
}

/// Runs imgproxy-node's `generateImageUrl` for each case; `None` when the package is absent.
fn imgproxy_node_urls(endpoint: &str, cases: &[Value]) -> Option<Vec<String>> {
    let dir = js_dir();
    if !dir.join("node_modules/@imgproxy/imgproxy-node/package.json").exists() {
        eprintln!(
            "SKIPPED imgproxy interop: {} is absent; run `signing/test.sh --prepare` (or `make test`) to install it",
            dir.join("node_modules/@imgproxy/imgproxy-node").display()
        );
        return None;
    }
    let script = r#"
const { generateImageUrl } = require("@imgproxy/imgproxy-node");
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const req = JSON.parse(input);
  const urls = req.cases.map((c) =>
    generateImageUrl({
      endpoint: req.endpoint,
      url: { value: c.source, displayAs: c.encoding },
      options: c.options,
      key: req.key,
      salt: req.salt,
      encryptKey: c.encryptKey,
      encryptIV: c.encryptIV,
    }),
  );
  process.stdout.write(JSON.stringify(urls));
});
"#;
    let mut child = Command::new("node")
        .arg("-e")
        .arg(script)
        .current_dir(&dir)
        .env("NODE_PATH", dir.join("node_modules"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node must be installed when signing/js/node_modules is present");
    let req = json!({"endpoint": endpoint, "key": KEY, "salt": SALT, "cases": cases});
    child.stdin.take().unwrap().write_all(req.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node failed: {}", String::from_utf8_lossy(&out.stderr));
    let urls: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(urls.len(), cases.len());
    Some(urls)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imgproxy_node_urls_are_served() {
    // Perceptual quality search is slow in debug builds and not what this test is about.
    let s = start(&[PHOTO], |c| c.auto_quality = false).await;
    let later = now() + 3600;
    // (options, encoding, expected (width, height), expected content type)
    let cases: Vec<(Value, &str, (u32, u32), &str)> = vec![
        (json!({"width": 300}), "base64", (300, 200), "image/jpeg"),
        (json!({"width": 300}), "plain", (300, 200), "image/jpeg"),
        (json!({"height": 100, "format": "png"}), "base64", (150, 100), "image/png"),
        (json!({"resize": {"resizing_type": "fill", "width": 300, "height": 300}}), "base64", (300, 300), "image/jpeg"),
        (json!({"resize": {"resizing_type": "fit", "width": 300, "height": 300}}), "plain", (300, 200), "image/jpeg"),
        (
            json!({"resize": {"resizing_type": "force", "width": 100, "height": 300}}),
            "base64",
            (100, 300),
            "image/jpeg",
        ),
        (json!({"resize": {"width": 240}}), "base64", (240, 160), "image/jpeg"),
        (json!({"size": {"width": 400, "height": 100}}), "base64", (150, 100), "image/jpeg"),
        (json!({"size": {"width": 90, "enlarge": false}}), "plain", (90, 60), "image/jpeg"),
        (json!({"resizing_type": "fill", "width": 200, "height": 300}), "base64", (200, 300), "image/jpeg"),
        (
            json!({"resize": {"resizing_type": "fill", "width": 200, "height": 300}, "gravity": {"type": "sm"}}),
            "base64",
            (200, 300),
            "image/jpeg",
        ),
        (
            json!({"resize": {"resizing_type": "fill", "width": 200, "height": 300}, "gravity": {"type": "fp", "x": 0.2, "y": 0.8}}),
            "plain",
            (200, 300),
            "image/jpeg",
        ),
        (
            json!({"resize": {"resizing_type": "fill", "width": 200, "height": 200}, "gravity": {"type": "nowe", "x_offset": 10, "y_offset": 5}}),
            "base64",
            (200, 200),
            "image/jpeg",
        ),
        (
            json!({"resize": {"resizing_type": "fill", "width": 200, "height": 200}, "gravity": {"type": "we", "y_offset": 5}}),
            "base64",
            (200, 200),
            "image/jpeg",
        ),
        (
            json!({"crop": {"width": 600, "height": 600, "gravity": {"type": "ce"}}, "width": 100}),
            "base64",
            (100, 100),
            "image/jpeg",
        ),
        (json!({"crop": {"width": 600, "height": 200}}), "plain", (600, 200), "image/jpeg"),
        (
            json!({"crop": {"width": 500, "height": 500, "gravity": {"type": "sm"}}, "width": 50}),
            "base64",
            (50, 50),
            "image/jpeg",
        ),
        (json!({"width": 300, "quality": 50, "format": "webp"}), "base64", (300, 200), "image/webp"),
        (json!({"width": 120, "format": "gif"}), "base64", (120, 80), "image/gif"),
        (json!({"width": 150, "dpr": 2}), "base64", (300, 200), "image/jpeg"),
        (
            json!({"crop": {"width": 300, "height": 200}, "width": 450, "enlarge": true}),
            "base64",
            (450, 300),
            "image/jpeg",
        ),
        (
            json!({"crop": {"width": 300, "height": 200}, "width": 450, "enlarge": false}),
            "base64",
            (300, 200),
            "image/jpeg",
        ),
        (
            json!({"resize": {"resizing_type": "fit", "width": 300, "height": 300, "extend": {"extend": true, "gravity": {"type": "so"}}}}),
            "base64",
            (300, 300),
            "image/jpeg",
        ),
        (
            json!({"resize": {"resizing_type": "fit", "width": 300, "height": 300}, "extend": {"extend": true}}),
            "plain",
            (300, 300),
            "image/jpeg",
        ),
        (json!({"width": 300, "padding": 10}), "base64", (320, 220), "image/jpeg"),
        (json!({"width": 300, "padding": {"top": 10, "left": 20}}), "base64", (330, 220), "image/jpeg"),
        (json!({"width": 300, "rotate": 90}), "base64", (200, 300), "image/jpeg"),
        (json!({"width": 300, "rotate": 180, "auto_rotate": false}), "base64", (300, 200), "image/jpeg"),
        (json!({"width": 300, "blur": 2}), "base64", (300, 200), "image/jpeg"),
        (json!({"width": 300, "sharpen": 1.5}), "base64", (300, 200), "image/jpeg"),
        (
            json!({"width": 300, "padding": 10, "background": "ff0000", "format": "png"}),
            "base64",
            (320, 220),
            "image/png",
        ),
        (
            json!({"width": 300, "padding": 10, "background": {"r": 0, "g": 0, "b": 255}, "format": "png"}),
            "base64",
            (320, 220),
            "image/png",
        ),
        (json!({"width": 150, "strip_metadata": false}), "base64", (150, 100), "image/jpeg"),
        (json!({"width": 150, "strip_metadata": true}), "plain", (150, 100), "image/jpeg"),
        (json!({"width": 300, "cachebuster": "v2"}), "base64", (300, 200), "image/jpeg"),
        (json!({"width": 300, "expires": later}), "base64", (300, 200), "image/jpeg"),
        (
            json!({"width": 300, "quality": 80, "format": "webp", "expires": later, "cachebuster": "x"}),
            "plain",
            (300, 200),
            "image/webp",
        ),
    ];
    let input: Vec<Value> =
        cases.iter().map(|(o, enc, _, _)| json!({"source": SOURCE, "encoding": enc, "options": o})).collect();
    let Some(urls) = imgproxy_node_urls(&s.base, &input) else { return };
    for ((opts, enc, (w, h), ct), url) in cases.iter().zip(&urls) {
        let what = format!("{opts} {enc}: {url}");
        // Same bytes as our own builder (SPEC §5: the SDKs match imgproxy-node byte for byte).
        let encoding = if *enc == "plain" { SourceEncoding::Plain } else { SourceEncoding::Base64 };
        let ours = UrlBuilder::from_options(Options::from_json(opts).unwrap()).encoding(encoding);
        assert_eq!(url, &ours.url(&s.signer, &s.base, SOURCE).unwrap(), "{what}");

        let r = s.get(url).await;
        if r.status() != 200 {
            let status = r.status();
            panic!("{what}: {status} {}", r.text().await.unwrap_or_default());
        }
        assert_eq!(r.headers()["content-type"], *ct, "{what}");
        let img = decode(&r.bytes().await.unwrap());
        assert_eq!(img.dimensions(), (*w, *h), "{what}");
        if opts.get("background").is_some() {
            // The padding is the background colour.
            let p = img.get_pixel(1, 1);
            let want = if opts["background"] == "ff0000" { [255, 0, 0] } else { [0, 0, 255] };
            for c in 0..3 {
                assert!((p[c] as i32 - want[c]).abs() < 8, "{what}: corner {p:?}");
            }
        }
    }

    // An expired imgproxy-node URL is refused with 410, a tampered one with 403.
    let input = vec![json!({"source": SOURCE, "encoding": "base64", "options": {"width": 300, "expires": now() - 10}})];
    let urls = imgproxy_node_urls(&s.base, &input).unwrap();
    assert_error(s.get(&urls[0]).await, 410, "url-expired").await;
    assert_error(s.get(&urls[0].replace("w:300", "w:301")).await, 403, "invalid-signature").await;
}

/// The options of issue #20 as imgproxy-node builds them: zoom, exar, ra, eth, pix, raw, fn, att,
/// skp (imgproxy-node writes `sp:`, imago's SDKs `skp:`; imago accepts both) and the security
/// options (on a server that allows them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imgproxy_node_urls_with_further_options_are_served() {
    let s = start(&[PHOTO], |c| {
        c.auto_quality = false;
        c.allow_security_options = true;
    })
    .await;
    let original = fixture(PHOTO);
    // (options, expected (width, height), expected Content-Disposition or "")
    let cases: Vec<(Value, (u32, u32), &str)> = vec![
        (json!({"width": 150, "zoom": 2}), (300, 200), ""),
        (json!({"width": 300, "zoom": {"zoom_x": 1, "zoom_y": 0.5}}), (300, 100), ""),
        (
            json!({"resize": {"resizing_type": "fit", "width": 300, "height": 300}, "extend_aspect_ratio": {"extend": true}}),
            (300, 300),
            "",
        ),
        (
            json!({"resize": {"resizing_type": "fit", "width": 300, "height": 300}, "extend_aspect_ratio": {"extend": true, "gravity": {"type": "no"}}}),
            (300, 300),
            "",
        ),
        (json!({"width": 300, "resizing_algorithm": "nearest"}), (300, 200), ""),
        (json!({"width": 300, "enforce_thumbnail": true}), (300, 200), ""),
        (json!({"width": 300, "pixelate": 10}), (300, 200), ""),
        (
            json!({"width": 100, "filename": {"name": "cat"}, "return_attachment": true}),
            (100, 67),
            "attachment; filename=\"cat.jpg\"",
        ),
        (
            json!({"width": 100, "filename": {"name": "w6l0w6kgMQ", "encoded": true}, "return_attachment": false}),
            (100, 67),
            "inline; filename=\"_t_ 1.jpg\"; filename*=UTF-8''%C3%A9t%C3%A9%201.jpg",
        ),
        (
            json!({"width": 300, "max_src_resolution": 3, "max_src_file_size": 10000000, "max_animation_frames": 5,
                "max_animation_frame_resolution": 1, "max_result_dimension": 1000}),
            (300, 200),
            "",
        ),
        (json!({"raw": true, "width": 10}), (1800, 1200), ""),
    ];
    let input: Vec<Value> =
        cases.iter().map(|(o, _, _)| json!({"source": SOURCE, "encoding": "base64", "options": o})).collect();
    let Some(urls) = imgproxy_node_urls(&s.base, &input) else { return };
    for ((opts, (w, h), disposition), url) in cases.iter().zip(&urls) {
        let what = format!("{opts}: {url}");
        let ours = UrlBuilder::from_options(Options::from_json(opts).unwrap());
        assert_eq!(url, &ours.url(&s.signer, &s.base, SOURCE).unwrap(), "{what}");
        let r = s.get(url).await;
        if r.status() != 200 {
            let status = r.status();
            panic!("{what}: {status} {}", r.text().await.unwrap_or_default());
        }
        if !disposition.is_empty() {
            assert_eq!(r.headers()["content-disposition"], *disposition, "{what}");
        }
        let body = r.bytes().await.unwrap();
        if opts.get("raw").is_some() {
            assert_eq!(body.as_ref(), original.as_slice(), "{what}");
        }
        assert_eq!(decode(&body).dimensions(), (*w, *h), "{what}");
    }

    // skip_processing: imgproxy-node emits `sp:`, the SDKs `skp:`; both serve the original.
    let opts = json!({"skip_processing": ["jpg"], "width": 100});
    let urls =
        imgproxy_node_urls(&s.base, &[json!({"source": SOURCE, "encoding": "base64", "options": opts})]).unwrap();
    assert!(urls[0].contains("/sp:jpg/"), "{}", urls[0]);
    let ours = UrlBuilder::from_options(Options::from_json(&opts).unwrap()).url(&s.signer, &s.base, SOURCE).unwrap();
    assert!(ours.contains("/skp:jpg/"), "{ours}");
    for url in [&urls[0], &ours] {
        let r = s.get(url).await;
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), original.as_slice(), "{url}");
    }
}

/// imgproxy-node's encrypted sources (`displayAs: "encrypted"`, AES-256-CBC, its own or a random
/// IV) and `watermark` option are served by imago (issue #20), and match the Rust SDK's URLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imgproxy_node_encrypted_sources_and_watermarks_are_served() {
    const ENC_KEY: &str = "1eb5b0e971ad7f45324c1bb15c947cb207c43152fa5c6c7f35c4f36e0c18e0f1";
    let mark = image::RgbaImage::from_pixel(20, 10, image::Rgba([255, 0, 0, 255]));
    let mut png = std::io::Cursor::new(Vec::new());
    mark.write_to(&mut png, image::ImageFormat::Png).unwrap();
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(png.into_inner());
    let s = start(&[PHOTO], |c| {
        c.auto_quality = false;
        c.source_url_encryption_key = Some(ENC_KEY.into());
        c.watermark_data = Some(data);
    })
    .await;
    let iv = "a79563a2b35d86cee6451c3c800f535a";
    let wm = json!({"width": 300, "watermark": {"opacity": 1, "position": "soea"}});
    let cases = vec![
        json!({"source": SOURCE, "encoding": "encrypted", "options": {"width": 300}, "encryptKey": ENC_KEY, "encryptIV": iv}),
        json!({"source": SOURCE, "encoding": "encrypted", "options": {"width": 300}, "encryptKey": ENC_KEY}),
        json!({"source": SOURCE, "encoding": "base64", "options": wm}),
        json!({"source": SOURCE, "encoding": "encrypted", "options": wm, "encryptKey": ENC_KEY, "encryptIV": iv}),
    ];
    let Some(urls) = imgproxy_node_urls(&s.base, &cases) else { return };
    let cipher = imago_signing::SourceCipher::from_hex(ENC_KEY).unwrap();
    let iv_bytes: [u8; 16] = hex::decode(iv).unwrap().try_into().unwrap();
    for (c, url) in cases.iter().zip(&urls) {
        let what = format!("{c}: {url}");
        let b = UrlBuilder::from_options(Options::from_json(&c["options"]).unwrap());
        if c["encoding"] == "encrypted" {
            assert!(url.contains("/enc/") && !url.contains("Landscape"), "{what}");
            if c.get("encryptIV").is_some() {
                // The same IV gives the same path as the Rust SDK's encoder.
                let mut segs = b.option_segments().unwrap();
                segs.push(
                    imago_signing::encode_encrypted_source(SOURCE, &cipher, Some(&iv_bytes), None, None).unwrap(),
                );
                let ours = format!("{}{}", s.base, s.signer.signed_path(&format!("/{}", segs.join("/"))));
                assert_eq!(url, &ours, "{what}");
            }
        } else {
            assert_eq!(url, &b.url(&s.signer, &s.base, SOURCE).unwrap(), "{what}");
        }
        let r = s.get(url).await;
        assert_eq!(r.status(), 200, "{what}");
        let img = decode(&r.bytes().await.unwrap());
        assert_eq!(img.dimensions(), (300, 200), "{what}");
        let p = img.get_pixel(290, 195);
        let marked = p[0] > 200 && p[1] < 60 && p[2] < 60;
        assert_eq!(marked, c["options"].get("watermark").is_some(), "{what}: corner {p:?}");
    }
}
