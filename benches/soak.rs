//! Soak benchmark: a few thousand mixed requests (sizes, formats, crops, sources) against the
//! release binary with small caches (so most requests transform), sampling the server's RSS. Prints
//! the RSS series and the trend (MB per 1,000 requests, least squares over the second half).
//! `IMAGO_SOAK_REQUESTS` (default 3000).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use imago_signing::{KeyPair, Signer, UrlBuilder};

fn rss_mb(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let n: usize = std::env::var("IMAGO_SOAK_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let bin = root.join("target/release/imago");
    assert!(bin.exists(), "build the release binary first: cargo build --release -p imago");
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let sources = ["phone12mp.jpg", "nasa_large.jpg", "rose_alpha.png", "earth_anim.gif", "p3.jpg", "cmyk.jpg"];
    for s in sources {
        std::fs::copy(root.join("tests/fixtures").join(s), images.join(s)).unwrap();
    }
    let (key, salt) = ("ab".repeat(32), "cd".repeat(32));
    let port = 19000 + (std::process::id() % 1000) as u16;
    let child = Command::new(&bin)
        .arg("serve")
        .env("IMAGO_BIND", format!("127.0.0.1:{port}"))
        .env("IMAGO_KEY", &key)
        .env("IMAGO_SALT", &salt)
        .env("IMAGO_LOCAL_ROOT", &images)
        .env("IMAGO_ANALYTICS_DIR", dir.path().join("analytics"))
        .env("IMAGO_CACHE_SIZE_MB", "16")
        .env("IMAGO_SOURCE_CACHE_MB", "16")
        .env("IMAGO_WORKERS", "2")
        .env("IMAGO_AUTO_QUALITY", "false")
        .env("MALLOC_ARENA_MAX", std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "2".into()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _s = Server(child);
    let signer = Signer::new(KeyPair::from_hex(&key, &salt).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    rt.block_on(async {
        for _ in 0..100 {
            if client.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let formats = ["jpg", "webp", "png", "avif"];
    let mut samples: Vec<(usize, f64)> = vec![(0, rss_mb(pid))];
    let mut errors = 0;
    let t0 = std::time::Instant::now();
    rt.block_on(async {
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
        let chunk = 250;
        for start in (0..n).step_by(chunk) {
            let mut tasks = Vec::new();
            for i in start..(start + chunk).min(n) {
                let src = sources[i % sources.len()];
                let mut b = UrlBuilder::new().width(64 + (i as u32 * 37) % 1200);
                if i % 3 == 0 {
                    b = b.resize("fill", 64 + (i as u32 * 13) % 600, 64 + (i as u32 * 7) % 600);
                }
                if i % 5 == 0 {
                    b = b.gravity("sm");
                }
                let ext = formats[(i / sources.len()) % formats.len()];
                let path = b.extension(ext).sign(&signer, &format!("local:///{src}")).unwrap();
                let (c, u, sem) = (client.clone(), format!("{base}{path}"), sem.clone());
                tasks.push(tokio::spawn(async move {
                    let _p = sem.acquire().await.unwrap();
                    match c.get(u).send().await {
                        Ok(r) => {
                            let ok = r.status().is_success();
                            let _ = r.bytes().await;
                            ok
                        }
                        Err(_) => false,
                    }
                }));
            }
            for t in tasks {
                if !t.await.unwrap() {
                    errors += 1;
                }
            }
            samples.push(((start + chunk).min(n), rss_mb(pid)));
        }
    });
    println!("soak: {n} mixed requests in {:.1} s, {errors} non-2xx", t0.elapsed().as_secs_f64());
    println!("requests  RSS MB");
    for (i, r) in &samples {
        println!("{i:>8}  {r:>6.1}");
    }
    let half: Vec<&(usize, f64)> = samples.iter().skip(samples.len() / 2).collect();
    let k = half.len() as f64;
    let mx = half.iter().map(|p| p.0 as f64).sum::<f64>() / k;
    let my = half.iter().map(|p| p.1).sum::<f64>() / k;
    let slope = half.iter().map(|p| (p.0 as f64 - mx) * (p.1 - my)).sum::<f64>()
        / half.iter().map(|p| (p.0 as f64 - mx).powi(2)).sum::<f64>().max(1e-9);
    println!("RSS trend over the second half: {:+.2} MB per 1,000 requests (flat is within +-2)", slope * 1000.0);
}
