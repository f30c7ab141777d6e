//! Transform blow-ups (issue #15, items 4 and 5): enlarged animations are bounded by the output
//! megapixel limit (DPR included), a transform that passes its deadline stops and frees its
//! worker, and a crop of an enlarged source never holds the whole enlarged source in memory.
//! (Its own test binary: the peak RSS measured is this process's; the tests take a lock so that
//! one request at a time is measured.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::{AnimationDecoder, Delay, Frame, Rgba, RgbaImage};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A small real animation: `frames` frames of 16×16, each a different colour (about the issue's
/// 38 KB, 44-frame GIF).
fn small_animation(frames: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        enc.set_repeat(Repeat::Infinite).unwrap();
        for i in 0..frames {
            let img = RgbaImage::from_fn(16, 16, |x, y| {
                Rgba([(i * 5) as u8, (x * 16) as u8, (y * 16) as u8 ^ (i as u8), 255])
            });
            enc.encode_frame(Frame::from_parts(img, 0, 0, Delay::from_numer_denom_ms(40, 1))).unwrap();
        }
    }
    out
}

/// Width, height and frame count of a GIF (decoded by the `image` crate, not libvips).
fn gif_facts(bytes: &[u8]) -> (u32, u32, usize) {
    let frames = GifDecoder::new(std::io::Cursor::new(bytes)).unwrap().into_frames().collect_frames().unwrap();
    let (w, h) = frames[0].buffer().dimensions();
    (w, h, frames.len())
}

fn status_line(r: &reqwest::Response) -> String {
    let v = r.headers().get("x-imago-variant").and_then(|v| v.to_str().ok()).unwrap_or("");
    format!("{} {v}", r.status())
}

/// Peak resident memory (VmHWM) after resetting it to the current RSS (Linux `clear_refs` 5).
fn reset_peak_rss() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
    rss_kb("VmRSS:")
}

fn rss_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enlarged_animation_is_bounded_by_output_megapixels_dpr_included() {
    let _g = ONE_AT_A_TIME.lock().await;
    // A limit below the default keeps the test quick on a busy machine; the default (60 MP) bounds
    // the same requests at 1167x1167 x 44 frames.
    let s = start(&[], |c| {
        c.cache_size_mb = 0;
        c.max_output_megapixels = 12.0;
    })
    .await;
    s.put("anim.gif", &small_animation(44));
    let limit = s.state.cfg.raw.max_output_megapixels * 1e6;
    for (opts, hints) in [("w:2048/el:1", &[][..]), ("w:512/el:1", &[("sec-ch-dpr", "3")][..])] {
        let t = Instant::now();
        let r = s.get_with(&s.url(opts, "local:///anim.gif", Some("gif")), hints).await;
        let line = status_line(&r);
        assert_eq!(r.status(), 200, "{opts}: {line}");
        let (w, h, frames) = gif_facts(&r.bytes().await.unwrap());
        eprintln!("{opts} {hints:?}: {w}x{h} x {frames} frames in {:?}", t.elapsed());
        assert_eq!(frames, 44, "{opts}: every frame kept");
        assert_eq!(w, h, "{opts}: aspect ratio kept");
        let total = w as f64 * h as f64 * frames as f64;
        assert!(total <= limit, "{opts} {hints:?}: {w}x{h} x {frames} = {total} pixels, above {limit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_transform_stops_and_frees_its_worker() {
    let _g = ONE_AT_A_TIME.lock().await;
    let s = start(&["orientation/Landscape_1.jpg"], |c| {
        c.workers = 1;
        c.cache_size_mb = 0;
        c.transform_timeout_ms = 500;
        c.queue_timeout_ms = 20_000;
    })
    .await;
    s.put("anim.gif", &small_animation(44));
    // Several seconds of work at the default limits.
    let t = Instant::now();
    let r = s.get(&s.url("w:2048/el:1", "local:///anim.gif", Some("gif"))).await;
    assert_error(r, 503, "transform-timeout").await;
    let timed_out = t.elapsed();
    // The next request waits for the one worker: it gets it soon after the deadline, not when
    // the abandoned render would have finished.
    let t = Instant::now();
    let r = s.get(&s.url("w:40", "local:///orientation/Landscape_1.jpg", Some("jpg"))).await;
    let waited = t.elapsed();
    eprintln!("timed out after {timed_out:?}; the next request took {waited:?}");
    assert_eq!(r.status(), 200);
    assert!(waited < Duration::from_millis(2500), "the worker stayed busy for {waited:?} after the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crop_of_an_enlarged_source_holds_only_the_crop() {
    let _g = ONE_AT_A_TIME.lock().await;
    let s = start(&["orientation/Landscape_1.jpg"], |c| c.cache_size_mb = 0).await;
    let src = "local:///orientation/Landscape_1.jpg";
    // Warm up (libvips, the source cache) so the measurement below is the transform alone.
    assert_eq!(s.get(&s.url("w:100/rot:90", src, Some("jpg"))).await.status(), 200);
    // 1800x1200: the 300x200 crop enlarged 8x to 2400x1600, then rotated. The whole source
    // enlarged 8x would be 14400x9600 (138 MP, over 400 MB of pixels).
    for opts in ["c:300:200/mw:2400/rot:90", "c:300:200/mw:2400/fl:0:1", "c:300:200:nowe/mw:2400/rot:270"] {
        let base = reset_peak_rss();
        let t = Instant::now();
        let r = s.get(&s.url(opts, src, Some("jpg"))).await;
        let line = status_line(&r);
        assert_eq!(r.status(), 200, "{opts}: {line}");
        let b = r.bytes().await.unwrap();
        let grew_mb = (rss_kb("VmHWM:").saturating_sub(base)) / 1024;
        eprintln!("{opts}: {line}, {} bytes in {:?}, peak RSS +{grew_mb} MB", b.len(), t.elapsed());
        let img = decode(&b);
        let want = if opts.contains("rot:") { (1600, 2400) } else { (2400, 1600) };
        assert_eq!(img.dimensions(), want, "{opts}");
        assert!(grew_mb < 150, "{opts}: peak RSS grew by {grew_mb} MB");
    }
    // A smart crop needs its whole input in memory: when that input (the source enlarged 8x)
    // is above the output limit, a clear 422 instead of 400 MB.
    let base = reset_peak_rss();
    let r = s.get(&s.url("c:300:200:sm/mw:2400", src, Some("jpg"))).await;
    let grew_mb = (rss_kb("VmHWM:").saturating_sub(base)) / 1024;
    eprintln!("c:300:200:sm/mw:2400: {}, peak RSS +{grew_mb} MB", status_line(&r));
    assert_error(r, 422, "output-too-large").await;
    // Within the limit, the smart crop still works.
    let r = s.get(&s.url("c:300:200:sm/mw:600", src, Some("jpg"))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (600, 400));
}
