"""Reference parser for the unsigned part of a URL path (SPEC §2–§4, §8)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._encoding import b64url_decode, percent_decode, utf8_decode
from .errors import ImagoParseError
from .options import COMPASS_GRAVITY, CONCRETE_FORMATS, FORMATS, RESIZING_ALGORITHMS, RESIZING_TYPES, SKIP_FORMATS
from .source import is_valid_source

__all__ = ["OPTION_ALIASES", "ParsedPath", "parse_option_segment", "parse_path"]

#: Every accepted option name (aliases included) → JSON key.
OPTION_ALIASES: Dict[str, str] = {
    "ar": "auto_rotate", "auto_rotate": "auto_rotate",
    "bg": "background", "background": "background",
    "bl": "blur", "blur": "blur",
    "cb": "cachebuster", "cachebuster": "cachebuster",
    "c": "crop", "crop": "crop",
    "dpr": "dpr",
    "el": "enlarge", "enlarge": "enlarge",
    "exp": "expires", "expires": "expires",
    "ex": "extend", "extend": "extend",
    "fl": "flip", "flip": "flip",
    "f": "format", "format": "format", "ext": "format",
    "fq": "format_quality", "format_quality": "format_quality",
    "g": "gravity", "gravity": "gravity",
    "h": "height", "height": "height",
    "kcr": "keep_copyright", "keep_copyright": "keep_copyright",
    "mb": "max_bytes", "max_bytes": "max_bytes",
    "mh": "min_height", "min-height": "min_height",
    "mw": "min_width", "min-width": "min_width",
    "pd": "padding", "padding": "padding",
    "pr": "preset", "preset": "preset",
    "q": "quality", "quality": "quality",
    "rs": "resize", "resize": "resize",
    "rt": "resizing_type", "resizing_type": "resizing_type",
    "rot": "rotate", "rotate": "rotate",
    "sh": "sharpen", "sharpen": "sharpen",
    "s": "size", "size": "size",
    "scp": "strip_color_profile", "strip_color_profile": "strip_color_profile",
    "sm": "strip_metadata", "strip_metadata": "strip_metadata",
    "t": "trim", "trim": "trim",
    "wm": "watermark", "watermark": "watermark",
    "w": "width", "width": "width",
    "eth": "enforce_thumbnail", "enforce_thumbnail": "enforce_thumbnail",
    "exar": "extend_aspect_ratio", "extend_aspect_ratio": "extend_aspect_ratio", "extend_ar": "extend_aspect_ratio",
    "fn": "filename", "filename": "filename",
    "mafr": "max_animation_frame_resolution", "max_animation_frame_resolution": "max_animation_frame_resolution",
    "maf": "max_animation_frames", "max_animation_frames": "max_animation_frames",
    "mrd": "max_result_dimension", "max_result_dimension": "max_result_dimension",
    "msfs": "max_src_file_size", "max_src_file_size": "max_src_file_size",
    "msr": "max_src_resolution", "max_src_resolution": "max_src_resolution",
    "pix": "pixelate", "pixelate": "pixelate",
    "raw": "raw",
    "ra": "resizing_algorithm", "resizing_algorithm": "resizing_algorithm",
    "att": "return_attachment", "return_attachment": "return_attachment",
    "skp": "skip_processing", "skip_processing": "skip_processing", "sp": "skip_processing",
    "z": "zoom", "zoom": "zoom",
}


@dataclass
class ParsedPath:
    options: Dict[str, Any] = field(default_factory=dict)
    source: str = ""
    encoding: str = "base64"
    extension: Optional[str] = None


class _ArgError(Exception):
    pass


_INT_RE = re.compile(r"[0-9]+")
_FLOAT_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_HEX_RE = re.compile(r"[0-9a-fA-F]{3}|[0-9a-fA-F]{6}")
_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")


def _get(args: List[str], i: int) -> Optional[str]:
    return args[i] if i < len(args) else None


def _present(s: Optional[str]) -> bool:
    return s is not None and s != ""


def _p_int(s: Optional[str], what: str, lo: int = 0, hi: Optional[int] = None) -> int:
    if s is None or not _INT_RE.fullmatch(s):
        raise _ArgError(f"{what} must be a non-negative integer")
    n = int(s)
    if n < lo or (hi is not None and n > hi):
        raise _ArgError(f"{what} must be within {lo}..{hi if hi is not None else '∞'}")
    return n


def _p_float(s: Optional[str], what: str, check: Optional[Callable[[float], bool]] = None) -> float:
    if s is None or not _FLOAT_RE.fullmatch(s):
        raise _ArgError(f"{what} must be a decimal number")
    n = float(s)
    if check is not None and not check(n):
        raise _ArgError(f"{what} is out of range")
    return 0.0 if n == 0 else n


def _p_bool(s: Optional[str], what: str) -> bool:
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise _ArgError(f"{what} must be a boolean (1/t/true or 0/f/false)")


def _p_hex(s: str, what: str) -> str:
    if not _HEX_RE.fullmatch(s):
        raise _ArgError(f"{what} must be 3 or 6 hex digits")
    return s


def _one_of(s: Optional[str], allowed: Tuple[str, ...], what: str) -> str:
    if s not in allowed:
        raise _ArgError(f"{what} must be one of {', '.join(allowed)}")
    assert s is not None
    return s


def _max_args(args: List[str], n: int) -> None:
    if len(args) > n:
        raise _ArgError(f"takes at most {n} arguments")


def _exactly(args: List[str], n: int) -> None:
    if len(args) != n:
        raise _ArgError(f"takes exactly {n} argument{'' if n == 1 else 's'}")


def _single(args: List[str]) -> str:
    _exactly(args, 1)
    return args[0]


def _gravity(args: List[str], allow_smart: bool) -> Dict[str, Any]:
    t = _get(args, 0)
    if not _present(t):
        raise _ArgError("gravity type is required")
    if t == "sm" and allow_smart:
        _exactly(args, 1)
        return {"type": "sm"}
    if t == "fp":
        _exactly(args, 3)
        return {
            "type": "fp",
            "x": _p_float(args[1], "fp x", lambda n: 0 <= n <= 1),
            "y": _p_float(args[2], "fp y", lambda n: 0 <= n <= 1),
        }
    g: Dict[str, Any] = {"type": _one_of(t, COMPASS_GRAVITY, "gravity type")}
    _max_args(args, 3)
    if _present(_get(args, 1)):
        g["x_offset"] = _p_float(args[1], "x_offset")
    if _present(_get(args, 2)):
        g["y_offset"] = _p_float(args[2], "y_offset")
    return g


def _extend(args: List[str]) -> Dict[str, Any]:
    _max_args(args, 4)
    e: Dict[str, Any] = {"extend": _p_bool(_get(args, 0), "extend")}
    if len(args) > 1:
        e["gravity"] = _gravity(args[1:], False)
    return e


def _background(a: List[str]) -> Any:
    if len(a) == 1:
        return _p_hex(a[0], "colour")
    _exactly(a, 3)
    return {"r": _p_int(a[0], "r", 0, 255), "g": _p_int(a[1], "g", 0, 255), "b": _p_int(a[2], "b", 0, 255)}


def _crop(a: List[str]) -> Any:
    if len(a) < 2:
        raise _ArgError("width and height are required")
    _max_args(a, 5)
    c: Dict[str, Any] = {"width": _p_int(a[0], "width"), "height": _p_int(a[1], "height")}
    if len(a) > 2:
        c["gravity"] = _gravity(a[2:], True)
    return c


def _flip(a: List[str]) -> Any:
    _max_args(a, 2)
    f: Dict[str, Any] = {}
    if _present(_get(a, 0)):
        f["horizontal"] = _p_bool(a[0], "horizontal")
    if _present(_get(a, 1)):
        f["vertical"] = _p_bool(a[1], "vertical")
    return f


def _format_quality(a: List[str]) -> Any:
    if len(a) < 2 or len(a) % 2:
        raise _ArgError("takes format:quality pairs")
    return [{"format": _one_of(a[i], CONCRETE_FORMATS, "format"), "quality": _p_int(a[i + 1], "quality", 0, 100)}
            for i in range(0, len(a), 2)]


def _padding(a: List[str]) -> Any:
    _max_args(a, 4)
    if len(a) == 1:
        return _p_int(a[0], "padding")
    sides = ("top", "right", "bottom", "left")
    return {sides[i]: _p_int(s, sides[i]) for i, s in enumerate(a) if _present(s)}


def _preset(a: List[str]) -> Any:
    if any(s == "" for s in a):
        raise _ArgError("preset names must be non-empty")
    return list(a)


def _quality(a: List[str]) -> Any:
    s = _single(a)
    return "auto" if s == "auto" else _p_int(s, "quality", 0, 100)


def _resize(a: List[str]) -> Any:
    _max_args(a, 8)
    r: Dict[str, Any] = {}
    if _present(_get(a, 0)):
        r["resizing_type"] = _one_of(a[0], RESIZING_TYPES, "resizing type")
    if _present(_get(a, 1)):
        r["width"] = _p_int(a[1], "width")
    if _present(_get(a, 2)):
        r["height"] = _p_int(a[2], "height")
    if _present(_get(a, 3)):
        r["enlarge"] = _p_bool(a[3], "enlarge")
    if len(a) > 4:
        r["extend"] = _extend(a[4:])
    return r


def _rotate(a: List[str]) -> Any:
    n = _p_int(_single(a), "angle")
    if n not in (0, 90, 180, 270):
        raise _ArgError("angle must be 0, 90, 180 or 270")
    return n


def _size(a: List[str]) -> Any:
    _max_args(a, 7)
    r: Dict[str, Any] = {}
    if _present(_get(a, 0)):
        r["width"] = _p_int(a[0], "width")
    if _present(_get(a, 1)):
        r["height"] = _p_int(a[1], "height")
    if _present(_get(a, 2)):
        r["enlarge"] = _p_bool(a[2], "enlarge")
    if len(a) > 3:
        r["extend"] = _extend(a[3:])
    return r


def _trim(a: List[str]) -> Any:
    _max_args(a, 4)
    t: Dict[str, Any] = {"threshold": _p_float(a[0], "threshold", lambda n: n >= 0)}
    if _present(_get(a, 1)):
        t["color"] = _p_hex(a[1], "colour")
    if _present(_get(a, 2)):
        t["equal_hor"] = _p_bool(a[2], "equal_hor")
    if _present(_get(a, 3)):
        t["equal_ver"] = _p_bool(a[3], "equal_ver")
    return t


def _filename_arg(a: List[str]) -> Any:
    _max_args(a, 2)
    f: Dict[str, Any] = {"name": a[0]}
    if _present(_get(a, 1)):
        f["encoded"] = _p_bool(a[1], "encoded")
    if f.get("encoded") is True and not re.fullmatch(r"[A-Za-z0-9_-]*=*", a[0]):
        raise _ArgError("name must be URL-safe base64")
    return f


def _zoom(a: List[str]) -> Any:
    _max_args(a, 2)
    x = _p_float(_get(a, 0), "zoom", lambda n: n > 0)
    if len(a) == 1:
        return x
    return {"zoom_x": x, "zoom_y": _p_float(a[1], "zoom", lambda n: n > 0)}


def _watermark(a: List[str]) -> Any:
    from .options import WATERMARK_POSITIONS

    _max_args(a, 5)
    w: Dict[str, Any] = {"opacity": _p_float(a[0], "opacity", lambda n: 0 <= n <= 1)}
    if _present(_get(a, 1)):
        w["position"] = _one_of(a[1], WATERMARK_POSITIONS, "position")
    if _present(_get(a, 2)):
        w["x_offset"] = _p_float(a[2], "x_offset")
    if _present(_get(a, 3)):
        w["y_offset"] = _p_float(a[3], "y_offset")
    if _present(_get(a, 4)):
        w["scale"] = _p_float(a[4], "scale", lambda n: n >= 0)
    return w


_PARSERS: Dict[str, Callable[[List[str]], Any]] = {
    "auto_rotate": lambda a: _p_bool(_single(a), "value"),
    "background": _background,
    "blur": lambda a: _p_float(_single(a), "sigma", lambda n: n >= 0),
    "cachebuster": _single,
    "crop": _crop,
    "dpr": lambda a: _p_float(_single(a), "dpr", lambda n: n > 0),
    "enlarge": lambda a: _p_bool(_single(a), "value"),
    "expires": lambda a: _p_int(_single(a), "expires"),
    "extend": _extend,
    "flip": _flip,
    "format": lambda a: _one_of(_single(a), FORMATS, "format"),
    "format_quality": _format_quality,
    "gravity": lambda a: _gravity(a, True),
    "height": lambda a: _p_int(_single(a), "height"),
    "keep_copyright": lambda a: _p_bool(_single(a), "value"),
    "max_bytes": lambda a: _p_int(_single(a), "max_bytes"),
    "min_height": lambda a: _p_int(_single(a), "min_height"),
    "min_width": lambda a: _p_int(_single(a), "min_width"),
    "padding": _padding,
    "preset": _preset,
    "quality": _quality,
    "resize": _resize,
    "resizing_type": lambda a: _one_of(_single(a), RESIZING_TYPES, "resizing type"),
    "rotate": _rotate,
    "sharpen": lambda a: _p_float(_single(a), "sigma", lambda n: n >= 0),
    "size": _size,
    "strip_color_profile": lambda a: _p_bool(_single(a), "value"),
    "strip_metadata": lambda a: _p_bool(_single(a), "value"),
    "trim": _trim,
    "watermark": _watermark,
    "width": lambda a: _p_int(_single(a), "width"),
    "enforce_thumbnail": lambda a: _p_bool(_single(a), "value"),
    "extend_aspect_ratio": _extend,
    "filename": _filename_arg,
    "max_animation_frame_resolution": lambda a: _p_float(_single(a), "megapixels", lambda n: n >= 0),
    "max_animation_frames": lambda a: _p_int(_single(a), "frames", 1),
    "max_result_dimension": lambda a: _p_int(_single(a), "dimension", 0, 65535),
    "max_src_file_size": lambda a: _p_int(_single(a), "bytes"),
    "max_src_resolution": lambda a: _p_float(_single(a), "megapixels", lambda n: n >= 0),
    "pixelate": lambda a: _p_int(_single(a), "pixelate", 0, 65535),
    "raw": lambda a: _p_bool(_single(a), "value"),
    "resizing_algorithm": lambda a: _one_of(_single(a), RESIZING_ALGORITHMS, "resizing algorithm"),
    "return_attachment": lambda a: _p_bool(_single(a), "value"),
    "skip_processing": lambda a: [_one_of(f, SKIP_FORMATS, "format") for f in a],
    "zoom": _zoom,
}


def parse_option_segment(segment: str) -> Tuple[str, Any]:
    """Parse one ``name:arg:…`` segment into ``(json_key, value)``."""
    parts = segment.split(":")
    name = parts[0]
    key = OPTION_ALIASES.get(name)
    if key is None:
        raise ImagoParseError("unknown-option", f'unknown option "{name}"', name)
    args = parts[1:]
    while args and args[-1] == "":
        args.pop()
    try:
        if not args:
            raise _ArgError("needs at least one non-empty argument")
        return key, _PARSERS[key](args)
    except _ArgError as e:
        raise ImagoParseError("invalid-option", f'invalid option "{name}": {e}', name) from None


def parse_path(path: str, *, now: Optional[float] = None) -> ParsedPath:
    """Parse the unsigned part of a URL path (after the signature, leading '/').

    Raises :class:`ImagoParseError` with the server's error code. When ``now``
    (unix seconds) is given, an ``exp`` in the past raises ``url-expired``.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise ImagoParseError("invalid-source", "path must start with '/'")
    segs = path[1:].split("/")
    options: Dict[str, Any] = {}
    i = 0
    while i < len(segs) and ":" in segs[i]:
        key, value = parse_option_segment(segs[i])
        options[key] = value
        i += 1
    rest = segs[i:]
    if not rest or rest == [""]:
        raise ImagoParseError("invalid-source", "missing source")
    ext: Optional[str] = None
    if rest[0] == "plain":
        encoding = "plain"
        raw = "/".join(rest[1:])
        at = raw.rfind("@")
        if at >= 0:
            raw, ext = raw[:at], raw[at + 1:]
        source = percent_decode(raw)
        if source is None:
            raise ImagoParseError("invalid-source", "malformed percent-encoding in plain source")
    else:
        encoding = "base64"
        raw = "".join(rest)
        dot = raw.rfind(".")
        if dot >= 0:
            raw, ext = raw[:dot], raw[dot + 1:]
        data = b64url_decode(raw)
        source = None if data is None else utf8_decode(data)
        if source is None:
            raise ImagoParseError("invalid-source", "malformed base64url source")
    if ext is not None and ext not in CONCRETE_FORMATS:
        raise ImagoParseError("invalid-source", f'unknown extension "{ext}"')
    if not is_valid_source(source):
        raise ImagoParseError("invalid-source", "source must be local:///…, s3://bucket/key or http(s)://host/…")
    exp = options.get("expires")
    if now is not None and isinstance(exp, int) and exp > 0 and now > exp:
        raise ImagoParseError("url-expired", "URL has expired", "exp")
    return ParsedPath(options=options, source=source, encoding=encoding, extension=ext)
