//! Watermark, fallback image and encrypted source URLs (issue #20), as imgproxy configures them
//! (`IMGPROXY_WATERMARK_*`, `IMGPROXY_FALLBACK_IMAGE_*`, `IMGPROXY_SOURCE_URL_ENCRYPTION_KEY`):
//! typed and checked at start. Errors name the setting and never quote a key.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use imago_signing::SourceCipher;

use super::RawConfig;

/// Where an auxiliary image (the watermark, the fallback image) comes from.
#[derive(Clone, Default)]
pub enum AuxSource {
    /// Not configured.
    #[default]
    None,
    /// `_PATH` (read at start) or `_DATA` (base64, decoded at start): the encoded bytes.
    Bytes(Arc<[u8]>),
    /// `_URL`: any imago source (`http(s)://`, `s3://`, `local:///`), fetched through the source
    /// layer (its allow-list and limits) on first use, then kept for the life of the process.
    Url(String),
}

impl std::fmt::Debug for AuxSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuxSource::None => f.write_str("None"),
            AuxSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            AuxSource::Url(u) => write!(f, "Url({})", super::without_userinfo(u)),
        }
    }
}

impl AuxSource {
    pub fn is_some(&self) -> bool {
        !matches!(self, AuxSource::None)
    }
}

/// The typed settings of this file.
#[derive(Clone, Debug, Default)]
pub struct MediaSettings {
    pub watermark: AuxSource,
    /// `IMAGO_WATERMARK_OPACITY` (0-1): multiplies the `wm:` opacity, as imgproxy's.
    pub watermark_opacity: f64,
    pub fallback: AuxSource,
    /// `IMAGO_FALLBACK_IMAGE_HTTP_CODE`: the status of a fallback response; 0 = the status of
    /// the error it replaces (imgproxy's rule).
    pub fallback_status: u16,
    /// `IMAGO_FALLBACK_IMAGE_TTL`: `Cache-Control: public, max-age=N` of a fallback (0: `no-store`).
    pub fallback_ttl: u64,
    /// `IMAGO_SOURCE_URL_ENCRYPTION_KEY`: decrypts `/enc/` sources. Its `Debug` shows no key.
    pub source_cipher: Option<SourceCipher>,
}

type Fail = (&'static str, String);

/// One of `_PATH`, `_DATA`, `_URL` (more than one is refused: which one wins would be a guess).
fn aux_source(
    names: [&'static str; 3],
    path: Option<&Path>,
    data: Option<&str>,
    url: Option<&str>,
    max_bytes: u64,
) -> Result<AuxSource, Fail> {
    let set = [path.is_some(), data.is_some_and(|d| !d.trim().is_empty()), url.is_some_and(|u| !u.trim().is_empty())];
    if set.iter().filter(|s| **s).count() > 1 {
        return Err((names[0], format!("set only one of {}, {} and {}", names[0], names[1], names[2])));
    }
    let bytes = if let Some(p) = path {
        std::fs::read(p).map_err(|e| (names[0], format!("cannot read {}: {e}", p.display())))?
    } else if let Some(d) = data.filter(|_| set[1]) {
        let clean: String = d.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(clean.trim_end_matches('=').as_bytes())
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(clean.trim_end_matches('=')))
            .map_err(|_| (names[1], "is not valid base64".to_string()))?
    } else if let Some(u) = url.filter(|_| set[2]) {
        return Ok(AuxSource::Url(u.trim().to_string()));
    } else {
        return Ok(AuxSource::None);
    };
    if bytes.is_empty() {
        return Err((if set[0] { names[0] } else { names[1] }, "is empty".into()));
    }
    if bytes.len() as u64 > max_bytes {
        return Err((if set[0] { names[0] } else { names[1] }, "is larger than IMAGO_MAX_SRC_BYTES".into()));
    }
    Ok(AuxSource::Bytes(bytes.into()))
}

impl MediaSettings {
    pub fn from_raw(r: &RawConfig) -> Result<MediaSettings, Fail> {
        let watermark = aux_source(
            ["IMAGO_WATERMARK_PATH", "IMAGO_WATERMARK_DATA", "IMAGO_WATERMARK_URL"],
            r.watermark_path.as_deref(),
            r.watermark_data.as_deref(),
            r.watermark_url.as_deref(),
            r.max_src_bytes,
        )?;
        let fallback = aux_source(
            ["IMAGO_FALLBACK_IMAGE_PATH", "IMAGO_FALLBACK_IMAGE_DATA", "IMAGO_FALLBACK_IMAGE_URL"],
            r.fallback_image_path.as_deref(),
            r.fallback_image_data.as_deref(),
            r.fallback_image_url.as_deref(),
            r.max_src_bytes,
        )?;
        if !(0.0..=1.0).contains(&r.watermark_opacity) {
            return Err(("IMAGO_WATERMARK_OPACITY", "must be between 0 and 1".into()));
        }
        if r.fallback_image_http_code != 0 && !(100..=599).contains(&r.fallback_image_http_code) {
            return Err(("IMAGO_FALLBACK_IMAGE_HTTP_CODE", "must be an HTTP status (100-599) or 0".into()));
        }
        let source_cipher = match r.source_url_encryption_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            None => None,
            // The error says what is wrong with the key, never the key.
            Some(k) => Some(SourceCipher::from_hex(k).map_err(|e| ("IMAGO_SOURCE_URL_ENCRYPTION_KEY", e.to_string()))?),
        };
        Ok(MediaSettings {
            watermark,
            watermark_opacity: r.watermark_opacity,
            fallback,
            fallback_status: r.fallback_image_http_code,
            fallback_ttl: r.fallback_image_ttl,
            source_cipher,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_opacity_status_and_key() {
        let mut r = RawConfig::default();
        let m = MediaSettings::from_raw(&r).unwrap();
        assert!(!m.watermark.is_some() && !m.fallback.is_some() && m.source_cipher.is_none());
        assert_eq!((m.fallback_status, m.fallback_ttl, m.watermark_opacity), (200, 60, 1.0));
        r.watermark_data = Some("iVBORw0KGgo=".into());
        assert!(matches!(MediaSettings::from_raw(&r).unwrap().watermark, AuxSource::Bytes(b) if b.len() == 8));
        r.watermark_url = Some("https://cdn.example.com/wm.png".into());
        assert_eq!(MediaSettings::from_raw(&r).unwrap_err().0, "IMAGO_WATERMARK_PATH");
        r.watermark_data = None;
        assert!(matches!(MediaSettings::from_raw(&r).unwrap().watermark, AuxSource::Url(_)));
        r.fallback_image_data = Some("not base64!".into());
        assert_eq!(MediaSettings::from_raw(&r).unwrap_err().0, "IMAGO_FALLBACK_IMAGE_DATA");
        r.fallback_image_data = None;
        r.fallback_image_path = Some("/nonexistent/fallback.png".into());
        assert_eq!(MediaSettings::from_raw(&r).unwrap_err().0, "IMAGO_FALLBACK_IMAGE_PATH");
        r.fallback_image_path = None;
        r.watermark_opacity = 1.5;
        assert_eq!(MediaSettings::from_raw(&r).unwrap_err().0, "IMAGO_WATERMARK_OPACITY");
        r.watermark_opacity = 0.5;
        r.fallback_image_http_code = 42;
        assert_eq!(MediaSettings::from_raw(&r).unwrap_err().0, "IMAGO_FALLBACK_IMAGE_HTTP_CODE");
        r.fallback_image_http_code = 0;
        let key = "c0ffee00".repeat(5);
        r.source_url_encryption_key = Some(key.clone());
        let e = MediaSettings::from_raw(&r).unwrap_err();
        assert_eq!(e.0, "IMAGO_SOURCE_URL_ENCRYPTION_KEY");
        assert!(!e.1.contains(&key), "{}", e.1);
        r.source_url_encryption_key = Some("c0ffee00".repeat(8));
        let m = MediaSettings::from_raw(&r).unwrap();
        assert!(m.source_cipher.is_some());
        assert!(!format!("{m:?}").contains("c0ffee"));
    }
}
