//! One `name:arg:arg` segment applied to [`Options`] (SPEC §4).

use super::args::*;
use super::{apply_preset, bad, canonical_name, Crop, Format, FormatChoice, OptionError, Options, Presets, Trim};

/// Applies one `name:arg:arg` segment (SPEC §4): trailing empty arguments are ignored, an option
/// whose arguments are all empty is invalid, inner empty arguments mean "not set".
pub fn apply(o: &mut Options, seg: &str, presets: &Presets, depth: u8) -> Result<(), OptionError> {
    let mut parts = seg.split(':');
    let name = parts.next().unwrap_or_default();
    let mut args: Vec<&str> = parts.collect();
    while args.last().is_some_and(|a| a.is_empty()) {
        args.pop();
    }
    let key = canonical_name(name).ok_or_else(|| OptionError::Unknown(name.to_string()))?;
    if args.is_empty() {
        return Err(bad(name, "needs at least one non-empty argument"));
    }
    let a = args.as_slice();
    match key {
        "resize" => {
            if a.len() > 8 {
                return Err(bad(name, format!("expects at most 8 arguments, got {}", a.len())));
            }
            if !a[0].is_empty() {
                o.resizing_type = parse_resizing_type(name, a[0])?;
            }
            set_size(o, name, &a[1..])?;
        }
        "size" => {
            if a.len() > 7 {
                return Err(bad(name, format!("expects at most 7 arguments, got {}", a.len())));
            }
            set_size(o, name, a)?;
        }
        "resizing_type" => o.resizing_type = parse_resizing_type(name, single(name, a)?)?,
        "width" => o.width = parse_u32(name, single(name, a)?, MAX_DIMENSION)?,
        "height" => o.height = parse_u32(name, single(name, a)?, MAX_DIMENSION)?,
        "min_width" => o.min_width = parse_u32(name, single(name, a)?, MAX_DIMENSION)?,
        "min_height" => o.min_height = parse_u32(name, single(name, a)?, MAX_DIMENSION)?,
        "dpr" => {
            let d = parse_f64(name, single(name, a)?, 0.0, 10.0)?;
            if d <= 0.0 {
                return Err(bad(name, "must be greater than 0"));
            }
            o.dpr = Some(d);
        }
        "enlarge" => o.enlarge = parse_bool(name, single(name, a)?)?,
        "extend" => o.extend = parse_extend(name, a)?,
        "gravity" => o.gravity = parse_gravity(name, a, true)?,
        "crop" => {
            expect_args(name, a, 2, 5)?;
            let w = parse_f64(name, a[0], 0.0, MAX_DIMENSION as f64)?;
            let h = parse_f64(name, a[1], 0.0, MAX_DIMENSION as f64)?;
            let gravity = if a.len() > 2 { Some(parse_gravity(name, &a[2..], true)?) } else { None };
            o.crop = if w == 0.0 && h == 0.0 { None } else { Some(Crop { width: w, height: h, gravity }) };
        }
        "trim" => {
            expect_args(name, a, 1, 4)?;
            let threshold = parse_f64(name, a[0], 0.0, 255.0)?;
            let color = match a.get(1) {
                Some(c) if !c.is_empty() => Some(parse_hex_color(name, c)?),
                _ => None,
            };
            let flag = |i: usize| a.get(i).filter(|b| !b.is_empty()).map(|b| parse_bool(name, b)).transpose();
            let (equal_hor, equal_ver) = (flag(2)?.unwrap_or(false), flag(3)?.unwrap_or(false));
            o.trim = if threshold > 0.0 { Some(Trim { threshold, color, equal_hor, equal_ver }) } else { None };
        }
        "padding" => {
            expect_args(name, a, 1, 4)?;
            let side =
                |i: usize| a.get(i).filter(|s| !s.is_empty()).map(|s| parse_u32(name, s, MAX_DIMENSION)).transpose();
            // CSS defaults: right ← top, bottom ← top, left ← right.
            let top = side(0)?.unwrap_or(0);
            let right = side(1)?.unwrap_or(top);
            let bottom = side(2)?.unwrap_or(top);
            let left = side(3)?.unwrap_or(right);
            let p = [top, right, bottom, left];
            o.padding = if p == [0; 4] { None } else { Some(p) };
        }
        "rotate" => {
            let r = parse_uint(name, single(name, a)?)?;
            if !matches!(r, 0 | 90 | 180 | 270) {
                return Err(bad(name, format!("{r} is not one of 0, 90, 180, 270")));
            }
            o.rotate = r as u16;
        }
        "auto_rotate" => o.auto_rotate = parse_bool(name, single(name, a)?)?,
        "flip" => {
            expect_args(name, a, 1, 2)?;
            let flag = |i: usize| a.get(i).filter(|b| !b.is_empty()).map(|b| parse_bool(name, b)).transpose();
            o.flip_h = flag(0)?.unwrap_or(false);
            o.flip_v = flag(1)?.unwrap_or(false);
        }
        "background" => o.background = Some(parse_color(name, a)?),
        "blur" => o.blur = parse_f64(name, single(name, a)?, 0.0, 100.0)?,
        "sharpen" => o.sharpen = parse_f64(name, single(name, a)?, 0.0, 100.0)?,
        "quality" => o.quality = parse_quality(name, single(name, a)?)?,
        "format_quality" => {
            if !a.len().is_multiple_of(2) {
                return Err(bad(name, "expects format:quality pairs"));
            }
            for pair in a.chunks(2) {
                let f = match pair[0] {
                    "jpg" | "png" | "webp" | "avif" | "gif" | "jxl" => Format::parse(pair[0]),
                    _ => None,
                }
                .ok_or_else(|| bad(name, format!("`{}` is not a format (jpg, png, webp, avif, gif, jxl)", pair[0])))?;
                let q = parse_u32(name, pair[1], 100)?;
                if q == 0 {
                    o.format_quality.remove(&f);
                } else {
                    o.format_quality.insert(f, q as u8);
                }
            }
        }
        "format" => {
            o.format = match single(name, a)? {
                "auto" => FormatChoice::Auto,
                s => FormatChoice::Explicit(Format::parse(s).ok_or_else(|| {
                    bad(name, format!("`{s}` is not an output format (jpg, png, webp, avif, gif, jxl, auto)"))
                })?),
            };
        }
        "strip_metadata" => o.strip_metadata = parse_bool(name, single(name, a)?)?,
        "keep_copyright" => o.keep_copyright = parse_bool(name, single(name, a)?)?,
        "strip_color_profile" => o.strip_color_profile = parse_bool(name, single(name, a)?)?,
        "max_bytes" => {
            let v = parse_uint(name, single(name, a)?)?;
            o.max_bytes = if v == 0 { None } else { Some(v) };
        }
        "cachebuster" => o.cachebuster = Some(single(name, a)?.to_string()),
        "expires" => {
            // 0 = no expiry (imgproxy).
            let v = parse_uint(name, single(name, a)?)?;
            let v = i64::try_from(v).map_err(|_| bad(name, format!("{v} is too large")))?;
            o.expires = if v == 0 { None } else { Some(v) };
        }
        "preset" => {
            if a.iter().any(|p| p.is_empty()) {
                return Err(bad(name, "preset names must be non-empty"));
            }
            for p in a {
                let body = presets
                    .map
                    .get(*p)
                    .ok_or_else(|| OptionError::UnknownPreset { option: name.to_string(), preset: (*p).to_string() })?;
                apply_preset(o, name, p, body, presets, depth)?;
            }
        }
        k if super::extra::apply(&mut o.extra, k, name, a)? => {}
        k if super::security::apply(&mut o.security, k, name, a)? => {}
        "watermark" => o.watermark = super::watermark::parse(name, a, o.watermark)?,
        _ => return Err(OptionError::Unknown(name.to_string())),
    }
    Ok(())
}

/// `width:height:enlarge:extend…` (the tail of `rs`, all of `s`); empty arguments leave the
/// current value.
fn set_size(o: &mut Options, name: &str, a: &[&str]) -> Result<(), OptionError> {
    let present = |i: usize| a.get(i).copied().filter(|s| !s.is_empty());
    if let Some(w) = present(0) {
        o.width = parse_u32(name, w, MAX_DIMENSION)?;
    }
    if let Some(h) = present(1) {
        o.height = parse_u32(name, h, MAX_DIMENSION)?;
    }
    if let Some(e) = present(2) {
        o.enlarge = parse_bool(name, e)?;
    }
    if a.len() > 3 {
        o.extend = parse_extend(name, &a[3..])?;
    }
    Ok(())
}
