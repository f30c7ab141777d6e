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
    #[error("unknown preset `{0}`")]
    UnknownPreset(String),
    #[error("only presets are accepted here, got `{0}`")]
    PresetsOnly(String),
}

impl OptionError {
    pub fn code(&self) -> &'static str {
        match self {
            OptionError::Unknown(_) => "unknown-option",
            OptionError::Invalid { .. } => "invalid-option",
            OptionError::UnknownPreset(_) => "unknown-preset",
            OptionError::PresetsOnly(_) => "presets-only",
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
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Format::Jpeg,
            "png" => Format::Png,
            "webp" => Format::Webp,
            "avif" => Format::Avif,
            "gif" => Format::Gif,
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
        }
    }
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Avif => "image/avif",
            Format::Gif => "image/gif",
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
        }
    }
}

/// Largest width/height/padding a URL may ask for (the server's own output limit applies too).
pub const MAX_DIMENSION: u32 = 65_535;

fn parse_u32(option: &str, s: &str, max: u32) -> Result<u32, OptionError> {
    let v: u32 = s.parse().map_err(|_| bad(option, format!("`{s}` is not a non-negative integer")))?;
    if v > max {
        return Err(bad(option, format!("{v} is larger than {max}")));
    }
    Ok(v)
}

fn parse_f64(option: &str, s: &str, min: f64, max: f64) -> Result<f64, OptionError> {
    let v: f64 = s.parse().map_err(|_| bad(option, format!("`{s}` is not a number")))?;
    if !v.is_finite() || v < min || v > max {
        return Err(bad(option, format!("{s} is outside {min}..={max}")));
    }
    Ok(v)
}

fn parse_bool(option: &str, s: &str) -> Result<bool, OptionError> {
    match s {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" | "" => Ok(false),
        _ => Err(bad(option, format!("`{s}` is not a boolean (1/t/true or 0/f/false)"))),
    }
}

fn parse_resizing_type(option: &str, s: &str) -> Result<ResizingType, OptionError> {
    Ok(match s {
        "fit" => ResizingType::Fit,
        "fill" => ResizingType::Fill,
        "fill-down" => ResizingType::FillDown,
        "force" => ResizingType::Force,
        "auto" => ResizingType::Auto,
        _ => return Err(bad(option, format!("`{s}` is not one of fit, fill, fill-down, force, auto"))),
    })
}

/// Parses `type[:x:y]` gravity arguments.
fn parse_gravity(option: &str, args: &[&str]) -> Result<Gravity, OptionError> {
    let kind = match args.first().copied().unwrap_or("") {
        "ce" => GravityKind::Ce,
        "no" => GravityKind::No,
        "so" => GravityKind::So,
        "ea" => GravityKind::Ea,
        "we" => GravityKind::We,
        "noea" => GravityKind::Noea,
        "nowe" => GravityKind::Nowe,
        "soea" => GravityKind::Soea,
        "sowe" => GravityKind::Sowe,
        "sm" => GravityKind::Sm,
        "fp" => GravityKind::Fp,
        other => {
            return Err(bad(
                option,
                format!("`{other}` is not a gravity (ce, no, so, ea, we, noea, nowe, soea, sowe, sm, fp:x:y)"),
            ))
        }
    };
    let mut g = Gravity { kind, x: 0.0, y: 0.0 };
    match kind {
        GravityKind::Sm => {
            if args.len() > 1 {
                return Err(bad(option, "smart gravity takes no offsets"));
            }
        }
        GravityKind::Fp => {
            if args.len() != 3 {
                return Err(bad(option, "focus point needs fp:x:y with x and y in 0..1"));
            }
            g.x = parse_f64(option, args[1], 0.0, 1.0)?;
            g.y = parse_f64(option, args[2], 0.0, 1.0)?;
        }
        _ => {
            if args.len() > 3 {
                return Err(bad(option, "too many arguments"));
            }
            if let Some(x) = args.get(1) {
                g.x = parse_f64(option, x, -(MAX_DIMENSION as f64), MAX_DIMENSION as f64)?;
            }
            if let Some(y) = args.get(2) {
                g.y = parse_f64(option, y, -(MAX_DIMENSION as f64), MAX_DIMENSION as f64)?;
            }
        }
    }
    Ok(g)
}

fn parse_hex_color(option: &str, s: &str) -> Result<[u8; 3], OptionError> {
    let s = s.trim_start_matches('#');
    let expand = |c: u8| c * 17;
    let digit = |c: char| c.to_digit(16).map(|d| d as u8);
    let digits: Option<Vec<u8>> = s.chars().map(digit).collect();
    match (s.len(), digits) {
        (3, Some(d)) => Ok([expand(d[0]), expand(d[1]), expand(d[2])]),
        (6, Some(d)) => Ok([d[0] * 16 + d[1], d[2] * 16 + d[3], d[4] * 16 + d[5]]),
        _ => Err(bad(option, format!("`{s}` is not a hex colour (rgb or rrggbb)"))),
    }
}

fn parse_color(option: &str, args: &[&str]) -> Result<[u8; 3], OptionError> {
    match args.len() {
        1 => parse_hex_color(option, args[0]),
        3 => {
            let mut c = [0u8; 3];
            for (i, a) in args.iter().enumerate() {
                c[i] = parse_u32(option, a, 255)? as u8;
            }
            Ok(c)
        }
        _ => Err(bad(option, "expects R:G:B or a hex colour")),
    }
}

fn expect_args(option: &str, args: &[&str], min: usize, max: usize) -> Result<(), OptionError> {
    if args.len() < min || args.len() > max {
        let want = if min == max { format!("{min}") } else { format!("{min} to {max}") };
        return Err(bad(option, format!("expects {want} argument(s), got {}", args.len())));
    }
    Ok(())
}

fn parse_quality(option: &str, s: &str) -> Result<Quality, OptionError> {
    if s == "auto" {
        return Ok(Quality::Auto);
    }
    let q = parse_u32(option, s, 100)?;
    Ok(if q == 0 { Quality::Default } else { Quality::Fixed(q as u8) })
}

/// Named presets from the configuration.
#[derive(Clone, Debug, Default)]
pub struct Presets {
    pub map: BTreeMap<String, String>,
    pub only: bool,
}

/// Parses option segments (with presets expanded) into [`Options`]. The `extension` from the URL
/// sets the format unless `f:` does.
pub fn parse(segments: &[&str], extension: Option<&str>, presets: &Presets) -> Result<Options, OptionError> {
    let mut o = Options::default();
    if let Some(def) = presets.map.get("default") {
        apply_preset(&mut o, "default", def, presets, 0)?;
    }
    for seg in segments {
        let (name, _) = seg.split_once(':').unwrap_or((seg, ""));
        if presets.only && !matches!(name, "pr" | "preset") {
            return Err(OptionError::PresetsOnly((*seg).to_string()));
        }
        apply(&mut o, seg, presets, 0)?;
    }
    if let Some(ext) = extension {
        if o.format == FormatChoice::Unset {
            o.format = if ext == "auto" {
                FormatChoice::Auto
            } else {
                FormatChoice::Explicit(Format::parse(ext).ok_or_else(|| {
                    bad("extension", format!("`{ext}` is not an output format (jpg, png, webp, avif, gif, auto)"))
                })?)
            };
        }
    }
    Ok(o)
}

fn apply_preset(o: &mut Options, name: &str, body: &str, presets: &Presets, depth: u8) -> Result<(), OptionError> {
    if depth > 4 {
        return Err(bad("preset", format!("preset `{name}` nests too deeply")));
    }
    for seg in body.split('/').filter(|s| !s.is_empty()) {
        apply(o, seg, presets, depth + 1)?;
    }
    Ok(())
}

/// Applies one `name:arg:arg` segment.
pub fn apply(o: &mut Options, seg: &str, presets: &Presets, depth: u8) -> Result<(), OptionError> {
    let mut parts = seg.split(':');
    let name = parts.next().unwrap_or_default();
    let args: Vec<&str> = parts.collect();
    let a = args.as_slice();
    match name {
        "resize" | "rs" => {
            expect_args(name, a, 1, 5)?;
            o.resizing_type = parse_resizing_type(name, a[0])?;
            set_size(o, name, &a[1..])?;
        }
        "size" | "s" => {
            expect_args(name, a, 1, 4)?;
            set_size(o, name, a)?;
        }
        "resizing_type" | "rt" => {
            expect_args(name, a, 1, 1)?;
            o.resizing_type = parse_resizing_type(name, a[0])?;
        }
        "width" | "w" => {
            expect_args(name, a, 1, 1)?;
            o.width = parse_u32(name, a[0], MAX_DIMENSION)?;
        }
        "height" | "h" => {
            expect_args(name, a, 1, 1)?;
            o.height = parse_u32(name, a[0], MAX_DIMENSION)?;
        }
        "min-width" | "min_width" | "mw" => {
            expect_args(name, a, 1, 1)?;
            o.min_width = parse_u32(name, a[0], MAX_DIMENSION)?;
        }
        "min-height" | "min_height" | "mh" => {
            expect_args(name, a, 1, 1)?;
            o.min_height = parse_u32(name, a[0], MAX_DIMENSION)?;
        }
        "dpr" => {
            expect_args(name, a, 1, 1)?;
            let d = parse_f64(name, a[0], 0.0, 10.0)?;
            if d <= 0.0 {
                return Err(bad(name, "must be greater than 0"));
            }
            o.dpr = Some(d);
        }
        "enlarge" | "el" => {
            expect_args(name, a, 1, 1)?;
            o.enlarge = parse_bool(name, a[0])?;
        }
        "extend" | "ex" => {
            expect_args(name, a, 1, 4)?;
            o.extend = if parse_bool(name, a[0])? {
                Some(if a.len() > 1 { parse_gravity(name, &a[1..])? } else { Gravity::default() })
            } else {
                None
            };
            if o.extend.is_some_and(|g| g.kind == GravityKind::Sm) {
                return Err(bad(name, "smart gravity cannot position an extend"));
            }
        }
        "gravity" | "g" => {
            expect_args(name, a, 1, 3)?;
            o.gravity = parse_gravity(name, a)?;
        }
        "crop" | "c" => {
            expect_args(name, a, 2, 5)?;
            let w = parse_f64(name, a[0], 0.0, MAX_DIMENSION as f64)?;
            let h = parse_f64(name, a[1], 0.0, MAX_DIMENSION as f64)?;
            let gravity = if a.len() > 2 { Some(parse_gravity(name, &a[2..])?) } else { None };
            o.crop = if w == 0.0 && h == 0.0 { None } else { Some(Crop { width: w, height: h, gravity }) };
        }
        "trim" | "t" => {
            expect_args(name, a, 1, 4)?;
            let threshold = parse_f64(name, a[0], 0.0, 255.0)?;
            let color = match a.get(1) {
                Some(c) if !c.is_empty() => Some(parse_hex_color(name, c)?),
                _ => None,
            };
            let equal_hor = a.get(2).map(|b| parse_bool(name, b)).transpose()?.unwrap_or(false);
            let equal_ver = a.get(3).map(|b| parse_bool(name, b)).transpose()?.unwrap_or(false);
            o.trim = if threshold > 0.0 { Some(Trim { threshold, color, equal_hor, equal_ver }) } else { None };
        }
        "padding" | "pd" => {
            expect_args(name, a, 1, 4)?;
            let v: Vec<u32> = a.iter().map(|s| parse_u32(name, s, MAX_DIMENSION)).collect::<Result<_, _>>()?;
            let p = match v.len() {
                1 => [v[0]; 4],
                2 => [v[0], v[1], v[0], v[1]],
                3 => [v[0], v[1], v[2], v[1]],
                _ => [v[0], v[1], v[2], v[3]],
            };
            o.padding = if p == [0; 4] { None } else { Some(p) };
        }
        "rotate" | "rot" => {
            expect_args(name, a, 1, 1)?;
            let r: i64 = a[0].parse().map_err(|_| bad(name, format!("`{}` is not an integer", a[0])))?;
            if r % 90 != 0 {
                return Err(bad(name, "only multiples of 90 degrees"));
            }
            o.rotate = r.rem_euclid(360) as u16;
        }
        "auto_rotate" | "ar" => {
            expect_args(name, a, 1, 1)?;
            o.auto_rotate = parse_bool(name, a[0])?;
        }
        "flip" | "fl" => {
            expect_args(name, a, 1, 2)?;
            o.flip_h = parse_bool(name, a[0])?;
            o.flip_v = a.get(1).map(|b| parse_bool(name, b)).transpose()?.unwrap_or(false);
        }
        "background" | "bg" => {
            if a.is_empty() || (a.len() == 1 && a[0].is_empty()) {
                o.background = None;
            } else {
                o.background = Some(parse_color(name, a)?);
            }
        }
        "blur" | "bl" => {
            expect_args(name, a, 1, 1)?;
            o.blur = parse_f64(name, a[0], 0.0, 100.0)?;
        }
        "sharpen" | "sh" => {
            expect_args(name, a, 1, 1)?;
            o.sharpen = parse_f64(name, a[0], 0.0, 100.0)?;
        }
        "quality" | "q" => {
            expect_args(name, a, 1, 1)?;
            o.quality = parse_quality(name, a[0])?;
        }
        "format_quality" | "fq" => {
            if a.is_empty() || !a.len().is_multiple_of(2) {
                return Err(bad(name, "expects format:quality pairs"));
            }
            for pair in a.chunks(2) {
                let f = Format::parse(pair[0]).ok_or_else(|| bad(name, format!("`{}` is not a format", pair[0])))?;
                let q = parse_u32(name, pair[1], 100)?;
                if q == 0 {
                    o.format_quality.remove(&f);
                } else {
                    o.format_quality.insert(f, q as u8);
                }
            }
        }
        "format" | "f" | "ext" => {
            expect_args(name, a, 1, 1)?;
            o.format = match a[0] {
                "auto" => FormatChoice::Auto,
                "" => FormatChoice::Unset,
                s => FormatChoice::Explicit(Format::parse(s).ok_or_else(|| {
                    bad(name, format!("`{s}` is not an output format (jpg, png, webp, avif, gif, auto)"))
                })?),
            };
        }
        "strip_metadata" | "sm" => {
            expect_args(name, a, 1, 1)?;
            o.strip_metadata = parse_bool(name, a[0])?;
        }
        "keep_copyright" | "kcr" => {
            expect_args(name, a, 1, 1)?;
            o.keep_copyright = parse_bool(name, a[0])?;
        }
        "strip_color_profile" | "scp" => {
            expect_args(name, a, 1, 1)?;
            o.strip_color_profile = parse_bool(name, a[0])?;
        }
        "max_bytes" | "mb" => {
            expect_args(name, a, 1, 1)?;
            let v: u64 = a[0].parse().map_err(|_| bad(name, format!("`{}` is not a byte count", a[0])))?;
            o.max_bytes = if v == 0 { None } else { Some(v) };
        }
        "cachebuster" | "cb" => {
            o.cachebuster = Some(a.join(":")).filter(|s| !s.is_empty());
        }
        "expires" | "exp" => {
            expect_args(name, a, 1, 1)?;
            let v: i64 = a[0].parse().map_err(|_| bad(name, format!("`{}` is not a unix timestamp", a[0])))?;
            o.expires = Some(v);
        }
        "preset" | "pr" => {
            if a.is_empty() {
                return Err(bad(name, "expects preset names"));
            }
            for p in a {
                let body = presets.map.get(*p).ok_or_else(|| OptionError::UnknownPreset((*p).to_string()))?;
                apply_preset(o, p, body, presets, depth)?;
            }
        }
        other => return Err(OptionError::Unknown(other.to_string())),
    }
    Ok(())
}

fn set_size(o: &mut Options, name: &str, a: &[&str]) -> Result<(), OptionError> {
    if let Some(w) = a.first() {
        o.width = parse_u32(name, w, MAX_DIMENSION)?;
    }
    if let Some(h) = a.get(1) {
        o.height = parse_u32(name, h, MAX_DIMENSION)?;
    }
    if let Some(e) = a.get(2) {
        o.enlarge = parse_bool(name, e)?;
    }
    if let Some(x) = a.get(3) {
        o.extend = if parse_bool(name, x)? { Some(Gravity::default()) } else { None };
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
        assert_eq!(p("rot:-90").unwrap().rotate, 270);
        assert!(p("rot:45").is_err());
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
        let e = p("zoom:2").unwrap_err();
        assert_eq!((e.code(), e.to_string()), ("unknown-option", "unknown option `zoom`".to_string()));
        assert_eq!(p("pr:nope").unwrap_err().code(), "unknown-preset");
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
    fn extension_sets_format_unless_f_given() {
        let none = Presets::default();
        assert_eq!(parse(&[], Some("png"), &none).unwrap().format, FormatChoice::Explicit(Format::Png));
        assert_eq!(parse(&["f:webp"], Some("png"), &none).unwrap().format, FormatChoice::Explicit(Format::Webp));
        assert_eq!(parse(&[], None, &none).unwrap().format, FormatChoice::Unset);
        assert_eq!(parse(&[], Some("bmp"), &none).unwrap_err().code(), "invalid-option");
    }
}
