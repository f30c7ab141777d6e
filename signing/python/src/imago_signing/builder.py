"""Immutable fluent URL builder."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Union

from .signer import build_path

if TYPE_CHECKING:  # pragma: no cover
    from .signer import ImagoSigner

__all__ = ["ImageUrlBuilder"]

Num = Union[int, float]


def _gravity(type_: Union[str, Mapping[str, Any]], a: Optional[Num], b: Optional[Num]) -> Dict[str, Any]:
    if isinstance(type_, Mapping):
        return dict(type_)
    if type_ == "sm":
        return {"type": "sm"}
    if type_ == "fp":
        return {"type": "fp", "x": a, "y": b}
    g: Dict[str, Any] = {"type": type_}
    if a is not None:
        g["x_offset"] = a
    if b is not None:
        g["y_offset"] = b
    return g


def _compact(**kw: Any) -> Dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


class ImageUrlBuilder:
    """Every method returns a new builder::

        signer.image("s3://bucket/cat.jpg").resize("fill", 300, 200).gravity("sm").format("auto").url()
    """

    def __init__(self, signer: "ImagoSigner", source: str, options: Mapping[str, Any], path_opts: Mapping[str, Any]) -> None:
        self._signer = signer
        self.source = source
        self._options = dict(options)
        self._path_opts = dict(path_opts)

    def _with(self, **patch: Any) -> "ImageUrlBuilder":
        return ImageUrlBuilder(self._signer, self.source, {**self._options, **patch}, self._path_opts)

    def _with_path(self, **patch: Any) -> "ImageUrlBuilder":
        po = {**self._path_opts, **patch}
        return ImageUrlBuilder(self._signer, self.source, self._options, {k: v for k, v in po.items() if v is not None})

    def options(self, options: Mapping[str, Any]) -> "ImageUrlBuilder":
        """Merge a canonical option mapping."""
        return self._with(**options)

    def auto_rotate(self, on: bool = True) -> "ImageUrlBuilder":
        return self._with(auto_rotate=on)

    def background(self, hex_or_r: Union[str, int, Mapping[str, int]], g: Optional[int] = None, b: Optional[int] = None) -> "ImageUrlBuilder":
        if isinstance(hex_or_r, int) and not isinstance(hex_or_r, bool):
            return self._with(background={"r": hex_or_r, "g": g, "b": b})
        return self._with(background=hex_or_r)

    def blur(self, sigma: Num) -> "ImageUrlBuilder":
        return self._with(blur=sigma)

    def cachebuster(self, value: str) -> "ImageUrlBuilder":
        return self._with(cachebuster=value)

    def crop(self, width: Union[int, Mapping[str, Any]], height: Optional[int] = None, gravity: Optional[Mapping[str, Any]] = None) -> "ImageUrlBuilder":
        if isinstance(width, Mapping):
            return self._with(crop=dict(width))
        return self._with(crop=_compact(width=width, height=height, gravity=gravity))

    def dpr(self, ratio: Num) -> "ImageUrlBuilder":
        return self._with(dpr=ratio)

    def enlarge(self, on: bool = True) -> "ImageUrlBuilder":
        return self._with(enlarge=on)

    def expires(self, at: Union[int, float, datetime]) -> "ImageUrlBuilder":
        b = self._with_path(expires_in=None)
        b._path_opts["expires"] = at
        return b

    def expires_in(self, seconds: Num) -> "ImageUrlBuilder":
        b = self._with_path(expires=None)
        b._path_opts["expires_in"] = seconds
        return b

    def extend(self, on: Union[bool, Mapping[str, Any]] = True, gravity: Optional[Mapping[str, Any]] = None) -> "ImageUrlBuilder":
        if isinstance(on, Mapping):
            return self._with(extend=dict(on))
        return self._with(extend=_compact(extend=on, gravity=gravity))

    def flip(self, horizontal: bool, vertical: bool = False) -> "ImageUrlBuilder":
        return self._with(flip={"horizontal": horizontal, "vertical": vertical})

    def format(self, fmt: str) -> "ImageUrlBuilder":
        return self._with(format=fmt)

    def format_quality(self, fq: Union[Sequence[Mapping[str, Any]], Mapping[str, int]]) -> "ImageUrlBuilder":
        if isinstance(fq, Mapping):
            return self._with(format_quality=[{"format": k, "quality": v} for k, v in fq.items()])
        return self._with(format_quality=[dict(e) for e in fq])

    def gravity(self, type_: Union[str, Mapping[str, Any]], a: Optional[Num] = None, b: Optional[Num] = None) -> "ImageUrlBuilder":
        """``gravity("sm")``, ``gravity("no", 10, 5)``, ``gravity("fp", 0.5, 0.3)`` or a mapping."""
        return self._with(gravity=_gravity(type_, a, b))

    def height(self, px: int) -> "ImageUrlBuilder":
        return self._with(height=px)

    def keep_copyright(self, on: bool = True) -> "ImageUrlBuilder":
        return self._with(keep_copyright=on)

    def max_bytes(self, n: int) -> "ImageUrlBuilder":
        return self._with(max_bytes=n)

    def min_height(self, px: int) -> "ImageUrlBuilder":
        return self._with(min_height=px)

    def min_width(self, px: int) -> "ImageUrlBuilder":
        return self._with(min_width=px)

    def padding(self, top: Union[int, Mapping[str, int]], right: Optional[int] = None, bottom: Optional[int] = None, left: Optional[int] = None) -> "ImageUrlBuilder":
        if isinstance(top, Mapping) or (right is None and bottom is None and left is None):
            return self._with(padding=top)
        return self._with(padding=_compact(top=top, right=right, bottom=bottom, left=left))

    def preset(self, *names: str) -> "ImageUrlBuilder":
        return self._with(preset=list(names))

    def quality(self, q: Union[int, str]) -> "ImageUrlBuilder":
        return self._with(quality=q)

    def resize(self, type_: Union[str, Mapping[str, Any]], width: Optional[int] = None, height: Optional[int] = None,
               enlarge: Optional[bool] = None, extend: Optional[Mapping[str, Any]] = None) -> "ImageUrlBuilder":
        """``resize("fill", 300, 200)`` or a mapping."""
        if isinstance(type_, Mapping):
            return self._with(resize=dict(type_))
        return self._with(resize=_compact(resizing_type=type_, width=width, height=height, enlarge=enlarge, extend=extend))

    def resizing_type(self, type_: str) -> "ImageUrlBuilder":
        return self._with(resizing_type=type_)

    def rotate(self, angle: int) -> "ImageUrlBuilder":
        return self._with(rotate=angle)

    def sharpen(self, sigma: Num) -> "ImageUrlBuilder":
        return self._with(sharpen=sigma)

    def size(self, width: Union[int, Mapping[str, Any], None], height: Optional[int] = None,
             enlarge: Optional[bool] = None, extend: Optional[Mapping[str, Any]] = None) -> "ImageUrlBuilder":
        if isinstance(width, Mapping):
            return self._with(size=dict(width))
        return self._with(size=_compact(width=width, height=height, enlarge=enlarge, extend=extend))

    def strip_color_profile(self, on: bool = True) -> "ImageUrlBuilder":
        return self._with(strip_color_profile=on)

    def strip_metadata(self, on: bool = True) -> "ImageUrlBuilder":
        return self._with(strip_metadata=on)

    def trim(self, threshold: Union[Num, Mapping[str, Any]], *, color: Optional[str] = None,
             equal_hor: Optional[bool] = None, equal_ver: Optional[bool] = None) -> "ImageUrlBuilder":
        if isinstance(threshold, Mapping):
            return self._with(trim=dict(threshold))
        return self._with(trim=_compact(threshold=threshold, color=color, equal_hor=equal_hor, equal_ver=equal_ver))

    def watermark(self, opacity: Union[Num, Mapping[str, Any]], position: Optional[str] = None, *,
                  x_offset: Optional[Num] = None, y_offset: Optional[Num] = None,
                  scale: Optional[Num] = None) -> "ImageUrlBuilder":
        """``wm:`` the server's watermark (``IMAGO_WATERMARK_*``)."""
        if isinstance(opacity, Mapping):
            return self._with(watermark=dict(opacity))
        return self._with(watermark=_compact(opacity=opacity, position=position, x_offset=x_offset,
                                             y_offset=y_offset, scale=scale))

    def width(self, px: int) -> "ImageUrlBuilder":
        return self._with(width=px)

    # imgproxy's further options (issue #20).
    def enforce_thumbnail(self, on: bool = True) -> "ImageUrlBuilder":
        return self._with(enforce_thumbnail=on)

    def extend_aspect_ratio(self, extend: Union[bool, Mapping[str, Any]] = True) -> "ImageUrlBuilder":
        return self._with(extend_aspect_ratio=dict(extend) if isinstance(extend, Mapping) else {"extend": extend})

    def filename(self, name: Union[str, Mapping[str, Any]]) -> "ImageUrlBuilder":
        """``fn:``; ``{"name": b64, "encoded": True}`` for base64url names."""
        return self._with(filename=dict(name) if isinstance(name, Mapping) else {"name": name})

    def max_animation_frame_resolution(self, megapixels: Num) -> "ImageUrlBuilder":
        return self._with(max_animation_frame_resolution=megapixels)

    def max_animation_frames(self, n: int) -> "ImageUrlBuilder":
        return self._with(max_animation_frames=n)

    def max_result_dimension(self, px: int) -> "ImageUrlBuilder":
        return self._with(max_result_dimension=px)

    def max_src_file_size(self, n: int) -> "ImageUrlBuilder":
        return self._with(max_src_file_size=n)

    def max_src_resolution(self, megapixels: Num) -> "ImageUrlBuilder":
        return self._with(max_src_resolution=megapixels)

    def pixelate(self, px: int) -> "ImageUrlBuilder":
        return self._with(pixelate=px)

    def raw(self, on: bool = True) -> "ImageUrlBuilder":
        return self._with(raw=on)

    def resizing_algorithm(self, algorithm: str) -> "ImageUrlBuilder":
        return self._with(resizing_algorithm=algorithm)

    def return_attachment(self, on: bool = True) -> "ImageUrlBuilder":
        return self._with(return_attachment=on)

    def skip_processing(self, *formats: str) -> "ImageUrlBuilder":
        return self._with(skip_processing=list(formats))

    def zoom(self, x: Num, y: Optional[Num] = None) -> "ImageUrlBuilder":
        return self._with(zoom=x if y is None else {"zoom_x": x, "zoom_y": y})

    def extension(self, ext: str) -> "ImageUrlBuilder":
        return self._with_path(extension=ext)

    def encoding(self, encoding: str) -> "ImageUrlBuilder":
        return self._with_path(encoding=encoding)

    def chunk_size(self, n: int) -> "ImageUrlBuilder":
        return self._with_path(chunk_size=n)

    def to_options(self) -> Dict[str, Any]:
        """The canonical option mapping built so far (a copy)."""
        return dict(self._options)

    def unsigned_path(self) -> str:
        return build_path(self.source, self._options, **self._path_opts)

    def path(self) -> str:
        return self._signer.path(self.source, self._options, **self._path_opts)

    def url(self) -> str:
        return self._signer.url(self.source, self._options, **self._path_opts)

    def srcset(self, *, max_width: Optional[float] = None, widths: Optional[Sequence[int]] = None) -> str:
        return self._signer.srcset(self.source, self._options, max_width=max_width, widths=widths, **self._path_opts)

    def __str__(self) -> str:
        return self.url()
