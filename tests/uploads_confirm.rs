//! Confirmed uploads (SPEC §10 "Completion"): an upload is `pending` until imago has checked it
//! (`POST /v1/uploads/{id}/complete`, the first read, or the sweep), `ready` after, or `rejected`
//! and removed. Garage (from `scripts/garage.sh`, `IMAGO_TEST_S3_*`) for S3 mode; the embedded
//! store completes on receipt. Without the Garage environment the S3 tests print why and pass,
//! except under `CI=true`.

mod common;
mod uploads_common;

use std::time::{Duration, SystemTime};

use common::{assert_error, fixture, TestServer};
use serde_json::{json, Value};
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

/// `POST /v1/uploads/{id}/complete` (no API key: the id is the permission).
async fn complete(s: &TestServer, t: &Value) -> (u16, Value) {
    let url = format!("{}/v1/uploads/{}/complete", s.base, t["id"].as_str().unwrap());
    let r = s.client.post(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A ticket for `body` (as `content_type`), and the body sent as it says.
async fn upload(s: &TestServer, content_type: &str, body: Vec<u8>) -> Value {
    let (status, t) = ticket(s, json!({"content_type": content_type, "content_length": body.len()})).await;
    assert_eq!(status, 201, "{t}");
    let r = send(&s.client, &t, body, None).await;
    assert!(r.status().is_success(), "upload: {}", r.status());
    t
}

async fn listed_state(s: &TestServer, prefix: &str, key: &str) -> Value {
    // Pending and rejected uploads are listed in key order only (newest first lists completed ones).
    let r = s
        .client
        .get(format!("{}/v1/images?prefix={prefix}&order=key", s.base))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    let item = page["items"].as_array().unwrap().iter().find(|i| i["key"] == key).cloned();
    item.map(|i| i["state"].clone()).unwrap_or(Value::Null)
}

const HTML: &[u8] = b"<!doctype html><html><body><script>alert(1)</script></body></html>";

/// The question the design hinges on: can small state objects be updated with conditional
/// writes on Garage 2.5.0? No: it ignores `If-None-Match: *` and `If-Match` on `PutObject` (AWS
/// answers 412), though it honours `If-Match` on reads. So the lifecycle state must not need a
/// compare-and-swap (src/upload/state.rs). If a Garage upgrade makes this fail, conditional
/// writes became available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_ignores_conditional_puts() {
    let Some(env) = S3Env::get() else { return };
    let key = format!("{}/state.json", unique_prefix("cond"));
    let (status, first) = env.put_with(&key, b"one".to_vec(), &[]).await;
    assert_eq!(status, 200);
    let (status, _) = env.put_with(&key, b"two".to_vec(), &[("If-None-Match", "*")]).await;
    assert_eq!(status, 200, "If-None-Match: * on an existing key");
    assert_eq!(env.object(&key).await.unwrap(), b"two", "the object was replaced");
    let (status, _) = env.put_with(&key, b"three".to_vec(), &[("If-Match", &first)]).await;
    assert_eq!(status, 200, "If-Match with a stale ETag");
    assert_eq!(env.object(&key).await.unwrap(), b"three", "the object was replaced");
    assert_eq!(env.get_if_match(&key, &first).await, 412, "reads do honour If-Match");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_reads_wait_for_the_completion_when_it_is_required() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("req");
    let s = s3_server(&env, &prefix, |r| r.upload_require_complete = true).await; // NEW-API
    let photo = fixture("orientation/Landscape_6.jpg");
    let t = upload(&s, "image/jpeg", photo.clone()).await;
    let key = t["key"].as_str().unwrap();
    assert_eq!(t["complete_url"], format!("{}/v1/uploads/{}/complete", s.base, t["id"].as_str().unwrap()));
    assert_error(s.get(t["image_url"].as_str().unwrap()).await, 409, "upload-pending").await;
    assert_eq!(listed_state(&s, &prefix, key).await, "pending");

    let (status, c) = complete(&s, &t).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!((c["state"].as_str(), c["key"].as_str()), (Some("ready"), Some(key)));
    assert_eq!((c["width"].as_u64(), c["height"].as_u64(), c["frames"].as_u64()), (Some(1800), Some(1200), Some(1)));
    assert_eq!((c["format"].as_str(), c["bytes"].as_u64()), (Some("jpg"), Some(photo.len() as u64)));
    let r = s.get(t["image_url"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(listed_state(&s, &prefix, key).await, "ready");
    let (status, again) = complete(&s, &t).await;
    assert_eq!((status, &again), (200, &c), "a completed upload answers the same");

    let mut forged = t.clone();
    let id = t["id"].as_str().unwrap();
    forged["id"] = json!(format!("{}A", &id[..id.len() - 1]));
    assert_eq!(complete(&s, &forged).await.0, 400, "an id whose MAC does not verify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_non_image_is_rejected_and_removed() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("rej");
    let s = s3_server(&env, &prefix, |_| {}).await;
    // The store checks signature, type header and length, never the bytes.
    let t = upload(&s, "image/jpeg", HTML.to_vec()).await;
    let key = t["key"].as_str().unwrap();
    assert_eq!(env.object(key).await.unwrap(), HTML, "the store took it");
    let (status, c) = complete(&s, &t).await;
    assert_eq!((status, c["code"].as_str()), (422, Some("not-an-image")), "{c}");
    assert!(env.object(key).await.is_none(), "a rejected upload is removed");
    assert_eq!(complete(&s, &t).await.1["code"], "upload-rejected");
    assert_error(s.get(t["image_url"].as_str().unwrap()).await, 409, "upload-rejected").await;

    // A PNG under a JPEG ticket.
    let t = upload(&s, "image/jpeg", fixture("rose_alpha.png")).await;
    let (status, c) = complete(&s, &t).await;
    assert_eq!((status, c["code"].as_str()), (415, Some("content-type-mismatch")), "{c}");
    assert!(env.object(t["key"].as_str().unwrap()).await.is_none());
}

/// Clients that never call the completion keep working: the first read checks the upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_the_first_read_completes_by_default() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("lazy");
    let s = s3_server(&env, &prefix, |_| {}).await;
    let t = upload(&s, "image/jpeg", fixture("orientation/Landscape_6.jpg")).await;
    let key = t["key"].as_str().unwrap();
    assert_eq!(listed_state(&s, &prefix, key).await, "pending");
    assert_eq!(s.get(t["image_url"].as_str().unwrap()).await.status(), 200);
    assert_eq!(listed_state(&s, &prefix, key).await, "ready");
    let bad = upload(&s, "image/jpeg", HTML.to_vec()).await;
    assert_error(s.get(bad["image_url"].as_str().unwrap()).await, 409, "upload-rejected").await;
    assert!(env.object(bad["key"].as_str().unwrap()).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_concurrent_completes_of_one_upload_agree() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("conc");
    let s = s3_server(&env, &prefix, |_| {}).await;
    let good = upload(&s, "image/jpeg", fixture("orientation/Landscape_6.jpg")).await;
    let bad = upload(&s, "image/jpeg", HTML.to_vec()).await;
    let answers = futures_util::future::join_all((0..16).map(|i| {
        let s = &s;
        let t = if i % 2 == 0 { &good } else { &bad };
        async move { (i % 2, complete(s, t).await) }
    }))
    .await;
    let strip = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("checked_at");
        v
    };
    let first_good = strip(&answers[0].1 .1);
    for (kind, (status, body)) in &answers {
        if *kind == 0 {
            assert_eq!(*status, 200, "{body}");
            assert_eq!(strip(body), first_good, "every completion reports the same facts");
        } else {
            let code = body["code"].as_str().unwrap_or_default();
            assert!(
                (*status, code) == (422, "not-an-image") || (*status, code) == (409, "upload-rejected"),
                "{status} {body}"
            );
        }
    }
    let key = good["key"].as_str().unwrap();
    let record: Value = serde_json::from_slice(&env.object(&format!(".imago/ready/{key}")).await.unwrap()).unwrap();
    assert_eq!((record["width"].as_u64(), record["etag"].as_str()), (Some(1800), first_good["etag"].as_str()));
    assert!(env.object(bad["key"].as_str().unwrap()).await.is_none());
    assert!(env.object(&format!(".imago/ready/{}", bad["key"].as_str().unwrap())).await.is_none());
    assert_eq!(s.get(good["image_url"].as_str().unwrap()).await.status(), 200);
}

/// The sweep checks uploads nobody completed exactly as the call does, so both racing write
/// the same verdict; with `IMAGO_UPLOAD_REQUIRE_COMPLETE` it removes pending uploads only past
/// the expiry fence, and never one a completion made ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_complete_racing_the_sweep() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("sweep");
    let s = s3_server(&env, &prefix, |r| r.upload_pending_ttl_secs = 1).await; // NEW-API
    let photo = fixture("orientation/Landscape_6.jpg");
    let goods = [upload(&s, "image/jpeg", photo.clone()).await, upload(&s, "image/jpeg", photo.clone()).await];
    let bad = upload(&s, "image/jpeg", HTML.to_vec()).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let up = &s.state.uploads;
    let (c0, c1, cb, s1, s2) = tokio::join!(
        // NEW-API
        complete(&s, &goods[0]),
        complete(&s, &goods[1]),
        complete(&s, &bad),
        up.sweep_at(SystemTime::now()),
        up.sweep_at(SystemTime::now())
    );
    assert_eq!((c0.0, c1.0), (200, 200), "{c0:?} {c1:?}");
    assert!(matches!(cb.0, 409 | 422), "{cb:?}");
    let (s1, s2) = (s1.unwrap(), s2.unwrap());
    assert_eq!(s1.expired + s2.expired, 0);
    for g in &goods {
        assert_eq!(s.get(g["image_url"].as_str().unwrap()).await.status(), 200);
        assert_eq!(listed_state(&s, &prefix, g["key"].as_str().unwrap()).await, "ready");
    }
    assert!(env.object(bad["key"].as_str().unwrap()).await.is_none());

    // Required completion: pending past the TTL is refused, and removed past the fence only.
    let prefix = unique_prefix("expire");
    let s = s3_server(&env, &prefix, |r| {
        r.upload_pending_ttl_secs = 3; // NEW-API
        r.upload_require_complete = true; // NEW-API
        r.fetch_timeout_ms = 500;
    })
    .await;
    let up = &s.state.uploads;
    let done = upload(&s, "image/jpeg", photo.clone()).await;
    let late = upload(&s, "image/jpeg", photo.clone()).await;
    let racing = upload(&s, "image/jpeg", photo.clone()).await;
    assert_eq!(complete(&s, &done).await.0, 200);
    // Sweeps run all along (as if another replica's clock were ahead by the allowed skew)
    // while `racing` is completed at the last moment.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let sweeps = async {
        let mut expired = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            expired += up.sweep_at(SystemTime::now() + Duration::from_secs(4)).await.unwrap().expired; // NEW-API
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        expired
    };
    let client = async {
        // Last-Modified has whole seconds: the age a completion sees may be up to 1 s more.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let r = complete(&s, &racing).await;
        tokio::time::sleep(Duration::from_millis(1800)).await;
        let l = complete(&s, &late).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (r, l)
    };
    let (expired, ((r_status, r_body), (l_status, l_body))) = tokio::join!(sweeps, client);
    assert_eq!(expired, 0, "nothing is removed before the fence");
    assert_eq!((l_status, l_body["code"].as_str()), (409, Some("upload-pending-expired")), "{l_body}");
    let fence = up.lifecycle.expiry_fence() + Duration::from_secs(1); // NEW-API
    let swept = up.sweep_at(SystemTime::now() + fence).await.unwrap(); // NEW-API
    assert!(env.object(late["key"].as_str().unwrap()).await.is_none(), "{swept:?}");
    assert_eq!(s.get(done["image_url"].as_str().unwrap()).await.status(), 200);
    let racing_there = env.object(racing["key"].as_str().unwrap()).await.is_some();
    assert_eq!(r_status == 200, racing_there, "a completion said {r_status} {r_body}, object there: {racing_there}");
    assert_eq!(r_status, 200, "completed 1.5 s into a 3 s TTL");
}

/// What a crash can leave: records are single PUTs (whole or absent), so the leftovers are a
/// rejected record whose object was not removed yet, or (written by hand or a future version) a
/// record that does not parse. Reads refuse the first and the sweep finishes the removal; the
/// second counts as no record for reads and completions, and the next completion rewrites it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_crash_leftovers_are_finished() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("crash");
    let s = s3_server(&env, &prefix, |r| r.upload_pending_ttl_secs = 1).await;
    let bad = upload(&s, "image/jpeg", HTML.to_vec()).await;
    let key = bad["key"].as_str().unwrap();
    let refusal = json!({"etag": "", "code": "not-an-image", "reason": "crashed before the removal", "checked_at": ""});
    env.put(&format!(".imago/rejected/{key}"), refusal.to_string().into_bytes()).await;
    assert_error(s.get(bad["image_url"].as_str().unwrap()).await, 409, "upload-rejected").await;
    let good = upload(&s, "image/jpeg", fixture("orientation/Landscape_6.jpg")).await;
    let gkey = good["key"].as_str().unwrap();
    env.put(&format!(".imago/ready/{gkey}"), b"{\"etag\": \"tr".to_vec()).await;
    assert_eq!(listed_state(&s, &prefix, gkey).await, "pending", "a record that does not parse is none");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let swept = s.state.uploads.sweep_at(SystemTime::now()).await.unwrap();
    // The sweep goes by the records' presence (it lists them), so the unreadable one is the
    // completion's to rewrite.
    assert_eq!((swept.completed, swept.rejected), (0, 1), "{swept:?}");
    assert!(env.object(key).await.is_none(), "the sweep finished the removal");
    assert_eq!(complete(&s, &good).await.0, 200);
    let record: Value = serde_json::from_slice(&env.object(&format!(".imago/ready/{gkey}")).await.unwrap()).unwrap();
    assert_eq!(record["width"], 1800);
    assert_eq!(s.get(good["image_url"].as_str().unwrap()).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_uploads_are_ready_on_receipt() {
    let s = start(&[], |r| {
        r.api_keys = imago::config::List::from_strs(&[API_KEY, "acme:acme-key-0123456789abcdef"]);
    })
    .await;
    let t = upload(&s, "image/jpeg", fixture("orientation/Landscape_6.jpg")).await;
    let key = t["key"].as_str().unwrap();
    assert_eq!(listed_state(&s, "uploads", key).await, "ready");
    let (status, c) = complete(&s, &t).await;
    assert_eq!((status, c["state"].as_str()), (200, Some("ready")), "{c}");
    assert_eq!((c["width"].as_u64(), c["height"].as_u64()), (Some(1800), Some(1200)));
    let url = format!("{}/v1/uploads/{}/complete", s.base, t["id"].as_str().unwrap());
    let r = s.client.post(&url).bearer_auth("acme-key-0123456789abcdef").send().await.unwrap();
    assert_error(r, 403, "other-tenant").await;
    let r = s.client.post(&url).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s.client.post(format!("{}/v1/uploads/upl_nope/complete", s.base)).send().await.unwrap();
    assert_error(r, 400, "invalid-request").await;
    let never = s.state.uploads.upload_id("uploads/2030/01/01/never.jpg"); // NEW-API
    let r = s.client.post(format!("{}/v1/uploads/{never}/complete", s.base)).send().await.unwrap();
    assert_error(r, 404, "not-found").await;
}

/// Figures for docs/uploads.md (not an assertion of speed): completion time and what it reads.
/// `cargo test --test uploads_confirm -- --ignored --nocapture measure`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_completion() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("measure");
    let s = s3_server(&env, &prefix, |_| {}).await;
    for name in ["orientation/Landscape_6.jpg", "phone12mp.jpg", "earth_anim.gif"] {
        let photo = fixture(name);
        let ct = if name.ends_with("gif") { "image/gif" } else { "image/jpeg" };
        let mut times = Vec::new();
        for _ in 0..10 {
            let t = upload(&s, ct, photo.clone()).await;
            let start = std::time::Instant::now();
            let (status, _) = complete(&s, &t).await;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (_, t) =
            ticket(&s, json!({"content_type": ct, "content_length": photo.len(), "sha256": sha256_hex(&photo)})).await;
        send(&s.client, &t, photo.clone(), None).await;
        let start = std::time::Instant::now();
        assert_eq!(complete(&s, &t).await.0, 200);
        let digest_ms = start.elapsed().as_secs_f64() * 1000.0;
        println!(
            "{name}: {} bytes, complete p50 {:.1} ms, max {:.1} ms (reads {} bytes); sha256 key {:.1} ms (reads all)",
            photo.len(),
            times[5],
            times[9],
            photo.len().min(256 * 1024),
            digest_ms
        );
    }
}

/// Events received by a webhook receiver on loopback: (event id, type, data), signatures checked
/// with the SDK's verifier.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>;

const HOOK_SECRET: &str = "whsec-confirm-0123456789abcdef";

async fn hook_receiver() -> (String, Received, actix_web::dev::ServerHandle) {
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    let got: Received = Default::default();
    let g = got.clone();
    let server = HttpServer::new(move || {
        let g = g.clone();
        App::new().route(
            "/hook",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let g = g.clone();
                async move {
                    let header = req.headers().get("imago-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
                    if imago_signing::webhook::verify(header, &body, &[HOOK_SECRET], 300, now).is_err() {
                        return HttpResponse::BadRequest().finish();
                    }
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    let (id, kind) = (v["id"].as_str().unwrap().to_string(), v["type"].as_str().unwrap().to_string());
                    g.lock().unwrap().push((id, kind, v["data"].clone()));
                    HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}/hook"), got, handle)
}

/// Issue #18 "Events": the completion step emits `upload.completed` / `upload.rejected` through
/// the signed webhook outbox, and concurrent completions of one upload are one event id (the
/// receiver's idempotency key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_events_reach_the_webhook_once_per_upload() {
    let Some(env) = S3Env::get() else { return };
    let (hook, got, handle) = hook_receiver().await;
    let prefix = unique_prefix("evt");
    let s = s3_server(&env, &prefix, |r| {
        r.webhook_urls = imago::config::List::from_strs(&[hook.as_str()]);
        r.webhook_secrets = imago::config::List::from_strs(&[HOOK_SECRET]);
        r.webhook_poll_ms = 50;
        r.webhook_backoff_ms = 100;
    })
    .await;
    let good = upload(&s, "image/jpeg", fixture("orientation/Landscape_6.jpg")).await;
    let bad = upload(&s, "image/jpeg", HTML.to_vec()).await;
    let answers = futures_util::future::join_all((0..8).map(|i| {
        let s = &s;
        let t = if i % 2 == 0 { &good } else { &bad };
        async move { complete(s, t).await.0 }
    }))
    .await;
    assert!(answers.iter().all(|s| [200, 409, 422].contains(s)), "{answers:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let kinds: std::collections::BTreeSet<String> = got.lock().unwrap().iter().map(|e| e.1.clone()).collect();
        if kinds.len() == 2 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = got.lock().unwrap().clone();
    let ids = |kind: &str| -> std::collections::BTreeSet<String> {
        events.iter().filter(|e| e.1 == kind).map(|e| e.0.clone()).collect()
    };
    assert_eq!(ids("upload.completed").len(), 1, "one completed event id for 4 completions: {events:?}");
    assert_eq!(ids("upload.rejected").len(), 1, "one rejected event id for 4 completions: {events:?}");
    let completed = events.iter().find(|e| e.1 == "upload.completed").unwrap();
    assert_eq!(completed.2["key"], good["key"]);
    assert_eq!((completed.2["facts"]["width"].as_u64(), completed.2["tenant"].as_str()), (Some(1800), Some("default")));
    let rejected = events.iter().find(|e| e.1 == "upload.rejected").unwrap();
    assert_eq!((rejected.2["key"].clone(), rejected.2["code"].as_str()), (bad["key"].clone(), Some("not-an-image")));
    handle.stop(false).await;
}
