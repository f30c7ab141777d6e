//! The HTTP edge (issue 15, item 11 and weak spots): every error, including those the HTTP
//! framework raises before a handler runs, is the JSON `{"code","message"}`; `/metrics` is not on
//! the public port by default; `/readyz` probes the object store at most once per TTL; a request
//! refused for overload is refused before it downloads its source.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends raw bytes (reqwest would normalise the path) and reads the answer until the server
/// closes: (status, headers as lower-case text, body).
async fn raw(base: &str, request: &[u8]) -> (u16, String, Vec<u8>) {
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), sock.read_to_end(&mut out)).await;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no head in {out:?}"));
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap();
    (status, head, out[split + 4..].to_vec())
}

/// The answer is a JSON error with `status` and `code`, not cached.
fn assert_json_error((status, head, body): &(u16, String, Vec<u8>), want: u16, code: &str, what: &str) {
    assert_eq!(*status, want, "{what}: {head}");
    assert!(head.contains("content-type: application/json"), "{what}: no JSON content type: {head}");
    assert!(head.contains("cache-control: no-store"), "{what}: {head}");
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {:?}", String::from_utf8_lossy(body)));
    assert_eq!(v["code"], code, "{what}: {v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {v}");
    assert!(imago::error::CODES.iter().any(|(c, s)| *c == code && s.contains(&want)), "{code} not in CODES");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_the_framework_raises_are_json_too() {
    let s = start(&[], |c| c.api_keys = imago::config::List::from_strs(&["edge-test-key-0123456789"])).await;
    let close = "Host: x\r\nConnection: close\r\n\r\n";
    // A path that is not UTF-8 (the request line cannot be parsed).
    let mut non_utf8 = b"GET /sig/w:10/plain/local:///\xff\xfe.jpg HTTP/1.1\r\n".to_vec();
    non_utf8.extend_from_slice(close.as_bytes());
    assert_json_error(&raw(&s.base, &non_utf8).await, 400, "malformed-request", "non-UTF-8 path");
    // A control character in the path, a space, an unknown HTTP version.
    for line in ["GET /healthz\x01 HTTP/1.1\r\n", "GET /a b HTTP/1.1\r\n", "GET /x HTTP/9.1\r\n"] {
        let r = raw(&s.base, format!("{line}{close}").as_bytes()).await;
        assert_json_error(&r, 400, "malformed-request", line.trim());
    }
    // A header section over actix-http's limit.
    let big = format!("GET /x HTTP/1.1\r\nX-Big: {}\r\n{close}", "a".repeat(300_000));
    assert_json_error(&raw(&s.base, big.as_bytes()).await, 431, "headers-too-large", "huge header");
    // A query the handler cannot read (behind a valid key, so the key check passes): the analytics
    // routes parse their query themselves, so a repeated field is their `invalid-parameter`.
    let q = format!(
        "GET /v1/analytics?from=a&from=b HTTP/1.1\r\nAuthorization: Bearer edge-test-key-0123456789\r\n{close}"
    );
    assert_json_error(&raw(&s.base, q.as_bytes()).await, 400, "invalid-parameter", "duplicate query field");
    // Unknown route and method (already JSON; kept).
    assert_json_error(
        &raw(&s.base, format!("DELETE /healthz HTTP/1.1\r\n{close}").as_bytes()).await,
        405,
        "method-not-allowed",
        "405",
    );
    // A request head that never completes: 408, as JSON.
    let t = std::time::Instant::now();
    let r = raw(&s.base, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    assert_json_error(&r, 408, "request-timeout", "slow head");
    assert!(t.elapsed() < Duration::from_secs(12));
    // Keep-alive: a good request, then a bad one on the same connection; the first answer is
    // untouched, the second is JSON.
    let mut two = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    two.extend_from_slice(b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, head, body) = raw(&s.base, &two).await;
    assert_eq!(status, 200, "{head}");
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(text.starts_with("ok"), "{text}");
    assert!(text.contains("400 Bad Request") && text.contains("\"code\":\"malformed-request\""), "{text}");
    // The server still answers.
    assert_eq!(s.get(&format!("{}/healthz", s.base)).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_not_on_the_public_port_by_default() {
    // The harness opts in (its tests scrape the public port); this test takes the default.
    let s = start(&[], |c| c.public_metrics = imago::config::RawConfig::default().public_metrics).await;
    let r = raw(&s.base, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_json_error(&r, 404, "not-found", "/metrics on the public port");
}

/// A loopback listener that answers every request with `status` and counts them.
async fn counting_listener(status: &'static str, delay: Duration, body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = l.accept().await else { return };
            let (c, body) = (c.clone(), body.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // One request per connection: read its head.
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                c.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                if !buf.starts_with(b"HEAD ") {
                    let _ = sock.write_all(&body).await;
                }
            });
        }
    });
    (format!("127.0.0.1:{}", addr.port()), count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_probes_the_object_store_at_most_once_per_ttl() {
    let (store, probes) = counting_listener("200 OK", Duration::ZERO, Vec::new()).await;
    let s = start(&[], |c| {
        c.s3_endpoint = Some(format!("http://{store}"));
        c.s3_region = "garage".into();
        c.s3_bucket = Some("b".into());
        c.s3_access_key_id = Some("ak".into());
        c.s3_secret_access_key = Some("sk".into());
        c.analytics = false;
    })
    .await;
    let url = format!("{}/readyz", s.base);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, u) = (s.client.clone(), url.clone());
        tasks.push(tokio::spawn(async move { c.get(&u).send().await.unwrap().status().as_u16() }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    for _ in 0..20 {
        assert_eq!(s.get(&url).await.status(), 200);
    }
    let n = probes.load(Ordering::SeqCst);
    println!("readyz: 40 calls, {n} probe(s) of the object store");
    assert_eq!(n, 1, "40 /readyz calls within the TTL probed the object store {n} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_refused_for_overload_do_not_fetch_their_source() {
    let photo = fixture("orientation/Landscape_1.jpg");
    // Each fetch takes a second, so the first requests are still downloading when the rest come.
    let (origin, fetches) = counting_listener("200 OK", Duration::from_millis(1000), photo).await;
    let s = start(&[], |c| {
        c.allowed_hosts = imago::config::List::from_strs(&["127.0.0.1"]);
        c.allow_private_networks = true;
        c.workers = 1;
        c.queue_size = 1;
        c.cache_size_mb = 0;
        c.source_cache_mb = 0;
        c.auto_quality = false;
    })
    .await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let url = s.url_b64("w:50", &format!("http://{origin}/img?n={i}"));
        let c = s.client.clone();
        tasks.push(tokio::spawn(async move {
            let r = c.get(&url).send().await.unwrap();
            let status = r.status().as_u16();
            let code = r.json::<serde_json::Value>().await.ok().map(|v| v["code"].to_string());
            (status, code)
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, _) => ok += 1,
            (429, Some(code)) if code == "\"busy\"" => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let n = fetches.load(Ordering::SeqCst);
    println!("overload: 8 requests, {ok} served, {refused} refused, {n} fetches at the origin");
    assert!(refused > 0, "nothing was refused");
    assert_eq!(n, ok, "{refused} refused requests still downloaded their source ({n} fetches for {ok} served)");
}
