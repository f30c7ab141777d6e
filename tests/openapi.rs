//! The OpenAPI 3.1 description of `/v1` (`src/http/openapi.json`, served at `/v1/openapi.json`)
//! against the real server:
//!
//! * the document is valid OpenAPI 3.1 (meta-schema, by openapi-spec-validator);
//! * its `ErrorCode` enum is exactly `error::CODES`, and its paths are exactly the `/v1` routes
//!   registered in `src/http/`;
//! * every operation is exercised against a running imago — embedded store, and Garage where the
//!   route behaves differently (S3 tickets, completion, listing states) — with its success and
//!   main error answers, and every response (status, media type, body, declared headers) is
//!   validated against the document by openapi-core (`tests/report/openapi.py`), as are the
//!   requests the tests mean to be valid.
//!
//! A response that drifts from the document, a route added without its description, or an error
//! code added without the enum fails here. The Python tools come from `tests/report/prepare.sh`
//! (skipped with a message without them, failing under `CI=true`); the Garage part is skipped
//! without `IMAGO_TEST_S3_*` (failing under `CI=true`).

mod analytics_support;
mod common;
#[path = "common/files.rs"]
mod files;
mod uploads_common;

use std::collections::BTreeSet;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::{fixture, TestServer};
use serde_json::{json, Map, Value};
use uploads_common::{multipart, sha256_hex, S3Env, API_KEY};

/// A key of tenant `t1` with the `upload` scope only (for `403 scope-missing`).
const UPLOAD_ONLY: &str = "upload-only-key-0123456789abcdef";

fn document() -> Value {
    serde_json::from_str(imago::http::openapi::DOCUMENT).expect("src/http/openapi.json is JSON")
}

/// The request body of an exchange.
enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>, String),
}

/// One answer, as read.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends requests and records each exchange for the validator.
struct Recorder {
    client: reqwest::Client,
    exchanges: Vec<Value>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder { client: reqwest::Client::new(), exchanges: Vec::new() }
    }

    /// Sends `method url` (a full URL on the server) as the operation `template` with
    /// `path_params`; `check_request`: the request is meant to be valid by the document.
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path_params: &[(&str, &str)],
        url: &str,
        headers: &[(&str, &str)],
        body: Body,
        check_request: bool,
    ) -> Answer {
        let parsed = url::Url::parse(url).unwrap();
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(m, url);
        let mut sent_headers = Map::new();
        for (k, v) in headers {
            req = req.header(*k, *v);
            sent_headers.insert(k.to_string(), json!(v));
        }
        let (req_body, req_ct) = match body {
            Body::None => (None, String::new()),
            Body::Json(v) => {
                let b = serde_json::to_vec(&v).unwrap();
                req = req.header("content-type", "application/json").body(b.clone());
                (Some(b), "application/json".to_string())
            }
            Body::Raw(b, ct) => {
                if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
                    req = req.header("content-type", ct.as_str());
                }
                req = req.body(b.clone());
                (Some(b), ct)
            }
        };
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let resp_headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap().to_vec();
        let mut rh = Map::new();
        for (k, v) in &resp_headers {
            rh.insert(k.as_str().to_string(), json!(v.to_str().unwrap_or("")));
        }
        let query: Map<String, Value> = parsed.query_pairs().map(|(k, v)| (k.into_owned(), json!(v))).collect();
        let params: Map<String, Value> = path_params.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        self.exchanges.push(json!({
            "method": method,
            "template": template,
            "path": parsed.path(),
            "path_params": params,
            "query": query,
            "headers": sent_headers,
            "request_body": req_body.map(|b| B64.encode(b)),
            "request_content_type": req_ct,
            "check_request": check_request,
            "status": status,
            "response_headers": rh,
            "response_content_type": resp_headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or(""),
            "response_body": B64.encode(&bytes),
        }));
        Answer { status, headers: resp_headers, body: bytes }
    }

    /// A request with the API key.
    async fn api(
        &mut self,
        s: &TestServer,
        method: &str,
        template: &str,
        params: &[(&str, &str)],
        path: &str,
    ) -> Answer {
        let auth = format!("Bearer {API_KEY}");
        let url = format!("{}{path}", s.base);
        self.call(method, template, params, &url, &[("Authorization", auth.as_str())], Body::None, true).await
    }

    async fn ticket(&mut self, s: &TestServer, key: &str, body: Value, check: bool) -> Answer {
        let auth = format!("Bearer {key}");
        let url = format!("{}/v1/uploads", s.base);
        self.call("POST", "/v1/uploads", &[], &url, &[("Authorization", auth.as_str())], Body::Json(body), check).await
    }
}

fn expect(a: &Answer, status: u16, code: Option<&str>, what: &str) {
    let body = a.json();
    assert_eq!(a.status, status, "{what}: {}", String::from_utf8_lossy(&a.body));
    if let Some(c) = code {
        assert_eq!(body["code"], c, "{what}: {body}");
    }
}

/// The PUT target of an embedded ticket: (template params, url, headers).
fn put_target(t: &Value) -> (String, Vec<(String, String)>) {
    let url = t["url"].as_str().unwrap().to_string();
    let headers =
        t["headers"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    (url, headers)
}

async fn put_upload(rec: &mut Recorder, t: &Value, body: Vec<u8>, content_type: Option<&str>) -> Answer {
    let (url, headers) = put_target(t);
    let key = t["key"].as_str().unwrap();
    let headers: Vec<(String, String)> = headers
        .into_iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("content-type") {
                (k, content_type.map(str::to_string).unwrap_or(v))
            } else {
                (k, v)
            }
        })
        .collect();
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ct = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    rec.call("PUT", "/v1/uploads/{key}", &[("key", key)], &url, &h, Body::Raw(body, ct), false).await
}

/// Runs the validator over the recorded exchanges; fails on any finding, and on an operation of
/// the document that no request exercised.
fn validate(rec: &Recorder, must_cover_all: bool) -> Value {
    let Some(py) = analytics_support::python() else { return Value::Null };
    let spec = analytics_support::root().join("src/http/openapi.json");
    let input = serde_json::to_string(&rec.exchanges).unwrap();
    let out = analytics_support::run_py(&py, "openapi.py", &[spec.to_str().unwrap()], &input);
    let errors = out["errors"].as_array().unwrap();
    assert!(
        errors.is_empty(),
        "{} of {} exchanges do not match the document:\n{}",
        errors.len(),
        out["checked"],
        errors.iter().map(|e| e.as_str().unwrap_or("")).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(out["checked"].as_u64().unwrap() as usize, rec.exchanges.len());
    if must_cover_all {
        let ops: BTreeSet<&str> = out["operations"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let done: BTreeSet<&str> = out["exercised"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let missing: Vec<_> = ops.difference(&done).collect();
        assert!(missing.is_empty(), "operations of the document no request exercised: {missing:?}");
    }
    eprintln!("validated {} exchanges: {}", out["checked"], out["statuses"]);
    out
}

#[test]
fn document_is_openapi_3_1_and_its_error_codes_are_error_codes() {
    let doc = document();
    assert_eq!(doc["openapi"].as_str().unwrap().split('.').take(2).collect::<Vec<_>>(), ["3", "1"]);
    let enumerated: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let codes: Vec<&str> = imago::error::CODES.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        enumerated.iter().collect::<BTreeSet<_>>(),
        codes.iter().collect::<BTreeSet<_>>(),
        "ErrorCode in src/http/openapi.json must list exactly error::CODES"
    );
    // The meta-schema check (the validator refuses an invalid document before anything else).
    validate(&Recorder::new(), false);
}

/// `{name:regex}` segments of an actix pattern as `{name}`.
fn template(pattern: &str) -> String {
    let mut norm = String::new();
    let mut rest = pattern;
    while let Some(i) = rest.find('{') {
        norm.push_str(&rest[..i]);
        let end = rest[i..].find('}').map(|j| i + j).unwrap();
        norm.push('{');
        norm.push_str(rest[i + 1..end].split(':').next().unwrap());
        norm.push('}');
        rest = &rest[end + 1..];
    }
    norm.push_str(rest);
    norm
}

/// Every `/v1` route registered in `src/http/` — `web::resource("/v1/…")` patterns and
/// `.route(CONST, …)` whose constant is a `/v1/` path — is a path of the document, and every path
/// of the document is a route.
#[test]
fn document_paths_are_the_registered_routes() {
    let doc = document();
    let described: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let mut routes = BTreeSet::new();
    let mut consts = std::collections::BTreeMap::new();
    let mut routed = BTreeSet::new();
    for f in files::rust_files(&analytics_support::root().join("src/http")) {
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            if let Some(rest) = line.split("web::resource(\"").nth(1) {
                let lit = rest.split('"').next().unwrap();
                if lit.starts_with("/v1/") {
                    routes.insert(template(lit));
                }
            }
            if let Some((name, rest)) = line.split_once("const ").and_then(|(_, r)| r.split_once(": &str = \"")) {
                consts.insert(name.trim().to_string(), rest.split('"').next().unwrap().to_string());
            }
            for call in line.split(".route(").skip(1) {
                let arg = call.split(',').next().unwrap().trim();
                routed.insert(arg.rsplit("::").next().unwrap().to_string());
            }
        }
    }
    for name in routed {
        if let Some(lit) = consts.get(&name).filter(|l| l.starts_with("/v1/")) {
            routes.insert(template(lit));
        }
    }
    assert!(
        routes.contains("/v1/uploads/{key}") && routes.contains("/v1/openapi.json"),
        "the route scan found {routes:?}"
    );
    assert_eq!(routes, described, "routes in src/http/ (left) vs paths in src/http/openapi.json (right)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_answers_as_described() {
    let s = uploads_common::start(&[], |r| {
        let t1 = format!("t1:upload:{UPLOAD_ONLY}");
        r.api_keys = imago::config::List::from_strs(&[API_KEY, t1.as_str()]);
        r.delete_grace_secs = 3600;
        r.upload_max_bytes = 5 * 1024 * 1024;
    })
    .await;
    let mut rec = Recorder::new();
    let photo = fixture("gps.jpg");
    let b = s.base.clone();

    // The document itself: served, identical to the embedded one, cacheable.
    let a = rec.call("GET", "/v1/openapi.json", &[], &format!("{b}/v1/openapi.json"), &[], Body::None, true).await;
    expect(&a, 200, None, "openapi.json");
    assert_eq!(a.json(), document());
    assert!(a.header("cache-control").unwrap().starts_with("public"), "{:?}", a.headers);
    let etag = a.header("etag").unwrap().to_string();
    let a = rec
        .call(
            "GET",
            "/v1/openapi.json",
            &[],
            &format!("{b}/v1/openapi.json"),
            &[("If-None-Match", etag.as_str())],
            Body::None,
            true,
        )
        .await;
    expect(&a, 304, None, "openapi.json revalidated");

    // Tickets.
    let a = rec.ticket(&s, API_KEY, json!({"content_type": "image/jpeg", "filename": "a.jpg"}), true).await;
    expect(&a, 201, None, "PUT ticket");
    let put_ticket = a.json();
    let a = rec.ticket(&s, API_KEY, json!({"content_type": "image/jpeg", "method": "POST"}), true).await;
    expect(&a, 201, None, "POST ticket");
    let post_ticket = a.json();
    let a = rec
        .ticket(
            &s,
            API_KEY,
            json!({"content_type": "image/jpeg", "content_length": photo.len(), "sha256": sha256_hex(&photo)}),
            true,
        )
        .await;
    expect(&a, 201, None, "digest ticket");
    let digest_ticket = a.json();
    let a = rec.ticket(&s, API_KEY, json!({"content_type": "image/jpeg", "colour": "red"}), false).await;
    expect(&a, 400, Some("invalid-request"), "unknown field");
    let a = rec.ticket(&s, "not-a-key-0123456789abcdef", json!({"content_type": "image/jpeg"}), false).await;
    expect(&a, 401, Some("unauthorized"), "unknown key");
    let a = rec.ticket(&s, API_KEY, json!({"content_type": "image/jpeg", "prefix": "elsewhere"}), true).await;
    expect(&a, 403, Some("forbidden"), "prefix");
    let a =
        rec.ticket(&s, API_KEY, json!({"content_type": "image/jpeg", "content_length": 6 * 1024 * 1024}), true).await;
    expect(&a, 413, Some("too-large"), "content_length");
    let a = rec.ticket(&s, API_KEY, json!({"content_type": "text/plain"}), true).await;
    expect(&a, 415, Some("unsupported-content-type"), "type");

    // The embedded PUT target.
    let key = put_ticket["key"].as_str().unwrap().to_string();
    let a = put_upload(&mut rec, &put_ticket, b"this is not an image at all".to_vec(), None).await;
    expect(&a, 422, Some("not-an-image"), "PUT garbage");
    let a = put_upload(&mut rec, &put_ticket, photo.clone(), Some("image/png")).await;
    expect(&a, 415, Some("content-type-mismatch"), "PUT type");
    let mut forged = put_ticket.clone();
    forged["url"] = json!(forged["url"].as_str().unwrap().replace("signature=", "signature=A"));
    let a = put_upload(&mut rec, &forged, photo.clone(), None).await;
    expect(&a, 403, Some("invalid-signature"), "PUT forged");
    let a = put_upload(&mut rec, &put_ticket, photo.clone(), None).await;
    expect(&a, 201, None, "PUT");
    assert!(a.header("location").is_some() && a.header("etag").is_some());
    let a = put_upload(&mut rec, &put_ticket, photo.clone(), None).await;
    expect(&a, 200, None, "PUT again");
    let a = put_upload(&mut rec, &put_ticket, other_jpeg(), None).await;
    expect(&a, 409, Some("exists"), "PUT other bytes");
    let a = rec
        .call(
            "OPTIONS",
            "/v1/uploads/{key}",
            &[("key", &key)],
            &format!("{b}/v1/uploads/{key}"),
            &[("Origin", "https://app.example"), ("Access-Control-Request-Method", "PUT")],
            Body::None,
            true,
        )
        .await;
    expect(&a, 204, None, "PUT preflight");
    let a = put_upload(&mut rec, &digest_ticket, photo.clone(), None).await;
    expect(&a, 201, None, "PUT digest");
    let a = rec.ticket(&s, API_KEY, json!({"content_type": "image/jpeg", "sha256": sha256_hex(&photo)}), true).await;
    expect(&a, 200, None, "exists ticket");
    assert_eq!(a.json()["exists"], true);

    // The embedded form target.
    let form_url = post_ticket["url"].as_str().unwrap().to_string();
    let fields: Vec<(String, String)> = post_ticket["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let (ct, body) = multipart(&fields, &photo);
    let a = rec
        .call(
            "POST",
            "/v1/uploads/form",
            &[],
            &form_url,
            &[("content-type", ct.as_str())],
            Body::Raw(body, ct.clone()),
            false,
        )
        .await;
    expect(&a, 201, None, "form");
    let mut bad = fields.clone();
    for f in bad.iter_mut().filter(|(k, _)| k == "signature") {
        f.1 = format!("A{}", f.1);
    }
    let (ct, body) = multipart(&bad, &photo);
    let a = rec
        .call(
            "POST",
            "/v1/uploads/form",
            &[],
            &form_url,
            &[("content-type", ct.as_str())],
            Body::Raw(body, ct.clone()),
            false,
        )
        .await;
    expect(&a, 403, Some("invalid-signature"), "form forged");
    let (ct, _) = multipart(&fields, &photo);
    let boundary = ct.split("boundary=").nth(1).unwrap().to_string();
    let no_file =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nx\r\n--{boundary}--\r\n")
            .into_bytes();
    let a = rec
        .call(
            "POST",
            "/v1/uploads/form",
            &[],
            &form_url,
            &[("content-type", ct.as_str())],
            Body::Raw(no_file, ct.clone()),
            false,
        )
        .await;
    expect(&a, 400, Some("invalid-request"), "form without file");
    let a = rec
        .call(
            "OPTIONS",
            "/v1/uploads/form",
            &[],
            &form_url,
            &[("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")],
            Body::None,
            true,
        )
        .await;
    expect(&a, 204, None, "form preflight");

    // Completion.
    let id = put_ticket["id"].as_str().unwrap().to_string();
    let complete = |id: &str| format!("{b}/v1/uploads/{id}/complete");
    let a = rec.call("POST", "/v1/uploads/{id}/complete", &[("id", &id)], &complete(&id), &[], Body::None, true).await;
    expect(&a, 200, None, "complete");
    let a = rec
        .call(
            "POST",
            "/v1/uploads/{id}/complete",
            &[("id", "upl_nonsense")],
            &complete("upl_nonsense"),
            &[],
            Body::None,
            true,
        )
        .await;
    expect(&a, 400, Some("invalid-request"), "complete: foreign id");
    let a = rec.ticket(&s, API_KEY, json!({"content_type": "image/jpeg"}), true).await;
    let unused = a.json()["id"].as_str().unwrap().to_string();
    let a = rec
        .call("POST", "/v1/uploads/{id}/complete", &[("id", &unused)], &complete(&unused), &[], Body::None, true)
        .await;
    expect(&a, 404, Some("not-found"), "complete: nothing uploaded");
    let auth_t1 = format!("Bearer {UPLOAD_ONLY}");
    let a = rec
        .call(
            "POST",
            "/v1/uploads/{id}/complete",
            &[("id", &id)],
            &complete(&id),
            &[("Authorization", auth_t1.as_str())],
            Body::None,
            true,
        )
        .await;
    expect(&a, 403, Some("other-tenant"), "complete: other tenant's key");
    let a = rec
        .call(
            "OPTIONS",
            "/v1/uploads/{id}/complete",
            &[("id", &id)],
            &complete(&id),
            &[("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")],
            Body::None,
            true,
        )
        .await;
    expect(&a, 204, None, "complete preflight");

    // Listing.
    let auth = format!("Bearer {API_KEY}");
    let a = rec.api(&s, "GET", "/v1/images", &[], "/v1/images?limit=2").await;
    expect(&a, 200, None, "list");
    let cursor = a.json()["next_cursor"].as_str().expect("a second page").to_string();
    let a = rec.api(&s, "GET", "/v1/images", &[], &format!("/v1/images?limit=2&cursor={cursor}")).await;
    expect(&a, 200, None, "list page 2");
    let a = rec.api(&s, "GET", "/v1/images", &[], "/v1/images?limit=2&order=key").await;
    expect(&a, 200, None, "list in key order");
    let a = rec.api(&s, "GET", "/v1/images", &[], &format!("/v1/images?order=key&cursor={cursor}")).await;
    expect(&a, 400, Some("invalid-request"), "a newest-first cursor in key order");

    // Signed URLs for the console (POST /v1/sign).
    let listed = rec.api(&s, "GET", "/v1/images", &[], "/v1/images?limit=1").await;
    let image_key = listed.json()["items"][0]["key"].as_str().expect("an image").to_string();
    let sign = format!("{b}/v1/sign");
    let body = json!({"key": image_key, "options": {"width": 400, "format": "auto"},
        "srcset": {"widths": [200, 400]}, "sizes": {"breakpoints": [{"max_width": 640, "size": "100vw"}], "default": 400}});
    let a = rec.call("POST", "/v1/sign", &[], &sign, &[("Authorization", auth.as_str())], Body::Json(body), true).await;
    expect(&a, 200, None, "sign");
    let a = rec
        .call(
            "POST",
            "/v1/sign",
            &[],
            &sign,
            &[("Authorization", auth.as_str())],
            Body::Json(json!({"key": image_key, "nope": 1})),
            false,
        )
        .await;
    expect(&a, 400, Some("invalid-request"), "sign with an unknown field");
    let a = rec.call("POST", "/v1/sign", &[], &sign, &[], Body::Json(json!({"key": image_key})), false).await;
    expect(&a, 401, Some("unauthorized"), "sign without key");
    let a = rec
        .call(
            "GET",
            "/v1/images",
            &[],
            &format!("{b}/v1/images?limit=0"),
            &[("Authorization", auth.as_str())],
            Body::None,
            false,
        )
        .await;
    expect(&a, 400, Some("invalid-request"), "list limit 0");
    let a = rec.call("GET", "/v1/images", &[], &format!("{b}/v1/images"), &[], Body::None, false).await;
    expect(&a, 401, Some("unauthorized"), "list without key");
    let a = rec
        .call(
            "GET",
            "/v1/images",
            &[],
            &format!("{b}/v1/images"),
            &[("Authorization", auth_t1.as_str())],
            Body::None,
            true,
        )
        .await;
    expect(&a, 403, Some("scope-missing"), "list with an upload-only key");

    // Info.
    let info = format!("/v1/images/{key}/info");
    let a = rec.api(&s, "GET", "/v1/images/{key}/info", &[("key", &key)], &info).await;
    expect(&a, 200, None, "info");
    let etag = a.header("etag").unwrap().to_string();
    let auth = format!("Bearer {API_KEY}");
    let a = rec
        .call(
            "GET",
            "/v1/images/{key}/info",
            &[("key", &key)],
            &format!("{b}{info}"),
            &[("Authorization", auth.as_str()), ("If-None-Match", etag.as_str())],
            Body::None,
            true,
        )
        .await;
    expect(&a, 304, None, "info revalidated");
    let gone = "uploads/2030/01/01/nothing.jpg";
    let a = rec.api(&s, "GET", "/v1/images/{key}/info", &[("key", gone)], &format!("/v1/images/{gone}/info")).await;
    expect(&a, 404, Some("not-found"), "info: nothing");
    let txt = "uploads/notes.txt";
    let a = rec.api(&s, "GET", "/v1/images/{key}/info", &[("key", txt)], &format!("/v1/images/{txt}/info")).await;
    expect(&a, 403, Some("key-not-allowed"), "info: not an image name");

    // Delete, restore.
    let a = rec.api(&s, "DELETE", "/v1/images/{key}", &[("key", &key)], &format!("/v1/images/{key}")).await;
    expect(&a, 204, None, "delete");
    let a = rec.api(&s, "GET", "/v1/images/{key}/info", &[("key", &key)], &info).await;
    expect(&a, 410, Some("image-deleted"), "info of a deleted image");
    let a = rec.api(&s, "GET", "/v1/images", &[], "/v1/images").await;
    expect(&a, 200, None, "list with a deleted image");
    assert!(a.json()["items"].as_array().unwrap().iter().any(|i| i["state"] == "deleted"), "{}", a.json());
    let a = rec.call("POST", "/v1/uploads/{id}/complete", &[("id", &id)], &complete(&id), &[], Body::None, true).await;
    expect(&a, 410, Some("image-deleted"), "complete of a deleted image");
    let restore = format!("/v1/images/{key}/restore");
    let a = rec.api(&s, "POST", "/v1/images/{key}/restore", &[("key", &key)], &restore).await;
    expect(&a, 200, None, "restore");
    let a = rec.api(&s, "POST", "/v1/images/{key}/restore", &[("key", &key)], &restore).await;
    expect(&a, 404, Some("not-found"), "restore without a deletion");
    let a = rec.api(&s, "DELETE", "/v1/images/{key}", &[("key", gone)], &format!("/v1/images/{gone}")).await;
    expect(&a, 404, Some("not-found"), "delete: nothing");
    let a = rec
        .call(
            "DELETE",
            "/v1/images/{key}",
            &[("key", &key)],
            &format!("{b}/v1/images/{key}"),
            &[("Authorization", auth_t1.as_str())],
            Body::None,
            true,
        )
        .await;
    expect(&a, 403, Some("scope-missing"), "delete with an upload-only key");

    // Analytics.
    let a = rec.api(&s, "GET", "/v1/analytics", &[], "/v1/analytics").await;
    expect(&a, 200, None, "analytics");
    let a = rec.api(&s, "GET", "/v1/analytics", &[], "/v1/analytics?from=yesterday").await;
    expect(&a, 400, Some("invalid-parameter"), "analytics: bad from");
    let a = rec.call("GET", "/v1/analytics", &[], &format!("{b}/v1/analytics"), &[], Body::None, false).await;
    expect(&a, 401, Some("unauthorized"), "analytics without key");
    let a = rec
        .call(
            "GET",
            "/v1/analytics",
            &[],
            &format!("{b}/v1/analytics"),
            &[("Authorization", auth_t1.as_str())],
            Body::None,
            true,
        )
        .await;
    expect(&a, 403, Some("scope-missing"), "analytics with an upload-only key");
    let a = rec.api(&s, "GET", "/v1/analytics/report", &[], "/v1/analytics/report").await;
    expect(&a, 200, None, "analytics page");
    let a =
        rec.call("GET", "/v1/analytics/report", &[], &format!("{b}/v1/analytics/report"), &[], Body::None, false).await;
    expect(&a, 401, Some("unauthorized"), "analytics page without key");

    validate(&rec, true);
}

/// A JPEG other than the uploaded one (for `409 exists`; a PNG would be a type mismatch).
fn other_jpeg() -> Vec<u8> {
    fixture("copyright.jpg")
}

/// S3 mode: tickets point at the bucket, completion checks what the store holds, listing shows
/// the lifecycle states, and a rejected upload answers 422 then 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_mode_answers_as_described() {
    let Some(env) = S3Env::get() else { return };
    let prefix = uploads_common::unique_prefix("openapi");
    let env2 = env.clone();
    let p = prefix.clone();
    let s = uploads_common::start(&[], move |r| {
        env2.apply(r);
        r.upload_prefixes = imago::config::List::from_strs(&[p.as_str()]);
        r.delete_grace_secs = 3600;
    })
    .await;
    let mut rec = Recorder::new();
    let photo = fixture("gps.jpg");
    let b = s.base.clone();
    let complete = |id: &str| format!("{b}/v1/uploads/{id}/complete");

    let a = rec.ticket(&s, API_KEY, json!({"content_type": "image/jpeg", "content_length": photo.len()}), true).await;
    expect(&a, 201, None, "S3 PUT ticket");
    let t = a.json();
    assert!(t["source"].as_str().unwrap().starts_with("s3://"), "{t}");
    let a = rec.ticket(&s, API_KEY, json!({"content_type": "image/jpeg"}), true).await;
    expect(&a, 201, None, "S3 POST ticket");
    assert_eq!(a.json()["method"], "POST");
    let a = rec.ticket(&s, API_KEY, json!({"content_type": "image/jpeg", "method": "PUT"}), true).await;
    expect(&a, 400, Some("invalid-request"), "S3 PUT without length");
    let bad = rec.ticket(&s, API_KEY, json!({"content_type": "image/jpeg", "content_length": 27}), true).await.json();

    // The bytes go to the store (not an imago route: not validated here).
    let r = uploads_common::send(&rec.client, &t, photo.clone(), None).await;
    assert!(r.status().is_success(), "upload to the store: {}", r.status());
    let r = uploads_common::send(&rec.client, &bad, b"this is not an image at all".to_vec(), None).await;
    assert!(r.status().is_success(), "garbage to the store: {}", r.status());

    let key = t["key"].as_str().unwrap().to_string();
    // Pending uploads are listed in key order (newest first lists completed ones).
    let a = rec.api(&s, "GET", "/v1/images", &[], "/v1/images?order=key").await;
    expect(&a, 200, None, "S3 list with pending uploads");
    assert!(a.json()["items"].as_array().unwrap().iter().any(|i| i["state"] == "pending"), "{}", a.json());

    let id = t["id"].as_str().unwrap().to_string();
    let a = rec.call("POST", "/v1/uploads/{id}/complete", &[("id", &id)], &complete(&id), &[], Body::None, true).await;
    expect(&a, 200, None, "S3 complete");
    assert!(!a.json()["etag"].as_str().unwrap().is_empty());
    let bad_id = bad["id"].as_str().unwrap().to_string();
    let a = rec
        .call("POST", "/v1/uploads/{id}/complete", &[("id", &bad_id)], &complete(&bad_id), &[], Body::None, true)
        .await;
    expect(&a, 422, Some("not-an-image"), "S3 complete of garbage");
    let a = rec
        .call("POST", "/v1/uploads/{id}/complete", &[("id", &bad_id)], &complete(&bad_id), &[], Body::None, true)
        .await;
    expect(&a, 409, Some("upload-rejected"), "S3 complete of garbage again");

    let a = rec.api(&s, "GET", "/v1/images/{key}/info", &[("key", &key)], &format!("/v1/images/{key}/info")).await;
    expect(&a, 200, None, "S3 info");
    let a = rec.api(&s, "DELETE", "/v1/images/{key}", &[("key", &key)], &format!("/v1/images/{key}")).await;
    expect(&a, 204, None, "S3 delete");
    let a = rec.api(&s, "GET", "/v1/images", &[], "/v1/images").await;
    expect(&a, 200, None, "S3 list with a deleted image");
    let a =
        rec.api(&s, "POST", "/v1/images/{key}/restore", &[("key", &key)], &format!("/v1/images/{key}/restore")).await;
    expect(&a, 200, None, "S3 restore");

    validate(&rec, false);
}
