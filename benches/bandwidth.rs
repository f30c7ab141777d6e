//! Bandwidth benchmark: imago's negotiated output for a Chrome-like `Accept` (format chosen from
//! Accept, per-image perceptual quality) against libvips' fixed-quality curves for JPEG, WebP and
//! AVIF, on the photos in tests/fixtures at w:800 and w:400. Prints total bytes and mean
//! SSIMULACRA2 (scored against the resized, unencoded pixels) and the ratio of imago's bytes to
//! the best fixed-quality curve's bytes at imago's mean score (interpolated). Target ≤ 0.90.
//!
//! Also prints the CPU time of each auto-quality variant (process CPU, libvips at concurrency 1)
//! next to a fixed-quality render of the same variant, and the *equal-slope oracle* over the
//! fixed-quality points: per image the point maximising `score − λ·bytes`, swept over λ — the
//! least total bytes any per-image choice among those points can reach at a mean score. Over both
//! widths at once it is free to starve the 800 px renditions to buy score on the cheap 400 px ones;
//! per width it shows what per-image (content-adaptive) choice alone can buy.

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
const FORMATS: [Format; 3] = [Format::Jpeg, Format::Webp, Format::Avif];
const QS: [u8; 8] = [25, 35, 45, 55, 65, 75, 85, 95];

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

/// CPU seconds (user + system, all threads) this process has used.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
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

/// One photo at one width: imago's output and every fixed-quality point (format, q, bytes, score).
struct Pair {
    width: u32,
    bytes: f64,
    score: f64,
    points: Vec<(Format, u8, f64, f64)>,
}

/// The fixed-quality curve of `format` over `pairs`: (mean score, total bytes) per quality.
fn curve(pairs: &[&Pair], format: Format) -> Vec<(f64, f64)> {
    let n = pairs.len() as f64;
    QS.iter()
        .map(|q| {
            let pts = pairs.iter().flat_map(|p| p.points.iter().filter(|x| x.0 == format && x.1 == *q));
            pts.fold((0.0, 0.0), |(s, b), x| (s + x.3 / n, b + x.2))
        })
        .collect()
}

/// The best (least bytes) fixed-quality curve at `score`, as (format, bytes).
fn best_curve(pairs: &[&Pair], score: f64) -> Option<(Format, f64)> {
    let at = FORMATS.iter().filter_map(|f| bytes_at(&curve(pairs, *f), score).map(|b| (*f, b)));
    at.min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Equal-slope oracle over the fixed-quality points of `formats`: (mean score, total bytes) for a
/// sweep of λ, each image taking the point that maximises `score − λ·bytes`.
fn oracle(pairs: &[&Pair], formats: &[Format]) -> Vec<(f64, f64)> {
    let n = pairs.len() as f64;
    (0..400)
        .map(|i| {
            let lambda = 1e-7 * 10f64.powf(i as f64 / 80.0);
            pairs.iter().fold((0.0, 0.0), |(s, b), p| {
                let pts = p.points.iter().filter(|x| formats.contains(&x.0));
                let best = pts.max_by(|x, y| (x.3 - lambda * x.2).total_cmp(&(y.3 - lambda * y.2))).unwrap();
                (s + best.3 / n, b + best.2)
            })
        })
        .collect()
}

fn main() {
    imago::transform::init(1).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let e = enc();
    let t0 = std::time::Instant::now();
    let mut pairs: Vec<Pair> = Vec::new();
    let (mut auto_cpu, mut fixed_cpu) = (Vec::new(), Vec::new());
    for photo in PHOTOS {
        let buf = std::fs::read(root.join(photo)).unwrap();
        for width in [800u32, 400] {
            let reference = imago::transform::reference_pixels(&buf, width, &e).unwrap();
            let c0 = cpu_seconds();
            let out = imago::transform::render(&buf, &req(width, FormatChoice::Auto, Quality::Default), &e).unwrap();
            let c1 = cpu_seconds();
            let fixed = req(width, FormatChoice::Explicit(out.format), Quality::Fixed(out.quality));
            imago::transform::render(&buf, &fixed, &e).unwrap();
            let c2 = cpu_seconds();
            auto_cpu.push((c1 - c0) * 1000.0);
            fixed_cpu.push((c2 - c1) * 1000.0);
            let score = imago::transform::score_encoded(&out.bytes, &reference).unwrap();
            println!(
                "{photo:<30} w:{width:<4} imago {:>5} q{:<3} {:>8} B  score {score:.1}  cpu {:.0} ms (fixed q {:.0} ms)",
                out.format.name(),
                out.quality,
                out.bytes.len(),
                (c1 - c0) * 1000.0,
                (c2 - c1) * 1000.0
            );
            let mut points = Vec::new();
            for format in FORMATS {
                for q in QS {
                    let r = imago::transform::render(
                        &buf,
                        &req(width, FormatChoice::Explicit(format), Quality::Fixed(q)),
                        &e,
                    )
                    .unwrap();
                    let sc = imago::transform::score_encoded(&r.bytes, &reference).unwrap();
                    points.push((format, q, r.bytes.len() as f64, sc));
                }
            }
            pairs.push(Pair { width, bytes: out.bytes.len() as f64, score, points });
        }
    }
    let all: Vec<&Pair> = pairs.iter().collect();
    let n = all.len() as f64;
    let imago_bytes: f64 = all.iter().map(|p| p.bytes).sum();
    let imago_mean = all.iter().map(|p| p.score).sum::<f64>() / n;
    println!("\nfixed-quality curves (mean SSIMULACRA2, total KB) over {} photo x width pairs:", all.len());
    for format in FORMATS {
        let pts: Vec<String> =
            curve(&all, format).iter().zip(QS).map(|((s, b), q)| format!("q{q}:{s:.1}/{:.0}K", b / 1024.0)).collect();
        println!("  {:<5} {}", format.name(), pts.join("  "));
    }
    println!(
        "\nimago negotiated (Chrome Accept, auto quality): {:.0} KB at mean score {imago_mean:.1}",
        imago_bytes / 1024.0
    );
    for format in FORMATS {
        match bytes_at(&curve(&all, format), imago_mean) {
            Some(b) => println!(
                "  {:<5} fixed-q at score {imago_mean:.1}: {:.0} KB -> imago ratio {:.3}",
                format.name(),
                b / 1024.0,
                imago_bytes / b
            ),
            None => println!("  {:<5} fixed-q curve does not reach score {imago_mean:.1}", format.name()),
        }
    }
    if let Some((f, b)) = best_curve(&all, imago_mean) {
        println!(
            "ratio to the best fixed-quality curve ({}) at the same mean score: {:.3} (target <= 0.90)",
            f.name(),
            imago_bytes / b
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    println!(
        "auto quality CPU per variant: mean {:.0} ms, max {:.0} ms (a fixed-q render of the same variant: mean {:.0} ms)",
        mean(&auto_cpu),
        max(&auto_cpu),
        mean(&fixed_cpu)
    );
    println!("\nequal-slope oracle over the fixed-q points (bytes / best fixed-q curve at that mean score):");
    let w800: Vec<&Pair> = pairs.iter().filter(|p| p.width == 800).collect();
    let w400: Vec<&Pair> = pairs.iter().filter(|p| p.width == 400).collect();
    for (name, set) in [("both widths", &all), ("w:800 only", &w800), ("w:400 only", &w400)] {
        for (fname, formats) in [("AVIF", &[Format::Avif][..]), ("any format", &FORMATS[..])] {
            let o = oracle(set, formats);
            let cells: Vec<String> = [60.0, 65.0, imago_mean, 70.0, 75.0]
                .iter()
                .filter_map(|s| Some(format!("{s:.1}: {:.3}", bytes_at(&o, *s)? / best_curve(set, *s)?.1)))
                .collect();
            println!("  {name:<11} {fname:<10} {}", cells.join("  "));
        }
    }
    println!("elapsed {:.1} s", t0.elapsed().as_secs_f64());
}
