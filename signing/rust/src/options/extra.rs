//! imgproxy's options beyond the core set (issue #20): `zoom`, `extend_aspect_ratio`,
//! `resizing_algorithm`, `enforce_thumbnail`, `pixelate`, `skip_processing`, `raw`, `filename`,
//! `return_attachment` and the security options (`max_src_resolution`, `max_src_file_size`,
//! `max_animation_frames`, `max_animation_frame_resolution`, `max_result_dimension`): their
//! types, canonical segments (SPEC §5), JSON form (SPEC §4) and [`crate::UrlBuilder`] setters.

use serde_json::Value;

use super::json::{j_bool, j_extend, j_field, j_float, j_int, j_obj, j_str};
use super::*;

/// `z:{n}` (both sides) or `z:{x}:{y}`; factors > 0. JSON `1.5` or `{"zoom_x":2,"zoom_y":1}`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Zoom {
    Both(f64),
    Sides { zoom_x: f64, zoom_y: f64 },
}

/// `ra`: libvips' resampling kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResizingAlgorithm {
    Nearest,
    Linear,
    Cubic,
    Lanczos2,
    Lanczos3,
}

impl ResizingAlgorithm {
    pub const ALL: [ResizingAlgorithm; 5] = [
        ResizingAlgorithm::Nearest,
        ResizingAlgorithm::Linear,
        ResizingAlgorithm::Cubic,
        ResizingAlgorithm::Lanczos2,
        ResizingAlgorithm::Lanczos3,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ResizingAlgorithm::Nearest => "nearest",
            ResizingAlgorithm::Linear => "linear",
            ResizingAlgorithm::Cubic => "cubic",
            ResizingAlgorithm::Lanczos2 => "lanczos2",
            ResizingAlgorithm::Lanczos3 => "lanczos3",
        }
    }
}

impl std::str::FromStr for ResizingAlgorithm {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        ResizingAlgorithm::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            OptionError::top("resizing_algorithm", "must be one of nearest, linear, cubic, lanczos2, lanczos3")
        })
    }
}

/// `fn:{name}[:{encoded}]`: `name` is `[A-Za-z0-9._~-]+`, or URL-safe base64 of any UTF-8 name
/// with `encoded: Some(true)`. JSON `{"name":"cat","encoded":false}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filename {
    pub name: String,
    pub encoded: Option<bool>,
}

impl Filename {
    /// A plain `[A-Za-z0-9._~-]+` name.
    pub fn plain(name: impl Into<String>) -> Self {
        Filename { name: name.into(), encoded: None }
    }
    /// Any UTF-8 name, base64url-encoded (`fn:{b64}:t`).
    pub fn encoded(name: &str) -> Self {
        use base64::Engine;
        Filename { name: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name), encoded: Some(true) }
    }
}

/// imgproxy's image type names accepted by `skip_processing`.
pub const SKIP_FORMATS: [&str; 12] =
    ["jpg", "jpeg", "png", "webp", "gif", "avif", "heic", "tiff", "jxl", "bmp", "ico", "svg"];

fn positive(c: &Ctx<'_>, x: f64) -> Result<String, OptionError> {
    if !(x.is_finite() && x > 0.0) {
        return Err(c.fail("must be a finite number greater than 0"));
    }
    c.num(x)
}

/// Appends the canonical segments of this file's options (the caller sorts by slot).
pub(super) fn segments(o: &Options, push: &mut impl FnMut(&str, Option<String>)) -> Result<(), OptionError> {
    let b = |v: bool| if v { "t" } else { "f" };
    push("enforce_thumbnail", o.enforce_thumbnail.map(|v| format!("eth:{}", b(v))));
    if let Some(e) = &o.extend_aspect_ratio {
        push("extend_aspect_ratio", Some(format!("exar:{}", extend_args(&Ctx::top("extend_aspect_ratio"), e)?)));
    }
    if let Some(f) = &o.filename {
        let c = Ctx::top("filename").sub("name");
        let ok = |ch: u8| ch.is_ascii_alphanumeric() || matches!(ch, b'.' | b'_' | b'~' | b'-');
        let b64 = |ch: u8| ch.is_ascii_alphanumeric() || matches!(ch, b'_' | b'-');
        let valid = !f.name.is_empty() && f.name.bytes().all(if f.encoded == Some(true) { b64 } else { ok });
        if !valid {
            return Err(c.fail("must be [A-Za-z0-9._~-]+ (or base64url with encoded: true)"));
        }
        push(
            "filename",
            Some(join(&[format!("fn:{}", f.name), f.encoded.map(|e| b(e).to_string()).unwrap_or_default()])),
        );
    }
    if let Some(x) = o.max_animation_frame_resolution {
        push(
            "max_animation_frame_resolution",
            Some(format!("mafr:{}", Ctx::top("max_animation_frame_resolution").non_negative(x)?)),
        );
    }
    match o.max_animation_frames {
        None => {}
        Some(0) => return Err(Ctx::top("max_animation_frames").fail("must be greater than 0")),
        Some(n) => push("max_animation_frames", Some(format!("maf:{n}"))),
    }
    match o.max_result_dimension {
        Some(n) if n > 65_535 => return Err(Ctx::top("max_result_dimension").fail("must be <= 65535")),
        n => push("max_result_dimension", n.map(|n| format!("mrd:{n}"))),
    }
    push("max_src_file_size", o.max_src_file_size.map(|n| format!("msfs:{n}")));
    if let Some(x) = o.max_src_resolution {
        push("max_src_resolution", Some(format!("msr:{}", positive(&Ctx::top("max_src_resolution"), x)?)));
    }
    match o.pixelate {
        None | Some(0) => {}
        Some(n) if n > 65_535 => return Err(Ctx::top("pixelate").fail("must be <= 65535")),
        Some(n) => push("pixelate", Some(format!("pix:{n}"))),
    }
    push("raw", o.raw.map(|v| format!("raw:{}", b(v))));
    push("resizing_algorithm", o.resizing_algorithm.map(|a| format!("ra:{}", a.as_str())));
    push("return_attachment", o.return_attachment.map(|v| format!("att:{}", b(v))));
    if let Some(list) = &o.skip_processing {
        let c = Ctx::top("skip_processing");
        if list.is_empty() {
            return Err(c.fail("must be a non-empty list of formats"));
        }
        for (i, f) in list.iter().enumerate() {
            if !SKIP_FORMATS.contains(&f.as_str()) {
                return Err(c.sub(&i.to_string()).fail(format!("must be one of {}", SKIP_FORMATS.join(", "))));
            }
        }
        push("skip_processing", Some(format!("skp:{}", list.join(":"))));
    }
    if let Some(z) = o.zoom {
        let c = Ctx::top("zoom");
        push(
            "zoom",
            Some(match z {
                Zoom::Both(x) => format!("z:{}", positive(&c, x)?),
                Zoom::Sides { zoom_x, zoom_y } => {
                    format!("z:{}:{}", positive(&c.sub("zoom_x"), zoom_x)?, positive(&c.sub("zoom_y"), zoom_y)?)
                }
            }),
        );
    }
    Ok(())
}

/// Reads one of this file's keys from the canonical JSON object; false for other keys.
pub(super) fn from_json(o: &mut Options, key: &str, c: &Ctx<'_>, val: &Value) -> Result<bool, OptionError> {
    match key {
        "enforce_thumbnail" => o.enforce_thumbnail = Some(j_bool(c, val)?),
        "extend_aspect_ratio" => o.extend_aspect_ratio = Some(j_extend(c, val)?),
        "filename" => {
            let m = j_obj(c, val, &["name", "encoded"])?;
            o.filename = Some(Filename {
                name: j_str(&c.sub("name"), m.get("name").unwrap_or(&Value::Null))?.to_string(),
                encoded: j_field(m, "encoded", |v| j_bool(&c.sub("encoded"), v))?,
            });
        }
        "max_animation_frame_resolution" => o.max_animation_frame_resolution = Some(j_float(c, val)?),
        "max_animation_frames" => o.max_animation_frames = Some(j_int(c, val, u32::MAX as u64)? as u32),
        "max_result_dimension" => o.max_result_dimension = Some(j_int(c, val, u32::MAX as u64)? as u32),
        "max_src_file_size" => o.max_src_file_size = Some(j_int(c, val, u64::MAX)?),
        "max_src_resolution" => o.max_src_resolution = Some(j_float(c, val)?),
        "pixelate" => o.pixelate = Some(j_int(c, val, u32::MAX as u64)? as u32),
        "raw" => o.raw = Some(j_bool(c, val)?),
        "resizing_algorithm" => {
            o.resizing_algorithm = Some(
                j_str(c, val)?
                    .parse()
                    .map_err(|_| c.fail("must be one of nearest, linear, cubic, lanczos2, lanczos3"))?,
            )
        }
        "return_attachment" => o.return_attachment = Some(j_bool(c, val)?),
        "skip_processing" => {
            let arr = val.as_array().ok_or_else(|| c.fail("must be a non-empty array of formats"))?;
            let list = arr
                .iter()
                .enumerate()
                .map(|(i, f)| j_str(&c.sub(&i.to_string()), f).map(str::to_string))
                .collect::<Result<Vec<_>, _>>()?;
            o.skip_processing = Some(list);
        }
        "zoom" => {
            o.zoom = Some(match val {
                Value::Object(_) => {
                    let m = j_obj(c, val, &["zoom_x", "zoom_y"])?;
                    Zoom::Sides {
                        zoom_x: j_float(&c.sub("zoom_x"), m.get("zoom_x").unwrap_or(&Value::Null))?,
                        zoom_y: j_float(&c.sub("zoom_y"), m.get("zoom_y").unwrap_or(&Value::Null))?,
                    }
                }
                _ => Zoom::Both(j_float(c, val)?),
            })
        }
        _ => return Ok(false),
    }
    Ok(true)
}

impl crate::UrlBuilder {
    fn with(mut self, f: impl FnOnce(&mut Options)) -> Self {
        f(self.options_mut());
        self
    }
    /// `eth:{bool}`: decode the embedded HEIF/AVIF thumbnail.
    pub fn enforce_thumbnail(self, on: bool) -> Self {
        self.with(|o| o.enforce_thumbnail = Some(on))
    }
    /// `exar:{extend}[:{gravity}]`: extend the canvas to the requested aspect ratio.
    pub fn extend_aspect_ratio(self, extend: Extend) -> Self {
        self.with(|o| o.extend_aspect_ratio = Some(extend))
    }
    /// `fn:…`: the `Content-Disposition` filename stem.
    pub fn filename(self, f: Filename) -> Self {
        self.with(|o| o.filename = Some(f))
    }
    pub fn max_animation_frame_resolution(self, megapixels: f64) -> Self {
        self.with(|o| o.max_animation_frame_resolution = Some(megapixels))
    }
    pub fn max_animation_frames(self, n: u32) -> Self {
        self.with(|o| o.max_animation_frames = Some(n))
    }
    pub fn max_result_dimension(self, px: u32) -> Self {
        self.with(|o| o.max_result_dimension = Some(px))
    }
    pub fn max_src_file_size(self, bytes: u64) -> Self {
        self.with(|o| o.max_src_file_size = Some(bytes))
    }
    pub fn max_src_resolution(self, megapixels: f64) -> Self {
        self.with(|o| o.max_src_resolution = Some(megapixels))
    }
    /// `pix:{n}`: pixelate with `n×n` blocks (0 is omitted).
    pub fn pixelate(self, n: u32) -> Self {
        self.with(|o| o.pixelate = Some(n))
    }
    /// `raw:{bool}`: the source as it is, unprocessed.
    pub fn raw(self, on: bool) -> Self {
        self.with(|o| o.raw = Some(on))
    }
    /// `ra:{kernel}`.
    pub fn resizing_algorithm(self, a: ResizingAlgorithm) -> Self {
        self.with(|o| o.resizing_algorithm = Some(a))
    }
    /// `att:{bool}`: `Content-Disposition: attachment`.
    pub fn return_attachment(self, on: bool) -> Self {
        self.with(|o| o.return_attachment = Some(on))
    }
    /// `skp:{fmt}:…`: source formats served unprocessed.
    pub fn skip_processing<S: Into<String>>(self, formats: impl IntoIterator<Item = S>) -> Self {
        let list: Vec<String> = formats.into_iter().map(Into::into).collect();
        self.with(|o| o.skip_processing = Some(list))
    }
    /// `z:{n}` (both sides).
    pub fn zoom(self, z: f64) -> Self {
        self.with(|o| o.zoom = Some(Zoom::Both(z)))
    }
    /// `z:{x}:{y}`.
    pub fn zoom_xy(self, zoom_x: f64, zoom_y: f64) -> Self {
        self.with(|o| o.zoom = Some(Zoom::Sides { zoom_x, zoom_y }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ser(v: Value) -> Result<String, OptionError> {
        Options::from_json(&v)?.serialize()
    }

    #[test]
    fn canonical_segments_and_order() {
        assert_eq!(
            ser(json!({"zoom": 1.5, "width": 10, "raw": false, "pixelate": 0, "enforce_thumbnail": true})).unwrap(),
            "eth:t/raw:f/w:10/z:1.5"
        );
        assert_eq!(ser(json!({"zoom": {"zoom_x": 2, "zoom_y": 0.5}})).unwrap(), "z:2:0.5");
        assert_eq!(
            ser(
                json!({"extend_aspect_ratio": {"extend": true, "gravity": {"type": "no"}}, "extend": {"extend": false}})
            )
            .unwrap(),
            "ex:f/exar:t:no"
        );
        assert_eq!(ser(json!({"filename": {"name": "cat", "encoded": false}})).unwrap(), "fn:cat:f");
        assert_eq!(ser(json!({"filename": {"name": "w6l0w6k", "encoded": true}})).unwrap(), "fn:w6l0w6k:t");
        assert_eq!(
            ser(json!({"max_src_resolution": 1.5, "max_src_file_size": 0, "max_animation_frames": 3,
                "max_animation_frame_resolution": 0, "max_result_dimension": 100, "max_bytes": 5}))
            .unwrap(),
            "mafr:0/maf:3/mb:5/mrd:100/msfs:0/msr:1.5"
        );
        assert_eq!(
            ser(json!({"skip_processing": ["jpg", "png"], "size": {"width": 1}, "return_attachment": true,
                "resizing_algorithm": "cubic", "rotate": 90}))
            .unwrap(),
            "ra:cubic/att:t/rot:90/s:1/skp:jpg:png"
        );
        assert_eq!(Filename::encoded("été 1").name, "w6l0w6kgMQ");
    }

    #[test]
    fn invalid_values_name_the_option() {
        for (v, key) in [
            (json!({"zoom": 0}), "zoom"),
            (json!({"zoom": {"zoom_x": 1}}), "zoom"),
            (json!({"zoom": {"zoom_x": 1, "zoom_y": 1, "z": 2}}), "zoom"),
            (json!({"resizing_algorithm": "bicubic"}), "resizing_algorithm"),
            (json!({"skip_processing": []}), "skip_processing"),
            (json!({"skip_processing": ["exe"]}), "skip_processing"),
            (json!({"filename": {"name": "a b"}}), "filename"),
            (json!({"filename": {"name": "a+b", "encoded": true}}), "filename"),
            (json!({"filename": "cat"}), "filename"),
            (json!({"max_animation_frames": 0}), "max_animation_frames"),
            (json!({"max_src_resolution": 0}), "max_src_resolution"),
            (json!({"max_result_dimension": 70000}), "max_result_dimension"),
            (json!({"pixelate": -1}), "pixelate"),
            (json!({"raw": 1}), "raw"),
            (json!({"extend_aspect_ratio": {"extend": true, "gravity": {"type": "sm"}}}), "extend_aspect_ratio"),
        ] {
            assert_eq!(ser(v.clone()).unwrap_err().option, key, "{v}");
        }
    }
}
