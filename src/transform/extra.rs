//! The transform side of imgproxy's extra options (issue #20): the per-URL security limits,
//! `skip_processing`, `enforce_thumbnail`, `resizing_algorithm` and `pixelate`.

use std::borrow::Cow;

use super::{EncodeSettings, Rendered, SourceInfo, TransformError};
use crate::options::{Format, FormatChoice, Options, ResizingAlgorithm, SecurityLimits};
use crate::vips::{Img, Kernel};

/// The server's limits lowered by the URL's security options (never raised).
pub(super) fn lowered<'a>(enc: &'a EncodeSettings, o: &Options) -> Cow<'a, EncodeSettings> {
    let s = &o.security;
    if !s.any() {
        return Cow::Borrowed(enc);
    }
    let mut e = enc.clone();
    e.max_src_megapixels = SecurityLimits::lower_f64(enc.max_src_megapixels, s.max_src_resolution);
    if let Some(f) = s.max_animation_frames {
        e.max_animation_frames = e.max_animation_frames.min(f);
    }
    if let Some(d) = s.max_result_dimension.filter(|d| *d > 0) {
        e.max_output_dimension = e.max_output_dimension.min(d);
    }
    Cow::Owned(e)
}

/// `mafr`: one frame of an animation above the URL's per-frame megapixels is refused like a
/// source above the resolution limit (`image-too-large`).
pub(super) fn check_frame(info: &SourceInfo, o: &Options) -> Result<(), TransformError> {
    if let Some(limit) = o.security.max_animation_frame_resolution.filter(|l| *l > 0.0) {
        let mp = info.width as f64 * info.height as f64 / 1e6;
        if mp > limit {
            return Err(TransformError::TooManyPixels { megapixels: mp, limit });
        }
    }
    Ok(())
}

/// `skp`: the source bytes as they are, when its format is listed and the output format is not
/// set or is the source's (imgproxy's rule). Only formats imago can label are passed through.
pub(super) fn skip(buf: &[u8], info: &SourceInfo, o: &Options) -> Option<Rendered> {
    if !o.extra.skip_processing.iter().any(|f| f == info.format) {
        return None;
    }
    let f = Format::parse(info.format)?;
    match o.format {
        FormatChoice::Explicit(out) if out != f => return None,
        _ => {}
    }
    Some(Rendered {
        bytes: buf.to_vec(),
        format: f,
        width: info.width,
        height: info.height,
        quality: 0,
        source: info.clone(),
        original: true,
        decode_ms: 0.0,
        encode_ms: 0.0,
    })
}

/// `eth`: the loader option that decodes a HEIF/AVIF file's embedded thumbnail (libvips
/// `heifload` `thumbnail`; the main image when there is none). imgproxy reads embedded
/// thumbnails of HEIF/AVIF only; for other formats the option changes nothing, as there.
pub(super) fn thumbnail_load(format: &str, o: &Options) -> Option<&'static str> {
    (o.extra.enforce_thumbnail && matches!(format, "avif" | "heic")).then_some("thumbnail=true")
}

/// With `eth`, the upright size of what the thumbnail loader decodes (the embedded thumbnail
/// when there is one), so the plan starts from it as imgproxy's does.
pub(super) fn thumbnail_size(buf: &[u8], info: &SourceInfo, o: &Options) -> Option<(u32, u32)> {
    let lo = thumbnail_load(info.format, o)?;
    let img = Img::from_buffer(buf, lo).ok()?;
    Some((img.width(), img.height()))
}

/// `ra` as a libvips kernel.
pub(super) fn kernel(o: &Options) -> Kernel {
    match o.extra.resizing_algorithm {
        ResizingAlgorithm::Nearest => Kernel::Nearest,
        ResizingAlgorithm::Linear => Kernel::Linear,
        ResizingAlgorithm::Cubic => Kernel::Cubic,
        ResizingAlgorithm::Lanczos2 => Kernel::Lanczos2,
        ResizingAlgorithm::Lanczos3 => Kernel::Lanczos3,
    }
}

/// True when `ra` asks for another kernel than libvips' thumbnail uses (Lanczos3): the image is
/// then decoded and resized with `vips_resize` and that kernel.
pub(super) fn custom_kernel(o: &Options) -> bool {
    o.extra.resizing_algorithm != ResizingAlgorithm::Lanczos3
}

/// `pix`: blocks of `n×n` pixels (imgproxy's: mirror-extend to a multiple of `n`, box-shrink,
/// nearest-zoom, cut back).
pub(super) fn pixelate<'a>(img: Img<'a>, n: u32) -> Result<Img<'a>, String> {
    let n = n.min(img.width().max(img.height()));
    if n <= 1 {
        return Ok(img);
    }
    img.pixelate(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::testutil::{enc, fixture, req};
    use crate::transform::{init, render};

    fn pixel(bytes: &[u8], x: u32, y: u32) -> Vec<u8> {
        let img = Img::from_buffer(bytes, "").unwrap();
        let (px, w, _) = img.to_rgb8().unwrap();
        let i = ((y * w + x) * 3) as usize;
        px[i..i + 3].to_vec()
    }

    #[test]
    fn zoom_multiplies_the_result() {
        init(1).unwrap();
        let src = fixture("orientation/Landscape_1.jpg");
        let r = render(&src, &req("w:200/z:1.5", Some("png")), &enc()).unwrap();
        assert_eq!((r.width, r.height), (300, 200));
        let r = render(&src, &req("w:200/zoom:2:0.5/dpr:2", Some("png")), &enc()).unwrap();
        assert_eq!((r.width, r.height), (800, 133));
        // No enlargement past the source without `el`.
        let r = render(&src, &req("z:3", Some("png")), &enc()).unwrap();
        assert_eq!((r.width, r.height), (1800, 1200));
    }

    #[test]
    fn extend_aspect_ratio_pads_to_the_requested_shape() {
        init(1).unwrap();
        let src = fixture("orientation/Landscape_1.jpg");
        // 1800×1200 source fit into 300×300 → 300×200, extended to 300×300 (red bars).
        let r = render(&src, &req("rs:fit:300:300/exar:1/bg:ff0000", Some("png")), &enc()).unwrap();
        assert_eq!((r.width, r.height), (300, 300));
        assert_eq!(pixel(&r.bytes, 150, 10), vec![255, 0, 0]);
        let r = render(&src, &req("rs:fit:300:300/exar:1:no/bg:ff0000", Some("png")), &enc()).unwrap();
        assert_eq!(pixel(&r.bytes, 150, 290), vec![255, 0, 0]);
        // Not on: the fitted size.
        let r = render(&src, &req("rs:fit:300:300/exar:0", Some("png")), &enc()).unwrap();
        assert_eq!((r.width, r.height), (300, 200));
    }

    #[test]
    fn resizing_algorithm_changes_pixels_not_size() {
        init(1).unwrap();
        let src = fixture("rose_alpha.png");
        let base = render(&src, &req("w:37", Some("png")), &enc()).unwrap();
        let near = render(&src, &req("w:37/ra:nearest", Some("png")), &enc()).unwrap();
        let lin = render(&src, &req("w:37/ra:linear", Some("png")), &enc()).unwrap();
        assert_eq!((near.width, near.height), (base.width, base.height));
        assert_eq!((lin.width, lin.height), (base.width, base.height));
        assert_ne!(near.bytes, base.bytes);
        assert_ne!(near.bytes, lin.bytes);
        let j = fixture("orientation/Landscape_1.jpg");
        let a = render(&j, &req("w:97/ra:nearest", Some("png")), &enc()).unwrap();
        let b = render(&j, &req("w:97/ra:lanczos3", Some("png")), &enc()).unwrap();
        assert_eq!((a.width, a.height), (b.width, b.height));
        assert_ne!(a.bytes, b.bytes);
    }

    #[test]
    fn pixelate_makes_blocks() {
        init(1).unwrap();
        let src = fixture("orientation/Landscape_1.jpg");
        let r = render(&src, &req("w:300/pix:10", Some("png")), &enc()).unwrap();
        assert_eq!((r.width, r.height), (300, 200));
        let img = Img::from_buffer(&r.bytes, "").unwrap();
        let (px, w, _) = img.to_rgb8().unwrap();
        let at = |x: u32, y: u32| px[((y * w + x) * 3) as usize..((y * w + x) * 3 + 3) as usize].to_vec();
        for (bx, by) in [(0, 0), (100, 50), (290, 190)] {
            for (dx, dy) in [(0, 0), (9, 0), (0, 9), (9, 9), (4, 5)] {
                assert_eq!(at(bx + dx, by + dy), at(bx, by), "block at {bx},{by} +{dx},{dy}");
            }
        }
        let plain = render(&src, &req("w:300", Some("png")), &enc()).unwrap();
        assert_ne!(plain.bytes, r.bytes);
        // 0 and 1 are off.
        assert_eq!(render(&src, &req("w:300/pix:1", Some("png")), &enc()).unwrap().bytes, plain.bytes);
    }

    #[test]
    fn skip_processing_passes_listed_formats_through() {
        init(1).unwrap();
        let src = fixture("orientation/Landscape_1.jpg");
        let r = render(&src, &req("w:100/skp:jpg", None), &enc()).unwrap();
        assert!(r.original);
        assert_eq!((r.bytes.len(), r.format), (src.len(), Format::Jpeg));
        assert_eq!(r.bytes, src);
        // Another listed format, or an explicit other output format: processed.
        assert_eq!(render(&src, &req("w:100/skp:png:webp", None), &enc()).unwrap().width, 100);
        assert_eq!(render(&src, &req("w:100/skp:jpg", Some("png")), &enc()).unwrap().format, Format::Png);
        assert!(render(&src, &req("w:100/skp:jpeg", Some("jpg")), &enc()).unwrap().original);
    }

    #[test]
    fn enforce_thumbnail_without_embedded_thumbnail_is_the_image() {
        init(1).unwrap();
        // An AVIF made from a fixture (libvips writes no embedded thumbnail): eth decodes the
        // primary image, the output is the same as without it.
        let jpg = fixture("orientation/Landscape_1.jpg");
        let avif = render(&jpg, &req("w:300/q:60", Some("avif")), &enc()).unwrap().bytes;
        let a = render(&avif, &req("w:100/eth:1", Some("png")), &enc()).unwrap();
        let b = render(&avif, &req("w:100", Some("png")), &enc()).unwrap();
        assert_eq!((a.width, a.height), (100, 67));
        assert_eq!(a.bytes, b.bytes);
        // JPEG: imgproxy reads no embedded thumbnail either; accepted, same output.
        let a = render(&jpg, &req("w:100/eth:t", Some("png")), &enc()).unwrap();
        assert_eq!(a.bytes, render(&jpg, &req("w:100", Some("png")), &enc()).unwrap().bytes);
    }

    #[test]
    fn enforce_thumbnail_decodes_the_embedded_heif_thumbnail() {
        init(1).unwrap();
        // A HEIC with a 64x42 thumbnail (tests/fixtures/README.md): with eth the source is the
        // thumbnail, so `w:100` without enlarge stays at its 64 px; without eth it is 100 px.
        let heic = fixture("eth_thumbnail.heic");
        let thumb = render(&heic, &req("w:100/eth:1", Some("png")), &enc()).unwrap();
        assert_eq!((thumb.width, thumb.height), (64, 42));
        let primary = render(&heic, &req("w:100", Some("png")), &enc()).unwrap();
        assert_eq!((primary.width, primary.height), (100, 67));
        let off = render(&heic, &req("w:100/eth:0", Some("png")), &enc()).unwrap();
        assert_eq!(off.bytes, primary.bytes);
    }

    #[test]
    fn security_options_lower_limits_with_the_same_errors() {
        init(1).unwrap();
        let src = fixture("orientation/Landscape_1.jpg"); // 1800×1200 = 2.16 MP
        let server = EncodeSettings { max_src_megapixels: 2.0, ..enc() };
        let by_server = render(&src, &req("w:10", None), &server).unwrap_err();
        let by_url = render(&src, &req("w:10/msr:2", None), &enc()).unwrap_err();
        assert_eq!((by_server.code(), by_url.code()), ("image-too-large", "image-too-large"));
        // A URL cannot raise the server's limit.
        assert_eq!(render(&src, &req("w:10/msr:100", None), &server).unwrap_err().code(), "image-too-large");
        assert!(render(&src, &req("w:10/msr:3", None), &enc()).is_ok());
        // Result dimension: same `output-too-large` as the server's limit.
        let server = EncodeSettings { max_output_dimension: 150, ..enc() };
        assert_eq!(render(&src, &req("w:200", None), &server).unwrap_err().code(), "output-too-large");
        assert_eq!(render(&src, &req("w:200/mrd:150", None), &enc()).unwrap_err().code(), "output-too-large");
        assert!(render(&src, &req("w:200/mrd:60000", None), &server).is_err());
        assert!(render(&src, &req("w:150/mrd:150", None), &enc()).is_ok());
        // Animation frames.
        let gif = fixture("earth_anim.gif");
        let frames = crate::transform::probe(&gif, &enc()).unwrap().pages;
        let server = EncodeSettings { max_animation_frames: frames - 1, ..enc() };
        assert_eq!(render(&gif, &req("w:50", Some("gif")), &server).unwrap_err().code(), "too-many-frames");
        let url = format!("w:50/maf:{}", frames - 1);
        assert_eq!(render(&gif, &req(&url, Some("gif")), &enc()).unwrap_err().code(), "too-many-frames");
        let url = format!("w:50/maf:{}", frames + 1000);
        assert_eq!(render(&gif, &req(&url, Some("gif")), &server).unwrap_err().code(), "too-many-frames");
        assert!(render(&gif, &req(&format!("w:50/maf:{frames}"), Some("gif")), &enc()).is_ok());
        assert_eq!(render(&gif, &req("w:50/mafr:0.0001", Some("gif")), &enc()).unwrap_err().code(), "image-too-large");
        assert!(render(&gif, &req("w:50/mafr:100", Some("gif")), &enc()).is_ok());
        // 0 is imgproxy's "no limit" for mafr and mrd.
        assert!(render(&gif, &req("w:50/mafr:0/mrd:0", Some("gif")), &enc()).is_ok());
    }
}
