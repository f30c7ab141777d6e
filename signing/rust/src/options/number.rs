//! Numbers in option arguments (SPEC §4 floats, §5.4 canonical formatting).

/// Canonical number formatting (SPEC §5.4): shortest round-trip decimal, never an exponent,
/// `-0` → `0`. `None` for NaN and infinities.
pub fn format_number(x: f64) -> Option<String> {
    if !x.is_finite() {
        return None;
    }
    if x == 0.0 {
        return Some("0".into());
    }
    Some(format!("{x}"))
}

/// `-?([0-9]+(\.[0-9]*)?|\.[0-9]+)` → f64 (SPEC §4 float).
pub(crate) fn parse_decimal(s: &str) -> Option<f64> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let ok = digits(int) && frac.is_none_or(digits) && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    if !ok {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}
