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
    let avif = enc.enable_avif && accept.avif();
    let webp = enc.enable_webp && accept.webp();
    // JPEG XL only for stills: libvips 8.14's jxlsave writes one frame.
    let jxl = enc.enable_jxl && accept == AcceptClass::Jxl;
    match choice {
        FormatChoice::Explicit(f) => f,
        FormatChoice::Unset | FormatChoice::Auto => {
            if animated {
                if webp {
                    Format::Webp
                } else {
                    Format::Gif
                }
            } else if jxl {
                Format::Jxl
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
        Format::Jxl => enc.jxl_quality,
    };
    if save_data && matches!(format, Format::Jpeg | Format::Webp | Format::Avif | Format::Jxl) {
        q.saturating_sub(enc.save_data_quality_step).max(10)
    } else {
        q
    }
}

/// True when this request's quality is chosen perceptually.
pub fn wants_auto_quality(o: &Options, format: Format, enc: &EncodeSettings) -> bool {
    if !matches!(format, Format::Jpeg | Format::Webp | Format::Avif | Format::Jxl) {
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

/// What the search assumes about a format before its trial, fitted on the bandwidth corpus
/// (`IMAGO_BENCH_CALIBRATE`, benches/fit_auto_quality.py; at a target of 70, AVIF effort 2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prior {
    /// The quality where libvips' fixed-quality curve has a mean SSIMULACRA2 of 70 at the
    /// delivered size: the first trial for a target of 70.
    pub q70: f64,
    /// Score points per quality step for the step from a trial to the answer (and from 70 to
    /// another target for the first trial). Steeper than the curves' own slope (≈ 0.5 JPEG,
    /// 0.35 WebP, 0.8 AVIF): one small sample's score is noisy, so its step is damped.
    pub gain: f64,
    /// How much higher the sample scores than the whole variant at the same quality (its tiles'
    /// seams and busy centres): the sample aims at the target plus this.
    pub lenience: f64,
}

/// The search's prior for `format`.
pub fn auto_quality_prior(format: Format) -> Prior {
    match format {
        Format::Avif => Prior { q70: 59.0, gain: 1.2, lenience: 3.5 },
        Format::Webp => Prior { q70: 73.0, gain: 0.9, lenience: 0.25 },
        Format::Jxl => Prior { q70: 69.0, gain: 1.0, lenience: 3.0 },
        _ => Prior { q70: 65.0, gain: 0.6, lenience: 3.25 },
    }
}

/// Finds the quality whose score is `target` with at most `max_trials` calls of `score`: the
/// first trial at the prior's prediction for `target`, each next one a Newton step on the secant
/// of the two trials nearest the target (the prior's gain until there are two), stopping once a
/// trial lands within half a point. Returns the final estimate (not itself scored) and every
/// trial made. Scores rise with quality; a flat or falling secant falls back to the prior's gain.
/// `target` is what the scored pixels should reach (the caller adds the sample's lenience).
pub fn search_quality<E>(
    range: (u8, u8),
    first: f64,
    gain: f64,
    target: f64,
    max_trials: u8,
    mut score: impl FnMut(u8) -> Result<f64, E>,
) -> Result<(u8, Vec<(u8, f64)>), E> {
    let (lo, hi) = (range.0 as f64, range.1 as f64);
    let clamp = |q: f64| q.round().clamp(lo, hi) as u8;
    let mut trials: Vec<(u8, f64)> = Vec::new();
    let mut q = clamp(first);
    for _ in 0..max_trials.max(1) {
        let s = score(q)?;
        trials.push((q, s));
        let mut near = trials.clone();
        near.sort_by(|a, b| (a.1 - target).abs().total_cmp(&(b.1 - target).abs()));
        let slope = match near.as_slice() {
            [a, b, ..] if a.0 != b.0 => (a.1 - b.1) / (a.0 as f64 - b.0 as f64),
            _ => gain,
        };
        let slope = if slope > 0.05 { slope } else { gain };
        let (qa, sa) = near[0];
        // At most 25 steps at a time: one odd trial cannot throw the estimate across the range.
        let next = clamp(qa as f64 + ((target - sa) / slope).clamp(-25.0, 25.0));
        let done = (target - sa).abs() <= 0.5 || trials.iter().any(|(t, _)| *t == next);
        q = next;
        if done {
            break;
        }
    }
    Ok((q, trials))
}

/// Side of the sample's tiles: a multiple of every encoder's block (AV1 64, WebP 16, JPEG 8/16),
/// so no block of the sample's encode straddles two tiles.
const TILE: u32 = 64;

/// Share of a variant's pixels its sample holds (at least 2×2 tiles). SSIMULACRA2 costs ≈ 1 µs
/// per pixel, so this sets most of q:auto's cost: 1/24 of an 800×600 variant is 6 tiles.
const SHARE: f64 = 1.0 / 24.0;

/// The pixels auto quality encodes and scores in its trials: for a variant of at least 2×2 tiles, a
/// mosaic of tiles taken at full resolution from the centres of a grid over it (the delivered
/// scale, so the score is the delivered size's; the grid, so every part of the picture counts),
/// holding about [`SHARE`] of its pixels; else the variant itself.
pub(super) struct Sample<'a> {
    pub(super) img: Img<'a>,
    /// The sample's 8-bit RGB pixels (alpha flattened on white), the reference of every score.
    pub(super) reference: (Vec<u8>, u32, u32),
    whole: bool,
}

pub(super) fn sample<'a>(img: &Img<'a>) -> Result<Option<Sample<'a>>, String> {
    let (share, tile) = (SHARE, TILE);
    let (w, h) = (img.width(), img.height());
    let (max_x, max_y) = (w / tile, h / tile);
    if max_x < 2 || max_y < 2 {
        return Ok(None);
    }
    let tiles = (w as f64 * h as f64 * share / (tile * tile) as f64).max(4.0);
    let gx = ((tiles * w as f64 / h as f64).sqrt().round() as u32).clamp(2, max_x);
    let gy = ((tiles / gx as f64).round() as u32).clamp(2, max_y);
    if gx == max_x && gy == max_y {
        return Ok(None);
    }
    let px = img.raw_pixels()?;
    let bands = img.bands().max(1) as usize;
    let (mw, mh) = (gx * tile, gy * tile);
    let mut mosaic = vec![0u8; mw as usize * mh as usize * bands];
    let row = tile as usize * bands;
    for ty in 0..gy {
        let y0 = ((ty as f64 + 0.5) * h as f64 / gy as f64) as u32 - tile / 2;
        for tx in 0..gx {
            let x0 = ((tx as f64 + 0.5) * w as f64 / gx as f64) as u32 - tile / 2;
            for r in 0..tile {
                let src = ((y0 + r) as usize * w as usize + x0 as usize) * bands;
                let dst = ((ty * tile + r) as usize * mw as usize + (tx * tile) as usize) * bands;
                mosaic[dst..dst + row].copy_from_slice(&px[src..src + row]);
            }
        }
    }
    let img = Img::from_pixels(&mosaic, mw, mh, img)?;
    let reference = img.to_rgb8()?;
    Ok(Some(Sample { img, reference, whole: false }))
}

/// Work counters for the unit tests: pixels encoded and pixels scored on this thread.
#[cfg(test)]
pub(super) mod work {
    use std::cell::Cell;
    thread_local! {
        pub static ENCODED: Cell<u64> = const { Cell::new(0) };
        pub static SCORED: Cell<u64> = const { Cell::new(0) };
        pub static ENCODES: Cell<u64> = const { Cell::new(0) };
    }
    pub fn add(c: &'static std::thread::LocalKey<Cell<u64>>, n: u64) {
        c.with(|v| v.set(v.get() + n));
    }
    /// (encoded, scored) pixels since the last call.
    pub fn take() -> (u64, u64) {
        ENCODES.with(|v| v.set(0));
        (ENCODED.with(|v| v.replace(0)), SCORED.with(|v| v.replace(0)))
    }
    /// Encodes (of any size) since the last [`take`].
    pub fn encodes() -> u64 {
        ENCODES.with(|v| v.get())
    }
}

/// SSIMULACRA2 between two same-size 8-bit sRGB images (RGB interleaved).
pub fn ssimulacra2(reference: &[u8], distorted: &[u8], w: u32, h: u32) -> Option<f64> {
    use ssimulacra2::{compute_frame_ssimulacra2, ColorPrimaries, Rgb, TransferCharacteristic};
    let n = (w as usize) * (h as usize);
    if reference.len() != n * 3 || distorted.len() != n * 3 || w < 8 || h < 8 {
        return None;
    }
    #[cfg(test)]
    work::add(&work::SCORED, n as u64);
    let conv = |b: &[u8]| -> Vec<[f32; 3]> {
        b.chunks_exact(3).map(|p| [p[0] as f32 / 255.0, p[1] as f32 / 255.0, p[2] as f32 / 255.0]).collect()
    };
    let a =
        Rgb::new(conv(reference), w as usize, h as usize, TransferCharacteristic::SRGB, ColorPrimaries::BT709).ok()?;
    let b =
        Rgb::new(conv(distorted), w as usize, h as usize, TransferCharacteristic::SRGB, ColorPrimaries::BT709).ok()?;
    compute_frame_ssimulacra2(a, b).ok()
}

/// Perceptual auto quality: the quality whose SSIMULACRA2 score, at the delivered size, is
/// `target`, searched with at most `enc.auto_quality_trials` trial encodes (default one) of a
/// sample of the variant ([`sample`]), then one encode of the whole variant at that quality.
pub(super) fn auto_quality(
    img: &Img,
    format: Format,
    target: f64,
    enc: &EncodeSettings,
    o: &Options,
) -> Result<(u8, Vec<u8>), TransformError> {
    let e = TransformError::Encode;
    let s = match sample(img).map_err(e)? {
        Some(s) => s,
        None => {
            let reference = img.to_rgb8().map_err(e)?;
            Sample { img: img.copy().map_err(e)?, reference, whole: true }
        }
    };
    let prior = auto_quality_prior(format);
    // The whole variant scores as delivered; a sample scores `lenience` higher.
    let aim = target + if s.whole { 0.0 } else { prior.lenience };
    let first = prior.q70 + (target - 70.0) / prior.gain;
    let mut last: Option<(u8, Vec<u8>)> = None;
    let range = auto_quality_range(format);
    let (q, _trials) = search_quality(range, first, prior.gain, aim, enc.auto_quality_trials, |q| {
        let bytes = encode(&s.img, format, q, enc, o)?;
        let score = score_sample(&s, &bytes).map_err(e)?;
        if s.whole {
            last = Some((q, bytes));
        }
        Ok::<f64, TransformError>(score)
    })?;
    match last {
        Some((lq, b)) if lq == q => Ok((q, b)),
        _ => Ok((q, encode(img, format, q, enc, o)?)),
    }
}

/// SSIMULACRA2 of an encoded sample against its pixels (100 when it cannot be compared).
pub(super) fn score_sample(s: &Sample, encoded: &[u8]) -> Result<f64, String> {
    let (w, h) = (s.reference.1, s.reference.2);
    let decoded = Img::from_buffer(encoded, "").and_then(|d| d.to_rgb8())?;
    Ok(if (decoded.1, decoded.2) == (w, h) {
        ssimulacra2(&s.reference.0, &decoded.0, w, h).unwrap_or(100.0)
    } else {
        100.0
    })
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
    #[cfg(test)]
    work::add(&work::ENCODED, img.width() as u64 * img.height() as u64);
    #[cfg(test)]
    work::add(&work::ENCODES, 1);
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
        // libvips 8.14's jxlsave writes the pixels and the ICC profile only (no EXIF, XMP or
        // GPS, whatever `strip` says), and one frame.
        Format::Jxl => format!(".jxl[Q={q},effort={},strip={strip}]", enc.jxl_effort),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::testutil::{enc, fixture, opts, req};
    use crate::transform::{init, render};

    #[test]
    fn quality_search_is_bounded_and_finds_the_target() {
        // A linear score 40 + q/2 is 70 at q = 60: from a first guess 15 steps off and the wrong
        // gain, two trials (the guess, then the secant) find it.
        let mut calls = 0;
        let (q, trials) = search_quality::<()>((35, 92), 75.0, 0.3, 70.0, 4, |q| {
            calls += 1;
            Ok(40.0 + q as f64 / 2.0)
        })
        .unwrap();
        assert_eq!(q, 60, "{trials:?}");
        assert!(calls <= 3 && trials.len() == calls, "{trials:?}");
        // One trial with the right gain is enough; the budget is never exceeded.
        let (q, trials) = search_quality::<()>((35, 92), 75.0, 0.5, 70.0, 1, |q| Ok(40.0 + q as f64 / 2.0)).unwrap();
        assert_eq!((q, trials.len()), (60, 1));
        // One trial, a damped gain: the step goes the right way, a part of the distance.
        let (q, _) = search_quality::<()>((35, 92), 75.0, 1.0, 70.0, 1, |q| Ok(40.0 + q as f64 / 2.0)).unwrap();
        assert_eq!(q, 68);
        // A curved score (steeper at low quality): still within a step after three trials.
        let curved = |q: u8| 100.0 - 2500.0 / q as f64;
        let (q, trials) = search_quality::<()>((25, 80), 60.0, 0.45, 50.0, 3, |q| Ok(curved(q))).unwrap();
        assert!((curved(q) - 50.0).abs() < 1.5, "{q} {trials:?}");
        // Unreachable target: the top of the range.
        let (q, _) = search_quality::<()>((35, 92), 75.0, 0.5, 200.0, 3, |q| Ok(q as f64)).unwrap();
        assert_eq!(q, 92);
        // A noisy, falling score does not run away: the prior's gain, at most 25 steps a trial.
        let (q, trials) = search_quality::<()>((25, 80), 60.0, 0.45, 70.0, 2, |q| Ok(90.0 - q as f64 / 10.0)).unwrap();
        assert!(trials.len() <= 2 && (25..=80).contains(&q));
        let auto = opts("f:auto");
        assert!(wants_auto_quality(&auto, Format::Webp, &enc()));
        assert!(!wants_auto_quality(&opts("f:auto/q:80"), Format::Webp, &enc()));
        assert!(!wants_auto_quality(&opts("f:webp"), Format::Webp, &enc()));
        assert!(!wants_auto_quality(&opts(""), Format::Webp, &enc()), "no extension: negotiated, fixed default q");
        assert!(wants_auto_quality(&opts("f:webp/q:auto"), Format::Webp, &enc()));
        assert!(!wants_auto_quality(&auto, Format::Png, &enc()));
    }

    /// The cost of auto quality, counted: one trial encode of a sample of about 1/24 of the
    /// variant (at least 2×2 tiles of 64 px), scored once, then the delivered encode. Fails if the
    /// search goes back to more trials or larger samples (before: two trials of a 1/6 sample of
    /// 128-px tiles, three encodes; a 400 px variant's sample was half of it).
    #[test]
    fn auto_quality_makes_one_small_trial() {
        init(1).unwrap();
        let src = fixture("phone12mp.jpg");
        // (url, ext, most pixels scored as a share of the variant's)
        for (url, ext, share) in
            [("w:800/q:auto", "avif", 0.06), ("w:800/q:auto", "webp", 0.06), ("w:400/q:auto", "jpg", 0.14)]
        {
            let fixed = render(&src, &req(&url.replace("q:auto", "q:60"), Some(ext)), &enc()).unwrap();
            let _ = work::take();
            let out = render(&src, &req(url, Some(ext)), &enc()).unwrap();
            let encodes = work::encodes();
            let (encoded, scored) = work::take();
            let px = out.width as u64 * out.height as u64;
            assert_eq!((out.width, out.height), (fixed.width, fixed.height));
            assert_eq!(encodes, 2, "{url}.{ext}: one trial and the delivered encode");
            let most = (px as f64 * share) as u64;
            assert!(scored <= most, "{url}.{ext}: {scored} pixels scored for a {px}-pixel variant");
            assert!(encoded <= px + most, "{url}.{ext}: {encoded} pixels encoded for a {px}-pixel variant");
            assert!(scored > 0 && encoded > px, "{url}.{ext}: no trial");
        }
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
    fn jxl_negotiation_prefers_jxl_for_stills_only() {
        let e = enc();
        let auto = FormatChoice::Auto;
        assert_eq!(choose_format(auto, AcceptClass::Jxl, &e, false, false), Format::Jxl);
        assert_eq!(choose_format(FormatChoice::Unset, AcceptClass::Jxl, &e, true, false), Format::Jxl);
        // libvips 8.14's jxlsave writes one frame: animations stay WebP.
        assert_eq!(choose_format(auto, AcceptClass::Jxl, &e, false, true), Format::Webp);
        let no_jxl = EncodeSettings { enable_jxl: false, ..enc() };
        assert_eq!(choose_format(auto, AcceptClass::Jxl, &no_jxl, false, false), Format::Avif);
        let no_avif = EncodeSettings { enable_avif: false, ..no_jxl };
        assert_eq!(choose_format(auto, AcceptClass::Jxl, &no_avif, false, false), Format::Webp);
        assert_eq!(quality_for(Format::Jxl, &opts(""), &e, false), 70);
        assert_eq!(quality_for(Format::Jxl, &opts(""), &e, true), 55);
        assert_eq!(quality_for(Format::Jxl, &opts("fq:jxl:80"), &e, false), 80);
        assert!(wants_auto_quality(&opts("f:auto"), Format::Jxl, &e));
        assert!(wants_auto_quality(&opts("f:jxl/q:auto"), Format::Jxl, &e));
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
