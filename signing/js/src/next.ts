/**
 * Next.js: a `next/image` loader that signs imago URLs. Import from `@imago/signing/next`.
 *
 * Sign on the server. A next/image `loaderFile` is bundled into the browser, so a keyed signer
 * must not go there (the signer refuses to run in a browser); instead call `getImageProps()`
 * from `next/image` in a server component with `loader: imagoLoader(signer)` and render a plain
 * `<img {...props}>`: only the signed URLs reach the page.
 */
import { ImagoOptionError } from "./errors.js";
import type { PathOptions } from "./path.js";
import type { ImagoOptions } from "./types.js";

export { thumbHashToDataURL } from "./thumbhash.js";
export { imageInfo } from "./images.js";
export type { ImageInfo } from "./images.js";

/** A synchronous signer: `ImagoSignerSync` from `@imago/signing/node` (next/image loaders are synchronous). */
export interface SyncSigner {
  url(source: string, options?: ImagoOptions | null, po?: PathOptions): string;
}

/** What next/image passes to a loader. */
export interface ImageLoaderProps {
  src: string;
  width: number;
  quality?: number;
}

export type ImageLoader = (p: ImageLoaderProps) => string;

export interface ImagoLoaderOptions {
  /** next/image `src` → imago source (default: `src` is the source, e.g. `s3://bucket/key`). */
  source?: (src: string) => string;
  /** Options for every URL, e.g. `{ format: "auto" }`; `width`, `dpr` and `quality` are set per candidate. */
  options?: ImagoOptions;
  /** Source encoding, extension, … */
  pathOptions?: PathOptions;
}

/**
 * A next/image loader: each candidate is `w:{width}` with `dpr:1` (next/image's `w`/`x`
 * descriptors are device pixels already, so no DPR hint may multiply them; SPEC §9) and
 * `q:{quality}` when next/image passes one. next/image's default `deviceSizes` + `imageSizes`
 * are imago's width ladder, so candidates hit the same cached variants as `srcset()`.
 */
export function imagoLoader(signer: SyncSigner, opts: ImagoLoaderOptions = {}): ImageLoader {
  if (!signer || typeof signer.url !== "function") throw new ImagoOptionError("signer", "imagoLoader needs a synchronous signer (ImagoSignerSync from @imago/signing/node)");
  const toSource = opts.source ?? ((s: string) => s);
  return ({ src, width, quality }) => {
    const url = signer.url(toSource(src), { ...opts.options, width, dpr: 1, ...(quality ? { quality } : {}) }, opts.pathOptions);
    if (typeof url !== "string") throw new ImagoOptionError("signer", "imagoLoader needs a synchronous signer (ImagoSignerSync from @imago/signing/node)");
    return url;
  };
}
