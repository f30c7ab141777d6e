//! The width ladder, `srcset` widths and the `sizes` attribute (SPEC §9).

use crate::options::{format_number, OptionError};

/// The server's default width ladder, shared by the SDKs.
pub const LADDER: [u32; 16] = [16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840];

/// Which widths a srcset lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SrcsetOptions {
    /// Keep only widths `<= max_width` (the smallest is kept when none fit).
    pub max_width: Option<u32>,
    /// Replace the ladder (e.g. for a server configured with another one).
    pub widths: Option<Vec<u32>>,
}

impl SrcsetOptions {
    pub fn max_width(max_width: u32) -> Self {
        SrcsetOptions { max_width: Some(max_width), widths: None }
    }
}

/// The srcset widths (SPEC §9 steps 1–2): the ladder (or the override, sorted and deduplicated),
/// capped at `max_width`.
pub fn srcset_widths(opts: &SrcsetOptions) -> Result<Vec<u32>, OptionError> {
    let mut widths = opts.widths.clone().unwrap_or_else(|| LADDER.to_vec());
    if widths.is_empty() || widths.contains(&0) {
        return Err(OptionError::top("widths", "must be a non-empty list of positive integers"));
    }
    widths.sort_unstable();
    widths.dedup();
    let Some(max) = opts.max_width else {
        return Ok(widths);
    };
    if max == 0 {
        return Err(OptionError::top("max_width", "must be positive"));
    }
    let kept: Vec<u32> = widths.iter().copied().filter(|w| *w <= max).collect();
    Ok(if kept.is_empty() { vec![widths[0]] } else { kept })
}

/// A `sizes` length: a CSS length (`"100vw"`, `"calc(100vw - 2rem)"`) or pixels.
#[derive(Clone, Debug, PartialEq)]
pub enum CssSize {
    Css(String),
    Px(f64),
}

impl From<&str> for CssSize {
    fn from(s: &str) -> Self {
        CssSize::Css(s.to_string())
    }
}
impl From<String> for CssSize {
    fn from(s: String) -> Self {
        CssSize::Css(s)
    }
}
impl From<u32> for CssSize {
    fn from(px: u32) -> Self {
        CssSize::Px(px.into())
    }
}
impl From<f64> for CssSize {
    fn from(px: f64) -> Self {
        CssSize::Px(px)
    }
}

impl CssSize {
    fn render(&self, what: &str) -> Result<String, OptionError> {
        match self {
            CssSize::Px(px) => match format_number(*px) {
                Some(s) if *px > 0.0 => Ok(format!("{s}px")),
                _ => Err(OptionError::new("breakpoints", what, "must be a positive number of px")),
            },
            CssSize::Css(s) => {
                let t = s.trim();
                if t.is_empty() || t.contains(',') {
                    return Err(OptionError::new("breakpoints", what, "must be a non-empty CSS length without ','"));
                }
                Ok(t.to_string())
            }
        }
    }
}

/// One `(max-width: …px) size` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Breakpoint {
    /// Viewport max-width in CSS px (positive).
    pub max_width: u32,
    pub size: CssSize,
}

impl Breakpoint {
    pub fn new(max_width: u32, size: impl Into<CssSize>) -> Self {
        Breakpoint { max_width, size: size.into() }
    }
}

/// The `sizes` attribute (SPEC §9): breakpoints sorted by `max_width`, then the default
/// (`"100vw"` when `None`), joined with `", "`.
pub fn sizes(breakpoints: &[Breakpoint], default: Option<CssSize>) -> Result<String, OptionError> {
    let mut bps: Vec<(u32, String)> = Vec::with_capacity(breakpoints.len());
    for (i, bp) in breakpoints.iter().enumerate() {
        if bp.max_width == 0 {
            return Err(OptionError::new("breakpoints", format!("breakpoints.{i}.max_width"), "must be positive"));
        }
        if bps.iter().any(|(w, _)| *w == bp.max_width) {
            return Err(OptionError::new(
                "breakpoints",
                format!("breakpoints.{i}.max_width"),
                format!("duplicates {}", bp.max_width),
            ));
        }
        bps.push((bp.max_width, bp.size.render(&format!("breakpoints.{i}.size"))?));
    }
    bps.sort_by_key(|(w, _)| *w);
    let mut parts: Vec<String> = bps.into_iter().map(|(w, s)| format!("(max-width: {w}px) {s}")).collect();
    parts.push(default.unwrap_or_else(|| CssSize::from("100vw")).render("default")?);
    Ok(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        assert_eq!(srcset_widths(&SrcsetOptions::default()).unwrap(), LADDER.to_vec());
        assert_eq!(srcset_widths(&SrcsetOptions::max_width(700)).unwrap().last(), Some(&640));
        assert_eq!(srcset_widths(&SrcsetOptions::max_width(1)).unwrap(), vec![16]);
        let o = SrcsetOptions { max_width: None, widths: Some(vec![300, 100, 100]) };
        assert_eq!(srcset_widths(&o).unwrap(), vec![100, 300]);
        assert!(srcset_widths(&SrcsetOptions { max_width: None, widths: Some(vec![]) }).is_err());
    }

    #[test]
    fn sizes_attr() {
        let s = sizes(&[Breakpoint::new(1024, "50vw"), Breakpoint::new(640, 300u32)], Some("33vw".into())).unwrap();
        assert_eq!(s, "(max-width: 640px) 300px, (max-width: 1024px) 50vw, 33vw");
        assert_eq!(sizes(&[], None).unwrap(), "100vw");
        assert!(sizes(&[Breakpoint::new(1, "a, b")], None).is_err());
        assert!(sizes(&[Breakpoint::new(1, "a"), Breakpoint::new(1, "b")], None).is_err());
        assert_eq!(sizes(&[Breakpoint::new(0, "a")], None).unwrap_err().option, "breakpoints");
    }
}
