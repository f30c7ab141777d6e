//! `watermark` (`wm`): `wm:%opacity:%position:%x_offset:%y_offset:%scale`, imgproxy's argument
//! forms (SPEC §4). The image is the configured one (`IMAGO_WATERMARK_*`); without one, `wm` is
//! accepted and ignored, as imgproxy does.

use serde::Serialize;

use super::args::parse_f64;
use super::{bad, OptionError};

/// Where the watermark goes: a compass anchor, or `re` (tiled over the whole image).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WatermarkPosition {
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
    /// Replicate: tiles the watermark over the image; the offsets are the spacing between tiles.
    Re,
}

/// A parsed `wm` option.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Watermark {
    /// 0-1 (multiplied by `IMAGO_WATERMARK_OPACITY`); 0 means no watermark.
    pub opacity: f64,
    pub position: WatermarkPosition,
    /// Offsets: |v| ≥ 1 is pixels (× DPR), |v| < 1 a fraction of the image; for `re`, the
    /// spacing between tiles.
    pub x_offset: f64,
    pub y_offset: f64,
    /// Watermark size relative to the result (0: its own size).
    pub scale: f64,
}

fn position(option: &str, s: &str) -> Result<WatermarkPosition, OptionError> {
    use WatermarkPosition::*;
    Ok(match s {
        "ce" => Ce,
        "no" => No,
        "so" => So,
        "ea" => Ea,
        "we" => We,
        "noea" => Noea,
        "nowe" => Nowe,
        "soea" => Soea,
        "sowe" => Sowe,
        "re" => Re,
        "ch" => return Err(bad(option, "position `ch` (chessboard) is imgproxy Pro only; use `re`")),
        _ => return Err(bad(option, format!("`{s}` is not a position (ce no so ea we noea nowe soea sowe re)"))),
    })
}

/// The arguments of `wm` (trailing empty ones already removed; inner empty ones keep the
/// current value). Returns `None` for opacity 0 (no watermark).
pub(super) fn parse(option: &str, a: &[&str], current: Option<Watermark>) -> Result<Option<Watermark>, OptionError> {
    if a.len() > 5 {
        return Err(bad(option, format!("expects at most 5 arguments (opacity:position:x:y:scale), got {}", a.len())));
    }
    if a[0].is_empty() {
        return Err(bad(option, "the opacity (0-1) is required"));
    }
    let opacity = parse_f64(option, a[0], 0.0, 1.0)?;
    let mut w = current.unwrap_or(Watermark {
        opacity,
        position: WatermarkPosition::Ce,
        x_offset: 0.0,
        y_offset: 0.0,
        scale: 0.0,
    });
    w.opacity = opacity;
    let present = |i: usize| a.get(i).copied().filter(|s| !s.is_empty());
    if let Some(p) = present(1) {
        w.position = position(option, p)?;
    }
    let limit = super::MAX_DIMENSION as f64;
    if let Some(x) = present(2) {
        w.x_offset = parse_f64(option, x, -limit, limit)?;
    }
    if let Some(y) = present(3) {
        w.y_offset = parse_f64(option, y, -limit, limit)?;
    }
    if let Some(s) = present(4) {
        w.scale = parse_f64(option, s, 0.0, 1000.0)?;
    }
    Ok(if opacity == 0.0 { None } else { Some(w) })
}

#[cfg(test)]
mod tests {
    use super::super::{parse as parse_options, Presets};
    use super::*;

    fn wm(s: &str) -> Result<Option<Watermark>, OptionError> {
        parse_options(&[s], None, &Presets::default()).map(|o| o.watermark)
    }

    #[test]
    fn imgproxy_argument_forms() {
        let w = wm("wm:0.5:soea:10:20:0.25").unwrap().unwrap();
        assert_eq!(
            w,
            Watermark { opacity: 0.5, position: WatermarkPosition::Soea, x_offset: 10.0, y_offset: 20.0, scale: 0.25 }
        );
        let w = wm("watermark:1").unwrap().unwrap();
        assert_eq!((w.position, w.x_offset, w.scale), (WatermarkPosition::Ce, 0.0, 0.0));
        assert_eq!(wm("wm:1:re:-0.1:.5").unwrap().unwrap().x_offset, -0.1);
        assert_eq!(wm("wm:0.3::5").unwrap().unwrap().x_offset, 5.0);
        assert_eq!(wm("wm:0").unwrap(), None);
        assert_eq!(wm("wm:1:nowe:::").unwrap().unwrap().position, WatermarkPosition::Nowe);
        for p in ["ce", "no", "so", "ea", "we", "noea", "nowe", "soea", "sowe", "re"] {
            assert!(wm(&format!("wm:1:{p}")).unwrap().is_some(), "{p}");
        }
        for bad in [
            "wm:1.5",
            "wm:-1",
            "wm::ce",
            "wm:1:ch",
            "wm:1:up",
            "wm:1:ce:x",
            "wm:1:ce:0:0:-1",
            "wm:1:ce:0:0:1:9",
            "wm:a",
        ] {
            let e = wm(bad).unwrap_err();
            assert_eq!(e.code(), "invalid-option", "{bad}");
            assert!(e.to_string().contains("`wm`"), "{bad}: {e}");
        }
    }
}
