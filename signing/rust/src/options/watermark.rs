//! `wm:%opacity:%position:%x_offset:%y_offset:%scale` (SPEC §4), imgproxy's watermark option,
//! serialised as `@imgproxy/imgproxy-node` does (trailing empty arguments stripped).

use serde_json::Value;

use super::json::{check_keys, j_field, j_float, j_str};
use super::{format_number, Ctx, OptionError};

/// Where the watermark goes: a compass anchor or `re` (tiled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatermarkPosition {
    Ce,
    No,
    So,
    Ea,
    We,
    Noea,
    Nowe,
    Soea,
    Sowe,
    /// Replicate: tiles over the whole image; the offsets are the spacing.
    Re,
}

impl WatermarkPosition {
    pub const ALL: [WatermarkPosition; 10] = [
        WatermarkPosition::Ce,
        WatermarkPosition::No,
        WatermarkPosition::So,
        WatermarkPosition::Ea,
        WatermarkPosition::We,
        WatermarkPosition::Noea,
        WatermarkPosition::Nowe,
        WatermarkPosition::Soea,
        WatermarkPosition::Sowe,
        WatermarkPosition::Re,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            WatermarkPosition::Ce => "ce",
            WatermarkPosition::No => "no",
            WatermarkPosition::So => "so",
            WatermarkPosition::Ea => "ea",
            WatermarkPosition::We => "we",
            WatermarkPosition::Noea => "noea",
            WatermarkPosition::Nowe => "nowe",
            WatermarkPosition::Soea => "soea",
            WatermarkPosition::Sowe => "sowe",
            WatermarkPosition::Re => "re",
        }
    }
}

const POSITIONS: &str = "must be one of ce, no, so, ea, we, noea, nowe, soea, sowe, re";

impl std::str::FromStr for WatermarkPosition {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        WatermarkPosition::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| OptionError::new("watermark", "watermark.position", POSITIONS))
    }
}

/// `wm`: the server's configured watermark image, placed on the result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Watermark {
    /// 0-1 (times the server's `IMAGO_WATERMARK_OPACITY`); 0 = no watermark.
    pub opacity: f64,
    pub position: Option<WatermarkPosition>,
    /// |v| ≥ 1: pixels; |v| < 1: a fraction of the image; with `re`, the spacing of the tiles.
    pub x_offset: Option<f64>,
    pub y_offset: Option<f64>,
    /// Size relative to the result (0 or none: the watermark's own size).
    pub scale: Option<f64>,
}

impl Watermark {
    /// `wm` with this opacity, centred, at its own size.
    pub fn new(opacity: f64) -> Watermark {
        Watermark { opacity, position: None, x_offset: None, y_offset: None, scale: None }
    }
    pub fn position(mut self, p: WatermarkPosition) -> Self {
        self.position = Some(p);
        self
    }
    pub fn offset(mut self, x: f64, y: f64) -> Self {
        self.x_offset = Some(x);
        self.y_offset = Some(y);
        self
    }
    pub fn scale(mut self, s: f64) -> Self {
        self.scale = Some(s);
        self
    }

    /// The canonical segment `wm:…`.
    pub(super) fn segment(&self) -> Result<String, OptionError> {
        let c = Ctx::top("watermark");
        let num = |name: &str, v: f64| format_number(v).ok_or_else(|| c.sub(name).fail("must be a finite number"));
        if !(0.0..=1.0).contains(&self.opacity) {
            return Err(c.sub("opacity").fail("must be between 0 and 1"));
        }
        let mut args = vec![num("opacity", self.opacity)?];
        args.push(self.position.map(|p| p.as_str().to_string()).unwrap_or_default());
        args.push(self.x_offset.map(|x| num("x_offset", x)).transpose()?.unwrap_or_default());
        args.push(self.y_offset.map(|y| num("y_offset", y)).transpose()?.unwrap_or_default());
        let scale = match self.scale {
            Some(s) if s.is_finite() && s < 0.0 => return Err(c.sub("scale").fail("must be >= 0")),
            Some(s) => num("scale", s)?,
            None => String::new(),
        };
        args.push(scale);
        Ok(format!("wm:{}", args.join(":")).trim_end_matches(':').to_string())
    }

    /// From the canonical JSON object `{opacity, position?, x_offset?, y_offset?, scale?}`.
    pub(super) fn from_json(v: &Value) -> Result<Watermark, OptionError> {
        let c = Ctx::top("watermark");
        let m = v.as_object().ok_or_else(|| c.fail("must be an object {opacity, …}"))?;
        check_keys(&c, m, &["opacity", "position", "x_offset", "y_offset", "scale"])?;
        let f = |k: &str| j_field(m, k, |v| j_float(&c.sub(k), v));
        Ok(Watermark {
            opacity: j_float(&c.sub("opacity"), m.get("opacity").unwrap_or(&Value::Null))?,
            position: j_field(m, "position", |v| {
                j_str(&c.sub("position"), v)?.parse().map_err(|_| c.sub("position").fail(POSITIONS))
            })?,
            x_offset: f("x_offset")?,
            y_offset: f("y_offset")?,
            scale: f("scale")?,
        })
    }
}
