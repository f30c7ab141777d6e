//! The real `imago` binary started with settings from the environment (issue #15, item 10 and the
//! safe defaults): numeric-looking keys and salts verify the Rust SDK's signatures, short
//! signatures, development keys inside the image root and non-hex keys are refused at start,
//! debug headers are off unless asked for, and no secret reaches a log line, `--help` or an error.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use common::*;
use imago_signing::{KeyPair, Signer, UrlBuilder};

const IMAGE: &str = "copyright.jpg";

/// A temporary directory with an image root holding [`IMAGE`].
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    std::fs::copy(fixture_path(IMAGE), dir.path().join("images").join(IMAGE)).unwrap();
    dir
}

struct Imago {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Imago {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Imago {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Exits within `secs`, or None (the server is running).
    async fn exit_within(&mut self, secs: u64) -> Option<ExitStatus> {
        for _ in 0..secs * 20 {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Answers /healthz within 15 s (false when it exited or never answered).
    async fn up(&mut self) -> bool {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if client.get(format!("{}/healthz", self.base)).send().await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// SIGTERM, then waits for the exit (so every log line is written).
    async fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        if self.exit_within(20).await.is_none() {
            let _ = self.child.kill();
        }
    }
}

/// `imago <args>` in `dir` with only the given `IMAGO_*` variables (and a free port), stdout and
/// stderr both to one log file.
fn imago(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Imago {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = dir.join(format!("imago-{port}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imago"));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("IMAGO_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("IMAGO_BIND", format!("127.0.0.1:{port}"))
        .env("IMAGO_LOCAL_ROOT", dir.join("images"))
        .env("IMAGO_ANALYTICS_DIR", dir.join("analytics"))
        .env("IMAGO_DEV_KEYS_FILE", dir.join("dev-keys.toml"))
        .env("IMAGO_WORKERS", "1")
        .env("IMAGO_AUTO_QUALITY", "false");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.stdout(out.try_clone().unwrap()).stderr(out).stdin(Stdio::null()).spawn().unwrap();
    Imago { child, base: format!("http://127.0.0.1:{port}"), log }
}

fn serve(dir: &Path, env: &[(&str, &str)]) -> Imago {
    imago(dir, &["serve"], env)
}

fn signed(base: &str, signer: &Signer) -> String {
    format!(
        "{base}{}",
        UrlBuilder::new().width(64).extension("png").sign(signer, &format!("local:///{IMAGE}")).unwrap()
    )
}

#[tokio::test]
async fn numeric_looking_keys_from_env_verify_sdk_signatures() {
    let client = reqwest::Client::new();
    for (key, salt) in [("00112233", "0011"), ("0123456789", "00"), ("00", "0123456789"), ("1e10", "1e50")] {
        let dir = workdir();
        let mut s = serve(dir.path(), &[("IMAGO_KEY", key), ("IMAGO_SALT", salt)]);
        assert!(s.up().await, "IMAGO_KEY={key} IMAGO_SALT={salt} did not start: {}", s.log());
        let sdk = Signer::new(KeyPair::from_hex(key, salt).unwrap());
        let r = client.get(signed(&s.base, &sdk)).send().await.unwrap();
        assert_eq!(r.status(), 200, "IMAGO_KEY={key} IMAGO_SALT={salt}: the SDK's signature was refused");
        // Signed with another key, and with the pair a number-reading config layer used.
        for (k, sl) in [(format!("ab{key}"), salt.to_string()), ("112233".into(), "11".into())] {
            let wrong = Signer::new(KeyPair::from_hex(&k, &sl).unwrap());
            let r = client.get(signed(&s.base, &wrong)).send().await.unwrap();
            assert_eq!(r.status(), 403, "IMAGO_KEY={key} IMAGO_SALT={salt}: signed with {k}/{sl}, accepted");
        }
    }
}

#[tokio::test]
async fn keys_that_are_not_hex_are_refused_at_start() {
    for key in ["true", "1e5", "0x10"] {
        let dir = workdir();
        let mut s = serve(dir.path(), &[("IMAGO_KEY", key), ("IMAGO_SALT", "00")]);
        let st = s.exit_within(15).await;
        assert_eq!(st.and_then(|s| s.code()), Some(2), "IMAGO_KEY={key} started: {}", s.log());
        assert!(s.log().contains("key 0 is not valid hex"), "IMAGO_KEY={key}: {}", s.log());
    }
}

#[tokio::test]
async fn signature_size_below_8_is_refused_at_start() {
    let dir = workdir();
    let mut s = serve(dir.path(), &[("IMAGO_KEY", KEY), ("IMAGO_SALT", SALT), ("IMAGO_SIGNATURE_SIZE", "1")]);
    let st = s.exit_within(15).await;
    assert_eq!(st.and_then(|s| s.code()), Some(2), "IMAGO_SIGNATURE_SIZE=1 started: {}", s.log());
    assert!(s.log().contains("IMAGO_SIGNATURE_SIZE: must be 8 to 32"), "{}", s.log());
    let mut s = serve(dir.path(), &[("IMAGO_KEY", KEY), ("IMAGO_SALT", SALT), ("IMAGO_SIGNATURE_SIZE", "8")]);
    assert!(s.up().await, "IMAGO_SIGNATURE_SIZE=8 did not start: {}", s.log());
    let sdk = Signer::new(KeyPair::from_hex(KEY, SALT).unwrap()).with_signature_size(8).unwrap();
    let r = reqwest::get(signed(&s.base, &sdk)).await.unwrap();
    assert_eq!(r.status(), 200);
}

const DEBUG_HEADERS: [&str; 3] = ["x-imago-cache", "x-imago-variant", "server-timing"];

fn debug_headers(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| DEBUG_HEADERS.contains(&k.as_str()) || (k.starts_with("x-imago") && k != "x-imago-hint"))
        .collect()
}

#[tokio::test]
async fn debug_headers_are_off_by_default() {
    let client = reqwest::Client::new();
    for (setting, expect) in [(None, false), (Some("false"), false), (Some("true"), true)] {
        let dir = workdir();
        let mut env = vec![("IMAGO_KEY", KEY), ("IMAGO_SALT", SALT)];
        if let Some(v) = setting {
            env.push(("IMAGO_DEBUG_HEADERS", v));
        }
        let mut s = serve(dir.path(), &env);
        assert!(s.up().await, "{}", s.log());
        let url = signed(&s.base, &Signer::new(KeyPair::from_hex(KEY, SALT).unwrap()));
        for round in ["miss", "hit"] {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let found = debug_headers(&r);
            if expect {
                assert_eq!(found.len(), 3, "IMAGO_DEBUG_HEADERS={setting:?} ({round}): {found:?}");
                assert_eq!(r.headers()["x-imago-cache"], round);
            } else {
                assert!(found.is_empty(), "IMAGO_DEBUG_HEADERS={setting:?} ({round}) sent {found:?}");
            }
        }
        let etag = client.get(&url).send().await.unwrap().headers()["etag"].clone();
        let r = client.get(&url).header("if-none-match", etag).send().await.unwrap();
        assert_eq!(r.status(), 304);
        assert_eq!(debug_headers(&r).len(), if expect { 1 } else { 0 }, "304, IMAGO_DEBUG_HEADERS={setting:?}");
    }
}

#[tokio::test]
async fn dev_keys_inside_the_local_root_are_refused_at_start() {
    let dir = workdir();
    let inside = dir.path().join("images/dev-keys.toml");
    let mut s = serve(dir.path(), &[("IMAGO_DEV_KEYS_FILE", inside.to_str().unwrap())]);
    let st = s.exit_within(15).await;
    assert_eq!(st.and_then(|s| s.code()), Some(2), "started with the dev keys in the image root: {}", s.log());
    assert!(s.log().contains("IMAGO_DEV_KEYS_FILE"), "{}", s.log());
    assert!(!inside.exists(), "the keys were written into the image root");
    // The image root one level up from the default keys file: refused as well.
    let mut s = serve(dir.path(), &[("IMAGO_LOCAL_ROOT", dir.path().to_str().unwrap()), ("IMAGO_ANALYTICS", "false")]);
    assert_eq!(s.exit_within(15).await.and_then(|s| s.code()), Some(2), "{}", s.log());
    assert!(s.log().contains("IMAGO_DEV_KEYS_FILE"), "{}", s.log());
    // The embedded default (keys next to the root, not in it) starts.
    let mut s = serve(dir.path(), &[]);
    assert!(s.up().await, "{}", s.log());
    assert!(dir.path().join("dev-keys.toml").exists());
}

#[tokio::test]
async fn secrets_never_reach_logs_help_or_errors() {
    let key = "5ec7e7a1b2c3d4e5f60718293a4b5c6d";
    let salt = "5a17a1b2c3d4e5f60718293a4b5c6d7e";
    let api_key = "api-secret-9f8e7d6c5b4a";
    let s3_secret = "s3-secret-0a1b2c3d4e5f";
    let enc_key = "e7c0de11e7c0de11e7c0de11e7c0de11e7c0de11e7c0de11e7c0de11e7c0de11";
    let secrets = [key, salt, api_key, s3_secret, enc_key];
    let env = [
        ("IMAGO_KEY", key),
        ("IMAGO_SALT", salt),
        ("IMAGO_API_KEYS", api_key),
        ("IMAGO_S3_SECRET_ACCESS_KEY", s3_secret),
        ("IMAGO_SOURCE_URL_ENCRYPTION_KEY", enc_key),
        ("IMAGO_LOG_FORMAT", "json"),
        ("RUST_LOG", "debug"),
    ];
    let leaks = |what: &str, text: &str| {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} shows a secret: {text}");
        }
    };
    let dir = workdir();
    // A running server: the start-up configuration dump, request errors, shutdown.
    let mut s = serve(dir.path(), &env);
    assert!(s.up().await, "{}", s.log());
    let client = reqwest::Client::new();
    let bad = format!("{}/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/w:64/plain/local:///{IMAGE}@png", s.base);
    assert_eq!(client.get(bad).send().await.unwrap().status(), 403);
    let r = client.post(format!("{}/v1/uploads", s.base)).bearer_auth("wrong-key-0123456789").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let ok = client.get(signed(&s.base, &Signer::new(KeyPair::from_hex(key, salt).unwrap()))).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    s.stop().await;
    let log = s.log();
    assert!(log.contains("[redacted]"), "no configuration dump at start: {log}");
    leaks("the server log", &log);
    // --help, with the secrets in the environment.
    let mut h = imago(dir.path(), &["serve", "--help"], &env);
    assert_eq!(h.exit_within(15).await.and_then(|s| s.code()), Some(0));
    assert!(h.log().contains("IMAGO_KEY"), "{}", h.log());
    leaks("--help", &h.log());
    // Start-up errors: another setting wrong, a key that is not hex, a number in imago.toml.
    let mut e = serve(dir.path(), &[&env[..], &[("IMAGO_BIND", "nope")]].concat());
    assert_eq!(e.exit_within(15).await.and_then(|s| s.code()), Some(2), "{}", e.log());
    leaks("a start-up error", &e.log());
    let not_hex = format!("{key}zz");
    let mut e = serve(dir.path(), &[&env[..], &[("IMAGO_KEY", not_hex.as_str())]].concat());
    assert_eq!(e.exit_within(15).await.and_then(|s| s.code()), Some(2), "{}", e.log());
    leaks("a bad key's error", &e.log());
    // A source-URL encryption key of the wrong size: refused at start, never quoted.
    let mut e = serve(dir.path(), &[&env[..], &[("IMAGO_SOURCE_URL_ENCRYPTION_KEY", &enc_key[..40])]].concat());
    assert_eq!(e.exit_within(15).await.and_then(|s| s.code()), Some(2), "{}", e.log());
    assert!(e.log().contains("IMAGO_SOURCE_URL_ENCRYPTION_KEY"), "{}", e.log());
    assert!(!e.log().contains(&enc_key[..40]), "{}", e.log());
    std::fs::write(dir.path().join("imago.toml"), "key = 5566778899\nsalt = \"00\"\n").unwrap();
    let toml = dir.path().join("imago.toml");
    let mut e = serve(dir.path(), &[("IMAGO_CONFIG", toml.to_str().unwrap())]);
    assert_eq!(e.exit_within(15).await.and_then(|s| s.code()), Some(2), "a TOML number as key started: {}", e.log());
    assert!(!e.log().contains("5566778899") && e.log().contains("key"), "{}", e.log());
}
