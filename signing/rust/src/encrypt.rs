//! Encrypted source URLs (`/enc/…`, SPEC §3.4), imgproxy's scheme: the source is padded with
//! PKCS #7, encrypted with AES-CBC (a 16-, 24- or 32-byte key: AES-128/192/256) under a 16-byte
//! IV, and `base64url(IV ‖ ciphertext)` goes in the path after `enc/` (optionally `/`-chunked,
//! then `.{ext}`).
//!
//! Any IV decrypts; the SDKs derive it deterministically so one source always gives one URL (a
//! random IV would make every URL unique and defeat CDN caching, imgproxy's docs "IV
//! generation"): `IV = HMAC-SHA256(K_iv, source)[..16]` with `K_iv = HMAC-SHA256(key, "imago
//! source-url IV")`, a key of its own derived from the encryption key. Equal sources give equal
//! IVs (and equal ciphertexts): that reveals only that two URLs name the same source, which the
//! equal URLs show anyway.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the IV (one AES block).
pub const IV_SIZE: usize = 16;

/// The label `K_iv` is derived with (SPEC §3.4).
pub const IV_KEY_LABEL: &[u8] = b"imago source-url IV";

/// Why a key was refused or a source could not be decrypted. Decryption failures are one
/// variant on purpose: telling a bad padding from a bad length would help a padding oracle.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncryptError {
    #[error("the encryption key is not valid hex")]
    KeyNotHex,
    #[error("the encryption key must be 16, 24 or 32 bytes (AES-128/192/256), got {0}")]
    KeySize(usize),
    #[error("the encrypted source cannot be decrypted with the configured key")]
    Decrypt,
}

#[derive(Clone)]
enum Key {
    K128([u8; 16]),
    K192([u8; 24]),
    K256([u8; 32]),
}

/// An AES-CBC source-URL key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SourceCipher {
    key: Key,
    iv_key: [u8; 32],
}

impl std::fmt::Debug for SourceCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bits = match self.key {
            Key::K128(_) => 128,
            Key::K192(_) => 192,
            Key::K256(_) => 256,
        };
        write!(f, "SourceCipher(AES-{bits}-CBC, [redacted])")
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(msg);
    m.finalize().into_bytes().into()
}

impl SourceCipher {
    /// A cipher from raw key bytes (16, 24 or 32).
    pub fn new(key: &[u8]) -> Result<SourceCipher, EncryptError> {
        let k = match key.len() {
            16 => Key::K128(key.try_into().map_err(|_| EncryptError::KeySize(key.len()))?),
            24 => Key::K192(key.try_into().map_err(|_| EncryptError::KeySize(key.len()))?),
            32 => Key::K256(key.try_into().map_err(|_| EncryptError::KeySize(key.len()))?),
            n => return Err(EncryptError::KeySize(n)),
        };
        Ok(SourceCipher { key: k, iv_key: hmac(key, IV_KEY_LABEL) })
    }

    /// A cipher from a hex key (`IMAGO_SOURCE_URL_ENCRYPTION_KEY`, imgproxy's
    /// `IMGPROXY_SOURCE_URL_ENCRYPTION_KEY`).
    pub fn from_hex(key: &str) -> Result<SourceCipher, EncryptError> {
        let bytes = hex::decode(key.trim()).map_err(|_| EncryptError::KeyNotHex)?;
        SourceCipher::new(&bytes)
    }

    /// The deterministic IV of a source (see the module documentation).
    pub fn iv_for(&self, source: &str) -> [u8; IV_SIZE] {
        let mac = hmac(&self.iv_key, source.as_bytes());
        let mut iv = [0u8; IV_SIZE];
        iv.copy_from_slice(&mac[..IV_SIZE]);
        iv
    }

    /// `IV ‖ AES-CBC(PKCS #7(source))` with the given IV.
    pub fn encrypt_with_iv(&self, source: &str, iv: &[u8; IV_SIZE]) -> Vec<u8> {
        let pt = source.as_bytes();
        let ct = match &self.key {
            Key::K128(k) => cbc::Encryptor::<aes::Aes128>::new(k.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(pt),
            Key::K192(k) => cbc::Encryptor::<aes::Aes192>::new(k.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(pt),
            Key::K256(k) => cbc::Encryptor::<aes::Aes256>::new(k.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(pt),
        };
        let mut out = Vec::with_capacity(IV_SIZE + ct.len());
        out.extend_from_slice(iv);
        out.extend_from_slice(&ct);
        out
    }

    /// `IV ‖ ciphertext` with the deterministic IV ([`SourceCipher::iv_for`]).
    pub fn encrypt(&self, source: &str) -> Vec<u8> {
        self.encrypt_with_iv(source, &self.iv_for(source))
    }

    /// The source of `IV ‖ ciphertext` (decoded from base64 already). Every failure (too
    /// short, not whole blocks, bad padding, not UTF-8) is [`EncryptError::Decrypt`].
    pub fn decrypt(&self, data: &[u8]) -> Result<String, EncryptError> {
        if data.len() < 2 * IV_SIZE || !data.len().is_multiple_of(IV_SIZE) {
            return Err(EncryptError::Decrypt);
        }
        let (iv, ct) = data.split_at(IV_SIZE);
        let iv: &[u8; IV_SIZE] = iv.try_into().map_err(|_| EncryptError::Decrypt)?;
        let pt = match &self.key {
            Key::K128(k) => cbc::Decryptor::<aes::Aes128>::new(k.into(), iv.into()).decrypt_padded_vec_mut::<Pkcs7>(ct),
            Key::K192(k) => cbc::Decryptor::<aes::Aes192>::new(k.into(), iv.into()).decrypt_padded_vec_mut::<Pkcs7>(ct),
            Key::K256(k) => cbc::Decryptor::<aes::Aes256>::new(k.into(), iv.into()).decrypt_padded_vec_mut::<Pkcs7>(ct),
        }
        .map_err(|_| EncryptError::Decrypt)?;
        String::from_utf8(pt).map_err(|_| EncryptError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    const DOC_KEY: &str = "1eb5b0e971ad7f45324c1bb15c947cb207c43152fa5c6c7f35c4f36e0c18e0f1";

    /// imgproxy's documented example ("Encrypting a source URL").
    #[test]
    fn imgproxy_documented_example() {
        let c = SourceCipher::from_hex(DOC_KEY).unwrap();
        let iv: [u8; 16] = hex::decode("A79563A2B35D86CEE6451C3C800F535A").unwrap().try_into().unwrap();
        let out = c.encrypt_with_iv("http://example.com/images/curiosity.jpg", &iv);
        assert_eq!(
            URL_SAFE_NO_PAD.encode(&out),
            "p5VjorNdhs7mRRw8gA9TWoRlGci3l1kuzqN43UQlRaRIQ0qtBKW3qFABIsx-ZRz_cVc8iVTYbhsNsxNBL1BHaQ"
        );
        assert_eq!(c.decrypt(&out).unwrap(), "http://example.com/images/curiosity.jpg");
    }

    #[test]
    fn deterministic_round_trip_and_failures() {
        let c = SourceCipher::from_hex(DOC_KEY).unwrap();
        let a = c.encrypt("local:///a.jpg");
        assert_eq!(a, c.encrypt("local:///a.jpg"));
        assert_ne!(a, c.encrypt("local:///b.jpg"));
        assert_eq!(c.decrypt(&a).unwrap(), "local:///a.jpg");
        let mut t = a.clone();
        *t.last_mut().unwrap() ^= 1;
        assert_eq!(c.decrypt(&t), Err(EncryptError::Decrypt));
        assert_eq!(c.decrypt(&a[..a.len() - 1]), Err(EncryptError::Decrypt));
        assert_eq!(c.decrypt(&a[..16]), Err(EncryptError::Decrypt));
        let other = SourceCipher::from_hex(&"ab".repeat(32)).unwrap();
        assert!(other.decrypt(&a).is_err() || other.decrypt(&a).unwrap() != "local:///a.jpg");
        for (k, n) in [("00".repeat(16), 16), ("00".repeat(24), 24)] {
            let c = SourceCipher::from_hex(&k).unwrap();
            assert_eq!(c.decrypt(&c.encrypt("s3://b/k.png")).unwrap(), "s3://b/k.png", "{n}");
        }
        assert_eq!(SourceCipher::from_hex("abc").unwrap_err(), EncryptError::KeyNotHex);
        assert_eq!(SourceCipher::from_hex(&"00".repeat(20)).unwrap_err(), EncryptError::KeySize(20));
        assert!(!format!("{c:?}").contains("1eb5"));
    }
}
