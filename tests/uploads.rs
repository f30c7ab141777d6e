//! Uploads against the embedded store: the real server on loopback, real photos, real disk.

mod common;
mod uploads_common;

use std::time::Duration;

use common::{assert_error, decode, fixture, fixture_path};
use imago::upload::TicketRequest;
use jiff::Timestamp;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use uploads_common::*;

fn key_re_ok(key: &str, ext: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    parts.len() == 5
        && parts[0] == "uploads"
        && parts[1].len() == 4
        && parts[2].len() == 2
        && parts[3].len() == 2
        && parts[4].len() == 26 + 1 + ext.len()
        && parts[4].ends_with(&format!(".{ext}"))
        && parts[4][..26].chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_put_stores_the_photo_and_the_proxy_serves_it() {
    let s = start(&[], |_| {}).await;
    let photo = fixture("orientation/Landscape_6.jpg");
    let (status, t) =
        ticket(&s, json!({"content_type": "image/jpeg", "content_length": photo.len(), "filename": "landscape.jpg"}))
            .await;
    assert_eq!(status, 201, "{t}");
    let key = t["key"].as_str().unwrap().to_string();
    assert!(key_re_ok(&key, "jpg"), "{key}");
    assert_eq!(t["method"], "PUT");
    assert_eq!(t["exists"], false);
    assert_eq!(t["headers"], json!({"Content-Type": "image/jpeg"}));
    assert_eq!(t["fields"], json!({}));
    assert_eq!(t["max_bytes"], photo.len());
    assert_eq!(t["source"], format!("local:///{key}"));
    assert!(t["id"].as_str().unwrap().starts_with("upl_"));
    assert!(t["url"].as_str().unwrap().starts_with(&format!("{}/v1/uploads/{key}?", s.base)));
    assert_eq!(t["info_url"], format!("{}/v1/images/{key}/info", s.base));
    let exp = t["expires_at"].as_str().unwrap().parse::<Timestamp>().unwrap();
    let left = exp.as_second() - Timestamp::now().as_second();
    assert!((890..=900).contains(&left), "{left}");
    assert!(files(&s.root).is_empty(), "a ticket stores nothing");

    let r = send(&s.client, &t, photo.clone(), None).await;
    assert_eq!(r.status(), 201);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["key"], key.as_str());
    assert_eq!(body["bytes"], photo.len());
    assert_eq!(body["sha256"], Value::Null, "only hashed when the ticket has a digest");
    assert_eq!(etag.len(), 34, "{etag}");
    assert_eq!(files(&s.root), vec![key.clone()], "exactly the object, no temp file left");
    assert_eq!(std::fs::read(s.root.join(&key)).unwrap(), photo);

    // The signed read URL serves it upright, and variants work off the new source.
    let r = s.get(t["image_url"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = s.get(t["image_url"].as_str().unwrap()).await;
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (1800, 1200));
    let r = s.get(&s.url("rs:fill:300:300", t["source"].as_str().unwrap(), Some("webp"))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/webp");
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (300, 300));

    let m = s.get(&format!("{}/metrics", s.base)).await.text().await.unwrap();
    assert!(m.contains("imago_upload_tickets_total{method=\"PUT\",mode=\"embedded\"} 1"), "{m}");
    assert!(m.contains(&format!("imago_upload_bytes_total {}", photo.len())), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_post_form_stores_the_photo() {
    let s = start(&[], |_| {}).await;
    let photo = fixture("orientation/Portrait_1.jpg");
    let (status, t) = ticket(&s, json!({"content_type": "image/jpeg", "method": "POST", "filename": "p.jpeg"})).await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["method"], "POST");
    assert_eq!(t["url"], format!("{}/v1/uploads/form", s.base));
    assert_eq!(t["headers"], json!({}));
    let key = t["key"].as_str().unwrap().to_string();
    assert!(key.ends_with(".jpeg"), "filename extension kept: {key}");
    assert_eq!(t["fields"]["key"], key.as_str());
    assert_eq!(t["fields"]["Content-Type"], "image/jpeg");
    let r = send(&s.client, &t, photo.clone(), None).await;
    assert_eq!(r.status(), 201);
    assert!(r.headers()["location"].to_str().unwrap().starts_with(&s.base));
    assert_eq!(std::fs::read(s.root.join(&key)).unwrap(), photo);
    let r = s.get(&s.url("w:200", t["source"].as_str().unwrap(), Some("png"))).await;
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (200, 300));
    let m = s.get(&format!("{}/metrics", s.base)).await.text().await.unwrap();
    assert!(m.contains("imago_upload_tickets_total{method=\"POST\",mode=\"embedded\"} 1"), "{m}");
}

/// A ticket signed at a time in the past (same code path, earlier clock).
fn expired_ticket(s: &common::TestServer, method: &str) -> Value {
    let past = Timestamp::from_second(Timestamp::now().as_second() - 3600).unwrap();
    let up = &s.state.uploads;
    let req = TicketRequest { content_type: "image/jpeg".into(), method: Some(method.into()), ..Default::default() };
    let plan = up.plan(&req, &past).unwrap();
    serde_json::to_value(up.ticket(&plan, false, &past).unwrap()).unwrap()
}

fn replace_query(url: &str, name: &str, value: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> =
        u.query_pairs().into_owned().map(|(k, v)| if k == name { (k, value.to_string()) } else { (k, v) }).collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_store_nothing() {
    let s = start(&[], |r| r.upload_max_bytes = 300_000).await;
    let photo = fixture("orientation/Landscape_1.jpg"); // 347 KB: over this server's limit
    let small = fixture("gps.jpg"); // 122 KB
    let png = fixture("rose_alpha.png");

    // Expired (PUT and POST).
    for m in ["PUT", "POST"] {
        let t = expired_ticket(&s, m);
        assert_error(send(&s.client, &t, small.clone(), None).await, 403, "upload-expired").await;
    }
    // Wrong Content-Type header, and a body of another type than the ticket's.
    let (_, t) = ticket(&s, json!({"content_type": "image/jpeg"})).await;
    assert_error(send(&s.client, &t, small.clone(), Some("image/png")).await, 415, "content-type-mismatch").await;
    assert_error(send(&s.client, &t, png.clone(), None).await, 415, "content-type-mismatch").await;
    let (_, tp) = ticket(&s, json!({"content_type": "image/jpeg", "method": "POST"})).await;
    assert_error(send(&s.client, &tp, png.clone(), None).await, 415, "content-type-mismatch").await;
    // Over-size: declared in the ticket, sent with a length, streamed without one, and by form.
    let (status, e) = ticket(&s, json!({"content_type": "image/jpeg", "content_length": 400_000})).await;
    assert_eq!((status, e["code"].as_str()), (413, Some("too-large")));
    let (_, t1k) = ticket(&s, json!({"content_type": "image/jpeg", "content_length": 1000})).await;
    assert_error(send(&s.client, &t1k, small.clone(), None).await, 413, "too-large").await;
    let r = put_chunked(&s.client, t["url"].as_str().unwrap(), "image/jpeg", &photo, 32 * 1024).await;
    assert_error(r, 413, "too-large").await;
    assert_error(send(&s.client, &tp, photo.clone(), None).await, 413, "too-large").await;
    // Tampered signature, and tampered signed values ("policy": max, type, length, key).
    let url = t["url"].as_str().unwrap();
    let sig = url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == "signature").unwrap().1.into_owned();
    let flipped = format!("{}{}", &sig[..sig.len() - 1], if sig.ends_with('A') { "B" } else { "A" });
    for bad in [
        replace_query(url, "signature", &flipped),
        replace_query(url, "max", "999999999"),
        replace_query(url, "ct", "image/png"),
        replace_query(url, "expires", "4102444800"),
        url.replace("/v1/uploads/uploads/", "/v1/uploads/uploads/x"),
    ] {
        let r = s.client.put(&bad).header("content-type", "image/jpeg").body(small.clone()).send().await.unwrap();
        assert_error(r, 403, "invalid-signature").await;
    }
    let mut fields: Vec<(String, String)> =
        tp["fields"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    for (name, value) in [("max", "999999999"), ("signature", flipped.as_str()), ("key", "uploads/mine.jpg")] {
        let mut f = fields.clone();
        f.iter_mut().find(|(k, _)| k == name).unwrap().1 = value.to_string();
        let r = post_form(&s.client, tp["url"].as_str().unwrap(), &f, &small).await;
        assert_error(r, 403, "invalid-signature").await;
    }
    fields.retain(|(k, _)| k != "signature");
    let r = post_form(&s.client, tp["url"].as_str().unwrap(), &fields, &small).await;
    assert_error(r, 403, "invalid-signature").await;
    // Nothing of all that reached the store, not even a temp file.
    assert!(files(&s.root).is_empty(), "{:?}", files(&s.root));
    // The same tickets still work with the right body.
    assert_eq!(send(&s.client, &t, small.clone(), None).await.status(), 201);
    assert_eq!(send(&s.client, &tp, small.clone(), None).await.status(), 201);
    assert_eq!(files(&s.root).len(), 2);
    let m = s.get(&format!("{}/metrics", s.base)).await.text().await.unwrap();
    for reason in ["upload-expired", "content-type-mismatch", "too-large", "invalid-signature"] {
        assert!(m.contains(&format!("imago_upload_refusals_total{{reason=\"{reason}\"}}")), "{reason}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_cut_off_mid_body_leaves_nothing() {
    let s = start(&[], |_| {}).await;
    // Small (buffered in memory) and large (spilled to a temp file) bodies.
    for name in ["orientation/Landscape_3.jpg", "phone12mp.jpg"] {
        let photo = fixture(name);
        let (_, t) = ticket(&s, json!({"content_type": "image/jpeg", "content_length": photo.len()})).await;
        let key = t["key"].as_str().unwrap().to_string();
        let headers = [("Content-Type", "image/jpeg".to_string()), ("Content-Length", photo.len().to_string())];
        let half = &photo[..photo.len() / 2];
        let mut tcp = raw_request(t["url"].as_str().unwrap(), "PUT", &headers, half).await;
        if photo.len() / 2 > imago::upload::ingest::SPILL {
            // The large body is being written to .incoming/ (never to its key) …
            eventually("a temp file in .incoming/", || !incoming(&s.root).is_empty()).await;
            assert!(!s.root.join(&key).exists());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        tcp.shutdown().await.unwrap();
        drop(tcp);
        // … and is gone once the connection is cut.
        eventually("no temp file", || incoming(&s.root).is_empty()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!s.root.join(&key).exists(), "{name}: cut-off upload became visible");
        assert!(files(&s.root).iter().all(|f| !f.contains(&key)), "{:?}", files(&s.root));
        // The ticket still works for a complete retry.
        assert_eq!(send(&s.client, &t, photo.clone(), None).await.status(), 201);
        assert_eq!(std::fs::read(s.root.join(&key)).unwrap(), photo);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_of_a_ticket_are_safe() {
    let s = start(&[], |_| {}).await;
    let photo = fixture("orientation/Landscape_2.jpg");
    let other = fixture("orientation/Landscape_4.jpg");
    for method in ["PUT", "POST"] {
        let (_, t) = ticket(&s, json!({"content_type": "image/jpeg", "method": method})).await;
        let key = t["key"].as_str().unwrap().to_string();
        let r = send(&s.client, &t, photo.clone(), None).await;
        assert_eq!(r.status(), 201);
        // The same bytes again: 200, nothing changes.
        let r = send(&s.client, &t, photo.clone(), None).await;
        assert_eq!(r.status(), 200, "{method}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["created"], false);
        // Other bytes with the same ticket: 409, the stored object is untouched.
        assert_error(send(&s.client, &t, other.clone(), None).await, 409, "exists").await;
        assert_eq!(std::fs::read(s.root.join(&key)).unwrap(), photo);
    }
    assert_eq!(files(&s.root).len(), 2, "{:?}", files(&s.root));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_image_is_refused_before_anything_is_stored() {
    let s = start(&[], |_| {}).await;
    let (_, t) = ticket(&s, json!({"content_type": "image/jpeg"})).await;
    // Announce 3 MB, send only the first 4 KB of an HTML page and keep the connection open:
    // the answer comes on the first bytes, and nothing is on disk at that moment.
    let html = b"<!doctype html><html><body>".repeat(200);
    let headers = [("Content-Type", "image/jpeg".to_string()), ("Content-Length", "3000000".to_string())];
    let mut tcp = raw_request(t["url"].as_str().unwrap(), "PUT", &headers, &html[..4096]).await;
    let answer = raw_answer(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert!(answer.contains("\"not-an-image\""), "{answer}");
    assert!(files(&s.root).is_empty(), "{:?}", files(&s.root));
    drop(tcp);
    // Same through the form and a plain PUT.
    assert_error(send(&s.client, &t, b"GIF? no, text".to_vec(), None).await, 422, "not-an-image").await;
    let (_, tp) = ticket(&s, json!({"content_type": "image/png", "method": "POST"})).await;
    assert_error(send(&s.client, &tp, html.clone(), None).await, 422, "not-an-image").await;
    assert!(files(&s.root).is_empty(), "{:?}", files(&s.root));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_tickets_deduplicate_and_verify_the_bytes() {
    let s = start(&[], |_| {}).await;
    let photo = fixture("orientation/Portrait_3.jpg");
    let hex = sha256_hex(&photo);
    let body = json!({"content_type": "image/jpeg", "content_length": photo.len(), "sha256": hex});
    let (status, t) = ticket(&s, body.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(t["exists"], false);
    let key = format!("uploads/sha256/{hex}.jpg");
    assert_eq!(t["key"], key.as_str());
    // Same length, one byte changed in the middle: refused while streaming, nothing stored.
    let mut bad = photo.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    assert_error(send(&s.client, &t, bad, None).await, 422, "checksum-mismatch").await;
    assert!(files(&s.root).is_empty());
    let r = send(&s.client, &t, photo.clone(), None).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), format!("\"{}\"", &hex[..32]));
    assert_eq!(r.json::<Value>().await.unwrap()["sha256"], hex.as_str());
    // The same file again: no upload needed.
    let (status, t2) = ticket(&s, body).await;
    assert_eq!(status, 200);
    assert_eq!(t2["exists"], true);
    assert_eq!(t2["key"], key.as_str());
    assert_eq!(s.get(t2["image_url"].as_str().unwrap()).await.status(), 200);
    // Uploading it anyway is harmless (identical bytes).
    assert_eq!(send(&s.client, &t2, photo.clone(), None).await.status(), 200);
    // By POST too.
    let (_, t3) = ticket(&s, json!({"content_type": "image/jpeg", "sha256": hex, "method": "POST"})).await;
    assert_eq!(t3["exists"], true);
    assert_eq!(t3["fields"]["sha256"], hex.as_str());
    assert_eq!(files(&s.root), vec![key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_issuing_is_rate_limited_per_key() {
    let s = start(&[], |r| {
        r.upload_rate_per_sec = 0.5;
        r.upload_burst = 3;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(ticket(&s, json!({"content_type": "image/png"})).await.0, 201);
    }
    let r = s
        .client
        .post(format!("{}/v1/uploads", s.base))
        .bearer_auth(API_KEY)
        .json(&json!({"content_type": "image/png"}))
        .send()
        .await
        .unwrap();
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_error(r, 429, "rate-limited").await;
    // Another key has its own bucket.
    assert_eq!(ticket_with(&s, API_KEY_2, json!({"content_type": "image/png"})).await.0, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_requests_are_checked() {
    let s = start(&[], |r| r.upload_prefixes = imago::config::List::from_strs(&["avatars", "posts"])).await;
    let post = |key: Option<&str>, body: String| {
        let mut r = s.client.post(format!("{}/v1/uploads", s.base)).header("content-type", "application/json");
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.body(body).send()
    };
    assert_error(post(None, "{}".into()).await.unwrap(), 401, "unauthorized").await;
    assert_error(post(Some("wrong-key-0123456789"), "{}".into()).await.unwrap(), 401, "unauthorized").await;
    assert_error(post(Some(API_KEY), "not json".into()).await.unwrap(), 400, "invalid-request").await;
    assert_error(
        post(Some(API_KEY), r#"{"content_type":"image/png","colour":1}"#.into()).await.unwrap(),
        400,
        "invalid-request",
    )
    .await;
    assert_error(post(Some(API_KEY), "x".repeat(20_000)).await.unwrap(), 400, "invalid-request").await;
    for (body, status, code) in [
        (json!({"content_type": "text/html"}), 415, "unsupported-content-type"),
        (json!({"content_type": "image/svg+xml"}), 415, "unsupported-content-type"),
        (json!({"content_type": "image/png", "prefix": "other"}), 403, "forbidden"),
        (json!({"content_type": "image/png", "prefix": "../../etc"}), 400, "invalid-request"),
        (json!({"content_type": "image/png", "content_length": 26 * 1024 * 1024}), 413, "too-large"),
        (json!({"content_type": "image/png", "sha256": "abc"}), 400, "invalid-request"),
        (json!({"content_type": "image/png", "filename": "a/b.png"}), 400, "invalid-request"),
        (json!({"content_type": "image/png", "method": "DELETE"}), 400, "invalid-request"),
    ] {
        let (st, e) = ticket(&s, body.clone()).await;
        assert_eq!((st, e["code"].as_str().unwrap()), (status, code), "{body}");
    }
    let (st, t) = ticket(&s, json!({"content_type": "image/avif", "prefix": "/posts/"})).await;
    assert_eq!(st, 201);
    assert!(t["key"].as_str().unwrap().starts_with("posts/") && t["key"].as_str().unwrap().ends_with(".avif"));
    let r = s.client.get(format!("{}/v1/uploads", s.base)).send().await.unwrap();
    assert_error(r, 405, "method-not-allowed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svg_only_when_enabled() {
    let s = start(&[], |r| r.upload_allow_svg = true).await;
    let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>"#.to_vec();
    let (st, t) = ticket(&s, json!({"content_type": "image/svg+xml"})).await;
    assert_eq!(st, 201);
    assert_error(send(&s.client, &t, b"<html>hi</html>".to_vec(), None).await, 422, "not-an-image").await;
    assert_eq!(send(&s.client, &t, svg, None).await.status(), 201);
}

async fn info(s: &common::TestServer, key: &str) -> reqwest::Response {
    s.client.get(format!("{}/v1/images/{key}/info", s.base)).bearer_auth(API_KEY).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_reports_the_corpus_photos() {
    let files_in = [
        "orientation/Landscape_6.jpg",
        "orientation/Portrait_8.jpg",
        "rose_alpha.png",
        "earth_anim.gif",
        "p3.jpg",
        "cmyk.jpg",
        "rgb16.png",
        "adobergb.jpg",
    ];
    let s = start(&files_in, |_| {}).await;
    let r = info(&s, "orientation/Landscape_6.jpg").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "private, max-age=300");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let i: Value = r.json().await.unwrap();
    // Stored 1200x1800 with EXIF orientation 6 (rotate 90° clockwise): upright 1800x1200.
    assert_eq!((&i["width"], &i["height"]), (&json!(1800), &json!(1200)), "{i}");
    assert_eq!((&i["stored_width"], &i["stored_height"]), (&json!(1200), &json!(1800)));
    assert_eq!(i["orientation"], 6);
    assert_eq!(i["format"], "jpeg");
    assert_eq!(i["bytes"], std::fs::metadata(fixture_path("orientation/Landscape_6.jpg")).unwrap().len());
    assert_eq!((&i["has_alpha"], &i["frames"], &i["bands"]), (&json!(false), &json!(1), &json!(3)));
    assert_eq!((&i["colour_space"], &i["sample_format"]), (&json!("srgb"), &json!("uchar")));
    assert_eq!(i["icc_profile"], Value::Null);
    assert_eq!(i["source"], "local:///orientation/Landscape_6.jpg");
    let hash = base64_decode(i["thumbhash"].as_str().unwrap());
    let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).unwrap();
    assert!((1.3..=1.7).contains(&ratio), "thumbhash aspect {ratio}");
    // Conditional request.
    let r = s
        .client
        .get(format!("{}/v1/images/orientation/Landscape_6.jpg/info", s.base))
        .bearer_auth(API_KEY)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    let i: Value = info(&s, "orientation/Portrait_8.jpg").await.json().await.unwrap();
    assert_eq!((&i["width"], &i["height"], &i["orientation"]), (&json!(1200), &json!(1800), &json!(8)));
    let i: Value = info(&s, "rose_alpha.png").await.json().await.unwrap();
    assert_eq!((&i["format"], &i["width"], &i["height"]), (&json!("png"), &json!(400), &json!(301)));
    assert_eq!((&i["has_alpha"], &i["bands"], &i["orientation"]), (&json!(true), &json!(4), &json!(1)));
    let i: Value = info(&s, "earth_anim.gif").await.json().await.unwrap();
    assert_eq!((&i["format"], &i["frames"], &i["width"]), (&json!("gif"), &json!(44), &json!(400)));
    let i: Value = info(&s, "p3.jpg").await.json().await.unwrap();
    assert_eq!(i["icc_profile"], "sP3C", "{i}");
    let i: Value = info(&s, "adobergb.jpg").await.json().await.unwrap();
    assert_eq!(i["icc_profile"], "Compatible with Adobe RGB (1998)", "{i}");
    let i: Value = info(&s, "cmyk.jpg").await.json().await.unwrap();
    assert_eq!((&i["colour_space"], &i["bands"]), (&json!("cmyk"), &json!(4)), "{i}");
    assert_eq!(i["icc_profile"], "U.S. Web Coated (SWOP) v2");
    let i: Value = info(&s, "rgb16.png").await.json().await.unwrap();
    assert_eq!((&i["colour_space"], &i["sample_format"]), (&json!("rgb16"), &json!("ushort")), "{i}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_dominant_colour_and_thumbhash_of_a_known_image() {
    let s = start(&[], |_| {}).await;
    // 300x150: left two thirds crimson, right third navy.
    let img =
        image::RgbImage::from_fn(
            300,
            150,
            |x, _| if x < 200 { image::Rgb([200, 30, 60]) } else { image::Rgb([10, 20, 90]) },
        );
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    s.put("known.png", &png);
    let i: Value = info(&s, "known.png").await.json().await.unwrap();
    let dom = i["dominant_colour"].as_str().unwrap();
    let rgb: Vec<i64> = (0..3).map(|k| i64::from_str_radix(&dom[1 + 2 * k..3 + 2 * k], 16).unwrap()).collect();
    assert!(rgb.iter().zip([200, 30, 60]).all(|(a, b)| (a - b).abs() <= 2), "{i}");
    let hash = base64_decode(i["thumbhash"].as_str().unwrap());
    let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).unwrap();
    // ThumbHash stores the aspect ratio coarsely (as its DCT grid): 2:1 comes back as 1.75.
    assert!((1.5..=2.25).contains(&ratio), "{ratio}");
    let (r, g, b, a) = thumbhash::thumb_hash_to_average_rgba(&hash).unwrap();
    // Mean colour: 2/3 crimson + 1/3 navy.
    let want = [(2.0 * 200.0 + 10.0) / 3.0, (2.0 * 30.0 + 20.0) / 3.0, (2.0 * 60.0 + 90.0) / 3.0];
    for (got, want) in [r, g, b].iter().zip(want) {
        assert!((got * 255.0 - want).abs() < 12.0, "average {:?} vs {want:?}", (r, g, b));
    }
    assert!(a > 0.99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_and_delete_need_a_key_and_an_object() {
    let s = start(&["orientation/Landscape_1.jpg"], |_| {}).await;
    // DELETE takes upload keys only (under IMAGO_UPLOAD_PREFIXES).
    s.put("uploads/gps.jpg", &fixture("gps.jpg"));
    let r = s.client.get(format!("{}/v1/images/uploads/gps.jpg/info", s.base)).send().await.unwrap();
    assert_error(r, 401, "unauthorized").await;
    assert_error(info(&s, "missing.jpg").await, 404, "not-found").await;
    assert_error(info(&s, ".incoming/x.part").await, 404, "not-found").await;
    let del = |k: &str, key: Option<&str>| {
        let mut r = s.client.delete(format!("{}/v1/images/{k}", s.base));
        if let Some(key) = key {
            r = r.bearer_auth(key);
        }
        r.send()
    };
    assert_error(del("uploads/gps.jpg", None).await.unwrap(), 401, "unauthorized").await;
    assert!(s.root.join("uploads/gps.jpg").exists());
    let r = del("uploads/gps.jpg", Some(API_KEY_2)).await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(!s.root.join("uploads/gps.jpg").exists());
    assert_error(del("uploads/gps.jpg", Some(API_KEY)).await.unwrap(), 404, "not-found").await;
    assert_error(info(&s, "uploads/gps.jpg").await, 404, "not-found").await;
    let r = s.get(&s.url("w:100", "local:///uploads/gps.jpg", None)).await;
    assert_eq!(r.status(), 404, "the original is gone");
    assert!(s.root.join("orientation/Landscape_1.jpg").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temp_files_are_never_readable() {
    let s = start(&[], |_| {}).await;
    s.put(".incoming/evil.part", &fixture("gps.jpg"));
    let r = s.get(&s.url("w:100", "local:///.incoming/evil.part", Some("jpg"))).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_for_browser_uploads() {
    let s = start(&[], |r| r.cors_origins = imago::config::List::from_strs(&["http://app.example.test"])).await;
    let (_, t) = ticket(&s, json!({"content_type": "image/jpeg"})).await;
    let url = t["url"].as_str().unwrap();
    let pre = |origin: &'static str| {
        s.client
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let r = pre("http://app.example.test").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "http://app.example.test");
    assert!(r.headers()["access-control-allow-methods"].to_str().unwrap().contains("PUT"));
    assert_eq!(r.headers()["access-control-allow-headers"], "content-type");
    let r = pre("http://evil.example.test").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = s
        .client
        .put(url)
        .header("origin", "http://evil.example.test")
        .header("content-type", "image/jpeg")
        .body(fixture("gps.jpg"))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "forbidden").await;
    let r = s
        .client
        .put(url)
        .header("origin", "http://app.example.test")
        .header("content-type", "image/jpeg")
        .body(fixture("gps.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["access-control-allow-origin"], "http://app.example.test");
    assert!(r.headers()["access-control-expose-headers"].to_str().unwrap().contains("ETag"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presign_cli_issues_the_same_tickets() {
    let s = start(&[], |_| {}).await;
    let png = fixture("rose_alpha.png");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imago"))
        .args(["presign", "--content-type", "image/png", "--method", "post", "--filename", "rose.png"])
        .env("IMAGO_KEY", common::KEY)
        .env("IMAGO_SALT", common::SALT)
        .env("IMAGO_LOCAL_ROOT", &s.root)
        .env("IMAGO_PUBLIC_URL", &s.base)
        .env("IMAGO_API_KEYS", API_KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["method"], "POST");
    assert!(t["key"].as_str().unwrap().ends_with(".png"));
    let r = send(&s.client, &t, png.clone(), None).await;
    assert_eq!(r.status(), 201);
    assert_eq!(std::fs::read(s.root.join(t["key"].as_str().unwrap())).unwrap(), png);
    // Refusals come out as the same codes, exit status 2.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imago"))
        .args(["presign", "--content-type", "text/plain"])
        .env("IMAGO_KEY", common::KEY)
        .env("IMAGO_SALT", common::SALT)
        .env("IMAGO_LOCAL_ROOT", &s.root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported-content-type"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies_work_and_slow_bodies_time_out() {
    let s = start(&[], |r| r.upload_body_timeout_secs = 1).await;
    let photo = fixture("phone12mp.jpg");
    // No Content-Length (chunked), spilled to a temp file: stored whole.
    let (_, t) = ticket(&s, json!({"content_type": "image/jpeg"})).await;
    let r = put_chunked(&s.client, t["url"].as_str().unwrap(), "image/jpeg", &photo, 64 * 1024).await;
    assert_eq!(r.status(), 201);
    let key = t["key"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read(s.root.join(&key)).unwrap(), photo);
    // A body that stalls: 408 after the body timeout, and nothing is left.
    let (_, t) = ticket(&s, json!({"content_type": "image/jpeg", "content_length": photo.len()})).await;
    let headers = [("Content-Type", "image/jpeg".to_string()), ("Content-Length", photo.len().to_string())];
    let mut tcp = raw_request(t["url"].as_str().unwrap(), "PUT", &headers, &photo[..1_500_000]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answer = raw_answer(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"upload-timeout\""), "{answer}");
    drop(tcp);
    eventually("no temp file", || incoming(&s.root).is_empty()).await;
    assert_eq!(files(&s.root), vec![key]);
}

/// `DELETE /v1/images/{key}` with the API key.
async fn delete(s: &common::TestServer, key: &str) -> reqwest::Response {
    s.client.delete(format!("{}/v1/images/{key}", s.base)).bearer_auth(API_KEY).send().await.unwrap()
}

/// Reads a raw answer until the server closes or answers in full, up to `max`; returns it with
/// the time it took.
async fn answer_within(tcp: &mut tokio::net::TcpStream, max: Duration) -> (String, Duration) {
    use tokio::io::AsyncReadExt;
    let start = std::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while start.elapsed() < max {
        match tokio::time::timeout(max - start.elapsed(), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"}") {
                    break;
                }
            }
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

/// Opens a form upload whose multipart preamble (the fields before `file`) stalls half-way.
async fn stalled_form(s: &common::TestServer) -> tokio::net::TcpStream {
    let boundary = "----imagostall";
    let headers = [
        ("Content-Type", format!("multipart/form-data; boundary={boundary}")),
        ("Content-Length", "100000".to_string()),
    ];
    let part = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuplo");
    raw_request(&format!("{}/v1/uploads/form", s.base), "POST", &headers, part.as_bytes()).await
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_confined_to_upload_keys_inside_the_store() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.jpg");
    std::fs::write(&victim, fixture("gps.jpg")).unwrap();
    let s = start(&["orientation/Landscape_1.jpg"], |r| {
        r.upload_prefixes = imago::config::List::from_strs(&["uploads", "shared"]);
    })
    .await;
    s.put("originals/hero.jpg", &fixture("gps.jpg"));
    s.put("originals/notes.txt", b"notes");
    s.put("uploads/notes.txt", b"notes");
    std::fs::create_dir_all(s.root.join("uploads")).unwrap();
    // An upload prefix that is a directory symlinked out of the store, and one inside an upload
    // prefix.
    std::os::unix::fs::symlink(outside.path(), s.root.join("shared")).unwrap();
    std::os::unix::fs::symlink(outside.path(), s.root.join("uploads/ext")).unwrap();

    // Reads refuse the escape already; DELETE must too, and the file outside survives.
    let r = s.client.get(format!("{}/v1/images/shared/victim.jpg/info", s.base)).bearer_auth(API_KEY);
    assert_eq!(r.send().await.unwrap().status(), 403);
    for key in ["shared/victim.jpg", "uploads/ext/victim.jpg"] {
        assert_error(delete(&s, key).await, 403, "path-escapes").await;
        assert!(victim.exists(), "DELETE {key} removed a file outside the store");
    }
    // Only upload keys: not another directory, not a non-image, not a directory.
    for key in ["originals/hero.jpg", "originals/notes.txt", "uploads/notes.txt", "orientation/Landscape_1.jpg"] {
        assert_error(delete(&s, key).await, 403, "key-not-allowed").await;
        assert!(s.root.join(key).exists(), "DELETE {key} removed it");
    }
    // `..` and its encodings never reach outside the upload prefix (raw requests: a client
    // library would normalise them away).
    for target in [
        "/v1/images/uploads/../originals/hero.jpg",
        "/v1/images/uploads/%2e%2e/originals/hero.jpg",
        "/v1/images/uploads/.%2E/originals/hero.jpg",
        "/v1/images/uploads%2F..%2Foriginals%2Fhero.jpg",
        "/v1/images/uploads/..%2Foriginals/hero.jpg",
        "/v1/images/uploads/%2E%2E%2F%2E%2E%2Fimages/originals/hero.jpg",
    ] {
        let headers = [("Authorization", format!("Bearer {API_KEY}")), ("Connection", "close".to_string())];
        let mut tcp = raw_request(&format!("{}{target}", s.base), "DELETE", &headers, b"").await;
        let (answer, _) = answer_within(&mut tcp, Duration::from_secs(5)).await;
        let status: u16 = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        assert!((400..500).contains(&status), "{target}: {answer}");
        assert!(s.root.join("originals/hero.jpg").exists(), "{target} removed it");
    }
    // An upload to the prefix symlinked out is refused before any directory is made out there.
    let (status, t) = ticket(&s, json!({"content_type": "image/jpeg", "prefix": "shared"})).await;
    assert_eq!(status, 201, "{t}");
    assert_error(send(&s.client, &t, fixture("gps.jpg"), None).await, 403, "path-escapes").await;
    let mut out: Vec<_> = std::fs::read_dir(outside.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    out.sort();
    assert_eq!(out, vec![std::ffi::OsString::from("victim.jpg")], "nothing was created outside the store");
    // An upload key still deletes.
    let (_, t) = ticket(&s, json!({"content_type": "image/jpeg"})).await;
    assert_eq!(send(&s.client, &t, fixture("gps.jpg"), None).await.status(), 201);
    let key = t["key"].as_str().unwrap();
    assert_eq!(delete(&s, key).await.status(), 204);
    assert!(!s.root.join(key).exists());
    assert_error(delete(&s, key).await, 404, "not-found").await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_store_root_works_for_every_operation() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir_all(real.join("uploads/old")).unwrap();
    std::fs::copy(fixture_path("gps.jpg"), real.join("uploads/old/gps.jpg")).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let s = start(&[], |r| r.local_root = link.clone()).await;
    // Read and info of what was there.
    let r = s.get(&s.url("w:100", "local:///uploads/old/gps.jpg", Some("png"))).await;
    assert_eq!(r.status(), 200);
    let r = s.client.get(format!("{}/v1/images/uploads/old/gps.jpg/info", s.base)).bearer_auth(API_KEY);
    assert_eq!(r.send().await.unwrap().status(), 200);
    // PUT and form uploads commit under the real directory; reads, info and delete follow.
    for method in ["PUT", "POST"] {
        let (_, t) = ticket(&s, json!({"content_type": "image/jpeg", "method": method})).await;
        let r = send(&s.client, &t, fixture("gps.jpg"), None).await;
        assert_eq!(r.status(), 201, "{method}: {:?}", r.text().await);
        let key = t["key"].as_str().unwrap();
        assert_eq!(std::fs::read(real.join(key)).unwrap(), fixture("gps.jpg"));
        assert_eq!(s.get(t["image_url"].as_str().unwrap()).await.status(), 200);
        let r = s.client.get(t["info_url"].as_str().unwrap()).bearer_auth(API_KEY).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(delete(&s, key).await.status(), 204);
        assert!(!real.join(key).exists());
    }
    assert_eq!(delete(&s, "uploads/old/gps.jpg").await.status(), 204);
    assert!(!real.join("uploads/old/gps.jpg").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_request_bodies_time_out_fields_and_tickets_included() {
    let s = start(&[], |r| r.upload_body_timeout_secs = 1).await;
    // A form whose fields stall (no signature seen yet: the request is unauthenticated).
    let mut tcp = stalled_form(&s).await;
    let (answer, took) = answer_within(&mut tcp, Duration::from_secs(8)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "after {took:?}: {answer:?}");
    assert!(answer.contains("\"upload-timeout\""), "{answer}");
    assert!(took < Duration::from_millis(2500), "answered after {took:?}");
    eprintln!("408 after {took:?}");
    // A ticket request whose JSON body stalls.
    let headers = [
        ("Authorization", format!("Bearer {API_KEY}")),
        ("Content-Type", "application/json".to_string()),
        ("Content-Length", "200".to_string()),
    ];
    let mut tcp = raw_request(&format!("{}/v1/uploads", s.base), "POST", &headers, b"{\"content_type\":").await;
    let (answer, took) = answer_within(&mut tcp, Duration::from_secs(8)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "after {took:?}: {answer:?}");
    assert!(took < Duration::from_millis(2500), "answered after {took:?}");
    eprintln!("408 after {took:?}");
    // A form whose file part stalls after valid fields.
    let (_, t) = ticket(&s, json!({"content_type": "image/jpeg", "method": "POST"})).await;
    let fields: Vec<(String, String)> =
        t["fields"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    let photo = fixture("gps.jpg");
    let (ct, body) = multipart(&fields, &photo);
    let headers = [("Content-Type", ct), ("Content-Length", body.len().to_string())];
    let mut tcp = raw_request(t["url"].as_str().unwrap(), "POST", &headers, &body[..body.len() / 2]).await;
    let (answer, took) = answer_within(&mut tcp, Duration::from_secs(8)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "after {took:?}: {answer:?}");
    assert!(took < Duration::from_millis(2500), "answered after {took:?}");
    eprintln!("408 after {took:?}");
    drop(tcp);
    eventually("no temp file", || incoming(&s.root).is_empty()).await;
    assert!(files(&s.root).is_empty(), "{:?}", files(&s.root));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_request_bodies_are_bounded() {
    let n = 2;
    let s = start(&[], |r| {
        r.upload_body_timeout_secs = 2;
        r.upload_max_bodies = n;
    })
    .await;
    let (_, put) = ticket(&s, json!({"content_type": "image/jpeg"})).await;
    let (_, post) = ticket(&s, json!({"content_type": "image/jpeg", "method": "POST"})).await;
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(stalled_form(&s).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The third body of any kind is refused at once, before a byte of it is read.
    let photo = fixture("gps.jpg");
    for t in [&put, &post] {
        let r = send(&s.client, t, photo.clone(), None).await;
        assert_eq!(r.headers().get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
        assert_error(r, 503, "upload-busy").await;
    }
    let (status, e) = ticket(&s, json!({"content_type": "image/jpeg"})).await;
    assert_eq!((status, e["code"].as_str()), (503, Some("upload-busy")));
    let mut tcp = stalled_form(&s).await;
    let (answer, _) = answer_within(&mut tcp, Duration::from_secs(1)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(files(&s.root).is_empty(), "{:?}", files(&s.root));
    // Once the held bodies time out, their slots are free again.
    for tcp in held.iter_mut() {
        let (answer, _) = answer_within(tcp, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    }
    drop(held);
    assert_eq!(send(&s.client, &put, photo.clone(), None).await.status(), 201);
    assert_eq!(send(&s.client, &post, photo, None).await.status(), 201);
    assert_eq!(files(&s.root).len(), 2);
}
