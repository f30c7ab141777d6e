//! Graceful shutdown: SIGTERM mid-load stops accepting, finishes in-flight requests (no
//! connection reset for admitted requests) and exits 0.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(fixture_path("phone12mp.jpg"), root.join("phone.jpg")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_imago"))
        .arg("serve")
        .env("IMAGO_BIND", format!("127.0.0.1:{port}"))
        .env("IMAGO_KEY", KEY)
        .env("IMAGO_SALT", SALT)
        .env("IMAGO_LOCAL_ROOT", &root)
        .env("IMAGO_WORKERS", "2")
        .env("IMAGO_CACHE_SIZE_MB", "0")
        .env("IMAGO_AUTO_QUALITY", "false")
        .env("IMAGO_ANALYTICS_DIR", dir.path().join("analytics"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "server did not start");
    let signer = imago_signing::Signer::new(imago_signing::KeyPair::from_hex(KEY, SALT).unwrap());
    let mut tasks = Vec::new();
    for i in 0..6 {
        let path = imago_signing::UrlBuilder::new()
            .width(900 + i)
            .extension("webp")
            .sign(&signer, "local:///phone.jpg")
            .unwrap();
        let (c, u) = (client.clone(), format!("{base}{path}"));
        tasks.push(tokio::spawn(async move {
            let r = c.get(u).send().await.map_err(|e| e.to_string())?;
            let status = r.status().as_u16();
            let body = r.bytes().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((status, body.len()))
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    for t in tasks {
        let (status, len) = t.await.unwrap().expect("an admitted request was reset");
        assert!(status == 200 || status == 503, "status {status}");
        if status == 200 {
            assert!(len > 1000);
        }
    }
    let mut exited = None;
    for _ in 0..300 {
        if let Some(st) = child.try_wait().unwrap() {
            exited = Some(st);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let st = exited.expect("imago did not exit after SIGTERM");
    assert!(st.success(), "exit status {st}");
    // Nothing listens any more.
    assert!(client.get(format!("{base}/healthz")).send().await.is_err());
}
