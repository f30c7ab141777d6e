//! Stopping a running evaluation when a deadline passes: libvips' progress signals and kill flag.
//!
//! [`Img::stop_at`] turns progress reporting on for an image and connects a handler to its
//! `eval` signal, which libvips emits from its worker threads as it computes tiles of this image
//! or of any image derived from it afterwards (the progress link is inherited downstream). Once
//! the deadline has passed the handler sets the image's kill flag: the next region libvips
//! prepares on it fails with "killed", the whole evaluation (a `copy_memory`, a save) returns an
//! error, and the render returns. The handler's only state is the deadline itself (an
//! `Instant`, `Copy` and `Sync`), owned by the signal connection and freed by glib with it: no
//! image crosses a thread and nothing outlives the image.

use std::ffi::c_void;
use std::time::Instant;

use libvips::bindings as b;

use super::{Img, TRUE};

/// The `eval` handler: `void (*)(VipsImage *image, VipsProgress *progress, gpointer user)`.
unsafe extern "C" fn on_eval(image: *mut b::VipsImage, _progress: *mut c_void, user: *mut c_void) {
    // SAFETY: `user` is the boxed deadline connected below, alive as long as the connection.
    let deadline = unsafe { *(user as *const Instant) };
    if Instant::now() >= deadline {
        // SAFETY: `image` is the live image emitting the signal; setting its flag is what the
        // kill mechanism is for and is safe from any thread.
        unsafe { b::vips_image_set_kill(image, TRUE) };
    }
}

/// Frees the boxed deadline when the connection goes (with the image).
unsafe extern "C" fn free_deadline(data: *mut c_void, _closure: *mut b::GClosure) {
    // SAFETY: `data` came from `Box::into_raw` below and is freed exactly once, here.
    drop(unsafe { Box::from_raw(data as *mut Instant) });
}

impl Img<'_> {
    /// Stops any evaluation of this image, or of an image made from it afterwards, once
    /// `deadline` has passed: it then fails with libvips' "killed" error.
    pub(crate) fn stop_at(&self, deadline: Instant) {
        let data = Box::into_raw(Box::new(deadline)) as *mut c_void;
        type Handler = unsafe extern "C" fn(*mut b::VipsImage, *mut c_void, *mut c_void);
        // SAFETY: glib calls the handler with the signal's (image, progress, user data)
        // arguments, which `Handler` matches; GCallback is the type-erased form every
        // g_signal_connect uses. The box is freed by `free_deadline` when the handler goes.
        unsafe {
            let handler: b::GCallback = Some(std::mem::transmute::<Handler, unsafe extern "C" fn()>(on_eval));
            b::vips_image_set_progress(self.0, TRUE);
            b::g_signal_connect_data(self.0 as *mut c_void, c"eval".as_ptr(), handler, data, Some(free_deadline), 0);
        }
    }
}
