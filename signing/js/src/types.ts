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
  width?: number;
}

export type OptionKey = keyof ImagoOptions;
export type SourceEncoding = "plain" | "base64";
