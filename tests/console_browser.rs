//! The console in a real browser (Debian's chromium driven by playwright-core from
//! `tests/browser/console-test.mjs`): sign in, upload several files at once (progress; a file
//! that is not an image fails and Retry runs it again), the gallery (ThumbHash placeholders from
//! `/info`, then signed thumbnails), the image page (facts, URL builder, signed URL, srcset
//! snippet, a live preview decoded at the asked size at DPR 1 and 2, bytes and sizes served per
//! format), delete → deleted in the gallery → restore → delete, and the analytics charts (SVG).
//! Every text response the page saw is checked for the URL-signing key and salt, and no CSP
//! violation may be reported. Screenshots: `target/console-screenshots/*.png` (printed).
//!
//! Also: the committed SDK bundle (`src/http/console/sdk-upload.js`) is what
//! `scripts/console-sdk.sh` builds from `signing/js/src/upload.ts` now.
//!
//! Needs node, chromium and `tests/browser/node_modules` (`npm ci` in tests/browser); without
//! them the tests print why and pass, except under `CI=true`.

mod common;
mod uploads_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{fixture_path, KEY, SALT};
use serde_json::{json, Value};
use uploads_common::*;

fn chromium() -> Option<PathBuf> {
    let p = std::env::var("IMAGO_CHROMIUM").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("/usr/bin/chromium"));
    p.exists().then_some(p)
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Why the test cannot run here (`None`: it can); under `CI=true` a missing piece fails it.
fn skip(need_chromium: bool) -> bool {
    let why = if std::process::Command::new("node").arg("--version").output().is_err() {
        Some("node is not installed")
    } else if need_chromium && chromium().is_none() {
        Some("chromium is not installed (apt-get install chromium, or set IMAGO_CHROMIUM)")
    } else if !browser_dir().join("node_modules/playwright-core").exists()
        || !browser_dir().join("node_modules/esbuild").exists()
    {
        Some("tests/browser/node_modules is missing (cd tests/browser && npm ci)")
    } else {
        None
    };
    let Some(why) = why else { return false };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("console browser test prerequisite missing: {why}");
    }
    eprintln!("SKIPPED: {why}");
    true
}

#[test]
fn committed_sdk_bundle_is_rebuilt_from_the_typescript_sdk() {
    if skip(false) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(root.join("scripts/console-sdk.sh")).arg("--stdout").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let committed = std::fs::read_to_string(root.join("src/http/console/sdk-upload.js")).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "src/http/console/sdk-upload.js is stale: run scripts/console-sdk.sh and commit it"
    );
    // What the console imports from it.
    for name in ["requestUpload", "uploadFile", "completeUpload"] {
        assert!(committed.contains(&format!("  {name}")), "{name} is not exported");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_uploads_browses_builds_previews_deletes_and_charts_in_chromium() {
    if skip(true) {
        return;
    }
    let s = start(&[], |r| {
        // Soft deletes, so the console can restore.
        r.delete_grace_secs = 3600;
        r.analytics_flush_events = 1;
    })
    .await;
    let photos = ["orientation/Landscape_1.jpg", "orientation/Portrait_1.jpg"];
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("console-screenshots");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let cfg = json!({
        "chromium": chromium().unwrap(),
        "base": s.base,
        "api_key": API_KEY,
        "photos": photos.iter().map(|p| fixture_path(p)).collect::<Vec<_>>(),
        "screenshot_dir": shots,
        "secrets": [KEY, SALT],
        "timeout_ms": 60000,
    });
    std::fs::write(&config, cfg.to_string()).unwrap();
    let child = tokio::process::Command::new("node")
        .arg(browser_dir().join("console-test.mjs"))
        .arg(&config)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), child).await.expect("browser test timed out").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let r: Value = stdout.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| {
        panic!("no result from the browser\nstdout: {stdout}\nstderr: {stderr}");
    });
    for p in r["screenshots"].as_array().unwrap() {
        println!("screenshot: {}", p.as_str().unwrap());
    }
    assert_eq!(r["ok"], true, "steps {}: {}\nconsole: {}", r["steps"], r["error"], r["console"]);
    // The page and its CSP; no violation, no signing key in anything the page received.
    assert_eq!(r["status"], 200);
    let csp = r["csp"].as_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r["csp_violations"], json!([]), "{r}");
    assert_eq!(r["secret_hits"], json!([]), "the signing key reached the browser");
    assert!(r["responses"].as_u64().unwrap() >= 15, "{}", r["responses"]);
    let errors: Vec<&Value> =
        r["console"].as_array().unwrap().iter().filter(|l| l.as_str().unwrap().starts_with("pageerror")).collect();
    assert!(errors.is_empty(), "{errors:?}");
    // Uploads: two photos at 100 %, the text file refused, retried once.
    let uploads = r["uploads"].as_array().unwrap();
    let done: Vec<&Value> = uploads.iter().filter(|u| u["state"].as_str().unwrap().contains("done")).collect();
    assert_eq!(done.len(), 2, "{uploads:?}");
    assert!(done.iter().all(|u| u["percent"] == "100"), "{uploads:?}");
    let failed = uploads.iter().find(|u| u["state"].as_str().unwrap().contains("failed")).unwrap();
    assert!(
        failed["text"].as_str().unwrap().contains("not-an-image") || failed["text"].as_str().unwrap().contains("422"),
        "{failed}"
    );
    assert_eq!(r["retry_attempts"], 2);
    // Gallery: ThumbHash placeholders (PNG data URLs) and signed 360 x 360 thumbnails.
    let gallery = r["gallery"].as_array().unwrap();
    assert_eq!(gallery.len(), 2);
    for g in gallery {
        assert_eq!(g["placeholder"], "data:image/png;base64,", "{g}");
        assert!(g["placeholder_width"].as_u64().unwrap() > 0, "{g}");
        assert_eq!((g["thumb_width"].as_u64(), g["thumb_height"].as_u64()), (Some(360), Some(360)), "{g}");
        assert!(g["thumb"].as_str().unwrap().starts_with(&s.base), "{g}");
    }
    // The image page: /info facts, the builder's URL, the snippet, the preview at 320 x 200 (DPR 1)
    // and 640 x 400 (DPR 2), and each format's bytes at both DPRs.
    assert!(r["facts"]["size"].as_str().unwrap().starts_with("1800 × 1200"), "{}", r["facts"]);
    let p1 = &r["preview_dpr1"];
    assert_eq!((p1["natural_width"].as_u64(), p1["natural_height"].as_u64()), (Some(320), Some(200)), "{p1}");
    let p2 = &r["preview_dpr2"];
    assert_eq!((p2["natural_width"].as_u64(), p2["natural_height"].as_u64()), (Some(640), Some(400)), "{p2}");
    let url = p1["signed_url"].as_str().unwrap();
    assert!(url.starts_with(&s.base) && url.contains("/g:sm/") && url.contains("/f:webp/"), "{url}");
    // A fixed box (width and height): x descriptors, so every candidate keeps the aspect ratio.
    let snippet = p1["snippet"].as_str().unwrap();
    assert!(
        snippet.contains(" 1x, ") && snippet.contains(" 3x\"") && snippet.contains("width=\"320\" height=\"200\""),
        "{snippet}"
    );
    // Width only: w descriptors over the width ladder (up to 3 x 320) and the builder's sizes.
    let fluid = &r["preview_fluid"];
    assert_eq!((fluid["natural_width"].as_u64(), fluid["natural_height"].as_u64()), (Some(320), Some(213)), "{fluid}");
    let snippet = fluid["snippet"].as_str().unwrap();
    assert!(snippet.contains("/w:640/") && snippet.contains(" 828w\""), "{snippet}");
    assert!(snippet.contains("sizes=\"(max-width: 640px) 100vw, 600px\""), "{snippet}");
    for p in [p1, p2] {
        let served = p["served"].as_array().unwrap();
        assert_eq!(served.len(), 8, "{served:?}");
        // The height follows the fixed box at every DPR.
        for row in served {
            let want = 320 * row["dpr"].as_u64().unwrap();
            assert_eq!(row["width"].as_u64(), Some(want), "{row}");
            assert!(row["bytes"].as_u64().unwrap() > 500, "{row}");
        }
    }
    // The image was deleted at the end: its preview URL now answers 410 outside the browser too.
    let v = s.get(p1["src"].as_str().unwrap()).await;
    assert_eq!(v.status(), 410);
    assert_eq!(v.json::<Value>().await.unwrap()["code"], "image-deleted");
    // Deleted, listed as deleted, restored, deleted again: reads now answer 410.
    let key = r["key"].as_str().unwrap();
    let listed = r["gallery_after_delete"].as_array().unwrap();
    assert!(listed.iter().any(|c| c["key"] == key && c["class"].as_str().unwrap().contains("deleted")), "{listed:?}");
    assert_eq!(r["restored"], true);
    let gone = s.get(&s.url("w:100", &format!("local:///{key}"), Some("png"))).await;
    assert_eq!(gone.status(), 410);
    // Analytics: four SVG charts, the request chart with bars.
    let charts = r["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 4, "{charts:?}");
    assert!(charts[0]["bars"].as_u64().unwrap() > 0, "{charts:?}");
    println!("uploads {uploads:?}\nserved {}\ncharts {charts:?}", p1["served"]);
}
