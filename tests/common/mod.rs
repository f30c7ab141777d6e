//! Shared helpers for integration tests: the real server, in-process, on 127.0.0.1.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use imago::config::{List, RawConfig};
use imago_signing::builder::SourceEncoding;
use imago_signing::{KeyPair, Signer, UrlBuilder};

pub const KEY: &str = "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881";
pub const SALT: &str = "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5";

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub struct TestServer {
    pub base: String,
    pub root: PathBuf,
    pub signer: Signer,
    pub client: reqwest::Client,
    pub state: actix_web::web::Data<imago::app::AppState>,
    pub handle: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
}

/// Starts a server with a fresh local root holding `files` (fixture names) and settings changed
/// by `tweak`.
pub async fn start(files: &[&str], tweak: impl FnOnce(&mut RawConfig)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    for f in files {
        let dest = root.join(f);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(fixture_path(f), &dest).unwrap();
    }
    let mut raw = RawConfig {
        bind: "127.0.0.1:0".into(),
        key: List::from_strs(&[KEY]),
        salt: List::from_strs(&[SALT]),
        local_root: root.clone(),
        dev_keys_file: dir.path().join("dev-keys.toml"),
        analytics_dir: dir.path().join("analytics"),
        workers: 2,
        // Most tests scrape /metrics on the one listener they know.
        public_metrics: true,
        // Off by default (they tell any client whether someone fetched a URL); tests read them.
        debug_headers: true,
        // Hard deletes, as before soft delete existed (tests of the grace period set their own).
        delete_grace_secs: 0,
        ..RawConfig::default()
    };
    tweak(&mut raw);
    let cfg = raw.validate(false).unwrap();
    let running = imago::http::start(cfg).unwrap();
    let handle = running.server.handle();
    tokio::spawn(running.server);
    TestServer {
        base: format!("http://{}", running.addr),
        root,
        signer: Signer::new(KeyPair::from_hex(KEY, SALT).unwrap()),
        client: reqwest::Client::builder().build().unwrap(),
        state: running.state,
        handle,
        _dir: dir,
    }
}

impl TestServer {
    /// Writes raw bytes into the store.
    pub fn put(&self, name: &str, bytes: &[u8]) {
        let p = self.root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    /// A signed URL for `options` (a `/`-separated string) and a source.
    pub fn url(&self, options: &str, source: &str, ext: Option<&str>) -> String {
        let mut b = UrlBuilder::new().encoding(SourceEncoding::Plain);
        for o in options.split('/').filter(|s| !s.is_empty()) {
            let mut parts = o.split(':');
            let name = parts.next().unwrap();
            b = b.option(name, parts).unwrap();
        }
        if let Some(e) = ext {
            b = b.extension(e);
        }
        format!("{}{}", self.base, b.sign(&self.signer, source).unwrap())
    }

    /// A signed URL with the base64 source form.
    pub fn url_b64(&self, options: &str, source: &str) -> String {
        let mut b = UrlBuilder::new();
        for o in options.split('/').filter(|s| !s.is_empty()) {
            let mut parts = o.split(':');
            let name = parts.next().unwrap();
            b = b.option(name, parts).unwrap();
        }
        format!("{}{}", self.base, b.sign(&self.signer, source).unwrap())
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).send().await.unwrap()
    }

    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut r = self.client.get(url);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send().await.unwrap()
    }

    pub fn transforms(&self) -> usize {
        self.state.workers.stats.transforms.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Asserts a JSON error with `status` and `code`.
pub async fn assert_error(resp: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status for {code}");
    assert_eq!(resp.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    body
}

/// Decodes to RGBA8 with the `image` crate (independent of libvips).
pub fn decode(bytes: &[u8]) -> image::RgbaImage {
    image::load_from_memory(bytes).unwrap().to_rgba8()
}

/// Mean R, G, B.
pub fn mean_rgb(img: &image::RgbaImage) -> [f64; 3] {
    let mut s = [0f64; 3];
    for p in img.pixels() {
        for i in 0..3 {
            s[i] += p[i] as f64;
        }
    }
    let n = (img.width() * img.height()) as f64;
    [s[0] / n, s[1] / n, s[2] / n]
}

/// Mean absolute difference per channel (0-255) between two same-size images.
pub fn mean_abs_diff(a: &image::RgbaImage, b: &image::RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mut s = 0f64;
    for (p, q) in a.pixels().zip(b.pixels()) {
        for i in 0..3 {
            s += (p[i] as f64 - q[i] as f64).abs();
        }
    }
    s / (a.width() * a.height() * 3) as f64
}

/// Width and height of an AVIF from its `ispe` box (no AV1 decoder needed).
pub fn avif_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let i = b.windows(4).position(|w| w == b"ispe")?;
    let w = u32::from_be_bytes(b.get(i + 8..i + 12)?.try_into().ok()?);
    let h = u32::from_be_bytes(b.get(i + 12..i + 16)?.try_into().ok()?);
    Some((w, h))
}

/// Width and height of a JPEG XL, decoded by libvips (jxlload) after checking the signature (a
/// bare codestream `FF 0A` or the ISOBMFF container); None when it is not a decodable JPEG XL.
pub fn jxl_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let container = [0, 0, 0, 0x0C, b'J', b'X', b'L', b' ', 0x0D, 0x0A, 0x87, 0x0A];
    if !(b.starts_with(&[0xFF, 0x0A]) || b.starts_with(&container)) {
        return None;
    }
    imago::transform::init(1).ok()?;
    let enc = imago::transform::EncodeSettings::from_config(&RawConfig::default());
    let info = imago::transform::probe(b, &enc).ok()?;
    (info.format == "jxl").then_some((info.width, info.height))
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A throwaway single-node Garage from `scripts/garage.sh`, in its own directory, stopped (and its
/// data removed) on drop.
pub struct Garage {
    pub dir: PathBuf,
    /// The `IMAGO_TEST_S3_*` variables the script printed.
    pub env: std::collections::HashMap<String, String>,
}

impl Garage {
    fn script(dir: &Path, cmd: &str) -> Option<String> {
        let out = std::process::Command::new(fixture_path("../../scripts/garage.sh"))
            .arg(cmd)
            .env("IMAGO_GARAGE_DIR", dir)
            .stderr(std::process::Stdio::inherit())
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// The garage binary the script runs (`scripts/garage.sh which`: $GARAGE, IMAGO_TOOLS_DIR,
    /// PATH, ~/.cargo/bin), or `garage`.
    pub fn binary() -> String {
        Self::script(Path::new("/nonexistent"), "which")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "garage".into())
    }

    /// Starts one in `dir`; None when garage is not installed.
    pub fn start(dir: &Path) -> Option<Garage> {
        let text = Self::script(dir, "start")?;
        let env = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        Some(Garage { dir: dir.to_path_buf(), env })
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = Self::script(&self.dir, "stop");
    }
}

/// A free loopback port (bound and released: another process may take it first, rarely).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed (and reaped) when dropped.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `url` answers 200 within 15 s (polled every 100 ms).
pub async fn wait_ok(url: &str) -> bool {
    let c = reqwest::Client::new();
    for _ in 0..150 {
        if let Ok(r) = c.get(url).timeout(std::time::Duration::from_millis(500)).send().await {
            if r.status() == 200 {
                return true;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}
