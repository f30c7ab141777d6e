/** Compass gravities (accept x/y offsets). */
export type CompassGravityType = "no" | "so" | "ea" | "we" | "noea" | "nowe" | "soea" | "sowe" | "ce";
export type GravityType = CompassGravityType | "sm" | "fp";

export type CompassGravity = { type: CompassGravityType; x_offset?: number; y_offset?: number };
export type SmartGravity = { type: "sm" };
export type FocusPointGravity = { type: "fp"; x: number; y: number };
export type Gravity = CompassGravity | SmartGravity | FocusPointGravity;
/** Gravity allowed for `extend` (no smart gravity). */
export type ExtendGravity = CompassGravity | FocusPointGravity;

export type ResizingType = "fit" | "fill" | "fill-down" | "force" | "auto";
/** Output formats; `auto` is an imago extension (negotiated from Accept). */
export type Format = "jpg" | "png" | "webp" | "avif" | "gif" | "auto" | "jxl";
export type ConcreteFormat = Exclude<Format, "auto">;
/** Extensions usable as `@ext` / `.ext` suffix. */
export type Extension = ConcreteFormat;

export interface Extend {
  extend: boolean;
  gravity?: ExtendGravity;
}

export interface ResizeOptions {
  resizing_type?: ResizingType;
  width?: number;
  height?: number;
  enlarge?: boolean;
  extend?: Extend;
}

export interface SizeOptions {
  width?: number;
  height?: number;
  enlarge?: boolean;
  extend?: Extend;
}

export interface CropOptions {
  width: number;
  height: number;
  gravity?: Gravity;
}

export interface TrimOptions {
  threshold: number;
  /** 3 or 6 hex digits, no '#'. */
  color?: string;
  equal_hor?: boolean;
  equal_ver?: boolean;
}

/** `wm`: the server's configured watermark (SPEC §4). */
export interface WatermarkOptions {
  /** 0–1 (times the server's IMAGO_WATERMARK_OPACITY); 0 = no watermark. */
  opacity: number;
  /** ce (default), no, so, ea, we, noea, nowe, soea, sowe, or re (tiled). */
  position?: "ce" | "no" | "so" | "ea" | "we" | "noea" | "nowe" | "soea" | "sowe" | "re";
  /** |v| ≥ 1: pixels; |v| < 1: a fraction of the image; with `re`, the spacing of the tiles. */
  x_offset?: number;
  y_offset?: number;
  /** Size relative to the result (0: the watermark's own size). */
  scale?: number;
}

export type Padding = number | { top?: number; right?: number; bottom?: number; left?: number };

export interface Flip {
  horizontal?: boolean;
  vertical?: boolean;
}

/** `"ff0000"` (3 or 6 hex digits) or `{r, g, b}` 0–255. */
export type Background = string | { r: number; g: number; b: number };

export interface FormatQuality {
  format: ConcreteFormat;
  quality: number;
}

export type Rotation = 0 | 90 | 180 | 270;

/** `ra`: libvips resampling kernels. */
export type ResizingAlgorithm = "nearest" | "linear" | "cubic" | "lanczos2" | "lanczos3";
/** imgproxy's image type names (`skip_processing`). */
export type SkipFormat = "jpg" | "jpeg" | "png" | "webp" | "gif" | "avif" | "heic" | "tiff" | "jxl" | "bmp" | "ico" | "svg";
/** `z:{n}` or `z:{x}:{y}` (factors > 0). */
export type Zoom = number | { zoom_x: number; zoom_y: number };
/** `fn:{name}[:{encoded}]`: `[A-Za-z0-9._~-]+`, or base64url with `encoded: true`. */
export interface Filename {
  name: string;
  encoded?: boolean;
}

/**
 * Canonical JSON option object (SPEC §4). Keys are imgproxy-node's full option
 * names; the same object given to `@imgproxy/imgproxy-node` yields the same path.
 */
export interface ImagoOptions {
  auto_rotate?: boolean;
  background?: Background;
  blur?: number;
  cachebuster?: string;
  crop?: CropOptions;
  dpr?: number;
  enlarge?: boolean;
  /** Unix seconds. */
  expires?: number;
  extend?: Extend;
  flip?: Flip;
  format?: Format;
  format_quality?: FormatQuality[];
  gravity?: Gravity;
  height?: number;
  keep_copyright?: boolean;
  max_bytes?: number;
  min_height?: number;
  min_width?: number;
  padding?: Padding;
  preset?: string[];
  /** 0–100 (0 = server default) or `"auto"` (imago extension). */
  quality?: number | "auto";
  resize?: ResizeOptions;
  resizing_type?: ResizingType;
  rotate?: Rotation;
  sharpen?: number;
  size?: SizeOptions;
  strip_color_profile?: boolean;
  strip_metadata?: boolean;
  trim?: TrimOptions;
  watermark?: WatermarkOptions;
  width?: number;
  // imgproxy's further options (issue #20).
  enforce_thumbnail?: boolean;
  extend_aspect_ratio?: Extend;
  filename?: Filename;
  /** Megapixels of one animation frame (security option). */
  max_animation_frame_resolution?: number;
  max_animation_frames?: number;
  max_result_dimension?: number;
  /** Bytes (security option). */
  max_src_file_size?: number;
  /** Megapixels (security option). */
  max_src_resolution?: number;
  /** Block size in px (0 is omitted). */
  pixelate?: number;
  raw?: boolean;
  resizing_algorithm?: ResizingAlgorithm;
  return_attachment?: boolean;
  skip_processing?: SkipFormat[];
  zoom?: Zoom;
}

export type OptionKey = keyof ImagoOptions;
/** `encrypted`: `/enc/…` (SPEC §3.4), async `ImagoSigner` with `sourceEncryptionKey` only. */
export type SourceEncoding = "plain" | "base64" | "encrypted";
