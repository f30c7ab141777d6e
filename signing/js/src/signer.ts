import { ImagoOptionError } from "./errors.js";
import { hexToBytes, utf8 } from "./encoding.js";
import { concatBytes, encodeSignature, hmacSha256, importHmacKey, timingSafeEqualStr } from "./crypto.js";
import { buildPath, splitUrlPath, withExpiry, type PathOptions } from "./path.js";
import { assembleSrcset, srcsetWidths, type SrcsetOptions } from "./srcset.js";
import { ImageUrlBuilder } from "./builder.js";
import { encryptedSourcePart } from "./encrypt.js";
import { serializeOptionSegments } from "./options.js";
import type { ImagoOptions } from "./types.js";

export type { PathOptions } from "./path.js";

export interface KeyPair {
  /** hex */
  key: string;
  /** hex */
  salt: string;
}

export interface SignerConfig {
  /** hex key (use with `salt`), or give `pairs`. */
  key?: string;
  /** hex salt */
  salt?: string;
  /** Rotation: several pairs; URLs are signed with the first, verify accepts any. */
  pairs?: KeyPair[];
  /** Bytes of the HMAC kept before base64 (1–32, default 32). */
  signatureSize?: number;
  /** Prepended by `url()` / `srcset()`, e.g. `https://img.example.com` (trailing '/' removed). */
  baseUrl?: string;
  /** No keys: emit the literal signature `insecure` (server must allow it). */
  insecure?: boolean;
  /**
   * Allow a keyed signer in a browser (`window` and `document` defined). Off by default: a key in
   * a page is a key anyone can read, and with it they can sign any URL (any size, any source).
   * Set it only for a deliberately public key (a demo, a server that treats signatures as
   * cache keys rather than permission).
   */
  insecureAllowBrowser?: boolean;
  /**
   * hex AES key of the server's `IMAGO_SOURCE_URL_ENCRYPTION_KEY`: with `encoding: "encrypted"`
   * the source is put in the path as `/enc/…` (SPEC §3.4), unreadable from the URL.
   */
  sourceEncryptionKey?: string;
}

export interface VerifyOptions {
  /** Accept the literal `insecure` signature. */
  allowInsecure?: boolean;
}

export interface ResolvedConfig {
  pairs: Array<{ key: Uint8Array; salt: Uint8Array }>;
  signatureSize: number;
  baseUrl: string;
  insecure: boolean;
  sourceEncryptionKey?: string;
}

/** A browser page (or a DOM-emulating test environment): both `window` and `document` exist. */
export function inBrowser(): boolean {
  const g = globalThis as { window?: unknown; document?: unknown };
  return typeof g.window !== "undefined" && typeof g.document !== "undefined";
}

export function resolveConfig(cfg: SignerConfig): ResolvedConfig {
  if (cfg === null || typeof cfg !== "object") throw new ImagoOptionError("config", "signer config must be an object");
  let pairs: KeyPair[] = [];
  if (cfg.pairs !== undefined) {
    if (cfg.key !== undefined || cfg.salt !== undefined) throw new ImagoOptionError("pairs", "give either key/salt or pairs, not both");
    if (!Array.isArray(cfg.pairs) || cfg.pairs.length === 0) throw new ImagoOptionError("pairs", "pairs must be a non-empty array");
    pairs = cfg.pairs;
  } else if (cfg.key !== undefined || cfg.salt !== undefined) {
    pairs = [{ key: cfg.key as string, salt: cfg.salt as string }];
  }
  const insecure = cfg.insecure === true;
  if (pairs.length === 0 && !insecure) throw new ImagoOptionError("key", "a key and salt (or pairs, or insecure: true) are required");
  if (pairs.length > 0 && insecure) throw new ImagoOptionError("insecure", "insecure cannot be combined with keys");
  if (cfg.insecureAllowBrowser !== undefined && typeof cfg.insecureAllowBrowser !== "boolean") {
    throw new ImagoOptionError("insecureAllowBrowser", "insecureAllowBrowser must be a boolean");
  }
  if (pairs.length > 0 && cfg.insecureAllowBrowser !== true && inBrowser()) {
    throw new ImagoOptionError(
      "insecureAllowBrowser",
      "@imago/signing: refusing to hold an HMAC signing key in a browser (window and document are defined): " +
        "everyone who loads the page can read the key and sign any URL. Sign on the server (a server component, " +
        "route handler or API) and send only the signed URLs; pass insecureAllowBrowser: true only for a key that is meant to be public.",
    );
  }
  const size = cfg.signatureSize ?? 32;
  if (!Number.isInteger(size) || size < 1 || size > 32) throw new ImagoOptionError("signatureSize", "signatureSize must be an integer 1–32");
  return {
    pairs: pairs.map((p, i) => ({ key: hexToBytes(p.key, `pairs[${i}].key`), salt: hexToBytes(p.salt, `pairs[${i}].salt`) })),
    signatureSize: size,
    baseUrl: (cfg.baseUrl ?? "").replace(/\/+$/, ""),
    insecure,
    ...(cfg.sourceEncryptionKey !== undefined ? { sourceEncryptionKey: cfg.sourceEncryptionKey } : {}),
  };
}

/** Async signer using WebCrypto (Node 18+, Deno, Bun, browsers, edge runtimes). */
export class ImagoSigner {
  readonly config: ResolvedConfig;
  #keys: Promise<CryptoKey[]> | undefined;

  constructor(config: SignerConfig) {
    this.config = resolveConfig(config);
  }

  #cryptoKeys(): Promise<CryptoKey[]> {
    this.#keys ??= Promise.all(this.config.pairs.map((p) => importHmacKey(p.key)));
    return this.#keys;
  }

  async #signWith(index: number, path: string): Promise<string> {
    const keys = await this.#cryptoKeys();
    const mac = await hmacSha256(keys[index]!, concatBytes(this.config.pairs[index]!.salt, utf8(path)));
    return encodeSignature(mac, this.config.signatureSize);
  }

  /** Signature for `path` (everything after the signature segment, leading '/'). */
  async sign(path: string): Promise<string> {
    if (typeof path !== "string" || !path.startsWith("/")) throw new ImagoOptionError("path", "path must start with '/'");
    if (this.config.insecure) return "insecure";
    return this.#signWith(0, path);
  }

  /** `/{signature}{path}` */
  async signPath(path: string): Promise<string> {
    return `/${await this.sign(path)}${path}`;
  }

  /** Signed path for a source + options. */
  async path(source: string, options?: ImagoOptions | null, po: PathOptions = {}): Promise<string> {
    if (po.encoding === "encrypted") {
      const key = this.config.sourceEncryptionKey;
      if (key === undefined) throw new ImagoOptionError("sourceEncryptionKey", 'encoding "encrypted" needs sourceEncryptionKey in the signer config');
      const segs = serializeOptionSegments(withExpiry(options ?? undefined, po));
      segs.push(await encryptedSourcePart(source, key, { extension: po.extension, chunkSize: po.chunkSize }));
      return this.signPath("/" + segs.join("/"));
    }
    return this.signPath(buildPath(source, options, po));
  }

  /** Full signed URL (`baseUrl` + signed path). */
  async url(source: string, options?: ImagoOptions | null, po: PathOptions = {}): Promise<string> {
    return this.config.baseUrl + (await this.path(source, options, po));
  }

  /** Fluent builder bound to this signer. */
  image(source: string, po: PathOptions = {}): ImageUrlBuilder {
    return new ImageUrlBuilder(this, source, {}, po);
  }

  /** Width candidates `[{width, url}]` on the ladder, each with `w:{W}` and `dpr:1` (SPEC §9). */
  async srcsetEntries(source: string, options: ImagoOptions | null | undefined, opts: SrcsetOptions & PathOptions = {}): Promise<Array<{ width: number; url: string }>> {
    const widths = srcsetWidths(opts);
    // Resolve expiry once so every candidate carries the same exp.
    const base = withExpiry(options ?? undefined, opts) ?? {};
    const po: PathOptions = { encoding: opts.encoding, extension: opts.extension, chunkSize: opts.chunkSize };
    // `dpr: 1`: a `w` descriptor is already in device pixels, so no DPR hint may multiply it.
    return Promise.all(widths.map(async (w) => ({ width: w, url: await this.url(source, { ...base, width: w, dpr: 1 }, po) })));
  }

  /** `srcset` attribute value: `"{url} 16w, {url} 32w, …"`. */
  async srcset(source: string, options?: ImagoOptions | null, opts: SrcsetOptions & PathOptions = {}): Promise<string> {
    return assembleSrcset(await this.srcsetEntries(source, options, opts));
  }

  /** True when `urlPath` (`/{signature}/…`) carries a valid signature from any configured pair. */
  async verify(urlPath: string, opts: VerifyOptions = {}): Promise<boolean> {
    const parts = splitUrlPath(urlPath);
    if (!parts) return false;
    const [sig, path] = parts;
    if (sig === "insecure") return opts.allowInsecure === true || this.config.insecure;
    let ok = false;
    for (let i = 0; i < this.config.pairs.length; i++) {
      if (timingSafeEqualStr(sig, await this.#signWith(i, path))) ok = true;
    }
    return ok;
  }
}
