//! Uploads in S3 mode against a real Garage (started by `scripts/garage.sh`, settings from the
//! `IMAGO_TEST_S3_*` environment): presigned PUT and POST go straight to the store, which must
//! refuse everything the ticket does not allow. Garage answers some refusals with 400 where AWS
//! says 403, so refusals are asserted as "4xx and nothing stored".
//!
//! Without the environment these tests print why and pass, except under `CI=true`, where they
//! fail.

mod common;
mod uploads_common;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::{assert_error, decode, fixture, TestServer};
use imago::upload::TicketRequest;
use jiff::Timestamp;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use uploads_common::*;

async fn s3_server(env: &S3Env, prefix: &str, tweak: impl FnOnce(&mut imago::RawConfig)) -> TestServer {
    let env = env.clone();
    let prefix = prefix.to_string();
    start(&[], move |r| {
        env.apply(r);
        r.upload_prefixes = imago::config::List::from_strs(&[prefix.as_str()]);
        tweak(r);
    })
    .await
}

/// A refusal: a 4xx, or the store closing the connection before it read the whole body (it
/// answered early; the client's write then fails), which stores nothing either.
fn refused(answer: reqwest::Result<reqwest::Response>, what: &str) {
    match answer {
        Ok(r) => assert!(r.status().is_client_error(), "{what}: expected a refusal (4xx), got {}", r.status()),
        Err(e) => {
            assert!(e.is_request() || e.is_body(), "{what}: expected a refusal, got {e:?}");
            eprintln!("{what}: the store closed the connection early ({e})");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_and_post_go_to_the_store_and_the_proxy_serves_them() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("ok");
    let s = s3_server(&env, &prefix, |_| {}).await;
    let photo = fixture("orientation/Landscape_6.jpg");

    // PUT: Content-Type, Content-Length, Content-Disposition and If-None-Match are signed.
    let (status, t) =
        ticket(&s, json!({"content_type": "image/jpeg", "content_length": photo.len(), "filename": "landscape.jpg"}))
            .await;
    assert_eq!(status, 201, "{t}");
    let key = t["key"].as_str().unwrap().to_string();
    assert!(key.starts_with(&format!("{prefix}/")) && key.ends_with(".jpg"), "{key}");
    assert_eq!(t["method"], "PUT");
    assert_eq!(t["source"], format!("s3://{}/{key}", env.bucket));
    let url = t["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/{}/{key}?", env.endpoint, env.bucket)), "{url}");
    assert!(
        url.contains("X-Amz-SignedHeaders=content-disposition%3Bcontent-length%3Bcontent-type%3Bhost%3Bif-none-match"),
        "{url}"
    );
    assert_eq!(t["headers"]["Content-Type"], "image/jpeg");
    assert_eq!(t["headers"]["If-None-Match"], "*");
    assert!(t["headers"]["Content-Disposition"].as_str().unwrap().contains("landscape.jpg"));
    assert!(env.list(&prefix).await.is_empty(), "a ticket stores nothing");
    let r = send(&s.client, &t, photo.clone(), None).await;
    assert!(r.status().is_success(), "{}: {}", r.status(), r.text().await.unwrap());
    assert_eq!(env.list(&prefix).await, vec![key.clone()]);
    assert_eq!(env.object(&key).await.unwrap(), photo);

    let r = s.get(&s.url("rs:fill:300:200", t["source"].as_str().unwrap(), Some("webp"))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (300, 200));
    let r = s.get(t["image_url"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (1800, 1200));

    // POST form (the default in S3 mode when the length is not known).
    let portrait = fixture("orientation/Portrait_1.jpg");
    let (status, t) = ticket(&s, json!({"content_type": "image/jpeg"})).await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["method"], "POST");
    assert_eq!(t["url"], format!("{}/{}/", env.endpoint, env.bucket));
    assert_eq!(t["headers"], json!({}));
    let policy: Value = serde_json::from_slice(&B64.decode(t["fields"]["policy"].as_str().unwrap()).unwrap()).unwrap();
    let conds = policy["conditions"].to_string();
    let pkey = t["key"].as_str().unwrap().to_string();
    assert!(conds.contains(&format!(r#"["eq","$key","{pkey}"]"#)), "{conds}");
    assert!(conds.contains(&format!(r#"["content-length-range",1,{}]"#, 25 * 1024 * 1024)), "{conds}");
    let r = send(&s.client, &t, portrait.clone(), None).await;
    assert!(r.status().is_success(), "{}: {}", r.status(), r.text().await.unwrap());
    assert_eq!(env.object(&pkey).await.unwrap(), portrait);
    let r = s.get(&s.url("w:200", t["source"].as_str().unwrap(), Some("png"))).await;
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (200, 300));

    let mut listed = vec![key, pkey];
    listed.sort();
    assert_eq!(env.list(&prefix).await, listed);
    let m = s.get(&format!("{}/metrics", s.base)).await.text().await.unwrap();
    assert!(m.contains("imago_upload_tickets_total{method=\"PUT\",mode=\"s3\"} 1"), "{m}");
    assert!(m.contains("imago_upload_tickets_total{method=\"POST\",mode=\"s3\"} 1"), "{m}");
    // PUT without a length cannot be bounded by the store: refused at ticket time.
    let (status, e) = ticket(&s, json!({"content_type": "image/jpeg", "method": "PUT"})).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("invalid-request")));
}

fn past_ticket(s: &TestServer, req: TicketRequest) -> Value {
    let past = Timestamp::from_second(Timestamp::now().as_second() - 3600).unwrap();
    let up = &s.state.uploads;
    let plan = up.plan(&req, &past).unwrap();
    serde_json::to_value(up.ticket(&plan, false, &past).unwrap()).unwrap()
}

fn fields_of(t: &Value) -> Vec<(String, String)> {
    t["fields"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect()
}

fn set(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut f = fields.to_vec();
    f.iter_mut().find(|(k, _)| k == name).unwrap().1 = value.to_string();
    f
}

fn flip_last(s: &str) -> String {
    let last = s.chars().last().unwrap();
    format!("{}{}", &s[..s.len() - 1], if last == 'a' { 'b' } else { 'a' })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_refuses_what_the_ticket_does_not_allow() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("refuse");
    let s = s3_server(&env, &prefix, |r| r.upload_max_bytes = 300_000).await;
    let small = fixture("gps.jpg"); // 122 KB
    let big = fixture("orientation/Landscape_1.jpg"); // 347 KB, over this server's limit
    let jpeg = |len: usize, method: &str| TicketRequest {
        content_type: "image/jpeg".into(),
        content_length: (len > 0).then_some(len as u64),
        method: Some(method.into()),
        ..Default::default()
    };

    // Expired tickets.
    let t = past_ticket(&s, jpeg(small.len(), "PUT"));
    refused(try_send(&s.client, &t, small.clone(), None).await, "expired PUT");
    let t = past_ticket(&s, jpeg(0, "POST"));
    refused(try_send(&s.client, &t, small.clone(), None).await, "expired POST");

    // PUT: wrong Content-Type, body longer than signed, tampered signature and URL.
    let (_, t) =
        ticket(&s, json!({"content_type": "image/jpeg", "content_length": small.len(), "method": "PUT"})).await;
    refused(try_send(&s.client, &t, small.clone(), Some("image/png")).await, "PUT wrong type");
    let mut longer = small.clone();
    longer.extend_from_slice(&[0u8; 1000]);
    refused(try_send(&s.client, &t, longer, None).await, "PUT over-size");
    refused(try_send(&s.client, &t, small[..1000].to_vec(), None).await, "PUT short");
    let url = t["url"].as_str().unwrap().to_string();
    let mut tampered = t.clone();
    tampered["url"] = json!(flip_last(&url));
    refused(try_send(&s.client, &tampered, small.clone(), None).await, "PUT tampered signature");
    tampered["url"] = json!(url.replace(&format!("/{prefix}/"), &format!("/{prefix}/x")));
    refused(try_send(&s.client, &tampered, small.clone(), None).await, "PUT other key");
    let mut no_header = t.clone();
    no_header["headers"].as_object_mut().unwrap().remove("If-None-Match");
    refused(try_send(&s.client, &no_header, small.clone(), None).await, "PUT without a signed header");

    // POST: over the range, wrong type, tampered signature, key and policy.
    let (_, p) = ticket(&s, json!({"content_type": "image/jpeg", "method": "POST"})).await;
    let f = fields_of(&p);
    let purl = p["url"].as_str().unwrap();
    refused(try_post_form(&s.client, purl, &f, &big).await, "POST over the range");
    refused(try_post_form(&s.client, purl, &set(&f, "Content-Type", "image/png"), &small).await, "POST type");
    let sig = p["fields"]["x-amz-signature"].as_str().unwrap();
    refused(try_post_form(&s.client, purl, &set(&f, "x-amz-signature", &flip_last(sig)), &small).await, "POST sig");
    let other_key = format!("{prefix}/chosen-by-client.jpg");
    refused(try_post_form(&s.client, purl, &set(&f, "key", &other_key), &small).await, "POST key");
    let policy = String::from_utf8(B64.decode(p["fields"]["policy"].as_str().unwrap()).unwrap()).unwrap();
    let widened = policy.replace(",1,300000]", ",1,999999999]");
    assert_ne!(widened, policy);
    let f2 = set(&f, "policy", &B64.encode(widened));
    refused(try_post_form(&s.client, purl, &f2, &big).await, "POST tampered policy");
    let (_, p1) = ticket(&s, json!({"content_type": "image/jpeg", "method": "POST", "content_length": 1000})).await;
    refused(try_post_form(&s.client, purl, &fields_of(&p1), &small).await, "POST longer than declared");

    assert!(env.list(&prefix).await.is_empty(), "{:?}", env.list(&prefix).await);
    // The same tickets work with what they allow.
    assert!(send(&s.client, &t, small.clone(), None).await.status().is_success());
    assert!(post_form(&s.client, purl, &f, &small).await.status().is_success());
    assert_eq!(env.list(&prefix).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_cut_off_mid_body_leaves_no_object() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("cut");
    let s = s3_server(&env, &prefix, |_| {}).await;
    let photo = fixture("phone12mp.jpg");
    let (_, t) = ticket(&s, json!({"content_type": "image/jpeg", "content_length": photo.len()})).await;
    let mut headers: Vec<(&str, String)> = vec![("Content-Length", photo.len().to_string())];
    for (k, v) in t["headers"].as_object().unwrap() {
        headers.push((k.as_str(), v.as_str().unwrap().to_string()));
    }
    let mut tcp = raw_request(t["url"].as_str().unwrap(), "PUT", &headers, &photo[..photo.len() / 2]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    tcp.shutdown().await.unwrap();
    drop(tcp);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(env.list(&prefix).await.is_empty(), "{:?}", env.list(&prefix).await);
    // The ticket still works for a complete retry, and retrying that is harmless.
    for _ in 0..2 {
        let r = send(&s.client, &t, photo.clone(), None).await;
        assert!(r.status().is_success() || r.status() == 412, "{}", r.status());
    }
    let key = t["key"].as_str().unwrap();
    assert_eq!(env.list(&prefix).await, vec![key.to_string()]);
    assert_eq!(env.object(key).await.unwrap(), photo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_tickets_deduplicate_and_the_store_verifies_the_bytes() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("dedup");
    let s = s3_server(&env, &prefix, |_| {}).await;
    for (name, method) in [("orientation/Portrait_2.jpg", "PUT"), ("orientation/Portrait_4.jpg", "POST")] {
        let photo = fixture(name);
        let hex = sha256_hex(&photo);
        let body =
            json!({"content_type": "image/jpeg", "content_length": photo.len(), "sha256": hex, "method": method});
        let (status, t) = ticket(&s, body.clone()).await;
        assert_eq!((status, &t["exists"]), (201, &json!(false)), "{t}");
        let key = format!("{prefix}/sha256/{hex}.jpg");
        assert_eq!(t["key"], key.as_str());
        let b64 = B64.encode(hex::decode(&hex).unwrap());
        match method {
            "PUT" => assert_eq!(t["headers"]["x-amz-checksum-sha256"], b64.as_str()),
            _ => assert_eq!(t["fields"]["x-amz-checksum-sha256"], b64.as_str()),
        }
        let mut bad = photo.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x55;
        refused(try_send(&s.client, &t, bad, None).await, "checksum mismatch");
        assert!(env.object(&key).await.is_none(), "{method}: bytes that do not match the digest were stored");
        let r = send(&s.client, &t, photo.clone(), None).await;
        assert!(r.status().is_success(), "{}", r.status());
        assert_eq!(env.object(&key).await.unwrap(), photo);
        let (status, t2) = ticket(&s, body).await;
        assert_eq!((status, &t2["exists"], &t2["key"]), (200, &json!(true), &json!(key)));
        assert_eq!(s.get(t2["image_url"].as_str().unwrap()).await.status(), 200);
    }
    assert_eq!(env.list(&prefix).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_and_delete_work_on_bucket_keys() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("info");
    let s = s3_server(&env, &prefix, |_| {}).await;
    let photo = fixture("orientation/Landscape_6.jpg");
    let (_, t) = ticket(&s, json!({"content_type": "image/jpeg", "content_length": photo.len()})).await;
    assert!(send(&s.client, &t, photo.clone(), None).await.status().is_success());
    let key = t["key"].as_str().unwrap();
    let info_url = t["info_url"].as_str().unwrap();
    let r = s.client.get(info_url).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let i: Value = r.json().await.unwrap();
    assert_eq!((&i["width"], &i["height"], &i["orientation"]), (&json!(1800), &json!(1200), &json!(6)), "{i}");
    assert_eq!(i["bytes"], photo.len());
    assert_eq!(i["source"], format!("s3://{}/{key}", env.bucket));
    let r = s.client.get(info_url).bearer_auth(API_KEY).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(r.status(), 304);
    let del = || s.client.delete(format!("{}/v1/images/{key}", s.base)).bearer_auth(API_KEY).send();
    assert_eq!(del().await.unwrap().status(), 204);
    assert!(env.list(&prefix).await.is_empty());
    assert_error(del().await.unwrap(), 404, "not-found").await;
    assert_error(s.client.get(info_url).bearer_auth(API_KEY).send().await.unwrap(), 404, "not-found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_in_s3_mode_is_confined_to_upload_keys() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("del");
    let other = unique_prefix("originals");
    let s = s3_server(&env, &prefix, |_| {}).await;
    let photo = fixture("gps.jpg");
    let (hero, notes) = (format!("{other}/hero.jpg"), format!("{prefix}/notes.txt"));
    env.put(&hero, photo.clone()).await;
    env.put(&notes, b"notes".to_vec()).await;
    for key in [&hero, &notes] {
        let r = s.client.delete(format!("{}/v1/images/{key}", s.base)).bearer_auth(API_KEY).send().await.unwrap();
        assert_error(r, 403, "key-not-allowed").await;
        assert!(env.object(key).await.is_some(), "DELETE {key} removed it");
    }
    let r = s.client.delete(format!("{}/v1/images/{prefix}/%2e%2e/{hero}", s.base)).bearer_auth(API_KEY);
    assert!(r.send().await.unwrap().status().is_client_error());
    assert!(env.object(&hero).await.is_some());
    // An upload key still deletes.
    let (_, t) = ticket(&s, json!({"content_type": "image/jpeg", "content_length": photo.len()})).await;
    assert!(send(&s.client, &t, photo, None).await.status().is_success());
    let key = t["key"].as_str().unwrap();
    let r = s.client.delete(format!("{}/v1/images/{key}", s.base)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(env.list(&prefix).await, vec![notes.clone()]);
}
