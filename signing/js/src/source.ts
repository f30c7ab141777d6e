import { ImagoOptionError } from "./errors.js";
import { base64UrlEncode, percentEncode, utf8 } from "./encoding.js";
import { CONCRETE_FORMATS } from "./options.js";
import type { Extension, SourceEncoding } from "./types.js";

/** local:///path, s3://bucket/key, http(s)://host/… (SPEC §3). */
export const SOURCE_RE = /^(?:local:\/\/\/[^]+|s3:\/\/[^/]+\/[^]+|https?:\/\/[^/?#]+[^]*)$/;

export function isValidSource(source: string): boolean {
  return SOURCE_RE.test(source);
}

export interface SourceOptions {
  encoding?: SourceEncoding;
  extension?: Extension;
  /** base64 only: split the encoded source into '/'-joined chunks of this many characters. */
  chunkSize?: number;
}

/** The source part of a path (without the leading '/'), SPEC §3. */
export function encodeSource(source: string, opts: SourceOptions = {}): string {
  if (typeof source !== "string" || !isValidSource(source)) {
    throw new ImagoOptionError("source", `source must be local:///…, s3://bucket/key or http(s)://host/…, got ${JSON.stringify(source)}`);
  }
  const encoding = opts.encoding ?? "base64";
  const ext = opts.extension;
  if (ext !== undefined && ext !== null && !(CONCRETE_FORMATS as readonly string[]).includes(ext)) {
    throw new ImagoOptionError("extension", `extension must be one of ${CONCRETE_FORMATS.join(", ")}`);
  }
  if (encoding === "plain") {
    if (opts.chunkSize !== undefined && opts.chunkSize !== null) {
      throw new ImagoOptionError("chunkSize", "chunkSize only applies to base64 sources");
    }
    return `plain/${percentEncode(source)}${ext ? `@${ext}` : ""}`;
  }
  if (encoding === "encrypted") {
    throw new ImagoOptionError("encoding", "encrypted sources are built by the async ImagoSigner with sourceEncryptionKey");
  }
  if (encoding !== "base64") throw new ImagoOptionError("encoding", 'encoding must be "plain", "base64" or "encrypted"');
  let enc = base64UrlEncode(utf8(source));
  const n = opts.chunkSize;
  if (n !== undefined && n !== null) {
    if (!Number.isInteger(n) || n < 1) throw new ImagoOptionError("chunkSize", "chunkSize must be a positive integer");
    const chunks: string[] = [];
    for (let i = 0; i < enc.length; i += n) chunks.push(enc.slice(i, i + n));
    enc = chunks.join("/");
  }
  return `${enc}${ext ? `.${ext}` : ""}`;
}
