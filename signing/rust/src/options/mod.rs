//! Typed processing options (SPEC §4) and their canonical serialisation (SPEC §5).
//!
//! [`Options`] has one field per option of the spec, named like the keys of the canonical JSON
//! option object (`width`, `resize`, `gravity`, …). [`Options::segments`] emits the canonical
//! option segments — fixed order, short names only, booleans `t`/`f`, shortest round-trip numbers,
//! zero scalars omitted, trailing empty arguments stripped — byte for byte what
//! `@imgproxy/imgproxy-node` emits. [`Options::from_json`] reads the canonical JSON object (as used
//! by the test vectors and the other SDKs). Every validation error is an [`OptionError`] naming
//! the option (`option`, the JSON key) and the exact sub-path (`path`, e.g. `resize.width`).

mod extra;
mod json;
mod names;
mod number;
mod watermark;

pub use extra::{Filename, ResizingAlgorithm, Zoom, SKIP_FORMATS};
pub use names::{lookup_url_name, OPTION_NAMES};
pub use number::format_number;
pub(crate) use number::parse_decimal;
pub use watermark::{Watermark, WatermarkPosition};

use std::fmt;

/// An option failed validation. `option` is the JSON key (e.g. `"width"`, `"resize"`); `path`
/// is the exact field (e.g. `"resize.width"`, `"format_quality.0.quality"`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("option `{option}`: {path} {reason}")]
pub struct OptionError {
    pub option: String,
    pub path: String,
    pub reason: String,
}

impl OptionError {
    pub fn new(option: impl Into<String>, path: impl Into<String>, reason: impl Into<String>) -> Self {
        OptionError { option: option.into(), path: path.into(), reason: reason.into() }
    }
    /// An error about a whole top-level option (`path` = `option`).
    pub fn top(option: &str, reason: impl Into<String>) -> Self {
        OptionError::new(option, option, reason)
    }
}

impl From<std::convert::Infallible> for OptionError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

/// Values accepted by the fluent [`crate::UrlBuilder`] setters: the typed value itself, or its
/// URL argument form as a string (`"fill"`, `"sm"`, `"no:10:5"`, `"fp:0.5:0.3"`, `"webp"`).
pub trait IntoOptionValue<T> {
    fn into_option_value(self) -> Result<T, OptionError>;
}

macro_rules! string_values {
    ($t:ty) => {
        impl IntoOptionValue<$t> for $t {
            fn into_option_value(self) -> Result<$t, OptionError> {
                Ok(self)
            }
        }
        impl IntoOptionValue<$t> for &str {
            fn into_option_value(self) -> Result<$t, OptionError> {
                self.parse()
            }
        }
        impl IntoOptionValue<$t> for &String {
            fn into_option_value(self) -> Result<$t, OptionError> {
                self.parse()
            }
        }
        impl IntoOptionValue<$t> for String {
            fn into_option_value(self) -> Result<$t, OptionError> {
                self.parse()
            }
        }
    };
}

/// `rt` / the type in `rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResizingType {
    Fit,
    Fill,
    FillDown,
    Force,
    Auto,
}

impl ResizingType {
    pub const ALL: [ResizingType; 5] =
        [ResizingType::Fit, ResizingType::Fill, ResizingType::FillDown, ResizingType::Force, ResizingType::Auto];
    pub fn as_str(self) -> &'static str {
        match self {
            ResizingType::Fit => "fit",
            ResizingType::Fill => "fill",
            ResizingType::FillDown => "fill-down",
            ResizingType::Force => "force",
            ResizingType::Auto => "auto",
        }
    }
}

impl std::str::FromStr for ResizingType {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        ResizingType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| OptionError::top("resizing_type", "must be one of fit, fill, fill-down, force, auto"))
    }
}
string_values!(ResizingType);

/// Compass gravity anchors (these take optional x/y offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compass {
    No,
    So,
    Ea,
    We,
    Noea,
    Nowe,
    Soea,
    Sowe,
    Ce,
}

impl Compass {
    pub const ALL: [Compass; 9] = [
        Compass::No,
        Compass::So,
        Compass::Ea,
        Compass::We,
        Compass::Noea,
        Compass::Nowe,
        Compass::Soea,
        Compass::Sowe,
        Compass::Ce,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Compass::No => "no",
            Compass::So => "so",
            Compass::Ea => "ea",
            Compass::We => "we",
            Compass::Noea => "noea",
            Compass::Nowe => "nowe",
            Compass::Soea => "soea",
            Compass::Sowe => "sowe",
            Compass::Ce => "ce",
        }
    }
    fn parse(s: &str) -> Option<Compass> {
        Compass::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// `g`: a compass anchor with optional offsets, smart (`sm`) or a focus point (`fp:x:y`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Gravity {
    Compass { kind: Compass, x_offset: Option<f64>, y_offset: Option<f64> },
    Smart,
    FocusPoint { x: f64, y: f64 },
}

impl Gravity {
    /// A compass anchor without offsets.
    pub fn anchor(kind: Compass) -> Self {
        Gravity::Compass { kind, x_offset: None, y_offset: None }
    }
    /// A compass anchor with both offsets.
    pub fn offset(kind: Compass, x: f64, y: f64) -> Self {
        Gravity::Compass { kind, x_offset: Some(x), y_offset: Some(y) }
    }
}

impl std::str::FromStr for Gravity {
    type Err = OptionError;
    /// The URL argument form: `sm`, `ce`, `no:10:5`, `we::5`, `fp:0.5:0.3`.
    fn from_str(s: &str) -> Result<Self, OptionError> {
        let err = |r: &str| OptionError::top("gravity", r);
        let args: Vec<&str> = s.split(':').collect();
        let num = |a: &str| -> Result<f64, OptionError> {
            let v = parse_decimal(a).ok_or_else(|| err(&format!("`{a}` is not a decimal number")))?;
            Ok(v)
        };
        match args[0] {
            "sm" if args.len() == 1 => Ok(Gravity::Smart),
            "fp" if args.len() == 3 => Ok(Gravity::FocusPoint { x: num(args[1])?, y: num(args[2])? }),
            "sm" | "fp" => Err(err("takes `sm` or `fp:x:y`")),
            t => {
                let kind = Compass::parse(t).ok_or_else(|| err(&format!("`{t}` is not a gravity type")))?;
                if args.len() > 3 {
                    return Err(err("takes at most two offsets"));
                }
                let off = |i: usize| args.get(i).filter(|a| !a.is_empty()).map(|a| num(a)).transpose();
                Ok(Gravity::Compass { kind, x_offset: off(1)?, y_offset: off(2)? })
            }
        }
    }
}
string_values!(Gravity);

/// Output formats; `Auto` is an imago extension (negotiated from `Accept`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Jpg,
    Png,
    Webp,
    Avif,
    Gif,
    Auto,
    /// JPEG XL.
    Jxl,
}

impl Format {
    pub const ALL: [Format; 7] = [Self::Jpg, Self::Png, Self::Webp, Self::Avif, Self::Gif, Self::Auto, Self::Jxl];
    pub fn as_str(self) -> &'static str {
        // In declaration order (the discriminant indexes it).
        ["jpg", "png", "webp", "avif", "gif", "auto", "jxl"][self as usize]
    }
}

impl std::str::FromStr for Format {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| OptionError::top("format", "must be one of jpg, png, webp, avif, gif, jxl, auto"))
    }
}
string_values!(Format);

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ex` (and the extend part of `rs`/`s`): gravity may not be smart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Extend {
    pub extend: bool,
    pub gravity: Option<Gravity>,
}

impl Extend {
    pub fn new(extend: bool) -> Self {
        Extend { extend, gravity: None }
    }
}

/// `rs:{type}:{width}:{height}:{enlarge}:{extend}`; at least one field must be set.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Resize {
    pub resizing_type: Option<ResizingType>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub enlarge: Option<bool>,
    pub extend: Option<Extend>,
}

impl Resize {
    /// `rs:{type}:{width}:{height}`.
    pub fn new(resizing_type: ResizingType, width: u32, height: u32) -> Self {
        Resize { resizing_type: Some(resizing_type), width: Some(width), height: Some(height), ..Default::default() }
    }
}

/// `s:{width}:{height}:{enlarge}:{extend}`; at least one field must be set.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Size {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub enlarge: Option<bool>,
    pub extend: Option<Extend>,
}

/// `c:{width}:{height}[:{gravity}]` (0 = full size).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crop {
    pub width: u32,
    pub height: u32,
    pub gravity: Option<Gravity>,
}

/// `fl:{horizontal}:{vertical}` (both always emitted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flip {
    pub horizontal: bool,
    pub vertical: bool,
}

/// `bg:{hex}` (3 or 6 hex digits, no `#`, emitted as given) or `bg:{r}:{g}:{b}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Background {
    Hex(String),
    Rgb { r: u8, g: u8, b: u8 },
}

/// One `fq` pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatQuality {
    pub format: Format,
    pub quality: u8,
}

/// `pd:{n}` (0 is omitted) or `pd:{top}:{right}:{bottom}:{left}` (at least one side set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    All(u32),
    Sides { top: Option<u32>, right: Option<u32>, bottom: Option<u32>, left: Option<u32> },
}

/// `q:{0-100}` (0 = server default, omitted) or `q:auto` (imago extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quality {
    Value(u8),
    Auto,
}

/// `t:{threshold}:{color}:{equal_hor}:{equal_ver}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Trim {
    pub threshold: f64,
    pub color: Option<String>,
    pub equal_hor: Option<bool>,
    pub equal_ver: Option<bool>,
}

/// Every option of SPEC §4; `None` = not set (nothing emitted).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    pub auto_rotate: Option<bool>,
    pub background: Option<Background>,
    pub blur: Option<f64>,
    pub cachebuster: Option<String>,
    pub crop: Option<Crop>,
    pub dpr: Option<f64>,
    pub enlarge: Option<bool>,
    /// Unix seconds (0 = no expiry, omitted).
    pub expires: Option<u64>,
    pub extend: Option<Extend>,
    pub flip: Option<Flip>,
    pub format: Option<Format>,
    pub format_quality: Option<Vec<FormatQuality>>,
    pub gravity: Option<Gravity>,
    pub height: Option<u32>,
    pub keep_copyright: Option<bool>,
    pub max_bytes: Option<u64>,
    pub min_height: Option<u32>,
    pub min_width: Option<u32>,
    pub padding: Option<Padding>,
    pub preset: Option<Vec<String>>,
    pub quality: Option<Quality>,
    pub resize: Option<Resize>,
    pub resizing_type: Option<ResizingType>,
    /// 0, 90, 180 or 270 (0 is omitted).
    pub rotate: Option<u16>,
    pub sharpen: Option<f64>,
    pub size: Option<Size>,
    pub strip_color_profile: Option<bool>,
    pub strip_metadata: Option<bool>,
    pub trim: Option<Trim>,
    /// `wm` (the server's configured watermark image).
    pub watermark: Option<Watermark>,
    pub width: Option<u32>,
    // imgproxy's further options (issue #20; `extra.rs`).
    pub enforce_thumbnail: Option<bool>,
    pub extend_aspect_ratio: Option<Extend>,
    pub filename: Option<Filename>,
    pub max_animation_frame_resolution: Option<f64>,
    pub max_animation_frames: Option<u32>,
    pub max_result_dimension: Option<u32>,
    pub max_src_file_size: Option<u64>,
    pub max_src_resolution: Option<f64>,
    /// 0 is omitted.
    pub pixelate: Option<u32>,
    pub raw: Option<bool>,
    pub resizing_algorithm: Option<ResizingAlgorithm>,
    pub return_attachment: Option<bool>,
    pub skip_processing: Option<Vec<String>>,
    pub zoom: Option<Zoom>,
}

/// Joins arguments with `:` and strips trailing empty ones (imgproxy-node's `.replace(/:+$/, "")`).
pub(super) fn join(args: &[String]) -> String {
    args.join(":").trim_end_matches(':').to_string()
}

pub(super) struct Ctx<'a> {
    option: &'a str,
    path: String,
}

impl<'a> Ctx<'a> {
    fn top(option: &'a str) -> Self {
        Ctx { option, path: option.to_string() }
    }
    fn sub(&self, name: &str) -> Ctx<'a> {
        Ctx { option: self.option, path: format!("{}.{}", self.path, name) }
    }
    fn fail(&self, reason: impl Into<String>) -> OptionError {
        OptionError::new(self.option, self.path.clone(), reason)
    }
    fn num(&self, x: f64) -> Result<String, OptionError> {
        format_number(x).ok_or_else(|| self.fail("must be a finite number"))
    }
    fn non_negative(&self, x: f64) -> Result<String, OptionError> {
        if x.is_finite() && x < 0.0 {
            return Err(self.fail("must be >= 0"));
        }
        self.num(x)
    }
    fn name(&self, s: &str) -> Result<String, OptionError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-')) {
            return Err(self.fail("must be a non-empty string of [A-Za-z0-9._~-]"));
        }
        Ok(s.to_string())
    }
    fn hex(&self, s: &str) -> Result<String, OptionError> {
        if !(s.len() == 3 || s.len() == 6) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.fail("must be 3 or 6 hex digits (no '#')"));
        }
        Ok(s.to_string())
    }
}

fn b(v: bool) -> String {
    if v { "t" } else { "f" }.to_string()
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Result<String, OptionError>) -> Result<String, OptionError> {
    v.map(f).transpose().map(Option::unwrap_or_default)
}

fn gravity_args(c: &Ctx<'_>, g: &Gravity, allow_smart: bool) -> Result<String, OptionError> {
    Ok(match *g {
        Gravity::Smart if allow_smart => "sm".into(),
        Gravity::Smart => {
            return Err(c.sub("type").fail("must be one of no, so, ea, we, noea, nowe, soea, sowe, ce, fp"))
        }
        Gravity::FocusPoint { x, y } => {
            for (n, v) in [("x", x), ("y", y)] {
                if !(0.0..=1.0).contains(&v) {
                    return Err(c.sub(n).fail("must be between 0 and 1"));
                }
            }
            format!("fp:{}:{}", c.sub("x").num(x)?, c.sub("y").num(y)?)
        }
        Gravity::Compass { kind, x_offset, y_offset } => join(&[
            kind.as_str().to_string(),
            opt(x_offset, |x| c.sub("x_offset").num(x))?,
            opt(y_offset, |y| c.sub("y_offset").num(y))?,
        ]),
    })
}

pub(super) fn extend_args(c: &Ctx<'_>, e: &Extend) -> Result<String, OptionError> {
    Ok(join(&[b(e.extend), opt(e.gravity.as_ref(), |g| gravity_args(&c.sub("gravity"), g, false))?]))
}

impl Options {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Canonical option segments (`name:arg…`, no `/`) in the canonical order, with their slot
    /// (index into [`OPTION_NAMES`]).
    pub fn slotted_segments(&self) -> Result<Vec<(usize, String)>, OptionError> {
        let mut out: Vec<(usize, String)> = Vec::new();
        let mut push = |key: &str, seg: Option<String>| {
            if let Some(s) = seg {
                let slot = OPTION_NAMES.iter().position(|(k, _, _)| *k == key).unwrap_or(OPTION_NAMES.len());
                out.push((slot, s));
            }
        };
        // Scalars whose 0 is omitted.
        let nonzero_u = |v: Option<u64>, short: &str| v.filter(|v| *v != 0).map(|v| format!("{short}:{v}"));
        let nonzero_f = |v: Option<f64>, key: &str, short: &str| -> Result<Option<String>, OptionError> {
            let c = Ctx::top(key);
            Ok(match v {
                None => None,
                Some(x) => {
                    let s = c.non_negative(x)?;
                    (x != 0.0).then(|| format!("{short}:{s}"))
                }
            })
        };
        let bool_opt = |v: Option<bool>, short: &str| v.map(|v| format!("{short}:{}", b(v)));

        push("auto_rotate", bool_opt(self.auto_rotate, "ar"));
        if let Some(bg) = &self.background {
            let c = Ctx::top("background");
            push(
                "background",
                Some(match bg {
                    Background::Hex(h) => format!("bg:{}", c.hex(h)?),
                    Background::Rgb { r, g, b } => format!("bg:{r}:{g}:{b}"),
                }),
            );
        }
        push("blur", nonzero_f(self.blur, "blur", "bl")?);
        if let Some(cb) = &self.cachebuster {
            push("cachebuster", Some(format!("cb:{}", Ctx::top("cachebuster").name(cb)?)));
        }
        if let Some(cr) = &self.crop {
            let c = Ctx::top("crop");
            let g = opt(cr.gravity.as_ref(), |g| gravity_args(&c.sub("gravity"), g, true))?;
            push("crop", Some(join(&["c".into(), cr.width.to_string(), cr.height.to_string(), g])));
        }
        if let Some(d) = self.dpr {
            let c = Ctx::top("dpr");
            if !(d.is_finite() && d > 0.0) {
                return Err(c.fail("must be a finite number greater than 0"));
            }
            push("dpr", Some(format!("dpr:{}", c.num(d)?)));
        }
        push("enlarge", bool_opt(self.enlarge, "el"));
        push("expires", nonzero_u(self.expires, "exp"));
        if let Some(e) = &self.extend {
            push("extend", Some(format!("ex:{}", extend_args(&Ctx::top("extend"), e)?)));
        }
        if let Some(f) = &self.flip {
            push("flip", Some(format!("fl:{}:{}", b(f.horizontal), b(f.vertical))));
        }
        push("format", self.format.map(|f| format!("f:{}", f.as_str())));
        if let Some(fq) = &self.format_quality {
            let c = Ctx::top("format_quality");
            if fq.is_empty() {
                return Err(c.fail("must be a non-empty list of {format, quality}"));
            }
            let mut parts = Vec::new();
            for (i, p) in fq.iter().enumerate() {
                let ec = c.sub(&i.to_string());
                if p.format == Format::Auto {
                    return Err(ec.sub("format").fail("must be one of jpg, png, webp, avif, gif, jxl"));
                }
                if p.quality > 100 {
                    return Err(ec.sub("quality").fail("must be <= 100"));
                }
                parts.push(format!("{}:{}", p.format.as_str(), p.quality));
            }
            push("format_quality", Some(format!("fq:{}", parts.join(":"))));
        }
        if let Some(g) = &self.gravity {
            push("gravity", Some(format!("g:{}", gravity_args(&Ctx::top("gravity"), g, true)?)));
        }
        push("height", nonzero_u(self.height.map(u64::from), "h"));
        push("keep_copyright", bool_opt(self.keep_copyright, "kcr"));
        push("max_bytes", nonzero_u(self.max_bytes, "mb"));
        push("min_height", nonzero_u(self.min_height.map(u64::from), "mh"));
        push("min_width", nonzero_u(self.min_width.map(u64::from), "mw"));
        match self.padding {
            None | Some(Padding::All(0)) => {}
            Some(Padding::All(n)) => push("padding", Some(format!("pd:{n}"))),
            Some(Padding::Sides { top, right, bottom, left }) => {
                if top.is_none() && right.is_none() && bottom.is_none() && left.is_none() {
                    return Err(Ctx::top("padding").fail("must set at least one of top, right, bottom, left"));
                }
                let s = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
                push("padding", Some(join(&["pd".into(), s(top), s(right), s(bottom), s(left)])));
            }
        }
        if let Some(pr) = &self.preset {
            let c = Ctx::top("preset");
            if pr.is_empty() {
                return Err(c.fail("must be a non-empty list of names"));
            }
            let names: Vec<String> =
                pr.iter().enumerate().map(|(i, n)| c.sub(&i.to_string()).name(n)).collect::<Result<_, _>>()?;
            push("preset", Some(format!("pr:{}", names.join(":"))));
        }
        match self.quality {
            None | Some(Quality::Value(0)) => {}
            Some(Quality::Auto) => push("quality", Some("q:auto".into())),
            Some(Quality::Value(q)) if q > 100 => return Err(Ctx::top("quality").fail("must be <= 100")),
            Some(Quality::Value(q)) => push("quality", Some(format!("q:{q}"))),
        }
        if let Some(r) = &self.resize {
            let c = Ctx::top("resize");
            if *r == Resize::default() {
                return Err(c.fail("must set at least one of resizing_type, width, height, enlarge, extend"));
            }
            let seg = join(&[
                "rs".into(),
                r.resizing_type.map(|t| t.as_str().to_string()).unwrap_or_default(),
                opt(r.width, |w| Ok(w.to_string()))?,
                opt(r.height, |h| Ok(h.to_string()))?,
                opt(r.enlarge, |e| Ok(b(e)))?,
                opt(r.extend.as_ref(), |e| extend_args(&c.sub("extend"), e))?,
            ]);
            push("resize", Some(seg));
        }
        push("resizing_type", self.resizing_type.map(|t| format!("rt:{}", t.as_str())));
        match self.rotate {
            None | Some(0) => {}
            Some(r @ (90 | 180 | 270)) => push("rotate", Some(format!("rot:{r}"))),
            Some(_) => return Err(Ctx::top("rotate").fail("must be one of 0, 90, 180, 270")),
        }
        push("sharpen", nonzero_f(self.sharpen, "sharpen", "sh")?);
        if let Some(s) = &self.size {
            let c = Ctx::top("size");
            if *s == Size::default() {
                return Err(c.fail("must set at least one of width, height, enlarge, extend"));
            }
            let seg = join(&[
                "s".into(),
                opt(s.width, |w| Ok(w.to_string()))?,
                opt(s.height, |h| Ok(h.to_string()))?,
                opt(s.enlarge, |e| Ok(b(e)))?,
                opt(s.extend.as_ref(), |e| extend_args(&c.sub("extend"), e))?,
            ]);
            push("size", Some(seg));
        }
        push("strip_color_profile", bool_opt(self.strip_color_profile, "scp"));
        push("strip_metadata", bool_opt(self.strip_metadata, "sm"));
        if let Some(t) = &self.trim {
            let c = Ctx::top("trim");
            let seg = join(&[
                "t".into(),
                c.sub("threshold").non_negative(t.threshold)?,
                opt(t.color.as_deref(), |x| c.sub("color").hex(x))?,
                opt(t.equal_hor, |x| Ok(b(x)))?,
                opt(t.equal_ver, |x| Ok(b(x)))?,
            ]);
            push("trim", Some(seg));
        }
        push("watermark", self.watermark.as_ref().map(Watermark::segment).transpose()?);
        push("width", nonzero_u(self.width.map(u64::from), "w"));
        extra::segments(self, &mut push)?;
        // Stable: the options above are already in order, this file's take their slots.
        out.sort_by_key(|(slot, _)| *slot);
        Ok(out)
    }

    /// Canonical option segments (`name:arg…`) in the canonical order.
    pub fn segments(&self) -> Result<Vec<String>, OptionError> {
        Ok(self.slotted_segments()?.into_iter().map(|(_, s)| s).collect())
    }

    /// Canonical option string, e.g. `g:sm/rs:fill:300:400/w:300` (no leading `/`).
    pub fn serialize(&self) -> Result<String, OptionError> {
        Ok(self.segments()?.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serde_json::Value;

    fn ser(v: Value) -> Result<String, OptionError> {
        Options::from_json(&v)?.serialize()
    }

    #[test]
    fn numbers() {
        assert_eq!(format_number(2.0).unwrap(), "2");
        assert_eq!(format_number(-0.0).unwrap(), "0");
        assert_eq!(format_number(1e-7).unwrap(), "0.0000001");
        assert_eq!(format_number(0.1 + 0.2).unwrap(), "0.30000000000000004");
        assert_eq!(format_number(1e21).unwrap(), "1000000000000000000000");
        assert!(format_number(f64::NAN).is_none());
        assert_eq!(parse_decimal("1.5"), Some(1.5));
        assert_eq!(parse_decimal(".5"), Some(0.5));
        assert_eq!(parse_decimal("-2."), Some(-2.0));
        for bad in ["", "-", ".", "1e3", "inf", "NaN", "+1", " 1", "1.2.3", "١"] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn canonical_order_and_zero_omission() {
        assert_eq!(
            ser(json!({"width": 320, "height": 240, "resizing_type": "fill-down"})).unwrap(),
            "h:240/rt:fill-down/w:320"
        );
        assert_eq!(ser(json!({"width": 0, "quality": 0, "enlarge": false, "padding": 0})).unwrap(), "el:f");
        assert_eq!(ser(json!({"width": 300.0})).unwrap(), "w:300");
        assert_eq!(ser(json!({"resize": {"width": 0}})).unwrap(), "rs::0");
        assert_eq!(ser(json!({"flip": {}})).unwrap(), "fl:f:f");
    }

    #[test]
    fn errors_name_option_and_path() {
        let e = ser(json!({"width": 300.5})).unwrap_err();
        assert_eq!((e.option.as_str(), e.path.as_str()), ("width", "width"));
        let e = ser(json!({"resize": {"width": -1}})).unwrap_err();
        assert_eq!((e.option.as_str(), e.path.as_str()), ("resize", "resize.width"));
        assert!(e.to_string().contains("resize.width"), "{e}");
        let e = ser(json!({"format_quality": [{"format": "auto", "quality": 5}]})).unwrap_err();
        assert_eq!(e.path, "format_quality.0.format");
        for (v, key) in [
            (json!({"zoomx": 1}), "zoomx"),
            (json!({"dpr": 0}), "dpr"),
            (json!({"resize": {}}), "resize"),
            (json!({"size": {}}), "size"),
            (json!({"padding": {}}), "padding"),
            (json!({"rotate": 45}), "rotate"),
            (json!({"extend": {"extend": true, "gravity": {"type": "sm"}}}), "extend"),
            (json!({"gravity": {"type": "fp", "x": 2, "y": 0}}), "gravity"),
            (json!({"gravity": {"type": "no", "z": 1}}), "gravity"),
            (json!({"background": "#fff"}), "background"),
            (json!({"cachebuster": "a b"}), "cachebuster"),
            (json!({"preset": []}), "preset"),
            (json!({"quality": 101}), "quality"),
            (json!({"blur": -1}), "blur"),
            (json!({"trim": {"threshold": 1, "color": "ff"}}), "trim"),
            (json!({"format": "bmp"}), "format"),
        ] {
            assert_eq!(ser(v.clone()).unwrap_err().option, key, "{v}");
        }
    }

    #[test]
    fn gravity_strings() {
        assert_eq!("sm".parse::<Gravity>().unwrap(), Gravity::Smart);
        assert_eq!(
            "we::5".parse::<Gravity>().unwrap(),
            Gravity::Compass { kind: Compass::We, x_offset: None, y_offset: Some(5.0) }
        );
        assert_eq!("fp:0.5:0.25".parse::<Gravity>().unwrap(), Gravity::FocusPoint { x: 0.5, y: 0.25 });
        for bad in ["up", "sm:1", "fp:1", "no:1:2:3", "no:x"] {
            assert!(bad.parse::<Gravity>().is_err(), "{bad}");
        }
        assert_eq!(lookup_url_name("min-width"), Some((25, "mw")));
        assert_eq!(lookup_url_name("zoom"), Some((44, "z")));
        assert_eq!(lookup_url_name("sp"), Some((38, "skp")));
        assert_eq!(lookup_url_name("zoomx"), None);
    }
}
