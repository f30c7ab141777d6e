/// <reference types="node" />
/**
 * Synchronous signing for Node.js (node:crypto). Import from `@imago/signing/node`.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { ImageUrlBuilder } from "./builder.js";
import { base64UrlEncode, utf8 } from "./encoding.js";
import { ImagoOptionError } from "./errors.js";
import { buildPath, splitUrlPath, withExpiry, type PathOptions } from "./path.js";
import { resolveConfig, type ResolvedConfig, type SignerConfig, type VerifyOptions } from "./signer.js";
import { assembleSrcset, srcsetWidths, type SrcsetOptions } from "./srcset.js";
import type { ImagoOptions } from "./types.js";

export * from "./index.js";

/** Same API as ImagoSigner, but every method returns synchronously. */
export class ImagoSignerSync {
  readonly config: ResolvedConfig;

  constructor(config: SignerConfig) {
    this.config = resolveConfig(config);
  }

  #signWith(index: number, path: string): string {
    const p = this.config.pairs[index]!;
    const mac = createHmac("sha256", p.key).update(p.salt).update(utf8(path)).digest();
    return base64UrlEncode(new Uint8Array(mac.buffer, mac.byteOffset, this.config.signatureSize));
  }

  sign(path: string): string {
    if (typeof path !== "string" || !path.startsWith("/")) throw new ImagoOptionError("path", "path must start with '/'");
    if (this.config.insecure) return "insecure";
    return this.#signWith(0, path);
  }

  signPath(path: string): string {
    return `/${this.sign(path)}${path}`;
  }

  path(source: string, options?: ImagoOptions | null, po: PathOptions = {}): string {
    return this.signPath(buildPath(source, options, po));
  }

  url(source: string, options?: ImagoOptions | null, po: PathOptions = {}): string {
    return this.config.baseUrl + this.path(source, options, po);
  }

  image(source: string, po: PathOptions = {}): ImageUrlBuilder<string> {
    return new ImageUrlBuilder<string>(this, source, {}, po);
  }

  srcsetEntries(source: string, options: ImagoOptions | null | undefined, opts: SrcsetOptions & PathOptions = {}): Array<{ width: number; url: string }> {
    const base = withExpiry(options ?? undefined, opts) ?? {};
    const po: PathOptions = { encoding: opts.encoding, extension: opts.extension, chunkSize: opts.chunkSize };
    // `dpr: 1`: a `w` descriptor is already in device pixels (SPEC §9).
    return srcsetWidths(opts).map((w) => ({ width: w, url: this.url(source, { ...base, width: w, dpr: 1 }, po) }));
  }

  srcset(source: string, options?: ImagoOptions | null, opts: SrcsetOptions & PathOptions = {}): string {
    return assembleSrcset(this.srcsetEntries(source, options, opts));
  }

  verify(urlPath: string, opts: VerifyOptions = {}): boolean {
    const parts = splitUrlPath(urlPath);
    if (!parts) return false;
    const [sig, path] = parts;
    if (sig === "insecure") return opts.allowInsecure === true || this.config.insecure;
    const got = Buffer.from(sig);
    let ok = false;
    for (let i = 0; i < this.config.pairs.length; i++) {
      const want = Buffer.from(this.#signWith(i, path));
      if (want.length === got.length && timingSafeEqual(want, got)) ok = true;
    }
    return ok;
  }
}
