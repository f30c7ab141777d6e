//! The embedded profile → sRGB conversion of 8-bit RGB pixels, done by moxcms with the transform
//! built once per source profile (a bounded cache keyed by the profile's SHA-256) instead of
//! libvips 8.14's lcms path, which converts through float Lab and rebuilds its transform (curve
//! inversion included) on every call; libvips 8.14 has no way to keep an lcms transform between
//! calls. Profiles that map every colour to itself (sRGB under another name, as most phone
//! photos carry) skip the pixel pass. Anything else (grey, CMYK, alpha, 16-bit, LUT-based
//! profiles, a profile moxcms cannot parse or build) goes to libvips as before.

use std::sync::{Arc, OnceLock};

use moka::sync::Cache;
use moxcms::{ColorProfile, Layout, RenderingIntent, Transform8BitExecutor, TransformOptions};
use sha2::{Digest, Sha256};

use crate::vips::{srgb_profile, Img};

/// Source profiles whose conversion is kept (a matrix-shaper transform is a few small tables).
const CACHED_PROFILES: u64 = 32;

/// What to do with the pixels of images tagged with one profile.
#[derive(Clone)]
enum Conversion {
    /// The profile is sRGB in all but name: only the tag changes.
    Identity,
    Moxcms(Arc<Transform8BitExecutor>),
    /// moxcms cannot build it: libvips' lcms path.
    Libvips,
}

fn cache() -> &'static Cache<[u8; 32], Conversion> {
    static C: OnceLock<Cache<[u8; 32], Conversion>> = OnceLock::new();
    C.get_or_init(|| Cache::new(CACHED_PROFILES))
}

fn conversion(icc: &[u8]) -> Conversion {
    let key: [u8; 32] = Sha256::digest(icc).into();
    cache().get_with(key, || build(icc))
}

fn build(icc: &[u8]) -> Conversion {
    // A hostile profile must not take the worker down: a panic in moxcms means libvips' path.
    std::panic::catch_unwind(|| try_build(icc)).unwrap_or(Conversion::Libvips)
}

fn try_build(icc: &[u8]) -> Conversion {
    let Ok(src) = ColorProfile::new_from_slice(icc) else { return Conversion::Libvips };
    // Matrix-shaper RGB profiles only (sRGB, Display P3, Adobe RGB: what cameras and phones
    // embed): their transform is a few small tables, so the cache stays small; LUT profiles
    // keep libvips' path.
    let luts = [&src.lut_a_to_b_perceptual, &src.lut_a_to_b_colorimetric, &src.lut_a_to_b_saturation];
    if !src.is_matrix_shaper() || luts.iter().any(|l| l.is_some()) {
        return Conversion::Libvips;
    }
    let opts = TransformOptions { rendering_intent: RenderingIntent::Perceptual, ..Default::default() };
    match src.create_transform_8bit(Layout::Rgb, &ColorProfile::new_srgb(), Layout::Rgb, opts) {
        Ok(t) if is_identity(t.as_ref()) => Conversion::Identity,
        Ok(t) => Conversion::Moxcms(t),
        Err(_) => Conversion::Libvips,
    }
}

/// True when `t` moves no value of a 17×17×17 grid over the RGB cube by more than one step.
fn is_identity(t: &Transform8BitExecutor) -> bool {
    let steps: Vec<u8> = (0..17u32).map(|i| (i * 255 / 16) as u8).collect();
    let mut src = Vec::with_capacity(17 * 17 * 17 * 3);
    for r in &steps {
        for g in &steps {
            for b in &steps {
                src.extend_from_slice(&[*r, *g, *b]);
            }
        }
    }
    let mut dst = vec![0u8; src.len()];
    t.transform(&src, &mut dst).is_ok() && src.iter().zip(&dst).all(|(a, b)| a.abs_diff(*b) <= 1)
}

/// `img` converted from its embedded profile to sRGB (perceptual) and tagged with libvips'
/// sRGB profile, as libvips' `icc_transform` would; images without an embedded profile and
/// CMYK get libvips' default profiles there.
pub(super) fn icc_to_srgb(img: Img<'_>) -> Result<Img<'_>, String> {
    let (Some(srgb), true) = (srgb_profile(), img.bands() == 3 && img.is_uchar()) else {
        return img.icc_to_srgb();
    };
    let Some(icc) = img.get_blob(c"icc-profile-data") else { return img.icc_to_srgb() };
    match conversion(&icc) {
        Conversion::Libvips => img.icc_to_srgb(),
        Conversion::Identity => {
            let out = img.copy()?;
            out.set_blob(c"icc-profile-data", srgb);
            Ok(out)
        }
        Conversion::Moxcms(t) => {
            let out =
                img.map_pixels(|src, dst| t.transform(src, dst).map_err(|e| format!("colour conversion: {e:?}")))?;
            out.set_blob(c"icc-profile-data", srgb);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::init;
    use crate::transform::testutil::fixture;

    fn max_diff(a: &[u8], b: &[u8]) -> u8 {
        a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0)
    }

    #[test]
    fn p3_goes_through_moxcms_like_libvips_and_keeps_the_header() {
        init(1).unwrap();
        let buf = fixture("p3.jpg");
        let img = Img::from_buffer(&buf, "").unwrap();
        let icc = img.get_blob(c"icc-profile-data").unwrap();
        // Built once per profile: the second look-up is the same transform.
        match (conversion(&icc), conversion(&icc)) {
            (Conversion::Moxcms(a), Conversion::Moxcms(b)) => assert!(Arc::ptr_eq(&a, &b)),
            _ => panic!("a Display P3 profile is not converted by moxcms"),
        }
        let fields = img.fields();
        let by_libvips = img.icc_to_srgb().unwrap().raw_pixels().unwrap();
        let out = icc_to_srgb(img.copy().unwrap()).unwrap();
        let ours = out.raw_pixels().unwrap();
        assert_eq!(ours.len(), by_libvips.len());
        // moxcms (fixed point, straight to sRGB) and lcms (through float Lab) round differently.
        assert!(max_diff(&ours, &by_libvips) <= 3, "max channel difference {}", max_diff(&ours, &by_libvips));
        let mean = ours.iter().zip(&by_libvips).map(|(a, b)| a.abs_diff(*b) as f64).sum::<f64>() / ours.len() as f64;
        assert!(mean < 0.5, "mean channel difference {mean}");
        assert_eq!(out.get_blob(c"icc-profile-data").as_deref(), srgb_profile());
        for f in fields {
            assert!(out.has(&std::ffi::CString::new(f.clone()).unwrap()), "{f} lost");
        }
    }

    #[test]
    fn an_srgb_tag_changes_no_pixel() {
        init(1).unwrap();
        let buf = fixture("orientation/Landscape_1.jpg");
        let img = Img::from_buffer(&buf, "").unwrap().copy().unwrap();
        let srgb = srgb_profile().unwrap();
        img.set_blob(c"icc-profile-data", srgb);
        assert!(matches!(conversion(srgb), Conversion::Identity));
        let before = img.raw_pixels().unwrap();
        let out = icc_to_srgb(img).unwrap();
        assert_eq!(out.raw_pixels().unwrap(), before);
        assert_eq!(out.get_blob(c"icc-profile-data").as_deref(), Some(srgb));
    }

    #[test]
    fn a_profile_moxcms_cannot_read_is_left_to_libvips() {
        // libvips first (a load racing another test's first `vips_init` crashed in
        // `vips_class_map_all`: SIGSEGV in about half of the `cargo test --lib` runs).
        init(1).unwrap();
        assert!(matches!(conversion(b"not a profile at all"), Conversion::Libvips));
        let mut p3 = Img::from_buffer(&fixture("p3.jpg"), "").unwrap().get_blob(c"icc-profile-data").unwrap();
        p3.truncate(200);
        assert!(matches!(conversion(&p3), Conversion::Libvips));
    }
}
