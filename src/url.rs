//! Splitting an imgproxy-format path into signature, options and source (SPEC §2, §3).
//!
//! `/{signature}/{options…}/plain/{percent-encoded source}@{ext}` or
//! `/{signature}/{options…}/{base64url source, may be /-chunked}.{ext}`.
//!
//! Option segments are the segments that contain a `:`; the first segment without one starts the
//! source. Source problems do not fail [`split`]: they are kept in [`SplitPath::source_error`]
//! and reported by [`crate::signature::check`] after the signature passed, so unsigned requests
//! learn nothing about the parser (SPEC §8: signature → parse → expiry → fetch).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use imago_signing::SourceCipher;

/// Why a path could not be split.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("the path is too long ({0} bytes)")]
    TooLong(usize),
    #[error("the path has no signature segment")]
    MissingSignature,
    #[error("the path has no source")]
    MissingSource,
    #[error("the source is not valid base64url")]
    BadBase64,
    #[error("the source is not valid UTF-8")]
    BadUtf8,
    #[error("the source is not correctly percent-encoded")]
    BadPercentEncoding,
    #[error("`{0}` is not an output extension (jpg, png, webp, avif, gif, jxl)")]
    BadExtension(String),
    /// An `/enc/` source that does not decrypt (wrong key, tampered, truncated, bad padding, not
    /// UTF-8: one error, so nothing tells a padding failure apart), or no key is configured.
    #[error("the encrypted source cannot be decrypted{}", if *.0 { "" } else { ": no IMAGO_SOURCE_URL_ENCRYPTION_KEY is configured" })]
    Encrypted(bool),
}

impl UrlError {
    /// The error code answered (SPEC §8): every source problem is `invalid-source`; a path that
    /// is not an image URL at all (too long, no signature segment) is `invalid-url`.
    pub fn code(&self) -> &'static str {
        match self {
            UrlError::TooLong(_) | UrlError::MissingSignature => "invalid-url",
            UrlError::MissingSource
            | UrlError::BadBase64
            | UrlError::BadUtf8
            | UrlError::BadPercentEncoding
            | UrlError::BadExtension(_) => "invalid-source",
            UrlError::Encrypted(_) => "invalid-encrypted-source",
        }
    }
}

/// Longest path accepted.
pub const MAX_PATH_LEN: usize = 8192;

/// Extensions accepted after `@`/`.` (compared lower-cased). SPEC §3.3 lists `jpg png webp avif
/// gif jxl`; imago also takes `jpeg` and `auto` (negotiated, like `f:auto`; `imago sign --format auto`).
pub const EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "webp", "avif", "gif", "auto", "jxl"];

/// base64url without padding; like Go's `RawURLEncoding` (imgproxy) it ignores non-zero
/// trailing bits.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// A split request path. Borrowed parts point into the raw path.
#[derive(Debug, PartialEq, Eq)]
pub struct SplitPath<'a> {
    /// The first segment (a signature, or `insecure`/`_`; may be empty, which never verifies).
    pub signature: &'a str,
    /// Everything the signature covers: the path after the signature, with its leading `/`.
    pub signed: &'a str,
    /// Option segments (`name:arg:arg`), in order.
    pub options: Vec<&'a str>,
    /// The decoded source string (`local:///…`, `s3://…`, `http(s)://…`); empty when
    /// `source_error` is set.
    pub source: String,
    /// The extension after `@` (plain) or `.` (base64), lower-cased.
    pub extension: Option<String>,
    /// A malformed source part (`invalid-source`), reported after the signature check.
    pub source_error: Option<UrlError>,
}

/// Splits a raw (not percent-decoded) request path. Fails only when the path has no signature
/// segment or is too long; source errors are in [`SplitPath::source_error`]. An `/enc/` source
/// is an error here (no key): see [`split_with`].
pub fn split(path: &str) -> Result<SplitPath<'_>, UrlError> {
    split_with(path, None)
}

/// [`split`], decrypting an `/enc/{base64url(IV ‖ AES-CBC(source))}` source (SPEC §3.4) with
/// `cipher` (`IMAGO_SOURCE_URL_ENCRYPTION_KEY`). A source that does not decrypt is a deferred
/// [`UrlError::Encrypted`], reported only after the signature passed: an unsigned client never
/// learns whether its ciphertext decrypted (no padding oracle).
pub fn split_with<'a>(path: &'a str, cipher: Option<&SourceCipher>) -> Result<SplitPath<'a>, UrlError> {
    if path.len() > MAX_PATH_LEN {
        return Err(UrlError::TooLong(path.len()));
    }
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (signature, after) = rest.split_once('/').ok_or(UrlError::MissingSignature)?;
    let signed = &path[path.len() - after.len() - 1..];
    let mut options = Vec::new();
    let mut remaining = Some(after);
    while let Some(r) = remaining {
        let (seg, next) = match r.split_once('/') {
            Some((s, n)) => (s, Some(n)),
            None => (r, None),
        };
        if !seg.contains(':') {
            break;
        }
        options.push(seg);
        remaining = next;
    }
    let mut out = SplitPath { signature, signed, options, source: String::new(), extension: None, source_error: None };
    match remaining.map(|r| parse_source(r, cipher)).unwrap_or(Err(UrlError::MissingSource)) {
        Ok((source, extension)) => {
            out.source = source;
            out.extension = extension;
        }
        Err(e) => out.source_error = Some(e),
    }
    Ok(out)
}

impl SplitPath<'_> {
    /// The source, or the source error.
    pub fn checked_source(&self) -> Result<&str, UrlError> {
        match &self.source_error {
            Some(e) => Err(e.clone()),
            None => Ok(&self.source),
        }
    }
}

/// Parses the source part (everything from the first non-option segment on).
fn parse_source(part: &str, cipher: Option<&SourceCipher>) -> Result<(String, Option<String>), UrlError> {
    if let Some(enc) = part.strip_prefix("enc/").or(if part == "enc" { Some("") } else { None }) {
        let (bytes, ext) = base64_part(enc)?;
        let cipher = cipher.ok_or(UrlError::Encrypted(false))?;
        let source = cipher.decrypt(&bytes).map_err(|_| UrlError::Encrypted(true))?;
        if source.is_empty() {
            return Err(UrlError::MissingSource);
        }
        return Ok((source, checked_extension(ext.as_deref())?));
    }
    if let Some(src) = part.strip_prefix("plain/").or(if part == "plain" { Some("") } else { None }) {
        let (src, ext) = match src.rfind('@') {
            Some(i) => (&src[..i], Some(&src[i + 1..])),
            None => (src, None),
        };
        if !valid_percent(src) {
            return Err(UrlError::BadPercentEncoding);
        }
        let decoded =
            percent_encoding::percent_decode_str(src).decode_utf8().map_err(|_| UrlError::BadUtf8)?.into_owned();
        if decoded.is_empty() {
            return Err(UrlError::MissingSource);
        }
        return Ok((decoded, checked_extension(ext)?));
    }
    let (bytes, ext) = base64_part(part)?;
    let source = String::from_utf8(bytes).map_err(|_| UrlError::BadUtf8)?;
    Ok((source, checked_extension(ext.as_deref())?))
}

/// A base64url part (`/`-chunks joined without separators) and its `.ext`.
fn base64_part(part: &str) -> Result<(Vec<u8>, Option<String>), UrlError> {
    let joined: String = part.split('/').collect();
    let (b64, ext) = match joined.rfind('.') {
        Some(i) => (&joined[..i], Some(joined[i + 1..].to_string())),
        None => (joined.as_str(), None),
    };
    let b64 = b64.trim_end_matches('=');
    if b64.is_empty() {
        return Err(UrlError::MissingSource);
    }
    Ok((B64.decode(b64).map_err(|_| UrlError::BadBase64)?, ext))
}

fn checked_extension(e: Option<&str>) -> Result<Option<String>, UrlError> {
    match e {
        None => Ok(None),
        Some(e) => {
            let lower = e.to_ascii_lowercase();
            if EXTENSIONS.contains(&lower.as_str()) {
                Ok(Some(lower))
            } else {
                Err(UrlError::BadExtension(e.to_string()))
            }
        }
    }
}

fn valid_percent(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn source_err(p: &str) -> UrlError {
        split(p).unwrap().source_error.unwrap_or_else(|| panic!("{p}: no source error"))
    }

    #[test]
    fn imgproxy_base64_example() {
        let p = "/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png";
        let s = split(p).unwrap();
        assert_eq!(s.signature, "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8");
        assert_eq!(s.signed, "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png");
        assert_eq!(s.options, vec!["rs:fill:300:400:0", "g:sm"]);
        assert_eq!(s.source, "http://example.com/images/curiosity.jpg");
        assert_eq!(s.extension.as_deref(), Some("png"));
        assert_eq!(s.source_error, None);
    }

    #[test]
    fn plain_with_extension_and_escapes() {
        let s = split("/sig/w:800/q:80/plain/local:///samples/a%20b%402x.jpg@WEBP").unwrap();
        assert_eq!(s.options, vec!["w:800", "q:80"]);
        assert_eq!(s.source, "local:///samples/a b@2x.jpg");
        assert_eq!(s.extension.as_deref(), Some("webp"));
        let s = split("/sig/plain/http://example.com/x.jpg").unwrap();
        assert!(s.options.is_empty());
        assert_eq!(s.extension, None);
        assert_eq!(s.signed, "/plain/http://example.com/x.jpg");
        // Lower-case escapes decode too.
        assert_eq!(split("/sig/plain/local:///%c3%bc.jpg").unwrap().source, "local:///ü.jpg");
    }

    #[test]
    fn base64_forms() {
        let enc = URL_SAFE_NO_PAD.encode("local:///a.jpg");
        let p = format!("/_/{enc}");
        let s = split(&p).unwrap();
        assert_eq!((s.source.as_str(), s.extension.as_deref()), ("local:///a.jpg", None));
        // Padding and chunks are accepted.
        let padded = base64::engine::general_purpose::URL_SAFE.encode("local:///abc.jpg");
        assert!(padded.ends_with('='));
        assert_eq!(split(&format!("/_/{padded}.gif")).unwrap().source, "local:///abc.jpg");
        let (a, b) = enc.split_at(5);
        assert_eq!(split(&format!("/_/w:1/{a}/{b}.auto")).unwrap().extension.as_deref(), Some("auto"));
    }

    #[test]
    fn signature_errors_fail_the_split() {
        assert_eq!(split("/").unwrap_err(), UrlError::MissingSignature);
        assert_eq!(split("/sig").unwrap_err(), UrlError::MissingSignature);
        assert!(matches!(split(&format!("/s/{}", "a".repeat(9000))).unwrap_err(), UrlError::TooLong(_)));
        // An empty signature splits; the signature check refuses it.
        let s = split("//w:1/plain/local:///x").unwrap();
        assert_eq!((s.signature, s.signed), ("", "/w:1/plain/local:///x"));
    }

    #[test]
    fn encrypted_sources() {
        let c = SourceCipher::from_hex(&"1f".repeat(32)).unwrap();
        let enc = URL_SAFE_NO_PAD.encode(c.encrypt("local:///a b.jpg"));
        let p = format!("/sig/w:10/enc/{enc}.webp");
        let s = split_with(&p, Some(&c)).unwrap();
        assert_eq!(
            (s.source.as_str(), s.extension.as_deref(), s.source_error.clone()),
            ("local:///a b.jpg", Some("webp"), None)
        );
        assert_eq!(s.options, vec!["w:10"]);
        // Chunked, like base64.
        let (a, b) = enc.split_at(7);
        assert_eq!(split_with(&format!("/sig/enc/{a}/{b}"), Some(&c)).unwrap().source, "local:///a b.jpg");
        // No key, another key, a flipped bit, a cut: one deferred error.
        assert_eq!(source_err(&p), UrlError::Encrypted(false));
        let other = SourceCipher::from_hex(&"2e".repeat(32)).unwrap();
        let mut bytes = c.encrypt("local:///a b.jpg");
        bytes[20] ^= 4;
        let tampered = format!("/sig/enc/{}", URL_SAFE_NO_PAD.encode(&bytes));
        for (path, key) in [(&p, &other), (&tampered, &c)] {
            let e = split_with(path, Some(key)).unwrap().source_error;
            assert_eq!(e, Some(UrlError::Encrypted(true)), "{path}");
        }
        let cut = format!("/sig/enc/{}", &enc[..enc.len() - 4]);
        assert_eq!(split_with(&cut, Some(&c)).unwrap().source_error, Some(UrlError::Encrypted(true)));
        assert_eq!(UrlError::Encrypted(true).code(), "invalid-encrypted-source");
    }

    #[test]
    fn source_errors_are_deferred() {
        assert_eq!(source_err("/sig/w:1/plain"), UrlError::MissingSource);
        assert_eq!(source_err("/sig/w:1/plain/"), UrlError::MissingSource);
        assert_eq!(source_err("/sig/w:100"), UrlError::MissingSource);
        assert_eq!(source_err("/sig/w:1/!!!.jpg"), UrlError::BadBase64);
        assert_eq!(source_err("/sig/w:100/aHR0c$$.jpg"), UrlError::BadBase64);
        assert_eq!(source_err("/sig/w:100/aHR0cDovL2V4YW1wbGUuY29tL2EuanBnX"), UrlError::BadBase64);
        assert_eq!(source_err("/sig/plain/a%2"), UrlError::BadPercentEncoding);
        assert_eq!(source_err("/sig/plain/a%zzb"), UrlError::BadPercentEncoding);
        assert_eq!(source_err("/sig/plain/%ff%fe"), UrlError::BadUtf8);
        assert_eq!(source_err("/sig/w:1/.png"), UrlError::MissingSource);
        assert_eq!(source_err("/sig/plain/local:///a.jpg@tiff"), UrlError::BadExtension("tiff".into()));
        assert_eq!(source_err("/sig/plain/local:///a.jpg@"), UrlError::BadExtension("".into()));
        assert_eq!(source_err("/sig/bG9jYWw6Ly8vYS5qcGc.bmp"), UrlError::BadExtension("bmp".into()));
        for e in [UrlError::MissingSource, UrlError::BadBase64, UrlError::BadExtension("x".into())] {
            assert_eq!(e.code(), "invalid-source");
        }
        assert_eq!(UrlError::MissingSignature.code(), "invalid-url");
    }
}
