//! Colour accuracy of resized output: imago's colour path (thumbnail, then an 8-bit
//! `icc_transform` of the resized pixels) against libvips' own reference conversion
//! (thumbnail with `export_profile=srgb`, float PCS) and against each fixture's independent
//! sRGB truth (tests/fixtures/reference.json), on the tagged fixtures (Display P3, Adobe RGB,
//! CMYK), compared as the CIELAB ΔE (CIE76) of the mean colour.
//! Each case also checks that the fixture read without its profile lands outside the bound, so
//! a faster path that silently drops the profile fails here.

mod common;

use common::*;
use imago::options::Format;
use imago::transform::{reference_variant, ColourPath, Variant};

/// Mean-colour ΔE (CIE76) allowed between imago's output and a reference conversion, encoding
/// included (PNG, and JPEG/WebP at q90). A just-noticeable difference is ≈ 2.3.
const MAX_DELTA_E: f64 = 1.0;

/// CIELAB (D65) of an 8-bit sRGB colour.
fn lab(rgb: [f64; 3]) -> [f64; 3] {
    let lin = |c: f64| {
        let c = c / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let [r, g, b] = rgb.map(lin);
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f64| if t > 216.0 / 24389.0 { t.cbrt() } else { (24389.0 / 27.0 * t + 16.0) / 116.0 };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

fn delta_e(a: [f64; 3], b: [f64; 3]) -> f64 {
    let (a, b) = (lab(a), lab(b));
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// Mean colour of libvips' own conversion of `file` at `width` (lossless), by `path`.
fn libvips_mean(file: &str, width: u32, path: ColourPath) -> [f64; 3] {
    imago::transform::init(1).unwrap();
    let v = Variant { path, ..Variant::IMAGO };
    let png = reference_variant(&fixture(file), width, Format::Png, 100, v).unwrap();
    mean_rgb(&decode(&png))
}

/// The independent sRGB truth of a fixture from tests/fixtures/reference.json (the picture
/// before it was converted to the fixture's profile, or LittleCMS's conversion for CMYK).
fn truth(key: &str) -> Option<[f64; 3]> {
    let refs: serde_json::Value = serde_json::from_slice(&fixture("reference.json")).unwrap();
    let m = refs[key]["mean_rgb_reference"].as_array()?;
    Some([m[0].as_f64()?, m[1].as_f64()?, m[2].as_f64()?])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resized_output_matches_reference_colour_conversions() {
    // (fixture, reference.json key, output width, compare with libvips' thumbnail export?)
    // phone12mp.jpg is not here: its colours are so muted that reading it without its P3
    // profile moves the mean by ΔE 0.9 only, so the mean cannot tell the paths apart.
    // CMYK is compared with the LittleCMS truth only: libvips 8.14's thumbnail imports CMYK
    // ΔE 3 away from it (green +4), while imago decodes CMYK fully and converts it with
    // icc_transform, which lands within ΔE 0.6 of LittleCMS.
    let cases = [
        ("p3.jpg", Some("p3"), 300, true),
        ("adobergb.jpg", Some("adobergb"), 240, true),
        ("cmyk.jpg", Some("cmyk"), 250, false),
    ];
    let files: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let s = start(&files, |_| {}).await;
    for (file, key, width, vips) in cases {
        let mut refs: Vec<(&str, [f64; 3])> = Vec::new();
        if vips {
            refs.push(("libvips thumbnail export_profile", libvips_mean(file, width, ColourPath::ThumbnailExport)));
        }
        if let Some(t) = key.and_then(truth) {
            refs.push(("reference.json truth", t));
        }
        // The bound must separate: the fixture's pixels read without its profile (the `image`
        // crate ignores ICC; CMYK is inverted naively) are outside it.
        let unmanaged = mean_rgb(&decode(&fixture(file)));
        for (name, reference) in &refs {
            let miss = delta_e(unmanaged, *reference);
            assert!(miss > 2.0 * MAX_DELTA_E, "{file}: unmanaged is ΔE {miss:.2} from {name}: the bound cannot tell");
        }
        for ext in ["png", "jpg", "webp"] {
            let r = s.get(&s.url(&format!("w:{width}/q:90"), &format!("local:///{file}"), Some(ext))).await;
            assert_eq!(r.status(), 200, "{file} {ext}");
            let img = decode(&r.bytes().await.unwrap());
            assert_eq!(img.width(), width, "{file} {ext}");
            let got = mean_rgb(&img);
            for (name, reference) in &refs {
                let de = delta_e(got, *reference);
                eprintln!("{file} {ext}: ΔE {de:.2} to {name} (unmanaged: {:.2})", delta_e(unmanaged, *reference));
                assert!(
                    de <= MAX_DELTA_E,
                    "{file} {ext}: mean {got:.2?} is ΔE {de:.2} from {name} {reference:.2?} (max {MAX_DELTA_E})"
                );
            }
        }
    }
}
