//! Tenants and scoped API keys (`IMAGO_API_KEYS` entries `tenant:key`, `tenant:scopes:key`):
//! one tenant can neither learn of, read the info of, list nor delete another's images; keys of
//! one tenant see the same images; scopes are enforced; an admin key sees every tenant; the
//! listing API pages with an opaque cursor. Embedded store and Garage (S3 mode).

mod common;
mod uploads_common;

use common::{assert_error, fixture, TestServer};
use imago::config::List;
use serde_json::{json, Value};
use uploads_common::*;

/// The bearer tokens (what the SDKs send) and the `IMAGO_API_KEYS` entries they come from.
const A1: &str = "acme-key-one-0123456789";
const A2: &str = "acme-key-two-0123456789";
const B: &str = "beta-key-0123456789abcdef";
const B_UPLOAD_ONLY: &str = "beta-upload-only-0123456789";
const ADMIN_RO: &str = "ops-admin-key-0123456789";
/// Tenant `default` without the admin scope (a bare key would have it).
const DEF: &str = "default-tenant-key-0123456789";

fn tenant_keys(r: &mut imago::RawConfig) {
    r.api_keys = List::from_strs(&[
        &format!("acme:{A1}"),
        &format!("acme:{A2}"),
        &format!("beta:{B}"),
        &format!("beta:upload:{B_UPLOAD_ONLY}"),
        &format!("ops:read-info+admin:{ADMIN_RO}"),
        &format!("default:{DEF}"),
    ]);
    r.upload_rate_per_sec = 1000.0;
    r.upload_burst = 1000;
}

async fn embedded() -> TestServer {
    start(&[], tenant_keys).await
}

/// Tickets and uploads `photo` with `key` (with its digest: deduplicated); returns the ticket.
async fn upload(s: &TestServer, key: &str, photo: &[u8], digest: bool) -> Value {
    let mut body = json!({"content_type": "image/jpeg", "content_length": photo.len()});
    if digest {
        body["sha256"] = json!(sha256_hex(photo));
    }
    let (status, t) = ticket_with(s, key, body).await;
    assert_eq!(status, 201, "{t}");
    let r = send(&s.client, &t, photo.to_vec(), None).await;
    assert!(r.status().is_success(), "{}", r.status());
    t
}

async fn info(s: &TestServer, key: &str, image: &str) -> reqwest::Response {
    s.client.get(format!("{}/v1/images/{image}/info", s.base)).bearer_auth(key).send().await.unwrap()
}

async fn delete(s: &TestServer, key: &str, image: &str) -> reqwest::Response {
    s.client.delete(format!("{}/v1/images/{image}", s.base)).bearer_auth(key).send().await.unwrap()
}

/// `GET /v1/images` in key order: it lists uploads that were never completed too (S3 mode), and
/// these tests are about who sees what, not about completion (newest-first: tests/uploads_trash.rs).
async fn list(s: &TestServer, key: &str, query: &str) -> reqwest::Response {
    s.client.get(format!("{}/v1/images?order=key&{query}", s.base)).bearer_auth(key).send().await.unwrap()
}

/// Every key a listing shows, following the cursor (`limit` per page).
async fn list_all(s: &TestServer, key: &str, query: &str, limit: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let q = match &cursor {
            Some(c) => format!("{query}&limit={limit}&cursor={c}"),
            None => format!("{query}&limit={limit}"),
        };
        let r = list(s, key, &q).await;
        assert_eq!(r.status(), 200, "GET /v1/images?{q}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let page: Value = r.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit, "{page}");
        keys.extend(items.iter().map(|i| i["key"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return keys,
        }
    }
    panic!("the listing did not end");
}

/// Tenant B uploads the same bytes as A: its own object, and its ticket does not say `exists`.
async fn same_bytes_are_separate_objects(s: &TestServer, prefix: &str) -> (String, String) {
    let photo = fixture("orientation/Landscape_3.jpg");
    let ta = upload(s, A1, &photo, true).await;
    let a_key = ta["key"].as_str().unwrap().to_string();
    assert!(a_key.starts_with(&format!("{prefix}/acme/sha256/")), "{a_key}");
    // A's own dedup still works, for both of its keys.
    for k in [A1, A2] {
        let (status, t) = ticket_with(
            s,
            k,
            json!({"content_type": "image/jpeg", "content_length": photo.len(), "sha256": sha256_hex(&photo)}),
        )
        .await;
        assert_eq!((status, &t["exists"], &t["key"]), (200, &json!(true), &json!(a_key)), "{t}");
    }
    let (status, tb) = ticket_with(
        s,
        B,
        json!({"content_type": "image/jpeg", "content_length": photo.len(), "sha256": sha256_hex(&photo)}),
    )
    .await;
    assert_eq!(status, 201, "B must not learn that A has these bytes: {tb}");
    assert_eq!(tb["exists"], false, "{tb}");
    let b_key = tb["key"].as_str().unwrap().to_string();
    assert_ne!(b_key, a_key);
    assert!(b_key.starts_with(&format!("{prefix}/beta/sha256/")), "{b_key}");
    let r = send(&s.client, &tb, photo.clone(), None).await;
    assert!(r.status().is_success(), "{}", r.status());
    (a_key, b_key)
}

/// B cannot read the info of, list or delete A's image; A's object survives; A still can.
async fn other_tenants_are_out_of_reach(s: &TestServer, a_key: &str, b_key: &str) {
    assert_error(info(s, B, a_key).await, 403, "other-tenant").await;
    assert_error(delete(s, B, a_key).await, 403, "other-tenant").await;
    // The answer does not depend on whether the key exists.
    let ghost = a_key.replace("/sha256/", "/sha256/0").replace(".jpg", "0.jpg");
    assert_error(info(s, B, &ghost).await, 403, "other-tenant").await;
    assert_error(delete(s, B, &ghost).await, 403, "other-tenant").await;
    let b_sees = list_all(s, B, "", 10).await;
    assert_eq!(b_sees, vec![b_key.to_string()]);
    assert_error(list(s, B, "tenant=acme").await, 403, "other-tenant").await;
    // Tenant `default` (keys at the prefix's top, around the tenants' directories): its own
    // copy, its own listing.
    let d_key =
        upload(s, DEF, &fixture("orientation/Landscape_3.jpg"), true).await["key"].as_str().unwrap().to_string();
    assert!(!d_key.contains("/acme/") && !d_key.contains("/beta/") && d_key.contains("/sha256/"), "{d_key}");
    assert_eq!(list_all(s, DEF, "", 1).await, vec![d_key.clone()]);
    assert_error(info(s, DEF, a_key).await, 403, "other-tenant").await;
    assert_error(info(s, A1, &d_key).await, 403, "other-tenant").await;
    // Rotation: both of A's keys see A's images (and only them).
    for k in [A1, A2] {
        assert_eq!(info(s, k, a_key).await.status(), 200);
        assert_eq!(list_all(s, k, "", 10).await, vec![a_key.to_string()]);
        assert_error(info(s, k, b_key).await, 403, "other-tenant").await;
    }
}

/// A key without a scope is refused with `scope-missing`; an admin key sees every tenant.
async fn scopes_and_admin(s: &TestServer, a_key: &str, b_key: &str) {
    assert_error(delete(s, B_UPLOAD_ONLY, b_key).await, 403, "scope-missing").await;
    assert_error(info(s, B_UPLOAD_ONLY, b_key).await, 403, "scope-missing").await;
    assert_error(list(s, B_UPLOAD_ONLY, "").await, 403, "scope-missing").await;
    let r = s.client.get(format!("{}/v1/analytics", s.base)).bearer_auth(B_UPLOAD_ONLY).send().await.unwrap();
    assert_error(r, 403, "scope-missing").await;
    let (status, t) = ticket_with(s, B_UPLOAD_ONLY, json!({"content_type": "image/png"})).await;
    assert!(status == 201, "{t}");

    // The read-only admin: info and listing of every tenant, no upload, no delete.
    assert_eq!(info(s, ADMIN_RO, a_key).await.status(), 200);
    assert_eq!(info(s, ADMIN_RO, b_key).await.status(), 200);
    let mut all = list_all(s, ADMIN_RO, "", 1).await;
    all.sort();
    let mut want =
        [list_all(s, A1, "", 10).await, list_all(s, B, "", 10).await, list_all(s, DEF, "", 10).await].concat();
    want.sort();
    assert!(all.contains(&a_key.to_string()) && all.contains(&b_key.to_string()), "{all:?}");
    assert_eq!(all, want);
    assert_eq!(list_all(s, ADMIN_RO, "tenant=beta", 5).await, vec![b_key.to_string()]);
    let page: Value = list(s, ADMIN_RO, "tenant=acme").await.json().await.unwrap();
    assert_eq!(page["items"][0]["tenant"], "acme", "{page}");
    assert_error(delete(s, ADMIN_RO, a_key).await, 403, "scope-missing").await;
    let (status, t) = ticket_with(s, ADMIN_RO, json!({"content_type": "image/png"})).await;
    assert_eq!((status, t["code"].as_str()), (403, Some("scope-missing")), "{t}");

    // A deletes its own image; B's copy of the same bytes is untouched.
    assert_eq!(delete(s, A1, a_key).await.status(), 204);
    assert_eq!(info(s, A2, a_key).await.status(), 404);
    assert_eq!(info(s, B, b_key).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_get_separate_objects_for_the_same_bytes() {
    let s = embedded().await;
    same_bytes_are_separate_objects(&s, "uploads").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_cannot_read_list_or_delete_and_keys_rotate() {
    let s = embedded().await;
    let (a_key, b_key) = same_bytes_are_separate_objects(&s, "uploads").await;
    other_tenants_are_out_of_reach(&s, &a_key, &b_key).await;
    assert!(s.root.join(&a_key).is_file(), "A's object survives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_enforced_and_admin_sees_every_tenant() {
    let s = embedded().await;
    let (a_key, b_key) = same_bytes_are_separate_objects(&s, "uploads").await;
    scopes_and_admin(&s, &a_key, &b_key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_reads_only_image_files_and_a_tenant_only_its_uploads() {
    let s = start(&[], |r| {
        r.api_keys = List::from_strs(&[API_KEY, &format!("default:{DEF}")]);
    })
    .await;
    let photo = fixture("orientation/Landscape_3.jpg");
    s.put("private/secret.jpg", &photo);
    s.put("uploads/notes.txt", b"not an image");
    s.put("analytics/dt=2030-01-01/hour=00/x.jsonl.zst", b"events");
    // A bare key (every scope, admin included) reads any image of the store, as before, but no
    // other file (analytics event files included).
    assert_eq!(info(&s, API_KEY, "private/secret.jpg").await.status(), 200);
    assert_error(info(&s, API_KEY, "uploads/notes.txt").await, 403, "key-not-allowed").await;
    assert_error(info(&s, API_KEY, "analytics/dt=2030-01-01/hour=00/x.jsonl.zst").await, 403, "key-not-allowed").await;
    // A tenant key (here `default` without admin) reads only its upload keys.
    assert_error(info(&s, DEF, "private/secret.jpg").await, 403, "key-not-allowed").await;
    let t = upload(&s, DEF, &photo, false).await;
    assert_eq!(info(&s, DEF, t["key"].as_str().unwrap()).await.status(), 200);
    assert_eq!(info(&s, API_KEY, t["key"].as_str().unwrap()).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_keys_list_everything_under_the_prefix_as_before() {
    let s = start(&[], |_| {}).await;
    let photo = fixture("orientation/Landscape_3.jpg");
    let t1 = upload(&s, API_KEY, &photo, true).await;
    let t2 = upload(&s, API_KEY_2, &fixture("orientation/Landscape_5.jpg"), false).await;
    // Same bytes, second bare key: the same object, as before tenants (one tenant, `default`).
    let (status, again) = ticket_with(
        &s,
        API_KEY_2,
        json!({"content_type": "image/jpeg", "content_length": photo.len(), "sha256": sha256_hex(&photo)}),
    )
    .await;
    assert_eq!((status, &again["key"]), (200, &t1["key"]), "{again}");
    let mut want = vec![t1["key"].as_str().unwrap().to_string(), t2["key"].as_str().unwrap().to_string()];
    want.sort();
    assert!(want[0].starts_with("uploads/2") && want[1].starts_with("uploads/sha256/"), "{want:?}");
    assert_eq!(list_all(&s, API_KEY, "prefix=uploads", 1).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_with_an_opaque_cursor_and_a_bounded_limit() {
    let s = start(&[], |r| {
        tenant_keys(r);
        r.upload_prefixes = List::from_strs(&["uploads", "avatars"]);
    })
    .await;
    let mut want = Vec::new();
    for f in ["Landscape_1", "Landscape_2", "Landscape_4", "Portrait_1", "Portrait_2"] {
        let t = upload(&s, A1, &fixture(&format!("orientation/{f}.jpg")), f.starts_with('P')).await;
        want.push(t["key"].as_str().unwrap().to_string());
    }
    upload(&s, B, &fixture("orientation/Landscape_1.jpg"), false).await;
    let (_, t) = ticket_with(&s, A1, json!({"content_type": "image/png", "prefix": "avatars"})).await;
    assert!(t["key"].as_str().unwrap().starts_with("avatars/acme/"), "{t}");
    want.sort();
    for limit in [1, 2, 5, 100] {
        assert_eq!(list_all(&s, A2, "prefix=uploads", limit).await, want, "limit {limit}");
    }
    let page: Value = list(&s, A1, "limit=2").await.json().await.unwrap();
    let item = &page["items"][0];
    assert_eq!(item["key"], want[0].as_str());
    assert_eq!(item["tenant"], "acme");
    assert_eq!(item["bytes"], fixture("orientation/Landscape_1.jpg").len());
    assert!(item["last_modified"].as_str().unwrap().ends_with('Z'), "{item}");
    assert!(item["image_url"].as_str().unwrap().starts_with(&s.base), "{item}");
    assert_eq!(item["info_url"], format!("{}/v1/images/{}/info", s.base, want[0]));
    assert!(page["next_cursor"].is_string());
    assert!(list_all(&s, A1, "prefix=avatars", 10).await.is_empty(), "a ticket stores nothing");
    for bad in ["limit=0", "limit=1001", "limit=x", "cursor=%%%", "cursor=Li4vLi4v", "prefix=other"] {
        let r = list(&s, A1, bad).await;
        let code = if bad.starts_with("prefix") { "forbidden" } else { "invalid-request" };
        assert_error(r, if code == "forbidden" { 403 } else { 400 }, code).await;
    }
    assert_error(list(&s, "no-such-key-0123456789", "").await, 401, "unauthorized").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_reports_show_a_tenant_only_its_own_images() {
    let s = start(&["gps.jpg"], |r| {
        tenant_keys(r);
        r.api_keys = List::from_strs(&[
            &format!("acme:{A1}"),
            &format!("beta:{B}"),
            &format!("ops:read-info+analytics+admin:{ADMIN_RO}"),
        ]);
        r.auto_quality = false;
        r.analytics_flush_secs = 3600;
        r.analytics_flush_events = 1_000_000;
    })
    .await;
    let ta = upload(&s, A1, &fixture("orientation/Landscape_1.jpg"), false).await;
    let tb = upload(&s, B, &fixture("orientation/Landscape_2.jpg"), true).await;
    for (t, n) in [(&ta, 2), (&tb, 3)] {
        let u = s.url("w:50", t["source"].as_str().unwrap(), Some("jpg"));
        for _ in 0..n {
            assert_eq!(s.get(&u).await.status(), 200);
        }
    }
    assert_eq!(s.get(&s.url("w:50", "local:///gps.jpg", Some("jpg"))).await.status(), 200);
    s.state.analytics.flush().await;
    let report = |k: &'static str| {
        let s = &s;
        async move {
            let r = s.client.get(format!("{}/v1/analytics", s.base)).bearer_auth(k).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let a = report(A1).await;
    assert_eq!((a["requests"].as_u64(), a["unique_images"].as_u64()), (Some(2), Some(1)), "{a}");
    assert_eq!(a["top_images_by_requests"][0]["key"], ta["key"]);
    let b = report(B).await;
    assert_eq!((b["requests"].as_u64(), b["unique_images"].as_u64()), (Some(3), Some(1)), "{b}");
    assert_eq!(b["top_images_by_requests"][0]["key"], tb["key"]);
    let all = report(ADMIN_RO).await;
    assert_eq!((all["requests"].as_u64(), all["unique_images"].as_u64()), (Some(6), Some(3)), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_tenants_are_isolated_and_listed() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("ten");
    let s = {
        let (env, prefix) = (env.clone(), prefix.clone());
        start(&[], move |r| {
            tenant_keys(r);
            env.apply(r);
            r.upload_prefixes = List::from_strs(&[prefix.as_str()]);
        })
        .await
    };
    let (a_key, b_key) = same_bytes_are_separate_objects(&s, &prefix).await;
    other_tenants_are_out_of_reach(&s, &a_key, &b_key).await;
    assert!(env.object(&a_key).await.is_some(), "A's object survives");
    // More of A's images, and a page size below the count: the cursor walks them all, once.
    let mut want = vec![a_key.clone()];
    for f in ["Landscape_1", "Landscape_2", "Portrait_1"] {
        want.push(
            upload(&s, A2, &fixture(&format!("orientation/{f}.jpg")), false).await["key"].as_str().unwrap().into(),
        );
    }
    want.sort();
    assert_eq!(list_all(&s, A1, "", 2).await, want);
    // Objects that uploads could not have made are not listed.
    env.put(&format!("{prefix}/acme/notes.txt"), b"text".to_vec()).await;
    assert_eq!(list_all(&s, A1, "", 3).await, want);
    scopes_and_admin(&s, &a_key, &b_key).await;
    assert!(env.object(&a_key).await.is_none(), "A deleted its own image");
    assert!(env.object(&b_key).await.is_some());
}
