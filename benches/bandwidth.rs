//! Bandwidth benchmark: imago's perceptual auto quality (`q:auto`) against libvips' fixed-quality
//! curves for JPEG, WebP and AVIF, on the photos in tests/fixtures at w:800 and w:400, scored at
//! the delivered size (SSIMULACRA2 against the resized, unencoded pixels).
//!
//! For each format it prints, next to that format's fixed-quality curve:
//! - the CPU of `q:auto` as a ratio to a render of the same variant at the format's default
//!   quality (process CPU, libvips at concurrency 1, the lesser of two runs each, both measured in
//!   the same loop so a busy machine slows both alike); target ≤ 1.5;
//! - the delivered mean and 10th-percentile score (the worst images, which a fixed quality cannot
//!   protect) and the mean's distance from the target;
//! - the bytes of `q:auto` as a ratio to the fixed-quality curve's bytes at the same mean score
//!   and at the same p10 score (interpolated), and the curve's p10 at `q:auto`'s bytes.
//!
//! The negotiated row is `f:auto` with Chrome's `Accept` (AVIF, q:auto by default). It also prints
//! the *equal-slope oracle* over the fixed-quality points: per image the point maximising
//! `score − λ·bytes`, swept over λ — the least total bytes any per-image choice among those points
//! can reach at a mean score.
//!
//! `IMAGO_BENCH_POINTS=<file>` keeps the fixed-quality points in a file and reuses them when it
//! exists (they depend only on libvips and the encoder efforts, not on `q:auto`), for quick reruns.
//!
//! `IMAGO_BENCH_CALIBRATE=<file>` instead writes the score of q:auto's sample at each fixed quality
//! per pair and exits; `python3 benches/fit_auto_quality.py <points> <file>` fits the prior's gain
//! and lenience per format from the two files (`imago::transform::auto_quality_prior`).

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
const FORMATS: [Format; 4] = [Format::Jpeg, Format::Webp, Format::Avif, Format::Jxl];
/// Formats whose `q:auto` is measured explicitly (AVIF is the negotiated `f:auto` row).
const EXPLICIT: [Format; 3] = [Format::Jpeg, Format::Webp, Format::Jxl];
/// Scores at which JPEG XL's bytes are compared with the other formats', per photo.
const EQUAL_AT: [f64; 3] = [60.0, 70.0, 80.0];
const QS: [u8; 8] = [25, 35, 45, 55, 65, 75, 85, 95];

fn enc() -> EncodeSettings {
    let mut e = EncodeSettings::from_config(&imago::config::RawConfig::default());
    let env = |k: &str| std::env::var(k).ok();
    if let Some(t) = env("IMAGO_AUTO_QUALITY_TARGET").and_then(|v| v.parse().ok()) {
        e.auto_quality_target = t;
    }
    if let Some(t) = env("IMAGO_AUTO_QUALITY_TRIALS").and_then(|v| v.parse().ok()) {
        e.auto_quality_trials = t;
    }
    if let Some(t) = env("IMAGO_AVIF_EFFORT").and_then(|v| v.parse().ok()) {
        e.avif_effort = t;
    }
    e
}

fn req(width: u32, format: FormatChoice, quality: Quality) -> RenderRequest {
    let mut o = parse(&[], None, &Presets::default()).unwrap();
    o.width = width;
    o.format = format;
    o.quality = quality;
    RenderRequest { options: o, accept: AcceptClass::Avif, save_data: false, watermark: None }
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

/// The `p`-quantile of `v` (linear interpolation between order statistics).
fn quantile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let x = p * (s.len() - 1) as f64;
    let (i, t) = (x.floor() as usize, x - x.floor());
    s[i] + t * (s[(i + 1).min(s.len() - 1)] - s[i])
}

/// `y` at `x` on a curve of (x, y) points, by linear interpolation (None outside the curve).
fn interp(curve: &[(f64, f64)], x: f64) -> Option<f64> {
    let mut pts = curve.to_vec();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts.windows(2).find(|w| w[0].0 <= x && x <= w[1].0).map(|w| {
        let t = (x - w[0].0) / (w[1].0 - w[0].0).max(1e-9);
        w[0].1 + t * (w[1].1 - w[0].1)
    })
}

/// One photo at one width: every fixed-quality point (format, q, bytes, score).
struct Pair {
    width: u32,
    points: Vec<Point>,
}

/// One fixed-quality render: (format, quality, bytes, score).
type Point = (Format, u8, f64, f64);

/// One fixed quality of a format over a set of pairs.
struct CurvePoint {
    mean: f64,
    p10: f64,
    bytes: f64,
}

/// The fixed-quality curve of `format` over `pairs`, one point per quality.
fn curve(pairs: &[&Pair], format: Format) -> Vec<CurvePoint> {
    QS.iter()
        .map(|q| {
            let pts: Vec<_> =
                pairs.iter().flat_map(|p| p.points.iter().filter(|x| x.0 == format && x.1 == *q)).collect();
            let scores: Vec<f64> = pts.iter().map(|x| x.3).collect();
            CurvePoint {
                mean: scores.iter().sum::<f64>() / scores.len() as f64,
                p10: quantile(&scores, 0.1),
                bytes: pts.iter().map(|x| x.2).sum(),
            }
        })
        .collect()
}

fn by_mean(c: &[CurvePoint]) -> Vec<(f64, f64)> {
    c.iter().map(|p| (p.mean, p.bytes)).collect()
}

/// The best (least bytes) fixed-quality curve at mean `score`, as (format, bytes).
fn best_curve(pairs: &[&Pair], score: f64) -> Option<(Format, f64)> {
    let at = FORMATS.iter().filter_map(|f| interp(&by_mean(&curve(pairs, *f)), score).map(|b| (*f, b)));
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

/// `q:auto` of one format over the corpus: bytes and delivered scores per pair, CPU of the auto
/// and of the default-quality render per pair.
#[derive(Default)]
struct Auto {
    bytes: Vec<f64>,
    scores: Vec<f64>,
    cpu_auto: Vec<f64>,
    cpu_fixed: Vec<f64>,
}

/// CPU seconds of `f`, the lesser of two runs, and its last result.
fn timed<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..2 {
        let c0 = cpu_seconds();
        out = Some(f());
        best = best.min(cpu_seconds() - c0);
    }
    (best, out.unwrap())
}

fn report(name: &str, a: &Auto, c: &[CurvePoint], target: f64) {
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    let bytes = sum(&a.bytes);
    let mean = sum(&a.scores) / a.scores.len() as f64;
    let p10 = quantile(&a.scores, 0.1);
    let ratio = sum(&a.cpu_auto) / sum(&a.cpu_fixed);
    println!(
        "{name:<16} CPU q:auto {:.0} ms / default-q {:.0} ms per variant = {ratio:.2}x (target <= 1.5; max {:.0} ms) \
         | {:.0} KB, mean {mean:.1} ({:+.1} from target {target:.0}), p10 {p10:.1}",
        sum(&a.cpu_auto) * 1e3 / a.cpu_auto.len() as f64,
        sum(&a.cpu_fixed) * 1e3 / a.cpu_fixed.len() as f64,
        a.cpu_auto.iter().cloned().fold(0.0, f64::max) * 1e3,
        bytes / 1024.0,
        mean - target,
    );
    let cell = |v: Option<f64>| {
        v.map_or("off the curve".to_string(), |b| format!("{:.0} KB -> {:.3}x", b / 1024.0, bytes / b))
    };
    let p10s: Vec<(f64, f64)> = c.iter().map(|p| (p.p10, p.bytes)).collect();
    let p10_at_bytes: Vec<(f64, f64)> = c.iter().map(|p| (p.bytes, p.p10)).collect();
    println!(
        "{:<16} fixed-q at equal mean: {}  at equal p10: {}  fixed-q p10 at equal bytes: {}",
        "",
        cell(interp(&by_mean(c), mean)),
        cell(interp(&p10s, p10)),
        interp(&p10_at_bytes, bytes).map_or("off the curve".into(), |s| format!("{s:.1} (q:auto {p10:.1})")),
    );
}

/// Reads the cached fixed-quality points, if any: `pair format q bytes score` per line.
fn load_points(path: &str, n: usize) -> Option<Vec<Vec<Point>>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut out = vec![Vec::new(); n];
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let i: usize = f.first()?.parse().ok()?;
        let fmt = Format::parse(f.get(1)?)?;
        out.get_mut(i)?.push((fmt, f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?, f.get(4)?.parse().ok()?));
    }
    out.iter().all(|p| p.len() == FORMATS.len() * QS.len()).then_some(out)
}

fn main() {
    imago::transform::init(1).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let e = enc();
    let target = e.auto_quality_target;
    let t0 = std::time::Instant::now();
    let cache_path = std::env::var("IMAGO_BENCH_POINTS").ok();
    let cached = cache_path.as_deref().and_then(|p| load_points(p, PHOTOS.len() * 2));
    let mut cache_out = String::new();
    let mut pairs: Vec<Pair> = Vec::new();
    let mut autos: Vec<Auto> = EXPLICIT.iter().map(|_| Auto::default()).collect();
    let mut negotiated = Auto::default();
    // CPU seconds of each fixed-quality render (format, q, width, seconds); empty with cached points.
    let mut point_cpu: Vec<(Format, u8, u32, f64)> = Vec::new();
    if let Ok(path) = std::env::var("IMAGO_BENCH_CALIBRATE") {
        // The sample's score at each fixed quality, per pair (same numbering as the points).
        let mut text = String::new();
        let mut i = 0;
        for photo in PHOTOS {
            let buf = std::fs::read(root.join(photo)).unwrap();
            for width in [800u32, 400] {
                for format in FORMATS {
                    for (q, s) in imago::transform::sample_scores(&buf, width, format, &QS, &e).unwrap() {
                        text.push_str(&format!("{i} {} {q} {s}\n", format.name()));
                    }
                }
                i += 1;
            }
        }
        std::fs::write(path, text).unwrap();
        return;
    }
    for photo in PHOTOS {
        let buf = std::fs::read(root.join(photo)).unwrap();
        for width in [800u32, 400] {
            let reference = imago::transform::reference_pixels(&buf, width, &e).unwrap();
            let score = |b: &[u8]| imago::transform::score_encoded(b, &reference).unwrap();
            let render = |f: FormatChoice, q: Quality| imago::transform::render(&buf, &req(width, f, q), &e).unwrap();
            // The negotiated variant (Chrome's Accept, f:auto: AVIF with q:auto by default).
            let (c_auto, out) = timed(|| render(FormatChoice::Auto, Quality::Default));
            let (c_fixed, _) = timed(|| render(FormatChoice::Explicit(out.format), Quality::Default));
            let sc = score(&out.bytes);
            println!(
                "{photo:<30} w:{width:<4} f:auto {:>5} q{:<3} {:>8} B  score {sc:.1}  cpu {:.0} ms (default q {:.0} ms)",
                out.format.name(),
                out.quality,
                out.bytes.len(),
                c_auto * 1e3,
                c_fixed * 1e3
            );
            negotiated.bytes.push(out.bytes.len() as f64);
            negotiated.scores.push(sc);
            negotiated.cpu_auto.push(c_auto);
            negotiated.cpu_fixed.push(c_fixed);
            for (format, a) in EXPLICIT.iter().zip(autos.iter_mut()) {
                let (c_auto, r) = timed(|| render(FormatChoice::Explicit(*format), Quality::Auto));
                let (c_fixed, _) = timed(|| render(FormatChoice::Explicit(*format), Quality::Default));
                a.bytes.push(r.bytes.len() as f64);
                a.scores.push(score(&r.bytes));
                a.cpu_auto.push(c_auto);
                a.cpu_fixed.push(c_fixed);
            }
            let i = pairs.len();
            let points = match &cached {
                Some(c) => c[i].clone(),
                None => {
                    let mut points = Vec::new();
                    for format in FORMATS {
                        for q in QS {
                            let c0 = cpu_seconds();
                            let r = render(FormatChoice::Explicit(format), Quality::Fixed(q));
                            point_cpu.push((format, q, width, cpu_seconds() - c0));
                            points.push((format, q, r.bytes.len() as f64, score(&r.bytes)));
                        }
                    }
                    points
                }
            };
            for p in &points {
                cache_out.push_str(&format!("{i} {} {} {} {}\n", p.0.name(), p.1, p.2, p.3));
            }
            pairs.push(Pair { width, points });
        }
    }
    if let (Some(path), None) = (&cache_path, &cached) {
        std::fs::write(path, cache_out).unwrap();
    }
    let all: Vec<&Pair> = pairs.iter().collect();
    println!(
        "\nfixed-quality curves (mean / p10 SSIMULACRA2 at the delivered size, total KB) over {} photo x width pairs:",
        all.len()
    );
    for format in FORMATS {
        let pts: Vec<String> = curve(&all, format)
            .iter()
            .zip(QS)
            .map(|(p, q)| format!("q{q}:{:.1}/{:.1}/{:.0}K", p.mean, p.p10, p.bytes / 1024.0))
            .collect();
        println!("  {:<5} {}", format.name(), pts.join("  "));
    }
    println!("\nq:auto (target {target:.0}, AVIF effort {}) against each format's fixed-quality curve:", e.avif_effort);
    report("f:auto (avif)", &negotiated, &curve(&all, Format::Avif), target);
    for (format, a) in EXPLICIT.iter().zip(&autos) {
        report(&format!("{}/q:auto", format.name()), a, &curve(&all, *format), target);
    }
    let imago_mean = negotiated.scores.iter().sum::<f64>() / negotiated.scores.len() as f64;
    let imago_bytes: f64 = negotiated.bytes.iter().sum();
    if let Some((f, b)) = best_curve(&all, imago_mean) {
        println!(
            "f:auto against the best fixed-quality curve ({}) at the same mean score: {:.3}",
            f.name(),
            imago_bytes / b
        );
    }
    println!("\nequal-slope oracle over the fixed-q points (bytes / best fixed-q curve at that mean score):");
    let w800: Vec<&Pair> = pairs.iter().filter(|p| p.width == 800).collect();
    let w400: Vec<&Pair> = pairs.iter().filter(|p| p.width == 400).collect();
    for (name, set) in [("both widths", &all), ("w:800 only", &w800), ("w:400 only", &w400)] {
        for (fname, formats) in [("AVIF", &[Format::Avif][..]), ("any format", &FORMATS[..])] {
            let o = oracle(set, formats);
            let cells: Vec<String> = [60.0, 65.0, imago_mean, 70.0, 75.0]
                .iter()
                .filter_map(|s| Some(format!("{s:.1}: {:.3}", interp(&o, *s)? / best_curve(set, *s)?.1)))
                .collect();
            println!("  {name:<11} {fname:<10} {}", cells.join("  "));
        }
    }
    jxl_report(&pairs, &point_cpu);
    println!("elapsed {:.1} s", t0.elapsed().as_secs_f64());
}

/// Bytes of `format` on one pair at `score`, interpolated on its fixed-quality points.
fn bytes_at(p: &Pair, format: Format, score: f64) -> Option<f64> {
    let pts: Vec<(f64, f64)> = p.points.iter().filter(|x| x.0 == format).map(|x| (x.3, x.2)).collect();
    interp(&pts, score)
}

/// JPEG XL against AVIF, WebP and JPEG: bytes at equal SSIMULACRA2 per photo × width and over the
/// corpus, and the render CPU per image at the quality that reaches a mean score of 70.
fn jxl_report(pairs: &[Pair], point_cpu: &[(Format, u8, u32, f64)]) {
    let others = [Format::Avif, Format::Webp, Format::Jpeg];
    println!("\nJPEG XL bytes at equal SSIMULACRA2 (per pair: JXL bytes, then JXL / other at the same score):");
    let names: Vec<String> = PHOTOS.iter().flat_map(|p| [format!("{p} w:800"), format!("{p} w:400")]).collect();
    for score in EQUAL_AT {
        let mut logs = vec![Vec::new(); others.len()];
        let mut totals = vec![(0.0, 0.0); others.len()];
        for (p, name) in pairs.iter().zip(&names) {
            let Some(j) = bytes_at(p, Format::Jxl, score) else {
                println!("  score {score:.0} {name:<34} JXL off its curve");
                continue;
            };
            let cells: Vec<String> = others
                .iter()
                .enumerate()
                .map(|(k, f)| match bytes_at(p, *f, score) {
                    Some(b) => {
                        logs[k].push((j / b).ln());
                        totals[k].0 += j;
                        totals[k].1 += b;
                        format!("{} {:.3}x", f.name(), j / b)
                    }
                    None => format!("{} off", f.name()),
                })
                .collect();
            println!("  score {score:.0} {name:<34} {:>7.0} B  {}", j, cells.join("  "));
        }
        let cells: Vec<String> = others
            .iter()
            .enumerate()
            .filter(|(k, _)| !logs[*k].is_empty())
            .map(|(k, f)| {
                let geo = (logs[k].iter().sum::<f64>() / logs[k].len() as f64).exp();
                format!(
                    "{} {:.3}x (geo mean) {:.3}x (total, {} pairs)",
                    f.name(),
                    geo,
                    totals[k].0 / totals[k].1,
                    logs[k].len()
                )
            })
            .collect();
        println!("  score {score:.0} MEAN: {}", cells.join("  "));
    }
    if point_cpu.is_empty() {
        println!("(render CPU per image needs uncached points: unset IMAGO_BENCH_POINTS or remove its file)");
        return;
    }
    let all: Vec<&Pair> = pairs.iter().collect();
    println!("\nrender CPU per image (decode + resize + encode, libvips concurrency 1) at a mean score of 70:");
    for width in [800u32, 400] {
        let set: Vec<&Pair> = pairs.iter().filter(|p| p.width == width).collect();
        let set = if set.is_empty() { all.clone() } else { set };
        let mut avif_ms = None;
        for format in [Format::Avif, Format::Jxl, Format::Webp, Format::Jpeg] {
            let c = curve(&set, format);
            let ms: Vec<(f64, f64)> = c
                .iter()
                .zip(QS)
                .map(|(p, q)| {
                    let v: Vec<f64> =
                        point_cpu.iter().filter(|x| x.0 == format && x.1 == q && x.2 == width).map(|x| x.3).collect();
                    (p.mean, v.iter().sum::<f64>() * 1e3 / v.len().max(1) as f64)
                })
                .collect();
            let Some(at70) = interp(&ms, 70.0) else { continue };
            let q70 = interp(&c.iter().zip(QS).map(|(p, q)| (p.mean, q as f64)).collect::<Vec<_>>(), 70.0);
            let avif = *avif_ms.get_or_insert(at70);
            println!(
                "  w:{width:<4} {:<5} {at70:>6.1} ms ({:.2}x AVIF) at q{:.0}; per q: {}",
                format.name(),
                at70 / avif,
                q70.unwrap_or(0.0),
                ms.iter().zip(QS).map(|((_, m), q)| format!("q{q}:{m:.0}")).collect::<Vec<_>>().join(" ")
            );
        }
    }
}
