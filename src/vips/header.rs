//! Header facts of an [`Img`]: dimensions, bands, interpretation, and the metadata fields
//! (read, listed, set and removed) libvips keeps beside the pixels.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::null;

use libvips::bindings as b;

use super::{take_error, Img, Interpretation};

/// The nickname of an enum value (`srgb`, `uchar`, …), or `unknown`.
fn enum_nick(gtype: b::GType, value: c_int) -> String {
    // SAFETY: returns a static string (or NULL for an unknown value).
    let p = unsafe { b::vips_enum_nick(gtype, value) };
    if p.is_null() {
        return "unknown".into();
    }
    // SAFETY: non-NULL, NUL-terminated, static.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl Img<'_> {
    pub(crate) fn width(&self) -> u32 {
        // SAFETY: valid image.
        unsafe { b::vips_image_get_width(self.0) as u32 }
    }
    pub(crate) fn height(&self) -> u32 {
        // SAFETY: valid image.
        unsafe { b::vips_image_get_height(self.0) as u32 }
    }
    pub(crate) fn bands(&self) -> i32 {
        // SAFETY: valid image.
        unsafe { b::vips_image_get_bands(self.0) }
    }
    pub(crate) fn has_alpha(&self) -> bool {
        // SAFETY: valid image.
        unsafe { b::vips_image_hasalpha(self.0) != 0 }
    }
    pub(crate) fn interpretation(&self) -> Interpretation {
        Interpretation::from_raw(self.raw_interpretation())
    }
    fn raw_interpretation(&self) -> b::VipsInterpretation {
        // SAFETY: valid image.
        unsafe { b::vips_image_get_interpretation(self.0) }
    }
    pub(super) fn band_format(&self) -> b::VipsBandFormat {
        // SAFETY: valid image.
        unsafe { b::vips_image_get_format(self.0) }
    }
    /// True for 8-bit unsigned samples.
    pub(crate) fn is_uchar(&self) -> bool {
        self.band_format() == b::VipsBandFormat_VIPS_FORMAT_UCHAR
    }
    /// libvips' nickname of the interpretation: `srgb`, `cmyk`, `b-w`, `rgb16`, `grey16`, …
    pub(crate) fn interpretation_nick(&self) -> String {
        // SAFETY: plain GType getter.
        let interp_type = unsafe { b::vips_interpretation_get_type() };
        enum_nick(interp_type, self.raw_interpretation() as c_int)
    }
    /// libvips' nickname of the sample format: `uchar`, `ushort`, `float`, …
    pub(crate) fn band_format_nick(&self) -> String {
        // SAFETY: plain GType getter.
        let format_type = unsafe { b::vips_band_format_get_type() };
        enum_nick(format_type, self.band_format() as c_int)
    }

    /// True when the header has the field.
    pub(crate) fn has(&self, field: &CStr) -> bool {
        // SAFETY: valid image and NUL-terminated name.
        unsafe { b::vips_image_get_typeof(self.0, field.as_ptr()) != 0 }
    }
    pub(crate) fn get_int(&self, field: &CStr) -> Option<i32> {
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
    pub(crate) fn get_string(&self, field: &CStr) -> Option<String> {
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
    pub(crate) fn get_blob(&self, field: &CStr) -> Option<Vec<u8>> {
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
    /// The names of every header field.
    pub(crate) fn fields(&self) -> Vec<String> {
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
    /// Removes a field. Metadata is edited on a private [`Img::copy`].
    pub(crate) fn remove(&self, field: &str) {
        if let Ok(c) = CString::new(field) {
            // SAFETY: valid image.
            unsafe { b::vips_image_remove(self.0, c.as_ptr()) };
        }
    }
    /// Sets a string field (a value with a NUL byte is ignored), on a private copy as above.
    pub(crate) fn set_string(&self, field: &CStr, value: &str) {
        if let Ok(c) = CString::new(value) {
            // SAFETY: valid image and strings.
            unsafe { b::vips_image_set_string(self.0, field.as_ptr(), c.as_ptr()) };
        }
    }
    /// Sets a blob field to a copy of `data`, on a private copy as above.
    pub(crate) fn set_blob(&self, field: &CStr, data: &[u8]) {
        // SAFETY: libvips copies the bytes.
        unsafe {
            b::vips_image_set_blob_copy(self.0, field.as_ptr(), data.as_ptr() as *const c_void, data.len() as b::size_t)
        };
    }
}
