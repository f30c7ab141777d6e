//! Sign and verify imago image URLs.
//!
//! imago's read URLs use imgproxy's format and signature, so existing imgproxy URL builders work
//! unchanged: `signature = base64url_nopad(HMAC-SHA256(key, salt ‖ path))`, where `path` is
//! everything after the signature segment, starting with `/`. The signature may be truncated to
//! its first `signature_size` bytes. Several key/salt pairs may be configured at once (rotation):
//! [`Signer`] signs with the first pair, [`Verifier`] accepts any of them. Comparison is constant
//! time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub mod builder;
#[cfg(feature = "client")]
pub mod client;
pub mod encrypt;
pub mod options;
pub mod srcset;
pub mod webhook;

pub use builder::{
    build_path, encode_encrypted_source, encode_source, is_valid_source, BuildError, SourceEncoding, UrlBuilder,
};
pub use encrypt::{EncryptError, SourceCipher};
pub use options::{
    Background, Compass, Crop, Extend, Filename, Flip, Format, FormatQuality, Gravity, OptionError, Options, Padding,
    Quality, Resize, ResizingAlgorithm, ResizingType, Size, Trim, Watermark, WatermarkPosition, Zoom,
};
pub use srcset::{sizes, srcset_widths, Breakpoint, CssSize, SrcsetOptions, LADDER};

/// The spec version this crate implements (`"version"` in `signing/test-vectors.json`).
pub const SPEC_VERSION: u32 = 1;

type HmacSha256 = Hmac<Sha256>;

/// The full length of an HMAC-SHA256 signature in bytes.
pub const FULL_SIGNATURE_SIZE: usize = 32;

/// Errors building a signer or verifier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("key {index} is not valid hex")]
    KeyNotHex { index: usize },
    #[error("salt {index} is not valid hex")]
    SaltNotHex { index: usize },
    #[error("key {index} is empty")]
    EmptyKey { index: usize },
    #[error("{keys} keys but {salts} salts: keys and salts pair up one to one")]
    CountMismatch { keys: usize, salts: usize },
    #[error("no key/salt pair configured")]
    NoKeys,
    #[error("signature size must be between 1 and 32 bytes, got {0}")]
    BadSignatureSize(usize),
}

/// One key/salt pair (raw bytes).
#[derive(Clone)]
pub struct KeyPair {
    key: Vec<u8>,
    salt: Vec<u8>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPair([redacted])")
    }
}

impl KeyPair {
    /// A pair from raw bytes.
    pub fn new(key: impl Into<Vec<u8>>, salt: impl Into<Vec<u8>>) -> Self {
        KeyPair { key: key.into(), salt: salt.into() }
    }

    /// A pair from hex strings (imgproxy's `IMGPROXY_KEY`/`IMGPROXY_SALT` form).
    pub fn from_hex(key: &str, salt: &str) -> Result<Self, KeyError> {
        Self::parse_lists(key, salt).and_then(|mut v| v.pop().ok_or(KeyError::NoKeys))
    }

    /// Parses comma-separated hex key and salt lists that pair up one to one.
    pub fn parse_lists(keys: &str, salts: &str) -> Result<Vec<KeyPair>, KeyError> {
        let split =
            |s: &str| -> Vec<String> { s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect() };
        let (k, s) = (split(keys), split(salts));
        if k.len() != s.len() {
            return Err(KeyError::CountMismatch { keys: k.len(), salts: s.len() });
        }
        if k.is_empty() {
            return Err(KeyError::NoKeys);
        }
        k.iter()
            .zip(s.iter())
            .enumerate()
            .map(|(index, (k, s))| {
                let key = hex::decode(k).map_err(|_| KeyError::KeyNotHex { index })?;
                let salt = hex::decode(s).map_err(|_| KeyError::SaltNotHex { index })?;
                if key.is_empty() {
                    return Err(KeyError::EmptyKey { index });
                }
                Ok(KeyPair { key, salt })
            })
            .collect()
    }

    fn mac(&self, path: &str) -> [u8; FULL_SIGNATURE_SIZE] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any size"),
        };
        mac.update(&self.salt);
        mac.update(path.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Computes the signature of `path` (which starts with `/`), truncated to `size` bytes.
pub fn sign_path(pair: &KeyPair, path: &str, size: usize) -> String {
    let mac = pair.mac(path);
    URL_SAFE_NO_PAD.encode(&mac[..size.clamp(1, FULL_SIGNATURE_SIZE)])
}

/// Signs paths with the first configured pair.
#[derive(Clone, Debug)]
pub struct Signer {
    pair: KeyPair,
    size: usize,
}

impl Signer {
    pub fn new(pair: KeyPair) -> Self {
        Signer { pair, size: FULL_SIGNATURE_SIZE }
    }

    /// Truncate signatures to `size` bytes (1..=32).
    pub fn with_signature_size(mut self, size: usize) -> Result<Self, KeyError> {
        if !(1..=FULL_SIGNATURE_SIZE).contains(&size) {
            return Err(KeyError::BadSignatureSize(size));
        }
        self.size = size;
        Ok(self)
    }

    /// The signature of `path` (everything after the signature segment, with its leading `/`).
    pub fn sign(&self, path: &str) -> String {
        sign_path(&self.pair, path, self.size)
    }

    /// `/{signature}{path}`.
    pub fn signed_path(&self, path: &str) -> String {
        format!("/{}{}", self.sign(path), path)
    }
}

/// Verifies signatures against every configured pair, in constant time.
#[derive(Clone, Debug)]
pub struct Verifier {
    pairs: Vec<KeyPair>,
    size: usize,
}

impl Verifier {
    pub fn new(pairs: Vec<KeyPair>) -> Result<Self, KeyError> {
        if pairs.is_empty() {
            return Err(KeyError::NoKeys);
        }
        Ok(Verifier { pairs, size: FULL_SIGNATURE_SIZE })
    }

    /// Only accept signatures truncated to exactly `size` bytes.
    pub fn with_signature_size(mut self, size: usize) -> Result<Self, KeyError> {
        if !(1..=FULL_SIGNATURE_SIZE).contains(&size) {
            return Err(KeyError::BadSignatureSize(size));
        }
        self.size = size;
        Ok(self)
    }

    /// A signer for the first pair with the same truncation.
    pub fn signer(&self) -> Signer {
        Signer { pair: self.pairs[0].clone(), size: self.size }
    }

    /// True when `signature` is valid for `path` under any configured pair. The signature must be
    /// unpadded base64url of exactly the configured size.
    pub fn verify(&self, signature: &str, path: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        if given.len() != self.size {
            return false;
        }
        // Check every pair (no early exit) so timing does not reveal which pair matched.
        let mut ok = subtle::Choice::from(0u8);
        for pair in &self.pairs {
            let mac = pair.mac(path);
            ok |= mac[..self.size].ct_eq(&given);
        }
        ok.into()
    }

    /// Verifies a full URL path `/{signature}/{path…}` as received (no query string). The literal
    /// signature `insecure` passes only when `allow_insecure` is true.
    pub fn verify_url_path(&self, url_path: &str, allow_insecure: bool) -> bool {
        let Some((signature, rest)) = url_path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
            return false;
        };
        let path = &url_path[url_path.len() - rest.len() - 1..];
        if signature == "insecure" {
            return allow_insecure;
        }
        self.verify(signature, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_PATH: &str = "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png";

    fn imgproxy_pair() -> KeyPair {
        KeyPair::from_hex(&hex::encode("secret"), &hex::encode("hello")).unwrap()
    }

    #[test]
    fn imgproxy_published_vector() {
        let s = Signer::new(imgproxy_pair());
        assert_eq!(s.sign(VECTOR_PATH), "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8");
        let v = Verifier::new(vec![imgproxy_pair()]).unwrap();
        assert!(v.verify("oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8", VECTOR_PATH));
        assert!(!v.verify("oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH9", VECTOR_PATH));
        assert!(!v.verify("oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8", "/rs:fill:300:400:1/x.png"));
    }

    #[test]
    fn rotation_accepts_any_pair_and_signs_with_first() {
        let pairs = KeyPair::parse_lists("aa11,bb22", "cc33,dd44").unwrap();
        let old = Signer::new(pairs[1].clone());
        let v = Verifier::new(pairs.clone()).unwrap();
        assert!(v.verify(&old.sign("/w:10/plain/local:///a.jpg"), "/w:10/plain/local:///a.jpg"));
        assert_eq!(v.signer().sign("/x"), Signer::new(pairs[0].clone()).sign("/x"));
        let other = Signer::new(KeyPair::from_hex("ee55", "ff66").unwrap());
        assert!(!v.verify(&other.sign("/x"), "/x"));
    }

    #[test]
    fn truncation() {
        let s = Signer::new(imgproxy_pair()).with_signature_size(8).unwrap();
        let sig = s.sign(VECTOR_PATH);
        assert_eq!(sig.len(), 11);
        assert!("oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8".starts_with(&sig[..10]));
        let v = Verifier::new(vec![imgproxy_pair()]).unwrap().with_signature_size(8).unwrap();
        assert!(v.verify(&sig, VECTOR_PATH));
        // A full-size signature is refused when truncation is configured, and vice versa.
        assert!(!v.verify("oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8", VECTOR_PATH));
        let full = Verifier::new(vec![imgproxy_pair()]).unwrap();
        assert!(!full.verify(&sig, VECTOR_PATH));
        assert!(Signer::new(imgproxy_pair()).with_signature_size(0).is_err());
        assert!(Signer::new(imgproxy_pair()).with_signature_size(33).is_err());
    }

    #[test]
    fn bad_key_lists() {
        assert_eq!(KeyPair::parse_lists("aa", "bb,cc").unwrap_err(), KeyError::CountMismatch { keys: 1, salts: 2 });
        assert_eq!(KeyPair::parse_lists("zz", "bb").unwrap_err(), KeyError::KeyNotHex { index: 0 });
        assert_eq!(KeyPair::parse_lists("aa", "q").unwrap_err(), KeyError::SaltNotHex { index: 0 });
        assert_eq!(KeyPair::parse_lists("", "").unwrap_err(), KeyError::NoKeys);
        assert!(!Verifier::new(vec![imgproxy_pair()]).unwrap().verify("not base64!", "/x"));
    }

    #[test]
    fn padded_signature_and_url_paths() {
        let v = Verifier::new(vec![imgproxy_pair()]).unwrap();
        let sig = "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8";
        assert!(!v.verify(&format!("{sig}="), VECTOR_PATH));
        assert!(v.verify_url_path(&format!("/{sig}{VECTOR_PATH}"), false));
        assert!(!v.verify_url_path(&format!("/{sig}={VECTOR_PATH}"), false));
        assert!(!v.verify_url_path(&format!("/insecure{VECTOR_PATH}"), false));
        assert!(v.verify_url_path(&format!("/insecure{VECTOR_PATH}"), true));
        assert!(!v.verify_url_path("/", true));
    }

    #[test]
    fn debug_redacts() {
        assert_eq!(format!("{:?}", imgproxy_pair()), "KeyPair([redacted])");
    }
}
