//! The Next.js example (`examples/next/`, App Router, server components) in Chromium: the test
//! starts imago (embedded store) with an uploaded photo, then `tests/browser/next-test.mjs`
//! installs the example (`npm ci`, when missing or stale), runs `next build` and `next start` on
//! 127.0.0.1 with the signing key in the Next.js server's environment, and loads the page in
//! headless Chromium at device pixel ratios 1 and 2. The page renders the photo twice, signed at
//! render time: `<ImagoImage>` (`@imago/signing/react`) and next/image `getImageProps()` with
//! `imagoLoader` (`@imago/signing/next`), each with a ThumbHash placeholder from `/info`.
//!
//! Checked: both `<img>` load from imago; the candidate Chromium chose (every candidate `w:{W}`
//! with `dpr:1`) is the smallest ladder width covering layout × DPR (375 CSS px: 384 at 1×, 750 at
//! 2×), and that candidate decodes to exactly that width; the HTML carries the placeholder; no byte the browser
//! got from Next.js (HTML, RSC payload, scripts) contains the key, the salt or the API key; and a
//! signer created with a key in a client component refuses to run (the browser guard).
//!
//! Needs node, chromium, `tests/browser/node_modules` (`npm ci` there) and `signing/js/dist`
//! (`signing/test.sh --prepare`); `examples/next/node_modules` is installed by the test itself.
//! Without the others it prints why and passes, except under `CI=true`.

mod common;
mod uploads_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::fixture;
use serde_json::{json, Value};
use uploads_common::*;

/// imago's default width ladder (SPEC §9).
const LADDER: [u64; 16] = [16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840];
/// The example's layout width of both images, CSS px.
const LAYOUT: u64 = 375;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chromium() -> Option<PathBuf> {
    let p = std::env::var("IMAGO_CHROMIUM").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("/usr/bin/chromium"));
    p.exists().then_some(p)
}

fn missing_prerequisite() -> Option<String> {
    if std::process::Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    if chromium().is_none() {
        return Some("chromium is not installed (apt-get install chromium, or set IMAGO_CHROMIUM)".into());
    }
    if !repo().join("tests/browser/node_modules/playwright-core").exists() {
        return Some("tests/browser/node_modules is missing (cd tests/browser && npm ci)".into());
    }
    if !repo().join("signing/js/dist/cjs/react.js").exists() || !repo().join("signing/js/node_modules/react").exists() {
        return Some("signing/js is not built (signing/test.sh --prepare)".into());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_example_signs_on_the_server_and_chromium_picks_the_dpr_candidate() {
    if let Some(why) = missing_prerequisite() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("Next.js example test prerequisite missing: {why}");
        }
        eprintln!("SKIPPED: {why}");
        return;
    }
    let server = start(&[], |_| {}).await;
    // Upload a 1800×1200 photo through a ticket, as an app would.
    let photo = fixture("orientation/Landscape_6.jpg");
    let (status, t) =
        ticket(&server, json!({"content_type": "image/jpeg", "content_length": photo.len(), "method": "PUT"})).await;
    assert_eq!(status, 201, "{t}");
    let sent = send(&server.client, &t, photo.clone(), None).await;
    assert!(sent.status().is_success(), "upload: {}", sent.status());
    let key = t["key"].as_str().unwrap().to_string();

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let cfg = json!({
        "chromium": chromium().unwrap(),
        "example_dir": repo().join("examples/next"),
        "imago_url": server.base,
        "key": common::KEY,
        "salt": common::SALT,
        "api_key": API_KEY,
        "image_key": key,
        "dprs": [1, 2],
        "screenshot_dir": shots,
        "timeout_ms": 60000,
    });
    std::fs::write(&config, cfg.to_string()).unwrap();
    let script = repo().join("tests/browser/next-test.mjs");
    let child = tokio::process::Command::new("node").arg(&script).arg(&config).kill_on_drop(true).output();
    let out =
        tokio::time::timeout(Duration::from_secs(540), child).await.expect("Next.js example test timed out").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let tail = |s: &str| s.chars().rev().take(6000).collect::<Vec<_>>().into_iter().rev().collect::<String>();
    let lines: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let build = lines
        .iter()
        .find(|l| l["kind"] == "build")
        .unwrap_or_else(|| panic!("no build line\nstdout: {stdout}\nstderr: {}", tail(&stderr)));
    println!(
        "npm ci {} ms, next build {} ms, next start {} ms",
        build["npm_ci_ms"], build["build_ms"], build["start_ms"]
    );
    let pages: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "page").collect();
    assert_eq!(pages.len(), 2, "stdout: {stdout}\nstderr: {}", tail(&stderr));
    for p in pages {
        let dpr = p["dpr"].as_u64().unwrap();
        assert_eq!(p["ok"], true, "dpr {dpr}: {p}\nstderr: {}", tail(&stderr));
        assert_eq!(p["device_pixel_ratio"].as_u64(), Some(dpr), "{p}");
        // The smallest ladder width covering the layout in device px.
        let want = *LADDER.iter().find(|w| **w >= LAYOUT * dpr).unwrap();
        for id in ["imago-image", "next-image"] {
            let img = &p["images"][id];
            println!(
                "dpr {dpr} {id}: layout {} CSS px, chosen candidate {}x{} px, element naturalWidth {}, current {}",
                img["layout_width"],
                img["decoded_width"],
                img["decoded_height"],
                img["natural_width"],
                img["current_src"]
            );
            assert_eq!(img["layout_width"].as_f64(), Some(LAYOUT as f64), "{id} dpr {dpr}: {img}");
            let src = img["current_src"].as_str().unwrap();
            assert!(src.starts_with(&format!("{}/", server.base)), "{id} dpr {dpr}: loaded from {src}, not imago");
            assert!(
                src.contains(&format!("/w:{want}/")) && src.contains("/dpr:1/"),
                "{id} dpr {dpr}: chose {src}, want w:{want} dpr:1"
            );
            // The chosen candidate's pixels: exactly that width (a 3:2 photo, dpr:1 so no DPR
            // hint multiplied it) …
            assert_eq!(img["decoded_width"].as_u64(), Some(want), "{id} dpr {dpr}: {img}");
            assert_eq!(img["decoded_height"].as_u64(), Some(want * 2 / 3), "{id} dpr {dpr}: {img}");
            // … and the element's density-corrected natural width is the layout width again.
            let natural = img["natural_width"].as_f64().unwrap();
            assert!((natural - LAYOUT as f64).abs() <= 1.0, "{id} dpr {dpr}: {img}");
            // Every candidate is dpr:1 and signed by the server's key.
            let srcset = img["srcset"].as_str().unwrap();
            for cand in srcset.split(", ") {
                let url = cand.split(' ').next().unwrap();
                assert!(url.contains("/dpr:1/"), "{id}: candidate {cand}");
                let path = url.strip_prefix(&server.base).unwrap();
                let (sig, rest) = path[1..].split_once('/').unwrap();
                assert_eq!(
                    sig,
                    server.signer.sign(&format!("/{rest}")),
                    "{id}: candidate {cand} is not signed with the server's key"
                );
            }
            assert!(
                img["style"].as_str().unwrap_or("").contains("data:image/png;base64,"),
                "{id}: no ThumbHash placeholder: {img}"
            );
        }
        assert!(
            p["html_has_srcset"] == true && p["html_has_placeholder"] == true,
            "dpr {dpr}: the HTML is server-rendered"
        );
        // Imago served the images (200 with an image type; both elements sign the same URL for
        // the same candidate, so the browser may fetch it once).
        let imago = p["imago_responses"].as_array().unwrap();
        assert!(
            imago.iter().all(|r| r["status"] == 200 && r["type"].as_str().unwrap_or("").starts_with("image/")),
            "dpr {dpr}: {imago:?}"
        );
        for id in ["imago-image", "next-image"] {
            let src = &p["images"][id]["current_src"];
            assert!(
                imago.iter().any(|r| &r["url"] == src),
                "dpr {dpr}: {id} {src} was not fetched from imago: {imago:?}"
            );
        }
        // Nothing secret reached the browser.
        assert_eq!(p["leaks"], json!([]), "dpr {dpr}: secrets in what the browser received");
        assert!(
            p["next_responses"].as_u64().unwrap() >= 3 && p["next_bytes_scanned"].as_u64().unwrap() > 50_000,
            "{p}"
        );
        println!(
            "dpr {dpr}: scanned {} responses, {} bytes from Next.js; HTML {} bytes",
            p["next_responses"], p["next_bytes_scanned"], p["html_bytes"]
        );
        // The browser guard, in Chromium: a keyed signer in a client component throws.
        let guard = p["guard"].as_str().unwrap();
        assert!(
            guard.starts_with("ImagoOptionError")
                && guard.contains("refusing to hold an HMAC signing key in a browser"),
            "{guard}"
        );
        let shot = std::fs::read(p["screenshot"].as_str().unwrap()).unwrap();
        assert!(shot.starts_with(b"\x89PNG"), "screenshot");
    }
}
