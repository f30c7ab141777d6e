//! Benchmark and test support: an in-process libvips reference for the load benchmark, and
//! reference pixels and perceptual scores for the bandwidth benchmark.

use super::pipeline::jpeg_shrink;
use super::quality::{encode, sample, score_sample};
use super::{render, ssimulacra2, EncodeSettings, RenderRequest};
use crate::options::{Format, Options};
use crate::vips::{Img, Kernel};

/// How a benchmark variant resizes and colour-manages (see [`reference_variant`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColourPath {
    /// libvips' thumbnail with `export_profile=srgb` (imago's JPEG path up to pipeline version
    /// 1, with progressive JPEG; still its path for other formats). Thumbnail keeps a factor of
    /// two for its resize: 4080 px → 800 px decodes at 2040 px.
    ThumbnailExport,
    /// libvips' thumbnail without colour management, then an 8-bit `icc_transform` of the
    /// resized pixels (the same pixels as `ThumbnailExport` on libvips 8.14).
    ThumbnailThenIcc,
    /// libvips' thumbnail, no colour management at all (wrong colours for tagged images: for
    /// the cost comparison only).
    ThumbnailNone,
    /// The largest JPEG shrink-on-load that keeps the output size, `resize` with the given
    /// kernel, 8-bit `icc_transform` (imago's JPEG path with Lanczos3, and sharp's shape).
    ShrinkResizeIcc(ResizeKernel),
    /// `ShrinkResizeIcc(Lanczos3)` with the profile conversion done by moxcms (a Rust CMS, the
    /// 8-bit transform cached per source profile) on the resized pixels instead of libvips' lcms
    /// path: imago's JPEG path since pipeline version 3.
    ShrinkResizeMoxcms,
}

/// The reduction kernel of [`ColourPath::ShrinkResizeIcc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeKernel {
    Linear,
    Cubic,
    Lanczos3,
}

/// One combination of the choices that set a transform's CPU and bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    pub path: ColourPath,
    /// Progressive (interlaced) JPEG.
    pub progressive: bool,
    /// Optimised Huffman tables (JPEG).
    pub optimize_coding: bool,
}

impl Variant {
    /// What imago does by default.
    pub const IMAGO: Variant =
        Variant { path: ColourPath::ShrinkResizeMoxcms, progressive: false, optimize_coding: true };
}

/// In-process reference for the load benchmark: what a minimal libvips program does for
/// `w:{width}` at quality `q` with imago's default choices ([`Variant::IMAGO`]): JPEG
/// shrink-on-load, Lanczos3 resize, colour-managed to sRGB by moxcms, saved with the same saver options imago uses. No
/// probe, no metadata pass, no HTTP.
pub fn reference_thumbnail(buf: &[u8], width: u32, format: Format, q: u8) -> Result<Vec<u8>, String> {
    reference_variant(buf, width, format, q, Variant::IMAGO)
}

/// [`reference_thumbnail`] with the choices of `v`, for measuring what each one costs.
pub fn reference_variant(buf: &[u8], width: u32, format: Format, q: u8, v: Variant) -> Result<Vec<u8>, String> {
    let head = Img::from_buffer(buf, "")?;
    let (sw, sh) = (head.width(), head.height());
    let height = ((width as f64) * sh as f64 / sw as f64).round().max(1.0) as u32;
    let icc = head.has(c"icc-profile-data");
    drop(head);
    let img = match v.path {
        ColourPath::ThumbnailExport => Img::thumbnail(buf, width, height, true, icc, "")?,
        ColourPath::ThumbnailNone => Img::thumbnail(buf, width, height, true, false, "")?,
        ColourPath::ThumbnailThenIcc => {
            let img = Img::thumbnail(buf, width, height, true, false, "")?;
            if icc {
                img.icc_to_srgb()?
            } else {
                img
            }
        }
        ColourPath::ShrinkResizeIcc(k) => {
            let shrink = jpeg_shrink(sw, sh, width, height);
            let img = Img::from_buffer(buf, &format!("shrink={shrink}"))?;
            let scale = width as f64 / img.width() as f64;
            let kernel = match k {
                ResizeKernel::Linear => Kernel::Linear,
                ResizeKernel::Cubic => Kernel::Cubic,
                ResizeKernel::Lanczos3 => Kernel::Lanczos3,
            };
            let img = img.resize_with(scale, scale, kernel)?;
            if icc {
                img.icc_to_srgb()?
            } else {
                img
            }
        }
        ColourPath::ShrinkResizeMoxcms => {
            let shrink = jpeg_shrink(sw, sh, width, height);
            let img = Img::from_buffer(buf, &format!("shrink={shrink}"))?;
            let scale = width as f64 / img.width() as f64;
            let img = img.resize_with(scale, scale, Kernel::Lanczos3)?;
            if icc {
                super::colour::icc_to_srgb(img)?
            } else {
                img
            }
        }
    };
    let suffix = match format {
        Format::Webp => format!(".webp[Q={q},effort=4,strip=true]"),
        Format::Png => ".png[strip=true]".to_string(),
        _ => format!(".jpg[Q={q},optimize_coding={},interlace={},strip=true]", v.optimize_coding, v.progressive),
    };
    img.save(&suffix)
}

/// Benchmark support: the upright, resized, unencoded sRGB pixels of `buf` at `width` (the
/// reference perceptual scores are measured against).
pub fn reference_pixels(buf: &[u8], width: u32, enc: &EncodeSettings) -> Result<(Vec<u8>, u32, u32), String> {
    // The same pipeline as every variant, encoded losslessly.
    let opts = Options { width, format: crate::options::FormatChoice::Explicit(Format::Png), ..Options::default() };
    let req = RenderRequest {
        options: opts,
        accept: crate::negotiate::AcceptClass::Legacy,
        save_data: false,
        watermark: None,
    };
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

/// Calibration support for [`super::auto_quality_prior`]: the scores q:auto's sample of the
/// variant of `buf` at `width` gets at each quality of `qs` (the variant itself when it is too
/// small for a sample), with imago's encoder settings. `IMAGO_BENCH_CALIBRATE` in the bandwidth
/// benchmark writes them for benches/fit_auto_quality.py.
pub fn sample_scores(
    buf: &[u8],
    width: u32,
    format: Format,
    qs: &[u8],
    enc: &EncodeSettings,
) -> Result<Vec<(u8, f64)>, String> {
    let opts = Options { width, format: crate::options::FormatChoice::Explicit(Format::Png), ..Options::default() };
    let req = RenderRequest {
        options: opts,
        accept: crate::negotiate::AcceptClass::Legacy,
        save_data: false,
        watermark: None,
    };
    let png = render(buf, &req, enc).map_err(|e| e.to_string())?;
    let img = Img::from_buffer(&png.bytes, "")?;
    let s = match sample(&img)? {
        Some(s) => s,
        None => return Ok(Vec::new()),
    };
    let o = Options { width, format: crate::options::FormatChoice::Explicit(format), ..Options::default() };
    qs.iter()
        .map(|q| {
            let bytes = encode(&s.img, format, *q, enc, &o).map_err(|e| e.to_string())?;
            Ok((*q, score_sample(&s, &bytes)?))
        })
        .collect()
}
