//! Uploads: image info (`GET /v1/images/{key}/info`). Header facts from a header-only load and a
//! tiny upright sRGB RGBA thumbnail (for the thumbhash and the dominant colour, computed in
//! `upload::info`).

use super::pipeline::{fail, source_format, thumbnail, to_8bit_srgb};
use super::{sniff, TransformError};
use crate::vips::{Img, Interpretation};

/// What `/info` reports from libvips.
#[derive(Clone, Debug)]
pub struct InfoFacts {
    pub format: &'static str,
    /// Pixel dimensions as stored (before EXIF orientation).
    pub stored_width: u32,
    pub stored_height: u32,
    /// Upright dimensions (after EXIF orientation): what the proxy serves.
    pub width: u32,
    pub height: u32,
    pub orientation: u8,
    pub has_alpha: bool,
    pub frames: u32,
    pub bands: i32,
    /// libvips interpretation nickname: `srgb`, `cmyk`, `b-w`, `rgb16`, `grey16`, …
    pub interpretation: String,
    /// Sample format nickname: `uchar`, `ushort`, `float`, …
    pub band_format: String,
    /// The embedded ICC profile, if any.
    pub icc: Option<Vec<u8>>,
    pub thumb_width: u32,
    pub thumb_height: u32,
    /// `thumb_width × thumb_height × 4` bytes of upright sRGB RGBA.
    pub thumb_rgba: Vec<u8>,
}

/// Header facts (no pixel decode) plus an upright sRGB RGBA thumbnail that fits in
/// `thumb_box`×`thumb_box`, refusing sources above `max_megapixels` before any decode.
pub fn info_facts(buf: &[u8], thumb_box: u32, max_megapixels: f64) -> Result<InfoFacts, TransformError> {
    let sniffed = sniff(buf).ok_or_else(|| {
        TransformError::Unsupported("not a JPEG, PNG, GIF, WebP, AVIF/HEIC, TIFF or JPEG XL image".into())
    })?;
    let head = Img::from_buffer(buf, "").map_err(TransformError::Undecodable)?;
    let orientation = head.get_int(c"orientation").unwrap_or(1).clamp(1, 8) as u8;
    let frames = head.get_int(c"n-pages").unwrap_or(1).max(1) as u32;
    let (sw, sh) = (head.width(), head.height());
    let (w, h) = if orientation >= 5 { (sh, sw) } else { (sw, sh) };
    let mp = w as f64 * h as f64 / 1e6;
    if mp > max_megapixels {
        return Err(TransformError::TooManyPixels { megapixels: mp, limit: max_megapixels });
    }
    let icc = head.get_blob(c"icc-profile-data");
    let cmyk = head.interpretation() == Interpretation::Cmyk;
    let mut facts = InfoFacts {
        format: source_format(&head, sniffed),
        stored_width: sw,
        stored_height: sh,
        width: w,
        height: h,
        orientation,
        has_alpha: head.has_alpha(),
        frames,
        bands: head.bands(),
        interpretation: head.interpretation_nick(),
        band_format: head.band_format_nick(),
        icc,
        thumb_width: 0,
        thumb_height: 0,
        thumb_rgba: Vec::new(),
    };
    drop(head);
    let scale = (thumb_box as f64 / w.max(h) as f64).min(1.0);
    let tw = ((w as f64 * scale).round() as u32).clamp(1, thumb_box);
    let th = ((h as f64 * scale).round() as u32).clamp(1, thumb_box);
    let mut img = thumbnail(buf, tw, th, true, facts.icc.is_some() || cmyk, None).map_err(fail)?;
    img = to_8bit_srgb(img).map_err(fail)?;
    if img.bands() < 3 {
        img = img.colourspace(Interpretation::Srgb).map_err(fail)?;
    }
    if img.bands() == 3 {
        img = img.bandjoin_const(255.0).map_err(fail)?;
    }
    if img.bands() != 4 || !img.is_uchar() {
        return Err(TransformError::Undecodable(format!("thumbnail has {} bands", img.bands())));
    }
    let (tw, th) = (img.width(), img.height());
    let px = img.raw_pixels().map_err(fail)?;
    if px.len() != (tw * th * 4) as usize {
        return Err(TransformError::Undecodable("thumbnail size mismatch".into()));
    }
    facts.thumb_width = tw;
    facts.thumb_height = th;
    facts.thumb_rgba = px;
    Ok(facts)
}
