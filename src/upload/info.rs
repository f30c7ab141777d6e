//! `GET /v1/images/{key}/info`: what an image is, from a header-only load plus a tiny thumbnail
//! (libvips in [`crate::transform::info_facts`]): dimensions, format, orientation, alpha, frames,
//! colour space and ICC profile description, the dominant colour and a ThumbHash placeholder.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;

use crate::transform::InfoFacts;

/// Bumped when the info JSON for the same bytes could change (part of the ETag).
pub const INFO_VERSION: u32 = 1;

/// Largest thumbnail side used for the ThumbHash (the crate's limit is 100).
pub const THUMB_BOX: u32 = 100;

/// The `/info` body.
#[derive(Clone, Debug, Serialize)]
pub struct ImageInfo {
    pub key: String,
    pub source: String,
    pub format: &'static str,
    /// Upright size (after EXIF orientation), as the proxy serves it.
    pub width: u32,
    pub height: u32,
    /// Size of the stored pixels (before orientation).
    pub stored_width: u32,
    pub stored_height: u32,
    pub bytes: u64,
    pub orientation: u8,
    pub has_alpha: bool,
    pub frames: u32,
    pub bands: i32,
    pub colour_space: String,
    pub sample_format: String,
    /// The embedded ICC profile's description, or null.
    pub icc_profile: Option<String>,
    /// `#rrggbb`
    pub dominant_colour: String,
    /// ThumbHash, standard base64.
    pub thumbhash: String,
}

/// Reads the description of an ICC profile (`desc` tag: v2 `desc` or v4 `mluc`).
pub fn icc_description(icc: &[u8]) -> Option<String> {
    let u32_at = |o: usize| icc.get(o..o + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let count = u32_at(128)? as usize;
    for i in 0..count.min(100) {
        let e = 132 + i * 12;
        if icc.get(e..e + 4)? != b"desc" {
            continue;
        }
        let (off, size) = (u32_at(e + 4)? as usize, u32_at(e + 8)? as usize);
        let tag = icc.get(off..off.checked_add(size)?)?;
        return match tag.get(0..4)? {
            b"desc" => {
                let n = u32::from_be_bytes(tag.get(8..12)?.try_into().ok()?) as usize;
                let s = tag.get(12..12 + n)?;
                let s = s.split(|b| *b == 0).next().unwrap_or(s);
                Some(String::from_utf8_lossy(s).trim().to_string())
            }
            b"mluc" => {
                let records = u32::from_be_bytes(tag.get(8..12)?.try_into().ok()?);
                if records == 0 {
                    return None;
                }
                let len = u32::from_be_bytes(tag.get(20..24)?.try_into().ok()?) as usize;
                let at = u32::from_be_bytes(tag.get(24..28)?.try_into().ok()?) as usize;
                let raw = tag.get(at..at + len)?;
                let units: Vec<u16> = raw.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
                Some(String::from_utf16_lossy(&units).trim_end_matches('\0').trim().to_string())
            }
            _ => None,
        }
        .filter(|s| !s.is_empty());
    }
    None
}

/// The most common colour: pixels (alpha ≥ 128) binned at 4 bits per channel, the fullest bin's
/// mean. Falls back to the mean of all pixels when everything is transparent.
pub fn dominant_colour(rgba: &[u8]) -> [u8; 3] {
    let mut count = vec![0u32; 4096];
    let mut sums = vec![[0u64; 3]; 4096];
    let mut all = [0u64; 4];
    for p in rgba.chunks_exact(4) {
        all[0] += p[0] as u64;
        all[1] += p[1] as u64;
        all[2] += p[2] as u64;
        all[3] += 1;
        if p[3] < 128 {
            continue;
        }
        let bin = ((p[0] as usize >> 4) << 8) | ((p[1] as usize >> 4) << 4) | (p[2] as usize >> 4);
        count[bin] += 1;
        for c in 0..3 {
            sums[bin][c] += p[c] as u64;
        }
    }
    let (best, n) = count.iter().enumerate().max_by_key(|(_, n)| **n).map(|(i, n)| (i, *n)).unwrap_or((0, 0));
    if n == 0 {
        let d = all[3].max(1);
        return [(all[0] / d) as u8, (all[1] / d) as u8, (all[2] / d) as u8];
    }
    let s = sums[best];
    let n = n as u64;
    [(s[0] / n) as u8, (s[1] / n) as u8, (s[2] / n) as u8]
}

/// Builds the `/info` body from libvips' facts.
pub fn build(key: &str, source: String, bytes: u64, f: &InfoFacts) -> ImageInfo {
    let [r, g, b] = dominant_colour(&f.thumb_rgba);
    let hash = thumbhash::rgba_to_thumb_hash(f.thumb_width as usize, f.thumb_height as usize, &f.thumb_rgba);
    ImageInfo {
        key: key.to_string(),
        source,
        format: f.format,
        width: f.width,
        height: f.height,
        stored_width: f.stored_width,
        stored_height: f.stored_height,
        bytes,
        orientation: f.orientation,
        has_alpha: f.has_alpha,
        frames: f.frames,
        bands: f.bands,
        colour_space: f.interpretation.clone(),
        sample_format: f.band_format.clone(),
        icc_profile: f.icc.as_deref().and_then(icc_description),
        dominant_colour: format!("#{r:02x}{g:02x}{b:02x}"),
        thumbhash: B64.encode(hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominant_colour_picks_the_biggest_bin() {
        let mut px = Vec::new();
        for _ in 0..10 {
            px.extend_from_slice(&[200, 10, 10, 255]);
        }
        for _ in 0..4 {
            px.extend_from_slice(&[0, 0, 250, 255]);
        }
        for _ in 0..50 {
            px.extend_from_slice(&[0, 255, 0, 0]);
        }
        assert_eq!(dominant_colour(&px), [200, 10, 10]);
        assert_eq!(dominant_colour(&[10, 20, 30, 0]), [10, 20, 30]);
    }

    #[test]
    fn icc_v2_and_v4_descriptions() {
        // A v2 profile with one `desc` tag.
        let mut p = vec![0u8; 128];
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(b"desc");
        p.extend_from_slice(&144u32.to_be_bytes());
        let text = b"Display X\0";
        let tag_len = 12 + text.len();
        p.extend_from_slice(&(tag_len as u32).to_be_bytes());
        p.extend_from_slice(b"desc\0\0\0\0");
        p.extend_from_slice(&(text.len() as u32).to_be_bytes());
        p.extend_from_slice(text);
        assert_eq!(icc_description(&p).as_deref(), Some("Display X"));
        // v4 `mluc`.
        let mut q = vec![0u8; 128];
        q.extend_from_slice(&1u32.to_be_bytes());
        q.extend_from_slice(b"desc");
        q.extend_from_slice(&144u32.to_be_bytes());
        let utf16: Vec<u8> = "sP3C".encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        q.extend_from_slice(&((28 + utf16.len()) as u32).to_be_bytes());
        q.extend_from_slice(b"mluc\0\0\0\0");
        q.extend_from_slice(&1u32.to_be_bytes());
        q.extend_from_slice(&12u32.to_be_bytes());
        q.extend_from_slice(b"enUS");
        q.extend_from_slice(&(utf16.len() as u32).to_be_bytes());
        q.extend_from_slice(&28u32.to_be_bytes());
        q.extend_from_slice(&utf16);
        assert_eq!(icc_description(&q).as_deref(), Some("sP3C"));
        assert_eq!(icc_description(&q[..150]), None);
        assert_eq!(icc_description(b"short"), None);
    }
}
