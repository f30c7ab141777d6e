//! Upload load benchmark against the real server on loopback (prints figures, asserts nothing):
//!
//! 1. ticket issuing: `POST /v1/uploads` over keep-alive HTTP/1.1 connections for a fixed time;
//! 2. embedded-mode ingest: 200 KB JPEGs `PUT` end to end (signature check, magic bytes, temp
//!    file, atomic rename), with fsync on and off.
//!
//! The client is a minimal HTTP/1.1 writer/reader on tokio so that most of the 2 cores go to the
//! server. Environment: `IMAGO_BENCH_SECS` (ticket run length, default 5),
//! `IMAGO_BENCH_CONCURRENCY` (connections, default 32 for tickets, 16 for uploads),
//! `IMAGO_BENCH_UPLOADS` (uploads per fsync mode, default 4000). `make bench` runs it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use imago::config::{List, RawConfig};
use jiff::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const API_KEY: &str = "bench-api-key-0123456789";

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// A 200 KB (±3 %) JPEG made from a fixture photo.
fn photo_200k() -> Vec<u8> {
    let src = image::load_from_memory(
        &std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/orientation/Landscape_1.jpg"))
            .expect("fixture"),
    )
    .expect("decode");
    let (mut lo, mut hi) = (10u8, 100u8);
    let mut best = Vec::new();
    while lo <= hi {
        let q = (lo + hi) / 2;
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q).encode_image(&src).expect("encode");
        let len = out.len();
        best = out;
        if (len as f64 - 204_800.0).abs() < 204_800.0 * 0.03 {
            break;
        }
        if len > 204_800 {
            hi = q - 1;
        } else {
            lo = q + 1;
        }
    }
    best
}

struct Server {
    addr: std::net::SocketAddr,
    state: actix_web::web::Data<imago::app::AppState>,
    handle: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
}

async fn server(fsync: bool) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = RawConfig {
        bind: "127.0.0.1:0".into(),
        key: List::from_strs(&["943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881"]),
        salt: List::from_strs(&["520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5"]),
        local_root: dir.path().join("images"),
        dev_keys_file: dir.path().join("dev-keys.toml"),
        api_keys: List::from_strs(&[API_KEY]),
        upload_rate_per_sec: 0.0,
        upload_fsync: fsync,
        workers: 2,
        ..RawConfig::default()
    };
    let running = imago::http::start(raw.validate(false).expect("config")).expect("server");
    let handle = running.server.handle();
    tokio::spawn(running.server);
    Server { addr: running.addr, state: running.state, handle, _dir: dir }
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> Conn {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).ok();
        Conn { tcp, buf: Vec::with_capacity(16 * 1024) }
    }

    /// Sends a request and reads the whole answer; returns the status.
    async fn request(&mut self, head: &[u8], body: &[u8]) -> u16 {
        self.tcp.write_all(head).await.expect("write head");
        if !body.is_empty() {
            self.tcp.write_all(body).await.expect("write body");
        }
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        let (status, header_end, len) = loop {
            let n = self.tcp.read(&mut chunk).await.expect("read");
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).expect("utf8 head");
                let status: u16 = head[9..12].parse().expect("status");
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
                    })
                    .unwrap_or(0);
                break (status, end + 4, len);
            }
        };
        while self.buf.len() < header_end + len {
            let n = self.tcp.read(&mut chunk).await.expect("read body");
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        status
    }
}

async fn ticket_load(secs: u64, conc: usize) {
    let s = server(true).await;
    let body = br#"{"content_type":"image/jpeg","content_length":204800,"filename":"holiday.jpg"}"#;
    let head = format!(
        "POST /v1/uploads HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        body.len()
    );
    let mut full = head.into_bytes();
    full.extend_from_slice(body);
    let full = Arc::new(full);
    // Warm-up.
    let mut c = Conn::open(s.addr).await;
    for _ in 0..200 {
        assert_eq!(c.request(&full, b"").await, 201);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let full = full.clone();
        let addr = s.addr;
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await;
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let st = c.request(&full, b"").await;
                assert_eq!(st, 201);
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = lat.len();
    println!(
        "ticket issuing over HTTP: {n} tickets in {elapsed:.2} s = {:.0} tickets/s (target >= 20000), concurrency {conc}, p50 {:.2} ms, p99 {:.2} ms",
        n as f64 / elapsed,
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99)
    );
    s.handle.stop(false).await;
}

async fn ingest_load(fsync: bool, uploads: usize, conc: usize, photo: Arc<Vec<u8>>) {
    let s = server(fsync).await;
    let req = imago::upload::TicketRequest {
        content_type: "image/jpeg".into(),
        content_length: Some(photo.len() as u64),
        ..Default::default()
    };
    let now = Timestamp::now();
    let mut heads = Vec::with_capacity(uploads + 50);
    for _ in 0..uploads + 50 {
        let t = s.state.uploads.issue(&req, &now).await.expect("ticket");
        let u = url::Url::parse(&t.url).expect("url");
        heads.push(format!(
            "PUT {}?{} HTTP/1.1\r\nHost: {}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            u.path(),
            u.query().unwrap_or(""),
            s.addr,
            photo.len()
        ));
    }
    // Warm-up: 50 uploads.
    let mut c = Conn::open(s.addr).await;
    for h in heads.drain(..50) {
        assert_eq!(c.request(h.as_bytes(), &photo).await, 201);
    }
    let heads = Arc::new(heads);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (heads, next, photo, addr) = (heads.clone(), next.clone(), photo.clone(), s.addr);
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await;
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(h) = heads.get(i) else { break };
                let t = Instant::now();
                let st = c.request(h.as_bytes(), &photo).await;
                assert_eq!(st, 201);
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = lat.len();
    println!(
        "embedded ingest, fsync {}: {n} x {} B PUT in {elapsed:.2} s = {:.0} uploads/s ({:.0} MB/s; target >= 1400/s), concurrency {conc}, p50 {:.2} ms, p99 {:.2} ms",
        if fsync { "on " } else { "off" },
        photo.len(),
        n as f64 / elapsed,
        n as f64 * photo.len() as f64 / elapsed / 1e6,
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99)
    );
    s.handle.stop(false).await;
}

fn main() {
    let secs = env_num("IMAGO_BENCH_SECS", 5) as u64;
    let uploads = env_num("IMAGO_BENCH_UPLOADS", 4000);
    let conc_env = std::env::var("IMAGO_BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok());
    let photo = Arc::new(photo_200k());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    println!(
        "imago upload benchmark: {} cores, in-process server (2 HTTP workers) and client on loopback",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    rt.block_on(async {
        ticket_load(secs, conc_env.unwrap_or(32)).await;
        for fsync in [true, false] {
            ingest_load(fsync, uploads, conc_env.unwrap_or(16), photo.clone()).await;
        }
    });
}
