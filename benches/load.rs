//! Server load benchmark: imago's server CPU time per image against libvips doing the same work
//! in-process (thumbnail with shrink-on-load, colour-managed to sRGB, the same saver options) and
//! against sharp (its npm package, ipx's engine: `node benches/sharp/bench.js`), all measured in
//! the same run so the ratios hold on noisy machines. Then what each choice (colour path,
//! progressive, optimised Huffman tables, kernel) costs in CPU and bytes, in-process.
//!
//! Run with `scripts/bench-load.sh` (installs sharp into benches/sharp/ with `npm ci`; without
//! it the sharp column says so). Environment: `IMAGO_BENCH_N` requests per format (default 40),
//! `IMAGO_BENCH_CONCURRENCY` (default 2).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imago::options::Format;
use imago::transform::{reference_variant, ColourPath, ResizeKernel, Variant};
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

/// Peak resident set of a process (VmHWM) in MiB.
fn peak_rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
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

/// sharp's CPU per image and output size for the same job, from benches/sharp/bench.js.
struct Sharp {
    cpu_ms: f64,
    bytes: usize,
    version: String,
}

fn sharp(root: &Path, photo: &Path, n: usize, format: &str) -> Result<Sharp, String> {
    let dir = root.join("benches/sharp");
    if !dir.join("node_modules/sharp").exists() {
        return Err("not installed (scripts/bench-load.sh runs npm ci in benches/sharp)".into());
    }
    let out = Command::new("node")
        .arg(dir.join("bench.js"))
        .arg(photo)
        .arg(n.to_string())
        .arg(format)
        .args(["800", "80"])
        .output()
        .map_err(|e| format!("node: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(Sharp {
        cpu_ms: v["cpu_ms"].as_f64().unwrap_or(f64::NAN),
        bytes: v["bytes"].as_u64().unwrap_or(0) as usize,
        version: format!(
            "sharp {} (libvips {})",
            v["sharp"].as_str().unwrap_or("?"),
            v["libvips"].as_str().unwrap_or("?")
        ),
    })
}

/// In-process CPU per image (ms) and output bytes of one variant.
fn in_process(photo: &[u8], format: Format, v: Variant, n: usize) -> (f64, usize) {
    let bytes = reference_variant(photo, 800, format, 80, v).unwrap().len();
    let me = std::process::id().to_string();
    let c0 = cpu_seconds(&me);
    for _ in 0..n {
        std::hint::black_box(reference_variant(photo, 800, format, 80, v).unwrap());
    }
    ((cpu_seconds(&me) - c0) / n as f64 * 1000.0, bytes)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let n: usize = std::env::var("IMAGO_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let conc: usize = std::env::var("IMAGO_BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let photo_path = root.join("tests/fixtures/phone12mp.jpg");
    let photo = std::fs::read(&photo_path).expect("tests/fixtures/phone12mp.jpg");
    // Cargo builds the server binary for this bench (release settings) wherever its target
    // directory is, CARGO_TARGET_DIR included.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_imago"));
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
    println!("CPU per image: imago = server process (HTTP included); libvips = imago's steps in-process, one thread; sharp = node benches/sharp/bench.js, one thread");
    println!(
        "{:<5} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7}",
        "fmt",
        "imago ms",
        "vips ms",
        "sharp ms",
        "/vips",
        "/sharp",
        "imago B",
        "sharp B",
        "bytes",
        "req/s",
        "p50 ms",
        "p99 ms"
    );
    let mut sharp_version = None;
    for (format, ext, sharp_fmt) in [(Format::Jpeg, "jpg", "jpeg"), (Format::Webp, "webp", "webp")] {
        // Warm-up (page cache, allocator, connection pool); its size is imago's output size.
        let warm = UrlBuilder::new().width(800).quality(80).extension(ext).sign(&signer, "local:///phone.jpg").unwrap();
        let imago_bytes = rt
            .block_on(async { client.get(format!("{base}{warm}")).send().await.unwrap().bytes().await.unwrap() })
            .len();
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
        let server_ms = (cpu_seconds(&pid) - cpu0) / n as f64 * 1000.0;
        let (ref_ms, _) = in_process(&photo, format, Variant::IMAGO, n);
        let sh = sharp(&root, &photo_path, n, sharp_fmt);
        let (sharp_ms, sharp_bytes) = match &sh {
            Ok(s) => (s.cpu_ms, s.bytes),
            Err(_) => (f64::NAN, 0),
        };
        if let Ok(s) = &sh {
            sharp_version = Some(s.version.clone());
        }
        let mut l = lat;
        let (p50, p99) = (percentile(&mut l, 0.5), percentile(&mut l, 0.99));
        println!(
            "{:<5} {:>9.1} {:>9.1} {:>9.1} {:>8.3} {:>8.3} {:>9} {:>9} {:>+6.1}% {:>7.1} {:>7.1} {:>7.1}",
            ext,
            server_ms,
            ref_ms,
            sharp_ms,
            server_ms / ref_ms,
            server_ms / sharp_ms,
            imago_bytes,
            sharp_bytes,
            (imago_bytes as f64 / sharp_bytes as f64 - 1.0) * 100.0,
            n as f64 / wall,
            p50,
            p99
        );
        if let Err(e) = sh {
            println!("      sharp: {e}");
        }
    }
    println!("imago server peak RSS (VmHWM): {:.0} MiB", peak_rss_mib(&pid));
    if let Some(v) = sharp_version {
        println!("sharp reference: {v}, quality 80, its default encoder settings");
    }
    choices(&photo, n);
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

/// What each choice costs, in-process on one thread: the colour path, progressive encoding,
/// optimised Huffman tables and the reduction kernel, each against imago's default (the row
/// above it without indent).
fn choices(photo: &[u8], n: usize) {
    let m = n.max(4);
    let base = Variant::IMAGO;
    let with = |path| Variant { path, ..base };
    let rows: [(&str, Format, Variant); 12] = [
        ("imago: shrink-on-load, lanczos3, moxcms icc (cached), baseline, optimised", Format::Jpeg, base),
        ("  + progressive", Format::Jpeg, Variant { progressive: true, ..base }),
        ("  - optimised Huffman tables", Format::Jpeg, Variant { optimize_coding: false, ..base }),
        (
            "  icc by libvips (lcms via Lab; pipeline v2)",
            Format::Jpeg,
            with(ColourPath::ShrinkResizeIcc(ResizeKernel::Lanczos3)),
        ),
        ("  kernel cubic, icc by libvips", Format::Jpeg, with(ColourPath::ShrinkResizeIcc(ResizeKernel::Cubic))),
        ("  kernel linear, icc by libvips", Format::Jpeg, with(ColourPath::ShrinkResizeIcc(ResizeKernel::Linear))),
        ("  thumbnail + export_profile", Format::Jpeg, with(ColourPath::ThumbnailExport)),
        ("  thumbnail, then 8-bit icc", Format::Jpeg, with(ColourPath::ThumbnailThenIcc)),
        ("  thumbnail, no colour management", Format::Jpeg, with(ColourPath::ThumbnailNone)),
        (
            "  pipeline v1: thumbnail + export_profile + progressive",
            Format::Jpeg,
            Variant { path: ColourPath::ThumbnailExport, progressive: true, ..base },
        ),
        ("imago: shrink-on-load, lanczos3, moxcms icc (cached)", Format::Webp, base),
        ("  pipeline v1: thumbnail + export_profile", Format::Webp, with(ColourPath::ThumbnailExport)),
    ];
    println!("choices, in-process, one thread, {m} images each (w:800 q80):");
    println!("{:<4} {:<64} {:>8} {:>8} {:>8} {:>8}", "fmt", "variant", "cpu ms", "vs def", "bytes", "vs def");
    let mut def = (0.0, 0);
    for (label, format, v) in rows {
        let (ms, bytes) = in_process(photo, format, v, m);
        if !label.starts_with(' ') {
            def = (ms, bytes);
        }
        println!(
            "{:<4} {:<64} {:>8.1} {:>+7.1}% {:>8} {:>+7.1}%",
            if format == Format::Jpeg { "jpg" } else { "webp" },
            label,
            ms,
            (ms / def.0 - 1.0) * 100.0,
            bytes,
            (bytes as f64 / def.1 as f64 - 1.0) * 100.0
        );
    }
}
