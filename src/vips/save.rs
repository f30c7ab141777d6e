//! Getting bytes out of an [`Img`]: encoded with a saver option string, or as raw pixels.

use std::ffi::{c_void, CString};
use std::ptr::null_mut;

use libvips::bindings as b;

use super::{take_error, Img, Interpretation, END};

impl Img<'_> {
    /// Encodes with a saver chosen and configured by `suffix`, e.g. `.jpg[Q=80,strip=true]`.
    pub(crate) fn save(&self, suffix: &str) -> Result<Vec<u8>, String> {
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

    /// 8-bit sRGB pixels without alpha (flattened on white), for perceptual comparison.
    pub(crate) fn to_rgb8(&self) -> Result<(Vec<u8>, u32, u32), String> {
        let mut img = if self.has_alpha() { self.flatten(&[255.0; 3]) } else { self.copy() }?;
        if img.bands() < 3 || img.interpretation() != Interpretation::Srgb {
            img = img.colourspace(Interpretation::Srgb)?;
        }
        if img.bands() > 3 {
            img = img.extract_bands(3)?;
        }
        if !img.is_uchar() {
            img = img.cast_uchar()?;
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
    pub(crate) fn fits_palette(&self) -> bool {
        let bands = self.bands().clamp(1, 4) as usize;
        if !self.is_uchar() || self.bands() > 4 {
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

    /// The pixels as one packed buffer (copied out of glib's allocation).
    pub(crate) fn raw_pixels(&self) -> Result<Vec<u8>, String> {
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
