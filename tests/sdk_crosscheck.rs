//! URLs printed by the TypeScript SDK (`signing/js/dist`, run with `node`) and by the Python SDK
//! (`signing/python/src`, standard library only) are served by a running imago: 200, the expected
//! size and format. Both SDKs must also agree with each other and with the Rust crate byte for
//! byte (except for `expires_in`, which depends on the clock).
//!
//! `signing/test.sh --prepare` (run by `make test` / `scripts/test.sh` before `cargo test`)
//! installs the npm packages and builds `dist`. When `signing/js/node_modules` is absent the
//! TypeScript check prints why and passes without checking anything; the Python check always runs.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use imago_signing::{Options, SourceEncoding, SrcsetOptions, UrlBuilder};
use serde_json::{json, Value};

const PHOTO: &str = "orientation/Landscape_1.jpg"; // 1800x1200
const SOURCE: &str = "local:///orientation/Landscape_1.jpg";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// `(options, path options, expected (width, height), expected content type)`.
fn cases() -> Vec<(Value, Value, (u32, u32), &'static str)> {
    vec![
        (json!({"width": 300}), json!({}), (300, 200), "image/jpeg"),
        (
            json!({"resize": {"resizing_type": "fill", "width": 200, "height": 200}, "gravity": {"type": "sm"}}),
            json!({"encoding": "plain", "extension": "webp"}),
            (200, 200),
            "image/webp",
        ),
        (json!({"width": 240, "format": "png"}), json!({"chunk_size": 16}), (240, 160), "image/png"),
        (
            json!({"width": 300, "padding": {"top": 10, "left": 20}, "background": "00ff00"}),
            json!({"extension": "png"}),
            (330, 220),
            "image/png",
        ),
        (
            json!({"size": {"width": 90, "height": 90, "enlarge": false}, "rotate": 90, "format": "webp", "quality": 70}),
            json!({"encoding": "plain"}),
            (60, 90),
            "image/webp",
        ),
        (
            json!({"crop": {"width": 600, "height": 600, "gravity": {"type": "fp", "x": 0.5, "y": 0.5}}, "width": 100}),
            json!({}),
            (100, 100),
            "image/jpeg",
        ),
        (json!({"width": 150, "cachebuster": "v1"}), json!({"expires_in": 3600}), (150, 100), "image/jpeg"),
    ]
}

/// What each SDK prints for the cases: `{"urls": [...], "srcset": "...", "fluent": "..."}`.
fn request(base: &str) -> Value {
    let cases: Vec<Value> = cases().into_iter().map(|(o, p, _, _)| json!({"options": o, "path": p})).collect();
    json!({"key": KEY, "salt": SALT, "base_url": base, "source": SOURCE, "cases": cases})
}

fn run(mut cmd: Command, input: &Value) -> Value {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{cmd:?} printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

const JS: &str = r#"
const { pathToFileURL } = require("node:url");
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", async () => {
  const req = JSON.parse(input);
  const { ImagoSignerSync } = await import(pathToFileURL(process.env.IMAGO_JS_DIST + "/node.js").href);
  const signer = new ImagoSignerSync({ key: req.key, salt: req.salt, baseUrl: req.base_url });
  const urls = req.cases.map((c) =>
    signer.url(req.source, c.options, {
      encoding: c.path.encoding,
      extension: c.path.extension,
      chunkSize: c.path.chunk_size,
      expiresIn: c.path.expires_in,
    }),
  );
  const srcset = signer.srcset(req.source, { format: "webp" }, { maxWidth: 100 });
  const fluent = signer.image(req.source).resize("fit", 100, 100).format("webp").url();
  process.stdout.write(JSON.stringify({ urls, srcset, fluent }));
});
"#;

const PY: &str = r#"
import json, sys
from imago_signing import ImagoSigner
req = json.load(sys.stdin)
signer = ImagoSigner(req["key"], req["salt"], base_url=req["base_url"])
urls = [signer.url(req["source"], c["options"], **c["path"]) for c in req["cases"]]
srcset = signer.srcset(req["source"], {"format": "webp"}, max_width=100)
fluent = signer.image(req["source"]).resize("fit", 100, 100).format("webp").url()
json.dump({"urls": urls, "srcset": srcset, "fluent": fluent}, sys.stdout)
"#;

/// The Rust crate's output for the same request (the reference for the byte comparison).
fn rust_urls(s: &TestServer) -> Vec<Option<String>> {
    cases()
        .into_iter()
        .map(|(o, p, _, _)| {
            if p.get("expires_in").is_some() {
                return None;
            }
            let mut b = UrlBuilder::from_options(Options::from_json(&o).unwrap());
            if p["encoding"] == "plain" {
                b = b.encoding(SourceEncoding::Plain);
            }
            if let Some(e) = p["extension"].as_str() {
                b = b.extension(e);
            }
            if let Some(n) = p["chunk_size"].as_u64() {
                b = b.chunk_size(n as usize);
            }
            Some(b.url(&s.signer, &s.base, SOURCE).unwrap())
        })
        .collect()
}

async fn fetch_image(s: &TestServer, url: &str, what: &str) -> (String, image::RgbaImage) {
    let r = s.get(url).await;
    if r.status() != 200 {
        let status = r.status();
        panic!("{what}: {url}: {status} {}", r.text().await.unwrap_or_default());
    }
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    (ct, decode(&r.bytes().await.unwrap()))
}

/// Checks everything one SDK printed against the running server.
async fn check_sdk(s: &TestServer, sdk: &str, out: &Value) {
    let urls: Vec<&str> = out["urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap()).collect();
    let cases = cases();
    assert_eq!(urls.len(), cases.len(), "{sdk}");
    for ((opts, path, (w, h), ct), (url, reference)) in cases.iter().zip(urls.iter().zip(rust_urls(s))) {
        let what = format!("{sdk} {opts} {path}");
        assert!(url.starts_with(&s.base), "{what}: {url}");
        if let Some(r) = reference {
            assert_eq!(*url, r, "{what}: differs from the Rust crate");
        } else {
            assert!(url.contains("/exp:"), "{what}: {url}");
        }
        let (got_ct, img) = fetch_image(s, url, &what).await;
        assert_eq!(got_ct, *ct, "{what}");
        assert_eq!(img.dimensions(), (*w, *h), "{what}");
    }

    // srcset: every candidate is served at its width.
    let srcset = out["srcset"].as_str().unwrap();
    let reference =
        UrlBuilder::new().format("webp").srcset(&s.signer, &s.base, SOURCE, &SrcsetOptions::max_width(100)).unwrap();
    assert_eq!(srcset, reference, "{sdk} srcset differs from the Rust crate");
    let candidates: Vec<&str> = srcset.split(", ").collect();
    assert_eq!(candidates.len(), 5, "{sdk}: {srcset}"); // 16 32 48 64 96
    for cand in candidates {
        let (url, w) = cand.rsplit_once(' ').unwrap();
        let w: u32 = w.strip_suffix('w').unwrap().parse().unwrap();
        let (ct, img) = fetch_image(s, url, &format!("{sdk} srcset {w}w")).await;
        assert_eq!((ct.as_str(), img.width()), ("image/webp", w), "{sdk} srcset {url}");
    }

    // Fluent builder.
    let fluent = out["fluent"].as_str().unwrap();
    let (ct, img) = fetch_image(s, fluent, &format!("{sdk} fluent")).await;
    assert_eq!((ct.as_str(), img.dimensions()), ("image/webp", (100, 67)), "{sdk} fluent {fluent}");

    // A tampered SDK URL is refused (the checks above can fail).
    let tampered = urls[0].replacen("/w:300/", "/w:301/", 1);
    assert_ne!(tampered, urls[0]);
    assert_error(s.get(&tampered).await, 403, "invalid-signature").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_urls_are_served() {
    let js = root().join("signing/js");
    if !js.join("node_modules").is_dir() {
        eprintln!(
            "SKIPPED TypeScript SDK cross-check: {} is absent; run `signing/test.sh --prepare` (or `make test`)",
            js.join("node_modules").display()
        );
        return;
    }
    if !js.join("dist/node.js").exists() {
        // node_modules is there, so the package can be built.
        let st = Command::new("npm").args(["run", "build"]).current_dir(&js).status().expect("npm");
        assert!(st.success(), "npm run build failed in {}", js.display());
    }
    let s = start(&[PHOTO], |c| c.auto_quality = false).await;
    let mut cmd = Command::new("node");
    cmd.arg("-e").arg(JS).current_dir(&js).env("IMAGO_JS_DIST", js.join("dist"));
    let out = run(cmd, &request(&s.base));
    check_sdk(&s, "typescript", &out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_urls_are_served() {
    let py_dir = root().join("signing/python");
    let venv = py_dir.join(".venv/bin/python");
    let python = if venv.exists() { venv } else { PathBuf::from("python3") };
    let s = start(&[PHOTO], |c| c.auto_quality = false).await;
    let mut cmd = Command::new(&python);
    cmd.arg("-c").arg(PY).env("PYTHONPATH", py_dir.join("src")).env("PYTHONDONTWRITEBYTECODE", "1");
    let out = run(cmd, &request(&s.base));
    check_sdk(&s, "python", &out).await;
}

/// Issue #20: `/enc/` sources and `wm` built by the TypeScript (WebCrypto) and Python
/// (`cryptography` extra) SDKs are byte-identical to the Rust crate's (same derived IV) and
/// served: decrypted, watermarked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_and_watermarked_sdk_urls_are_served() {
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
    let options = json!({"width": 300, "watermark": {"opacity": 1, "position": "soea"}});
    let input =
        json!({"key": KEY, "salt": SALT, "base_url": s.base, "source": SOURCE, "enc_key": ENC_KEY, "options": options});
    let cipher = imago_signing::SourceCipher::from_hex(ENC_KEY).unwrap();
    let reference = UrlBuilder::from_options(Options::from_json(&options).unwrap())
        .encrypt(cipher)
        .url(&s.signer, &s.base, SOURCE)
        .unwrap();
    assert!(reference.contains("/wm:1:soea/w:300/enc/"), "{reference}");
    let mut outs = Vec::new();
    let js = root().join("signing/js");
    if js.join("dist/index.js").exists() {
        let script = r#"
const { pathToFileURL } = require("node:url");
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", async () => {
  const req = JSON.parse(input);
  const { ImagoSigner } = await import(pathToFileURL(process.env.IMAGO_JS_DIST + "/index.js").href);
  const signer = new ImagoSigner({ key: req.key, salt: req.salt, baseUrl: req.base_url, sourceEncryptionKey: req.enc_key });
  process.stdout.write(JSON.stringify({ url: await signer.url(req.source, req.options, { encoding: "encrypted" }) }));
});
"#;
        let mut cmd = Command::new("node");
        cmd.arg("-e").arg(script).current_dir(&js).env("IMAGO_JS_DIST", js.join("dist"));
        outs.push(("typescript", run(cmd, &input)));
    } else {
        eprintln!("SKIPPED the TypeScript half: signing/js/dist is absent (signing/test.sh --prepare)");
    }
    let py_dir = root().join("signing/python");
    let venv = py_dir.join(".venv/bin/python");
    let python = if venv.exists() { venv } else { PathBuf::from("python3") };
    let py = r#"
import json, sys
from imago_signing import ImagoSigner
req = json.load(sys.stdin)
signer = ImagoSigner(req["key"], req["salt"], base_url=req["base_url"], source_encryption_key=req["enc_key"])
json.dump({"url": signer.url(req["source"], req["options"], encoding="encrypted")}, sys.stdout)
"#;
    let mut cmd = Command::new(&python);
    cmd.arg("-c").arg(py).env("PYTHONPATH", py_dir.join("src")).env("PYTHONDONTWRITEBYTECODE", "1");
    outs.push(("python", run(cmd, &input)));
    for (sdk, out) in outs {
        let url = out["url"].as_str().unwrap();
        assert_eq!(url, reference, "{sdk}: differs from the Rust crate");
        let (ct, img) = fetch_image(&s, url, sdk).await;
        assert_eq!((ct.as_str(), img.dimensions()), ("image/jpeg", (300, 200)), "{sdk}");
        let p = img.get_pixel(290, 195);
        assert!(p[0] > 200 && p[1] < 60 && p[2] < 60, "{sdk}: the watermark corner is {p:?}");
    }
}
