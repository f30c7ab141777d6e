//! Helpers for the analytics and observability tests: the Python venv with the independent
//! readers (DuckDB, prometheus_client; `tests/report/prepare.sh`), headless Chromium, metrics.
#![allow(dead_code)]

pub mod month;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const API_KEY: &str = "analytics-api-key-0123456789";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// A missing tool skips the test with a message, except under `CI=true`, where it fails.
pub fn missing(what: &str) -> Option<()> {
    let msg = format!("{what}: run `tests/report/prepare.sh` and `scripts/deps.sh test` (or `make test`)");
    if ci() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// The venv's Python with DuckDB and prometheus_client, or None (skip) when it is absent.
pub fn python() -> Option<PathBuf> {
    let p = std::env::var_os("IMAGO_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools/analytics-venv/bin/python"));
    if p.exists() {
        Some(p)
    } else {
        missing(&format!("{} is absent", p.display())).map(|_| p)
    }
}

/// Runs `tests/report/{script}` with `args` and `stdin`; returns stdout as JSON.
pub fn run_py(py: &Path, script: &str, args: &[&str], stdin: &str) -> serde_json::Value {
    let mut child = Command::new(py)
        .arg(root().join("tests/report").join(script))
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Headless Chromium, or None (skip) when it is not installed.
pub fn chromium() -> Option<PathBuf> {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] {
        if Path::new(c).exists() {
            return Some(PathBuf::from(c));
        }
    }
    missing("chromium is not installed").map(|_| PathBuf::new())
}

fn chromium_cmd(bin: &Path, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--hide-scrollbars",
        "--disable-extensions",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stdin(Stdio::null())
    .stderr(Stdio::null());
    c
}

/// Screenshot of a local HTML file (PNG bytes) and its DOM after load.
pub fn render_page(bin: &Path, html: &Path, size: (u32, u32)) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("shot.png");
    let url = format!("file://{}", html.display());
    let st = chromium_cmd(bin, &dir.path().join("p1"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(&url)
        .stdout(Stdio::null())
        .status()
        .expect("chromium");
    assert!(st.success(), "chromium --screenshot failed");
    let out = chromium_cmd(bin, &dir.path().join("p2")).arg("--dump-dom").arg(&url).output().expect("chromium");
    assert!(out.status.success(), "chromium --dump-dom failed");
    (std::fs::read(&png).expect("screenshot written"), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A counter or gauge value from a text exposition (exact label set as written by the crate).
pub fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// Every file below `dir`.
pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Every event file under `dir` (`.jsonl.zst` and `.jsonl.gz`), decoded with the zstd and
/// flate2 crates directly (the Rust side's own check, not imago's reader).
pub fn read_events(dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for p in walk(dir) {
        let name = p.to_string_lossy().into_owned();
        let file = std::fs::File::open(&p).unwrap();
        let mut text = String::new();
        if name.ends_with(".jsonl.zst") {
            std::io::Read::read_to_string(&mut zstd::stream::read::Decoder::new(file).unwrap(), &mut text).unwrap();
        } else if name.ends_with(".jsonl.gz") {
            std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(file), &mut text).unwrap();
        } else {
            continue;
        }
        out.extend(text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()));
    }
    out.sort_by(|a, b| a["ts"].as_str().cmp(&b["ts"].as_str()));
    out
}

/// Event files under `dir` (relative names).
pub fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> =
        walk(dir).iter().map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned()).collect();
    out.sort();
    out
}
