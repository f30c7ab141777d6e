//! Analytics overhead: throughput of cached-variant requests against the release binary with
//! analytics on vs off, printed as a ratio (target ≥ 0.97).
//!
//! Two `imago serve` processes (same settings but `IMAGO_ANALYTICS`), measured in alternating
//! rounds (on, off, off, on, on, off, …) so machine noise hits both alike. Each "on" round is
//! paired with the adjacent "off" round; the ratio reported is the median of those pairs' ratios
//! (drift over the run cancels within a pair), next to the ratio of the two modes' medians. Analytics
//! flush every second here (`IMAGO_ANALYTICS_FLUSH_SECS=1`), so the writer's gzip and file
//! writes are inside the measurement. Also prints server CPU time per request (from /proc),
//! which is steadier than throughput on a small machine where the load generator competes for
//! the same cores.
//!
//! Then (issue #21) the report over a generated month: 30 days of edge lines and origin events
//! (`IMAGO_BENCH_MONTH_EVENTS_PER_HOUR` edge lines per hour, default 2000, over 5000 images),
//! timed from raw events, while making the hourly rollups (the first report), and from the
//! rollups (the median of 5): the last must answer within a second.
//! `IMAGO_BENCH_REPORT_ONLY=1` runs only that part.
//!
//! Run: `make bench` or `cargo bench -p imago --bench analytics`. Environment:
//! `IMAGO_BENCH_SECS` per round (default 2), `IMAGO_BENCH_ROUNDS` per mode (default 9),
//! `IMAGO_BENCH_CONCURRENCY` connections (default 16).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use imago_signing::{KeyPair, Signer, UrlBuilder};

#[allow(dead_code)]
#[path = "../tests/analytics_support/month.rs"]
mod month;

/// The report of a generated month: from raw events, making the rollups, and from the rollups.
fn month_report() {
    use imago::analytics::{report, rollup, Event, Store};
    let per_hour = std::env::var("IMAGO_BENCH_MONTH_EVENTS_PER_HOUR").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let end: jiff::Timestamp = "2026-03-31T00:00:00Z".parse().unwrap();
    let t = Instant::now();
    let lines = month::generate(dir.path(), end, 30 * 24, per_hour, 5000);
    let bytes = walk_bytes(dir.path());
    println!(
        "month: {lines} events ({per_hour} edge lines/hour over 5000 images), {:.1} MB in 720 hours, generated in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let store = Store::Local { dir: dir.path().to_path_buf() };
    let range = report::Range { from: end.checked_sub(jiff::SignedDuration::from_hours(30 * 24)).unwrap(), to: end };
    let now = end.checked_add(jiff::SignedDuration::from_hours(1)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let all: report::Filter = std::sync::Arc::new(|_: &Event| true);
    let t = Instant::now();
    let raw = rt.block_on(rollup::build_report(&store, range, Some(all), now)).unwrap();
    println!(
        "report from raw events: {:.2} s ({} requests, {} files)",
        t.elapsed().as_secs_f64(),
        raw.requests,
        raw.files
    );
    let t = Instant::now();
    let made = rt.block_on(rollup::build_report(&store, range, None, now)).unwrap();
    println!("first report, making 720 rollups: {:.2} s", t.elapsed().as_secs_f64());
    let rollup_bytes = walk_bytes(&dir.path().join("rollups"));
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r = rt.block_on(rollup::build_report(&store, range, None, now)).unwrap();
        times.push(t.elapsed().as_secs_f64());
        assert_eq!((r.requests, r.rollup_hours), (made.requests, 720));
    }
    let best = times.iter().cloned().fold(f64::MAX, f64::min);
    let med = median(&mut times);
    println!(
        "report from rollups: median {:.3} s, best {best:.3} s ({:.1} MB of rollups; bound 1 s: {})",
        med,
        rollup_bytes as f64 / 1e6,
        if med < 1.0 { "met" } else { "MISSED" }
    );
    assert_eq!(made.requests, raw.requests);
}

fn walk_bytes(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.flatten()
        .map(|e| if e.path().is_dir() { walk_bytes(&e.path()) } else { e.metadata().map(|m| m.len()).unwrap_or(0) })
        .sum()
}

struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime of a process in seconds, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn serve(bin: &PathBuf, photo: &[u8], key: &str, salt: &str, analytics: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    std::fs::write(dir.path().join("images/photo.jpg"), photo).unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .arg("serve")
        .env("IMAGO_BIND", format!("127.0.0.1:{port}"))
        .env("IMAGO_KEY", key)
        .env("IMAGO_SALT", salt)
        .env("IMAGO_LOCAL_ROOT", dir.path().join("images"))
        .env("IMAGO_ANALYTICS_DIR", dir.path().join("analytics"))
        .env("IMAGO_ANALYTICS", if analytics { "true" } else { "false" })
        .env("IMAGO_ANALYTICS_FLUSH_SECS", "1")
        .env("IMAGO_WORKERS", "2")
        .env("IMAGO_LOG_FORMAT", "json")
        .env("IMAGO_DEBUG_HEADERS", "false")
        .env("RUST_LOG", "warn")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start imago");
    Server { child, port, _dir: dir }
}

async fn wait_ready(client: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("imago on port {port} did not start");
}

/// Requests completed in `secs` by `conc` keep-alive connections.
async fn round(client: &reqwest::Client, url: &str, conc: usize, secs: f64) -> u64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (client, url, done, stop) = (client.clone(), url.to_string(), done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).header("accept", "image/webp,image/*").send().await {
                    Ok(r) if r.status().is_success() => {
                        if r.bytes().await.is_ok() {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    other => panic!("request failed: {other:?}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    month_report();
    if std::env::var("IMAGO_BENCH_REPORT_ONLY").is_ok_and(|v| v == "1") {
        return;
    }
    let env_num = |n: &str, d: f64| std::env::var(n).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let secs = env_num("IMAGO_BENCH_SECS", 2.0);
    let rounds = env_num("IMAGO_BENCH_ROUNDS", 9.0) as usize;
    let conc = env_num("IMAGO_BENCH_CONCURRENCY", 16.0) as usize;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_imago"));
    let photo = std::fs::read(root.join("tests/fixtures/gps.jpg")).expect("tests/fixtures/gps.jpg");
    let (key, salt) = ("ab".repeat(32), "cd".repeat(32));
    let signer = Signer::new(KeyPair::from_hex(&key, &salt).unwrap());
    let path = UrlBuilder::new().width(320).sign(&signer, "local:///photo.jpg").unwrap();

    let on = serve(&bin, &photo, &key, &salt, true);
    let off = serve(&bin, &photo, &key, &salt, false);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = reqwest::Client::builder().pool_max_idle_per_host(conc).build().unwrap();
    let (mut tput_on, mut tput_off, mut cpu_on, mut cpu_off) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Rounds 2k and 2k+1 are one "on" and one "off", back to back.
    let mut pairs: Vec<f64> = Vec::new();
    let mut pair_cpu: Vec<f64> = Vec::new();
    rt.block_on(async {
        for s in [&on, &off] {
            wait_ready(&client, s.port).await;
            // Warm the variant cache and the connections.
            round(&client, &format!("http://127.0.0.1:{}{path}", s.port), conc, 0.5).await;
        }
        for i in 0..rounds * 2 {
            // Alternate, starting with each mode half the time.
            let analytics = (i % 2 == 0) == (i / 2 % 2 == 0);
            let s = if analytics { &on } else { &off };
            let url = format!("http://127.0.0.1:{}{path}", s.port);
            let cpu0 = cpu_seconds(s.child.id());
            let n = round(&client, &url, conc, secs).await;
            let cpu = cpu_seconds(s.child.id()) - cpu0;
            let (tput, cpu_per) = (n as f64 / secs, cpu / n.max(1) as f64 * 1e6);
            println!(
                "round {:>2} analytics {:<3}: {:>8.0} req/s, {:>6.1} µs server CPU per request",
                i + 1,
                if analytics { "on" } else { "off" },
                tput,
                cpu_per
            );
            if analytics {
                tput_on.push(tput);
                cpu_on.push(cpu_per);
            } else {
                tput_off.push(tput);
                cpu_off.push(cpu_per);
            }
            if i % 2 == 1 {
                let (on_t, off_t) = (tput_on[tput_on.len() - 1], tput_off[tput_off.len() - 1]);
                pairs.push(on_t / off_t);
                pair_cpu.push(cpu_off[cpu_off.len() - 1] / cpu_on[cpu_on.len() - 1]);
            }
        }
    });
    let files = walk(&on._dir.path().join("analytics"));
    assert!(files > 0, "analytics on wrote no event file");
    let (t_on, t_off) = (median(&mut tput_on), median(&mut tput_off));
    let (c_on, c_off) = (median(&mut cpu_on), median(&mut cpu_off));
    println!("analytics off: {t_off:.0} req/s, {c_off:.1} µs CPU/request (median of {rounds})");
    println!("analytics on:  {t_on:.0} req/s, {c_on:.1} µs CPU/request; {files} event files written");
    println!("ratio of the medians on/off: {:.3}; CPU per request off/on: {:.3}", t_on / t_off, c_off / c_on);
    println!(
        "throughput ratio on/off: {:.3} (median of {} adjacent pairs; target >= 0.97); CPU per request off/on: {:.3}",
        median(&mut pairs),
        pairs.len(),
        median(&mut pair_cpu)
    );
}

fn walk(p: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum()
}
