// Server-only: the signer holds imago's HMAC key. It is created from server environment
// variables (no NEXT_PUBLIC_ prefix, so Next.js never inlines them into browser code) and is
// used only by server components; the browser receives signed URLs, never the key.
import "server-only";
import { ImagoSignerSync } from "@imago/signing/node";

export const imagoUrl = () => process.env.IMAGO_URL;

let signer;
export function imagoSigner() {
  signer ??= new ImagoSignerSync({ key: process.env.IMAGO_KEY, salt: process.env.IMAGO_SALT, baseUrl: process.env.IMAGO_URL });
  return signer;
}
