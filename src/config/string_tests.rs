//! Secrets, lists, names and paths are read as the strings they are, from the environment and
//! from `imago.toml` alike: nothing that looks like a number or a boolean is converted (issue #15,
//! item 10), and a TOML number where a string belongs is a start-up error.

use super::raw::OPTIONAL_NUMBERS;
use super::*;
use imago_signing::{KeyPair, Signer};
use serde_json::{json, Value};

/// Every setting whose value is a string, a list of strings or a path (TOML keys).
const STRING_SETTINGS: &[&str] = &[
    "bind",
    "key",
    "salt",
    "key_file",
    "salt_file",
    "dev_keys_file",
    "local_root",
    "allowed_hosts",
    "source_proxy",
    "s3_endpoint",
    "s3_region",
    "s3_bucket",
    "s3_allowed_buckets",
    "s3_access_key_id",
    "s3_secret_access_key",
    "s3_secret_access_key_file",
    "s3_credentials",
    "cache_control",
    "width_ladder",
    "log_format",
    "api_keys",
    "public_url",
    "upload_prefixes",
    "cors_origins",
    "metrics_bind",
    "analytics_dir",
    "analytics_compression",
    "quota_store",
    "quota_scope",
    "quota_on_store_error",
    "quota_key_prefix",
    "quota_tenants",
    "webhook_urls",
    "webhook_secrets",
    "purge_varnish_urls",
    "purge_token",
    "console",
    "watermark_path",
    "watermark_url",
    "watermark_data",
    "fallback_image_path",
    "fallback_image_url",
    "fallback_image_data",
    "source_url_encryption_key",
];

/// Settings whose values are secrets: an error about them must not quote the value.
const SECRETS: &[&str] = &[
    "key",
    "salt",
    "api_keys",
    "s3_secret_access_key",
    "s3_access_key_id",
    "webhook_secrets",
    "purge_token",
    "source_url_encryption_key",
];

/// Lists that also take TOML numbers (`width_ladder = [100, 200]`).
const NUMBER_LISTS: &[&str] = &["width_ladder"];

/// Values a type-guessing reader turns into numbers, booleans, arrays or tables.
const TRICKY: &[&str] = &[
    "00112233",
    "0011",
    "0123456789",
    "1e5",
    "1e50",
    "1e10",
    "true",
    "false",
    "00",
    "0",
    "-1",
    "+1",
    "1.50",
    "0x10",
    "nan",
    "inf",
    "1_000",
    "[a]",
    "{a=1}",
];

fn read_back(r: &RawConfig) -> Value {
    serde_json::to_value(r).unwrap()
}

/// The setting holds exactly `s` (a string, or a list of that one string).
fn holds(v: &Value, s: &str) -> bool {
    *v == json!(s) || *v == json!([s])
}

#[test]
fn every_string_setting_is_in_the_table() {
    let defaults = read_back(&RawConfig::default());
    let fields = defaults.as_object().unwrap();
    for (name, v) in fields {
        if name != "presets" && !v.is_number() && !v.is_boolean() && !OPTIONAL_NUMBERS.contains(&name.as_str()) {
            assert!(STRING_SETTINGS.contains(&name.as_str()), "`{name}` ({v}) is missing from STRING_SETTINGS");
        }
    }
    for name in STRING_SETTINGS {
        assert!(fields.contains_key(*name), "`{name}` is not a setting");
    }
}

#[test]
#[allow(clippy::result_large_err)]
fn string_settings_are_read_verbatim_from_env() {
    figment::Jail::expect_with(|jail| {
        // Only what the test sets: `make` exports IMAGO_BIND, a shell may export more.
        jail.clear_env();
        for v in TRICKY {
            for name in STRING_SETTINGS {
                jail.set_env(format!("IMAGO_{}", name.to_ascii_uppercase()), v);
            }
            let r = RawConfig::load(None).unwrap_or_else(|e| panic!("IMAGO_*={v:?}: {e}"));
            let got = read_back(&r);
            for name in STRING_SETTINGS {
                assert!(holds(&got[name], v), "IMAGO_{}={v:?} was read as {}", name.to_ascii_uppercase(), got[name]);
            }
        }
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn string_settings_are_read_verbatim_from_toml() {
    // In a jail: other tests set IMAGO_* variables, which override the file.
    figment::Jail::expect_with(|jail| {
        // Only what the test sets: `make` exports IMAGO_BIND, a shell may export more.
        jail.clear_env();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("imago.toml");
        for v in TRICKY {
            let text: String = STRING_SETTINGS.iter().map(|n| format!("{n} = \"{v}\"\n")).collect();
            std::fs::write(&p, text).unwrap();
            let r = RawConfig::load(Some(&p)).unwrap_or_else(|e| panic!("{v:?}: {e}"));
            let got = read_back(&r);
            for name in STRING_SETTINGS {
                assert!(holds(&got[name], v), "{name} = {v:?} was read as {}", got[name]);
            }
        }
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn toml_numbers_where_strings_belong_are_refused() {
    figment::Jail::expect_with(|jail| {
        // Only what the test sets: `make` exports IMAGO_BIND, a shell may export more.
        jail.clear_env();
        toml_numbers_refused();
        Ok(())
    });
}

fn toml_numbers_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("imago.toml");
    for name in STRING_SETTINGS.iter().filter(|n| !NUMBER_LISTS.contains(n)) {
        for value in ["5566778899", "true", "1.5", "[\"aa\", 5566778899]"] {
            if value.starts_with('[') && !matches!(*name, "key" | "salt" | "api_keys" | "allowed_hosts") {
                continue;
            }
            std::fs::write(&p, format!("{name} = {value}\n")).unwrap();
            let e = match RawConfig::load(Some(&p)) {
                Ok(r) => panic!("{name} = {value} was accepted as {}", read_back(&r)[name]),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(name), "{name} = {value}: the error does not name the setting: {e}");
            if SECRETS.contains(name) {
                assert!(!e.contains("5566778899"), "{name} = {value}: the error quotes the secret: {e}");
            }
        }
    }
    // Widths may be TOML numbers.
    std::fs::write(&p, "width_ladder = [100, \"200\"]\n").unwrap();
    assert_eq!(RawConfig::load(Some(&p)).unwrap().width_ladder.strings(), vec!["100", "200"]);
}

#[test]
#[allow(clippy::result_large_err)]
fn typed_settings_still_parse_from_env() {
    figment::Jail::expect_with(|jail| {
        // Only what the test sets: `make` exports IMAGO_BIND, a shell may export more.
        jail.clear_env();
        jail.set_env("IMAGO_WORKERS", "3");
        jail.set_env("IMAGO_ALLOW_INSECURE", "true");
        jail.set_env("IMAGO_ENABLE_AVIF", "false");
        jail.set_env("IMAGO_MAX_SRC_MEGAPIXELS", "12.5");
        jail.set_env("IMAGO_UPLOAD_RATE_PER_SEC", "0.1");
        jail.set_env("IMAGO_MAX_SRC_BYTES", "1048576");
        jail.set_env("IMAGO_PRESETS", "{thumb = \"rs:fill:100:100\"}");
        jail.set_env("IMAGO_MEMORY_LIMIT_MB", "512");
        let r = RawConfig::load(None).unwrap();
        assert_eq!(r.memory_limit_mb, Some(512));
        assert_eq!((r.workers, r.allow_insecure, r.enable_avif), (3, true, false));
        assert_eq!((r.max_src_megapixels, r.upload_rate_per_sec, r.max_src_bytes), (12.5, 0.1, 1_048_576));
        assert_eq!(r.presets.get("thumb").map(String::as_str), Some("rs:fill:100:100"));
        jail.set_env("IMAGO_WORKERS", "three");
        let e = RawConfig::load(None).unwrap_err().to_string();
        assert!(e.contains("WORKERS"), "{e}");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn numeric_looking_keys_sign_like_the_sdk() {
    figment::Jail::expect_with(|jail| {
        // Only what the test sets: `make` exports IMAGO_BIND, a shell may export more.
        jail.clear_env();
        for (key, salt) in [("00112233", "0011"), ("0123456789", "00"), ("00", "0123456789"), ("1e10", "1e50")] {
            jail.set_env("IMAGO_KEY", key);
            jail.set_env("IMAGO_SALT", salt);
            let cfg = RawConfig::load(None)
                .and_then(|r| r.validate(false))
                .unwrap_or_else(|e| panic!("IMAGO_KEY={key} IMAGO_SALT={salt}: {e}"));
            let sdk = Signer::new(KeyPair::from_hex(key, salt).unwrap());
            assert_eq!(
                cfg.verifier.signer().sign("/w:10/plain/local:///a.jpg"),
                sdk.sign("/w:10/plain/local:///a.jpg")
            );
        }
        Ok(())
    });
}

fn with_keys() -> RawConfig {
    RawConfig { key: List::from_strs(&["aa11"]), salt: List::from_strs(&["bb22"]), ..Default::default() }
}

#[test]
fn signature_size_is_8_to_32_bytes() {
    for size in [0, 1, 7, 33] {
        let e = RawConfig { signature_size: size, ..with_keys() }.validate(false).unwrap_err().to_string();
        assert!(e.contains("IMAGO_SIGNATURE_SIZE") && e.contains("8"), "{size}: {e}");
    }
    for size in [8, 16, 32] {
        RawConfig { signature_size: size, ..with_keys() }.validate(false).unwrap();
    }
}

#[test]
fn secret_files_inside_the_local_root_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&root, dir.path().join("link")).unwrap();
    let base = || RawConfig { local_root: root.clone(), analytics: false, ..Default::default() };
    let mut inside =
        vec![root.join("dev-keys.toml"), root.join("sub/../dev-keys.toml"), root.join("new/dev-keys.toml")];
    #[cfg(unix)]
    inside.push(dir.path().join("link/dev-keys.toml"));
    for p in &inside {
        let e = RawConfig { dev_keys_file: p.clone(), ..base() }.validate(true).unwrap_err().to_string();
        assert!(e.contains("IMAGO_DEV_KEYS_FILE") && e.contains("IMAGO_LOCAL_ROOT"), "{}: {e}", p.display());
        assert!(!p.exists(), "{} was written", p.display());
    }
    // The root inside a directory holding the keys is fine, as is the default layout.
    let ok = RawConfig { dev_keys_file: dir.path().join("dev-keys.toml"), ..base() }.validate(true).unwrap();
    assert!(ok.dev_keys);
    // With a key configured the development keys file is not used, wherever it points.
    RawConfig { dev_keys_file: root.join("dev-keys.toml"), local_root: root.clone(), ..with_keys() }
        .validate(true)
        .unwrap();
    // Mounted secrets are refused inside the root too.
    std::fs::write(root.join("key.hex"), "aa11").unwrap();
    std::fs::write(dir.path().join("salt.hex"), "bb22").unwrap();
    let e = RawConfig {
        key_file: Some(root.join("key.hex")),
        salt_file: Some(dir.path().join("salt.hex")),
        local_root: root.clone(),
        ..Default::default()
    }
    .validate(false)
    .unwrap_err()
    .to_string();
    assert!(e.contains("IMAGO_KEY_FILE") && e.contains("IMAGO_LOCAL_ROOT"), "{e}");
}
