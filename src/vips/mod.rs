//! The only code that touches libvips: a thin adapter that knows images, not requests.
//!
//! Facts this adapter is built around (Debian's libvips 8.14 with the `libvips` crate 2.3): the
//! crate's `*_with_opts` wrappers send options 8.14 lacks, so every call here goes through the
//! crate's raw `bindings` with NULL-terminated varargs; `VipsImage` is not `Send`, so every image
//! lives and dies inside one call of `transform::render`/`transform::probe` on one blocking
//! thread, owned by [`Img`] (which unrefs exactly once and cannot be cloned); buffer-backed
//! images borrow the caller's bytes, which outlive them (the `'a` of `Img<'a>`, so the compiler
//! checks it); libvips' error buffer is global, so it is read and cleared under a lock; saved
//! buffers come from glib's allocator and are copied out and `g_free`d.
//!
//! Nothing here knows URL options, output formats or encoder settings: the transform layer (its
//! only user) decides, this module executes. Files: this one (start-up, errors, shared plumbing),
//! `image.rs` ([`Img`], loading and pixel operations), `header.rs` (header fields and facts) and
//! `save.rs` (encoding and pixels out), `pixels.rs` (pixels changed in Rust and wrapped back)
//! and `deadline.rs` (stopping an evaluation at a deadline).

use std::ffi::{c_char, c_int, CStr};
use std::marker::PhantomData;
use std::ptr::null;
use std::sync::{Mutex, OnceLock};

use libvips::bindings as b;

mod composite;
mod deadline;
mod header;
mod image;
mod pixels;
mod save;

pub(crate) use image::{Img, Interpretation, Kernel};
pub(crate) use pixels::srgb_profile;

static APP: OnceLock<Result<libvips::VipsApp, String>> = OnceLock::new();
static ERRORS: Mutex<()> = Mutex::new(());

/// Starts libvips once: operation cache off, `concurrency` threads per image.
pub(crate) fn init(concurrency: i32) -> Result<(), String> {
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
pub(crate) fn version() -> String {
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

const END: *const c_char = null();
const TRUE: c_int = 1;
const FALSE: c_int = 0;

/// Owns what an operation returned, or reads the error buffer when it failed. The caller names
/// the borrow `'a` of the new image: that of the image it was made from.
fn wrap<'a>(ret: c_int, out: *mut b::VipsImage) -> Result<Img<'a>, String> {
    if ret != 0 || out.is_null() {
        drop(Img(out, PhantomData));
        return Err(take_error());
    }
    Ok(Img(out, PhantomData))
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
