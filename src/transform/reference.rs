//! Benchmark and test support: an in-process libvips reference for the load benchmark, and
//! reference pixels and perceptual scores for the bandwidth benchmark.

use super::pipeline::thumbnail;
use super::{render, ssimulacra2, EncodeSettings, RenderRequest};
use crate::options::{Format, Options};
use crate::vips::Img;

/// In-process reference for the load benchmark: what a minimal libvips program does for
/// `w:{width}` at quality `q`: thumbnail (shrink-on-load, colour-managed to sRGB) and save with
/// the same saver options imago uses. No probe, no metadata pass, no HTTP.
pub fn reference_thumbnail(buf: &[u8], width: u32, format: Format, q: u8) -> Result<Vec<u8>, String> {
    let head = Img::from_buffer(buf, "")?;
    let height = ((width as f64) * head.height() as f64 / head.width() as f64).round().max(1.0) as u32;
    let icc = head.has(c"icc-profile-data");
    drop(head);
    let img = thumbnail(buf, width, height, true, icc, None)?;
    let suffix = match format {
        Format::Webp => format!(".webp[Q={q},effort=4,strip=true]"),
        _ => format!(".jpg[Q={q},optimize_coding=true,interlace=true,strip=true]"),
    };
    img.save(&suffix)
}

/// Benchmark support: the upright, resized, unencoded sRGB pixels of `buf` at `width` (the
/// reference perceptual scores are measured against).
pub fn reference_pixels(buf: &[u8], width: u32, enc: &EncodeSettings) -> Result<(Vec<u8>, u32, u32), String> {
    // The same pipeline as every variant, encoded losslessly.
    let opts = Options { width, format: crate::options::FormatChoice::Explicit(Format::Png), ..Options::default() };
    let req = RenderRequest { options: opts, accept: crate::negotiate::AcceptClass::Legacy, save_data: false };
    let png = render(buf, &req, enc).map_err(|e| e.to_string())?;
    // A local, not a tail-expression temporary: the image must be dropped before `png`.
    let img = Img::from_buffer(&png.bytes, "")?;
    img.to_rgb8()
}

/// Benchmark support: SSIMULACRA2 of an encoded image against reference pixels.
pub fn score_encoded(encoded: &[u8], reference: &(Vec<u8>, u32, u32)) -> Option<f64> {
    let d = Img::from_buffer(encoded, "").and_then(|i| i.to_rgb8()).ok()?;
    if (d.1, d.2) != (reference.1, reference.2) {
        return None;
    }
    ssimulacra2(&reference.0, &d.0, d.1, d.2)
}
