import { ImagoOptionError } from "./errors.js";
import { base64UrlEncode, hexToBytes, utf8 } from "./encoding.js";
import { concatBytes, getSubtle, hmacSha256, importHmacKey } from "./crypto.js";
import { CONCRETE_FORMATS } from "./options.js";
import { isValidSource } from "./source.js";
import type { Extension } from "./types.js";

/** Label of the IV key: K_iv = HMAC-SHA256(key, label) (SPEC §3.4). */
export const IV_KEY_LABEL = "imago source-url IV";

/**
 * `IV ‖ AES-CBC(PKCS#7(source))` with imgproxy's scheme (SPEC §3.4), WebCrypto only. The key is
 * the server's `IMAGO_SOURCE_URL_ENCRYPTION_KEY` (hex, 16/24/32 bytes); the IV is
 * `HMAC-SHA256(K_iv, source)[0..16]` unless given, so one source always gives one URL.
 */
export async function encryptSource(source: string, keyHex: string, iv?: Uint8Array): Promise<Uint8Array> {
  const key = hexToBytes(keyHex, "sourceEncryptionKey");
  if (![16, 24, 32].includes(key.length)) {
    throw new ImagoOptionError("sourceEncryptionKey", "the source encryption key must be 16, 24 or 32 bytes (hex)");
  }
  const data = utf8(source);
  if (iv === undefined) {
    const ivKey = await hmacSha256(await importHmacKey(key), utf8(IV_KEY_LABEL));
    iv = (await hmacSha256(await importHmacKey(ivKey), data)).subarray(0, 16);
  } else if (iv.length !== 16) {
    throw new ImagoOptionError("iv", "the IV must be 16 bytes");
  }
  const subtle = await getSubtle();
  const k = await subtle.importKey("raw", key as BufferSource, { name: "AES-CBC" }, false, ["encrypt"]);
  // WebCrypto's AES-CBC pads with PKCS #7.
  const ct = new Uint8Array(await subtle.encrypt({ name: "AES-CBC", iv: iv as BufferSource }, k, data as BufferSource));
  return concatBytes(iv, ct);
}

export interface EncryptedSourceOptions {
  extension?: Extension;
  chunkSize?: number;
  /** A fixed 16-byte IV (tests, interop); default: derived from the source. */
  iv?: Uint8Array;
}

/** The source part `enc/{base64url(IV ‖ ciphertext)}[.ext]` (no leading '/'). */
export async function encryptedSourcePart(source: string, keyHex: string, opts: EncryptedSourceOptions = {}): Promise<string> {
  if (typeof source !== "string" || !isValidSource(source)) {
    throw new ImagoOptionError("source", `source must be local:///…, s3://bucket/key or http(s)://host/…, got ${JSON.stringify(source)}`);
  }
  const ext = opts.extension;
  if (ext !== undefined && ext !== null && !(CONCRETE_FORMATS as readonly string[]).includes(ext)) {
    throw new ImagoOptionError("extension", `extension must be one of ${CONCRETE_FORMATS.join(", ")}`);
  }
  let enc = base64UrlEncode(await encryptSource(source, keyHex, opts.iv));
  const n = opts.chunkSize;
  if (n !== undefined && n !== null) {
    if (!Number.isInteger(n) || n < 1) throw new ImagoOptionError("chunkSize", "chunkSize must be a positive integer");
    const chunks: string[] = [];
    for (let i = 0; i < enc.length; i += n) chunks.push(enc.slice(i, i + n));
    enc = chunks.join("/");
  }
  return `enc/${enc}${ext ? `.${ext}` : ""}`;
}
