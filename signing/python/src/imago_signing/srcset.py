"""Width ladder, srcset and sizes helpers (SPEC §9)."""
from __future__ import annotations

from typing import Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ._encoding import format_number, is_number
from .errors import ImagoOptionError

__all__ = ["LADDER", "srcset_widths", "assemble_srcset", "sizes"]

#: Server default width ladder.
LADDER: Tuple[int, ...] = (16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840)


def srcset_widths(max_width: Optional[float] = None, widths: Optional[Sequence[int]] = None) -> List[int]:
    """Ladder widths (or ``widths``) sorted, deduplicated, ``<= max_width``; the smallest if none fit."""
    base = LADDER if widths is None else widths
    if not isinstance(base, (list, tuple)) or len(base) == 0:
        raise ImagoOptionError("widths", "widths must be a non-empty sequence")
    for w in base:
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise ImagoOptionError("widths", "widths must be positive integers")
    ordered = sorted(set(base))
    if max_width is None:
        return ordered
    if not is_number(max_width) or not max_width > 0:
        raise ImagoOptionError("max_width", "max_width must be a positive number")
    kept = [w for w in ordered if w <= max_width]
    return kept or [ordered[0]]


def assemble_srcset(entries: Iterable[Tuple[int, str]]) -> str:
    return ", ".join(f"{url} {w}w" for w, url in entries)


SizeValue = Union[str, int, float]
Breakpoint = Union[Mapping[str, SizeValue], Tuple[int, SizeValue]]


def _size_value(v: SizeValue, what: str) -> str:
    if is_number(v):
        if not (v > 0 and v != float("inf")):  # type: ignore[operator]
            raise ImagoOptionError(what, f"{what} must be a positive number of px")
        return f"{format_number(v)}px"
    if not isinstance(v, str) or not v.strip() or "," in v:
        raise ImagoOptionError(what, f"{what} must be a non-empty CSS length without ','")
    return v.strip()


def sizes(breakpoints: Sequence[Breakpoint], default: SizeValue = "100vw") -> str:
    """``sizes`` attribute: ``(max-width: 640px) 100vw, …, default``.

    ``breakpoints`` items are ``{"max_width": 640, "size": "100vw"}`` or ``(640, "100vw")``.
    """
    if not isinstance(breakpoints, (list, tuple)):
        raise ImagoOptionError("breakpoints", "breakpoints must be a sequence")
    seen = set()
    parts = []
    for i, bp in enumerate(breakpoints):
        if isinstance(bp, Mapping):
            mw, size = bp.get("max_width"), bp.get("size")
        else:
            mw, size = bp
        if isinstance(mw, bool) or not isinstance(mw, int) or mw < 1:
            raise ImagoOptionError("breakpoints", f"breakpoints[{i}].max_width must be a positive integer")
        if mw in seen:
            raise ImagoOptionError("breakpoints", f"duplicate max_width {mw}")
        seen.add(mw)
        parts.append((mw, _size_value(size, f"breakpoints[{i}].size")))  # type: ignore[arg-type]
    parts.sort(key=lambda p: p[0])
    out = [f"(max-width: {w}px) {s}" for w, s in parts]
    out.append(_size_value(default, "default"))
    return ", ".join(out)
