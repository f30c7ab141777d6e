//! `Accept` and Client Hints → a small features struct, the resolved device-pixel size, and the
//! exact `Vary` of the response.
//!
//! The signed URL bounds what a hint can do: `w:` is the largest CSS width; DPR comes from the
//! hint, rounded to the nearest half (1, 1.5, 2, 2.5, 3) and capped; the target is `w × dpr`
//! device pixels, or the `Width` hint when smaller, snapped *up* to the width ladder but never
//! above `w × dpr`. `Viewport-Width × dpr` bounds the target when no `Width` is sent. Without
//! hints the URL's numbers are used exactly.
//!
//! Every hint value therefore maps to a few resolved values ([`HintClass`]): one URL resolves to
//! at most `|DPR steps| + |ladder steps below w × max_dpr|` sizes (5 + 15 for `w:800` with the
//! defaults; 5 with only `h:`), per Accept class and Save-Data flag.

use serde::Serialize;

use crate::options::{FormatChoice, Options, Quality};

/// `Accept` normalised to what matters for images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AcceptClass {
    /// JPEG XL *and* AVIF (and so WebP): Chromium with JPEG XL, Safari 17+. A client listing
    /// JPEG XL without AVIF is classed by the rest of its list (no such browser ships).
    Jxl,
    /// AVIF (and WebP: every AVIF browser decodes WebP).
    Avif,
    Webp,
    #[default]
    Legacy,
}

impl AcceptClass {
    pub fn from_accept(accept: &str) -> AcceptClass {
        let has = |mime: &str| {
            accept.split(',').any(|part| {
                let mut it = part.split(';');
                let m = it.next().unwrap_or("").trim();
                let q_zero = it.any(|p| {
                    let p = p.trim();
                    // Parameter names are case-insensitive (RFC 9110), as in the edge's VCL.
                    let q = p.get(..2).filter(|n| n.eq_ignore_ascii_case("q=")).and_then(|_| p.get(2..));
                    q.and_then(|q| q.trim().parse::<f32>().ok()).is_some_and(|q| q <= 0.0)
                });
                m.eq_ignore_ascii_case(mime) && !q_zero
            })
        };
        if has("image/avif") && has("image/jxl") {
            AcceptClass::Jxl
        } else if has("image/avif") {
            AcceptClass::Avif
        } else if has("image/webp") {
            AcceptClass::Webp
        } else {
            AcceptClass::Legacy
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            AcceptClass::Jxl => "jxl",
            AcceptClass::Avif => "avif",
            AcceptClass::Webp => "webp",
            AcceptClass::Legacy => "legacy",
        }
    }
    /// The client takes AVIF.
    pub fn avif(self) -> bool {
        matches!(self, AcceptClass::Jxl | AcceptClass::Avif)
    }
    /// The client takes WebP.
    pub fn webp(self) -> bool {
        self != AcceptClass::Legacy
    }
}

/// The client hints a request carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Hints {
    pub dpr: Option<f64>,
    pub width: Option<u32>,
    pub viewport_width: Option<u32>,
    pub save_data: bool,
    /// `ECT` (effective connection type) was `slow-2g` or `2g`.
    pub slow_network: bool,
}

/// The request headers [`Hints::read`] asks for (the HTTP edge maps each to its header names:
/// `Sec-CH-DPR` or `DPR`, `Sec-CH-Width` or `Width`, `Sec-CH-Viewport-Width` or `Viewport-Width`,
/// `Save-Data`, `ECT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HintHeader {
    Dpr,
    Width,
    ViewportWidth,
    SaveData,
    Ect,
}

impl Hints {
    /// The hints from header values; `get` returns a header's value (the first of its names sent).
    /// Malformed, non-finite or non-positive numbers are ignored; widths are capped at 100,000.
    pub fn read<'a>(get: impl Fn(HintHeader) -> Option<&'a str>) -> Hints {
        let num = |h| get(h).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite() && *v > 0.0);
        Hints {
            dpr: num(HintHeader::Dpr),
            width: num(HintHeader::Width).map(|v| v.ceil().min(100_000.0) as u32),
            viewport_width: num(HintHeader::ViewportWidth).map(|v| v.ceil().min(100_000.0) as u32),
            save_data: get(HintHeader::SaveData).is_some_and(|v| v.trim().eq_ignore_ascii_case("on")),
            slow_network: get(HintHeader::Ect)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("2g") || v.trim().eq_ignore_ascii_case("slow-2g")),
        }
    }
}

/// A bound past the ladder's top step: no bound (the target is `w × dpr`).
pub const ABOVE_LADDER: u32 = u32::MAX;

/// The smallest ladder step ≥ `w`, or [`ABOVE_LADDER`] past the top.
fn ladder_step(w: u32, ladder: &[u32]) -> u32 {
    ladder.iter().copied().find(|l| *l >= w).unwrap_or(ABOVE_LADDER)
}

/// The DPR a hint resolves to: rounded to the nearest half (ties up: 1.25 → 1.5, 1.75 → 2),
/// within `1..=max_dpr`; 1 without a hint.
pub fn dpr_step(dpr: Option<f64>, max_dpr: f64) -> f64 {
    ((dpr.unwrap_or(1.0) * 2.0).round() / 2.0).clamp(1.0, max_dpr)
}

/// The hints reduced to what can change a response: a few values per hint whatever the client
/// sends. Negotiation reads only this, and the request memo is keyed on it, so distinct raw
/// values that resolve alike share one memo entry, one cache key and one ETag.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct HintClass {
    /// [`dpr_step`] of the DPR hint.
    pub dpr: f64,
    /// The device-pixel bound on the width: the `Width` hint, or without one `Viewport-Width ×
    /// dpr`, snapped up to the ladder ([`ABOVE_LADDER`] past its top); None without either.
    pub bound: Option<u32>,
    /// A `Width` hint was sent (then `Viewport-Width` is not consulted).
    pub width_sent: bool,
    /// `Save-Data: on`, or (when enabled) a 2g/slow-2g `ECT`.
    pub save_data: bool,
}

impl Default for HintClass {
    /// No hints.
    fn default() -> HintClass {
        HintClass { dpr: 1.0, bound: None, width_sent: false, save_data: false }
    }
}

impl Hints {
    /// What these hints resolve to under `s`.
    pub fn class(&self, s: &NegotiateSettings) -> HintClass {
        let dpr = dpr_step(self.dpr, s.max_dpr);
        let device = match (self.width, self.viewport_width) {
            (Some(w), _) => Some(w),
            (None, Some(vw)) => Some((vw as f64 * dpr).round() as u32),
            (None, None) => None,
        };
        HintClass {
            dpr,
            bound: device.map(|b| ladder_step(b, &s.ladder)),
            width_sent: self.width.is_some(),
            save_data: self.save_data || (s.ect && self.slow_network),
        }
    }
}

/// Request headers a response depended on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Vary {
    pub accept: bool,
    pub dpr: bool,
    pub width: bool,
    pub viewport_width: bool,
    pub save_data: bool,
    pub ect: bool,
}

impl Vary {
    /// The `Vary` header value, or None when nothing varied.
    pub fn header_value(&self) -> Option<String> {
        let mut v: Vec<&str> = Vec::new();
        if self.accept {
            v.push("Accept");
        }
        if self.dpr {
            v.extend(["Sec-CH-DPR", "DPR"]);
        }
        if self.width {
            v.extend(["Sec-CH-Width", "Width"]);
        }
        if self.viewport_width {
            v.extend(["Sec-CH-Viewport-Width", "Viewport-Width"]);
        }
        if self.save_data {
            v.push("Save-Data");
        }
        if self.ect {
            v.push("ECT");
        }
        if v.is_empty() {
            None
        } else {
            Some(v.join(", "))
        }
    }
}

/// Negotiation settings from the configuration.
#[derive(Clone, Debug)]
pub struct NegotiateSettings {
    pub max_dpr: f64,
    pub ladder: Vec<u32>,
    /// `ECT: 2g`/`slow-2g` counts as `Save-Data: on` (and responses vary on `ECT`).
    pub ect: bool,
}

/// The outcome of negotiation: options with the device-pixel ratio resolved, the Accept class,
/// Save-Data, and the Vary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Negotiated {
    pub options: Options,
    pub accept: AcceptClass,
    pub save_data: bool,
    pub vary: Vary,
    /// Device-pixel width targeted (0 when the URL has no width).
    pub target_width: u32,
}

/// Applies Accept and Client Hints to the URL's options.
pub fn negotiate(o: Options, accept: &str, hints: &Hints, s: &NegotiateSettings) -> Negotiated {
    negotiate_class(o, accept, &hints.class(s), s)
}

/// Applies Accept and resolved Client Hints ([`Hints::class`]) to the URL's options.
pub fn negotiate_class(mut o: Options, accept: &str, hints: &HintClass, s: &NegotiateSettings) -> Negotiated {
    let mut vary = Vary::default();
    let format_negotiated = matches!(o.format, FormatChoice::Auto | FormatChoice::Unset);
    let class = if format_negotiated {
        vary.accept = true;
        AcceptClass::from_accept(accept)
    } else {
        AcceptClass::Legacy
    };
    // Save-Data (and, when enabled, a 2g/slow-2g ECT) lowers quality unless the URL fixed it for
    // every format. Either resolves to the same flag, so both share one cached variant.
    let save_data = if matches!(o.quality, Quality::Fixed(_)) {
        false
    } else {
        vary.save_data = true;
        vary.ect = s.ect;
        hints.save_data
    };
    let mut target_width = 0;
    if o.dpr.is_none() && (o.width > 0 || o.height > 0) {
        vary.dpr = true;
        let dpr = hints.dpr.clamp(1.0, s.max_dpr);
        let mut eff = dpr;
        if o.width > 0 {
            vary.width = true;
            vary.viewport_width = !hints.width_sent;
            let full = (o.width as f64 * dpr).round() as u32;
            // The bound is already a ladder step (or past the top: no bound).
            let target = match hints.bound {
                Some(b) if b < full => b.max(1),
                _ => full,
            };
            target_width = target;
            eff = target as f64 / o.width as f64;
        }
        if eff != 1.0 {
            o.dpr = Some(eff);
        }
    } else if let Some(d) = o.dpr {
        target_width = (o.width as f64 * d).round() as u32;
    } else {
        target_width = o.width;
    }
    Negotiated { options: o, accept: class, save_data, vary, target_width }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{parse, Presets};

    fn settings() -> NegotiateSettings {
        NegotiateSettings {
            max_dpr: 3.0,
            ladder: vec![16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840],
            ect: true,
        }
    }
    fn opts(s: &str) -> Options {
        let segs: Vec<&str> = s.split('/').filter(|x| !x.is_empty()).collect();
        parse(&segs, None, &Presets::default()).unwrap()
    }
    /// Hints from (header name, value) pairs, named as a browser sends them.
    fn hints(pairs: &[(&'static str, &'static str)]) -> Hints {
        let names = |h| match h {
            HintHeader::Dpr => ["sec-ch-dpr", "dpr"],
            HintHeader::Width => ["sec-ch-width", "width"],
            HintHeader::ViewportWidth => ["sec-ch-viewport-width", "viewport-width"],
            HintHeader::SaveData => ["save-data", "save-data"],
            HintHeader::Ect => ["ect", "ect"],
        };
        Hints::read(|h| names(h).iter().find_map(|n| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| *v)))
    }

    #[test]
    fn accept_classes() {
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        let safari15 = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";
        let old = "image/png,image/*;q=0.8,*/*;q=0.5";
        assert_eq!(AcceptClass::from_accept(chrome), AcceptClass::Avif);
        assert_eq!(AcceptClass::from_accept(safari15), AcceptClass::Webp);
        assert_eq!(AcceptClass::from_accept(old), AcceptClass::Legacy);
        assert_eq!(AcceptClass::from_accept("image/avif;q=0, image/webp"), AcceptClass::Webp);
        assert_eq!(AcceptClass::from_accept(""), AcceptClass::Legacy);
    }

    #[test]
    fn jxl_class_needs_jxl_and_avif() {
        let chromium_jxl = "image/jxl,image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        let safari17 = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,\
                        image/svg+xml,image/*;q=0.8,*/*;q=0.5";
        assert_eq!(AcceptClass::from_accept(chromium_jxl), AcceptClass::Jxl);
        assert_eq!(AcceptClass::from_accept(safari17), AcceptClass::Jxl);
        assert_eq!(AcceptClass::from_accept("IMAGE/JXL , image/AVIF"), AcceptClass::Jxl);
        // JPEG XL alone does not promise AVIF (and WebP): classed by the rest of the list.
        assert_eq!(AcceptClass::from_accept("image/jxl,image/webp"), AcceptClass::Webp);
        assert_eq!(AcceptClass::from_accept("image/jxl"), AcceptClass::Legacy);
        assert_eq!(AcceptClass::from_accept("image/jxl;q=0,image/avif"), AcceptClass::Avif);
        assert_eq!(AcceptClass::from_accept("image/jxl,image/avif;q=0,image/webp"), AcceptClass::Webp);
        assert_eq!(AcceptClass::Jxl.name(), "jxl");
        assert!(AcceptClass::Jxl.avif() && AcceptClass::Jxl.webp());
    }

    #[test]
    fn q_parameter_name_is_case_insensitive_like_the_edge() {
        // RFC 9110 parameter names are case-insensitive; the VCL's `(?i)` regex already read
        // `Q=0` as a refusal, so the origin must too (.ci/check_deploy.py vcl-accept).
        assert_eq!(AcceptClass::from_accept("image/avif;Q=0,image/webp"), AcceptClass::Webp);
        assert_eq!(AcceptClass::from_accept("image/avif; Q=0.0 ,image/webp"), AcceptClass::Webp);
    }

    #[test]
    fn no_hints_use_url_numbers_exactly() {
        let n = negotiate(opts("w:500"), "", &Hints::default(), &settings());
        assert_eq!(n.options.dpr, None);
        assert_eq!(n.target_width, 500);
        assert!(n.vary.dpr && n.vary.width && n.vary.viewport_width);
    }

    #[test]
    fn dpr_hint_is_capped() {
        let n = negotiate(opts("w:500"), "", &hints(&[("sec-ch-dpr", "2")]), &settings());
        assert_eq!((n.target_width, n.options.dpr), (1000, Some(2.0)));
        let n = negotiate(opts("w:500"), "", &hints(&[("dpr", "5")]), &settings());
        assert_eq!(n.target_width, 1500);
    }

    #[test]
    fn width_hint_snaps_up_but_never_above_url_times_dpr() {
        let n = negotiate(opts("w:1000"), "", &hints(&[("sec-ch-dpr", "2"), ("sec-ch-width", "700")]), &settings());
        assert_eq!(n.target_width, 750);
        assert!(!n.vary.viewport_width);
        // Width larger than w × dpr cannot enlarge.
        let n = negotiate(opts("w:300"), "", &hints(&[("sec-ch-width", "2000")]), &settings());
        assert_eq!(n.target_width, 300);
        // Snapping stops at w × dpr.
        let n = negotiate(opts("w:700"), "", &hints(&[("width", "690")]), &settings());
        assert_eq!(n.target_width, 700);
    }

    #[test]
    fn viewport_bounds_when_no_width() {
        let n = negotiate(
            opts("w:2000"),
            "",
            &hints(&[("sec-ch-viewport-width", "400"), ("sec-ch-dpr", "2")]),
            &settings(),
        );
        assert_eq!(n.target_width, 828);
    }

    #[test]
    fn dpr_resolves_to_half_steps() {
        let step = |d| dpr_step(Some(d), 3.0);
        assert_eq!(
            [step(0.5), step(1.1), step(1.25), step(1.3), step(1.74), step(1.75)],
            [1.0, 1.0, 1.5, 1.5, 1.5, 2.0]
        );
        assert_eq!([step(2.2), step(2.625), step(2.75), step(9.0), dpr_step(None, 3.0)], [2.0, 2.5, 3.0, 3.0, 1.0]);
        assert_eq!(dpr_step(Some(2.9), 2.75), 2.75);
        let n = negotiate(opts("w:800"), "", &hints(&[("sec-ch-dpr", "1.3")]), &settings());
        assert_eq!((n.target_width, n.options.dpr), (1200, Some(1.5)));
        let n = negotiate(opts("h:400"), "", &hints(&[("dpr", "2.6")]), &settings());
        assert_eq!(n.options.dpr, Some(2.5));
    }

    #[test]
    fn any_hint_values_resolve_to_a_few_classes_and_sizes() {
        // Issue #16: every DPR × Width × Viewport-Width value, including ones past the ladder,
        // resolves to a bounded set; the memo and the cache key follow it.
        let (mut classes, mut sizes, mut heights) = (Vec::new(), Vec::new(), Vec::new());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut below = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..5000 {
            let h = Hints {
                dpr: Some(0.01 + below(100_000) as f64 / 10_000.0),
                width: (below(3) > 0).then(|| 1 + below(100_000) as u32),
                viewport_width: (below(3) > 0).then(|| 1 + below(100_000) as u32),
                ..Hints::default()
            };
            let c = h.class(&settings());
            if !classes.contains(&c) {
                classes.push(c);
            }
            let n = negotiate_class(opts("w:800"), "", &c, &settings());
            if !sizes.contains(&n.options.dpr.map(f64::to_bits)) {
                sizes.push(n.options.dpr.map(f64::to_bits));
            }
            let n = negotiate_class(opts("h:400"), "", &c, &settings());
            if !heights.contains(&n.options.dpr.map(f64::to_bits)) {
                heights.push(n.options.dpr.map(f64::to_bits));
            }
        }
        // 5 DPR steps × (17 bounds from Width + 17 from Viewport-Width + none).
        assert!(classes.len() <= 5 * 35, "{} classes", classes.len());
        // w:800: w × {1, 1.5, 2, 2.5, 3} and the 15 ladder steps below 2400.
        assert!(sizes.len() <= 20, "{} sizes", sizes.len());
        assert!(heights.len() <= 5, "{} heights", heights.len());
    }

    #[test]
    fn explicit_things_do_not_vary() {
        let n = negotiate(
            opts("w:500/dpr:2/f:webp/q:70"),
            "image/avif",
            &hints(&[("sec-ch-dpr", "3"), ("save-data", "on")]),
            &settings(),
        );
        assert_eq!(n.vary, Vary::default());
        assert_eq!(n.vary.header_value(), None);
        assert_eq!(n.target_width, 1000);
        assert!(!n.save_data);
        let n = negotiate(opts(""), "image/avif", &hints(&[("save-data", "on")]), &settings());
        assert_eq!(n.vary.header_value().as_deref(), Some("Accept, Save-Data, ECT"));
        assert!(n.save_data);
        assert_eq!(n.accept, AcceptClass::Avif);
    }

    #[test]
    fn slow_ect_counts_as_save_data_only_when_enabled_and_quality_is_free() {
        for (ect, slow) in [("2g", true), ("slow-2g", true), (" SLOW-2G ", true), ("3g", false), ("4g", false)] {
            let h = hints(&[("ect", ect)]);
            assert_eq!(h.slow_network, slow, "{ect}");
            let n = negotiate(opts("w:100"), "", &h, &settings());
            assert_eq!(n.save_data, slow, "{ect}");
            assert!(n.vary.header_value().unwrap().ends_with("Save-Data, ECT"));
        }
        // Same resolved flag as Save-Data: one variant for both.
        let a = negotiate(opts("w:100"), "", &hints(&[("ect", "2g")]), &settings());
        let b = negotiate(opts("w:100"), "", &hints(&[("save-data", "on")]), &settings());
        assert_eq!(crate::cache::key("local:///a.jpg", &a), crate::cache::key("local:///a.jpg", &b));
        // Switched off: ignored and not in Vary.
        let off = NegotiateSettings { ect: false, ..settings() };
        let n = negotiate(opts("w:100"), "", &hints(&[("ect", "2g")]), &off);
        assert!(!n.save_data);
        assert!(!n.vary.header_value().unwrap().contains("ECT"));
        // Fixed quality: neither Save-Data nor ECT matters.
        let n = negotiate(opts("w:100/q:80"), "", &hints(&[("ect", "2g")]), &settings());
        assert!(!n.save_data);
        assert!(!n.vary.header_value().unwrap_or_default().contains("ECT"));
    }
}
