//! Overlays (the watermark): an RGBA image from pixels, its alpha scaled, tiled, and blended
//! over another image.

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

use libvips::bindings as b;

use super::{wrap, Img, Interpretation, END};

impl<'a> Img<'a> {
    /// An 8-bit sRGB image with alpha copied from packed RGBA pixels.
    pub(crate) fn from_rgba(px: &[u8], w: u32, h: u32) -> Result<Img<'static>, String> {
        if px.len() != w as usize * h as usize * 4 {
            return Err("pixel buffer size does not match its dimensions".into());
        }
        // SAFETY: libvips copies `px` (length checked above) into an image it owns.
        let p = unsafe {
            b::vips_image_new_from_memory_copy(
                px.as_ptr() as *const c_void,
                px.len() as b::size_t,
                w as c_int,
                h as c_int,
                4,
                b::VipsBandFormat_VIPS_FORMAT_UCHAR,
            )
        };
        let img: Img<'static> = wrap(0, p)?;
        let mut out = null_mut();
        // SAFETY: valid in/out; enum as c_int.
        let r = unsafe {
            b::vips_copy(img.0, &mut out, c"interpretation".as_ptr(), Interpretation::Srgb.raw() as c_int, END)
        };
        wrap(r, out)
    }

    /// The alpha band (the last of 4) times `opacity`, back to 8 bits.
    pub(crate) fn scale_alpha(&self, opacity: f64) -> Result<Img<'a>, String> {
        let a = [1.0, 1.0, 1.0, opacity];
        let z = [0.0; 4];
        let mut out = null_mut();
        // SAFETY: valid in/out; both arrays hold `n` = 4 doubles and live during the call.
        let r = unsafe { b::vips_linear(self.0, &mut out, a.as_ptr(), z.as_ptr(), 4, END) };
        let lin: Img<'a> = wrap(r, out)?;
        lin.cast_uchar()
    }

    /// The image repeated `across` × `down` times.
    pub(crate) fn replicate(&self, across: u32, down: u32) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        // SAFETY: valid in/out.
        let r = unsafe { b::vips_replicate(self.0, &mut out, across as c_int, down as c_int, END) };
        wrap(r, out)
    }

    /// `overlay` (RGBA) blended over this image ("over") with its top-left corner at `x,y`
    /// (inside the image). The result keeps this image's bands: an opaque image stays opaque.
    pub(crate) fn composite_over(&self, overlay: &Img<'_>, x: u32, y: u32) -> Result<Img<'a>, String> {
        let mut out = null_mut();
        // SAFETY: valid images and out pointer; named int options.
        let r = unsafe {
            b::vips_composite2(
                self.0,
                overlay.0,
                &mut out,
                b::VipsBlendMode_VIPS_BLEND_MODE_OVER,
                c"x".as_ptr(),
                x as c_int,
                c"y".as_ptr(),
                y as c_int,
                END,
            )
        };
        let blended: Img<'a> = wrap(r, out)?;
        let blended = blended.cast_uchar()?;
        if self.has_alpha() {
            Ok(blended)
        } else {
            blended.extract_bands(self.bands())
        }
    }
}
