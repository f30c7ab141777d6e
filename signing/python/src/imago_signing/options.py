"""Canonical option serialisation (SPEC §4–§5), identical to @imgproxy/imgproxy-node."""
from __future__ import annotations

import re
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

from ._encoding import format_bool, format_number, is_number
from .errors import ImagoOptionError

__all__ = [
    "COMPASS_GRAVITY",
    "RESIZING_TYPES",
    "FORMATS",
    "CONCRETE_FORMATS",
    "ROTATIONS",
    "OPTION_TABLE",
    "RESIZING_ALGORITHMS",
    "SKIP_FORMATS",
    "OPTION_KEYS",
    "serialize_option_segments",
    "serialize_options",
]

COMPASS_GRAVITY = ("no", "so", "ea", "we", "noea", "nowe", "soea", "sowe", "ce")
RESIZING_TYPES = ("fit", "fill", "fill-down", "force", "auto")
FORMATS = ("jpg", "png", "webp", "avif", "gif", "auto", "jxl")
CONCRETE_FORMATS = ("jpg", "png", "webp", "avif", "gif", "jxl")
ROTATIONS = (0, 90, 180, 270)
RESIZING_ALGORITHMS = ("nearest", "linear", "cubic", "lanczos2", "lanczos3")
#: imgproxy's image type names (``skip_processing``).
SKIP_FORMATS = ("jpg", "jpeg", "png", "webp", "gif", "avif", "heic", "tiff", "jxl", "bmp", "ico", "svg")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
_NAME_RE = re.compile(r"[A-Za-z0-9._~-]+")
_HEX_COLOR_RE = re.compile(r"[0-9a-fA-F]{3}|[0-9a-fA-F]{6}")


class _Ctx:
    __slots__ = ("key", "path")

    def __init__(self, key: str, path: str) -> None:
        self.key = key
        self.path = path

    def sub(self, name: object) -> "_Ctx":
        return _Ctx(self.key, f"{self.path}.{name}")

    def fail(self, msg: str) -> "ImagoOptionError":
        return ImagoOptionError(self.key, f"{self.path} {msg}")


def _is_obj(v: object) -> bool:
    return isinstance(v, Mapping)


def _check_keys(ctx: _Ctx, v: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for k in v.keys():
        if k not in allowed:
            raise ctx.fail(f'has unknown field "{k}" (allowed: {", ".join(allowed)})')


def _num(ctx: _Ctx, v: object, *, min: Optional[float] = None, max: Optional[float] = None,
         gt: Optional[float] = None, integer: bool = False) -> float:
    if not is_number(v):
        raise ctx.fail("must be a finite number")
    f = float(v)  # type: ignore[arg-type]
    if f != f or f in (float("inf"), float("-inf")):
        raise ctx.fail("must be a finite number")
    if integer and not f.is_integer():
        raise ctx.fail("must be an integer")
    if gt is not None and not f > gt:
        raise ctx.fail(f"must be greater than {gt:g}")
    if min is not None and f < min:
        raise ctx.fail(f"must be >= {min:g}")
    if max is not None and f > max:
        raise ctx.fail(f"must be <= {max:g}")
    return f


def _fmt(v: Any) -> str:
    return format_number(v)


def _int(ctx: _Ctx, v: object, min: int = 0, max: Optional[int] = None) -> str:
    _num(ctx, v, min=min, max=max, integer=True)
    return str(int(v))  # type: ignore[call-overload]


def _float(ctx: _Ctx, v: object, **kw: Any) -> str:
    _num(ctx, v, **kw)
    return _fmt(v)


def _bool(ctx: _Ctx, v: object) -> str:
    if not isinstance(v, bool):
        raise ctx.fail("must be a boolean")
    return format_bool(v)


def _one_of(ctx: _Ctx, v: object, allowed: Sequence[Any]) -> Any:
    if not isinstance(v, bool):
        for a in allowed:
            if isinstance(a, str) and isinstance(v, str) and v == a:
                return v
            if not isinstance(a, str) and is_number(v) and v == a:
                return v
    raise ctx.fail(f"must be one of {', '.join(str(a) for a in allowed)}")


def _name(ctx: _Ctx, v: object) -> str:
    if not isinstance(v, str) or not _NAME_RE.fullmatch(v):
        raise ctx.fail("must be a non-empty string of [A-Za-z0-9._~-]")
    return v


def _hex_color(ctx: _Ctx, v: object) -> str:
    if not isinstance(v, str) or not _HEX_COLOR_RE.fullmatch(v):
        raise ctx.fail("must be 3 or 6 hex digits (no '#')")
    return v


def _join(args: Sequence[str]) -> str:
    """Join with ':' and strip trailing empty arguments."""
    return ":".join(args).rstrip(":")


def _opt(v: Any, f: Callable[[Any], str]) -> str:
    return "" if v is None else f(v)


def _gravity(ctx: _Ctx, v: object, allow_smart: bool) -> str:
    if not _is_obj(v):
        raise ctx.fail("must be an object {type, …}")
    assert isinstance(v, Mapping)
    types = list(COMPASS_GRAVITY) + ["fp"] + (["sm"] if allow_smart else [])
    t = _one_of(ctx.sub("type"), v.get("type"), types)
    if t == "sm":
        _check_keys(ctx, v, ["type"])
        return "sm"
    if t == "fp":
        _check_keys(ctx, v, ["type", "x", "y"])
        x = _float(ctx.sub("x"), v.get("x"), min=0, max=1)
        y = _float(ctx.sub("y"), v.get("y"), min=0, max=1)
        return f"fp:{x}:{y}"
    _check_keys(ctx, v, ["type", "x_offset", "y_offset"])
    xo = _opt(v.get("x_offset"), lambda x: _float(ctx.sub("x_offset"), x))
    yo = _opt(v.get("y_offset"), lambda y: _float(ctx.sub("y_offset"), y))
    return _join([t, xo, yo])


def _extend(ctx: _Ctx, v: object) -> str:
    if not _is_obj(v):
        raise ctx.fail("must be an object {extend, gravity?}")
    assert isinstance(v, Mapping)
    _check_keys(ctx, v, ["extend", "gravity"])
    e = _bool(ctx.sub("extend"), v.get("extend"))
    g = _opt(v.get("gravity"), lambda g: _gravity(ctx.sub("gravity"), g, False))
    return _join([e, g])


def _non_empty_obj(ctx: _Ctx, v: object, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not _is_obj(v):
        raise ctx.fail("must be an object")
    assert isinstance(v, Mapping)
    _check_keys(ctx, v, allowed)
    if not any(v.get(k) is not None for k in allowed):
        raise ctx.fail(f"must set at least one of {', '.join(allowed)}")
    return v


def _scalar(short: str, f: Callable[[_Ctx, Any], str]) -> Callable[[_Ctx, Any], Optional[str]]:
    """Scalar options whose value 0 is omitted (imgproxy-node treats 0 as falsy)."""

    def ser(ctx: _Ctx, v: Any) -> Optional[str]:
        s = f(ctx, v)
        return None if v == 0 else f"{short}:{s}"

    return ser


def _background(c: _Ctx, v: Any) -> str:
    if isinstance(v, str):
        return f"bg:{_hex_color(c, v)}"
    if not _is_obj(v):
        raise c.fail("must be a hex string or {r, g, b}")
    _check_keys(c, v, ["r", "g", "b"])
    return f"bg:{_int(c.sub('r'), v.get('r'), 0, 255)}:{_int(c.sub('g'), v.get('g'), 0, 255)}:{_int(c.sub('b'), v.get('b'), 0, 255)}"


def _crop(c: _Ctx, v: Any) -> str:
    if not _is_obj(v):
        raise c.fail("must be an object {width, height, gravity?}")
    _check_keys(c, v, ["width", "height", "gravity"])
    w = _int(c.sub("width"), v.get("width"))
    h = _int(c.sub("height"), v.get("height"))
    g = _opt(v.get("gravity"), lambda g: _gravity(c.sub("gravity"), g, True))
    return _join(["c", w, h, g])


def _flip(c: _Ctx, v: Any) -> str:
    if not _is_obj(v):
        raise c.fail("must be an object {horizontal?, vertical?}")
    _check_keys(c, v, ["horizontal", "vertical"])
    h = v.get("horizontal")
    vv = v.get("vertical")
    return f"fl:{_bool(c.sub('horizontal'), False if h is None else h)}:{_bool(c.sub('vertical'), False if vv is None else vv)}"


def _format_quality(c: _Ctx, v: Any) -> str:
    if not isinstance(v, (list, tuple)) or len(v) == 0:
        raise c.fail("must be a non-empty array of {format, quality}")
    parts = []
    for i, e in enumerate(v):
        ec = c.sub(i)
        if not _is_obj(e):
            raise ec.fail("must be an object {format, quality}")
        _check_keys(ec, e, ["format", "quality"])
        fmt = _one_of(ec.sub("format"), e.get("format"), CONCRETE_FORMATS)
        parts.append(f"{fmt}:{_int(ec.sub('quality'), e.get('quality'), 0, 100)}")
    return "fq:" + ":".join(parts)


def _padding(c: _Ctx, v: Any) -> Optional[str]:
    if is_number(v):
        s = _int(c, v)
        return None if v == 0 else f"pd:{s}"
    o = _non_empty_obj(c, v, ["top", "right", "bottom", "left"])
    return _join(["pd"] + [_opt(o.get(k), lambda x, k=k: _int(c.sub(k), x)) for k in ("top", "right", "bottom", "left")])


def _preset(c: _Ctx, v: Any) -> str:
    if not isinstance(v, (list, tuple)) or len(v) == 0:
        raise c.fail("must be a non-empty array of names")
    return "pr:" + ":".join(_name(c.sub(i), n) for i, n in enumerate(v))


def _quality(c: _Ctx, v: Any) -> Optional[str]:
    if v == "auto":
        return "q:auto"
    s = _int(c, v, 0, 100)
    return None if v == 0 else f"q:{s}"


def _resize(c: _Ctx, v: Any) -> str:
    o = _non_empty_obj(c, v, ["resizing_type", "width", "height", "enlarge", "extend"])
    return _join([
        "rs",
        _opt(o.get("resizing_type"), lambda t: _one_of(c.sub("resizing_type"), t, RESIZING_TYPES)),
        _opt(o.get("width"), lambda x: _int(c.sub("width"), x)),
        _opt(o.get("height"), lambda x: _int(c.sub("height"), x)),
        _opt(o.get("enlarge"), lambda x: _bool(c.sub("enlarge"), x)),
        _opt(o.get("extend"), lambda x: _extend(c.sub("extend"), x)),
    ])


def _rotate(c: _Ctx, v: Any) -> Optional[str]:
    _one_of(c, v, ROTATIONS)
    return None if v == 0 else f"rot:{int(v)}"


def _size(c: _Ctx, v: Any) -> str:
    o = _non_empty_obj(c, v, ["width", "height", "enlarge", "extend"])
    return _join([
        "s",
        _opt(o.get("width"), lambda x: _int(c.sub("width"), x)),
        _opt(o.get("height"), lambda x: _int(c.sub("height"), x)),
        _opt(o.get("enlarge"), lambda x: _bool(c.sub("enlarge"), x)),
        _opt(o.get("extend"), lambda x: _extend(c.sub("extend"), x)),
    ])


def _trim(c: _Ctx, v: Any) -> str:
    if not _is_obj(v):
        raise c.fail("must be an object {threshold, color?, equal_hor?, equal_ver?}")
    _check_keys(c, v, ["threshold", "color", "equal_hor", "equal_ver"])
    return _join([
        "t",
        _float(c.sub("threshold"), v.get("threshold"), min=0),
        _opt(v.get("color"), lambda x: _hex_color(c.sub("color"), x)),
        _opt(v.get("equal_hor"), lambda x: _bool(c.sub("equal_hor"), x)),
        _opt(v.get("equal_ver"), lambda x: _bool(c.sub("equal_ver"), x)),
    ])


def _filename(c: _Ctx, v: Any) -> str:
    if not _is_obj(v):
        raise c.fail("must be an object {name, encoded?}")
    _check_keys(c, v, ["name", "encoded"])
    enc = _opt(v.get("encoded"), lambda x: _bool(c.sub("encoded"), x))
    name = v.get("name")
    rx = _B64URL_RE if v.get("encoded") is True else _NAME_RE
    if not isinstance(name, str) or not rx.fullmatch(name):
        raise c.sub("name").fail("must be [A-Za-z0-9._~-]+ (or base64url with encoded: true)")
    return _join([f"fn:{name}", enc])


def _skip_processing(c: _Ctx, v: Any) -> str:
    if not isinstance(v, (list, tuple)) or len(v) == 0:
        raise c.fail("must be a non-empty array of formats")
    return "skp:" + ":".join(_one_of(c.sub(i), f, SKIP_FORMATS) for i, f in enumerate(v))


def _zoom(c: _Ctx, v: Any) -> str:
    if is_number(v) and not isinstance(v, bool):
        return f"z:{_float(c, v, gt=0)}"
    if not _is_obj(v):
        raise c.fail("must be a number or {zoom_x, zoom_y}")
    _check_keys(c, v, ["zoom_x", "zoom_y"])
    return f"z:{_float(c.sub('zoom_x'), v.get('zoom_x'), gt=0)}:{_float(c.sub('zoom_y'), v.get('zoom_y'), gt=0)}"


WATERMARK_POSITIONS = ("ce", "no", "so", "ea", "we", "noea", "nowe", "soea", "sowe", "re")


def _watermark(c: _Ctx, v: Any) -> str:
    if not _is_obj(v):
        raise c.fail("must be an object {opacity, position?, x_offset?, y_offset?, scale?}")
    _check_keys(c, v, ["opacity", "position", "x_offset", "y_offset", "scale"])
    return _join([
        "wm",
        _float(c.sub("opacity"), v.get("opacity"), min=0, max=1),
        _opt(v.get("position"), lambda x: _one_of(c.sub("position"), x, WATERMARK_POSITIONS)),
        _opt(v.get("x_offset"), lambda x: _float(c.sub("x_offset"), x)),
        _opt(v.get("y_offset"), lambda x: _float(c.sub("y_offset"), x)),
        _opt(v.get("scale"), lambda x: _float(c.sub("scale"), x, min=0)),
    ])


Serializer = Callable[[_Ctx, Any], Optional[str]]

#: Canonical order (SPEC §5.1) = imgproxy-js-core's alphabetical module order: (JSON key, short name, serializer)
OPTION_TABLE: Tuple[Tuple[str, str, Serializer], ...] = (
    ("auto_rotate", "ar", lambda c, v: f"ar:{_bool(c, v)}"),
    ("background", "bg", _background),
    ("blur", "bl", _scalar("bl", lambda c, v: _float(c, v, min=0))),
    ("cachebuster", "cb", lambda c, v: f"cb:{_name(c, v)}"),
    ("crop", "c", _crop),
    ("dpr", "dpr", lambda c, v: f"dpr:{_float(c, v, gt=0)}"),
    ("enforce_thumbnail", "eth", lambda c, v: f"eth:{_bool(c, v)}"),
    ("enlarge", "el", lambda c, v: f"el:{_bool(c, v)}"),
    ("expires", "exp", _scalar("exp", lambda c, v: _int(c, v))),
    ("extend", "ex", lambda c, v: f"ex:{_extend(c, v)}"),
    ("extend_aspect_ratio", "exar", lambda c, v: f"exar:{_extend(c, v)}"),
    ("filename", "fn", _filename),
    ("flip", "fl", _flip),
    ("format", "f", lambda c, v: f"f:{_one_of(c, v, FORMATS)}"),
    ("format_quality", "fq", _format_quality),
    ("gravity", "g", lambda c, v: f"g:{_gravity(c, v, True)}"),
    ("height", "h", _scalar("h", lambda c, v: _int(c, v))),
    ("keep_copyright", "kcr", lambda c, v: f"kcr:{_bool(c, v)}"),
    ("max_animation_frame_resolution", "mafr", lambda c, v: f"mafr:{_float(c, v, min=0)}"),
    ("max_animation_frames", "maf", lambda c, v: f"maf:{_int(c, v, 1)}"),
    ("max_bytes", "mb", _scalar("mb", lambda c, v: _int(c, v))),
    ("max_result_dimension", "mrd", lambda c, v: f"mrd:{_int(c, v, 0, 65535)}"),
    ("max_src_file_size", "msfs", lambda c, v: f"msfs:{_int(c, v)}"),
    ("max_src_resolution", "msr", lambda c, v: f"msr:{_float(c, v, gt=0)}"),
    ("min_height", "mh", _scalar("mh", lambda c, v: _int(c, v))),
    ("min_width", "mw", _scalar("mw", lambda c, v: _int(c, v))),
    ("padding", "pd", _padding),
    ("pixelate", "pix", _scalar("pix", lambda c, v: _int(c, v, 0, 65535))),
    ("preset", "pr", _preset),
    ("quality", "q", _quality),
    ("raw", "raw", lambda c, v: f"raw:{_bool(c, v)}"),
    ("resize", "rs", _resize),
    ("resizing_algorithm", "ra", lambda c, v: f"ra:{_one_of(c, v, RESIZING_ALGORITHMS)}"),
    ("resizing_type", "rt", lambda c, v: f"rt:{_one_of(c, v, RESIZING_TYPES)}"),
    ("return_attachment", "att", lambda c, v: f"att:{_bool(c, v)}"),
    ("rotate", "rot", _rotate),
    ("sharpen", "sh", _scalar("sh", lambda c, v: _float(c, v, min=0))),
    ("size", "s", _size),
    ("skip_processing", "skp", _skip_processing),
    ("strip_color_profile", "scp", lambda c, v: f"scp:{_bool(c, v)}"),
    ("strip_metadata", "sm", lambda c, v: f"sm:{_bool(c, v)}"),
    ("trim", "t", _trim),
    ("watermark", "wm", _watermark),
    ("width", "w", _scalar("w", lambda c, v: _int(c, v))),
    ("zoom", "z", _zoom),
)

OPTION_KEYS = frozenset(k for k, _, _ in OPTION_TABLE)


def serialize_option_segments(options: Optional[Mapping[str, Any]]) -> List[str]:
    """Canonical option segments in canonical order (no leading '/')."""
    if options is None:
        return []
    if not isinstance(options, Mapping):
        raise ImagoOptionError("options", "options must be a mapping")
    for k in options:
        if k not in OPTION_KEYS:
            raise ImagoOptionError(str(k), f'unknown option "{k}"')
    out: List[str] = []
    for key, _short, ser in OPTION_TABLE:
        v = options.get(key)
        if v is None:
            continue
        s = ser(_Ctx(key, key), v)
        if s is not None:
            out.append(s)
    return out


def serialize_options(options: Optional[Mapping[str, Any]]) -> str:
    """Canonical option string, e.g. ``"g:sm/rs:fill:300:400/w:300"``."""
    return "/".join(serialize_option_segments(options))


