//! The browser upload test: Debian's chromium (headless, driven by playwright-core from
//! `tests/browser/`) loads a page from its own loopback origin, gets a ticket through the page's
//! backend, uploads a photo with Uppy 6 (`@uppy/core` + `@uppy/aws-s3` 6.x, whose `signRequest`
//! hook hands Uppy the ticket's url, key and headers or form fields), shows progress reaching 100 %, completes the upload
//! (`complete_url`, from the browser, no API key) and then displays the image from its signed
//! URL; a variant of it is then served. Against Garage completion is required
//! (`IMAGO_UPLOAD_REQUIRE_COMPLETE`), so the image shows only if the browser's completion worked. Runs against the embedded store and, when `IMAGO_TEST_S3_*` is set,
//! against Garage; PUT and POST each. Screenshots go to `$CARGO_TARGET_TMPDIR/browser/`.
//!
//! Needs node, chromium and `tests/browser/node_modules` (`npm ci` in tests/browser; scripts/
//! test.sh does it). Without them the test prints why and passes, except under `CI=true`.

mod common;
mod uploads_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::fixture;
use serde_json::{json, Value};
use uploads_common::*;

fn chromium() -> Option<PathBuf> {
    let p = std::env::var("IMAGO_CHROMIUM").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("/usr/bin/chromium"));
    p.exists().then_some(p)
}

fn missing_prerequisite() -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if std::process::Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    if chromium().is_none() {
        return Some("chromium is not installed (apt-get install chromium, or set IMAGO_CHROMIUM)".into());
    }
    if !dir.join("node_modules/playwright-core").exists() || !dir.join("node_modules/@uppy/aws-s3").exists() {
        return Some("tests/browser/node_modules is missing (cd tests/browser && npm ci)".into());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uppy_uploads_from_a_browser_and_shows_the_image() {
    if let Some(why) = missing_prerequisite() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("browser test prerequisite missing: {why}");
        }
        eprintln!("SKIPPED: {why}");
        return;
    }
    let photo_name = "orientation/Landscape_6.jpg";
    let photo = fixture(photo_name);
    let embedded = start(&[], |_| {}).await;
    let mut runs = vec![
        json!({"name": "embedded-put", "imago_url": embedded.base, "api_key": API_KEY, "method": "PUT"}),
        json!({"name": "embedded-post", "imago_url": embedded.base, "api_key": API_KEY, "method": "POST"}),
    ];
    let s3 = S3Env::get();
    let s3_prefix = unique_prefix("browser");
    let s3_server = match &s3 {
        Some(env) => {
            let (env, prefix) = (env.clone(), s3_prefix.clone());
            let s = start(&[], move |r| {
                env.apply(r);
                r.upload_prefixes = imago::config::List::from_strs(&[prefix.as_str()]);
                r.upload_require_complete = true;
            })
            .await;
            runs.push(json!({"name": "garage-put", "imago_url": s.base, "api_key": API_KEY, "method": "PUT"}));
            runs.push(json!({"name": "garage-post", "imago_url": s.base, "api_key": API_KEY, "method": "POST"}));
            Some(s)
        }
        None => None,
    };
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let cfg = json!({
        "chromium": chromium().unwrap(),
        "photo": fixture_path(photo_name),
        "screenshot_dir": shots,
        "timeout_ms": 60000,
        "runs": runs,
    });
    std::fs::write(&config, cfg.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/upload-test.mjs");
    let child = tokio::process::Command::new("node").arg(&script).arg(&config).kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(240), child).await.expect("browser test timed out").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let results: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(results.len(), runs.len(), "stdout: {stdout}\nstderr: {stderr}");
    for r in &results {
        let name = r["name"].as_str().unwrap();
        println!(
            "{name}: {} {}x{} progress {:?} screenshot {}",
            r["method"], r["natural_width"], r["natural_height"], r["progress"], r["screenshot"]
        );
        assert_eq!(r["ok"], true, "{name}: {r}\nstderr: {stderr}");
        assert_eq!(r["final_percent"], 100, "{name}: {r}");
        assert!(r["progress"].as_array().unwrap().iter().any(|p| p == 100), "{name}: {r}");
        // The displayed image is the upright photo, served by imago from the signed URL.
        assert_eq!((&r["natural_width"], &r["natural_height"]), (&json!(1800), &json!(1200)), "{name}: {r}");
        assert_ne!(r["page_origin"].as_str().unwrap(), embedded.base, "the page must be cross-origin");
        let shot = std::fs::read(r["screenshot"].as_str().unwrap()).unwrap();
        assert!(shot.starts_with(b"\x89PNG") && shot.len() > 10_000, "{name}: screenshot");
        let c = &r["completion"];
        assert_eq!((c["status"].as_u64(), c["body"]["state"].as_str()), (Some(200), Some("ready")), "{name}: {r}");
        assert_eq!((c["body"]["width"].as_u64(), c["body"]["height"].as_u64()), (Some(1800), Some(1200)), "{name}");
        let key = r["key"].as_str().unwrap();
        let method = r["method"].as_str().unwrap();
        // A variant of the completed upload.
        let server = if name.starts_with("embedded") { &embedded } else { s3_server.as_ref().unwrap() };
        assert_eq!(c["body"]["image_url"], r["image_url"], "{name}");
        let src = if name.starts_with("embedded") {
            format!("local:///{key}")
        } else {
            format!("s3://{}/{key}", s3.as_ref().unwrap().bucket)
        };
        let v = server.get(&server.url("w:300", &src, Some("png"))).await;
        assert_eq!(v.status(), 200, "{name}: variant");
        assert_eq!(common::decode(&v.bytes().await.unwrap()).dimensions(), (300, 200), "{name}: variant");
        assert_eq!(method, if name.ends_with("put") { "PUT" } else { "POST" });
        if name.starts_with("embedded") {
            assert_eq!(std::fs::read(embedded.root.join(key)).unwrap(), photo, "{name}: stored bytes");
        } else if let Some(env) = &s3 {
            assert_eq!(env.object(key).await.unwrap(), photo, "{name}: stored bytes");
        }
    }
    assert!(incoming(&embedded.root).is_empty());
    drop(s3_server);
}
