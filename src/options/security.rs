//! imgproxy's per-URL security options (`max_src_resolution`, `max_src_file_size`,
//! `max_animation_frames`, `max_animation_frame_resolution`, `max_result_dimension`). They only
//! ever lower the server's limits, and are accepted only when `IMAGO_ALLOW_SECURITY_OPTIONS` is
//! on; otherwise a URL carrying one is refused (403 `security-options-disabled`), as imgproxy
//! refuses it with 403 when `IMGPROXY_ALLOW_SECURITY_OPTIONS` is off.

use serde::Serialize;

use super::args::{parse_f64, parse_u32, parse_uint, single, MAX_DIMENSION};
use super::{bad, OptionError};

/// Limits asked for by the URL (None: not set). Applied as `min(server, url)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SecurityLimits {
    /// `msr`: source megapixels (frames included).
    pub max_src_resolution: Option<f64>,
    /// `msfs`: source bytes (0: no limit from the URL, as imgproxy's 0).
    pub max_src_file_size: Option<u64>,
    /// `maf`: animation frames (> 0).
    pub max_animation_frames: Option<u32>,
    /// `mafr`: megapixels of one animation frame (0: no per-frame limit).
    pub max_animation_frame_resolution: Option<f64>,
    /// `mrd`: output width and height in pixels (0: no limit from the URL).
    pub max_result_dimension: Option<u32>,
}

impl SecurityLimits {
    /// `msfs` as a limit (0 is none).
    pub fn src_file_size(&self) -> Option<u64> {
        self.max_src_file_size.filter(|v| *v > 0)
    }
    /// True when the URL (or a preset) set any security option (even to 0).
    pub fn any(&self) -> bool {
        *self != SecurityLimits::default()
    }
    /// The canonical name of the first security option set (for the refusal message).
    pub fn first_set(&self) -> Option<&'static str> {
        [
            (self.max_src_resolution.is_some(), "max_src_resolution"),
            (self.max_src_file_size.is_some(), "max_src_file_size"),
            (self.max_animation_frames.is_some(), "max_animation_frames"),
            (self.max_animation_frame_resolution.is_some(), "max_animation_frame_resolution"),
            (self.max_result_dimension.is_some(), "max_result_dimension"),
        ]
        .into_iter()
        .find_map(|(set, name)| set.then_some(name))
    }
    /// The server limit lowered by the URL's.
    pub fn lower_f64(server: f64, url: Option<f64>) -> f64 {
        url.map_or(server, |u| u.min(server))
    }
}

/// Megapixels, stored as given (`1.5` = 1,500,000 pixels).
fn megapixels(name: &str, a: &[&str]) -> Result<f64, OptionError> {
    parse_f64(name, single(name, a)?, 0.0, 1e6)
}

/// Applies one security option; false when `key` is not one.
pub(super) fn apply(s: &mut SecurityLimits, key: &str, name: &str, a: &[&str]) -> Result<bool, OptionError> {
    match key {
        "max_src_resolution" => s.max_src_resolution = Some(megapixels(name, a)?),
        "max_src_file_size" => s.max_src_file_size = Some(parse_uint(name, single(name, a)?)?),
        "max_animation_frames" => {
            let v = parse_u32(name, single(name, a)?, u32::MAX)?;
            if v == 0 {
                return Err(bad(name, "must be greater than 0"));
            }
            s.max_animation_frames = Some(v);
        }
        "max_animation_frame_resolution" => s.max_animation_frame_resolution = Some(megapixels(name, a)?),
        "max_result_dimension" => s.max_result_dimension = Some(parse_u32(name, single(name, a)?, MAX_DIMENSION)?),
        _ => return Ok(false),
    }
    Ok(true)
}
