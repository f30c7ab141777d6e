//! Runs every `sign`, `verify`, `build`, `srcset` and `sizes` vector of
//! `signing/test-vectors.json` (SPEC §1) against this crate.

use imago_signing::{
    sizes, Breakpoint, CssSize, KeyPair, Options, Signer, SourceEncoding, SrcsetOptions, UrlBuilder, Verifier, LADDER,
    SPEC_VERSION,
};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    let l = v[key].as_array().unwrap_or_else(|| panic!("no `{key}` list"));
    assert!(!l.is_empty(), "`{key}` is empty");
    l
}

fn name(c: &Value) -> &str {
    c["name"].as_str().unwrap()
}

/// The signing pair of a vector: `key`/`salt`, or `pairs[0]`.
fn first_pair(c: &Value) -> KeyPair {
    let p = if c["pairs"].is_array() { &c["pairs"][0] } else { c };
    KeyPair::from_hex(p["key"].as_str().unwrap(), p["salt"].as_str().unwrap()).unwrap()
}

fn signer(c: &Value) -> Signer {
    let s = Signer::new(first_pair(c));
    match c["signature_size"].as_u64() {
        Some(n) => s.with_signature_size(n as usize).unwrap(),
        None => s,
    }
}

fn encoding(c: &Value) -> SourceEncoding {
    match c["encoding"].as_str() {
        Some("plain") => SourceEncoding::Plain,
        Some("base64") | None => SourceEncoding::Base64,
        Some(other) => panic!("{}: encoding {other}", name(c)),
    }
}

fn builder(c: &Value) -> UrlBuilder {
    let opts = Options::from_json(&c["options"]).unwrap_or_else(|e| panic!("{}: {e}", name(c)));
    let mut b = UrlBuilder::from_options(opts).encoding(encoding(c)).check_source(true);
    if let Some(e) = c["extension"].as_str() {
        b = b.extension(e);
    }
    if let Some(n) = c["chunk_size"].as_u64() {
        b = b.chunk_size(n as usize);
    }
    b
}

#[test]
fn version_and_ladder() {
    let v = vectors();
    assert_eq!(v["version"].as_u64(), Some(SPEC_VERSION as u64));
    let ladder: Vec<u32> = list(&v, "ladder").iter().map(|w| w.as_u64().unwrap() as u32).collect();
    assert_eq!(ladder, LADDER.to_vec());
}

#[test]
fn sign_vectors() {
    let v = vectors();
    for c in list(&v, "sign") {
        let path = c["path"].as_str().unwrap();
        assert_eq!(signer(c).sign(path), c["signature"].as_str().unwrap(), "{}", name(c));
    }
}

#[test]
fn verify_vectors() {
    let v = vectors();
    for c in list(&v, "verify") {
        let pairs: Vec<KeyPair> = c["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| KeyPair::from_hex(p["key"].as_str().unwrap(), p["salt"].as_str().unwrap()).unwrap())
            .collect();
        let mut verifier = Verifier::new(pairs).unwrap();
        if let Some(n) = c["signature_size"].as_u64() {
            verifier = verifier.with_signature_size(n as usize).unwrap();
        }
        let allow_insecure = c["allow_insecure"].as_bool().unwrap_or(false);
        let got = verifier.verify_url_path(c["url_path"].as_str().unwrap(), allow_insecure);
        assert_eq!(got, c["valid"].as_bool().unwrap(), "{}", name(c));
    }
}

#[test]
fn build_vectors() {
    let v = vectors();
    for c in list(&v, "build") {
        let b = builder(c);
        let source = c["source"].as_str().unwrap();
        assert_eq!(b.path(source).unwrap(), c["expected_path"].as_str().unwrap(), "{}", name(c));
        assert_eq!(b.sign(&signer(c), source).unwrap(), c["expected_url_path"].as_str().unwrap(), "{}", name(c));
        // Re-serialising the typed options is stable.
        let again = Options::from_json(&c["options"]).unwrap();
        assert_eq!(&again, b.options(), "{}", name(c));
    }
}

/// `/enc/` sources (SPEC §3.4): the IV (given or derived), the path and its signature.
#[test]
fn encrypted_vectors() {
    let v = vectors();
    let cases = list(&v, "encrypted");
    assert!(cases.len() >= 4);
    for c in cases {
        let cipher = imago_signing::SourceCipher::from_hex(c["encryption_key"].as_str().unwrap()).unwrap();
        let source = c["source"].as_str().unwrap();
        let iv: Option<[u8; 16]> = c["iv"].as_str().map(|h| hex::decode(h).unwrap().try_into().unwrap());
        let derived = cipher.iv_for(source);
        assert_eq!(hex::encode(iv.unwrap_or(derived)), c["expected_iv"].as_str().unwrap(), "{}", name(c));
        let ext = c["extension"].as_str();
        let chunk = c["chunk_size"].as_u64().map(|n| n as usize);
        let part = imago_signing::encode_encrypted_source(source, &cipher, iv.as_ref(), ext, chunk).unwrap();
        assert!(c["expected_path"].as_str().unwrap().ends_with(&format!("/{part}")), "{}: {part}", name(c));
        if iv.is_none() {
            let mut b = UrlBuilder::from_options(Options::from_json(&c["options"]).unwrap()).encrypt(cipher.clone());
            if let Some(e) = ext {
                b = b.extension(e);
            }
            if let Some(n) = chunk {
                b = b.chunk_size(n);
            }
            assert_eq!(b.sign(&signer(c), source).unwrap(), c["expected_url_path"].as_str().unwrap(), "{}", name(c));
        }
        // The server's side: what was encrypted decrypts.
        let b64 = part.trim_start_matches("enc/").replace('/', "");
        let b64 = ext.map_or(b64.as_str(), |e| b64.trim_end_matches(&format!(".{e}")));
        use base64::Engine;
        let data = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).unwrap();
        assert_eq!(cipher.decrypt(&data).unwrap(), source, "{}", name(c));
    }
}

#[test]
fn srcset_vectors() {
    let v = vectors();
    for c in list(&v, "srcset") {
        let opts = SrcsetOptions {
            max_width: c["max_width"].as_u64().map(|w| w as u32),
            widths: c["widths"].as_array().map(|a| a.iter().map(|w| w.as_u64().unwrap() as u32).collect()),
        };
        let expected_widths: Vec<u32> =
            c["expected_widths"].as_array().unwrap().iter().map(|w| w.as_u64().unwrap() as u32).collect();
        assert_eq!(imago_signing::srcset_widths(&opts).unwrap(), expected_widths, "{}", name(c));
        let got = builder(c)
            .srcset(&signer(c), c["base_url"].as_str().unwrap(), c["source"].as_str().unwrap(), &opts)
            .unwrap_or_else(|e| panic!("{}: {e}", name(c)));
        assert_eq!(got, c["expected"].as_str().unwrap(), "{}", name(c));
    }
}

fn css(v: &Value) -> CssSize {
    match v {
        Value::String(s) => CssSize::from(s.as_str()),
        Value::Number(n) => CssSize::Px(n.as_f64().unwrap()),
        other => panic!("size {other}"),
    }
}

#[test]
fn sizes_vectors() {
    let v = vectors();
    for c in list(&v, "sizes") {
        let bps: Vec<Breakpoint> = c["breakpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| Breakpoint { max_width: b["max_width"].as_u64().unwrap() as u32, size: css(&b["size"]) })
            .collect();
        let default = (!c["default"].is_null()).then(|| css(&c["default"]));
        assert_eq!(sizes(&bps, default).unwrap(), c["expected"].as_str().unwrap(), "{}", name(c));
    }
}

/// SDK option objects reject unknown keys (SPEC §4), naming the key.
#[test]
fn unknown_json_keys_are_refused() {
    let e = Options::from_json(&serde_json::json!({"wd": 100})).unwrap_err();
    assert_eq!(e.option, "wd");
}

/// `signing/vectors/webhooks.json` (SPEC §13): every `sign` vector's header, every `verify`
/// vector's verdict.
#[test]
fn webhook_vectors() {
    use imago_signing::webhook;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/webhooks.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let secrets = |c: &Value| -> Vec<String> {
        c["secrets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
    };
    for c in list(&v, "sign") {
        let got = webhook::sign(&secrets(c), c["timestamp"].as_i64().unwrap(), c["body"].as_str().unwrap().as_bytes());
        assert_eq!(got, c["header"].as_str().unwrap(), "{}", name(c));
    }
    for c in list(&v, "verify") {
        let got = webhook::verify(
            c["header"].as_str().unwrap(),
            c["body"].as_str().unwrap().as_bytes(),
            &secrets(c),
            c["tolerance"].as_u64().unwrap(),
            c["now"].as_i64().unwrap(),
        );
        match c["valid"].as_bool().unwrap() {
            true => assert_eq!(got, Ok(c["timestamp"].as_i64().unwrap()), "{}", name(c)),
            false => assert_eq!(got.map_err(|e| e.code()), Err(c["error"].as_str().unwrap()), "{}", name(c)),
        }
    }
}
