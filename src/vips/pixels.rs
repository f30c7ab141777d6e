//! Pixels changed outside libvips: an 8-bit image evaluated into memory, handed to a Rust
//! function, and wrapped back as a memory image with the same header (for the colour
//! conversion the transform layer does with moxcms), and libvips' built-in sRGB profile.

use std::ffi::{c_int, c_void, CString};
use std::ptr::null_mut;
use std::sync::OnceLock;

use libvips::bindings as b;

use super::{take_error, wrap, Img, END};

/// The fields `vips_image_get_fields` lists that are the image's header, not metadata.
const BASIC_FIELDS: [&str; 14] = [
    "width",
    "height",
    "bands",
    "format",
    "coding",
    "interpretation",
    "xoffset",
    "yoffset",
    "xres",
    "yres",
    "filename",
    "mode",
    "scale",
    "offset",
];

/// libvips' built-in sRGB profile (what `icc_transform` to `srgb` attaches), loaded once.
pub(crate) fn srgb_profile() -> Option<&'static [u8]> {
    static PROFILE: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    PROFILE
        .get_or_init(|| {
            let mut blob: *mut b::VipsBlob = null_mut();
            // SAFETY: on success `blob` is a new reference to a VipsBlob we copy and unref.
            unsafe {
                if b::vips_profile_load(c"srgb".as_ptr(), &mut blob, END) != 0 || blob.is_null() {
                    take_error();
                    return None;
                }
                let mut len: b::size_t = 0;
                let data = b::vips_blob_get(blob, &mut len);
                let v = if data.is_null() {
                    None
                } else {
                    Some(std::slice::from_raw_parts(data as *const u8, len as usize).to_vec())
                };
                b::vips_area_unref(blob as *mut b::VipsArea);
                v
            }
        })
        .as_deref()
}

impl Img<'_> {
    /// Evaluates this 8-bit image into memory and returns `f(pixels, out)`'s `out` (packed,
    /// `bands` values per pixel, same size) as a new memory image with this image's
    /// interpretation, resolution and header fields (metadata, ICC profile and all).
    pub(crate) fn map_pixels(
        &self,
        f: impl FnOnce(&[u8], &mut [u8]) -> Result<(), String>,
    ) -> Result<Img<'static>, String> {
        if !self.is_uchar() {
            return Err("map_pixels needs an 8-bit image".into());
        }
        let mut len: b::size_t = 0;
        // SAFETY: valid image; on success a g_malloc'd buffer of `len` bytes, freed below.
        let p = unsafe { b::vips_image_write_to_memory(self.0, &mut len) };
        if p.is_null() {
            return Err(take_error());
        }
        let mut out = vec![0u8; len as usize];
        // SAFETY: libvips says `p` holds `len` bytes; freed once, right after use.
        let r = f(unsafe { std::slice::from_raw_parts(p as *const u8, len as usize) }, &mut out);
        // SAFETY: allocated by libvips with g_malloc.
        unsafe { b::g_free(p) };
        r?;
        // SAFETY: libvips copies `out` (its length is what libvips wrote for this image's size).
        let raw = unsafe {
            b::vips_image_new_from_memory_copy(
                out.as_ptr() as *const c_void,
                out.len() as b::size_t,
                self.width() as c_int,
                self.height() as c_int,
                self.bands() as c_int,
                b::VipsBandFormat_VIPS_FORMAT_UCHAR,
            )
        };
        let raw: Img<'static> = wrap(0, raw)?;
        drop(out);
        let mut copied = null_mut();
        // SAFETY: valid in/out; enum as c_int, resolutions as doubles.
        let r = unsafe {
            b::vips_copy(
                raw.0,
                &mut copied,
                c"interpretation".as_ptr(),
                self.interpretation().raw() as c_int,
                c"xres".as_ptr(),
                b::vips_image_get_xres(self.0),
                c"yres".as_ptr(),
                b::vips_image_get_yres(self.0),
                END,
            )
        };
        let img: Img<'static> = wrap(r, copied)?;
        for name in self.fields() {
            // The basic header fields are the image's own (set above); the rest is metadata.
            if BASIC_FIELDS.contains(&name.as_str()) {
                continue;
            }
            let Ok(c) = CString::new(name) else { continue };
            // SAFETY: a zeroed GValue is G_VALUE_INIT; vips_image_get initialises it with a
            // copy of the field, vips_image_set copies it again, and we unset ours.
            unsafe {
                let mut v: b::GValue = std::mem::zeroed();
                if b::vips_image_get(self.0, c.as_ptr(), &mut v) == 0 {
                    b::vips_image_set(img.0, c.as_ptr(), &mut v);
                    b::g_value_unset(&mut v);
                } else {
                    take_error();
                }
            }
        }
        Ok(img)
    }
}
