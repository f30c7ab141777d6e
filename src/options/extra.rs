//! The imgproxy options beyond the core set (issue #20): `zoom`, `extend_aspect_ratio`,
//! `resizing_algorithm`, `enforce_thumbnail`, `pixelate`, `skip_processing`, `raw`, `filename`
//! and `return_attachment`, with imgproxy's argument forms.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::Serialize;

use super::args::{parse_bool, parse_extend, parse_f64, parse_u32, single, MAX_DIMENSION};
use super::{bad, Gravity, OptionError};

/// libvips' resampling kernels (`ra`); Lanczos3 is libvips' and imgproxy's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResizingAlgorithm {
    Nearest,
    Linear,
    Cubic,
    Lanczos2,
    #[default]
    Lanczos3,
}

impl ResizingAlgorithm {
    /// The libvips `VipsKernel` nickname.
    pub fn kernel(self) -> &'static str {
        match self {
            ResizingAlgorithm::Nearest => "nearest",
            ResizingAlgorithm::Linear => "linear",
            ResizingAlgorithm::Cubic => "cubic",
            ResizingAlgorithm::Lanczos2 => "lanczos2",
            ResizingAlgorithm::Lanczos3 => "lanczos3",
        }
    }
}

/// imgproxy's image type names (`skip_processing`): `jpg` is an alias of `jpeg`.
pub const SKIP_FORMATS: [&str; 12] =
    ["jpeg", "jpg", "png", "webp", "gif", "avif", "heic", "tiff", "jxl", "bmp", "ico", "svg"];

/// The options of this file, with imgproxy's defaults (part of the cache key through
/// [`super::Options`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Extra {
    /// `z`: width and height factors applied to the resulting size (not to offsets or padding).
    pub zoom: (f64, f64),
    /// `exar`: extend the canvas to the requested aspect ratio (gravity of the image on it).
    pub extend_aspect_ratio: Option<Gravity>,
    pub resizing_algorithm: ResizingAlgorithm,
    /// `eth`: decode the embedded thumbnail (HEIF/AVIF) when there is one.
    pub enforce_thumbnail: bool,
    /// `pix`: pixelate block size in output pixels (0 and 1: off).
    pub pixelate: u32,
    /// `skp`: source formats (imgproxy names, `jpg` → `jpeg`) served as they are.
    pub skip_processing: Vec<String>,
    /// `raw`: the source streamed untouched (no worker, no transform).
    pub raw: bool,
    /// `fn`: the stem of the `Content-Disposition` filename.
    pub filename: Option<String>,
    /// `att`: `Content-Disposition: attachment` instead of `inline`.
    pub return_attachment: bool,
}

impl Default for Extra {
    fn default() -> Self {
        Extra {
            zoom: (1.0, 1.0),
            extend_aspect_ratio: None,
            resizing_algorithm: ResizingAlgorithm::Lanczos3,
            enforce_thumbnail: false,
            pixelate: 0,
            skip_processing: Vec::new(),
            raw: false,
            filename: None,
            return_attachment: false,
        }
    }
}

/// Go's `base64.RawURLEncoding`, as imgproxy decodes `fn:…:t` (after trimming `=`).
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

fn zoom_factor(name: &str, s: &str) -> Result<f64, OptionError> {
    let z = parse_f64(name, s, 0.0, MAX_DIMENSION as f64)?;
    if z <= 0.0 {
        return Err(bad(name, "must be greater than 0"));
    }
    Ok(z)
}

/// Applies one of this file's options (`key` canonical, `name` as written); false when `key` is
/// not one of them.
pub(super) fn apply(e: &mut Extra, key: &str, name: &str, a: &[&str]) -> Result<bool, OptionError> {
    match key {
        "zoom" => {
            // `z:{xy}` or `z:{x}:{y}` (imgproxy: both positive, non-zero).
            super::args::expect_args(name, a, 1, 2)?;
            let x = zoom_factor(name, a[0])?;
            let y = if a.len() > 1 { zoom_factor(name, a[1])? } else { x };
            e.zoom = (x, y);
        }
        "extend_aspect_ratio" => e.extend_aspect_ratio = parse_extend(name, a)?,
        "resizing_algorithm" => {
            e.resizing_algorithm = match single(name, a)? {
                "nearest" => ResizingAlgorithm::Nearest,
                "linear" => ResizingAlgorithm::Linear,
                "cubic" => ResizingAlgorithm::Cubic,
                "lanczos2" => ResizingAlgorithm::Lanczos2,
                "lanczos3" => ResizingAlgorithm::Lanczos3,
                s => return Err(bad(name, format!("`{s}` is not one of nearest, linear, cubic, lanczos2, lanczos3"))),
            }
        }
        "enforce_thumbnail" => e.enforce_thumbnail = parse_bool(name, single(name, a)?)?,
        "pixelate" => e.pixelate = parse_u32(name, single(name, a)?, MAX_DIMENSION)?,
        "skip_processing" => {
            // imgproxy appends: `skp:jpg/skp:png` skips both.
            for f in a {
                if !SKIP_FORMATS.contains(f) {
                    return Err(bad(name, format!("`{f}` is not an image format ({})", SKIP_FORMATS.join(", "))));
                }
                let f = if *f == "jpg" { "jpeg" } else { f };
                if !e.skip_processing.iter().any(|s| s == f) {
                    e.skip_processing.push(f.to_string());
                }
            }
        }
        "raw" => e.raw = parse_bool(name, single(name, a)?)?,
        "filename" => {
            // `fn:{name}` or `fn:{base64url name}:{encoded}`.
            super::args::expect_args(name, a, 1, 2)?;
            let encoded = match a.get(1) {
                Some(f) if !f.is_empty() => parse_bool(name, f)?,
                _ => false,
            };
            let stem = if encoded {
                let raw = B64
                    .decode(a[0].trim_end_matches('='))
                    .map_err(|_| bad(name, "the filename is not URL-safe base64"))?;
                String::from_utf8(raw).map_err(|_| bad(name, "the decoded filename is not UTF-8"))?
            } else {
                a[0].to_string()
            };
            if stem.chars().any(char::is_control) {
                return Err(bad(name, "the filename has control characters"));
            }
            e.filename = (!stem.is_empty()).then_some(stem);
        }
        "return_attachment" => e.return_attachment = parse_bool(name, single(name, a)?)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// The `Content-Disposition` value (RFC 6266): `inline` or `attachment`, `filename="…"` with an
/// ASCII fallback (non-ASCII, `"` and `\` replaced by `_`) and, when the name is not plain
/// ASCII, `filename*=UTF-8''…` (RFC 5987 percent-encoding).
pub fn content_disposition(stem: Option<&str>, ext: &str, attachment: bool) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    // RFC 5987 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
    const ATTR: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let kind = if attachment { "attachment" } else { "inline" };
    let name = format!("{}.{ext}", stem.filter(|s| !s.is_empty()).unwrap_or("image"));
    let plain = |c: char| c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\';
    let fallback: String = name.chars().map(|c| if plain(c) { c } else { '_' }).collect();
    if fallback == name {
        format!("{kind}; filename=\"{name}\"")
    } else {
        format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{}", utf8_percent_encode(&name, ATTR))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_encoding() {
        assert_eq!(content_disposition(None, "jpg", false), "inline; filename=\"image.jpg\"");
        assert_eq!(content_disposition(Some("cat"), "webp", true), "attachment; filename=\"cat.webp\"");
        assert_eq!(
            content_disposition(Some("été \"x\""), "png", false),
            "inline; filename=\"_t_ _x_.png\"; filename*=UTF-8''%C3%A9t%C3%A9%20%22x%22.png"
        );
        assert_eq!(
            content_disposition(Some("a\\b"), "gif", true),
            "attachment; filename=\"a_b.gif\"; filename*=UTF-8''a%5Cb.gif"
        );
    }
}

#[cfg(test)]
mod parse_tests {
    use super::super::{parse, Options, Presets};
    use super::*;

    fn p(s: &str) -> Result<Options, OptionError> {
        let segs: Vec<&str> = s.split('/').filter(|x| !x.is_empty()).collect();
        parse(&segs, None, &Presets::default())
    }

    #[test]
    fn argument_forms() {
        assert_eq!(p("z:1.5").unwrap().extra.zoom, (1.5, 1.5));
        assert_eq!(p("zoom:2:0.5").unwrap().extra.zoom, (2.0, 0.5));
        assert_eq!(p("exar:1").unwrap().extra.extend_aspect_ratio, Some(Gravity::default()));
        let g = p("extend_ar:t:so:0:5").unwrap().extra.extend_aspect_ratio.unwrap();
        assert_eq!((g.kind, g.y), (super::super::GravityKind::So, 5.0));
        assert_eq!(p("extend_aspect_ratio:f").unwrap().extra.extend_aspect_ratio, None);
        assert_eq!(p("ra:nearest").unwrap().extra.resizing_algorithm, ResizingAlgorithm::Nearest);
        assert_eq!(p("resizing_algorithm:lanczos2").unwrap().extra.resizing_algorithm, ResizingAlgorithm::Lanczos2);
        assert!(p("eth:t").unwrap().extra.enforce_thumbnail);
        assert!(!p("enforce_thumbnail:FALSE").unwrap().extra.enforce_thumbnail);
        assert_eq!(p("pix:8").unwrap().extra.pixelate, 8);
        assert_eq!(p("pixelate:0").unwrap().extra.pixelate, 0);
        assert_eq!(p("skp:jpg:png/skip_processing:jpeg:webp").unwrap().extra.skip_processing, ["jpeg", "png", "webp"]);
        assert!(p("raw:1").unwrap().extra.raw);
        assert_eq!(p("fn:cat").unwrap().extra.filename.as_deref(), Some("cat"));
        // base64url of "été 1" (`=` padding trimmed as imgproxy does).
        assert_eq!(p("fn:w6l0w6kgMQ:t").unwrap().extra.filename.as_deref(), Some("été 1"));
        assert_eq!(p("filename:w6l0w6kgMQ==:1").unwrap().extra.filename.as_deref(), Some("été 1"));
        assert_eq!(p("fn:w6l0w6kgMQ:f").unwrap().extra.filename.as_deref(), Some("w6l0w6kgMQ"));
        assert_eq!(p("fn:abc:").unwrap().extra.filename.as_deref(), Some("abc"));
        assert!(p("att:1").unwrap().extra.return_attachment);
        assert!(p("return_attachment:true").unwrap().extra.return_attachment);
        let s = p("msr:1.5/msfs:1000/maf:3/mafr:0.5/mrd:200").unwrap().security;
        assert_eq!(s.max_src_resolution, Some(1.5));
        assert_eq!(s.max_src_file_size, Some(1000));
        assert_eq!(s.max_animation_frames, Some(3));
        assert_eq!(s.max_animation_frame_resolution, Some(0.5));
        assert_eq!(s.max_result_dimension, Some(200));
        // 0 is imgproxy's "no limit", but still a security option (refused when not allowed).
        let s = p("msfs:0/mrd:0/mafr:0").unwrap().security;
        assert!(s.any() && s.src_file_size().is_none());
        assert!(p("max_src_resolution:0").unwrap().security.any());
        assert_eq!(p("").unwrap().extra, Extra::default());
    }

    #[test]
    fn bad_arguments_are_invalid_option() {
        for (s, name) in [
            ("z:0", "z"),
            ("z:-1", "z"),
            ("z::2", "z"),
            ("z:1:2:3", "z"),
            ("zoom:abc", "zoom"),
            ("exar:maybe", "exar"),
            ("exar:1:sm", "exar"),
            ("ra:bicubic", "ra"),
            ("ra:nearest:1", "ra"),
            ("eth:yes", "eth"),
            ("pix:-1", "pix"),
            ("pix:1.5", "pix"),
            ("pix:70000", "pix"),
            ("skp:bmpx", "skp"),
            ("skp:jpg::png", "skp"),
            ("skp:JPG", "skp"),
            ("raw:2", "raw"),
            ("fn:a:b:c", "fn"),
            ("fn:***:t", "fn"),
            ("fn:_w:t", "fn"),
            ("fn:AA:t", "fn"),
            ("fn:abc:maybe", "fn"),
            ("att:x", "att"),
            ("msr:-1", "msr"),
            ("msr:abc", "msr"),
            ("msfs:-5", "msfs"),
            ("msfs:1.5", "msfs"),
            ("maf:0", "maf"),
            ("maf:-2", "maf"),
            ("mafr:x", "mafr"),
            ("mrd:-1", "mrd"),
            ("mrd:70000", "mrd"),
            ("max_result_dimension:1:2", "max_result_dimension"),
        ] {
            let e = p(s).unwrap_err();
            assert_eq!(e.code(), "invalid-option", "{s}: {e}");
            assert!(e.to_string().contains(&format!("`{name}`")), "{s}: {e}");
        }
    }
}
