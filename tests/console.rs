//! The web console (`/console`, src/http/console.rs) and `POST /v1/sign` over real HTTP: when the
//! console is served (embedded store on loopback; `IMAGO_CONSOLE`), its CSP and assets (none
//! holds the URL-signing key), and the signing endpoint: its URLs serve the size asked for, it
//! is confined to the key's tenant and scope, and it refuses bad and oversized bodies.
//! The browser walk-through is tests/console_browser.rs.

mod common;
mod uploads_common;

use common::{fixture_path, KEY, SALT};
use imago::config::List;
use serde_json::{json, Value};
use uploads_common::*;

const ACME: &str = "acme-key-0123456789abcdef";
const BETA: &str = "beta-key-0123456789abcdef";
const ACME_UPLOAD_ONLY: &str = "acme-upload-only-0123456789";
const ASSETS: &[&str] =
    &["index.html", "console.css", "console.js", "api.js", "views.js", "charts.js", "thumbhash.js", "sdk-upload.js"];

/// The signing key and salt never appear in `text` (hex, as configured).
fn assert_no_secret(what: &str, text: &str) {
    for secret in [KEY, SALT] {
        assert!(!text.to_ascii_lowercase().contains(secret), "{what} contains the URL-signing key or salt");
    }
}

async fn tenants() -> common::TestServer {
    let s = start(&[], |r| {
        r.api_keys = List::from_strs(&[
            &format!("acme:{ACME}"),
            &format!("beta:{BETA}"),
            &format!("acme:upload:{ACME_UPLOAD_ONLY}"),
        ]);
    })
    .await;
    s.put("uploads/acme/photo.jpg", &std::fs::read(fixture_path("orientation/Landscape_1.jpg")).unwrap());
    s
}

async fn sign(s: &common::TestServer, key: Option<&str>, body: &str) -> (u16, Value, String) {
    let mut r = s.client.post(format!("{}/v1/sign", s.base)).header("content-type", "application/json");
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let resp = r.body(body.to_string()).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

#[tokio::test]
async fn console_is_served_on_loopback_with_the_embedded_store_under_a_strict_csp() {
    let s = start(&[], |_| {}).await;
    for path in ["/console", "/console/"] {
        let r = s.get(&format!("{}{path}", s.base)).await;
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "img-src 'self' blob: data:",
        ] {
            assert!(csp.contains(part), "{path}: CSP {csp} lacks {part}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let html = r.text().await.unwrap();
        assert!(html.contains(r#"<script type="module" src="/console/console.js">"#), "{html}");
        // No inline script and nothing from another origin.
        assert!(!html.contains("<script>") && !html.contains("src=\"http") && !html.contains("href=\"http"));
        assert_no_secret(path, &html);
    }
    for name in ASSETS {
        let r = s.get(&format!("{}/console/{name}", s.base)).await;
        assert_eq!(r.status(), 200, "{name}");
        assert!(r.headers().contains_key("content-security-policy"), "{name}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("https://cdn") && !body.contains("//unpkg") && !body.contains("jsdelivr"), "{name}");
        assert_no_secret(name, &body);
    }
    for missing in ["/console/nope.js", "/console/..%2FCargo.toml", "/console/a/b.js"] {
        let r = s.get(&format!("{}{missing}", s.base)).await;
        assert_eq!(r.status(), 404, "{missing}");
    }
}

#[tokio::test]
async fn console_is_off_on_a_non_loopback_bind_unless_enabled() {
    for (setting, want) in [("auto", 404), ("true", 200), ("false", 404)] {
        let s = start(&[], |r| {
            r.bind = "0.0.0.0:0".into();
            r.public_url = Some("http://127.0.0.1:9".into());
            r.console = setting.into();
        })
        .await;
        let port = s.base.rsplit(':').next().unwrap();
        let r = s.get(&format!("http://127.0.0.1:{port}/console")).await;
        assert_eq!(r.status().as_u16(), want, "IMAGO_CONSOLE={setting} on 0.0.0.0");
        if want == 404 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], "not-found");
            let r = s.get(&format!("http://127.0.0.1:{port}/console/console.js")).await;
            assert_eq!(r.status(), 404);
        }
    }
    let s = start(&[], |r| r.console = "false".into()).await;
    assert_eq!(s.get(&format!("{}/console", s.base)).await.status(), 404, "IMAGO_CONSOLE=false on loopback");
}

#[tokio::test]
async fn console_is_off_with_an_object_store_unless_enabled() {
    let Some(env) = S3Env::get() else { return };
    for (setting, want) in [("auto", 404), ("true", 200)] {
        let (env, setting2) = (env.clone(), setting.to_string());
        let s = start(&[], move |r| {
            env.apply(r);
            r.console = setting2;
        })
        .await;
        assert_eq!(
            s.get(&format!("{}/console", s.base)).await.status().as_u16(),
            want,
            "S3 store, IMAGO_CONSOLE={setting}"
        );
    }
}

#[tokio::test]
async fn sign_returns_urls_srcset_and_sizes_that_serve_what_was_asked() {
    let s = tenants().await;
    let body = json!({
        "key": "uploads/acme/photo.jpg",
        "options": {"width": 300, "format": "png"},
        "srcset": {"widths": [100, 300, 100]},
        "sizes": {"breakpoints": [{"max_width": 640, "size": "100vw"}], "default": 300},
    });
    let (status, v, text) = sign(&s, Some(ACME), &body.to_string()).await;
    assert_eq!(status, 200, "{text}");
    assert_no_secret("the sign response", &text);
    assert_eq!(v["key"], "uploads/acme/photo.jpg");
    assert_eq!(v["source"], "local:///uploads/acme/photo.jpg");
    let url = v["url"].as_str().unwrap();
    assert!(url.starts_with(&s.base) && url.ends_with(v["path"].as_str().unwrap()), "{v}");
    assert_eq!(v["sizes"], "(max-width: 640px) 100vw, 300px");
    let widths: Vec<u64> = v["candidates"].as_array().unwrap().iter().map(|c| c["width"].as_u64().unwrap()).collect();
    assert_eq!(widths, [100, 300]);
    // The same URLs the Rust SDK builds with the server's key.
    let expected = imago_signing::UrlBuilder::from_options(
        imago_signing::Options::from_json(&json!({"width": 300, "format": "png"})).unwrap(),
    )
    .url(&s.signer, &s.base, "local:///uploads/acme/photo.jpg")
    .unwrap();
    assert_eq!(url, expected);
    let r = s.get(url).await;
    assert_eq!(r.status(), 200);
    assert_eq!(common::decode(&r.bytes().await.unwrap()).width(), 300);
    for c in v["candidates"].as_array().unwrap() {
        let r = s.get(c["url"].as_str().unwrap()).await;
        assert_eq!(r.status(), 200, "{c}");
        assert_eq!(common::decode(&r.bytes().await.unwrap()).width() as u64, c["width"].as_u64().unwrap(), "{c}");
        assert!(v["srcset"].as_str().unwrap().contains(&format!("{} {}w", c["url"].as_str().unwrap(), c["width"])));
    }
    // Without `srcset.widths`: the server's width ladder, capped at max_width.
    let (status, v, _) = sign(&s, Some(ACME), r#"{"key":"uploads/acme/photo.jpg","srcset":{"max_width":700}}"#).await;
    assert_eq!(status, 200);
    let widths: Vec<u64> = v["candidates"].as_array().unwrap().iter().map(|c| c["width"].as_u64().unwrap()).collect();
    let ladder: Vec<u64> = s.state.cfg.width_ladder.iter().map(|w| *w as u64).filter(|w| *w <= 700).collect();
    assert_eq!(widths, ladder);
    assert_eq!(v["sizes"], "100vw");
}

#[tokio::test]
async fn sign_is_confined_to_the_keys_tenant_and_scope() {
    let s = tenants().await;
    let mine = r#"{"key":"uploads/acme/photo.jpg","options":{"width":100}}"#;
    let cases: &[(Option<&str>, &str, u16, &str)] = &[
        (None, mine, 401, "unauthorized"),
        (Some("not-a-key-0123456789abcdef"), mine, 401, "unauthorized"),
        (Some(BETA), mine, 403, "other-tenant"),
        (Some(BETA), r#"{"key":"uploads/acme/../beta/x.jpg"}"#, 400, "invalid-request"),
        (Some(BETA), r#"{"key":"samples/photo.jpg"}"#, 403, "key-not-allowed"),
        (Some(ACME_UPLOAD_ONLY), mine, 403, "scope-missing"),
        (Some(ACME), r#"{"key":"uploads/acme/notes.txt"}"#, 403, "key-not-allowed"),
    ];
    for (key, body, status, code) in cases {
        let (got, v, text) = sign(&s, *key, body).await;
        assert_eq!((got, v["code"].as_str().unwrap_or("")), (*status, *code), "{key:?} {body}: {text}");
        assert_no_secret("an error", &text);
    }
    let (got, _, text) = sign(&s, Some(ACME), mine).await;
    assert_eq!(got, 200, "{text}");
}

#[tokio::test]
async fn sign_refuses_bad_and_oversized_requests() {
    let s = tenants().await;
    let many: Vec<u32> = (1..=33).collect();
    let big = format!(r#"{{"key":"uploads/acme/photo.jpg","options":{{"cachebuster":"{}"}}}}"#, "x".repeat(17 * 1024));
    let cases = [
        "not json".to_string(),
        r#"{"key":"uploads/acme/photo.jpg","extra":1}"#.to_string(),
        r#"{"key":"uploads/acme/photo.jpg","options":{"width":-1}}"#.to_string(),
        r#"{"key":"uploads/acme/photo.jpg","options":{"nope":1}}"#.to_string(),
        json!({"key": "uploads/acme/photo.jpg", "srcset": {"widths": many}}).to_string(),
        r#"{"key":"uploads/acme/photo.jpg","sizes":{"breakpoints":[{"max_width":0,"size":"1px"}]}}"#.to_string(),
        big,
    ];
    for body in &cases {
        let (got, v, text) = sign(&s, Some(ACME), body).await;
        assert_eq!(
            (got, v["code"].as_str()),
            (400, Some("invalid-request")),
            "{}: {text}",
            &body[..body.len().min(80)]
        );
    }
    let r = s.get(&format!("{}/v1/sign", s.base)).await;
    assert_eq!(r.status(), 405);
}

/// The console's uploads are same-origin (`Origin` = `IMAGO_PUBLIC_URL`'s): allowed while the
/// console is served even when `IMAGO_CORS_ORIGINS` lists only other sites; other origins stay
/// refused, and with the console off its origin is just another origin.
#[tokio::test]
async fn console_uploads_are_same_origin_whatever_cors_origins_lists() {
    let photo = std::fs::read(fixture_path("orientation/Landscape_1.jpg")).unwrap();
    for (console, want) in [("auto", 201), ("false", 403)] {
        let s = start(&[], |r| {
            r.cors_origins = List::from_strs(&["https://app.example"]);
            r.console = console.into();
        })
        .await;
        for (origin, expect) in [(s.base.clone(), want), ("https://evil.example".to_string(), 403)] {
            let (status, t) = ticket(&s, json!({"content_type": "image/jpeg"})).await;
            assert_eq!(status, 201, "{t}");
            let mut r = s.client.put(t["url"].as_str().unwrap()).header("origin", &origin);
            for (k, v) in t["headers"].as_object().unwrap() {
                r = r.header(k.as_str(), v.as_str().unwrap());
            }
            let resp = r.body(photo.clone()).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), expect, "console {console}, Origin {origin}");
            if expect == 201 {
                assert_eq!(resp.headers()["access-control-allow-origin"], origin.as_str());
            }
        }
    }
}
