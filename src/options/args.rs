//! Argument parsers shared by the options (numbers, booleans, colours, gravity).

use super::{bad, Gravity, GravityKind, OptionError, Quality, ResizingType};

/// Largest width/height/padding a URL may ask for (the server's own output limit applies too).
pub const MAX_DIMENSION: u32 = 65_535;

/// `[0-9]+` (ASCII digits only: no sign, no spaces, no Unicode digits) as u64.
pub(super) fn parse_uint(option: &str, s: &str) -> Result<u64, OptionError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(option, format!("`{s}` is not a non-negative integer")));
    }
    s.parse().map_err(|_| bad(option, format!("`{s}` is too large")))
}

pub(super) fn parse_u32(option: &str, s: &str, max: u32) -> Result<u32, OptionError> {
    let v = parse_uint(option, s)?;
    if v > max as u64 {
        return Err(bad(option, format!("{v} is larger than {max}")));
    }
    Ok(v as u32)
}

/// A decimal `-?([0-9]+(\.[0-9]*)?|\.[0-9]+)` (no exponent, `inf` or `nan`) within `min..=max`.
pub(super) fn parse_f64(option: &str, s: &str, min: f64, max: f64) -> Result<f64, OptionError> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = body.split_once('.').map_or((body, None), |(i, f)| (i, Some(f)));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let well_formed =
        digits(int) && frac.is_none_or(digits) && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let v: f64 = match s.parse() {
        Ok(v) if well_formed => v,
        _ => return Err(bad(option, format!("`{s}` is not a decimal number"))),
    };
    if !v.is_finite() || v < min || v > max {
        return Err(bad(option, format!("{s} is outside {min}..={max}")));
    }
    Ok(if v == 0.0 { 0.0 } else { v })
}

/// Go's `strconv.ParseBool`, as imgproxy.
pub(super) fn parse_bool(option: &str, s: &str) -> Result<bool, OptionError> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(bad(option, format!("`{s}` is not a boolean (1/t/true or 0/f/false)"))),
    }
}

pub(super) fn parse_resizing_type(option: &str, s: &str) -> Result<ResizingType, OptionError> {
    Ok(match s {
        "fit" => ResizingType::Fit,
        "fill" => ResizingType::Fill,
        "fill-down" => ResizingType::FillDown,
        "force" => ResizingType::Force,
        "auto" => ResizingType::Auto,
        _ => return Err(bad(option, format!("`{s}` is not one of fit, fill, fill-down, force, auto"))),
    })
}

/// Parses gravity arguments: `type[:x:y]` (empty offsets = 0), `sm`, `fp:x:y`.
pub(super) fn parse_gravity(option: &str, args: &[&str], allow_smart: bool) -> Result<Gravity, OptionError> {
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
        "sm" if allow_smart => GravityKind::Sm,
        "sm" => return Err(bad(option, "smart gravity cannot position an extend")),
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
            let limit = MAX_DIMENSION as f64;
            if let Some(x) = args.get(1).filter(|x| !x.is_empty()) {
                g.x = parse_f64(option, x, -limit, limit)?;
            }
            if let Some(y) = args.get(2).filter(|y| !y.is_empty()) {
                g.y = parse_f64(option, y, -limit, limit)?;
            }
        }
    }
    Ok(g)
}

/// `extend[:gravity…]` (the extend bool is required; no smart gravity).
pub(super) fn parse_extend(option: &str, args: &[&str]) -> Result<Option<Gravity>, OptionError> {
    if args.len() > 4 {
        return Err(bad(option, "extend takes at most 4 arguments (extend:gravity:x:y)"));
    }
    let on = parse_bool(option, args.first().copied().unwrap_or(""))?;
    let gravity = if args.len() > 1 { parse_gravity(option, &args[1..], false)? } else { Gravity::default() };
    Ok(on.then_some(gravity))
}

/// A 3- or 6-digit hex colour (no `#`).
pub(super) fn parse_hex_color(option: &str, s: &str) -> Result<[u8; 3], OptionError> {
    let expand = |c: u8| c * 17;
    let digit = |c: char| c.to_digit(16).map(|d| d as u8);
    let digits: Option<Vec<u8>> = s.chars().map(digit).collect();
    match (s.len(), digits) {
        (3, Some(d)) => Ok([expand(d[0]), expand(d[1]), expand(d[2])]),
        (6, Some(d)) => Ok([d[0] * 16 + d[1], d[2] * 16 + d[3], d[4] * 16 + d[5]]),
        _ => Err(bad(option, format!("`{s}` is not a hex colour (rgb or rrggbb)"))),
    }
}

pub(super) fn parse_color(option: &str, args: &[&str]) -> Result<[u8; 3], OptionError> {
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

pub(super) fn expect_args(option: &str, args: &[&str], min: usize, max: usize) -> Result<(), OptionError> {
    if args.len() < min || args.len() > max {
        let want = if min == max { format!("{min}") } else { format!("{min} to {max}") };
        return Err(bad(option, format!("expects {want} argument(s), got {}", args.len())));
    }
    Ok(())
}

/// The single required argument of a scalar option.
pub(super) fn single<'a>(option: &str, args: &[&'a str]) -> Result<&'a str, OptionError> {
    expect_args(option, args, 1, 1)?;
    Ok(args[0])
}

pub(super) fn parse_quality(option: &str, s: &str) -> Result<Quality, OptionError> {
    if s == "auto" {
        return Ok(Quality::Auto);
    }
    let q = parse_u32(option, s, 100)?;
    Ok(if q == 0 { Quality::Default } else { Quality::Fixed(q as u8) })
}
