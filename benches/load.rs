//! Server load benchmark: imago's server CPU time per image as a ratio to libvips doing the same
//! work in-process (thumbnail with shrink-on-load and colour management, the same saver
//! options), measured in the same run so the ratio holds on noisy machines.
//!
//! Run with `make bench-load` (builds the release binary first). Environment:
//! `IMAGO_BENCH_N` requests per format (default 40), `IMAGO_BENCH_CONCURRENCY` (default 2).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imago::options::Format;
use imago_signing::{KeyPair, Signer, UrlBuilder};

/// utime + stime of a process in seconds, from /proc.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is index 0, utime is 11, stime 12.
    let hz = 100.0;
    (ticks(11) + ticks(12)) / hz
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let n: usize = std::env::var("IMAGO_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let conc: usize = std::env::var("IMAGO_BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let photo = std::fs::read(root.join("tests/fixtures/phone12mp.jpg")).expect("tests/fixtures/phone12mp.jpg");
    let bin = root.join("target/release/imago");
    assert!(bin.exists(), "build the release binary first: cargo build --release -p imago");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    std::fs::write(dir.path().join("images/phone.jpg"), &photo).unwrap();
    let (key, salt) = ("ab".repeat(32), "cd".repeat(32));
    let port = 18000 + (std::process::id() % 1000) as u16;
    let child = Command::new(&bin)
        .arg("serve")
        .env("IMAGO_BIND", format!("127.0.0.1:{port}"))
        .env("IMAGO_KEY", &key)
        .env("IMAGO_SALT", &salt)
        .env("IMAGO_LOCAL_ROOT", dir.path().join("images"))
        .env("IMAGO_CACHE_SIZE_MB", "0")
        .env("IMAGO_WORKERS", conc.to_string())
        .env("IMAGO_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start imago");
    let pid = child.id().to_string();
    let _server = Server(child);
    let signer = Signer::new(KeyPair::from_hex(&key, &salt).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    rt.block_on(async {
        for _ in 0..100 {
            if client.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    imago::transform::init(1).unwrap();
    println!("imago load benchmark: 4080x3072 Display-P3 JPEG (tests/fixtures/phone12mp.jpg) -> w:800 q80, {n} requests per format, concurrency {conc}");
    println!(
        "{:<6} {:>14} {:>16} {:>8} {:>10} {:>10} {:>10}",
        "format", "imago cpu/img", "libvips cpu/img", "ratio", "req/s", "p50 ms", "p99 ms"
    );
    for (format, ext) in [(Format::Jpeg, "jpg"), (Format::Webp, "webp")] {
        // Warm-up (page cache, allocator, connection pool).
        let warm = UrlBuilder::new().width(800).quality(80).extension(ext).sign(&signer, "local:///phone.jpg").unwrap();
        rt.block_on(async { client.get(format!("{base}{warm}")).send().await.unwrap().bytes().await.unwrap() });
        let cpu0 = cpu_seconds(&pid);
        let t0 = Instant::now();
        let lat = rt.block_on(async {
            let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(conc));
            let mut tasks = Vec::new();
            for i in 0..n {
                let url = UrlBuilder::new()
                    .width(800)
                    .quality(80)
                    .option("cb", [format!("{i}")])
                    .unwrap()
                    .extension(ext)
                    .sign(&signer, "local:///phone.jpg")
                    .unwrap();
                let (c, b, sem) = (client.clone(), base.clone(), sem.clone());
                tasks.push(tokio::spawn(async move {
                    let _p = sem.acquire().await.unwrap();
                    let t = Instant::now();
                    let r = c.get(format!("{b}{url}")).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                    t.elapsed().as_secs_f64() * 1000.0
                }));
            }
            let mut v = Vec::new();
            for t in tasks {
                v.push(t.await.unwrap());
            }
            v
        });
        let wall = t0.elapsed().as_secs_f64();
        let server_cpu = (cpu_seconds(&pid) - cpu0) / n as f64;
        // The same work in-process, single thread.
        let _ = imago::transform::reference_thumbnail(&photo, 800, format, 80).unwrap();
        let me = std::process::id().to_string();
        let c0 = cpu_seconds(&me);
        for _ in 0..n {
            std::hint::black_box(imago::transform::reference_thumbnail(&photo, 800, format, 80).unwrap());
        }
        let ref_cpu = (cpu_seconds(&me) - c0) / n as f64;
        let mut l = lat;
        let (p50, p99) = (percentile(&mut l, 0.5), percentile(&mut l, 0.99));
        println!(
            "{:<6} {:>11.1} ms {:>13.1} ms {:>8.3} {:>10.1} {:>10.1} {:>10.1}",
            ext,
            server_cpu * 1000.0,
            ref_cpu * 1000.0,
            server_cpu / ref_cpu,
            n as f64 / wall,
            p50,
            p99
        );
    }
    // CPU of the other encoders imago negotiates (no in-process reference: informational).
    for (label, opts, ext) in
        [("avif", "q:60", "avif"), ("webp-auto", "q:auto", "webp"), ("avif-auto", "q:auto", "avif")]
    {
        let cpu0 = cpu_seconds(&pid);
        let m = (n / 2).max(4);
        rt.block_on(async {
            for i in 0..m {
                let mut b = UrlBuilder::new().width(800);
                for o in opts.split('/') {
                    let mut p = o.split(':');
                    let name = p.next().unwrap();
                    b = b.option(name, p).unwrap();
                }
                let url = b
                    .option("cb", [format!("x{i}")])
                    .unwrap()
                    .extension(ext)
                    .sign(&signer, "local:///phone.jpg")
                    .unwrap();
                let r = client.get(format!("{base}{url}")).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            }
        });
        println!(
            "{:<10} {:>8.1} ms server CPU per image (w:800, {opts})",
            label,
            (cpu_seconds(&pid) - cpu0) / m as f64 * 1000.0
        );
    }
}
