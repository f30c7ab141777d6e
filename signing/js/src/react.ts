/**
 * React: `<ImagoImage>`, a server-rendered `<img>` whose `src`/`srcset` are signed at render
 * time. Import from `@imago/signing/react` in a server component (Next.js App Router, or any
 * server-side render): the signer and its key stay on the server, the page gets signed URLs.
 */
import { createElement, type CSSProperties, type ImgHTMLAttributes, type ReactElement } from "react";
import { ImagoOptionError } from "./errors.js";
import type { PathOptions } from "./path.js";
import { LADDER, sizes as sizesAttr } from "./srcset.js";
import { thumbHashToDataURL } from "./thumbhash.js";
import type { ImagoOptions } from "./types.js";

export { thumbHashToDataURL } from "./thumbhash.js";
export { imageInfo } from "./images.js";
export type { ImageInfo } from "./images.js";

/** A synchronous signer: `ImagoSignerSync` from `@imago/signing/node`. */
export interface SyncSigner {
  url(source: string, options?: ImagoOptions | null, po?: PathOptions): string;
}

type ImgAttributes = Omit<ImgHTMLAttributes<HTMLImageElement>, "src" | "srcSet" | "sizes" | "width" | "height" | "placeholder">;

export interface ImagoImageProps extends ImgAttributes {
  /** `ImagoSignerSync` (server only: it holds the key). */
  signer: SyncSigner;
  /** imago source: `s3://bucket/key`, `local:///key`, `https://…` */
  src: string;
  alt: string;
  /** Layout width in CSS px (the `width` attribute). */
  width: number;
  /** Layout height in CSS px (the `height` attribute; reserves the box). */
  height?: number;
  /** `sizes` attribute (default `"{width}px"`: the image is `width` CSS px wide at every viewport). */
  sizes?: string;
  /** Options for every URL (e.g. `{ format: "auto", quality: "auto" }`); `width` and `dpr` are set per candidate. */
  options?: ImagoOptions;
  /** Candidate widths (default: the server's ladder, SPEC §9). */
  widths?: readonly number[];
  /**
   * Largest candidate, device px. Default with `sizes` unset: the first ladder width ≥ 3 × `width`
   * (enough for 3× screens); with `sizes` set: every width.
   */
  maxWidth?: number;
  /** ThumbHash (standard base64, e.g. `thumbhash` of `/v1/images/{key}/info`): a blurred placeholder behind the image until it loads. */
  thumbhash?: string;
  pathOptions?: PathOptions;
}

/** The `<img>` props `<ImagoImage>` renders (for frameworks that want to render the element themselves). */
export function imagoImageProps(props: ImagoImageProps): ImgHTMLAttributes<HTMLImageElement> {
  const { signer, src, alt, width, height, sizes, options, widths, maxWidth, thumbhash, pathOptions, style, loading, decoding, ...rest } = props;
  if (!signer || typeof signer.url !== "function") throw new ImagoOptionError("signer", "ImagoImage needs a synchronous signer (ImagoSignerSync from @imago/signing/node)");
  if (!Number.isInteger(width) || width < 1) throw new ImagoOptionError("width", "width must be a positive integer (CSS px)");
  if (height !== undefined && (!Number.isInteger(height) || height < 1)) throw new ImagoOptionError("height", "height must be a positive integer (CSS px)");
  if (typeof alt !== "string") throw new ImagoOptionError("alt", "alt is required (\"\" for a decorative image)");
  const ladder = [...new Set(widths ?? LADDER)].sort((a, b) => a - b);
  if (ladder.length === 0 || ladder.some((w) => !Number.isInteger(w) || w < 1)) throw new ImagoOptionError("widths", "widths must be positive integers");
  // Keep candidates up to the first ladder width that covers `cap` device px.
  const cap = maxWidth ?? (sizes === undefined ? 3 * width : undefined);
  let candidates = ladder;
  if (cap !== undefined) {
    const cover = ladder.find((w) => w >= cap);
    candidates = ladder.filter((w) => (cover === undefined ? true : w <= cover));
  }
  const sign = (w: number) => {
    const url = signer.url(src, { ...options, width: w, dpr: 1 }, pathOptions);
    if (typeof url !== "string") throw new ImagoOptionError("signer", "ImagoImage needs a synchronous signer (ImagoSignerSync from @imago/signing/node)");
    return url;
  };
  // `dpr: 1` on every candidate: a `w` descriptor is already in device px (SPEC §9).
  const srcSet = candidates.map((w) => `${sign(w)} ${w}w`).join(", ");
  // `src` (browsers without srcset): the 1× candidate.
  const fallback = candidates.find((w) => w >= width) ?? candidates[candidates.length - 1]!;
  const placeholder: CSSProperties = thumbhash
    ? { backgroundImage: `url("${thumbHashToDataURL(thumbhash)}")`, backgroundSize: "cover", backgroundPosition: "center", backgroundRepeat: "no-repeat" }
    : {};
  const out: ImgHTMLAttributes<HTMLImageElement> = {
    ...rest,
    alt,
    src: sign(fallback),
    srcSet,
    sizes: sizes ?? sizesAttr([], width),
    width,
    loading: loading ?? "lazy",
    decoding: decoding ?? "async",
    style: { ...placeholder, ...style },
  };
  if (height !== undefined) out.height = height;
  return out;
}

/** `<img>` with signed `src`/`srcset`/`sizes` and an optional ThumbHash placeholder. Render on the server. */
export function ImagoImage(props: ImagoImageProps): ReactElement {
  return createElement("img", imagoImageProps(props));
}
