//! [`Img`]: an owned libvips image, how one is loaded, and the pixel operations on it.

use std::ffi::{c_int, c_void, CString};
use std::marker::PhantomData;
use std::ptr::null_mut;

use libvips::bindings as b;

use super::{take_error, wrap, Doubles, END, FALSE, TRUE};

/// An owned libvips image: unrefs once on drop, never cloned, never sent across threads.
///
/// `'a` is the encoded buffer it was loaded from: libvips decodes lazily and reads the caller's
/// bytes (it does not copy them) for as long as the image or anything derived from it lives, so
/// every image derived from it carries the same borrow.
pub(crate) struct Img<'a>(pub(super) *mut b::VipsImage, pub(super) PhantomData<&'a [u8]>);

impl Drop for Img<'_> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: we hold exactly one reference.
            unsafe { b::g_object_unref(self.0 as *mut c_void) };
        }
    }
}

/// The colour interpretations imago tells apart; every other libvips interpretation is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interpretation {
    Srgb,
    Cmyk,
    /// 8-bit grey (`b-w`).
    Bw,
    Grey16,
    Other(b::VipsInterpretation),
}

impl Interpretation {
    pub(super) fn from_raw(v: b::VipsInterpretation) -> Interpretation {
        match v {
            b::VipsInterpretation_VIPS_INTERPRETATION_sRGB => Interpretation::Srgb,
            b::VipsInterpretation_VIPS_INTERPRETATION_CMYK => Interpretation::Cmyk,
            b::VipsInterpretation_VIPS_INTERPRETATION_B_W => Interpretation::Bw,
            b::VipsInterpretation_VIPS_INTERPRETATION_GREY16 => Interpretation::Grey16,
            other => Interpretation::Other(other),
        }
    }
    pub(super) fn raw(self) -> b::VipsInterpretation {
        match self {
            Interpretation::Srgb => b::VipsInterpretation_VIPS_INTERPRETATION_sRGB,
            Interpretation::Cmyk => b::VipsInterpretation_VIPS_INTERPRETATION_CMYK,
            Interpretation::Bw => b::VipsInterpretation_VIPS_INTERPRETATION_B_W,
            Interpretation::Grey16 => b::VipsInterpretation_VIPS_INTERPRETATION_GREY16,
            Interpretation::Other(v) => v,
        }
    }
}

/// Resampling kernels for [`Img::resize_with`] (libvips' default is Lanczos3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    Nearest,
    Linear,
    Cubic,
    Lanczos2,
    Lanczos3,
}

impl<'a> Img<'a> {
    /// Loads `buf` (header now, pixels lazily) with a loader option string such as
    /// `fail_on=truncated` (empty for none).
    pub(crate) fn from_buffer(buf: &'a [u8], options: &str) -> Result<Img<'a>, String> {
        let opts = CString::new(options).map_err(|e| e.to_string())?;
        // SAFETY: the image borrows `buf`, which outlives it (`'a`).
        let p = unsafe {
            b::vips_image_new_from_buffer(buf.as_ptr() as *const c_void, buf.len() as b::size_t, opts.as_ptr(), END)
        };
        wrap(0, p)
    }

    /// libvips' thumbnail of an encoded buffer: shrink-on-load, EXIF auto-rotate (unless
    /// `auto_rotate` is false), exact resize to `w×h`; with `export_srgb` the embedded profile is
    /// converted to sRGB (perceptual). `option_string` goes to the loader.
    pub(crate) fn thumbnail(
        buf: &'a [u8],
        w: u32,
        h: u32,
        auto_rotate: bool,
        export_srgb: bool,
        option_string: &str,
    ) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        let lo = CString::new(option_string).map_err(|e| e.to_string())?;
        // SAFETY: libvips reads `buf` (it does not write through the pointer) during the call and
        // the lazily-evaluated result; `buf` outlives the returned image (`'a`). Each name/value
        // pair matches the option's type.
        let r = unsafe {
            if export_srgb {
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

    pub(crate) fn copy(&self) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out.
        let r = unsafe { b::vips_copy(self.0, &mut out, END) };
        wrap(r, out)
    }
    /// The pixels rendered into memory (for operations that read out of order).
    pub(crate) fn copy_memory(&self) -> Result<Img<'a>, String> {
        // SAFETY: valid image; returns a new reference or NULL.
        let p = unsafe { b::vips_image_copy_memory(self.0) };
        wrap(0, p)
    }
    pub(crate) fn extract(&self, x: u32, y: u32, w: u32, h: u32) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out; ints as c_int varargs.
        let r = unsafe { b::vips_extract_area(self.0, &mut out, x as c_int, y as c_int, w as c_int, h as c_int, END) };
        wrap(r, out)
    }
    /// Attention-based crop to `w×h`.
    pub(crate) fn smartcrop(&self, w: u32, h: u32) -> Result<Img<'a>, String> {
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
    /// Rotates by 90, 180 or 270 degrees (anything else: 0).
    pub(crate) fn rot(&self, degrees: u16) -> Result<Img<'a>, String> {
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
    pub(crate) fn flip(&self, horizontal: bool) -> Result<Img<'a>, String> {
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
    /// Applies the EXIF orientation to the pixels.
    pub(crate) fn autorot(&self) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out.
        let r = unsafe { b::vips_autorot(self.0, &mut out, END) };
        wrap(r, out)
    }
    pub(crate) fn gaussblur(&self, sigma: f64) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out; double vararg.
        let r = unsafe { b::vips_gaussblur(self.0, &mut out, sigma, END) };
        wrap(r, out)
    }
    pub(crate) fn sharpen(&self, sigma: f64) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out; named double option.
        let r = unsafe { b::vips_sharpen(self.0, &mut out, c"sigma".as_ptr(), sigma, END) };
        wrap(r, out)
    }
    /// Places the image at `x,y` on a `w×h` canvas filled with `bg` (one value per band).
    pub(crate) fn embed(&self, x: u32, y: u32, w: u32, h: u32, bg: &[f64]) -> Result<Img<'a>, String> {
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
    /// `n×n` blocks (imgproxy's pixelate): mirror-extended to a multiple of `n`, box-shrunk by
    /// `n`, zoomed back by `n` (nearest), cut to the original size.
    pub(crate) fn pixelate(&self, n: u32) -> Result<Img<'a>, String> {
        let (w, h) = (self.width(), self.height());
        let (tw, th) = (w.div_ceil(n) * n, h.div_ceil(n) * n);
        let mut out = null_mut();
        // SAFETY: valid in/out; int and enum options.
        let r = unsafe {
            b::vips_embed(
                self.0,
                &mut out,
                0,
                0,
                tw as c_int,
                th as c_int,
                c"extend".as_ptr(),
                b::VipsExtend_VIPS_EXTEND_MIRROR as c_int,
                END,
            )
        };
        let big = wrap(r, out)?;
        let mut out = null_mut();
        // SAFETY: valid in/out; double shrink factors.
        let r = unsafe { b::vips_shrink(big.0, &mut out, n as f64, n as f64, END) };
        let small = wrap(r, out)?;
        let mut out = null_mut();
        // SAFETY: valid in/out; int zoom factors.
        let r = unsafe { b::vips_zoom(small.0, &mut out, n as c_int, n as c_int, END) };
        let blocks = wrap(r, out)?;
        if (tw, th) == (w, h) {
            return Ok(blocks);
        }
        blocks.extract(0, 0, w, h)
    }
    /// Flattens alpha onto `bg` (one value per colour band).
    pub(crate) fn flatten(&self, bg: &[f64]) -> Result<Img<'a>, String> {
        let arr = Doubles::new(bg);
        let mut out = null_mut();
        // SAFETY: valid in/out; the array lives until after the call.
        let r = unsafe { b::vips_flatten(self.0, &mut out, c"background".as_ptr(), arr.0, END) };
        wrap(r, out)
    }
    pub(crate) fn colourspace(&self, to: Interpretation) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out.
        let r = unsafe { b::vips_colourspace(self.0, &mut out, to.raw(), END) };
        wrap(r, out)
    }
    /// Colour-manages to sRGB (perceptual) from the embedded profile, or from libvips' default
    /// CMYK or sRGB profile when there is none.
    pub(crate) fn icc_to_srgb(&self) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        let cmyk = self.interpretation() == Interpretation::Cmyk;
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
    /// libvips' resize with a chosen reduction kernel.
    pub(crate) fn resize_with(&self, hscale: f64, vscale: f64, kernel: Kernel) -> Result<Img<'a>, String> {
        let k = match kernel {
            Kernel::Nearest => b::VipsKernel_VIPS_KERNEL_NEAREST,
            Kernel::Linear => b::VipsKernel_VIPS_KERNEL_LINEAR,
            Kernel::Cubic => b::VipsKernel_VIPS_KERNEL_CUBIC,
            Kernel::Lanczos2 => b::VipsKernel_VIPS_KERNEL_LANCZOS2,
            Kernel::Lanczos3 => b::VipsKernel_VIPS_KERNEL_LANCZOS3,
        };
        let mut out = null_mut();
        // SAFETY: valid in/out; named double and enum options.
        let r = unsafe {
            b::vips_resize(self.0, &mut out, hscale, c"vscale".as_ptr(), vscale, c"kernel".as_ptr(), k as c_int, END)
        };
        wrap(r, out)
    }
    /// The bounding box (left, top, width, height) of what differs from the background (`bg`, or
    /// libvips' guess from the corner) by more than `threshold`.
    pub(crate) fn find_trim(&self, threshold: f64, bg: Option<[u8; 3]>) -> Result<(u32, u32, u32, u32), String> {
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
    /// Appends one constant band (e.g. an opaque alpha).
    pub(crate) fn bandjoin_const(&self, c: f64) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out; double vararg.
        let r = unsafe { b::vips_bandjoin_const1(self.0, &mut out, c, END) };
        wrap(r, out)
    }
    /// The first `n` bands.
    pub(super) fn extract_bands(&self, n: i32) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out; named int option.
        let r = unsafe { b::vips_extract_band(self.0, &mut out, 0, c"n".as_ptr(), n as c_int, END) };
        wrap(r, out)
    }
    /// An 8-bit image copied from packed pixels (`bands` values per pixel), tagged with the
    /// interpretation of `like` (sRGB or grey).
    pub(crate) fn from_pixels(px: &[u8], w: u32, h: u32, like: &Img<'_>) -> Result<Img<'static>, String> {
        let bands = like.bands();
        if px.len() != w as usize * h as usize * bands as usize {
            return Err("pixel buffer size does not match its dimensions".into());
        }
        // SAFETY: libvips copies `px` (length checked above) into an image it owns.
        let p = unsafe {
            b::vips_image_new_from_memory_copy(
                px.as_ptr() as *const c_void,
                px.len() as b::size_t,
                w as c_int,
                h as c_int,
                bands as c_int,
                b::VipsBandFormat_VIPS_FORMAT_UCHAR,
            )
        };
        let img: Img<'static> = wrap(0, p)?;
        let mut out = null_mut();
        // SAFETY: valid in/out; enum as c_int.
        let r = unsafe {
            b::vips_copy(img.0, &mut out, c"interpretation".as_ptr(), like.interpretation().raw() as c_int, END)
        };
        wrap(r, out)
    }
    pub(super) fn cast_uchar(&self) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out.
        let r = unsafe { b::vips_cast_uchar(self.0, &mut out, END) };
        wrap(r, out)
    }
}
