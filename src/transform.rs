//! The transform step: pure planning (geometry, gravity, format and quality choice) and the
//! worker pool that runs libvips (in [`crate::vips`], the only file that touches it) inside one
//! `spawn_blocking` per request under a semaphore with a bounded queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::negotiate::AcceptClass;
use crate::options::{Format, FormatChoice, Gravity, GravityKind, Options, Quality, ResizingType};

/// Bumped whenever output for the same URL could change; part of every ETag and cache key.
pub const PIPELINE_VERSION: u32 = 1;

/// Why a transform failed.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("unsupported source format: {0}")]
    Unsupported(String),
    #[error("the image cannot be decoded: {0}")]
    Undecodable(String),
    #[error("the image has {megapixels:.1} megapixels, more than the limit of {limit}")]
    TooManyPixels { megapixels: f64, limit: f64 },
    #[error("the image has {frames} frames, more than the limit of {limit}")]
    TooManyFrames { frames: u32, limit: u32 },
    #[error("the output would be {width}x{height}, larger than the limit of {limit}")]
    OutputTooLarge { width: u64, height: u64, limit: u32 },
    #[error("the transform took longer than {0:?}")]
    Timeout(Duration),
    #[error("encoding failed: {0}")]
    Encode(String),
    #[error("transform worker failed: {0}")]
    Internal(String),
}

impl TransformError {
    pub fn status(&self) -> StatusCode {
        match self {
            TransformError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TransformError::Undecodable(_)
            | TransformError::TooManyPixels { .. }
            | TransformError::TooManyFrames { .. }
            | TransformError::OutputTooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            TransformError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            TransformError::Encode(_) | TransformError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            TransformError::Unsupported(_) => "unsupported-format",
            TransformError::Undecodable(_) => "invalid-image",
            TransformError::TooManyPixels { .. } => "image-too-large",
            TransformError::TooManyFrames { .. } => "too-many-frames",
            TransformError::OutputTooLarge { .. } => "output-too-large",
            TransformError::Timeout(_) => "transform-timeout",
            TransformError::Encode(_) => "encode-failed",
            TransformError::Internal(_) => "internal",
        }
    }
    pub fn public_message(&self) -> String {
        match self {
            // libvips' messages can carry internal detail: keep them in logs only.
            TransformError::Undecodable(_) => "the image cannot be decoded".into(),
            TransformError::Encode(_) | TransformError::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
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
    pub enable_avif: bool,
    pub enable_webp: bool,
    pub save_data_quality_step: u8,
    pub max_src_megapixels: f64,
    pub max_output_dimension: u32,
    pub max_animation_frames: u32,
    /// Perceptual auto quality by default with an explicit `f:auto`.
    pub auto_quality: bool,
    /// SSIMULACRA2 score auto quality aims for (Save-Data lowers it).
    pub auto_quality_target: f64,
    /// Most trial encodes per image.
    pub auto_quality_trials: u8,
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
            enable_avif: r.enable_avif,
            enable_webp: r.enable_webp,
            save_data_quality_step: r.save_data_quality_step,
            max_src_megapixels: r.max_src_megapixels,
            max_output_dimension: r.max_output_dimension,
            max_animation_frames: r.max_animation_frames,
            auto_quality: r.auto_quality,
            auto_quality_target: r.auto_quality_target,
            auto_quality_trials: r.auto_quality_trials,
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

/// Removes EXIF and XMP (and ICC when `drop_icc`) chunks from a WebP file and clears their
/// VP8X flags. libvips 8.14's WebP saver writes an EXIF chunk even with `strip`, so metadata
/// stripping is finished here, on the container.
pub fn webp_strip(webp: &[u8], drop_icc: bool) -> Option<Vec<u8>> {
    if webp.len() < 12 || &webp[..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return None;
    }
    let declared = u32::from_le_bytes(webp[4..8].try_into().ok()?) as usize;
    if declared.checked_add(8)? != webp.len() {
        return None;
    }
    let mut out = Vec::with_capacity(webp.len());
    out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
    let mut i = 12;
    let mut vp8x_at = None;
    while i + 8 <= webp.len() {
        let id = &webp[i..i + 4];
        let size = u32::from_le_bytes(webp[i + 4..i + 8].try_into().ok()?) as usize;
        let end = i.checked_add(8)?.checked_add(size)?.checked_add(size & 1)?;
        if end > webp.len() {
            return None;
        }
        let drop = id == b"EXIF" || id == b"XMP " || (drop_icc && id == b"ICCP");
        if !drop {
            if id == b"VP8X" {
                vp8x_at = Some(out.len());
            }
            out.extend_from_slice(&webp[i..end]);
        }
        i = end;
    }
    if let Some(at) = vp8x_at {
        // Flags byte: ICC 0x20, alpha 0x10, EXIF 0x08, XMP 0x04, animation 0x02.
        let mut mask = 0x08 | 0x04;
        if drop_icc {
            mask |= 0x20;
        }
        out[at + 8] &= !mask;
    }
    let riff = u32::try_from(out.len() - 8).ok()?;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    Some(out)
}

/// A minimal EXIF block (as libvips stores it, with the `Exif\0\0` header) holding only IFD0's
/// Copyright tag: what `kcr:1` keeps when everything else is stripped.
pub fn exif_with_copyright(text: &str) -> Vec<u8> {
    let mut value: Vec<u8> = text.bytes().filter(|b| *b != 0).take(4096).collect();
    value.push(0);
    let mut e = b"Exif\0\0II*\0".to_vec();
    e.extend_from_slice(&8u32.to_le_bytes()); // IFD0 at offset 8 of the TIFF header
    e.extend_from_slice(&1u16.to_le_bytes()); // one entry
    e.extend_from_slice(&0x8298u16.to_le_bytes()); // Copyright
    e.extend_from_slice(&2u16.to_le_bytes()); // ASCII
    e.extend_from_slice(&(value.len() as u32).to_le_bytes());
    if value.len() <= 4 {
        let mut inline = value.clone();
        inline.resize(4, 0);
        e.extend_from_slice(&inline);
        e.extend_from_slice(&0u32.to_le_bytes());
    } else {
        e.extend_from_slice(&26u32.to_le_bytes()); // 8 + 2 + 12 + 4
        e.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
        e.extend_from_slice(&value);
    }
    e
}

/// The output format for a source: explicit, or negotiated from the Accept class.
pub fn choose_format(
    choice: FormatChoice,
    accept: AcceptClass,
    enc: &EncodeSettings,
    alpha: bool,
    animated: bool,
) -> Format {
    let avif = enc.enable_avif && accept == AcceptClass::Avif;
    let webp = enc.enable_webp && matches!(accept, AcceptClass::Avif | AcceptClass::Webp);
    match choice {
        FormatChoice::Explicit(f) => f,
        FormatChoice::Unset | FormatChoice::Auto => {
            if animated {
                if webp {
                    Format::Webp
                } else {
                    Format::Gif
                }
            } else if avif {
                Format::Avif
            } else if webp {
                Format::Webp
            } else if alpha {
                Format::Png
            } else {
                Format::Jpeg
            }
        }
    }
}

/// The encoder quality for `format`: URL `q:` > URL `fq:` > configured default, lowered by the
/// Save-Data step unless the URL fixed it.
pub fn quality_for(format: Format, o: &Options, enc: &EncodeSettings, save_data: bool) -> u8 {
    if let Quality::Fixed(q) = o.quality {
        return q;
    }
    if let Some(q) = o.format_quality.get(&format) {
        return *q;
    }
    let q = match format {
        Format::Jpeg => enc.jpeg_quality,
        Format::Webp => enc.webp_quality,
        Format::Avif => enc.avif_quality,
        Format::Png => enc.png_quality,
        Format::Gif => enc.gif_quality,
    };
    if save_data && matches!(format, Format::Jpeg | Format::Webp | Format::Avif) {
        q.saturating_sub(enc.save_data_quality_step).max(10)
    } else {
        q
    }
}

/// True when this request's quality is chosen perceptually.
pub fn wants_auto_quality(o: &Options, format: Format, enc: &EncodeSettings) -> bool {
    if !matches!(format, Format::Jpeg | Format::Webp | Format::Avif) {
        return false;
    }
    match o.quality {
        Quality::Auto => true,
        Quality::Fixed(_) => false,
        // The default only with an explicit `f:auto`: it costs several trial encodes per miss.
        Quality::Default => {
            enc.auto_quality && o.format == FormatChoice::Auto && !o.format_quality.contains_key(&format)
        }
    }
}

/// The quality range searched per format.
pub fn auto_quality_range(format: Format) -> (u8, u8) {
    match format {
        Format::Avif => (25, 80),
        _ => (35, 92),
    }
}

/// Finds the lowest quality whose score reaches `target` with at most `max_trials` calls of
/// `score` (a bisection seeded at `seed`). Returns the chosen quality and every trial made.
pub fn search_quality<E>(
    range: (u8, u8),
    seed: u8,
    target: f64,
    max_trials: u8,
    mut score: impl FnMut(u8) -> Result<f64, E>,
) -> Result<(u8, Vec<(u8, f64)>), E> {
    let (mut lo, mut hi) = range;
    let mut trials: Vec<(u8, f64)> = Vec::new();
    let mut best: Option<u8> = None;
    let mut q = seed.clamp(lo, hi);
    for _ in 0..max_trials.max(1) {
        let s = score(q)?;
        trials.push((q, s));
        if s >= target {
            best = Some(best.map_or(q, |b| b.min(q)));
            hi = q;
        } else {
            lo = q;
        }
        if hi.saturating_sub(lo) <= 2 {
            break;
        }
        q = lo + (hi - lo) / 2;
        if trials.iter().any(|(t, _)| *t == q) {
            break;
        }
    }
    // Nothing reached the target: the highest quality tried is the closest.
    let chosen = best.unwrap_or_else(|| trials.iter().map(|(q, _)| *q).max().unwrap_or(range.1));
    Ok((chosen, trials))
}

/// SSIMULACRA2 between two same-size 8-bit sRGB images (RGB interleaved).
pub fn ssimulacra2(reference: &[u8], distorted: &[u8], w: u32, h: u32) -> Option<f64> {
    use ssimulacra2::{compute_frame_ssimulacra2, ColorPrimaries, Rgb, TransferCharacteristic};
    let n = (w as usize) * (h as usize);
    if reference.len() != n * 3 || distorted.len() != n * 3 || w < 8 || h < 8 {
        return None;
    }
    let conv = |b: &[u8]| -> Vec<[f32; 3]> {
        b.chunks_exact(3).map(|p| [p[0] as f32 / 255.0, p[1] as f32 / 255.0, p[2] as f32 / 255.0]).collect()
    };
    let a =
        Rgb::new(conv(reference), w as usize, h as usize, TransferCharacteristic::SRGB, ColorPrimaries::BT709).ok()?;
    let b =
        Rgb::new(conv(distorted), w as usize, h as usize, TransferCharacteristic::SRGB, ColorPrimaries::BT709).ok()?;
    compute_frame_ssimulacra2(a, b).ok()
}

/// A rectangle in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// Resize, crop and extend steps for one source size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Geometry {
    /// The whole (upright) source resized to this size.
    pub resize_w: u32,
    pub resize_h: u32,
    /// `c:` crop region, in resized coordinates (None: the whole image).
    pub crop: Option<Rect>,
    /// Gravity of the crop when smart (`sm`): the crop is then found by libvips.
    pub crop_smart: bool,
    /// Fill: the box cut out of the (cropped) resized image.
    pub fill: Option<(u32, u32)>,
    pub fill_gravity: Gravity,
    /// Extend the canvas to this size (with background), positioned by gravity.
    pub extend: Option<(u32, u32, Gravity)>,
    /// top, right, bottom, left (device pixels)
    pub padding: [u32; 4],
    /// Final output size.
    pub out_w: u32,
    pub out_h: u32,
}

fn resolve_len(v: f64, full: u32) -> u32 {
    if v <= 0.0 {
        full
    } else if v < 1.0 {
        ((v * full as f64).round() as u32).clamp(1, full)
    } else {
        (v.round() as u32).clamp(1, full)
    }
}

/// Where a `bw×bh` box sits inside `w×h` for a gravity (offsets in device pixels).
pub fn gravity_offset(g: Gravity, w: u32, h: u32, bw: u32, bh: u32, dpr: f64) -> (u32, u32) {
    let (w, h, bw, bh) = (w as f64, h as f64, bw as f64, bh as f64);
    let (ox, oy) = (g.x * dpr, g.y * dpr);
    let (cx, cy) = ((w - bw) / 2.0, (h - bh) / 2.0);
    let (x, y) = match g.kind {
        GravityKind::Ce | GravityKind::Sm => (cx + ox, cy + oy),
        GravityKind::No => (cx + ox, oy),
        GravityKind::So => (cx + ox, h - bh - oy),
        GravityKind::Ea => (w - bw - ox, cy + oy),
        GravityKind::We => (ox, cy + oy),
        GravityKind::Noea => (w - bw - ox, oy),
        GravityKind::Nowe => (ox, oy),
        GravityKind::Soea => (w - bw - ox, h - bh - oy),
        GravityKind::Sowe => (ox, h - bh - oy),
        GravityKind::Fp => (g.x * w - bw / 2.0, g.y * h - bh / 2.0),
    };
    let clamp = |v: f64, max: f64| v.round().clamp(0.0, max.max(0.0)) as u32;
    (clamp(x, w - bw), clamp(y, h - bh))
}

/// Plans the geometry for an upright `src_w×src_h` source (imgproxy's semantics: crop, then
/// resize by type, then fill-crop, then extend, then padding; all sizes × dpr).
pub fn plan(src_w: u32, src_h: u32, o: &Options, max_dim: u32) -> Result<Geometry, TransformError> {
    let dpr = o.dpr.unwrap_or(1.0);
    let (cw, ch) = match &o.crop {
        Some(c) => (resolve_len(c.width, src_w), resolve_len(c.height, src_h)),
        None => (src_w, src_h),
    };
    let dst_w = (o.width as f64 * dpr).round();
    let dst_h = (o.height as f64 * dpr).round();
    let rt = match o.resizing_type {
        ResizingType::Auto if dst_w > 0.0 && dst_h > 0.0 => {
            if (cw >= ch) == (dst_w >= dst_h) {
                ResizingType::Fill
            } else {
                ResizingType::Fit
            }
        }
        ResizingType::Auto => ResizingType::Fit,
        other => other,
    };
    let ws = if dst_w > 0.0 { dst_w / cw as f64 } else { 0.0 };
    let hs = if dst_h > 0.0 { dst_h / ch as f64 } else { 0.0 };
    let (mut sx, mut sy) = if ws == 0.0 && hs == 0.0 {
        (1.0, 1.0)
    } else if ws == 0.0 {
        (hs, hs)
    } else if hs == 0.0 {
        (ws, ws)
    } else {
        match rt {
            ResizingType::Fit => (ws.min(hs), ws.min(hs)),
            ResizingType::Fill | ResizingType::FillDown => (ws.max(hs), ws.max(hs)),
            ResizingType::Force => (ws, hs),
            ResizingType::Auto => unreachable!("resolved above"),
        }
    };
    if !o.enlarge {
        sx = sx.min(1.0);
        sy = sy.min(1.0);
    }
    let min_w = o.min_width as f64 * dpr;
    let min_h = o.min_height as f64 * dpr;
    if min_w > 0.0 && cw as f64 * sx < min_w {
        let f = min_w / (cw as f64 * sx);
        sx *= f;
        if rt != ResizingType::Force {
            sy *= f;
        }
    }
    if min_h > 0.0 && ch as f64 * sy < min_h {
        let f = min_h / (ch as f64 * sy);
        sy *= f;
        if rt != ResizingType::Force {
            sx *= f;
        }
    }
    let too_large = |w: f64, h: f64| w > max_dim as f64 || h > max_dim as f64;
    let resize_w = ((src_w as f64 * sx).round()).max(1.0);
    let resize_h = ((src_h as f64 * sy).round()).max(1.0);
    // The whole source is resized before the crop, so bound it (enlarging a small crop).
    if resize_w > (max_dim as f64) * 4.0 || resize_h > (max_dim as f64) * 4.0 {
        return Err(TransformError::OutputTooLarge { width: resize_w as u64, height: resize_h as u64, limit: max_dim });
    }
    let (resize_w, resize_h) = (resize_w as u32, resize_h as u32);
    let rcw = ((cw as f64 * sx).round() as u32).clamp(1, resize_w);
    let rch = ((ch as f64 * sy).round() as u32).clamp(1, resize_h);
    let mut crop_smart = false;
    let crop = match &o.crop {
        None => None,
        Some(c) => {
            let g = c.gravity.unwrap_or(o.gravity);
            if g.kind == GravityKind::Sm {
                crop_smart = true;
                Some(Rect { x: 0, y: 0, w: rcw, h: rch })
            } else {
                let (x, y) = gravity_offset(g, resize_w, resize_h, rcw, rch, sx);
                Some(Rect { x, y, w: rcw, h: rch })
            }
        }
    };
    let (mut out_w, mut out_h) = (rcw, rch);
    let mut fill = None;
    if matches!(rt, ResizingType::Fill | ResizingType::FillDown) && dst_w > 0.0 && dst_h > 0.0 {
        let (mut bw, mut bh) = ((dst_w as u32).min(rcw), (dst_h as u32).min(rch));
        if rt == ResizingType::FillDown && ((dst_w as u32) > rcw || (dst_h as u32) > rch) {
            // Not enough pixels: keep the requested aspect ratio at the largest size that fits.
            let aspect = dst_w / dst_h;
            if rcw as f64 / rch as f64 > aspect {
                bh = rch;
                bw = ((rch as f64 * aspect).round() as u32).clamp(1, rcw);
            } else {
                bw = rcw;
                bh = ((rcw as f64 / aspect).round() as u32).clamp(1, rch);
            }
        }
        if (bw, bh) != (rcw, rch) {
            fill = Some((bw, bh));
            out_w = bw;
            out_h = bh;
        }
    }
    let mut extend = None;
    if let Some(g) = o.extend {
        if dst_w > 0.0 || dst_h > 0.0 {
            let ew = (dst_w as u32).max(out_w);
            let eh = (dst_h as u32).max(out_h);
            if (ew, eh) != (out_w, out_h) {
                extend = Some((ew, eh, g));
                out_w = ew;
                out_h = eh;
            }
        }
    }
    let padding = o.padding.map(|p| p.map(|v| (v as f64 * dpr).round() as u32)).unwrap_or([0; 4]);
    out_w += padding[1] + padding[3];
    out_h += padding[0] + padding[2];
    if too_large(out_w as f64, out_h as f64) {
        return Err(TransformError::OutputTooLarge { width: out_w as u64, height: out_h as u64, limit: max_dim });
    }
    Ok(Geometry { resize_w, resize_h, crop, crop_smart, fill, fill_gravity: o.gravity, extend, padding, out_w, out_h })
}

/// Counters the worker pool keeps (read by metrics and `/readyz`).
#[derive(Debug, Default)]
pub struct PoolStats {
    pub waiting: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub transforms: AtomicUsize,
}

/// The worker pool: at most `workers` transforms at once, at most `queue` waiting.
#[derive(Clone)]
pub struct Workers {
    sem: Arc<Semaphore>,
    pub workers: usize,
    queue: usize,
    queue_timeout: Duration,
    transform_timeout: Duration,
    /// Shed new transforms while the process's resident memory is above this (0 = off).
    memory_limit: u64,
    pub stats: Arc<PoolStats>,
}

static TRIM_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Resident set size of this process in bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Why a job was not run.
#[derive(Debug)]
pub enum Rejected {
    QueueFull,
    MemoryPressure,
    QueueTimeout,
    Failed(TransformError),
}

impl Rejected {
    /// The `imago_shed_total` reason, when the job was shed rather than failed.
    pub fn shed_reason(&self) -> Option<&'static str> {
        match self {
            Rejected::QueueFull => Some("queue_full"),
            Rejected::MemoryPressure => Some("memory"),
            Rejected::QueueTimeout => Some("queue_timeout"),
            Rejected::Failed(_) => None,
        }
    }
}

impl Workers {
    pub fn new(workers: usize, queue: usize, queue_timeout: Duration, transform_timeout: Duration) -> Self {
        Workers {
            sem: Arc::new(Semaphore::new(workers)),
            workers,
            queue,
            queue_timeout,
            transform_timeout,
            memory_limit: 0,
            stats: Arc::new(PoolStats::default()),
        }
    }

    /// Sheds new transforms while RSS is above `bytes` (0 = off).
    pub fn with_memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// True when every worker is busy and the queue is at least half full.
    pub fn saturated(&self) -> bool {
        self.sem.available_permits() == 0 && self.stats.waiting.load(Ordering::Relaxed) * 2 >= self.queue
    }

    /// Runs `job` on a blocking thread once a worker is free.
    pub async fn run<T, F>(&self, job: F) -> Result<T, Rejected>
    where
        F: FnOnce() -> Result<T, TransformError> + Send + 'static,
        T: Send + 'static,
    {
        if self.memory_limit > 0 && rss_bytes() > self.memory_limit {
            return Err(Rejected::MemoryPressure);
        }
        let permit = match self.sem.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let waiting = self.stats.waiting.fetch_add(1, Ordering::SeqCst);
                if waiting >= self.queue {
                    self.stats.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(Rejected::QueueFull);
                }
                let acquired = tokio::time::timeout(self.queue_timeout, self.sem.clone().acquire_owned()).await;
                self.stats.waiting.fetch_sub(1, Ordering::SeqCst);
                match acquired {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Err(Rejected::Failed(TransformError::Internal("worker pool closed".into()))),
                    Err(_) => return Err(Rejected::QueueTimeout),
                }
            }
        };
        let stats = self.stats.clone();
        stats.in_flight.fetch_add(1, Ordering::SeqCst);
        stats.transforms.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let handle = tokio::task::spawn_blocking(move || {
            let r = job();
            // Give freed decode buffers back to the OS every few jobs: without this, glibc keeps
            // the peak of every arena mapped and RSS creeps up over a long mixed run (see
            // benches/soak.rs); trimming after every job costs a few percent of CPU.
            #[cfg(target_os = "linux")]
            if TRIM_COUNTER.fetch_add(1, Ordering::Relaxed) % 8 == 7 {
                // SAFETY: malloc_trim only releases free memory back to the OS.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
            drop(permit);
            r
        });
        // The permit is released by the blocking thread itself, so a timed-out job still holds
        // its worker until libvips returns: the pool never runs more than `workers` jobs.
        let res = tokio::time::timeout(self.transform_timeout, handle).await;
        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        match res {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(Rejected::Failed(e)),
            Ok(Err(join)) => Err(Rejected::Failed(TransformError::Internal(format!("worker panicked: {join}")))),
            Err(_) => Err(Rejected::Failed(TransformError::Timeout(started.elapsed()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{parse, Crop, Presets};

    fn opts(s: &str) -> Options {
        let segs: Vec<&str> = s.split('/').filter(|x| !x.is_empty()).collect();
        parse(&segs, None, &Presets::default()).unwrap()
    }
    fn out(src: (u32, u32), s: &str) -> (u32, u32) {
        let g = plan(src.0, src.1, &opts(s), 8192).unwrap();
        (g.out_w, g.out_h)
    }

    #[test]
    fn resize_types() {
        assert_eq!(out((4000, 3000), "rs:fit:800:800"), (800, 600));
        assert_eq!(out((4000, 3000), "w:800"), (800, 600));
        assert_eq!(out((4000, 3000), "h:300"), (400, 300));
        assert_eq!(out((4000, 3000), "rs:fill:800:800"), (800, 800));
        assert_eq!(out((4000, 3000), "rs:force:800:100"), (800, 100));
        assert_eq!(out((4000, 3000), "rs:auto:800:600"), (800, 600));
        assert_eq!(out((4000, 3000), "rs:auto:600:800"), (600, 450));
        // No enlarge by default; enlarge on request.
        assert_eq!(out((400, 300), "w:800"), (400, 300));
        assert_eq!(out((400, 300), "w:800/el:1"), (800, 600));
        assert_eq!(out((400, 300), "rs:fill:800:800"), (400, 300));
        // fill-down keeps the requested aspect ratio when the source is too small.
        assert_eq!(out((400, 300), "rs:fill-down:800:400"), (400, 200));
        assert_eq!(out((4000, 3000), "rs:fill-down:800:400"), (800, 400));
        assert_eq!(out((4000, 3000), ""), (4000, 3000));
    }

    #[test]
    fn dpr_min_extend_padding() {
        assert_eq!(out((4000, 3000), "w:400/dpr:2"), (800, 600));
        assert_eq!(out((4000, 3000), "w:100/mw:200"), (200, 150));
        assert_eq!(out((400, 300), "rs:fit:800:800/ex:1"), (800, 800));
        let g = plan(400, 300, &opts("rs:fit:800:800/ex:1:nowe"), 8192).unwrap();
        assert_eq!(g.extend.map(|e| (e.0, e.1)), Some((800, 800)));
        assert_eq!(out((400, 300), "pd:10:20"), (440, 320));
        assert_eq!(out((400, 300), "pd:10/dpr:2"), (440, 340));
    }

    #[test]
    fn crop_before_resize() {
        let mut o = opts("w:100");
        o.crop = Some(Crop { width: 1000.0, height: 500.0, gravity: None });
        let g = plan(4000, 3000, &o, 8192).unwrap();
        assert_eq!((g.out_w, g.out_h), (100, 50));
        assert_eq!((g.resize_w, g.resize_h), (400, 300));
        assert_eq!(g.crop, Some(Rect { x: 150, y: 125, w: 100, h: 50 }));
        let g = plan(4000, 3000, &opts("c:0.5:0.5:nowe"), 8192).unwrap();
        assert_eq!(g.crop, Some(Rect { x: 0, y: 0, w: 2000, h: 1500 }));
    }

    #[test]
    fn limits() {
        assert!(matches!(plan(4000, 3000, &opts("w:9000/el:1"), 8192), Err(TransformError::OutputTooLarge { .. })));
        assert!(plan(4000, 3000, &opts("w:8192/el:1"), 8192).is_ok());
    }

    #[test]
    fn gravity_math() {
        let g = |k| Gravity { kind: k, x: 0.0, y: 0.0 };
        assert_eq!(gravity_offset(g(GravityKind::Ce), 100, 50, 20, 10, 1.0), (40, 20));
        assert_eq!(gravity_offset(g(GravityKind::No), 100, 50, 20, 10, 1.0), (40, 0));
        assert_eq!(gravity_offset(g(GravityKind::So), 100, 50, 20, 10, 1.0), (40, 40));
        assert_eq!(gravity_offset(g(GravityKind::Ea), 100, 50, 20, 10, 1.0), (80, 20));
        assert_eq!(gravity_offset(g(GravityKind::We), 100, 50, 20, 10, 1.0), (0, 20));
        assert_eq!(gravity_offset(g(GravityKind::Noea), 100, 50, 20, 10, 1.0), (80, 0));
        assert_eq!(gravity_offset(g(GravityKind::Sowe), 100, 50, 20, 10, 1.0), (0, 40));
        let off = Gravity { kind: GravityKind::Nowe, x: 5.0, y: 3.0 };
        assert_eq!(gravity_offset(off, 100, 50, 20, 10, 2.0), (10, 6));
        let fp = Gravity { kind: GravityKind::Fp, x: 1.0, y: 0.0 };
        assert_eq!(gravity_offset(fp, 100, 50, 20, 10, 1.0), (80, 0));
        let far = Gravity { kind: GravityKind::Ea, x: -500.0, y: 0.0 };
        assert_eq!(gravity_offset(far, 100, 50, 20, 10, 1.0), (80, 20));
    }

    fn enc() -> EncodeSettings {
        // The configuration defaults, with a frame limit the tests can reach.
        EncodeSettings {
            max_animation_frames: 100,
            ..EncodeSettings::from_config(&crate::config::RawConfig::default())
        }
    }

    #[test]
    fn quality_search_is_bounded_and_finds_the_threshold() {
        // A monotonic score: 40 + q/2 reaches 70 at q = 60.
        let mut calls = 0;
        let (q, trials) = search_quality::<()>((35, 92), 80, 70.0, 4, |q| {
            calls += 1;
            Ok(40.0 + q as f64 / 2.0)
        })
        .unwrap();
        assert!(calls <= 4 && trials.len() == calls);
        assert!((60..=66).contains(&q), "{q} {trials:?}");
        assert!(40.0 + q as f64 / 2.0 >= 70.0);
        // Unreachable target: the highest tried.
        let (q, _) = search_quality::<()>((35, 92), 80, 200.0, 3, |q| Ok(q as f64)).unwrap();
        assert_eq!(q, 92.min(q.max(80)));
        let auto = opts("f:auto");
        assert!(wants_auto_quality(&auto, Format::Webp, &enc()));
        assert!(!wants_auto_quality(&opts("f:auto/q:80"), Format::Webp, &enc()));
        assert!(!wants_auto_quality(&opts("f:webp"), Format::Webp, &enc()));
        assert!(!wants_auto_quality(&opts(""), Format::Webp, &enc()), "no extension: negotiated, fixed default q");
        assert!(wants_auto_quality(&opts("f:webp/q:auto"), Format::Webp, &enc()));
        assert!(!wants_auto_quality(&auto, Format::Png, &enc()));
    }

    #[test]
    fn ssimulacra2_orders_distortions() {
        let (w, h) = (64u32, 64u32);
        let img: Vec<u8> = (0..w * h).flat_map(|i| [(i % 64 * 4) as u8, (i / 64 * 4) as u8, 128]).collect();
        let same = ssimulacra2(&img, &img, w, h).unwrap();
        let noisy: Vec<u8> = img.iter().enumerate().map(|(i, v)| v.saturating_add((i % 7) as u8 * 3)).collect();
        let worse: Vec<u8> = img.iter().enumerate().map(|(i, v)| v.saturating_add((i % 7) as u8 * 12)).collect();
        let a = ssimulacra2(&img, &noisy, w, h).unwrap();
        let b = ssimulacra2(&img, &worse, w, h).unwrap();
        assert!(same > 95.0 && a > b, "{same} {a} {b}");
        assert!(ssimulacra2(&img, &img[3..], w, h).is_none());
    }

    #[test]
    fn format_negotiation() {
        let e = enc();
        let auto = FormatChoice::Auto;
        assert_eq!(choose_format(auto, AcceptClass::Avif, &e, false, false), Format::Avif);
        assert_eq!(choose_format(auto, AcceptClass::Webp, &e, false, false), Format::Webp);
        assert_eq!(choose_format(auto, AcceptClass::Legacy, &e, false, false), Format::Jpeg);
        assert_eq!(choose_format(auto, AcceptClass::Legacy, &e, true, false), Format::Png);
        assert_eq!(choose_format(auto, AcceptClass::Avif, &e, false, true), Format::Webp);
        assert_eq!(choose_format(auto, AcceptClass::Legacy, &e, false, true), Format::Gif);
        assert_eq!(
            choose_format(FormatChoice::Explicit(Format::Png), AcceptClass::Avif, &e, false, false),
            Format::Png
        );
        let no_avif = EncodeSettings { enable_avif: false, ..enc() };
        assert_eq!(choose_format(auto, AcceptClass::Avif, &no_avif, false, false), Format::Webp);
    }

    #[test]
    fn webp_strip_removes_exif_and_xmp_chunks() {
        let chunk = |id: &[u8], data: &[u8]| {
            let mut v = id.to_vec();
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(data);
            if data.len() % 2 == 1 {
                v.push(0);
            }
            v
        };
        let mut body = b"WEBP".to_vec();
        body.extend(chunk(b"VP8X", &[0x2C, 0, 0, 0, 9, 0, 0, 9, 0, 0]));
        body.extend(chunk(b"ICCP", b"icc"));
        body.extend(chunk(b"VP8 ", b"pixels"));
        body.extend(chunk(b"EXIF", b"Exif\0\0GPS"));
        body.extend(chunk(b"XMP ", b"<x:xmpmeta/>"));
        let mut file = b"RIFF".to_vec();
        file.extend_from_slice(&(body.len() as u32).to_le_bytes());
        file.extend(body);
        let out = webp_strip(&file, false).unwrap();
        assert!(!out.windows(4).any(|w| w == b"EXIF" || w == b"XMP "));
        assert!(out.windows(4).any(|w| w == b"ICCP"));
        assert_eq!(out[20], 0x20);
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize, out.len() - 8);
        let out = webp_strip(&file, true).unwrap();
        assert!(!out.windows(4).any(|w| w == b"ICCP"));
        assert_eq!(out[20], 0);
        assert!(webp_strip(b"nope", false).is_none());
        let mut truncated = file.clone();
        truncated.truncate(30);
        assert!(webp_strip(&truncated, false).is_none());
    }

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

    #[test]
    fn quality_rules() {
        let e = enc();
        assert_eq!(quality_for(Format::Jpeg, &opts(""), &e, false), 80);
        assert_eq!(quality_for(Format::Avif, &opts(""), &e, false), 60);
        assert_eq!(quality_for(Format::Jpeg, &opts(""), &e, true), 65);
        assert_eq!(quality_for(Format::Jpeg, &opts("q:90"), &e, true), 90);
        assert_eq!(quality_for(Format::Webp, &opts("fq:webp:55"), &e, false), 55);
        assert_eq!(quality_for(Format::Jpeg, &opts("fq:webp:55"), &e, false), 80);
    }
}
