import { base64UrlEncode } from "./encoding.js";

let subtlePromise: Promise<SubtleCrypto> | undefined;

/** WebCrypto SubtleCrypto: globalThis.crypto.subtle, or node:crypto's webcrypto on Node 18. */
export function getSubtle(): Promise<SubtleCrypto> {
  if (!subtlePromise) {
    subtlePromise = (async () => {
      const c = (globalThis as { crypto?: Crypto }).crypto;
      if (c && c.subtle) return c.subtle;
      // Node 18 without the global: load lazily, hidden from bundlers.
      const spec = "node:crypto";
      const mod = (await import(/* webpackIgnore: true */ /* @vite-ignore */ spec)) as { webcrypto: Crypto };
      return mod.webcrypto.subtle;
    })();
  }
  return subtlePromise;
}

export async function importHmacKey(key: Uint8Array): Promise<CryptoKey> {
  const subtle = await getSubtle();
  return subtle.importKey("raw", key as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

export async function hmacSha256(key: CryptoKey, msg: Uint8Array): Promise<Uint8Array> {
  const subtle = await getSubtle();
  return new Uint8Array(await subtle.sign("HMAC", key, msg as BufferSource));
}

export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Truncate + base64url-no-pad. */
export function encodeSignature(mac: Uint8Array, size: number): string {
  return base64UrlEncode(mac.subarray(0, size));
}

/** Length-independent-time string comparison. */
export function timingSafeEqualStr(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}
