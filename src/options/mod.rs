//! Processing options: imgproxy's names and aliases parsed into one typed struct.

use std::collections::BTreeMap;

use serde::Serialize;

/// Why an option was refused. The message always names the option.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("unknown option `{0}`")]
    Unknown(String),
    #[error("option `{option}`: {reason}")]
    Invalid { option: String, reason: String },
    #[error("option `{option}`: unknown preset `{preset}`")]
    UnknownPreset { option: String, preset: String },
    #[error("only presets are accepted here, got `{0}`")]
    PresetsOnly(String),
    #[error("option `{0}`: security options are not allowed on this server (IMAGO_ALLOW_SECURITY_OPTIONS)")]
    SecurityDisabled(String),
}

impl OptionError {
    pub fn code(&self) -> &'static str {
        match self {
            OptionError::Unknown(_) => "unknown-option",
            OptionError::Invalid { .. } => "invalid-option",
            // SPEC §4: an unknown preset name is a bad argument of `pr`.
            OptionError::UnknownPreset { .. } => "invalid-option",
            OptionError::PresetsOnly(_) => "presets-only",
            OptionError::SecurityDisabled(_) => "security-options-disabled",
        }
    }
    /// 403 for a security option the server does not allow (as imgproxy), 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            OptionError::SecurityDisabled(_) => 403,
            _ => 400,
        }
    }
}

fn bad(option: &str, reason: impl Into<String>) -> OptionError {
    OptionError::Invalid { option: option.to_string(), reason: reason.into() }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ResizingType {
    #[default]
    Fit,
    Fill,
    FillDown,
    Force,
    Auto,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GravityKind {
    #[default]
    Ce,
    No,
    So,
    Ea,
    We,
    Noea,
    Nowe,
    Soea,
    Sowe,
    /// Smart (libvips attention).
    Sm,
    /// Focus point (`fp:x:y`, fractions of the image).
    Fp,
}

/// Gravity: a compass anchor with pixel offsets, smart, or a focus point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Default)]
pub struct Gravity {
    pub kind: GravityKind,
    pub x: f64,
    pub y: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Avif,
    Gif,
    /// JPEG XL (libvips jxlsave; still images only on libvips 8.14).
    Jxl,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Format::Jpeg,
            "png" => Format::Png,
            "webp" => Format::Webp,
            "avif" => Format::Avif,
            "gif" => Format::Gif,
            "jxl" => Format::Jxl,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Avif => "avif",
            Format::Gif => "gif",
            Format::Jxl => "jxl",
        }
    }
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Avif => "image/avif",
            Format::Gif => "image/gif",
            Format::Jxl => "image/jxl",
        }
    }
    pub fn supports_alpha(self) -> bool {
        !matches!(self, Format::Jpeg)
    }
    pub fn supports_animation(self) -> bool {
        matches!(self, Format::Webp | Format::Gif)
    }
}

/// Output format request: explicit, or negotiated from `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
pub enum FormatChoice {
    /// No `f:` and no extension: negotiated.
    #[default]
    Unset,
    Auto,
    Explicit(Format),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
pub enum Quality {
    #[default]
    Default,
    Fixed(u8),
    Auto,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Crop {
    /// Width in px, or a fraction of the source when < 1; 0 = full.
    pub width: f64,
    pub height: f64,
    pub gravity: Option<Gravity>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Trim {
    pub threshold: f64,
    pub color: Option<[u8; 3]>,
    pub equal_hor: bool,
    pub equal_ver: bool,
}

/// Every processing option, with imgproxy's defaults.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Options {
    pub resizing_type: ResizingType,
    pub width: u32,
    pub height: u32,
    pub min_width: u32,
    pub min_height: u32,
    /// `dpr:` from the URL (None: from the DPR client hint, else 1).
    pub dpr: Option<f64>,
    pub enlarge: bool,
    pub extend: Option<Gravity>,
    pub gravity: Gravity,
    pub crop: Option<Crop>,
    pub trim: Option<Trim>,
    /// top, right, bottom, left
    pub padding: Option<[u32; 4]>,
    pub rotate: u16,
    pub auto_rotate: bool,
    pub flip_h: bool,
    pub flip_v: bool,
    pub background: Option<[u8; 3]>,
    pub blur: f64,
    pub sharpen: f64,
    pub quality: Quality,
    pub format_quality: BTreeMap<Format, u8>,
    pub format: FormatChoice,
    pub strip_metadata: bool,
    pub keep_copyright: bool,
    pub strip_color_profile: bool,
    pub max_bytes: Option<u64>,
    pub cachebuster: Option<String>,
    pub expires: Option<i64>,
    /// zoom, exar, ra, eth, pix, skp, raw, fn, att ([`extra`]).
    pub extra: Extra,
    /// Per-URL security limits ([`security`]).
    pub security: SecurityLimits,
    /// `wm` (src/options/watermark.rs); `None`: no watermark.
    pub watermark: Option<Watermark>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            resizing_type: ResizingType::Fit,
            width: 0,
            height: 0,
            min_width: 0,
            min_height: 0,
            dpr: None,
            enlarge: false,
            extend: None,
            gravity: Gravity::default(),
            crop: None,
            trim: None,
            padding: None,
            rotate: 0,
            auto_rotate: true,
            flip_h: false,
            flip_v: false,
            background: None,
            blur: 0.0,
            sharpen: 0.0,
            quality: Quality::Default,
            format_quality: BTreeMap::new(),
            format: FormatChoice::Unset,
            strip_metadata: true,
            keep_copyright: false,
            strip_color_profile: true,
            max_bytes: None,
            cachebuster: None,
            expires: None,
            extra: Extra::default(),
            security: SecurityLimits::default(),
            watermark: None,
        }
    }
}

mod apply;
mod args;
pub mod extra;
pub mod security;
mod watermark;

pub use apply::apply;
pub use args::MAX_DIMENSION;
pub use extra::{content_disposition, Extra, ResizingAlgorithm};
pub use security::SecurityLimits;
pub use watermark::{Watermark, WatermarkPosition};

/// Named presets from the configuration.
#[derive(Clone, Debug, Default)]
pub struct Presets {
    pub map: BTreeMap<String, String>,
    pub only: bool,
}

/// Every accepted option name (SPEC §4 names and aliases) → canonical name. The vocabulary is
/// the Rust SDK's ([`imago_signing::options::OPTION_NAMES`]): one table for the server and the
/// SDKs, whose TypeScript and Python parsers are held to it by the shared test vectors.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    imago_signing::options::lookup_url_name(name).map(|(slot, _)| imago_signing::options::OPTION_NAMES[slot].0)
}

/// Parses option segments (with presets expanded) into [`Options`]. The `extension` from the URL
/// (`@ext` / `.ext`) sets the output format and overrides any `f` option (SPEC §3.3).
pub fn parse(segments: &[&str], extension: Option<&str>, presets: &Presets) -> Result<Options, OptionError> {
    let mut o = Options::default();
    if let Some(def) = presets.map.get("default") {
        apply_preset(&mut o, "pr", "default", def, presets, 0)?;
    }
    for seg in segments {
        let (name, _) = seg.split_once(':').unwrap_or((seg, ""));
        if presets.only && !matches!(name, "pr" | "preset") {
            return Err(OptionError::PresetsOnly((*seg).to_string()));
        }
        apply(&mut o, seg, presets, 0)?;
    }
    if let Some(ext) = extension {
        o.format = if ext == "auto" {
            FormatChoice::Auto
        } else {
            FormatChoice::Explicit(Format::parse(ext).ok_or_else(|| {
                bad("extension", format!("`{ext}` is not an output format (jpg, png, webp, avif, gif, jxl, auto)"))
            })?)
        };
    }
    Ok(o)
}

fn apply_preset(
    o: &mut Options,
    option: &str,
    name: &str,
    body: &str,
    presets: &Presets,
    depth: u8,
) -> Result<(), OptionError> {
    if depth > 4 {
        return Err(bad(option, format!("preset `{name}` nests too deeply")));
    }
    for seg in body.split('/').filter(|s| !s.is_empty()) {
        apply(o, seg, presets, depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Options, OptionError> {
        let segs: Vec<&str> = s.split('/').filter(|x| !x.is_empty()).collect();
        parse(&segs, None, &Presets::default())
    }

    #[test]
    fn resize_and_aliases() {
        let o = p("rs:fill:300:400:1:1").unwrap();
        assert_eq!((o.resizing_type, o.width, o.height, o.enlarge), (ResizingType::Fill, 300, 400, true));
        assert_eq!(o.extend, Some(Gravity::default()));
        let o = p("resize:fill-down:10").unwrap();
        assert_eq!((o.resizing_type, o.width, o.height), (ResizingType::FillDown, 10, 0));
        assert_eq!(p("s:5:6").unwrap().height, 6);
        assert!(p("size:5:6:t").unwrap().enlarge);
        assert_eq!(p("rt:force").unwrap().resizing_type, ResizingType::Force);
        assert_eq!(p("resizing_type:auto").unwrap().resizing_type, ResizingType::Auto);
        assert_eq!(p("width:7/height:8").unwrap().height, 8);
        assert_eq!(p("w:7/h:8/mw:3/mh:4").unwrap().min_height, 4);
        assert_eq!(p("min-width:3").unwrap().min_width, 3);
        assert_eq!(p("dpr:2.5").unwrap().dpr, Some(2.5));
        assert!(p("el:1").unwrap().enlarge);
        assert!(p("enlarge:true").unwrap().enlarge);
    }

    #[test]
    fn gravity_variants() {
        assert_eq!(p("g:sm").unwrap().gravity.kind, GravityKind::Sm);
        let g = p("gravity:noea:10:20").unwrap().gravity;
        assert_eq!((g.kind, g.x, g.y), (GravityKind::Noea, 10.0, 20.0));
        let g = p("g:fp:0.25:0.75").unwrap().gravity;
        assert_eq!((g.kind, g.x, g.y), (GravityKind::Fp, 0.25, 0.75));
        for bad in ["g:up", "g:fp:2:0", "g:fp:0.5", "g:sm:1", "g:no:1:2:3", "g"] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert_eq!(p("ex:1:so").unwrap().extend.unwrap().kind, GravityKind::So);
        assert!(p("ex:1:sm").is_err());
    }

    #[test]
    fn crop_trim_padding() {
        let c = p("c:100:50:nowe").unwrap().crop.unwrap();
        assert_eq!((c.width, c.height, c.gravity.unwrap().kind), (100.0, 50.0, GravityKind::Nowe));
        assert_eq!(p("crop:0.5:0.5").unwrap().crop.unwrap().width, 0.5);
        assert_eq!(p("c:0:0").unwrap().crop, None);
        let t = p("t:10:ff0000:1:0").unwrap().trim.unwrap();
        assert_eq!((t.threshold, t.color, t.equal_hor, t.equal_ver), (10.0, Some([255, 0, 0]), true, false));
        assert_eq!(p("pd:10").unwrap().padding, Some([10; 4]));
        assert_eq!(p("padding:1:2").unwrap().padding, Some([1, 2, 1, 2]));
        assert_eq!(p("pd:1:2:3").unwrap().padding, Some([1, 2, 3, 2]));
        assert_eq!(p("pd:1:2:3:4").unwrap().padding, Some([1, 2, 3, 4]));
    }

    #[test]
    fn misc_options() {
        assert_eq!(p("rot:270").unwrap().rotate, 270);
        for bad in ["rot:-90", "rot:45", "rot:360", "rot:+90"] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert!(!p("ar:0").unwrap().auto_rotate);
        let o = p("fl:1:1").unwrap();
        assert!(o.flip_h && o.flip_v);
        assert_eq!(p("bg:255:0:10").unwrap().background, Some([255, 0, 10]));
        assert_eq!(p("bg:fff").unwrap().background, Some([255, 255, 255]));
        assert_eq!(p("background:00ff80").unwrap().background, Some([0, 255, 128]));
        assert_eq!(p("bl:2").unwrap().blur, 2.0);
        assert_eq!(p("sh:0.5").unwrap().sharpen, 0.5);
        assert_eq!(p("q:80").unwrap().quality, Quality::Fixed(80));
        assert_eq!(p("quality:auto").unwrap().quality, Quality::Auto);
        let o = p("fq:webp:70:avif:50").unwrap();
        assert_eq!(o.format_quality.get(&Format::Avif), Some(&50));
        assert_eq!(p("f:webp").unwrap().format, FormatChoice::Explicit(Format::Webp));
        assert_eq!(p("ext:jpg").unwrap().format, FormatChoice::Explicit(Format::Jpeg));
        assert_eq!(p("format:auto").unwrap().format, FormatChoice::Auto);
        assert!(!p("sm:0").unwrap().strip_metadata);
        assert!(p("kcr:1").unwrap().keep_copyright);
        assert!(!p("scp:false").unwrap().strip_color_profile);
        assert_eq!(p("mb:1000").unwrap().max_bytes, Some(1000));
        assert_eq!(p("cb:abc").unwrap().cachebuster.as_deref(), Some("abc"));
        assert_eq!(p("exp:1700000000").unwrap().expires, Some(1_700_000_000));
    }

    #[test]
    fn errors_name_the_option() {
        for (s, name) in [
            ("w:-1", "w"),
            ("w:abc", "w"),
            ("w:70000", "w"),
            ("h:1.5", "h"),
            ("rs:stretch:1:1", "rs"),
            ("el:maybe", "el"),
            ("q:101", "q"),
            ("dpr:0", "dpr"),
            ("dpr:11", "dpr"),
            ("bg:gg0000", "bg"),
            ("bg:1:2", "bg"),
            ("fq:webp", "fq"),
            ("fq:bmp:80", "fq"),
            ("f:bmp", "f"),
            ("mb:-5", "mb"),
            ("exp:soon", "exp"),
            ("bl:-1", "bl"),
            ("pd:1:2:3:4:5", "pd"),
            ("rs", "rs"),
            ("w:1:2", "w"),
        ] {
            let e = p(s).unwrap_err();
            assert_eq!(e.code(), "invalid-option", "{s}");
            assert!(e.to_string().contains(&format!("`{name}`")), "{s}: {e}");
        }
        let e = p("zoomx:2").unwrap_err();
        assert_eq!((e.code(), e.to_string()), ("unknown-option", "unknown option `zoomx`".to_string()));
        let e = p("pr:nope").unwrap_err();
        assert_eq!((e.code(), e.to_string()), ("invalid-option", "option `pr`: unknown preset `nope`".to_string()));
    }

    #[test]
    fn presets_and_presets_only() {
        let mut presets = Presets::default();
        presets.map.insert("default".into(), "q:70".into());
        presets.map.insert("thumb".into(), "rs:fill:100:100/g:sm".into());
        let o = parse(&["pr:thumb", "w:50"], Some("webp"), &presets).unwrap();
        assert_eq!((o.width, o.height, o.quality), (50, 100, Quality::Fixed(70)));
        assert_eq!(o.format, FormatChoice::Explicit(Format::Webp));
        presets.only = true;
        assert!(parse(&["preset:thumb"], None, &presets).is_ok());
        assert_eq!(parse(&["w:5"], None, &presets).unwrap_err().code(), "presets-only");
        presets.map.insert("loop".into(), "pr:loop".into());
        presets.only = false;
        assert!(parse(&["pr:loop"], None, &presets).is_err());
    }

    #[test]
    fn extension_sets_and_overrides_format() {
        let none = Presets::default();
        assert_eq!(parse(&[], Some("png"), &none).unwrap().format, FormatChoice::Explicit(Format::Png));
        // The extension overrides `f` (SPEC §3.3, as imgproxy).
        assert_eq!(parse(&["f:webp"], Some("png"), &none).unwrap().format, FormatChoice::Explicit(Format::Png));
        assert_eq!(parse(&["f:webp"], Some("auto"), &none).unwrap().format, FormatChoice::Auto);
        assert_eq!(parse(&[], None, &none).unwrap().format, FormatChoice::Unset);
        assert_eq!(parse(&[], Some("bmp"), &none).unwrap_err().code(), "invalid-option");
    }

    #[test]
    fn go_parse_bool_booleans() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert!(p(&format!("el:{t}")).unwrap().enlarge, "{t}");
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert!(!p(&format!("el:1/el:{f}")).unwrap().enlarge, "{f}");
        }
        for bad in ["el:yes", "el:tRUE", "el:2", "sm:on", "el:", "el: t"] {
            assert_eq!(p(bad).unwrap_err().code(), "invalid-option", "{bad}");
        }
    }

    #[test]
    fn empty_arguments_mean_not_set() {
        let o = p("rs::300").unwrap();
        assert_eq!((o.resizing_type, o.width, o.height), (ResizingType::Fit, 300, 0));
        // Empty arguments keep what an earlier option set.
        let o = p("rs:fill:100:200/rs::300").unwrap();
        assert_eq!((o.resizing_type, o.width, o.height), (ResizingType::Fill, 300, 200));
        assert_eq!(p("rs:auto::250").unwrap().height, 250);
        assert_eq!(p("s:10:::t").unwrap().extend, Some(Gravity::default()));
        assert_eq!(p("rs:fit:10::").unwrap(), p("rs:fit:10").unwrap());
        assert_eq!(p("pd:1:::3").unwrap().padding, Some([1, 1, 1, 3]));
        assert_eq!(p("pd::5").unwrap().padding, Some([0, 5, 0, 5]));
        let g = p("g:we::5").unwrap().gravity;
        assert_eq!((g.kind, g.x, g.y), (GravityKind::We, 0.0, 5.0));
        let t = p("t:1:::t").unwrap().trim.unwrap();
        assert_eq!((t.color, t.equal_hor, t.equal_ver), (None, false, true));
        assert!(p("fl::t").unwrap().flip_v);
        for bad in ["w:", "rs:", "rs:::", "g:", "g::5", "bg:1::3", "pr:a::b", "cb:", "fq:webp:", "c:100", "c::100"] {
            assert_eq!(p(bad).unwrap_err().code(), "invalid-option", "{bad}");
        }
    }

    #[test]
    fn extend_with_gravity_in_resize_and_size() {
        let o = p("rs:fit:100:100:t:t:so:0:10").unwrap();
        let e = o.extend.unwrap();
        assert_eq!((o.enlarge, e.kind, e.x, e.y), (true, GravityKind::So, 0.0, 10.0));
        assert_eq!(p("s:10:20:t:t:no:1:2").unwrap().extend.unwrap().kind, GravityKind::No);
        assert_eq!(p("ex:t:fp:0.25:0.75").unwrap().extend.unwrap().kind, GravityKind::Fp);
        assert_eq!(p("ex:1/ex:f:so").unwrap().extend, None);
        for bad in ["rs:fit:1:1:t:t:no:1:1:9", "s:1:1:t:t:no:1:1:9", "rs:fit:1:1:t::so", "rs:fit:1:1:t:t:sm"] {
            assert_eq!(p(bad).unwrap_err().code(), "invalid-option", "{bad}");
        }
    }

    #[test]
    fn zero_means_default() {
        assert_eq!(p("exp:0").unwrap().expires, None);
        assert_eq!(p("q:0").unwrap().quality, Quality::Default);
        assert_eq!(p("q:80/q:0").unwrap().quality, Quality::Default);
        assert_eq!(p("mb:0").unwrap().max_bytes, None);
        assert_eq!(p("exp:4102444800").unwrap().expires, Some(4_102_444_800));
    }

    #[test]
    fn strict_numbers() {
        for bad in ["w:+5", "w: 5", "w:1e3", "w:١٢", "dpr:NaN", "dpr:inf", "dpr:1e0", "bl:+1", "sh:inf", "g:no:1e2:0"]
        {
            assert_eq!(p(bad).unwrap_err().code(), "invalid-option", "{bad}");
        }
        assert_eq!(p("dpr:.5").unwrap().dpr, Some(0.5));
        assert_eq!(p("dpr:2.").unwrap().dpr, Some(2.0));
        assert_eq!(p("g:so:-1.25:0.5").unwrap().gravity.x, -1.25);
        assert_eq!(p("width:0300").unwrap().width, 300);
    }

    fn vectors() -> serde_json::Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/signing/test-vectors.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn vector_presets() -> Presets {
        let mut presets = Presets::default();
        for name in ["thumb", "sharp", "a", "b", "p"] {
            presets.map.insert(name.into(), "q:70".into());
        }
        presets
    }

    /// The parser accepts the options of every `build` vector (SPEC test vectors).
    #[test]
    fn accepts_every_build_vector() {
        let v = vectors();
        let cases = v["build"].as_array().unwrap();
        assert!(cases.len() > 50);
        for c in cases {
            let path = format!("/sig{}", c["expected_path"].as_str().unwrap());
            let split = crate::url::split(&path).unwrap();
            assert_eq!(split.source_error, None, "{}", c["name"]);
            assert_eq!(split.source, c["source"].as_str().unwrap(), "{}", c["name"]);
            let o = parse(&split.options, split.extension.as_deref(), &vector_presets());
            assert!(o.is_ok(), "{}: {:?}", c["name"], o.unwrap_err());
        }
    }

    /// Option errors of the `invalid` vectors: code and the option as written.
    #[test]
    fn refuses_invalid_vector_options() {
        let v = vectors();
        let mut checked = 0;
        for c in v["invalid"].as_array().unwrap() {
            let Some(option) = c["option"].as_str() else { continue };
            let path = format!("/sig{}", c["path"].as_str().unwrap());
            let split = crate::url::split(&path).unwrap();
            let e = parse(&split.options, split.extension.as_deref(), &vector_presets()).unwrap_err();
            assert_eq!(e.code(), c["error_code"].as_str().unwrap(), "{}", c["name"]);
            assert!(e.to_string().contains(&format!("`{option}`")), "{}: {e}", c["name"]);
            checked += 1;
        }
        assert!(checked > 40, "{checked}");
    }
}
