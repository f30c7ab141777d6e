//! The watermark (`wm:`): the configured image, decoded once into RGBA pixels
//! ([`WatermarkImage`]), scaled, faded and placed as imgproxy does (`processing/watermark.go`,
//! `calc_position.go`): offsets of magnitude ≥ 1 are pixels (× DPR), smaller ones fractions of
//! the image; `re` tiles it with the offsets as spacing; `scale` fits it into that fraction of
//! the result (enlarging too).

use crate::options::{Watermark, WatermarkPosition};
use crate::vips::{Img, Interpretation};

use super::error::TransformError;
use super::pipeline::{fail, to_8bit_srgb};

/// The configured watermark, decoded once (at start, or on first use for a URL): RGBA pixels.
pub struct WatermarkImage {
    pub width: u32,
    pub height: u32,
    rgba: Vec<u8>,
}

impl std::fmt::Debug for WatermarkImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WatermarkImage({}x{})", self.width, self.height)
    }
}

impl WatermarkImage {
    /// Decodes an encoded image (any format imago reads; the first frame of an animation) into
    /// 8-bit sRGB with alpha. Refused above `max_megapixels` or when it does not decode.
    pub fn decode(buf: &[u8], max_megapixels: f64) -> Result<WatermarkImage, TransformError> {
        if super::sniff(buf).is_none() {
            return Err(TransformError::Undecodable("not an image format imago reads".into()));
        }
        let img = Img::from_buffer(buf, "").map_err(fail)?;
        let mp = img.width() as f64 * img.height() as f64 / 1e6;
        if mp > max_megapixels {
            return Err(TransformError::TooManyPixels { megapixels: mp, limit: max_megapixels });
        }
        let img = to_8bit_srgb(img).map_err(fail)?;
        let img = if img.bands() < 3 { img.colourspace(Interpretation::Srgb).map_err(fail)? } else { img };
        let img = if img.has_alpha() { img } else { img.bandjoin_const(255.0).map_err(fail)? };
        let (width, height) = (img.width(), img.height());
        let rgba = img.raw_pixels().map_err(fail)?;
        if rgba.len() != width as usize * height as usize * 4 {
            return Err(TransformError::Undecodable("the watermark is not 8-bit RGB(A)".into()));
        }
        Ok(WatermarkImage { width, height, rgba })
    }
}

/// imgproxy's offset: |v| ≥ 1 pixels (× DPR), else a fraction of `size`.
fn offset(v: f64, size: u32, dpr: f64) -> i64 {
    if v.abs() >= 1.0 {
        (v * dpr).round() as i64
    } else {
        (size as f64 * v).round() as i64
    }
}

/// Blends the watermark over `img` (still, 8-bit). `opacity`: the option's times the server's.
pub(super) fn apply<'a>(
    img: Img<'a>,
    wm: &WatermarkImage,
    w: &Watermark,
    opacity: f64,
    dpr: f64,
) -> Result<Img<'a>, String> {
    let (iw, ih) = (img.width(), img.height());
    let img = if img.bands() < 3 { img.colourspace(Interpretation::Srgb)? } else { img };
    let mut mark = Img::from_rgba(&wm.rgba, wm.width, wm.height)?;
    if w.scale > 0.0 {
        // Fit into scale × the result (enlarging too), as imgproxy's `rt:fit` with `el:1`.
        let (tw, th) = ((iw as f64 * w.scale).max(1.0), (ih as f64 * w.scale).max(1.0));
        let f = (tw / wm.width as f64).min(th / wm.height as f64);
        let (nw, nh) = (((wm.width as f64 * f).round().max(1.0)), ((wm.height as f64 * f).round().max(1.0)));
        mark = mark.resize_with(nw / wm.width as f64, nh / wm.height as f64, crate::vips::Kernel::Lanczos3)?;
    }
    let mark = mark.scale_alpha(opacity.clamp(0.0, 1.0))?;
    let (mw, mh) = (mark.width() as i64, mark.height() as i64);
    let (iw_i, ih_i) = (iw as i64, ih as i64);
    if w.position == WatermarkPosition::Re {
        // Tiles with the offsets as spacing (split around each tile), over the whole image.
        let pad_x = offset(w.x_offset, iw, dpr).max(0) as u32;
        let pad_y = offset(w.y_offset, ih, dpr).max(0) as u32;
        let (tw, th) = (mark.width() + pad_x, mark.height() + pad_y);
        let tile = mark.embed(pad_x / 2, pad_y / 2, tw, th, &[0.0; 4])?;
        let tiled = tile.replicate(iw.div_ceil(tw), ih.div_ceil(th))?;
        let tiled = tiled.extract(0, 0, iw, ih)?;
        return img.composite_over(&tiled, 0, 0);
    }
    let (ox, oy) = (offset(w.x_offset, iw, dpr), offset(w.y_offset, ih, dpr));
    use WatermarkPosition::*;
    let mut left = (iw_i - mw + 1) / 2 + ox;
    let mut top = (ih_i - mh + 1) / 2 + oy;
    if matches!(w.position, No | Noea | Nowe) {
        top = oy;
    }
    if matches!(w.position, Ea | Noea | Soea) {
        left = iw_i - mw - ox;
    }
    if matches!(w.position, So | Soea | Sowe) {
        top = ih_i - mh - oy;
    }
    if matches!(w.position, We | Nowe | Sowe) {
        left = ox;
    }
    // Partly outside is allowed (imgproxy's overflow); the visible part is what is blended.
    left = left.clamp(-mw + 1, iw_i - 1);
    top = top.clamp(-mh + 1, ih_i - 1);
    let (x0, y0) = (left.max(0), top.max(0));
    let (x1, y1) = ((left + mw).min(iw_i), (top + mh).min(ih_i));
    if x1 <= x0 || y1 <= y0 {
        return Ok(img);
    }
    let visible = if (x1 - x0, y1 - y0) == (mw, mh) {
        mark
    } else {
        mark.extract((x0 - left) as u32, (y0 - top) as u32, (x1 - x0) as u32, (y1 - y0) as u32)?
    };
    img.composite_over(&visible, x0 as u32, y0 as u32)
}
