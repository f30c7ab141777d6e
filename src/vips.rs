//! The only file that touches libvips.
//!
//! Facts this file is built around (Debian's libvips 8.14 with the `libvips` crate 2.3): the
//! crate's `*_with_opts` wrappers send options 8.14 lacks, so every call here goes through the
//! crate's raw `bindings` with NULL-terminated varargs; `VipsImage` is not `Send`, so every image
//! lives and dies inside one call of [`render`]/[`probe`] on one blocking thread, owned by [`Img`]
//! (which unrefs exactly once and cannot be cloned); buffer-backed images borrow the caller's
//! bytes, which outlive them; libvips' error buffer is global, so it is read and cleared under a
//! lock; saved buffers come from glib's allocator and are copied out and `g_free`d.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use libvips::bindings as b;

use crate::options::{Format, Gravity, GravityKind, Options};
use crate::transform::{
    auto_quality_range, choose_format, plan, quality_for, search_quality, ssimulacra2, wants_auto_quality,
    EncodeSettings, Geometry, RenderRequest, Rendered, SourceInfo, TransformError,
};

static APP: OnceLock<Result<libvips::VipsApp, String>> = OnceLock::new();
static ERRORS: Mutex<()> = Mutex::new(());

/// Starts libvips once: operation cache off, `concurrency` threads per image.
pub fn init(concurrency: i32) -> Result<(), String> {
    let r = APP.get_or_init(|| {
        let app = libvips::VipsApp::new("imago", false).map_err(|e| format!("libvips failed to start: {e}"))?;
        // SAFETY: plain setters on the initialised library.
        unsafe {
            b::vips_cache_set_max(0);
            b::vips_cache_set_max_mem(0);
            b::vips_cache_set_max_files(0);
            b::vips_concurrency_set(concurrency);
        }
        Ok(app)
    });
    r.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// libvips' version string.
pub fn version() -> String {
    // SAFETY: returns a static string.
    unsafe { CStr::from_ptr(b::vips_version_string()).to_string_lossy().into_owned() }
}

fn take_error() -> String {
    let _g = ERRORS.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the buffer is a NUL-terminated static string until cleared, which we do under the lock.
    unsafe {
        let p = b::vips_error_buffer();
        let s = if p.is_null() { String::new() } else { CStr::from_ptr(p).to_string_lossy().trim().to_string() };
        b::vips_error_clear();
        s
    }
}

/// An owned libvips image: unrefs once on drop, never cloned, never sent across threads.
struct Img(*mut b::VipsImage);

impl Drop for Img {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: we hold exactly one reference.
            unsafe { b::g_object_unref(self.0 as *mut c_void) };
        }
    }
}

const END: *const c_char = null();
const TRUE: c_int = 1;
const FALSE: c_int = 0;

fn wrap(ret: c_int, out: *mut b::VipsImage) -> Result<Img, String> {
    if ret != 0 || out.is_null() {
        drop(Img(out));
        return Err(take_error());
    }
    Ok(Img(out))
}

/// A libvips double array, released on drop.
struct Doubles(*mut b::VipsArrayDouble);
impl Doubles {
    fn new(v: &[f64]) -> Doubles {
        // SAFETY: copies `v`.
        Doubles(unsafe { b::vips_array_double_new(v.as_ptr(), v.len() as c_int) })
    }
}
impl Drop for Doubles {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: we own the one reference.
            unsafe { b::vips_area_unref(self.0 as *mut b::VipsArea) };
        }
    }
}

impl Img {
    fn from_buffer(buf: &[u8], options: &str) -> Result<Img, String> {
        let opts = CString::new(options).map_err(|e| e.to_string())?;
        // SAFETY: the image borrows `buf`, which outlives it (both live within one render call).
        let p = unsafe {
            b::vips_image_new_from_buffer(buf.as_ptr() as *const c_void, buf.len() as b::size_t, opts.as_ptr(), END)
        };
        wrap(0, p)
    }
    fn width(&self) -> u32 {
        // SAFETY: valid image.
        unsafe { b::vips_image_get_width(self.0) as u32 }
    }
    fn height(&self) -> u32 {
        // SAFETY: valid image.
        unsafe { b::vips_image_get_height(self.0) as u32 }
    }
    fn bands(&self) -> i32 {
        // SAFETY: valid image.
        unsafe { b::vips_image_get_bands(self.0) }
    }
    fn has_alpha(&self) -> bool {
        // SAFETY: valid image.
        unsafe { b::vips_image_hasalpha(self.0) != 0 }
    }
    fn interpretation(&self) -> b::VipsInterpretation {
        // SAFETY: valid image.
        unsafe { b::vips_image_get_interpretation(self.0) }
    }
    fn band_format(&self) -> b::VipsBandFormat {
        // SAFETY: valid image.
        unsafe { b::vips_image_get_format(self.0) }
    }
    fn has(&self, field: &CStr) -> bool {
        // SAFETY: valid image and NUL-terminated name.
        unsafe { b::vips_image_get_typeof(self.0, field.as_ptr()) != 0 }
    }
    fn get_int(&self, field: &CStr) -> Option<i32> {
        if !self.has(field) {
            return None;
        }
        let mut v: c_int = 0;
        // SAFETY: valid image, out pointer to a local.
        let r = unsafe { b::vips_image_get_int(self.0, field.as_ptr(), &mut v) };
        if r == 0 {
            Some(v)
        } else {
            take_error();
            None
        }
    }
    fn get_string(&self, field: &CStr) -> Option<String> {
        if !self.has(field) {
            return None;
        }
        let mut p: *const c_char = null();
        // SAFETY: valid image; the string belongs to the image and is copied at once.
        let r = unsafe { b::vips_image_get_string(self.0, field.as_ptr(), &mut p) };
        if r == 0 && !p.is_null() {
            Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        } else {
            take_error();
            None
        }
    }
    fn fields(&self) -> Vec<String> {
        // SAFETY: returns a NULL-terminated, g_strfreev-owned array of strings.
        unsafe {
            let arr = b::vips_image_get_fields(self.0);
            let mut out = Vec::new();
            if arr.is_null() {
                return out;
            }
            let mut i = 0;
            while !(*arr.add(i)).is_null() {
                out.push(CStr::from_ptr(*arr.add(i)).to_string_lossy().into_owned());
                i += 1;
            }
            b::g_strfreev(arr);
            out
        }
    }
    fn remove(&self, field: &str) {
        if let Ok(c) = CString::new(field) {
            // SAFETY: valid image.
            unsafe { b::vips_image_remove(self.0, c.as_ptr()) };
        }
    }
    fn copy(&self) -> Result<Img, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out.
        let r = unsafe { b::vips_copy(self.0, &mut out, END) };
        wrap(r, out)
    }
    fn copy_memory(&self) -> Result<Img, String> {
        // SAFETY: valid image; returns a new reference or NULL.
        let p = unsafe { b::vips_image_copy_memory(self.0) };
        wrap(0, p)
    }
    fn extract(&self, x: u32, y: u32, w: u32, h: u32) -> Result<Img, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out; ints as c_int varargs.
        let r = unsafe { b::vips_extract_area(self.0, &mut out, x as c_int, y as c_int, w as c_int, h as c_int, END) };
        wrap(r, out)
    }
    fn smartcrop(&self, w: u32, h: u32) -> Result<Img, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out; enum as c_int.
        let r = unsafe {
            b::vips_smartcrop(
                self.0,
                &mut out,
                w as c_int,
                h as c_int,
                c"interesting".as_ptr(),
                b::VipsInteresting_VIPS_INTERESTING_ATTENTION as c_int,
                END,
            )
        };
        wrap(r, out)
    }
    fn rot(&self, degrees: u16) -> Result<Img, String> {
        let angle = match degrees {
            90 => b::VipsAngle_VIPS_ANGLE_D90,
            180 => b::VipsAngle_VIPS_ANGLE_D180,
            270 => b::VipsAngle_VIPS_ANGLE_D270,
            _ => b::VipsAngle_VIPS_ANGLE_D0,
        };
        let mut out = null_mut();
        // SAFETY: valid in/out.
        let r = unsafe { b::vips_rot(self.0, &mut out, angle, END) };
        wrap(r, out)
    }
    fn flip(&self, horizontal: bool) -> Result<Img, String> {
        let d = if horizontal {
            b::VipsDirection_VIPS_DIRECTION_HORIZONTAL
        } else {
            b::VipsDirection_VIPS_DIRECTION_VERTICAL
        };
        let mut out = null_mut();
        // SAFETY: valid in/out.
        let r = unsafe { b::vips_flip(self.0, &mut out, d, END) };
        wrap(r, out)
    }
    fn autorot(&self) -> Result<Img, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out.
        let r = unsafe { b::vips_autorot(self.0, &mut out, END) };
        wrap(r, out)
    }
    fn gaussblur(&self, sigma: f64) -> Result<Img, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out; double vararg.
        let r = unsafe { b::vips_gaussblur(self.0, &mut out, sigma, END) };
        wrap(r, out)
    }
    fn sharpen(&self, sigma: f64) -> Result<Img, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out; named double option.
        let r = unsafe { b::vips_sharpen(self.0, &mut out, c"sigma".as_ptr(), sigma, END) };
        wrap(r, out)
    }
    fn embed(&self, x: u32, y: u32, w: u32, h: u32, bg: &[f64]) -> Result<Img, String> {
        let arr = Doubles::new(bg);
        let mut out = null_mut();
        // SAFETY: valid in/out; the array lives until after the call.
        let r = unsafe {
            b::vips_embed(
                self.0,
                &mut out,
                x as c_int,
                y as c_int,
                w as c_int,
                h as c_int,
                c"extend".as_ptr(),
                b::VipsExtend_VIPS_EXTEND_BACKGROUND as c_int,
                c"background".as_ptr(),
                arr.0,
                END,
            )
        };
        wrap(r, out)
    }
    fn flatten(&self, bg: &[f64]) -> Result<Img, String> {
        let arr = Doubles::new(bg);
        let mut out = null_mut();
        // SAFETY: valid in/out; the array lives until after the call.
        let r = unsafe { b::vips_flatten(self.0, &mut out, c"background".as_ptr(), arr.0, END) };
        wrap(r, out)
    }
    fn colourspace(&self, to: b::VipsInterpretation) -> Result<Img, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out.
        let r = unsafe { b::vips_colourspace(self.0, &mut out, to, END) };
        wrap(r, out)
    }
    fn icc_to_srgb(&self) -> Result<Img, String> {
        let mut out = null_mut();
        let cmyk = self.interpretation() == b::VipsInterpretation_VIPS_INTERPRETATION_CMYK;
        let fallback = if cmyk { c"cmyk" } else { c"srgb" };
        // SAFETY: valid in/out; named string/int options.
        let r = unsafe {
            b::vips_icc_transform(
                self.0,
                &mut out,
                c"srgb".as_ptr(),
                c"embedded".as_ptr(),
                TRUE,
                c"input_profile".as_ptr(),
                fallback.as_ptr(),
                c"intent".as_ptr(),
                b::VipsIntent_VIPS_INTENT_PERCEPTUAL as c_int,
                END,
            )
        };
        wrap(r, out)
    }
    fn resize(&self, hscale: f64, vscale: f64) -> Result<Img, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out.
        let r = unsafe { b::vips_resize(self.0, &mut out, hscale, c"vscale".as_ptr(), vscale, END) };
        wrap(r, out)
    }
    fn find_trim(&self, threshold: f64, bg: Option<[u8; 3]>) -> Result<(u32, u32, u32, u32), String> {
        let (mut l, mut t, mut w, mut h) = (0, 0, 0, 0);
        let r = match bg {
            Some(c) => {
                let arr = Doubles::new(&[c[0] as f64, c[1] as f64, c[2] as f64]);
                // SAFETY: valid image, out pointers to locals, array alive during the call.
                unsafe {
                    b::vips_find_trim(
                        self.0,
                        &mut l,
                        &mut t,
                        &mut w,
                        &mut h,
                        c"threshold".as_ptr(),
                        threshold,
                        c"background".as_ptr(),
                        arr.0,
                        END,
                    )
                }
            }
            // SAFETY: as above.
            None => unsafe {
                b::vips_find_trim(self.0, &mut l, &mut t, &mut w, &mut h, c"threshold".as_ptr(), threshold, END)
            },
        };
        if r != 0 {
            return Err(take_error());
        }
        Ok((l as u32, t as u32, w as u32, h as u32))
    }
    /// 8-bit sRGB pixels without alpha (flattened on white), for perceptual comparison.
    fn to_rgb8(&self) -> Result<(Vec<u8>, u32, u32), String> {
        let mut img = if self.has_alpha() { self.flatten(&[255.0; 3]) } else { self.copy() }?;
        if img.bands() < 3 || img.interpretation() != b::VipsInterpretation_VIPS_INTERPRETATION_sRGB {
            img = img.colourspace(b::VipsInterpretation_VIPS_INTERPRETATION_sRGB)?;
        }
        if img.bands() > 3 {
            let mut out = null_mut();
            // SAFETY: valid in/out; named int option.
            let r = unsafe { b::vips_extract_band(img.0, &mut out, 0, c"n".as_ptr(), 3 as c_int, END) };
            img = wrap(r, out)?;
        }
        if img.band_format() != b::VipsBandFormat_VIPS_FORMAT_UCHAR {
            let mut out = null_mut();
            // SAFETY: valid in/out.
            let r = unsafe { b::vips_cast_uchar(img.0, &mut out, END) };
            img = wrap(r, out)?;
        }
        let (w, h) = (img.width(), img.height());
        let mut size: b::size_t = 0;
        // SAFETY: returns a g_malloc'd copy of the pixels (or NULL), which we copy and free.
        unsafe {
            let p = b::vips_image_write_to_memory(img.0, &mut size);
            if p.is_null() {
                return Err(take_error());
            }
            let v = std::slice::from_raw_parts(p as *const u8, size as usize).to_vec();
            b::g_free(p);
            Ok((v, w, h))
        }
    }

    /// True when the (8-bit) image has at most 256 distinct colours, so a palette PNG is lossless.
    /// Stops at the 257th colour, so photos answer after a few hundred pixels.
    fn fits_palette(&self) -> bool {
        let bands = self.bands().clamp(1, 4) as usize;
        if self.band_format() != b::VipsBandFormat_VIPS_FORMAT_UCHAR || self.bands() > 4 {
            return false;
        }
        let mut size: b::size_t = 0;
        // SAFETY: returns a g_malloc'd copy of the pixels (or NULL), freed below.
        let p = unsafe { b::vips_image_write_to_memory(self.0, &mut size) };
        if p.is_null() {
            take_error();
            return false;
        }
        // SAFETY: `p` holds `size` bytes until freed.
        let px = unsafe { std::slice::from_raw_parts(p as *const u8, size as usize) };
        let mut seen = std::collections::HashSet::with_capacity(257);
        let mut fits = true;
        for c in px.chunks_exact(bands) {
            let mut v = 0u32;
            for b in c {
                v = (v << 8) | *b as u32;
            }
            if seen.insert(v) && seen.len() > 256 {
                fits = false;
                break;
            }
        }
        // SAFETY: allocated by libvips with g_malloc.
        unsafe { b::g_free(p) };
        fits
    }

    fn save(&self, suffix: &str) -> Result<Vec<u8>, String> {
        let s = CString::new(suffix).map_err(|e| e.to_string())?;
        let mut buf: *mut c_void = null_mut();
        let mut len: b::size_t = 0;
        // SAFETY: valid image; on success `buf` is a glib allocation of `len` bytes that we copy
        // and free with g_free.
        unsafe {
            let r = b::vips_image_write_to_buffer(self.0, s.as_ptr(), &mut buf, &mut len, END);
            if r != 0 || buf.is_null() {
                if !buf.is_null() {
                    b::g_free(buf);
                }
                return Err(take_error());
            }
            let v = std::slice::from_raw_parts(buf as *const u8, len as usize).to_vec();
            b::g_free(buf);
            Ok(v)
        }
    }
}

/// Which container the bytes are, from their first bytes (before any libvips loader runs).
pub fn sniff(buf: &[u8]) -> Option<&'static str> {
    crate::transform::sniff(buf)
}

fn source_format(img: &Img, sniffed: &'static str) -> &'static str {
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
    Ok(info)
}

fn fail(e: String) -> TransformError {
    TransformError::Undecodable(e)
}

fn is_animated_format(f: &str) -> bool {
    matches!(f, "gif" | "webp")
}

/// Decodes, transforms and encodes one image.
pub fn render(buf: &[u8], req: &RenderRequest, enc: &EncodeSettings) -> Result<Rendered, TransformError> {
    let t0 = Instant::now();
    let decode_span = tracing::info_span!("decode").entered();
    let info = probe(buf, enc)?;
    let o = &req.options;
    let animated_src = info.pages > 1 && is_animated_format(info.format);
    let format = choose_format(o.format, req.accept, enc, info.has_alpha, animated_src);
    let animated = animated_src && format.supports_animation();
    if animated {
        if info.pages > enc.max_animation_frames {
            return Err(TransformError::TooManyFrames { frames: info.pages, limit: enc.max_animation_frames });
        }
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
        let img =
            thumbnail(buf, geo.resize_w, geo.resize_h, o.auto_rotate, info.has_icc, Some("n=-1")).map_err(fail)?;
        (img, geo)
    } else if o.trim.is_some() || info.format == "jpeg" && is_cmyk(buf) {
        load_path(buf, o, enc)?
    } else {
        let geo = plan(up_w, up_h, o, enc.max_output_dimension)?;
        let img = thumbnail(buf, geo.resize_w, geo.resize_h, o.auto_rotate, info.has_icc, None).map_err(fail)?;
        (img, geo)
    };
    let img = to_8bit_srgb(img).map_err(fail)?;
    let img = if animated { img } else { apply_geometry(img, &geo, o, format)? };
    let img = finish_alpha(img, o, format).map_err(fail)?;
    let img = strip(img, o).map_err(fail)?;
    let img = img.copy_memory().map_err(fail)?;
    let decode_ms = t0.elapsed().as_secs_f64() * 1000.0;
    drop(decode_span);
    let (width, height) = (img.width(), if animated { geo.out_h } else { img.height() });

    let t1 = Instant::now();
    let encode_span = tracing::info_span!("encode", format = format.name()).entered();
    let mut quality = quality_for(format, o, enc, req.save_data);
    let mut bytes = if !animated && wants_auto_quality(o, format, enc) {
        let target = enc.auto_quality_target - if req.save_data { 10.0 } else { 0.0 };
        let (q, b) = auto_quality(&img, format, quality, target, enc, o)?;
        quality = q;
        b
    } else {
        encode(&img, format, quality, enc, o)?
    };
    if let Some(max) = o.max_bytes {
        while bytes.len() as u64 > max && quality > 10 && matches!(format, Format::Jpeg | Format::Webp | Format::Avif) {
            quality = quality.saturating_sub(10).max(10);
            bytes = encode(&img, format, quality, enc, o)?;
        }
    }
    let encode_ms = t1.elapsed().as_secs_f64() * 1000.0;
    drop(encode_span);
    let mut out =
        Rendered { bytes, format, width, height, quality, source: info.clone(), original: false, decode_ms, encode_ms };
    if original_acceptable(&info, o, req, &geo, animated_src) && out.bytes.len() >= buf.len() {
        if let Some(f) = Format::parse(info.format) {
            out.bytes = buf.to_vec();
            out.format = f;
            out.original = true;
        }
    }
    Ok(out)
}

/// Only resizing applies to animations: crops, rotation and padding are per-frame operations
/// that would tear a frame strip apart.
fn strip_for_animation(o: &Options) -> Options {
    Options { crop: None, extend: None, padding: None, trim: None, ..o.clone() }
}

/// True when serving the original bytes is as good as the variant: same pixels, a format this
/// client takes, nothing to strip.
fn original_acceptable(info: &SourceInfo, o: &Options, req: &RenderRequest, geo: &Geometry, animated: bool) -> bool {
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
        && o.background.is_none();
    let clean = !(o.strip_metadata && info.has_metadata);
    let format_ok = match o.format {
        FormatChoice::Explicit(f) => f.name() == info.format,
        FormatChoice::Auto | FormatChoice::Unset => match info.format {
            "jpeg" | "png" | "gif" => true,
            "webp" => req.accept != AcceptClass::Legacy,
            "avif" => req.accept == AcceptClass::Avif,
            _ => false,
        },
    };
    same_pixels && clean && format_ok && (!animated || info.format != "jpeg")
}

fn is_cmyk(buf: &[u8]) -> bool {
    // Cheap header look: a CMYK JPEG has a 4-component SOF.
    Img::from_buffer(buf, "")
        .map(|i| i.interpretation() == b::VipsInterpretation_VIPS_INTERPRETATION_CMYK)
        .unwrap_or(false)
}

/// libvips' thumbnail: shrink-on-load, EXIF auto-rotate, colour-manage to sRGB (perceptual),
/// exact resize to `w×h`.
fn thumbnail(buf: &[u8], w: u32, h: u32, auto_rotate: bool, icc: bool, load_opts: Option<&str>) -> Result<Img, String> {
    let mut out = null_mut();
    let lo = match load_opts {
        Some(o) => format!("{o},fail_on=truncated"),
        None => "fail_on=truncated".to_string(),
    };
    let lo = CString::new(lo).map_err(|e| e.to_string())?;
    // Only an embedded profile is converted here: libvips 8.14's thumbnail shifts colours of
    // untagged 16-bit images when asked to export, and those need no profile conversion.
    // SAFETY: libvips reads `buf` (it does not write through the pointer) during the call and
    // the lazily-evaluated result; `buf` outlives the returned image within `render`. Each
    // name/value pair matches the option's type.
    let r = unsafe {
        if icc {
            b::vips_thumbnail_buffer(
                buf.as_ptr() as *mut c_void,
                buf.len() as b::size_t,
                &mut out,
                w as c_int,
                c"height".as_ptr(),
                h as c_int,
                c"size".as_ptr(),
                b::VipsSize_VIPS_SIZE_FORCE as c_int,
                c"no_rotate".as_ptr(),
                if auto_rotate { FALSE } else { TRUE },
                c"export_profile".as_ptr(),
                c"srgb".as_ptr(),
                c"intent".as_ptr(),
                b::VipsIntent_VIPS_INTENT_PERCEPTUAL as c_int,
                c"option_string".as_ptr(),
                lo.as_ptr(),
                END,
            )
        } else {
            b::vips_thumbnail_buffer(
                buf.as_ptr() as *mut c_void,
                buf.len() as b::size_t,
                &mut out,
                w as c_int,
                c"height".as_ptr(),
                h as c_int,
                c"size".as_ptr(),
                b::VipsSize_VIPS_SIZE_FORCE as c_int,
                c"no_rotate".as_ptr(),
                if auto_rotate { FALSE } else { TRUE },
                c"option_string".as_ptr(),
                lo.as_ptr(),
                END,
            )
        }
    };
    wrap(r, out)
}

/// Full decode for trim and CMYK: load, rotate, colour-manage, trim, then plan and resize.
fn load_path(buf: &[u8], o: &Options, enc: &EncodeSettings) -> Result<(Img, Geometry), TransformError> {
    let mut img = Img::from_buffer(buf, "fail_on=truncated").map_err(fail)?;
    if o.auto_rotate {
        img = img.autorot().map_err(fail)?;
    }
    if img.has(c"icc-profile-data") || img.interpretation() == b::VipsInterpretation_VIPS_INTERPRETATION_CMYK {
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
    let hs = geo.resize_w as f64 / img.width() as f64;
    let vs = geo.resize_h as f64 / img.height() as f64;
    if (geo.resize_w, geo.resize_h) != (img.width(), img.height()) {
        img = img.resize(hs, vs).map_err(fail)?;
        // Rounding in resize can be off by one: pin the exact size.
        if (img.width(), img.height()) != (geo.resize_w, geo.resize_h) {
            let (w, h) = (img.width().min(geo.resize_w), img.height().min(geo.resize_h));
            img = img.extract(0, 0, w, h).map_err(fail)?;
        }
    }
    Ok((img, geo))
}

/// 8-bit sRGB (or 8-bit grey) whatever came in (16-bit, Lab, CMYK leftovers).
fn to_8bit_srgb(img: Img) -> Result<Img, String> {
    let interp = img.interpretation();
    let is_grey = matches!(
        interp,
        b::VipsInterpretation_VIPS_INTERPRETATION_B_W | b::VipsInterpretation_VIPS_INTERPRETATION_GREY16
    );
    let eight = img.band_format() == b::VipsBandFormat_VIPS_FORMAT_UCHAR;
    match (is_grey, eight, interp == b::VipsInterpretation_VIPS_INTERPRETATION_sRGB) {
        (true, true, _) | (false, true, true) => Ok(img),
        (true, false, _) => img.colourspace(b::VipsInterpretation_VIPS_INTERPRETATION_B_W),
        _ => img.colourspace(b::VipsInterpretation_VIPS_INTERPRETATION_sRGB),
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

fn apply_geometry(mut img: Img, geo: &Geometry, o: &Options, format: Format) -> Result<Img, TransformError> {
    // Smart crop, rotation and vertical flips read out of order: give them the (already
    // resized) pixels in memory instead of the sequential decode.
    let smart = geo.crop_smart || (geo.fill.is_some() && geo.fill_gravity.kind == GravityKind::Sm);
    if smart || o.rotate != 0 || o.flip_v {
        img = img.copy_memory().map_err(fail)?;
    }
    if let Some(c) = geo.crop {
        img = if geo.crop_smart {
            img.smartcrop(c.w.min(img.width()), c.h.min(img.height()))
        } else {
            clamp_extract(&img, c.x, c.y, c.w, c.h)
        }
        .map_err(fail)?;
    }
    if let Some((bw, bh)) = geo.fill {
        let (bw, bh) = (bw.min(img.width()), bh.min(img.height()));
        img = match geo.fill_gravity.kind {
            GravityKind::Sm => img.smartcrop(bw, bh),
            _ => {
                let (x, y) = crate::transform::gravity_offset(
                    geo.fill_gravity,
                    img.width(),
                    img.height(),
                    bw,
                    bh,
                    o.dpr.unwrap_or(1.0),
                );
                clamp_extract(&img, x, y, bw, bh)
            }
        }
        .map_err(fail)?;
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
    if let Some((ew, eh, g)) = geo.extend {
        let bg = background(o, &img, format);
        let g = if g.kind == GravityKind::Sm { Gravity::default() } else { g };
        let (x, y) = crate::transform::gravity_offset(g, ew, eh, img.width(), img.height(), o.dpr.unwrap_or(1.0));
        img = img.embed(x, y, ew.max(img.width()), eh.max(img.height()), &bg).map_err(fail)?;
    }
    let [t, r, bt, l] = geo.padding;
    if t + r + bt + l > 0 {
        let bg = background(o, &img, format);
        img = img.embed(l, t, img.width() + l + r, img.height() + t + bt, &bg).map_err(fail)?;
    }
    Ok(img)
}

fn clamp_extract(img: &Img, x: u32, y: u32, w: u32, h: u32) -> Result<Img, String> {
    let w = w.clamp(1, img.width());
    let h = h.clamp(1, img.height());
    let x = x.min(img.width() - w);
    let y = y.min(img.height() - h);
    img.extract(x, y, w, h)
}

/// Flattens alpha onto the background when the output has none (or a background was asked for).
fn finish_alpha(img: Img, o: &Options, format: Format) -> Result<Img, String> {
    if img.has_alpha() && (!format.supports_alpha() || o.background.is_some()) {
        let bg = background(o, &img, Format::Jpeg);
        let bg = &bg[..bg.len().saturating_sub(1).max(1)];
        return img.flatten(bg);
    }
    Ok(img)
}

/// Removes metadata on a private copy. libvips 8.14's savers write whatever `exif-data`,
/// `xmp-data` and `iptc-data` hold (WebP's `strip` keeps EXIF), so the fields themselves go.
fn strip(img: Img, o: &Options) -> Result<Img, String> {
    let out = img.copy()?;
    drop(img);
    // The pixels are upright now: an orientation tag would rotate them again.
    out.remove("orientation");
    if o.strip_metadata {
        // kcr:1: the copyright notice survives, in a minimal EXIF block of its own.
        let copyright =
            if o.keep_copyright { out.get_string(c"exif-ifd0-Copyright").map(|v| exif_field_value(&v)) } else { None };
        for f in out.fields() {
            let drop_it = f == "exif-data"
                || f == "xmp-data"
                || f == "iptc-data"
                || f == "photoshop-data"
                || f.starts_with("exif-")
                || f.starts_with("xmp-")
                || f.starts_with("iptc-")
                || f.starts_with("png-comment")
                || f == "gif-comment"
                || f.starts_with("heif-");
            if drop_it {
                out.remove(&f);
            }
        }
        if let Some(text) = copyright.filter(|t| !t.is_empty()) {
            let blob = crate::transform::exif_with_copyright(&text);
            // SAFETY: libvips copies the bytes.
            unsafe {
                b::vips_image_set_blob_copy(
                    out.0,
                    c"exif-data".as_ptr(),
                    blob.as_ptr() as *const c_void,
                    blob.len() as b::size_t,
                )
            };
        }
    } else if out.has(c"exif-data") {
        // Keep EXIF but make its orientation agree with the upright pixels.
        if let Ok(c) = CString::new("1") {
            // SAFETY: valid image and strings.
            unsafe { b::vips_image_set_string(out.0, c"exif-ifd0-Orientation".as_ptr(), c.as_ptr()) };
        }
    }
    if o.strip_color_profile {
        out.remove("icc-profile-data");
    }
    Ok(out)
}

/// Perceptual auto quality: a bounded bisection over the format's quality range for the lowest
/// quality whose SSIMULACRA2 score against the resized, unencoded pixels reaches `target`.
fn auto_quality(
    img: &Img,
    format: Format,
    seed: u8,
    target: f64,
    enc: &EncodeSettings,
    o: &Options,
) -> Result<(u8, Vec<u8>), TransformError> {
    // Score at most ~0.25 MP: SSIMULACRA2 dominates the cost, and at that size it still sees
    // the artefacts that matter at 1x-2x display.
    let score_scale = (250_000.0 / (img.width() as f64 * img.height() as f64)).sqrt().min(1.0);
    let prep = |i: &Img| -> Result<(Vec<u8>, u32, u32), String> {
        if score_scale < 1.0 {
            i.resize(score_scale, score_scale)?.to_rgb8()
        } else {
            i.to_rgb8()
        }
    };
    let (reference, w, h) = prep(img).map_err(TransformError::Encode)?;
    let mut encoded: Vec<(u8, Vec<u8>)> = Vec::new();
    let (q, _trials) = search_quality(auto_quality_range(format), seed, target, enc.auto_quality_trials, |q| {
        let bytes = encode(img, format, q, enc, o)?;
        let decoded = Img::from_buffer(&bytes, "").and_then(|d| prep(&d)).map_err(TransformError::Encode)?;
        let score = if (decoded.1, decoded.2) == (w, h) {
            ssimulacra2(&reference, &decoded.0, w, h).unwrap_or(100.0)
        } else {
            100.0
        };
        encoded.push((q, bytes));
        Ok::<f64, TransformError>(score)
    })?;
    match encoded.into_iter().find(|(eq, _)| *eq == q) {
        Some((_, b)) => Ok((q, b)),
        None => Ok((q, encode(img, format, q, enc, o)?)),
    }
}

fn encode(img: &Img, format: Format, q: u8, enc: &EncodeSettings, o: &Options) -> Result<Vec<u8>, TransformError> {
    if format == Format::Png && q >= 100 && img.fits_palette() {
        // Palette when it fits: lossless for ≤ 256 colours, and much smaller.
        let strip = if o.strip_metadata && o.strip_color_profile && !o.keep_copyright { "true" } else { "false" };
        return img
            .save(&format!(".png[compression=6,palette=true,Q=100,dither=0,strip={strip}]"))
            .map_err(TransformError::Encode);
    }
    let bytes = img.save(&saver(format, q, enc, o)).map_err(TransformError::Encode)?;
    if format == Format::Webp && o.strip_metadata && !o.keep_copyright {
        return crate::transform::webp_strip(&bytes, o.strip_color_profile)
            .ok_or_else(|| TransformError::Encode("libvips wrote a malformed WebP".into()));
    }
    Ok(bytes)
}

/// libvips renders EXIF fields as `value (format, n components, n bytes)`: the value part.
fn exif_field_value(v: &str) -> String {
    match v.rfind(" (") {
        Some(i) if v.ends_with(')') => v[..i].to_string(),
        _ => v.to_string(),
    }
}

fn saver(format: Format, q: u8, enc: &EncodeSettings, o: &Options) -> String {
    // Metadata was removed field by field in `strip`; the savers' own strip flag additionally
    // drops anything a saver would invent, but it also drops ICC, so only when that goes too.
    let strip = if o.strip_metadata && o.strip_color_profile && !o.keep_copyright { "true" } else { "false" };
    match format {
        Format::Jpeg => format!(".jpg[Q={q},optimize_coding=true,interlace=true,strip={strip}]"),
        Format::Webp => format!(".webp[Q={q},effort={},strip={strip}]", enc.webp_effort),
        Format::Avif => format!(".avif[Q={q},effort={},strip={strip}]", enc.avif_effort),
        Format::Png => {
            if q < 100 {
                format!(".png[compression=6,palette=true,Q={q},strip={strip}]")
            } else {
                format!(".png[compression=6,strip={strip}]")
            }
        }
        Format::Gif => format!(".gif[strip={strip}]"),
    }
}

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
    Img::from_buffer(&png.bytes, "")?.to_rgb8()
}

/// Benchmark support: SSIMULACRA2 of an encoded image against reference pixels.
pub fn score_encoded(encoded: &[u8], reference: &(Vec<u8>, u32, u32)) -> Option<f64> {
    let d = Img::from_buffer(encoded, "").and_then(|i| i.to_rgb8()).ok()?;
    if (d.1, d.2) != (reference.1, reference.2) {
        return None;
    }
    ssimulacra2(&reference.0, &d.0, d.1, d.2)
}

// ─────────────────────────────────────────────────────────────────────────────────────────────
// Uploads: image info (`GET /v1/images/{key}/info`). Header facts from a header-only load and a
// tiny upright sRGB RGBA thumbnail (for the thumbhash and the dominant colour, computed in
// `upload::info`). Same rules as above: raw bindings, NULL-terminated varargs, `Img` owns.
// ─────────────────────────────────────────────────────────────────────────────────────────────

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

fn enum_nick(gtype: b::GType, value: c_int) -> String {
    // SAFETY: returns a static string (or NULL for an unknown value).
    let p = unsafe { b::vips_enum_nick(gtype, value) };
    if p.is_null() {
        return "unknown".into();
    }
    // SAFETY: non-NULL, NUL-terminated, static.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl Img {
    fn get_blob(&self, field: &CStr) -> Option<Vec<u8>> {
        if !self.has(field) {
            return None;
        }
        let mut data: *const c_void = null();
        let mut len: b::size_t = 0;
        // SAFETY: valid image; the blob belongs to the image and is copied at once.
        let r = unsafe { b::vips_image_get_blob(self.0, field.as_ptr(), &mut data, &mut len) };
        if r != 0 || data.is_null() {
            take_error();
            return None;
        }
        // SAFETY: libvips says `data` holds `len` bytes.
        Some(unsafe { std::slice::from_raw_parts(data as *const u8, len as usize) }.to_vec())
    }
    fn bandjoin_const(&self, c: f64) -> Result<Img, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out; double vararg.
        let r = unsafe { b::vips_bandjoin_const1(self.0, &mut out, c, END) };
        wrap(r, out)
    }
    /// The pixels as one packed buffer (copied out of glib's allocation).
    fn raw_pixels(&self) -> Result<Vec<u8>, String> {
        let mut len: b::size_t = 0;
        // SAFETY: valid image; on success a g_malloc'd buffer of `len` bytes that we copy and free.
        unsafe {
            let p = b::vips_image_write_to_memory(self.0, &mut len);
            if p.is_null() {
                return Err(take_error());
            }
            let v = std::slice::from_raw_parts(p as *const u8, len as usize).to_vec();
            b::g_free(p);
            Ok(v)
        }
    }
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
    let interp = head.interpretation();
    // SAFETY: plain GType getters.
    let (interp_type, format_type) = unsafe { (b::vips_interpretation_get_type(), b::vips_band_format_get_type()) };
    let icc = head.get_blob(c"icc-profile-data");
    let cmyk = interp == b::VipsInterpretation_VIPS_INTERPRETATION_CMYK;
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
        interpretation: enum_nick(interp_type, interp as c_int),
        band_format: enum_nick(format_type, head.band_format() as c_int),
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
        img = img.colourspace(b::VipsInterpretation_VIPS_INTERPRETATION_sRGB).map_err(fail)?;
    }
    if img.bands() == 3 {
        img = img.bandjoin_const(255.0).map_err(fail)?;
    }
    if img.bands() != 4 || img.band_format() != b::VipsBandFormat_VIPS_FORMAT_UCHAR {
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

// ─────────────────────────────── end of the uploads section ────────────────────────────────

#[cfg(test)]
mod tests {
    use super::*;
    use crate::negotiate::AcceptClass;
    use crate::options::{parse, Presets};

    fn enc() -> EncodeSettings {
        // The configuration defaults, with a frame limit the tests can reach.
        EncodeSettings {
            max_animation_frames: 100,
            ..EncodeSettings::from_config(&crate::config::RawConfig::default())
        }
    }
    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }
    fn req(s: &str, ext: Option<&str>) -> RenderRequest {
        let segs: Vec<&str> = s.split('/').filter(|x| !x.is_empty()).collect();
        RenderRequest {
            options: parse(&segs, ext, &Presets::default()).unwrap(),
            accept: AcceptClass::Legacy,
            save_data: false,
        }
    }

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
    fn png_uses_a_palette_only_when_it_is_lossless() {
        init(1).unwrap();
        // A flat-colour image: the padding of a tiny crop has few colours.
        let src = fixture("orientation/Landscape_1.jpg");
        let few = render(&src, &req("rs:fit:8:8/pd:40/bg:10:200:30", Some("png")), &enc()).unwrap();
        let photo = render(&src, &req("w:200", Some("png")), &enc()).unwrap();
        let pal = |b: &[u8]| b.windows(4).any(|w| w == b"PLTE");
        assert!(!pal(&photo.bytes), "a photo has more than 256 colours");
        let colours = {
            let i = Img::from_buffer(&few.bytes, "").unwrap();
            i.fits_palette()
        };
        assert!(colours);
        assert!(pal(&few.bytes), "few colours: palette PNG");
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
