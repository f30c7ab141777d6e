//! Issue 15, item 1: the environment's proxy variables must not carry HTTP sources past the SSRF
//! guard (a proxy resolves and connects itself, so the guarded resolver is never asked). Its own
//! test binary: it sets `HTTP_PROXY` & co. for the whole process.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A "proxy" on loopback that answers every request with a JPEG and counts what it received.
async fn proxy() -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let photo = fixture("orientation/Landscape_1.jpg");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = l.accept().await else { return };
            let (s, photo) = (s.clone(), photo.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if sock.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                s.fetch_add(1, Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    photo.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&photo).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_variables_do_not_bypass_the_ssrf_guard() {
    let (proxy_url, seen) = proxy().await;
    for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        std::env::set_var(var, &proxy_url);
    }
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    let mut s = start(&[], |c| {
        c.allowed_hosts = imago::config::List::from_strs(&["localhost", "metadata.google.internal"]);
    })
    .await;
    // The test's own client must not use the proxy either.
    s.client = reqwest::Client::builder().no_proxy().build().unwrap();
    for target in [
        "http://localhost:8080/admin/secret.jpg",
        "http://metadata.google.internal/computeMetadata/v1/x.jpg",
        "https://localhost/secret.jpg",
    ] {
        let r = s.get(&s.url_b64("w:10", target)).await;
        let status = r.status().as_u16();
        // localhost is refused by the guard (403); metadata.google.internal does not resolve
        // here (502) or resolves to a link-local address (403). Never 200 through the proxy.
        assert!(status == 403 || status == 502, "{target}: {status} (went through the proxy?)");
    }
    assert_eq!(seen.load(Ordering::SeqCst), 0, "the environment's proxy received source requests");

    // The explicit setting: sources go through that proxy (which then owns the address policy;
    // the allow-list still applies here).
    let mut p = start(&[], |c| {
        c.allowed_hosts = imago::config::List::from_strs(&["images.example.test"]);
        c.source_proxy = Some(proxy_url.clone());
    })
    .await;
    p.client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = p.get(&p.url_b64("w:10", "http://images.example.test/a.jpg")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_error(p.get(&p.url_b64("w:10", "http://other.example.test/a.jpg")).await, 403, "source-not-allowed").await;
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}
