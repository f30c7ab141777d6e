//! The render pipeline: probe → format → load/thumbnail → geometry → alpha → strip → encode →
//! original?, on libvips through `crate::vips`. Every image lives and dies inside one call of
//! [`render`]/[`probe`] on one blocking thread.

use std::ffi::CStr;
use std::time::Instant;

use super::container::only_pixels;
use super::metadata::strip;
use super::quality::{auto_quality, encode};
use super::{
    choose_format, gravity_offset, plan, quality_for, sniff, wants_auto_quality, EncodeSettings, Geometry,
    RenderRequest, Rendered, SourceInfo, TransformError,
};
use crate::options::{Format, Gravity, GravityKind, Options};
use crate::vips::{Img, Interpretation, Kernel};

pub(super) fn source_format(img: &Img, sniffed: &'static str) -> &'static str {
    if sniffed == "heif" {
        return match img.get_string(c"heif-compression").as_deref() {
            Some("av1") => "avif",
            _ => "heic",
        };
    }
    sniffed
}

const METADATA_FIELDS: [&CStr; 4] = [c"exif-data", c"xmp-data", c"iptc-data", c"photoshop-data"];

/// Reads the header (no pixel decode) and checks it against the limits.
pub fn probe(buf: &[u8], enc: &EncodeSettings) -> Result<SourceInfo, TransformError> {
    probe_cmyk(buf, enc).map(|(info, _)| info)
}

/// [`probe`], and whether the image is CMYK (read from the same header).
fn probe_cmyk(buf: &[u8], enc: &EncodeSettings) -> Result<(SourceInfo, bool), TransformError> {
    let sniffed = sniff(buf).ok_or_else(|| {
        TransformError::Unsupported("not a JPEG, PNG, GIF, WebP, AVIF/HEIC, TIFF or JPEG XL image".into())
    })?;
    let img = Img::from_buffer(buf, "").map_err(TransformError::Undecodable)?;
    let orientation = img.get_int(c"orientation").unwrap_or(1).clamp(1, 8) as u8;
    let pages = img.get_int(c"n-pages").unwrap_or(1).max(1) as u32;
    let (w, h) = (img.width(), img.height());
    let (w, h) = if orientation >= 5 { (h, w) } else { (w, h) };
    let info = SourceInfo {
        format: source_format(&img, sniffed),
        width: w,
        height: h,
        orientation,
        has_alpha: img.has_alpha(),
        pages,
        has_metadata: METADATA_FIELDS.iter().any(|f| img.has(f)),
        has_icc: img.has(c"icc-profile-data"),
    };
    let mp = w as f64 * h as f64 / 1e6;
    if mp > enc.max_src_megapixels {
        return Err(TransformError::TooManyPixels { megapixels: mp, limit: enc.max_src_megapixels });
    }
    Ok((info, img.interpretation() == Interpretation::Cmyk))
}

pub(super) fn fail(e: String) -> TransformError {
    TransformError::Undecodable(e)
}

fn is_animated_format(f: &str) -> bool {
    matches!(f, "gif" | "webp")
}

/// Decodes, transforms and encodes one image.
pub fn render(buf: &[u8], req: &RenderRequest, enc: &EncodeSettings) -> Result<Rendered, TransformError> {
    render_until(buf, req, enc, None)
}

/// [`render`], stopped once `deadline` passes: libvips abandons the evaluation under way (see
/// `crate::vips`'s `stop_at`) and the render returns [`TransformError::Timeout`], so a timed-out
/// job frees its worker within about one tile of work instead of running to the end.
pub fn render_until(
    buf: &[u8],
    req: &RenderRequest,
    enc: &EncodeSettings,
    deadline: Option<Instant>,
) -> Result<Rendered, TransformError> {
    let t0 = Instant::now();
    match render_inner(buf, req, enc, deadline) {
        Err(e) if deadline.is_some_and(|d| Instant::now() >= d) && !matches!(e, TransformError::Timeout(_)) => {
            tracing::debug!(error = %e, "render stopped at its deadline");
            Err(TransformError::Timeout(t0.elapsed()))
        }
        r => r,
    }
}

/// The deadline as an error, checked between steps that libvips does not watch.
fn check_deadline(deadline: Option<Instant>, t0: Instant) -> Result<(), TransformError> {
    match deadline {
        Some(d) if Instant::now() >= d => Err(TransformError::Timeout(t0.elapsed())),
        _ => Ok(()),
    }
}

/// Starts watching `img` (and what is made from it) for the deadline.
fn watch<'a>(img: Img<'a>, deadline: Option<Instant>) -> Img<'a> {
    if let Some(d) = deadline {
        img.stop_at(d);
    }
    img
}

/// The pixels in memory (for operations that read out of order), still watched.
fn materialise<'a>(img: &Img<'a>, deadline: Option<Instant>) -> Result<Img<'a>, TransformError> {
    Ok(watch(img.copy_memory().map_err(fail)?, deadline))
}

fn render_inner(
    buf: &[u8],
    req: &RenderRequest,
    enc: &EncodeSettings,
    deadline: Option<Instant>,
) -> Result<Rendered, TransformError> {
    let t0 = Instant::now();
    let decode_span = tracing::info_span!("decode").entered();
    let o = &req.options;
    let lowered = super::extra::lowered(enc, o);
    let enc: &EncodeSettings = &lowered;
    let (mut info, cmyk) = probe_cmyk(buf, enc)?;
    if let Some(r) = super::extra::skip(buf, &info, o) {
        return Ok(r);
    }
    if let Some((w, h)) = super::extra::thumbnail_size(buf, &info, o) {
        (info.width, info.height) = (w, h);
    }
    let animated_src = info.pages > 1 && is_animated_format(info.format);
    let format = choose_format(o.format, req.accept, enc, info.has_alpha, animated_src);
    let animated = animated_src && format.supports_animation();
    if animated {
        if info.pages > enc.max_animation_frames {
            return Err(TransformError::TooManyFrames { frames: info.pages, limit: enc.max_animation_frames });
        }
        super::extra::check_frame(&info, o)?;
        let mp = info.width as f64 * info.height as f64 * info.pages as f64 / 1e6;
        if mp > enc.max_src_megapixels {
            return Err(TransformError::TooManyPixels { megapixels: mp, limit: enc.max_src_megapixels });
        }
    }
    let (up_w, up_h) = if o.auto_rotate {
        (info.width, info.height)
    } else if info.orientation >= 5 {
        (info.height, info.width)
    } else {
        (info.width, info.height)
    };

    let (img, geo) = if animated {
        let geo = plan(up_w, up_h, &strip_for_animation(o), enc.max_output_dimension)?;
        // Bounded before decoding: width × height × frames, DPR included (imgproxy's
        // max_result_dimension rule: scale the result down to fit rather than refuse it).
        let geo = fit_animation(geo, info.pages, enc.max_output_megapixels);
        let img =
            thumbnail(buf, geo.resize_w, geo.resize_h, o.auto_rotate, info.has_icc, Some("n=-1")).map_err(fail)?;
        (watch(img, deadline), geo)
    } else if o.trim.is_some()
        || info.format == "jpeg" && cmyk
        || super::extra::custom_kernel(o) && info.format != "jpeg"
    {
        load_path(buf, o, enc, deadline, super::extra::thumbnail_load(info.format, o))?
    } else {
        let geo = plan(up_w, up_h, o, enc.max_output_dimension)?;
        check_held(&geo, o, enc)?;
        let img = if info.format == "jpeg" {
            jpeg_resized(buf, geo.resize_w, geo.resize_h, &info, o.auto_rotate, super::extra::kernel(o))
        } else {
            let lo = super::extra::thumbnail_load(info.format, o);
            thumbnail(buf, geo.resize_w, geo.resize_h, o.auto_rotate, info.has_icc, lo)
        }
        .map_err(fail)?;
        (watch(img, deadline), geo)
    };
    let img = to_8bit_srgb(img).map_err(fail)?;
    let img = if animated { img } else { apply_geometry(img, &geo, o, format, deadline)? };
    let img = finish_alpha(img, o, format).map_err(fail)?;
    // The watermark, last (on stills: animations are served without it).
    let (img, watermarked) = match (&o.watermark, &req.watermark) {
        (Some(w), Some(wm)) if !animated => {
            let opacity = w.opacity * enc.watermark_opacity;
            // In memory first: blending over the lazy shrink-on-load image re-reads the source.
            let img = materialise(&img, deadline)?;
            (super::watermark::apply(img, wm, w, opacity, o.dpr.unwrap_or(1.0)).map_err(fail)?, true)
        }
        _ => (img, false),
    };
    let img = strip(img, o).map_err(fail)?;
    let img = materialise(&img, deadline)?;
    check_deadline(deadline, t0)?;
    let decode_ms = t0.elapsed().as_secs_f64() * 1000.0;
    drop(decode_span);
    let (width, height) = (img.width(), if animated { geo.out_h } else { img.height() });

    let t1 = Instant::now();
    let encode_span = tracing::info_span!("encode", format = format.name()).entered();
    let mut quality = quality_for(format, o, enc, req.save_data);
    let mut bytes = if !animated && wants_auto_quality(o, format, enc) {
        let target = enc.auto_quality_target - if req.save_data { 10.0 } else { 0.0 };
        let (q, b) = auto_quality(&img, format, target, enc, o)?;
        quality = q;
        b
    } else {
        encode(&img, format, quality, enc, o)?
    };
    if let Some(max) = o.max_bytes {
        while bytes.len() as u64 > max
            && quality > 10
            && matches!(format, Format::Jpeg | Format::Webp | Format::Avif | Format::Jxl)
        {
            check_deadline(deadline, t0)?;
            quality = quality.saturating_sub(10).max(10);
            bytes = encode(&img, format, quality, enc, o)?;
        }
    }
    let encode_ms = t1.elapsed().as_secs_f64() * 1000.0;
    drop(encode_span);
    let mut out =
        Rendered { bytes, format, width, height, quality, source: info.clone(), original: false, decode_ms, encode_ms };
    if !watermarked && original_acceptable(buf, &info, o, req, &geo, animated_src) && out.bytes.len() >= buf.len() {
        if let Some(f) = Format::parse(info.format) {
            out.bytes = buf.to_vec();
            out.format = f;
            out.original = true;
        }
    }
    Ok(out)
}

/// Scales an animation's geometry down, keeping its aspect ratio, until width × height × frames
/// is within `max_megapixels`.
fn fit_animation(geo: Geometry, frames: u32, max_megapixels: f64) -> Geometry {
    let frames = frames.max(1) as f64;
    let total = geo.resize_w as f64 * geo.resize_h as f64 * frames;
    let limit = max_megapixels * 1e6;
    if total <= limit {
        return geo;
    }
    let k = (limit / total).sqrt();
    let mut w = ((geo.resize_w as f64 * k).floor() as u32).max(1);
    let mut h = ((geo.resize_h as f64 * k).floor() as u32).max(1);
    while w as f64 * h as f64 * frames > limit && (w > 1 || h > 1) {
        w = w.saturating_sub(1).max(1);
        h = h.saturating_sub(1).max(1);
    }
    Geometry { resize_w: w, resize_h: h, out_w: w, out_h: h, fill: None, ..geo }
}

/// Refuses a plan whose largest image held whole in memory (the output, or the input of a smart
/// crop, rotation or vertical flip) is above the output megapixel limit.
fn check_held(geo: &Geometry, o: &Options, enc: &EncodeSettings) -> Result<(), TransformError> {
    let (w, h) = held_in_memory(geo, o);
    let mp = w as f64 * h as f64 / 1e6;
    if mp > enc.max_output_megapixels {
        return Err(TransformError::TooManyOutputPixels { width: w, height: h, limit: enc.max_output_megapixels });
    }
    Ok(())
}

/// The largest image [`apply_geometry`] and the encoder hold whole in memory for this plan: a
/// smart crop reads all of the resized image, a smart fill all of the crop, a rotation or
/// vertical flip the cropped and filled image, the encoder the output. Plain crops and fills are
/// cut from the lazily resized image before anything is held.
pub(super) fn held_in_memory(geo: &Geometry, o: &Options) -> (u32, u32) {
    let resized = (geo.resize_w, geo.resize_h);
    let cropped = geo.crop.map(|c| (c.w, c.h)).unwrap_or(resized);
    let filled = geo.fill.unwrap_or(cropped);
    let mut held = vec![(geo.out_w, geo.out_h)];
    if geo.crop_smart {
        held.push(resized);
    }
    if geo.fill.is_some() && geo.fill_gravity.kind == GravityKind::Sm {
        held.push(cropped);
    }
    if o.rotate != 0 || o.flip_v {
        held.push(filled);
    }
    held.into_iter().max_by_key(|(w, h)| *w as u64 * *h as u64).unwrap_or((geo.out_w, geo.out_h))
}

/// Only resizing applies to animations: crops, rotation and padding are per-frame operations
/// that would tear a frame strip apart.
fn strip_for_animation(o: &Options) -> Options {
    Options { crop: None, extend: None, padding: None, trim: None, ..o.clone() }
}

/// True when serving the original bytes is as good as the variant: same pixels, a format this
/// client takes, nothing to strip (read from the container: with stripping on, only a file
/// holding nothing but pixels, and an ICC profile the output would keep, passes).
fn original_acceptable(
    buf: &[u8],
    info: &SourceInfo,
    o: &Options,
    req: &RenderRequest,
    geo: &Geometry,
    animated: bool,
) -> bool {
    use crate::negotiate::AcceptClass;
    use crate::options::FormatChoice;
    let same_pixels = geo.out_w == info.width
        && geo.out_h == info.height
        && info.orientation == 1
        && geo.crop.is_none()
        && geo.fill.is_none()
        && geo.extend.is_none()
        && geo.padding == [0; 4]
        && o.rotate == 0
        && !o.flip_h
        && !o.flip_v
        && o.blur == 0.0
        && o.sharpen == 0.0
        && o.trim.is_none()
        && o.background.is_none()
        && o.extra.pixelate <= 1
        && !o.extra.enforce_thumbnail;
    // Read from the container last: it walks the whole file, which is wasted when another test fails.
    let clean = || !o.strip_metadata || only_pixels(buf, info.format, !o.strip_color_profile);
    let format_ok = match o.format {
        FormatChoice::Explicit(f) => f.name() == info.format,
        FormatChoice::Auto | FormatChoice::Unset => match info.format {
            "jpeg" | "png" | "gif" => true,
            "webp" => req.accept != AcceptClass::Legacy,
            "avif" => req.accept.avif(),
            "jxl" => req.accept == AcceptClass::Jxl,
            _ => false,
        },
    };
    same_pixels && format_ok && (!animated || info.format != "jpeg") && clean()
}

/// libvips' thumbnail: shrink-on-load, EXIF auto-rotate, colour-manage to sRGB (perceptual),
/// exact resize to `w×h`.
pub(super) fn thumbnail<'a>(
    buf: &'a [u8],
    w: u32,
    h: u32,
    auto_rotate: bool,
    icc: bool,
    load_opts: Option<&str>,
) -> Result<Img<'a>, String> {
    let lo = match load_opts {
        Some(o) => format!("{o},fail_on=truncated"),
        None => "fail_on=truncated".to_string(),
    };
    // Only an embedded profile is converted here: libvips 8.14's thumbnail shifts colours of
    // untagged 16-bit images when asked to export, and those need no profile conversion.
    Img::thumbnail(buf, w, h, auto_rotate, icc, &lo)
}

/// The largest JPEG shrink-on-load factor (8, 4, 2 or 1) that still decodes at least
/// `to_w×to_h` from `from_w×from_h`.
pub(super) fn jpeg_shrink(from_w: u32, from_h: u32, to_w: u32, to_h: u32) -> u32 {
    let factor = (from_w as f64 / to_w.max(1) as f64).min(from_h as f64 / to_h.max(1) as f64);
    [8u32, 4, 2].into_iter().find(|s| *s as f64 <= factor).unwrap_or(1)
}

/// A JPEG resized to exactly `w×h` (upright): the largest shrink-on-load that keeps at least
/// `w×h` pixels, a Lanczos3 `resize` of the rest, EXIF auto-rotate of the small result, then the
/// embedded profile converted to sRGB (perceptual, 8-bit).
///
/// Not libvips 8.14's `thumbnail`: it keeps a factor of two for its resize (a 4080 px photo to
/// 800 px decodes at 2040 px instead of 1020), ~11 % more CPU per 12 MP render for no visible
/// gain; sharp and thumbor shrink on load as far as this does (`scripts/bench-load.sh`).
fn jpeg_resized<'a>(
    buf: &'a [u8],
    w: u32,
    h: u32,
    info: &SourceInfo,
    auto_rotate: bool,
    kernel: Kernel,
) -> Result<Img<'a>, String> {
    // The stored (pre-rotation) size to resize to.
    let (tw, th) = if auto_rotate && info.orientation >= 5 { (h, w) } else { (w, h) };
    let (sw, sh) = if info.orientation >= 5 { (info.height, info.width) } else { (info.width, info.height) };
    let shrink = jpeg_shrink(sw, sh, tw, th);
    let mut img = Img::from_buffer(buf, &format!("shrink={shrink},fail_on=truncated"))?;
    if (img.width(), img.height()) != (tw, th) {
        img = img.resize_with(tw as f64 / img.width() as f64, th as f64 / img.height() as f64, kernel)?;
        // Rounding in resize can be off by one: pin the exact size.
        if (img.width(), img.height()) != (tw, th) {
            let (ew, eh) = (img.width().min(tw), img.height().min(th));
            img = img.extract(0, 0, ew, eh)?;
        }
    }
    if auto_rotate && info.orientation > 1 {
        img = img.autorot()?;
    }
    if info.has_icc {
        img = super::colour::icc_to_srgb(img)?;
    }
    Ok(img)
}

/// Full decode for trim and CMYK: load, rotate, colour-manage, trim, then plan and resize.
fn load_path<'a>(
    buf: &'a [u8],
    o: &Options,
    enc: &EncodeSettings,
    deadline: Option<Instant>,
    load_opts: Option<&str>,
) -> Result<(Img<'a>, Geometry), TransformError> {
    let lo = load_opts.map_or("fail_on=truncated".to_string(), |l| format!("{l},fail_on=truncated"));
    let mut img = watch(Img::from_buffer(buf, &lo).map_err(fail)?, deadline);
    if o.auto_rotate {
        img = img.autorot().map_err(fail)?;
    }
    if img.has(c"icc-profile-data") || img.interpretation() == Interpretation::Cmyk {
        img = img.icc_to_srgb().map_err(fail)?;
    }
    if let Some(t) = &o.trim {
        let (l, tp, w, h) = img.find_trim(t.threshold, t.color).map_err(fail)?;
        if w > 0 && h > 0 {
            let (mut l, mut tp, mut w, mut h) = (l, tp, w, h);
            if t.equal_hor {
                let right = img.width() - (l + w);
                let m = l.min(right);
                l = m;
                w = img.width() - 2 * m;
            }
            if t.equal_ver {
                let bottom = img.height() - (tp + h);
                let m = tp.min(bottom);
                tp = m;
                h = img.height() - 2 * m;
            }
            img = img.extract(l, tp, w, h).map_err(fail)?;
        }
    }
    let geo = plan(img.width(), img.height(), o, enc.max_output_dimension)?;
    check_held(&geo, o, enc)?;
    let hs = geo.resize_w as f64 / img.width() as f64;
    let vs = geo.resize_h as f64 / img.height() as f64;
    if (geo.resize_w, geo.resize_h) != (img.width(), img.height()) {
        img = img.resize_with(hs, vs, super::extra::kernel(o)).map_err(fail)?;
        // Rounding in resize can be off by one: pin the exact size.
        if (img.width(), img.height()) != (geo.resize_w, geo.resize_h) {
            let (w, h) = (img.width().min(geo.resize_w), img.height().min(geo.resize_h));
            img = img.extract(0, 0, w, h).map_err(fail)?;
        }
    }
    Ok((img, geo))
}

/// 8-bit sRGB (or 8-bit grey) whatever came in (16-bit, Lab, CMYK leftovers).
pub(super) fn to_8bit_srgb(img: Img<'_>) -> Result<Img<'_>, String> {
    let interp = img.interpretation();
    let is_grey = matches!(interp, Interpretation::Bw | Interpretation::Grey16);
    let eight = img.is_uchar();
    match (is_grey, eight, interp == Interpretation::Srgb) {
        (true, true, _) | (false, true, true) => Ok(img),
        (true, false, _) => img.colourspace(Interpretation::Bw),
        _ => img.colourspace(Interpretation::Srgb),
    }
}

fn background(o: &Options, img: &Img, format: Format) -> Vec<f64> {
    let alpha = img.has_alpha() && format.supports_alpha();
    let grey = img.bands() <= 2;
    let [r, g, bl] = o.background.unwrap_or([255, 255, 255]);
    let a = if o.background.is_none() && alpha { 0.0 } else { 255.0 };
    let mut v = if grey {
        vec![((r as f64) * 0.2126 + (g as f64) * 0.7152 + (bl as f64) * 0.0722).round()]
    } else {
        vec![r as f64, g as f64, bl as f64]
    };
    if img.has_alpha() {
        v.push(a);
    }
    v
}

fn apply_geometry<'a>(
    mut img: Img<'a>,
    geo: &Geometry,
    o: &Options,
    format: Format,
    deadline: Option<Instant>,
) -> Result<Img<'a>, TransformError> {
    // Smart crops, rotation and vertical flips read out of order: they get pixels in memory
    // instead of the sequential decode, but only once plain crops and fills have been cut from
    // the lazily resized image, so what is held is never more than `held_in_memory` says.
    if let Some(c) = geo.crop {
        img = if geo.crop_smart {
            img = materialise(&img, deadline)?;
            img.smartcrop(c.w.min(img.width()), c.h.min(img.height()))
        } else {
            clamp_extract(&img, c.x, c.y, c.w, c.h)
        }
        .map_err(fail)?;
    }
    if let Some((bw, bh)) = geo.fill {
        let (bw, bh) = (bw.min(img.width()), bh.min(img.height()));
        img = match geo.fill_gravity.kind {
            GravityKind::Sm => materialise(&img, deadline)?.smartcrop(bw, bh),
            _ => {
                let (x, y) = gravity_offset(geo.fill_gravity, img.width(), img.height(), bw, bh, o.dpr.unwrap_or(1.0));
                clamp_extract(&img, x, y, bw, bh)
            }
        }
        .map_err(fail)?;
    }
    if o.rotate != 0 || o.flip_v {
        img = materialise(&img, deadline)?;
    }
    if o.rotate != 0 {
        img = img.rot(o.rotate).map_err(fail)?;
    }
    if o.flip_h {
        img = img.flip(true).map_err(fail)?;
    }
    if o.flip_v {
        img = img.flip(false).map_err(fail)?;
    }
    if o.blur > 0.0 {
        img = img.gaussblur(o.blur).map_err(fail)?;
    }
    if o.sharpen > 0.0 {
        img = img.sharpen(o.sharpen).map_err(fail)?;
    }
    if o.extra.pixelate > 1 {
        img = super::extra::pixelate(img, o.extra.pixelate).map_err(fail)?;
    }
    if let Some((ew, eh, g)) = geo.extend {
        let bg = background(o, &img, format);
        let g = if g.kind == GravityKind::Sm { Gravity::default() } else { g };
        let (x, y) = gravity_offset(g, ew, eh, img.width(), img.height(), o.dpr.unwrap_or(1.0));
        img = img.embed(x, y, ew.max(img.width()), eh.max(img.height()), &bg).map_err(fail)?;
    }
    let [t, r, bt, l] = geo.padding;
    if t + r + bt + l > 0 {
        let bg = background(o, &img, format);
        img = img.embed(l, t, img.width() + l + r, img.height() + t + bt, &bg).map_err(fail)?;
    }
    Ok(img)
}

fn clamp_extract<'a>(img: &Img<'a>, x: u32, y: u32, w: u32, h: u32) -> Result<Img<'a>, String> {
    let w = w.clamp(1, img.width());
    let h = h.clamp(1, img.height());
    let x = x.min(img.width() - w);
    let y = y.min(img.height() - h);
    img.extract(x, y, w, h)
}

/// Flattens alpha onto the background when the output has none (or a background was asked for).
fn finish_alpha<'a>(img: Img<'a>, o: &Options, format: Format) -> Result<Img<'a>, String> {
    if img.has_alpha() && (!format.supports_alpha() || o.background.is_some()) {
        let bg = background(o, &img, Format::Jpeg);
        let bg = &bg[..bg.len().saturating_sub(1).max(1)];
        return img.flatten(bg);
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::init;
    use crate::transform::testutil::{enc, fixture, req};

    #[test]
    fn renders_exact_sizes_and_formats() {
        init(1).unwrap();
        let src = fixture("orientation/Landscape_6.jpg");
        let r = render(&src, &req("rs:fill:300:200", Some("webp")), &enc()).unwrap();
        assert_eq!((r.width, r.height, r.format), (300, 200, Format::Webp));
        assert_eq!(&r.bytes[8..12], b"WEBP");
        let r = render(&src, &req("w:100", Some("png")), &enc()).unwrap();
        assert_eq!((r.width, r.height), (100, 67));
        assert_eq!(&r.bytes[1..4], b"PNG");
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        init(1).unwrap();
        assert!(matches!(render(b"hello", &req("w:10", None), &enc()), Err(TransformError::Unsupported(_))));
        let mut jpg = fixture("orientation/Landscape_1.jpg");
        jpg.truncate(2000);
        assert!(render(&jpg, &req("w:10", Some("jpg")), &enc()).is_err());
    }
}
