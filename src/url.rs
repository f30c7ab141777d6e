//! Splitting an imgproxy-format path into signature, options and source.
//!
//! `/{signature}/{options…}/plain/{percent-encoded source}@{ext}` or
//! `/{signature}/{options…}/{base64url source, may be /-chunked}.{ext}`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Why a path could not be split.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
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
}

/// Longest path accepted.
pub const MAX_PATH_LEN: usize = 8192;

/// A split request path. Borrowed parts point into the raw path.
#[derive(Debug, PartialEq, Eq)]
pub struct SplitPath<'a> {
    /// The first segment (a signature, or `insecure`/`_`).
    pub signature: &'a str,
    /// Everything the signature covers: the path after the signature, with its leading `/`.
    pub signed: &'a str,
    /// Option segments (`name:arg:arg`), in order.
    pub options: Vec<&'a str>,
    /// The decoded source string (`local:///…`, `s3://…`, `http(s)://…`).
    pub source: String,
    /// The extension after `@` (plain) or `.` (base64), lower-cased.
    pub extension: Option<String>,
}

/// Splits a raw (not percent-decoded) request path.
pub fn split(path: &str) -> Result<SplitPath<'_>, UrlError> {
    if path.len() > MAX_PATH_LEN {
        return Err(UrlError::TooLong(path.len()));
    }
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (signature, after) = rest.split_once('/').ok_or(UrlError::MissingSignature)?;
    if signature.is_empty() {
        return Err(UrlError::MissingSignature);
    }
    let signed = &path[path.len() - after.len() - 1..];
    let mut options = Vec::new();
    let mut remaining = after;
    loop {
        let (seg, next) = match remaining.split_once('/') {
            Some((s, n)) => (s, Some(n)),
            None => (remaining, None),
        };
        if seg == "plain" {
            let src = next.ok_or(UrlError::MissingSource)?;
            let (src, ext) = match src.rfind('@') {
                Some(i) if i > 0 => (&src[..i], Some(&src[i + 1..])),
                _ => (src, None),
            };
            let decoded =
                percent_encoding::percent_decode_str(src).decode_utf8().map_err(|_| UrlError::BadUtf8)?.into_owned();
            if !valid_percent(src) {
                return Err(UrlError::BadPercentEncoding);
            }
            if decoded.is_empty() {
                return Err(UrlError::MissingSource);
            }
            return Ok(SplitPath { signature, signed, options, source: decoded, extension: ext_of(ext) });
        }
        if seg.contains(':') && next.is_some() {
            options.push(seg);
            remaining = next.unwrap_or_default();
            continue;
        }
        // The base64 source: this segment and everything after it.
        let joined: String = remaining.split('/').collect();
        let (b64, ext) = match joined.rfind('.') {
            Some(i) => (&joined[..i], Some(&joined[i + 1..])),
            None => (joined.as_str(), None),
        };
        if b64.is_empty() {
            return Err(UrlError::MissingSource);
        }
        let bytes = URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')).map_err(|_| UrlError::BadBase64)?;
        let source = String::from_utf8(bytes).map_err(|_| UrlError::BadUtf8)?;
        return Ok(SplitPath { signature, signed, options, source, extension: ext_of(ext) });
    }
}

fn ext_of(e: Option<&str>) -> Option<String> {
    e.filter(|e| !e.is_empty()).map(|e| e.to_ascii_lowercase())
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

    #[test]
    fn imgproxy_base64_example() {
        let p = "/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png";
        let s = split(p).unwrap();
        assert_eq!(s.signature, "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8");
        assert_eq!(s.signed, "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png");
        assert_eq!(s.options, vec!["rs:fill:300:400:0", "g:sm"]);
        assert_eq!(s.source, "http://example.com/images/curiosity.jpg");
        assert_eq!(s.extension.as_deref(), Some("png"));
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
    }

    #[test]
    fn base64_without_extension_and_no_options() {
        let enc = URL_SAFE_NO_PAD.encode("local:///a.jpg");
        let p = format!("/_/{enc}");
        let s = split(&p).unwrap();
        assert_eq!(s.source, "local:///a.jpg");
        assert_eq!(s.extension, None);
    }

    #[test]
    fn errors() {
        assert_eq!(split("/").unwrap_err(), UrlError::MissingSignature);
        assert_eq!(split("/sig").unwrap_err(), UrlError::MissingSignature);
        assert_eq!(split("//w:1/plain/x").unwrap_err(), UrlError::MissingSignature);
        assert_eq!(split("/sig/w:1/plain").unwrap_err(), UrlError::MissingSource);
        assert_eq!(split("/sig/w:1/plain/").unwrap_err(), UrlError::MissingSource);
        assert_eq!(split("/sig/w:1/!!!.jpg").unwrap_err(), UrlError::BadBase64);
        assert_eq!(split("/sig/plain/a%2").unwrap_err(), UrlError::BadPercentEncoding);
        assert_eq!(split("/sig/plain/a%zzb").unwrap_err(), UrlError::BadPercentEncoding);
        assert_eq!(split("/sig/plain/%ff%fe").unwrap_err(), UrlError::BadUtf8);
        assert!(matches!(split(&format!("/s/{}", "a".repeat(9000))).unwrap_err(), UrlError::TooLong(_)));
        assert_eq!(split("/sig/w:1/.png").unwrap_err(), UrlError::MissingSource);
    }
}
