//! The transform layer: pure planning (geometry, gravity, format and quality choice), the
//! pipeline that runs it on libvips (through `crate::vips`, the thin adapter that is the only
//! code touching libvips; this layer is its only user), and the worker pool that runs each
//! render inside one `spawn_blocking` under a semaphore with a bounded queue.
//!
//! Files: `pipeline.rs` (probe → format → load/thumbnail → geometry → alpha → strip → encode →
//! original?), `plan.rs` (pure geometry), `quality.rs` (format and quality choice, perceptual
//! auto quality, encoder options), `metadata.rs` (metadata stripping), `workers.rs` (the pool),
//! `container.rs` (does a file hold only pixels?), `info.rs` (the upload `/info` facts), `reference.rs` (benchmark helpers), `error.rs`.

use serde::Serialize;

use crate::negotiate::AcceptClass;
use crate::options::{Format, Options};

mod colour;
mod container;
mod error;
mod extra;
mod info;
mod metadata;
mod pipeline;
mod plan;
mod quality;
mod reference;
mod watermark;
mod workers;

pub use error::TransformError;
pub use info::{info_facts, InfoFacts};
pub use metadata::{exif_with_copyright, webp_strip};
pub use pipeline::{probe, render, render_until};
pub use plan::{gravity_offset, plan, Geometry, Rect};
pub use quality::{
    auto_quality_prior, auto_quality_range, choose_format, quality_for, search_quality, ssimulacra2,
    wants_auto_quality, Prior,
};
pub use reference::{
    reference_pixels, reference_thumbnail, reference_variant, sample_scores, score_encoded, ColourPath, ResizeKernel,
    Variant,
};
pub use watermark::WatermarkImage;
pub use workers::{rss_bytes, Admission, PoolStats, Rejected, Workers};

/// Bumped whenever output for the same URL could change; part of every ETag and cache key.
pub const PIPELINE_VERSION: u32 = 3;

/// Starts libvips once: operation cache off, `concurrency` threads per image.
pub fn init(concurrency: i32) -> Result<(), String> {
    crate::vips::init(concurrency)
}

/// libvips' version string.
pub fn libvips_version() -> String {
    crate::vips::version()
}

/// Server-wide encoder and limit settings.
#[derive(Clone, Debug, Serialize)]
pub struct EncodeSettings {
    pub jpeg_quality: u8,
    pub webp_quality: u8,
    pub avif_quality: u8,
    pub png_quality: u8,
    pub gif_quality: u8,
    pub avif_effort: u8,
    pub webp_effort: u8,
    /// Progressive (interlaced) JPEG; baseline when false.
    pub jpeg_progressive: bool,
    pub enable_avif: bool,
    pub enable_webp: bool,
    pub jxl_quality: u8,
    /// libjxl effort 3-9 (libvips 8.14's `effort` range).
    pub jxl_effort: u8,
    pub enable_jxl: bool,
    pub save_data_quality_step: u8,
    pub max_src_megapixels: f64,
    pub max_output_dimension: u32,
    /// Output width × height × frames, and any image held whole in memory, in megapixels.
    pub max_output_megapixels: f64,
    pub max_animation_frames: u32,
    /// Perceptual auto quality by default with an explicit `f:auto`.
    pub auto_quality: bool,
    /// SSIMULACRA2 score auto quality aims for (Save-Data lowers it).
    pub auto_quality_target: f64,
    /// Most trial encodes per image.
    pub auto_quality_trials: u8,
    /// `IMAGO_WATERMARK_OPACITY`: multiplies the opacity of every `wm:`.
    pub watermark_opacity: f64,
}

impl EncodeSettings {
    /// The encoder and limit settings of a configuration.
    pub fn from_config(r: &crate::config::RawConfig) -> EncodeSettings {
        EncodeSettings {
            jpeg_quality: r.jpeg_quality,
            webp_quality: r.webp_quality,
            avif_quality: r.avif_quality,
            png_quality: r.png_quality,
            gif_quality: r.gif_quality,
            avif_effort: r.avif_effort,
            webp_effort: r.webp_effort,
            jpeg_progressive: r.jpeg_progressive,
            enable_avif: r.enable_avif,
            enable_webp: r.enable_webp,
            jxl_quality: r.jxl_quality,
            jxl_effort: r.jxl_effort,
            enable_jxl: r.enable_jxl,
            save_data_quality_step: r.save_data_quality_step,
            max_src_megapixels: r.max_src_megapixels,
            max_output_dimension: r.max_output_dimension,
            max_output_megapixels: r.max_output_megapixels,
            max_animation_frames: r.max_animation_frames,
            auto_quality: r.auto_quality,
            auto_quality_target: r.auto_quality_target,
            auto_quality_trials: r.auto_quality_trials,
            watermark_opacity: r.watermark_opacity,
        }
    }
}

/// Everything a render needs besides the source bytes.
#[derive(Clone, Debug, Serialize)]
pub struct RenderRequest {
    /// Options with `dpr` resolved (URL or client hint).
    pub options: Options,
    pub accept: AcceptClass,
    pub save_data: bool,
    /// The configured watermark, for a request with `wm:` (none: `wm:` is ignored, as imgproxy).
    #[serde(skip)]
    pub watermark: Option<std::sync::Arc<WatermarkImage>>,
}

/// What the source turned out to be (header only).
#[derive(Clone, Debug, Serialize)]
pub struct SourceInfo {
    pub format: &'static str,
    /// Upright dimensions (after EXIF orientation).
    pub width: u32,
    pub height: u32,
    pub orientation: u8,
    pub has_alpha: bool,
    pub pages: u32,
    pub has_metadata: bool,
    /// An embedded ICC profile.
    pub has_icc: bool,
}

/// A finished variant.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub quality: u8,
    pub source: SourceInfo,
    /// The original bytes were served because they were not larger and acceptable.
    pub original: bool,
    pub decode_ms: f64,
    pub encode_ms: f64,
}

/// The container of `buf` from its magic bytes, before any decoder sees it: `jpeg`, `png`,
/// `gif`, `webp`, `heif` (AVIF/HEIC), `tiff` or `jxl`. Anything else is refused.
pub fn sniff(buf: &[u8]) -> Option<&'static str> {
    let starts = |m: &[u8]| buf.len() >= m.len() && &buf[..m.len()] == m;
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some("jpeg")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("gif")
    } else if buf.len() >= 12 && &buf[..4] == b"RIFF" && &buf[8..12] == b"WEBP" {
        Some("webp")
    } else if buf.len() >= 12 && &buf[4..8] == b"ftyp" {
        let brand = &buf[8..12];
        let brands: [&[u8]; 8] = [b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"];
        brands.contains(&brand).then_some("heif")
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Some("tiff")
    } else if starts(&[0xFF, 0x0A]) || starts(&[0, 0, 0, 0x0C, b'J', b'X', b'L', b' ', 0x0D, 0x0A, 0x87, 0x0A]) {
        Some("jxl")
    } else {
        None
    }
}

/// Helpers shared by this layer's unit tests.
#[cfg(test)]
mod testutil {
    use super::{EncodeSettings, RenderRequest};
    use crate::negotiate::AcceptClass;
    use crate::options::{parse, Options, Presets};

    pub fn enc() -> EncodeSettings {
        // The configuration defaults, with a frame limit the tests can reach.
        EncodeSettings {
            max_animation_frames: 100,
            ..EncodeSettings::from_config(&crate::config::RawConfig::default())
        }
    }
    pub fn opts(s: &str) -> Options {
        let segs: Vec<&str> = s.split('/').filter(|x| !x.is_empty()).collect();
        parse(&segs, None, &Presets::default()).unwrap()
    }
    pub fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }
    pub fn req(s: &str, ext: Option<&str>) -> RenderRequest {
        let segs: Vec<&str> = s.split('/').filter(|x| !x.is_empty()).collect();
        RenderRequest {
            options: parse(&segs, ext, &Presets::default()).unwrap(),
            accept: AcceptClass::Legacy,
            save_data: false,
            watermark: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("png"));
        assert_eq!(sniff(b"GIF89a"), Some("gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("webp"));
        assert_eq!(sniff(b"\0\0\0\x1cftypavif"), Some("heif"));
        assert_eq!(sniff(b"\0\0\0\x1cftypisom"), None);
        assert_eq!(sniff(b"<svg xmlns="), None);
        assert_eq!(sniff(b"<html>"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(&[0xFF]), None);
    }
}
