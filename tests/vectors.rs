//! The shared URL test vectors (`signing/test-vectors.json`, SPEC §1) against the real server on
//! loopback: every `build` vector's signed URL is served (signatures shorter than the server's
//! minimum, `IMAGO_SIGNATURE_SIZE` >= 8: the configuration is refused), every `invalid` vector gets
//! its status and code, every `verify` vector is accepted or refused as stated.

mod common;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use imago::config::{List, RawConfig, MIN_SIGNATURE_SIZE};
use imago_signing::{Options, SourceEncoding, UrlBuilder};
use serde_json::Value;

/// A real photo (800x533) put at every local path the vectors use.
const PHOTO: &str = "gps.jpg";
/// Presets the vectors name (`pr:thumb:sharp`, `pr:a:b`, `pr:p`).
const PRESETS: [(&str, &str); 5] =
    [("thumb", "rs:fill:64:64"), ("sharp", "sh:0.5"), ("a", "q:70"), ("b", "bl:0.5"), ("p", "q:60")];

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/signing/test-vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn cases<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    let l = v[key].as_array().unwrap_or_else(|| panic!("no `{key}` vectors"));
    assert!(!l.is_empty(), "no `{key}` vectors");
    l
}

fn name(c: &Value) -> &str {
    c["name"].as_str().unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// `(key, salt)` pairs of a vector: `pairs`, or `key`/`salt`.
fn pairs(c: &Value) -> Vec<(String, String)> {
    let list: Vec<&Value> = match c["pairs"].as_array() {
        Some(a) => a.iter().collect(),
        None => vec![c],
    };
    list.iter().map(|p| (p["key"].as_str().unwrap().to_string(), p["salt"].as_str().unwrap().to_string())).collect()
}

/// A server accepting `pairs`, with the vectors' presets and `photo_paths` holding the photo.
async fn server(pairs: &[(String, String)], signature_size: usize, insecure: bool, photo_paths: &[&str]) -> TestServer {
    let keys: Vec<&str> = pairs.iter().map(|p| p.0.as_str()).collect();
    let salts: Vec<&str> = pairs.iter().map(|p| p.1.as_str()).collect();
    let s = start(&[], |c| {
        c.key = List::from_strs(&keys);
        c.salt = List::from_strs(&salts);
        c.signature_size = signature_size;
        c.allow_insecure = insecure;
        // The build vectors include imgproxy's per-URL security options (refused when off).
        c.allow_security_options = true;
        // Perceptual quality search is slow in debug builds and not what these tests are about.
        c.auto_quality = false;
        for (n, body) in PRESETS {
            c.presets.insert(n.into(), body.into());
        }
    })
    .await;
    let photo = fixture(PHOTO);
    for p in photo_paths {
        s.put(p, &photo);
    }
    s
}

/// `(key/salt pairs, signature size, allow insecure)`.
type ServerConfig = (Vec<(String, String)>, usize, bool);

/// The local store paths of the `local:///` sources in a list of vectors.
fn local_paths(cases: &[&Value], field: &str) -> Vec<String> {
    let mut out: Vec<String> = cases
        .iter()
        .filter_map(|c| c[field].as_str())
        .filter_map(|s| s.strip_prefix("local:///").map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Checks a served image: 200, an image content type, decodable, non-empty.
async fn assert_image(resp: reqwest::Response, what: &str) {
    if resp.status() != 200 {
        let status = resp.status();
        panic!("{what}: {status} {}", resp.text().await.unwrap_or_default());
    }
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let body = resp.bytes().await.unwrap();
    match ct.as_str() {
        "image/avif" => assert!(avif_dimensions(&body).is_some_and(|(w, h)| w > 0 && h > 0), "{what}"),
        "image/jxl" => assert!(jxl_dimensions(&body).is_some_and(|(w, h)| w > 0 && h > 0), "{what}"),
        "image/jpeg" | "image/png" | "image/webp" | "image/gif" => {
            let img = decode(&body);
            assert!(img.width() > 0 && img.height() > 0, "{what}");
        }
        other => panic!("{what}: content-type {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_vectors_are_served() {
    let v = vectors();
    let all = cases(&v, "build");
    // One server per signature size, accepting every pair the vectors of that size sign with.
    let mut by_size: BTreeMap<usize, Vec<&Value>> = BTreeMap::new();
    for c in all {
        by_size.entry(c["signature_size"].as_u64().unwrap_or(32) as usize).or_default().push(c);
    }
    let mut served = 0;
    for (size, group) in by_size {
        if size < MIN_SIGNATURE_SIZE {
            // SDKs sign any size 1-32 (imgproxy allows it); imago refuses to start with one this
            // short, naming the setting.
            let raw = RawConfig { key: List::from_strs(&[KEY]), salt: List::from_strs(&[SALT]), ..Default::default() };
            let e = RawConfig { signature_size: size, ..raw }.validate(false).unwrap_err().to_string();
            assert!(e.contains("IMAGO_SIGNATURE_SIZE"), "{e}");
            continue;
        }
        let mut keys: Vec<(String, String)> = group.iter().flat_map(|c| pairs(c)).collect();
        keys.sort();
        keys.dedup();
        let mut photos = local_paths(&group, "source");
        photos.push("photos/2024/cat.jpg".into());
        let photo_refs: Vec<&str> = photos.iter().map(String::as_str).collect();
        let s = server(&keys, size, false, &photo_refs).await;
        for c in group {
            let opts = Options::from_json(&c["options"]).unwrap();
            // `expires: 0` means no expiry (and is not emitted).
            let expired = opts.expires.is_some_and(|e| e != 0 && e <= now());
            let source = c["source"].as_str().unwrap();
            let url = format!("{}{}", s.base, c["expected_url_path"].as_str().unwrap());
            let resp = s.get(&url).await;
            if expired {
                // Signature and options were accepted: the expiry check comes after both.
                assert_eq!(resp.status(), 410, "{}", name(c));
                assert_error(resp, 410, "url-expired").await;
            } else if source.starts_with("local:///") {
                assert_image(resp, name(c)).await;
                served += 1;
            } else {
                // Remote sources are not enabled here: refused after the signature and the
                // options were accepted (SPEC §8 order), never with 400 or invalid-signature.
                assert_eq!(resp.status(), 403, "{}", name(c));
                assert_error(resp, 403, "source-not-allowed").await;
            }
            // The same options on a real local photo (dropping a past expiry) are served.
            let mut local_opts = opts.clone();
            if expired {
                local_opts.expires = None;
            }
            let encoding = if c["encoding"] == "plain" { SourceEncoding::Plain } else { SourceEncoding::Base64 };
            let mut b = UrlBuilder::from_options(local_opts).encoding(encoding);
            if let Some(e) = c["extension"].as_str() {
                b = b.extension(e);
            }
            let signer =
                imago_signing::Signer::new(imago_signing::KeyPair::from_hex(&pairs(c)[0].0, &pairs(c)[0].1).unwrap())
                    .with_signature_size(size)
                    .unwrap();
            let path = b.sign(&signer, "local:///photos/2024/cat.jpg").unwrap();
            assert_image(s.get(&format!("{}{path}", s.base)).await, &format!("{} (local photo)", name(c))).await;
            served += 1;
        }
    }
    assert!(served > 100, "{served}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_vectors_get_their_status_and_code() {
    let v = vectors();
    let pair = vec![(KEY.to_string(), SALT.to_string())];
    // The photo is where the vectors point, so a wrongly accepted URL would answer 200.
    let s = server(&pair, 32, false, &["a.jpg", "photos/2024/cat.jpg"]).await;
    for c in cases(&v, "invalid") {
        let path = c["path"].as_str().unwrap();
        let url = format!("{}{}", s.base, s.signer.signed_path(path));
        let status = c["status"].as_u64().unwrap() as u16;
        let code = c["error_code"].as_str().unwrap();
        let resp = s.get(&url).await;
        assert_eq!(resp.status().as_u16(), status, "{}: {url}", name(c));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], code, "{}: {body}", name(c));
        if let Some(option) = c["option"].as_str() {
            let msg = body["message"].as_str().unwrap();
            assert!(msg.contains(&format!("`{option}`")), "{}: message {msg:?} does not name `{option}`", name(c));
        }
    }
    // The same paths unsigned: the signature is checked first (403 for all of them).
    for c in cases(&v, "invalid") {
        let path = c["path"].as_str().unwrap();
        let forged = format!("{}/{}{}", s.base, "A".repeat(43), path);
        assert_error(s.get(&forged).await, 403, "invalid-signature").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_vectors_are_accepted_or_refused() {
    let v = vectors();
    let all = cases(&v, "verify");
    // Vectors sharing a configuration share a server.
    let mut by_cfg: BTreeMap<ServerConfig, Vec<&Value>> = BTreeMap::new();
    for c in all {
        let cfg = (
            pairs(c),
            c["signature_size"].as_u64().unwrap_or(32) as usize,
            c["allow_insecure"].as_bool().unwrap_or(false),
        );
        by_cfg.entry(cfg).or_default().push(c);
    }
    let (mut accepted, mut refused) = (0, 0);
    for ((keys, size, insecure), group) in by_cfg {
        let s = server(&keys, size, insecure, &["photos/cat.jpg"]).await;
        for c in group {
            let url_path = c["url_path"].as_str().unwrap();
            let resp = s.get(&format!("{}{url_path}", s.base)).await;
            if c["valid"].as_bool().unwrap() {
                accepted += 1;
                if url_path.contains("/plain/local:///") {
                    assert_image(resp, name(c)).await;
                } else {
                    // http source: accepted, then refused by the (empty) host allow-list.
                    assert_error(resp, 403, "source-not-allowed").await;
                }
            } else {
                refused += 1;
                assert_error(resp, 403, "invalid-signature").await;
            }
        }
    }
    assert!(accepted >= 5 && refused >= 8, "{accepted} accepted, {refused} refused");
}

/// `signing/vectors/webhooks.json` (SPEC §13) against the signing code the server's outbox uses
/// (`imago_signing::webhook`, linked into the server): every `sign` header is reproduced and
/// every `verify` verdict holds.
#[test]
fn webhook_vectors_hold_for_the_server_signer() {
    use imago_signing::webhook;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/signing/vectors/webhooks.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let secrets = |c: &Value| -> Vec<String> {
        c["secrets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
    };
    for c in cases(&v, "sign") {
        let got = webhook::sign(&secrets(c), c["timestamp"].as_i64().unwrap(), c["body"].as_str().unwrap().as_bytes());
        assert_eq!(got, c["header"].as_str().unwrap(), "{}", name(c));
    }
    for c in cases(&v, "verify") {
        let got = webhook::verify(
            c["header"].as_str().unwrap(),
            c["body"].as_str().unwrap().as_bytes(),
            &secrets(c),
            c["tolerance"].as_u64().unwrap(),
            c["now"].as_i64().unwrap(),
        )
        .map_err(|e| e.code());
        let want = match c["valid"].as_bool().unwrap() {
            true => Ok(c["timestamp"].as_i64().unwrap()),
            false => Err(c["error"].as_str().unwrap()),
        };
        assert_eq!(got, want, "{}", name(c));
    }
}
