//! JPEG XL output (issue #20) against the real server: negotiated only for an `Accept` that lists
//! both `image/jxl` and `image/avif` (Chromium 156, Safari 17+), never for one without it, never
//! for an animation (libvips 8.14's jxlsave writes one frame); `f:jxl`, `.jxl`, `fq:jxl`,
//! Save-Data and `IMAGO_ENABLE_JXL`; and no EXIF/GPS in a JPEG XL whatever `strip_metadata` says.

mod common;

use common::*;
use imago::transform::{probe, EncodeSettings, SourceInfo};

/// Debian's Chromium 156 (`tests/browser/jxl-test.mjs` reads it from the browser).
const CHROMIUM_JXL: &str = "image/jxl,image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
const SAFARI17: &str = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,\
                        image/svg+xml,image/*;q=0.8,*/*;q=0.5";
const OLD: &str = "image/png,image/*;q=0.8,*/*;q=0.5";
const PHOTO: &str = "local:///nasa_large.jpg";

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// The header facts of a served JPEG XL (panics when it is not one).
fn jxl_info(b: &[u8]) -> SourceInfo {
    assert!(jxl_dimensions(b).is_some(), "not a decodable JPEG XL ({} bytes)", b.len());
    probe(b, &EncodeSettings::from_config(&imago::config::RawConfig::default())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jpeg_xl_only_for_an_accept_that_lists_it() {
    let s = start(&["nasa_large.jpg", "rose_alpha.png", "earth_anim.gif"], |c| c.auto_quality = false).await;
    let cases = [
        (PHOTO, CHROMIUM_JXL, "image/jxl"),
        (PHOTO, SAFARI17, "image/jxl"),
        (PHOTO, "IMAGE/JXL;q=0.9, image/avif", "image/jxl"),
        (PHOTO, CHROME, "image/avif"),
        (PHOTO, "image/jxl;q=0,image/avif,image/webp", "image/avif"),
        // JPEG XL without AVIF: classed by the rest (no such browser ships; nothing is assumed).
        (PHOTO, "image/jxl,image/webp", "image/webp"),
        (PHOTO, "image/jxl", "image/jpeg"),
        (PHOTO, OLD, "image/jpeg"),
        ("local:///rose_alpha.png", CHROMIUM_JXL, "image/jxl"),
        // Animations: jxlsave (libvips 8.14) writes one frame, so never JPEG XL.
        ("local:///earth_anim.gif", CHROMIUM_JXL, "image/webp"),
        ("local:///earth_anim.gif", SAFARI17, "image/webp"),
    ];
    for (src, accept, want) in cases {
        for url in [s.url("w:200", src, None), s.url("w:200/f:auto", src, None)] {
            let r = s.get_with(&url, &[("accept", accept)]).await;
            assert_eq!(r.status(), 200, "{src} with {accept}");
            assert_eq!(header(&r, "content-type"), want, "{src} with {accept}");
            assert!(header(&r, "vary").contains("Accept"), "{src}");
            if want == "image/jxl" {
                assert_eq!(header(&r, "content-disposition"), "inline; filename=\"image.jxl\"");
                let b = r.bytes().await.unwrap();
                let info = jxl_info(&b);
                assert_eq!(info.width, 200, "{src}");
                assert_eq!(info.has_alpha, src.ends_with(".png"), "{src}: alpha kept, none invented");
            }
        }
    }
    // The animation keeps its frames as WebP; asked for JPEG XL explicitly it gets one frame.
    let r = s.get_with(&s.url("w:100/f:jxl", "local:///earth_anim.gif", None), &[("accept", CHROMIUM_JXL)]).await;
    assert_eq!(header(&r, "content-type"), "image/jxl");
    let info = jxl_info(&r.bytes().await.unwrap());
    assert_eq!((info.width, info.height, info.pages), (100, 100, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_jxl_format_extension_quality_and_switch() {
    let s = start(&["nasa_large.jpg"], |c| c.auto_quality = false).await;
    // f:jxl and .jxl: JPEG XL for any client, no Accept in Vary.
    for url in [s.url("w:300/f:jxl", PHOTO, None), s.url("w:300", PHOTO, Some("jxl"))] {
        let r = s.get_with(&url, &[("accept", OLD)]).await;
        assert_eq!(header(&r, "content-type"), "image/jxl", "{url}");
        assert!(!header(&r, "vary").contains("Accept"), "{url}");
        assert!(header(&r, "x-imago-variant").starts_with("jxl 300x"), "{}", header(&r, "x-imago-variant"));
        assert_eq!(jxl_info(&r.bytes().await.unwrap()).width, 300);
    }
    // Quality: the default, fq:jxl, q:, and the Save-Data step (X-Imago-Variant "jxl 300x197 q75").
    let q = |r: &reqwest::Response| header(r, "x-imago-variant").rsplit(" q").next().unwrap_or("").to_string();
    let default_q = imago::config::RawConfig::default().jxl_quality;
    let r = s.get_with(&s.url("w:300", PHOTO, None), &[("accept", CHROMIUM_JXL)]).await;
    assert_eq!(q(&r), default_q.to_string());
    let r = s.get_with(&s.url("w:300/fq:jxl:55:avif:40", PHOTO, None), &[("accept", CHROMIUM_JXL)]).await;
    assert_eq!((header(&r, "content-type").as_str(), q(&r).as_str()), ("image/jxl", "55"));
    let r = s.get_with(&s.url("w:300/q:66", PHOTO, None), &[("accept", CHROMIUM_JXL)]).await;
    assert_eq!(q(&r), "66");
    let r = s.get_with(&s.url("w:300", PHOTO, None), &[("accept", CHROMIUM_JXL), ("save-data", "on")]).await;
    assert_eq!(q(&r), (default_q - 15).to_string());
    // fq:jxl takes a quality of 1-100 like the other formats.
    assert_error(s.get(&s.url("w:300/fq:jxl:101", PHOTO, None)).await, 400, "invalid-option").await;
    // IMAGO_ENABLE_JXL=false: negotiation never picks it; f:jxl still works.
    let off = start(&["nasa_large.jpg"], |c| {
        c.auto_quality = false;
        c.enable_jxl = false;
    })
    .await;
    let r = off.get_with(&off.url("w:300/f:auto", PHOTO, None), &[("accept", CHROMIUM_JXL)]).await;
    assert_eq!(header(&r, "content-type"), "image/avif");
    let r = off.get_with(&off.url("w:300/f:jxl", PHOTO, None), &[("accept", OLD)]).await;
    assert_eq!(header(&r, "content-type"), "image/jxl");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jpeg_xl_never_carries_gps_or_exif() {
    let s = start(&["gps.jpg"], |c| c.auto_quality = false).await;
    let src = fixture("gps.jpg");
    assert!(contains(&src, b"Exif\0\0") && contains(&src, b"GPS"), "fixture has GPS");
    // Stripping on (default), off (sm:0), and keep-copyright: libvips 8.14's jxlsave writes a bare
    // codestream (pixels and colour encoding/ICC), so none of them can carry EXIF or XMP.
    for opts in ["w:400", "w:400/sm:0", "w:400/kcr:1", "w:400/sm:0/scp:0"] {
        for (url, accept) in
            [(s.url(opts, "local:///gps.jpg", Some("jxl")), OLD), (s.url(opts, "local:///gps.jpg", None), CHROMIUM_JXL)]
        {
            let r = s.get_with(&url, &[("accept", accept)]).await;
            assert_eq!(header(&r, "content-type"), "image/jxl", "{opts}");
            let b = r.bytes().await.unwrap();
            assert_eq!(&b[..2], &[0xFF, 0x0A], "{opts}: a bare codestream, no container boxes");
            for marker in [&b"Exif"[..], b"EXIF", b"GPS", b"xmpmeta", b"NIKON", b"exif:", b"brob"] {
                assert!(!contains(&b, marker), "{opts}: JPEG XL has {:?}", String::from_utf8_lossy(marker));
            }
            assert!(!jxl_info(&b).has_metadata, "{opts}");
        }
    }
    // Control: the same sm:0 as JPEG keeps the EXIF, so the markers above can be found.
    let b = s.get(&s.url("w:400/sm:0", "local:///gps.jpg", Some("jpg"))).await.bytes().await.unwrap();
    assert!(contains(&b, b"Exif") && contains(&b, b"GPS"));
}

#[test]
fn jxl_effort_outside_libvips_range_is_refused() {
    // libvips 8.14's jxlsave takes effort 3-9; 1 or 2 would be ignored with a GLib warning and
    // encode at its default 7 (several times slower), so the configuration refuses them.
    let raw = || imago::config::RawConfig {
        key: imago::config::List::from_strs(&[KEY]),
        salt: imago::config::List::from_strs(&[SALT]),
        ..Default::default()
    };
    for bad in [0u8, 1, 2, 10] {
        let e = imago::config::RawConfig { jxl_effort: bad, ..raw() }.validate(false).unwrap_err().to_string();
        assert!(e.contains("IMAGO_JXL_EFFORT"), "{bad}: {e}");
    }
    for good in [3u8, 4, 9] {
        assert!(imago::config::RawConfig { jxl_effort: good, ..raw() }.validate(false).is_ok(), "{good}");
    }
    let e = imago::config::RawConfig { jxl_quality: 0, ..raw() }.validate(false).unwrap_err().to_string();
    assert!(e.contains("IMAGO_JXL_QUALITY"), "{e}");
}
