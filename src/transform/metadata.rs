//! Metadata: the strip step (EXIF, XMP, IPTC and friends removed field by field, the copyright
//! kept on request, the orientation tag dropped) and the WebP container clean-up libvips needs.

use crate::options::Options;
use crate::vips::Img;

/// Removes EXIF and XMP (and ICC when `drop_icc`) chunks from a WebP file and clears their
/// VP8X flags. libvips 8.14's WebP saver writes an EXIF chunk even with `strip`, so metadata
/// stripping is finished here, on the container.
pub fn webp_strip(webp: &[u8], drop_icc: bool) -> Option<Vec<u8>> {
    if webp.len() < 12 || &webp[..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return None;
    }
    let declared = u32::from_le_bytes(webp[4..8].try_into().ok()?) as usize;
    if declared.checked_add(8)? != webp.len() {
        return None;
    }
    let mut out = Vec::with_capacity(webp.len());
    out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
    let mut i = 12;
    let mut vp8x_at = None;
    while i + 8 <= webp.len() {
        let id = &webp[i..i + 4];
        let size = u32::from_le_bytes(webp[i + 4..i + 8].try_into().ok()?) as usize;
        let end = i.checked_add(8)?.checked_add(size)?.checked_add(size & 1)?;
        if end > webp.len() {
            return None;
        }
        let drop = id == b"EXIF" || id == b"XMP " || (drop_icc && id == b"ICCP");
        if !drop {
            if id == b"VP8X" {
                vp8x_at = Some(out.len());
            }
            out.extend_from_slice(&webp[i..end]);
        }
        i = end;
    }
    if let Some(at) = vp8x_at {
        // Flags byte: ICC 0x20, alpha 0x10, EXIF 0x08, XMP 0x04, animation 0x02.
        let mut mask = 0x08 | 0x04;
        if drop_icc {
            mask |= 0x20;
        }
        out[at + 8] &= !mask;
    }
    let riff = u32::try_from(out.len() - 8).ok()?;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    Some(out)
}

/// A minimal EXIF block (as libvips stores it, with the `Exif\0\0` header) holding only IFD0's
/// Copyright tag: what `kcr:1` keeps when everything else is stripped.
pub fn exif_with_copyright(text: &str) -> Vec<u8> {
    let mut value: Vec<u8> = text.bytes().filter(|b| *b != 0).take(4096).collect();
    value.push(0);
    let mut e = b"Exif\0\0II*\0".to_vec();
    e.extend_from_slice(&8u32.to_le_bytes()); // IFD0 at offset 8 of the TIFF header
    e.extend_from_slice(&1u16.to_le_bytes()); // one entry
    e.extend_from_slice(&0x8298u16.to_le_bytes()); // Copyright
    e.extend_from_slice(&2u16.to_le_bytes()); // ASCII
    e.extend_from_slice(&(value.len() as u32).to_le_bytes());
    if value.len() <= 4 {
        let mut inline = value.clone();
        inline.resize(4, 0);
        e.extend_from_slice(&inline);
        e.extend_from_slice(&0u32.to_le_bytes());
    } else {
        e.extend_from_slice(&26u32.to_le_bytes()); // 8 + 2 + 12 + 4
        e.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
        e.extend_from_slice(&value);
    }
    e
}

/// Removes metadata on a private copy. libvips 8.14's savers write whatever `exif-data`,
/// `xmp-data` and `iptc-data` hold (WebP's `strip` keeps EXIF), so the fields themselves go.
pub(super) fn strip<'a>(img: Img<'a>, o: &Options) -> Result<Img<'a>, String> {
    let out = img.copy()?;
    drop(img);
    // The pixels are upright now: an orientation tag would rotate them again.
    out.remove("orientation");
    if o.strip_metadata {
        // kcr:1: the copyright notice survives, in a minimal EXIF block of its own.
        let copyright =
            if o.keep_copyright { out.get_string(c"exif-ifd0-Copyright").map(|v| exif_field_value(&v)) } else { None };
        for f in out.fields() {
            let drop_it = f == "exif-data"
                || f == "xmp-data"
                || f == "iptc-data"
                || f == "photoshop-data"
                || f.starts_with("exif-")
                || f.starts_with("xmp-")
                || f.starts_with("iptc-")
                || f.starts_with("png-comment")
                || f == "gif-comment"
                || f.starts_with("heif-");
            if drop_it {
                out.remove(&f);
            }
        }
        if let Some(text) = copyright.filter(|t| !t.is_empty()) {
            let blob = exif_with_copyright(&text);
            out.set_blob(c"exif-data", &blob);
        }
    } else if out.has(c"exif-data") {
        // Keep EXIF but make its orientation agree with the upright pixels.
        out.set_string(c"exif-ifd0-Orientation", "1");
    }
    if o.strip_color_profile {
        out.remove("icc-profile-data");
    }
    Ok(out)
}

/// libvips renders EXIF fields as `value (format, n components, n bytes)`: the value part.
fn exif_field_value(v: &str) -> String {
    match v.rfind(" (") {
        Some(i) if v.ends_with(')') => v[..i].to_string(),
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webp_strip_removes_exif_and_xmp_chunks() {
        let chunk = |id: &[u8], data: &[u8]| {
            let mut v = id.to_vec();
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(data);
            if data.len() % 2 == 1 {
                v.push(0);
            }
            v
        };
        let mut body = b"WEBP".to_vec();
        body.extend(chunk(b"VP8X", &[0x2C, 0, 0, 0, 9, 0, 0, 9, 0, 0]));
        body.extend(chunk(b"ICCP", b"icc"));
        body.extend(chunk(b"VP8 ", b"pixels"));
        body.extend(chunk(b"EXIF", b"Exif\0\0GPS"));
        body.extend(chunk(b"XMP ", b"<x:xmpmeta/>"));
        let mut file = b"RIFF".to_vec();
        file.extend_from_slice(&(body.len() as u32).to_le_bytes());
        file.extend(body);
        let out = webp_strip(&file, false).unwrap();
        assert!(!out.windows(4).any(|w| w == b"EXIF" || w == b"XMP "));
        assert!(out.windows(4).any(|w| w == b"ICCP"));
        assert_eq!(out[20], 0x20);
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize, out.len() - 8);
        let out = webp_strip(&file, true).unwrap();
        assert!(!out.windows(4).any(|w| w == b"ICCP"));
        assert_eq!(out[20], 0);
        assert!(webp_strip(b"nope", false).is_none());
        let mut truncated = file.clone();
        truncated.truncate(30);
        assert!(webp_strip(&truncated, false).is_none());
    }
}
