//! Does an encoded file hold nothing but pixels? Read from the container itself (JPEG segments,
//! PNG chunks, GIF blocks, WebP RIFF chunks, AVIF/HEIF boxes), not from libvips' field list:
//! the "never bigger" rule may serve the original bytes only when stripping them would remove
//! nothing. Each reader is an allow-list: anything it does not know (a comment, a text chunk,
//! an application extension, trailing bytes, a malformed length) means "not only pixels".

/// True when `buf` (a `format` as [`super::sniff`] and `source_format` name it) holds only
/// what is needed to show the pixels, plus an ICC profile when `icc_allowed`.
pub(super) fn only_pixels(buf: &[u8], format: &str, icc_allowed: bool) -> bool {
    let r = match format {
        "jpeg" => jpeg(buf, icc_allowed),
        "png" => png(buf, icc_allowed),
        "gif" => gif(buf),
        "webp" => webp(buf, icc_allowed),
        "avif" | "heic" => isobmff(buf, icc_allowed),
        _ => None,
    };
    r.unwrap_or(false)
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

fn le32(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// JPEG: SOI, then marker segments, entropy-coded scans, EOI and nothing after. Allowed: the
/// JFIF APP0, an ICC_PROFILE APP2 (when ICC is kept), the Adobe APP14 (colour transform, needed
/// to decode), tables, frame and scan headers, restart markers. Not: COM, EXIF/XMP APP1, MPF,
/// Photoshop APP13, any other APPn.
fn jpeg(b: &[u8], icc_allowed: bool) -> Option<bool> {
    if b.get(..2)? != [0xFF, 0xD8] {
        return Some(false);
    }
    let mut i = 2;
    loop {
        if *b.get(i)? != 0xFF {
            return Some(false);
        }
        // Fill bytes before a marker.
        while *b.get(i + 1)? == 0xFF {
            i += 1;
        }
        let m = *b.get(i + 1)?;
        i += 2;
        match m {
            0xD9 => return Some(i == b.len()),
            0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let len = be16(b, i)?;
        if len < 2 {
            return Some(false);
        }
        let body = b.get(i + 2..i + len)?;
        let ok = match m {
            0xE0 => body.starts_with(b"JFIF\0"),
            0xE2 => icc_allowed && body.starts_with(b"ICC_PROFILE\0"),
            0xEE => body.starts_with(b"Adobe"),
            0xE1 | 0xE3..=0xED | 0xEF | 0xFE => false,
            // DQT, DHT, DAC, DRI, DNL, SOFn, SOS and the other standard segments.
            0xC0..=0xCF | 0xDA..=0xDF => true,
            _ => false,
        };
        if !ok {
            return Some(false);
        }
        i += len;
        if m == 0xDA {
            // Entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a
            // restart marker.
            loop {
                let at = i + b.get(i..)?.iter().position(|&x| x == 0xFF)?;
                match *b.get(at + 1)? {
                    0x00 | 0xD0..=0xD7 | 0xFF => i = at + 1,
                    _ => {
                        i = at;
                        break;
                    }
                }
            }
        }
    }
}

/// PNG: chunks up to IEND and nothing after. Allowed: the critical chunks, transparency,
/// colour and gamma facts, physical size, significant bits, background colour, and iCCP when ICC
/// is kept. Not: tEXt, zTXt, iTXt, eXIf, tIME, APNG frames or any other chunk.
fn png(b: &[u8], icc_allowed: bool) -> Option<bool> {
    if b.get(..8)? != b"\x89PNG\r\n\x1a\n" {
        return Some(false);
    }
    let mut i = 8;
    loop {
        let len = be32(b, i)?;
        let kind: [u8; 4] = b.get(i + 4..i + 8)?.try_into().ok()?;
        let end = i.checked_add(12)?.checked_add(len)?;
        if end > b.len() {
            return Some(false);
        }
        let ok = match &kind {
            b"IHDR" | b"PLTE" | b"IDAT" | b"IEND" => true,
            b"tRNS" | b"gAMA" | b"cHRM" | b"sRGB" | b"sBIT" | b"pHYs" | b"bKGD" => true,
            b"iCCP" => icc_allowed,
            _ => false,
        };
        if !ok {
            return Some(false);
        }
        i = end;
        if &kind == b"IEND" {
            return Some(i == b.len());
        }
    }
}

/// GIF: header, screen descriptor, colour tables, images, graphic control extensions and the
/// NETSCAPE/ANIMEXTS looping extension, the trailer and nothing after. Not: comments, plain
/// text, any other application extension (XMP, ICC).
fn gif(b: &[u8]) -> Option<bool> {
    if !(b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a")) {
        return Some(false);
    }
    let table = |flags: u8| if flags & 0x80 != 0 { 3usize << ((flags & 7) + 1) } else { 0 };
    let mut i = 13 + table(*b.get(10)?);
    // Sub-blocks: length-prefixed, ended by a zero length. Returns the index after them.
    let skip_blocks = |mut i: usize| -> Option<usize> {
        loop {
            let n = *b.get(i)? as usize;
            i += 1 + n;
            if n == 0 {
                return Some(i);
            }
        }
    };
    loop {
        match *b.get(i)? {
            0x3B => return Some(i + 1 == b.len()),
            0x2C => {
                let flags = *b.get(i + 9)?;
                i += 10 + table(flags) + 1; // descriptor, local table, LZW minimum code size
                i = skip_blocks(i)?;
            }
            0x21 => match *b.get(i + 1)? {
                0xF9 => i = skip_blocks(i + 2)?,
                0xFF => {
                    let n = *b.get(i + 2)? as usize;
                    let app = b.get(i + 3..i + 3 + n)?;
                    if app != b"NETSCAPE2.0" && app != b"ANIMEXTS1.0" {
                        return Some(false);
                    }
                    i = skip_blocks(i + 3 + n)?;
                }
                _ => return Some(false),
            },
            _ => return Some(false),
        }
    }
}

/// WebP: RIFF chunks for the bitstream, alpha, canvas and animation, and ICCP when ICC is kept;
/// the RIFF size must match the file. Not: EXIF, XMP or any other chunk.
fn webp(b: &[u8], icc_allowed: bool) -> Option<bool> {
    if b.get(..4)? != b"RIFF" || b.get(8..12)? != b"WEBP" || le32(b, 4)?.checked_add(8)? != b.len() {
        return Some(false);
    }
    let mut i = 12;
    while i < b.len() {
        let kind: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
        let len = le32(b, i + 4)?;
        let ok = match &kind {
            b"VP8 " | b"VP8L" | b"VP8X" | b"ALPH" | b"ANIM" | b"ANMF" => true,
            b"ICCP" => icc_allowed,
            _ => false,
        };
        if !ok {
            return Some(false);
        }
        if &kind == b"VP8X" && b.get(i + 8)? & (0x08 | 0x04) != 0 {
            // The canvas header announces EXIF or XMP.
            return Some(false);
        }
        i = i.checked_add(8)?.checked_add(len)?.checked_add(len & 1)?;
    }
    Some(i == b.len())
}

/// AVIF/HEIF (ISOBMFF): the top-level boxes `ftyp`, `meta`, `mdat` (and `free`/`skip`); in
/// `meta`, items of image types only (an `Exif` or `mime` (XMP) item is metadata); a `colr`
/// property carrying an ICC profile only when ICC is kept. Anything else (`uuid`, `udta`, …)
/// means no.
fn isobmff(b: &[u8], icc_allowed: bool) -> Option<bool> {
    let mut saw_ftyp = false;
    for (kind, body) in boxes(b)? {
        let ok = match &kind {
            b"ftyp" => {
                saw_ftyp = true;
                true
            }
            b"mdat" | b"free" | b"skip" => true,
            b"meta" => meta(body.get(4..)?, icc_allowed)?,
            _ => false,
        };
        if !ok {
            return Some(false);
        }
    }
    Some(saw_ftyp)
}

/// The boxes of `b`, each as (type, body); None when a size is malformed.
fn boxes(b: &[u8]) -> Option<Vec<([u8; 4], &[u8])>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let size32 = be32(b, i)?;
        let kind: [u8; 4] = b.get(i + 4..i + 8)?.try_into().ok()?;
        let (header, size) = match size32 {
            0 => (8, b.len() - i),
            1 => (16, usize::try_from(u64::from_be_bytes(b.get(i + 8..i + 16)?.try_into().ok()?)).ok()?),
            n => (8, n),
        };
        if size < header {
            return None;
        }
        let body = b.get(i + header..i.checked_add(size)?)?;
        out.push((kind, body));
        i += size;
    }
    Some(out)
}

fn meta(body: &[u8], icc_allowed: bool) -> Option<bool> {
    for (kind, inner) in boxes(body)? {
        let ok = match &kind {
            b"hdlr" | b"pitm" | b"iloc" | b"iref" | b"idat" | b"dinf" | b"grpl" => true,
            b"iinf" => {
                // FullBox header, then an entry count (16 bits in version 0, 32 after).
                let version = *inner.first()?;
                let start = if version == 0 { 6 } else { 8 };
                boxes(inner.get(start..)?)?.iter().all(|(k, infe)| k == b"infe" && image_item(infe))
            }
            b"iprp" => boxes(inner)?.iter().all(|(k, ipco)| match k {
                b"ipco" => boxes(ipco).is_some_and(|props| {
                    props.iter().all(|(p, v)| p != b"colr" || icc_allowed || v.get(..4) == Some(b"nclx"))
                }),
                _ => true,
            }),
            _ => false,
        };
        if !ok {
            return Some(false);
        }
    }
    Some(true)
}

/// An `infe` box (version 2 or 3) naming an image item type.
fn image_item(infe: &[u8]) -> bool {
    let Some(&version) = infe.first() else { return false };
    let at = match version {
        2 => 4 + 2 + 2,
        3 => 4 + 4 + 2,
        _ => return false,
    };
    matches!(infe.get(at..at + 4), Some(b"av01" | b"hvc1" | b"grid" | b"iden" | b"iovl" | b"tmap"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::init;
    use crate::transform::testutil::{enc, fixture, req};

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0; 4]); // CRC: not checked here
        out
    }

    fn insert(b: &[u8], at: usize, extra: &[u8]) -> Vec<u8> {
        [&b[..at], extra, &b[at..]].concat()
    }

    fn riff(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut body = b"WEBP".to_vec();
        for (id, data) in chunks {
            body.extend_from_slice(*id);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        [b"RIFF".as_slice(), &(body.len() as u32).to_le_bytes(), &body].concat()
    }

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        [&((body.len() + 8) as u32).to_be_bytes()[..], kind, body].concat()
    }

    #[test]
    fn jpeg_segments() {
        init(1).unwrap();
        // A JPEG written by libvips with everything stripped: only pixels.
        let clean = crate::transform::render(&fixture("gps.jpg"), &req("w:64", Some("jpg")), &enc()).unwrap().bytes;
        assert!(only_pixels(&clean, "jpeg", false));
        let seg = |m: u8, body: &[u8]| [&[0xFF, m][..], &((body.len() + 2) as u16).to_be_bytes(), body].concat();
        assert!(!only_pixels(&insert(&clean, 2, &seg(0xFE, b"SECRET")), "jpeg", true), "COM");
        assert!(!only_pixels(&insert(&clean, 2, &seg(0xE1, b"Exif\0\0II*\0")), "jpeg", true), "EXIF");
        assert!(!only_pixels(&insert(&clean, 2, &seg(0xED, b"Photoshop 3.0\0")), "jpeg", true), "IPTC");
        assert!(!only_pixels(&insert(&clean, 2, &seg(0xEB, b"JP")), "jpeg", true), "APP11");
        let icc = insert(&clean, 2, &seg(0xE2, b"ICC_PROFILE\0\x01\x01profile"));
        assert!(only_pixels(&icc, "jpeg", true));
        assert!(!only_pixels(&icc, "jpeg", false));
        assert!(only_pixels(&insert(&clean, 2, &seg(0xEE, b"Adobe\0d\0\0\0\0\x01")), "jpeg", false));
        // A COM between the frame header and the scan, trailing bytes, a polyglot, truncation.
        let sos = clean.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        assert!(!only_pixels(&insert(&clean, sos, &seg(0xFE, b"late")), "jpeg", true));
        assert!(!only_pixels(&[&clean[..], b"<html>"].concat(), "jpeg", true));
        assert!(!only_pixels(&clean[..clean.len() - 10], "jpeg", true));
        // The fixtures with metadata.
        assert!(!only_pixels(&fixture("gps.jpg"), "jpeg", true));
        assert!(!only_pixels(&fixture("copyright.jpg"), "jpeg", true));
        assert!(!only_pixels(&fixture("orientation/Landscape_1.jpg"), "jpeg", true));
        // A progressive JPEG: several scans with tables between them.
        let prog = fixture("nasa_large.jpg");
        assert!(only_pixels(&prog, "jpeg", false), "nasa_large.jpg has no metadata");
    }

    #[test]
    fn png_chunks() {
        init(1).unwrap();
        let clean =
            crate::transform::render(&fixture("rose_alpha.png"), &req("w:32", Some("png")), &enc()).unwrap().bytes;
        assert!(only_pixels(&clean, "png", false));
        let after_ihdr = 8 + 25;
        for kind in [b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME", b"acTL", b"zzZz"] {
            let with = insert(&clean, after_ihdr, &png_chunk(kind, b"Comment\0SECRET"));
            assert!(!only_pixels(&with, "png", true), "{}", String::from_utf8_lossy(kind));
        }
        let icc = insert(&clean, after_ihdr, &png_chunk(b"iCCP", b"p\0\0zz"));
        assert!(only_pixels(&icc, "png", true));
        assert!(!only_pixels(&icc, "png", false));
        assert!(only_pixels(&insert(&clean, after_ihdr, &png_chunk(b"pHYs", &[0; 9])), "png", false));
        assert!(!only_pixels(&[&clean[..], b"trailing"].concat(), "png", true));
        assert!(!only_pixels(&clean[..clean.len() - 4], "png", true));
    }

    #[test]
    fn gif_blocks() {
        let gif = fixture("earth_anim.gif");
        assert!(only_pixels(&gif, "gif", false), "a plain animation");
        // After the screen descriptor and global colour table.
        let at = 13 + (3usize << ((gif[10] & 7) + 1));
        let comment = [&[0x21, 0xFE, 6][..], b"SECRET", &[0]].concat();
        assert!(!only_pixels(&insert(&gif, at, &comment), "gif", true), "comment");
        let xmp = [&[0x21, 0xFF, 11][..], b"XMP DataXMP", &[3], b"<x>", &[0]].concat();
        assert!(!only_pixels(&insert(&gif, at, &xmp), "gif", true), "XMP application extension");
        let loops = [&[0x21, 0xFF, 11][..], b"NETSCAPE2.0", &[3, 1, 0, 0, 0]].concat();
        assert!(only_pixels(&insert(&gif, at, &loops), "gif", true));
        let text = [&[0x21, 0x01, 12][..], &[0; 12], &[2], b"hi", &[0]].concat();
        assert!(!only_pixels(&insert(&gif, at, &text), "gif", true), "plain text");
        assert!(!only_pixels(&[&gif[..], b"x"].concat(), "gif", true));
        assert!(!only_pixels(&gif[..gif.len() / 2], "gif", true));
    }

    #[test]
    fn webp_chunks() {
        let vp8x = |flags: u8| [flags, 0, 0, 0, 9, 0, 0, 9, 0, 0];
        assert!(only_pixels(&riff(&[(b"VP8L", b"pixels")]), "webp", false));
        assert!(only_pixels(&riff(&[(b"VP8X", &vp8x(0x10)), (b"ALPH", b"a"), (b"VP8 ", b"px")]), "webp", false));
        assert!(!only_pixels(&riff(&[(b"VP8X", &vp8x(0x08)), (b"VP8 ", b"px"), (b"EXIF", b"Exif")]), "webp", true));
        assert!(!only_pixels(&riff(&[(b"VP8X", &vp8x(0)), (b"VP8 ", b"px"), (b"XMP ", b"<x/>")]), "webp", true));
        assert!(!only_pixels(&riff(&[(b"VP8X", &vp8x(0x04)), (b"VP8 ", b"px")]), "webp", true), "flag alone");
        let icc = riff(&[(b"VP8X", &vp8x(0x20)), (b"ICCP", b"icc"), (b"VP8 ", b"px")]);
        assert!(only_pixels(&icc, "webp", true));
        assert!(!only_pixels(&icc, "webp", false));
        assert!(!only_pixels(&riff(&[(b"VP8 ", b"px"), (b"JUNK", b"SECRET")]), "webp", true));
        let mut wrong_size = riff(&[(b"VP8 ", b"px")]);
        wrong_size.push(0);
        assert!(!only_pixels(&wrong_size, "webp", true));
    }

    #[test]
    fn avif_boxes() {
        let ftyp = bx(b"ftyp", b"avif\0\0\0\0mif1avif");
        let infe = |kind: &[u8; 4]| bx(b"infe", &[&[2, 0, 0, 0, 0, 1, 0, 0][..], kind, b"\0"].concat());
        let iinf =
            |items: &[Vec<u8>]| bx(b"iinf", &[&[0, 0, 0, 0, 0, items.len() as u8][..], &items.concat()].concat());
        let colr = |kind: &[u8; 4]| bx(b"colr", &[&kind[..], b"...."].concat());
        let iprp = |props: &[Vec<u8>]| bx(b"iprp", &bx(b"ipco", &props.concat()));
        let meta = |inner: &[Vec<u8>]| bx(b"meta", &[&[0, 0, 0, 0][..], &inner.concat()].concat());
        let file = |m: Vec<u8>| [ftyp.clone(), m, bx(b"mdat", b"av1 data")].concat();
        let hdlr = bx(b"hdlr", &[0; 24]);
        let clean = file(meta(&[hdlr.clone(), iinf(&[infe(b"av01")]), iprp(&[colr(b"nclx")])]));
        assert!(only_pixels(&clean, "avif", false));
        let exif = file(meta(&[hdlr.clone(), iinf(&[infe(b"av01"), infe(b"Exif")]), iprp(&[])]));
        assert!(!only_pixels(&exif, "avif", true), "Exif item");
        let xmp = file(meta(&[hdlr.clone(), iinf(&[infe(b"av01"), infe(b"mime")])]));
        assert!(!only_pixels(&xmp, "avif", true), "XMP item");
        let icc = file(meta(&[hdlr.clone(), iinf(&[infe(b"av01")]), iprp(&[colr(b"prof")])]));
        assert!(only_pixels(&icc, "avif", true));
        assert!(!only_pixels(&icc, "avif", false));
        let udta = [clean.clone(), bx(b"udta", b"SECRET")].concat();
        assert!(!only_pixels(&udta, "avif", true));
        assert!(!only_pixels(&clean[..clean.len() - 3], "avif", true));
        assert!(!only_pixels(&clean, "tiff", true));
    }
}
