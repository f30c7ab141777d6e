//! Bandwidth benchmark: imago's negotiated output for a Chrome-like `Accept` (format chosen from
//! Accept, per-image perceptual quality) against libvips' fixed-quality curves for JPEG, WebP and
//! AVIF, on the photos in tests/fixtures at w:800 and w:400. Prints total bytes and mean
//! SSIMULACRA2 (scored against the resized, unencoded pixels) and the ratio of imago's bytes to
//! the best fixed-quality curve's bytes at imago's mean score (interpolated). Target ≤ 0.90.

use imago::negotiate::AcceptClass;
use imago::options::{parse, Format, FormatChoice, Presets, Quality};
use imago::transform::{EncodeSettings, RenderRequest};

const PHOTOS: [&str; 8] = [
    "nasa_large.jpg",
    "phone12mp.jpg",
    "orientation/Landscape_1.jpg",
    "orientation/Portrait_1.jpg",
    "p3.jpg",
    "adobergb.jpg",
    "gps.jpg",
    "cmyk.jpg",
];

fn enc() -> EncodeSettings {
    let mut e = EncodeSettings::from_config(&imago::config::RawConfig::default());
    if let Some(t) = std::env::var("IMAGO_AUTO_QUALITY_TARGET").ok().and_then(|v| v.parse().ok()) {
        e.auto_quality_target = t;
    }
    if let Some(t) = std::env::var("IMAGO_AUTO_QUALITY_TRIALS").ok().and_then(|v| v.parse().ok()) {
        e.auto_quality_trials = t;
    }
    e
}

fn req(width: u32, format: FormatChoice, quality: Quality) -> RenderRequest {
    let mut o = parse(&[], None, &Presets::default()).unwrap();
    o.width = width;
    o.format = format;
    o.quality = quality;
    RenderRequest { options: o, accept: AcceptClass::Avif, save_data: false }
}

/// Bytes at `score` on a curve of (mean score, total bytes) points, by linear interpolation.
fn bytes_at(curve: &[(f64, f64)], score: f64) -> Option<f64> {
    let mut pts = curve.to_vec();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts.windows(2).find(|w| w[0].0 <= score && score <= w[1].0).map(|w| {
        let t = (score - w[0].0) / (w[1].0 - w[0].0).max(1e-9);
        w[0].1 + t * (w[1].1 - w[0].1)
    })
}

fn main() {
    imago::vips::init(1).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let e = enc();
    let qs: [u8; 8] = [25, 35, 45, 55, 65, 75, 85, 95];
    let mut imago_bytes = 0f64;
    let mut imago_scores = Vec::new();
    let mut curves: Vec<(Format, Vec<(f64, f64)>)> =
        vec![(Format::Jpeg, vec![]), (Format::Webp, vec![]), (Format::Avif, vec![])];
    let mut per_q: Vec<Vec<(f64, f64)>> = vec![vec![(0.0, 0.0); qs.len()]; 3];
    let t0 = std::time::Instant::now();
    let mut pairs = 0;
    for photo in PHOTOS {
        let buf = std::fs::read(root.join(photo)).unwrap();
        for width in [800u32, 400] {
            pairs += 1;
            let reference = imago::vips::reference_pixels(&buf, width, &e).unwrap();
            let out = imago::vips::render(&buf, &req(width, FormatChoice::Auto, Quality::Default), &e).unwrap();
            let score = imago::vips::score_encoded(&out.bytes, &reference).unwrap();
            imago_bytes += out.bytes.len() as f64;
            imago_scores.push(score);
            println!(
                "{photo:<30} w:{width:<4} imago {:>5} q{:<3} {:>8} B  score {score:.1}",
                out.format.name(),
                out.quality,
                out.bytes.len()
            );
            for (fi, (format, _)) in curves.iter().enumerate() {
                for (qi, q) in qs.iter().enumerate() {
                    let r =
                        imago::vips::render(&buf, &req(width, FormatChoice::Explicit(*format), Quality::Fixed(*q)), &e)
                            .unwrap();
                    let sc = imago::vips::score_encoded(&r.bytes, &reference).unwrap();
                    per_q[fi][qi].0 += sc;
                    per_q[fi][qi].1 += r.bytes.len() as f64;
                }
            }
        }
    }
    let n = pairs as f64;
    let imago_mean = imago_scores.iter().sum::<f64>() / n;
    for (fi, (_, curve)) in curves.iter_mut().enumerate() {
        *curve = per_q[fi].iter().map(|(s, b)| (s / n, *b)).collect();
    }
    println!("\nfixed-quality curves (mean SSIMULACRA2, total KB) over {pairs} photo x width pairs:");
    for (format, curve) in &curves {
        let pts: Vec<String> =
            curve.iter().zip(qs).map(|((s, b), q)| format!("q{q}:{s:.1}/{:.0}K", b / 1024.0)).collect();
        println!("  {:<5} {}", format.name(), pts.join("  "));
    }
    println!(
        "\nimago negotiated (Chrome Accept, auto quality): {:.0} KB at mean score {imago_mean:.1}",
        imago_bytes / 1024.0
    );
    let mut best: Option<(Format, f64)> = None;
    for (format, curve) in &curves {
        match bytes_at(curve, imago_mean) {
            Some(b) => {
                println!(
                    "  {:<5} fixed-q at score {imago_mean:.1}: {:.0} KB -> imago ratio {:.3}",
                    format.name(),
                    b / 1024.0,
                    imago_bytes / b
                );
                if best.is_none_or(|(_, bb)| b < bb) {
                    best = Some((*format, b));
                }
            }
            None => println!("  {:<5} fixed-q curve does not reach score {imago_mean:.1}", format.name()),
        }
    }
    if let Some((f, b)) = best {
        println!(
            "ratio to the best fixed-quality curve ({}) at the same mean score: {:.3} (target <= 0.90)",
            f.name(),
            imago_bytes / b
        );
    }
    println!("elapsed {:.1} s", t0.elapsed().as_secs_f64());
}
