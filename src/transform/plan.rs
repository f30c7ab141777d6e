//! Pure geometry: where to crop, how far to resize, what to cut, extend and pad, for one upright
//! source size (no libvips here).

use serde::Serialize;

use super::TransformError;
use crate::options::{Gravity, GravityKind, Options, ResizingType};

/// A rectangle in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// Resize, crop and extend steps for one source size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Geometry {
    /// The whole (upright) source resized to this size.
    pub resize_w: u32,
    pub resize_h: u32,
    /// `c:` crop region, in resized coordinates (None: the whole image).
    pub crop: Option<Rect>,
    /// Gravity of the crop when smart (`sm`): the crop is then found by libvips.
    pub crop_smart: bool,
    /// Fill: the box cut out of the (cropped) resized image.
    pub fill: Option<(u32, u32)>,
    pub fill_gravity: Gravity,
    /// Extend the canvas to this size (with background), positioned by gravity.
    pub extend: Option<(u32, u32, Gravity)>,
    /// top, right, bottom, left (device pixels)
    pub padding: [u32; 4],
    /// Final output size.
    pub out_w: u32,
    pub out_h: u32,
}

fn resolve_len(v: f64, full: u32) -> u32 {
    if v <= 0.0 {
        full
    } else if v < 1.0 {
        ((v * full as f64).round() as u32).clamp(1, full)
    } else {
        (v.round() as u32).clamp(1, full)
    }
}

/// Where a `bw×bh` box sits inside `w×h` for a gravity (offsets in device pixels).
pub fn gravity_offset(g: Gravity, w: u32, h: u32, bw: u32, bh: u32, dpr: f64) -> (u32, u32) {
    let (w, h, bw, bh) = (w as f64, h as f64, bw as f64, bh as f64);
    let (ox, oy) = (g.x * dpr, g.y * dpr);
    let (cx, cy) = ((w - bw) / 2.0, (h - bh) / 2.0);
    let (x, y) = match g.kind {
        GravityKind::Ce | GravityKind::Sm => (cx + ox, cy + oy),
        GravityKind::No => (cx + ox, oy),
        GravityKind::So => (cx + ox, h - bh - oy),
        GravityKind::Ea => (w - bw - ox, cy + oy),
        GravityKind::We => (ox, cy + oy),
        GravityKind::Noea => (w - bw - ox, oy),
        GravityKind::Nowe => (ox, oy),
        GravityKind::Soea => (w - bw - ox, h - bh - oy),
        GravityKind::Sowe => (ox, h - bh - oy),
        GravityKind::Fp => (g.x * w - bw / 2.0, g.y * h - bh / 2.0),
    };
    let clamp = |v: f64, max: f64| v.round().clamp(0.0, max.max(0.0)) as u32;
    (clamp(x, w - bw), clamp(y, h - bh))
}

/// Plans the geometry for an upright `src_w×src_h` source (imgproxy's semantics: crop, then
/// resize by type, then fill-crop, then extend, then padding; all sizes × dpr).
pub fn plan(src_w: u32, src_h: u32, o: &Options, max_dim: u32) -> Result<Geometry, TransformError> {
    let dpr = o.dpr.unwrap_or(1.0);
    let (cw, ch) = match &o.crop {
        Some(c) => (resolve_len(c.width, src_w), resolve_len(c.height, src_h)),
        None => (src_w, src_h),
    };
    let dst_w = (o.width as f64 * dpr).round();
    let dst_h = (o.height as f64 * dpr).round();
    let rt = match o.resizing_type {
        ResizingType::Auto if dst_w > 0.0 && dst_h > 0.0 => {
            if (cw >= ch) == (dst_w >= dst_h) {
                ResizingType::Fill
            } else {
                ResizingType::Fit
            }
        }
        ResizingType::Auto => ResizingType::Fit,
        other => other,
    };
    let ws = if dst_w > 0.0 { dst_w / cw as f64 } else { 0.0 };
    let hs = if dst_h > 0.0 { dst_h / ch as f64 } else { 0.0 };
    let (mut sx, mut sy) = if ws == 0.0 && hs == 0.0 {
        (1.0, 1.0)
    } else if ws == 0.0 {
        (hs, hs)
    } else if hs == 0.0 {
        (ws, ws)
    } else {
        match rt {
            ResizingType::Fit => (ws.min(hs), ws.min(hs)),
            ResizingType::Fill | ResizingType::FillDown => (ws.max(hs), ws.max(hs)),
            ResizingType::Force => (ws, hs),
            ResizingType::Auto => unreachable!("resolved above"),
        }
    };
    // `z`: the resulting size × zoom (imgproxy: after the type's scale, before enlarge).
    let (zx, zy) = o.extra.zoom;
    sx *= zx;
    sy *= zy;
    let (dst_w, dst_h) = ((dst_w * zx).round(), (dst_h * zy).round());
    if !o.enlarge {
        sx = sx.min(1.0);
        sy = sy.min(1.0);
    }
    let min_w = o.min_width as f64 * dpr;
    let min_h = o.min_height as f64 * dpr;
    if min_w > 0.0 && cw as f64 * sx < min_w {
        let f = min_w / (cw as f64 * sx);
        sx *= f;
        if rt != ResizingType::Force {
            sy *= f;
        }
    }
    if min_h > 0.0 && ch as f64 * sy < min_h {
        let f = min_h / (ch as f64 * sy);
        sy *= f;
        if rt != ResizingType::Force {
            sx *= f;
        }
    }
    let too_large = |w: f64, h: f64| w > max_dim as f64 || h > max_dim as f64;
    let resize_w = ((src_w as f64 * sx).round()).max(1.0);
    let resize_h = ((src_h as f64 * sy).round()).max(1.0);
    // The whole source is resized before the crop, so bound it (enlarging a small crop).
    if resize_w > (max_dim as f64) * 4.0 || resize_h > (max_dim as f64) * 4.0 {
        return Err(TransformError::OutputTooLarge { width: resize_w as u64, height: resize_h as u64, limit: max_dim });
    }
    let (resize_w, resize_h) = (resize_w as u32, resize_h as u32);
    let rcw = ((cw as f64 * sx).round() as u32).clamp(1, resize_w);
    let rch = ((ch as f64 * sy).round() as u32).clamp(1, resize_h);
    let mut crop_smart = false;
    let crop = match &o.crop {
        None => None,
        Some(c) => {
            let g = c.gravity.unwrap_or(o.gravity);
            if g.kind == GravityKind::Sm {
                crop_smart = true;
                Some(Rect { x: 0, y: 0, w: rcw, h: rch })
            } else {
                let (x, y) = gravity_offset(g, resize_w, resize_h, rcw, rch, sx);
                Some(Rect { x, y, w: rcw, h: rch })
            }
        }
    };
    let (mut out_w, mut out_h) = (rcw, rch);
    let mut fill = None;
    if matches!(rt, ResizingType::Fill | ResizingType::FillDown) && dst_w > 0.0 && dst_h > 0.0 {
        let (mut bw, mut bh) = ((dst_w as u32).min(rcw), (dst_h as u32).min(rch));
        if rt == ResizingType::FillDown && ((dst_w as u32) > rcw || (dst_h as u32) > rch) {
            // Not enough pixels: keep the requested aspect ratio at the largest size that fits.
            let aspect = dst_w / dst_h;
            if rcw as f64 / rch as f64 > aspect {
                bh = rch;
                bw = ((rch as f64 * aspect).round() as u32).clamp(1, rcw);
            } else {
                bw = rcw;
                bh = ((rcw as f64 / aspect).round() as u32).clamp(1, rch);
            }
        }
        if (bw, bh) != (rcw, rch) {
            fill = Some((bw, bh));
            out_w = bw;
            out_h = bh;
        }
    }
    let mut extend = None;
    if let Some(g) = o.extend {
        if dst_w > 0.0 || dst_h > 0.0 {
            let ew = (dst_w as u32).max(out_w);
            let eh = (dst_h as u32).max(out_h);
            if (ew, eh) != (out_w, out_h) {
                extend = Some((ew, eh, g));
                out_w = ew;
                out_h = eh;
            }
        }
    }
    if let (None, Some(g)) = (extend, o.extra.extend_aspect_ratio) {
        extend = extend_aspect_ratio(out_w, out_h, dst_w, dst_h).map(|(w, h)| (w, h, g));
        if let Some((w, h, _)) = extend {
            (out_w, out_h) = (w, h);
        }
    }
    let padding = o.padding.map(|p| p.map(|v| (v as f64 * dpr).round() as u32)).unwrap_or([0; 4]);
    out_w += padding[1] + padding[3];
    out_h += padding[0] + padding[2];
    if too_large(out_w as f64, out_h as f64) {
        return Err(TransformError::OutputTooLarge { width: out_w as u64, height: out_h as u64, limit: max_dim });
    }
    Ok(Geometry { resize_w, resize_h, crop, crop_smart, fill, fill_gravity: o.gravity, extend, padding, out_w, out_h })
}

/// `exar`: the canvas that gives `w×h` the requested `dst_w:dst_h` aspect ratio (imgproxy's
/// rule; None when either is unset or the ratio already matches).
fn extend_aspect_ratio(w: u32, h: u32, dst_w: f64, dst_h: f64) -> Option<(u32, u32)> {
    if dst_w <= 0.0 || dst_h <= 0.0 {
        return None;
    }
    let (dw, dh) = (dst_w / w as f64, dst_h / h as f64);
    if dh > dw {
        Some((w, ((w as f64 * dst_h / dst_w).round() as u32).max(h)))
    } else if dw > dh {
        Some((((h as f64 * dst_w / dst_h).round() as u32).max(w), h))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Crop;
    use crate::transform::testutil::opts;

    fn out(src: (u32, u32), s: &str) -> (u32, u32) {
        let g = plan(src.0, src.1, &opts(s), 8192).unwrap();
        (g.out_w, g.out_h)
    }

    #[test]
    fn resize_types() {
        assert_eq!(out((4000, 3000), "rs:fit:800:800"), (800, 600));
        assert_eq!(out((4000, 3000), "w:800"), (800, 600));
        assert_eq!(out((4000, 3000), "h:300"), (400, 300));
        assert_eq!(out((4000, 3000), "rs:fill:800:800"), (800, 800));
        assert_eq!(out((4000, 3000), "rs:force:800:100"), (800, 100));
        assert_eq!(out((4000, 3000), "rs:auto:800:600"), (800, 600));
        assert_eq!(out((4000, 3000), "rs:auto:600:800"), (600, 450));
        // No enlarge by default; enlarge on request.
        assert_eq!(out((400, 300), "w:800"), (400, 300));
        assert_eq!(out((400, 300), "w:800/el:1"), (800, 600));
        assert_eq!(out((400, 300), "rs:fill:800:800"), (400, 300));
        // fill-down keeps the requested aspect ratio when the source is too small.
        assert_eq!(out((400, 300), "rs:fill-down:800:400"), (400, 200));
        assert_eq!(out((4000, 3000), "rs:fill-down:800:400"), (800, 400));
        assert_eq!(out((4000, 3000), ""), (4000, 3000));
    }

    #[test]
    fn dpr_min_extend_padding() {
        assert_eq!(out((4000, 3000), "w:400/dpr:2"), (800, 600));
        assert_eq!(out((4000, 3000), "w:100/mw:200"), (200, 150));
        assert_eq!(out((400, 300), "rs:fit:800:800/ex:1"), (800, 800));
        let g = plan(400, 300, &opts("rs:fit:800:800/ex:1:nowe"), 8192).unwrap();
        assert_eq!(g.extend.map(|e| (e.0, e.1)), Some((800, 800)));
        assert_eq!(out((400, 300), "pd:10:20"), (440, 320));
        assert_eq!(out((400, 300), "pd:10/dpr:2"), (440, 340));
    }

    #[test]
    fn crop_before_resize() {
        let mut o = opts("w:100");
        o.crop = Some(Crop { width: 1000.0, height: 500.0, gravity: None });
        let g = plan(4000, 3000, &o, 8192).unwrap();
        assert_eq!((g.out_w, g.out_h), (100, 50));
        assert_eq!((g.resize_w, g.resize_h), (400, 300));
        assert_eq!(g.crop, Some(Rect { x: 150, y: 125, w: 100, h: 50 }));
        let g = plan(4000, 3000, &opts("c:0.5:0.5:nowe"), 8192).unwrap();
        assert_eq!(g.crop, Some(Rect { x: 0, y: 0, w: 2000, h: 1500 }));
    }

    #[test]
    fn limits() {
        assert!(matches!(plan(4000, 3000, &opts("w:9000/el:1"), 8192), Err(TransformError::OutputTooLarge { .. })));
        assert!(plan(4000, 3000, &opts("w:8192/el:1"), 8192).is_ok());
    }

    #[test]
    fn gravity_math() {
        let g = |k| Gravity { kind: k, x: 0.0, y: 0.0 };
        assert_eq!(gravity_offset(g(GravityKind::Ce), 100, 50, 20, 10, 1.0), (40, 20));
        assert_eq!(gravity_offset(g(GravityKind::No), 100, 50, 20, 10, 1.0), (40, 0));
        assert_eq!(gravity_offset(g(GravityKind::So), 100, 50, 20, 10, 1.0), (40, 40));
        assert_eq!(gravity_offset(g(GravityKind::Ea), 100, 50, 20, 10, 1.0), (80, 20));
        assert_eq!(gravity_offset(g(GravityKind::We), 100, 50, 20, 10, 1.0), (0, 20));
        assert_eq!(gravity_offset(g(GravityKind::Noea), 100, 50, 20, 10, 1.0), (80, 0));
        assert_eq!(gravity_offset(g(GravityKind::Sowe), 100, 50, 20, 10, 1.0), (0, 40));
        let off = Gravity { kind: GravityKind::Nowe, x: 5.0, y: 3.0 };
        assert_eq!(gravity_offset(off, 100, 50, 20, 10, 2.0), (10, 6));
        let fp = Gravity { kind: GravityKind::Fp, x: 1.0, y: 0.0 };
        assert_eq!(gravity_offset(fp, 100, 50, 20, 10, 1.0), (80, 0));
        let far = Gravity { kind: GravityKind::Ea, x: -500.0, y: 0.0 };
        assert_eq!(gravity_offset(far, 100, 50, 20, 10, 1.0), (80, 20));
    }
}
