//! Issue #18, deletion that is safe and complete: `DELETE /v1/images/{key}` is a soft delete
//! (`IMAGO_DELETE_GRACE_SECS`): reads answer `410 image-deleted`, `POST …/restore` brings the
//! image back within the grace period, then the sweep purges it (object, then its records; a
//! crash between the steps is finished by the next pass). Tenants never share an object, so one
//! tenant's delete and purge never touch another's copy of the same bytes, however they race.
//! The listing is newest first (an index written at completion, removed at purge).
//! Embedded store and Garage (`IMAGO_TEST_S3_*`, as tests/uploads_confirm.rs).

mod common;
mod uploads_common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use common::{assert_error, fixture, TestServer};
use imago::config::List;
use serde_json::{json, Value};
use uploads_common::*;

const A: &str = "acme-trash-key-0123456789";
const B: &str = "beta-trash-key-0123456789";
const ADMIN: &str = "ops-trash-admin-key-0123456789";

/// Uploads `photo` under its digest with `api_key` and completes it (S3); returns the ticket.
async fn upload_ready(s: &TestServer, api_key: &str, photo: &[u8]) -> Value {
    let body = json!({"content_type": "image/jpeg", "content_length": photo.len(), "sha256": sha256_hex(photo)});
    let (status, t) = ticket_with(s, api_key, body).await;
    assert!(status == 201 || status == 200, "{t}");
    if t["exists"] != true {
        let r = send(&s.client, &t, photo.to_vec(), None).await;
        assert!(r.status().is_success(), "upload: {}", r.status());
    }
    let r = s.client.post(t["complete_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 200, "completion: {}", r.text().await.unwrap());
    t
}

async fn delete(s: &TestServer, api_key: &str, key: &str) -> reqwest::Response {
    s.client.delete(format!("{}/v1/images/{key}", s.base)).bearer_auth(api_key).send().await.unwrap()
}

async fn restore(s: &TestServer, api_key: &str, key: &str) -> reqwest::Response {
    s.client.post(format!("{}/v1/images/{key}/restore", s.base)).bearer_auth(api_key).send().await.unwrap()
}

async fn info(s: &TestServer, api_key: &str, key: &str) -> reqwest::Response {
    s.client.get(format!("{}/v1/images/{key}/info", s.base)).bearer_auth(api_key).send().await.unwrap()
}

/// Every key of a listing (`query`), following the cursor `limit` at a time.
async fn list_keys(s: &TestServer, api_key: &str, query: &str, limit: usize) -> Vec<String> {
    let (mut keys, mut cursor) = (Vec::new(), None::<String>);
    for _ in 0..100 {
        let c = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let url = format!("{}/v1/images?limit={limit}{query}{c}", s.base);
        let r = s.client.get(url).bearer_auth(api_key).send().await.unwrap();
        assert_eq!(r.status(), 200, "{query}");
        let page: Value = r.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit, "{page}");
        keys.extend(items.iter().map(|i| i["key"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => return keys,
        }
    }
    panic!("the listing did not end");
}

async fn listed(s: &TestServer, api_key: &str, key: &str) -> Option<Value> {
    let r = s.client.get(format!("{}/v1/images?limit=1000", s.base)).bearer_auth(api_key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    page["items"].as_array().unwrap().iter().find(|i| i["key"] == key).cloned()
}

/// Whether the object `key` is in the store (bucket or local root).
async fn stored(s: &TestServer, env: Option<&S3Env>, key: &str) -> bool {
    match env {
        Some(e) => e.object(key).await.is_some(),
        None => s.root.join(key).exists(),
    }
}

fn keys(r: &mut imago::RawConfig, prefix: &str) {
    r.api_keys = List::from_strs(&[&format!("acme:{A}"), &format!("beta:{B}")]);
    r.upload_prefixes = List::from_strs(&[prefix]);
}

async fn server(env: Option<&S3Env>, prefix: &str, tweak: impl FnOnce(&mut imago::RawConfig)) -> TestServer {
    let (env, prefix) = (env.cloned(), prefix.to_string());
    start(&[], move |r| {
        if let Some(e) = &env {
            e.apply(r);
        }
        keys(r, &prefix);
        tweak(r);
    })
    .await
}

/// Delete → 410 → restore → 200 → delete → the grace period passes (restore refused) → the
/// purger removes the object and its records.
async fn soft_delete_cycle(env: Option<&S3Env>) {
    let prefix = unique_prefix("trash");
    let s = server(env, &prefix, |r| {
        r.delete_grace_secs = 2;
        // The purge fence is the completion budget (6 × this) + 5 s of clock skew.
        r.fetch_timeout_ms = 300;
    })
    .await;
    let photo = fixture("gps.jpg");
    let t = upload_ready(&s, A, &photo).await;
    let key = t["key"].as_str().unwrap();
    let image = t["image_url"].as_str().unwrap();
    assert_eq!(s.client.get(image).send().await.unwrap().status(), 200);

    assert_eq!(delete(&s, A, key).await.status(), 204);
    assert!(stored(&s, env, key).await, "a soft delete keeps the object");
    assert_error(s.client.get(image).send().await.unwrap(), 410, "image-deleted").await;
    assert_error(info(&s, A, key).await, 410, "image-deleted").await;
    let item = listed(&s, A, key).await.expect("a deleted image is listed");
    assert_eq!(item["state"], "deleted", "{item}");
    assert!(item["purge_at"].as_str().is_some_and(|p| p.ends_with('Z')), "{item}");
    // Another tenant cannot restore it.
    assert_error(restore(&s, B, key).await, 403, "other-tenant").await;

    let r = restore(&s, A, key).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "ready");
    assert_eq!(s.client.get(image).send().await.unwrap().status(), 200, "restored");
    assert_eq!(info(&s, A, key).await.status(), 200);
    assert_eq!(listed(&s, A, key).await.unwrap()["state"], "ready");
    assert_error(restore(&s, A, key).await, 404, "not-found").await;

    assert_eq!(delete(&s, A, key).await.status(), 204);
    let deleted = Instant::now();
    assert_error(s.client.get(image).send().await.unwrap(), 410, "image-deleted").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_error(restore(&s, A, key).await, 410, "image-deleted").await;
    let t0 = Instant::now();
    while stored(&s, env, key).await && t0.elapsed() < Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!stored(&s, env, key).await, "the purger did not remove the object");
    println!("purged {:?} after the delete (grace 2 s + fence)", deleted.elapsed());
    // Then its records.
    let t0 = Instant::now();
    while listed(&s, A, key).await.is_some() || s.state.uploads.deleted_record(key).await.unwrap().is_some() {
        assert!(t0.elapsed() < Duration::from_secs(10), "records left after the purge");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(e) = env {
        assert!(e.object(&format!(".imago/ready/{key}")).await.is_none(), "ready record left");
        assert!(e.object(&format!(".imago/deleted/{key}")).await.is_none(), "deleted record left");
    }
    assert_eq!(s.client.get(image).send().await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_delete_restore_then_purge_embedded() {
    soft_delete_cycle(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_delete_restore_then_purge_s3() {
    let Some(env) = S3Env::get() else { return };
    soft_delete_cycle(Some(&env)).await;
}

/// A crash after the purge removed the object but before its records: reads still say
/// `image-deleted`, a restore says so too (nothing is left to bring back), and the next pass
/// removes the records.
async fn crash_between_purge_steps(env: Option<&S3Env>) {
    let prefix = unique_prefix("crash");
    let s = server(env, &prefix, |r| r.delete_grace_secs = 1).await;
    let photo = fixture("gps.jpg");
    let t = upload_ready(&s, A, &photo).await;
    let key = t["key"].as_str().unwrap();
    let image = t["image_url"].as_str().unwrap();
    assert_eq!(delete(&s, A, key).await.status(), 204);
    // Not due yet: nothing happens.
    let p = s.state.uploads.purge_at(SystemTime::now()).await.unwrap();
    assert!(p.purged.is_empty() && p.waiting == 1, "{p:?}");
    // Step 1 only, then the "crash".
    s.state.uploads.purge_object(key).await.unwrap();
    assert!(!stored(&s, env, key).await);
    assert_error(s.client.get(image).send().await.unwrap(), 410, "image-deleted").await;
    assert_error(info(&s, A, key).await, 410, "image-deleted").await;
    assert!(s.state.uploads.deleted_record(key).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_error(restore(&s, A, key).await, 410, "image-deleted").await;
    // The next pass (past the fence) finishes it; a second pass finds nothing.
    let later = SystemTime::now() + Duration::from_secs(3600);
    let p = s.state.uploads.purge_at(later).await.unwrap();
    assert_eq!(p.purged, vec![key.to_string()]);
    assert!(s.state.uploads.deleted_record(key).await.unwrap().is_none());
    if let Some(e) = env {
        assert!(e.object(&format!(".imago/ready/{key}")).await.is_none(), "ready record left");
    }
    assert_eq!(s.state.uploads.purge_at(later).await.unwrap(), Default::default());
    assert_eq!(s.client.get(image).send().await.unwrap().status(), 404);
    // The same bytes can be uploaded again and are readable.
    let t = upload_ready(&s, A, &photo).await;
    assert_eq!(t["key"], key);
    assert_eq!(s.client.get(image).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_purge_steps_is_finished_by_the_next_pass_embedded() {
    crash_between_purge_steps(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_purge_steps_is_finished_by_the_next_pass_s3() {
    let Some(env) = S3Env::get() else { return };
    crash_between_purge_steps(Some(&env)).await;
}

/// Tenant A deletes (and purges) its image while tenant B uploads and completes the identical
/// bytes, many rounds: B's image is always readable after its completion, and its object stays.
async fn delete_races_upload(env: Option<&S3Env>, rounds: usize) {
    let prefix = unique_prefix("race");
    let s = server(env, &prefix, |r| r.delete_grace_secs = 1).await;
    let photo = fixture("gps.jpg");
    for round in 0..rounds {
        let a = upload_ready(&s, A, &photo).await;
        let a_key = a["key"].as_str().unwrap().to_string();
        let a_del = async {
            assert_eq!(delete(&s, A, &a_key).await.status(), 204);
            s.state.uploads.purge_at(SystemTime::now() + Duration::from_secs(3600)).await.unwrap()
        };
        let (purged, b) = tokio::join!(a_del, upload_ready(&s, B, &photo));
        assert_eq!(purged.purged, vec![a_key.clone()], "round {round}");
        let b_key = b["key"].as_str().unwrap();
        assert_ne!(b_key, a_key);
        let r = s.client.get(b["image_url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.status(), 200, "round {round}: B's image after its completion");
        assert!(stored(&s, env, b_key).await, "round {round}: B's object");
        assert!(!stored(&s, env, &a_key).await, "round {round}: A's object purged");
        // B deletes too (hard, by purge) before the next round.
        assert_eq!(delete(&s, B, b_key).await.status(), 204);
        assert_eq!(
            s.state.uploads.purge_at(SystemTime::now() + Duration::from_secs(3600)).await.unwrap().purged.len(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_delete_never_loses_anothers_identical_upload_embedded() {
    delete_races_upload(None, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_delete_never_loses_anothers_identical_upload_s3() {
    let Some(env) = S3Env::get() else { return };
    delete_races_upload(Some(&env), 10).await;
}

/// Within the grace period, completing the old upload again does not bring the image back
/// (`410 image-deleted`), but uploading the same bytes again does: the ticket does not answer
/// `exists`, and the new upload's receipt (embedded) or completion (S3) removes the record.
async fn reupload_restores(env: Option<&S3Env>) {
    let prefix = unique_prefix("again");
    let s = server(env, &prefix, |r| r.delete_grace_secs = 3600).await;
    let photo = fixture("gps.jpg");
    let t = upload_ready(&s, A, &photo).await;
    let key = t["key"].as_str().unwrap();
    let image = t["image_url"].as_str().unwrap();
    assert_eq!(delete(&s, A, key).await.status(), 204);
    let r = s.client.post(t["complete_url"].as_str().unwrap()).send().await.unwrap();
    assert_error(r, 410, "image-deleted").await;
    assert_error(s.client.get(image).send().await.unwrap(), 410, "image-deleted").await;
    // S3: the new bytes must be written more than the clock skew (5 s) after the delete.
    if env.is_some() {
        tokio::time::sleep(Duration::from_millis(6100)).await;
    }
    let again = upload_ready(&s, A, &photo).await;
    assert_eq!(again["key"], key);
    assert_eq!(again["exists"], false, "a soft-deleted original is not offered as existing");
    assert_eq!(s.client.get(image).send().await.unwrap().status(), 200);
    assert_eq!(listed(&s, A, key).await.unwrap()["state"], "ready");
    assert!(s.state.uploads.deleted_record(key).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploading_the_same_bytes_again_restores_embedded() {
    reupload_restores(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploading_the_same_bytes_again_restores_s3() {
    let Some(env) = S3Env::get() else { return };
    reupload_restores(Some(&env)).await;
}

/// Two replicas on one store: B refuses the image once A deleted it (tombstone), and serves it
/// again at once when A restores it (the `deleted` record is read at every fetch, never cached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_sees_the_delete_and_the_restore() {
    let prefix = unique_prefix("fleet");
    let a = server(None, &prefix, |r| {
        r.delete_grace_secs = 3600;
        r.delete_sync_ms = 50;
    })
    .await;
    let shared: &Path = &a.root;
    let shared = shared.to_path_buf();
    let b = server(None, &prefix, move |r| {
        r.delete_grace_secs = 3600;
        r.delete_sync_ms = 50;
        r.local_root = shared;
    })
    .await;
    let photo = fixture("gps.jpg");
    let t = upload_ready(&a, A, &photo).await;
    let key = t["key"].as_str().unwrap();
    let on_b = b.url("w:100", &format!("local:///{key}"), Some("jpg"));
    assert_eq!(b.get(&on_b).await.status(), 200);
    assert_eq!(b.get(&on_b).await.headers()["x-imago-cache"], "hit");
    assert_eq!(delete(&a, A, key).await.status(), 204);
    let t0 = Instant::now();
    let mut status = 200;
    while status != 410 && t0.elapsed() < Duration::from_secs(5) {
        status = b.get(&on_b).await.status().as_u16();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 410, "replica B still serves the deleted image");
    assert_error(info(&b, A, key).await, 410, "image-deleted").await;
    assert_eq!(restore(&a, A, key).await.status(), 200);
    assert_eq!(b.get(&on_b).await.status(), 200, "replica B refuses a restored image");
    assert_eq!(info(&b, A, key).await.status(), 200);
}

/// Durable originals (docs/design.md §7): the shipped AWS documents parse, and keep what the
/// design promises — only imago's role deletes originals, no role deletes versions, noncurrent
/// originals expire, purges replicate to the second region (also `.ci/check_deploy.py aws`).
#[test]
fn aws_bucket_documents_parse_and_keep_their_promises() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/aws");
    let doc = |name: &str| -> Value {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let actions = |st: &Value| -> Vec<String> {
        match &st["Action"] {
            Value::String(s) => vec![s.clone()],
            v => v.as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect(),
        }
    };
    for name in ["iam-imago.json", "iam-reader.json", "iam-analytics.json"] {
        let d = doc(name);
        assert_eq!(d["Version"], "2012-10-17", "{name}");
        for st in d["Statement"].as_array().unwrap() {
            let acts = actions(st);
            assert!(!acts.iter().any(|a| a == "s3:*" || a == "s3:DeleteObjectVersion"), "{name}: {acts:?}");
            let originals =
                st["Resource"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("/uploads/"));
            if originals && acts.iter().any(|a| a == "s3:DeleteObject") {
                assert_eq!(name, "iam-imago.json", "only imago deletes originals");
            }
        }
    }
    let policy = doc("bucket-policy.json");
    assert!(policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["Effect"] == "Deny" && actions(s).contains(&"s3:DeleteObject".to_string())));
    let lc = doc("lifecycle.json");
    let uploads = lc["Rules"].as_array().unwrap().iter().find(|r| r["Filter"]["Prefix"] == "uploads/").unwrap();
    assert!(uploads["NoncurrentVersionExpiration"]["NoncurrentDays"].as_u64().is_some_and(|d| d > 0));
    assert_eq!(doc("versioning.json")["Status"], "Enabled");
    let rep = doc("replication.json");
    for r in rep["Rules"].as_array().unwrap() {
        assert_eq!(r["DeleteMarkerReplication"]["Status"], "Enabled");
        assert!(r["Destination"]["Bucket"].as_str().unwrap().starts_with("arn:aws:s3:::"));
    }
}

/// `GET /v1/images` is newest first (to the second: the store's `Last-Modified`), page by page,
/// per tenant (every tenant for an admin key); `order=key` is the key order and also lists
/// uploads never completed; a purge removes the image from the index; an entry that outlived
/// its image is skipped and removed.
async fn newest_first(env: Option<&S3Env>) {
    let prefix = unique_prefix("newest");
    let s = server(env, &prefix, |r| {
        r.api_keys =
            List::from_strs(&[&format!("acme:{A}"), &format!("beta:{B}"), &format!("ops:read-info+admin:{ADMIN}")]);
        r.delete_grace_secs = 1;
    })
    .await;
    let photos = ["orientation/Landscape_1.jpg", "orientation/Landscape_2.jpg", "orientation/Landscape_3.jpg"];
    let mut a_keys = Vec::new();
    for (i, p) in photos.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        a_keys.push(upload_ready(&s, A, &fixture(p)).await["key"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b_key = upload_ready(&s, B, &fixture("gps.jpg")).await["key"].as_str().unwrap().to_string();
    let newest_a: Vec<String> = a_keys.iter().rev().cloned().collect();
    for limit in [1, 2, 10] {
        assert_eq!(list_keys(&s, A, "", limit).await, newest_a, "limit {limit}");
    }
    assert_eq!(list_keys(&s, A, "&order=newest", 2).await, newest_a);
    let mut by_key = a_keys.clone();
    by_key.sort();
    assert_eq!(list_keys(&s, A, "&order=key", 2).await, by_key);
    assert_eq!(list_keys(&s, B, "", 1).await, vec![b_key.clone()], "a tenant sees only its own");
    let all: Vec<String> = std::iter::once(b_key.clone()).chain(newest_a.iter().cloned()).collect();
    assert_eq!(list_keys(&s, ADMIN, "", 2).await, all, "an admin key lists every tenant, newest first");
    assert_eq!(list_keys(&s, ADMIN, "&tenant=beta", 2).await, vec![b_key.clone()]);
    // The item carries its time and state.
    let r = s.client.get(format!("{}/v1/images?limit=1", s.base)).bearer_auth(A).send().await.unwrap();
    let page: Value = r.json().await.unwrap();
    let item = &page["items"][0];
    assert_eq!((&item["key"], &item["state"], &item["tenant"]), (&json!(newest_a[0]), &json!("ready"), &json!("acme")));
    assert!(item["bytes"].as_u64().unwrap() > 1000 && item["last_modified"].as_str().unwrap().ends_with('Z'), "{item}");
    // Cursors belong to one order; unknown orders are refused.
    let cursor = page["next_cursor"].as_str().unwrap();
    let r =
        s.client.get(format!("{}/v1/images?order=key&cursor={cursor}", s.base)).bearer_auth(A).send().await.unwrap();
    assert_error(r, 400, "invalid-request").await;
    let key_cursor = base64_url(&a_keys[0]);
    let r = s.client.get(format!("{}/v1/images?cursor={key_cursor}", s.base)).bearer_auth(A).send().await.unwrap();
    assert_error(r, 400, "invalid-request").await;
    let r = s.client.get(format!("{}/v1/images?order=oldest", s.base)).bearer_auth(A).send().await.unwrap();
    assert_error(r, 400, "invalid-request").await;

    // S3: an upload never completed is listed by key only, as pending; completing lists it first.
    if env.is_some() {
        let photo = fixture("orientation/Landscape_4.jpg");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let body = json!({"content_type": "image/jpeg", "content_length": photo.len(), "sha256": sha256_hex(&photo)});
        let (_, t) = ticket_with(&s, A, body).await;
        assert!(send(&s.client, &t, photo.clone(), None).await.status().is_success());
        let key = t["key"].as_str().unwrap().to_string();
        assert_eq!(list_keys(&s, A, "", 10).await, newest_a, "pending: not in the newest listing");
        assert_eq!(listed_in(&s, A, "&order=key", &key).await.unwrap()["state"], "pending");
        assert_eq!(s.client.post(t["complete_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
        assert_eq!(list_keys(&s, A, "", 10).await[0], key);
        a_keys.push(key);
    }

    // Deleted: listed as such until the purge, then gone from the index too.
    let gone = a_keys[1].clone();
    assert_eq!(delete(&s, A, &gone).await.status(), 204);
    assert_eq!(listed(&s, A, &gone).await.unwrap()["state"], "deleted");
    let later = SystemTime::now() + Duration::from_secs(3600);
    assert_eq!(s.state.uploads.purge_at(later).await.unwrap().purged, vec![gone.clone()]);
    assert!(!list_keys(&s, A, "", 10).await.contains(&gone));
    assert!(!list_keys(&s, ADMIN, "", 10).await.contains(&gone));
    let index = index_entries(&s, env, &prefix).await;
    assert!(!index.is_empty() && !index.iter().any(|e| e.ends_with(&gone[prefix.len()..])), "{index:?}");

    // An entry whose image is gone (a purge that crashed before removing it) is skipped and removed.
    let ghost = format!("{prefix}/acme/sha256/{}.jpg", "0".repeat(64));
    let name = format!(".imago/recent/{prefix}/acme/00000000001/acme/sha256/{}.jpg", "0".repeat(64));
    match env {
        Some(e) => e.put(&name, Vec::new()).await,
        None => {
            std::fs::create_dir_all(s.root.join(&name).parent().unwrap()).unwrap();
            std::fs::write(s.root.join(&name), b"").unwrap();
        }
    }
    assert!(index_entries(&s, env, &prefix).await.iter().any(|e| e == &name));
    assert!(!list_keys(&s, A, "", 10).await.contains(&ghost));
    assert!(!index_entries(&s, env, &prefix).await.iter().any(|e| e == &name), "the stale entry was removed");
}

/// The index entries under `.imago/recent/{prefix}/`.
async fn index_entries(s: &TestServer, env: Option<&S3Env>, prefix: &str) -> Vec<String> {
    let dir = format!(".imago/recent/{prefix}");
    match env {
        Some(e) => e.list(&format!("{dir}/")).await,
        None => walkdir::WalkDir::new(s.root.join(&dir))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(&s.root).unwrap().to_string_lossy().into_owned())
            .collect(),
    }
}

async fn listed_in(s: &TestServer, api_key: &str, query: &str, key: &str) -> Option<Value> {
    let r = s.client.get(format!("{}/v1/images?limit=1000{query}", s.base)).bearer_auth(api_key).send().await.unwrap();
    let page: Value = r.json().await.unwrap();
    page["items"].as_array().unwrap().iter().find(|i| i["key"] == key).cloned()
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_is_newest_first_embedded() {
    newest_first(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_is_newest_first_s3() {
    let Some(env) = S3Env::get() else { return };
    newest_first(Some(&env)).await;
}
