import { getSubtle } from "./crypto.js";
import { utf8 } from "./encoding.js";
import { ImagoError } from "./errors.js";

/** The header imago signs webhook deliveries in (SPEC §13). */
export const WEBHOOK_SIGNATURE_HEADER = "Imago-Signature";
/** Default replay window in seconds. */
export const DEFAULT_WEBHOOK_TOLERANCE_SECS = 300;

export type ImagoWebhookErrorCode = "malformed-header" | "signature-mismatch" | "timestamp-outside-tolerance" | "no-secret";

/** A webhook request that must be refused (answer 400 and do not act on it). */
export class ImagoWebhookError extends ImagoError {
  readonly code: ImagoWebhookErrorCode;
  constructor(code: ImagoWebhookErrorCode, message: string) {
    super(message);
    this.name = "ImagoWebhookError";
    this.code = code;
  }
}

export interface VerifyWebhookOptions {
  /** Replay window in seconds (default 300). */
  toleranceSecs?: number;
  /** The receiver's clock in unix seconds (default: now). */
  now?: number;
}

function bytesOf(body: string | Uint8Array): Uint8Array {
  return typeof body === "string" ? utf8(body) : body;
}

async function mac(secret: string, timestamp: number, body: Uint8Array): Promise<Uint8Array> {
  const subtle = await getSubtle();
  const key = await subtle.importKey("raw", utf8(secret) as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const prefix = utf8(`${timestamp}.`);
  const msg = new Uint8Array(prefix.length + body.length);
  msg.set(prefix, 0);
  msg.set(body, prefix.length);
  return new Uint8Array(await subtle.sign("HMAC", key, msg as BufferSource));
}

function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

function unhex(s: string): Uint8Array | undefined {
  if (s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s)) return undefined;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** The `Imago-Signature` value imago sends for `body` at `timestamp` (one `v1` per secret). */
export async function signWebhook(secrets: string | string[], timestamp: number, body: string | Uint8Array): Promise<string> {
  const list = typeof secrets === "string" ? [secrets] : secrets;
  let out = `t=${timestamp}`;
  for (const s of list) out += `,v1=${hex(await mac(s, timestamp, bytesOf(body)))}`;
  return out;
}

/**
 * Checks a webhook delivery: `header` is the `Imago-Signature` value, `body` the raw request
 * body exactly as received (do not re-serialise parsed JSON). One `v1` must match one of
 * `secrets` (several during a rotation) and `t` must be within the tolerance of `now`.
 * Resolves with `t`; rejects with an `ImagoWebhookError`. Deduplicate on the event `id`:
 * delivery is at least once.
 */
export async function verifyWebhook(
  header: string | null | undefined,
  body: string | Uint8Array,
  secrets: string | string[],
  opts: VerifyWebhookOptions = {},
): Promise<number> {
  const list = typeof secrets === "string" ? [secrets] : secrets;
  if (list.length === 0) throw new ImagoWebhookError("no-secret", "no webhook secret configured");
  let t: number | undefined;
  const sigs: Uint8Array[] = [];
  for (const raw of (header ?? "").split(",")) {
    const part = raw.trim();
    const i = part.indexOf("=");
    if (i < 0) throw new ImagoWebhookError("malformed-header", "malformed Imago-Signature header");
    const k = part.slice(0, i);
    const v = part.slice(i + 1);
    if (k === "t") {
      if (t !== undefined || !/^[0-9]{1,15}$/.test(v)) throw new ImagoWebhookError("malformed-header", "malformed Imago-Signature header");
      t = Number(v);
    } else if (k === "v1") {
      const b = unhex(v);
      if (b && b.length === 32) sigs.push(b);
    }
  }
  if (t === undefined || sigs.length === 0) throw new ImagoWebhookError("malformed-header", "malformed Imago-Signature header");
  const data = bytesOf(body);
  let ok = false;
  for (const s of list) {
    const want = await mac(s, t, data);
    for (const got of sigs) ok = equalBytes(want, got) || ok;
  }
  if (!ok) throw new ImagoWebhookError("signature-mismatch", "no signature matches");
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (opts.toleranceSecs ?? DEFAULT_WEBHOOK_TOLERANCE_SECS)) {
    throw new ImagoWebhookError("timestamp-outside-tolerance", "timestamp outside the tolerance");
  }
  return t;
}
