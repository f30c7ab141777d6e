//! [`Options::from_json`]: the canonical JSON option object (SPEC §4), as the test vectors and
//! the other SDKs write it.

use serde_json::{Map, Value};

use super::*;

impl Options {
    /// Reads the canonical JSON option object (SPEC §4). Unknown keys (top-level or inside
    /// composite objects) are rejected; `null` means "not set"; integer fields accept integral
    /// floats (`300.0`).
    pub fn from_json(v: &Value) -> Result<Options, OptionError> {
        let obj = v.as_object().ok_or_else(|| OptionError::top("options", "must be an object"))?;
        let mut o = Options::default();
        for (key, val) in obj {
            if val.is_null() {
                continue;
            }
            let c = Ctx::top(key.as_str());
            match key.as_str() {
                "auto_rotate" => o.auto_rotate = Some(j_bool(&c, val)?),
                "background" => {
                    o.background = Some(match val {
                        Value::String(s) => Background::Hex(c.hex(s)?),
                        Value::Object(m) => {
                            check_keys(&c, m, &["r", "g", "b"])?;
                            let ch = |k: &str| -> Result<u8, OptionError> {
                                let cc = c.sub(k);
                                Ok(j_int(&cc, m.get(k).unwrap_or(&Value::Null), 255)? as u8)
                            };
                            Background::Rgb { r: ch("r")?, g: ch("g")?, b: ch("b")? }
                        }
                        _ => return Err(c.fail("must be a hex string or {r, g, b}")),
                    })
                }
                "blur" => o.blur = Some(j_float(&c, val)?),
                "cachebuster" => o.cachebuster = Some(j_str(&c, val)?.to_string()),
                "crop" => {
                    let m = j_obj(&c, val, &["width", "height", "gravity"])?;
                    o.crop = Some(Crop {
                        width: j_u32(&c.sub("width"), m.get("width").unwrap_or(&Value::Null))?,
                        height: j_u32(&c.sub("height"), m.get("height").unwrap_or(&Value::Null))?,
                        gravity: j_field(m, "gravity", |v| j_gravity(&c.sub("gravity"), v))?,
                    })
                }
                "dpr" => o.dpr = Some(j_float(&c, val)?),
                "enlarge" => o.enlarge = Some(j_bool(&c, val)?),
                "expires" => o.expires = Some(j_int(&c, val, u64::MAX)?),
                "extend" => o.extend = Some(j_extend(&c, val)?),
                "flip" => {
                    let m = j_obj(&c, val, &["horizontal", "vertical"])?;
                    o.flip = Some(Flip {
                        horizontal: j_field(m, "horizontal", |v| j_bool(&c.sub("horizontal"), v))?.unwrap_or(false),
                        vertical: j_field(m, "vertical", |v| j_bool(&c.sub("vertical"), v))?.unwrap_or(false),
                    })
                }
                "format" => {
                    o.format = Some(
                        j_str(&c, val)?
                            .parse()
                            .map_err(|_| c.fail("must be one of jpg, png, webp, avif, gif, jxl, auto"))?,
                    )
                }
                "format_quality" => {
                    let arr = val.as_array().ok_or_else(|| c.fail("must be a non-empty array of {format, quality}"))?;
                    let mut v = Vec::new();
                    for (i, e) in arr.iter().enumerate() {
                        let ec = c.sub(&i.to_string());
                        let m = j_obj(&ec, e, &["format", "quality"])?;
                        let fc = ec.sub("format");
                        let format: Format = j_str(&fc, m.get("format").unwrap_or(&Value::Null))?
                            .parse()
                            .map_err(|_| fc.fail("must be one of jpg, png, webp, avif, gif, jxl"))?;
                        let quality = j_int(&ec.sub("quality"), m.get("quality").unwrap_or(&Value::Null), 100)? as u8;
                        v.push(FormatQuality { format, quality });
                    }
                    o.format_quality = Some(v);
                }
                "gravity" => o.gravity = Some(j_gravity(&c, val)?),
                "height" => o.height = Some(j_u32(&c, val)?),
                "keep_copyright" => o.keep_copyright = Some(j_bool(&c, val)?),
                "max_bytes" => o.max_bytes = Some(j_int(&c, val, u64::MAX)?),
                "min_height" => o.min_height = Some(j_u32(&c, val)?),
                "min_width" => o.min_width = Some(j_u32(&c, val)?),
                "padding" => {
                    o.padding = Some(if val.is_number() {
                        Padding::All(j_u32(&c, val)?)
                    } else {
                        let m = j_obj(&c, val, &["top", "right", "bottom", "left"])?;
                        let side = |k: &str| j_field(m, k, |v| j_u32(&c.sub(k), v));
                        Padding::Sides {
                            top: side("top")?,
                            right: side("right")?,
                            bottom: side("bottom")?,
                            left: side("left")?,
                        }
                    })
                }
                "preset" => {
                    let arr = val.as_array().ok_or_else(|| c.fail("must be a non-empty array of names"))?;
                    let names = arr
                        .iter()
                        .enumerate()
                        .map(|(i, n)| j_str(&c.sub(&i.to_string()), n).map(str::to_string))
                        .collect::<Result<Vec<_>, _>>()?;
                    o.preset = Some(names);
                }
                "quality" => {
                    o.quality = Some(match val {
                        Value::String(s) if s == "auto" => Quality::Auto,
                        Value::Number(_) => Quality::Value(j_int(&c, val, 100)? as u8),
                        _ => return Err(c.fail("must be an integer 0-100 or \"auto\"")),
                    })
                }
                "resize" => {
                    let m = j_obj(&c, val, &["resizing_type", "width", "height", "enlarge", "extend"])?;
                    o.resize = Some(Resize {
                        resizing_type: j_field(m, "resizing_type", |v| j_rt(&c.sub("resizing_type"), v))?,
                        width: j_field(m, "width", |v| j_u32(&c.sub("width"), v))?,
                        height: j_field(m, "height", |v| j_u32(&c.sub("height"), v))?,
                        enlarge: j_field(m, "enlarge", |v| j_bool(&c.sub("enlarge"), v))?,
                        extend: j_field(m, "extend", |v| j_extend(&c.sub("extend"), v))?,
                    })
                }
                "resizing_type" => o.resizing_type = Some(j_rt(&c, val)?),
                "rotate" => o.rotate = Some(j_int(&c, val, 270)? as u16),
                "sharpen" => o.sharpen = Some(j_float(&c, val)?),
                "size" => {
                    let m = j_obj(&c, val, &["width", "height", "enlarge", "extend"])?;
                    o.size = Some(Size {
                        width: j_field(m, "width", |v| j_u32(&c.sub("width"), v))?,
                        height: j_field(m, "height", |v| j_u32(&c.sub("height"), v))?,
                        enlarge: j_field(m, "enlarge", |v| j_bool(&c.sub("enlarge"), v))?,
                        extend: j_field(m, "extend", |v| j_extend(&c.sub("extend"), v))?,
                    })
                }
                "strip_color_profile" => o.strip_color_profile = Some(j_bool(&c, val)?),
                "strip_metadata" => o.strip_metadata = Some(j_bool(&c, val)?),
                "trim" => {
                    let m = j_obj(&c, val, &["threshold", "color", "equal_hor", "equal_ver"])?;
                    o.trim = Some(Trim {
                        threshold: j_float(&c.sub("threshold"), m.get("threshold").unwrap_or(&Value::Null))?,
                        color: j_field(m, "color", |v| j_str(&c.sub("color"), v).map(str::to_string))?,
                        equal_hor: j_field(m, "equal_hor", |v| j_bool(&c.sub("equal_hor"), v))?,
                        equal_ver: j_field(m, "equal_ver", |v| j_bool(&c.sub("equal_ver"), v))?,
                    })
                }
                "watermark" => o.watermark = Some(Watermark::from_json(val)?),
                "width" => o.width = Some(j_u32(&c, val)?),
                k if super::extra::from_json(&mut o, k, &c, val)? => {}
                other => return Err(OptionError::top(other, format!("is not an option (unknown key \"{other}\")"))),
            }
        }
        Ok(o)
    }
}

pub(super) fn check_keys(c: &Ctx<'_>, m: &Map<String, Value>, allowed: &[&str]) -> Result<(), OptionError> {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(c.fail(format!("has unknown field \"{k}\" (allowed: {})", allowed.join(", "))));
        }
    }
    Ok(())
}

pub(super) fn j_obj<'v>(c: &Ctx<'_>, v: &'v Value, allowed: &[&str]) -> Result<&'v Map<String, Value>, OptionError> {
    let m = v.as_object().ok_or_else(|| c.fail(format!("must be an object {{{}}}", allowed.join(", "))))?;
    check_keys(c, m, allowed)?;
    Ok(m)
}

/// An optional field: absent or `null` → `None`.
pub(super) fn j_field<T>(
    m: &Map<String, Value>,
    k: &str,
    f: impl FnOnce(&Value) -> Result<T, OptionError>,
) -> Result<Option<T>, OptionError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => f(v).map(Some),
    }
}

pub(super) fn j_bool(c: &Ctx<'_>, v: &Value) -> Result<bool, OptionError> {
    v.as_bool().ok_or_else(|| c.fail("must be a boolean"))
}

pub(super) fn j_str<'v>(c: &Ctx<'_>, v: &'v Value) -> Result<&'v str, OptionError> {
    v.as_str().ok_or_else(|| c.fail("must be a string"))
}

pub(super) fn j_float(c: &Ctx<'_>, v: &Value) -> Result<f64, OptionError> {
    v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| c.fail("must be a finite number"))
}

pub(super) fn j_int(c: &Ctx<'_>, v: &Value, max: u64) -> Result<u64, OptionError> {
    let n = match v.as_u64() {
        Some(n) => n,
        None => {
            let f = v.as_f64().ok_or_else(|| c.fail("must be an integer"))?;
            if f.fract() != 0.0 {
                return Err(c.fail("must be an integer"));
            }
            if f < 0.0 {
                return Err(c.fail("must be >= 0"));
            }
            if f > u64::MAX as f64 {
                return Err(c.fail(format!("must be <= {max}")));
            }
            f as u64
        }
    };
    if n > max {
        return Err(c.fail(format!("must be <= {max}")));
    }
    Ok(n)
}

fn j_u32(c: &Ctx<'_>, v: &Value) -> Result<u32, OptionError> {
    Ok(j_int(c, v, u32::MAX as u64)? as u32)
}

fn j_rt(c: &Ctx<'_>, v: &Value) -> Result<ResizingType, OptionError> {
    j_str(c, v)?.parse().map_err(|_| c.fail("must be one of fit, fill, fill-down, force, auto"))
}

fn j_gravity(c: &Ctx<'_>, v: &Value) -> Result<Gravity, OptionError> {
    let m = v.as_object().ok_or_else(|| c.fail("must be an object {type, …}"))?;
    let tc = c.sub("type");
    let t = j_str(&tc, m.get("type").unwrap_or(&Value::Null))
        .map_err(|_| tc.fail("must be one of no, so, ea, we, noea, nowe, soea, sowe, ce, sm, fp"))?;
    match t {
        "sm" => {
            check_keys(c, m, &["type"])?;
            Ok(Gravity::Smart)
        }
        "fp" => {
            check_keys(c, m, &["type", "x", "y"])?;
            Ok(Gravity::FocusPoint {
                x: j_float(&c.sub("x"), m.get("x").unwrap_or(&Value::Null))?,
                y: j_float(&c.sub("y"), m.get("y").unwrap_or(&Value::Null))?,
            })
        }
        t => {
            let kind = Compass::parse(t)
                .ok_or_else(|| tc.fail("must be one of no, so, ea, we, noea, nowe, soea, sowe, ce, sm, fp"))?;
            check_keys(c, m, &["type", "x_offset", "y_offset"])?;
            Ok(Gravity::Compass {
                kind,
                x_offset: j_field(m, "x_offset", |v| j_float(&c.sub("x_offset"), v))?,
                y_offset: j_field(m, "y_offset", |v| j_float(&c.sub("y_offset"), v))?,
            })
        }
    }
}

pub(super) fn j_extend(c: &Ctx<'_>, v: &Value) -> Result<Extend, OptionError> {
    let m = j_obj(c, v, &["extend", "gravity"])?;
    Ok(Extend {
        extend: j_bool(&c.sub("extend"), m.get("extend").unwrap_or(&Value::Null))?,
        gravity: j_field(m, "gravity", |g| j_gravity(&c.sub("gravity"), g))?,
    })
}
