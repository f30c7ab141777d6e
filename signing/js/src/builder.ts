import { buildPath, type PathOptions } from "./path.js";
import type { SrcsetOptions } from "./srcset.js";
import type {
  Background, CropOptions, Extend, ExtendGravity, Extension, Format, FormatQuality, Gravity, GravityType,
  ImagoOptions, Padding, ResizeOptions, ResizingType, Rotation, SizeOptions, SourceEncoding, TrimOptions,
  Filename, ResizingAlgorithm, SkipFormat,
} from "./types.js";

/** What a builder needs from a signer; R is `Promise<string>` (WebCrypto) or `string` (node:crypto). */
export interface SignerLike<R> {
  path(source: string, options: ImagoOptions, po: PathOptions): R;
  url(source: string, options: ImagoOptions, po: PathOptions): R;
  srcset(source: string, options: ImagoOptions, opts: SrcsetOptions & PathOptions): R;
}

function gravityOf(g: GravityType | Gravity, a?: number, b?: number): Gravity {
  if (typeof g === "object") return g;
  if (g === "sm") return { type: "sm" };
  if (g === "fp") return { type: "fp", x: a as number, y: b as number };
  const out: Gravity = { type: g };
  if (a !== undefined) out.x_offset = a;
  if (b !== undefined) out.y_offset = b;
  return out;
}

/**
 * Immutable fluent builder: every call returns a new builder.
 *
 *     await signer.image("s3://bucket/cat.jpg").resize("fill", 300, 200).gravity("sm").format("auto").url()
 */
export class ImageUrlBuilder<R = Promise<string>> {
  constructor(
    private readonly signer: SignerLike<R>,
    readonly source: string,
    private readonly opts: ImagoOptions,
    private readonly po: PathOptions,
  ) {}

  private with(patch: ImagoOptions): ImageUrlBuilder<R> {
    return new ImageUrlBuilder(this.signer, this.source, { ...this.opts, ...patch }, this.po);
  }

  private withPath(patch: PathOptions): ImageUrlBuilder<R> {
    return new ImageUrlBuilder(this.signer, this.source, this.opts, { ...this.po, ...patch });
  }

  /** Merge a canonical option object. */
  options(options: ImagoOptions): ImageUrlBuilder<R> { return this.with(options); }

  autoRotate(on = true) { return this.with({ auto_rotate: on }); }
  /** `background("ff0000")` or `background(255, 0, 0)` */
  background(hexOrR: Background | number, g?: number, b?: number) {
    return this.with({ background: typeof hexOrR === "number" ? { r: hexOrR, g: g as number, b: b as number } : hexOrR });
  }
  blur(sigma: number) { return this.with({ blur: sigma }); }
  cachebuster(value: string) { return this.with({ cachebuster: value }); }
  crop(width: number | CropOptions, height?: number, gravity?: Gravity) {
    if (typeof width === "object") return this.with({ crop: width });
    const c: CropOptions = { width, height: height as number };
    if (gravity) c.gravity = gravity;
    return this.with({ crop: c });
  }
  dpr(ratio: number) { return this.with({ dpr: ratio }); }
  enlarge(on = true) { return this.with({ enlarge: on }); }
  /** Unix seconds or Date. */
  expires(at: number | Date) { return this.withPath({ expires: at, expiresIn: undefined }); }
  expiresIn(seconds: number) { return this.withPath({ expiresIn: seconds, expires: undefined }); }
  extend(on: boolean | Extend = true, gravity?: ExtendGravity) {
    if (typeof on === "object") return this.with({ extend: on });
    const e: Extend = { extend: on };
    if (gravity) e.gravity = gravity;
    return this.with({ extend: e });
  }
  flip(horizontal: boolean, vertical = false) { return this.with({ flip: { horizontal, vertical } }); }
  format(format: Format) { return this.with({ format }); }
  formatQuality(fq: FormatQuality[] | Partial<Record<Exclude<Format, "auto">, number>>) {
    const list = Array.isArray(fq) ? fq : Object.entries(fq).map(([format, quality]) => ({ format, quality }) as FormatQuality);
    return this.with({ format_quality: list });
  }
  /** `gravity("sm")`, `gravity("no", 10, 5)`, `gravity("fp", 0.5, 0.3)` or a Gravity object. */
  gravity(type: GravityType | Gravity, a?: number, b?: number) { return this.with({ gravity: gravityOf(type, a, b) }); }
  height(px: number) { return this.with({ height: px }); }
  keepCopyright(on = true) { return this.with({ keep_copyright: on }); }
  maxBytes(bytes: number) { return this.with({ max_bytes: bytes }); }
  minHeight(px: number) { return this.with({ min_height: px }); }
  minWidth(px: number) { return this.with({ min_width: px }); }
  padding(top: Padding, right?: number, bottom?: number, left?: number) {
    if (typeof top === "object" || (right === undefined && bottom === undefined && left === undefined)) return this.with({ padding: top });
    const p: Record<string, number> = { top };
    if (right !== undefined) p.right = right;
    if (bottom !== undefined) p.bottom = bottom;
    if (left !== undefined) p.left = left;
    return this.with({ padding: p });
  }
  preset(...names: string[]) { return this.with({ preset: names }); }
  quality(q: number | "auto") { return this.with({ quality: q }); }
  /** `resize("fill", 300, 200)` or a ResizeOptions object. */
  resize(type: ResizingType | ResizeOptions, width?: number, height?: number, enlarge?: boolean, extend?: Extend) {
    if (typeof type === "object") return this.with({ resize: type });
    const r: ResizeOptions = { resizing_type: type };
    if (width !== undefined) r.width = width;
    if (height !== undefined) r.height = height;
    if (enlarge !== undefined) r.enlarge = enlarge;
    if (extend !== undefined) r.extend = extend;
    return this.with({ resize: r });
  }
  resizingType(type: ResizingType) { return this.with({ resizing_type: type }); }
  rotate(angle: Rotation) { return this.with({ rotate: angle }); }
  sharpen(sigma: number) { return this.with({ sharpen: sigma }); }
  size(width: number | SizeOptions, height?: number, enlarge?: boolean, extend?: Extend) {
    if (typeof width === "object") return this.with({ size: width });
    const s: SizeOptions = { width };
    if (height !== undefined) s.height = height;
    if (enlarge !== undefined) s.enlarge = enlarge;
    if (extend !== undefined) s.extend = extend;
    return this.with({ size: s });
  }
  stripColorProfile(on = true) { return this.with({ strip_color_profile: on }); }
  stripMetadata(on = true) { return this.with({ strip_metadata: on }); }
  trim(threshold: number | TrimOptions, rest: Omit<TrimOptions, "threshold"> = {}) {
    return this.with({ trim: typeof threshold === "object" ? threshold : { threshold, ...rest } });
  }
  width(px: number) { return this.with({ width: px }); }
  // imgproxy's further options (issue #20).
  enforceThumbnail(on = true) { return this.with({ enforce_thumbnail: on }); }
  extendAspectRatio(extend: boolean | Extend = true) {
    return this.with({ extend_aspect_ratio: typeof extend === "object" ? extend : { extend } });
  }
  /** `fn:`; `{ name, encoded: true }` for base64url names. */
  filename(name: string | Filename) { return this.with({ filename: typeof name === "object" ? name : { name } }); }
  maxAnimationFrameResolution(megapixels: number) { return this.with({ max_animation_frame_resolution: megapixels }); }
  maxAnimationFrames(n: number) { return this.with({ max_animation_frames: n }); }
  maxResultDimension(px: number) { return this.with({ max_result_dimension: px }); }
  maxSrcFileSize(bytes: number) { return this.with({ max_src_file_size: bytes }); }
  maxSrcResolution(megapixels: number) { return this.with({ max_src_resolution: megapixels }); }
  pixelate(px: number) { return this.with({ pixelate: px }); }
  raw(on = true) { return this.with({ raw: on }); }
  resizingAlgorithm(a: ResizingAlgorithm) { return this.with({ resizing_algorithm: a }); }
  returnAttachment(on = true) { return this.with({ return_attachment: on }); }
  skipProcessing(...formats: SkipFormat[]) { return this.with({ skip_processing: formats }); }
  zoom(x: number, y?: number) { return this.with({ zoom: y === undefined ? x : { zoom_x: x, zoom_y: y } }); }

  /** Output extension suffix (`.webp` / `@webp`). */
  extension(ext: Extension) { return this.withPath({ extension: ext }); }
  encoding(encoding: SourceEncoding) { return this.withPath({ encoding }); }
  chunkSize(n: number) { return this.withPath({ chunkSize: n }); }

  /** The canonical option object built so far (a copy). */
  toOptions(): ImagoOptions { return { ...this.opts }; }
  /** Unsigned path (what gets signed). */
  unsignedPath(): string { return buildPath(this.source, this.opts, this.po); }
  /** Signed path `/{sig}/…`. */
  path(): R { return this.signer.path(this.source, this.opts, this.po); }
  /** Full signed URL. */
  url(): R { return this.signer.url(this.source, this.opts, this.po); }
  /** `srcset` value on the width ladder. */
  srcset(opts: SrcsetOptions = {}): R { return this.signer.srcset(this.source, this.opts, { ...this.po, ...opts }); }
}
