import { ImagoOptionError } from "./errors.js";
import { serializeOptionSegments } from "./options.js";
import { encodeSource, type SourceOptions } from "./source.js";
import type { ImagoOptions } from "./types.js";

export interface PathOptions extends SourceOptions {
  /** Unix seconds or Date; sets the `exp` option. */
  expires?: number | Date;
  /** Seconds from now; sets the `exp` option. */
  expiresIn?: number;
}

/** Merge `expires`/`expiresIn` path options into the option object. */
export function withExpiry(options: ImagoOptions | undefined, po: PathOptions, nowMs = Date.now()): ImagoOptions | undefined {
  let exp: number | undefined;
  if (po.expires !== undefined && po.expiresIn !== undefined) throw new ImagoOptionError("expires", "give expires or expiresIn, not both");
  if (po.expires instanceof Date) exp = Math.floor(po.expires.getTime() / 1000);
  else if (po.expires !== undefined) exp = po.expires;
  else if (po.expiresIn !== undefined) {
    if (typeof po.expiresIn !== "number" || !Number.isFinite(po.expiresIn) || po.expiresIn <= 0) {
      throw new ImagoOptionError("expires", "expiresIn must be a positive number of seconds");
    }
    exp = Math.floor(nowMs / 1000 + po.expiresIn);
  }
  if (exp === undefined) return options;
  return { ...(options ?? {}), expires: exp };
}

/** Unsigned path: `/` + canonical options + `/` + source part (SPEC §5.8). */
export function buildPath(source: string, options?: ImagoOptions | null, po: PathOptions = {}): string {
  const segs = serializeOptionSegments(withExpiry(options ?? undefined, po));
  segs.push(encodeSource(source, po));
  return "/" + segs.join("/");
}

/** Split `/{signature}/{path}` into [signature, path]. */
export function splitUrlPath(urlPath: string): [string, string] | null {
  const m = /^\/([^/]*)(\/.*)$/s.exec(urlPath);
  return m ? [m[1]!, m[2]!] : null;
}

