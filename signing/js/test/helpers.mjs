import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const vectors = JSON.parse(readFileSync(fileURLToPath(new URL("../../test-vectors.json", import.meta.url)), "utf8"));

/** Signer config for a vector (key/salt or pairs). */
export function cfgOf(v, extra = {}) {
  const c = v.pairs ? { pairs: v.pairs } : { key: v.key, salt: v.salt };
  if (v.signature_size !== undefined) c.signatureSize = v.signature_size;
  return { ...c, ...extra };
}

export function poOf(v) {
  const po = { encoding: v.encoding };
  if (v.extension !== undefined) po.extension = v.extension;
  if (v.chunk_size !== undefined) po.chunkSize = v.chunk_size;
  return po;
}
