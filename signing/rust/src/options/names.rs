//! The option vocabulary: one table for the server and the SDKs (SPEC §4, §5.1).

/// `(JSON key, short name, every accepted URL name)` in the canonical order of SPEC §5.1.
pub const OPTION_NAMES: [(&str, &str, &[&str]); 45] = [
    ("auto_rotate", "ar", &["ar", "auto_rotate"]),
    ("background", "bg", &["bg", "background"]),
    ("blur", "bl", &["bl", "blur"]),
    ("cachebuster", "cb", &["cb", "cachebuster"]),
    ("crop", "c", &["c", "crop"]),
    ("dpr", "dpr", &["dpr"]),
    ("enforce_thumbnail", "eth", &["eth", "enforce_thumbnail"]),
    ("enlarge", "el", &["el", "enlarge"]),
    ("expires", "exp", &["exp", "expires"]),
    ("extend", "ex", &["ex", "extend"]),
    ("extend_aspect_ratio", "exar", &["exar", "extend_aspect_ratio", "extend_ar"]),
    ("filename", "fn", &["fn", "filename"]),
    ("flip", "fl", &["fl", "flip"]),
    ("format", "f", &["f", "format", "ext"]),
    ("format_quality", "fq", &["fq", "format_quality"]),
    ("gravity", "g", &["g", "gravity"]),
    ("height", "h", &["h", "height"]),
    ("keep_copyright", "kcr", &["kcr", "keep_copyright"]),
    ("max_animation_frame_resolution", "mafr", &["mafr", "max_animation_frame_resolution"]),
    ("max_animation_frames", "maf", &["maf", "max_animation_frames"]),
    ("max_bytes", "mb", &["mb", "max_bytes"]),
    ("max_result_dimension", "mrd", &["mrd", "max_result_dimension"]),
    ("max_src_file_size", "msfs", &["msfs", "max_src_file_size"]),
    ("max_src_resolution", "msr", &["msr", "max_src_resolution"]),
    ("min_height", "mh", &["mh", "min-height"]),
    ("min_width", "mw", &["mw", "min-width"]),
    ("padding", "pd", &["pd", "padding"]),
    ("pixelate", "pix", &["pix", "pixelate"]),
    ("preset", "pr", &["pr", "preset"]),
    ("quality", "q", &["q", "quality"]),
    ("raw", "raw", &["raw"]),
    ("resize", "rs", &["rs", "resize"]),
    ("resizing_algorithm", "ra", &["ra", "resizing_algorithm"]),
    ("resizing_type", "rt", &["rt", "resizing_type"]),
    ("return_attachment", "att", &["att", "return_attachment"]),
    ("rotate", "rot", &["rot", "rotate"]),
    ("sharpen", "sh", &["sh", "sharpen"]),
    ("size", "s", &["s", "size"]),
    ("skip_processing", "skp", &["skp", "skip_processing", "sp"]),
    ("strip_color_profile", "scp", &["scp", "strip_color_profile"]),
    ("strip_metadata", "sm", &["sm", "strip_metadata"]),
    ("trim", "t", &["t", "trim"]),
    ("watermark", "wm", &["wm", "watermark"]),
    ("width", "w", &["w", "width"]),
    ("zoom", "z", &["z", "zoom"]),
];

/// The canonical slot (index into [`OPTION_NAMES`]) and short name of a URL option name.
pub fn lookup_url_name(name: &str) -> Option<(usize, &'static str)> {
    OPTION_NAMES
        .iter()
        .enumerate()
        .find(|(_, (_, _, names))| names.contains(&name))
        .map(|(i, (_, short, _))| (i, *short))
}
