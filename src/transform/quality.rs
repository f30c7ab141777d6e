//! Output format and quality: negotiation, the configured and Save-Data qualities, perceptual
//! auto quality (SSIMULACRA2 over a bounded bisection of trial encodes) and the encoder option
//! strings.

use super::{EncodeSettings, TransformError};
use crate::negotiate::AcceptClass;
use crate::options::{Format, FormatChoice, Options, Quality};
use crate::vips::Img;

/// The output format for a source: explicit, or negotiated from the Accept class.
pub fn choose_format(
    choice: FormatChoice,
    accept: AcceptClass,
    enc: &EncodeSettings,
    alpha: bool,
    animated: bool,
) -> Format {
    let avif = enc.enable_avif && accept == AcceptClass::Avif;
    let webp = enc.enable_webp && matches!(accept, AcceptClass::Avif | AcceptClass::Webp);
    match choice {
        FormatChoice::Explicit(f) => f,
        FormatChoice::Unset | FormatChoice::Auto => {
            if animated {
                if webp {
                    Format::Webp
                } else {
                    Format::Gif
                }
            } else if avif {
                Format::Avif
            } else if webp {
                Format::Webp
            } else if alpha {
                Format::Png
            } else {
                Format::Jpeg
            }
        }
    }
}

/// The encoder quality for `format`: URL `q:` > URL `fq:` > configured default, lowered by the
/// Save-Data step unless the URL fixed it.
pub fn quality_for(format: Format, o: &Options, enc: &EncodeSettings, save_data: bool) -> u8 {
    if let Quality::Fixed(q) = o.quality {
        return q;
    }
    if let Some(q) = o.format_quality.get(&format) {
        return *q;
    }
    let q = match format {
        Format::Jpeg => enc.jpeg_quality,
        Format::Webp => enc.webp_quality,
        Format::Avif => enc.avif_quality,
        Format::Png => enc.png_quality,
        Format::Gif => enc.gif_quality,
    };
    if save_data && matches!(format, Format::Jpeg | Format::Webp | Format::Avif) {
        q.saturating_sub(enc.save_data_quality_step).max(10)
    } else {
        q
    }
}

/// True when this request's quality is chosen perceptually.
pub fn wants_auto_quality(o: &Options, format: Format, enc: &EncodeSettings) -> bool {
    if !matches!(format, Format::Jpeg | Format::Webp | Format::Avif) {
        return false;
    }
    match o.quality {
        Quality::Auto => true,
        Quality::Fixed(_) => false,
        // The default only with an explicit `f:auto`: it costs several trial encodes per miss.
        Quality::Default => {
            enc.auto_quality && o.format == FormatChoice::Auto && !o.format_quality.contains_key(&format)
        }
    }
}

/// The quality range searched per format.
pub fn auto_quality_range(format: Format) -> (u8, u8) {
    match format {
        Format::Avif => (25, 80),
        _ => (35, 92),
    }
}

/// Finds the lowest quality whose score reaches `target` with at most `max_trials` calls of
/// `score` (a bisection seeded at `seed`). Returns the chosen quality and every trial made.
pub fn search_quality<E>(
    range: (u8, u8),
    seed: u8,
    target: f64,
    max_trials: u8,
    mut score: impl FnMut(u8) -> Result<f64, E>,
) -> Result<(u8, Vec<(u8, f64)>), E> {
    let (mut lo, mut hi) = range;
    let mut trials: Vec<(u8, f64)> = Vec::new();
    let mut best: Option<u8> = None;
    let mut q = seed.clamp(lo, hi);
    for _ in 0..max_trials.max(1) {
        let s = score(q)?;
        trials.push((q, s));
        if s >= target {
            best = Some(best.map_or(q, |b| b.min(q)));
            hi = q;
        } else {
            lo = q;
        }
        if hi.saturating_sub(lo) <= 2 {
            break;
        }
        q = lo + (hi - lo) / 2;
        if trials.iter().any(|(t, _)| *t == q) {
            break;
        }
    }
    // Nothing reached the target: the highest quality tried is the closest.
    let chosen = best.unwrap_or_else(|| trials.iter().map(|(q, _)| *q).max().unwrap_or(range.1));
    Ok((chosen, trials))
}

/// SSIMULACRA2 between two same-size 8-bit sRGB images (RGB interleaved).
pub fn ssimulacra2(reference: &[u8], distorted: &[u8], w: u32, h: u32) -> Option<f64> {
    use ssimulacra2::{compute_frame_ssimulacra2, ColorPrimaries, Rgb, TransferCharacteristic};
    let n = (w as usize) * (h as usize);
    if reference.len() != n * 3 || distorted.len() != n * 3 || w < 8 || h < 8 {
        return None;
    }
    let conv = |b: &[u8]| -> Vec<[f32; 3]> {
        b.chunks_exact(3).map(|p| [p[0] as f32 / 255.0, p[1] as f32 / 255.0, p[2] as f32 / 255.0]).collect()
    };
    let a =
        Rgb::new(conv(reference), w as usize, h as usize, TransferCharacteristic::SRGB, ColorPrimaries::BT709).ok()?;
    let b =
        Rgb::new(conv(distorted), w as usize, h as usize, TransferCharacteristic::SRGB, ColorPrimaries::BT709).ok()?;
    compute_frame_ssimulacra2(a, b).ok()
}

/// Perceptual auto quality: a bounded bisection over the format's quality range for the lowest
/// quality whose SSIMULACRA2 score against the resized, unencoded pixels reaches `target`.
pub(super) fn auto_quality(
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

/// Encodes at quality `q`: a palette PNG when that is lossless, else the format's saver (WebP's
/// container then cleaned of the metadata libvips leaves in it).
pub(super) fn encode(
    img: &Img,
    format: Format,
    q: u8,
    enc: &EncodeSettings,
    o: &Options,
) -> Result<Vec<u8>, TransformError> {
    if format == Format::Png && q >= 100 && img.fits_palette() {
        // Palette when it fits: lossless for ≤ 256 colours, and much smaller.
        let strip = if o.strip_metadata && o.strip_color_profile && !o.keep_copyright { "true" } else { "false" };
        return img
            .save(&format!(".png[compression=6,palette=true,Q=100,dither=0,strip={strip}]"))
            .map_err(TransformError::Encode);
    }
    let bytes = img.save(&saver(format, q, enc, o)).map_err(TransformError::Encode)?;
    if format == Format::Webp && o.strip_metadata && !o.keep_copyright {
        return super::webp_strip(&bytes, o.strip_color_profile)
            .ok_or_else(|| TransformError::Encode("libvips wrote a malformed WebP".into()));
    }
    Ok(bytes)
}

fn saver(format: Format, q: u8, enc: &EncodeSettings, o: &Options) -> String {
    // Metadata was removed field by field in `strip`; the savers' own strip flag additionally
    // drops anything a saver would invent, but it also drops ICC, so only when that goes too.
    let strip = if o.strip_metadata && o.strip_color_profile && !o.keep_copyright { "true" } else { "false" };
    match format {
        Format::Jpeg => {
            format!(".jpg[Q={q},optimize_coding=true,interlace={},strip={strip}]", enc.jpeg_progressive)
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::testutil::{enc, fixture, opts, req};
    use crate::transform::{init, render};

    #[test]
    fn quality_search_is_bounded_and_finds_the_threshold() {
        // A monotonic score: 40 + q/2 reaches 70 at q = 60.
        let mut calls = 0;
        let (q, trials) = search_quality::<()>((35, 92), 80, 70.0, 4, |q| {
            calls += 1;
            Ok(40.0 + q as f64 / 2.0)
        })
        .unwrap();
        assert!(calls <= 4 && trials.len() == calls);
        assert!((60..=66).contains(&q), "{q} {trials:?}");
        assert!(40.0 + q as f64 / 2.0 >= 70.0);
        // Unreachable target: the highest tried.
        let (q, _) = search_quality::<()>((35, 92), 80, 200.0, 3, |q| Ok(q as f64)).unwrap();
        assert_eq!(q, 92.min(q.max(80)));
        let auto = opts("f:auto");
        assert!(wants_auto_quality(&auto, Format::Webp, &enc()));
        assert!(!wants_auto_quality(&opts("f:auto/q:80"), Format::Webp, &enc()));
        assert!(!wants_auto_quality(&opts("f:webp"), Format::Webp, &enc()));
        assert!(!wants_auto_quality(&opts(""), Format::Webp, &enc()), "no extension: negotiated, fixed default q");
        assert!(wants_auto_quality(&opts("f:webp/q:auto"), Format::Webp, &enc()));
        assert!(!wants_auto_quality(&auto, Format::Png, &enc()));
    }

    #[test]
    fn ssimulacra2_orders_distortions() {
        let (w, h) = (64u32, 64u32);
        let img: Vec<u8> = (0..w * h).flat_map(|i| [(i % 64 * 4) as u8, (i / 64 * 4) as u8, 128]).collect();
        let same = ssimulacra2(&img, &img, w, h).unwrap();
        let noisy: Vec<u8> = img.iter().enumerate().map(|(i, v)| v.saturating_add((i % 7) as u8 * 3)).collect();
        let worse: Vec<u8> = img.iter().enumerate().map(|(i, v)| v.saturating_add((i % 7) as u8 * 12)).collect();
        let a = ssimulacra2(&img, &noisy, w, h).unwrap();
        let b = ssimulacra2(&img, &worse, w, h).unwrap();
        assert!(same > 95.0 && a > b, "{same} {a} {b}");
        assert!(ssimulacra2(&img, &img[3..], w, h).is_none());
    }

    #[test]
    fn format_negotiation() {
        let e = enc();
        let auto = FormatChoice::Auto;
        assert_eq!(choose_format(auto, AcceptClass::Avif, &e, false, false), Format::Avif);
        assert_eq!(choose_format(auto, AcceptClass::Webp, &e, false, false), Format::Webp);
        assert_eq!(choose_format(auto, AcceptClass::Legacy, &e, false, false), Format::Jpeg);
        assert_eq!(choose_format(auto, AcceptClass::Legacy, &e, true, false), Format::Png);
        assert_eq!(choose_format(auto, AcceptClass::Avif, &e, false, true), Format::Webp);
        assert_eq!(choose_format(auto, AcceptClass::Legacy, &e, false, true), Format::Gif);
        assert_eq!(
            choose_format(FormatChoice::Explicit(Format::Png), AcceptClass::Avif, &e, false, false),
            Format::Png
        );
        let no_avif = EncodeSettings { enable_avif: false, ..enc() };
        assert_eq!(choose_format(auto, AcceptClass::Avif, &no_avif, false, false), Format::Webp);
    }

    #[test]
    fn quality_rules() {
        let e = enc();
        assert_eq!(quality_for(Format::Jpeg, &opts(""), &e, false), 80);
        assert_eq!(quality_for(Format::Avif, &opts(""), &e, false), 60);
        assert_eq!(quality_for(Format::Jpeg, &opts(""), &e, true), 65);
        assert_eq!(quality_for(Format::Jpeg, &opts("q:90"), &e, true), 90);
        assert_eq!(quality_for(Format::Webp, &opts("fq:webp:55"), &e, false), 55);
        assert_eq!(quality_for(Format::Jpeg, &opts("fq:webp:55"), &e, false), 80);
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
}
